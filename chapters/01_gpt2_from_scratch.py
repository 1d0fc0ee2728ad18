# %% [markdown]
"""
# Chapter 01 — GPT-2 from scratch, and the baseline every later chapter must beat

Question: what is a GPT-2, layer by layer, how is its gradient derived by hand, and how much of
what it learns from C4 in a few minutes needs the transformer's own weights rather than just its
embeddings?

This book reproduces, at laptop scale, the blog post "Training smol language models" (2025),
called *the post* from here on. The post keeps GPT-2 fixed and trains only a few numbers that
generate its weights, building on four papers: Li et al. 2018, "Measuring the Intrinsic
Dimension of Objective Landscapes" (arXiv:1804.08838); Aghajanyan et al. 2020, "Intrinsic
Dimensionality Explains the Effectiveness of Language Model Fine-Tuning" (arXiv:2012.13255);
Le, Sarlós and Smola 2013, "Fastfood: approximating kernel expansions in loglinear time"
(ICML); Hu et al. 2021, "LoRA: Low-Rank Adaptation of Large Language Models"
(arXiv:2106.09685). This chapter builds the model they all start from.

Assumes: `pip install -e ".[test]"` from the repository root; C4 reachable through `datasets`,
or local files named by SMOLGPT_C4_FILES / SMOLGPT_C4_VAL_FILES (see data/README.md).
Takes: sections 1-7 about a minute (most of it the plain model's 80 training steps); section 8
trains 6 runs of 65,536 tokens, a few minutes on a 2-core CPU from an empty cache and seconds
once chapter 05 has made them (measurements: smolgpt/bench/NOTES.md); quick mode
(SMOLGPT_QUICK=1): under a minute.
Writes: out/01_gpt2/block.png, out/01_gpt2/plain_training.png and out/01_gpt2/val_curves.png
(`SMOLGPT_OUT` moves out/); the runs are kept by the experiment runner under out/runs/ (shared
with chapters 03 and 05).
"""

# %%
import dataclasses
import math
import time

import smolgpt  # noqa: F401  first: it tells BLAS how to wait, before NumPy loads BLAS
import matplotlib.pyplot as plt
import numpy as np

from smolgpt import layers, optim, plain
from smolgpt.checkpoint import load_params
from smolgpt.data import get_batch, load_tokens
from smolgpt.experiments import (chapter_int, out_dir, print_takeaways, quick_config, quick_mode,
                                 save_figure, show_source)
from smolgpt.companions.ch01_diagrams import block_diagram
from smolgpt.experiments.reference import unigram_loss
from smolgpt.experiments.runs import compare_configs, context_free_reference, folder_of
from smolgpt.experiments.stats import fmt, paired_interval
from smolgpt.experiments.tuned import RACE, at_tuned_rates
from smolgpt.gradcheck import check_layer, numerical_grad, rel_error
from smolgpt.methods import MethodSpec
from smolgpt.model import (EMBEDDING_NAMES, GPTConfig, count_params, init_params,
                           loss_and_grads, loss_only, param_table)
from smolgpt.sample import sample_text

# %%
QUICK = quick_mode()                  # SMOLGPT_QUICK=1: the small version the tests run
OUT = out_dir("01_gpt2")
START = time.time()
rng = np.random.default_rng(0)

# %% [markdown]
# ## 1. The parameters
# A GPT-2 is a dict of named arrays. The `tiny` preset keeps GPT-2's vocabulary (50,257 BPE
# tokens, the pieces of text the tokenizer cuts words into) and shrinks everything else, so most
# of its parameters sit in the token embedding `wte`, a table with one row of C numbers per token.

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
# ## 2. One transformer block
# The model turns B sequences of T token ids into an array x of shape (B, T, C): row t is the
# token's embedding `wte[idx]` plus its position's `wpe[t]`. This array, the *residual stream*,
# then passes through `n_layer` identical blocks. Each block reads the stream twice, through a
# LayerNorm, and adds what it computed back onto it: first attention (each position mixes in the
# positions before it), then an MLP (each position on its own). After the last block one more
# LayerNorm, and the logits are `x @ wte.T`: one score per vocabulary entry for the next token.

# %%
save_figure(block_diagram(), OUT / "block.png")

# %% [markdown]
# The forward of one block, from `smolgpt/plain.py`, the plain version of the model: one
# formula a line, nothing fused or done in place. Each layer returns its output and a *cache*,
# what its backward will need.

