"""Context-free reference losses: how good a model can be without reading its context.

A language model that ignores its context can do no better than predict every token from the
training split's unigram distribution. Its held-out loss is the line every method must get below
to have learned anything about *sequences*:

    unigram loss = - mean over held-out targets y of log p(y),   p = (count + 1) / (N + V)

(add-one smoothing, so a token never seen in training still has a finite cost). The held-out
split's own unigram entropy, the same formula with the held-out counts, is lower: it is the best
any context-free predictor could do with hindsight.
"""

from __future__ import annotations

import numpy as np


def unigram_loss(train_tokens, val_tokens, vocab_size: int) -> float:
    """Held-out cross-entropy (nats/token) of the add-one-smoothed training unigram."""
    counts = np.bincount(np.asarray(train_tokens), minlength=vocab_size).astype(np.float64) + 1.0
    logp = np.log(counts) - np.log(counts.sum())                     # (V,)
    targets = np.asarray(val_tokens)[1:]                             # every token but the first
    return float(-logp[targets].mean())


def unigram_entropy(tokens, vocab_size: int) -> float:
    """Entropy (nats) of the tokens' own unigram distribution: a context-free floor."""
    counts = np.bincount(np.asarray(tokens)[1:], minlength=vocab_size).astype(np.float64)
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())
