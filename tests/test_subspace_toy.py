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


def test_subspace_of_full_dimension_reaches_full_training_scale():
    x, y, xt, yt = st.make_task(1, n_train=300, n_test=300)
    D = st.layout()[1]
    P = st.random_basis(D, 7, seed=0)
    assert np.allclose(np.linalg.norm(P, axis=0), 1.0)
    theta0 = st.init(1)
    theta = st.train(theta0, x, y, P, steps=30, lr=0.1)
    a = np.linalg.lstsq(P, theta - theta0, rcond=None)[0]      # the move lies in P's span
    assert np.allclose(P @ a, theta - theta0, atol=1e-10)
    assert st.accuracy(st.train(theta0, x, y, steps=60), x, y) > st.accuracy(theta0, x, y)
