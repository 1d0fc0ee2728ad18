# %% [markdown]
"""
# Chapter 02 — Five numbers for a whole GPT-2: training in a random basis

Question: why could a random low-dimensional slice of a network's parameters hold a good
solution at all? And if every non-embedding weight of GPT-2 is a fixed random combination of a
few trainable numbers, `W = a_1 W^1 + ... + a_d W^d`, how much can 5 numbers (for the whole
model) or 5 per tensor learn, compared with training only the embeddings?

*The post* is the blog post "Training smol language models" (2025), which this book
reproduces at laptop scale; chapter 01 introduces it and the papers it builds on.

Assumes: chapter 01 (the model, the training loop); C4 as in data/README.md.
Takes: section 1 (a small network, 3 seeds x 8 trainings) a few minutes on a 2-core CPU; the
rest several minutes more once chapter 05 has made its runs (measurements:
smolgpt/bench/NOTES.md; the closing lines print this run's time and rate); quick mode
(SMOLGPT_QUICK=1): under a minute.
Writes: out/02_basis/toy_subspace.png, out/02_basis/val_curves.png,
out/02_basis/regeneration.png; the runs are kept by the
experiment runner under out/runs/ (shared with chapter 05).
"""

# %%
import dataclasses
import time

import smolgpt  # noqa: F401  first: it tells BLAS how to wait, before NumPy loads BLAS
import matplotlib.pyplot as plt
import numpy as np

from smolgpt.experiments import (chapter_int, out_dir, print_takeaways, quick_config, quick_mode,
                                 save_figure)
from smolgpt.methods import MethodSpec, build
from smolgpt.model import GPTConfig, count_params, init_params, loss_only, non_embedding_table
from smolgpt.experiments.runs import FINAL_WINDOWS, compare_configs, run_name
from smolgpt.experiments.stats import fmt, paired_interval, verdict
from smolgpt.companions.ch02_subspace_toy import d_int90, subspace_curve
from smolgpt.experiments.tuned import RACE, at_tuned_rates
from smolgpt.train import TrainConfig
from smolgpt.transforms import DenseGaussian

QUICK = quick_mode()
OUT = out_dir("02_basis")
START = time.time()

# %% [markdown]
# ## 1. Why a random slice can be enough
# Training moves a network's D parameters through a D-dimensional space. Li et al. (2018,
# "Measuring the Intrinsic Dimension of Objective Landscapes", arXiv:1804.08838) asked how many
# of those directions training actually needs. Their experiment: freeze a random init theta_0,
# pick d random directions once (the columns of a D x d matrix P), and train only the d
# coefficients a of theta = theta_0 + P a, from a = 0. If some d far below D already reaches
# 90% of full training's score, the problem has many good solutions and a random d-dimensional
# slice through theta_0 meets one of them. The smallest such d is the *intrinsic dimension*
# d_int90.
#
# A small problem shows it in seconds (`smolgpt.companions.ch02_subspace_toy`): 4-way
# classification of 10-dimensional points labelled by a fixed random "teacher" network, learned
# by an MLP 10 -> 64 -> 64 -> 4 with D = 5,124 parameters, full-batch Adam for a fixed number of
# steps, scored by accuracy on held-out points.

# %%
toy_ds = (1, 3, 10, 30, 100) if QUICK else (1, 3, 10, 30, 100, 300, 1000)
toy = subspace_curve(toy_ds, seeds=(0,) if QUICK else (0, 1, 2), steps=100 if QUICK else 400)
d90, target = d_int90(toy)
print(f"MLP with D = {toy['D']:,} parameters, {len(toy['full'])} seed(s): held-out accuracy "
      f"{np.mean(toy['init']):.3f} at init, {np.mean(toy['full']):.3f} after full training")
for d in toy_ds:
    print(f"  trained in a random subspace of d = {d:>5}: accuracy {np.mean(toy['curve'][d]):.3f} "
          f"({np.mean(toy['curve'][d]) / np.mean(toy['full']):.0%} of full training's)")
print(f"d_int90 (the first d of the grid at 90% of full training's accuracy, {target:.3f}): "
      + (f"{d90:,}, which is {toy['D'] / d90:.0f}x fewer numbers than D" if d90 else
         "not reached on this grid"))

