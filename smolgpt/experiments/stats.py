"""Seeds and intervals: when a difference between two methods is a result and not luck.

Every configuration runs over k seeds (the batch order and the method's random draws both
change with the seed). A table gives mean +- standard error over the seeds. A comparison of two
methods A and B uses the *paired* per-seed differences B_s - A_s: seed s gives both methods the
same batches in the same order, so the difference removes what the two runs share (which C4
windows came early, which held-out windows are hard) and keeps what the method changes. The 95%
interval for the mean difference is Student's t:

    mean(diff) +- t_{0.975, k-1} * sd(diff) / sqrt(k)

and an ordering is claimed only where that interval excludes 0.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.stats


def mean_se(values) -> tuple[float, float]:
    """(mean, standard error of the mean); the error is nan for a single value."""
    v = np.asarray(values, dtype=np.float64)
    se = float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else math.nan
    return float(v.mean()), se


def paired_interval(a, b, level: float = 0.95) -> dict:
    """The mean of b - a over paired seeds and its `level` t-interval.

    a, b: per-seed values of two methods, in the same seed order. Returns
    {"diff", "lo", "hi", "n"}; lo and hi are nan with fewer than two seeds (no interval).
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired values need the same seeds on both sides, got {a.shape} and "
                         f"{b.shape}")
    d = b - a
    n = len(d)
    mean = float(d.mean())
    if n < 2:
        return {"diff": mean, "lo": math.nan, "hi": math.nan, "n": n}
    half = scipy.stats.t.ppf(0.5 + level / 2, n - 1) * d.std(ddof=1) / math.sqrt(n)
    return {"diff": mean, "lo": mean - half, "hi": mean + half, "n": n}


def verdict(interval: dict) -> str:
    """'<' when the interval of b - a lies above 0 (a is lower), '>' below 0, '~' otherwise."""
    if interval["lo"] > 0:
        return "<"
    if interval["hi"] < 0:
        return ">"
    return "~"


def fmt(mean: float, se: float, digits: int = 3) -> str:
    """'7.123 +- 0.004' (or just the mean when there is no error)."""
    if math.isnan(se):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} +- {se:.{digits}f}"
