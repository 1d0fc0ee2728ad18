"""The contract every parameterization follows, and the spec that names one.

A method maps a few trainable arrays to a whole GPT-2 parameter dict and pulls gradients back:

    trainables = method.init()                       # the arrays the optimizer updates
    params = method.params(trainables)               # trainables -> full GPT-2 parameter dict
    loss, grads = loss_and_grads(params, x, y, cfg, wanted=method.needed_grads)
    tgrads = method.pullback(trainables, grads)      # dL/dtrainables: the transpose of the map

and declares everything the training loop needs to know about its trainables, so the loop never
tests a method's name:

    method.n_trainable          trainable non-embedding numbers (the post's count)
    method.trainable_shapes()   {key: shape} of what init() returns, without drawing it (for
                                checking a checkpoint's arrays before using them)
    method.needed_grads         names of the parameter gradients `pullback` reads (None: all)
    method.decay_keys(t)        which trainables AdamW decays
    method.lr_groups(t)         {key: TrainConfig field holding its peak learning rate}; keys not
                                listed use `lr`

A method is a small object holding only what is fixed (config, seeds, frozen arrays it can
regenerate); it never holds the trainables, which the caller owns. The token and position
embeddings are always trained directly and are not counted in `n_trainable`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

import numpy as np

from ..model import EMBEDDING_NAMES, GPTConfig, count_params, init_params, param_table

METHODS = ("full", "embeddings", "basis", "fastfood", "fft-fastfood", "lora")
SUBSPACE_KINDS = ("basis", "fastfood", "fft-fastfood")


class MethodError(ValueError):
    """A method option that cannot work; the message says what to change."""


@dataclass(frozen=True)
class MethodSpec:
    """Everything that defines a parameterization, small enough to log and checkpoint.

    Each field's help text is the one `smolgpt train --help` prints (see smolgpt/cli.py).
    """

    name: str = field(default="full", metadata=dict(
        flag="method", help="what is trained: " + ", ".join(METHODS) + ". full: every tensor; "
        "embeddings: only wte/wpe; basis: a dense random subspace; fastfood / fft-fastfood: the "
        "same with a fast structured projection; lora: low-rank updates of a frozen random init"))
    d: int = field(default=5, metadata=dict(
        help="subspace dimension: trainable numbers for the whole model, or for each tensor "
        "with --per-tensor"))
    per_tensor: bool = field(default=False, metadata=dict(
        help="one d-dimensional subspace per tensor (the post's '5 per tensor')"))
    offset: bool = field(default=True, metadata=dict(
        flag="no-offset", help="the post's form theta = sum_k a_k W^k instead of Li et al.'s "
        "theta_0 + P a (a starts at ones instead of zeros)"))
    rank: int = field(default=4, metadata=dict(help="LoRA rank r"))
    alpha: float = field(default=8.0, metadata=dict(
        help="LoRA scale alpha; the update is (alpha / r) A B"))
    seed: int = field(default=0, metadata=dict(
        flag="method-seed", help="seed of the random init, the bases and LoRA's A"))

    def __post_init__(self):
        if self.name not in METHODS:
            raise MethodError(f"unknown method {self.name!r}: choose one of {', '.join(METHODS)}")
        if not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            raise MethodError(f"method seed (--method-seed) must be an integer >= 0, "
                              f"got {self.seed!r}")
        a = self.alpha
        if isinstance(a, bool) or not isinstance(a, (int, float)) or not math.isfinite(a) \
                or a <= 0:
            raise MethodError(f"LoRA scale alpha (--alpha) must be a positive finite number, "
                              f"got {a!r}")

    def label(self) -> str:
        """A short human name, e.g. 'fastfood d=1000', 'basis 5/tensor', 'basis d=5 no-offset'."""
        if self.name in SUBSPACE_KINDS:
            label = f"{self.name} {self.d}/tensor" if self.per_tensor else f"{self.name} d={self.d}"
            return label if self.offset else label + " no-offset"
        if self.name == "lora":
            return f"lora r={self.rank}"
        return self.name

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


class FullMethod:
    """Every tensor trained directly: the trainables are the parameters."""

    needed_grads = None                              # every gradient

    def __init__(self, spec: MethodSpec, config: GPTConfig):
        self.spec, self.config = spec, config
        self.n_trainable = count_params(config, non_embedding=True)

    def init(self, dtype=np.float32):
        return init_params(self.config, self.spec.seed, dtype)

    def trainable_shapes(self) -> dict[str, tuple[int, ...]]:
        return dict(param_table(self.config))

    def params(self, trainables):
        return trainables                            # no copy: the map is the identity

    def pullback(self, trainables, grads):
        return grads

    def decay_keys(self, trainables):
        """GPT-2 practice: decay matrices, not biases or LayerNorm (nor the embeddings)."""
        return {k for k, v in trainables.items() if v.ndim == 2 and k not in EMBEDDING_NAMES}

    def lr_groups(self, trainables):
        return {}                                    # everything at `lr`


class EmbeddingsOnlyMethod(FullMethod):
    """The baseline: wte and wpe trained, every other tensor frozen at its random init.

    Subclasses (the subspace methods, LoRA) build on the same frozen init, which is regenerated
    from the method's seed on first use and kept, once per dtype.
    """

    needed_grads = frozenset(EMBEDDING_NAMES)

    def __init__(self, spec: MethodSpec, config: GPTConfig):
        self.spec, self.config = spec, config
        self.n_trainable = 0
        self._init_params = None

    def random_init(self, dtype):
        """The frozen GPT-2 init (every tensor) in `dtype`, regenerated from the seed once."""
        if self._init_params is None or self._init_params["wte.weight"].dtype != dtype:
            self._init_params = init_params(self.config, self.spec.seed, dtype)
        return self._init_params

    def init(self, dtype=np.float32):
        start = self.random_init(dtype)
        return {k: start[k].copy() for k in EMBEDDING_NAMES}

    def trainable_shapes(self) -> dict[str, tuple[int, ...]]:
        return {k: s for k, s in param_table(self.config) if k in EMBEDDING_NAMES}

    def params(self, trainables):
        return {**self.random_init(trainables["wte.weight"].dtype), **trainables}

    def pullback(self, trainables, grads):
        return {k: grads[k] for k in trainables}

    def decay_keys(self, trainables):
        return set()
