"""Parameterizations: how a few trainable numbers become a whole GPT-2.

| method         | non-embedding weights                                  | trainable      |
|----------------|--------------------------------------------------------|----------------|
| `full`         | trained directly                                       | all of them    |
| `embeddings`   | frozen at their random init                            | 0              |
| `basis`        | theta = base + sigma * (P a) / sqrt(d), P dense random | d (per tensor) |
| `fastfood`     | the same with P a Fastfood transform                   | d (per tensor) |
| `fft-fastfood` | the same with P the post's FFT version                 | d (per tensor) |
| `lora`         | W = W_frozen + (alpha / r) A B on every 2-D weight     | r (m + n) each |
| `said`         | tensor t: theta0_t + lambda_t * (fastfood offset)_t    | d + n_tensors  |
| `vera`         | W = W_frozen + A diag(d) B diag(b), A B frozen, shared | r + n each     |
| `nola`         | W = W_frozen + (alpha / r) A B, A and B combinations   | k + l each     |
|                | of k and l frozen random matrices                      |                |
| `norms`        | frozen random; LayerNorm gains and biases trained      | 4 C a block+2C |
| `gains`        | W = W_frozen diag(g), one gain per output channel      | 9 C a block    |
| `norms-gains`  | both                                                   | 13C a block+2C |
| `biases`       | frozen random; the matrices' biases trained            | 9 C a block    |
| `norms-biases` | both                                                   | 13C a block+2C |
| `heads`        | one volume per attention head and per MLP              | nh + 1 a block |

The contract they all follow is in `base.py`; one file per family: `base.py` (full training and
the embeddings-only baseline), `subspace.py` (random bases), `said.py` (one shared subspace
with a learned scale per tensor), `lora.py`, and the two between LoRA and a random subspace:
`vera.py` (one frozen random low-rank pair, two trained vectors per matrix) and `nola.py` (LoRA's
factors in a random basis); `norms.py` (chapter 10's knobs: LayerNorms, channel gains, head
volumes, trained directly or through a random subspace, `--coverage norms`).

    method = build(MethodSpec("fastfood", d=1000), GPTConfig.preset("tiny"))
    method = build(MethodSpec("said", d=1000), gpt, start=pretrained_params)   # fine-tuning

This file lists the methods (METHODS) and makes from them `MethodSpec`. Each method's class
declares the options it reads (their defaults and help texts), the learning rates it reads, its
label and its checks (see base.py); adding a method is a new file and one line in METHODS.
`MethodSpec` is the frozen dataclass that names a method and all its options, small enough to
log, checkpoint and hash into a run's key: one field per option of any method (an option several
methods read, like `rank`, is one field), each with the one default and help text that
`smolgpt train`'s flag shows. A spec refuses, with one line naming the option, an option its
method does not read: MethodSpec("lora", d=7) is refused.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..model import GPTConfig
from .base import EmbeddingsOnlyMethod, FullMethod, MethodError, option
from .lora import LoRAMethod
from .nola import NOLAMethod
from .norms import KnobsMethod, KnobSubspaceMethod
from .said import SAIDMethod
from .subspace import KNOB_COVERAGES, SubspaceMethod
from .vera import VeRAMethod

METHODS = {          # name: (its class, what it trains: the --method help says it)
    "full": (FullMethod, "every tensor"),
    "embeddings": (EmbeddingsOnlyMethod, "only wte/wpe"),
    "basis": (SubspaceMethod, "a dense random subspace"),
    "fastfood": (SubspaceMethod, "the same with the Fastfood projection"),
    "fft-fastfood": (SubspaceMethod, "the same with the post's FFT projection"),
    "lora": (LoRAMethod, "low-rank updates of a frozen random init"),
    "said": (SAIDMethod, "one shared Fastfood subspace with a learned scale per tensor "
                         "(Aghajanyan et al.)"),
    "vera": (VeRAMethod, "one frozen random low-rank pair shared by every matrix, two trained "
                         "vectors per matrix (Kopiczko et al.)"),
    "nola": (NOLAMethod, "LoRA's factors as combinations of frozen random matrices, the "
                         "coefficients trained (Koohpayegani et al.)"),
    "norms": (KnobsMethod, "only the LayerNorm gains and biases, the rest of the body frozen at "
                           "its random init"),
    "gains": (KnobsMethod, "one gain per output channel of every frozen matrix"),
    "norms-gains": (KnobsMethod, "norms and gains"),
    "biases": (KnobsMethod, "only the matrices' biases"),
    "norms-biases": (KnobsMethod, "norms and biases"),
    "heads": (KnobsMethod, "one volume per attention head and per MLP (the knob methods train at "
                           "--coef-lr)"),
}


def method_class(name: str) -> type:
    """The class of the method called `name`, or a MethodError listing the methods."""
    if name not in METHODS:
        raise MethodError(f"unknown method {name!r}: choose one of {', '.join(METHODS)}")
    return METHODS[name][0]


def _options() -> dict[str, dataclasses.Field]:
    """Every method's options, in the order the methods list them; a name two methods declare
    must be the same option (one field, one default), or the spec could not hold both."""
    out = {}
    for cls, _ in METHODS.values():
        for name, f in cls.options.items():
            if out.setdefault(name, f) is not f:
                raise TypeError(f"{cls.__name__} declares its own option {name!r}, which another "
                                f"method already declares: share that one")
    return out


OPTIONS = _options()
# the learning rates (TrainConfig fields) some method reads besides `lr`, which every method reads
RATES = tuple(dict.fromkeys(rate for cls, _ in METHODS.values() for rate in cls.rates))


def owners(option_name: str) -> list[str]:
    """The methods that read option `option_name`."""
    return [m for m, (cls, _) in METHODS.items() if option_name in cls.options]


def flag_of(name: str) -> str:
    """The command-line flag of a MethodSpec field: '--d', '--no-offset', '--method-seed'."""
    f = OPTIONS.get(name) or next(f for f in dataclasses.fields(MethodSpec) if f.name == name)
    return "--" + f.metadata.get("flag", name).replace("_", "-")


def refuse_foreign(method: str, names) -> None:
    """Refuse the first of the option `names` (MethodSpec fields) that `method` does not read,
    in one line naming its flag and the methods that do read it."""
    cls = method_class(method)
    for name in names:
        if name in OPTIONS and name not in cls.options:
            why = cls.refusals.get(name) or (f"{flag_of(name)} is an option of "
                                              f"{', '.join(owners(name))}, not of {method!r}")
            raise MethodError(f"{why}: drop {flag_of(name)}")


def refuse_foreign_training(method: str, names) -> None:
    """Refuse the first of the TrainConfig fields `names` that `method` never reads, since giving
    it would change nothing: another method's learning rate, or weight decay where the method
    decays none of its trainables."""
    cls = method_class(method)
    rates = cls.rates
    for name in names:
        if name == "weight_decay" and not cls.decays:
            raise MethodError(f"--weight-decay: {method!r} decays none of its trainables (only "
                              f"{', '.join(m for m, (c, _) in METHODS.items() if c.decays)} "
                              f"decays its weight matrices): drop it")
        if name in RATES and name not in rates:
            readers = [m for m, (cls, _) in METHODS.items() if name in cls.rates]
            raise MethodError(f"--{name.replace('_', '-')} is the learning rate of "
                              f"{', '.join(readers)}; {method!r} never reads it: drop it, or "
                              f"set --lr, the rate {method} trains with"
                              + (f" (and {', '.join(rates)})" if rates else ""))


class _Spec:
    """Everything that defines a parameterization: the method's name, its options and the seed
    of its random draws. Each field's help text is the one `smolgpt train --help` prints."""

    def __post_init__(self):
        cls = method_class(self.name)
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)) \
                or self.seed < 0:
            raise MethodError(f"method seed (--method-seed) must be an integer >= 0, "
                              f"got {self.seed!r}")
        refuse_foreign(self.name, [name for name, f in OPTIONS.items()
                                   if getattr(self, name) != f.default])
        cls.check(self)

    def label(self) -> str:
        """A short human name, e.g. 'fastfood d=1000', 'basis 5/tensor', 'lora r=4'."""
        return METHODS[self.name][0].label(self)

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


