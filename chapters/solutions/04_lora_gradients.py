"""Chapter 04, exercises 1 and 2: LoRA's gradients, derived and checked; who moves first.

y = x (W0 + A B) with A (m, r), B (r, n). With G = x^T dy = dL/dW (m, n) the gradient a full
weight would get, the chain rule through W = W0 + A B gives dA = G B^T and dB = A^T G.
At the start B = 0, so dA = G B^T = 0 and dB = A^T G is not: only B moves on the first step,
and A starts moving once B is no longer 0.
"""

import smolgpt  # noqa: F401
import numpy as np

from smolgpt.gradcheck import check_layer

rng = np.random.default_rng(0)
m, n, r = 6, 5, 2
W0 = rng.standard_normal((m, n))


def lora_forward(x, A, B):
    return x @ (W0 + A @ B), (x, A, B)


def lora_backward(dy, cache):
    x, A, B = cache
    G = x.T @ dy                                  # (m, n): the full weight's gradient
    return dy @ (W0 + A @ B).T, G @ B.T, A.T @ G


x = rng.standard_normal((7, m))
errors = check_layer(lora_forward, lora_backward,
                     [x, rng.standard_normal((m, r)), rng.standard_normal((r, n))], rng)
print(f"LoRA backward vs finite differences (dx, dA, dB): {', '.join(f'{e:.1e}' for e in errors)}")
assert max(errors) < 1e-7

A, B = rng.standard_normal((m, r)) / np.sqrt(m), np.zeros((r, n))     # LoRA's start
_, dA, dB = lora_backward(rng.standard_normal((7, n)), (x, A, B))
print(f"at B = 0: |dA| = {np.abs(dA).max():.1e}, |dB| = {np.abs(dB).max():.2f}")
assert np.abs(dA).max() == 0.0 and np.abs(dB).max() > 0.1
