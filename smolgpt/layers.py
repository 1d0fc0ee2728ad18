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


# Bytes of one array's rows that a thread takes at a time in the row-wise passes of LayerNorm and
# GELU: every pass of a strip (6 to 11 of them) then runs on rows still in the core's caches,
# instead of streaming a thread's whole block through memory once per pass. Smaller strips pay
# more in NumPy's per-call overhead than they gain (smolgpt/bench/NOTES.md).
STRIP_BYTES = 1 << 20


def strips(n_rows: int, row_bytes: int) -> list[tuple[int, int]]:
    """range(n_rows) cut into strips of about STRIP_BYTES each: [(lo, hi), ...]. The cuts depend
    only on the sizes, never on the thread count, so per-strip partial sums add up the same way
    whatever the threads."""
    size = max(1, STRIP_BYTES // max(1, row_bytes))
    return [(lo, min(lo + size, n_rows)) for lo in range(0, n_rows, size)]


def on_strips(fn, cuts, own_blas=False) -> None:
    """Call fn(i, lo, hi) for every strip i = (lo, hi) of `cuts`, the strips spread over THREADS
    threads in contiguous runs (on_row_blocks over strip indices). own_blas: fn does small
    matrix products, each run with BLAS on one thread (on_items_with_own_blas)."""
    def run(a, b):
        for i in range(a, b):
            fn(i, *cuts[i])
    (on_items_with_own_blas if own_blas else on_row_blocks)(run, len(cuts))


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
    dw = _sum_over_rows_product(x2, d2)              # (Cin, Cout) x2^T d2
    db = d2.sum(axis=0) if has_bias else None        # (Cout,)
    return dx, dw, db


# Rows from which x^T d (a weight gradient, summed over N rows) is taken as two halves, each on
# its own thread with BLAS on one thread, then added: OpenBLAS's own two threads took from 1.3x
# (quiet) to 14x (a loaded machine) as long on `tiny-bytes`' (128, 4096) @ (4096, 384) (NOTES.md).
# The halves are fixed by N alone, so the sum is the same for any thread count.
DW_SPLIT_ROWS = 1024


def _sum_over_rows_product(x2, d2):
    """x2 (N, Cin), d2 (N, Cout) -> x2^T d2 (Cin, Cout), as two halves of the rows when N >=
    DW_SPLIT_ROWS (the plain form: x2.T @ d2)."""
    N = x2.shape[0]
    if N < DW_SPLIT_ROWS:
        return x2.T @ d2
    half = N // 2
    dw = np.empty((x2.shape[1], d2.shape[1]), dtype=d2.dtype)      # the first half's, then all
    second = np.empty_like(dw)                                      # freed on return: dw is
                                                                    # its own array, no view

    def halves(lo, hi):
        for i in range(lo, hi):
            rows = slice(0, half) if i == 0 else slice(half, N)
            np.matmul(x2[rows].T, d2[rows], out=dw if i == 0 else second)

    on_items_with_own_blas(halves, 2)
    dw += second
    return dw


# ----------------------------------------------------------------------------------------------
# LayerNorm over the last axis: out = (x - mean) / sqrt(var + eps) * g + b


def layernorm_forward(x, g, b, eps=1e-5):
    """x (..., C), g (C,), b (C,) -> out (..., C). Biased variance, as GPT-2.

    Row by row, so strips of rows run on THREADS threads (on_strips), each strip's passes while
    it sits in cache; every row's numbers are the same whatever the split. A row's mean is taken
    as a product with the vector (1/C, ..., 1/C): one BLAS matrix-vector product is ~4x faster
    than NumPy's reduction over rows as short as C = 128 (NOTES.md); so is the variance, the
    mean of the squares of the centred row.
    """
    C = x.shape[-1]
    x2 = x.reshape(-1, C)                            # (N, C)
    xhat = np.empty_like(x2)                         # (N, C) normalised input
    out = np.empty_like(x2)                          # (N, C)
    rstd = np.empty(x2.shape[0], dtype=x.dtype)      # (N,)
    mean_of = np.full(C, 1.0 / C, dtype=x.dtype)     # (C,) row @ mean_of = the row's mean

    def strip(i, lo, hi):
        xs, xh, os_, rs = x2[lo:hi], xhat[lo:hi], out[lo:hi], rstd[lo:hi]
        np.subtract(xs, (xs @ mean_of)[:, None], out=xh)        # centred
        np.multiply(xh, xh, out=os_)                 # squares, in out's rows for now
        np.matmul(os_, mean_of, out=rs)              # variance
        rs += eps
        np.sqrt(rs, out=rs)
        np.divide(1.0, rs, out=rs)                   # 1 / sqrt(var + eps)
        xh *= rs[:, None]                            # normalised, in place
        np.multiply(xh, g, out=os_)
        os_ += b

    on_strips(strip, strips(x2.shape[0], C * x.itemsize), own_blas=True)
    return out.reshape(x.shape), (xhat.reshape(x.shape), rstd.reshape(*x.shape[:-1], 1), g)


def layernorm_backward(dout, cache):
    """dout (..., C) -> dx (..., C), dg (C,), db (C,).

    With xhat = (x - mean) * rstd and out = xhat * g + b:
      db = sum dout, dg = sum dout * xhat (over every leading axis);
      dxhat = dout * g, and pushing it back through the normalisation (mean and variance both
      depend on every element of the row) gives
      dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)).
    In strips of rows on threads, as the forward (row means as products with (1/C, ...)); dg
    and db are summed per strip, then the strips' partial sums in order (the cuts do not depend
    on the thread count).
    """
    xhat, rstd, g = cache                            # (..., C), (..., 1), (C,)
    C = g.shape[0]
    d2, xh2, rs2 = dout.reshape(-1, C), xhat.reshape(-1, C), rstd.reshape(-1, 1)   # (N, .)
    dx = np.empty_like(d2)                           # (N, C)
    cuts = strips(d2.shape[0], C * dout.itemsize)
    parts = np.empty((2, len(cuts), C), dtype=dout.dtype)   # per-strip db and dg
    mean_of = np.full(C, 1.0 / C, dtype=dout.dtype)  # (C,)
    ones = np.ones(max((hi - lo for lo, hi in cuts), default=0), dtype=dout.dtype)   # (rows,)

    def strip(i, lo, hi):
        ds, xh, dxs = d2[lo:hi], xh2[lo:hi], dx[lo:hi]
        np.matmul(ones[:hi - lo], ds, out=parts[0, i])              # db's share: column sums
        np.einsum("nc,nc->c", ds, xh, out=parts[1, i])               # dg's share
        np.multiply(ds, g, out=dxs)                  # dxhat, turned into dx in place
        m1 = dxs @ mean_of                           # (rows,) mean(dxhat)
        m2 = np.einsum("nc,nc->n", dxs, xh)          # (rows,) C * mean(dxhat * xhat)
        m2 *= 1.0 / C
        dxs -= m1[:, None]
        m2 = xh * m2[:, None]
        dxs -= m2
        dxs *= rs2[lo:hi]

    on_strips(strip, cuts, own_blas=True)
    db, dg = parts.sum(axis=1)                       # (C,), (C,)
    return dx.reshape(dout.shape), dg, db


# ----------------------------------------------------------------------------------------------
# GELU, tanh approximation (GPT-2's "gelu_new"):
#   gelu(x) = 0.5 x (1 + tanh(u)),  u = sqrt(2/pi) (x + 0.044715 x^3)

_GELU_K = math.sqrt(2.0 / math.pi)
_GELU_A = 0.044715


def gelu_forward(x):
    """x (...) -> out (...). The cache is (x, tanh(u)): the backward needs both.

    np.tanh is one of the costlier elementwise passes (GPT-2 small: 3M elements per layer), so
    strips of rows run on THREADS threads (on_strips), each strip's nine passes in cache; each
    row's values are the same whatever the split.
    """
    t = np.empty_like(x)
    out = np.empty_like(x)
    x2, t2, o2 = (a.reshape(-1, x.shape[-1]) for a in (x, t, out))   # (N, C') views

    def strip(i, lo, hi):
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

    on_strips(strip, strips(x2.shape[0], x2.shape[1] * x.itemsize))
    return out, (x, t)


def gelu_backward(dout, cache):
    """dout (...) -> dx (...).

    d gelu / dx = 0.5 (1 + t) + 0.5 x (1 - t^2) du/dx,   du/dx = sqrt(2/pi) (1 + 3 * 0.044715 x^2)
    """
    x, t = cache
    g = np.empty_like(x)
    x2, t2, d2, g2 = (a.reshape(-1, x.shape[-1]) for a in (x, t, dout, g))   # (N, C') views

    def strip(i, lo, hi):                            # on threads over strips, as the forward
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

    on_strips(strip, strips(x2.shape[0], x2.shape[1] * x.itemsize))
    return g


# ----------------------------------------------------------------------------------------------
# Causal multi-head self-attention, from the fused qkv projection to the merged heads.


# Query rows per block of causal attention. Block i of queries only needs keys 0..end of block
# i: blocks of 64 skip 37% of the T x T scores (and their exp and matmuls) that the causal mask
# would zero anyway at T = 256, 47% at T = 1024 (blocks of 128: 25% and 44%); a block's scores,
# (B, nh, 64, <= T), stay small. Smaller blocks than 64 gain no more than their extra calls cost
# (smolgpt/bench/NOTES.md).
ATTN_BLOCK = 64
# Heads a thread takes at once: as many as keep one block's scores for all of them within about
# 512 KB (half a core's L2 on the 2-core EPYC of smolgpt/bench/NOTES.md), so they stay in cache
# from the q k^T product through the softmax to the product with v. With blocks of 64 rows,
# `tiny` (T = 128) gets 16 heads per call, `tiny-bytes` (T = 256) 8 and GPT-2 small (T = 1024) 2:
# the Python and NumPy call overhead of one small head was most of its cost.
ATTN_GROUP_BYTES = 1 << 19


def _causal_mask(T, dtype):
    """(T, T) additive mask: 0 where position t may look (s <= t), -inf above the diagonal."""
    return np.triu(np.full((T, T), -np.inf, dtype=dtype), k=1)


def _head_groups(lo, hi, row_bytes):
    """Contiguous groups of heads lo..hi-1 whose block of scores fits ATTN_GROUP_BYTES."""
    size = max(1, ATTN_GROUP_BYTES // row_bytes)
    return [(g, min(g + size, hi)) for g in range(lo, hi, size)]


def _by_sequence(g0, g1, nh):
    """Heads g0..g1-1 (head h = b * nh + j) as runs within one sequence b: [(b, j0, j1, i0)],
    i0 being the run's first index in the group (0 .. g1-g0). A (B, nh, T, hs) view cannot be
    flattened to (B * nh, T, hs) without a copy, so a group's heads are read and written per run."""
    runs = []
    h = g0
    while h < g1:
        b, j = divmod(h, nh)
        n = min(nh - j, g1 - h)
        runs.append((b, j, j + n, h - g0))
        h += n
    return runs


def attention_forward(qkv, n_head):
    """qkv (B, T, 3C) -> out (B, T, C): softmax(q k^T / sqrt(hs) + causal mask) v per head.

    Computed in blocks of ATTN_BLOCK query rows [t0, t1): those see only keys [0, t1), so a
    block's scores are (t1 - t0, t1) per head, and the causal mask is needed only on its last
    (t1 - t0) columns. The B * nh heads are independent: each thread takes whole heads, a
    cache-sized group of them per call (ATTN_GROUP_BYTES), and every head's numbers are the same
    whatever the grouping or the thread count. A group's q, k, v are copied out of qkv, and its
    output into out, by the thread that takes it: no single-threaded pass over the whole layer.

    The softmax is left unnormalised: with E = exp(s - rowmax(s)) and z = rowsum(E),
    y = softmax(s) v = (E v) / z, so the division is done on the (tq, hs) product instead of on
    the (tq, t1) scores (hs = 32 against t1 up to 256 at `tiny-bytes`: one pass over the scores
    saved). The cache holds q * scale, k^T and v as contiguous (heads, ...) arrays (qkv itself is
    not kept), each block's E, (B * nh, t1 - t0, t1), and 1/z, (B * nh, T).
    """
    B, T, C3 = qkv.shape
    C = C3 // 3
    hs = C // n_head
    H = B * n_head                                                      # heads, all independent
    q, k, v = qkv.reshape(B, T, 3, n_head, hs).transpose(2, 0, 3, 1, 4)   # (B, nh, T, hs) views
    scale = 1.0 / math.sqrt(hs)
    # contiguous per head, as the products want them: BLAS is slow on q, k, v's row stride of 3C,
    # and about 1.6x slower on a transposed right operand than on a contiguous one (NOTES.md)
    qs = np.empty((H, T, hs), dtype=qkv.dtype)                          # q * scale
    kt = np.empty((H, hs, T), dtype=qkv.dtype)                          # k^T
    vc = np.empty((H, T, hs), dtype=qkv.dtype)                          # v
    rz = np.empty((H, T), dtype=qkv.dtype)                              # 1 / z
    out = np.empty((B, T, C), dtype=qkv.dtype)
    y = out.reshape(B, T, n_head, hs).transpose(0, 2, 1, 3)             # (B, nh, T, hs) view
    mask = _causal_mask(min(ATTN_BLOCK, T), qkv.dtype)
    blocks = [(t0, min(t0 + ATTN_BLOCK, T)) for t0 in range(0, T, ATTN_BLOCK)]
    atts = [np.empty((H, t1 - t0, t1), dtype=qkv.dtype) for t0, t1 in blocks]
    ones = np.ones(T, dtype=qkv.dtype)

    def heads_(lo, hi):
        for g0, g1 in _head_groups(lo, hi, min(ATTN_BLOCK, T) * T * qkv.itemsize):
            runs = _by_sequence(g0, g1, n_head)
            for b, j0, j1, i in runs:                                   # this group's q, k, v
                h0, h1 = g0 + i, g0 + i + j1 - j0
                np.multiply(q[b, j0:j1], scale, out=qs[h0:h1])
                kt[h0:h1] = k[b, j0:j1].transpose(0, 2, 1)
                vc[h0:h1] = v[b, j0:j1]
            yg = np.empty((g1 - g0, T, hs), dtype=qkv.dtype)            # (g, T, hs)
            for (t0, t1), att in zip(blocks, atts):
                a = att[g0:g1]                                          # (g, tq, t1)
                np.matmul(qs[g0:g1, t0:t1], kt[g0:g1, :, :t1], out=a)   # scores
                a[:, :, t0:] += mask[:t1 - t0, :t1 - t0]                # query t sees keys <= t
                a -= a.max(axis=2, keepdims=True)                       # for a stable exp
                np.exp(a, out=a)                                        # E, in place
                r = rz[g0:g1, t0:t1]                                    # (g, tq)
                np.matmul(a, ones[:t1], out=r)                          # z = E @ ones (3x np.sum)
                np.divide(1.0, r, out=r)                                # 1 / z
                yb = yg[:, t0:t1]                                       # (g, tq, hs)
                np.matmul(a, vc[g0:g1, :t1], out=yb)                    # E v
                yb *= r[:, :, None]                                     # (E v) / z
            for b, j0, j1, i in runs:                                   # heads merged into out
                y[b, j0:j1] = yg[i:i + j1 - j0]

    on_items_with_own_blas(heads_, H)
    return out, (qs, kt, vc, atts, rz, n_head)


def attention_backward(dout, cache):
    """dout (B, T, C) -> dqkv (B, T, 3C). The forward read in reverse, block by block, a group
    of heads at a time (each thread takes whole heads, as in the forward). With att = E / z:

      y = att @ v            -> datt = dy @ v^T,  dv = att^T @ dy
      att = softmax(s)       -> ds = att * (datt - sum(datt * att, last axis))
                                (masked entries have att = 0, so their ds is 0 for free)
      s = q @ k^T * scale    -> dq = ds @ k * scale,  dk = ds^T @ q * scale

    and the 1/z of att is moved onto the small (tq, hs) dy: with dyz = dy / z,
      datt / z = dyz @ v^T =: d,   dv = E^T @ dyz,   ds = E * (d - sum(d * E, last axis) / z),
    so no pass over the scores divides them. The cached q is already q * scale, so
    dk = ds^T @ (q * scale), and k is copied once per group as k * scale, so dq = ds @ (k scale).
    A block of queries [t0, t1) touched keys [0, t1): its dk and dv add into those rows; the
    blocks are taken last first, so the first, which touches every key, writes dk and dv
    outright (no zeroing, no temporary).
    """
    qs, kt, vc, atts, rz, nh = cache                                 # (H, T, hs) (H, hs, T) ...
    H, T, hs = qs.shape
    B = H // nh
    C = nh * hs
    scale = 1.0 / math.sqrt(hs)
    dy = dout.reshape(B, T, nh, hs).transpose(0, 2, 1, 3)           # (B, nh, T, hs) view
    dqkv = np.empty((B, T, 3, nh, hs), dtype=dout.dtype)             # (B, T, 3, nh, hs)
    dq, dk, dv = dqkv.transpose(2, 0, 3, 1, 4)                       # (B, nh, T, hs) views
    blocks = [(i * ATTN_BLOCK, i * ATTN_BLOCK + att.shape[1]) for i, att in enumerate(atts)]

    def heads_(lo, hi):
        for g0, g1 in _head_groups(lo, hi, atts[0].shape[1] * T * dout.itemsize):
            g = g1 - g0
            runs = _by_sequence(g0, g1, nh)
            dyz = np.empty((g, T, hs), dtype=dout.dtype)             # dy / z
            for b, j0, j1, i in runs:
                dyz[i:i + j1 - j0] = dy[b, j0:j1]
            dyz *= rz[g0:g1, :, None]
            # k * scale and v^T, contiguous: the right operands of dq and datt (see the forward)
            ksc = np.multiply(kt[g0:g1].transpose(0, 2, 1), scale, order="C")   # (g, T, hs)
            vt = np.ascontiguousarray(vc[g0:g1].transpose(0, 2, 1))            # (g, hs, T)
            dqg, dkg, dvg = (np.empty((g, T, hs), dtype=dout.dtype) for _ in range(3))
            for n, ((t0, t1), att) in enumerate(reversed(list(zip(blocks, atts)))):
                e = att[g0:g1]                                       # (g, tq, t1) E
                dyb = dyz[:, t0:t1]                                  # (g, tq, hs) dy / z
                d = dyb @ vt[:, :, :t1]                              # (g, tq, t1) datt / z
                if n == 0:                                           # the last block: t1 = T
                    np.matmul(e.transpose(0, 2, 1), dyb, out=dvg)    # (g, T, hs)
                else:
                    dvg[:, :t1] += e.transpose(0, 2, 1) @ dyb        # (g, t1, hs)
                r = np.einsum("gij,gij->gi", d, e)                   # (g, tq) sum(d * E)
                r *= rz[g0:g1, t0:t1]                                # ... / z
                d -= r[:, :, None]
                d *= e                                               # ds
                np.matmul(d, ksc[:, :t1], out=dqg[:, t0:t1])         # (g, tq, hs)
                if n == 0:
                    np.matmul(d.transpose(0, 2, 1), qs[g0:g1, t0:t1], out=dkg)
                else:
                    dkg[:, :t1] += d.transpose(0, 2, 1) @ qs[g0:g1, t0:t1]   # (g, t1, hs)
            for b, j0, j1, i in runs:                                # into dqkv's columns
                dq[b, j0:j1] = dqg[i:i + j1 - j0]
                dk[b, j0:j1] = dkg[i:i + j1 - j0]
                dv[b, j0:j1] = dvg[i:i + j1 - j0]

    on_items_with_own_blas(heads_, H)
    return dqkv.reshape(B, T, 3 * C)


# ----------------------------------------------------------------------------------------------
# Embeddings: x = wte[idx] + wpe[0:T]


def embedding_forward(idx, wte, wpe):
    """idx (B, T) ints, wte (V, C), wpe (block_size, C) -> x (B, T, C)."""
    T = idx.shape[1]
    out = wte[idx] + wpe[:T]
    return out, (idx, wte.shape, wpe.shape)


def embedding_backward(dout, cache):
    """dout (B, T, C) -> dwte (V, C), dwpe (block_size, C).

    A row of wte gets the sum of dout over every position where its token appears (a plain
    fancy-index assignment would keep only one of the repeated indices);
    a row of wpe gets the sum over the batch at its position.
    """
    idx, wte_shape, wpe_shape = cache
    T = idx.shape[1]
    C = wte_shape[1]
    # The rows of dout sorted by token, then each token's run of rows summed by one reduceat:
    # the sums np.add.at(dwte, idx, dout) makes (the plain form, in smolgpt/plain.py), to float32
    # rounding, without its slow update of one row at a time (NOTES.md).
    ids = idx.reshape(-1)
    order = np.argsort(ids, kind="stable")                        # (N,)
    run_ids = ids[order]                                          # (N,) sorted token ids
    starts = np.flatnonzero(np.r_[True, run_ids[1:] != run_ids[:-1]])   # first row of each run
    dwte = np.zeros(wte_shape, dtype=dout.dtype)
    dwte[run_ids[starts]] = np.add.reduceat(dout.reshape(-1, C)[order], starts, axis=0)
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
        # scale the (n, V) chunk, take the one-hot inside it and push it through the matmuls
        # first, then scale the small results: with s = 1 / (z N) and E' = E - z onehot
        # (n entries changed: E'[i, tgt_i] = E[i, tgt_i] - z_i),
        #   dlogits = E' s,   dx = dlogits @ wte = (E' @ wte) s,
        #   dwte = dlogits^T @ x = E'^T @ (x s)
        # which saves a full pass over the chunk, and a gather of wte[tgt] and a scatter-add into
        # dwte (np.add.at, slow) per chunk.
        rows = np.arange(n)
        lg[rows, tgt] -= z[:n]                                   # E' (float64 z, rounded once)
        scale = (1.0 / (z[:n] * N)).astype(dtype)[:, None]      # (n, 1)
        dxs = dx[s:e]
        np.matmul(lg, wte, out=dxs)                              # (n, C)  E' @ wte
        dxs *= scale
        if dw_part is None:
            np.matmul(lg.T, xs * scale, out=dwte)                # (V, C)  E'^T @ (x s)
        else:
            np.matmul(lg.T, xs * scale, out=dw_part)             # (V, C)  this chunk's share
            dwte += dw_part
    return total / N, dx, dwte
