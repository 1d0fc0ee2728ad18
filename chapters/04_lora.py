# %% [markdown]
"""
# Chapter 04 — LoRA vs a random subspace: low-rank functions or a low-dimensional parameter space

Question: the post's FAQ (the questions and answers at its end) says LoRA and the random-basis
method restrict a network in different ways. LoRA (`W = W_frozen + (alpha/r) A B`) optimizes
over *low-rank updates*: every change it makes to a layer's output passes through r directions
of the activations. The basis method optimizes over a *low-dimensional subspace of parameters*:
its update to a weight matrix is a random combination of full-rank matrices, so activations keep
their full width. With the same number of trainable numbers, which one can express what? And
where do VeRA and NOLA, two published methods with LoRA's low-rank functions and a subspace's
few numbers, sit between them?

*The post* is the blog post "Training smol language models" (2025), which this book
reproduces at laptop scale; chapter 01 introduces it and the papers it builds on.
A *paired 95% interval*: seed s gives two methods the same batches, so their difference is
taken seed by seed; the interval is the mean difference +- Student's t times its standard
error. A difference is resolved when the interval excludes 0.

Assumes: chapters 01-03; C4 as in data/README.md.
Takes: a few minutes on a 2-core CPU once chapter 05 has made its runs (measurements:
smolgpt/bench/NOTES.md; the closing lines print this run's time and rate); quick mode
(SMOLGPT_QUICK=1): under a minute.
Writes: out/04_lora/{toy_fit.png, toy_spectra.png, val_curves.png}; the runs are kept by the
experiment runner under out/runs/ (shared with chapter 05).
"""

# %%
import dataclasses
import math
import time

import smolgpt  # noqa: F401  first: it tells BLAS how to wait, before NumPy loads BLAS
import numpy as np

import matplotlib.pyplot as plt

from smolgpt.experiments import (chapter_int, out_dir, print_takeaways, quick_config, quick_mode,
                                 save_figure)
from smolgpt.experiments.runs import FINAL_WINDOWS, compare_configs
from smolgpt.experiments.stats import fmt, paired_interval, verdict
from smolgpt.experiments.tuned import RACE, at_tuned_rates
from smolgpt.methods import MethodSpec, build
from smolgpt.model import GPTConfig, non_embedding_table
from smolgpt.optim import AdamWConfig, adamw_init, adamw_step, lr_at
from smolgpt.transforms import DenseGaussian

QUICK = quick_mode()
OUT = out_dir("04_lora")
START = time.time()
rng = np.random.default_rng(0)

# %% [markdown]
# ## 1. One layer, small enough to see
# A frozen random layer W0 (m x n) must learn to compute a target layer W* = W0 + Delta on random
# inputs X (N x m), taken with X^T X = N I so that no input direction is favoured and the loss is
# just the squared size of the weight error. Loss: mean squared error of X W against X W*. Both
# methods get the same budget k = r (m + n) of trainable numbers:
#
# * LoRA, rank r:  W = W0 + A B,            A (m, r), B (r, n): k numbers;
# * random subspace: W = W0 + reshape(P a) / sqrt(k), P (m n, k) Gaussian, a (k,): k numbers.
#
# Two targets, chosen to favour one method each:
#
# * **low-rank Delta** (rank r): what LoRA is built for;
# * **diffuse Delta** (a multiple of a random orthogonal matrix: every direction changed equally,
#   rank n): nothing low-rank can capture more than r/n of it.

# %%
m = n = 32 if QUICK else 64
r = 2
k = r * (m + n)
N = 4 * m
X = np.linalg.qr(rng.standard_normal((N, m)))[0] * math.sqrt(N)   # X^T X = N I: a round input
W0 = rng.standard_normal((m, n)) / math.sqrt(m)
U = rng.standard_normal((m, r)) @ rng.standard_normal((r, n)) / math.sqrt(m * r)
Q, _ = np.linalg.qr(rng.standard_normal((m, n)))
targets = {"low-rank Delta": U, "diffuse Delta": Q}
for name, Delta in targets.items():                       # same total size for both targets
    targets[name] = Delta * (np.linalg.norm(W0) * 0.5 / np.linalg.norm(Delta))
print(f"layer {m} x {n} = {m * n:,} weights; budget k = r (m + n) = {k} trainable numbers "
      f"({k / (m * n):.1%} of the weights), r = {r}")
P = DenseGaussian(m * n, k, seed=1).dense()               # (m n, k): small enough to hold here

