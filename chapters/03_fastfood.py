# %% [markdown]
"""
# Chapter 03 — Fastfood: a random basis that costs O(D log d) instead of O(D d)

Question: chapter 02's dense random basis must regenerate D x d Gaussian numbers every time it is
used. Can a structured matrix that only *looks* Gaussian (Le, Sarlos and Smola's Fastfood, or the
post's simpler FFT version) do the same job fast enough to train a GPT-2 in a subspace of
thousands of dimensions, and how much does d buy?

Assumes: chapters 01-02; C4 as in data/README.md.
Takes: about 7 minutes on a 2-core CPU (quick mode, SMOLGPT_QUICK=1: under a minute).
Writes: out/03_fastfood/{columns.png, scaling.png, val_curves.png} and run logs.
"""

# %%
import math
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import scipy.linalg
import scipy.stats

try:
    import smolgpt  # noqa: F401
except ImportError:                        # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from smolgpt.experiments import compare, quick_config  # noqa: E402
from smolgpt.methods import MethodSpec  # noqa: E402
from smolgpt.model import GPTConfig, count_params  # noqa: E402
from smolgpt.runtime import out_dir, quick_mode  # noqa: E402
from smolgpt.train import TrainConfig  # noqa: E402
from smolgpt.transforms import DenseGaussian, Fastfood, FFTFastfood, fwht  # noqa: E402

QUICK = quick_mode()
OUT = out_dir("03_fastfood")
START = time.time()
rng = np.random.default_rng(0)

# %% [markdown]
# ## 1. The Walsh–Hadamard matrix, built up
# H_1 = [1] and H_2n = [[H_n, H_n], [H_n, -H_n]]: a matrix of +-1 whose rows are mutually
# orthogonal, so H_n H_n = n I. Multiplying by it needs no stored matrix and no multiplications.

# %%
H = np.ones((1, 1))
for _ in range(2):
    H = np.block([[H, H], [H, -H]])
print("H_4 =\n", H.astype(int))
print(f"H_4 @ H_4 == 4 I ? max error {np.abs(H @ H - 4 * np.eye(4)).max():.0e}")


# %% [markdown]
# The fast transform applies H_n in n log2(n) additions. The textbook version is a "butterfly":
# at each of the log2(n) levels, pair up entries h apart and replace (a, b) by (a + b, a - b).

