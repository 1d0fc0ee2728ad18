"""AdamW, gradient-norm clipping and the learning-rate schedule.

The optimizer knows nothing about GPT-2: it updates whatever dict of float arrays it is handed.
Full training hands it every weight; a subspace method hands it a few coefficient vectors plus
the embeddings; the elephant of chapter 06 hands it ten numbers.

    state = adamw_init(trainables)
    clip_grad_norm(grads, 1.0)
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
        m, v = state["m"][k], state["v"][k]
        # m = b1*m + (1-b1)*g and v = b2*v + (1-b2)*g^2, in place (no new arrays per step)
        m *= b1
        m += (1.0 - b1) * g
        v *= b2
        v += (1.0 - b2) * np.square(g)
        if k in decay_keys and cfg.weight_decay:
            w *= 1.0 - lr_k * cfg.weight_decay
        denom = np.sqrt(v / bc2)
        denom += cfg.eps
        w -= (lr_k / bc1) * m / denom


def grad_norm(grads: dict[str, np.ndarray]) -> float:
    """Global L2 norm over every gradient array (accumulated in float64)."""
    total = 0.0
    for g in grads.values():
        g64 = g.astype(np.float64, copy=False).ravel()
        total += float(g64 @ g64)
    return math.sqrt(total)


def clip_grad_norm(grads: dict[str, np.ndarray], max_norm: float) -> float:
    """Scale all gradients in place so their global norm is at most `max_norm`.

    Returns the norm *before* clipping (what a log wants to show). `max_norm <= 0` disables it.
    """
    norm = grad_norm(grads)
    if max_norm > 0 and norm > max_norm:
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
