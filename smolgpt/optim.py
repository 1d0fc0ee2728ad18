"""AdamW, gradient-norm clipping and the learning-rate schedule.

The optimizer knows nothing about GPT-2: it updates whatever dict of float arrays it is handed.
Full training hands it every weight; a subspace method hands it a few coefficient vectors plus
the embeddings; the elephant of chapter 06 hands it ten numbers.

    state = adamw_init(trainables)
    norm = clip_grad_norm(grads, 1.0)          # nan/inf when a gradient is: check isfinite
    adamw_step(trainables, grads, state, lr=3e-4, decay_keys={"h.0.mlp.c_fc.weight", ...})

Adam (Kingma & Ba 2015) with bias correction; weight decay is *decoupled* (Loshchilov & Hutter
2019): it shrinks the weight directly, `w -= lr * wd * w`, instead of being added to the gradient.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class AdamWConfig:
    """Hyper-parameters of AdamW. Defaults follow common GPT-2 practice."""

    beta1: float = 0.9
    beta2: float = 0.95
    eps: float = 1e-8
    weight_decay: float = 0.1


def adamw_init(trainables: dict[str, np.ndarray]) -> dict:
    """Zero first and second moments shaped like each trainable array, and a step count of 0."""
    return {
        "t": 0,
        "m": {k: np.zeros_like(v) for k, v in trainables.items()},
        "v": {k: np.zeros_like(v) for k, v in trainables.items()},
    }


def adamw_step(trainables: dict[str, np.ndarray], grads: dict[str, np.ndarray], state: dict,
               lr: float, cfg: AdamWConfig = AdamWConfig(), decay_keys=frozenset(),
               lr_scale: dict[str, float] | None = None) -> None:
    """One AdamW update, in place on `trainables` and `state`.

    For each array w with gradient g (t counts steps from 1):
        m = b1 m + (1 - b1) g                   first moment
        v = b2 v + (1 - b2) g^2                 second moment
        m_hat = m / (1 - b1^t), v_hat = v / (1 - b2^t)      bias correction
        w -= lr * wd * w        (only for keys in decay_keys: decoupled weight decay)
        w -= lr * m_hat / (sqrt(v_hat) + eps)

    lr_scale maps a key to a multiplier of lr for that array (e.g. subspace coefficients and
    embeddings want different step sizes); keys not in it use lr itself.
    """
    state["t"] += 1
    t = state["t"]
    b1, b2 = cfg.beta1, cfg.beta2
    bc1 = 1.0 - b1 ** t
    bc2 = 1.0 - b2 ** t
    for k, w in trainables.items():
        g = grads[k]
        lr_k = lr * (lr_scale or {}).get(k, 1.0)
        decay = 1.0 - lr_k * cfg.weight_decay if k in decay_keys and cfg.weight_decay else 1.0
        m, v = state["m"][k], state["v"][k]
        # The update is ~12 elementwise passes. Over the whole arrays (wte alone is 25 MB on
        # `tiny`) each pass would stream w, g, m, v through memory again and allocate fresh
        # temporaries; block by block, a block stays in the core's cache for all twelve.
        blocks = _blocks(w, g, m, v)
        scratch = np.empty(blocks[0][0].size, dtype=w.dtype)        # the largest block
        for w_, g_, m_, v_ in blocks:
            tmp = scratch[:w_.size].reshape(w_.shape)
            # m = b1*m + (1-b1)*g and v = b2*v + (1-b2)*g^2, in place
            m_ *= b1
            np.multiply(g_, 1.0 - b1, out=tmp)
            m_ += tmp
            v_ *= b2
            np.square(g_, out=tmp)
            tmp *= 1.0 - b2
            v_ += tmp
            if decay != 1.0:
                w_ *= decay                                  # decoupled weight decay
            np.multiply(v_, 1.0 / bc2, out=tmp)
            np.sqrt(tmp, out=tmp)
            tmp += cfg.eps                                   # sqrt(v_hat) + eps
            np.divide(m_, tmp, out=tmp)
            tmp *= lr_k / bc1                                # lr * m_hat / (sqrt(v_hat) + eps)
            w_ -= tmp


_BLOCK = 1 << 15    # elements per block of adamw_step: 4 float32 arrays x 128 KB fit in L2


def _blocks(*arrays):
    """Consecutive views of at most _BLOCK elements of same-shaped arrays, as tuples (writes go
    to the arrays). If one is not contiguous (its flat view would be a copy), one block: all."""
    if not all(a.flags.c_contiguous for a in arrays):
        return [arrays]
    flats = [a.reshape(-1) for a in arrays]
    return [tuple(f[s:s + _BLOCK] for f in flats) for s in range(0, flats[0].size, _BLOCK)]


def grad_norm(grads: dict[str, np.ndarray]) -> float:
    """Global L2 norm over every gradient array, in one pass over each array.

    Each array's sum of squares is one BLAS dot product of the array with itself, in the
    array's own dtype (float32 in training: no float64 copy of 7M+ floats; the dot's relative
    error is ~1e-6 there, plenty for clipping), and the per-array sums are added as float64
    scalars. A nan or inf anywhere makes the norm nan or inf, so `math.isfinite(norm)` is the
    whole check for a diverged gradient. A float32 dot that overflows on finite values (entries
    above ~1e19) is redone in float64 for that one array, so a finite gradient never reads inf.
    """
    total = 0.0
    for g in grads.values():
        flat = g.reshape(-1)
        with np.errstate(over="ignore", invalid="ignore"):    # inf and nan are the answer
            sq = float(np.dot(flat, flat))
        if math.isinf(sq) and np.all(np.isfinite(flat)):       # rare: overflow, not inf values
            flat = flat.astype(np.float64)
            sq = float(np.dot(flat, flat))
        total += sq
    return math.sqrt(total)


def first_nonfinite(grads: dict[str, np.ndarray]) -> str | None:
    """The key of the first array holding a nan or inf, or None. For error messages: call it
    only after `grad_norm` came back non-finite (it scans every array again)."""
    for k, g in grads.items():
        if not np.all(np.isfinite(g)):
            return k
    return None


def clip_grad_norm(grads: dict[str, np.ndarray], max_norm: float) -> float:
    """Scale all gradients in place so their global norm is at most `max_norm`.

    Returns the norm *before* clipping (what a log wants to show). `max_norm <= 0` disables it.
    A non-finite norm (some gradient holds nan or inf) is returned as it is and nothing is
    scaled: the caller tests `math.isfinite(norm)` and stops.
    """
    norm = grad_norm(grads)
    if max_norm > 0 and math.isfinite(norm) and norm > max_norm:
        scale = max_norm / (norm + 1e-6)
        for g in grads.values():
            g *= scale
    return norm


def lr_at(step: int, max_lr: float, warmup: int, total: int, min_lr_ratio: float = 0.1) -> float:
    """Linear warmup from 0 over `warmup` steps, then cosine decay to `min_lr_ratio * max_lr`.

    `step` counts from 0; step 0 gets max_lr / warmup (never exactly 0, which would waste a step).
    """
    min_lr = max_lr * min_lr_ratio
    if warmup > 0 and step < warmup:
        return max_lr * (step + 1) / warmup
    if step >= total:
        return min_lr
    progress = (step - warmup) / max(1, total - warmup)
    return min_lr + 0.5 * (max_lr - min_lr) * (1.0 + math.cos(math.pi * progress))