# %%
show_source(plain.block_forward)
P = plain.block_params(params, 0)                        # block 0 of tiny, at its init
x = rng.standard_normal((2, 16, config.n_embd)).astype(np.float32)       # (B, T, C)
y, cache = plain.block_forward(x, P, config.n_head)
print(f"block 0 maps x {x.shape} -> {y.shape}; at init it moves the stream by "
      f"{np.sqrt(np.mean((y - x) ** 2)) / np.sqrt(np.mean(x ** 2)):.1%} of its rms")

# %% [markdown]
# At init the block barely changes its input: the weights are small (std 0.02), so each branch
# adds a small correction to the stream. Training makes those corrections matter.
#
# ## 3. The backward, one layer at a time
# Training needs the gradient of the loss with respect to every parameter. The chain rule gives
# it layer by layer, top to bottom: a layer's backward takes `dout`, the gradient of the loss
# with respect to its output, and returns the gradients with respect to its inputs.
#
# Each derivation is checked the same way (`smolgpt.gradcheck`): pick a random `dout`, call
# f(x) = sum(forward(x) * dout), whose gradient is exactly what the backward claims, and compare
# with central finite differences (f(x + e) - f(x - e)) / 2e for every coordinate, in float64.
# A correct backward agrees to about 1e-9 relative error; a missing term shows at 1e-3 or worse.
#
# **Linear**, y = x W + b. Each output is a sum of products, so dx = dy W^T, and W and b collect
# dy from every (batch, time) row: dW = sum x^T dy, db = sum dy.

# %%
C, T, nh = 8, 5, 2
x64 = rng.standard_normal((2, T, C))
show_source(plain.linear_backward)
err = check_layer(plain.linear_forward, plain.linear_backward,
                  [x64, rng.standard_normal((C, 3 * C)), rng.standard_normal(3 * C)], rng)
print(f"linear backward vs finite differences (dx, dW, db): max relative error {max(err):.1e}")

# %% [markdown]
# **GELU**, y = x/2 (1 + tanh u) with u = sqrt(2/pi) (x + 0.044715 x^3), elementwise: the
# product rule and d tanh(u)/du = 1 - tanh(u)^2.

# %%
show_source(plain.gelu_backward)
err = check_layer(plain.gelu_forward, plain.gelu_backward, [x64], rng)
print(f"GELU backward vs finite differences: max relative error {max(err):.1e}")

# %% [markdown]
# **LayerNorm**, y = g xhat + b with xhat = (x - mu) / sqrt(var + eps), per row of C numbers.
# dg and db are sums as for the linear layer. The input's gradient has two extra terms, because
# moving one x_i moves the row's mean and variance too: subtract dxhat's row mean (the mean's
# share) and xhat times the row mean of dxhat xhat (the variance's share), then scale by 1/sigma.

# %%
show_source(plain.layernorm_backward)
err = check_layer(plain.layernorm_forward, plain.layernorm_backward,
                  [x64, 1 + 0.5 * rng.standard_normal(C), rng.standard_normal(C)], rng)
print(f"LayerNorm backward vs finite differences (dx, dg, db): max relative error {max(err):.1e}")

# %% [markdown]
# **Attention**, per head: scores s = q k^T / sqrt(hs), p = softmax(s) over the keys (future keys
# masked to probability 0), y = p v. Backward in reverse: y = p v gives dp = dy v^T and
# dv = p^T dy; the softmax's Jacobian gives ds = p (dp - sum(dp p)) row by row; the scores give
# dq = ds k / sqrt(hs) and dk = ds^T q / sqrt(hs).

# %%
show_source(plain.attention_backward)
err = check_layer(lambda qkv: plain.attention_forward(qkv, nh), plain.attention_backward,
                  [rng.standard_normal((2, T, 3 * C))], rng)
print(f"attention backward vs finite differences (2 heads): max relative error {max(err):.1e}")

# %% [markdown]
# **The block** is these layers read bottom-up. The one new rule is the residual: x + f(x) has
# derivative 1 + f'(x), so the stream's gradient goes on unchanged and the branch's gradient is
# added to it (`dx = dx + dh`).

# %%
show_source(plain.block_backward)
small = GPTConfig(n_layer=1, n_head=nh, n_embd=C, block_size=T, vocab_size=11)
P64 = {k: v + 0.3 * rng.standard_normal(v.shape)             # gains away from 1, biases non-zero
       for k, v in plain.block_params(init_params(small, 0, np.float64), 0).items()}
names = sorted(P64)


def block_fwd(x_, *arrays):                                  # the block as f(x, 12 arrays)
    return plain.block_forward(x_, dict(zip(names, arrays)), nh)


def block_bwd(dout, cache):                                  # its gradients in the same order
    dx, g = plain.block_backward(dout, cache)
    return (dx, *[g[n] for n in names])


