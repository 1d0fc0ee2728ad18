"""How much memory a training step needs, from the config alone, before anything is allocated.

    est = estimate_training_bytes(GPTConfig.preset("tiny"), batch_size=16, method=method)
    est["total"] <= available_bytes()          # or the run is refused before it starts

An absurd `--batch-size` would otherwise be met by the OS killing the process without a word (or
NumPy's MemoryError deep in a layer). The estimate counts float32 arrays, as training holds them
(N = B*T rows, P parameters, D non-embedding parameters, n trainable numbers):

  parameters   the trainables (n), plus what a method keeps frozen (its random init, P) and
               builds each step (a subspace's theta, D; the merged weights of LoRA, VeRA and
               NOLA), plus a subspace's fixed vectors (base, sigma) and its projection's own
               arrays, VeRA's shared pair, NOLA's bases
  adam         Adam's two moments, 2n
  gradients    the parameter gradients the backward returns, plus the method's pullback
  activations  what `body_forward` caches for the backward, per layer (smolgpt/model.py):
               ln_1 xhat and output (2C), qkv (3C), the attention output (C), ln_2 xhat and
               output (2C), c_fc output, tanh and GELU output (3 x 4C): 20C floats a row, and the
               (B, nh, T, T) attention probabilities (in query blocks of ATTN_BLOCK rows)
  head         the fused loss head's (chunk, V) logits buffer, its (V, C) dwte and, when N >
               chunk, a second (V, C) for each chunk's share, and dx (N, C)
  backward     the largest transient of a block's backward: the GELU backward holds three
               (N, 4C) arrays at once, next to about six (N, C) gradients of the residual
               stream and its branches

The peak is the persistent part plus the larger of the two moments that matter: the head (all
caches alive, the logits buffer in use) and the end of the backward (all caches, every gradient).
tests/test_memory.py holds the estimate to the peak tracemalloc sees (NumPy reports its buffers
to it) within a stated factor, for a few configs and methods, so it cannot silently drift.
"""

from __future__ import annotations

import math
import os

from .layers import ATTN_BLOCK
from .model import GPTConfig, count_params

F32 = 4                                   # bytes per float32
HEAD_CHUNK = 1024                         # rows per chunk of the loss head (model.loss_and_grads)


def attention_probs(config: GPTConfig, batch_size: int) -> int:
    """Floats of one layer's cached attention probabilities: blocks of queries [t0, t1) keep
    (B, nh, t1 - t0, t1)."""
    T = config.block_size
    per_head = sum((min(t0 + ATTN_BLOCK, T) - t0) * min(t0 + ATTN_BLOCK, T)
                   for t0 in range(0, T, ATTN_BLOCK))
    return batch_size * config.n_head * per_head


def _method_floats(method, config: GPTConfig) -> dict:
    """{what: floats} a method keeps beyond its trainables, and its gradients' extra."""
    from .methods import EmbeddingsOnlyMethod, LoRAMethod, NOLAMethod, SubspaceMethod, VeRAMethod
    P = count_params(config)
    D = count_params(config, non_embedding=True)
    out = {"frozen": 0, "built": 0, "fixed": 0, "param_grads": P, "pullback": 0}
    if isinstance(method, EmbeddingsOnlyMethod):           # the frozen random init, every tensor
        out["frozen"] = P
    if isinstance(method, SubspaceMethod):
        out["built"] = D                                   # theta, reshaped into views
        # base and sigma (2D), and the operator's own arrays (smolgpt/transforms.py): Fastfood's
        # B, G, S and two index tables, ~17 bytes a coordinate; FFT-Fastfood's permutation and
        # work buffers; a dense basis regenerates its rows in chunks (freed before the forward)
        # SAID: one Fastfood per tensor of max(D_t, d) rows, and its pullback recomputes P a
        rows = sum(max(math.prod(s), method.spec.d) for _, s in method.table)
        operator = {"fastfood": 5 * D, "fft-fastfood": 4 * D, "basis": 0, "said": 5 * rows}
        out["fixed"] = 2 * D + operator[method.spec.name]
        out["pullback"] = D * (2 if method.spec.name == "said" else 1)   # sigma * dL/dtheta
    elif isinstance(method, LoRAMethod):
        merged = sum(math.prod(s) for _, s in method.targets)
        out["built"] = merged                              # W_frozen + s A B, new arrays
        out["pullback"] = method.n_trainable               # dA, dB
    elif isinstance(method, (VeRAMethod, NOLAMethod)):
        r = method.spec.rank
        shapes = [s for _, s in method.targets]
        out["built"] = sum(m * n for m, n in shapes)        # the merged weights, new arrays
        if isinstance(method, VeRAMethod):                  # the shared pair, and A diag(d)
            out["fixed"] = r * (method.m_max + method.n_max)
            out["pullback"] = method.n_trainable + max(r * (m + n) for m, n in shapes)
        else:                                               # A_0, every basis; A, B, dA, dB
            k, l = method.spec.nola_k, method.spec.nola_l
            out["fixed"] = sum(r * ((k + 1) * m + l * n) for m, n in shapes)
            out["pullback"] = method.n_trainable + max(2 * r * (m + n) for m, n in shapes)
    if method.needed_grads is not None:
        sizes = dict((n, math.prod(s)) for n, s in _table(config))
        out["param_grads"] = sum(sizes[n] for n in method.needed_grads)
    return out


