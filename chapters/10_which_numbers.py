# %% [markdown]
"""
# Chapter 10 — Which few numbers? Gains, biases and random directions on a frozen random body

Question: the long race (chapter 09) found that on the byte model *how many* numbers are trained
buys little by itself: 1, 5 and 250 random-basis numbers keep about the same share of full
training's gain over embeddings only, and Fastfood's 5,000 keep more. Work on frozen random
networks points at *which* numbers instead: train only the gains and biases of the normalisation
layers, and a random network learns far more than with the same count of other weights
(Frankle, Schwab and Morcos, "Training BatchNorm and Only BatchNorm", ICLR 2021). At a fixed
count, which numbers should a few-parameter GPT-2 train?

Design: ten new racers on the long race's byte model, budget and seeds. Nine train *knobs* of
the frozen random body, numbers that each move a whole channel: the LayerNorm gains and biases
(`norms`, 2,304 numbers), one gain per output channel of every matrix (`gains`, 4,608), the
matrices' biases (`biases`, 4,608), one gain per attention head, scaling its output, and one per
MLP (`heads`, 20), the norms and gains together (`norms+gains`, 6,912); directly, or through a
random subspace of them (250 or 5,000 random directions among the knobs). The tenth, a
whole-body Fastfood of 2,304 numbers, is the control for the norms at their count. They race the
long race's recorded racers at about equal counts (~250: 5 per tensor, NOLA; ~5,000: Fastfood,
VeRA). Each new racer's rate is tuned on a wide grid (1e-3 to 3, extended while its best sits
on an edge) at a quarter of the budget and checked at the full budget, as in the long race; 3
seeds, paired with the long race's seed by seed. The chapter ends with a record: the best share
of full training's gain kept with at most 250 and at most 5,000 trainable numbers, under fixed
rules, and one command that scores a new recipe under them.

Assumes: chapters 02, 03 and 09; the long race's training set (point SMOLGPT_C4_FILES at the
same C4 files as chapter 09; the chapter refuses other data) and its committed record
(chapters/results/09_long_race.jsonl), whose runs are reused, never trained again.
Takes: from an empty cache, hours of training (10 new racers: 8 or more quarter-budget runs each
to tune, 2 or more at the full budget to check, 3 seeds; its closing lines sum them from the
record, and print the machine's matmul rate). Every finished run is kept in
chapters/results/10_which_numbers.jsonl, committed with the chapter, so a second run, also from a
fresh clone, trains nothing and takes seconds; the longer budget (below) trains for hours more.
Quick mode (SMOLGPT_QUICK=1) is for the tests: a micro byte model, a few steps.
Writes: out/10_which_numbers/results.md, record.md, shares.png, gap_longer.png (the longer
budget's) and, in a full-size run, the tables to chapters/results/10_which_numbers.md (the longer
budget's to 10_which_numbers_longer.md).
"""

# %%
import os
import time

import smolgpt  # noqa: F401  first: it tells BLAS how to wait, before NumPy loads BLAS
import numpy as np

from smolgpt import data
from smolgpt.companions.ch09_long_race import budgets, gap_closed, plot_gap_closed
from smolgpt.companions.ch10_which_numbers import (LIMITS, LONG, LONG_BRIDGES, MATCHED, RECORD,
                                                   RESULTS, WhichNumbers, bpb, count,
                                                   default_cost, fmt_bpb, gap_growth,
                                                   gradient_reach, longer_race, longer_table,
                                                   plot_shares, record_table, share, standing,
                                                   structure_verdicts, table_row)
from smolgpt.experiments import out_dir, print_takeaways, quick_mode
from smolgpt.experiments.stats import paired_interval
from smolgpt.experiments.sweep import format_sweep
from smolgpt.layers import gelu_forward, layernorm_forward
from smolgpt.methods import build

# %%
QUICK = quick_mode()                  # SMOLGPT_QUICK=1: the small version the tests run
OUT = out_dir("10_which_numbers")
START = time.time()
w = WhichNumbers(quick=QUICK, record=OUT / "record.jsonl" if QUICK else RECORD)

