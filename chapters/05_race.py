# %% [markdown]
"""
# Chapter 05 — The race: the post's comparison, reproduced on a CPU, with seeds

Question: the post trained GPT-2 small on ~1B C4 tokens six ways and found
full < LoRA < 5-per-tensor basis < 5-parameter basis ~ embeddings-only in final loss. Does the same
ordering hold for our `tiny` GPT-2 on held-out C4, when every method sees exactly the same tokens
in the same order, over several seeds, and which differences are larger than the seeds' spread?

*The post* is the blog post "Training smol language models" (2025), which this book
reproduces at laptop scale; chapter 01 introduces it and the papers it builds on.
A *paired 95% interval*: seed s gives two methods the same batches, so their difference is
taken seed by seed; the interval is the mean difference +- Student's t times its standard
error. A difference is resolved when the interval excludes 0.

Assumes: chapters 01-04; C4 as in data/README.md.
Takes: up to 12 runs of 65,536 tokens per seed the first time: about twenty minutes for 3 seeds
on a 2-core CPU from an empty cache (measurements: smolgpt/bench/NOTES.md). The time scales with
the machine's float32 matmul rate, which the closing lines print next to this run's wall time. A
second run reuses every finished run and takes seconds.
Quick mode (SMOLGPT_QUICK=1): under a minute. More seeds: `--seeds 5` (or SMOLGPT_SEEDS=5);
each extra seed costs up to 12 runs.
Writes: out/05_race/val_curves.png, out/05_race/results.md; the runs themselves are kept by the
experiment runner under out/runs/ (redraw any curve with `smolgpt plot out/runs/<run>/log.jsonl`).
"""

# %%
import dataclasses
import time
from pathlib import Path

from smolgpt import data
from smolgpt.experiments import (chapter_int, out_dir, print_takeaways, quick_config,
                                 quick_mode)
from smolgpt.companions.ch09_long_race import committed_finding
from smolgpt.experiments.reference import unigram_entropy, unigram_loss
from smolgpt.experiments.runs import FINAL_WINDOWS, compare_configs, markdown_table
from smolgpt.experiments.stats import fmt, paired_interval, verdict
from smolgpt.experiments.tuned import RACE, TUNED, at_tuned_rates
from smolgpt.methods import MethodSpec

QUICK = quick_mode()
OUT = out_dir("05_race")
START = time.time()
SEEDS = tuple(range(chapter_int("seeds", 2 if QUICK else 3, minimum=2)))

# %% [markdown]
# ## The field
# Six parameterizations of one architecture, from everything trained to nothing but the
# embeddings. The two random-basis entries use the post's form, W = a_1 W^1 + ... + a_5 W^5 with
# no frozen offset (`offset=False`): all of their non-embedding weights come from the 5 (or 5 per
# tensor) numbers. The Fastfood entry (Li et al.'s offset form) sits between the per-tensor basis
# and LoRA in trainable count.

# %%
base = quick_config(steps=6) if QUICK else RACE
fastfood_d = 300 if QUICK else 5000
field = {
    "full": MethodSpec("full"),
    "LoRA": MethodSpec("lora", rank=4),
    "5 per tensor": MethodSpec("basis", d=5, per_tensor=True, offset=False),
    "Fastfood": MethodSpec("fastfood", d=fastfood_d),
    "5 in all": MethodSpec("basis", d=5, offset=False),
    "embeddings only": MethodSpec("embeddings"),
}
print(f"model: {base.gpt.n_layer} layers x {base.gpt.n_embd}, vocabulary "
      f"{base.gpt.vocab_size:,}; budget: {base.steps} steps x {base.tokens_per_step:,} tokens = "
      f"{base.steps * base.tokens_per_step:,} tokens per run; seeds {list(SEEDS)} (seed s gives "
      f"every method the same batches)")

# %% [markdown]
# ## Two references every method must beat
# A model that ignores its context can at best predict each token from how often it occurs:
# the training split's unigram distribution; its held-out loss is *the unigram line*. A model
# below it has learned something about sequences. The second reference is embeddings only:
# with a tied head, trained embeddings over a frozen random transformer can act somewhat like a
# bigram model (the current token's embedding, passed through fixed random layers, is read out
# against the embedding table); whether it catches up with the unigram line at this budget, the
# end of the chapter prints. What the reduced methods add is measured against
# embeddings only; what any model has learned about sequences, against the unigram line.