err = check_layer(block_fwd, block_bwd, [x64, *[P64[n] for n in names]], rng)
print(f"whole block backward vs finite differences ({len(err)} arrays): "
      f"max relative error {max(err):.1e}")

# %% [markdown]
# ## 4. The loss, and the fast model
# The loss is the *cross-entropy*: the mean over positions of -log p(next token), p the softmax
# of the logits. Its unit is *nats per token*: a uniform guess over 50,257 tokens costs
# ln 50257 = 10.82 nats, and each nat less means the model puts e = 2.7 times more probability
# on the right token. The *perplexity*, e^loss, says the same as a count: a model with loss L is
# as unsure as a uniform guess among e^L tokens. The loss's gradient with respect to the logits
# is (p - onehot(target)) / N, and the tied head `x @ wte.T` gives `wte` a second gradient
# besides the lookup `wte[idx]`. `plain.loss_and_grads` puts it all together.
#
# The rest of smolgpt trains with `smolgpt/model.py`, which computes the same function fast
# (threads, blocks of queries, chunked logits, in-place updates). A test holds them equal;
# here is the check on a 2-layer float64 model.

# %%
small = GPTConfig(n_layer=2, n_head=2, n_embd=8, block_size=6, vocab_size=11)
p64 = {k: v + 0.3 * rng.standard_normal(v.shape)
       for k, v in init_params(small, 0, np.float64).items()}
idx, tgt = rng.integers(0, 11, (2, 6)), rng.integers(0, 11, (2, 6))
loss_p, g_p = plain.loss_and_grads(p64, idx, tgt, small.n_layer, small.n_head)
loss_f, g_f = loss_and_grads(p64, idx, tgt, small)
gap_pf = max(np.abs(g_f[k] - g_p[k]).max() / np.abs(g_p[k]).max() for k in p64)
print(f"plain vs fast model, float64: loss {loss_p:.15f} vs {loss_f:.15f}; largest gradient "
      f"difference over {len(p64)} tensors {gap_pf:.1e} of the tensor's largest entry")

# %% [markdown]
# ## 5. The training step
# Training repeats one step: draw a batch, forward and backward, and update every weight with
# AdamW. AdamW keeps two running averages per weight, m of the gradient and v of its square;
# the step is m / sqrt(v), so every weight moves by about the learning rate whatever its
# gradient's scale. Weight decay (here only on the weight matrices) shrinks each weight a little
# toward 0. The dozen lines below are the whole of it, written plainly; `smolgpt.optim.adamw_step`
# is the fast version and `smolgpt.train` the loop with logging, checkpoints and evaluation.

# %%
def adamw_update(w, g, m, v, t, lr, decay, beta1=0.9, beta2=0.95, eps=1e-8):
    """One AdamW step of the array w (in place) at step t = 1, 2, ..."""
    m[:] = beta1 * m + (1 - beta1) * g                      # running mean of the gradient
    v[:] = beta2 * v + (1 - beta2) * g * g                  # running mean of its square
    m_hat, v_hat = m / (1 - beta1 ** t), v / (1 - beta2 ** t)   # both start at 0: unbias
    w -= lr * decay * w                                     # decoupled weight decay
    w -= lr * m_hat / (np.sqrt(v_hat) + eps)


def train_plain(params, cfg, tokens, steps, lr=3e-3, batch=8, seed=0):
    """The training loop on the plain model: the losses, step by step."""
    m = {k: np.zeros_like(w) for k, w in params.items()}
    v = {k: np.zeros_like(w) for k, w in params.items()}
    batches, losses = np.random.default_rng(seed), []
    for t in range(1, steps + 1):
        idx, targets = get_batch(tokens, batch, cfg.block_size, batches)     # (B, T) each
        loss, grads = plain.loss_and_grads(params, idx, targets, cfg.n_layer, cfg.n_head)
        for k, w in params.items():
            wd = 0.1 if w.ndim == 2 and k not in EMBEDDING_NAMES else 0.0
            adamw_update(w, grads[k], m[k], v[k], t, lr, wd)
        losses.append(loss)
    return losses

# %% [markdown]
# Does the plain AdamW do what the fast one does? One step from the same weights and gradients:

# %%
w_plain = {k: w.copy() for k, w in p64.items()}
state = {k: (np.zeros_like(w), np.zeros_like(w)) for k, w in p64.items()}
for k, w in w_plain.items():
    decay = 0.1 if k.endswith("c_fc.weight") else 0.0
    adamw_update(w, g_p[k], *state[k], t=1, lr=1e-2, decay=decay)
