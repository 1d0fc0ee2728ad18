"""Parameterizations: how a few trainable numbers become a whole GPT-2.

Every method answers the same three questions, so a training step is the chain rule in four lines:

    trainables = method.init()                       # the arrays the optimizer updates
    params = method.params(trainables)               # trainables -> full GPT-2 parameter dict
    loss, grads = loss_and_grads(params, x, y, cfg)  # dL/dparams, from the model's backward
    tgrads = method.pullback(trainables, grads)      # dL/dtrainables: the transpose of the map

The token and position embeddings (`wte`, `wpe`) are always trained directly and are not counted:
`method.n_trainable` is the post's number, trainable *non-embedding* parameters.

| method         | non-embedding weights                                  | trainable      |
|----------------|--------------------------------------------------------|----------------|
| `full`         | trained directly                                       | all of them    |
| `embeddings`   | frozen at their random init                            | 0              |
| `basis`        | theta = base + sigma * (P a) / sqrt(d), P dense random | d (per tensor) |
| `fastfood`     | the same with P a Fastfood transform                   | d (per tensor) |
| `fft-fastfood` | the same with P the post's FFT version                 | d (per tensor) |
| `lora`         | W = W_frozen + (alpha / r) A B on every 2-D weight     | r (m + n) each |

A method is a small object holding only what is fixed (config, seeds, frozen arrays it can
regenerate); it never holds the trainables, which the caller owns.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .model import (EMBEDDING_NAMES, GPTConfig, count_params, flat_layout, init_constant,
                    init_params, init_std, non_embedding_table)

METHODS = ("full", "embeddings", "basis", "fastfood", "fft-fastfood", "lora")
SUBSPACE_KINDS = ("basis", "fastfood", "fft-fastfood")


class MethodError(ValueError):
    """A method option that cannot work; the message says what to change."""


@dataclass(frozen=True)
class MethodSpec:
    """Everything that defines a parameterization, small enough to log and checkpoint.

    d: subspace dimension (global: d numbers for the whole model; per_tensor: d for each tensor).
    offset: True for Li et al.'s theta = theta_0 + P a (a starts at 0, theta_0 a frozen random
        init); False for the post's form without a random offset (a starts at 1; see
        SubspaceMethod).
    rank, alpha: LoRA's rank r and scale alpha (the update is (alpha / r) A B).
    seed: every random array of the method (init, bases, LoRA's A) derives from it.
    """

    name: str = "full"
    d: int = 5
    per_tensor: bool = False
    offset: bool = True
    rank: int = 4
    alpha: float = 8.0
    seed: int = 0

    def __post_init__(self):
        if self.name not in METHODS:
            raise MethodError(f"unknown method {self.name!r}: choose one of {', '.join(METHODS)}")
        if not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            raise MethodError(f"method seed (--method-seed) must be an integer >= 0, "
                              f"got {self.seed!r}")

    def label(self) -> str:
        """A short human name, e.g. 'fastfood d=1000', 'basis 5/tensor', 'basis d=5 no-offset'."""
        if self.name in SUBSPACE_KINDS:
            label = f"{self.name} {self.d}/tensor" if self.per_tensor else f"{self.name} d={self.d}"
            return label if self.offset else label + " no-offset"
        if self.name == "lora":
            return f"lora r={self.rank}"
        return self.name

    def to_dict(self) -> dict:
        return dict(name=self.name, d=self.d, per_tensor=self.per_tensor, offset=self.offset,
                    rank=self.rank, alpha=self.alpha, seed=self.seed)


def build(spec: MethodSpec, config: GPTConfig):
    """The method object for a spec on a model config."""
    if spec.name == "full":
        return FullMethod(spec, config)
    if spec.name == "embeddings":
        return EmbeddingsOnlyMethod(spec, config)
    if spec.name in SUBSPACE_KINDS:
        return SubspaceMethod(spec, config)
    from .lora import LoRAMethod
    return LoRAMethod(spec, config)


class FullMethod:
    """Every tensor trained directly: the trainables are the parameters."""

    def __init__(self, spec: MethodSpec, config: GPTConfig):
        self.spec, self.config = spec, config
        self.n_trainable = count_params(config, non_embedding=True)

    def init(self, dtype=np.float32):
        return init_params(self.config, self.spec.seed, dtype)

    def params(self, trainables):
        return trainables                        # no copy: the map is the identity

    def pullback(self, trainables, grads):
        return grads

    def decay_keys(self, trainables):
        """GPT-2 practice: decay matrices, not biases or LayerNorm (nor the embeddings)."""
        return {k for k, v in trainables.items() if v.ndim == 2 and k not in EMBEDDING_NAMES}


class EmbeddingsOnlyMethod(FullMethod):
    """The baseline: wte and wpe trained, every other tensor frozen at its random init."""

    def __init__(self, spec: MethodSpec, config: GPTConfig):
        self.spec, self.config = spec, config
        self.n_trainable = 0
        self.frozen = None

    def _frozen(self, dtype):
        if self.frozen is None or next(iter(self.frozen.values())).dtype != dtype:
            self.frozen = init_params(self.config, self.spec.seed, dtype)
        return self.frozen

    def init(self, dtype=np.float32):
        frozen = self._frozen(dtype)
        return {k: frozen[k].copy() for k in EMBEDDING_NAMES}

    def params(self, trainables):
        return {**self._frozen(trainables["wte.weight"].dtype), **trainables}

    def pullback(self, trainables, grads):
        return {k: grads[k] for k in trainables}


# ----------------------------------------------------------------------------------------------
# Training in a random subspace


class SubspaceMethod(EmbeddingsOnlyMethod):
    """Non-embedding weights confined to a d-dimensional random subspace.

    Flatten every non-embedding tensor into one vector theta (D,), in the order of
    `non_embedding_table`. Then

        theta = base + sigma * (P a) / sqrt(d)              a: (d,) trainable coefficients

    P (D, d) has unit-variance random entries (dense Gaussian, Fastfood or FFT-Fastfood, from
    `smolgpt.transforms`); sigma (D,) is each coordinate's GPT-2 init scale (0.02, or
    0.02 / sqrt(2 n_layer) for residual projections; LayerNorm and bias coordinates, which GPT-2
    starts at a constant, get 0.02 too); dividing by sqrt(d) makes sigma * P a / sqrt(d) have
    the per-coordinate spread sigma (in expectation) when a is a vector of ones, whatever d is,
    and makes
    one Adam learning rate mean the same step (about lr * sigma per weight) for every d.

    Two forms of base and starting point:
      offset=True (Li et al. 2018): base = theta_0, a frozen GPT-2 init; a starts at 0, so the
        model starts exactly at that init and P a is a displacement from it.
      offset=False (the post's "W = a_1 W^1 + ... + a_d W^d"): no random offset. base is only
        GPT-2's constant part (LayerNorm gains 1, everything else 0) and a starts at ones, so
        every weight matrix is sum_k W^k / sqrt(d): a fresh random GPT-2 init in distribution.
        All of the model's randomness then lives in the d directions.
    per_tensor: each tensor t gets its own P_t (D_t, d) and own coefficients (row t of a
      (n_tensors, d) array): the post's "5 per tensor".
    """

    def __init__(self, spec: MethodSpec, config: GPTConfig):
        super().__init__(spec, config)
        self.table = non_embedding_table(config)
        self.layout, self.D = flat_layout(self.table)
        d = spec.d
        if not isinstance(d, (int, np.integer)) or d < 1:
            raise MethodError(f"subspace dimension d must be a positive integer, got {d!r}")
        if spec.per_tensor:
            smallest = min(math.prod(s) for _, s in self.table)
            if d > smallest:
                raise MethodError(
                    f"d={d} per tensor is larger than the smallest tensor ({smallest} parameters): "
                    f"use d <= {smallest} with --per-tensor, or drop --per-tensor")
            self.n_trainable = d * len(self.table)
        else:
            if d > self.D:
                raise MethodError(f"d={d} is larger than the {self.D} non-embedding parameters it "
                                  f"spans: use d <= {self.D}")
            self.n_trainable = d
        self._ops = None
        self._base = None

    # -- the fixed pieces, built on first use ----------------------------------------------------
    def operators(self):
        """The random projection(s): one (D, d) operator, or one (D_t, d) per tensor."""
        if self._ops is None:
            from . import transforms
            cls = {"basis": transforms.DenseGaussian, "fastfood": transforms.Fastfood,
                   "fft-fastfood": transforms.FFTFastfood}[self.spec.name]
            seq = np.random.SeedSequence([self.spec.seed, 1])          # 1: the bases' stream
            if self.spec.per_tensor:
                seeds = seq.generate_state(len(self.table))
                self._ops = [cls(math.prod(shape), self.spec.d, int(s))
                             for (_, shape), s in zip(self.table, seeds)]
            else:
                self._ops = [cls(self.D, self.spec.d, int(seq.generate_state(1)[0]))]
        return self._ops

    def _fixed(self, dtype):
        """base (D,) and sigma (D,) in `dtype`."""
        if self._base is None or self._base[0].dtype != dtype:
            sigma = np.empty(self.D, dtype=dtype)
            base = np.zeros(self.D, dtype=dtype)
            theta0 = self._frozen(dtype) if self.spec.offset else None
            for name, shape, off in self.layout:
                n = math.prod(shape)
                std = init_std(self.config, name)
                sigma[off:off + n] = std if std > 0 else 0.02
                if theta0 is not None:
                    base[off:off + n] = theta0[name].reshape(-1)
                elif std == 0:                       # GPT-2's constants: LayerNorm gains 1
                    base[off:off + n] = init_constant(name)
            self._base = (base, sigma)
        return self._base

    def _segments(self):
        """[(offset, size)] of each operator's slice of theta."""
        if self.spec.per_tensor:
            return [(off, math.prod(shape)) for _, shape, off in self.layout]
        return [(0, self.D)]

    # -- the contract ------------------------------------------------------------------------------
    def init(self, dtype=np.float32):
        trainables = super().init(dtype)
        shape = (len(self.table), self.spec.d) if self.spec.per_tensor else (self.spec.d,)
        fill = 0.0 if self.spec.offset else 1.0
        trainables["coef"] = np.full(shape, fill, dtype=dtype)
        return trainables

    def theta(self, coef):
        """coef (d,) or (n_tensors, d) -> theta (D,) = base + sigma * (P a) / sqrt(d)."""
        base, sigma = self._fixed(coef.dtype)
        scale = 1.0 / math.sqrt(self.spec.d)
        rows = coef.reshape(-1, self.spec.d)
        theta = np.empty(self.D, dtype=coef.dtype)
        for op, a, (off, n) in zip(self.operators(), rows, self._segments()):
            op.matvec(a, out=theta[off:off + n])                 # written in place
        theta *= sigma
        theta *= scale
        theta += base
        return theta

    def params(self, trainables):
        theta = self.theta(trainables["coef"])
        params = {k: trainables[k] for k in EMBEDDING_NAMES}
        for name, shape, off in self.layout:
            params[name] = theta[off:off + math.prod(shape)].reshape(shape)     # views, no copy
        return params

    def pullback(self, trainables, grads):
        """dL/da = P^T (sigma * dL/dtheta) / sqrt(d): the transpose of the map, read backwards
        (base is constant, so it contributes nothing)."""
        coef = trainables["coef"]
        g = np.concatenate([grads[name].reshape(-1) for name, _, _ in self.layout])   # (D,)
        g *= self._fixed(coef.dtype)[1]
        g *= 1.0 / math.sqrt(self.spec.d)
        dcoef = np.empty_like(coef).reshape(-1, self.spec.d)
        for i, (op, (off, n)) in enumerate(zip(self.operators(), self._segments())):
            dcoef[i] = op.rmatvec(g[off:off + n])
        out = {k: grads[k] for k in EMBEDDING_NAMES}
        out["coef"] = dcoef.reshape(coef.shape)
        return out

    def decay_keys(self, trainables):
        return set()                                   # coefficients are not weights: no decay
