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
    method.log_values(t)        {name: a few numbers} worth a line in every step's log record
                                (the subspace coefficients), or {}
    method.start_from(params)   start from given weights instead of the seed's random init (a
                                saved model, `--init-from`): full training trains them, every
                                other method freezes them (the subspace methods as theta_0)

A method is a small object holding only what is fixed (config, seeds, frozen arrays it can
regenerate); it never holds the trainables, which the caller owns. The token and position
embeddings are always trained directly and are not counted in `n_trainable`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

import numpy as np

from ..model import EMBEDDING_NAMES, GPTConfig, count_params, init_params, param_table

METHODS = ("full", "embeddings", "basis", "fastfood", "fft-fastfood", "lora", "said", "vera",
           "nola", "norms", "gains", "norms-gains", "biases", "norms-biases", "heads")
SUBSPACE_KINDS = ("basis", "fastfood", "fft-fastfood")
# How a subspace method's combination is instantiated (chapter 07 takes these apart); the first
# of each is the default.
COEF_INITS = ("default", "ones", "inv_d", "zeros", "normal", "normal_inv_d")
BASIS_SCALES = ("normalised", "gpt2")
COVERAGES = ("all", "literal", "constants", "trained", "norms", "gains", "norms-gains", "biases",
             "norms-biases")