w_fast = {k: w.copy() for k, w in p64.items()}
optim.adamw_step(w_fast, g_p, optim.adamw_init(w_fast), lr=1e-2,
                 decay_keys={k for k in p64 if k.endswith("c_fc.weight")})
print(f"plain vs fast AdamW after one step: largest weight difference "
      f"{max(np.abs(w_plain[k] - w_fast[k]).max() for k in p64):.1e}")

# %% [markdown]
# Now the plain model trains on C4: a 2-layer, 64-wide GPT-2 with the full vocabulary, batches
# of 8 windows of 32 tokens, the learning rate 3e-3 held constant.
#
# Two lines give its loss a meaning. A uniform guess costs ln V. The *unigram line* is the
# held-out loss of predicting every token from its frequency in the training text alone,
# without reading the context (`smolgpt.experiments.reference`): a model below it has learned
# something about sequences; one above it has not yet caught up with word counts.

# %%
demo = GPTConfig(n_layer=2, n_head=2, n_embd=64, block_size=32)
demo_steps = 8 if QUICK else 80
train_tokens, val_tokens = load_tokens("train"), load_tokens("val")
losses = train_plain(init_params(demo, seed=0), demo, train_tokens, demo_steps)
unigram_line = unigram_loss(train_tokens, val_tokens, demo.vocab_size)
print(f"plain model, {demo_steps} steps of 8 x 32 tokens: loss {losses[0]:.3f} at step 1, "
      f"{np.mean(losses[-5:]):.3f} averaged over the last 5 steps (a uniform guess is "
      f"ln V = {math.log(demo.vocab_size):.3f}; the unigram line is {unigram_line:.3f})")

# %%
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(range(1, demo_steps + 1), losses, lw=1)
ax.axhline(math.log(demo.vocab_size), ls=":", color="grey", label="uniform guess, ln V")
ax.axhline(unigram_line, ls="--", color="black", label="unigram line (held out)")
ax.set(xlabel="step", ylabel="training loss (nats/token)",
       title="the plain model trained with the dozen lines above")
ax.legend()
fig.tight_layout()
save_figure(fig, OUT / "plain_training.png")

# %% [markdown]
# That is all of training. From here on the chapters use the fast model and the runner, which
# do the same with more care (a learning-rate schedule, gradient clipping, evaluation on
# held-out text, runs kept and reused).
#
# ## 6. The fast layers, checked
# The fast layers of `smolgpt/layers.py` pass the same finite-difference checks.

