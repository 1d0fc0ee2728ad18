# %% [markdown]
"""
# Chapter 09 — The long race: when the transformer has to do the learning

Question: chapter 05 reproduced the post's race on `tiny` at 65,536 tokens. There, most of what
any racer learns sits in the embeddings, which every racer trains: `tiny` has 6.4M embedding
weights against 0.8M in its transformer body. Does the post's "giant gap" between full training
and every reduced model open on a model whose body holds most of the weights, over budgets long
enough for full training to pass the context-free unigram line? And does the post's ordering
(full < LoRA < 5 per tensor < 5 in all ~ embeddings only) hold there?

Design: the six racers of chapter 05, and "1 in all" (one number scaling the whole random body:
chapter 07's volume knob), on two models that share one 4 x 128 body: `tiny-bytes`,
which reads UTF-8 bytes (257 ids, 92% of its weights in the body), and `tiny`, which reads GPT-2
tokens (11% in the body). Each racer at its own rate, tuned per model at a quarter of the budget
and checked at the full budget; 3 seeds; every run evaluated at each power-of-two step, so one
run gives its held-out loss at log-spaced budgets. Scores in bits per byte put both models on one
scale. Then, on the byte model, the bridges between LoRA and a random subspace (VeRA, NOLA, and
LoRA at rank 1) race at equal counts against Fastfood (~5,000 numbers) and 5 per tensor (~250).

Assumes: chapters 01-05; the training set of the long race is larger than the other chapters':
point SMOLGPT_C4_FILES at every C4 training file you have (the results below were made with five
sample files of C4 'en' minus a held-out one, 3,591 documents, ~8M bytes).
Takes: hours the first time (its closing lines print the wall time and the machine's matmul
rate). Every finished run is kept in chapters/results/09_long_race.jsonl, committed with the
chapter, so a second run, also from a fresh clone, retrains nothing and takes seconds.
SMOLGPT_MODELS=bytes runs one model only. Quick mode (SMOLGPT_QUICK=1) is for the
tests: a micro byte model, a few steps.
Writes: out/09_long_race/race.png, gap_closed.png, results.md, bridges.md (and, in a default
run, the same tables to chapters/results/09_long_race.md and 09_long_race_bridges.md, which the
README quotes).
"""

# %%
import math
import os
import time
from pathlib import Path

import smolgpt  # noqa: F401  first: it tells BLAS how to wait, before NumPy loads BLAS
import numpy as np

from smolgpt import data
from smolgpt.experiments import out_dir, print_takeaways, quick_mode
from smolgpt.companions.ch09_long_race import (BRIDGES, MATCHED, RACERS, SPECS, LongRace, budgets,
                                           gap_closed, losses, nearest_size, plot_gap_closed,
                                           plot_race)
from smolgpt.experiments.reference import unigram_loss
from smolgpt.experiments.stats import fmt, mean_se, paired_interval, verdict
from smolgpt.experiments.sweep import format_sweep
from smolgpt.layers import blas_kernel
from smolgpt.methods import MethodSpec, build
from smolgpt.model import GPTConfig, count_params, non_embedding_table

# %%
QUICK = quick_mode()                  # SMOLGPT_QUICK=1: the small version the tests run
OUT = out_dir("09_long_race")
START = time.time()
RECORD = (OUT / "record.jsonl" if QUICK else
          Path(__file__).resolve().parent / "results" / "09_long_race.jsonl")
MODELS = os.environ.get("SMOLGPT_MODELS", "bytes" if QUICK else "bytes,tiny").split(",")
SEEDS = (0, 1) if QUICK else (0, 1, 2)

# %% [markdown]
# ## Two models, one body
# The two models differ only in what they read. The embedding table has one row per id: GPT-2's
# 50,257 tokens make `tiny` mostly embeddings, 257 byte values make `tiny-bytes` mostly body.
# Every racer trains the embeddings, so on `tiny` even "embeddings only" trains most weights.

# %%
for name in ("tiny", "tiny-bytes"):
    g = GPTConfig.preset(name)
    body, total = count_params(g, non_embedding=True), count_params(g)
    print(f"{name:<11} reads {g.tokenizer:<5} (V = {g.vocab_size:>6,}, context {g.block_size}): "
          f"{body:,} body weights of {total:,} = {body / total:.0%} in the transformer body")

