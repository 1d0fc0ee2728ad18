"""Random projections P (D, d): a few coefficients coef (d,) in, a full parameter vector (D,) out.

`coef` is the subspace method's coefficient vector, written `a` in the math: the method trains
these d numbers and builds all D weights from them, `theta = base + sigma * (P a) / sqrt(d)`
(see smolgpt/methods/subspace.py). The gradient for a is then `P^T (sigma * dL/dtheta) / sqrt(d)`,
so every operator here has a forward `matvec` (coef -> P coef) and its exact transpose `rmatvec`
(g -> P^T g). `dense()` builds P explicitly for tests on small sizes.
`matvec(coef, out=buf)` writes into a preallocated (D,) array, for the training hot path.

Three ways to get P, all regenerated from an integer seed, never stored as a D x d matrix:

  class           what P is                                time per product   memory
  DenseGaussian   iid N(0,1) entries, regenerated in       O(D d)             O(D + chunk d)
                  row chunks from the seed on every call
  Fastfood        blocks S H G Pi H B (Le, Sarlos, Smola    O(D log d)         O(D)
                  2013) stacked until D rows are covered
  FFTFastfood     Pi C B: the blog post's "permute a        O(D log D)         O(D)
                  Fourier transform of sign-flipped coef"

The shared contract, so that the caller's `sigma` alone sets the scale:
  * entries of P have mean 0 and variance 1, like a dense N(0, 1) matrix, so every column has
    squared norm about D, and distinct columns are nearly orthogonal: the cosine between two
    columns has std 1/sqrt(D) for DenseGaussian (mean |cos| sqrt(2 / (pi D))), sqrt(2/D) for
    Fastfood, sqrt(2) wider (see its docstring), and is 0 for FFTFastfood when D is a fast FFT
    length (exactly orthogonal columns; otherwise up to ~1/sqrt(D), see its docstring);
  * methods work in the input's dtype (float32 for training, float64 for tests) and return that
    dtype; the random numbers are drawn once in float32, so both dtypes see the same matrix;
  * sizes must satisfy 1 <= d <= D; anything else raises ValueError (no silent cropping).

Fastfood's entries look Gaussian; FFTFastfood's do not (its columns are permuted sinusoids, entry
kurtosis 1.5 instead of 3). tests/test_transforms.py checks both claims.
"""

from __future__ import annotations

import functools
import math
import operator

import numpy as np
import scipy.fft


# ---------------------------------------------------------------------------------------------
# Shared checks
# ---------------------------------------------------------------------------------------------

def _check_sizes(D, d):
    """Validate the shape (D, d) of a projection and return it as Python ints."""
    D, d = operator.index(D), operator.index(d)
    if d < 1:
        raise ValueError(f"d (subspace dimension) must be >= 1, got d={d}.")
    if D < 1:
        raise ValueError(f"D (number of parameters) must be >= 1, got D={D}.")
    if d > D:
        raise ValueError(
            f"d={d} exceeds D={D}: a {d}-dimensional subspace cannot live in a {D}-dimensional "
            f"parameter space. Use d <= D (for a tensor smaller than d, give it a smaller d or "
            f"group it with other tensors into one flat vector).")
    return D, d


def _as_vector(v, length, what):
    """v as a 1-D float array of length `length`: float32/float64 kept, other dtypes -> float64."""
    v = np.asarray(v)
    if v.dtype not in (np.float32, np.float64):
        v = v.astype(np.float64)
    if v.shape != (length,):
        raise ValueError(f"{what} must have shape ({length},), got {v.shape}.")
    return v


