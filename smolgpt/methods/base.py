"""The contract every parameterization follows, and the two methods everything builds on.

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

and, on its class, everything the spec and the command line need to know about it:

    Method.options              {MethodSpec field: its option()}: the options it reads, beyond
                                the method's name and seed; any other option is refused
    Method.rates                the TrainConfig learning rates it reads besides `lr`
    Method.decays               whether decay_keys() names any trainable (--weight-decay acts)
    Method.refusals             {option: why it makes no sense here}, said when one is given
    Method.check(spec)          refuse option values that cannot work (before any model exists)
    Method.label(spec)          a short human name ('lora r=4'), naming every non-default option

A method is a small object holding only what is fixed (config, seeds, frozen arrays it can
regenerate); it never holds the trainables, which the caller owns. The token and position
embeddings are always trained directly and are not counted in `n_trainable`.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from ..model import EMBEDDING_NAMES, GPTConfig, count_params, init_params, param_table

def option(default, help: str, **metadata) -> dataclasses.Field:
    """A method's option: one field of MethodSpec, with its default and the help text that
    `smolgpt train --help` prints (metadata `flag` renames the flag; `neutral` keeps the run
    key of runs made before the option existed, see experiments/runs.py). A method lists its
    options in its class's `options`; methods that read the same option share one field."""
    return dataclasses.field(default=default, metadata=dict(help=help, **metadata))


def positive_number(value, flag: str, why: str = "") -> None:
    """Refuse a value that is not a finite number > 0 (a bool is not a number here)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(value) or value <= 0:
        raise MethodError(f"{flag} must be a positive finite number{why}, got {value!r}")


def positive_integer(value, flag: str) -> None:
    """Refuse a value that is not an integer >= 1 (a bool is not an integer here)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise MethodError(f"{flag} must be a positive integer, got {value!r}")


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


class FullMethod:
    """Every tensor trained directly: the trainables are the parameters."""

    options: dict[str, dataclasses.Field] = {}       # none beyond the seed of the random init
    rates: tuple[str, ...] = ()
    decays = True                                    # the weight matrices (decay_keys)
    refusals: dict[str, str] = {}
    needed_grads = None                              # every gradient
    _start = None                                    # start_from's weights (or their loader)

    @classmethod
    def check(cls, spec) -> None:
        """Nothing to check: the spec has already refused options of other methods."""

    @classmethod
    def label(cls, spec) -> str:
        return spec.name

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

    def __init__(self, spec, config: GPTConfig):
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
    decays = False                                   # nor do the methods built on it

    def __init__(self, spec, config: GPTConfig):
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
