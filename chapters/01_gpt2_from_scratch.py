# %% [markdown]
"""
# Chapter 01 — GPT-2 from scratch, and the baseline every later chapter must beat

Question: can a GPT-2 written in plain NumPy, with every derivative derived by hand, learn
language from C4 on a laptop CPU, and how much of that learning needs the transformer's own
weights rather than just its embeddings?

Assumes: `pip install -e ".[test]"` from the repository root; C4 reachable through `datasets`,
or local files named by SMOLGPT_C4_FILES / SMOLGPT_C4_VAL_FILES (see data/README.md).
Takes: 6 runs of 65,536 tokens, 26-30 s each on a quiet 2-core CPU at ~205 GFLOP/s (so about 3
minutes from an empty cache, by those run times; 6 s measured when chapter 05 had made them);
quick mode (SMOLGPT_QUICK=1): under a minute.
Writes: out/01_gpt2/val_curves.png; the runs are kept by the experiment runner under out/runs/
(shared with chapters 03 and 05).
"""

# %%
import dataclasses
import math
import time
from pathlib import Path

import smolgpt  # noqa: F401  first: it tells BLAS how to wait, before NumPy loads BLAS
import numpy as np

from smolgpt import layers
from smolgpt.checkpoint import load_params
from smolgpt.experiments import chapter_int, out_dir, print_takeaways, quick_config, quick_mode
from smolgpt.experiments.runs import compare_configs
from smolgpt.experiments.stats import fmt, paired_interval
from smolgpt.experiments.tuned import RACE, at_tuned_rates
from smolgpt.gradcheck import check_layer, numerical_grad, rel_error
from smolgpt.methods import MethodSpec
from smolgpt.model import (GPTConfig, count_params, init_params, loss_and_grads,
                           loss_only, param_table)
from smolgpt.sample import sample_text

QUICK = quick_mode()
OUT = out_dir("01_gpt2")
START = time.time()
rng = np.random.default_rng(0)

# %% [markdown]
# ## 1. The parameters
# A GPT-2 is a dict of named arrays. The `tiny` preset keeps GPT-2's vocabulary (50,257 BPE tokens)
# and shrinks everything else, so most of its parameters sit in the token embedding.

# %%
config = GPTConfig.preset("tiny")
params = init_params(config, seed=0)
for name, shape in param_table(config)[:14]:
    print(f"  {name:<26} {str(shape):<14} std {params[name].std():.4f}")
print(f"  ... {len(param_table(config))} tensors in all")
total, non_emb = count_params(config), count_params(config, non_embedding=True)
print(f"tiny: {total:,} parameters, {non_emb:,} of them outside the embeddings "
      f"({non_emb / total:.0%}); GPT-2 small: {count_params(GPTConfig.preset('gpt2')):,}")

# %% [markdown]
# ## 2. Every layer's backward, checked
# Each layer is a forward/backward pair. We check each backward against central finite
# differences in float64: nudge one input by +-1e-6, rerun the forward, compare slopes.
# A correct backward agrees to about 1e-9; a wrong one is off by percent.

# %%
C, T, nh = 8, 5, 2
x = rng.standard_normal((2, T, C))
checks = {
    "linear    (x @ w + b)": (layers.linear_forward, layers.linear_backward,
                              [x, rng.standard_normal((C, 3 * C)), rng.standard_normal(3 * C)]),
    "layernorm (gain, bias)": (layers.layernorm_forward, layers.layernorm_backward,
                               [x, 1 + rng.standard_normal(C) * 0.5, rng.standard_normal(C)]),
    "gelu      (tanh form)": (layers.gelu_forward, layers.gelu_backward, [x]),
    "attention (causal, 2 heads)": (lambda q: layers.attention_forward(q, nh), layers.attention_backward,
                                    [rng.standard_normal((2, T, 3 * C))]),
}
layer_worst = 0.0
for name, (fwd, bwd, inputs) in checks.items():
    errs = check_layer(fwd, bwd, inputs, rng)
    layer_worst = max(layer_worst, max(errs))
    print(f"{name:<28} backward vs finite differences: max relative error {max(errs):.1e}")

# %% [markdown]
# The loss and its gradient are fused: the logits' gradient is softmax minus one-hot, known as
# soon as the logits are, so they are never stored for all 2,048 positions at once.

# %%
xs, w, t = rng.standard_normal((6, C)), rng.standard_normal((13, C)), rng.integers(0, 13, 6)
loss, dx, dw = layers.cross_entropy_head(xs, w, t, chunk=4)
f = lambda: layers.cross_entropy_head(xs, w, t, chunk=4, with_grads=False)[0]
print(f"fused cross-entropy head: dx error {rel_error(dx, numerical_grad(f, xs)):.1e}, "
      f"dwte error {rel_error(dw, numerical_grad(f, w)):.1e}")

# %% [markdown]
# ## 3. The whole model's gradient
# The model's backward is its forward read in reverse. On a small float64 GPT-2 we check the
# gradient of every tensor at a few random coordinates.