class _Projection:
    """Common parts of the three operators: shape, input checks, repr."""

    D: int
    d: int
    seed: int

    @property
    def shape(self):
        return (self.D, self.d)

    def _coef(self, coef):
        return _as_vector(coef, self.d, "coef (coefficients)")

    def _g(self, g):
        return _as_vector(g, self.D, "g (parameter-space vector)")

    def _out(self, out, dtype):
        """A fresh (D,) array, or the caller's preallocated `out` after checking it fits."""
        if out is None:
            return np.empty(self.D, dtype=dtype)
        if out.shape != (self.D,) or out.dtype != dtype or not out.flags.c_contiguous:
            raise ValueError(f"out must be a C-contiguous ({self.D},) {np.dtype(dtype)} array, got "
                             f"shape {out.shape}, dtype {out.dtype}.")
        return out

    def __setattr__(self, name, value):
        # Immutable after __init__: an operator is a fixed matrix, like a frozen dataclass.
        if getattr(self, "_frozen", False):
            raise AttributeError(f"{type(self).__name__} is immutable")
        object.__setattr__(self, name, value)

    def __repr__(self):
        return f"{type(self).__name__}(D={self.D}, d={self.d}, seed={self.seed})"


# ---------------------------------------------------------------------------------------------
# Walsh-Hadamard transform
# ---------------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def _sylvester(n, dtype):
    """(n, n) Sylvester Hadamard matrix H_n[i, j] = (-1)^popcount(i & j), read-only, cached."""
    H = np.ones((1, 1), dtype=dtype)
    while H.shape[0] < n:
        H = np.block([[H, H], [H, -H]])  # H_2m = [[H_m, H_m], [H_m, -H_m]]
    H.flags.writeable = False
    return H


