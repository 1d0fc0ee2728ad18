"""Chapter 02, exercise 3: the offset form starts exactly at a GPT-2 init; the no-offset form
does not.

With an offset, theta = theta_0 + sigma (P a) / sqrt(d) and a starts at 0: the second term is
exactly 0, so theta is theta_0, the seed's init, bit for bit. Without an offset, theta =
base + sigma (P a) / sqrt(d) with a = ones: each weight is a fresh random combination of the
basis, a *different* draw with the same spread as GPT-2's init, and the LayerNorm gains are
1 plus a random term around GPT-2's constant. (Checked here on a 2-layer, 32-wide model rather
than `tiny`, so that it runs in seconds.)
"""

import smolgpt  # noqa: F401
import numpy as np

from smolgpt.methods import MethodSpec, build
from smolgpt.model import GPTConfig, init_params

config = GPTConfig(n_layer=2, n_head=2, n_embd=32, block_size=16)
reference = init_params(config, seed=0)
for offset in (True, False):
    method = build(MethodSpec("basis", d=5, offset=offset), config)
    params = method.params(method.init())
    same = all(np.array_equal(params[k], reference[k]) for k in reference)
    gap = max(float(np.abs(params[k] - reference[k]).max()) for k in reference)
    print(f"offset={offset!s:<5}: equal to init_params(seed=0) bit for bit: {same}; "
          f"largest difference {gap:.3f}")
    assert same == offset