# %%
C, T, nh = 8, 5, 2
x = rng.standard_normal((2, T, C))
checks = {
    "linear    (x @ w + b)": (layers.linear_forward, layers.linear_backward,
                              [x, rng.standard_normal((C, 3 * C)), rng.standard_normal(3 * C)]),
    "layernorm (gain, bias)": (layers.layernorm_forward, layers.layernorm_backward,
                               [x, 1 + rng.standard_normal(C) * 0.5, rng.standard_normal(C)]),
    "gelu      (tanh form)": (layers.gelu_forward, layers.gelu_backward, [x]),
    "attention (causal, 2 heads)": (lambda q: layers.attention_forward(q, nh),
                                    layers.attention_backward,
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
# ## 7. The whole model's gradient
# The model's backward is its forward read in reverse. On a small float64 GPT-2 we check the
# gradient of every tensor at a few random coordinates.

# %%
small = GPTConfig(n_layer=2, n_head=2, n_embd=8, block_size=6, vocab_size=11)
p64 = {k: v + 0.3 * rng.standard_normal(v.shape)
       for k, v in init_params(small, 0, np.float64).items()}
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
# ## 8. Training on C4: everything vs embeddings only
# Two ways of training on the same tokens in the same order. `full` trains every tensor.
# `embeddings` trains only the token and position tables and leaves every transformer weight at
# its random init: the baseline the post measures every reduced model against. Whatever `full`
# gains over it is what training the transformer itself buys.
#
# Chapter 05 holds *the race*: the post's comparison of six ways of training, each on the same
# 65,536 C4 tokens (64 steps of 8 x 128). That token count is *the race's budget*, and both
# runs here use it, each at the learning rate its own sweep chose (`smolgpt.experiments.tuned`),
# over several seeds. Seed s gives both the same batches, so the difference full minus
# embeddings is taken seed by seed; its *paired 95% interval* (mean of the per-seed differences
# +- Student's t times their standard error) says how sure that difference is: when it excludes
# 0, the order is resolved. The experiment runner keeps finished runs under out/runs/, and
# chapters 03 and 05 reuse these same runs.


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

# %% [markdown]
# Each one's final held-out loss, then the paired difference, then both against the unigram line.

# %%
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
_, unigram = context_free_reference(configs[0])
print(f"against the unigram line ({unigram:.3f}): full training ends "
      f"{full['mean'] - unigram:+.3f}, embeddings only {emb['mean'] - unigram:+.3f} nats/token "
      f"from it")

# %% [markdown]
# ## 9. What they write
# Sampled from seed 0's model with temperature 1 and top-k 40 from an empty prompt (a document
# start). After this few tokens neither writes sentences: both string frequent words and
# punctuation together, and a sample this short cannot show the difference in loss between them.

# %%
for r in (full, emb):
    params, model, _ = load_params(folder_of(r["runs"][0]) / "checkpoint.npz")
    print(f"--- {r['label']} ---\n{sample_text(params, model, max_new_tokens=40).strip()}\n")

# %% [markdown]
# ## What this chapter showed
# A GPT-2 is a stream of vectors that each block reads twice through a LayerNorm and adds to
# twice, attention then an MLP, with a tied head that scores every token of the vocabulary. Its
# backward is its forward read bottom-up, one chain-rule step a line, and every step agrees with
# finite differences, so the rest of the book can trust its gradients. Training is a dozen lines:
# a batch, a forward, a backward and AdamW. The plain model and the fast one compute the same
# function, so the chapters teach from the first and train with the second.
#
# On C4, at the race's budget, both learn, and the embeddings alone do most of it: training the
# transformer's own weights buys a smaller rest, which the seeds resolve, and neither model gets
# below the unigram line, so neither has learned much beyond word counts yet. That rest, full
# training's gain over embeddings only, is the yardstick of the book: each later chapter asks
# how much of it a handful of trained numbers can keep. The measured values:

# %%
uniform = math.log(full["config"].gpt.vocab_size)           # the loss of a uniform guess
takeaways = [
    f"What the transformer's own weights buy, on {full['runs'][0]['tokens']:,} C4 tokens "
    f"({len(SEEDS)} seeds): embeddings alone already make "
    f"{(uniform - emb['mean']) / (uniform - full['mean']):.0%} of full training's drop from a "
    f"uniform guess ({uniform:.2f} nats/token); training the body adds the last "
    f"{gap['diff']:.2f} (95% interval {gap['lo']:.2f} to {gap['hi']:.2f}); "
    + ("neither gets below the unigram line." if full["mean"] > unigram else
       "only full training gets below the unigram line." if emb["mean"] > unigram else
       "both get below the unigram line."),
    f"Plain vs fast model: largest gradient difference {gap_pf:.1e} of a tensor's largest entry.",
    f"Backward vs finite differences: each layer within {layer_worst:.1e}, the whole model within "
    f"{worst:.1e} (a wrong term shows as 1e-3 or worse).",
    f"The plain training loop: {losses[0]:.2f} -> {np.mean(losses[-5:]):.2f} nats/token in "
    f"{demo_steps} steps (uniform guess {math.log(demo.vocab_size):.2f}, unigram line "
    f"{unigram_line:.2f}).",
    f"On {full['runs'][0]['tokens']:,} C4 tokens, {len(SEEDS)} seeds: full training "
    f"{fmt(full['mean'], full['se'])}, embeddings only {fmt(emb['mean'], emb['se'])} nats/token; "
    f"full is lower by {gap['diff']:.2f} (95% interval {gap['lo']:.2f} to {gap['hi']:.2f}).",
    f"Against the unigram line ({unigram:.3f}): full training {full['mean'] - unigram:+.2f}, "
    f"embeddings only {emb['mean'] - unigram:+.2f} nats/token.",
]
print_takeaways(takeaways, START)

# %% [markdown]
# ## Exercises
# Solutions: `chapters/solutions/01_*.py` (each runs in seconds; a test runs them).
#
# 1. **Break one line.** In a copy of `plain.layernorm_backward`, drop the term
#    `- xhat * mean(dxhat * xhat)`. Predict: which of dx, dg, db goes wrong, and how large is
#    the relative error against finite differences (1e-9, 1e-3, or 1)? Run the check.
# 2. **Derive a backward.** Write the forward and backward of the softmax-free "ReLU attention"
#    y = relu(q k^T / sqrt(hs)) v for one head (no mask), and check it with
#    `smolgpt.gradcheck.check_layer`.
# 3. **One step by hand.** With the AdamW update above (`adamw_update`, or
#    `smolgpt.optim.adamw_step`, which takes the same step), what does the very first step do to a
#    weight whose gradient is g = 1e-6? and g = 1e+3? (Hint: m_hat / sqrt(v_hat) at t = 1.)
#    Check your answer numerically.