# %% [markdown]
# ## The data and the budgets
# The byte model sees 4,096 bytes per step (16 windows of 256), `tiny` 2,048 tokens (16 of 128);
# one GPT-2 token is about 4.5 bytes of C4 text, so the two budgets cover similar amounts of
# text. A budget past one pass over the training set repeats data; Muennighoff et al. (2023,
# "Scaling Data-Constrained Language Models") found up to about four passes worth nearly as much
# as new data, and the figure marks where a pass ends if a race gets there.

# %%
plans, train_size, unigram = {}, {}, {}
for model in MODELS:
    plan = LongRace(model, quick=QUICK, record=RECORD)
    m = plan.prepare()
    n = m["splits"]["train"]["tokens"]
    splits, _ = data.load_splits(plan.folder, plan.base.gpt.tokenizer)
    val = splits["val"]
    per_byte = (len(val) - 1) / data.token_bytes(plan.base.gpt.tokenizer)[val[1:]].sum()
    unigram[model] = unigram_loss(splits["train"], val, plan.base.gpt.vocab_size) * per_byte \
        / np.log(2)
    plans[model], train_size[model] = plan, n
    print(f"{model}: training split {n:,} {plan.unit}; full budget {plan.budget():,} "
          f"{plan.unit} = {plan.budget() / n:.2f} passes; unigram line {unigram[model]:.3f} "
          f"bits per byte")

# %% [markdown]
# ## Each racer's rate, per model
# A rate tuned on `tiny` at 65k tokens need not suit a byte model at 4M bytes. Each racer's rate
# is swept at a quarter of the budget (seed 0), the grid extended until its best value has a
# worse neighbour on both sides. The subspace racers sweep their coefficient rate with their
# embeddings at embeddings only's chosen rate.

# %%
rates = {}
for model, plan in plans.items():
    print(f"\n{model}: tuning at {plan.budget(plan.proxy()):,} {plan.unit} per run")
    rates[model] = plan.tune(verbose=False)
    for racer, r in rates[model].items():
        print(format_sweep(r["sweep"]).replace(r["sweep"]["method"], racer, 1))

# %% [markdown]
# ## Is each tuned rate still best at the full budget?
# The sweeps ran at a quarter of the budget, and a longer run can want a different rate. For every
# racer, the chosen rate and its two grid neighbours run again at the full budget (seed 0); only
# embeddings only's rate is not re-checked, since it is also the rate at which every subspace
# racer trains its embeddings. The choice stands if both neighbours end worse; if one wins, the
# sweep goes on at the full budget until its best has a worse neighbour on both sides, and the
# race uses that.

# %%
for model, plan in plans.items():
    rates[model], sweeps = plan.settle(rates[model], verbose=False)
    for racer, r in sweeps.items():
        value = rates[model][racer]["value"]
        moved = "moved to" if rates[model][racer].get("at_full_budget") else "stands:"
        print(f"{model} {racer} at the full budget: "
              + format_sweep(r).replace(r["method"], racer, 1)
              + f"\n  -> {racer} {moved} {r['field']} = {value:.3g}")

# %% [markdown]
# ## The race
# Every racer at its rate, 3 seeds; seed s gives every racer the same batches in the same order,
# so differences between racers are paired seed by seed.

# %%
races = {}
for model, plan in plans.items():
    print(f"\n{model}: {len(RACERS)} racers x {len(SEEDS)} seeds of {plan.budget():,} "
          f"{plan.unit}")
    races[model] = (plan, plan.race(rates[model], SEEDS, verbose=False))

# %% [markdown]
# ## The table at the full budget
# Final held-out loss on 256 windows per run, mean +- standard error over seeds, in bits per
# byte (the runner's bytes count of the scored text) and in nats per token of each model's own
# ids.

# %%
def final(results, racer, key="bits_per_byte"):
    return [r["final"][key] for r in results[racer]]


def table_row(results, racer, rate):
    """| racer | its rate | trainable non-embedding | bits per byte | nats per token |"""
    where = " (set at the full budget)" if rate.get("at_full_budget") else ""
    return (f"| {racer} | {rate['field']} = {rate['value']:.3g}{where} | "
            f"{results[racer][0]['n_trainable']:,} | {fmt(*mean_se(final(results, racer)))} | "
            f"{fmt(*mean_se(final(results, racer, 'loss')))} |")


