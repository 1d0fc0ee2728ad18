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
"""

from __future__ import annotations

from ..model import GPTConfig
from .base import (METHODS, SUBSPACE_KINDS, EmbeddingsOnlyMethod, FullMethod, MethodError,
                   MethodSpec)
from .lora import LoRAMethod
from .nola import NOLAMethod
from .norms import KNOB_COVERAGES, KNOB_METHODS, KnobsMethod, KnobSubspaceMethod
from .said import SAIDMethod
from .subspace import SubspaceMethod
from .vera import VeRAMethod

_CLASSES = {"full": FullMethod, "embeddings": EmbeddingsOnlyMethod, "basis": SubspaceMethod,
            "fastfood": SubspaceMethod, "fft-fastfood": SubspaceMethod, "lora": LoRAMethod,
            "said": SAIDMethod, "vera": VeRAMethod, "nola": NOLAMethod,
            **{name: KnobsMethod for name in KNOB_METHODS}}


def build(spec: MethodSpec, config: GPTConfig, start=None):
    """The method object for a spec on a model config.

    start: weights to start from instead of the seed's random init (a params dict of this model,
    or a function returning one, called on first need): see FullMethod.start_from.
    """
    cls = KnobSubspaceMethod if spec.coverage in KNOB_COVERAGES else _CLASSES[spec.name]
    method = cls(spec, config)
    if start is not None:
        method.start_from(start)
    return method


__all__ = ["METHODS", "SUBSPACE_KINDS", "MethodError", "MethodSpec", "build", "FullMethod",
           "EmbeddingsOnlyMethod", "SubspaceMethod", "LoRAMethod", "SAIDMethod", "VeRAMethod",
           "NOLAMethod", "KnobsMethod", "KnobSubspaceMethod"]
