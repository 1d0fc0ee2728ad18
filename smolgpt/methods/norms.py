"""Which few numbers: a frozen random GPT-2 steered by its gains and biases (chapter 10).

A random body's weight matrices stay frozen at their init; what is trained is a set of *knobs*,
numbers that each move a whole channel:

    norms        every LayerNorm's gain and bias (2 x 2 x C per block, 2 x C for ln_f): the
                 GPT-2 tensors `h.i.ln_1.weight` ... themselves, trained directly
    gains        one gain per output channel of every frozen weight matrix, W = W0 diag(g):
                 trainables `h.i.attn.c_attn.gain` (3C,), `attn.c_proj.gain` (C,),
                 `mlp.c_fc.gain` (4C,), `mlp.c_proj.gain` (C,)
    norms-gains  both
    biases       the bias of every frozen matrix (9 C per block: c_attn 3C, attn.c_proj C, c_fc
                 4C, mlp.c_proj C), the GPT-2 tensors `h.i.attn.c_attn.bias` ... trained directly
    norms-biases both
    heads        one volume per attention head (it scales that head's value columns of c_attn,
                 hence the head's whole output) and one per MLP (all of mlp.c_proj's columns):
                 `h.i.attn.head_gain` (nh,), `h.i.mlp.gain` (1,); n_layer (nh + 1) numbers

Every knob starts at GPT-2's own value (gains 1, biases 0), so at step 0 each model *is* the
frozen random init, and every trained model is a plain GPT-2 (W0 diag(g) is just a weight), so
it exports to transformers like any other.

On the byte model's 4 x 128 body: norms 2,304, gains 4,608, biases 4,608, norms-gains and
norms-biases 6,912, heads 20.

The same knobs can also be reached through a random subspace (`KnobSubspaceMethod`: the basis,
fastfood and fft-fastfood methods with `--coverage norms`, `gains`, `norms-gains`, `biases` or
`norms-biases`): the knob
vector k (K,) is `k0 + (P a) / sqrt(d)`, P (K, d) random, a (d,) trained from 0; every other
tensor frozen at its random init. Unlike a subspace of the weights (whose spread is GPT-2's 0.02),
a knob's natural unit is 1 (a gain of 1 is GPT-2's), so sigma is 1 here: a coefficient step of
size lr moves each knob by about lr, as training the knob directly at that rate would.

Why these numbers (Frankle, Schwab and Morcos 2021, "Training BatchNorm and Only BatchNorm"):
a channel gain scales, and a matrix bias shifts, one feature everywhere it is used, so a few of
them can switch random features on or off; a LayerNorm gain or bias reweights or shifts one input
channel that every feature reads; a random direction in weight space nudges every weight a little.
The learning rate of every knob (and of the subspace coefficients a) is `coef_lr`; the
embeddings train at `lr`. Nothing here is decayed: a gain decayed towards 0 would switch its
channel off.
"""

from __future__ import annotations

import math

import numpy as np

from ..model import EMBEDDING_NAMES, GPTConfig, flat_layout, init_constant
from .base import EmbeddingsOnlyMethod, MethodError
from .subspace import SubspaceMethod

KNOB_METHODS = ("norms", "gains", "norms-gains", "biases", "norms-biases", "heads")


def knob_table(config: GPTConfig, which: str) -> list[tuple[str, tuple[int, ...]]]:
    """[(knob name, shape)] of a knob set (one of KNOB_METHODS; `a-b` is both sets), in model
    order: block by block, then ln_f. LayerNorm and bias knobs are named as the GPT-2 tensors
    they are; gains and volumes get names of their own."""
    if which not in KNOB_METHODS:
        raise MethodError(f"unknown knob set {which!r}: choose one of {', '.join(KNOB_METHODS)}")
    parts = set(which.split("-"))
    C, nh = config.n_embd, config.n_head
    table = []
    for i in range(config.n_layer):
        p = f"h.{i}."
        if "norms" in parts:
            table += [(p + "ln_1.weight", (C,)), (p + "ln_1.bias", (C,)),
                      (p + "ln_2.weight", (C,)), (p + "ln_2.bias", (C,))]
        if "biases" in parts:
            table += [(p + "attn.c_attn.bias", (3 * C,)), (p + "attn.c_proj.bias", (C,)),
                      (p + "mlp.c_fc.bias", (4 * C,)), (p + "mlp.c_proj.bias", (C,))]
        if "gains" in parts:
            table += [(p + "attn.c_attn.gain", (3 * C,)), (p + "attn.c_proj.gain", (C,)),
                      (p + "mlp.c_fc.gain", (4 * C,)), (p + "mlp.c_proj.gain", (C,))]
        if "heads" in parts:
            table += [(p + "attn.head_gain", (nh,)), (p + "mlp.gain", (1,))]
    if "norms" in parts:
        table += [("ln_f.weight", (C,)), ("ln_f.bias", (C,))]
    return table


