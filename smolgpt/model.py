"""GPT-2 in NumPy: configuration, parameter table, initialisation, forward and backward.

The architecture is the original GPT-2: token + learned position embeddings, `n_layer`
pre-LayerNorm blocks (causal multi-head attention, then an MLP of width 4C with tanh-GELU, each
added back to the residual stream), a final LayerNorm, and an output head tied to the token
embedding (`logits = x @ wte.T`). No dropout.

Parameters live in one flat dict named as in Hugging Face's GPT-2 state dict (without the
`transformer.` prefix), weights in (in, out) layout:

    wte.weight (V, C)   wpe.weight (block_size, C)
    h.{i}.ln_1.weight/bias (C,)   h.{i}.attn.c_attn.weight (C, 3C)  .bias (3C,)
    h.{i}.attn.c_proj.weight (C, C)  .bias (C,)   h.{i}.ln_2.weight/bias (C,)
    h.{i}.mlp.c_fc.weight (C, 4C)  .bias (4C,)    h.{i}.mlp.c_proj.weight (4C, C)  .bias (C,)
    ln_f.weight/bias (C,)

`param_table(config)` is the one ordered list of those names and shapes; everything that flattens
parameters into a vector (the subspace methods) goes through it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from . import layers

# The id maps a model can read, by name -> vocabulary size: GPT-2's BPE and raw UTF-8 bytes (with
# one separator id). smolgpt/data.py turns text into these ids; the model needs only their range.
TOKENIZERS = {"gpt2": 50257, "bytes": 257}

EMBEDDING_NAMES = ("wte.weight", "wpe.weight")


class ConfigError(ValueError):
    """A model configuration that cannot work; the message says what to change."""


@dataclass(frozen=True)
class GPTConfig:
    """Sizes of a GPT-2. `GPTConfig.preset("tiny")` is the CPU default of the chapters.

    A field's help text is what `smolgpt train --help` prints for it (`--n-layer` ...), where it
    overrides the chosen preset."""

    n_layer: int = field(default=4, metadata=dict(help="number of transformer blocks",
                                                  shown="the preset's; tiny: 4"))
    n_head: int = field(default=4, metadata=dict(help="attention heads per block",
                                                 shown="the preset's; tiny: 4"))
    n_embd: int = field(default=128, metadata=dict(help="width C of the residual stream",
                                                   shown="the preset's; tiny: 128"))
    block_size: int = field(default=128, metadata=dict(help="context length T in tokens",
                                                       shown="the preset's; tiny: 128"))
    vocab_size: int = 50257          # GPT-2's BPE; not a flag: the tokenizer fixes it
    # which text-to-ids map the model reads (TOKENIZERS); not a flag: the preset
    # fixes it. `neutral`: at its default it is left out of a run's key, as before it existed.
    tokenizer: str = field(default="gpt2", metadata=dict(neutral=True))

    def __post_init__(self):
        for name in ("n_layer", "n_head", "n_embd", "block_size", "vocab_size"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        if self.tokenizer not in TOKENIZERS:
            raise ConfigError(f"unknown tokenizer {self.tokenizer!r}: use one of "
                              f"{sorted(TOKENIZERS)}")
        # (the default tokenizer is not held to this: gradient checks use GPT-2 models with a
        # handful of ids that never read text)
        if self.vocab_size < TOKENIZERS[self.tokenizer] and self.tokenizer != "gpt2":
            raise ConfigError(f"vocab_size={self.vocab_size} is smaller than the "
                              f"{self.tokenizer!r} tokenizer's {TOKENIZERS[self.tokenizer]} ids")
        if self.n_embd % self.n_head:
            raise ConfigError(
                f"n_embd={self.n_embd} is not divisible by n_head={self.n_head}: pick n_head among "
                f"{[h for h in range(1, min(self.n_embd, 64) + 1) if self.n_embd % h == 0]}")

    @staticmethod
    def preset(name: str) -> "GPTConfig":
        if name not in PRESETS:
            raise ConfigError(f"unknown model preset {name!r}: choose one of {sorted(PRESETS)}")
        return PRESETS[name]

    def to_dict(self) -> dict:
        return asdict(self)


PRESETS = {
    # The chapters' default: 4 layers of width 128 with the full GPT-2 vocabulary. Its
    # non-embedding part is 0.8M parameters; the tied 50257 x 128 embedding (6.4M) dominates
    # both the count and the compute, as the vocabulary head does for every small GPT.
    "tiny": GPTConfig(n_layer=4, n_head=4, n_embd=128, block_size=128),
    # The same 4 x 128 body reading UTF-8 bytes (256 values and a document separator) over a
    # context of 256 bytes: its embeddings shrink from 6.4M to 66k parameters, so ~92% of its
    # weights are in the transformer body, against 11% for `tiny`. The long race's model.
    "tiny-bytes": GPTConfig(n_layer=4, n_head=4, n_embd=128, block_size=256, vocab_size=257,
                            tokenizer="bytes"),
    # GPT-2 small, the post's model: 124,439,808 parameters, 85,056,000 of them non-embedding.
    "gpt2": GPTConfig(n_layer=12, n_head=12, n_embd=768, block_size=1024),
}


# ----------------------------------------------------------------------------------------------
# The parameter table


def param_table(config: GPTConfig) -> list[tuple[str, tuple[int, ...]]]:
    """Every parameter's (name, shape), in one fixed order: embeddings, blocks, final LayerNorm."""
    C, V, T = config.n_embd, config.vocab_size, config.block_size
    table = [("wte.weight", (V, C)), ("wpe.weight", (T, C))]
    for i in range(config.n_layer):
        p = f"h.{i}."
        table += [
            (p + "ln_1.weight", (C,)), (p + "ln_1.bias", (C,)),
            (p + "attn.c_attn.weight", (C, 3 * C)), (p + "attn.c_attn.bias", (3 * C,)),
            (p + "attn.c_proj.weight", (C, C)), (p + "attn.c_proj.bias", (C,)),
            (p + "ln_2.weight", (C,)), (p + "ln_2.bias", (C,)),
            (p + "mlp.c_fc.weight", (C, 4 * C)), (p + "mlp.c_fc.bias", (4 * C,)),
            (p + "mlp.c_proj.weight", (4 * C, C)), (p + "mlp.c_proj.bias", (C,)),
        ]
    table += [("ln_f.weight", (C,)), ("ln_f.bias", (C,))]
    return table


