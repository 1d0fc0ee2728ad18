"""Chapter 02's small problem: its hand-written MLP gradient and its subspace pullback."""

import numpy as np

from smolgpt.companions import ch02_subspace_toy as st
from smolgpt.gradcheck import numerical_grad, rel_error


def test_mlp_gradient_against_finite_differences():
    x, y, _, _ = st.make_task(0, n_train=40, n_test=1)
    theta = st.init(0) + 0.1 * np.random.default_rng(0).standard_normal(st.layout()[1])
    _, grad = st.loss_and_grad(theta, x, y)
    probe = np.arange(0, theta.size, 17)
    num = numerical_grad(lambda: st.loss_and_grad(theta, x, y)[0], theta, indices=probe)
    assert rel_error(grad[probe], num) < 1e-7


SMALL = (10, 16, 16, 4)           # a narrower MLP of the same kind: D = 516


def test_subspace_pullback_against_finite_differences():
    """The gradient a subspace trains on, P^T dL/dtheta, is the derivative of the loss in a."""
    x, y, _, _ = st.make_task(0, n_train=40, n_test=1)
    D = st.layout(SMALL)[1]
    P = st.random_basis(D, 7, seed=0)
    assert P.shape == (D, 7) and np.allclose(np.linalg.norm(P, axis=0), 1.0)
    theta0 = st.init(0, SMALL)
    a = 0.5 * np.random.default_rng(1).standard_normal(7)
    _, g = st.loss_and_grad(theta0 + P @ a, x, y, SMALL)
    num = numerical_grad(lambda: st.loss_and_grad(theta0 + P @ a, x, y, SMALL)[0], a)
    assert np.abs(num).max() > 1e-3
    assert rel_error(P.T @ g, num) < 1e-7


def test_subspace_of_full_dimension_reaches_full_training():
    """With d = D random directions every move is reachable, and training in them gets as far as
    training theta itself; 10 directions do not."""
    x, y, xt, yt = st.make_task(1, n_train=300, n_test=300)
    D = st.layout(SMALL)[1]
    theta0 = st.init(1, SMALL)

    def test_accuracy(P=None):
        return st.accuracy(st.train(theta0, x, y, P, steps=200, sizes=SMALL), xt, yt, SMALL)

    full = test_accuracy()
    assert full > st.accuracy(theta0, xt, yt, SMALL) + 0.3      # the task is learnable
    assert test_accuracy(st.random_basis(D, D, seed=0)) >= 0.95 * full
    assert test_accuracy(st.random_basis(D, 10, seed=0)) < 0.8 * full
