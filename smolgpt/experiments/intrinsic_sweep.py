"""Chapter 08's sweep, behind named functions: the runs over d, the learning rate of the arrays
trained directly, the figure of gap closed against d, and the tables.

Every run goes through the experiment runner (made once, kept, reused). `trained` is a list the
caller keeps: each run appends (tokens, training seconds) to it, reused runs included, so the
chapter can say how much training its sweep stands for.

    curve = sweep(base, "from scratch on C4", grid=GRID, seeds=SEEDS, final_windows=128,
                  trained=TRAINED)
    curve["base"], curve["full"] (final loss per seed), curve["did"][x], curve["said"][x]
"""

from __future__ import annotations

import dataclasses
import math
import time

import numpy as np

from ..methods import MethodSpec, build
from .intrinsic import describe, gap_closed
from .runs import run_seeds
from .stats import paired_interval
from .sweep import extended


def finals(cfg, seeds, final_windows: int, trained: list) -> list[float]:
    """Final held-out losses of cfg over seeds (trained now, or reused)."""
    runs = run_seeds(cfg, seeds, final_windows=final_windows, verbose=False)
    trained.extend((r["tokens"], r["elapsed"]) for r in runs)
    return [r["final"]["loss"] for r in runs]


def pick_lr(base_cfg, grid, title: str, final_windows: int, trained: list, extend: int = 3):
    """The peak lr that gives full training its lowest final loss (seed 0): first on `grid`,
    then, while the best sits on an edge, with one more value past that edge (at most `extend`
    times), so that the choice ends interior, with both neighbours worse."""
    loss, grid = {}, sorted(grid)
    for tries in range(extend + 1):
        for lr in grid:
            if lr not in loss:
                cfg = dataclasses.replace(base_cfg, method=MethodSpec("full"), lr=lr)
                loss[lr] = finals(cfg, (0,), final_windows, trained)[0]
        best = min(loss, key=loss.get)
        interior = best not in (grid[0], grid[-1])
        if interior or tries == extend:
            break
        grid = extended(grid, best)
    where = ("both neighbours are worse" if interior else
             f"still on the edge after {extend} extensions: a better rate may lie beyond it")
    loss = dict(sorted(loss.items()))
    print(f"{title}: full training's final loss by peak lr (seed 0): "
          + ", ".join(f"{lr:g} -> {v:.4f}" for lr, v in loss.items()) + f"; chosen {best:g} "
          f"({where})")
    return best


def sweep(base_cfg, title: str, grid, seeds, final_windows: int, trained: list) -> dict:
    """Baselines and the grid for both methods; {"base", "full", "did": {x: [...]}, "said"},
    x the number of trainable non-embedding numbers (d for DID, d + one scale per tensor for
    SAID). Prints full training's gain and each d's share of it."""
    model = base_cfg.gpt
    t0 = time.time()
    out = {"base": finals(dataclasses.replace(base_cfg, method=MethodSpec("embeddings")), seeds,
                          final_windows, trained),
           "full": finals(dataclasses.replace(base_cfg, method=MethodSpec("full")), seeds,
                          final_windows, trained),
           "did": {}, "said": {}}
    for d in grid:
        for key, spec in (("did", MethodSpec("fastfood", d=d)), ("said", MethodSpec("said", d=d))):
            x = build(spec, model).n_trainable
            out[key][x] = finals(dataclasses.replace(base_cfg, method=spec), seeds, final_windows,
                                 trained)
    gain = paired_interval(out["full"], out["base"])                 # base - full, per seed
    print(f"{title}: embeddings only {np.mean(out['base']):.4f}, full {np.mean(out['full']):.4f} "
          f"(mean over {len(seeds)} seeds; {time.time() - t0:.0f} s); full training's gain "
          f"{gain['diff']:.4f} nats, 95% interval [{gain['lo']:.4f}, {gain['hi']:.4f}]")
    if not gain["lo"] > 0:
        print(f"  note: that gain is not resolved at {len(seeds)} seeds (its interval reaches 0), "
              f"so the fractions below divide by noise")
    for d, (xd, ld), (xs, ls) in zip(grid, out["did"].items(), out["said"].items()):
        gd = gap_closed(ld, np.mean(out["base"]), np.mean(out["full"]))
        gs = gap_closed(ls, np.mean(out["base"]), np.mean(out["full"]))
        print(f"  d = {d:>7,}: DID loss {np.mean(ld):.4f}, gap closed {np.mean(gd):6.1%}   "
              f"SAID ({xs:,} numbers) loss {np.mean(ls):.4f}, gap closed {np.mean(gs):6.1%}")
    return out