MethodSpec = dataclasses.make_dataclass(
    "MethodSpec",
    [("name", "str", option("full", "what is trained: " + ", ".join(METHODS) + ". " + "; ".join(
        f"{name}: {what}" for name, (_, what) in METHODS.items()), flag="method"))]
    + [(name, type(f.default).__name__, f) for name, f in OPTIONS.items()]
    + [("seed", "int", option(0, "seed of the random init, the bases, LoRA's A and the frozen "
                              "random matrices of VeRA and NOLA", flag="method-seed"))],
    bases=(_Spec,), frozen=True, namespace={"__module__": __name__, "__doc__": _Spec.__doc__})


def build(spec, config: GPTConfig, start=None):
    """The method object for a MethodSpec on a model config.

    start: weights to start from instead of the seed's random init (a params dict of this model,
    or a function returning one, called on first need): see FullMethod.start_from.
    """
    cls = KnobSubspaceMethod if spec.coverage in KNOB_COVERAGES else method_class(spec.name)
    method = cls(spec, config)
    if start is not None:
        method.start_from(start)
    return method


__all__ = ["METHODS", "MethodError", "MethodSpec", "build", "FullMethod", "EmbeddingsOnlyMethod",
           "SubspaceMethod", "LoRAMethod", "SAIDMethod", "VeRAMethod", "NOLAMethod",
           "KnobsMethod", "KnobSubspaceMethod"]