lines = []
for model, (plan, results) in races.items():
    rows = [f"### {model} at {plan.budget():,} {plan.unit}, {len(SEEDS)} seeds", "",
            "| racer | tuned rate | trainable non-embedding | bits per byte | nats per token |",
            "|---|---|---:|---:|---:|"]
    for racer in sorted(results, key=lambda r: np.mean(final(results, r))):
        rows.append(table_row(results, racer, rates[model][racer]))
    rows.append(f"| unigram (context-free) | | | {unigram[model]:.3f} | |")
    print("\n".join(rows) + "\n")
    lines += rows + [""]

# %% [markdown]
# ## The post's ordering, link by link
# For each link, the per-seed differences (paired) and their 95% t-interval: a link holds only
# when its interval excludes 0 in the post's direction. "Kept" is each racer's share of full
# training's gain over embeddings only: 100% is as good as full training, 0% no better than
# training the embeddings alone. Chapter 07 found that on `tiny` at 20k tokens most of what the
# 5 numbers buy is one overall scale of the random weights; "1 in all" is that knob alone, so
# the last line says whether the other 4 numbers add anything here.

# %%
LINKS = [("full", "LoRA"), ("LoRA", "5 per tensor"), ("5 per tensor", "5 in all"),
         ("5 in all", "embeddings only")]
said = {"<": "holds", ">": "REVERSED", "~": "not resolved"}
ahead = {"<": "full training ahead", ">": "the reduced racer ahead", "~": "not resolved"}
verdicts, kept = {}, {}
for model, (plan, results) in races.items():
    print(f"\n{model}:")
    for a, b in LINKS:
        iv = paired_interval(final(results, a), final(results, b))
        verdicts[model, a, b] = verdict(iv)
        print(f"  {a + ' < ' + b:<30} {said[verdict(iv)]:<13} {b} - {a} = {iv['diff']:+.4f} "
              f"bits per byte, 95% [{iv['lo']:+.4f}, {iv['hi']:+.4f}]")
    E, F = np.mean(final(results, "embeddings only")), np.mean(final(results, "full"))
    kept[model] = {r: (E - np.mean(final(results, r))) / (E - F) for r in results}
    print("  kept: " + ", ".join(f"{r} {kept[model][r]:.0%}" for r in RACERS
                                 if r not in ("full", "embeddings only")))
    iv = paired_interval(final(results, "5 in all"), final(results, "1 in all"))
    print(f"  the volume knob: 1 in all - 5 in all = {iv['diff']:+.4f} bits per byte, 95% "
          f"[{iv['lo']:+.4f}, {iv['hi']:+.4f}] ({said[verdict(iv)]} that 5 numbers beat 1)")
    closest = min((r for r in results if r != "full"), key=lambda r: np.mean(final(results, r)))
    iv = paired_interval(final(results, "full"), final(results, closest))
    print(f"  the closest reduced racer: {closest} - full = {iv['diff']:+.4f} bits per byte, 95% "
          f"[{iv['lo']:+.4f}, {iv['hi']:+.4f}] ({ahead[verdict(iv)]})")

# %% [markdown]
# ## Along the way
# The same runs at every power-of-two step. These points lie inside one cosine schedule planned
# for the full budget, so they are not what a run planned for that smaller budget would reach,
# but every racer is measured at the same points of the same schedule.

# %%
for model, (plan, results) in races.items():
    x, share = budgets(results), gap_closed(results)
    full = losses(results, "full").mean(0) * plan.bits_per_token_to_byte() / np.log(2)
    crossed = x[full < unigram[model]]
    print(f"{model}: full training passes the unigram line at "
          f"{f'{crossed[0]:,} {plan.unit}' if len(crossed) else 'no budget raced'}")
    last = min(5, len(x))
    for racer in ("LoRA", "5 per tensor", "Fastfood", "5 in all", "1 in all"):
        print(f"  {racer:<13} kept " + " ".join(f"{s:5.0%}" if np.isfinite(s) else "    -"
                                                  for s in share[racer][-last:]) +
              f"  at the last {last} budgets ({x[-last]:,} to {x[-1]:,} {plan.unit})")