# %% [markdown]
# ## What a LayerNorm's gain and bias do to a random feature
# Before each attention and MLP, GPT-2 normalises the residual stream x (C numbers per position)
# and then scales and shifts it: `LN(x) = g * xhat + b`, xhat with mean 0 and variance 1 across
# the C channels, g (the gain) and b (the bias) C numbers each. The MLP then reads LN(x) through a
# frozen random matrix W0 (C, 4C): random feature j is `gelu(LN(x) . W0[:, j])`. Write it out:
#
#     LN(x) . W0[:, j]  =  sum_i g_i W0_ij xhat_i  +  b . W0[:, j]
#
# The gains reweight which channels every feature reads; the bias gives every feature its own
# threshold `b . W0[:, j]`: one vector of C numbers sets all 4C thresholds at once, so it cannot
# move one without the others. Here is one random layer at GPT-2's init, and a bias chosen to
# push one feature's input down by three times its own spread.

# %%
rng = np.random.default_rng(0)
C, H = 128, 512
x = rng.standard_normal((2048, C)).astype(np.float32)             # (N, C) residual stream
W0 = (0.02 * rng.standard_normal((C, H))).astype(np.float32)      # (C, 4C) frozen, GPT-2's init
g, b = np.ones(C, np.float32), np.zeros(C, np.float32)


def features(g, b, W=W0):
    """(N, H) the random features gelu(LN(x) @ W) for LayerNorm gain g and bias b."""
    ln, _ = layernorm_forward(x, g, b)
    return gelu_forward(ln @ W)[0]


before = features(g, b)
j = int(np.argmax(before.mean(0)))               # the feature that is on the most
spread = float((layernorm_forward(x, g, b)[0] @ W0[:, j]).std())        # of feature j's input
b_off = -3 * spread * W0[:, j] / np.square(W0[:, j]).sum()   # moves j's input by -3 spreads
after = features(g, b_off)
others = np.arange(H) != j
print(f"feature {j}: mean activation {before[:, j].mean():.4f} -> {after[:, j].mean():.4f} with "
      f"a bias of length {np.linalg.norm(b_off):.2f} along W0[:, {j}]")
print(f"the other {H - 1} features: mean |change| {np.abs(after - before)[:, others].mean():.4f} "
      f"(their mean activation is {before[:, others].mean():.4f})")

# %% [markdown]
# A gain on the matrix's output channel is the finer tool: `W0 diag(g)` multiplies feature j's
# input by g_j, and g_j = 0 switches it off exactly, touching nothing else. A random direction
# in weight space, the subspace methods' move, changes every feature a little, in a random
# pattern (here a step a twentieth of W0's own scale). Of a step that changes the layer's output,
# the share that lands on one chosen feature is all of it for that feature's gain, and about 1/H
# for a random direction.

# %%
gain = np.ones(H, np.float32)
gain[j] = 0.0
off = features(g, b, W0 * gain)                                  # W0 diag(gain)
print(f"gain g_{j} = 0: feature {j} mean {off[:, j].mean():.4f}, the others moved by "
      f"{np.abs(off - before)[:, others].max():.4f} at most")
P = rng.standard_normal((C, H)).astype(np.float32)               # a random direction
step = features(g, b, W0 + 1e-3 * P) - before                    # (N, H)
on_j = np.square(step[:, j]).sum() / np.square(step).sum()
print(f"a random direction: {on_j:.2%} of its change lands on feature {j} (1/H = {1 / H:.2%})")

# %% [markdown]
# ## Which numbers can follow the gradient at the start?
# A rate-free view of leverage, before any training: at the random init, take the gradient G of
# the loss with respect to every body weight on one batch, and ask what share of its squared
# length ||G||^2 each set of trainable directions can follow (`gradient_reach`). A LayerNorm or
# bias knob is one coordinate, so it follows that coordinate's G squared. A channel gain moves
# column j of W0 along itself, the unit direction W0_j / ||W0_j||, so it follows
# <G_j, W0_j>^2 / ||W0_j||^2, G_j being the gradient's column j; a head's or an MLP's gain
# moves all of its output columns together, and follows <G, W0>^2 / ||W0||^2 over them. A
# random d-dimensional subspace of D dimensions follows d / D of any vector in expectation.
# This is plain gradient descent's view of the first step; Adam moves every number by about its
# rate whatever its gradient, and the race below is what decides.

