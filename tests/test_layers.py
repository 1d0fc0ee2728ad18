"""Every layer's backward against central finite differences, in float64.

Bound: the central difference with eps = 1e-6 in float64 is accurate to ~1e-10 relative
(truncation eps^2 ~ 1e-12, rounding 1e-16 / eps ~ 1e-10; see smolgpt/gradcheck.py). We assert
1e-7: three orders of margin over that noise, yet a real bug (a dropped term, a wrong transpose,
a missing broadcast sum) shows up as an error of 1e-3 or more.
"""

import numpy as np
import pytest

from smolgpt import layers
from smolgpt.gradcheck import check_layer, numerical_grad, rel_error

TOL = 1e-7


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def test_linear(rng):
    x = rng.standard_normal((2, 3, 5))
    w = rng.standard_normal((5, 4))
    b = rng.standard_normal(4)
    errs = check_layer(layers.linear_forward, layers.linear_backward, [x, w, b], rng)
    assert len(errs) == 3 and max(errs) < TOL, errs


def test_linear_without_bias(rng):
    x, w = rng.standard_normal((6, 5)), rng.standard_normal((5, 3))
    errs = check_layer(lambda x, w: layers.linear_forward(x, w, None), layers.linear_backward, [x, w], rng)
    assert len(errs) == 2 and max(errs) < TOL, errs


def test_layernorm(rng):
    x = rng.standard_normal((2, 3, 8)) * 3 + 1
    g = 1 + 0.5 * rng.standard_normal(8)          # gains away from 1
    b = rng.standard_normal(8)
    errs = check_layer(layers.layernorm_forward, layers.layernorm_backward, [x, g, b], rng)
    assert len(errs) == 3 and max(errs) < TOL, errs


def test_gelu(rng):
    x = rng.standard_normal((4, 7)) * 2
    errs = check_layer(layers.gelu_forward, layers.gelu_backward, [x], rng)
    assert len(errs) == 1 and max(errs) < TOL, errs


def test_gelu_matches_exact_gelu_closely(rng):
    # the tanh form is an approximation of x * Phi(x); it agrees to ~1e-3 everywhere
    from scipy.special import erf
    x = np.linspace(-6, 6, 1001)
    exact = 0.5 * x * (1 + erf(x / np.sqrt(2)))
    assert np.max(np.abs(layers.gelu_forward(x)[0] - exact)) < 1e-3


def test_attention(rng):
    B, T, C, nh = 2, 5, 8, 2
    qkv = rng.standard_normal((B, T, 3 * C))
    errs = check_layer(lambda q: layers.attention_forward(q, nh), layers.attention_backward, [qkv], rng)
    assert len(errs) == 1 and max(errs) < TOL, errs


def test_attention_is_causal(rng):
    B, T, C, nh = 1, 6, 8, 2
    qkv = rng.standard_normal((B, T, 3 * C))
    out1, _ = layers.attention_forward(qkv, nh)
    qkv2 = qkv.copy()
    qkv2[:, 4:] += rng.standard_normal((B, 2, 3 * C))   # change only positions 4 and 5
    out2, _ = layers.attention_forward(qkv2, nh)
    assert np.array_equal(out1[:, :4], out2[:, :4])
    assert not np.allclose(out1[:, 4:], out2[:, 4:])


def test_embedding(rng):
    V, T, C = 7, 5, 3
    idx = rng.integers(0, V, (3, 4))
    idx[0, :2] = 2                                      # a repeated token must accumulate
    wte = rng.standard_normal((V, C))
    wpe = rng.standard_normal((T, C))
    errs = check_layer(lambda a, b: layers.embedding_forward(idx, a, b), layers.embedding_backward,
                       [wte, wpe], rng)
    assert len(errs) == 2 and max(errs) < TOL, errs


def test_backwards_do_not_alias_dout(rng):
    x = rng.standard_normal((3, 4))
    dout = rng.standard_normal((3, 4))
    keep = dout.copy()
    for fwd, bwd, args in [(layers.gelu_forward, layers.gelu_backward, [x]),
                           (layers.layernorm_forward, layers.layernorm_backward,
                            [x, rng.standard_normal(4), rng.standard_normal(4)])]:
        _, cache = fwd(*args)
        g = bwd(dout, cache)
        g = g[0] if isinstance(g, tuple) else g
        g += 1.0                                        # writing into the result ...
        assert np.array_equal(dout, keep)               # ... never changes the caller's dout


@pytest.mark.parametrize("chunk", [3, 4, 100])
def test_cross_entropy_head_fused(rng, chunk):
    N, C, V = 10, 4, 9
    x = rng.standard_normal((N, C))
    wte = rng.standard_normal((V, C))
    t = rng.integers(0, V, N)
    loss, dx, dw = layers.cross_entropy_head(x, wte, t, chunk=chunk)
    # against the textbook formula on the whole logits matrix
    logits = x @ wte.T
    lse = np.log(np.exp(logits - logits.max(1, keepdims=True)).sum(1)) + logits.max(1)
    ref = np.mean(lse - logits[np.arange(N), t])
    assert abs(loss - ref) < 1e-12
    f = lambda: layers.cross_entropy_head(x, wte, t, chunk=chunk, with_grads=False)[0]
    assert rel_error(dx, numerical_grad(f, x)) < TOL
    assert rel_error(dw, numerical_grad(f, wte)) < TOL


