"""Learning rates that are tuned, visibly: a log grid per method, and the rule for a choice.

    result = sweep(base, "coef_lr", [0.03, 0.1, 0.3, 1, 3], seeds=(0, 1))
    print(format_sweep(result))

Every grid point is a run of the experiment runner (so a sweep repeated, or a race that uses the
same settings, costs nothing the second time). A value is accepted only when it is *interior*:
its two grid neighbours both have a higher mean final loss. A best value on the edge of its grid
means the grid must be extended, and `format_sweep` says so instead of naming a winner.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..methods import RATES, method_class
from ..train import TrainConfig
from .runs import run_seeds
from .stats import mean_se

SWEEPABLE = ("lr", *RATES)


def sweep(base: TrainConfig, field: str, grid, seeds=(0, 1), verbose: bool = True,
          **kwargs) -> dict:
    """Train `base` with `field` set to each value of `grid`, over `seeds`.

    Returns {"method", "field", "grid", "final": [[loss per seed] per value], "mean", "se",
    "best" (the value with the lowest mean), "interior" (True when both neighbours are worse),
    "seeds", "steps", "tokens" and its "unit" (bytes for a byte-level model)}.
    """
    if field not in SWEEPABLE:
        raise ValueError(f"can sweep {' or '.join(SWEEPABLE)}, not {field!r}")
    used = ("lr", *method_class(base.method.name).rates)
    if field not in used:       # every grid value would train the very same run
        raise ValueError(f"{base.method.name} never reads {field}, so every value of the grid "
                         f"would train the same run: sweep {' or '.join(used)}")
    repeated = sorted({float(v) for v in grid if list(map(float, grid)).count(float(v)) > 1})
    if repeated:
        raise ValueError(f"the grid repeats {', '.join(f'{v:g}' for v in repeated)}: give each "
                         f"value once")
    grid = sorted(float(v) for v in grid)
    if len(grid) < 3:
        raise ValueError(f"a sweep needs at least 3 grid values to find an interior best, got "
                         f"{len(grid)}")
    finals = []
    for value in grid:
        cfg = dataclasses.replace(base, **{field: value})
        finals.append([r["final"]["loss"] for r in run_seeds(cfg, seeds, verbose=verbose,
                                                               **kwargs)])
    stats = [mean_se(f) for f in finals]
    means = [m for m, _ in stats]
    i = int(np.argmin(means))
    return {"method": base.method.label(), "field": field, "grid": grid, "final": finals,
            "mean": means, "se": [s for _, s in stats], "best": grid[i],
            "interior": 0 < i < len(grid) - 1, "seeds": list(seeds), "steps": base.steps,
            "tokens": base.steps * base.tokens_per_step,
            "unit": "bytes" if base.gpt.tokenizer == "bytes" else "tokens"}


def format_sweep(r: dict) -> str:
    """A small table of the sweep and its verdict."""
    lines = [f"{r['method']}: {r['field']} over {len(r['grid'])} values, {len(r['seeds'])} "
             f"seed(s), {r['tokens']:,} {r['unit']} per run"]
    for value, mean, se in zip(r["grid"], r["mean"], r["se"]):
        mark = "  <- best" if value == r["best"] else ""
        err = "" if np.isnan(se) else f" +- {se:.4f}"
        lines.append(f"  {r['field']} = {value:<10g} final loss {mean:.4f}{err}{mark}")
    if r["interior"]:
        lines.append(f"  chosen: {r['field']} = {r['best']:g} (both neighbours are worse)")
    else:
        edge = "lowest" if r["best"] == r["grid"][0] else "highest"
        lines.append(f"  no choice: the best value is the {edge} of the grid; extend the grid "
                     f"past {r['best']:g}")
    return "\n".join(lines)


def tune(base: TrainConfig, field: str, grid, seeds=(0,), extend: int = 2, verbose: bool = True,
         **kwargs) -> dict:
    """`sweep`, and while its best value sits on an edge of the grid, one more value past that
    edge (at the grid's own spacing) and the sweep again, at most `extend` times. The values
    already run are reused from the runner's cache, so each extension costs one run per seed.
    The result is the last sweep's; its "interior" says whether a choice was found."""
    grid = sorted(float(v) for v in grid)
    r = sweep(base, field, grid, seeds, verbose, **kwargs)
    for _ in range(extend):
        if r["interior"]:
            break
        grid = extended(grid, r["best"])
        r = sweep(base, field, grid, seeds, verbose, **kwargs)
    return r


def extended(grid, best) -> list:
    """The sorted `grid` with one more value past the edge that `best` sits on, at the spacing
    of the grid's two values at that edge (rounded to 3 significant digits)."""
    grid = sorted(grid)
    if best == grid[0]:
        return [float(f"{grid[0] * grid[0] / grid[1]:.3g}")] + grid
    return grid + [float(f"{grid[-1] * grid[-1] / grid[-2]:.3g}")]