# %%
splits, _ = data.load_splits(base.data_dir)
UNIGRAM = unigram_loss(splits["train"], splits["val"], base.gpt.vocab_size)
print(f"context-free reference: held-out loss of the training unigram (add-one smoothing) "
      f"{UNIGRAM:.3f}; the held-out split's own unigram entropy "
      f"{unigram_entropy(splits['val'], base.gpt.vocab_size):.3f}")

# %% [markdown]
# ## The race, twice
# **The post's protocol**: one learning rate for every trainable array, no tuning (our default
# rate for arrays, 1e-3, also for the subspace coefficients). **Own rates**: each method at the
# rates its own sweep chose (`smolgpt.experiments.tuned`, each rate interior to its grid), or at
# the defaults (lr 1e-3, coefficients 0.3) where no sweep has chosen one yet; the chapter says
# which. The runner reuses a run only when its whole configuration matches, so the two
# protocols share a method's runs only where its own rates are the post's; the chapter prints
# how many they share.

# %%
post = [dataclasses.replace(base, method=spec, lr=1e-3, coef_lr=1e-3) for spec in field.values()]
tuned = [at_tuned_rates(base, spec) if not QUICK else dataclasses.replace(base, method=spec)
         for spec in field.values()]
missing = [label for label in (s.label() for s in field.values()) if label not in TUNED]
if missing and not QUICK:
    print(f"note: no tuned rate yet for {', '.join(missing)}: those run at the defaults "
          f"(lr {base.lr}, coef_lr {base.coef_lr})")
print(f"methods whose runs the two protocols share (same rates): "
      f"{sum(a == b for a, b in zip(post, tuned))} of {len(post)}")
refs = [("unigram (context-free)", UNIGRAM)]
protocols = {}
for name, configs in (("post's protocol", post), ("own rates", tuned)):
    print(f"\n{name}:")
    res = compare_configs(configs, OUT if name == "own rates" else None,
                          title=f"the race at each method's own rates: {base.gpt.n_layer}x"
                                f"{base.gpt.n_embd} GPT-2, "
                                f"{base.steps * base.tokens_per_step:,} C4 tokens, "
                                f"{len(SEEDS)} seeds", seeds=SEEDS, references=refs,
                          final_windows=16 if QUICK else FINAL_WINDOWS)
    protocols[name] = dict(zip(field, res.values()))

# %%
lines = []
for name, res in protocols.items():
    table = markdown_table({k: v for k, v in res.items()})
    lines += [f"### {name}", "", table, ""]
    print(f"\n{name} (final held-out loss, mean +- standard error over {len(SEEDS)} seeds):")
    print(table)
ev = [r["final"]["loss_se"] for res in protocols.values() for v in res.values() for r in v["runs"]]
scored = protocols["own rates"]["full"]["runs"][0]["final"]["tokens"]
print(f"each final loss is scored on {scored:,} "
      f"held-out tokens; that evaluation's own standard error is {min(ev):.4f}-{max(ev):.4f}, and "
      f"it is the same windows for every run, so it cancels in the paired differences below")
(OUT / "results.md").write_text("\n".join(lines))
print(f"table: {OUT / 'results.md'}")

# %% [markdown]
# ## Did the post's ordering hold?
# The post: full < LoRA < 5 per tensor < 5 in all ~ embeddings only. For each link we take the
# per-seed differences (seed s: both methods saw the same batches) and their 95% t-interval. A
# link holds only when the interval excludes 0 in the post's direction; an interval that
# straddles 0 is "not resolved" at this many seeds, not a tie.

# %%
links = [("full", "LoRA"), ("LoRA", "5 per tensor"), ("5 per tensor", "5 in all"),
         ("5 in all", "embeddings only")]
verdicts = {}
for name, res in protocols.items():
    print(f"\n{name}:")
    for a, b in links:
        iv = paired_interval(res[a]["final"], res[b]["final"])
        v = verdict(iv)
        said = {"<": "holds", ">": "REVERSED", "~": "not resolved"}[v]
        verdicts[name, a, b] = v
        print(f"  {a + ' < ' + b:<30} {said:<13} {b} - {a} = {iv['diff']:+.4f}, 95% interval "
              f"[{iv['lo']:+.4f}, {iv['hi']:+.4f}] over {iv['n']} seeds")
    emb, full = res["embeddings only"]["mean"], res["full"]["mean"]
    for m in ("LoRA", "Fastfood", "5 per tensor", "5 in all"):
        share = (emb - res[m]["mean"]) / (emb - full)
        print(f"  {m:<16} closes {share:6.1%} of the gap between embeddings only and full "
              f"({res[m]['n_trainable']:,} non-embedding trainable)")
    print(f"  embeddings only ends at {emb:.3f} and full at {full:.3f}; the unigram line is "
          f"{UNIGRAM:.3f} ({emb - UNIGRAM:+.3f} and {full - UNIGRAM:+.3f} from it)")