# %%
fig, ax = plt.subplots(figsize=(6, 4))
for d in toy_ds:
    ax.plot([d] * len(toy["curve"][d]), toy["curve"][d], ".", color="tab:blue", alpha=0.5)
ax.semilogx(toy_ds, [np.mean(toy["curve"][d]) for d in toy_ds], "o-", label="random subspace, d")
ax.axhline(np.mean(toy["full"]), color="black", label=f"full training, D = {toy['D']:,}")
ax.axhline(target, color="black", ls="--", label="90% of full training")
if d90:
    ax.axvline(d90, color="tab:red", ls=":", label=f"d_int90 = {d90:,}")
ax.set(xlabel="subspace dimension d (trained numbers)", ylabel="held-out accuracy",
       title="a small MLP trained in random subspaces (Li et al.'s picture)")
ax.legend(loc="lower right")
fig.tight_layout()
save_figure(fig, OUT / "toy_subspace.png")

# %% [markdown]
# The curve climbs steeply and then flattens: a few hundred well-placed directions out of
# thousands already do most of the work. Li et al. found the same for image classifiers
# (d_int90 = 750 for an MNIST network with about 200,000 parameters) and that it barely moves
# when the network is made wider. This is the hope behind the post: maybe a language model, too,
# needs far fewer trained numbers than it has weights. The rest of the chapter applies the same
# construction to GPT-2.
#
# ## 2. Counting the way the post counts
# The embeddings (`wte`, `wpe`) are always trained and never counted; the budget is the number
# of trainable *non-embedding* parameters. Here is every method of this project on our CPU
# model `tiny` and on GPT-2 small, computed from the configs.

# %%
tiny, gpt2 = GPTConfig.preset("tiny"), GPTConfig.preset("gpt2")
rows = [("full training", MethodSpec("full"), "all (~85M)"),
        ("LoRA r=128", MethodSpec("lora", rank=128), "~20M"),
        ("basis, 5 per tensor", MethodSpec("basis", d=5, per_tensor=True), "~1000"),
        ("basis, global d=5", MethodSpec("basis", d=5), "5"),
        ("embeddings only", MethodSpec("embeddings"), "0")]
print(f"{'method':<22} {'tiny':>12} {'GPT-2 small':>14}   the post says")
for name, spec, post in rows:
    print(f"{name:<22} {build(spec, tiny).n_trainable:>12,} {build(spec, gpt2).n_trainable:>14,}"
          f"   {post}")
print(f"(embeddings, not counted: tiny {count_params(tiny) - count_params(tiny, True):,}, "
      f"GPT-2 small {count_params(gpt2) - count_params(gpt2, True):,})")
n_tensors = len(non_embedding_table(gpt2))
print(f"GPT-2 small has {n_tensors} non-embedding tensors: 5 per tensor = {5 * n_tensors} numbers")

# %% [markdown]
# "5 per tensor" is 5 numbers for each non-embedding tensor: the post's "~1000". LoRA of rank
# 128 on every weight matrix lands near the post's "~20M".
#
# ## 3. The map from 5 numbers to every non-embedding weight
# Flatten every non-embedding tensor into one vector theta (D,). Then
#
#     theta = base + sigma * (P a) / sqrt(d)
#
# with P (D, d) a random Gaussian matrix (entries N(0, 1)), sigma each weight's GPT-2 init scale
# (0.02; 0.02/sqrt(2 n_layer) for the residual projections), and a the d trainable numbers.
#
# What does the 1/sqrt(d) do? Each weight is sigma / sqrt(d) times a sum of d terms P_ik a_k.
# At a = ones that sum has spread sqrt(d), so the weights have spread sigma whatever d is. Adam
# moves every coefficient by about its learning rate per step, with signs that do not line up,
# so a step moves each weight by about lr * sigma, again for every d: one coefficient learning
# rate serves every d. What it does *not* do is make one unit of a single coefficient mean the
# same for every d: moving one a_k by 1 moves each weight by sigma / sqrt(d) (times an N(0, 1)
# entry of P), less and less as d grows. Measured on a probe of D random weights with sigma 0.02:

# %%
D_demo, sigma, lr = 2 ** 16, 0.02, TrainConfig.coef_lr
print(f"std of the weights sigma * (P a) / sqrt(d), D = {D_demo:,}, sigma = {sigma}:")
print(f"{'d':>5}  {'a = ones':>9}  {'one a_k moved by 1':>32}  "
      f"{f'every a_k moved by +-{lr} (Adam-like)':>36}")
for d in (5, 50, 500):
    P = DenseGaussian(D_demo, d, seed=0)

    def weights(a):
        return sigma * P.matvec(a) / np.sqrt(d)                   # (D_demo,)

    step = np.random.default_rng(1).choice([-lr, lr], d)           # (d,) random signs
    print(f"{d:>5}  {weights(np.ones(d)).std():>9.4f}  "
          f"{weights(np.eye(d)[0]).std():>9.4f} (sigma/sqrt(d) {sigma / np.sqrt(d):.4f})  "
          f"{weights(step).std():>18.4f} (lr*sigma {lr * sigma:.4f})")

# %% [markdown]
# Two choices of base, both in the literature:
#
# * **offset** (Li et al. 2018): base = theta_0, a frozen random GPT-2 init, and a starts at 0.
#   The model starts exactly at a normal init; training moves it within a d-dimensional plane
#   through that point.
# * **no offset** (the post's `W = a_1 W^1 + ... + a_d W^d`): base holds only GPT-2's constants
#   (LayerNorm gains 1) and a starts at ones, so each weight matrix is sum_k W^k / sqrt(d), again
#   a random GPT-2 init in distribution. All of the model's randomness lives in the d directions.

# %%
D = count_params(tiny, non_embedding=True)
print(f"tiny: D = {D:,} non-embedding weights, built from the d coefficients")
ref = init_params(tiny, seed=0)
rng = np.random.default_rng(0)
idx = rng.integers(0, tiny.vocab_size, (4, tiny.block_size))
for offset in (True, False):
    m = build(MethodSpec("basis", d=5, offset=offset), tiny)
    p = m.params(m.init())
    w, g = p["h.0.mlp.c_fc.weight"], p["h.0.ln_1.weight"]
    same = max(float(np.max(np.abs(p[k] - ref[k]))) for k in ref)
    print(f"{'offset   ' if offset else 'no offset'}: c_fc weight std {w.std():.4f} "
          f"(GPT-2: 0.0200), ln_1 gain mean {g.mean():.3f} +- {g.std():.3f}, "
          f"max |theta - GPT-2 init| {same:.3f}, "
          f"loss at start {loss_only(p, idx, np.roll(idx, -1, 1), tiny):.3f}")

print(f"a uniform guess over the V = {tiny.vocab_size:,} tokens has loss ln V = "
      f"{np.log(tiny.vocab_size):.3f}")

# %% [markdown]
# Both start as a plausible GPT-2 and predict a near-uniform distribution (loss close to ln V).
# The offset form *is* the init (difference 0); the no-offset form is another random draw of it.
#
# ## 4. Why the bases are regenerated, never stored
# P has D x d entries: small for the 5-parameter model on `tiny`, already large on GPT-2 small,
# and the method is meant to scale to thousands of directions:

# %%
for name, cfg in (("tiny", tiny), ("GPT-2 small", gpt2)):
    Dn = count_params(cfg, non_embedding=True)
    for d in (5, 1000):
        print(f"storing P for {name:<11} at d={d:<5}: {Dn * d * 4 / 1e9:10,.3f} GB of float32")

# %% [markdown]
# Hundreds of GB for GPT-2 small at d = 1000. So P is never stored: its rows are regenerated from
# a seed, chunk by chunk, every time it is used (twice per step: P a forward, P^T g backward).
# Memory is O(D); the price is time, O(D d) random numbers per use. Measured here:

# %%
D_probe = 2 ** 16 if QUICK else 2 ** 20
ds = [5, 50, 200] if QUICK else [5, 50, 200, 1000]
secs = []
for d in ds:
    P = DenseGaussian(D_probe, d, seed=0)
    a = np.ones(d, dtype=np.float32)
    t0 = time.perf_counter()
    P.matvec(a)
    secs.append(time.perf_counter() - t0)
    print(f"regenerate and apply P (D = {D_probe:,}, d = {d:>4}): {secs[-1]:7.3f} s "
          f"= {secs[-1] / (D_probe * d) * 1e9:.2f} ns per entry")