# %%
data_id = w.check_data()                 # the sha256 of the prepared splits, for the record
train_tokens = data.load_tokens("train", w.plan.folder, w.plan.base.gpt.tokenizer)
xb, yb = data.eval_windows(train_tokens, 4 if QUICK else 16, w.plan.base.gpt.block_size)
reach = gradient_reach(w.plan.base.gpt, 0, xb, yb)
for name, (n, followed) in reach.items():
    print(f"  {name:<52} {n:>7,} numbers: follows {followed:8.4%} of the gradient")

# %% [markdown]
# ## The racers
# The long race's racers are read from its record at the rates it chose. The new ones, with the
# count each method reports (smolgpt counts trainable non-embedding numbers; the embeddings are
# trained by every racer).

# %%
rates = w.long_rates()
for racer in LONG + LONG_BRIDGES:
    r = rates[racer]
    print(f"  long race  {racer:<32} {r['field']} = {r['value']:.3g}")
for racer, spec in w.racers.items():
    print(f"  new        {racer:<32} {spec.label():<36} "
          f"{build(spec, w.plan.base.gpt).n_trainable:>6,} numbers")

# %% [markdown]
# ## Each new racer's rate
# A knob moves a whole channel, so its best Adam rate can sit far from a weight matrix's or a
# subspace coefficient's. Every new racer sweeps its rate `coef_lr` (the knobs' and the
# coefficients' rate; the embeddings stay at embeddings only's rate) over a wide grid at a
# quarter of the budget, seed 0, extended up to twice while its best is on an edge; then the
# choice and its two neighbours run at the full budget (extended again while the best is on an
# edge), and the race uses the full budget's best where a neighbour wins there. The sweeps
# print the final held-out loss in nats per token; on the byte model a token is a byte (but for
# the document separators), so the loss over ln 2 is about the bits per byte of the tables.

# %%
rates, sweeps = w.new_rates(rates)
for racer in w.racers:
    r, (quarter, check) = rates[racer], sweeps[racer]
    print(format_sweep(quarter, name=racer) + "\n" + format_sweep(check, name="  checked")
          + f"\n  -> {racer} races at {r['field']} = {r['value']:.3g}"
          + (" (set at the full budget)" if r.get("at_full_budget") else "") + "\n")

# %% [markdown]
# ## The race
# Every racer at its rate, seeds 0, 1 and 2 at the full budget; seed s gives every racer,
# the long race's included, the same batches in the same order.

# %%
results = w.race(rates)
E, F = bpb(results, "embeddings only").mean(), bpb(results, "full").mean()
print(f"full training {fmt_bpb(results, 'full')} bits per byte, embeddings only "
      f"{fmt_bpb(results, 'embeddings only')}: the gain a racer's share is counted in")

# %% [markdown]
# ## At equal counts
# At each count, the racers compared there, each with about that many trainable numbers or
# fewer: its final held-out bits per byte (mean +- standard error over seeds) and its share of
# full training's gain over embeddings only; then each new racer against the count's reference
# (the long race's racer there, or the whole-body Fastfood of 2,304), as a paired 95% interval,
# and whether the new racer is lower (its interval below 0), higher (above 0) or not resolved
# from it. The last table puts the norms and gains together (6,912) against the long race's
# nearest count below, Fastfood's 5,000.

# %%
lines = []
for target, racers in MATCHED.items():
    here = [r for r in racers if r in results]
    rows = [f"### ~{target:,} trainable non-embedding numbers or fewer, "
            f"{w.plan.budget():,} bytes, {len(w.seeds)} seeds", "",
            "| racer | trainable non-embedding | rate | bits per byte | share kept |",
            "|---|---:|---|---:|---:|"]
    for r in sorted(here, key=lambda r: bpb(results, r).mean()):
        rows.append(table_row(results, r, rates[r]))
    print("\n".join(rows))
    main = here[0]                                   # the count's reference
    for r in here[1:]:
        if r in w.racers:
            iv = paired_interval(bpb(results, main), bpb(results, r))
            said = "lower" if iv["hi"] < 0 else "higher" if iv["lo"] > 0 else "not resolved"
            print(f"  {r + ' - ' + main:<50} {iv['diff']:+.4f} bits per byte, 95% "
                  f"[{iv['lo']:+.4f}, {iv['hi']:+.4f}]: {r} {said}")
    print()
    lines += rows + [""]