race_png = plot_race(races, unigram, train_size, OUT / "race.png")
gap_png = plot_gap_closed(races, OUT / "gap_closed.png")
(OUT / "results.md").write_text("\n".join(lines))
print(f"table: {OUT / 'results.md'}")
if not QUICK:          # kept beside the record: the README quotes it, and a test checks both
    (RECORD.parent / "09_long_race.md").write_text("\n".join(lines))

# %% [markdown]
# ## At equal counts: the bridges
# The race above sets parameterizations of very different sizes against each other. VeRA and
# NOLA (chapter 04) write a low-rank update of every weight matrix with factors drawn at random,
# so that, like a random subspace, they train only a handful of numbers. At equal counts they
# ask: do a few numbers do more as the coefficients of a low-rank function, or of a random
# direction through all the weights? Each bridge is sized so that its trainable non-embedding
# count on the byte model is nearest one of the race's: Fastfood's (d = 5,000) and 5 per
# tensor's. LoRA can go no lower than rank 1, which on this body is more than 5,000 numbers, so
# it races at ~5,000 with more numbers than the others. The counts, on one 128 x 128 matrix and
# on the model: each formula, then the count the method itself reports.

# %%
body = GPTConfig.preset("tiny-bytes")
table = non_embedding_table(body)
layer = "h.0.attn.c_proj.weight"
m, n = dict(table)[layer]                                           # (in, out)
mats = [s for _, s in table if len(s) == 2]          # the weight matrices LoRA, VeRA, NOLA adapt
L, sum_mn, sum_n = len(mats), sum(a + b for a, b in mats), sum(b for _, b in mats)
FORMULAS = {            # (on one m x n matrix, on the model)
    "fastfood": lambda s: ("-", f"d = {s.d:,}"),
    "basis": lambda s: (f"d = {s.d}", f"d x {len(table)} tensors = {s.d * len(table):,}"),
    "lora": lambda s: (f"r (m + n) = {s.rank * (m + n)}", f"r x {sum_mn:,} = {s.rank * sum_mn:,}"),
    "vera": lambda s: (f"r + n = {s.rank + n}", f"{L} r + {sum_n:,} = {L * s.rank + sum_n:,}"),
    "nola": lambda s: (f"k + l = {s.nola_k + s.nola_l}",
                       f"{L} (k + l) = {L * (s.nola_k + s.nola_l):,}")}
print(f"tiny-bytes: {layer} is m x n = {m} x {n}; the body has {len(table)} tensors, {L} of "
      f"them weight matrices (sum of their m + n: {sum_mn:,}, of their n: {sum_n:,})")
for count, racers in MATCHED.items():
    for racer in racers:
        method = build(SPECS[racer], body)
        shapes = method.trainable_shapes()
        mine = (shapes["coef"][-1] if SPECS[racer].per_tensor else "-") if "coef" in shapes \
            else sum(math.prod(s) for key, s in shapes.items() if layer in key)
        one, whole = FORMULAS[SPECS[racer].name](SPECS[racer])
        print(f"  ~{count:<6,} {racer:<13} one matrix: {one:<17} {f'({mine})':<6} the model: "
              f"{whole:<23} ({method.n_trainable:,})")

# %% [markdown]
# How the sizes were chosen: of every VeRA rank and every NOLA k = l up to 256, the one whose
# count is nearest each target (of two as near, the smaller), so a bridge may have a few more
# numbers than the racer it is matched with, as NOLA k = l = 8's 256 against 250 does.

# %%
for name, size in (("VeRA r", lambda r: MethodSpec("vera", rank=r)),
                   ("NOLA k = l", lambda k: MethodSpec("nola", nola_k=k, nola_l=k))):
    print(f"{name} nearest each count: " + ", ".join(
        "{} ({:,}) at ~{:,}".format(*nearest_size(size, range(1, 257), c, body), c)
        for c in MATCHED))

# %% [markdown]
# VeRA's count cannot go below the sum of the matrices' output widths: it has no entry at ~250.
# The bridges' rates are tuned as the racers' were (a quarter of the budget, seed 0, the grid
# extended until interior, then checked at the full budget and moved if a neighbour wins): VeRA's
# vectors at `vera_lr`, NOLA's coefficients at `nola_lr`, both with their embeddings at
# embeddings only's rate, LoRA's factors and embeddings at `lr`. Then 3 seeds each, seed s on the
# same batches as every racer above, so the bridges pair with Fastfood and 5 per tensor seed by
# seed.