# %% [markdown]
# ## What this chapter showed
# The race puts the post's six ways of training on the same tokens in the same order, over
# several seeds, and reads each link of the post's ordering as a paired interval: the link holds,
# is reversed, or is not resolved, and the seeds, not a single run, decide which. It is run
# twice because a ranking can be a ranking of learning rates: the post gave every array one
# untuned rate, and here each method also runs at the rates its own sweep chose. A link that
# changes between the two protocols is decided by the rate, not by the parameterization. The
# two references give every loss a meaning: the gap to embeddings only is what a method's
# trained non-embedding numbers buy, and the unigram line says whether anything has been learned
# about sequences at all. Finished runs are kept and reused, so a second run takes seconds.
#
# The verdict: at the post's one rate, the post's ordering holds from full training through LoRA
# to 5 per tensor, but five numbers learn clearly more than embeddings only; at each method's
# own rate the race collapses: full training, Fastfood and both bases end close together, no
# link of the post's ordering among them is resolved, and at this budget the ordering was one of
# learning rates.
#
# **What this race cannot show.** Its budget is an early-training snapshot, and on `tiny` 89% of
# the weights are embeddings, which every racer trains: a reduced racer can keep most of full
# training's gain without the transformer body learning much at all. Chapter 09 runs the same
# field where the body holds 92% of the weights (a byte-level model) and on far more text (16
# times these tokens on `tiny`; 4,194,304 bytes, about 14 times as much text, on the byte
# model); read its table before taking this ordering for the post's. What it found, read
# from its committed results (each reduced racer's share of full training's gain over embeddings
# only: 100% is as good as full training, 0% no better than training the embeddings alone):

# %%
for line in committed_finding(Path(__file__).resolve().parent / "results"):
    print(line)

# %% [markdown]
# The measured takeaways of this race:

# %%
own, shared = protocols["own rates"], protocols["post's protocol"]
said = {"<": "held", ">": "reversed", "~": "not resolved"}
tokens = base.steps * base.tokens_per_step
takeaways = [
    *(f"{name}, {len(SEEDS)} seeds, {tokens:,} tokens: " + "; ".join(
        f"{a} < {b} {said[verdicts[name, a, b]]}" for a, b in links) + "."
      for name in protocols),
    f"'5 in all' (five coefficients) ends at "
    f"{fmt(shared['5 in all']['mean'], shared['5 in all']['se'])} at one shared rate and "
    f"{fmt(own['5 in all']['mean'], own['5 in all']['se'])} at its own, against "
    f"{fmt(own['embeddings only']['mean'], own['embeddings only']['se'])} for embeddings only.",
    f"Full training ends {own['embeddings only']['mean'] - own['full']['mean']:.2f} nats below "
    f"embeddings only. From the unigram line ({UNIGRAM:.2f}; negative: below it): full training "
    f"{own['full']['mean'] - UNIGRAM:+.2f}, embeddings only "
    f"{own['embeddings only']['mean'] - UNIGRAM:+.2f}.",
]
print_takeaways(takeaways, START)

# %% [markdown]
# ## Exercises
# Solutions: `chapters/solutions/05_*.py` (each runs in seconds; a test runs them).
#
# 1. **Why pair by seed?** Make up losses of two methods over 5 seeds, B worse than A by 0.03,
#    each seed shifting both by a common amount with spread 0.05. Predict which of the paired
#    interval (`smolgpt.experiments.stats.paired_interval`) and an unpaired t-interval of the two
#    means resolves the difference, then compute both.
# 2. **The unigram line by hand.** With `smolgpt.experiments.reference.unigram_loss`: what is the
#    line when all V tokens are equally frequent? And when the training text is one token
#    repeated 1,000 times and the held-out text is [0, 0, 3] (V = 10)? Work it out, then check.
