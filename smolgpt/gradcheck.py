"""Check a hand-written backward against central finite differences.

A backward pass is a claim: "this is the derivative". The check is independent of it: nudge one
input coordinate by +eps and -eps, rerun the *forward*, and take

    df/dx_i ~ (f(x + eps e_i) - f(x - eps e_i)) / (2 eps)

whose error is O(eps^2) from truncation plus O(machine_eps / eps) from rounding. In float64 with
eps = 1e-6 both are ~1e-10 relative, so a correct backward agrees to ~1e-9 and a wrong one (a
missing term, a transposed matrix) disagrees at the percent level or worse.

To check a layer with many outputs we contract them with a random upstream gradient `dout`:
f(x) = sum(forward(x) * dout), whose gradient is exactly what `backward(dout, cache)` returns.
"""

from __future__ import annotations

import numpy as np


def rel_error(analytic, numeric) -> float:
    """||a - n|| / max(||a||, ||n||), a relative error that does not blow up on tiny entries."""
    a = np.asarray(analytic, dtype=np.float64).ravel()
    n = np.asarray(numeric, dtype=np.float64).ravel()
    scale = max(np.linalg.norm(a), np.linalg.norm(n), 1e-300)
    return float(np.linalg.norm(a - n) / scale)


def numerical_grad(f, x: np.ndarray, eps: float = 1e-6, indices=None) -> np.ndarray:
    """Central differences of the scalar f() with respect to x, which f must read (x is nudged in
    place and restored). indices: flat positions to probe (all when None). Returns one value per
    probed position."""
    flat = x.reshape(-1)                      # a view: writes nudge x itself
    if indices is None:
        indices = range(flat.size)
    out = []
    for i in indices:
        old = flat[i]
        flat[i] = old + eps
        fp = f()
        flat[i] = old - eps
        fm = f()
        flat[i] = old
        out.append((fp - fm) / (2 * eps))
    return np.array(out)


def check_layer(forward, backward, inputs, rng, eps=1e-6):
    """Relative error of backward(dout, cache) for each array in `inputs` (float64).

    forward(*inputs) -> (out, cache); backward(dout, cache) -> one gradient per input (None
    entries are skipped). Every coordinate is probed. Returns one relative error per checked
    input.
    """
    out, cache = forward(*inputs)
    dout = rng.standard_normal(out.shape)
    keep = dout.copy()
    grads = backward(dout, cache)
    if not np.array_equal(dout, keep):
        raise AssertionError("the backward wrote into its dout argument (an aliasing bug)")
    if not isinstance(grads, tuple):
        grads = (grads,)

    def f():
        return float(np.sum(forward(*inputs)[0] * dout))

    errors = []
    for x, g in zip(inputs, grads):
        if g is None:
            continue
        errors.append(rel_error(g.reshape(-1), numerical_grad(f, x, eps)))
    return errors
