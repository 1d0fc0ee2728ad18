"""Tests for smolgpt.transforms: the fast Walsh-Hadamard transform and the projections P (D, d).

Every operator is checked against its explicit matrix, its transpose by <P z, g> == <z, P^T g>,
and its statistics against what a dense N(0, 1) matrix would give, with tolerances derived in
the comments (6 standard deviations of the statistic: a false alarm has probability ~1e-9).
"""

import tracemalloc

import numpy as np
import pytest
import scipy.linalg

from smolgpt.transforms import DenseGaussian, Fastfood, FFTFastfood, fwht

OPERATORS = [DenseGaussian, Fastfood, FFTFastfood]

# (D, d) shapes covering the edge cases. Fastfood's block size n is the power of 2 >= d.
SIZES = [
    (1, 1),      # smallest possible
    (8, 8),      # d == D, one full block
    (13, 13),    # d == D, n = 16 > D: one cropped block
    (6, 5),      # D < n = 8
    (50, 7),     # d not a power of 2, D not a multiple of n = 8
    (37, 16),    # several blocks, the last one cropped
    (300, 33),   # n = 64, 5 blocks; FFTFastfood: L = 300 (a fast length)
    (1009, 10),  # D prime: FFTFastfood pads to L = 1024 and crops
]


def make(cls, D, d, seed=0):
    """An operator with small chunks, so the chunked loops run (several chunks, a partial last)."""
    if cls is Fastfood:
        return Fastfood(D, d, seed, chunk_blocks=2)
    if cls is DenseGaussian:
        return DenseGaussian(D, d, seed, chunk_rows=7)
    return FFTFastfood(D, d, seed)


