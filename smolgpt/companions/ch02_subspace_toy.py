"""A small problem trained in random subspaces: Li et al. 2018's picture, in seconds on a CPU.

    r = subspace_curve(ds=(1, 3, 10, 30, 100, 300, 1000), seeds=(0, 1, 2))
    r["D"], r["full"] (test accuracy per seed), r["curve"][d] (test accuracy per seed)

The task: points x in R^10 drawn from N(0, I), each labelled with one of 4 classes by a fixed
random "teacher" network with 4 hidden units (argmax of W2 tanh(W1 x)), so a small network can
learn it but not instantly. The model: an MLP 10 -> 64 -> 64 -> 4 with tanh and softmax
cross-entropy, D = 5,124 parameters flattened into one vector theta (`sizes` changes the
widths: Li et al. found d_int90 barely moves when a network is made wider).

Training in a random subspace (Li et al.'s form): theta = theta_0 + P a, theta_0 a normal random
init (frozen), P a (D, d) Gaussian matrix whose columns are scaled to unit length, a (d,) the
only trained numbers, starting at 0. The gradient for a is P^T (dL/dtheta). Full training is the
same loop with theta itself trained. Both use full-batch Adam for a fixed number of steps, and
the score is accuracy on held-out points. Li et al.'s d_int90 is the smallest d whose accuracy
reaches 90% of full training's.
"""

from __future__ import annotations

import functools

import numpy as np
from threadpoolctl import threadpool_limits

SIZES = (10, 64, 64, 4)           # input, two hidden layers, classes


def make_task(seed: int = 0, n_train: int = 2000, n_test: int = 2000):
    """x (n, 10) float64, y (n,) ints in 0..3, for training and test; the teacher is fixed."""
    teacher = np.random.default_rng(12345)                       # the same task for every seed
    w1 = teacher.standard_normal((SIZES[0], 4))
    w2 = teacher.standard_normal((4, SIZES[-1]))
    rng = np.random.default_rng([seed, 1])
    x = rng.standard_normal((n_train + n_test, SIZES[0]))
    y = np.argmax(np.tanh(x @ w1) @ w2, axis=1)
    return x[:n_train], y[:n_train], x[n_train:], y[n_train:]


def layout(sizes=SIZES):
    """[(name, shape, offset)] of the MLP's weights and biases in the flat vector, and D."""
    table, offset = [], 0
    for i, (m, n) in enumerate(zip(sizes[:-1], sizes[1:])):
        for name, shape in ((f"w{i}", (m, n)), (f"b{i}", (n,))):
            table.append((name, shape, offset))
            offset += int(np.prod(shape))
    return table, offset


def init(seed: int, sizes=SIZES) -> np.ndarray:
    """theta_0 (D,): weights N(0, 1/fan_in), biases 0."""
    table, D = layout(sizes)
    theta = np.zeros(D)
    rng = np.random.default_rng([seed, 2])
    for name, shape, off in table:
        if name.startswith("w"):
            size = shape[0] * shape[1]
            theta[off:off + size] = rng.standard_normal(size) / np.sqrt(shape[0])
    return theta


def loss_and_grad(theta, x, y, sizes=SIZES):
    """Mean cross-entropy of the MLP at theta (D,) on x (n, 10), y (n,), and its gradient (D,)."""
    table, D = layout(sizes)
    p = {name: theta[off:off + int(np.prod(shape))].reshape(shape) for name, shape, off in table}
    n_layers = len(sizes) - 1
    hs = [x]                                                     # each layer's input
    for i in range(n_layers):
        z = hs[-1] @ p[f"w{i}"] + p[f"b{i}"]
        hs.append(np.tanh(z) if i < n_layers - 1 else z)         # the last layer: logits
    logits = hs[-1]
    z = logits - logits.max(axis=1, keepdims=True)
    prob = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)      # (n, 4)
    loss = -np.log(prob[np.arange(len(y)), y]).mean()
    grad = np.zeros(D)
    dz = prob.copy()
    dz[np.arange(len(y)), y] -= 1.0
    dz /= len(y)                                                 # d loss / d logits
    g = {}
    for i in reversed(range(n_layers)):
        g[f"w{i}"], g[f"b{i}"] = hs[i].T @ dz, dz.sum(axis=0)
        if i:
            dz = (dz @ p[f"w{i}"].T) * (1.0 - hs[i] ** 2)        # through tanh: 1 - tanh^2
    for name, shape, off in table:
        grad[off:off + int(np.prod(shape))] = g[name].ravel()
    return float(loss), grad