def test_cross_entropy_head_float32_is_stable():
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((8, 16)) * 30).astype(np.float32)    # huge logits
    w = rng.standard_normal((50, 16)).astype(np.float32)
    loss, dx, dw = layers.cross_entropy_head(x, w, rng.integers(0, 50, 8))
    assert np.isfinite(loss) and np.all(np.isfinite(dx)) and np.all(np.isfinite(dw))
    assert dx.dtype == np.float32 and dw.dtype == np.float32


def test_attention_in_causal_blocks(rng, monkeypatch):
    # T = 7 in blocks of 3 query rows: blocks [0,3), [3,6), [6,7) see 3, 6 and 7 keys
    B, T, C, nh = 2, 7, 8, 2
    qkv = rng.standard_normal((B, T, 3 * C))
    whole, _ = layers.attention_forward(qkv, nh)                 # one block (ATTN_BLOCK >= T)
    monkeypatch.setattr(layers, "ATTN_BLOCK", 3)
    out, cache = layers.attention_forward(qkv, nh)
    assert [a.shape[-1] for a in cache[3]] == [3, 6, 7]
    assert np.max(np.abs(out - whole)) < 1e-12
    errs = check_layer(lambda q: layers.attention_forward(q, nh), layers.attention_backward, [qkv], rng)
    assert len(errs) == 1 and max(errs) < TOL, errs