def non_embedding_table(config: GPTConfig) -> list[tuple[str, tuple[int, ...]]]:
    """The table without wte/wpe: the tensors the post's parameter budget counts."""
    return [(n, s) for n, s in param_table(config) if n not in EMBEDDING_NAMES]


def flat_layout(table) -> tuple[list[tuple[str, tuple[int, ...], int]], int]:
    """[(name, shape)] -> ([(name, shape, offset)], D): where each tensor sits in a flat vector."""
    layout, offset = [], 0
    for name, shape in table:
        layout.append((name, shape, offset))
        offset += math.prod(shape)
    return layout, offset


def count_params(config: GPTConfig, non_embedding: bool = False) -> int:
    table = non_embedding_table(config) if non_embedding else param_table(config)
    return sum(math.prod(s) for _, s in table)


def is_residual_projection(name: str) -> bool:
    """The two weights that write into the residual stream: attn.c_proj and mlp.c_proj."""
    return name.endswith("attn.c_proj.weight") or name.endswith("mlp.c_proj.weight")


def init_std(config: GPTConfig, name: str) -> float:
    """Standard deviation of a tensor's random init (0 for tensors GPT-2 starts at a constant).

    GPT-2's recipe: every weight matrix and both embeddings N(0, 0.02^2); the residual
    projections scaled down by 1/sqrt(2 n_layer) so the residual stream's variance does not grow
    with depth (as the GPT-2 paper describes and Hugging Face's PyTorch GPT-2, nanoGPT and llm.c
    do; the Flax port the post started from skips it); biases 0; LayerNorm gain 1, bias 0.
    """
    if name.endswith(".bias") or ".ln_" in name or name.startswith("ln_f"):
        return 0.0
    if is_residual_projection(name):
        return 0.02 / math.sqrt(2 * config.n_layer)
    return 0.02


def init_constant(name: str) -> float:
    """The value GPT-2 starts a tensor at when its init_std is 0: 1 for LayerNorm gains, else 0."""
    is_gain = name.endswith(".weight") and (".ln_" in name or name.startswith("ln_f"))
    return 1.0 if is_gain else 0.0


