"""The one timing helper of the benchmarks: median of interleaved rounds.

The machine is shared (2 cores, other jobs come and go), so a single time means little and two
times taken minutes apart compare different machines. Every benchmark here therefore runs its
candidates in rounds, each round calling every candidate once in turn (A B C A B C ...), and
reports medians: of each candidate's times, and of per-round ratios, so a ratio compares times
taken under the same load and one disturbed round does not move it.

    times = rounds({"a": fa, "b": fb}, n=5)        # {"a": [s, s, ...], "b": [...]}
    median(times["a"]), median_ratio(times, "a", "b")
"""

from __future__ import annotations

import statistics
import time
from typing import Callable


def rounds(fns: dict[str, Callable[[], object]], n: int, warmup: bool = True) -> dict[str, list]:
    """Wall-clock seconds of each fn() in each of n rounds, the fns called in turn in a round.

    warmup: one untimed call of each first (first calls pay for page faults and thread start).
    """
    if warmup:
        for fn in fns.values():
            fn()
    times = {name: [] for name in fns}
    for _ in range(n):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return times


def median(xs) -> float:
    return statistics.median(xs)


def median_ratio(times: dict[str, list], a: str, b: str) -> float:
    """Median over rounds of times[a] / times[b]: how many b's an a takes, under the same load."""
    return statistics.median(x / y for x, y in zip(times[a], times[b]))


def spread(values) -> tuple[float, float]:
    """(min, max) of per-round values, to print next to a median."""
    return min(values), max(values)