def _factor_sizes(n):
    """Split n = 2^k into Kronecker factors of at most 16 each, as equal as possible, largest last.

    H_n = H_f1 (x) H_f2 (x) ... (x) H_fm because, writing an index in mixed radix
    i = (i_1, ..., i_m), popcount(i & j) is the sum over the digits of popcount(i_p & j_p).
    Each factor is one pass of small matmuls costing 2 f flops per element, so small factors
    mean few flops; too small and the passes become memory-bound numpy calls. When this was
    tuned (2^24 floats in 256 KB chunks, one core), factors of 8 to 16 beat two or three larger
    ones, and all of them beat one dense n x n matmul by far; chapter 03 and `smolgpt bench`
    time the transform on your machine.
    """
    k = n.bit_length() - 1
    m = -(-k // 4)  # number of factors, ceil(k / 4)
    return [1 << (k // m + (p >= m - k % m)) for p in range(m)] if k else []


# Every matmul below is cut into pieces of at most 512 x 16 x 16 = 2^17 multiply-adds, which
# OpenBLAS runs on one thread (it only splits products above 2^18). On a cache-sized chunk, threads
# cost more than they gain: when measured, one big call was slower even on an idle machine, and
# many times slower when another process kept the second core busy (the threads wait for each
# other).
_PIECE = 512


def _hadamard_rows(x, work):
    """(rows, n) -> (rows, n): H_n applied to every row of x; returns (result, spare buffer).

    x and work (same shape, C-contiguous) ping-pong: both are overwritten, and the result ends in
    one of them, the other is handed back as scratch. Each Kronecker factor H_f acts on one axis of
    the row viewed as an (f_1, ..., f_m) array: view the buffer as (before, f, after), `before`
    the product of the rows and the factors left of the axis, `after` of those right of it, and
    multiply by H_f on the middle axis. The factors act on different axes, so their order is free.
    """
    rows, n = x.shape
    if rows == 0:
        return x, work
    src, dst = x, work
    before = rows
    for f in _factor_sizes(n):
        after = n * rows // (before * f)
        H = _sylvester(f, x.dtype)
        if after == 1:
            # Last axis: (before, f) @ (f, f) (H is symmetric), as a stack of 512-row products
            # (NumPy hands each stack item to BLAS separately) plus the leftover rows.
            s2, d2 = src.reshape(before, f), dst.reshape(before, f)
            bulk = before - before % _PIECE
            np.matmul(s2[:bulk].reshape(-1, _PIECE, f), H, out=d2[:bulk].reshape(-1, _PIECE, f))
            np.matmul(s2[bulk:], H, out=d2[bulk:])
        else:
            # Middle axis: a stack of `before` products (f, f) @ (f, after), `after` cut in slabs.
            s3, d3 = src.reshape(before, f, after), dst.reshape(before, f, after)
            for c in range(0, after, _PIECE):
                np.matmul(H, s3[:, :, c:c + _PIECE], out=d3[:, :, c:c + _PIECE])
        src, dst = dst, src
        before *= f
    return src, dst


def fwht(x, axis=-1):
    """(..., n, ...) -> (..., n, ...): unnormalised Walsh-Hadamard transform along `axis`.

    H_n is the Sylvester-ordered +-1 matrix (as scipy.linalg.hadamard), n a power of 2; the result
    is H_n x, a new array. H_n is symmetric with H_n H_n = n I, so fwht(fwht(x)) == n * x.
    float32 and float64 keep their dtype; other inputs are computed in float64.
    """
    x = np.asarray(x)
    dtype = x.dtype if x.dtype in (np.float32, np.float64) else np.float64
    if x.ndim == 0:
        raise ValueError("fwht needs an array with at least one axis.")
    n = x.shape[axis]
    if n < 1 or n & (n - 1):
        raise ValueError(f"fwht needs a power-of-2 length along axis {axis}, got {n}; "
                         f"zero-pad to {1 << max(n - 1, 0).bit_length()} first.")
    moved = np.moveaxis(x, axis, -1)                       # (..., n) view
    rows = np.array(moved, dtype=dtype, order="C").reshape(-1, n)  # own copy, (rows, n)
    out, _ = _hadamard_rows(rows, np.empty_like(rows))
    return np.moveaxis(out.reshape(moved.shape), -1, axis)


# ---------------------------------------------------------------------------------------------
# Dense Gaussian, regenerated from the seed
# ---------------------------------------------------------------------------------------------

class DenseGaussian(_Projection):
    """P (D, d) with iid N(0, 1) entries, regenerated row chunk by row chunk on every call.

    P is the stream of float32 normals of `np.random.default_rng(seed)`, read row by row. Reading
    the stream in chunks gives exactly the numbers one big draw would, so `chunk_rows` changes
    memory (chunk_rows * d floats) and speed, never the matrix. Each product regenerates all D * d
    numbers: this is the O(D d) cost that motivates Fastfood (chapter 02 prints the time per
    number on your machine).
    """

    def __init__(self, D, d, seed, chunk_rows=None):
        self.D, self.d = _check_sizes(D, d)
        self.seed = operator.index(seed)
        # Default: about 2^20 numbers (4 MB of float32) per chunk, whatever d is.
        if chunk_rows is None:
            chunk_rows = max(1, 2**20 // self.d)
        self.chunk_rows = operator.index(chunk_rows)
        if self.chunk_rows < 1:
            raise ValueError(f"chunk_rows must be >= 1, got {self.chunk_rows}.")
        self._frozen = True

    def _row_chunks(self, dtype):
        """Yield (r0, r1, P[r0:r1] as `dtype`), regenerating the rows from the seed in order."""
        rng = np.random.default_rng(self.seed)
        buf = np.empty((min(self.chunk_rows, self.D), self.d), dtype=np.float32)
        for r0 in range(0, self.D, self.chunk_rows):
            r1 = min(r0 + self.chunk_rows, self.D)
            rows = buf[: r1 - r0]
            rng.standard_normal(out=rows, dtype=np.float32)
            yield r0, r1, rows if dtype == np.float32 else rows.astype(dtype)

    def matvec(self, coef, *, out=None):
        """(d,) -> (D,): P coef, one chunk of rows at a time (written into `out` if given)."""
        coef = self._coef(coef)
        out = self._out(out, coef.dtype)
        for r0, r1, rows in self._row_chunks(coef.dtype):
            # einsum rather than matmul: BLAS would spread this small product over threads,
            # which is many times slower when another process keeps the second core busy.
            np.einsum("rd,d->r", rows, coef, out=out[r0:r1])       # (r, d) @ (d,) -> (r,)
        return out

    def rmatvec(self, g):
        """(D,) -> (d,): P^T g = sum over chunks of P[r0:r1]^T g[r0:r1], same chunks regenerated."""
        g = self._g(g)
        acc = np.zeros(self.d, dtype=g.dtype)
        for r0, r1, rows in self._row_chunks(g.dtype):
            acc += np.einsum("r,rd->d", g[r0:r1], rows)             # (r,) @ (r, d) -> (d,)
        return acc

    def dense(self):
        """(D, d) float64: the whole matrix (small sizes only)."""
        rng = np.random.default_rng(self.seed)
        return rng.standard_normal((self.D, self.d), dtype=np.float32).astype(np.float64)


# ---------------------------------------------------------------------------------------------
# Fastfood
# ---------------------------------------------------------------------------------------------

class Fastfood(_Projection):
    """P (D, d) from stacked Fastfood blocks V_k = S_k H G_k Pi_k H B_k (Le, Sarlos, Smola 2013).

    Block size n = the smallest power of 2 >= d; coef is zero-padded to n, so only the first d
    columns of each (n, n) block are used. Blocks k = 0, 1, ... are stacked until D rows are
    covered and the last one is cropped. Per block, all independent and drawn from the seed:
      B_k   random +-1 signs (n,)                      H    Walsh-Hadamard, unnormalised (+-1)
      Pi_k  random permutation, (Pi u)_i = u[pi(i)]    G_k  N(0, 1) diagonal (n,)
      S_k   row scales s_i / (sqrt(n) ||G_k||), s_i ~ chi(n)

    Scaling. M = H G Pi H B has M M^T = H G Pi (H B B H) Pi^T G H = n H G^2 H, whose diagonal is
    n ||G||^2: every row of M has norm sqrt(n) ||G||. S rescales row i to norm s_i ~ chi(n), the
    norm of a row of n iid N(0, 1) numbers, so the mean squared entry is E[s^2] / n = 1. Each
    entry of M is, given B and Pi, a +-1 combination of the G's: exactly Gaussian. Hence the
    entries of P look like N(0, 1) (mean 0, variance 1, kurtosis close to 3).

    Columns. Before S, the Gram matrix of a block's columns is
    M^T M = B H Pi^T G (H H) G Pi H B = n (B H Pi^T) G^2 (Pi H B). Q = Pi H B / sqrt(n) is
    orthogonal, so this is n^2 Q^T G^2 Q, with eigenvalues n^2 G_l^2 (those of the product
    B H Pi^T G^2 Pi H B alone are n G_l^2). Every column has squared norm n ||G||^2, about n^2,
    so the matrix of cosines between columns has eigenvalues n G_l^2 / ||G||^2, about G_l^2:
    chi-square numbers with mean 1 and variance 2. For n independent Gaussian columns the
    eigenvalues of the cosine matrix have mean 1 and variance 1 (Marchenko-Pastur). The sum of
    the squared eigenvalues is the sum of the squared cosines, n of them on the diagonal equal to
    1, so the off-diagonal cosines carry about 2n here against n for Gaussian columns: a cosine
    within one block has variance about 2/n instead of 1/n. Stacking D/n independent blocks
    averages them down to std sqrt(2/D) instead of 1/sqrt(D): Fastfood's columns are sqrt(2)
    more correlated than independent Gaussian ones, while their norms are nearly constant (each
    exactly sqrt(n) ||G|| before S).

    Cost: two Hadamard transforms per block, O(D log n) = O(D log d); `smolgpt bench` times a
    product against copying D floats. Memory: B (int8), G, S (float32) and two int32 index
    tables, 17 bytes per row, plus the (D,) output. The random numbers are float32, so a float64
    product computes the same matrix with less rounding.

    `chunk_blocks` (default: 2^16 / n, at least 1) only sets how many blocks are transformed
    together; it never changes the matrix.
    """

    def __init__(self, D, d, seed, chunk_blocks=None):
        self.D, self.d = _check_sizes(D, d)
        self.seed = operator.index(seed)
        n = 1 << (self.d - 1).bit_length()      # smallest power of 2 >= d
        nb = -(-self.D // n)                     # number of blocks, ceil(D / n)
        # A chunk of 2^16 floats (256 KB in float32) keeps both work buffers in a 1 MB L2
        # cache, so the passes between the matmuls run at cache speed: faster, when measured at
        # D = 2^24, than transforming all blocks at once.
        cb = max(1, 2**16 // n) if chunk_blocks is None else operator.index(chunk_blocks)
        if cb < 1:
            raise ValueError(f"chunk_blocks must be >= 1, got {cb}.")
        self.n, self.blocks, self.chunk_blocks = n, nb, cb

        rng = np.random.default_rng(self.seed)
        B = 2 * rng.integers(0, 2, size=(nb, n), dtype=np.int8) - 1         # +-1, int8
        G = rng.standard_normal((nb, n), dtype=np.float32)
        s = np.sqrt(rng.chisquare(n, size=(nb, n)))                       # chi(n) row norms
        G_norm = np.sqrt(np.sum(np.square(G, dtype=np.float64), axis=1, keepdims=True))
        S = (s / (math.sqrt(n) * G_norm)).astype(np.float32).reshape(-1)[: self.D]
        perm = rng.permuted(np.tile(np.arange(n, dtype=np.int32), (nb, 1)), axis=1)
        perm = np.ascontiguousarray(perm)       # permuted() may hand back a Fortran-ordered array
        inv = np.empty_like(perm)
        np.put_along_axis(inv, perm, np.arange(n, dtype=np.int32)[None, :], axis=1)  # pi^-1

        # Gather indices stored as positions inside a chunk's (chunk_blocks * n) buffer:
        # block k sits at offset (k % chunk_blocks) * n there. Storing them ready to use saves
        # an index computation per call (measured faster at D = 2^24).
        offset = ((np.arange(nb, dtype=np.int32) % cb) * n)[:, None]      # (nb, 1)
        self._B, self._G, self._S = B, G, S
        self._gather = perm + offset            # (nb, n): Pi
        self._scatter = inv + offset            # (nb, n): Pi^T, applied as a gather of pi^-1
        for a in (self._B, self._G, self._S, self._gather, self._scatter):
            a.flags.writeable = False
        self._frozen = True

    def _chunks(self):
        """Yield (k0, k1, r0, r1): blocks k0:k1 of one chunk and the rows r0:r1 of P they cover."""
        for k0 in range(0, self.blocks, self.chunk_blocks):
            k1 = min(k0 + self.chunk_blocks, self.blocks)
            yield k0, k1, k0 * self.n, min(k1 * self.n, self.D)

    def matvec(self, coef, *, out=None):
        """(d,) -> (D,): P coef. Per block: v = B coef, v = H v, v = G (Pi v), v = H v, rows = S v.

        `out`, a preallocated (D,) array of coef's dtype, saves allocating (and page-faulting) D
        fresh floats on every call.
        """
        coef = self._coef(coef)
        n = self.n
        cp = np.zeros(n, dtype=coef.dtype)
        cp[: self.d] = coef                                         # (n,) coef zero-padded to n
        out = self._out(out, coef.dtype)
        a = np.empty((self.chunk_blocks, n), dtype=coef.dtype)      # two work buffers, reused
        b = np.empty_like(a)
        for k0, k1, r0, r1 in self._chunks():
            m = k1 - k0
            x, w = a[:m], b[:m]                                     # (m, n), one row per block
            np.multiply(self._B[k0:k1], cp, out=x)                  # B coef, each block its signs
            x, w = _hadamard_rows(x, w)                             # H B coef
            # Pi: w[k, i] = x[k, pi_k(i)]. mode="wrap" skips the defensive copy that the default
            # mode="raise" makes when `out=` is given (the indices are valid by construction).
            np.take(x.reshape(-1), self._gather[k0:k1].reshape(-1), out=w.reshape(-1), mode="wrap")
            x, w = w, x
            x *= self._G[k0:k1]                                     # G Pi H B coef
            x, w = _hadamard_rows(x, w)                             # H G Pi H B coef
            np.multiply(x.reshape(-1)[: r1 - r0], self._S[r0:r1], out=out[r0:r1])  # S (...)
        return out

    def rmatvec(self, g):
        """(D,) -> (d,): P^T g = sum_k B_k H Pi_k^T G_k H S_k g_k, the matvec read backwards."""
        g = self._g(g)
        n = self.n
        acc = np.zeros(n, dtype=g.dtype)
        a = np.empty((self.chunk_blocks, n), dtype=g.dtype)
        b = np.empty_like(a)
        for k0, k1, r0, r1 in self._chunks():
            m = k1 - k0
            x, w = a[:m], b[:m]
            xf = x.reshape(-1)
            np.multiply(g[r0:r1], self._S[r0:r1], out=xf[: r1 - r0])   # undo "rows = S v": S g
            xf[r1 - r0:] = 0                                            # rows past D: padding
            x, w = _hadamard_rows(x, w)                                 # H is symmetric: H^T = H
            x *= self._G[k0:k1]                                         # G is diagonal
            # Pi^T: w[k, j] = x[k, pi_k^-1(j)], a gather that undoes "w[k, i] = x[k, pi_k(i)]"
            # (in NumPy a gather is faster than the equivalent scatter w[pi] = x)
            np.take(x.reshape(-1), self._scatter[k0:k1].reshape(-1), out=w.reshape(-1), mode="wrap")
            x, w = w, x
            x, w = _hadamard_rows(x, w)                                 # H again
            x *= self._B[k0:k1]                                         # B_k ...
            acc += x.sum(axis=0)                                        # ... summed over blocks
        return acc[: self.d]                                            # undo the zero padding

    def dense(self):
        """(D, d) float64: the blocks S H G Pi H B built as explicit matrices (small sizes only)."""
        n, cb = self.n, self.chunk_blocks
        H = _sylvester(n, np.float64)
        blocks = []
        for k in range(self.blocks):
            perm = self._gather[k] - (k % cb) * n                  # pi_k
            PiHB = H[perm] * self._B[k]                  # (Pi H B)[i, j] = H[pi(i), j] b_j
            blocks.append((H @ (self._G[k].astype(np.float64)[:, None] * PiHB))[:, : self.d])
        return np.concatenate(blocks)[: self.D] * self._S.astype(np.float64)[:, None]


# ---------------------------------------------------------------------------------------------
# FFT Fastfood
# ---------------------------------------------------------------------------------------------

def _hartley(x):
    """(L,) -> (L,): unnormalised discrete Hartley transform, y_k = sum_t x_t cas(2 pi k t / L).

    cas(a) = cos(a) + sin(a). The matrix C[k, t] = cas(2 pi k t / L) is real, symmetric and
    C C = L I, so C / sqrt(L) is orthonormal and C is its own transpose. From the real FFT
    X_k = sum_t x_t exp(-2 pi i k t / L): y_k = Re X_k - Im X_k for k <= L/2, and for k > L/2,
    where X_k = conj(X_{L-k}), y_k = Re X_{L-k} + Im X_{L-k}. Any length L works.
    """
    L = x.shape[0]
    X = scipy.fft.rfft(x)                     # (L//2 + 1,) complex, same precision as x
    m = X.shape[0]
    y = np.empty(L, dtype=x.dtype)
    np.subtract(X.real, X.imag, out=y[:m])
    y[m:] = (X.real + X.imag)[1 : L - m + 1][::-1]
    return y


class FFTFastfood(_Projection):
    """P (D, d) = [Pi C B]: sign-flipped coef on frequencies 1..d, Hartley transform, permute.

    The blog post's simpler Fastfood, "flip signs, Fourier transform, permute", made real and
    exactly transposable:
      * C is the Hartley matrix C[t, j] = cas(2 pi j t / L) (see _hartley), a real transform with
        orthogonal columns of squared norm L. Taking the real part of a complex DFT instead would
        duplicate every column in pairs (frequencies j and L - j) and halve the norms.
      * coef goes to frequencies 1..d, never 0: column 0 of C is constant, and a coefficient on it
        would shift every weight by the same amount.
      * B flips the sign of each coefficient; Pi is one random permutation of the L outputs, of
        which the first D are kept.
    So column j of P is b_j cas(2 pi j t / L) at the permuted positions t = pi(i): its entries have
    mean 0 and mean square exactly 1 over the L outputs (unit variance, no further scaling), but
    they are values of a sinusoid, sqrt(2) sin(uniform angle): bounded by sqrt(2), kurtosis 1.5,
    not Gaussian. Columns share the same permutation, so they are not independent either.

    Length. One transform of length L >= D over the whole vector (rather than stacked blocks of
    size ~d): it is the post's construction read literally, needs no block bookkeeping, and its
    columns are orthogonal. L = D whenever D is a fast FFT size (then P^T P = D I exactly);
    otherwise L is the next 2,3,5-smooth size (at most a few percent larger, since a prime L
    would make the FFT many times slower) and the L - D dropped rows leave the columns orthogonal
    up to ~1/sqrt(D). L >= d + 1 always, so that frequencies 1..d exist.

    Cost: one real FFT of length L, O(D log D), whatever d is; `smolgpt bench` times it next to
    Fastfood. Memory: Pi's first D entries (int64, 8 bytes/row), plus the FFT's buffers.
    """

    def __init__(self, D, d, seed):
        self.D, self.d = _check_sizes(D, d)
        self.seed = operator.index(seed)
        self.L = scipy.fft.next_fast_len(max(self.D, self.d + 1), real=True)
        rng = np.random.default_rng(self.seed)
        self._B = 2 * rng.integers(0, 2, size=self.d, dtype=np.int8) - 1    # +-1, int8
        self._perm = rng.permutation(self.L)[: self.D]     # output i is transform entry perm[i]
        self._B.flags.writeable = False
        self._perm.flags.writeable = False
        self._frozen = True

    def matvec(self, coef, *, out=None):
        """(d,) -> (D,): P coef = (C y)[perm], y (L,) = B coef at frequencies 1..d, 0 elsewhere."""
        coef = self._coef(coef)
        out = self._out(out, coef.dtype)
        y = np.zeros(self.L, dtype=coef.dtype)
        np.multiply(self._B, coef, out=y[1 : self.d + 1])
        return np.take(_hartley(y), self._perm, out=out, mode="wrap")  # Pi: out[i] = (C y)[perm[i]]

    def rmatvec(self, g):
        """(D,) -> (d,): P^T g = B (C u)[1..d], u = g scattered back to the positions perm took."""
        g = self._g(g)
        u = np.zeros(self.L, dtype=g.dtype)
        u[self._perm] = g                       # Pi^T: undo the gather; dropped rows stay 0
        return _hartley(u)[1 : self.d + 1] * self._B   # C^T = C, keep frequencies 1..d, signs

    def dense(self):
        """(D, d) float64: the cosine-plus-sine entries written out (small sizes only)."""
        t = self._perm[:, None].astype(np.int64)
        j = np.arange(1, self.d + 1, dtype=np.int64)[None, :]
        angle = 2 * np.pi * ((t * j) % self.L) / self.L      # reduce t j mod L before scaling
        return (np.cos(angle) + np.sin(angle)) * self._B