# %%
small = GPTConfig(n_layer=2, n_head=2, n_embd=8, block_size=6, vocab_size=11)
p64 = {k: v + 0.3 * rng.standard_normal(v.shape) for k, v in init_params(small, 0, np.float64).items()}
idx, tgt = rng.integers(0, 11, (2, 6)), rng.integers(0, 11, (2, 6))
_, grads = loss_and_grads(p64, idx, tgt, small)
worst = 0.0
for name in p64:
    probe = rng.choice(p64[name].size, min(5, p64[name].size), replace=False)
    num = numerical_grad(lambda: loss_only(p64, idx, tgt, small), p64[name], indices=probe)
    worst = max(worst, rel_error(grads[name].reshape(-1)[probe], num))
print(f"all {len(p64)} tensors of a 2-layer GPT-2: worst relative gradient error {worst:.1e}")

# %% [markdown]
# At initialisation the logits are nearly zero, so the model predicts a nearly uniform
# distribution: the loss should be close to ln(50257) = 10.82.

# %%
idx = rng.integers(0, config.vocab_size, (4, config.block_size))
print(f"loss at init {loss_only(params, idx, np.roll(idx, -1, 1), config):.3f} "
      f"vs ln V = {math.log(config.vocab_size):.3f}")

# %% [markdown]
# ## 4. Training on C4: everything vs embeddings only
# Two ways of training on the same tokens in the same order. `full` trains every tensor.
# `embeddings` trains only the token and position tables and leaves every transformer weight at
# its random init: the baseline the post measures every reduced model against. Whatever `full`
# gains over it is what training the transformer itself buys.
#
# Both run at the race's budget (chapter 05: 64 steps of 8 x 128 C4 tokens), each at the
# learning rate its own sweep chose (`smolgpt.experiments.tuned`), over several seeds: seed s
# gives both the same batches, so their difference is paired by seed. The experiment runner keeps
# finished runs under out/runs/, and chapters 03 and 05 reuse these same runs.

# %%
SEEDS = tuple(range(chapter_int("seeds", 2 if QUICK else 3, minimum=2)))
if QUICK:
    base = quick_config(steps=12)
    configs = [dataclasses.replace(base, method=MethodSpec(n)) for n in ("full", "embeddings")]
    scoring = dict(final_windows=16)
else:
    configs = [at_tuned_rates(RACE, MethodSpec(n)) for n in ("full", "embeddings")]
    scoring = {}
results = compare_configs(configs, OUT, seeds=SEEDS, **scoring,
                          title=f"chapter 01: full training vs embeddings only, {len(SEEDS)} "
                                f"seeds (held-out C4)")
full, emb = results["full"], results["embeddings"]
for r in (full, emb):
    first = r["runs"][0]
    print(f"{r['label']:<11} {r['n_trainable']:>9,} trainable non-embedding parameters, lr "
          f"{r['config'].lr:g}: final held-out loss {fmt(r['mean'], r['se'])} over "
          f"{len(SEEDS)} seeds after {first['tokens']:,} tokens "
          f"(seed 0 trained in {first['elapsed']:.0f} s)")
gap = paired_interval(full["final"], emb["final"])
print(f"full training ends {gap['diff']:.3f} nats/token below embeddings only (95% interval "
      f"{gap['lo']:.3f} to {gap['hi']:.3f} over {gap['n']} paired seeds; perplexity "
      f"{math.exp(full['mean']):,.0f} vs {math.exp(emb['mean']):,.0f})")

# %% [markdown]
# ## 5. What they write
# Sampled from seed 0's model with temperature 1 and top-k 40 from an empty prompt (a document
# start). After this few tokens neither writes sentences; full training has picked up more of
# the local word statistics.

# %%
for r in (full, emb):
    params, model, _ = load_params(Path(r["runs"][0]["dir"]) / "checkpoint.npz")
    print(f"--- {r['label']} ---\n{sample_text(params, model, max_new_tokens=40).strip()}\n")

# %% [markdown]
# ## Takeaways

# %%
takeaways = [
    "Every backward here agrees with finite differences in float64: each layer to "
    f"{layer_worst:.0e}, the whole model to {worst:.0e} (a wrong term would show as 1e-3 or "
    "worse); the rest of the project trusts these derivatives.",
    "The tied 50,257-word head is most of the work of a small GPT-2: its logits are computed "
    "in chunks and turned into their own gradient on the spot.",
    f"Trained on the same {full['runs'][0]['tokens']:,} C4 tokens over {len(SEEDS)} seeds, "
    f"full training reaches {fmt(full['mean'], full['se'])} nats/token against "
    f"{fmt(emb['mean'], emb['se'])} for embeddings only: a gap of {gap['diff']:.2f} (95% "
    f"interval {gap['lo']:.2f} to {gap['hi']:.2f}). The next chapters ask how much of that "
    "gap a handful of trained numbers can close.",
]
print_takeaways(takeaways, START)