# %% [markdown]
# Both methods are trained the same way: AdamW on the squared error, with the gradient of a full
# weight matrix, G, pulled back to the trainable numbers by the chain rule. For LoRA, W = W0 + A B
# gives dA = G B^T and dB = A^T G; for the subspace, W = W0 + reshape(P a) / sqrt(k) gives
# da = P^T vec(G) / sqrt(k), the map's transpose.

# %%
def fit(method, Delta, steps, lr=0.02):
    """Fit W0 + update to X @ (W0 + Delta) with AdamW; returns (losses, final update (m, n)).

    Gradient of L = mean ||X W - Y||^2 over rows: G = dL/dW = 2 X^T (X W - Y) / N (m, n); then
    LoRA: dA = G B^T, dB = A^T G; subspace: da = P^T vec(G) / sqrt(k) (the map's transpose).
    """
    Y = X @ (W0 + Delta)
    if method == "lora":
        t = {"A": rng.standard_normal((m, r)) / math.sqrt(m), "B": np.zeros((r, n))}
        update = lambda t: t["A"] @ t["B"]
    else:
        t = {"a": np.zeros(k)}
        update = lambda t: (P @ t["a"]).reshape(m, n) / math.sqrt(k)
    state, losses = adamw_init(t), []
    for step in range(steps):
        E = X @ (W0 + update(t)) - Y                     # (N, n) residual
        losses.append(float(np.mean(np.sum(E * E, axis=1))))
        G = 2 * X.T @ E / N                              # (m, n) dL/dW
        g = ({"A": G @ t["B"].T, "B": t["A"].T @ G} if method == "lora"
             else {"a": P.T @ G.reshape(-1) / math.sqrt(k)})
        adamw_step(t, g, state, lr_at(step, lr, 20, steps, 0.01), AdamWConfig(weight_decay=0.0))
    return np.array(losses), update(t)

# %% [markdown]
# Each method fits each target. The loss is divided by the loss of doing nothing (no update at
# all), so 100% is no progress and 0% a perfect fit; next to it, what the argument below predicts.

# %%
steps = 600 if QUICK else 2000
fits = {}
for name, Delta in targets.items():
    start = float(np.mean(np.sum((X @ Delta) ** 2, axis=1)))      # loss of doing nothing
    for method in ("lora", "subspace"):
        losses, upd = fit(method, Delta, steps)
        fits[name, method] = (losses / start, upd)
        ideal = ((0.0 if name.startswith("low") else 1 - r / n) if method == "lora"
                 else 1 - k / (m * n))
        print(f"{name:<15} {method:<9}: error left {losses[-1] / start:6.1%} of the start "
              f"(expected about {ideal:.1%})")

# %% [markdown]
# What each can reach is predictable, and the runs reach it. The best rank-r update keeps the r
# largest singular values of Delta and loses the rest: all of a rank-r target, only r/n of the
# diffuse one (all its singular values are equal). A random k-dimensional subspace of the m n
# weights captures about k/(m n) of any fixed target, low-rank or not. So LoRA wins outright on
# the low-rank target, and on the diffuse one the subspace's share, k/(m n) = 2r/n for a square
# layer, is twice LoRA's r/n.

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 4))
for ax, name in zip(axes, targets):
    for method in ("lora", "subspace"):
        ax.semilogy(fits[name, method][0], label=f"{method} ({k} numbers)")
    ax.set(title=f"fitting a {name}", xlabel="Adam step", ylabel="error left (fraction)")
    ax.legend()
    ax.grid(alpha=0.3)
fig.tight_layout()
save_figure(fig, OUT / "toy_fit.png")

# %% [markdown]
# Now the difference itself: the singular values of the learned *update*. LoRA's has exactly r
# non-zero singular values whatever it fits: the layer's change of output is squeezed through r
# directions. The subspace's update is full rank: all n output directions move, each a little.

# %%
fig, ax = plt.subplots(figsize=(6, 4))
for method, style in (("lora", "o-"), ("subspace", "s-")):
    sv = np.linalg.svd(fits["diffuse Delta", method][1], compute_uv=False)
    ax.semilogy(np.maximum(sv, 1e-12), style, ms=3, label=method)
    big = int(np.sum(sv > 1e-6 * sv[0]))
    print(f"{method:<9} update fitted to the diffuse target: {big} of {n} singular values "
          f"above 1e-6 of the largest (numerical rank)")
ax.set(xlabel="index", ylabel="singular value of the learned update",
       title=f"rank of the learned update ({k} trainable numbers each)")
ax.legend()
fig.tight_layout()
save_figure(fig, OUT / "toy_spectra.png")

