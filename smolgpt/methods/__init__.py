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

The contract they all follow is in `base.py`; `spec.py` lists the methods and makes from their
declared options the `MethodSpec` that names one. One file per family: `base.py` (full training and
the embeddings-only baseline), `subspace.py` (random bases), `said.py` (one shared subspace
with a learned scale per tensor), `lora.py`, and the two between LoRA and a random subspace:
`vera.py` (one frozen random low-rank pair, two trained vectors per matrix) and `nola.py` (LoRA's
factors in a random basis).

    method = build(MethodSpec("fastfood", d=1000), GPTConfig.preset("tiny"))
    method = build(MethodSpec("said", d=1000), gpt, start=pretrained_params)   # fine-tuning
"""

from __future__ import annotations

from .base import EmbeddingsOnlyMethod, FullMethod, MethodError
from .lora import LoRAMethod
from .nola import NOLAMethod
from .said import SAIDMethod
from .spec import METHODS, MethodSpec, build
from .subspace import SubspaceMethod
from .vera import VeRAMethod

__all__ = ["METHODS", "MethodError", "MethodSpec", "build", "FullMethod", "EmbeddingsOnlyMethod",
           "SubspaceMethod", "LoRAMethod", "SAIDMethod", "VeRAMethod", "NOLAMethod"]
