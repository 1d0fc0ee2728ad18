# %% [markdown]
"""
# Chapter 08 — Intrinsic dimension: how many directions does a GPT-2 need?

Question: Li et al. (2018) call d_int90 the smallest subspace dimension d at which training in
a random d-dimensional subspace reaches 90% of full training's performance. Aghajanyan et al.
(2020) found that fine-tuning a pretrained language model needs remarkably few (a few hundred
numbers reach 90% on MRPC), and that a learned scale per tensor (SAID) helps. What are these
numbers for one small GPT-2, trained from scratch on C4, and fine-tuned from a C4 model to a new
domain (the Python standard library's source), measured the same way and put on one figure?

*The post* is the blog post "Training smol language models" (2025), which this book
reproduces at laptop scale; chapter 01 introduces it and the papers it builds on.
A *paired 95% interval*: seed s gives two methods the same batches, so their difference is
taken seed by seed; the interval is the mean difference +- Student's t times its standard
error. A difference is resolved when the interval excludes 0.

Assumes: chapters 02-05 (random subspaces, Fastfood, the race); C4 as in data/README.md; the
Python standard library's own `*.py` files (every Python has them, so no download).
Takes: ~120 short runs of a 2-layer model. Measured on a quiet 2-core CPU: 969 s from an empty
cache with six grid points (at 202 GFLOP/s), then 258 s for the two half-decade points and one
more fine-tuning rate: about 20 minutes in all. Finished runs are reused, so a second run takes
under a minute. The closing lines print this run's wall time and this machine's float32 matmul
rate. Quick mode (SMOLGPT_QUICK=1): under a minute. The full sweep (`--full`, or
SMOLGPT_FULL=1) trains every run, and the pretrained model, 8 times longer: about 8 times the
default's training time, which the closing lines project from this run. More seeds:
`--seeds 5` (or SMOLGPT_SEEDS=5); another budget per run: `--steps N` (default 48 steps of
8 x 64 tokens).
Writes: out/08_intrinsic_dimension/{gap_closed.png, results.md, d_int.json, stdlib_files.json};
the runs are kept by the experiment runner under out/runs/.
"""

# %%
import dataclasses
import json
import math
import os
import shutil
import sys
import time

import smolgpt  # noqa: F401  first: it tells BLAS how to wait, before NumPy loads BLAS
import numpy as np

from smolgpt import data
from smolgpt.checkpoint import load_params
from smolgpt.evaluate import evaluate_params
from smolgpt.experiments import chapter_int, out_dir, print_takeaways, quick_mode, save_figure
from smolgpt.experiments.coefficients import coef_trajectory
from smolgpt.experiments.intrinsic import d_int, describe
from smolgpt.experiments.intrinsic_sweep import finals as run_finals
from smolgpt.experiments.intrinsic_sweep import (gap_closed_figure, results_markdown, short,
                                                 sweep as run_sweep)
from smolgpt.experiments.intrinsic_sweep import pick_lr as choose_lr
from smolgpt.experiments.runs import run, run_seeds
from smolgpt.experiments.stats import paired_interval
from smolgpt.methods import MethodSpec, build
from smolgpt.model import GPTConfig, non_embedding_table
from smolgpt.train import TrainConfig

QUICK = quick_mode()
FULL = not QUICK and ("--full" in sys.argv[1:] or
                      os.environ.get("SMOLGPT_FULL", "").strip().lower() in ("1", "true", "yes"))
OUT = out_dir("08_intrinsic_dimension")
START = time.time()
SEEDS = tuple(range(chapter_int("seeds", 2 if QUICK else 3, minimum=2)))

# %% [markdown]
# ## 1. The metric, stated exactly
# Li et al. measure accuracy: d_int90 is the smallest d whose (seed-averaged) validation accuracy
# reaches 90% of full training's. Accuracy has a natural zero, so "90% of full" is a fixed share
# of what training achieves. A language model's held-out loss has no such zero: the loss of a
# model that learned nothing useful is not 0 but something like ln V, and a ratio of losses
# (L_full / L_d >= 0.9) would call almost any model "90% there". So we measure the share of the
# *gain* that full training makes over a baseline that trains nothing but what every method
# trains anyway, the token and position embeddings (the subspace at d = 0):
#
#     gap closed(d) = (L_embeddings - L_d) / (L_embeddings - L_full)
#
# with L the final held-out loss at one fixed token budget, the same for every run. d_int90 is
# the smallest d with gap closed >= 0.9, found on the seed-averaged curve and interpolated
# linearly in log d between the grid points around the first crossing; its interval is a
# bootstrap over seeds (`smolgpt.experiments.intrinsic`). Aghajanyan et al. also state their
# threshold as 90% of full fine-tuning's accuracy; for us "full" is full fine-tuning and the
# baseline is the pretrained model fine-tuned embeddings-only. Where 90% is not reached, we report
# the largest fraction reached, and where on the grid.

