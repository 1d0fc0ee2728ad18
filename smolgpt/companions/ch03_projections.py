"""Chapter 03's measurements of the random bases, behind named functions: how their columns
look, and what one product P a costs in time and memory as D and d grow.

    fig = columns_figure({"Fastfood": column, ...}, D, d)
    res = scaling(kinds, Ds, d_fix, d_list, D_fix)   # {kind: {"D": [...], "d": [...]}}
    fig = scaling_figure(res, Ds, d_fix, d_list, D_fix)

Each measurement is (best seconds of one product, bytes the operator keeps between products,
peak bytes allocated during one product), the bytes traced with `tracemalloc`.
"""

from __future__ import annotations

import math
import time
import tracemalloc

import numpy as np


def best_time(fn, repeats: int = 3) -> float:
    """Fastest of a few wall-clock timings of fn(), in seconds."""
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def columns_figure(cols: dict, D: int, d: int):
    """Top row: a histogram of one column's entries per basis against N(0, 1); bottom row: its
    Q-Q plot against N(0, 1)."""
    import matplotlib.pyplot as plt
    import scipy.stats

    fig, axes = plt.subplots(2, len(cols), figsize=(13, 7))
    for k, (name, c) in enumerate(cols.items()):
        ax = axes[0, k]
        ax.hist(c, bins=80, density=True, alpha=0.7, label="column 3 of P")
        t = np.linspace(-4, 4, 200)
        ax.plot(t, scipy.stats.norm.pdf(t), "k--", lw=1, label="N(0, 1)")
        ax.set(xlabel="entry value", ylabel="density",
               title=f"{name}: entries of one column\n(D = {D:,} rows, d = {d} columns)")
        ax.legend()
        ax = axes[1, k]
        scipy.stats.probplot(c, dist="norm", plot=ax)
        ax.set(xlabel="N(0, 1) quantiles", ylabel="sorted entries of the column",
               title=f"{name}: Q-Q plot against N(0, 1)")
    fig.tight_layout()
    return fig


def measure(cls, D: int, d: int, repeats: int = 2, _done: dict = {}) -> tuple:  # noqa: B006
    """(best seconds of one product P a, bytes kept by P, peak bytes during one product) for
    the operator cls(D, d, seed=0); each (cls, D, d) is measured once per process."""
    key = (cls.__name__, D, d)
    if key not in _done:
        tracemalloc.start()
        P = cls(D, d, seed=0)
        kept = tracemalloc.get_traced_memory()[0]                # still allocated: P's arrays
        tracemalloc.stop()
        a = np.ones(d, dtype=np.float32)                        # (d,) coefficients
        best = best_time(lambda: P.matvec(a), repeats)
        tracemalloc.start()
        P.matvec(a)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        _done[key] = best, kept, peak
    return _done[key]


def scaling(kinds: dict, Ds, d_fix: int, d_list, D_fix: int) -> dict:
    """{kind: {"D": [measure at (D, d_fix) for D in Ds], "d": [at (D_fix, d) for d in d_list]}}."""
    return {kind: {"D": [measure(cls, Dn, d_fix) for Dn in Ds],
                   "d": [measure(cls, D_fix, dn) for dn in d_list]} for kind, cls in kinds.items()}


def print_scaling(res: dict, Ds, d_fix: int, d_list, D_fix: int) -> dict:
    """The table of time and memory, dense against Fastfood, each (D, d) shown once; returns
    {(D, d): dense time / Fastfood time}."""
    print(f"{'D':>9} {'d':>5} | {'dense ms':>9} {'kept MB':>8} {'peak MB':>8} | "
          f"{'Fastfood ms':>11} {'kept MB':>8} {'peak MB':>8} | {'dense / Fastfood time':>21} "
          f"{'d / log2 d':>10}")
    points = ([(Dn, d_fix, i, "D") for i, Dn in enumerate(Ds)]
              + [(D_fix, dn, i, "d") for i, dn in enumerate(d_list)])
    speedups = {}                                            # (D, d) -> dense / Fastfood time
    for Dn, dn, i, axis in points:
        if (Dn, dn) in speedups:                             # shared by both sweeps: shown once
            continue
        (ta, ka, pa), (tb, kb, pb) = res["dense"][axis][i], res["Fastfood"][axis][i]
        speedups[Dn, dn] = ta / tb
        print(f"{Dn:>9,} {dn:>5} | {ta * 1e3:>9.2f} {ka / 1e6:>8.2f} {pa / 1e6:>8.2f} | "
              f"{tb * 1e3:>11.2f} {kb / 1e6:>8.2f} {pb / 1e6:>8.2f} | {ta / tb:>20.0f}x "
              f"{dn / math.log2(dn):>10.1f}")
    return speedups


def scaling_figure(res: dict, Ds, d_fix: int, d_list, D_fix: int):
    """Time (top, log-log) and memory (bottom, from 0) of one product, against D and against d."""
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, axes = plt.subplots(2, 2, figsize=(11, 8))
    for kind, style in (("dense", "o-"), ("Fastfood", "s-")):
        for col, (axis, xs) in enumerate((("D", Ds), ("d", d_list))):
            axes[0, col].loglog(xs, [t for t, _, _ in res[kind][axis]], style, label=kind)
            axes[1, col].semilogx(xs, [(k + p) / 1e6 for _, k, p in res[kind][axis]], style,
                                  label=kind)
    for row, ylabel in enumerate(("seconds per product P a", "MB kept + peak of one product")):
        axes[row, 0].set(xlabel="D (parameters)", ylabel=ylabel, title=f"d = {d_fix}, D varies")
        axes[row, 1].set(xlabel="d (subspace dimension)", ylabel=ylabel,
                         title=f"D = {D_fix:,}, d varies")
        axes[row, 0].set_xticks(Ds, [f"2^{int(math.log2(Dn))}" for Dn in Ds])
        axes[row, 1].set_xticks(d_list, [str(dn) for dn in d_list])
    for ax in axes[0]:
        ax.yaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
    for ax in axes[1]:
        ax.set_ylim(0, 1.1 * ax.get_ylim()[1])               # memory on a linear axis from 0
    for ax in axes.flat:
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())   # measured points only
        ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.legend()
        ax.grid(alpha=0.3, which="both")
    fig.suptitle("time (top) and memory (bottom) of one product P a, a the d coefficients")
    fig.tight_layout()
    return fig


def weight_changes_figure(changes: dict, kinds_order, n_seeds: int):
    """Bars of the rms change per entry of each kind of tensor, one colour per run."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 4.5))
    width = 0.8 / len(changes)
    for j, (label, c) in enumerate(changes.items()):
        ax.bar(np.arange(len(kinds_order)) + (j - (len(changes) - 1) / 2) * width,
               [c[k] for k in kinds_order], width, label=label)
    ax.set_yscale("log")
    ax.set_xticks(range(len(kinds_order)), kinds_order)
    ax.set(ylabel="rms change per entry (log)",
           title=f"how far training moved each kind of tensor, mean of {n_seeds} seeds")
    ax.grid(alpha=0.3, axis="y", which="both")
    ax.legend(loc="lower center", ncol=len(changes), bbox_to_anchor=(0.5, 1.08))  # above bars
    fig.tight_layout()
    return fig
