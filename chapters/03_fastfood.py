# %% [markdown]
"""
# Chapter 03 — Fastfood: a random basis that costs O(D log d) instead of O(D d)

Question: chapter 02's dense random basis must regenerate D x d Gaussian numbers every time it is
used. Can a structured matrix that only *looks* Gaussian (Le, Sarlos and Smola's Fastfood, or the
post's simpler FFT version) do the same job fast enough to train a GPT-2 in a subspace of
thousands of dimensions, and how much does d buy?

*The post* is the blog post "Training smol language models" (2025), which this book
reproduces at laptop scale; chapter 01 introduces it and the papers it builds on.

Assumes: chapters 01-02; C4 as in data/README.md.
Takes: 21 or more runs of 65,536 tokens (each d's coefficient-rate sweep, then the other seeds;
the two ends are shared with chapter 05): a quarter of an hour on a 2-core CPU once chapter 05
has made its runs (measurements: smolgpt/bench/NOTES.md; the closing lines print this run's time
and rate); quick mode
(SMOLGPT_QUICK=1): about a minute.
Writes: out/03_fastfood/{columns.png, scaling.png, val_curves.png, weight_changes.png}; the runs
are kept by the experiment runner under out/runs/ and shared with chapter 05.
"""

# %%
import dataclasses
import math
import time

import smolgpt  # noqa: F401  first: it tells BLAS how to wait, before NumPy loads BLAS
import numpy as np
import scipy.linalg
import scipy.stats

from smolgpt.experiments import (chapter_int, out_dir, print_takeaways, quick_config, quick_mode,
                                 save_figure)
from smolgpt.experiments.coefficients import weight_changes
from smolgpt.companions.ch03_projections import (best_time, columns_figure, print_scaling, scaling,
                                             scaling_figure, weight_changes_figure)
from smolgpt.experiments.runs import compare_configs, folder_of
from smolgpt.experiments.stats import fmt, paired_interval, verdict
from smolgpt.experiments.sweep import format_sweep, tune
from smolgpt.experiments.tuned import RACE, at_tuned_rates
from smolgpt.methods import MethodSpec
from smolgpt.model import count_params
from smolgpt.transforms import DenseGaussian, Fastfood, FFTFastfood, fwht

# %%
QUICK = quick_mode()                  # SMOLGPT_QUICK=1: the small version the tests run
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
# In NumPy each butterfly level is a few full passes over memory, and there are log2(n) levels.
# smolgpt's `fwht` uses a different identity: H_(a*b) = H_a (Kronecker) H_b, so
# H_1024 = H_8 x H_8 x H_16, and each factor is a batch of tiny dense matmuls over one axis of
# a block viewed as an (8, 8, 16) array: three passes. We time both on what Fastfood transforms,
# many blocks of n = 1024 at once.

