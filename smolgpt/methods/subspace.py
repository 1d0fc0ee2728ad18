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
    is_residual_projection, non_embedding_table
from .base import EmbeddingsOnlyMethod, MethodError, option

_OPERATORS = {"basis": transforms.DenseGaussian, "fastfood": transforms.Fastfood,
              "fft-fastfood": transforms.FFTFastfood}
# How the combination is instantiated (chapter 07 takes these apart); the first is the default.
COEF_INITS = ("default", "ones", "inv_d", "zeros", "normal", "normal_inv_d")
BASIS_SCALES = ("normalised", "gpt2")
# the knob sets of chapter 10 a subspace can span instead of the weights (methods/norms.py)
KNOB_COVERAGES = ("norms", "gains", "norms-gains", "biases", "norms-biases")
COVERAGES = ("all", "literal", "constants", "trained", *KNOB_COVERAGES)


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

    The choices the post left open (its `options`; the defaults are the form above):
      coef_init: how a starts (default: zeros with the offset, ones without; or ones, 1/d,
        zeros, N(0, 1), N(0, 1/d)).
      basis_scale: "normalised" divides by sqrt(d) as above; "gpt2" does not, so every column
        is a full GPT-2 init (spread sigma) and the weights' spread is sigma |a|.
      residual_scale=False: sigma of the residual projections is 0.02, not 0.02 / sqrt(2 n_layer)
        (the Flax port's init). A frozen offset theta_0 keeps GPT-2's init either way.
      coverage: "all" (above), "literal" (base 0 everywhere: LayerNorm gains and biases are the
        combination alone, the post's "every tensor" read literally), "constants" (theta and P
        span only the 2-D weight matrices; LayerNorm and biases are GPT-2's constants, frozen)
        or "trained" (the same, with LayerNorm and biases trainables of their own, counted in
        n_trainable).
    Starting a at zeros without an offset is allowed only when the combination spans the
    LayerNorm and bias tensors: every weight matrix then starts at 0, where only those tensors'
    gradients are non-zero (`check` refuses the other coverages).
    """

    options = dict(
        d=option(5, "subspace dimension: trainable numbers for the whole model, or for each "
                 "tensor with --per-tensor"),
        per_tensor=option(False, "one d-dimensional subspace per tensor (the post's '5 per "
                          "tensor')"),
        offset=option(True, "the post's form theta = sum_k a_k W^k instead of Li et al.'s "
                      "theta_0 + P a (a starts at ones instead of zeros)", flag="no-offset"),
        coef_init=option("default", "how the subspace coefficients a start: " +
                         ", ".join(COEF_INITS) + ". default: zeros with the offset, ones "
                         "without; inv_d: every a_k = 1/d; normal: N(0, 1); normal_inv_d: "
                         "N(0, 1/d) (drawn from --method-seed)", neutral=True, shown=""),
        basis_scale=option("normalised", "scale of each basis tensor W^k: normalised (sigma / "
                           "sqrt(d): the weights have GPT-2's spread sigma at a = ones, whatever "
                           "d is) or gpt2 (every W^k a full GPT-2 init of spread sigma, so the "
                           "weights' spread is sigma |a|)", neutral=True),
        residual_scale=option(True, "give the basis's residual projections (attn.c_proj, "
                              "mlp.c_proj) the plain 0.02 of the Flax GPT-2 the post used, "
                              "instead of GPT-2's 0.02 / sqrt(2 n_layer); a frozen offset keeps "
                              "GPT-2's init either way", flag="no-residual-scale", neutral=True),
        coverage=option("all", "which tensors the random combination spans: " +
                        ", ".join(COVERAGES) + ". all: every non-embedding tensor, added to "
                        "GPT-2's constants (LayerNorm gains 1 + the combination); literal: every "
                        "tensor is the combination alone, LayerNorm gains and biases included "
                        "(needs --no-offset); constants: only the weight matrices, LayerNorm and "
                        "biases fixed at GPT-2's constants; trained: only the weight matrices, "
                        "LayerNorm and biases trained directly at --lr (and counted among the "
                        "trainable numbers); norms, gains, biases, norms-gains, norms-biases: "
                        "only those knobs (the "
                        "LayerNorm gains and biases, one gain per output channel of every "
                        "matrix, the matrices' biases) move, from their start, the rest of the "
                        "body frozen at its random init",
                        neutral=True))
    rates = ("coef_lr",)
    needed_grads = None                              # every non-embedding tensor moves with a

    @classmethod
    def check(cls, spec) -> None:
        """Refuse option values that do not exist, and combinations that cannot train."""
        for name, allowed in (("coef_init", COEF_INITS), ("basis_scale", BASIS_SCALES),
                              ("coverage", COVERAGES)):
            if getattr(spec, name) not in allowed:
                raise MethodError(f"--{name.replace('_', '-')} must be one of "
                                  f"{', '.join(allowed)}, got {getattr(spec, name)!r}")
        if spec.coverage == "literal" and spec.offset:
            raise MethodError("--coverage literal makes every tensor the combination alone, with "
                              "nothing added; the offset would add GPT-2's init back: add "
                              "--no-offset, or use --coverage all")
        if spec.coef_init == "zeros" and not spec.offset and spec.coverage in ("constants",
                                                                              "trained"):
            # Every weight matrix would start at 0, where each one's gradient is a product with
            # another that is 0 (e.g. dL/dW_fc goes through W_proj): a would never move.
            raise MethodError("--coef-init zeros with --no-offset and --coverage "
                              f"{spec.coverage} starts every weight matrix at 0, where their "
                              "gradients are exactly 0, so the coefficients could never move: "
                              "keep the offset, or use --coverage all or literal")

    @classmethod
    def label(cls, spec) -> str:
        """'fastfood d=1000', 'basis 5/tensor', 'basis d=5 no-offset a=inv_d coverage=literal'
        (every non-default option is named)."""
        label = f"{spec.name} {spec.d}/tensor" if spec.per_tensor else f"{spec.name} d={spec.d}"
        label = label if spec.offset else label + " no-offset"
        extra = [f"a={spec.coef_init}" if spec.coef_init != "default" else "",
                 f"basis-scale={spec.basis_scale}" if spec.basis_scale != "normalised" else "",
                 "" if spec.residual_scale else "no-residual-scale",
                 f"coverage={spec.coverage}" if spec.coverage != "all" else ""]
        return " ".join([label] + [e for e in extra if e])

    def __init__(self, spec, config: GPTConfig):
        super().__init__(spec, config)
        every = non_embedding_table(config)
        spans_all = spec.coverage in ("all", "literal")
        self.table = [(n, s) for n, s in every if spans_all or len(s) == 2]     # in theta
        self.rest = [(n, s) for n, s in every if not (spans_all or len(s) == 2)]
        self.trained = self.rest if spec.coverage == "trained" else []
        self.layout, self.D = flat_layout(self.table)
        self.n_trainable = self.coefficients("tensor", "non-embedding parameters it spans")
        self.n_trainable += sum(math.prod(s) for _, s in self.trained)
        self._ops = None
        self._base = self._sigma = None
        self._constants = None

    def coefficients(self, tensor: str, spanned: str) -> int:
        """How many coefficients a has: d, or d for each tensor of self.table with --per-tensor,
        after checking d against what it spans (`tensor` and `spanned` name those in the
        message: "tensor", "non-embedding parameters it spans")."""
        d = self.spec.d
        if not isinstance(d, (int, np.integer)) or d < 1:
            raise MethodError(f"subspace dimension d must be a positive integer, got {d!r}")
        if self.spec.per_tensor:
            smallest = min(math.prod(s) for _, s in self.table)
            if d > smallest:
                raise MethodError(
                    f"d={d} per tensor is larger than the smallest {tensor} ({smallest} numbers): "
                    f"use d <= {smallest} with --per-tensor, or drop --per-tensor")
            return d * len(self.table)
        if d > self.D:
            raise MethodError(f"d={d} is larger than the {self.D} {spanned}: use d <= {self.D}")
        return d

    def start_from(self, params) -> None:
        """A saved model becomes theta_0 (Li et al.'s offset form, as Aghajanyan et al. use it to
        fine-tune). Without the offset the weights are the combination alone, and with another
        coverage than "all" some tensors are GPT-2's constants: neither can hold saved weights."""
        if not self.spec.offset:
            raise MethodError("--init-from needs the offset form, theta = theta_0 + P a with "
                              "theta_0 the saved weights: drop --no-offset")
        if self.spec.coverage != "all":
            raise MethodError(f"--init-from with --coverage {self.spec.coverage} would replace "
                              f"the saved LayerNorm and bias values by GPT-2's constants: use "
                              f"--coverage all")
        super().start_from(params)

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
                if not self.spec.residual_scale and is_residual_projection(name):
                    std *= math.sqrt(2 * self.config.n_layer)    # undo GPT-2's 1/sqrt(2 n_layer)
                sigma[off:off + n] = std if std > 0 else 0.02
                if theta0 is not None:
                    base[off:off + n] = theta0[name].reshape(-1)
                elif std == 0 and self.spec.coverage != "literal":
                    base[off:off + n] = init_constant(name)     # GPT-2's constants: gains 1
            self._base, self._sigma = base, sigma
        return self._base, self._sigma

    def constants(self, dtype):
        """{name: GPT-2's constant array} of the tensors outside theta, built once per dtype."""
        if self._constants is None or any(v.dtype != dtype for v in self._constants.values()):
            self._constants = {n: np.full(s, init_constant(n), dtype=dtype) for n, s in self.rest}
        return self._constants

    def column_scale(self) -> float:
        """The factor on sigma * (P a): 1/sqrt(d) (normalised) or 1 (each column a GPT-2 init)."""
        return 1.0 / math.sqrt(self.spec.d) if self.spec.basis_scale == "normalised" else 1.0

    def initial_coef(self, shape, dtype):
        """a at the start, as spec.coef_init says (random draws from the method's seed)."""
        how, d = self.spec.coef_init, self.spec.d
        if how == "default":
            how = "zeros" if self.spec.offset else "ones"
        if how in ("normal", "normal_inv_d"):
            rng = np.random.default_rng([self.spec.seed, 2])   # 2: the coefficients' stream
            a = rng.standard_normal(shape)                       # (d,) or (n_tensors, d)
            return (a / math.sqrt(d) if how == "normal_inv_d" else a).astype(dtype)
        return np.full(shape, {"zeros": 0.0, "ones": 1.0, "inv_d": 1.0 / d}[how], dtype=dtype)

    def _segments(self):
        """[(offset, size)] of each operator's slice of theta."""
        if self.spec.per_tensor:
            return [(off, math.prod(shape)) for _, shape, off in self.layout]
        return [(0, self.D)]

    # -- the contract ------------------------------------------------------------------------------
    def init(self, dtype=np.float32):
        trainables = super().init(dtype)
        trainables["coef"] = self.initial_coef(self.trainable_shapes()["coef"], dtype)
        for name, shape in self.trained:                  # coverage "trained": GPT-2's start
            trainables[name] = np.full(shape, init_constant(name), dtype=dtype)
        return trainables

    def trainable_shapes(self) -> dict[str, tuple[int, ...]]:
        shape = (len(self.table), self.spec.d) if self.spec.per_tensor else (self.spec.d,)
        return {**super().trainable_shapes(), "coef": shape, **dict(self.trained)}

    def theta(self, coef):
        """coef (d,) or (n_tensors, d) -> theta (D,) = base + sigma * (P a) / sqrt(d)."""
        base, sigma = self.base_and_sigma(coef.dtype)
        scale = self.column_scale()
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
        fixed = self.constants(theta.dtype) if self.rest and not self.trained else trainables
        for name, _ in self.rest:                  # LayerNorm and biases outside the combination
            params[name] = fixed[name]
        return params

    def pullback(self, trainables, grads):
        """dL/da = P^T (sigma * dL/dtheta) / sqrt(d): the transpose of the map, read backwards
        (base is constant, so it contributes nothing; with basis_scale "gpt2" there is no
        1/sqrt(d)). Tensors trained directly keep their own gradients."""
        coef = trainables["coef"]
        g = np.concatenate([grads[name].reshape(-1) for name, _, _ in self.layout])   # (D,)
        g *= self.base_and_sigma(coef.dtype)[1]
        g *= self.column_scale()
        dcoef = np.empty_like(coef).reshape(-1, self.spec.d)
        for i, (op, (off, n)) in enumerate(zip(self.operators(), self._segments())):
            dcoef[i] = op.rmatvec(g[off:off + n])
        out = {k: grads[k] for k in EMBEDDING_NAMES}
        out["coef"] = dcoef.reshape(coef.shape)
        for name, _ in self.trained:
            out[name] = grads[name]
        return out

    def lr_groups(self, trainables):
        return {"coef": "coef_lr"}                     # coefficients have their own peak rate

    def log_values(self, trainables) -> dict:
        """The coefficients themselves when there are at most 16 (their trajectory is chapter
        07's evidence), and always their norm |a|."""
        coef = trainables["coef"]
        out = {"coef_norm": float(np.linalg.norm(coef.astype(np.float64)))}   # no float32 overflow
        if coef.size <= 16:
            out["coef"] = [float(v) for v in coef.reshape(-1)]
        return out