# %% [markdown]
# ## 2. The model, the grid and the budget
# Half an hour on two cores has to pay for some 120 runs, so this chapter uses a smaller
# GPT-2 than `tiny`: 2 layers of width 64 with the full vocabulary, whose non-embedding part D
# is just above 10^5 (printed below), so that the grid of d can run from 1 all the way to D.
# Every run, from scratch or fine-tuning, has the same budget of tokens and the same learning
# rates (printed below; section 4 checks the rate of the arrays trained directly against the
# project's default).

# %%
MODEL = GPTConfig(n_layer=2, n_head=2, n_embd=64, block_size=32 if QUICK else 64)
if QUICK:
    GRID = (1, 1000)
    base = TrainConfig(gpt=MODEL, steps=3, batch_size=4, warmup=1, eval_every=3, eval_windows=2,
                       lr=3e-3, sample_tokens=0)
    FINAL = 8
    DENSE_D = (1,)
else:
    # a point per decade, and half-decades (300, 3,000) where fine-tuning crosses 90%: the
    # crossing is interpolated between its two neighbours, so they should be close
    GRID = (1, 10, 100, 300, 1000, 3000, 10_000, 100_000)
    steps = chapter_int("steps", 384 if FULL else 48, minimum=4)
    base = TrainConfig(gpt=MODEL, steps=steps, batch_size=8, warmup=max(1, steps // 10),
                       eval_every=max(1, steps // 4), eval_windows=16, lr=3e-3, sample_tokens=0)
    FINAL = 128
    DENSE_D = (10, 100)
PRETRAIN_STEPS = 6 * base.steps              # at twice the batch: 12 runs' worth of tokens
D = sum(math.prod(s) for _, s in non_embedding_table(MODEL))
M_TENSORS = len(non_embedding_table(MODEL))
tokens = base.steps * base.tokens_per_step
n_runs = (2 * len(SEEDS) * (2 + 2 * len(GRID)) + len(SEEDS) * len(DENSE_D)
          + (0 if QUICK else 6) + 1)

# %%
print(f"model: {MODEL.n_layer} layers x {MODEL.n_embd}, context {MODEL.block_size}, vocabulary "
      f"{MODEL.vocab_size:,}; D = {D:,} non-embedding parameters in {M_TENSORS} tensors")
print(f"grid of d: {', '.join(f'{d:,}' for d in GRID)}; seeds {list(SEEDS)}; every run "
      f"{base.steps} steps x {base.tokens_per_step:,} tokens = {tokens:,} tokens, scored on "
      f"{FINAL} held-out windows of {MODEL.block_size} tokens")
print(f"peak learning rates: {base.coef_lr:g} for the subspace coefficients a, {base.scale_lr:g} "
      f"for SAID's scales; the arrays trained directly get the rate section 4 chooses"
      f"{f' (quick mode: {base.lr:g})' if QUICK else ''}")
print(f"SAID counts d coefficients plus one scale per tensor: d + {M_TENSORS} trainable numbers "
      f"(at d = 1: {build(MethodSpec('said', d=1), MODEL).n_trainable}); the x axis below is that "
      f"count")
print(f"about {n_runs} runs in all{' (the full sweep)' if FULL else ''}")

# %% [markdown]
# ## 3. The second domain: the Python standard library, held out by file
# The fine-tuning target must be on every machine without a download, and far enough from C4
# that a C4 model has something to learn: Python source is both. We take every `*.py` file
# directly in the standard library folder (no packages, no tests), sorted by name, one document
# each; every 10th file is held out for validation, so no held-out module was seen in training.
# The exact files and their sha256 are recorded next to the tokens and copied to the chapter's
# output; the runs' identity includes the token files' checksums, so another Python version
# (other files) means other runs.

# %%
files = data.stdlib_files()
if QUICK:
    files = files[:40]
STDLIB_DIR = OUT / "data_stdlib"
manifest = data.prepare_text_files(STDLIB_DIR, files, val_every=10, verbose=False)
shutil.copy(STDLIB_DIR / data.SOURCES, OUT / "stdlib_files.json")
n_val = sum(f["split"] == "val" for f in manifest["files"])
digest = json.loads((STDLIB_DIR / data.SOURCES).read_text())
print(f"Python {sys.version.split()[0]} standard library: {len(files)} files "
      f"({sum(f['bytes'] for f in manifest['files']):,} bytes) from {files[0].parent}; "
      f"{len(files) - n_val} for training ({manifest['splits']['train']['tokens']:,} tokens), "
      f"{n_val} held out ({manifest['splits']['val']['tokens']:,} tokens); file list with sha256: "
      f"{OUT / 'stdlib_files.json'}")
held = [f["name"] for f in digest["files"] if f["split"] == "val"]
print(f"held-out files: {', '.join(held[:8])}{', ...' if len(held) > 8 else ''}")
ft_base = dataclasses.replace(base, data_dir=str(STDLIB_DIR))


# %% [markdown]
# ## 4. From scratch
# "Full training" must be full training done well, or every subspace looks good against it: a
# subspace near d = D is nearly a rotation of the whole parameter space trained at the
# coefficients' own rate, and at a short budget it can beat full training run at too timid a
# rate. So the peak rate of the arrays trained directly is chosen first, as the one that gives
# full training its lowest final loss (seed 0, a small grid, extended past an edge best), and
# then used for every array trained directly in that regime: the embeddings of every method,
# and full training. The coefficients keep their default rate. Then, for each seed: embeddings
# only, full training, and for every d Li et al.'s offset form with a Fastfood projection
# ("DID", `fastfood`) and SAID. Seed s gives every run the same batches.

# %%
TRAINED = []                     # (tokens, training seconds) of every run, reused ones included


def finals(cfg, seeds=SEEDS):
    """Final held-out losses of cfg over seeds (trained now, or reused)."""
    return run_finals(cfg, seeds, FINAL, TRAINED)


def pick_lr(base_cfg, grid, title):
    """Full training's best peak lr on grid, extended past an edge best (quick mode: as is)."""
    return base_cfg.lr if QUICK else choose_lr(base_cfg, grid, title, FINAL, TRAINED)


def sweep(base_cfg, title):
    """Baselines and the grid for both methods; {"base", "full", "did": {x: [...]}, "said"}."""
    return run_sweep(base_cfg, title, GRID, SEEDS, FINAL, TRAINED)


base = dataclasses.replace(base, lr=pick_lr(base, (3e-3, 1e-2, 3e-2, 1e-1), "from scratch"))
scratch = sweep(base, "from scratch on C4")

# %% [markdown]
# The naive ratio shows why the gap, not the loss, is the measure: full training's loss divided
# by the baseline's is already close to 1.

# %%
print(f"naive loss ratio L_full / L_embeddings from scratch: "
      f"{np.mean(scratch['full']) / np.mean(scratch['base']):.3f} (by that ratio the baseline "
      f"would already be 'at {np.mean(scratch['full']) / np.mean(scratch['base']):.0%} of full')")

# %% [markdown]
# **What one direction does.** At d = 1 the model is theta_0 + a * sigma * p: the frozen init plus
# one random direction p, scaled per tensor by GPT-2's init scale sigma. Whatever p is, a large
# |a| makes every weight a sum of two independent random draws, so the random part of the model
# grows to sqrt(1 + a^2) times its init scale, and the sign of a hardly matters. The final a of
# each seed, read from its log:

# %%
one_runs = run_seeds(dataclasses.replace(base, method=MethodSpec("fastfood", d=1)), SEEDS,
                     final_windows=FINAL, verbose=False)
a_final = [float(coef_trajectory(os.path.join(r["dir"], "log.jsonl"))[1][-1, 0])
           for r in one_runs]
grow = [math.sqrt(1 + a * a) for a in a_final]
print(f"DID at d = 1, from scratch: final a per seed {', '.join(f'{a:+.2f}' for a in a_final)}; "
      f"the random weights end {min(grow):.1f}x to {max(grow):.1f}x their init scale")

# %% [markdown]
# **Dense against Fastfood.** At small d the dense Gaussian basis is cheap enough to train with
# too. If Fastfood is a faithful stand-in, the two should give the same loss up to the seeds'
# spread: we compare them seed by seed (same batches, same theta_0, different P).

# %%
for d in DENSE_D:
    dense = finals(dataclasses.replace(base, method=MethodSpec("basis", d=d)))
    ff = scratch["did"][d]
    iv = paired_interval(ff, dense)
    print(f"d = {d:,}: dense basis {np.mean(dense):.4f}, Fastfood {np.mean(ff):.4f}; dense - "
          f"Fastfood = {iv['diff']:+.4f}, 95% interval [{iv['lo']:+.4f}, {iv['hi']:+.4f}] over "
          f"{iv['n']} seeds")

# %% [markdown]
# ## 5. Fine-tuning: a C4 model adapted to Python
# One model is pretrained, fully, on the C4 training split (made once by the experiment runner
# and reused by every later run of this chapter). Every fine-tuning run starts from its weights
# (`init_from`): full fine-tuning trains them all, embeddings-only fine-tuning (the baseline)
# freezes every non-embedding tensor at them, and DID and SAID use them as theta_0, so at a = 0
# each starts exactly at the pretrained model.

# %%
pre_cfg = dataclasses.replace(base, method=MethodSpec("full"), steps=PRETRAIN_STEPS,
                              batch_size=4 if QUICK else 16, warmup=max(1, PRETRAIN_STEPS // 10),
                              eval_every=max(1, PRETRAIN_STEPS // 4))
pre = run(pre_cfg, final_windows=FINAL, verbose=False)
PRETRAINED = os.path.abspath(os.path.join(pre["dir"], "checkpoint.npz"))
params, _, _ = load_params(PRETRAINED)
stdlib_val = data.load_tokens("val", STDLIB_DIR)
untouched = evaluate_params(params, MODEL, stdlib_val, batch_size=8, max_windows=FINAL)["loss"]
print(f"pretrained on C4: {PRETRAIN_STEPS * pre_cfg.tokens_per_step:,} tokens, held-out C4 loss "
      f"{pre['final']['loss']:.4f}; on the held-out Python files, untouched: {untouched:.4f}")
print(f"its checkpoint: {PRETRAINED}")
ft_base = dataclasses.replace(ft_base, init_from=PRETRAINED)
ft_base = dataclasses.replace(ft_base, lr=pick_lr(ft_base, (1e-3, 3e-3, 1e-2, 3e-2), "fine-tuning"))
finetune = sweep(ft_base, "fine-tuning on Python")

# %% [markdown]
# ## 6. d_int90, both regimes, with bootstrap intervals over seeds

# %%
results = {}
for regime, res in (("from scratch", scratch), ("fine-tuning", finetune)):
    for key, name in (("did", "DID (Fastfood)"), ("said", "SAID")):
        r = d_int(res[key], res["base"], res["full"], level=0.9)
        results[regime, name] = r
        print(f"{regime:<12} {name:<15} {describe(r)}")
(OUT / "d_int.json").write_text(json.dumps({f"{a} / {b}": r for (a, b), r in results.items()},
                                           indent=1, default=float) + "\n")

# %%
fig, clipped = gap_closed_figure(
    results, f"gap closed against d: {MODEL.n_layer}x{MODEL.n_embd} GPT-2, {tokens:,} tokens per "
             f"run, {len(SEEDS)} seeds\nbands: 95% bootstrap over seeds; x: d_int90 and its "
             f"interval (cut at the grid's end)", ylim=(-0.5, 2.5))
save_figure(fig, OUT / "gap_closed.png")
if clipped:
    print(f"{clipped} point(s) lie outside (-0.5, 2.5) and are drawn on the edge of the figure")

# %%
table = results_markdown(results, GRID)
(OUT / "results.md").write_text(table + "\n")
print(table)
print(f"table: {OUT / 'results.md'}")

# %% [markdown]
# ## 7. What SAID's scales learned
# Each tensor's scale lambda_t starts at 1. Read from the last step of each run's log, averaged
# over seeds and over the tensors of each kind: which parts of the network did SAID turn up or
# down?

# %%
mid = GRID[len(GRID) // 2]


def scales(base_cfg):
    """{tensor kind: mean final lambda} of SAID at d = mid, over seeds."""
    runs = run_seeds(dataclasses.replace(base_cfg, method=MethodSpec("said", d=mid)), SEEDS,
                     final_windows=FINAL, verbose=False)
    kinds = {}
    for r in runs:
        last = [json.loads(line) for line in open(os.path.join(r["dir"], "log.jsonl"))
                if '"event": "step"' in line][-1]
        for (name, _), lam in zip(non_embedding_table(MODEL), last["scale"]):
            kinds.setdefault(name.split(".", 2)[-1], []).append(lam)
    return {k: float(np.mean(v)) for k, v in kinds.items()}


lam = {"from scratch": scales(base), "fine-tuning": scales(ft_base)}
print(f"SAID at d = {mid:,}: mean final scale per kind of tensor")
for kind in lam["from scratch"]:
    print(f"  {kind:<22} from scratch {lam['from scratch'][kind]:6.3f}   fine-tuning "
          f"{lam['fine-tuning'][kind]:6.3f}")

# %% [markdown]
# ## Takeaways
# The published numbers, for comparison: Li et al. measured d_int90 = 750 for a fully connected
# MNIST classifier, 290 for LeNet on MNIST and 2,900 for LeNet on CIFAR-10, all from scratch;
# Aghajanyan et al. found about 200 numbers reach 90% of full fine-tuning of RoBERTa on MRPC.

# %%
train_s = sum(s for _, s in TRAINED) + pre["elapsed"]
full_sweep_h = 8 * train_s / 3600 if not FULL else train_s / 3600
ONE_DIRECTION_NOTE = (" At this budget, turning the random weights up is most of what full "
                      "training buys over a frozen random transformer at GPT-2's init scale.")

s_did, s_said = results["from scratch", "DID (Fastfood)"], results["from scratch", "SAID"]
f_did, f_said = results["fine-tuning", "DID (Fastfood)"], results["fine-tuning", "SAID"]

# %%
takeaways = [
    f"From scratch ({tokens:,} tokens per run, {len(SEEDS)} seeds): DID {short(s_did)}; SAID "
    f"{short(s_said)} trainable numbers.",
    f"Fine-tuning a C4 model to Python: DID {short(f_did)}; SAID {short(f_said)}.",
    f"One random direction from scratch (DID, d = 1) closes {s_did['fraction'][0]:.0%} of the "
    f"gap: its coefficient ends at |a| = {min(map(abs, a_final)):.1f} to "
    f"{max(map(abs, a_final)):.1f}, which turns the random weights up to {min(grow):.1f}x to "
    f"{max(grow):.1f}x their init scale."
    + (ONE_DIRECTION_NOTE if s_did["fraction"][0] >= 0.5 else ""),
    f"Full training gains {np.mean(scratch['base']) - np.mean(scratch['full']):.2f} nats over "
    f"embeddings only from scratch, and full fine-tuning "
    f"{np.mean(finetune['base']) - np.mean(finetune['full']):.2f} nats over embeddings-only "
    f"fine-tuning (the untouched pretrained model scores {untouched:.2f} on the Python files).",
    f"The largest fraction of full training's gain reached: from scratch "
    f"{s_did['max_fraction']:.0%} (DID, at {s_did['at']:,}) and {s_said['max_fraction']:.0%} "
    f"(SAID, at {s_said['at']:,}); fine-tuning {f_did['max_fraction']:.0%} and "
    f"{f_said['max_fraction']:.0%}. Above 100%, a subspace beat full training at this budget "
    f"and rate.",
    f"The papers: Li et al. measured d_int90 = 750 (MNIST, fully connected), 290 (MNIST, LeNet) "
    f"and 2,900 (CIFAR-10, LeNet), from scratch; Aghajanyan et al. about 200 for fine-tuning "
    f"RoBERTa on MRPC. Our runs see {tokens:,} tokens each: early training. The post's much "
    f"longer runs, where full training ends far ahead of every reduced model, suggest a larger "
    f"d_int90 there; whether it grows with the budget is what --full (8 times the tokens per "
    f"run) measures. The training in this sweep took {train_s / 60:.0f} minutes (summed over "
    f"its runs, reused ones included), so the full sweep needs about {full_sweep_h:.1f} hours "
    f"of training on this machine.",
]
print_takeaways(takeaways, START)

# %% [markdown]
# ## Exercises
# Solutions: `chapters/solutions/08_*.py` (each runs in seconds; a test runs them).
#
# 1. **SAID at its start.** Build `MethodSpec("said", d=16)` on a small GPT-2. Predict: does
#    doubling every scale change the model before training? Which trainables get a non-zero
#    gradient on the first step? Check with `method.params` and `method.pullback`.
# 2. **Two definitions of 90%.** Li et al. take 90% of full training's *score*; this chapter takes
#    90% of its *gain over the baseline*. On chapter 02's small MLP
#    (`smolgpt.experiments.subspace_toy`), compute d_int90 both ways with
#    `smolgpt.experiments.intrinsic.crossing`. Which is larger, and why?