ns_per_entry = secs[-1] / (D_probe * ds[-1])
gpt2_D = count_params(gpt2, non_embedding=True)
print(f"so one step of GPT-2 small at d = 1000 (P a and P^T g) would spend "
      f"~{2 * ns_per_entry * gpt2_D * 1000:,.0f} s just regenerating P")

fig, ax = plt.subplots(figsize=(6, 4))
ax.loglog(ds, secs, "o-", label=f"measured, D = {D_probe:,}")
ax.loglog(ds, [ns_per_entry * D_probe * d for d in ds], "--", label="linear in d")
ax.set_xlabel("subspace dimension d")
ax.set_ylabel("seconds per product P a")
ax.set_title("a regenerated dense basis costs O(D d) per use")
ax.legend()
fig.tight_layout()
save_figure(fig, OUT / "regeneration.png")

# %% [markdown]
# Chapter 03 replaces P by a structured matrix that costs O(D log d). For d = 5 the dense basis
# is cheap enough to train with, which is what we do now.
#
# ## 5. Training: 5 numbers, 5 per tensor, and the embeddings-only baseline
# Same C4 windows in the same order for every run (seed s gives every model the same batches);
# only the parameterization changes. The budget is the race's (chapter 05: 64 steps of 8 x 128
# tokens), over several seeds. Embeddings and subspace coefficients learn with Adam, each at its
# own peak learning rate: from section 3, a coefficient rate lr moves each weight by about lr
# times its init scale per step. The rates are the ones the race's sweeps chose
# (`smolgpt.experiments.tuned`) for the no-offset forms; each offset form uses its no-offset
# twin's rate (it was not swept separately).

# %%
SEEDS = tuple(range(chapter_int("seeds", 2 if QUICK else 3, minimum=2)))
base = quick_config(steps=10) if QUICK else RACE
specs = [MethodSpec("embeddings"),
         MethodSpec("basis", d=5),
         MethodSpec("basis", d=5, offset=False),
         MethodSpec("basis", d=5, per_tensor=True),
         MethodSpec("basis", d=5, per_tensor=True, offset=False)]


def at_rates(spec):
    """base with `spec` at its tuned rates (an offset form: its no-offset twin's)."""
    if QUICK:
        return dataclasses.replace(base, method=spec)
    twin = dataclasses.replace(spec, offset=False) if spec.name == "basis" else spec
    return dataclasses.replace(at_tuned_rates(base, twin), method=spec)


configs = [at_rates(spec) for spec in specs]
results = compare_configs(configs, OUT, seeds=SEEDS, final_windows=16 if QUICK else FINAL_WINDOWS,
                          title=f"chapter 02: random-basis models vs embeddings only, "
                                f"{len(SEEDS)} seeds (held-out C4)")

# %%
emb = results["embeddings"]
print(f"{'model':<28} {'trainable':>9} {'lr':>7} {'coef lr':>7} {'final loss':>16} "
      f"{'minus embeddings only [95% interval]':>38}")
vs_emb = {}
for s in results.values():
    iv = vs_emb[s["label"]] = paired_interval(emb["final"], s["final"])
    shown = "" if s is emb else f"{iv['diff']:+.3f} [{iv['lo']:+.3f}, {iv['hi']:+.3f}]"
    rate = "-" if s is emb else f"{s['config'].coef_lr:g}"
    print(f"{s['label']:<28} {s['n_trainable']:>9,} {s['config'].lr:>7g} {rate:>7} "
          f"{fmt(s['mean'], s['se'], 4):>16} {shown:>38}")

# %% [markdown]
# Offset or not? For each kind of basis, the two forms as a paired difference over the seeds.

# %%
forms = {}
for kind, kw in (("5 in all", {}), ("5 per tensor", dict(per_tensor=True))):
    with_offset = results[run_name(MethodSpec("basis", d=5, **kw))]
    without = results[run_name(MethodSpec("basis", d=5, offset=False, **kw))]
    iv = forms[kind] = paired_interval(with_offset["final"], without["final"])
    print(f"  {kind}: no offset minus offset = {iv['diff']:+.4f}, 95% interval "
          f"[{iv['lo']:+.4f}, {iv['hi']:+.4f}] over {iv['n']} seeds: "
          + {"<": "the offset form is lower", ">": "the no-offset form is lower",
             "~": "not resolved"}[verdict(iv)])