# %% [markdown]
# ## 2. Four parameterizations of one layer, side by side
# Two published methods sit between LoRA and a random subspace. Both keep LoRA's low-rank
# *function* (every change of a layer's output passes through r directions) but, like the
# subspace, train only a few numbers that steer frozen random matrices regenerated from a seed.
# For one weight matrix W (m, n) in (in, out) layout, with W0 frozen:
#
# | method | the layer (frozen: W0 and every other capital) | trained | count |
# |---|---|---|---|
# | LoRA | W0 + (alpha/r) A B | A (m, r), B (r, n) | r (m + n) |
# | VeRA | W0 + A diag(d) B diag(b), one A, B for all matrices | d (r), b (n) | r + n |
# | NOLA | W0 + (alpha/r) (A0 + sum alpha_i A_i) (sum beta_j B_j) | alpha (k), beta (l) | k + l |
# | subspace | W0 + sigma reshape(P a) / sqrt(d), P (m n, d) | a (d) | d |
#
# VeRA: Kopiczko, Blankevoort and Asano (ICLR 2024); NOLA: Koohpayegani et al. (ICLR 2024);
# the subspace is chapter 02's basis with one P per tensor.
#
# VeRA's count is tied to the output width n; NOLA's and the subspace's are free to be any
# number. Here is each one built by smolgpt on one matrix of `tiny`, its count read from the
# arrays the method trains, next to the formula.

# %%
tiny = GPTConfig.preset("tiny")
layer = "h.0.mlp.c_fc.weight"
rows, cols = dict(non_embedding_table(tiny))[layer]                  # (m, n) = (in, out)
four = {"LoRA": (MethodSpec("lora", rank=4), "r (m + n)"),
        "VeRA": (MethodSpec("vera", rank=4), "r + n"),
        "NOLA": (MethodSpec("nola", rank=4, nola_k=64, nola_l=64), "k + l"),
        "subspace": (MethodSpec("basis", d=5, per_tensor=True), "d")}
print(f"one layer of tiny: {layer}, m x n = {rows} x {cols} = {rows * cols:,} weights; r = 4, "
      f"k = l = 64, d = 5")
for name, (spec, formula) in four.items():
    method = build(spec, tiny)
    shapes = method.trainable_shapes()
    mine = (shapes["coef"][1] if "coef" in shapes      # one row of the (tensors, d) coefficients
            else sum(math.prod(s) for key, s in shapes.items() if layer in key))
    print(f"{name:<9} trains {mine:>6,} numbers on this layer = {formula:<10} "
          f"({method.n_trainable:>7,} on the whole of tiny)")

# %% [markdown]
# The same layer costs a few thousand numbers or a handful. What they buy differs too: move
# every trained number of each method off its start and look at the rank of the change it makes
# to this layer (singular values above 1e-9 of the largest).

# %%
moves = np.random.default_rng(1)
for name, (spec, _) in four.items():
    method = build(spec, tiny)
    t = method.init(np.float64)
    for key in t:
        if key not in ("wte.weight", "wpe.weight"):              # the embeddings are no part of it
            t[key] = t[key] + 0.1 * moves.standard_normal(t[key].shape)
    update = method.params(t)[layer] - method.random_init(np.float64)[layer]     # (m, n)
    sv = np.linalg.svd(update, compute_uv=False)
    print(f"{name:<9} change of {layer}: rank {int(np.sum(sv > 1e-9 * sv[0]))} of "
          f"{min(rows, cols)}")

# %% [markdown]
# LoRA, VeRA and NOLA all change the layer by a rank-4 matrix: they are three prices for the same
# family of low-rank functions, and VeRA and NOLA pay far less for it by leaving the directions
# to frozen random matrices. The subspace's few numbers move every direction of the layer a
# little. So at equal counts VeRA and NOLA separate the two questions the FAQ mixes: is it the
# *low rank* that limits LoRA, or the *number* of trained values? (Racing them at matched counts
# on GPT-2 belongs to the long race.)

# %% [markdown]
# ## 3. The same question on GPT-2
# LoRA on every weight matrix of `tiny` (attention c_attn and c_proj, MLP c_fc and c_proj) at
# rank 4, against a Fastfood subspace with exactly as many trainable numbers (32,768), and the
# embeddings-only baseline, at the race's budget (chapter 05: 64 steps of 8 x 128 C4 tokens) over
# several seeds; seed s gives every run the same batches. Rates: LoRA and the embeddings at the
# ones their own sweeps chose (`smolgpt.experiments.tuned`); Fastfood's coefficients at the rate
# chosen for its race entry, d = 5,000 (not swept again at this d), its embeddings at theirs.

