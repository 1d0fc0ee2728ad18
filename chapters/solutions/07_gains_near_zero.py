"""Chapter 07, exercise 1: LayerNorm gains near 0 silence the model and its gradients.

Put every LayerNorm gain inside the random combination, as a literal reading of "every tensor"
does, and each gain starts near 0 (about 0.02 times a Gaussian) instead of 1. Each block's
branches then read a stream scaled down ~50 times, and the final LayerNorm's output, hence every
logit, is close to 0: the model predicts a nearly uniform distribution (loss close to ln V),
and the gradients of the weight matrices, which all pass through those gains, are many times
smaller than at GPT-2's init.
"""

import smolgpt  # noqa: F401
import math

import numpy as np

from smolgpt.model import GPTConfig, init_params, loss_and_grads

config = GPTConfig(n_layer=2, n_head=2, n_embd=32, block_size=16)
rng = np.random.default_rng(0)
idx = rng.integers(0, config.vocab_size, (4, config.block_size))
normal = init_params(config, seed=0)
literal = dict(normal)
for name in normal:
    if name.endswith(".weight") and (".ln_" in name or name.startswith("ln_f")):
        literal[name] = (0.02 * rng.standard_normal(normal[name].shape)).astype(np.float32)

norms = {}
for label, params in (("GPT-2 init (gains 1)", normal), ("gains ~ 0.02 N(0, 1)", literal)):
    loss, grads = loss_and_grads(params, idx, np.roll(idx, -1, 1), config)
    norms[label] = math.sqrt(sum(float((grads[k] ** 2).sum()) for k in grads
                                 if k.endswith(("c_attn.weight", "c_fc.weight"))))
    print(f"{label:<22}: loss {loss:.4f} (ln V = {math.log(config.vocab_size):.4f}), "
          f"gradient norm of c_attn and c_fc weights {norms[label]:.2e}")
ratio = norms["GPT-2 init (gains 1)"] / norms["gains ~ 0.02 N(0, 1)"]
print(f"the weight matrices' gradient is {ratio:.0f} times smaller with gains near 0")
assert ratio > 10
