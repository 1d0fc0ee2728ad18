"""Every parameterization: its map's gradient checked through the whole model, counts, errors."""

import math

import numpy as np
import pytest

from smolgpt.gradcheck import numerical_grad, rel_error
from smolgpt.methods import MethodError, MethodSpec, build
from smolgpt.model import (GPTConfig, count_params, init_params, loss_and_grads, loss_only,
                           non_embedding_table)

SMALL = GPTConfig(n_layer=2, n_head=2, n_embd=8, block_size=6, vocab_size=11)

SPECS = [
    MethodSpec("full"),
    MethodSpec("embeddings"),
    MethodSpec("basis", d=7),
    MethodSpec("basis", d=3, per_tensor=True),
    MethodSpec("basis", d=7, offset=False),
    MethodSpec("fastfood", d=20),
    MethodSpec("fastfood", d=4, per_tensor=True),
    MethodSpec("fft-fastfood", d=20),
    MethodSpec("fft-fastfood", d=4, per_tensor=True, offset=False),
    MethodSpec("lora", rank=2, alpha=3.0),
]


def nudged_trainables(method, seed):
    """float64 trainables moved off their starting values (coefficients 0, LoRA B = 0), so that
    every term of the pullback is exercised."""
    rng = np.random.default_rng(seed)
    t = method.init(dtype=np.float64)
    for k in t:
        t[k] = t[k] + 0.3 * rng.standard_normal(t[k].shape)
    return t


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.label().replace(" ", "_"))
def test_pullback_is_the_gradient(spec):
    """method.pullback(dL/dparams) == d L(method.params(t)) / dt by central differences."""
    method = build(spec, SMALL)
    t = nudged_trainables(method, 3)
    rng = np.random.default_rng(4)
    idx = rng.integers(0, SMALL.vocab_size, (2, 5))
    tgt = rng.integers(0, SMALL.vocab_size, (2, 5))
    _, grads = loss_and_grads(method.params(t), idx, tgt, SMALL)
    tg = method.pullback(t, grads)
    assert set(tg) == set(t)
    f = lambda: loss_only(method.params(t), idx, tgt, SMALL)
    for k in t:
        probe = None if t[k].size <= 60 else rng.choice(t[k].size, 60, replace=False)
        # A coefficient moves every weight by only ~0.02 * its change, so its gradient is ~1e-4
        # and a 1e-6 nudge changes the loss by ~1e-10, where float64 rounding of the loss
        # (~1e-16) already costs ~1e-6 relative. A 1e-4 nudge moves weights by only ~2e-6, so
        # its truncation error stays far below the bound while rounding drops 100x.
        eps = 1e-4 if k == "coef" else 1e-6
        num = numerical_grad(f, t[k], eps=eps, indices=probe)
        ana = tg[k].reshape(-1) if probe is None else tg[k].reshape(-1)[probe]
        assert rel_error(ana, num) < 1e-7, (k, rel_error(ana, num))


def test_counts_in_the_posts_terms():
    gpt2 = GPTConfig.preset("gpt2")
    assert build(MethodSpec("full"), gpt2).n_trainable == 85_056_000
    assert build(MethodSpec("embeddings"), gpt2).n_trainable == 0
    assert build(MethodSpec("basis", d=5), gpt2).n_trainable == 5
    assert build(MethodSpec("basis", d=5, per_tensor=True), gpt2).n_trainable == 730
    # LoRA r on c_attn (768x2304), attn c_proj (768x768), c_fc (768x3072), mlp c_proj (3072x768)
    r = 4
    per_block = r * ((768 + 2304) + (768 + 768) + (768 + 3072) + (3072 + 768))
    assert build(MethodSpec("lora", rank=r), gpt2).n_trainable == 12 * per_block


def test_subspace_offset_form_starts_at_the_gpt2_init():
    m = build(MethodSpec("fastfood", d=16), SMALL)
    p = m.params(m.init(np.float64))
    ref = init_params(SMALL, 0, np.float64)
    for name in p:
        assert np.allclose(p[name], ref[name], atol=1e-6), name


@pytest.mark.parametrize("kind", ["basis", "fastfood", "fft-fastfood"])
def test_no_offset_form_has_gpt2_init_statistics(kind):
    c = GPTConfig(n_layer=2, n_head=2, n_embd=64, block_size=8, vocab_size=50)
    m = build(MethodSpec(kind, d=5, offset=False), c)
    p = m.params(m.init(np.float64))
    w = p["h.0.mlp.c_fc.weight"]                                   # 16,384 entries
    # a = ones: each weight is sum_k P[i, k] / sqrt(5) * 0.02, unit-variance P entries, so
    # N(0, 0.02^2)-like; 6-sigma bound on the std estimate (4th moment of the sinusoidal
    # FFT-Fastfood entries is smaller than a Gaussian's, so the bound holds for it too)
    assert abs(w.std() - 0.02) < 6 * 0.02 / math.sqrt(2 * w.size)
    r = p["h.1.attn.c_proj.weight"]                                # residual: 0.02 / sqrt(4)
    assert abs(r.std() - 0.01) < 6 * 0.01 / math.sqrt(2 * r.size)
    g = p["h.1.ln_2.weight"]                                       # LayerNorm gains near 1
    assert abs(g.mean() - 1.0) < 6 * 0.02 / math.sqrt(g.size)


def test_lora_starts_at_the_init_and_is_low_rank():
    m = build(MethodSpec("lora", rank=2), SMALL)
    t = m.init(np.float64)
    p0 = m.params(t)
    ref = init_params(SMALL, 0, np.float64)
    assert all(np.array_equal(p0[k], ref[k]) for k in ref)         # B = 0: no change at start
    t = nudged_trainables(m, 1)
    p = m.params(t)
    delta = p["h.0.mlp.c_fc.weight"] - ref["h.0.mlp.c_fc.weight"]
    s = np.linalg.svd(delta, compute_uv=False)
    assert s[1] > 1e-3 and s[2] < 1e-12 * s[0]                    # rank exactly 2


@pytest.mark.parametrize("spec, words", [
    (dict(name="bogus"), "unknown method"),
    (dict(name="basis", d=0), "positive integer"),
    (dict(name="fastfood", d=10 ** 9), "larger than the"),
    (dict(name="basis", d=9, per_tensor=True), "smallest tensor"),
    (dict(name="lora", rank=9), "exceeds min"),
    (dict(name="lora", rank=0), "positive integer"),
])
def test_bad_method_options_are_refused_clearly(spec, words):
    with pytest.raises(MethodError, match=words):
        build(MethodSpec(**spec), SMALL)


def test_embeddings_only_trains_only_embeddings():
    m = build(MethodSpec("embeddings"), SMALL)
    t = m.init()
    assert set(t) == {"wte.weight", "wpe.weight"} and m.n_trainable == 0
    assert count_params(SMALL) - count_params(SMALL, True) == sum(v.size for v in t.values())


def test_per_tensor_coefficients_shape():
    m = build(MethodSpec("basis", d=3, per_tensor=True), SMALL)
    assert m.init()["coef"].shape == (len(non_embedding_table(SMALL)), 3)