# %%
BRIDGED = [model for model in races if model == "bytes"]        # on the byte model only
matched = {}
for model in BRIDGED:
    plan, results = races[model]
    rates[model] = plan.tune(verbose=False, racers=BRIDGES, rates=rates[model])
    rates[model], sweeps = plan.settle(rates[model], racers=BRIDGES, verbose=False)
    for racer in BRIDGES:
        print(format_sweep(sweeps[racer]).replace(sweeps[racer]["method"], racer, 1)
              + f"  (at the full budget; {rates[model][racer]['field']} = "
              f"{rates[model][racer]['value']:.3g} races)")
    print(f"\n{model}: {len(BRIDGES)} bridges x {len(SEEDS)} seeds of {plan.budget():,} "
          f"{plan.unit}")
    matched[model] = {**results, **plan.race(rates[model], SEEDS, verbose=False,
                                             racers=BRIDGES)}
if not BRIDGED:
    print("the bridges race on the byte model: run with SMOLGPT_MODELS=bytes (or bytes,tiny)")

# %% [markdown]
# ### The tables at equal counts
# Final held-out loss of each racer at the full budget, mean +- standard error over seeds, with
# the count it trains; the main race's racers are its own runs.

# %%
bridge_lines = []
for model in BRIDGED:
    plan, results = races[model][0], matched[model]
    for count, racers in MATCHED.items():
        rows = [f"### {model} at ~{count:,} trainable non-embedding numbers, "
                f"{plan.budget():,} {plan.unit}, {len(SEEDS)} seeds", "",
                "| racer | tuned rate | trainable non-embedding | bits per byte | nats per token |",
                "|---|---|---:|---:|---:|"]
        rows += [table_row(results, racer, rates[model][racer])
                 for racer in sorted(racers, key=lambda r: np.mean(final(results, r)))]
        print("\n".join(rows) + "\n")
        bridge_lines += rows + [""]
(OUT / "bridges.md").write_text("\n".join(bridge_lines))
print(f"tables: {OUT / 'bridges.md'}")
if not QUICK and BRIDGED:   # beside the main table: the README links it, and a test checks both
    (RECORD.parent / "09_long_race_bridges.md").write_text("\n".join(bridge_lines))

# %% [markdown]
# ### Which family wins at each count?
# Every pair at each count, as paired per-seed differences with their 95% t-interval. A racer
# wins its count only if its interval against every other racer there excludes 0 in its favour.

# %%
winners = {}
for model in BRIDGED:
    results = matched[model]
    for count, racers in MATCHED.items():
        beaten = {r: 0 for r in racers}
        for i, a in enumerate(racers):
            for b in racers[i + 1:]:
                iv = paired_interval(final(results, a), final(results, b))
                lower = {"<": a, ">": b, "~": None}[verdict(iv)]
                if lower:
                    beaten[lower] += 1
                print(f"  ~{count:<6,} {b + ' - ' + a:<28} = {iv['diff']:+.4f} bits per byte, "
                      f"95% [{iv['lo']:+.4f}, {iv['hi']:+.4f}]: "
                      f"{lower + ' lower' if lower else 'not resolved'}")
        best = min(racers, key=lambda r: np.mean(final(results, r)))
        winners[model, count] = (best, beaten[best] == len(racers) - 1)
        print(f"  ~{count:,}: lowest mean {best}, " + ("below every other racer here" if
              winners[model, count][1] else "not resolved below every other racer here") + "\n")

# %% [markdown]
# ### Does the answer move with the budget?
# The same runs at the last power-of-two steps (inside one schedule, as in "Along the way"):
# each bridge's paired difference from the main race's racer at its count (bits per byte; *
# where the 95% interval excludes 0), and the racer with the lowest mean at each budget.

