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
Takes: about 726 runs' worth of training of a 2-layer model (each of the fifteen pretrained
models counts as twelve runs): about 45 minutes on a quiet 2-core CPU from an empty cache, by
the measurement in smolgpt/bench/NOTES.md. The chapter prints the count and, at its end, its
wall time and this machine's float32 matmul rate. Every run is kept: by the experiment runner
under out/runs/, and as a line of chapters/results/08_intrinsic_dimension.jsonl, committed,
so the numbers behind chapters/README.md are in the repository and a test re-makes a part of
them from scratch. A second run reuses everything. Quick mode (SMOLGPT_QUICK=1): under a
minute. The full sweep (`--full`, or SMOLGPT_FULL=1) trains every run, and the pretrained
models, 8 times longer.
More seeds from scratch: `--seeds 5` (or SMOLGPT_SEEDS=5); more fine-tuning replicates:
`--replicates 20`; another budget per run: `--steps N` (default 48 steps of 8 x 64 tokens).
Writes: out/08_intrinsic_dimension/{gap_closed.png, results.md, d_int.json, stdlib_files.json,
pretrained/}; the record of finished runs (above).
"""

# %%
import dataclasses
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path

import smolgpt  # noqa: F401  first: it tells BLAS how to wait, before NumPy loads BLAS
import numpy as np

# %%
from smolgpt import data
from smolgpt.checkpoint import load_params
from smolgpt.evaluate import evaluate_params
from smolgpt.experiments import chapter_int, out_dir, print_takeaways, quick_mode, save_figure
from smolgpt.experiments.coefficients import coef_trajectory
from smolgpt.companions.ch08_intrinsic import (d_int, describe, gap_closed_figure, pick_lr,
                                           stable_weights, sweep)
from smolgpt.companions.ch09_long_race import committed_finding
from smolgpt.experiments.runs import Record, run_many, run_seeds, shown, with_seed
from smolgpt.experiments.stats import paired_interval
from smolgpt.layers import blas_kernel
from smolgpt.methods import MethodSpec, build
from smolgpt.model import GPTConfig, non_embedding_table
from smolgpt.train import TrainConfig

# %%
QUICK = quick_mode()                  # SMOLGPT_QUICK=1: the small version the tests run
FULL = not QUICK and ("--full" in sys.argv[1:] or
                      os.environ.get("SMOLGPT_FULL", "").strip().lower() in ("1", "true", "yes"))
OUT = out_dir("08_intrinsic_dimension")
START = time.time()
SEEDS = tuple(range(chapter_int("seeds", 2 if QUICK else 3, minimum=2)))       # from scratch
REPLICATES = tuple(range(chapter_int("replicates", 2 if QUICK else 15, minimum=2)))  # fine-tune
RECORD = (OUT / "record.jsonl" if QUICK else
          Path(__file__).resolve().parent / "results" / "08_intrinsic_dimension.jsonl")

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
# bootstrap over seeds (`smolgpt.companions.ch08_intrinsic`), where in fine-tuning a "seed" is a
# whole replicate with its own pretrained model (section 5 says why). Aghajanyan et al. also
# state their threshold as 90% of full fine-tuning's accuracy; for us "full" is full fine-tuning
# and the baseline is the pretrained model fine-tuned embeddings-only. Where 90% is not reached,
# we report the largest fraction reached, and where on the grid.

# %% [markdown]
# ## 2. The model, the grids and the budget
# Some 700 runs' worth of training on two cores needs a smaller GPT-2 than `tiny`: 2 layers of width
# 64 with the full vocabulary, whose non-embedding part D is just above 10^5 (printed below), so
# that the grid of d can run from 1 all the way to D. Every run, from scratch or fine-tuning, has
# the same budget of tokens; the rates are printed below (section 4 chooses the two rates of the
# arrays trained directly). The two regimes get different grids: from scratch a point per decade is
# enough (section 4 shows why), while earlier, single-model runs put fine-tuning's crossing of 90%
# between a few hundred and a few thousand, so there the grid is dense from 100 to 10,000 (200,
# 300, 500, then 1, 2, 3 and 5 thousand): where a curve crosses, d_int90 is interpolated between the
# two points around the crossing, and they should be close. (Whether it crosses at all is for the
# run to say.)

# %%
MODEL = GPTConfig(n_layer=2, n_head=2, n_embd=64, block_size=32 if QUICK else 64)
if QUICK:
    SCRATCH_GRID = FT_GRID = (1, 1000)
    base = TrainConfig(gpt=MODEL, steps=3, batch_size=4, warmup=1, eval_every=3, eval_windows=2,
                       lr=3e-3, sample_tokens=0)
    FINAL = 8
    DENSE_D = (1,)
else:
    SCRATCH_GRID = (1, 10, 100, 1000, 10_000, 100_000)
    FT_GRID = (1, 100, 200, 300, 500, 1000, 2000, 3000, 5000, 10_000, 100_000)
    steps = chapter_int("steps", 384 if FULL else 48, minimum=4)
    base = TrainConfig(gpt=MODEL, steps=steps, batch_size=8, warmup=max(1, steps // 10),
                       eval_every=max(1, steps // 4), eval_windows=16, lr=3e-3, sample_tokens=0)
    FINAL = 128
    DENSE_D = (10, 100)

# %% [markdown]
# What that makes: the model's size D, the grids, and the budget every run gets.

# %%
PRETRAIN_STEPS = 6 * base.steps              # at twice the batch: 12 runs' worth of tokens
SCRATCH_LRS = (3e-3, 1e-2, 3e-2, 1e-1)
FT_LRS = (1e-3, 3e-3, 1e-2, 3e-2, 9e-2)
# the rates these four sweeps settled on in the committed default run (its best, or a rate the
# best does not beat by a resolved margin), kept by any run unless another is resolved better
KEEP = {("from scratch", "full training"): 1e-2, ("from scratch", "embeddings only"): 1e-2,
        ("fine-tuning", "full training"): 3e-2, ("fine-tuning", "embeddings only"): 3e-2}
D = sum(math.prod(s) for _, s in non_embedding_table(MODEL))
M_TENSORS = len(non_embedding_table(MODEL))
tokens = base.steps * base.tokens_per_step
# two rate grids (full training's, embeddings only's), each run once more by the sweep itself
n_scratch = len(SEEDS) * (2 + 2 * len(SCRATCH_GRID) + len(DENSE_D)
                          + (0 if QUICK else 2 * (len(SCRATCH_LRS) - 1)))
# a pretrained model is 12 runs' worth
n_ft = len(REPLICATES) * (12 + 2 + 2 * len(FT_GRID) + (0 if QUICK else 2 * (len(FT_LRS) - 1)))
print(f"model: {MODEL.n_layer} layers x {MODEL.n_embd}, context {MODEL.block_size}, vocabulary "
      f"{MODEL.vocab_size:,}; D = {D:,} non-embedding parameters in {M_TENSORS} tensors")
print(f"grid of d from scratch: {', '.join(f'{d:,}' for d in SCRATCH_GRID)}; seeds {list(SEEDS)}")
print(f"grid of d fine-tuning: {', '.join(f'{d:,}' for d in FT_GRID)}; replicates "
      f"{list(REPLICATES)}, each with its own pretrained model")

# %%
print(f"every run {base.steps} steps x {base.tokens_per_step:,} tokens = {tokens:,} tokens, scored "
      f"on {FINAL} held-out windows of {MODEL.block_size} tokens")
print(f"peak learning rates: {base.coef_lr:g} for the subspace coefficients a, {base.scale_lr:g} "
      f"for SAID's scales; the arrays trained directly get the rates section 4 chooses"
      f"{f' (quick mode: {base.lr:g})' if QUICK else ''}")
print(f"SAID counts d coefficients plus one scale per tensor: d + {M_TENSORS} trainable numbers "
      f"(at d = 1: {build(MethodSpec('said', d=1), MODEL).n_trainable}); the x axis below is that "
      f"count")
print(f"about {n_scratch + n_ft} runs' worth of training in all ({n_scratch} from scratch, {n_ft} "
      f"fine-tuning, each pretrained model counted as 12){' (the full sweep)' if FULL else ''}; "
      f"finished runs are reused from {shown(RECORD)}")

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
      f"({sum(f['bytes'] for f in manifest['files']):,} bytes, its own stdlib folder); "
      f"{len(files) - n_val} for training ({manifest['splits']['train']['tokens']:,} tokens), "
      f"{n_val} held out ({manifest['splits']['val']['tokens']:,} tokens); file list with sha256: "
      f"{OUT / 'stdlib_files.json'}")
held = [f["name"] for f in digest["files"] if f["split"] == "val"]
print(f"held-out files: {', '.join(held[:8])}{', ...' if len(held) > 8 else ''}")
ft_base = dataclasses.replace(base, data_dir=str(STDLIB_DIR))


# %% [markdown]
# ## 4. From scratch
# The gap has two ends, and each must be trained well, or the fractions measure a bad rate
# instead of the subspace. "Full training" must be full training done well: a subspace near
# d = D is nearly a rotation of the whole parameter space trained at the coefficients' own rate,
# and at a short budget it can beat full training run at too timid a rate. "Embeddings only" must
# be the baseline done well: every subspace method trains the same embeddings plus d numbers, so
# their rate is the baseline's. So two rates are chosen first, each on its own runs: full
# training's peak rate, as the one that gives full training its lowest final loss averaged over
# the seeds (a small grid, extended past an edge best), and the embeddings' peak rate, the same
# way on embeddings only, used for the embeddings of every method. The coefficients keep their
# default rate. The choice is made on the mean over every seed, and the margin to the next rate
# is printed. An earlier version gave the embeddings full training's rate; full training's
# optimum is flat across the upper half of its grid, so rounding that differed between two
# machines could move it across that range, while embeddings only fails at the top of the grid
# (its loss ends above its starting value): the baseline, and every fraction, moved with a coin
# toss. With a rate of their own, a near tie moves only the loss of the runs that tied. Even
# that is too much: the end of the gap that moves moves every fraction. So each sweep keeps the
# rate it settled on in the committed default run (`KEEP` above) unless another rate beats it by
# a resolved margin, and prints which it did: on a near tie every machine uses the same rate.
# Then, for each seed: embeddings only, full training, and for every d Li et al.'s offset form
# with a Fastfood projection ("DID", `fastfood`) and SAID. Seed s gives every run the same
# batches.

# %%
TRAINED = []                     # (tokens, training seconds) of every run, reused ones included


def finals_of(cfgs, seeds=SEEDS):
    """[final held-out losses over seeds] of each of cfgs (trained now, all at once, or reused)."""
    runs = run_many([with_seed(cfg, s) for cfg in cfgs for s in seeds], final_windows=FINAL,
                    verbose=False, record=RECORD)
    TRAINED.extend((r["tokens"], r["elapsed"]) for r in runs)
    return np.reshape([r["final"]["loss"] for r in runs], (len(cfgs), len(seeds))).tolist()


def finals(cfg, seeds=SEEDS):
    """Final held-out losses of cfg over seeds."""
    return finals_of([cfg], seeds)[0]


# %%
SCRATCH, FINETUNE = "from scratch on C4", "fine-tuning on Python"
full_lr = None
if not QUICK:
    full_lr = pick_lr(lambda lr: finals(dataclasses.replace(base, method=MethodSpec("full"),
                                                            lr=lr)), SCRATCH_LRS, "from scratch",
                      keep=KEEP["from scratch", "full training"])
    base = dataclasses.replace(base, lr=pick_lr(
        lambda lr: finals(dataclasses.replace(base, method=MethodSpec("embeddings"), lr=lr)),
        SCRATCH_LRS, "from scratch", who="embeddings only",
        keep=KEEP["from scratch", "embeddings only"]))
scratch = sweep(base, SCRATCH_GRID, SCRATCH, losses=finals_of, full_lr=full_lr)

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
                     final_windows=FINAL, verbose=False, record=False)   # its log: the folder's
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
# ## 5. Fine-tuning: C4 models adapted to Python
# A model is pretrained, fully (at full training's rate from section 4), on the C4 training
# split, and every fine-tuning run starts from its weights (`init_from`): full fine-tuning trains
# them all, embeddings-only fine-tuning (the baseline) freezes every non-embedding tensor at
# them, and DID and SAID use them as theta_0, so at a = 0 each starts exactly at the pretrained
# model.
#
# Which pretrained model matters as much as which batches. Pretraining the same model under
# another BLAS kernel's float rounding moves the fine-tuning baseline by about as much as a new
# seed does, and can flip the chosen rate, which moves every fine-tuning run at once
# (chapters/README.md gives the runs that show it). So a d_int90 measured from one pretrained
# model, with its rate chosen on one seed and an interval over the fine-tuning seeds alone,
# claims a certainty it does not have: such a measurement did not reproduce from an empty cache,
# by far more than its interval allowed. A pretrained model is one draw, like a seed. So here
# each replicate r has its own pretrained model (pretraining seed r) and fine-tunes from it with
# seed r. The bootstrap over replicates then covers both, and each replicate's own d_int90 is
# printed next to it. How many replicates? A replicate's own d_int90 can sit anywhere from a few
# numbers to beyond the grid, so a handful of them gives an interval that is narrow by luck: with
# five, two runs of this chapter on two BLAS kernels each landed outside the other's interval
# (chapters/README.md). The default is fifteen.
#
# A pretrained model is kept as its weights alone, in a file whose bytes depend only on the
# weights and a note naming the pretraining run (`stable_weights`): the runs that start from it
# are identified by that run, so they are found again (in out/runs/ or in the committed record)
# whenever it is asked for again. Made again on another machine, a pretrained model rounds
# differently (another BLAS kernel moved one's loss by 0.03 nats, chapters/README.md), and the
# recorded fine-tuning runs stay those made from the committed machine's models; the pretrained
# models' own scores printed below come from the weights on this machine.

# %%
pre_cfg = dataclasses.replace(base, method=MethodSpec("full"), steps=PRETRAIN_STEPS,
                              lr=full_lr or base.lr, batch_size=4 if QUICK else 16,
                              warmup=max(1, PRETRAIN_STEPS // 10),
                              eval_every=max(1, PRETRAIN_STEPS // 4))
c4_id = {k: v["sha256"] for k, v in data.load_splits(pre_cfg.data_dir)[1]["splits"].items()}
stdlib_val = data.load_tokens("val", STDLIB_DIR)
book = Record(RECORD)
PRETRAINED, pre_loss, untouched, pre_s = {}, [], [], 0.0
# their weights are needed, so they are made (or reused) in out/runs/, and recorded there after
pres = run_many([with_seed(pre_cfg, r) for r in REPLICATES], final_windows=FINAL, verbose=False,
                record=False)
for r, pre in zip(REPLICATES, pres):
    cfg = with_seed(pre_cfg, r)
    if pre["key"] not in book.runs():
        book.add(pre, cfg, FINAL, c4_id)
    PRETRAINED[r] = str(stable_weights(
        Path(pre["dir"]) / "checkpoint.npz", OUT / "pretrained" / f"seed{r}_{pre['key']}.npz",
        note={"pretraining run": pre["key"], "seed": r}))
    params, _, _ = load_params(PRETRAINED[r])
    pre_loss.append(pre["final"]["loss"])
    untouched.append(evaluate_params(params, MODEL, stdlib_val, batch_size=8,
                                     max_windows=FINAL)["loss"])
    pre_s += pre["elapsed"]

# %%
print(f"{len(REPLICATES)} models pretrained on C4, {PRETRAIN_STEPS} steps of "
      f"{pre_cfg.tokens_per_step:,} tokens each ({PRETRAIN_STEPS * pre_cfg.tokens_per_step:,} "
      f"tokens); held-out C4 loss per pretraining seed: "
      f"{', '.join(f'{v:.4f}' for v in pre_loss)}")
print(f"the same models on the held-out Python files, untouched: "
      f"{', '.join(f'{v:.4f}' for v in untouched)}")
print(f"their weights: {OUT / 'pretrained'}")

# %% [markdown]
# Then the fine-tuning runs, each from its replicate's pretrained model: the two rates are chosen
# as in section 4, full fine-tuning's and the embeddings', and the grid of d is swept.

# %%
def ft_finals_of(cfgs):
    """[final losses over the replicates] of each fine-tuning cfg, all trained at once:
    replicate r starts from pretrained model r and fine-tunes with seed r."""
    runs = run_many([with_seed(dataclasses.replace(cfg, init_from=PRETRAINED[r]), r)
                     for cfg in cfgs for r in REPLICATES], final_windows=FINAL, verbose=False,
                    record=RECORD)
    TRAINED.extend((x["tokens"], x["elapsed"]) for x in runs)
    return np.reshape([x["final"]["loss"] for x in runs], (len(cfgs), len(REPLICATES))).tolist()


def ft_finals(cfg):
    """Final losses of a fine-tuning cfg over the replicates."""
    return ft_finals_of([cfg])[0]


ft_full_lr = None
if not QUICK:
    ft_full_lr = pick_lr(lambda lr: ft_finals(dataclasses.replace(
        ft_base, method=MethodSpec("full"), lr=lr)), FT_LRS, "fine-tuning",
        keep=KEEP["fine-tuning", "full training"])
    ft_base = dataclasses.replace(ft_base, lr=pick_lr(
        lambda lr: ft_finals(dataclasses.replace(ft_base, method=MethodSpec("embeddings"),
                                                 lr=lr)),
        FT_LRS, "fine-tuning", who="embeddings only", keep=KEEP["fine-tuning", "embeddings only"]))
finetune = sweep(ft_base, FT_GRID, FINETUNE, losses=ft_finals_of, full_lr=ft_full_lr)

# %% [markdown]
# ## 6. d_int90, both regimes, with bootstrap intervals
# From scratch the bootstrap resamples seeds; in fine-tuning it resamples replicates, each a
# pretrained model with its own fine-tuning runs. Next to the interval, each seed's or
# replicate's own d_int90 (its own curve against its own baseline and full run): their spread is
# what one more run, made anywhere, would be drawn from.

# %%
results = {}
for regime, res in (("from scratch", scratch), ("fine-tuning", finetune)):
    for key, name in (("did", "DID (Fastfood)"), ("said", "SAID")):
        r = d_int(res[key], res["base"], res["full"], level=0.9)
        results[regime, name] = r
        print(f"{regime:<12} {name:<15} {describe(r)}")
        if r["d_int"] is not None and not r["at_first"]:
            print(f"{'':<28} each {'replicate' if regime == 'fine-tuning' else 'seed'} alone: "
                  + ", ".join("not reached" if math.isinf(c) else f"{c:,.0f}" for c in r["each"]))
(OUT / "d_int.json").write_text(json.dumps(
    {f"{a} / {b}": {k: v for k, v in r.items() if k != "boot"} for (a, b), r in results.items()},
    indent=1, default=float) + "\n")

# %% [markdown]
# **Does SAID need fewer numbers than DID?** Two ways to ask. First, at each d of the grid: SAID
# and DID at the same d share their replicate's pretrained model and batches, so their final
# losses pair up replicate by replicate (a positive difference: SAID ends lower). SAID trains
# one scale per tensor more, so it is the same subspace with a few more numbers.

# %%
for d, ld, ls in zip(FT_GRID, finetune["did"].values(), finetune["said"].values()):
    iv = paired_interval(ls, ld)                                       # DID minus SAID
    resolved = iv["lo"] > 0 or iv["hi"] < 0
    print(f"fine-tuning, d = {d:>7,}: DID - SAID = {iv['diff']:+.4f} nats, 95% interval "
          f"[{iv['lo']:+.4f}, {iv['hi']:+.4f}]{'' if resolved else ' (not resolved)'}")

# %% [markdown]
# Second, at 90%: the two bootstraps drew the same resamples (same seed), so the ratio of their
# d_int90 can be read replicate by replicate and resample by resample.

# %%
f_did, f_said = results["fine-tuning", "DID (Fastfood)"], results["fine-tuning", "SAID"]
if f_did["d_int"] is not None and f_said["d_int"] is not None:
    said_b, did_b = np.array(f_said["boot"]), np.array(f_did["boot"])    # inf: not reached
    both = np.isfinite(said_b) & np.isfinite(did_b)
    ratio = said_b[both] / did_b[both]
    RATIO = {"point": f_said["d_int"] / f_did["d_int"],
             "lo": float(np.percentile(ratio, 2.5)) if len(ratio) else math.nan,
             "hi": float(np.percentile(ratio, 97.5)) if len(ratio) else math.nan,
             "fewer": sum(s < d for s, d in zip(f_said["each"], f_did["each"]))}
    print(f"fine-tuning: SAID's d_int90 / DID's = {RATIO['point']:.2f} (95% bootstrap interval "
          f"{RATIO['lo']:.2f} to {RATIO['hi']:.2f}, over the resamples where both reach 90%); "
          f"SAID needs fewer numbers in {RATIO['fewer']} of {len(REPLICATES)} replicates")
else:
    RATIO = None
    print("fine-tuning: one of the two curves does not reach 90%, so there is no ratio")

# %%
fig, clipped = gap_closed_figure(
    results, title=f"gap closed against d: {MODEL.n_layer}x{MODEL.n_embd} GPT-2, {tokens:,} tokens "
                   f"per run; {len(SEEDS)} seeds from scratch, {len(REPLICATES)} pretrained "
                   f"replicates fine-tuning\nbands: 95% bootstrap; x: d_int90 and its interval "
                   f"(cut at the grid's end)")
save_figure(fig, OUT / "gap_closed.png")
if clipped:
    print(f"{clipped} point(s) lie outside (-0.5, 2.5) and are drawn on the edge of the figure")

# %%
rows = ["| regime | method | d_int90 (95% bootstrap interval) or fraction reached |",
        "|---|---|---|"]
for (regime, name), r in results.items():
    rows.append(f"| {regime} | {name} | {describe(r)} |")
rows += ["", "| regime | d | DID gap closed | SAID gap closed |", "|---|---:|---:|---:|"]
for regime, grid in (("from scratch", SCRATCH_GRID), ("fine-tuning", FT_GRID)):
    a, b = results[regime, "DID (Fastfood)"], results[regime, "SAID"]
    for d, fa, fb in zip(grid, a["fraction"], b["fraction"]):
        rows.append(f"| {regime} | {d:,} | {fa:.1%} | {fb:.1%} |")
(OUT / "results.md").write_text("\n".join(rows) + "\n")
print("\n".join(rows))
print(f"table: {OUT / 'results.md'}")

# %% [markdown]
# ## 7. What SAID's scales learned
# Each tensor's scale lambda_t starts at 1. Read from the last step of each run's log (so these
# runs are asked for in out/runs/, where their logs are), averaged over seeds or replicates and
# over the tensors of each kind: which parts of the network did SAID turn up or down?

# %%
mid = 1000                                                 # on both grids


def scales(configs):
    """{tensor kind: mean final lambda} over the runs of `configs` (their logs)."""
    runs = run_many(configs, final_windows=FINAL, verbose=False, record=False)
    kinds = {}
    for r in runs:
        last = [json.loads(line) for line in open(os.path.join(r["dir"], "log.jsonl"))
                if '"event": "step"' in line][-1]
        for (name, _), lam in zip(non_embedding_table(MODEL), last["scale"]):
            kinds.setdefault(name.split(".", 2)[-1], []).append(lam)
    return {k: float(np.mean(v)) for k, v in kinds.items()}


said_mid = MethodSpec("said", d=mid)
lam = {"from scratch": scales([with_seed(dataclasses.replace(base, method=said_mid), s)
                               for s in SEEDS]),
       "fine-tuning": scales([with_seed(dataclasses.replace(ft_base, method=said_mid,
                                                            init_from=PRETRAINED[r]), r)
                              for r in REPLICATES])}
print(f"SAID at d = {mid:,}: mean final scale per kind of tensor")
for kind in lam["from scratch"]:
    print(f"  {kind:<22} from scratch {lam['from scratch'][kind]:6.3f}   fine-tuning "
          f"{lam['fine-tuning'][kind]:6.3f}")

# %% [markdown]
# ## What this chapter showed
# For a language model, "90% of full training" has to be a share of a *gain*: a ratio of losses
# is close to 1 for almost any model (section 4 printed it), so it measures nothing. As a share of
# what full training gains over embeddings only, intrinsic dimension becomes a question about a
# budget and a starting point, not about the model alone.
#
# From scratch, at this short budget, one random direction can do much of the work, and section 4
# showed how: its coefficient grows until every random weight is turned up as a whole, and a
# frozen random transformer at a larger scale is much of what early full training buys. Where the
# share printed below for d = 1 is large, d_int90 from scratch measures that volume knob (the one
# chapter 07 finds behind five numbers), not learned structure. Fine-tuning asks more of a
# subspace: a C4 model must learn Python, the share closed grows along the grid of d, and the
# number needed varies from one pretrained model to another about as much as from one seed to
# another, which is why each replicate pretrains its own model and the bootstrap resamples
# replicates. Where the curve flattens just below 90%, a small change in either end of the gap
# moves its crossing a long way along d: read d_int90's interval before its point, and the share
# closed at each d (and the paired SAID - DID differences) as the better-pinned numbers.
#
# All of this is early training of a 2-layer model whose weights are mostly embeddings; chapter
# 09's long race measures how much of full training's gain a fixed number of subspace directions
# keeps as the budget grows, on a model that must learn in its body. The published numbers, for
# comparison: Li et al. measured d_int90 = 750 for a fully connected MNIST classifier, 290 for
# LeNet on MNIST and 2,900 for LeNet on CIFAR-10, all from scratch; Aghajanyan et al. found about
# 200 numbers reach 90% of full fine-tuning of RoBERTa on MRPC. The post's much longer runs,
# where full training ends far ahead of every reduced model, suggest a larger d_int90 there;
# whether it grows with the budget is what `--full` (8 times the tokens per run) measures.
# Chapter 09's committed results, as each reduced racer's share of full training's gain over
# embeddings only (Fastfood with d = 5,000, and subspaces of 1 and 5 directions, among them):

# %%
for line in committed_finding(Path(__file__).resolve().parent / "results"):
    print(line)

# %% [markdown]
# The measured takeaways of this chapter:

# %%
def short(r):
    """d_int90 with its interval, or how far the curve got."""
    if r["at_first"]:
        return f"d_int90 <= {r['xs'][0]:,} (the grid's smallest point is already at 90%)"
    if r["d_int"] is not None:
        hi = "beyond the grid" if math.isinf(r["hi"]) else f"{r['hi']:,.0f}"
        return f"d_int90 ~ {r['d_int']:,.0f} [{r['lo']:,.0f}, {hi}]"
    return f"90% not reached; at most {r['max_fraction']:.0%} at {r['at']:,}"


s_did, s_said = results["from scratch", "DID (Fastfood)"], results["from scratch", "SAID"]
f_did, f_said = results["fine-tuning", "DID (Fastfood)"], results["fine-tuning", "SAID"]
train_s = sum(s for _, s in TRAINED) + pre_s
full_sweep_h = 8 * train_s / 3600 if not FULL else train_s / 3600

# %%
takeaways = [
    f"From scratch ({tokens:,} tokens per run, {len(SEEDS)} seeds): DID {short(s_did)}; SAID "
    f"{short(s_said)} trainable numbers. "
    f"Fine-tuning C4 models to Python ({len(REPLICATES)} replicates, each its own pretrained "
    f"model): DID {short(f_did)}; SAID {short(f_said)}.",
    f"One random direction from scratch (DID, d = 1) closes {s_did['fraction'][0]:.0%} of the "
    f"gap; its coefficient ends at |a| = {min(map(abs, a_final)):.1f} to "
    f"{max(map(abs, a_final)):.1f}: the random weights at {min(grow):.1f}x to {max(grow):.1f}x "
    f"their init scale.",
    f"The gain being shared out: full training is "
    f"{np.mean(scratch['base']) - np.mean(scratch['full']):.2f} nats below embeddings only from "
    f"scratch; full fine-tuning {np.mean(finetune['base']) - np.mean(finetune['full']):.2f} "
    f"below embeddings-only fine-tuning (the untouched pretrained models score "
    f"{min(untouched):.2f} to {max(untouched):.2f} on the Python files).",
    f"The largest share of that gain reached (above 100%: a subspace beat full training at this "
    f"budget and rate): from scratch {s_did['max_fraction']:.0%} (DID, at {s_did['at']:,}) and "
    f"{s_said['max_fraction']:.0%} (SAID, at {s_said['at']:,}); fine-tuning "
    f"{f_did['max_fraction']:.0%} and {f_said['max_fraction']:.0%}.",
    f"This sweep's training took {train_s / 60:.0f} minutes (summed over its runs, reused ones "
    f"included); the full sweep would need about {full_sweep_h:.1f} hours on this machine.",
    f"Every run is a line of {shown(RECORD)}: a second run, on any machine whose pretrained "
    f"models come out bit for bit the same, trains only those. This process's BLAS kernel: "
    f"{blas_kernel()} (each recorded run names its own).",
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
#    (`smolgpt.companions.ch02_subspace_toy`), compute d_int90 both ways with
#    `smolgpt.companions.ch08_intrinsic.crossing`. Which is larger, and why?