# %%
SEEDS = tuple(range(chapter_int("seeds", 2 if QUICK else 3, minimum=2)))
tiny = GPTConfig.preset("tiny")
base = quick_config(steps=8) if QUICK else RACE
rank = 1 if QUICK else 4
lora = MethodSpec("lora", rank=rank)
twin = MethodSpec("fastfood", d=build(lora, base.gpt).n_trainable)
if QUICK:
    configs = [dataclasses.replace(base, method=m) for m in (MethodSpec("embeddings"), lora, twin)]
else:
    race_ff = at_tuned_rates(base, MethodSpec("fastfood", d=5000))
    configs = [at_tuned_rates(base, MethodSpec("embeddings")), at_tuned_rates(base, lora),
               dataclasses.replace(race_ff, method=twin)]
results = compare_configs(configs, OUT, seeds=SEEDS, final_windows=16 if QUICK else FINAL_WINDOWS,
                          title=f"chapter 04: LoRA vs Fastfood at equal trainable counts, "
                                f"{len(SEEDS)} seeds")

# %%
emb, lo, ff = results.values()
for res in (emb, lo, ff):
    vs = "" if res is emb else f", {res['mean'] - emb['mean']:+.4f} against embeddings only"
    print(f"{res['label']:<16} {res['n_trainable']:>7,} trainable, lr {res['config'].lr:g}"
          + (f", coef_lr {res['config'].coef_lr:g}" if res is ff else "")
          + f": final held-out loss {fmt(res['mean'], res['se'], 4)}{vs}")
lora_vs_ff = paired_interval(lo["final"], ff["final"])            # Fastfood minus LoRA
ahead = {"<": "LoRA is lower", ">": "Fastfood is lower", "~": "not resolved"}[verdict(lora_vs_ff)]
print(f"Fastfood minus LoRA = {lora_vs_ff['diff']:+.4f}, 95% interval [{lora_vs_ff['lo']:+.4f}, "
      f"{lora_vs_ff['hi']:+.4f}] over {lora_vs_ff['n']} seeds: {ahead}")

# %% [markdown]
# ## What this chapter showed
# LoRA and a random subspace restrict a network in different ways, and one layer is enough to
# see it. LoRA restricts which *functions* a layer can add: every change passes through r
# directions of the activations, so it fits a low-rank change exactly and a diffuse one only in
# part. A random subspace restricts which *parameter vectors* are reachable, a random plane, but
# leaves every activation direction in play: it captures the same small share of any target, and
# its update is full rank. That is the post's FAQ answered on a layer small enough to see.
#
# VeRA and NOLA make the same rank-r changes as LoRA with far fewer trained numbers, by steering
# frozen random matrices as a subspace does: they are the bridges between the two families, and
# they separate the two questions the FAQ mixes (the low rank, or the count). On GPT-2, at equal
# counts and over paired seeds, Fastfood ends a little lower than LoRA, but the seeds do not
# resolve the difference: at this budget on `tiny`, which way a method restricts the weights
# decides less than the single layer suggests. The measured values:

# %%
takeaways = [
    f"One layer, {k} numbers each: LoRA expresses a low-rank change (error left "
    f"{fits['low-rank Delta', 'lora'][0][-1]:.1%}) where the subspace keeps only a small share "
    f"({fits['low-rank Delta', 'subspace'][0][-1]:.1%} left); a diffuse change neither can "
    f"({fits['diffuse Delta', 'lora'][0][-1]:.1%} and "
    f"{fits['diffuse Delta', 'subspace'][0][-1]:.1%} left).",
    f"On GPT-2 at {lo['n_trainable']:,} trainable numbers each, {len(SEEDS)} seeds: Fastfood minus "
    f"LoRA = {lora_vs_ff['diff']:+.3f} nats (95% interval {lora_vs_ff['lo']:+.3f} to "
    f"{lora_vs_ff['hi']:+.3f}): {ahead}.",
]
print_takeaways(takeaways, START)

# %% [markdown]
# ## Exercises
# Solutions: `chapters/solutions/04_*.py` (each runs in seconds; a test runs them).
#
# 1. **Derive LoRA's backward.** For y = x (W0 + A B), with G = x^T dy the gradient a full
#    weight would get, derive dA and dB and check them with `smolgpt.gradcheck.check_layer`.
# 2. **Who moves first?** LoRA starts with B = 0. Predict which of A and B gets a non-zero
#    gradient on the first step, then check with your backward.