def part_norms(trainables: dict, prefix: str, names, parts) -> dict:
    """{"<part>_norm": the norm of every `<prefix>.<name>.<part>` vector taken together}, summed
    in float64 so that no square overflows: what VeRA and NOLA log after each step."""
    out = {}
    for part in parts:
        squares = sum(float(np.square(trainables[f"{prefix}.{name}.{part}"],
                                      dtype=np.float64).sum()) for name in names)
        out[f"{part}_norm"] = math.sqrt(squares)
    return out


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
        "same with a fast structured projection; lora: low-rank updates of a frozen random init; "
        "said: one shared Fastfood subspace with a learned scale per tensor (Aghajanyan et al.); "
        "vera: one frozen random low-rank pair shared by every matrix, two trained vectors per "
        "matrix (Kopiczko et al.); nola: LoRA's factors as combinations of frozen random "
        "matrices, the coefficients trained (Koohpayegani et al.); norms: only the LayerNorm gains "
        "and biases, the rest frozen at its random init; gains: one gain per output channel of "
        "every frozen matrix; biases: only the matrices' biases; norms-gains, norms-biases: both; "
        "heads: one volume per attention head and per MLP (these train at --coef-lr)"))
    d: int = field(default=5, metadata=dict(
        help="subspace dimension: trainable numbers for the whole model, or for each tensor "
        "with --per-tensor"))
    per_tensor: bool = field(default=False, metadata=dict(
        help="one d-dimensional subspace per tensor (the post's '5 per tensor')"))
    offset: bool = field(default=True, metadata=dict(
        flag="no-offset", help="the post's form theta = sum_k a_k W^k instead of Li et al.'s "
        "theta_0 + P a (a starts at ones instead of zeros)"))
    coef_init: str = field(default="default", metadata=dict(
        help="how the subspace coefficients a start: " + ", ".join(COEF_INITS) + ". default: "
        "zeros with the offset, ones without; inv_d: every a_k = 1/d; normal: N(0, 1); "
        "normal_inv_d: N(0, 1/d) (drawn from --method-seed)", neutral=True))
    basis_scale: str = field(default="normalised", metadata=dict(
        help="scale of each basis tensor W^k: normalised (sigma / sqrt(d): the weights have "
        "GPT-2's spread sigma at a = ones, whatever d is) or gpt2 (every W^k a full GPT-2 init "
        "of spread sigma, so the weights' spread is sigma |a|)", neutral=True))
    residual_scale: bool = field(default=True, metadata=dict(
        flag="no-residual-scale", help="give the basis's residual projections (attn.c_proj, "
        "mlp.c_proj) the plain 0.02 of the Flax GPT-2 the post used, instead of GPT-2's "
        "0.02 / sqrt(2 n_layer); a frozen offset keeps GPT-2's init either way", neutral=True))
    coverage: str = field(default="all", metadata=dict(
        help="which tensors the random combination spans: " + ", ".join(COVERAGES) + ". all: "
        "every non-embedding tensor, added to GPT-2's constants (LayerNorm gains 1 + the "
        "combination); literal: every tensor is the combination alone, LayerNorm gains and "
        "biases included (needs --no-offset); constants: only the weight matrices, LayerNorm "
        "and biases fixed at GPT-2's constants; trained: only the weight matrices, LayerNorm "
        "and biases trained directly at --lr (and counted); norms, gains, biases, norms-gains, "
        "norms-biases: only those knobs (the LayerNorm gains and biases, one gain per output "
        "channel of every matrix, the matrices' biases) move, from their start, the rest of "
        "the body frozen at its random init",
        neutral=True))
    rank: int = field(default=4, metadata=dict(
        help="rank r of the low-rank update (lora, vera, nola)"))
    alpha: float = field(default=8.0, metadata=dict(
        help="scale alpha of LoRA and NOLA; the update is (alpha / r) A B"))
    vera_d_init: float = field(default=0.1, metadata=dict(
        help="VeRA: the value every entry of each matrix's vector d starts at (b starts at 0)",
        neutral=True))
    nola_k: int = field(default=64, metadata=dict(
        help="NOLA: random matrices combined into each matrix's factor A (k coefficients)",
        neutral=True))
    nola_l: int = field(default=64, metadata=dict(
        help="NOLA: random matrices combined into each matrix's factor B (l coefficients)",
        neutral=True))
    seed: int = field(default=0, metadata=dict(
        flag="method-seed", help="seed of the random init, the bases, LoRA's A and the frozen "
        "random matrices of VeRA and NOLA"))

    def __post_init__(self):
        if self.name not in METHODS:
            raise MethodError(f"unknown method {self.name!r}: choose one of {', '.join(METHODS)}")
        if not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            raise MethodError(f"method seed (--method-seed) must be an integer >= 0, "
                              f"got {self.seed!r}")
        self._check_subspace_options()
        a = self.alpha
        if isinstance(a, bool) or not isinstance(a, (int, float)) or not math.isfinite(a) \
                or a <= 0:
            raise MethodError(f"LoRA scale alpha (--alpha) must be a positive finite number, "
                              f"got {a!r}")
        self._check_low_rank_options()

    def _check_subspace_options(self):
        """Refuse option values that do not exist, options of a method they do not apply to,
        and combinations that cannot train."""
        for name, flag, allowed in (("coef_init", "--coef-init", COEF_INITS),
                                    ("basis_scale", "--basis-scale", BASIS_SCALES),
                                    ("coverage", "--coverage", COVERAGES)):
            if getattr(self, name) not in allowed:
                raise MethodError(f"{flag} must be one of {', '.join(allowed)}, got "
                                  f"{getattr(self, name)!r}")
        changed = [flag for flag, is_default in (
            ("--coef-init", self.coef_init == "default"),
            ("--basis-scale", self.basis_scale == "normalised"),
            ("--no-residual-scale", self.residual_scale is True),
            ("--coverage", self.coverage == "all")) if not is_default]
        if changed and self.name not in SUBSPACE_KINDS:
            raise MethodError(f"{', '.join(changed)} shape(s) a random combination, so only the "
                              f"subspace methods ({', '.join(SUBSPACE_KINDS)}) take it, not "
                              f"{self.name!r}")
        if self.coverage == "literal" and self.offset:
            raise MethodError("--coverage literal makes every tensor the combination alone, with "
                              "nothing added; the offset would add GPT-2's init back: add "
                              "--no-offset, or use --coverage all")
        if self.coef_init == "zeros" and not self.offset and self.coverage in ("constants",
                                                                              "trained"):
            # Every weight matrix would start at 0, where each one's gradient is a product with
            # another that is 0 (e.g. dL/dW_fc goes through W_proj): a would never move.
            raise MethodError("--coef-init zeros with --no-offset and --coverage "
                              f"{self.coverage} starts every weight matrix at 0, where their "
                              "gradients are exactly 0, so the coefficients could never move: "
                              "keep the offset, or use --coverage all or literal")

    def _check_low_rank_options(self):
        """VeRA's and NOLA's own options: valid values, and only on the method that reads them."""
        v = self.vera_d_init
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) \
                or v == 0:
            # with d = 0 and b = 0 the update is 0 and so are both vectors' gradients
            raise MethodError(f"--vera-d-init must be a finite non-zero number (b starts at 0, so "
                              f"d = 0 would leave both vectors without gradient), got {v!r}")
        for name in ("nola_k", "nola_l"):
            n = getattr(self, name)
            if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
                raise MethodError(f"--{name.replace('_', '-')} must be a positive integer, "
                                  f"got {n!r}")
        defaults = {f.name: f.default for f in fields(self)}
        owners = {"vera_d_init": "vera", "nola_k": "nola", "nola_l": "nola"}
        for name, owner in owners.items():
            if getattr(self, name) != defaults[name] and self.name != owner:
                raise MethodError(f"--{name.replace('_', '-')} is an option of {owner}, not of "
                                  f"{self.name!r}")
        if self.name == "vera" and self.alpha != defaults["alpha"]:
            raise MethodError("vera has no scale alpha: the size of its update is learned in the "
                              "vectors d and b (set where d starts with --vera-d-init)")

    def label(self) -> str:
        """A short human name, e.g. 'fastfood d=1000', 'basis 5/tensor', 'basis d=5 no-offset',
        'basis d=5 no-offset a=inv_d coverage=literal' (every non-default option is named)."""
        if self.name in SUBSPACE_KINDS:
            label = f"{self.name} {self.d}/tensor" if self.per_tensor else f"{self.name} d={self.d}"
            label = label if self.offset else label + " no-offset"
            extra = [f"a={self.coef_init}" if self.coef_init != "default" else "",
                     f"basis-scale={self.basis_scale}" if self.basis_scale != "normalised" else "",
                     "" if self.residual_scale else "no-residual-scale",
                     f"coverage={self.coverage}" if self.coverage != "all" else ""]
            return " ".join([label] + [e for e in extra if e])
        if self.name == "lora":
            return f"lora r={self.rank}"
        if self.name == "said":
            return f"said d={self.d}"
        if self.name == "vera":
            extra = "" if self.vera_d_init == 0.1 else f" d_init={self.vera_d_init:g}"
            return f"vera r={self.rank}{extra}"
        if self.name == "nola":
            return f"nola k={self.nola_k} l={self.nola_l} r={self.rank}"
        return self.name

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


