"""Training in a random subspace: theta = base + sigma * (P a) / sqrt(d).

The coefficients a are the only non-embedding trainables; in code they are the trainable array
`coef`. P comes from `smolgpt.transforms` (dense Gaussian, Fastfood or FFT-Fastfood) and is
regenerated from the method's seed, never stored.
"""

from __future__ import annotations

import math

import numpy as np

from .. import transforms
from ..model import EMBEDDING_NAMES, GPTConfig, flat_layout, init_constant, init_std, \
    non_embedding_table
from .base import EmbeddingsOnlyMethod, MethodError, MethodSpec

_OPERATORS = {"basis": transforms.DenseGaussian, "fastfood": transforms.Fastfood,
              "fft-fastfood": transforms.FFTFastfood}


class SubspaceMethod(EmbeddingsOnlyMethod):
    """Non-embedding weights confined to a d-dimensional random subspace.

    Flatten every non-embedding tensor into one vector theta (D,), in the order of
    `non_embedding_table`. Then

        theta = base + sigma * (P a) / sqrt(d)              a: (d,) trainable, key "coef"

    P (D, d) has unit-variance random entries; sigma (D,) is each coordinate's GPT-2 init scale
    (0.02, or 0.02 / sqrt(2 n_layer) for residual projections; LayerNorm and bias coordinates,
    which GPT-2 starts at a constant, get 0.02 too). Dividing by sqrt(d) gives sigma * (P a) /
    sqrt(d) the per-coordinate spread sigma (in expectation) when a is a vector of ones,
    whatever d is, and makes one Adam learning rate mean about the same step per weight
    (lr * sigma) for every d.

    Two forms of base and starting point:
      offset=True (Li et al. 2018): base = theta_0, a frozen GPT-2 init; a starts at 0, so the
        model starts exactly at that init and P a is a displacement from it.
      offset=False (the post's "W = a_1 W^1 + ... + a_d W^d"): no random offset. base is only
        GPT-2's constant part (LayerNorm gains 1, everything else 0) and a starts at ones, so
        every weight matrix is sum_k W^k / sqrt(d): a fresh random GPT-2 init in distribution.
        All of the model's randomness then lives in the d directions.
    per_tensor: each tensor t gets its own P_t (D_t, d) and its own coefficients (row t of a
      (n_tensors, d) array): the post's "5 per tensor".
    """

    needed_grads = None                              # every non-embedding tensor moves with a

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
        self._base = self._sigma = None

    # -- the fixed pieces, built on first use ----------------------------------------------------
    def operators(self):
        """The random projection(s): one (D, d) operator, or one (D_t, d) per tensor."""
        if self._ops is None:
            cls = _OPERATORS[self.spec.name]
            seq = np.random.SeedSequence([self.spec.seed, 1])          # 1: the bases' stream
            if self.spec.per_tensor:
                seeds = seq.generate_state(len(self.table))
                self._ops = [cls(math.prod(shape), self.spec.d, int(s))
                             for (_, shape), s in zip(self.table, seeds)]
            else:
                self._ops = [cls(self.D, self.spec.d, int(seq.generate_state(1)[0]))]
        return self._ops

    def base_and_sigma(self, dtype):
        """base (D,) and sigma (D,) in `dtype`, built once per dtype."""
        if self._base is None or self._base.dtype != dtype:
            sigma = np.empty(self.D, dtype=dtype)
            base = np.zeros(self.D, dtype=dtype)
            theta0 = self.random_init(dtype) if self.spec.offset else None
            for name, shape, off in self.layout:
                n = math.prod(shape)
                std = init_std(self.config, name)
                sigma[off:off + n] = std if std > 0 else 0.02
                if theta0 is not None:
                    base[off:off + n] = theta0[name].reshape(-1)
                elif std == 0:                       # GPT-2's constants: LayerNorm gains 1
                    base[off:off + n] = init_constant(name)
            self._base, self._sigma = base, sigma
        return self._base, self._sigma

    def _segments(self):
        """[(offset, size)] of each operator's slice of theta."""
        if self.spec.per_tensor:
            return [(off, math.prod(shape)) for _, shape, off in self.layout]
        return [(0, self.D)]

    # -- the contract ------------------------------------------------------------------------------
    def init(self, dtype=np.float32):
        trainables = super().init(dtype)
        fill = 0.0 if self.spec.offset else 1.0
        trainables["coef"] = np.full(self.trainable_shapes()["coef"], fill, dtype=dtype)
        return trainables

    def trainable_shapes(self) -> dict[str, tuple[int, ...]]:
        shape = (len(self.table), self.spec.d) if self.spec.per_tensor else (self.spec.d,)
        return {**super().trainable_shapes(), "coef": shape}

    def theta(self, coef):
        """coef (d,) or (n_tensors, d) -> theta (D,) = base + sigma * (P a) / sqrt(d)."""
        base, sigma = self.base_and_sigma(coef.dtype)
        scale = 1.0 / math.sqrt(self.spec.d)
        rows = coef.reshape(-1, self.spec.d)
        theta = np.empty(self.D, dtype=coef.dtype)
        for op, row, (off, n) in zip(self.operators(), rows, self._segments()):
            op.matvec(row, out=theta[off:off + n])                 # written in place
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
        g *= self.base_and_sigma(coef.dtype)[1]
        g *= 1.0 / math.sqrt(self.spec.d)
        dcoef = np.empty_like(coef).reshape(-1, self.spec.d)
        for i, (op, (off, n)) in enumerate(zip(self.operators(), self._segments())):
            dcoef[i] = op.rmatvec(g[off:off + n])
        out = {k: grads[k] for k in EMBEDDING_NAMES}
        out["coef"] = dcoef.reshape(coef.shape)
        return out

    def lr_groups(self, trainables):
        return {"coef": "coef_lr"}                     # coefficients have their own peak rate
