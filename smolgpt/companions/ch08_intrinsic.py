"""Intrinsic dimension for a language model: the share of full training's gain a d-dimensional
subspace reaches, and the smallest d that reaches 90% of it.

At a fixed token budget, with L the final held-out loss of a run:

    gap closed(d) = (L_base - L_d) / (L_base - L_full)

L_base is the baseline that trains nothing but the embeddings (the subspace at d = 0: every
non-embedding weight stays at theta_0), L_full trains everything. 0 means the d numbers added
nothing, 1 that they did as well as full training. `d_int(level=0.9)` is the smallest d at which
the curve of gap closed (the mean over seeds at each d) reaches `level`, interpolated linearly in
log d between the two grid points around the first crossing; None when no grid point reaches it
(then `max_fraction` says how far it got).

Seeds: every configuration is run over a few seeds, and `bootstrap` resamples them (with
replacement, B times): configurations that ran the same seeds are resampled together, so a
replicate keeps seed s's pairing between the baseline, full training and every d (seed s gives
all of them the same batches). The interval of d_int90 is the 2.5-97.5 percentile range of the
replicates, a replicate that never reaches the level counting as "beyond the grid" (+inf).

    curve = {d: [loss per seed], ...}
    r = d_int(curve, base=[...], full=[...], level=0.9)
    r["d_int"], r["lo"], r["hi"], r["reached_share"], r["max_fraction"], r["each"]

`r["each"]` is every seed's own crossing (its own curve, its own baseline and full run): the
spread a reader can check by eye, and the one a single re-run, made with other float rounding,
should land in.

Fine-tuning has a source of variation that one seed per run does not show: the pretrained
model. Chapter 08 makes each seed a whole replicate (its own pretrained model, its own batch
order, its own projections), so the same bootstrap over seeds covers both. `stable_weights`
copies a pretrained run's weights into a file whose bytes depend on the weights and a note alone
(a run's checkpoint also records its wall time and its folder's path); the note names the
pretraining run, by which the runs started from the file are keyed (`checkpoint.weights_identity`),
so they keep their identity when that model is made again, on any machine: like every recorded
run, they are then the committed machine's, made from its rounding of the pretrained weights.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
import zipfile
from pathlib import Path

import numpy as np

from ..experiments.stats import paired_interval
from ..experiments.sweep import extended
from ..methods import MethodSpec, build


def gap_closed(loss, base: float, full: float):
    """(L_base - L) / (L_base - L_full), elementwise."""
    return (base - np.asarray(loss, dtype=np.float64)) / (base - full)


def crossing(xs, fractions, level: float = 0.9) -> float | None:
    """The smallest x at which the piecewise-linear curve (log x, fraction) reaches `level`.

    xs ascending. The first grid point at or above the level is found; between it and the
    point before, fraction is interpolated linearly in log x. If the first grid point is already
    at the level, that x is returned (the grid says nothing below it). None if never reached.
    """
    xs = np.asarray(xs, dtype=np.float64)
    f = np.asarray(fractions, dtype=np.float64)
    above = np.flatnonzero(f >= level)
    if len(above) == 0:
        return None
    i = int(above[0])
    if i == 0:
        return float(xs[0])
    lx0, lx1 = math.log(xs[i - 1]), math.log(xs[i])
    t = (level - f[i - 1]) / (f[i] - f[i - 1])                  # in (0, 1]: f[i-1] < level
    return float(math.exp(lx0 + t * (lx1 - lx0)))


def _means(values: dict, draw) -> dict:
    """{key: mean of values[key] at the seed positions `draw(key)` picks}."""
    return {k: float(np.mean(np.asarray(v, dtype=np.float64)[draw(k)])) for k, v in values.items()}


def d_int(curve: dict, base, full, level: float = 0.9, n_boot: int = 4000, seed: int = 0,
          ci: float = 0.95) -> dict:
    """The intrinsic dimension at `level` of one curve, with a bootstrap interval over seeds.

    curve: {x: [final loss per seed]} (x the trainable count, ascending or not); base, full:
    [final loss per seed] of the embeddings-only baseline and full training. Lists are in seed
    order; configurations with the same number of seeds are taken to share them (resampled
    together). Returns {"xs", "fraction" (mean curve), "band_lo", "band_hi" (per-x percentile
    band), "d_int", "lo", "hi" (None / inf when not reached), "reached_share" (the share of
    bootstrap resamples whose mean curve reaches the level), "max_fraction", "max_lo",
    "max_hi", "at" (the x of the largest mean fraction), "n_seeds" {x: count}, "at_first"
    (the smallest x already reaches the level: the grid then bounds d_int from above only),
    "each" (every seed's own crossing, inf where its
    curve never reaches the level; empty when the configurations have different numbers of
    seeds), "boot" (the n_boot replicates' crossings, inf for not reached: two calls with the
    same `seed` and the same seed counts draw the same resamples, so their "boot" lists are
    paired, and a ratio of two curves' d_int90 can be bootstrapped from them)}.
    """
    xs = sorted(curve)
    values = {**{x: curve[x] for x in xs}, "base": base, "full": full}
    n = {k: len(v) for k, v in values.items()}
    if min(n.values()) < 1:
        raise ValueError("every configuration needs at least one seed")

    def fractions(means):
        return gap_closed([means[x] for x in xs], means["base"], means["full"])

    point = fractions(_means(values, lambda k: slice(None)))
    rng = np.random.default_rng(seed)
    reps, ints = [], []
    for _ in range(n_boot):
        shared = {}                                     # one draw per seed count: paired seeds
        for size in set(n.values()):
            shared[size] = rng.integers(0, size, size)
        f = fractions(_means(values, lambda k: shared[n[k]]))
        reps.append(f)
        c = crossing(xs, f, level)
        ints.append(math.inf if c is None else c)
    reps = np.array(reps)                               # (n_boot, len(xs))
    tail = (1 - ci) / 2 * 100
    ints = np.array(ints)
    best = int(np.argmax(point))
    # "lower" / "higher" pick replicates themselves, so +inf (not reached) stays +inf
    lo = float(np.percentile(ints, tail, method="lower"))
    hi = float(np.percentile(ints, 100 - tail, method="higher"))
    each = []
    if len(set(n.values())) == 1:
        for i in range(n["base"]):
            c = crossing(xs, fractions(_means(values, lambda k: [i])), level)
            each.append(math.inf if c is None else c)
    return {"xs": xs, "fraction": point.tolist(), "each": each, "boot": ints.tolist(),
            "band_lo": np.percentile(reps, tail, axis=0).tolist(),
            "band_hi": np.percentile(reps, 100 - tail, axis=0).tolist(),
            "d_int": crossing(xs, point, level), "lo": lo, "hi": hi,
            "reached_share": float(np.mean(np.isfinite(ints))),
            "max_fraction": float(point[best]), "at": xs[best],
            "max_lo": float(np.percentile(reps[:, best], tail)),
            "max_hi": float(np.percentile(reps[:, best], 100 - tail)),
            "n_seeds": {x: n[x] for x in xs}, "level": level,
            "at_first": bool(point[0] >= level)}


def describe(r: dict, unit: str = "trainable numbers") -> str:
    """One line: 'd_int90 = 2,300 (95% bootstrap interval 1,100 to 9,800)', or the fraction
    reached when the level is not."""
    pct = f"{r['level']:.0%}"
    if r.get("at_first"):
        return (f"d_int{pct[:-1]} <= {r['xs'][0]:,} {unit}: the smallest point of the grid "
                f"already closes {r['fraction'][0]:.1%} of the gap (95% bootstrap band "
                f"{r['band_lo'][0]:.1%} to {r['band_hi'][0]:.1%}); the grid says nothing below it")
    if r["d_int"] is not None:
        hi = "beyond the grid" if math.isinf(r["hi"]) else f"{r['hi']:,.0f}"
        return (f"d_int{pct[:-1]} = {r['d_int']:,.0f} {unit} (95% bootstrap interval "
                f"{r['lo']:,.0f} to {hi}; it reaches {pct} in {r['reached_share']:.0%} of the "
                f"bootstrap resamples)")
    return (f"{pct} not reached: largest fraction reached {r['max_fraction']:.1%} at "
            f"{r['at']:,} {unit} (95% bootstrap interval {r['max_lo']:.1%} to "
            f"{r['max_hi']:.1%})")


def stable_weights(checkpoint, path, note: dict | None = None) -> Path:
    """Copy the weights of `checkpoint` (any smolgpt checkpoint; materialised, so a full-model
    file) into `path` as a weights-only checkpoint whose bytes are a function of the weights and
    `note` alone: no wall time, no paths, no training state, fixed zip timestamps. Written only
    when absent or different. A run that starts from it (`init_from`) is keyed by the run the
    note names (`note[checkpoint.MADE_BY]`, the pretraining run's key), else by the file's
    sha256 (`checkpoint.weights_identity`). Returns `path`."""
    from ..checkpoint import FORMAT, load_params
    params, model, spec = load_params(checkpoint)
    keys = sorted(params)
    meta = {"model": model.to_dict(), "method": {"name": "full", "seed": spec.seed},
            "keys": keys, "format": FORMAT, "adam_t": None, "weights_only": True,
            "note": note or {}}
    entries = [("trainables/" + k, np.ascontiguousarray(params[k])) for k in keys]
    entries.append(("meta", np.frombuffer(json.dumps(meta, sort_keys=True).encode(), np.uint8)))
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as z:
        for name, array in entries:
            info = zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            with z.open(info, "w", force_zip64=True) as f:
                np.lib.format.write_array(f, array, allow_pickle=False)
    if path.exists() and path.read_bytes() == tmp.read_bytes():
        tmp.unlink()
    else:
        tmp.replace(path)
    return path


# ---------------------------------------------------------------------------------------------
# Chapter 08's two sweeps: the rates of the arrays trained directly, then the grid of d


def pick_lr(losses_at, grid, title, who="full training", extend=3, keep=None):
    """The peak lr that gives `who` its lowest final loss averaged over seeds:
    losses_at(lr) -> [final loss per seed]. First on `grid`, then, while the best sits on an edge,
    with one more value past that edge (at most `extend` times), so that the choice ends
    interior, with both neighbours worse.

    keep: a rate on `grid` chosen before (by an earlier run of the same sweep). It stays unless
    the best rate beats it by a resolved margin (a paired 95% interval above 0): a near tie
    between two rates is decided by rounding, so without `keep` a run on another machine could
    pick the other rate and move every run that uses it."""
    if keep is not None and keep not in grid:
        raise ValueError(f"keep={keep:g} is not on the sweep's grid {sorted(grid)}: pick a rate "
                         f"the sweep runs, so that it is checked")
    loss, grid = {}, sorted(grid)
    for tries in range(extend + 1):
        for lr in grid:
            if lr not in loss:
                loss[lr] = losses_at(lr)
        best = min(loss, key=lambda lr: np.mean(loss[lr]))
        interior = best not in (grid[0], grid[-1])
        if interior or tries == extend:
            break
        grid = extended(grid, best)
    where = ("both neighbours are worse" if interior else
             f"still on the edge after {extend} extensions: a better rate may lie beyond it")
    loss = dict(sorted(loss.items()))
    runner = min((lr for lr in loss if lr != best), key=lambda lr: np.mean(loss[lr]))
    margin = paired_interval(loss[best], loss[runner])                # runner-up minus best
    print(f"{title}: {who}'s final loss by peak lr (mean over {len(loss[best])} seeds): "
          + ", ".join(f"{lr:g} -> {np.mean(v):.4f}" for lr, v in loss.items()) + f"; best "
          f"{best:g} ({where}); the next best, {runner:g}, is {margin['diff']:+.4f} worse, 95% "
          f"interval [{margin['lo']:+.4f}, {margin['hi']:+.4f}]")
    if keep is None or keep == best:
        return best
    behind = paired_interval(loss[best], loss[keep])                  # kept minus best
    if behind["lo"] > 0:
        print(f"  {keep:g}, the rate given to keep, is worse by a resolved margin "
              f"({behind['diff']:+.4f}, 95% interval [{behind['lo']:+.4f}, "
              f"{behind['hi']:+.4f}]): {best:g} replaces it")
        return best
    print(f"  kept {keep:g}, the rate given to keep: {best:g} is better by {behind['diff']:.4f} "
          f"here, which is not resolved (95% interval of the difference [{behind['lo']:+.4f}, "
          f"{behind['hi']:+.4f}])")
    return keep


def sweep(base_cfg, grid, title, losses, full_lr=None):
    """Baselines and the grid of d for DID (Fastfood) and SAID, printed; returns
    {"base", "full", "did": {x: [...]}, "said": {x: [...]}}, x the trainable count of each d.
    losses(cfgs) -> [[final loss per seed, or per replicate] per cfg], given every configuration
    of the sweep at once (so that the runner trains them side by side). Every run trains its
    embeddings at base_cfg.lr, but full training, which trains all of its weights at full_lr
    (default the same)."""
    t0 = time.time()
    full = dataclasses.replace(base_cfg, method=MethodSpec("full"), lr=full_lr or base_cfg.lr)
    specs = [(key, spec) for d in grid for key, spec in (("did", MethodSpec("fastfood", d=d)),
                                                         ("said", MethodSpec("said", d=d)))]
    found = losses([dataclasses.replace(base_cfg, method=MethodSpec("embeddings")), full] +
                   [dataclasses.replace(base_cfg, method=spec) for _, spec in specs])
    out = {"base": found[0], "full": found[1], "did": {}, "said": {}}
    for (key, spec), loss in zip(specs, found[2:]):
        out[key][build(spec, base_cfg.gpt).n_trainable] = loss
    gain = paired_interval(out["full"], out["base"])                 # base - full, per seed
    n = len(out["base"])
    print(f"{title}: embeddings only {np.mean(out['base']):.4f}, full {np.mean(out['full']):.4f} "
          f"(mean over {n}; {time.time() - t0:.0f} s); full training's gain "
          f"{gain['diff']:.4f} nats, 95% interval [{gain['lo']:.4f}, {gain['hi']:.4f}]")
    if not gain["lo"] > 0:
        print(f"  note: that gain is not resolved at {n} seeds (its interval reaches 0), so the "
              f"fractions below divide by noise")
    for d, (xd, ld), (xs, ls) in zip(grid, out["did"].items(), out["said"].items()):
        gd = gap_closed(ld, np.mean(out["base"]), np.mean(out["full"]))
        gs = gap_closed(ls, np.mean(out["base"]), np.mean(out["full"]))
        print(f"  d = {d:>7,}: DID loss {np.mean(ld):.4f}, gap closed {np.mean(gd):6.1%}   "
              f"SAID ({xs:,} numbers) loss {np.mean(ls):.4f}, gap closed {np.mean(gs):6.1%}")
    return out


def gap_closed_figure(results: dict, title: str, ylim=(-0.5, 2.5)):
    """Chapter 08's figure: gap closed against the trainable count, one line per (regime,
    method) of `results` ({(regime, method): d_int's result}), with its 95% bootstrap band and
    d_int90 marked (x) with its interval, cut at the grid's end. Fractions outside `ylim` (a gain
    lost in noise) are drawn on its edge; returns (figure, how many points were so clipped)."""
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(9, 5.5))
    colors = {"from scratch": "C0", "fine-tuning": "C3"}
    styles = {"DID (Fastfood)": ("o", "-"), "SAID": ("s", "--")}
    clipped, seen = 0, [0.0, 1.0]               # the y range: the data's, with 0 and 1 in it
    for (regime, name), r in results.items():
        marker, line = styles[name]
        xs, f = np.array(r["xs"]), np.array(r["fraction"])
        clipped += int(np.sum((f < ylim[0]) | (f > ylim[1])))
        seen += [*f, *r["band_lo"], *r["band_hi"]]
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
    seen = np.clip(np.array(seen, dtype=float), *ylim)
    ax.set_ylim(np.nanmin(seen) - 0.05, np.nanmax(seen) + 0.05)
    ax.set(xlabel="trainable non-embedding numbers (d for DID, d + one scale per tensor for SAID)",
           ylabel="gap closed: (L_emb - L_d) / (L_emb - L_full)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return fig, clipped
