# %% [markdown]
"""
# Chapter 07 — Five parameters, taken apart: which choices make them learn nothing?

Question: the post trained GPT-2 with W = a_1 W^1 + ... + a_5 W^5 and its 5 numbers learned
nothing beyond the embeddings; its FAQ suspects the way the combination was instantiated (how a
starts, how each W^k is scaled). Our race (chapter 05) found 5 numbers learning something. Which
of the choices the post left open decide between the two, and why?

Design: one factor at a time from a baseline (the race's "5 in all": no offset, a = ones, each
W^k normalised by 1/sqrt(d), GPT-2's residual scaling, every tensor in the combination around
GPT-2's constants, coefficients at their own learning rate), then the post's choices together
(the "every tensor" reading with the Flax port's init and no tuning). A second combination, the
levels that beat the baseline, runs only when two or more of them do; the chapter prints whether
it ran.
Every setting runs over the same seeds; each is compared with embeddings only by a paired 95%
interval.

*The post* is the blog post "Training smol language models" (2025), which this book
reproduces at laptop scale; chapter 01 introduces it and the papers it builds on.
*FAQ 3* is the third of the questions and answers that close the post: why the
5-parameter model learned nothing; the post suspects how the combination is initialized.
A *paired 95% interval*: seed s gives two methods the same batches, so their difference is
taken seed by seed; the interval is the mean difference +- Student's t times its standard
error. A difference is resolved when the interval excludes 0.

Assumes: chapters 02 and 05 (the random basis, the race); C4 as in data/README.md.
Takes: 39 runs of 20,480 tokens plus the probes: about ten minutes on a 2-core CPU from an empty
cache (measurements: smolgpt/bench/NOTES.md). The time scales with the machine's float32 matmul
rate, which the closing lines print next to this run's wall time. Quick mode
(SMOLGPT_QUICK=1) is for the tests. `--seeds N` / `--steps N` (or SMOLGPT_SEEDS /
SMOLGPT_STEPS) shrink or grow the study.
Writes: out/07_five_parameters/effects.png, coefficients.png, mechanism.png, results.md; the
runs (log.jsonl with the coefficients after every step, checkpoint) under the runs folder.
"""

# %%
import dataclasses
import time
from pathlib import Path

import smolgpt  # noqa: F401  first: it tells BLAS how to wait, before NumPy loads BLAS
import numpy as np

from smolgpt import data
from smolgpt.experiments import (chapter_int, out_dir, print_takeaways, quick_config, quick_mode,
                                 run_seeds, save_figure)
from smolgpt.experiments.coefficients import line_scan
from smolgpt.companions.ch07_five_parameters import (WORD, best_levels, effects_figure,
                                                 faq3_measurements, mechanism_figure, print_moves,
                                                 results_table, scale_trajectory, show,
                                                 start_gradients, trained, trajectories,
                                                 trajectories_figure)
from smolgpt.companions.ch09_long_race import committed_finding
from smolgpt.experiments.stats import fmt, mean_se, paired_interval, verdict
from smolgpt.experiments.tuned import tuned
from smolgpt.methods import MethodSpec, build
from smolgpt.model import GPTConfig
from smolgpt.train import TrainConfig

# %%
QUICK = quick_mode()                  # SMOLGPT_QUICK=1: the small version the tests run
OUT = out_dir("07_five_parameters")
START = time.time()

# %% [markdown]
# ## 1. The settings
# Each setting changes one choice of the baseline. The learning rates are the baseline's (the
# sweep's choice when one is recorded in `smolgpt.experiments.tuned`, else TrainConfig's
# defaults), the same for every setting except the two that give the coefficients the
# embeddings' rate, as the post's untuned run did ("a at the embeddings' rate" and "post:
# literal, GPT-2 scale, no res., one rate").
#
# One factor needs a word. *Coverage* says which tensors the random combination generates.
# "all" (the baseline): every non-embedding tensor, added onto GPT-2's constants, so a LayerNorm
# gain is 1 plus its share of the combination. "literal": every tensor is the combination
# alone, LayerNorm gains and biases included, the most literal reading of "every weight is
# a_1 W^1 + ... + a_5 W^5". "constants": only the weight matrices; LayerNorm and biases stay at
# GPT-2's constants. "trained": only the weight matrices; LayerNorm and biases trained directly.

# %%
BASELINE = MethodSpec("basis", d=5, offset=False)
SEEDS = tuple(range(chapter_int("seeds", 2 if QUICK else 3)))
if QUICK:
    quick_steps = chapter_int("steps", 2)
    base = dataclasses.replace(quick_config(steps=quick_steps), eval_every=quick_steps,
                               eval_windows=4, checkpoint_every=quick_steps)
    final_windows, probe_windows = 4, 1