def test_attention_matches_dense_softmax(rng, monkeypatch):
    # against the textbook formula on the whole (T, T) scores
    monkeypatch.setattr(layers, "ATTN_BLOCK", 4)
    B, T, C, nh = 2, 9, 12, 3
    hs = C // nh
    qkv = rng.standard_normal((B, T, 3 * C))
    q, k, v = (qkv[..., i * C:(i + 1) * C].reshape(B, T, nh, hs).transpose(0, 2, 1, 3)
               for i in range(3))
    s = q @ k.transpose(0, 1, 3, 2) / np.sqrt(hs) + np.triu(np.full((T, T), -np.inf), 1)
    p = np.exp(s - s.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    ref = (p @ v).transpose(0, 2, 1, 3).reshape(B, T, C)
    assert np.max(np.abs(layers.attention_forward(qkv, nh)[0] - ref)) < 1e-12


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("group_bytes", [1, 1 << 19])
def test_threaded_passes_equal_one_thread(monkeypatch, threads, group_bytes):
    """Head, attention and GELU split rows over threads, and attention takes its heads in
    groups: every row is computed the same way whatever the split or the grouping, so the
    results are bit-identical to one thread taking one head at a time (float32, as trained)."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((37, 16)).astype(np.float32)
    w = (0.3 * rng.standard_normal((101, 16))).astype(np.float32)
    t = rng.integers(0, 101, 37)
    qkv = rng.standard_normal((2, 11, 24)).astype(np.float32)
    dout = rng.standard_normal((2, 11, 8)).astype(np.float32)
    monkeypatch.setattr(layers, "ATTN_BLOCK", 4)
    monkeypatch.setattr(layers, "HEAD_STRIP_BYTES", 2 * 101 * 4)     # 2-row strips

    def run():
        head = layers.cross_entropy_head(x, w, t, chunk=16)
        att, cache = layers.attention_forward(qkv, 2)
        gelu, gelu_cache = layers.gelu_forward(x)
        return [np.float32(head[0]), head[1], head[2], att, layers.attention_backward(dout, cache),
                gelu, layers.gelu_backward(x[::-1], gelu_cache)]

    monkeypatch.setattr(layers, "THREADS", 1)
    monkeypatch.setattr(layers, "ATTN_GROUP_BYTES", 1)                # one head per call
    one = run()
    monkeypatch.setattr(layers, "THREADS", threads)
    monkeypatch.setattr(layers, "ATTN_GROUP_BYTES", group_bytes)      # 1 or all 4 heads per call
    for a, b in zip(one, run()):
        assert np.array_equal(a, b)


def test_linear_backward_without_weight_gradient(rng):
    x, w, b = rng.standard_normal((2, 3, 5)), rng.standard_normal((5, 4)), rng.standard_normal(4)
    dout = rng.standard_normal((2, 3, 4))
    _, cache = layers.linear_forward(x, w, b)
    dx, dw, db = layers.linear_backward(dout, cache)
    dx2, dw2, db2 = layers.linear_backward(dout, cache, with_dw=False)
    assert np.array_equal(dx, dx2) and dw2 is None and db2 is None


def test_embedding_backward_equals_scatter_add():
    """The sorted runs summed by reduceat: the sums np.add.at makes, to float32 rounding."""
    rng = np.random.default_rng(3)
    V, C = 11, 6
    idx = rng.integers(0, V, (4, 9))
    dout = rng.standard_normal((4, 9, C)).astype(np.float32)
    dwte, dwpe = layers.embedding_backward(dout, (idx, (V, C), (12, C)))
    ref = np.zeros((V, C), dtype=np.float32)
    np.add.at(ref, idx.reshape(-1), dout.reshape(-1, C))
    assert np.abs(dwte - ref).max() < 1e-5 and dwte.dtype == np.float32
    assert (np.abs(dwte) > 0).sum(axis=1).astype(bool).sum() == len(np.unique(idx))
    assert np.array_equal(dwpe[:9], dout.sum(axis=0)) and not dwpe[9:].any()


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_layernorm_in_strips_equals_one_thread_and_the_plain_form(monkeypatch, threads):
    """LayerNorm runs in strips of rows on threads: its output and dx are bit-identical for any
    thread count, dg and db add the strips' sums in one order, and all match the plain form."""
    from smolgpt import plain
    rng = np.random.default_rng(5)
    x = (3 * rng.standard_normal((5, 7, 16)) + 1).astype(np.float32)
    g = (1 + 0.5 * rng.standard_normal(16)).astype(np.float32)       # gains away from 1
    b = rng.standard_normal(16).astype(np.float32)
    dout = rng.standard_normal((5, 7, 16)).astype(np.float32)
    monkeypatch.setattr(layers, "STRIP_BYTES", 3 * 16 * 4)               # 3-row strips

    def run():
        out, cache = layers.layernorm_forward(x, g, b)
        return (out, *layers.layernorm_backward(dout, cache))

    monkeypatch.setattr(layers, "THREADS", 1)
    one = run()
    monkeypatch.setattr(layers, "THREADS", threads)
    for a, c in zip(one, run()):
        assert np.array_equal(a, c) and a.dtype == np.float32
    out, cache = plain.layernorm_forward(*(a.astype(np.float64) for a in (x, g, b)))
    ref = (out, *plain.layernorm_backward(dout.astype(np.float64), cache))
    for a, r in zip(one, ref):
        assert np.abs(a - r).max() < 1e-5 * (1 + np.abs(r).max())


@pytest.mark.parametrize("block", [64, 5])
def test_attention_equals_the_plain_form_in_float32(monkeypatch, block):
    """The blocked, unnormalised-softmax attention against plain.py's dense one, as trained."""
    from smolgpt import plain
    monkeypatch.setattr(layers, "ATTN_BLOCK", block)
    rng = np.random.default_rng(9)
    B, T, C, nh = 3, 23, 16, 4
    qkv = rng.standard_normal((B, T, 3 * C)).astype(np.float32)
    dout = rng.standard_normal((B, T, C)).astype(np.float32)
    out, cache = layers.attention_forward(qkv, nh)
    dqkv = layers.attention_backward(dout, cache)
    ref, ref_cache = plain.attention_forward(qkv.astype(np.float64), nh)
    ref_d = plain.attention_backward(dout.astype(np.float64), ref_cache)
    assert out.dtype == dqkv.dtype == np.float32
    assert np.abs(out - ref).max() < 1e-5 and np.abs(dqkv - ref_d).max() < 1e-5


@pytest.mark.parametrize("threads", [1, 2])
def test_weight_gradient_in_two_halves_equals_the_whole_product(monkeypatch, threads):
    rng = np.random.default_rng(11)
    x, d = rng.standard_normal((2, 50, 6)), rng.standard_normal((2, 50, 4))
    monkeypatch.setattr(layers, "THREADS", threads)
    monkeypatch.setattr(layers, "DW_SPLIT_ROWS", 8)                  # 100 rows: two halves
    _, dw, _ = layers.linear_backward(d, (x, rng.standard_normal((6, 4)), True))
    ref = x.reshape(-1, 6).T @ d.reshape(-1, 4)
    assert np.abs(dw - ref).max() < 1e-12 * np.abs(ref).max()
    x32, d32, w32 = x.astype(np.float32), d.astype(np.float32), np.ones((6, 4), np.float32)
    monkeypatch.setattr(layers, "THREADS", 1)
    one = layers.linear_backward(d32, (x32, w32, False))[1]
    monkeypatch.setattr(layers, "THREADS", threads)
    assert np.array_equal(one, layers.linear_backward(d32, (x32, w32, False))[1])


def test_weight_gradient_owns_its_memory(monkeypatch):
    """A gradient that is a view into a larger buffer would keep the buffer alive with it (every
    weight gradient of the model is alive at the end of the backward)."""
    rng = np.random.default_rng(12)
    x = rng.standard_normal((64, 5)).astype(np.float32)
    d = rng.standard_normal((64, 3)).astype(np.float32)
    for rows in (8, 1000):                                  # in two halves, and whole
        monkeypatch.setattr(layers, "DW_SPLIT_ROWS", rows)
        dw = layers.linear_backward(d, (x, np.ones((5, 3), np.float32), True))[1]
        assert dw.base is None or dw.base.nbytes == dw.nbytes
