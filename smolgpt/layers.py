"""GPT-2's layers as forward/backward pairs of pure functions.

Every layer follows one contract (the CS231n one):

    out, cache = layer_forward(x, params...)        # cache holds only what the backward needs
    dx, dparams... = layer_backward(dout, cache)    # gradients in the order of the forward's arrays

Shapes use fixed letters: B batch, T time, C channels (n_embd), V vocabulary, nh heads,
hs = C // nh head size, N = B*T rows. Everything works in float32 (training) and float64
(gradient checks): no function here changes the dtype it is given.

A backward never writes into `dout` or into anything the caller owns: every gradient is a new array.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

# ----------------------------------------------------------------------------------------------
# Threads for elementwise passes. BLAS spreads a matmul over every core by itself, but a NumPy
# ufunc (np.exp, a max, a sum) runs on one. Ufuncs release the GIL while they work, so plain
# Python threads, each given its own rows, run them on all cores at once. Every row is computed
# by exactly one thread with the same operations, so results do not depend on the thread count.


try:                 # optional (the test extra): reads and limits BLAS's own thread count
    from threadpoolctl import ThreadpoolController
    _blas = ThreadpoolController()
except ImportError:
    _blas = None


def _default_threads() -> int:
    """The BLAS thread count (via threadpoolctl, when installed), else the CPUs we may use."""
    counts = [c.num_threads for c in _blas.lib_controllers if c.user_api == "blas"] if _blas else []
    if counts:
        return max(counts)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def blas_kernel() -> str:
    """The BLAS library and the CPU kernel it runs, e.g. 'openblas SkylakeX'. Kernels differ in
    speed and in float32 rounding, so benchmarks print it and long runs record it."""
    libs = [c for c in _blas.lib_controllers if c.user_api == "blas"] if _blas else []
    if not libs:
        return "unknown"
    return f"{libs[0].internal_api} {getattr(libs[0], 'architecture', None) or 'unknown'}"


THREADS = _default_threads()     # threads for elementwise passes; set to 1 to run them inline
_pool: ThreadPoolExecutor | None = None
_pool_size = 0


def on_row_blocks(fn, n: int) -> None:
    """Call fn(lo, hi) on THREADS contiguous blocks of range(n) at once, and wait for all.

    fn must only write rows lo..hi-1 of its outputs. With THREADS = 1 (or n = 1) it is one
    plain call fn(0, n).
    """
    global _pool, _pool_size
    k = max(1, min(THREADS, n))
    if k == 1:
        fn(0, n)
        return
    if _pool_size < k:
        _pool, _pool_size = ThreadPoolExecutor(max_workers=k, thread_name_prefix="smolgpt"), k
    bounds = [n * i // k for i in range(k + 1)]
    err = np.geterr()           # np.errstate is per thread: the workers take the caller's

    def task(lo, hi):
        with np.errstate(**err):
            fn(lo, hi)

    for f in [_pool.submit(task, lo, hi) for lo, hi in zip(bounds[:-1], bounds[1:])]:
        f.result()                                   # re-raises a worker's exception here


def on_items_with_own_blas(fn, n: int) -> None:
    """Like on_row_blocks, for items that each do small matmuls (attention's heads): the threads
    run at once with BLAS limited to one thread each, because a product this small is slower
    when BLAS splits it over its own threads too (smolgpt/bench/NOTES.md). Without threadpoolctl
    the items run in this thread, with BLAS's own threads."""
    if _blas is None or THREADS == 1:
        fn(0, n)
        return
    with _blas.limit(limits=1, user_api="blas"):
        on_row_blocks(fn, n)


# ----------------------------------------------------------------------------------------------
# Linear: out = x @ w + b, with w stored (in, out) as in Hugging Face's GPT-2 Conv1D.


def linear_forward(x, w, b=None):
    """x (..., Cin), w (Cin, Cout), b (Cout,) or None -> out (..., Cout).

    The product is taken on x flattened to (N, Cin): one BLAS call instead of NumPy's loop of
    one call per leading index (much slower: smolgpt/bench/NOTES.md).
    """
    cin, cout = w.shape
    out = (x.reshape(-1, cin) @ w).reshape(*x.shape[:-1], cout)
    if b is not None:
        out += b
    return out, (x, w, b is not None)


def linear_backward(dout, cache, with_dw=True):
    """dout (..., Cout) -> dx (..., Cin), dw (Cin, Cout), db (Cout,) or None.

    out = x @ w + b, so dx = dout @ w^T, dw = sum over rows of x^T dout, db = sum of dout over
    every broadcast (leading) axis. with_dw=False skips dw and db (returned as None) for a frozen
    layer: a third of the layer's matmul FLOPs.
    """
    x, w, has_bias = cache
    cin, cout = w.shape
    d2 = dout.reshape(-1, cout)                      # (N, Cout), 2-D for BLAS (see forward)
    dx = (d2 @ w.T).reshape(*dout.shape[:-1], cin)   # (..., Cin)
    if not with_dw:
        return dx, None, None
    x2 = x.reshape(-1, cin)                          # (N, Cin)
    dw = x2.T @ d2                                   # (Cin, Cout)
    db = d2.sum(axis=0) if has_bias else None        # (Cout,)
    return dx, dw, db


# ----------------------------------------------------------------------------------------------
# LayerNorm over the last axis: out = (x - mean) / sqrt(var + eps) * g + b


def layernorm_forward(x, g, b, eps=1e-5):
    """x (..., C), g (C,), b (C,) -> out (..., C). Biased variance, as GPT-2."""
    C = x.shape[-1]
    mean = x.mean(axis=-1, keepdims=True)            # (..., 1)
    xhat = x - mean                                  # (..., C) centred, normalised below
    # the variance as a row-wise dot product: no (..., C) temporary for the squares
    var = np.einsum("...c,...c->...", xhat, xhat)[..., None] / C     # (..., 1)
    rstd = 1.0 / np.sqrt(var + eps)                  # (..., 1)
    xhat *= rstd                                     # (..., C) normalised input, in place
    out = xhat * g
    out += b
    return out, (xhat, rstd, g)


def layernorm_backward(dout, cache):
    """dout (..., C) -> dx (..., C), dg (C,), db (C,).

    With xhat = (x - mean) * rstd and out = xhat * g + b:
      db = sum dout, dg = sum dout * xhat (over every leading axis);
      dxhat = dout * g, and pushing it back through the normalisation (mean and variance both
      depend on every element of the row) gives
      dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)).
    """
    xhat, rstd, g = cache                            # (..., C), (..., 1), (C,)
    C = g.shape[0]
    d2 = dout.reshape(-1, C)                         # (N, C)
    db = d2.sum(axis=0)                              # (C,)
    dg = np.einsum("nc,nc->c", d2, xhat.reshape(-1, C))   # (C,)
    dx = dout * g                                    # (..., C) dxhat, turned into dx in place
    m1 = dx.mean(axis=-1, keepdims=True)             # (..., 1) mean(dxhat)
    m2 = np.einsum("...c,...c->...", dx, xhat)[..., None] / C   # (..., 1) mean(dxhat * xhat)
    dx -= m1
    dx -= xhat * m2
    dx *= rstd                                       # (..., C)
    return dx, dg, db


# ----------------------------------------------------------------------------------------------
# GELU, tanh approximation (GPT-2's "gelu_new"):
#   gelu(x) = 0.5 x (1 + tanh(u)),  u = sqrt(2/pi) (x + 0.044715 x^3)

_GELU_K = math.sqrt(2.0 / math.pi)
_GELU_A = 0.044715


def gelu_forward(x):
    """x (...) -> out (...). The cache is (x, tanh(u)): the backward needs both.

    np.tanh is one of the costlier elementwise passes (GPT-2 small: 3M elements per layer), so
    the rows are split over THREADS threads; each row's values are the same whatever the split.
    """
    t = np.empty_like(x)
    out = np.empty_like(x)
    x2, t2, o2 = (a.reshape(-1, x.shape[-1]) for a in (x, t, out))   # (N, C') views

    def rows(lo, hi):
        xs, ts, os_ = x2[lo:hi], t2[lo:hi], o2[lo:hi]
        np.multiply(xs, xs, out=ts)                      # built in place: no temporaries
        ts *= _GELU_A
        ts += 1.0
        ts *= xs
        ts *= _GELU_K                                    # u = sqrt(2/pi) (x + 0.044715 x^3)
        np.tanh(ts, out=ts)                              # t = tanh(u)
        np.add(ts, 1.0, out=os_)
        os_ *= xs
        os_ *= 0.5                                       # 0.5 x (1 + t)

    on_row_blocks(rows, x2.shape[0])
    return out, (x, t)


def gelu_backward(dout, cache):
    """dout (...) -> dx (...).

    d gelu / dx = 0.5 (1 + t) + 0.5 x (1 - t^2) du/dx,   du/dx = sqrt(2/pi) (1 + 3 * 0.044715 x^2)
    """
    x, t = cache
    g = np.empty_like(x)
    x2, t2, d2, g2 = (a.reshape(-1, x.shape[-1]) for a in (x, t, dout, g))   # (N, C') views

    def rows(lo, hi):                                # on threads over rows, as the forward
        xs, ts, gs = x2[lo:hi], t2[lo:hi], g2[lo:hi]
        du = xs * xs
        du *= 3.0 * _GELU_A
        du += 1.0                                    # du/dx / sqrt(2/pi)
        np.multiply(ts, ts, out=gs)
        np.subtract(1.0, gs, out=gs)                 # 1 - t^2
        gs *= xs
        gs *= du
        gs *= 0.5 * _GELU_K                          # 0.5 x (1 - t^2) du/dx
        gs += 0.5
        du = np.multiply(ts, 0.5, out=du)
        gs += du                                     # + 0.5 (1 + t)
        gs *= d2[lo:hi]

    on_row_blocks(rows, x2.shape[0])
    return g


# ----------------------------------------------------------------------------------------------
# Causal multi-head self-attention, from the fused qkv projection to the merged heads.


# Query rows per block of causal attention. Block i of queries only needs keys 0..end of block
# i: at T = 1024 the blocks skip 44% of the T x T scores (and their exp and matmuls) that the
# causal mask would zero anyway; a block's scores, (B, nh, 128, <= T), stay small.
ATTN_BLOCK = 128
# Heads a thread takes at once: as many as keep one block's scores for all of them within about
# 512 KB (half a core's L2 here), so they stay in cache from the q k^T product through the
# softmax to the product with v. `tiny` (T = 128) gets 8 heads per call instead of 1: the Python
# and NumPy call overhead of one small head was most of its cost (the measurement is in
# smolgpt/bench/NOTES.md). GPT-2 small (T = 1024) gets 1 head per call.
ATTN_GROUP_BYTES = 1 << 19


def _causal_mask(T, dtype):
    """(T, T) additive mask: 0 where position t may look (s <= t), -inf above the diagonal."""
    return np.triu(np.full((T, T), -np.inf, dtype=dtype), k=1)


def _head_groups(lo, hi, row_bytes):
    """Contiguous groups of heads lo..hi-1 whose block of scores fits ATTN_GROUP_BYTES."""
    size = max(1, ATTN_GROUP_BYTES // row_bytes)
    return [(g, min(g + size, hi)) for g in range(lo, hi, size)]


def attention_forward(qkv, n_head):
    """qkv (B, T, 3C) -> out (B, T, C): softmax(q k^T / sqrt(hs) + causal mask) v per head.

    Computed in blocks of ATTN_BLOCK query rows [t0, t1): those see only keys [0, t1), so a
    block's scores are (t1 - t0, t1) per head, and the causal mask is needed only on its last
    (t1 - t0) columns. The B * nh heads are independent: each thread takes whole heads, a
    cache-sized group of them per call (ATTN_GROUP_BYTES), and every head's numbers are the same
    whatever the grouping or the thread count. The cache holds q, k, v (views into qkv) and each
    block's probabilities, (B * nh, t1 - t0, t1).
    """
    B, T, C3 = qkv.shape
    C = C3 // 3
    hs = C // n_head
    H = B * n_head                                                      # heads, all independent
    heads = qkv.reshape(B, T, 3, n_head, hs).transpose(2, 0, 3, 1, 4)   # (3, B, nh, T, hs)
    q, k, v = heads[0], heads[1], heads[2]                              # (B, nh, T, hs) views
    scale = 1.0 / math.sqrt(hs)
    qs = np.multiply(q, scale, order="C").reshape(H, T, hs)             # (H, T, hs), no copy
    # k^T and v made contiguous once: BLAS is slow on views with a row stride of 3C
    kt = np.ascontiguousarray(k.transpose(0, 1, 3, 2)).reshape(H, hs, T)   # (H, hs, T)
    vc = np.ascontiguousarray(v).reshape(H, T, hs)                      # (H, T, hs)
    y = np.empty((H, T, hs), dtype=qkv.dtype)                           # (H, T, hs)
    mask = _causal_mask(min(ATTN_BLOCK, T), qkv.dtype)
    blocks = [(t0, min(t0 + ATTN_BLOCK, T)) for t0 in range(0, T, ATTN_BLOCK)]
    atts = [np.empty((H, t1 - t0, t1), dtype=qkv.dtype) for t0, t1 in blocks]

    def heads_(lo, hi):
        for g0, g1 in _head_groups(lo, hi, min(ATTN_BLOCK, T) * T * qkv.itemsize):
            for (t0, t1), att in zip(blocks, atts):
                a = att[g0:g1]                                          # (g, tq, t1)
                np.matmul(qs[g0:g1, t0:t1], kt[g0:g1, :, :t1], out=a)   # scores
                a[:, :, t0:] += mask[:t1 - t0, :t1 - t0]                # query t sees keys <= t
                a -= a.max(axis=2, keepdims=True)                       # softmax, in place
                np.exp(a, out=a)
                a /= a.sum(axis=2, keepdims=True)
                np.matmul(a, vc[g0:g1, :t1], out=y[g0:g1, t0:t1])       # (g, tq, hs)

    on_items_with_own_blas(heads_, H)
    out = y.reshape(B, n_head, T, hs).transpose(0, 2, 1, 3).reshape(B, T, C)   # heads merged
    return out, (q, k, v, atts, scale)


def attention_backward(dout, cache):
    """dout (B, T, C) -> dqkv (B, T, 3C). The forward read in reverse, block by block, a group
    of heads at a time (each thread takes whole heads, as in the forward):

      y = att @ v            -> datt = dy @ v^T,  dv = att^T @ dy
      att = softmax(s)       -> ds = att * (datt - sum(datt * att, last axis))
                                (masked entries have att = 0, so their ds is 0 for free)
      s = q @ k^T * scale    -> dq = ds @ k * scale,  dk = ds^T @ q * scale
    A block of queries [t0, t1) touched keys [0, t1): its dk and dv add into those rows.
    q, k and v are cached as views into qkv (no copy kept between the passes); each is copied
    here once into a (heads, T, hs) array, so that a group of heads is one strided slice.
    """
    q, k, v, atts, scale = cache                                     # (B, nh, T, hs) views
    B, nh, T, hs = q.shape
    H = B * nh
    qc, kc = (np.ascontiguousarray(a).reshape(H, T, hs) for a in (q, k))   # (H, T, hs)
    vt = np.ascontiguousarray(v.transpose(0, 1, 3, 2)).reshape(H, hs, T)   # (H, hs, T)
    dy = np.ascontiguousarray(dout.reshape(B, T, nh, hs).transpose(0, 2, 1, 3)).reshape(H, T, hs)
    dq = np.empty((H, T, hs), dtype=dout.dtype)                      # every row written once
    dk, dv = (np.zeros((H, T, hs), dtype=dout.dtype) for _ in range(2))   # accumulated

    def heads_(lo, hi):
        for g0, g1 in _head_groups(lo, hi, atts[0].shape[1] * T * dout.itemsize):
            for i, att in enumerate(atts):
                t0 = i * ATTN_BLOCK
                t1 = t0 + att.shape[1]
                a = att[g0:g1]                                       # (g, tq, t1)
                dyb = dy[g0:g1, t0:t1]                               # (g, tq, hs)
                ds = dyb @ vt[g0:g1, :, :t1]                         # (g, tq, t1) datt
                dv[g0:g1, :t1] += a.transpose(0, 2, 1) @ dyb         # (g, t1, hs)
                ds -= np.einsum("gij,gij->gi", ds, a)[:, :, None]   # sum(datt * att), no temp
                ds *= a
                ds *= scale                                          # ds, scaled for q and k
                np.matmul(ds, kc[g0:g1, :t1], out=dq[g0:g1, t0:t1])  # (g, tq, hs)
                dk[g0:g1, :t1] += ds.transpose(0, 2, 1) @ qc[g0:g1, t0:t1]   # (g, t1, hs)

    on_items_with_own_blas(heads_, H)
    dqkv = np.empty((B, T, 3, nh, hs), dtype=dout.dtype)             # (B, T, 3, nh, hs)
    for j, dpart in enumerate((dq, dk, dv)):
        dqkv[:, :, j] = dpart.reshape(B, nh, T, hs).transpose(0, 2, 1, 3)
    return dqkv.reshape(B, T, 3 * nh * hs)


# ----------------------------------------------------------------------------------------------
# Embeddings: x = wte[idx] + wpe[0:T]


def embedding_forward(idx, wte, wpe):
    """idx (B, T) ints, wte (V, C), wpe (block_size, C) -> x (B, T, C)."""
    T = idx.shape[1]
    out = wte[idx] + wpe[:T]
    return out, (idx, wte.shape, wpe.shape)


def embedding_backward(dout, cache):
    """dout (B, T, C) -> dwte (V, C), dwpe (block_size, C).

    A row of wte gets the sum of dout over every position where its token appears (np.add.at
    accumulates repeated indices, a plain fancy-index assignment would keep only one);
    a row of wpe gets the sum over the batch at its position.
    """
    idx, wte_shape, wpe_shape = cache
    T = idx.shape[1]
    C = wte_shape[1]
    dwte = np.zeros(wte_shape, dtype=dout.dtype)
    np.add.at(dwte, idx.reshape(-1), dout.reshape(-1, C))
    dwpe = np.zeros(wpe_shape, dtype=dout.dtype)
    dwpe[:T] = dout.sum(axis=0)
    return dwte, dwpe


# ----------------------------------------------------------------------------------------------
# The output head and the loss. The head is tied: logits = x @ wte^T, (N, V).
# On the `tiny` config the logits are 2048 x 50257 floats (400 MB) per batch, more than the rest
# of the model's activations together, so the training loss never builds them whole.


def head_forward(x, wte):
    """x (..., C), wte (V, C) -> logits (..., V). For sampling and tests; training uses the
    fused `cross_entropy_head` below."""
    C = wte.shape[1]
    return (x.reshape(-1, C) @ wte.T).reshape(*x.shape[:-1], -1)   # 2-D for BLAS


# Rows of a logits chunk a thread works on at a time (about 1 MB): the max, subtract, exp and
# sum then run while the rows sit in the core's cache, one trip to memory instead of four.
HEAD_STRIP_BYTES = 1 << 20


def cross_entropy_head(x, wte, targets, chunk=1024, with_grads=True):
    """Mean cross-entropy of softmax(x @ wte^T) against targets, and its gradients, fused.

    x (N, C), wte (V, C), targets (N,) ints -> loss, dx (N, C), dwte (V, C)
    (dx and dwte are None when with_grads is False).

    This is a forward and a backward in one pass, legitimately: the loss is the last operation,
    so its upstream gradient is the constant 1 and the gradient of the logits is known the moment
    they are computed:  dlogits = (softmax(logits) - onehot(targets)) / N.
    Rows are processed `chunk` at a time: a chunk's logits are born, reduced to its loss, turned
    into their own gradient, pushed back into dx and dwte, and dropped. Peak memory is chunk x V
    floats (200 MB at the default 1024 rows) instead of N x V, and every pass is in place.
    The three matmuls per chunk use BLAS's threads; the elementwise passes between them (a chunk
    holds 1024 x 50,257 = 52M logits, and np.exp over them is a sizeable share of a step) run on
    THREADS threads over blocks of rows.
    """
    N, C = x.shape
    V = wte.shape[0]
    dtype = x.dtype
    dx = np.empty_like(x) if with_grads else None
    dwte = np.zeros_like(wte) if with_grads else None
    n0 = min(chunk, N)
    logits = np.empty((n0, V), dtype=dtype)                      # reused buffer, (chunk, V)
    z = np.empty(n0, dtype=np.float64)                           # (chunk,) partition functions
    target_logit = np.empty(n0, dtype=np.float64)                # (chunk,) shifted target logits
    dw_part = np.empty_like(wte) if with_grads and N > chunk else None
    strip = max(1, HEAD_STRIP_BYTES // (V * logits.itemsize))    # rows per cache-sized strip
    total = 0.0
    for s in range(0, N, chunk):
        e = min(s + chunk, N)
        n = e - s
        lg = logits[:n]
        xs = x[s:e]                                              # (n, C)
        tgt = targets[s:e]
        np.matmul(xs, wte.T, out=lg)                             # (n, V) logits

        def softmax_rows(lo, hi):
            """Rows lo..hi-1 of lg: shift by the row max, exp in place, record z and the target."""
            for r0 in range(lo, hi, strip):
                r1 = min(r0 + strip, hi)
                b = lg[r0:r1]                                    # (rows, V), cache-resident
                b -= b.max(axis=1, keepdims=True)                # for a stable softmax
                target_logit[r0:r1] = b[np.arange(r1 - r0), tgt[r0:r1]]
                np.exp(b, out=b)                                 # unnormalised probabilities
                z[r0:r1] = b.sum(axis=1)                         # partition function

        on_row_blocks(softmax_rows, n)
        # loss_i = log z_i - (logit_i[target] - m_i)
        total += float(np.sum(np.log(z[:n]) - target_logit[:n]))
        if not with_grads:
            continue
        # dlogits = (E / z - onehot) / N with E = lg the unnormalised probabilities. Rather than
        # scale the (n, V) chunk, push E through the matmuls first and scale the small results:
        #   dx   = dlogits @ wte   = (E @ wte) * s - wte[tgt] / N               s = 1 / (z N)
        #   dwte = dlogits^T @ x   = E^T @ (x * s) - (row tgt_i gets x_i / N)
        # which saves a full pass over the chunk and leaves E untouched.
        scale = (1.0 / (z[:n] * N)).astype(dtype)[:, None]      # (n, 1)
        dxs = dx[s:e]
        np.matmul(lg, wte, out=dxs)                              # (n, C)  E @ wte
        dxs *= scale
        dxs -= wte[tgt] * (1.0 / N)
        if dw_part is None:
            np.matmul(lg.T, xs * scale, out=dwte)                # (V, C)  E^T @ (x s)
        else:
            np.matmul(lg.T, xs * scale, out=dw_part)             # (V, C)  this chunk's share
            dwte += dw_part
        np.add.at(dwte, tgt, xs * (-1.0 / N))                    # the one-hot part, row by row
    return total / N, dx, dwte