else:
    steps = chapter_int("steps", 40)
    base = TrainConfig(gpt=GPTConfig.preset("tiny"), steps=steps, batch_size=4,
                       warmup=max(1, steps // 10), eval_every=steps, eval_windows=16,
                       checkpoint_every=steps, sample_tokens=0)
    final_windows, probe_windows = 64, 8
base = dataclasses.replace(base, method=BASELINE, **tuned(BASELINE))
same_rate = {"coef_lr": base.lr}

# %% [markdown]
# The settings, one row each: its name, the factor it belongs to, what it changes in the
# baseline's method (`MethodSpec`) and in its training (`TrainConfig`).

# %%

# name: (factor, changes to the baseline's MethodSpec, changes to its TrainConfig)
SETTINGS = {
    "baseline (5 in all)": ("baseline", {}, {}),
    "a = 1/d": ("a's start", dict(coef_init="inv_d"), {}),
    "a ~ N(0, 1)": ("a's start", dict(coef_init="normal"), {}),
    "a ~ N(0, 1/d)": ("a's start", dict(coef_init="normal_inv_d"), {}),
    "a = 0 + frozen offset": ("a's start", dict(offset=True), {}),
    "W^k at GPT-2 scale": ("W^k's scale", dict(basis_scale="gpt2"), {}),
    "no residual scaling": ("residual scaling", dict(residual_scale=False), {}),
    "literal: LN, biases in": ("coverage", dict(coverage="literal"), {}),
    "LN, biases constant": ("coverage", dict(coverage="constants"), {}),
    "LN, biases trained": ("coverage", dict(coverage="trained"), {}),
    "a at the embeddings' rate": ("coefficient rate", {}, same_rate),
    "post: literal, GPT-2 scale, no res., one rate": (
        "interaction", dict(coverage="literal", basis_scale="gpt2", residual_scale=False),
        same_rate),
}


def config_of(spec_changes, cfg_changes):
    return dataclasses.replace(base, method=dataclasses.replace(BASELINE, **spec_changes),
                               **cfg_changes)


# %%
print(f"model: {base.gpt.n_layer} layers x {base.gpt.n_embd}; {len(SEEDS)} seeds "
      f"{SEEDS}; {base.steps} steps x {base.tokens_per_step:,} tokens = "
      f"{base.steps * base.tokens_per_step:,} tokens per run; peak rates: embeddings lr "
      f"{base.lr}, coefficients coef_lr {base.coef_lr}")
print(f"{'setting':<48} {'factor':<18} {'trainable':>9}  label")
for name, (factor, sc, cc) in SETTINGS.items():
    cfg = config_of(sc, cc)
    n = build(cfg.method, cfg.gpt).n_trainable
    print(f"{name:<48} {factor:<18} {n:>9,}  {cfg.method.label()}"
          f"{'  coef_lr=' + str(cfg.coef_lr) if cc else ''}")

# %% [markdown]
# "LN, biases trained" trains the LayerNorm and bias tensors directly, so it is not a 5-number
# model: its count is its 5 coefficients plus the numbers it trains directly. Everything else
# has 5.
#
# ## 2. The study
# Every setting over the same seeds: seed s gives every run the same batches, and the same
# random basis wherever the setting does not change it, so setting minus embeddings only is a
# paired difference per seed.

# %%
def train_setting(cfg):
    return run_seeds(cfg, SEEDS, final_windows=final_windows)


emb_runs = train_setting(dataclasses.replace(base, method=MethodSpec("embeddings")))
emb = [r["final"]["loss"] for r in emb_runs]
runs = {name: train_setting(config_of(sc, cc)) for name, (_, sc, cc) in SETTINGS.items()}

# %% [markdown]
# The best recipe: for each factor, the level (if any) whose paired interval against the
# baseline lies below zero with the lowest mean; those levels together make one more setting
# (`best_levels`).

# %%
final = {name: [r["final"]["loss"] for r in rs] for name, rs in runs.items()}
vs_base = {name: paired_interval(final["baseline (5 in all)"], f) for name, f in final.items()}
recipe_sc, recipe_cc, used = best_levels(SETTINGS, vs_base, BASELINE)
if len(used) > 1:
    SETTINGS["best levels together"] = ("recipe", recipe_sc, recipe_cc)
    runs["best levels together"] = train_setting(config_of(recipe_sc, recipe_cc))
    final["best levels together"] = [r["final"]["loss"] for r in runs["best levels together"]]
    vs_base["best levels together"] = paired_interval(final["baseline (5 in all)"],
                                                      final["best levels together"])
print(f"levels that beat the baseline (interval below 0): {', '.join(used) or 'none'}"
      + ("; combined as 'best levels together'" if len(used) > 1 else
         "; fewer than two, so no combined setting"))

# %% [markdown]
# ## 3. Final held-out loss against embeddings only
# The difference per seed (setting minus embeddings only, on the same held-out windows), its
# mean and paired 95% interval. "learns" means the interval lies below 0; "nothing" that it
# contains 0; "worse" that it lies above 0.

# %%
vs_emb = {name: paired_interval(emb, f) for name, f in final.items()}
emb_mean, emb_se = mean_se(emb)
table = results_table(final, runs, emb, vs_emb, vs_base)
(OUT / "results.md").write_text(table + "\n")
print(table)
print(f"table: {OUT / 'results.md'}")

# %%
names = list(final)
save_figure(effects_figure(names, vs_emb, vs_base, f"{len(SEEDS)} seeds, "
                           f"{base.steps * base.tokens_per_step:,} tokens per run"),
            OUT / "effects.png")

# %% [markdown]
# ## 4. What the coefficients did
# Every step's log record holds a (the runs were made with the coefficients logged), so the
# trajectories cost nothing more. One panel per setting, seed 0; the dashed line is
# |a| / sqrt(d), which is 1 at the baseline's start.

# %%
def setting_config(name):
    """The TrainConfig of a setting, by its name in SETTINGS."""
    return config_of(*SETTINGS[name][1:])


traj = trajectories(names, runs, setting_config)
save_figure(trajectories_figure(names, traj), OUT / "coefficients.png")
print_moves(names, traj)

# %% [markdown]
# ## 5. The mechanism
# Four measurements, on a few fixed held-out windows:
#
# * the gradient with respect to a at the start, and its radial part (a_hat . dL/da: negative
#   means the loss falls when every coefficient grows together, i.e. the random weights are
#   turned up as a whole);
# * the loss along the global scale, L(s a_end) with the trained embeddings of seed 0: every
#   weight matrix is multiplied by s, and with coverage "literal" every LayerNorm gain too;
# * the loss along each coefficient direction, L(a_end + t e_k), for the baseline;
# * each tensor's effective scale, |W_t| / |W_t at GPT-2's init|, over training.

# %%
val = data.load_splits(base.data_dir)[0]["val"]
probe = [data.eval_windows(val, probe_windows, base.gpt.block_size)]
start_grad, start_loss = start_gradients(names, setting_config, probe)

# %%
scan_names = [n for n in ("baseline (5 in all)", "W^k at GPT-2 scale", "LN, biases constant",
                          "literal: LN, biases in") if n in final]
S = np.array([0.0, 0.5, 1.0, 2.0, 8.0] if QUICK else [0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0])
radial_scan = {}
for name in scan_names:
    method, t = trained(name, runs, setting_config)
    radial_scan[name] = line_scan(method, t, t["coef"], S - 1.0, probe, base.gpt)  # a + (s-1)a
print("loss along the global scale, L(s * a_end), seed 0:")
print(f"{'setting':<48} " + " ".join(f"{f's={s:g}':>7}" for s in S))
for name, losses in radial_scan.items():
    print(f"{name:<48} " + " ".join(f"{v:>7.3f}" for v in losses))

# %%
method, t_end = trained("baseline (5 in all)", runs, setting_config)
T_AXIS = np.linspace(-2, 2, 3 if QUICK else 9)
axis_scan = [line_scan(method, t_end, np.eye(5)[k], T_AXIS, probe, base.gpt) for k in range(5)]
print("baseline: loss along each coefficient direction, L(a_end + t e_k), seed 0:")
for k, losses in enumerate(axis_scan):
    print(f"  a_{k + 1} (now {t_end['coef'][k]:+.2f}): " +
          " ".join(f"t={t:+.1f} {v:.3f}" for t, v in zip(T_AXIS, losses)))
at = dict(zip(S, radial_scan["baseline (5 in all)"]))
print(f"  and along the global scale: s=0.5 {at[0.5]:.3f}, s=1 {at[1.0]:.3f}, s=2 {at[2.0]:.3f}")

# %%
scale_names = [n for n in ("baseline (5 in all)", "literal: LN, biases in") if n in final]
scale_traj = {}
for name in scale_names:
    cfg = setting_config(name)
    scale_traj[name] = scale_trajectory(build(cfg.method, cfg.gpt), traj[name])
    first, last = scale_traj[name][0][1], scale_traj[name][-1][1]
    print(f"{name}: effective scale |W|/|W at GPT-2 init|, start -> end (seed 0): " +
          ", ".join(f"{k} {first[k]:.2f} -> {last[k]:.2f}" for k in first))
save_figure(mechanism_figure(S, radial_scan, T_AXIS, axis_scan, scale_traj),
            OUT / "mechanism.png")

# %% [markdown]
# ## 6. The answer
# Which choices reproduce "learns nothing", which recipe learns most, and what that says about
# the post's FAQ 3. Every number below comes from the runs above.

# %%
BASE_NAME = "baseline (5 in all)"
nothing = [n for n in names if WORD[verdict(vs_emb[n])] != "learns"]
learners = [n for n in names if WORD[verdict(vs_emb[n])] == "learns"]
best = min(names, key=lambda n: vs_emb[n]["diff"])
print(f"settings that learn nothing beyond embeddings only (or are worse): "
      f"{', '.join(nothing) or 'none'}")
print(f"settings that learn (interval below 0): {', '.join(learners) or 'none'}")
print(f"lowest mean difference: {best}, {show(vs_emb[best])} against embeddings only")
for factor in dict.fromkeys(f for f, _, _ in SETTINGS.values()):
    if factor == "baseline":
        continue
    levels = [n for n, (f, _, _) in SETTINGS.items() if f == factor]
    print(f"  {factor:<18} " + "; ".join(
        f"{n}: {WORD[verdict(vs_emb[n])]}, vs baseline {show(vs_base[n])}" for n in levels))

# %% [markdown]
# ## What this chapter showed
# The post's FAQ suspects the way its five-number combination was instantiated. Taking the
# choices one at a time from a baseline that learns, and measuring each against embeddings only
# over paired seeds, separates the choices that matter from the ones that do not. Section 5
# showed why the ones that matter do. Where the coefficients learn, they act mostly as one
# volume knob: growing together, they turn every random weight matrix up (the effective scales),
# and the scan along the global scale of a finds the loss lowest about where training left
# them. Putting LayerNorm's gains and biases inside the random combination, the literal reading
# of "every tensor", starts every gain at a small random number, which shrinks the signal
# through each block and the gradient that reaches a. Giving the coefficients the embeddings'
# small learning rate leaves them almost where they started: a choice of rate, not of
# parameterization.
#
# This is a short budget on `tiny`: the choices that matter here are measured; whether they are
# what failed in the post, at a billion tokens on GPT-2 small, is an inference. At this scale
# most of what five numbers buy is one overall scale of the random weights. Chapter 09 puts that
# volume knob alone ("1 in all", d = 1) in its long race beside 5 in all, on a byte-level model
# whose body holds 92% of the weights: there the paired interval between the two says whether
# the other four numbers add anything once the body has to do the learning. Its committed
# results, as each reduced racer's share of full training's gain over embeddings only (compare
# 5 in all with 1 in all):

# %%
for line in committed_finding(Path(__file__).resolve().parent / "results"):
    print(line)

# %% [markdown]
# The measured takeaways of this chapter:

# %%
faq = faq3_measurements(
    base_name=BASE_NAME, steps=base.steps, vocab_size=base.gpt.vocab_size, vs_emb=vs_emb,
    start_grad=start_grad, start_loss=start_loss, scale_traj=scale_traj,
    moved={n: float(np.abs(c[-1] - c[0]).max()) for n, (st, c) in traj.items() if len(st)},
    s_best=float(S[int(np.argmin(radial_scan[BASE_NAME]))]))
print_takeaways([
    f"What decides: {len(nothing)} of {len(names)} settings learn nothing or end worse than "
    f"embeddings only ({'; '.join(nothing) or 'none'}); the other {len(learners)} learn (paired "
    f"95% interval below 0 against embeddings only, {fmt(emb_mean, emb_se)}; "
    f"{base.steps * base.tokens_per_step:,} tokens per run, {len(SEEDS)} seeds).",
    f"Lowest mean difference from embeddings only: {best} ({show(vs_emb[best])}).",
    *faq,
], START)

# %% [markdown]
# ## Exercises
# Solutions: `chapters/solutions/07_*.py` (each runs in seconds; a test runs them).
#
# 1. **Gains near 0.** On a 2-layer, 32-wide GPT-2, set every LayerNorm gain to 0.02 times a
#    Gaussian (what "every tensor in the combination" does at the start) instead of 1. Predict
#    the loss at the start and by how much the gradient of the weight matrices shrinks, then
#    compute both with `smolgpt.model.loss_and_grads`. How does this explain the "literal"
#    setting's result above?
