"""Chapter 05, exercise 1: why the race pairs its comparisons by seed.

Two methods run on seeds 0..4. Each seed shifts both methods' losses by the same amount (which
batches came early, which held-out windows are hard): a seed effect much larger than the
difference between the methods. An unpaired interval (two independent means) counts the seed
effect as noise and cannot resolve the difference; the paired interval takes B - A seed by seed,
the seed effect cancels, and the same data resolve it.
"""

import smolgpt  # noqa: F401
import math

import numpy as np
import scipy.stats

from smolgpt.experiments.stats import paired_interval

rng = np.random.default_rng(0)
seed_effect = rng.normal(0, 0.05, 5)                     # shared by both methods, per seed
a = 7.90 + seed_effect + rng.normal(0, 0.005, 5)
b = 7.93 + seed_effect + rng.normal(0, 0.005, 5)         # B is worse by 0.03
paired = paired_interval(a, b)
se = math.sqrt(a.var(ddof=1) / 5 + b.var(ddof=1) / 5)
half = scipy.stats.t.ppf(0.975, 8) * se
print(f"paired:   B - A = {paired['diff']:+.4f} [{paired['lo']:+.4f}, {paired['hi']:+.4f}]")
print(f"unpaired: B - A = {b.mean() - a.mean():+.4f} [{b.mean() - a.mean() - half:+.4f}, "
      f"{b.mean() - a.mean() + half:+.4f}]")
assert paired["lo"] > 0                                   # resolved when paired
assert b.mean() - a.mean() - half < 0                     # not resolved when not
