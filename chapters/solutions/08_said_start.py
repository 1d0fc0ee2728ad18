"""Chapter 08, exercise 1: at the start of SAID, the model is theta_0 and the scales cannot move.

theta_t = theta0_t + lambda_t sigma_t (P_t a) / sqrt(d) with a = 0 at the start: the offset is
0, so the model is exactly theta_0 whatever the scales lambda are, and the gradient of every
lambda_t (which multiplies that zero offset) is 0. The coefficients a get a gradient at once;
the scales only after a has moved.
"""

import smolgpt  # noqa: F401
import numpy as np

from smolgpt.methods import MethodSpec, build
from smolgpt.model import GPTConfig, loss_and_grads

config = GPTConfig(n_layer=2, n_head=2, n_embd=32, block_size=16)
method = build(MethodSpec("said", d=16), config)
trainables = method.init()
params = method.params(trainables)
doubled = method.params({**trainables, "scale": 2 * trainables["scale"]})
print(f"scales doubled at a = 0: largest change of any weight "
      f"{max(float(np.abs(doubled[k] - params[k]).max()) for k in params):.1e}")
assert all(np.array_equal(doubled[k], params[k]) for k in params)

rng = np.random.default_rng(0)
idx = rng.integers(0, config.vocab_size, (4, config.block_size))
_, grads = loss_and_grads(params, idx, np.roll(idx, -1, 1), config, wanted=method.needed_grads)
tgrads = method.pullback(trainables, grads)
print(f"{len(tgrads['scale'])} scales: largest |gradient| {np.abs(tgrads['scale']).max():.1e}; "
      f"coefficients: largest |gradient| {np.abs(tgrads['coef']).max():.1e}")
assert np.abs(tgrads["scale"]).max() == 0.0 and np.abs(tgrads["coef"]).max() > 0