def gap_closed_figure(results: dict, title: str, ylim=(-0.5, 2.5)):
    """Gap closed against the trainable count, per regime and method, with bootstrap bands and
    d_int90 with its interval. Fractions outside ylim (a gain lost in noise) are drawn on its
    edge. Returns (figure, how many points were clipped)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 5.5))
    colors = {"from scratch": "C0", "fine-tuning": "C3"}
    styles = {"DID (Fastfood)": ("o", "-"), "SAID": ("s", "--")}
    clipped = 0
    for (regime, name), r in results.items():
        marker, line = styles[name]
        xs, f = np.array(r["xs"]), np.array(r["fraction"])
        clipped += int(np.sum((f < ylim[0]) | (f > ylim[1])))
        ax.plot(xs, np.clip(f, *ylim), line, marker=marker, color=colors[regime],
                label=f"{regime}, {name}")
        ax.fill_between(xs, np.clip(r["band_lo"], *ylim), np.clip(r["band_hi"], *ylim),
                        color=colors[regime], alpha=0.12)
        if r["d_int"] is not None:
            hi = r["hi"] if math.isfinite(r["hi"]) else xs[-1]
            ax.errorbar([r["d_int"]], [0.9], xerr=[[r["d_int"] - r["lo"]], [hi - r["d_int"]]],
                        fmt="x", color=colors[regime], capsize=4, ms=9, mew=2)
    ax.axhline(0.9, color="k", ls=":", lw=1, label="90% of full training's gain")
    ax.axhline(0.0, color="grey", lw=0.6)
    ax.axhline(1.0, color="grey", lw=0.6)
    ax.set_xscale("log")
    ax.set_ylim(ylim[0] - 0.05, ylim[1] + 0.05)
    ax.set(xlabel="trainable non-embedding numbers (d for DID, d + one scale per tensor for SAID)",
           ylabel="gap closed: (L_emb - L_d) / (L_emb - L_full)", title=title)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return fig, clipped


def results_markdown(results: dict, grid) -> str:
    """d_int90 per regime and method, then gap closed at every d, as markdown tables."""
    rows = ["| regime | method | d_int90 (95% bootstrap interval) or fraction reached |",
            "|---|---|---|"]
    for (regime, name), r in results.items():
        rows.append(f"| {regime} | {name} | {describe(r)} |")
    rows += ["", "| regime | d | DID gap closed | SAID gap closed |", "|---|---:|---:|---:|"]
    for regime in ("from scratch", "fine-tuning"):
        a, b = results[regime, "DID (Fastfood)"], results[regime, "SAID"]
        for d, fa, fb in zip(grid, a["fraction"], b["fraction"]):
            rows.append(f"| {regime} | {d:,} | {fa:.1%} | {fb:.1%} |")
    return "\n".join(rows)


def short(r: dict) -> str:
    """A d_int result in a few words, for the takeaways."""
    if r["at_first"]:
        return f"d_int90 <= {r['xs'][0]:,} (the grid's smallest point is already at 90%)"
    if r["d_int"] is not None:
        hi = "beyond the grid" if math.isinf(r["hi"]) else f"{r['hi']:,.0f}"
        return f"d_int90 ~ {r['d_int']:,.0f} [{r['lo']:,.0f}, {hi}]"
    return f"90% not reached; at most {r['max_fraction']:.0%} at {r['at']:,}"