def init_params(config: GPTConfig, seed: int = 0, dtype=np.float32) -> dict[str, np.ndarray]:
    """A fresh GPT-2 init. Each tensor gets its own random stream (seed, tensor index), so one
    tensor's values do not depend on which other tensors exist."""
    params = {}
    for i, (name, shape) in enumerate(param_table(config)):
        std = init_std(config, name)
        if std > 0:
            rng = np.random.default_rng([seed, i])
            params[name] = (rng.standard_normal(shape, dtype=np.float32) * std).astype(dtype)
        else:                                           # LayerNorm 1 / 0, biases 0
            params[name] = np.full(shape, init_constant(name), dtype=dtype)
    return params


# ----------------------------------------------------------------------------------------------
# Forward and backward


def check_tokens(idx, config: GPTConfig) -> np.ndarray:
    """Validate a (B, T) array of token ids before it indexes anything."""
    idx = np.asarray(idx)
    if idx.ndim != 2:
        raise ValueError(f"token ids must be a 2-D (batch, time) array, got shape {idx.shape}")
    if not np.issubdtype(idx.dtype, np.integer):
        raise ValueError(f"token ids must be integers, got dtype {idx.dtype}")
    T = idx.shape[1]
    if T < 1 or T > config.block_size:
        raise ValueError(f"sequence length {T} is outside 1..block_size={config.block_size}: "
                         f"crop the input to its last {config.block_size} tokens")
    if idx.size and (idx.min() < 0 or idx.max() >= config.vocab_size):
        bad = int(idx.min()) if idx.min() < 0 else int(idx.max())
        raise ValueError(f"token id {bad} is outside the vocabulary 0..{config.vocab_size - 1}: "
                         f"encode text with the model's tokenizer (tiktoken 'gpt2')")
    return idx


def body_forward(params, idx, config: GPTConfig):
    """Everything up to the head: idx (B, T) -> x (B, T, C) after ln_f, and the caches."""
    caches = {}
    x, caches["emb"] = layers.embedding_forward(idx, params["wte.weight"], params["wpe.weight"])
    for i in range(config.n_layer):
        p = f"h.{i}."
        # attention sub-block: x = x + c_proj(attn(c_attn(ln_1(x))))
        h, c_ln1 = layers.layernorm_forward(x, params[p + "ln_1.weight"], params[p + "ln_1.bias"])
        qkv, c_qkv = layers.linear_forward(h, params[p + "attn.c_attn.weight"],
                                      params[p + "attn.c_attn.bias"])           # (B, T, 3C)
        a, c_att = layers.attention_forward(qkv, config.n_head)                     # (B, T, C)
        a, c_proj = layers.linear_forward(a, params[p + "attn.c_proj.weight"],
                                     params[p + "attn.c_proj.bias"])
        x += a                        # in place: no cache holds the residual stream x
        # MLP sub-block: x = x + c_proj(gelu(c_fc(ln_2(x))))
        h, c_ln2 = layers.layernorm_forward(x, params[p + "ln_2.weight"], params[p + "ln_2.bias"])
        f, c_fc = layers.linear_forward(h, params[p + "mlp.c_fc.weight"],
                                   params[p + "mlp.c_fc.bias"])                # (B, T, 4C)
        f, c_gelu = layers.gelu_forward(f)
        f, c_mproj = layers.linear_forward(f, params[p + "mlp.c_proj.weight"],
                                      params[p + "mlp.c_proj.bias"])           # (B, T, C)
        x += f
        caches[i] = (c_ln1, c_qkv, c_att, c_proj, c_ln2, c_fc, c_gelu, c_mproj)
    x, caches["ln_f"] = layers.layernorm_forward(x, params["ln_f.weight"], params["ln_f.bias"])
    return x, caches