def knob_start(name: str) -> float:
    """Where a knob starts when the frozen weights are GPT-2's init: gains 1, biases 0."""
    return 1.0 if "gain" in name else init_constant(name)


class KnobsMethod(EmbeddingsOnlyMethod):
    """A knob set trained directly (one of KNOB_METHODS, e.g. `norms`, `gains`, `heads`); every
    other non-embedding tensor frozen at the random init (or at `start_from`'s weights)."""

    rates = ("coef_lr",)                             # every knob trains at coef_lr

    def __init__(self, spec, config: GPTConfig, which: str | None = None):
        super().__init__(spec, config)
        self.which = which or spec.name
        self.knobs = knob_table(config, self.which)
        self.n_trainable = sum(math.prod(s) for _, s in self.knobs)
        # weight name -> [(knob name, the weight's columns it scales (m,), which knob entry
        # scales each of them (m,))]: the gains each frozen matrix is multiplied by
        C, hs = config.n_embd, config.n_embd // config.n_head
        self.columns: dict[str, list] = {}
        for name, (n,) in self.knobs:
            if name.endswith(".gain") and not name.endswith("mlp.gain"):     # one per column
                cols, entry = np.arange(n), np.arange(n)
                weight = name[:-len("gain")] + "weight"
            elif name.endswith("attn.head_gain"):        # head h: value columns 2C + h hs ...
                cols = 2 * C + np.arange(C)
                entry, weight = np.arange(C) // hs, name.replace("head_gain", "c_attn.weight")
            elif name.endswith("mlp.gain"):              # the MLP's whole output
                cols, entry = np.arange(C), np.zeros(C, dtype=np.int64)
                weight = name.replace("mlp.gain", "mlp.c_proj.weight")
            else:
                continue                    # a LayerNorm or bias tensor: no weight to scale
            self.columns.setdefault(weight, []).append((name, cols, entry))
        self.gain_names = {k for scaled in self.columns.values() for k, _, _ in scaled}
        # the embeddings', the LayerNorm and bias knobs' and every scaled matrix's gradient. The
        # model's backward skips a linear layer's bias gradient with its weight's (one switch
        # per layer), so a bias knob asks for its weight's too (that matmul is then computed)
        direct = {n for n, _ in self.knobs if n not in self.gain_names}
        self.needed_grads = frozenset(EMBEDDING_NAMES) | set(self.columns) | direct | \
            {n[:-len("bias")] + "weight" for n in direct if n.endswith(".bias") and ".ln_" not in
             n and not n.startswith("ln_f")}

    def knob_values(self, dtype) -> dict[str, np.ndarray]:
        """Every knob at its start: a LayerNorm or bias knob at the frozen model's own value
        (GPT-2's 1 or 0, or a saved model's), a gain or volume at 1."""
        frozen = self.random_init(dtype)
        return {name: (frozen[name].copy() if name in frozen else
                       np.full(shape, knob_start(name), dtype=dtype))
                for name, shape in self.knobs}

    def params_from_knobs(self, embeddings: dict, knobs: dict) -> dict:
        """The GPT-2 parameter dict: the frozen init, the LayerNorm and bias knobs in place of
        those tensors, each scaled matrix W0 diag(g) (a new array; W0 is never written)."""
        params = {**self.random_init(knobs[self.knobs[0][0]].dtype), **embeddings}
        for name, _ in self.knobs:
            if name in params:                                  # a LayerNorm or bias tensor
                params[name] = knobs[name]
        for weight, scaled in self.columns.items():
            W0 = params[weight]                                 # (in, out), frozen
            g = np.ones(W0.shape[1], dtype=W0.dtype)            # (out,) one gain per column
            for name, cols, entry in scaled:
                g[cols] *= knobs[name][entry]
            params[weight] = W0 * g                             # W0 diag(g): column j times g_j
        return params

    def knob_grads(self, knobs: dict, grads: dict) -> dict:
        """dL/dknob from the parameter gradients. A LayerNorm or bias knob is the parameter
        itself. For W = W0 diag(g): dL/dg_j = sum_i dL/dW_ij W0_ij (the column's gradient read
        through W0), and a knob scaling several columns (a head, an MLP) sums their terms."""
        out = {name: grads[name] for name, _ in self.knobs if name not in self.gain_names}
        frozen = self.random_init(knobs[self.knobs[0][0]].dtype)
        for weight, scaled in self.columns.items():
            dg = np.einsum("io,io->o", grads[weight], frozen[weight])   # (out,) per column
            for name, cols, entry in scaled:      # no two knobs of a set share a column
                out[name] = np.bincount(entry, weights=dg[cols],
                                        minlength=knobs[name].size).astype(dg.dtype)
        return out

    # -- the contract ------------------------------------------------------------------------------
    def init(self, dtype=np.float32):
        return {**super().init(dtype), **self.knob_values(dtype)}

    def trainable_shapes(self) -> dict[str, tuple[int, ...]]:
        return {**super().trainable_shapes(), **dict(self.knobs)}

    def params(self, trainables):
        return self.params_from_knobs({k: trainables[k] for k in EMBEDDING_NAMES}, trainables)

    def pullback(self, trainables, grads):
        return {**{k: grads[k] for k in EMBEDDING_NAMES}, **self.knob_grads(trainables, grads)}

    def lr_groups(self, trainables):
        return {name: "coef_lr" for name, _ in self.knobs}     # not the trainables: the table

    def log_values(self, trainables) -> dict:
        """How far the knobs have moved from their start, and the volumes when few (heads)."""
        start = self.knob_values(np.float64)
        moved = sum(float(np.square(trainables[n].astype(np.float64) - start[n]).sum())
                    for n, _ in self.knobs)
        out = {"knob_shift": math.sqrt(moved)}
        if self.n_trainable <= 32:
            out["knobs"] = [float(v) for n, _ in self.knobs for v in trainables[n].reshape(-1)]
        return out