# %%
for model in BRIDGED:
    plan, results = races[model][0], matched[model]
    x, ratio = budgets(results), plan.bits_per_token_to_byte() / np.log(2)
    last = min(5, len(x))
    print(f"{model}: the last {last} budgets, " + ", ".join(f"{b:,}" for b in x[-last:])
          + f" {plan.unit}")
    for count, (main, *bridges) in MATCHED.items():
        bpb = {r: losses(results, r)[:, -last:] * ratio for r in (main, *bridges)}  # (seeds, last)
        for b in bridges:
            ivs = [paired_interval(bpb[main][:, j], bpb[b][:, j]) for j in range(last)]
            print(f"  ~{count:<6,} {b + ' - ' + main:<28} " + " ".join(
                f"{iv['diff']:+.4f}{'*' if verdict(iv) != '~' else ' '}" for iv in ivs))
        leaders = [min(bpb, key=lambda r: bpb[r][:, j].mean()) for j in range(last)]
        print(f"  ~{count:<6,} lowest mean at each: " + ", ".join(leaders))

# %% [markdown]
# ## Takeaways
# What this chapter showed: chapter 05's race left open whether its ordering was the post's or
# an artefact of `tiny`, whose weights are mostly embeddings, and of a budget too short for full
# training to pass the unigram line. The long race asks both again on a model whose body holds
# most of the weights, at budgets chosen long enough for full training to pass that line (the
# section above prints where it does), with each racer at a rate tuned for that model and
# checked at the full budget, so that a gap is not a badly chosen rate. Bits per byte put the
# byte model and `tiny` on one scale. Each link of the post's ordering gets a verdict from a
# paired interval, and each racer's share of full training's gain over embeddings only says how
# much of what training the body buys a reduced racer keeps; "1 in all" against "5 in all" says
# whether five numbers do more than turn the random body up as a whole. The verdict: on the
# byte model, where the body must learn, full training ends far ahead of every reduced racer
# and a handful of numbers keeps only a small share of its gain; on `tiny`, where the embeddings
# carry the race, every reduced racer ends close to full training. On both, one number does as
# well as five. The measured verdicts and shares, per model:

# %%
takeaways = []
for model, (plan, results) in races.items():
    links = "; ".join(f"{a} < {b} {said[verdicts[model, a, b]]}" for a, b in LINKS)
    takeaways.append(
        f"{model} at {plan.budget():,} {plan.unit}, {len(SEEDS)} seeds: {links}. Full training "
        f"{fmt(*mean_se(final(results, 'full')))} bits per byte, embeddings only "
        f"{fmt(*mean_se(final(results, 'embeddings only')))}, unigram line "
        f"{unigram[model]:.3f}; 5 in all keeps {kept[model]['5 in all']:.0%} of full "
        f"training's gain (one volume knob, 1 in all, {kept[model]['1 in all']:.0%}), 5 per "
        f"tensor {kept[model]['5 per tensor']:.0%}, LoRA {kept[model]['LoRA']:.0%}.")
for (model, count), (best, alone) in winners.items():
    order = sorted(MATCHED[count], key=lambda r: np.mean(final(matched[model], r)))
    takeaways.append(
        f"At ~{count:,} trainable numbers ({model}, {len(SEEDS)} seeds), in bits per byte: "
        + ", ".join(f"{r} {fmt(*mean_se(final(matched[model], r)))}" for r in order)
        + f"; {best} is " + ("below every other racer there (paired 95% intervals)." if alone
                            else "not resolved below every other racer there."))
takeaways.append(f"Every run is kept in {RECORD.name}: a second run retrains nothing. This "
                 f"process's BLAS kernel: {blas_kernel()} (each recorded run names its own).")
print_takeaways(takeaways, START)

# %% [markdown]
# ## Exercises
# Solutions: `chapters/solutions/09_*.py` (each runs in seconds from the committed record; a test
# runs them).
#
# 1. **A link by hand.** From `chapters/results/09_long_race.jsonl`, take the byte model's
#    full-budget runs of full training, LoRA and embeddings only, each at the rate the table
#    `chapters/results/09_long_race.md` names. Pair them by seed and compute LoRA - full in bits
#    per byte with its 95% interval (`smolgpt.experiments.stats.paired_interval`), and the share
#    of full training's gain over embeddings only that LoRA keeps. Predict first: does the link
#    full < LoRA hold, and is the share nearer 0 or 1?
# 2. **Bits per byte from nats per token.** A run's record gives its final loss in nats per
#    token and the tokens and bytes it was scored on. Predict its bits per byte, for the byte
#    model and for `tiny`, and check your formula against the recorded `bits_per_byte` of every
#    run. Why does the same loss in nats per token mean far fewer bits per byte for `tiny`?
