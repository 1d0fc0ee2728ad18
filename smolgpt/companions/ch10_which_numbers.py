"""Chapter 10's plan: which few numbers of a frozen random byte model to train, at equal counts.

    w = WhichNumbers(record=...)                    # the long race's byte model and budget
    rates, _ = w.new_rates(w.long_rates())          # the long race's racers, then the new ones
    results = w.race(rates)                         # {racer: [summary per seed]}
    print(record_table(results, w.check_data(), w))  # the record: best share at <= 250, 5,000

Nine of the new racers (smolgpt/methods/norms.py) train *knobs* of the frozen random body,
numbers that each move a whole channel: the LayerNorm gains and biases, one gain per output
channel of every matrix, the matrices' biases, one gain per attention head and one per MLP;
directly, or through a random subspace of them. The tenth, a whole-body Fastfood of 2,304, is
the control at that count. They race the long race's recorded racers
(chapters/results/09_long_race.jsonl, reused, never trained again) at about equal counts: ~250
(5 per tensor, NOLA), ~2,300 (norms against that Fastfood) and ~5,000 (Fastfood, VeRA); and the
norms and gains together (6,912) against Fastfood's 5,000.

Each new racer's rate is tuned by the long race's rule on a wide grid: a knob moves a whole
channel, so its best Adam rate may sit far from a weight matrix's. The grid runs from 1e-3 to 3
(factor ~3) at a quarter of the budget (seed 0), is extended while its best is on an edge, and the
choice is checked at the full budget (`LongRace.settle`). Then 3 seeds, paired with the long
race's seed by seed (seed s: the same batches for every racer).

The record (`record_table`) keeps, under fixed rules (`rules`), the best share of full training's
gain over embeddings only with at most 250 and at most 5,000 trainable non-embedding numbers; a
new recipe is scored under the same rules by

    python -m smolgpt.companions.ch10_which_numbers score --method fastfood --d 250 \
        --coverage norms

The long runs are made by lanes, processes that each tune and race some of the racers into their
own record (two processes never write one file), gathered into the chapter's record by `collect`:

    python -m smolgpt.companions.ch10_which_numbers lane --racers norms,heads --record A.jsonl
    python -m smolgpt.companions.ch10_which_numbers collect A.jsonl B.jsonl

The longer budget's runs are split the same way (`lane --longer`, any of LONGER_RACERS and the
new racers). A new racer's rate there starts from its tuning at the chapter's budget, so such a
lane's record starts as a copy of the chapter's, where those runs are read, not made again.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from pathlib import Path

import numpy as np

from .ch09_long_race import BRIDGE_GRIDS, GRIDS, SHARE_FRAME, SPECS, LongRace
from ..experiments.runs import Record
from ..experiments.stats import mean_se, paired_interval
from ..files import write_atomic
from ..methods import MethodSpec, build
from ..methods.norms import KNOB_METHODS
from ..methods.subspace import KNOB_COVERAGES

# The chapter's committed records, in a checkout
RESULTS = Path(__file__).resolve().parents[2] / "chapters" / "results"
LONG_RECORD = RESULTS / "09_long_race.jsonl"
RECORD = RESULTS / "10_which_numbers.jsonl"

# The long race's racers this chapter reads (their runs are in LONG_RECORD): the two ends of the
# scale, and the racers at ~250 and ~5,000 numbers
LONG = ("embeddings only", "full", "5 per tensor", "Fastfood")
LONG_BRIDGES = ("VeRA r=24", "NOLA k=l=8")

# racer -> its parameterization. Counts are on the byte model's 4 x 128 body.
# Names hold no commas (a lane's --racers is a comma-separated list).
NEW = {
    "heads": MethodSpec("heads"),                                         # 20: 4 x (4 heads + 1)
    "norms in 250 directions": MethodSpec("basis", d=250, coverage="norms"),           # 250
    "norms+gains in 250 Fastfood": MethodSpec("fastfood", d=250, coverage="norms-gains"),
    "norms+biases in 250 directions": MethodSpec("basis", d=250, coverage="norms-biases"),
    "norms": MethodSpec("norms"),                                         # 2,304
    "Fastfood 2304": MethodSpec("fastfood", d=2304),                      # 2,304, the whole body
    "gains": MethodSpec("gains"),                                         # 4,608
    "biases": MethodSpec("biases"),                                       # 4,608
    "norms+gains in 5000 Fastfood": MethodSpec("fastfood", d=5000, coverage="norms-gains"),
    "norms+gains": MethodSpec("norms-gains"),                             # 6,912
}
# quick mode's racers (the tests'): four of the kinds, so that it stays well under a minute
QUICK_RACERS = ("heads", "norms in 250 directions", "norms", "gains")
# the wide grid every new racer's `coef_lr` starts from (its embeddings at embeddings only's rate)
WIDE = (1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 3.0)
QUICK_GRID = (0.01, 0.1, 1.0)
# a count -> the racers compared at about that count, each table's reference first (the long
# race's racer there, or a whole-body Fastfood); the last: the norms and gains together, against
# the long race's nearest count below
MATCHED = {250: ("5 per tensor", "NOLA k=l=8", "heads", "norms in 250 directions",
                 "norms+gains in 250 Fastfood", "norms+biases in 250 directions"),
           2304: ("Fastfood 2304", "norms"),
           5000: ("Fastfood", "VeRA r=24", "gains", "biases", "norms+gains in 5000 Fastfood"),
           6912: ("Fastfood", "norms+gains")}
# the record's two classes: at most this many trainable non-embedding numbers -> the entry that
# stood before chapter 10 (the long race's)
LIMITS = {250: "5 per tensor", 5000: "Fastfood"}
SEEDS = (0, 1, 2)


def rules(w: WhichNumbers) -> str:
    """The record's fixed rules, as this plan (the full one, or quick mode's) applies them."""
    b, seeds = w.plan.base, ", ".join(map(str, w.seeds))
    grid = QUICK_GRID if w.quick else WIDE
    return (f"the long race's byte model and data (the sha256 of its training and validation "
            f"splits, below), {w.plan.budget():,} bytes ({b.steps:,} steps of {b.batch_size} x "
            f"{b.gpt.block_size}), the final score on {w.plan.final_windows} held-out windows, "
            f"seeds {seeds}; the rate chosen by the tuning rule (a grid from {grid[0]:g} to "
            f"{grid[-1]:g}, factor ~{grid[1] / grid[0]:.0f}, at a quarter of the budget, seed "
            f"0, extended up to twice while its best sits "
            f"on an edge, then checked at the full budget and moved, as `LongRace.settle` does, "
            f"where a neighbour wins); a new entry must beat the standing one by a paired 95% "
            f"interval of bits per byte that excludes zero (of several that beat it at once, "
            f"as this chapter's racers did, the lowest mean)")


def rate_field(spec: MethodSpec, gpt) -> str:
    """The learning-rate field a recipe's own (non-embedding) numbers train at: the one its
    method declares for them (coef_lr, vera_lr, ...), or lr when they train at lr."""
    method = build(spec, gpt)
    groups = set(method.lr_groups(method.trainable_shapes()).values())
    if len(groups) > 1:
        raise ValueError(f"{spec.label()} trains at {len(groups)} rates ({', '.join(groups)}); "
                         f"the tuning rule tunes one")
    return groups.pop() if groups else "lr"


def fit_quick(spec: MethodSpec) -> MethodSpec:
    """`spec` on the quick micro model: a subspace of knobs no wider than the knobs it spans."""
    if spec.coverage not in KNOB_COVERAGES:
        return spec
    knobs = build(MethodSpec(spec.coverage), LongRace("bytes", quick=True).base.gpt).n_trainable
    return dataclasses.replace(spec, d=min(spec.d, knobs))


@dataclasses.dataclass
class WhichNumbers:
    """The two plans on the byte model: the long race's (its record, read) and this chapter's."""

    quick: bool = False
    record: Path | None = RECORD
    long_record: Path | None = LONG_RECORD
    racers: dict = dataclasses.field(default_factory=lambda: dict(NEW))

    def __post_init__(self):
        grid = QUICK_GRID if self.quick else WIDE
        if self.quick:                 # the micro model has fewer knobs than some racers' d
            if self.racers == NEW:
                self.racers = {r: NEW[r] for r in QUICK_RACERS}
            self.racers = {r: fit_quick(s) for r, s in self.racers.items()}
        specs = {**SPECS, **self.racers}
        grids = {**GRIDS, **BRIDGE_GRIDS, **{r: ("coef_lr", grid) for r in self.racers}}
        # in quick mode there is no long race to read: its racers train into our record
        self.long = LongRace("bytes", quick=self.quick,
                             record=self.record if self.quick else self.long_record)
        self.plan = LongRace("bytes", quick=self.quick, record=self.record, specs=specs,
                             grids=grids)
        self.seeds = (0, 1) if self.quick else SEEDS

    def check_data(self) -> dict:
        """The prepared data's sha256 per split; at full size it must be the long race's (the
        record's first rule), else nothing here would pair with its runs."""
        m = self.plan.prepare()
        data_id = {s: m["splits"][s]["sha256"] for s in ("train", "val")}
        if not self.quick and self.long_record and Path(self.long_record).exists():
            theirs = next(iter(Record(self.long_record).runs().values()))["data"]
            if theirs != data_id:
                raise SystemExit(
                    f"the prepared training data (train sha256 {data_id['train'][:12]}...) is not "
                    f"the long race's ({theirs['train'][:12]}...): point SMOLGPT_C4_FILES at the "
                    f"long race's C4 files (chapter 09's header says which) and run again")
        return data_id

    def long_rates(self, verbose: bool = False) -> dict:
        """The long race's racers' rates, by its own tuning and checks (read from its record)."""
        lp = self.long
        rates = lp.tune(verbose, racers={r: GRIDS[r] for r in LONG})
        rates, _ = lp.settle(rates, racers=LONG[1:], verbose=verbose)
        rates = lp.tune(verbose, racers={r: BRIDGE_GRIDS[r] for r in LONG_BRIDGES}, rates=rates)
        rates, _ = lp.settle(rates, racers=LONG_BRIDGES, verbose=verbose)
        return rates

    def new_rates(self, rates: dict, racers=None, verbose: bool = False) -> tuple[dict, dict]:
        """(rates with `racers`' (default: every new racer) added, {racer: (its sweep at a
        quarter of the budget, its check at the full budget)}): each tuned on the wide grid at a
        quarter budget, then checked at the full one."""
        racers = list(racers or self.racers)
        tuned = self.plan.tune(verbose, racers={r: self.plan.grids[r] for r in racers},
                               rates=rates)
        settled, checks = self.plan.settle(tuned, racers=racers, verbose=verbose)
        return settled, {r: (tuned[r]["sweep"], checks[r]) for r in racers}

    def five_in_all(self, rates: dict, verbose: bool = False) -> dict:
        """`rates` with the long race's 5 in all added, by its own tuning and check (read from
        its record): the longer budget races it, the default run does not."""
        if "5 in all" in rates:
            return rates
        rates = self.long.tune(verbose, racers={"5 in all": GRIDS["5 in all"]}, rates=rates)
        return self.long.settle(rates, racers=("5 in all",), verbose=verbose)[0]

    def race(self, rates: dict, racers=None, verbose: bool = False) -> dict:
        """{racer: [summary per seed]}: the long race's racers from its record, ours raced."""
        racers = list(racers or self.racers)
        out = self.long.race(rates, self.seeds, verbose, racers=LONG + LONG_BRIDGES)
        out.update(self.plan.race(rates, self.seeds, verbose, racers=racers))
        return out


# The gap over a longer budget (run with SMOLGPT_CH10_LONGER=1): full training, Fastfood, the
# best new recipe, 5 in all and embeddings only on 16,777,216 bytes, every rate but embeddings
# only's checked again at that budget, 3 seeds.
LONGER_STEPS = 4096                  # x 16 x 256 bytes = 16,777,216 bytes
LONGER_RACERS = ("embeddings only", "full", "Fastfood", "5 in all")


def longer_race(w: WhichNumbers, rates: dict, best_new: str | None, verbose: bool = False,
                racers=None) -> tuple[dict, dict]:
    """({racer: [summary per seed]}, {racer: its rate check}) on LONGER_STEPS steps:
    LONGER_RACERS and `best_new` (or only `racers`, a lane's share of them), every rate but
    embeddings only's checked again at this budget (LongRace.settle), seeds w.seeds. Runs are
    kept in w.plan's record, like the rest of the chapter's; each racer's runs are the same
    whichever process asks for them."""
    racers = tuple(racers or LONGER_RACERS + (best_new,))
    longer = LongRace("bytes", quick=w.quick, record=w.plan.record, specs=w.plan.specs,
                      grids=w.plan.grids)
    steps = 4 * longer.base.steps if w.quick else LONGER_STEPS
    longer.base = dataclasses.replace(longer.base, steps=steps, warmup=max(2, steps // 32))
    if "5 in all" in racers:
        rates = w.five_in_all(rates, verbose)
    fresh = {r: {k: v for k, v in rates[r].items() if k != "at_full_budget"} for r in racers}
    checked = [r for r in racers if r != "embeddings only"]
    settled, checks = longer.settle({**rates, **fresh}, racers=checked, verbose=verbose)
    return longer.race(settled, w.seeds, verbose, racers=racers), checks


def gap_growth(short: dict, longer: dict) -> list[tuple[str, dict, dict, dict]]:
    """Whether the gap to full training widens with the budget: [(racer, the paired interval of
    its bits per byte minus full training's on the shorter budget, the same on the longer one,
    the paired interval of the longer gap minus the shorter)] for each racer of `longer` but
    full training and embeddings only; seeds paired by number across the two budgets."""
    out = []
    for r in longer:
        if r not in ("full", "embeddings only"):
            gaps = [bpb(res, r) - bpb(res, "full") for res in (short, longer)]
            out.append((r, *(paired_interval(bpb(res, "full"), bpb(res, r))
                             for res in (short, longer)), paired_interval(*gaps)))
    return out


def longer_table(longer: dict, rates: dict, checks: dict) -> list[str]:
    """The longer budget's table, as markdown lines, lowest first: each racer's count, its rate
    at that budget (its check's choice; embeddings only's is the long race's), its final bits
    per byte (mean +- standard error over seeds) and the share of full training's gain over
    embeddings only it keeps on that budget."""
    first = longer["full"][0]
    rows = [f"### The longer budget: {first['tokens']:,} bytes, {len(longer['full'])} seeds", "",
            "| racer | trainable non-embedding | rate | bits per byte | share kept |",
            "|---|---:|---|---:|---:|"]
    for r in sorted(longer, key=lambda r: bpb(longer, r).mean()):
        rate = ({"field": checks[r]["field"], "value": checks[r]["best"]} if r in checks
                else rates[r])
        rows.append(table_row(longer, r, rate))
    return rows


def table_row(results: dict, racer: str, rate: dict) -> str:
    """A racer's row of the chapter's tables: count, rate, bits per byte (mean +- standard error
    over seeds) and share of full training's gain over embeddings only in `results`."""
    return (f"| {racer} | {count(results, racer):,} | {rate['field']} = {rate['value']:.3g} | "
            f"{fmt_bpb(results, racer)} | {share(results, racer):.0%} |")


def bpb(results: dict, racer: str) -> np.ndarray:
    """(seeds,) final held-out bits per byte of a racer, seed by seed."""
    return np.array([r["final"]["bits_per_byte"] for r in results[racer]])


def share(results: dict, racer: str) -> float:
    """The share of full training's gain over embeddings only a racer keeps, as smolgpt reports
    it: (E - M) / (E - F) from the means over seeds of final bits per byte."""
    E, F = bpb(results, "embeddings only").mean(), bpb(results, "full").mean()
    return float((E - bpb(results, racer).mean()) / (E - F))


def count(results: dict, racer: str) -> int:
    return int(results[racer][0]["n_trainable"])


def standing(results: dict, limit: int, old: str | None = None) -> tuple[str, list]:
    """(the entry that holds the record with at most `limit` numbers, [(challenger, its paired
    interval against the old entry)]): of the racers within the limit that beat the old entry
    (default: the one that stood before this chapter, LIMITS) by a paired 95% interval of bits
    per byte excluding zero, the lowest mean; else the old entry stands."""
    old, tried = old or LIMITS[limit], []
    for racer in results:
        if racer not in (old, "embeddings only") and count(results, racer) <= limit:
            tried.append((racer, paired_interval(bpb(results, old), bpb(results, racer))))
    winners = [r for r, iv in tried if iv["hi"] < 0]
    best = min(winners, key=lambda r: bpb(results, r).mean()) if winners else old
    return best, tried


def is_knobs(racer: str) -> bool:
    """Whether a racer trains knobs of the frozen body, directly or through a random subspace
    of them, rather than directions in the whole weight space."""
    spec = NEW.get(racer)
    return spec is not None and (spec.name in KNOB_METHODS or spec.coverage in KNOB_COVERAGES)


def structure_verdicts(results: dict) -> list[tuple[int, str, str, dict]]:
    """What structure buys at equal counts: [(count, the lowest knob racer there, the lowest
    racer there that moves the whole body, the paired interval of their bits per byte, knobs
    minus whole body)] at each count of MATCHED where both kinds ran."""
    out = []
    for target, racers in MATCHED.items():
        here = [r for r in racers if r in results]
        knobs = [r for r in here if is_knobs(r)]
        body = [r for r in here if not is_knobs(r)]
        if knobs and body:
            k, b = (min(rs, key=lambda r: bpb(results, r).mean()) for rs in (knobs, body))
            out.append((target, k, b, paired_interval(bpb(results, b), bpb(results, k))))
    return out


def record_table(results: dict, data_id: dict, w: WhichNumbers, entries=None) -> str:
    """The record as markdown: each class's entry, its share and bits per byte, the entry it
    beat (or that stands), and the rules as `w` applies them. entries: {limit: (entry, the entry
    before it)}, by default standing()'s against the entries that stood before this chapter."""
    rows = ["| at most | entry | trainable non-embedding | share of full training's gain | "
            "bits per byte | stood before |", "|---:|---|---:|---:|---:|---|"]
    for limit in LIMITS:
        best, old = (entries or {}).get(limit) or (standing(results, limit)[0], LIMITS[limit])
        rows.append(f"| {limit:,} | {best} | {count(results, best):,} | "
                    f"{share(results, best):.0%} | {fmt_bpb(results, best)} | {old} "
                    f"{share(results, old):.0%} |")
    rows += ["", f"Rules: {rules(w)}.", "",
             f"Data: train sha256 {data_id['train']}, validation sha256 {data_id['val']}."]
    return "\n".join(rows)


def fmt_bpb(results: dict, racer: str) -> str:
    m, se = mean_se(bpb(results, racer))
    return f"{m:.3f}" if math.isnan(se) else f"{m:.3f} +- {se:.3f}"


def plot_shares(results: dict, path) -> Path:
    """The share of full training's gain each racer keeps, as bars, one group per table of
    MATCHED (a dotted line between two): knobs red, racers that move the whole body gray. A bar
    beyond chapter 09's frame stops at its edge; its label gives the share."""
    import matplotlib.pyplot as plt

    from ..experiments.chapter import save_figure
    frame = SHARE_FRAME
    bars = []                   # (label, share, trains knobs?), one table after another
    for racers in MATCHED.values():
        here = sorted((r for r in racers if r in results), key=lambda r: -share(results, r))
        bars += [(f"{r} ({count(results, r):,})", share(results, r), is_knobs(r)) for r in here]
        bars.append(None)                                   # a gap between two tables
    bars = bars[:-1]
    fig, ax = plt.subplots(figsize=(7.5, 0.26 * len(bars) + 1.2))
    for y, bar in enumerate(bars):
        if bar is None:
            ax.axhline(y, color="k", lw=0.5, ls=":")
            continue
        _, kept, knobs = bar
        ax.barh(y, min(max(kept, frame[0]), frame[1]), color="C3" if knobs else "gray")
        ax.text(max(kept, 0) + 0.01, y, f"{kept:.0%}", va="center", fontsize=7)
    shown = [bar for bar in bars if bar]
    ax.set_yticks([y for y, bar in enumerate(bars) if bar], [b[0] for b in shown], fontsize=7)
    ax.invert_yaxis()
    ax.axvline(0, color="k", lw=0.8)
    ax.axvline(1, color="k", lw=0.8)
    ax.set_xlim(min(0.0, *(max(b[1], frame[0]) for b in shown)) - 0.05,
                max(1.0, *(min(b[1], frame[1]) for b in shown)) + 0.1)
    ax.set_xlabel("share of full training's gain kept (0: embeddings only, 1: full training)")
    ax.set_title("which numbers, count by count (trainable non-embedding numbers in brackets):\n"
                 "knobs (red) and racers that move the whole body (gray)", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


def default_cost(w: WhichNumbers) -> tuple[int, float]:
    """(runs, hours of training) of the default run, summed from its record (the longer
    budget's runs left out): what the chapter costs from an empty cache, on one core each."""
    runs = [r for r in Record(w.plan.record).runs().values() if r["step"] <= w.plan.base.steps]
    return len(runs), sum(r["elapsed"] for r in runs) / 3600


def gradient_reach(gpt, seed: int, x, y) -> dict:
    """{set of trainable directions: (numbers, the share of the body's loss gradient it can
    follow)} on the random init of `seed` and one batch (x, y): a rate-free view of leverage.

    A set of orthonormal directions u_k in the space of the body's weights can follow the part
    sum_k <g, u_k>^2 of the gradient g's squared length ||g||^2. A LayerNorm gain or bias is a
    coordinate: its direction is a unit vector. A channel gain moves column j of W0 along itself:
    u = W0_j / ||W0_j||, <g, u> = <G_j, W0_j> / ||W0_j||. Distinct knobs touch disjoint
    coordinates, so their directions are orthogonal. A uniformly random d-dimensional subspace of
    a space of dimension D follows a share d / D of any vector's squared length in expectation:
    the random subspaces' lines give that expectation (of the whole body, and d / K of what K
    knobs follow for a subspace of them). The long race's 5 per tensor is not among them: its
    directions are the random weights themselves (no offset), so it is left out.
    """
    from ..model import init_params, loss_and_grads, non_embedding_table
    params = init_params(gpt, seed, np.float64)
    _, g = loss_and_grads(params, x, y, gpt)
    body = non_embedding_table(gpt)
    total = sum(float(np.square(g[n]).sum()) for n, _ in body)
    D = sum(math.prod(s) for _, s in body)

    def follows(which: str) -> tuple[int, float]:
        """(the knobs of `which`, a knob set, and the squared gradient they can follow): a
        LayerNorm or bias knob its coordinates' share, a gain the share along its columns."""
        m = build(MethodSpec(which), gpt)
        got = sum(float(np.square(g[n]).sum()) for n, _ in m.knobs if n not in m.gain_names)
        for weight, scaled in m.columns.items():
            G, W0 = g[weight], params[weight]
            for _, cols, entry in scaled:          # knob entry e scales cols[entry == e]
                along = np.bincount(entry, weights=(G[:, cols] * W0[:, cols]).sum(0))
                norm2 = np.bincount(entry, weights=np.square(W0[:, cols]).sum(0))
                got += float((along ** 2 / norm2).sum())
        return m.n_trainable, got

    sets = ("norms", "gains", "norms-gains", "biases", "norms-biases", "heads")
    counts, knob = {}, {}
    for w in sets:
        counts[w], knob[w] = follows(w)
    out = {"norms": (counts["norms"], knob["norms"] / total),
           "gains": (counts["gains"], knob["gains"] / total),
           "norms+gains": (counts["norms-gains"], knob["norms-gains"] / total),
           "biases": (counts["biases"], knob["biases"] / total),
           "heads": (counts["heads"], knob["heads"] / total)}
    for d, over in ((250, "norms"), (250, "norms-gains"), (250, "norms-biases"),
                    (5000, "norms-gains")):
        if d <= counts[over]:
            out[f"{d} random directions in {over.replace('-', '+')} (expected)"] = \
                (d, d / counts[over] * knob[over] / total)
    for d in (250, 2304, 5000):
        out[f"{d} random directions in the whole body (expected)"] = (d, d / D)
    return out


# -- the commands ---------------------------------------------------------------------------------
def lane(racers: list[str], record: Path, quick: bool = False, longer: bool = False) -> dict:
    """Tune, check and race `racers` (new ones) into `record`: one long-run process. With
    `longer`, race them (any of LONGER_RACERS and the new racers) on the longer budget."""
    known = (*LONGER_RACERS, *NEW) if longer else tuple(NEW)
    unknown = [r for r in racers if r not in known]
    if unknown or not racers:
        said = f"unknown racer(s) {', '.join(unknown)}" if unknown else "--racers names none"
        raise SystemExit(f"{said}: choose from {', '.join(known)}")
    w = WhichNumbers(quick=quick, record=record)
    w.check_data()
    rates = w.long_rates()
    new = [r for r in racers if r in NEW]
    if new:
        rates, _ = w.new_rates(rates, new, verbose=True)
    for r in new:
        print(f"{r}: {rates[r]['field']} = {rates[r]['value']:.3g}", flush=True)
    if longer:
        return longer_race(w, rates, None, verbose=True, racers=racers)[0]
    return w.race(rates, racers, verbose=True)


def collect(lanes, into: Path = RECORD) -> int:
    """Every run line of the lanes' records not yet in `into`, appended (by run key)."""
    book = Record(into)
    have = book.runs()
    added = 0
    for path in lanes:
        for key, rec in Record(path).runs().items():
            if key not in have:
                have[key] = rec
                added += 1
    if added:
        text = "\n".join(json.dumps(r) for r in have.values()) + "\n"
        write_atomic(into, lambda f: f.write(text.encode()))
    return added


def score(spec: MethodSpec, record: Path = RECORD, quick: bool = False) -> dict:
    """A new recipe under the record's rules: its rate tuned and checked, 3 seeds, its share,
    and its paired interval against each class's standing entry it is eligible for."""
    name = spec.label()
    w = WhichNumbers(quick=quick, record=record, racers={**NEW, name: spec})
    field = rate_field(spec, w.plan.base.gpt)
    w.plan.grids[name] = (field, QUICK_GRID if quick else WIDE)
    data_id = w.check_data()
    # every racer's rate, the recipe's last (the others are reused when recorded)
    rates, _ = w.new_rates(w.long_rates(), verbose=True)
    results = w.race(rates, list(w.racers))
    n = count(results, name)
    entries = {}
    print(f"{name}: {n:,} trainable non-embedding numbers, {field} = {rates[name]['value']:.3g}, "
          f"{fmt_bpb(results, name)} bits per byte, share {share(results, name):.0%}")
    for limit in LIMITS:
        if n > limit:
            print(f"  at most {limit:,}: not eligible ({n:,} numbers)")
            continue
        best = standing({k: v for k, v in results.items() if k != name}, limit)[0]
        iv = paired_interval(bpb(results, best), bpb(results, name))
        beats = iv["hi"] < 0
        entries[limit] = (name, best) if beats else (best, LIMITS[limit])
        print(f"  at most {limit:,}: against the standing {best} ({share(results, best):.0%}): "
              f"{name} - {best} = {iv['diff']:+.4f} bits per byte, 95% [{iv['lo']:+.4f}, "
              f"{iv['hi']:+.4f}]: " + ("a new record" if beats else "does not beat it"))
    print(record_table(results, data_id, w, entries))
    return results


def main(argv=None) -> int:
    from ..cli import _dataclass_flags, _typed
    p = argparse.ArgumentParser(prog="python -m smolgpt.companions.ch10_which_numbers",
                                description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("score", help="score a new recipe under the record's rules (tunes its "
                       "rate, runs 3 seeds; finished runs are reused)")
    # each seed s draws the recipe's random tensors from s too: no --method-seed
    _dataclass_flags(s, MethodSpec, {}, "the recipe", skip=("seed",))
    s.add_argument("--record", type=Path, default=RECORD, help="the record its runs are kept in "
                   "(default: the chapter's, chapters/results/10_which_numbers.jsonl, whose "
                   "runs it reuses)")
    s.add_argument("--quick", action="store_true", help="a micro model, a few steps (tests)")
    ln = sub.add_parser("lane", help="tune and race some of the new racers (a long-run process)")
    ln.add_argument("--racers", required=True, help="comma-separated: " + ", ".join(NEW)
                    + "; with --longer also " + ", ".join(LONGER_RACERS))
    ln.add_argument("--record", type=Path, required=True, help="this lane's own record file")
    ln.add_argument("--longer", action="store_true",
                    help=f"race on the longer budget ({LONGER_STEPS:,} steps); copy the "
                    "chapter's record to the lane's record file first, so that the new racers' "
                    "rates are read from it, not tuned again")
    ln.add_argument("--quick", action="store_true", help="a micro model, a few steps (tests)")
    c = sub.add_parser("collect", help="add the lanes' finished runs to the chapter's record")
    c.add_argument("lanes", nargs="+", type=Path, help="the lanes' record files")
    c.add_argument("--into", type=Path, default=RECORD, help="the record to add them to "
                   "(default: the chapter's, chapters/results/10_which_numbers.jsonl)")
    a = p.parse_args(argv)
    if a.command == "score":
        score(MethodSpec(**_typed(a, MethodSpec)), a.record, a.quick)
    elif a.command == "lane":
        lane([r.strip() for r in a.racers.split(",") if r.strip()], a.record, a.quick, a.longer)
    else:
        print(f"{collect(a.lanes, a.into)} run(s) added to {a.into}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