class KnobSubspaceMethod(SubspaceMethod):
    """A random subspace of the knobs: the basis, fastfood and fft-fastfood methods with
    `--coverage norms | gains | norms-gains | biases | norms-biases`.

        k = k0 + (P a) / sqrt(d)     k (K,) every knob, flattened in knob_table's order;
                                     k0 their start; a (d,) trainable "coef", starts at 0

    then the knobs make the model as in KnobsMethod (W = W0 diag(g), LayerNorms = their knobs).
    sigma is 1 (a knob's unit), so `coef_lr` means about the same step per knob as a knob
    trained directly would take. --per-tensor gives each knob tensor its own P and d numbers.
    """

    def __init__(self, spec, config: GPTConfig):
        if not spec.offset:
            raise MethodError(f"--coverage {spec.coverage} moves the knobs from their start "
                              f"(gains 1, biases 0) inside a frozen random body: drop "
                              f"--no-offset")
        if not spec.residual_scale:
            raise MethodError(f"--no-residual-scale sets a weight's spread, and --coverage "
                              f"{spec.coverage} spans no weight: drop it")
        EmbeddingsOnlyMethod.__init__(self, spec, config)
        self.map = KnobsMethod(spec, config, which=spec.coverage)
        self.needed_grads = self.map.needed_grads
        self.table = self.map.knobs
        self.rest, self.trained = [], []
        self.layout, self.D = flat_layout(self.table)
        self.n_trainable = self.coefficients("knob tensor", f"knobs of --coverage {spec.coverage}")
        self._ops = None
        self._base = self._sigma = None
        self._constants = None

    def start_from(self, params) -> None:
        """Frozen weights and LayerNorm starts from a saved model; the knobs move from there."""
        self.map.start_from(params)
        EmbeddingsOnlyMethod.start_from(self, params)

    def base_and_sigma(self, dtype):
        """k0 (K,): every knob's start; sigma (K,): ones (a knob's unit is 1)."""
        if self._base is None or self._base.dtype != dtype:
            start = self.map.knob_values(dtype)
            self._base = np.concatenate([start[n].reshape(-1) for n, _ in self.table])
            self._sigma = np.ones(self.D, dtype=dtype)
        return self._base, self._sigma

    def knobs(self, coef) -> dict:
        """{knob name: its values}, views into k = k0 + (P a) / sqrt(d)."""
        k = self.theta(coef)                                          # (K,)
        return {name: k[off:off + math.prod(shape)].reshape(shape)
                for name, shape, off in self.layout}

    def params(self, trainables):
        return self.map.params_from_knobs({k: trainables[k] for k in EMBEDDING_NAMES},
                                          self.knobs(trainables["coef"]))

    def pullback(self, trainables, grads):
        """dL/da = P^T (dL/dk) / sqrt(d), dL/dk from the knobs' own pullback (the knobs are
        recomputed from a: the method keeps nothing that depends on the trainables)."""
        coef = trainables["coef"]
        kg = self.map.knob_grads(self.knobs(coef), grads)
        g = np.concatenate([kg[name].reshape(-1) for name, _, _ in self.layout])   # (K,)
        g *= self.column_scale()
        dcoef = np.empty_like(coef).reshape(-1, self.spec.d)
        for i, (op, (off, n)) in enumerate(zip(self.operators(), self._segments())):
            dcoef[i] = op.rmatvec(g[off:off + n])
        return {**{k: grads[k] for k in EMBEDDING_NAMES}, "coef": dcoef.reshape(coef.shape)}