(OUT / "results.md").write_text("\n".join(lines))
print(f"tables: {OUT / 'results.md'}")

# %%
plot_shares(results, OUT / "shares.png")                         # prints where it went

# %% [markdown]
# ## The record
# The best share of full training's gain over embeddings only with at most 250 and at most 5,000
# trainable non-embedding numbers on the byte model, under the rules printed with it. The
# entries that stood before this chapter are the long race's. To score a recipe of your own
# under the same rules (it tunes the recipe's rate, runs its 3 seeds and prints its paired
# interval against each standing entry it is eligible for; every other run is reused from the
# records), `score` takes the flags of `smolgpt train`'s parameterization group:
#
#     python -m smolgpt.companions.ch10_which_numbers score --method fastfood --d 250 \
#         --coverage norms
#
# `--coverage` picks what a random subspace spans: here the LayerNorm knobs, 2,304 numbers,
# steered by 250 Fastfood directions.

# %%
table = record_table(results, data_id, w)
print(table)
for limit in LIMITS:
    best, tried = standing(results, limit)
    beat = [r for r, iv in tried if iv["hi"] < 0]
    print(f"at most {limit:,}: {len(tried)} challenger(s), {len(beat)} beat {LIMITS[limit]} by a "
          f"paired 95% interval; the record: {best} ({share(results, best):.0%})")
(OUT / "record.md").write_text(table + "\n")
if not QUICK:             # kept beside the record, for the README
    (RESULTS / "10_which_numbers.md").write_text("\n".join(lines) + "\n## The record\n\n"
                                                 + table + "\n")

# %% [markdown]
# ## The gap over a longer budget
# In the long race full training was still falling fast at 4,194,304 bytes while the reduced
# racers' share of its gain was shrinking (chapter 09's figures). Does the gap keep widening?
# Full training, Fastfood, the best new racer, 5 in all and embeddings only run again on
# 16,777,216 bytes, every rate but embeddings only's checked again at that budget, 3 seeds. Each
# run is evaluated at every power-of-two step and every 4,194,304 bytes (the default budget). The
# cell prints each rate's check (as in the sweeps above, with any extension past an edge), then
# the share each racer keeps at the last five of those budgets, and draws it at every one, the
# end of each pass over the training set marked (gap_longer.png). This part trains for
# hours more than the rest of the chapter; it runs with SMOLGPT_CH10_LONGER=1.

# %%
LONGER = os.environ.get("SMOLGPT_CH10_LONGER", "").strip() not in ("", "0")
if LONGER:
    best_new = min(w.racers, key=lambda r: bpb(results, r).mean())
    rates = w.five_in_all(rates)         # 5 in all races here: its rate, from the long race
    longer, checks = longer_race(w, rates, best_new)
    for racer, check in checks.items():                # each rate, checked at this budget
        print(format_sweep(check, name=racer))
    at, shares = budgets(longer), gap_closed(longer)
    last = min(5, len(at))
    print(f"{at[-1]:,} bytes: {at[-1] / train_tokens.size:.1f} passes over the "
          f"{train_tokens.size:,}-byte training set")
    print(f"share of full training's gain kept at the last {last} budgets ("
          + ", ".join(f"{b:,}" for b in at[-last:]) + " bytes):")
    for r in longer:
        if r not in ("full", "embeddings only"):
            print(f"  {r:<32} " + " ".join(f"{v:5.0%}" if np.isfinite(v) else "    -"
                                          for v in shares[r][-last:]))
    plot_gap_closed({"bytes": (w.plan, longer)}, OUT / "gap_longer.png", train_tokens.size)
else:
    print("the longer budget is not part of this run: SMOLGPT_CH10_LONGER=1 runs it")

# %% [markdown]
# The longer budget's table: each racer's rate there, its final score on the held-out windows
# (mean +- standard error over seeds) and the share of full training's gain it keeps on this
# budget. A full-size run keeps it in chapters/results/10_which_numbers_longer.md.

# %%
if LONGER:
    table = longer_table(longer, rates, checks)
    print("\n".join(table))
    if not QUICK:
        (RESULTS / "10_which_numbers_longer.md").write_text("\n".join(table) + "\n")