def accuracy(theta, x, y, sizes=SIZES) -> float:
    """Share of points whose predicted class is y."""
    table, _ = layout(sizes)
    h = x
    for i, (name, shape, off) in enumerate(table[::2]):
        w = theta[off:off + shape[0] * shape[1]].reshape(shape)
        b_name, b_shape, b_off = table[2 * i + 1]
        h = h @ w + theta[b_off:b_off + b_shape[0]]
        if 2 * i + 2 < len(table):
            h = np.tanh(h)
    return float((h.argmax(axis=1) == y).mean())


def random_basis(D: int, d: int, seed: int) -> np.ndarray:
    """P (D, d): Gaussian columns scaled to unit length, as in Li et al."""
    P = np.random.default_rng([seed, 3]).standard_normal((D, d))
    return P / np.linalg.norm(P, axis=0)


def one_blas_thread(fn):
    """Run fn with BLAS on one thread. Its products are small ((2000, 64) @ (64, 64)): split over
    two threads, OpenBLAS spent about 30 times the CPU time on them here, mostly waiting."""
    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        with threadpool_limits(limits=1, user_api="blas"):
            return fn(*args, **kwargs)
    return wrapped


@one_blas_thread
def train(theta0, x, y, P=None, steps: int = 400, lr: float = 0.01, sizes=SIZES):
    """Full-batch Adam; P None trains theta itself, else a (d,) from 0 with theta = theta0 + P a.
    Returns the trained theta."""
    z = np.zeros(P.shape[1]) if P is not None else theta0.copy()   # what Adam updates
    m, v = np.zeros_like(z), np.zeros_like(z)
    for t in range(1, steps + 1):
        theta = theta0 + P @ z if P is not None else z
        _, g = loss_and_grad(theta, x, y, sizes)
        if P is not None:
            g = P.T @ g                                          # the pullback to a: P^T dL/dtheta
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        z = z - lr * (m / (1 - 0.9 ** t)) / (np.sqrt(v / (1 - 0.999 ** t)) + 1e-8)
    return theta0 + P @ z if P is not None else z


@one_blas_thread
def subspace_curve(ds=(1, 3, 10, 30, 100, 300, 1000), seeds=(0, 1, 2), steps: int = 400,
                   lr_full: float = 0.01, lr_subspace: float = 0.1, sizes=SIZES) -> dict:
    """Test accuracy of full training and of each d, per seed (same data and theta_0 per seed).
    Returns {"D", "full": [accuracy per seed], "curve": {d: [accuracy per seed]}, "init": [...]}."""
    _, D = layout(sizes)
    full, curve = [], {d: [] for d in ds}
    for s in seeds:
        x, y, xt, yt = make_task(s)
        theta0 = init(s, sizes)
        full.append(accuracy(train(theta0, x, y, steps=steps, lr=lr_full, sizes=sizes), xt, yt,
                             sizes))
        for d in ds:
            theta = train(theta0, x, y, random_basis(D, d, s), steps=steps, lr=lr_subspace,
                          sizes=sizes)
            curve[d].append(accuracy(theta, xt, yt, sizes))
    return {"D": D, "full": full, "curve": curve,
            "init": [accuracy(init(s, sizes), *make_task(s)[2:], sizes) for s in seeds]}


def d_int90(result: dict, level: float = 0.9):
    """The smallest d of the grid whose mean accuracy reaches level x full training's mean."""
    target = level * float(np.mean(result["full"]))
    hits = [d for d in sorted(result["curve"]) if np.mean(result["curve"][d]) >= target]
    return (hits[0] if hits else None), target
