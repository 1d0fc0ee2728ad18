"""LoRA on a frozen random init: W = W_frozen + (alpha / r) A B on every 2-D non-embedding weight.

For each weight matrix W (m, n) in (in, out) layout (attention c_attn and c_proj, MLP c_fc and
c_proj), the trainables are A (m, r) and B (r, n). Conventions, as in the LoRA paper and its
common implementations:
  - A starts random, N(0, 1/m) (the fan-in scale), and B starts at zero, so A B = 0 and the model
    starts exactly at its random init; the first steps move B, and through it A gets gradient.
  - The update is scaled by alpha / r, so changing r does not change the size of the first steps.
Everything else that is not an embedding (biases, LayerNorms) stays frozen at its init; the
embeddings are trained directly, as in every method here. Trainable non-embedding parameters:
sum over weights of r (m + n).

The map and its transpose, for one weight (s = alpha / r, G = dL/dW from the model's backward):
    W = W_frozen + s A B          ->   dL/dA = s G B^T,   dL/dB = s A^T G
Computing the merged W once per step costs one (m, r) x (r, n) product per weight; the function
the model computes, x W_frozen + s (x A) B, is the same either way: every change LoRA can make
passes through r directions of the activations.
"""

from __future__ import annotations

import numpy as np

from ..model import EMBEDDING_NAMES, GPTConfig, non_embedding_table
from .base import EmbeddingsOnlyMethod, MethodError, option, positive_number


class LoRAMethod(EmbeddingsOnlyMethod):
    """Trainables: wte, wpe, and for each 2-D non-embedding weight W (m, n) its factors
    "lora.<name>.A" (m, r) and "lora.<name>.B" (r, n). Everything else is frozen at its init."""

    options = dict(
        rank=option(4, "rank r of the low-rank update (lora, vera, nola)"),
        alpha=option(8.0, "scale alpha of LoRA and NOLA; the update is (alpha / r) A B"))

    @classmethod
    def check(cls, spec) -> None:
        positive_number(spec.alpha, "LoRA scale alpha (--alpha)")

    @classmethod
    def label(cls, spec) -> str:
        return f"lora r={spec.rank}"

    def __init__(self, spec, config: GPTConfig):
        super().__init__(spec, config)
        r = spec.rank
        self.targets = [(n, s) for n, s in non_embedding_table(config) if len(s) == 2]
        if not isinstance(r, (int, np.integer)) or r < 1:
            raise MethodError(f"LoRA rank must be a positive integer, got {r!r}")
        limit = min(min(s) for _, s in self.targets)
        if r > limit:
            raise MethodError(f"LoRA rank {r} exceeds min(m, n) = {limit} of the smallest weight "
                              f"matrix: a rank above it adds nothing; use --rank <= {limit}")
        self.scale = spec.alpha / r
        self.n_trainable = sum(r * (m + n) for _, (m, n) in self.targets)
        self.needed_grads = frozenset(EMBEDDING_NAMES) | {name for name, _ in self.targets}

    def init(self, dtype=np.float32):
        trainables = super().init(dtype)
        r = self.spec.rank
        for i, (name, (m, n)) in enumerate(self.targets):
            rng = np.random.default_rng([self.spec.seed, 2, i])       # 2: LoRA's stream
            trainables[f"lora.{name}.A"] = (rng.standard_normal((m, r)) / np.sqrt(m)).astype(dtype)
            trainables[f"lora.{name}.B"] = np.zeros((r, n), dtype=dtype)
        return trainables

    def trainable_shapes(self) -> dict[str, tuple[int, ...]]:
        shapes = super().trainable_shapes()
        for name, (m, n) in self.targets:
            shapes[f"lora.{name}.A"], shapes[f"lora.{name}.B"] = (m, self.spec.rank), \
                (self.spec.rank, n)
        return shapes

    def params(self, trainables):
        params = super().params({k: trainables[k] for k in EMBEDDING_NAMES})
        for name, _ in self.targets:
            A, B = trainables[f"lora.{name}.A"], trainables[f"lora.{name}.B"]
            params[name] = params[name] + self.scale * (A @ B)       # (m, n), a new array
        return params

    def pullback(self, trainables, grads):
        """grads keyed like params -> grads keyed like trainables (dA (m, r), dB (r, n))."""
        out = {k: grads[k] for k in EMBEDDING_NAMES}
        for name, _ in self.targets:
            A, B = trainables[f"lora.{name}.A"], trainables[f"lora.{name}.B"]
            G = grads[name]                                          # (m, n) dL/dW
            out[f"lora.{name}.A"] = self.scale * (G @ B.T)           # (m, r)
            out[f"lora.{name}.B"] = self.scale * (A.T @ G)           # (r, n)
        return out