# %%
def fwht_butterfly(x):
    """(..., n) -> H_n applied along the last axis, by log2(n) butterfly levels (the textbook
    loop, for comparison)."""
    x = x.copy()
    n, h = x.shape[-1], 1
    while h < n:
        y = x.reshape(-1, n // (2 * h), 2, h)     # (rows, n / 2h, 2, h): pairs h apart
        a, b = y[:, :, 0].copy(), y[:, :, 1].copy()
        y[:, :, 0], y[:, :, 1] = a + b, a - b
        h *= 2
    return x


x = rng.standard_normal(16)
print(f"butterfly vs scipy.linalg.hadamard(16) @ x: max error "
      f"{np.abs(fwht_butterfly(x) - scipy.linalg.hadamard(16) @ x).max():.1e}")

# %% [markdown]
# In NumPy each butterfly level is a few full passes over memory, ~50 copies' worth in all at
# 2^24 numbers. smolgpt's `fwht` uses a different identity: H_(a*b) = H_a (Kronecker) H_b, so
# H_1024 = H_8 x H_8 x H_16, and each factor is a batch of tiny dense matmuls over one axis of
# a block viewed as an (8, 8, 16) array: three passes. We time both on what Fastfood transforms,
# many blocks of n = 1024 at once.

# %%
def best_time(fn, repeats=3):
    """Fastest of a few wall-clock timings of fn(), in seconds."""
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


n = 2 ** 16 if QUICK else 2 ** 22
x = rng.standard_normal((n // 1024, 1024)).astype(np.float32)      # (blocks, 1024)
copy = np.empty_like(x)
t_copy = best_time(lambda: np.copyto(copy, x), 5)
t_bfly = best_time(lambda: fwht_butterfly(x), 2)
t_fast = best_time(lambda: fwht(x), 3)
y_bfly, y_fast = fwht_butterfly(x), fwht(x)
print(f"2^{int(math.log2(n))} numbers in blocks of 1024: copy {t_copy * 1e3:.1f} ms, butterfly {t_bfly * 1e3:.0f} ms "
      f"({t_bfly / t_copy:.0f} copies), Kronecker fwht {t_fast * 1e3:.0f} ms "
      f"({t_fast / t_copy:.0f} copies); same result? max rel diff "
      f"{np.abs(y_bfly - y_fast).max() / np.abs(y_bfly).max():.1e}")

# %% [markdown]
# ## 2. Three random bases side by side
# * dense Gaussian: P[i, j] ~ N(0, 1), regenerated from a seed in chunks;
# * Fastfood: blocks V = S H G Pi H B of size n = 2^k >= d, stacked to cover D rows
#   (B random signs, Pi a permutation, G Gaussian, S rescales each row to a Gaussian row's norm);
# * FFT-Fastfood, the post's version: flip signs (B), Fourier-transform (a real Hartley transform
#   here, so the output is real and the transpose exact), permute (Pi).
# All three are scaled to unit-variance entries, so a column of each should look like a column of
# Gaussian noise. Do they?

# %%
D, d = (2 ** 14, 64) if QUICK else (2 ** 16, 256)
bases = {"dense Gaussian": DenseGaussian(D, d, seed=1), "Fastfood": Fastfood(D, d, seed=1),
         "FFT-Fastfood": FFTFastfood(D, d, seed=1)}
cols = {}
for name, P in bases.items():
    M = P.dense()                                                       # (D, d), small enough
    cos = (M.T @ M) / np.outer(np.linalg.norm(M, axis=0), np.linalg.norm(M, axis=0))
    off = np.abs(cos[~np.eye(d, dtype=bool)])
    cols[name] = M[:, 3]
    print(f"{name:<15} entries: mean {M.mean():+.4f}, variance {M.var():.4f}, "
          f"kurtosis {scipy.stats.kurtosis(M.ravel(), fisher=False):.2f} (Gaussian: 3); "
          f"column cosines: mean |cos| {off.mean():.4f} (1/sqrt(D) = {1 / math.sqrt(D):.4f})")

fig, axes = plt.subplots(2, 3, figsize=(13, 7))
for k, (name, c) in enumerate(cols.items()):
    ax = axes[0, k]
    ax.hist(c, bins=80, density=True, alpha=0.7)
    t = np.linspace(-4, 4, 200)
    ax.plot(t, scipy.stats.norm.pdf(t), "k--", lw=1, label="N(0, 1)")
    ax.set_title(f"{name}: one column's entries")
    ax.legend()
    ax = axes[1, k]
    scipy.stats.probplot(c, dist="norm", plot=ax)
    ax.set_title(f"{name}: Q-Q plot against N(0, 1)")
fig.tight_layout()
fig.savefig(OUT / "columns.png", dpi=100)
plt.close(fig)
print(f"figure: {OUT / 'columns.png'}")

# %% [markdown]
# Dense and Fastfood columns are indistinguishable from Gaussian noise: bell-shaped histograms,
# straight Q-Q lines, kurtosis 3. FFT-Fastfood's are not: each column is a sinusoid sampled at
# permuted points, so its entries pile up at +-sqrt(2) (an arcsine law, kurtosis 1.5) and its
# Q-Q plot is an S. Its columns are still exactly orthogonal and unit-variance, which is all a
# subspace method strictly needs; whether the shape matters is a question for training.
#
# ## 3. Time and memory as D and d grow
# The dense basis does D d work per product; Fastfood D log d. Measured in this run:

# %%
def measure(P, repeats=2):
    """(best seconds, peak traced bytes) of one product P z."""
    z = np.ones(P.d, dtype=np.float32)
    best = best_time(lambda: P.matvec(z), repeats)
    tracemalloc.start()
    P.matvec(z)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return best, peak


Ds = [2 ** k for k in ((12, 14, 16) if QUICK else (14, 16, 18, 20))]
d_fix = 128 if QUICK else 256
d_list = [16, 64, 256] if QUICK else [16, 64, 256, 1024]
D_fix = 2 ** 14 if QUICK else 2 ** 18
res = {"dense": {"D": [], "d": []}, "fastfood": {"D": [], "d": []}}
for kind, cls in (("dense", DenseGaussian), ("fastfood", Fastfood)):
    for Dn in Ds:
        res[kind]["D"].append(measure(cls(Dn, d_fix, seed=0)))
    for dn in d_list:
        res[kind]["d"].append(measure(cls(D_fix, dn, seed=0)))
for Dn, a, b in zip(Ds, res["dense"]["D"], res["fastfood"]["D"]):
    print(f"D = {Dn:>9,}, d = {d_fix}: dense {a[0] * 1e3:8.1f} ms, peak {a[1] / 1e6:6.1f} MB | "
          f"Fastfood {b[0] * 1e3:7.2f} ms, peak {b[1] / 1e6:5.1f} MB | {a[0] / b[0]:5.0f}x faster")
for dn, a, b in zip(d_list, res["dense"]["d"], res["fastfood"]["d"]):
    print(f"D = {D_fix:>9,}, d = {dn:>4}: dense {a[0] * 1e3:8.1f} ms | Fastfood {b[0] * 1e3:7.2f} ms "
          f"| {a[0] / b[0]:5.0f}x faster")

fig, axes = plt.subplots(1, 2, figsize=(11, 4))
for kind, style in (("dense", "o-"), ("fastfood", "s-")):
    axes[0].loglog(Ds, [t for t, _ in res[kind]["D"]], style, label=kind)
    axes[1].loglog(d_list, [t for t, _ in res[kind]["d"]], style, label=kind)
axes[0].set(xlabel="D (parameters)", ylabel="seconds per product P z", title=f"d = {d_fix}")
axes[1].set(xlabel="d (subspace dimension)", ylabel="seconds per product P z",
            title=f"D = {D_fix:,}")
for ax in axes:
    ax.legend()
    ax.grid(alpha=0.3, which="both")
fig.tight_layout()
fig.savefig(OUT / "scaling.png", dpi=100)
plt.close(fig)
print(f"figure: {OUT / 'scaling.png'}")

# %% [markdown]
# Both grow linearly in D, but only the dense basis grows linearly in d: Fastfood's cost barely
# moves from d = 16 to d = 1024 (log d), so a thousand-dimensional subspace is nearly as cheap as
# a sixteen-dimensional one. Memory stays O(D) for both (the dense one only because it is
# regenerated chunk by chunk).
#
# ## 4. Training GPT-2 in a Fastfood subspace
# The same C4 windows for every run. d = 100, 1,000 and 10,000 trainable numbers for all 793,344
# non-embedding weights, against the two ends: embeddings only (0) and full training (all).

# %%
tiny = GPTConfig.preset("tiny")
if QUICK:
    base = quick_config(steps=8)
    model = base.model
    ds_train = [10, 100]
else:
    base = TrainConfig(model=tiny, steps=80, batch_size=16, warmup=8, eval_every=20,
                       eval_windows=48, sample_tokens=0)
    ds_train = [100, 1000, 10000]
specs = ([MethodSpec("embeddings")] + [MethodSpec("fastfood", d=k) for k in ds_train]
         + [MethodSpec("full")])
print(f"D = {count_params(base.model, non_embedding=True):,} non-embedding weights")
results = compare(specs, base, OUT,
                  title="chapter 03: Fastfood subspaces vs the two ends (held-out C4)")

# %%
emb, full = results["embeddings"]["val_loss"], results["full"]["val_loss"]
print(f"{'model':<22} {'trainable':>10} {'val loss':>9} {'share of the full-vs-embeddings gap':>37}")
for s in results.values():
    share = (emb - s["val_loss"]) / (emb - full) if emb != full else float("nan")
    print(f"{s['label']:<22} {s['n_trainable']:>10,} {s['val_loss']:>9.3f} {share:>37.0%}")

# %% [markdown]
# ## Takeaways

# %%
ff = [s for s in results.values() if s["label"].startswith("fastfood")]
best = min(ff, key=lambda s: s["val_loss"])
print(f"""Takeaways (run took {time.time() - START:.0f} s):
  - The Walsh-Hadamard transform as a Kronecker product of small matmuls ran at
    {t_fast / t_copy:.0f} copies' time here, against {t_bfly / t_copy:.0f} for the butterfly.
  - Fastfood columns pass for Gaussian noise (kurtosis 3); the post's FFT version gives exactly
    orthogonal but sinusoidal columns (kurtosis 1.5), not Gaussian-looking ones.
  - Fastfood's cost is nearly flat in d, so d in the thousands is affordable; the dense basis
    costs d times more per product.
  - Trained on {base.steps * base.tokens_per_step:,} tokens, the best Fastfood model
    ('{best['label']}') reaches {best['val_loss']:.3f}, against {emb:.3f} for embeddings only
    and {full:.3f} for full training: it closes
    {(emb - best['val_loss']) / (emb - full):.0%} of the gap with
    {best['n_trainable'] / count_params(base.model, non_embedding=True):.1%} of the trainable
    numbers.""")