def butterfly_fwht(x):
    """Reference H_n x along the last axis: the textbook O(n log n) butterfly (independent code)."""
    y = np.array(x, dtype=np.float64)
    n = y.shape[-1]
    h = 1
    while h < n:
        y = y.reshape(*y.shape[:-1], n // (2 * h), 2, h)
        top, bottom = y[..., 0, :].copy(), y[..., 1, :].copy()
        y[..., 0, :], y[..., 1, :] = top + bottom, top - bottom
        y = y.reshape(*y.shape[:-3], n)
        h *= 2
    return y


# ------------------------------------------------------------------------------------------------
# fwht
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("n", [1, 2, 4, 8, 16, 32, 64, 256, 1024, 2048])
def test_fwht_matches_scipy_hadamard(n):
    # n up to 2048 covers one, two and three Kronecker factors.
    x = np.random.default_rng(n).standard_normal((3, n))
    H = scipy.linalg.hadamard(n)
    np.testing.assert_allclose(fwht(x), x @ H.T, rtol=1e-12, atol=1e-12 * np.sqrt(n))


@pytest.mark.parametrize("n", [2**13, 2**17])
def test_fwht_large_n_matches_butterfly(n):
    # Four and five Kronecker factors; the dense Hadamard matrix would be too big here.
    x = np.random.default_rng(1).standard_normal((2, n))
    np.testing.assert_allclose(fwht(x), butterfly_fwht(x), rtol=1e-10, atol=1e-10 * np.sqrt(n))


@pytest.mark.parametrize("shape, axis", [((16,), 0), ((16, 3), 0), ((3, 16), -1), ((2, 32, 5), 1),
                                         ((2, 5, 8), -1), ((4, 3, 2), 0)])
def test_fwht_along_any_axis(shape, axis):
    x = np.random.default_rng(2).standard_normal(shape)
    H = scipy.linalg.hadamard(shape[axis])
    expected = np.moveaxis(np.tensordot(H, x, axes=([1], [axis])), 0, axis)
    np.testing.assert_allclose(fwht(x, axis=axis), expected, rtol=1e-12, atol=1e-12)


def test_fwht_dtype_copy_and_involution():
    x = np.random.default_rng(3).standard_normal((4, 64)).astype(np.float32)
    x_before = x.copy()
    y = fwht(x)
    assert y.dtype == np.float32
    np.testing.assert_array_equal(x, x_before)                      # input untouched
    np.testing.assert_allclose(fwht(y), 64 * x, rtol=1e-5, atol=1e-4)  # H H = n I
    assert fwht(np.arange(4)).dtype == np.float64                   # ints computed in float64
    np.testing.assert_array_equal(fwht(np.arange(4)), scipy.linalg.hadamard(4) @ np.arange(4))


@pytest.mark.parametrize("n", [3, 6, 100])
def test_fwht_rejects_non_power_of_two(n):
    with pytest.raises(ValueError, match="power-of-2"):
        fwht(np.ones(n))


# ------------------------------------------------------------------------------------------------
# Exactness: matvec against the dense matrix, rmatvec as its exact transpose
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("D, d", SIZES)
@pytest.mark.parametrize("cls", OPERATORS)
def test_matvec_matches_dense(cls, D, d):
    P = make(cls, D, d)
    M = P.dense()
    assert M.shape == (D, d) and M.dtype == np.float64
    z = np.random.default_rng(4).standard_normal(d)
    Pz = P.matvec(z)
    assert Pz.shape == (D,) and Pz.dtype == np.float64
    np.testing.assert_allclose(Pz, M @ z, rtol=1e-10, atol=1e-10 * np.linalg.norm(z))


@pytest.mark.parametrize("D, d", SIZES)
@pytest.mark.parametrize("cls", OPERATORS)
def test_rmatvec_is_exact_transpose(cls, D, d):
    P = make(cls, D, d)
    rng = np.random.default_rng(5)
    z, g = rng.standard_normal(d), rng.standard_normal(D)
    Ptg = P.rmatvec(g)
    assert Ptg.shape == (d,) and Ptg.dtype == np.float64
    # Adjoint identity <P z, g> == <z, P^T g>: equal up to float64 rounding of sums of D d terms.
    lhs, rhs = P.matvec(z) @ g, z @ Ptg
    scale = np.linalg.norm(P.matvec(z)) * np.linalg.norm(g)
    assert abs(lhs - rhs) <= 1e-12 * scale
    np.testing.assert_allclose(Ptg, P.dense().T @ g, rtol=1e-10, atol=1e-10 * np.linalg.norm(g))


@pytest.mark.parametrize("cls", OPERATORS)
def test_float32_in_float32_out(cls):
    D, d = 300, 33
    P = make(cls, D, d)
    rng = np.random.default_rng(6)
    z, g = rng.standard_normal(d), rng.standard_normal(D)
    Pz32, Ptg32 = P.matvec(z.astype(np.float32)), P.rmatvec(g.astype(np.float32))
    assert Pz32.dtype == np.float32 and Ptg32.dtype == np.float32
    # Same matrix in both dtypes (its random numbers are float32), so only rounding differs:
    # relative error ~ eps32 * log(n) per entry, far below 1e-4 of the vector norm.
    Pz, Ptg = P.matvec(z), P.rmatvec(g)
    assert np.linalg.norm(Pz32 - Pz) <= 1e-5 * np.linalg.norm(Pz)
    assert np.linalg.norm(Ptg32 - Ptg) <= 1e-5 * np.linalg.norm(Ptg)


@pytest.mark.parametrize("cls", OPERATORS)
def test_matvec_into_preallocated_out(cls):
    P = make(cls, 50, 7)
    z = np.random.default_rng(7).standard_normal(7).astype(np.float32)
    out = np.empty(50, dtype=np.float32)
    assert P.matvec(z, out=out) is out
    np.testing.assert_array_equal(out, P.matvec(z))
    with pytest.raises(ValueError, match="out must be"):
        P.matvec(z, out=np.empty(50, dtype=np.float64))


# ------------------------------------------------------------------------------------------------
# Reproducibility and input checks
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("cls", OPERATORS)
def test_reproducible_from_seed(cls):
    D, d = 100, 12
    M = cls(D, d, seed=11).dense()
    np.testing.assert_array_equal(M, cls(D, d, seed=11).dense())    # a fresh object, same matrix
    assert not np.allclose(M, cls(D, d, seed=12).dense())           # another seed, another matrix
    np.testing.assert_array_equal(M, make(cls, D, d, seed=11).dense())  # chunking does not matter
    z = np.random.default_rng(8).standard_normal(d)                 # chunked sums: same to rounding
    np.testing.assert_allclose(cls(D, d, seed=11).matvec(z), make(cls, D, d, seed=11).matvec(z),
                               rtol=1e-12, atol=1e-12 * np.linalg.norm(z))


@pytest.mark.parametrize("cls", OPERATORS)
def test_bad_sizes_raise(cls):
    with pytest.raises(ValueError, match="d .* must be >= 1"):
        cls(10, 0, seed=0)
    with pytest.raises(ValueError, match="D .* must be >= 1"):
        cls(0, 1, seed=0)
    with pytest.raises(ValueError, match="d=11 exceeds D=10"):       # never a silent crop
        cls(10, 11, seed=0)
    P = cls(10, 3, seed=0)
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        P.matvec(np.ones(4))
    with pytest.raises(ValueError, match=r"shape \(10,\)"):
        P.rmatvec(np.ones(3))


def test_operators_are_immutable():
    P = Fastfood(20, 4, seed=0)
    with pytest.raises(AttributeError):
        P.d = 5
    with pytest.raises(ValueError):
        P._G[0, 0] = 1.0                                             # read-only arrays


# ------------------------------------------------------------------------------------------------
# Statistics: does each P look like a dense N(0, 1) matrix?
# ------------------------------------------------------------------------------------------------

# D x d = 2^14 x 64: N = 2^20 entries. For iid N(0, 1) entries the sample mean has std 1/sqrt(N),
# the mean square std sqrt(2/N) (Var x^2 = 2), the sample kurtosis std sqrt(24/N); we allow 6 of
# those stds. (Checked over 60 seeds: Fastfood's and DenseGaussian's three statistics divided by
# these stds have spread 0.9-1.05, i.e. the iid formulas are right for them too.)
D_STAT, d_STAT = 2**14, 64
N_STAT = D_STAT * d_STAT


def moments(M):
    mean = M.mean()
    c = M - mean
    return mean, np.mean(M**2), np.mean(c**4) / np.mean(c**2) ** 2


def column_cosines(M):
    """Cosines of the angles between all pairs of distinct columns."""
    U = M / np.linalg.norm(M, axis=0)
    C = U.T @ U
    return C[np.triu_indices(M.shape[1], 1)]


@pytest.mark.parametrize("cls", [DenseGaussian, Fastfood])
def test_entries_look_standard_gaussian(cls):
    M = cls(D_STAT, d_STAT, seed=21).dense()
    mean, mean_square, kurtosis = moments(M)
    assert abs(mean) < 6 / np.sqrt(N_STAT)
    assert abs(mean_square - 1) < 6 * np.sqrt(2 / N_STAT)
    assert abs(kurtosis - 3) < 6 * np.sqrt(24 / N_STAT)              # 6 sigma = 0.03
    # Every column has squared norm ~ D: for iid entries ||c||^2 / D - 1 has std sqrt(2/D).
    col = np.sum(M**2, axis=0) / D_STAT - 1
    assert np.max(np.abs(col)) < 6 * np.sqrt(2 / D_STAT)


def test_fastfood_rows_have_gaussian_norms():
    # With d = n the whole block is used, and S makes row i's squared norm exactly s_i^2 ~
    # chi-square(n), as for a row of n iid N(0, 1): mean n, variance 2n. Over D rows the mean of
    # ||r||^2 / n has std sqrt(2 / (n D)); the sample variance of ||r||^2 has relative std
    # sqrt((kurtosis - 1) / D) with chi-square(n)'s kurtosis 3 + 12/n.
    n = d_STAT
    r2 = np.sum(Fastfood(D_STAT, n, seed=26).dense() ** 2, axis=1)
    assert abs(np.mean(r2) / n - 1) < 6 * np.sqrt(2 / (n * D_STAT))
    assert abs(np.var(r2) / (2 * n) - 1) < 6 * np.sqrt((2 + 12 / n) / D_STAT)


def test_dense_gaussian_columns_nearly_orthogonal():
    # Independent N(0, 1) columns of length D: cos has mean 0, std 1/sqrt(D). 2016 pairs, each
    # within 6 stds (the chance that any of them leaves is ~2016 * 2e-9).
    cos = column_cosines(DenseGaussian(D_STAT, d_STAT, seed=22).dense())
    assert np.max(np.abs(cos)) < 6 / np.sqrt(D_STAT)


def test_fastfood_columns_nearly_orthogonal():
    # Within one block the Gram matrix of the columns is (up to S) B H Pi^T G^2 Pi H B, so an
    # off-diagonal entry is sum_l +-(G_l^2 - 1) over n terms: variance 2n, where n independent
    # Gaussian rows give n (G_l^2 is chi-square, variance 2). Hence cos has std sqrt(2/D), sqrt(2)
    # wider than a dense Gaussian's; column norms, in exchange, are nearly constant.
    # (Measured over 20 seeds: std(cos) sqrt(D) = 1.40 +- 0.03.)
    cos = column_cosines(Fastfood(D_STAT, d_STAT, seed=23).dense())
    assert abs(np.mean(cos)) < 6 * np.sqrt(2 / D_STAT) / np.sqrt(cos.size)
    assert np.max(np.abs(cos)) < 6 * np.sqrt(2 / D_STAT)
    assert 1.25 < np.std(cos) * np.sqrt(D_STAT) < 1.55


def test_fft_fastfood_columns_are_orthogonal_permuted_sinusoids():
    P = FFTFastfood(D_STAT, d_STAT, seed=24)
    assert P.L == D_STAT                                             # 2^14 is a fast FFT length
    M = P.dense()
    # Columns are b_j cas(2 pi j t / L) at permuted t, frequencies j = 1..d over the full period:
    # no constant (DC) column, each column sums to 0 and has mean square 1, and distinct
    # frequencies are exactly orthogonal (no duplicated pair j, L - j): P^T P = D I exactly.
    assert np.max(np.abs(M.sum(axis=0))) < 1e-9
    np.testing.assert_allclose(np.mean(M**2, axis=0), 1.0, rtol=1e-12)
    np.testing.assert_allclose(M.T @ M, D_STAT * np.eye(d_STAT), atol=1e-8)
    # ... but their entries are not Gaussian: values of sqrt(2) sin(uniform angle), bounded by
    # sqrt(2), with kurtosis E[sin^4] / E[sin^2]^2 = (3/8) / (1/4) = 1.5, against 3 for a
    # Gaussian (whose sample kurtosis here has std sqrt(24/N) = 0.005).
    mean, mean_square, kurtosis = moments(M)
    assert np.max(np.abs(M)) <= np.sqrt(2) + 1e-12
    assert abs(kurtosis - 1.5) < 1e-6
    assert abs(kurtosis - 3) > 100 * np.sqrt(24 / N_STAT)


def test_fft_fastfood_cropped_length_nearly_orthogonal():
    # D = 1009 is prime, so L = next fast length >= D (1024) and 15 rows are dropped: the Gram
    # matrix is L I minus those rows' products, a sum of 15 terms of size ~1, so cos ~ sqrt(15)/D.
    P = FFTFastfood(1009, 20, seed=25)
    assert P.L == 1024
    cos = column_cosines(P.dense())
    assert np.max(np.abs(cos)) < 6 * np.sqrt(P.L - P.D) / P.D


# ------------------------------------------------------------------------------------------------
# Memory: the dense Gaussian is never materialised
# ------------------------------------------------------------------------------------------------

def test_dense_gaussian_never_allocates_the_whole_matrix():
    # D * d = 1e9 float32 would be 4 GB. Each product regenerates all 1e9 numbers (~10 s on a
    # small CPU), but holds only the output (D floats, 4 MB) and one chunk (~2^20 floats, 4 MB).
    D, d = 1_000_000, 1000
    P = DenseGaussian(D, d, seed=0)
    z = np.ones(d, dtype=np.float32)
    g = np.ones(D, dtype=np.float32)
    tracemalloc.start()
    try:
        Pz = P.matvec(z)
        _, peak_matvec = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        Ptg = P.rmatvec(g)
        _, peak_rmatvec = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert Pz.shape == (D,) and Ptg.shape == (d,)
    # tracemalloc does see NumPy's buffers: the 4 MB output itself is counted.
    assert peak_matvec >= 4 * D
    assert peak_matvec < 100e6 and peak_rmatvec < 100e6, (peak_matvec, peak_rmatvec)
