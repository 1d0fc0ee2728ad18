"""Chapter 03, exercise 1: Fastfood's transpose, checked two ways.

Training needs P^T g (the coefficients' gradient) as well as P a. `rmatvec` computes it without
building P. Two checks: the adjoint identity <P z, g> = <z, P^T g> for random z and g, and the
dense matrix built one column at a time (P e_j) against `dense()` and against rmatvec.
"""

import smolgpt  # noqa: F401
import numpy as np

from smolgpt.transforms import Fastfood

rng = np.random.default_rng(0)
D, d = 1000, 37                              # d not a power of 2, D not a multiple of the block
P = Fastfood(D, d, seed=3)
z, g = rng.standard_normal(d), rng.standard_normal(D)
lhs, rhs = float(P.matvec(z) @ g), float(z @ P.rmatvec(g))
print(f"<P z, g> = {lhs:.12f}, <z, P^T g> = {rhs:.12f}")
assert abs(lhs - rhs) < 1e-9 * max(1.0, abs(lhs))

columns = np.stack([P.matvec(np.eye(d)[j]) for j in range(d)], axis=1)     # (D, d)
print(f"P built from its columns vs dense(): max difference "
      f"{np.abs(columns - P.dense()).max():.1e}; P^T g vs columns^T g: "
      f"{np.abs(columns.T @ g - P.rmatvec(g)).max():.1e}")
assert np.allclose(columns, P.dense(), atol=1e-10)
assert np.allclose(columns.T @ g, P.rmatvec(g), atol=1e-9)