class FullMethod:
    """Every tensor trained directly: the trainables are the parameters."""

    needed_grads = None                              # every gradient
    _start = None                                    # start_from's weights (or their loader)

    def start_from(self, params) -> None:
        """Start from `params` (every tensor of this model, like init_params gives; or a
        function of no arguments returning them, called when first needed) instead of the random
        init drawn from the seed. Call before init() or params()."""
        self._start = params

    def start_weights(self, dtype) -> dict | None:
        """start_from's weights in `dtype`, checked against the model's table, or None."""
        if self._start is None:
            return None
        start = self._start() if callable(self._start) else self._start
        want = dict(param_table(self.config))
        got = {k: tuple(np.shape(v)) for k, v in start.items()}
        if got != want:
            bad = next((k for k in want if got.get(k) != want[k]), None) or sorted(set(got) -
                                                                                  set(want))[0]
            raise MethodError(f"the start weights do not fit this model: {bad} is "
                              f"{got.get(bad, 'missing')}, the model needs {want.get(bad)}; "
                              f"start from a checkpoint of the same model")
        return {k: np.asarray(start[k], dtype=dtype) for k in want}

    def __init__(self, spec: MethodSpec, config: GPTConfig):
        self.spec, self.config = spec, config
        self.n_trainable = count_params(config, non_embedding=True)

    def init(self, dtype=np.float32):
        start = self.start_weights(dtype)
        if start is not None:                        # copies: the caller updates them in place
            return {k: v.copy() for k, v in start.items()}
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

    def log_values(self, trainables) -> dict:
        return {}                                    # nothing small enough to log every step


class EmbeddingsOnlyMethod(FullMethod):
    """The baseline: wte and wpe trained, every other tensor frozen at its random init.

    Subclasses (the subspace methods, LoRA) build on the same frozen init, which is regenerated
    from the method's seed on first use and kept, once per dtype; after `start_from(params)` the
    frozen init is those weights instead (a pretrained model, adapted around its own weights).
    """

    needed_grads = frozenset(EMBEDDING_NAMES)

    def __init__(self, spec: MethodSpec, config: GPTConfig):
        self.spec, self.config = spec, config
        self.n_trainable = 0
        self._init_params = None

    def random_init(self, dtype):
        """The frozen GPT-2 init (every tensor) in `dtype`, regenerated from the seed once; the
        start weights instead when the method was given some (`start_from`)."""
        if self._init_params is None or self._init_params["wte.weight"].dtype != dtype:
            start = self.start_weights(dtype)
            self._init_params = start if start is not None else \
                init_params(self.config, self.spec.seed, dtype)
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