def _table(config):
    from .model import param_table
    return param_table(config)


def estimate_training_bytes(config: GPTConfig, batch_size: int, method) -> dict:
    """Bytes a training step of `method` on `config` at `batch_size` needs at its peak, by part
    (see the module docstring); "total" is the peak."""
    B, T, C, V = batch_size, config.block_size, config.n_embd, config.vocab_size
    L, N = config.n_layer, batch_size * config.block_size
    emb = V * C + T * C
    n = emb + method.n_trainable                        # trainable numbers, embeddings included
    m = _method_floats(method, config)
    per_layer = 20 * C * N + 2 * 2 * N + attention_probs(config, B)   # + rstd of both LayerNorms
    activations = L * per_layer + 3 * N * C             # + the embedding output and ln_f's cache
    chunk = min(HEAD_CHUNK, N)
    head = chunk * V + V * C * (2 if N > chunk else 1) + N * C + 2 * chunk * C
    backward = 3 * 4 * N * C + 6 * N * C
    parts = {
        "parameters": F32 * (n + m["frozen"] + m["built"] + m["fixed"]),
        "adam": F32 * 2 * n,
        "gradients": F32 * (m["param_grads"] + V * C + m["pullback"]),  # + the head's dwte
        "activations": F32 * activations,
        "head": F32 * head,
        "backward": F32 * backward,
    }
    persistent = parts["parameters"] + parts["adam"] + parts["activations"]
    parts["total"] = persistent + max(parts["head"], parts["gradients"] + parts["backward"])
    return parts


def available_bytes() -> int | None:
    """Memory this process can still take: MemAvailable of /proc/meminfo (Linux), else the
    physical memory sysconf reports, else None (unknown: nothing is refused)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def workers_that_fit(per_worker: int, workers: int, free: int | None) -> int:
    """How many of `workers` processes that each need `per_worker` bytes at their peak fit in
    `free` bytes: at least 1 (a run that does not fit alone is refused by train() itself), and
    all of them when the memory available is unknown."""
    if free is None or per_worker <= 0:
        return workers
    return max(1, min(workers, free // per_worker))


def human(nbytes: float) -> str:
    """1234567 -> '1.2 MB' (powers of 1000, as `df -H` and disk makers count)."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(nbytes) < 1000 or unit == "TB":
            return f"{nbytes:.0f} {unit}" if unit == "B" else f"{nbytes:.1f} {unit}"
        nbytes /= 1000


def summary(parts: dict) -> str:
    """'about 268 MB (parameters 3.4 MB, adam 6.9 MB, gradients ..., head ...)': the run's first
    line."""
    shown = ", ".join(f"{k} {human(v)}" for k, v in parts.items() if k != "total")
    return f"about {human(parts['total'])} ({shown})"
