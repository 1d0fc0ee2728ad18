"""The plain model (smolgpt/plain.py) against the fast one, and against finite differences.

The plain file is what chapter 01 teaches from; the fast model is what everything trains with.
They must compute the same function: in float64, loss and every gradient equal to rounding.
"""

import numpy as np
import pytest

from smolgpt import plain
from smolgpt.gradcheck import check_layer
from smolgpt.model import GPTConfig, init_params, loss_and_grads


def _perturbed(config, rng):
    """A float64 init moved off GPT-2's constants (LayerNorm gains away from 1, biases non-zero),
    so that no term of a gradient can hide behind a 0 or a 1."""
    params = init_params(config, 0, np.float64)
    return {k: v + 0.2 * rng.standard_normal(v.shape) for k, v in params.items()}


@pytest.mark.parametrize("n_layer,n_head,n_embd,T,B", [(1, 1, 4, 3, 1), (2, 2, 8, 6, 2),
                                                       (3, 4, 16, 9, 3)])
def test_plain_equals_fast_in_float64(n_layer, n_head, n_embd, T, B):
    rng = np.random.default_rng(n_layer)
    config = GPTConfig(n_layer=n_layer, n_head=n_head, n_embd=n_embd, block_size=T + 2,
                       vocab_size=13)
    params = _perturbed(config, rng)
    idx, tgt = rng.integers(0, 13, (B, T)), rng.integers(0, 13, (B, T))
    loss_fast, g_fast = loss_and_grads(params, idx, tgt, config)
    loss_plain, g_plain = plain.loss_and_grads(params, idx, tgt, n_layer, n_head)
    assert abs(loss_fast - loss_plain) < 1e-13 * abs(loss_plain)
    assert set(g_fast) == set(g_plain) == set(params)
    for name in params:
        scale = np.abs(g_plain[name]).max() + 1e-300
        assert np.abs(g_fast[name] - g_plain[name]).max() <= 1e-12 * scale, name


def test_plain_layers_against_finite_differences():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 5, 8))
    cases = [
        (plain.linear_forward, plain.linear_backward,
         [x, rng.standard_normal((8, 6)), rng.standard_normal(6)]),
        (plain.layernorm_forward, plain.layernorm_backward,
         [x, 1 + 0.5 * rng.standard_normal(8), rng.standard_normal(8)]),
        (plain.gelu_forward, plain.gelu_backward, [x]),
        (lambda q: plain.attention_forward(q, 2), plain.attention_backward,
         [rng.standard_normal((2, 5, 24))]),
    ]
    for fwd, bwd, inputs in cases:
        errs = check_layer(fwd, bwd, inputs, rng)
        assert len(errs) == len(inputs) and max(errs) < 1e-7, errs


def test_plain_block_against_finite_differences():
    rng = np.random.default_rng(1)
    config = GPTConfig(n_layer=1, n_head=2, n_embd=8, block_size=5, vocab_size=7)
    P = plain.block_params(_perturbed(config, rng), 0)
    names = sorted(P)

    def fwd(x, *arrays):
        return plain.block_forward(x, dict(zip(names, arrays)), 2)

    def bwd(dout, cache):
        dx, g = plain.block_backward(dout, cache)
        return (dx, *[g[n] for n in names])

    errors = check_layer(fwd, bwd, [rng.standard_normal((2, 5, 8)), *[P[n] for n in names]], rng)
    assert len(errors) == 13 and max(errors) < 1e-7