def body_backward(dx, caches, config: GPTConfig, wanted=None) -> dict[str, np.ndarray]:
    """dx (B, T, C), the gradient at ln_f's output -> gradients of the parameters.

    The forward read bottom-up; the residual adds `x = x + f` copy dx into both branches, so the
    stream's gradient flows on unchanged and each branch's gradient is added to it.
    wanted: None for every parameter, or the set of names to return; a linear layer whose weight
    is not wanted skips its weight-gradient matmul (dx still flows through it to the layers below).
    """
    def want(name):
        return wanted is None or name in wanted

    grads = {}
    dx, grads["ln_f.weight"], grads["ln_f.bias"] = layers.layernorm_backward(dx, caches["ln_f"])
    for i in reversed(range(config.n_layer)):
        p = f"h.{i}."
        c_ln1, c_qkv, c_att, c_proj, c_ln2, c_fc, c_gelu, c_mproj = caches[i]
        # x = x + c_proj(gelu(c_fc(ln_2(x))))
        df, grads[p + "mlp.c_proj.weight"], grads[p + "mlp.c_proj.bias"] = \
            layers.linear_backward(dx, c_mproj, with_dw=want(p + "mlp.c_proj.weight"))
        df = layers.gelu_backward(df, c_gelu)
        dh, grads[p + "mlp.c_fc.weight"], grads[p + "mlp.c_fc.bias"] = \
            layers.linear_backward(df, c_fc, with_dw=want(p + "mlp.c_fc.weight"))
        dh, grads[p + "ln_2.weight"], grads[p + "ln_2.bias"] = layers.layernorm_backward(dh, c_ln2)
        dx += dh                      # in place: dx is this function's own array
        # x = x + c_proj(attn(c_attn(ln_1(x))))
        da, grads[p + "attn.c_proj.weight"], grads[p + "attn.c_proj.bias"] = \
            layers.linear_backward(dx, c_proj, with_dw=want(p + "attn.c_proj.weight"))
        dqkv = layers.attention_backward(da, c_att)
        dh, grads[p + "attn.c_attn.weight"], grads[p + "attn.c_attn.bias"] = \
            layers.linear_backward(dqkv, c_qkv, with_dw=want(p + "attn.c_attn.weight"))
        dh, grads[p + "ln_1.weight"], grads[p + "ln_1.bias"] = layers.layernorm_backward(dh, c_ln1)
        dx += dh
    # x = wte[idx] + wpe[:T]
    if want("wte.weight") or want("wpe.weight"):
        grads["wte.weight"], grads["wpe.weight"] = layers.embedding_backward(dx, caches["emb"])
    return grads if wanted is None else {k: g for k, g in grads.items() if k in wanted}


def forward(params, idx, config: GPTConfig) -> np.ndarray:
    """idx (B, T) token ids -> logits (B, T, V)."""
    idx = check_tokens(idx, config)
    x, _ = body_forward(params, idx, config)
    return layers.head_forward(x, params["wte.weight"])


def loss_and_grads(params, idx, targets, config: GPTConfig, chunk: int = 1024, wanted=None):
    """Mean next-token cross-entropy and the gradients of the parameters.

    idx, targets (B, T) -> (loss: float, grads: dict). wanted: None for every parameter (keys as
    params), or a set of parameter names: grads then holds exactly those keys and the backward
    skips the weight-gradient matmuls of the others (the embeddings-only method asks for
    {"wte.weight", "wpe.weight"}). The values are the same as in the full gradient.
    The tied head's gradient has two parts, added here: one from the logits (`x @ wte^T`) and
    one from the input lookup (`wte[idx]`).
    """
    idx = check_tokens(idx, config)
    targets = check_tokens(targets, config)
    if wanted is not None:
        unknown = set(wanted) - set(params)
        if unknown:
            raise KeyError(f"gradients asked for unknown parameters: {sorted(unknown)}")
    B, T = idx.shape
    x, caches = body_forward(params, idx, config)                            # (B, T, C)
    loss, dx, dwte_head = layers.cross_entropy_head(x.reshape(B * T, -1), params["wte.weight"],
                                                    targets.reshape(-1), chunk=chunk)
    grads = body_backward(dx.reshape(x.shape), caches, config, wanted)
    if "wte.weight" in grads:
        grads["wte.weight"] += dwte_head
    return loss, grads


def loss_only(params, idx, targets, config: GPTConfig, chunk: int = 1024) -> float:
    """Mean cross-entropy without gradients (validation)."""
    idx = check_tokens(idx, config)
    targets = check_tokens(targets, config)
    B, T = idx.shape
    x, _ = body_forward(params, idx, config)
    loss, _, _ = layers.cross_entropy_head(x.reshape(B * T, -1), params["wte.weight"],
                                      targets.reshape(-1), chunk=chunk, with_grads=False)
    return loss
