"""Chapter 01, exercise 1: drop one term of LayerNorm's backward and watch the check catch it.

The term `- xhat * mean(dxhat * xhat)` is the variance's share of dx: moving one input moves the
row's variance, which rescales every output of the row. Without it dx is wrong by a sizeable
fraction (not 1e-9, not 1e-3), while dg and db, which never used that term, stay right.
"""

import smolgpt  # noqa: F401  (first: it sets how BLAS threads wait)
import numpy as np

from smolgpt import plain
from smolgpt.gradcheck import check_layer


def layernorm_backward_broken(dy, cache):
    """plain.layernorm_backward without the variance's term."""
    xhat, rstd, g = cache
    dg = (dy * xhat).sum(axis=(0, 1))
    db = dy.sum(axis=(0, 1))
    dxhat = dy * g
    dx = rstd * (dxhat - dxhat.mean(axis=-1, keepdims=True))      # the mean's share only
    return dx, dg, db


rng = np.random.default_rng(0)
inputs = [rng.standard_normal((2, 5, 8)), 1 + 0.5 * rng.standard_normal(8), rng.standard_normal(8)]
good = check_layer(plain.layernorm_forward, plain.layernorm_backward, inputs, rng)
bad = check_layer(plain.layernorm_forward, layernorm_backward_broken, inputs, rng)
for name, e_good, e_bad in zip(("dx", "dg", "db"), good, bad):
    print(f"{name}: relative error {e_good:.1e} with the full backward, {e_bad:.1e} without "
          f"the term")
assert max(good) < 1e-8
assert bad[0] > 0.1 and max(bad[1:]) < 1e-8      # only dx breaks, and by a lot
