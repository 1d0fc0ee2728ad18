"""Chapter 10, exercise 1: a channel gain's gradient is its column's weight gradient read
through the frozen weights.

A layer out = x @ (W0 diag(g)) + b has W = W0 diag(g), so W_ij = W0_ij g_j and, by the chain
rule, dL/dg_j = sum_i dL/dW_ij W0_ij: the column's gradient dotted with the frozen column. Checked
here against central differences on one random linear layer, in float64, with gains away from 1
and a random upstream gradient (the loss is <dout, out>, whose gradient in out is dout).
"""

import smolgpt  # noqa: F401
import numpy as np

from smolgpt.gradcheck import numerical_grad, rel_error
from smolgpt.layers import linear_backward, linear_forward

rng = np.random.default_rng(0)
N, C, H = 6, 8, 12
x = rng.standard_normal((N, C))                       # (N, C)
W0 = 0.02 * rng.standard_normal((C, H))               # (C, H) frozen
b = 0.1 * rng.standard_normal(H)
g = 1 + 0.5 * rng.standard_normal(H)                  # gains away from 1
dout = rng.standard_normal((N, H))                    # a random upstream gradient


def loss():
    return float((linear_forward(x, W0 * g, b)[0] * dout).sum())


_, cache = linear_forward(x, W0 * g, b)
_, dW, _ = linear_backward(dout, cache)               # dL/dW (C, H)
dg = (dW * W0).sum(axis=0)                            # (H,) the formula
num = numerical_grad(loss, g, eps=1e-6)
err = rel_error(dg, num)
print(f"dL/dg = sum_i dL/dW_ij W0_ij against central differences: relative error {err:.1e}")
assert err < 1e-8
print(f"g_j = 0 switches feature j off: output column 3 with g_3 = 0 is the bias alone: "
      f"{np.allclose(linear_forward(x, W0 * np.where(np.arange(H) == 3, 0, g), b)[0][:, 3], b[3])}")