# %% [markdown]
# ## What this chapter showed
# A random subspace is a map from d trainable numbers to every non-embedding weight:
# theta = base + sigma (P a) / sqrt(d). On a small network that is enough to learn most of what
# full training learns with far fewer numbers than it has weights, which is the hope behind the
# post. The 1/sqrt(d) keeps the weights' spread at sigma, and one Adam step's move near lr times
# sigma, for every d, so one coefficient rate serves every d; but one unit of a single
# coefficient moves the weights less as d grows. The basis can never be stored at GPT-2's scale,
# so it is regenerated from a seed each time it is used: memory O(D), time O(D d) per use, which
# is what chapter 03's Fastfood brings down.
#
# Counted the post's way (non-embedding trainables only), GPT-2 small's "5 per tensor" model
# trains a few hundred numbers and the global basis five. On `tiny`, at the race's budget, five
# numbers do learn: every basis model ends clearly below embeddings only, and 5 in all and 5 per
# tensor end close together. Without an offset (the post's form) five numbers end lower than
# with Li et al.'s offset, a difference the seeds resolve; for 5 per tensor they do not. The
# measured values:

# %%
best = min((s for s in results.values() if s["label"].startswith("basis")),
           key=lambda s: s["mean"])
learn = {">": "lower than embeddings only", "<": "higher than embeddings only",
         "~": "not resolved against embeddings only"}
vs_best = vs_emb[best["label"]]
takeaways = [
    (f"A random subspace holds a good solution: the small MLP (D = {toy['D']:,}) reaches 90% of "
     f"full training's accuracy at d = {d90:,}, {toy['D'] / d90:.0f}x fewer numbers than D."
     if d90 else f"The small MLP (D = {toy['D']:,}) did not reach 90% of full training's "
     f"accuracy at any d of the grid.")
    + f" On GPT-2 (`tiny`), {best['n_trainable']:,} numbers ('{best['label']}') end "
      f"{abs(vs_best['diff']):.2f} nats {learn[verdict(vs_best)]}.",
    f"The best random-basis model, '{best['label']}', ends at {fmt(best['mean'], best['se'])} "
    f"nats/token after {base.steps * base.tokens_per_step:,} tokens ({len(SEEDS)} seeds): "
    f"{vs_best['diff']:+.3f} [{vs_best['lo']:+.3f}, {vs_best['hi']:+.3f}] against embeddings "
    f"only ({fmt(emb['mean'], emb['se'])}), {learn[verdict(vs_best)]}.",
    "No offset minus offset (paired over seeds): " + "; ".join(
        f"{kind} {iv['diff']:+.3f} [{iv['lo']:+.3f}, {iv['hi']:+.3f}]"
        + (" (not resolved)" if verdict(iv) == "~" else "") for kind, iv in forms.items()) + ".",
    f"GPT-2 small: 5 per tensor trains {5 * n_tensors} numbers; a dense basis at d = 1000 would "
    f"take {gpt2_D * 1000 * 4 / 1e9:,.0f} GB, so it is regenerated from a seed at O(D d) a use.",
]
print_takeaways(takeaways, START)

# %% [markdown]
# ## Exercises
# Solutions: `chapters/solutions/02_*.py` (each runs in seconds; a test runs them).
#
# 1. **Change d and predict the curve.** Before running it, guess the accuracy of the small MLP
#    at d = 2,000 and at d = D = 5,124 (a random basis of the whole space). Then compute them
#    with `subspace_curve`. Why does d = D not give exactly full training's accuracy?
# 2. **Make the network wider.** Rerun the curve with `sizes=(10, 256, 256, 4)` (D is about
#    70,000). Does d_int90 grow with D, as a count of parameters would, or stay about the same?
# 3. **Offset or not.** From the print in section 3: why is the "no offset" form's largest
#    difference from a GPT-2 init not 0, while the offset form's is? Check that
#    `build(MethodSpec("basis", d=5), tiny).params(...)` equals `init_params(tiny, seed=0)`
#    exactly for the offset form.

