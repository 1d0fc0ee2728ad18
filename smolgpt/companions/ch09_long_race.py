"""The long race (chapter 09): the six racers of chapter 05 (and a volume knob) on two models,
over long budgets; and the bridges (VeRA, NOLA, LoRA at rank 1) at equal counts.

    plan = LongRace("bytes")                   # or "tiny"
    rates = plan.tune()                        # each racer's rate, interior to its sweep
    rates, sweeps = plan.settle(rates)         # checked (and re-tuned) at the full budget
    results = plan.race(rates, seeds=(0, 1, 2))
    rates, _ = plan.settle(plan.tune(racers=BRIDGES, rates=rates), racers=BRIDGES)
    bridges = plan.race(rates, (0, 1, 2), racers=BRIDGES)

Two models share one transformer body (4 layers x 128) and differ in what they read:
- `bytes` (`tiny-bytes`): UTF-8 bytes, 257 ids, a context of 256 bytes. ~92% of its weights
  are in the body, so the body has to do the learning;
- `tiny`: GPT-2's 50,257 BPE tokens, a context of 128. 89% of its weights are embeddings,
  which every racer trains.

Every run is evaluated at each power-of-two step (`TrainConfig.eval_log`) on the same fixed
held-out windows, so one run gives its loss at log-spaced budgets. Those points lie *inside*
one cosine schedule planned for the full budget: a run planned for a smaller budget would have
decayed its rate sooner and end a little lower. Each run's final score is the runner's, on 256
held-out windows.

Rates are tuned per model at a proxy budget of a quarter of the full one (seed 0, grids
extended until the best is interior, `sweep.tune`), and the choice is checked at the full
budget for the racers in CHECKED: where a neighbour beats it there, the sweep goes on at the full
budget and the race uses its choice (`LongRace.settle`).
Every finished run is kept in a record committed with the chapter (`runs.Record`), so the
chapter's tables and figures rebuild from a fresh clone without training.

The bridges (on the byte model only): VeRA, NOLA and LoRA at its least, rank 1, each sized so
that its trainable non-embedding count is nearest one of the main race's (Fastfood's 5,000, 5 per
tensor's 250), tuned and raced by the same machinery with the same seeds, so that at each count a
low-rank function from random bases races a random subspace of the whole weights.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np

from .. import data
from ..experiments.runs import FINAL_WINDOWS, QUICK_MODEL, Record, run_many, run_seeds, with_seed
from ..experiments.sweep import tune_all
from ..methods import MethodSpec, build
from ..model import GPTConfig
from ..train import TrainConfig

# racer -> its parameterization: the field of chapter 05, and "1 in all", a single number that
# scales the whole random body (chapter 07's volume knob), to see how much of what 5 in all
# keeps one knob already explains
RACERS = {
    "full": MethodSpec("full"),
    "LoRA": MethodSpec("lora", rank=4),
    "5 per tensor": MethodSpec("basis", d=5, per_tensor=True, offset=False),
    "Fastfood": MethodSpec("fastfood", d=5000),
    "5 in all": MethodSpec("basis", d=5, offset=False),
    "1 in all": MethodSpec("basis", d=1, offset=False),
    "embeddings only": MethodSpec("embeddings"),
}
# racer -> (the rate its sweep tunes, the starting grid). Arrays trained directly tune `lr`;
# the subspace racers tune `coef_lr` with `lr` (their embeddings) at embeddings only's choice.
# The grids are centred on the rates chapter 05's sweeps chose on `tiny` at 65k tokens.
GRIDS = {
    "embeddings only": ("lr", (1e-3, 3e-3, 1e-2)),
    "full": ("lr", (1e-3, 3e-3, 1e-2)),
    "LoRA": ("lr", (1e-3, 3e-3, 1e-2)),
    "5 in all": ("coef_lr", (0.1, 0.3, 1.0)),
    "1 in all": ("coef_lr", (0.1, 0.3, 1.0)),
    "5 per tensor": ("coef_lr", (1.0, 3.33, 11.1)),
    "Fastfood": ("coef_lr", (0.3, 1.0, 3.33)),
}
# whose choice is checked again at the full budget: every racer's but embeddings only's, whose
# rate is also the embeddings' rate of every subspace racer (moving it would move theirs). On the
# byte model every racer sat near 2.56 nats at the quarter budget, before the body starts
# learning, and full training's best rate at the full budget was 3x the quarter budget's.
CHECKED = tuple(r for r in RACERS if r != "embeddings only")

# The bridges: low-rank updates whose factors are drawn at random (VeRA, NOLA) and LoRA at its
# smallest, each raced against the main racer of (about) its trainable non-embedding count on the
# byte model. Their sizes are the ones whose count on tiny-bytes is nearest the target
# (`nearest_size`, ties to the smaller count; tests/test_experiments.py checks these against it).
BRIDGES = {
    "VeRA r=24": MethodSpec("vera", rank=24),                      # 16 r + 4,608 = 4,992
    "NOLA k=l=156": MethodSpec("nola", nola_k=156, nola_l=156),     # 16 (k + l) = 4,992
    "LoRA r=1": MethodSpec("lora", rank=1),              # 8,192 r = 8,192: LoRA can go no lower
    "NOLA k=l=8": MethodSpec("nola", nola_k=8, nola_l=8),           # 16 (k + l) = 256
}
# the count targeted -> the racers matched at it, the main race's own racer first
MATCHED = {5000: ("Fastfood", "VeRA r=24", "NOLA k=l=156", "LoRA r=1"),
           250: ("5 per tensor", "NOLA k=l=8")}
# As GRIDS. Embeddings and LoRA's factors train at `lr`; VeRA's vectors at `vera_lr`, NOLA's
# coefficients at `nola_lr`, with `lr` (their embeddings) at embeddings only's choice. Centred
# on the TrainConfig defaults (VeRA's 0.1; NOLA's 0.03, untuned) and on LoRA's grid.
BRIDGE_GRIDS = {
    "VeRA r=24": ("vera_lr", (0.03, 0.1, 0.3)),
    "NOLA k=l=156": ("nola_lr", (0.01, 0.03, 0.1)),
    "LoRA r=1": ("lr", (1e-3, 3e-3, 1e-2)),
    "NOLA k=l=8": ("nola_lr", (0.01, 0.03, 0.1)),
}
SPECS = {**RACERS, **BRIDGES}
# one color per racer and bridge, the same in every figure (matplotlib's ten, then navy)
COLORS = dict(zip(SPECS, [f"C{i}" for i in range(10)] + ["navy"]))
assert len(COLORS) == len(SPECS)

# model -> (preset, optimizer steps of 16 sequences at the full budget)
MODELS = {"bytes": ("tiny-bytes", 1024), "tiny": ("tiny", 512)}
QUICK_STEPS = 8
QUICK_BYTES = GPTConfig(n_layer=2, n_head=2, n_embd=64, block_size=64, vocab_size=257,
                        tokenizer="bytes")


def nearest_size(spec, sizes, target: int, gpt: GPTConfig) -> tuple[int, int]:
    """(size, its count): of the `sizes` given to `spec(size) -> MethodSpec`, the one whose
    trainable non-embedding count on `gpt` (the method's own n_trainable) is nearest `target`;
    of two as near, the smaller count (so a bridge then has fewer numbers than its match)."""
    counts = {s: build(spec(s), gpt).n_trainable for s in sizes}
    size = min(counts, key=lambda s: (abs(counts[s] - target), counts[s]))
    return size, counts[size]


def data_folder(tokenizer: str) -> Path:
    """The long race's own prepared data, beside the default folder of its tokenizer, so that
    preparing its larger training set never changes what the other chapters read."""
    return data.data_dir(tokenizer) / "long_race"


@dataclasses.dataclass
class LongRace:
    """One model's part of the long race: its configs, its tuning and its seeded runs."""

    model: str                            # "bytes" or "tiny"
    quick: bool = False
    record: Path | None = None            # runs.Record file of finished runs
    # racer -> its MethodSpec, and -> (the rate its sweep tunes, the starting grid): the long
    # race's own by default; chapter 10 races more on the same plan
    specs: dict = dataclasses.field(default_factory=lambda: dict(SPECS))
    grids: dict = dataclasses.field(default_factory=lambda: {**GRIDS, **BRIDGE_GRIDS})

    def __post_init__(self):
        preset, steps = MODELS[self.model]
        gpt = GPTConfig.preset(preset)
        if self.quick:
            gpt, steps = (QUICK_BYTES if self.model == "bytes" else QUICK_MODEL), QUICK_STEPS
        self.folder = data_folder(gpt.tokenizer)
        self.base = TrainConfig(
            gpt=gpt, steps=steps, batch_size=4 if self.quick else 16, warmup=max(2, steps // 32),
            eval_every=steps, eval_log=True, eval_windows=8 if self.quick else 128,
            sample_tokens=0, data_dir=str(self.folder))
        self.final_windows = 16 if self.quick else FINAL_WINDOWS

    @property
    def unit(self) -> str:
        return "bytes" if self.base.gpt.tokenizer == "bytes" else "tokens"

    def prepare(self) -> dict:
        """Tokenize the training files the environment names (SMOLGPT_C4_FILES) into the long
        race's folder; reused when already there."""
        return data.prepare(self.folder, tokenizer=self.base.gpt.tokenizer, verbose=False)

    def budget(self, cfg: TrainConfig | None = None) -> int:
        cfg = cfg or self.base
        return cfg.steps * cfg.tokens_per_step

    def proxy(self) -> TrainConfig:
        """The tuning budget: a quarter of the full one, the warmup scaled with it."""
        steps = max(4, self.base.steps // 4)
        return dataclasses.replace(self.base, steps=steps, warmup=max(2, steps // 32))

    def run(self, cfg: TrainConfig, seeds, verbose: bool = True) -> list[dict]:
        return run_seeds(cfg, seeds, verbose=verbose, record=self.record,
                         final_windows=self.final_windows)

    def tune(self, verbose: bool = True, racers=GRIDS, rates: dict | None = None) -> dict:
        """{racer: {"field", "value", "sweep"}}: each of `racers` (the main race's, or BRIDGES)
        tuned at the proxy budget (seed 0) by `sweep.tune_all`, on top of the `rates` already
        chosen (returned with them). Embeddings only's `lr` comes first, since every racer that
        sweeps another rate trains its embeddings at it; the others are then tuned side by
        side."""
        chosen, proxy = dict(rates or {}), self.proxy()
        first = [r for r in racers if r == "embeddings only"]
        for group in (first, [r for r in racers if r != "embeddings only"]):
            sweeps = []
            for racer in group:
                field, grid = self.grids[racer]
                base = dataclasses.replace(proxy, method=self.specs[racer])
                if field != "lr":
                    base = dataclasses.replace(base, lr=chosen["embeddings only"]["value"])
                sweeps.append((base, field, grid))
            found = tune_all(sweeps, seeds=(0,), extend=0 if self.quick else 2,
                             verbose=verbose, record=self.record,
                             final_windows=self.final_windows)
            for racer, (_, field, _), r in zip(group, sweeps, found):
                chosen[racer] = {"field": field, "value": r["best"], "sweep": r}
        return chosen

    def config(self, racer: str, rates: dict, scale: float = 1.0) -> TrainConfig:
        """The full-budget config of a racer at its tuned rate (times `scale`, for checks)."""
        cfg = dataclasses.replace(self.base, method=self.specs[racer])
        if rates[racer]["field"] != "lr":
            cfg = dataclasses.replace(cfg, lr=rates["embeddings only"]["value"])
        field = rates[racer]["field"]
        return dataclasses.replace(cfg, **{field: rates[racer]["value"] * scale})

    def race(self, rates: dict, seeds, verbose: bool = True, racers=RACERS) -> dict:
        """{racer: [summary per seed]} at the full budget, each of `racers` at its tuned rate.
        Every run at once, given to the workers seed by seed, so that a race cut short holds
        whole seeds of every racer."""
        order = [(seed, racer) for seed in seeds for racer in racers]
        runs = run_many([with_seed(self.config(racer, rates), seed) for seed, racer in order],
                        verbose=verbose, record=self.record, final_windows=self.final_windows)
        out = {racer: [] for racer in racers}
        for (_, racer), summary in zip(order, runs):
            out[racer].append(summary)
        return out

    def settle(self, rates: dict, racers=CHECKED, verbose: bool = True) -> tuple[dict, dict]:
        """(the rates to race, {racer: its sweep at the full budget}). For the checked `racers`,
        the proxy budget's choice and its two neighbours on the sweep's grid spacing run again
        at the full budget (seed 0). Where a neighbour wins, the sweep goes on at the full
        budget until its best is interior (`sweep.tune_all`, every racer's check at once),
        and the race uses that rate: a rate
        tuned on a quarter of the budget must not decide the race on its own."""
        settled, sweeps, checks = dict(rates), {}, []
        for racer in racers:
            if rates[racer].get("at_full_budget"):          # settled already: nothing to check
                sweeps[racer] = rates[racer]["sweep"]
                continue
            field, value = rates[racer]["field"], rates[racer]["value"]
            grid = rates[racer]["sweep"]["grid"]
            step = grid[1] / grid[0]                        # the grid's ratio, ~3
            checks.append((racer, (self.config(racer, rates), field,
                                   [value * s for s in (1 / step, 1.0, step)])))
        found = tune_all([check for _, check in checks], seeds=(0,),
                         extend=0 if self.quick else 3, verbose=verbose, record=self.record,
                         final_windows=self.final_windows)
        for (racer, _), r in zip(checks, found):
            sweeps[racer] = r
            field, value = rates[racer]["field"], rates[racer]["value"]
            if r["best"] != value:
                settled[racer] = {"field": field, "value": r["best"], "sweep": r,
                                  "at_full_budget": True}
        return settled, {racer: sweeps[racer] for racer in racers}

    def bits_per_token_to_byte(self) -> float:
        """Predicted tokens per UTF-8 byte in the fixed validation windows, so that a curve's
        nats per token become bits per byte: bpb = loss * this / ln 2. 1 for bytes, but for the
        document separators, which stand for no text."""
        val = data.load_tokens("val", self.folder, self.base.gpt.tokenizer)
        _, y = data.eval_windows(val, self.base.eval_windows, self.base.gpt.block_size)
        nbytes = data.token_bytes(self.base.gpt.tokenizer)[y].sum()
        return float(y.size / nbytes)


def curve(summary: dict, ratio: float) -> tuple[np.ndarray, np.ndarray]:
    """A run's validation curve as (budget in tokens, bits per byte), step 0 left out."""
    pts = np.array([(t, v) for _, t, v in summary["val_curve"] if t > 0], dtype=np.float64)
    return pts[:, 0], pts[:, 1] * ratio / math.log(2)


def budgets(results: dict) -> np.ndarray:
    """The budgets (tokens) at which every run of a race was evaluated, step 0 left out."""
    first = next(iter(results.values()))[0]
    return np.array([t for _, t, _ in first["val_curve"] if t > 0], dtype=np.int64)


def losses(results: dict, racer: str) -> np.ndarray:
    """(seeds, budgets) validation loss in nats per token of one racer, seed by seed."""
    return np.array([[v for _, t, v in r["val_curve"] if t > 0] for r in results[racer]])


MIN_GAIN = 0.05     # nats per token: below this, full training's gain is too small to divide by
# the frame a figure of shares is drawn in: where full training's lead is small a share swings
# far, and a share beyond the frame is drawn on its edge, marked x
SHARE_FRAME = (-0.5, 1.5)


def gap_closed(results: dict) -> dict:
    """{racer: (budgets,) share of full training's gain over embeddings only that the racer
    keeps}, from the means over seeds: (E - M) / (E - F). 1 is full training, 0 embeddings
    only; undefined (nan) where full training is less than MIN_GAIN ahead of embeddings only,
    since a share of a gain that small is a ratio of noise (it swings to -8 and +2)."""
    E, F = losses(results, "embeddings only").mean(0), losses(results, "full").mean(0)
    gain = E - F
    with np.errstate(invalid="ignore", divide="ignore"):
        return {r: np.where(gain > MIN_GAIN, (E - losses(results, r).mean(0)) / gain, np.nan)
                for r in results}


def plot_race(races: dict, refs: dict, train_size: dict, path) -> Path:
    """Held-out bits per byte against the budget, one panel per model: each racer's mean over
    seeds with its seeds' range as a band, the context-free unigram line, and the end of the
    first pass over the training data where a race goes past it."""
    import matplotlib.pyplot as plt

    from ..experiments.chapter import save_figure
    fig, axes = plt.subplots(1, len(races), figsize=(6.2 * len(races), 4.6), squeeze=False)
    for ax, (model, (plan, results)) in zip(axes[0], races.items()):
        ratio = plan.bits_per_token_to_byte()
        x = budgets(results)
        for racer in results:
            y = losses(results, racer) * ratio / math.log(2)             # (seeds, budgets)
            ax.plot(x, y.mean(0), marker=".", label=racer, color=COLORS[racer])
            ax.fill_between(x, y.min(0), y.max(0), color=COLORS[racer], alpha=0.2)
        ax.axhline(refs[model], color="gray", ls="--", lw=1, label="unigram (context-free)")
        if x[-1] > train_size[model]:
            ax.axvline(train_size[model], color="k", ls=":", lw=1, label="one pass over the data")
        ax.set_xscale("log")
        ax.set_xlabel(f"training budget ({plan.unit})")
        ax.set_ylabel("held-out bits per byte")
        ax.set_title(f"{model}: {plan.base.gpt.n_layer} x {plan.base.gpt.n_embd} body, "
                     f"{len(results['full'])} seeds")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_gap_closed(races: dict, path, train_bytes: int | None = None) -> Path:
    """Each reduced racer's share of full training's gain over embeddings only, against the
    budget, one line style per model. Shares outside `ylim` (where full training's lead is
    small, a share swings far) are drawn on the frame's edge, marked x. With `train_bytes`,
    a dotted line marks the end of each pass over a training set of that size."""
    import matplotlib.pyplot as plt

    from ..experiments.chapter import save_figure
    ylim = SHARE_FRAME
    fig, ax = plt.subplots(figsize=(7.5, 4.6))
    for (model, (plan, results)), ls in zip(races.items(), ("-", "--")):
        x = budgets(results) * (1 if plan.unit == "bytes" else 1 / plan.bits_per_token_to_byte())
        for racer, share in gap_closed(results).items():
            if racer in ("full", "embeddings only"):
                continue
            shown = np.clip(share, *ylim)
            color = COLORS.get(racer, "teal")                # a racer chapter 09 did not run
            ax.plot(x, shown, ls=ls, marker=".", color=color, label=f"{racer} ({model})")
            out = np.isfinite(share) & (shown != share)
            ax.plot(x[out], shown[out], "x", color=color, ms=8, mew=2)
        if train_bytes:
            for k in range(1, int(x[-1] // train_bytes) + 1):
                ax.axvline(k * train_bytes, color="k", ls=":", lw=1,
                           label="end of a pass over the training set" if k == 1 else None)
    ax.set_ylim(ylim[0] - 0.05, ylim[1] + 0.05)
    ax.axhline(1, color="k", lw=0.8)
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("training budget (UTF-8 bytes of text seen)")
    ax.set_ylabel("share of full training's gain kept")
    ax.set_title(f"gap closed between embeddings only (0) and full training (1)\n(budgets where "
                 f"full training is at least {MIN_GAIN} nats ahead; x: beyond the frame, drawn "
                 f"on its edge)", fontsize=10)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return save_figure(fig, path)


def runs_at(runs: list, spec, model: str, rate: str, steps: int | None = None) -> list:
    """The recorded full-budget runs (or runs of `steps` steps) of `spec` on `model` at a
    table's rate cell ('lr = 0.003', maybe marked ' (set at the full budget)'), from `runs` (a
    record's lines)."""
    field, value = rate.split(" (")[0].split(" = ")
    steps = steps or MODELS[model][1]
    return [r for r in runs if r["label"] == spec.label() and r["step"] == steps
            and r["config"]["gpt"]["tokenizer"] == ("bytes" if model == "bytes" else "gpt2")
            and abs(r["config"][field] / float(value) - 1) < 1e-2]


def committed_finding(results: Path) -> list[str]:
    """What the long race found, one line per model, read from its committed table and record
    in the folder `results` (chapters/results/): each model's budget, full training and
    embeddings only in bits per byte, and the share of full training's gain each reduced racer
    keeps. For the chapters whose conclusions rest on `tiny` or a short budget, so that they
    quote the long race without training, and without prose a re-run could leave behind."""
    table, record = results / "09_long_race.md", results / "09_long_race.jsonl"
    if not table.exists():
        return ["the long race (chapter 09) has no committed table yet: run it"]
    runs = Record(record).lines()          # names the file and line of a damaged record
    means, budget, lines = {}, {}, []
    for line in table.read_text().splitlines():
        if line.startswith("### "):               # '### bytes at 4,194,304 bytes, 3 seeds'
            model, budget[model], means[model] = line.split()[1], line.split(" at ")[1], {}
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        if line.startswith("| ") and cells[0] in RACERS:
            mine = runs_at(runs, RACERS[cells[0]], model, cells[1])
            means[model][cells[0]] = np.mean([r["final"]["bits_per_byte"] for r in mine])
    for model, m in means.items():
        E, F = m["embeddings only"], m["full"]
        kept = ", ".join(f"{r} {(E - m[r]) / (E - F):.0%}" for r in RACERS
                         if r not in ("full", "embeddings only"))
        lines.append(f"the long race, {model} at {budget[model]}: full training {F:.3f} bits "
                     f"per byte, embeddings only {E:.3f}; share of full training's gain kept: "
                     f"{kept}")
    return lines


def decisions_in_record(record) -> list[list[float]]:
    """The chapter's decisions replayed against its `record` (a runs.Record file) without
    training: for each call of the runner, in the chapter's order (tune, settle and race each
    model, then the bridges on the byte model), the recorded training seconds of the runs it
    trained (a run asked for again, as the race's seed 0 after settle, costs nothing). For
    `pool.wall_time`, to cost the chapter on any number of workers."""
    from ..experiments import runs, sweep
    lines = [json.loads(line) for line in Path(record).read_text().splitlines() if line.strip()]
    by_key = {r["key"]: r for r in lines}
    data_of = {r["config"]["gpt"]["tokenizer"]: r["data"] for r in lines}
    decisions, made = [], set()

    def replay(cfgs, **kwargs):
        keys = [runs.run_key(cfg, data_of[cfg.gpt.tokenizer]) for cfg in cfgs]
        decisions.append([by_key[k]["elapsed"] for k in dict.fromkeys(keys) if k not in made])
        made.update(keys)
        return [by_key[k] for k in keys]

    real = run_many
    globals()["run_many"] = sweep.run_many = replay
    try:
        plans = {model: LongRace(model) for model in MODELS}
        rates = {model: plan.tune(verbose=False) for model, plan in plans.items()}
        rates = {model: plan.settle(rates[model], verbose=False)[0]
                 for model, plan in plans.items()}
        for model, plan in plans.items():
            plan.race(rates[model], (0, 1, 2), verbose=False)
        plan = plans["bytes"]
        bridged = plan.settle(plan.tune(False, BRIDGES, rates["bytes"]), BRIDGES, False)[0]
        plan.race(bridged, (0, 1, 2), verbose=False, racers=BRIDGES)
    finally:
        globals()["run_many"] = sweep.run_many = real
    return decisions