# %%
n = 2 ** 16 if QUICK else 2 ** 22
x = rng.standard_normal((n // 1024, 1024)).astype(np.float32)      # (blocks, 1024)
copy = np.empty_like(x)
t_copy = best_time(lambda: np.copyto(copy, x), 5)
t_bfly = best_time(lambda: fwht_butterfly(x), 2)
t_fast = best_time(lambda: fwht(x), 3)
y_bfly, y_fast = fwht_butterfly(x), fwht(x)
print(f"2^{int(math.log2(n))} numbers in blocks of 1024: copy {t_copy * 1e3:.1f} ms, "
      f"butterfly {t_bfly * 1e3:.0f} ms ({t_bfly / t_copy:.0f} copies), Kronecker fwht "
      f"{t_fast * 1e3:.0f} ms ({t_fast / t_copy:.0f} copies); same result? max rel diff "
      f"{np.abs(y_bfly - y_fast).max() / np.abs(y_bfly).max():.1e}")

# %% [markdown]
# ## 2. Three random bases side by side
# * dense Gaussian: P[i, j] ~ N(0, 1), regenerated from a seed in chunks;
# * Fastfood: blocks V = S H G Pi H B of size n = 2^k >= d, stacked to cover D rows
#   (B random signs, Pi a permutation, G Gaussian, S rescales each row to a Gaussian row's norm);
# * FFT-Fastfood, the post's version: flip signs (B), Fourier-transform (a real Hartley transform
#   here, so the output is real and the transpose exact), permute (Pi).
# All three are scaled to unit-variance entries, so a column of each should look like a column of
# Gaussian noise. Do they? Two checks: the entries' *kurtosis*, the mean fourth power of the
# standardized entries (3 for a Gaussian; less when the values have no tails), and a *Q-Q plot*,
# the sorted entries against a Gaussian's quantiles (a straight line when they are Gaussian).
# And how close to orthogonal are the columns? For d independent Gaussian columns of length D,
# the cosine between two of them is about N(0, 1/D), so its mean absolute value is
# sqrt(2 / (pi D)).

# %%
D, d = (2 ** 14, 64) if QUICK else (2 ** 16, 256)
bases = {"dense Gaussian": DenseGaussian(D, d, seed=1), "Fastfood": Fastfood(D, d, seed=1),
         "FFT-Fastfood": FFTFastfood(D, d, seed=1)}
cos_ref = math.sqrt(2 / (math.pi * D))
print(f"D = {D:,}, d = {d}; independent Gaussian columns: mean |cos| = sqrt(2/(pi D)) = "
      f"{cos_ref:.4f}")
cols, mean_cos, kurt = {}, {}, {}
for name, P in bases.items():
    M = P.dense()                                                       # (D, d), small enough
    cos = (M.T @ M) / np.outer(np.linalg.norm(M, axis=0), np.linalg.norm(M, axis=0))  # (d, d)
    mean_cos[name] = np.abs(cos[~np.eye(d, dtype=bool)]).mean()
    kurt[name] = scipy.stats.kurtosis(M.ravel(), fisher=False)
    cols[name] = M[:, 3]
    print(f"{name:<15} entries: mean {M.mean():+.4f}, variance {M.var():.4f}, "
          f"kurtosis {kurt[name]:.2f} (Gaussian: 3); "
          f"mean |cos| between columns {mean_cos[name]:.4f}")
cos_ratio = mean_cos["Fastfood"] / mean_cos["dense Gaussian"]
print(f"mean |cos|, Fastfood / dense Gaussian: {cos_ratio:.2f} (sqrt(2) = {math.sqrt(2):.2f})")

save_figure(columns_figure(cols, D, d), OUT / "columns.png")

# %% [markdown]
# The entries of dense and Fastfood columns look Gaussian: bell-shaped histograms, straight Q-Q
# lines, kurtosis 3. Their columns are not alike, though: the dense basis matches the mean |cos|
# of independent Gaussian columns, while Fastfood's columns are somewhat more correlated, by a
# factor near sqrt(2) (printed above). Within one block the columns are built from the same n
# Gaussian numbers G, and that shared randomness shows (smolgpt/transforms.py works out why).
# They are still nearly orthogonal, which is what a basis needs; whether the extra correlation
# costs anything is a question for training.
#
# FFT-Fastfood's entries do not look Gaussian: each column is a sinusoid sampled at permuted
# points, so its entries pile up at +-sqrt(2) (an arcsine law, kurtosis 1.5) and its Q-Q plot is
# an S. Its columns are still exactly orthogonal and unit-variance, which is all a subspace
# method strictly needs; whether the shape matters is a question for training.
#
# ## 3. Time and memory as D and d grow
# The dense basis does D d work per product; Fastfood D log d. For memory we count the numbers
# an operator keeps between products (Fastfood's per-row signs, Gaussians, scales and
# permutations; nothing for the dense basis, which keeps only its seed) plus the peak allocated
# during one product (the output, work buffers, and the dense basis's chunk of regenerated rows),
# both traced with `tracemalloc`. Each (D, d) point is measured once, even where the two sweeps
# share it. Measured in this run:

# %%
Ds = [2 ** k for k in ((12, 14, 16) if QUICK else (14, 16, 18, 20))]
d_fix = 128 if QUICK else 256
d_list = [16, 64, 256] if QUICK else [16, 64, 256, 1024]
D_fix = 2 ** 14 if QUICK else 2 ** 18
kinds = {"dense": DenseGaussian, "Fastfood": Fastfood}
res = scaling(kinds, Ds, d_fix, d_list, D_fix)
speedups = print_scaling(res, Ds, d_fix, d_list, D_fix)     # (D, d) -> dense / Fastfood time
grow = {kind: res[kind]["d"][-1][0] / res[kind]["d"][0][0] for kind in kinds}
print(f"from d = {d_list[0]} to d = {d_list[-1]} at D = {D_fix:,} (d x{d_list[-1] // d_list[0]}): "
      f"dense time x{grow['dense']:.1f}, Fastfood time x{grow['Fastfood']:.1f}")
save_figure(scaling_figure(res, Ds, d_fix, d_list, D_fix), OUT / "scaling.png")

# %% [markdown]
# Both grow linearly in D, but only the dense basis grows linearly in d: Fastfood's cost grows
# like log d (compare the two growth factors printed after the table), so a subspace of
# thousands of dimensions costs little more than one of a few dozen. The dense basis is
# therefore not d times slower than Fastfood but, up to constant factors, about d / log d times:
# compare the last two columns of the table (small sizes are noisy, and at small D Fastfood's
# fixed per-call overheads weigh more). Memory is O(D) for both: Fastfood keeps a few numbers per
# row, and the dense basis keeps nothing but needs the output plus one chunk of regenerated
# rows, whose size is capped whatever D is; at large D that can make Fastfood the one that
# needs more memory.
#
# ## 4. Training GPT-2 in a Fastfood subspace
# The race's budget (chapter 05: 64 steps of 8 x 128 C4 tokens), d = 100, 1,000 and 10,000
# non-embedding trainable numbers (10 and 100 in quick mode) for all D non-embedding weights (D is
# printed below), against the two ends: embeddings only (no non-embedding trainables) and full
# training (all D). The embeddings are trained in every run, at their own tuned rate, and counted
# in none. Seed s gives every run the same batches, so differences are paired by seed.
#
# A subspace's coefficients need their own learning rate, and the right one may depend on d, so
# each d gets its own short sweep (seed 0, every value a cached run of the experiment runner);
# when the best rate sits on an edge of the grid, the grid is extended past it until the choice
# is interior.

# %%
SEEDS = tuple(range(chapter_int("seeds", 2 if QUICK else 3, minimum=2)))
if QUICK:
    base = quick_config(steps=8)
    ds_train = [10, 100]
    scoring = dict(final_windows=16)
else:
    base = RACE
    ds_train = [100, 1000, 10000]
    scoring = {}
ends = {name: dataclasses.replace(base, method=MethodSpec(name)) if QUICK else   # quick: defaults
        at_tuned_rates(base, MethodSpec(name)) for name in ("embeddings", "full")}
emb_lr = ends["embeddings"].lr
print(f"D = {count_params(base.gpt, non_embedding=True):,} non-embedding weights; "
      f"{base.steps} steps x {base.tokens_per_step:,} tokens = "
      f"{base.steps * base.tokens_per_step:,} tokens per run; seeds {list(SEEDS)}; "
      f"embeddings at lr {emb_lr:g}, full training at lr {ends['full'].lr:g}")

chosen = {}
for dn in ds_train:
    r = tune(dataclasses.replace(base, method=MethodSpec("fastfood", d=dn), lr=emb_lr),
             "coef_lr", [0.1, 0.3, 1.0], seeds=(0,), extend=1 if QUICK else 2, verbose=False,
             **scoring)
    print(format_sweep(r))
    chosen[dn] = r["best"]

# %%
configs = [ends["embeddings"]] + [
    dataclasses.replace(base, method=MethodSpec("fastfood", d=dn), lr=emb_lr, coef_lr=chosen[dn])
    for dn in ds_train] + [ends["full"]]
results = compare_configs(configs, OUT, seeds=SEEDS, **scoring,
                          title=f"chapter 03: Fastfood subspaces vs the two ends, "
                                f"{len(SEEDS)} seeds (held-out C4)")
by_label = {r["label"]: r for r in results.values()}
emb, full = by_label["embeddings"], by_label["full"]
print(f"\n{'model':<16} {'non-emb. trainable':>18} {'coef lr':>8} {'final loss':>16} "
      f"{'share of the gap':>17}")
for r in results.values():
    share = (emb["mean"] - r["mean"]) / (emb["mean"] - full["mean"])
    rate = f"{r['config'].coef_lr:g}" if r["label"].startswith("fastfood") else "-"
    print(f"{r['label']:<16} {r['n_trainable']:>18,} {rate:>8} {fmt(r['mean'], r['se'], 4):>16} "
          f"{share:>17.0%}")

# %% [markdown]
# A share above 100% means a subspace ended below full training's mean. That is possible here
# because of what `tiny` is: 89% of its weights are embeddings, which every racer trains, and at
# this short budget most of what training the body adds is its overall scale. Turning every
# random weight up as a whole is one direction in parameter space, and a subspace of any d
# contains a piece of it (chapter 07 finds this volume knob behind five numbers, chapter 08
# behind a single one). Full training, which must also decay and fit every weight on its own,
# gets no such head start in so few steps. Chapter 09 shows the lead does not carry over to a
# model whose body must learn.
#
# Is the loss still flat in d? Each step up in d (and each d against embeddings only) as a
# paired difference over the seeds, with its 95% interval: a difference is claimed only where
# the interval excludes 0.

# %%
ff = [by_label[f"fastfood d={dn}"] for dn in ds_train]
pairs = [(emb, f) for f in ff] + list(zip(ff, ff[1:]))
steps_up = {}
for a, b in pairs:
    iv = paired_interval(b["final"], a["final"])          # a - b: > 0 when b is lower (better)
    steps_up[a["label"], b["label"]] = iv, verdict(iv)
    word = {"<": "lower", ">": "higher", "~": "not resolved"}[verdict(iv)]
    print(f"  {b['label']:<16} vs {a['label']:<16} {a['label']} - {b['label']} = "
          f"{iv['diff']:+.4f}, 95% interval [{iv['lo']:+.4f}, {iv['hi']:+.4f}]: "
          f"{b['label']} {word}")

# %% [markdown]
# ## 5. What a small subspace changes, against full training
# How far did each run move the transformer's weights? For every kind of non-embedding tensor,
# the root-mean-square change per entry from where the run started (its random init) to where it
# ended, averaged over the seeds. GPT-2 initialises the weight matrices with a standard deviation
# of 0.02 (smaller for the residual projections) and the LayerNorm gains at 1, which sets the
# scale of a change that matters.

# %%
changes = {}
for r in results.values():
    if r["label"] == "embeddings":
        continue                                          # moves no non-embedding weight
    per_seed = [weight_changes(folder_of(run) / "checkpoint.npz") for run in r["runs"]]
    changes[r["label"]] = {k: float(np.mean([c[k] for c in per_seed])) for k in per_seed[0]}
kinds_order = ["attention in", "attention out", "MLP in", "MLP out", "linear biases",
               "LayerNorm", "all"]
print(f"{'rms change per entry':<22}" + "".join(f"{k:>14}" for k in kinds_order))
for label, c in changes.items():
    print(f"{label:<22}" + "".join(f"{c[k]:>14.2e}" for k in kinds_order))
ratio = {label: c["all"] / changes["full"]["all"] for label, c in changes.items()
         if label != "full"}
print("rms change of all non-embedding weights against full training's: "
      + ", ".join(f"{k} {v:.2g}x" for k, v in ratio.items()))

save_figure(weight_changes_figure(changes, kinds_order, len(SEEDS)), OUT / "weight_changes.png")

# %% [markdown]
# The subspace's pattern follows from its formula, theta = theta_0 + sigma * (P a) / sqrt(d)
# (chapter 02): every entry moves by its tensor's init scale sigma times one entry of a random
# combination of d random directions, so the rms change is about sigma |a| / sqrt(d) in every
# kind of tensor alike (the residual projections, "out", have the smaller sigma and move
# proportionally less). The coefficients choose how far to go along each random direction, never
# which tensor moves: a LayerNorm gain, which starts at 1, moves by about as much as one entry of
# a weight matrix whose entries are 0.02, so relative to their size the gains hardly move. And a
# random d-dimensional subspace sees, in expectation, only d / D of the gradient's squared norm
# at any point. Full training moves each entry where its own gradient sends it.

# %% [markdown]
# ## What this chapter showed
# Fastfood replaces a dense random basis by a product of cheap structured matrices (random signs,
# a Walsh-Hadamard transform, a permutation, Gaussian scales), so a subspace of thousands of
# directions costs little more than one of a few dozen: its cost grows like log d where the dense
# basis's grows like d. The price is in the columns: Fastfood's entries look Gaussian but its
# columns are not independent, and the post's FFT variant is exactly orthogonal but sinusoidal.
#
# On GPT-2 at the race's budget, each d at a coefficient rate of its own, the loss is flat in d:
# every d from a hundred to ten thousand ends about level with full training, far below
# embeddings only, and no tenfold step in d buys a lower loss the seeds resolve (the step to ten
# thousand is slightly worse). On `tiny` at this budget a subspace of Fastfood directions is as
# good as training the body, for the reason given in section 4. Section 5 showed what a
# subspace's few numbers do to the weights: every kind of tensor moves by the same share of its
# init scale, several times as far as full training moves it, because the formula fixes which
# tensors move and the coefficients only say how far along each random direction. Full training
# instead moves each weight where its own gradient sends it. The measured sizes:

# %%
best = min(ff, key=lambda s: s["mean"])
D_model = count_params(base.gpt, non_embedding=True)
flat = all(steps_up[a["label"], b["label"]][1] != "<" for a, b in zip(ff, ff[1:]))
tenfold = "; ".join(
    f"{a['label']} - {b['label']} = {iv['diff']:+.3f} [{iv['lo']:+.3f}, {iv['hi']:+.3f}]"
    for a, b in zip(ff, ff[1:]) for iv in [steps_up[a["label"], b["label"]][0]])
gap_share = (emb["mean"] - best["mean"]) / (emb["mean"] - full["mean"])

# %%
takeaways = [
    f"Fastfood does the dense basis's job, {min(speedups.values()):.0f}x to "
    f"{max(speedups.values()):.0f}x faster per product in this run's sweep, and d buys "
    f"{'nothing the seeds resolve' if flat else 'a resolved gain'}: the best Fastfood model "
    f"('{best['label']}', {best['n_trainable']:,} trainable numbers, "
    f"{best['n_trainable'] / D_model:.1%} of D = {D_model:,}) reaches "
    f"{fmt(best['mean'], best['se'])}: {gap_share:.0%} of full training's gain over embeddings "
    f"only ({fmt(emb['mean'], emb['se'])} -> {fmt(full['mean'], full['se'])}, "
    f"{len(SEEDS)} seeds).",
    f"{'Still flat' if flat else 'Not flat'} in d (tenfold steps, paired 95% intervals; "
    f"positive: the larger d ends lower): {tenfold}.",
    f"Walsh-Hadamard transform: the Kronecker form ran at {t_fast / t_copy:.0f} copies' time, "
    f"the butterfly at {t_bfly / t_copy:.0f}.",
    f"Columns: kurtosis {kurt['Fastfood']:.2f} for Fastfood (3 is Gaussian), "
    f"{kurt['FFT-Fastfood']:.2f} for FFT-Fastfood; Fastfood's mean |cos| between columns is "
    f"{cos_ratio:.2f} times the dense basis's.",
    "Weights moved (rms change per entry), as a multiple of full training's: "
    + ", ".join(f"{k} {v:.2g}x" for k, v in ratio.items()) + ".",
]
print_takeaways(takeaways, START)

# %% [markdown]
# ## Exercises
# Solutions: `chapters/solutions/03_*.py` (each runs in seconds; a test runs them).
#
# 1. **Check a transpose.** Training needs P^T g as much as P a. For `Fastfood(1000, 37, seed=3)`
#    (d not a power of 2, D not a multiple of the block), check the adjoint identity
#    <P z, g> = <z, P^T g> with random z and g, then build P one column at a time (P e_j) and
#    compare it with `dense()` and its transpose with `rmatvec`. How large may the differences be?
# 2. **Predict a kurtosis.** Section 2 prints kurtosis 1.5 for FFT-Fastfood's columns and about 3
#    for the others. Before computing anything: what is the kurtosis of cos(theta), theta uniform?
#    Why does permuting a column's entries not change it? Check on one column of `FFTFastfood`.