# %% [markdown]
# A share read off a run's curve is a mean over seeds, with no interval. To give the question
# one: seed by seed, how far behind full training (in bits per byte, on the held-out windows of
# the final score) each racer ends when trained to the default budget and when trained to the
# longer one, and the change between the two. A change whose interval lies above zero means the
# gap widened. Read it beside the share: full training's gain over embeddings only grows with the
# budget too, so a racer can fall further behind in bits per byte and still keep the same share
# of that larger gain.

# %%
longer_said = []                    # the longer budget's verdicts, for the takeaways
if LONGER:
    short = {**results, **w.long.race(rates, w.seeds, racers=["5 in all"])}
    print(f"bits per byte behind full training, paired 95% intervals over {len(w.seeds)} seeds:")
    print(f"  {'':<24} {f'at {w.plan.budget():,} bytes':<24} {f'at {at[-1]:,} bytes':<24} "
          f"the change")
    for r, *ivs in gap_growth(short, longer):
        print(f"  {r:<24} " + " ".join(f"{iv['diff']:+.3f} [{iv['lo']:+.3f}, {iv['hi']:+.3f}]"
                                       for iv in ivs))
        grew = ivs[2]
        said = "it widened" if grew["lo"] > 0 else "it narrowed" if grew["hi"] < 0 else \
            "not resolved"
        longer_said.append(f"From {w.plan.budget():,} to {at[-1]:,} bytes the gap between {r} "
                           f"and full training changed by {grew['diff']:+.3f} bits per byte, 95% "
                           f"[{grew['lo']:+.3f}, {grew['hi']:+.3f}]: {said}; {r} keeps "
                           f"{share(longer, r):.0%} of the gain at {at[-1]:,} bytes.")

# %% [markdown]
# ## Takeaways

# %%
takeaways = []
for target, knob, body, iv in structure_verdicts(results):
    said = "ahead of" if iv["hi"] < 0 else "behind" if iv["lo"] > 0 else "not resolved from"
    takeaways.append(f"Up to ~{target:,} numbers the best knobs, {knob} ({count(results, knob):,}, "
                     f"{share(results, knob):.0%} of the gain), are {said} the best racer that "
                     f"moves the whole body, {body} ({count(results, body):,}, "
                     f"{share(results, body):.0%}): {knob} - {body} = {iv['diff']:+.3f} bits per "
                     f"byte, 95% [{iv['lo']:+.3f}, {iv['hi']:+.3f}].")
for limit in LIMITS:
    best, _ = standing(results, limit)
    takeaways.append(f"At most {limit:,} trainable numbers: the record is {best} "
                     f"({count(results, best):,} numbers), {share(results, best):.0%} of full "
                     f"training's gain over embeddings only ({fmt_bpb(results, best)} bits per "
                     f"byte; the entry before: {LIMITS[limit]}, "
                     f"{share(results, LIMITS[limit]):.0%}).")
runs, hours = default_cost(w)
takeaways.append(f"From an empty cache this chapter's default run trains its {runs} runs, "
                 f"{hours:.1f} h of training on one core (summed from its record; the longer "
                 f"budget's runs left out).")
takeaways.append(f"Every share is of full training's {E - F:.3f} bits per byte over embeddings "
                 f"only on {w.plan.budget():,} bytes, {len(w.seeds)} seeds; every run is kept in "
                 f"{w.plan.record.name}, so a second run trains nothing.")
print_takeaways(takeaways + longer_said, START)

# %% [markdown]
# ## Exercises
# Solutions: `chapters/solutions/10_*.py` (each runs in seconds; a test runs them).
#
# 1. **A gain's gradient.** A layer `x @ (W0 diag(g)) + b` with W0 frozen. Derive dL/dg from the
#    weight gradient dL/dW the layer's backward already computes, then check it against central
#    differences in float64 with gains away from 1 and a random upstream gradient. What does
#    the layer output in a channel whose gain is 0?
# 2. **The knobs of GPT-2 small.** Count by hand the LayerNorm gains and biases, the channel
#    gains, the matrices' biases and the head and MLP gains (`heads`) of GPT-2 small (12
#    blocks, width 768, 12 heads), and check each against the method's own `n_trainable`.
