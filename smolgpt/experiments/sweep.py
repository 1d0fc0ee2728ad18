"""Learning rates that are tuned, visibly: a log grid per method, and the rule for a choice.

    result = sweep(base, "coef_lr", [0.03, 0.1, 0.3, 1, 3], seeds=(0, 1))
    print(format_sweep(result))

Every grid point is a run of the experiment runner (so a sweep repeated, or a race that uses the
same settings, costs nothing the second time), and a sweep's runs are trained at once, spread
over the runner's workers. A value is accepted only when it is *interior*:
its two grid neighbours both have a higher mean final loss. A best value on the edge of its grid
means the grid must be extended, and `format_sweep` says so instead of naming a winner.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..methods import RATES, method_class
from ..train import TrainConfig
from .runs import run_many, with_seed
from .stats import mean_se

SWEEPABLE = ("lr", *RATES)


def sweep(base: TrainConfig, field: str, grid, seeds=(0, 1), verbose: bool = True,
          **kwargs) -> dict:
    """Train `base` with `field` set to each value of `grid`, over `seeds`.

    Returns {"method", "field", "grid", "final": [[loss per seed] per value], "mean", "se",
    "best" (the value with the lowest mean), "interior" (True when both neighbours are worse),
    "seeds", "steps", "tokens" and its "unit" (bytes for a byte-level model)}.
    """
    return sweep_all([(base, field, grid)], seeds, verbose, **kwargs)[0]


def sweep_all(sweeps, seeds=(0, 1), verbose: bool = True, **kwargs) -> list[dict]:
    """Several sweeps, each a (base, field, grid), trained as one decision: every value of every
    grid over `seeds` at once (runs.run_many). Returns each sweep's result, as `sweep`'s."""
    configs = []
    for base, field, grid in sweeps:
        if field not in SWEEPABLE:
            raise ValueError(f"can sweep {' or '.join(SWEEPABLE)}, not {field!r}")
        used = ("lr", *method_class(base.method.name).rates)
        if field not in used:       # every grid value would train the very same run
            raise ValueError(f"--field {field}: {base.method.name} never reads {field}, so "
                             f"every value of the grid would train the same run: sweep "
                             f"{' or '.join(used)}")
        repeated = sorted({float(v) for v in grid if list(map(float, grid)).count(float(v)) > 1})
        if repeated:
            raise ValueError(f"--grid repeats {', '.join(f'{v:g}' for v in repeated)}: give "
                             f"each value once")
        if len(grid) < 3:
            raise ValueError(f"a sweep needs at least 3 grid values to find an interior best, "
                             f"got {len(grid)}")
        configs += [dataclasses.replace(base, **{field: v}) for v in sorted(map(float, grid))]
    runs = iter(run_many([with_seed(cfg, s) for cfg in configs for s in seeds], verbose=verbose,
                         **kwargs))
    return [_result(base, field, sorted(map(float, grid)),
                    [[next(runs)["final"]["loss"] for _ in seeds] for _ in grid], seeds)
            for base, field, grid in sweeps]


def _result(base: TrainConfig, field: str, grid: list, finals: list, seeds) -> dict:
    stats = [mean_se(f) for f in finals]
    means = [m for m, _ in stats]
    i = int(np.argmin(means))
    return {"method": base.method.label(), "field": field, "grid": grid, "final": finals,
            "mean": means, "se": [s for _, s in stats], "best": grid[i],
            "interior": 0 < i < len(grid) - 1, "seeds": list(seeds), "steps": base.steps,
            "tokens": base.steps * base.tokens_per_step,
            "unit": "bytes" if base.gpt.tokenizer == "bytes" else "tokens"}


def format_sweep(r: dict, name: str | None = None) -> str:
    """A small table of the sweep and its verdict, headed by `name` (default: its method)."""
    lines = [f"{name or r['method']}: {r['field']} over {len(r['grid'])} values, {len(r['seeds'])} "
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
    return tune_all([(base, field, grid)], seeds, extend, verbose, **kwargs)[0]


def tune_all(sweeps, seeds=(0,), extend: int = 2, verbose: bool = True, **kwargs) -> list[dict]:
    """`tune` of several (base, field, grid) sweeps side by side: each round trains the runs of
    every sweep still on an edge at once (sweep_all), so the rounds, not the sweeps, follow
    one another."""
    grids = [sorted(float(v) for v in grid) for _, _, grid in sweeps]
    results = sweep_all(sweeps, seeds, verbose, **kwargs)
    for _ in range(extend):
        edge = [k for k, r in enumerate(results) if not r["interior"]]
        if not edge:
            break
        for k in edge:
            grids[k] = extended(grids[k], results[k]["best"])
        again = sweep_all([(sweeps[k][0], sweeps[k][1], grids[k]) for k in edge], seeds,
                          verbose, **kwargs)
        for k, r in zip(edge, again):
            results[k] = r
    return results


def extended(grid, best) -> list:
    """The sorted `grid` with one more value past the edge that `best` sits on, at the spacing
    of the grid's two values at that edge (rounded to 3 significant digits)."""
    grid = sorted(grid)
    if best == grid[0]:
        return [float(f"{grid[0] * grid[0] / grid[1]:.3g}")] + grid
    return grid + [float(f"{grid[-1] * grid[-1] / grid[-2]:.3g}")]
