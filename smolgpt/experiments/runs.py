"""The experiment runner: every training run a chapter or command asks for, made once and kept.

A run is identified by its whole `TrainConfig` (model, method, seeds, schedule, budget; not where
it is written) and the checksums of the data it trains on, plus `RESULTS_VERSION`, which is
bumped whenever a code change alters what a run computes (a change in float32 rounding alone,
another BLAS kernel or a faster layer, is not one). The first request trains it into
`<runs root>/<run name>_seed<seed>_<key>/`; every later request for the same run, from any
chapter or command, reuses the finished folder and says so (one line for the seeds of a
configuration).
A run that was interrupted (Ctrl-C, a killed chapter) is resumed from its checkpoint on the next
request. `fresh=True`, or `SMOLGPT_FRESH=1` in the environment, trains again (and only then
does a run's line in a committed record change: a run made again keeps its recorded numbers).

    summary = run(cfg)                        # trains, or reuses a finished run
    summaries = run_seeds(cfg, seeds=(0, 1, 2))
    results = compare(specs, base, seeds=(0, 1, 2), out=..., title=...)

Scoring: the validation loss a run logs during training is on a few fixed windows (cheap, for
the curves). The *final* score of a run is its loss on `final_windows` evenly spaced held-out
windows, with that evaluation's own standard error (`smolgpt.evaluate`), computed once per run
and kept next to it.

The runs root is `$SMOLGPT_RUNS`, else `runs/` under the chapters' output root (`$SMOLGPT_OUT`,
else `out/`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import time
from pathlib import Path

from .. import data
from ..checkpoint import CheckpointError, is_checkpoint, load_params, weights_identity
from ..evaluate import evaluate_params, perplexity
from ..files import FolderInUse, RunLock, describe_file, refuse_strangers, write_atomic
from ..layers import blas_kernel
from ..methods import MethodSpec, build
from ..model import GPTConfig
from ..train import TrainConfig, train
from .chapter import chapter_record, requested_workers
from .figures import plot_val_curves
from .reference import unigram_loss
from .stats import mean_se

RESULTS_VERSION = 1          # bump when a code change alters what a run computes (not its rounding)
FINAL_WINDOWS = 256          # held-out windows of each run's final score (32,768 tokens on tiny)

# The chapters' quick mode (the tests run it): a 2-layer, 64-wide GPT-2 with the full vocabulary,
# a handful of steps of 4 x 64 tokens, evaluated on 8 held-out windows at the start, halfway and
# at the end.
QUICK_MODEL = GPTConfig(n_layer=2, n_head=2, n_embd=64, block_size=64)


def quick_config(steps: int, sample_tokens: int = 0) -> TrainConfig:
    """A TrainConfig small enough for a chapter's quick mode to train several models in seconds."""
    return TrainConfig(gpt=QUICK_MODEL, steps=steps, batch_size=4, warmup=2,
                       eval_every=max(1, steps // 2), eval_windows=8, sample_tokens=sample_tokens)


def run_name(spec: MethodSpec) -> str:
    """A folder name for a spec: 'fastfood_d=1000', 'basis_5-per-tensor', 'lora_r=4'."""
    return spec.label().replace(" ", "_").replace("/", "-per-")


def runs_root() -> Path:
    """Where finished runs are kept: $SMOLGPT_RUNS, else <$SMOLGPT_OUT or out>/runs."""
    if os.environ.get("SMOLGPT_RUNS"):
        return Path(os.environ["SMOLGPT_RUNS"]).expanduser()
    return Path(os.environ.get("SMOLGPT_OUT", "out")) / "runs"


def with_seed(cfg: TrainConfig, seed: int) -> TrainConfig:
    """cfg with seed `seed` for both the batch order and the method's random draws."""
    return dataclasses.replace(cfg, seed=seed, method=dataclasses.replace(cfg.method, seed=seed))


# TrainConfig fields that never change a run's numbers: where and how often things are written.
NOT_IN_KEY = ("out", "data_dir", "checkpoint_every", "keep_optimizer", "sample_tokens")


def _settings(obj) -> dict:
    """A config dataclass as a dict for the run key. A field whose metadata says `neutral` and
    whose value is its default is left out: such a default reproduces exactly what runs did
    before the field existed, so adding an option does not orphan every finished run."""
    out = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            out[f.name] = _settings(value)
        elif not (f.metadata.get("neutral") and value == f.default):
            out[f.name] = value
    return out


def run_key(cfg: TrainConfig, data_id: dict, source: str | None = None) -> str:
    """The identity of a run: its settings (not where it is written), its data, the version.

    coef_lr is left out when the method never reads it (full training, say), so that runs which
    differ only there are recognised as the same run; the other methods' own rates (scale_lr,
    vera_lr, nola_lr) are left out when at their defaults, like every `neutral` field. A run
    started from saved weights (`init_from`) names them by `checkpoint.weights_identity` (the run
    that made them, else their content), not by path; `source` gives that identity without the
    file (a record's line)."""
    used = {"lr", *build(cfg.method, cfg.gpt).lr_groups({}).values()}
    ignore = set(NOT_IN_KEY) | ({"coef_lr"} - used)
    settings = {k: v for k, v in _settings(cfg).items() if k not in ignore}
    if cfg.init_from:
        settings["init_from"] = source or weights_identity(cfg.init_from)
    blob = json.dumps({"version": RESULTS_VERSION, "config": settings, "data": data_id},
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _fresh_requested(fresh: bool | None) -> bool:
    if fresh is not None:
        return fresh
    return os.environ.get("SMOLGPT_FRESH", "").strip().lower() not in ("", "0", "false", "no")


def run(cfg: TrainConfig, *, final_windows: int = FINAL_WINDOWS, fresh: bool | None = None,
        verbose: bool = True, record: Path | None | bool = None,
        workers: int | None = None) -> dict:
    """Train `cfg` (or reuse the finished run) and score it; returns the run's summary.

    The summary is train()'s, plus: "dir" (the run folder), "reused" (True when nothing was
    trained now), "seed", "label", and "final": {"loss", "loss_se", "bits_per_byte", ...} on
    `final_windows` held-out windows.

    `record`: a JSON-lines file of finished runs' summaries, kept in the repository for runs
    that take hours (see `Record`); by default the running chapter's (chapter.chapter_record(),
    which is none in quick mode), and none with record=False.
    A run found there by its key is not trained again, even from a fresh clone with no run
    folders: "dir" is then None, and folder_of(summary) makes the folder if weights or logs are
    needed. A run trained now is added. A run the record holds keeps the record's numbers even
    when its folder is here too (made again for its weights, perhaps on another BLAS kernel).

    `workers`: see run_many; a run is trained by a worker of one BLAS thread unless it is 1.
    Reused runs are named in one line per configuration, not one line a run.
    """
    return run_many([cfg], final_windows=final_windows, fresh=fresh, verbose=verbose,
                    record=record, workers=workers)[0]


def run_many(cfgs, *, final_windows: int = FINAL_WINDOWS, fresh: bool | None = None,
             verbose: bool = True, record: Path | None | bool = None,
             workers: int | None = None) -> list[dict]:
    """run() of every config of one decision at once; the summaries in the order of `cfgs`.

    The runs to train go to `workers` processes at once (default: `--workers`, SMOLGPT_WORKERS,
    else one per core; the workers of `python -m mpi4py.futures` when run so), each with one
    BLAS thread (smolgpt.experiments.pool); fewer when their memory does not fit. Workers train
    and score; this process alone writes each run's summary and score into its folder as the run
    finishes, and adds the runs to the record in the order of `cfgs` once all have finished or
    stopped, so that the record's lines do not depend on which worker was first.
    """
    from . import pool
    record = chapter_record() if record is None else record
    book = Record(record) if record else None
    fresh = _fresh_requested(fresh)
    workers = requested_workers() if workers is None else workers
    out: list[dict | None] = [None] * len(cfgs)
    data_ids = [None] * len(cfgs)
    jobs, waiting = [], {}                  # one job per folder; the indices that wait for it
    for i, cfg in enumerate(cfgs):
        splits, data_id = _data(cfg)
        data_ids[i] = data_id
        key = run_key(cfg, data_id)
        folder = runs_root() / f"{run_name(cfg.method)}_seed{cfg.seed}_{key}"
        if str(folder) in waiting:
            waiting[str(folder)].append(i)
            continue
        done = folder / "summary.json"
        kept = book.get(key, final_windows) if book is not None and not fresh else None
        if kept is not None:
            # the record's numbers, and the folder when the run was made again for its weights
            # or log (folder_of): a run made again on another BLAS kernel rounds differently,
            # and the record, not the last machine, is what a chapter reports
            out[i] = {**kept, "config": cfg.to_dict(),                # all of it, for folder_of
                      "dir": str(folder) if done.exists() else None}
            continue
        if fresh and folder.exists():
            _clear(folder)
        if done.exists():
            out[i] = _reused(cfg, folder, splits["val"], final_windows)
            continue
        waiting[str(folder)] = [i]
        jobs.append((cfg, str(folder), key, final_windows, verbose))

    def finished(j: int, summary: dict | None) -> str | None:
        cfg, folder, *_ = jobs[j]
        folder = Path(folder)
        if summary is None:                 # made meanwhile by another process: reuse it
            summary = _reused(cfg, folder, _data(cfg)[0]["val"], final_windows)
        else:
            final = summary.pop("final")
            write_atomic(folder / "summary.json", lambda f: f.write(json.dumps(summary).encode()))
            write_atomic(folder / f"final_{final_windows}w.json",
                         lambda f: f.write(json.dumps(final).encode()))
            summary.update(dir=str(folder), final=final)
        for i in waiting[str(folder)]:
            out[i] = dict(summary)
        if summary["reused"]:
            return reused_line([{**summary, "seed": cfg.seed}], record)
        return (f"  {summary['label']:<28} seed {cfg.seed}  {summary['n_trainable']:>9,} "
                f"non-embedding trainable: final loss {summary['final']['loss']:.4f} +- "
                f"{summary['final']['loss_se']:.4f}  ({summary['elapsed']:.0f} s)")

    if verbose:                             # one line per configuration reused
        by_label: dict[str, list] = {}
        for cfg, summary in zip(cfgs, out):
            if summary is not None:
                by_label.setdefault(summary["label"], []).append({**summary, "seed": cfg.seed})
        for group in by_label.values():
            print(reused_line(group, record))
    try:
        if jobs and workers > 1 and not pool.mpi_workers():
            workers = _workers_that_fit([cfg for cfg, *_ in jobs], workers, verbose)
        pool.train_all(_make, jobs, [f"{c.method.label()}, seed {c.seed}" for c, *_ in jobs],
                       finished, workers, locks=[Path(j[1]) / ".lock" for j in jobs],
                       verbose=verbose)
    finally:                # what finished is recorded even when others failed or were stopped
        if book is not None:
            for cfg, summary, data_id in zip(cfgs, out, data_ids):
                if summary is not None and summary.get("dir") is not None:
                    book.add(summary, cfg, final_windows, data_id, replace=fresh)
    return out


def _data(cfg: TrainConfig) -> tuple[dict, dict]:
    """(the splits cfg trains and scores on, their checksums {split: sha256})."""
    splits, manifest = data.load_splits(cfg.data_dir, cfg.gpt.tokenizer)
    return splits, {s: manifest["splits"][s]["sha256"] for s in data.SPLITS}


def _make(cfg: TrainConfig, folder: str, key: str, final_windows: int,
          verbose: bool) -> dict | None:
    """Train the run into `folder` and score it, writing only what train() writes there (its
    log and checkpoint); run by a worker, or in the calling process. Returns its summary with
    "final", or None when another process made the run meanwhile."""
    from .pool import RunStopped
    folder = Path(folder)
    summary = _train_or_wait(cfg, folder, folder / "summary.json", verbose)
    if summary is None:
        return None
    if summary["interrupted"]:
        # stopped by Ctrl-C, SIGTERM or SIGHUP: its checkpoint is kept and the next request
        # resumes it; keeping (or recording) it as finished would reuse a half-trained run
        raise RunStopped(f"{folder.name} stopped at step {summary['step']} of {cfg.steps}; "
                         f"asking for it again resumes it")
    summary.update(label=cfg.method.label(), seed=cfg.seed, key=key, reused=False,
                   blas=blas_kernel())
    summary["final"] = score(folder, cfg, _data(cfg)[0]["val"], final_windows)
    return summary


def _reused(cfg: TrainConfig, folder: Path, val_tokens, final_windows: int) -> dict:
    """The summary of the finished run in `folder`, scored on `final_windows` windows."""
    summary = _read_record(folder / "summary.json", ("label", "elapsed", "n_trainable"))
    summary["reused"] = True
    summary["dir"] = str(folder)
    summary["final"] = final_score(folder, cfg, val_tokens, final_windows)
    return summary


def _workers_that_fit(cfgs, workers: int, verbose: bool) -> int:
    """`workers`, or fewer when that many of the largest of these runs do not fit in memory."""
    from .. import memory
    need = max(memory.estimate_training_bytes(c.gpt, c.batch_size, build(c.method, c.gpt))
               ["total"] for c in cfgs)
    fit = memory.workers_that_fit(need, workers, memory.available_bytes())
    if fit < workers and verbose:
        print(f"memory: {workers} workers would need {memory.human(workers * need)} (up to "
              f"{memory.human(need)} each) and {memory.human(memory.available_bytes())} is "
              f"available: using {fit}")
    return fit


def folder_of(summary: dict) -> Path:
    """The folder of a run `run()` returned, made now if the run came from a record (whose lines
    keep no weights and no full log): a chapter that reads a run's checkpoint or log asks here."""
    if summary.get("dir") is not None:
        return Path(summary["dir"])
    cfg = TrainConfig.from_dict(summary["config"])
    return Path(run(cfg, final_windows=summary["final_windows"], record=False,
                    verbose=False)["dir"])


def _train_or_wait(cfg: TrainConfig, folder: Path, done: Path, verbose: bool,
                   poll: float = 5.0, grace: float = 15.0) -> dict | None:
    """Train the run, or, while another process is making the very same run (two chapters
    started at once), wait for it and return None: the caller then reuses what it made."""
    said = False
    while True:
        try:
            with RunLock(folder, note=False):        # only a probe: train() takes it again
                pass
        except FolderInUse:
            if verbose and not said:
                print(f"  waiting: {folder.name} is being made by another process; it will be "
                      f"reused when it is finished")
                said = True
            time.sleep(poll)
            continue
        # free, with a checkpoint but no summary: either an interrupted run, or one whose maker
        # has just released the folder and is writing its summary; give the latter a moment
        waited = 0.0
        while (folder / "checkpoint.npz").exists() and not done.exists() and waited < grace:
            time.sleep(1.0)
            waited += 1.0
        if done.exists():
            return None
        try:
            return _train_into(cfg, folder)
        except FolderInUse:                          # taken between the probe and train()
            continue


def _train_into(cfg: TrainConfig, folder: Path) -> dict:
    """Train into `folder`, resuming an interrupted attempt when its checkpoint is usable."""
    ckpt = folder / "checkpoint.npz"
    # A finished run is never resumed (a longer run is another run), so its last checkpoint
    # keeps the weights only: a third of the size for full training.
    cfg = dataclasses.replace(cfg, out=str(folder), sample_tokens=0, keep_optimizer=False)
    if ckpt.exists() and (finished := _finished_in_log(folder, cfg)) is not None:
        return finished         # trained, but stopped before its summary was written
    if ckpt.exists():
        try:
            return train(cfg, resume=ckpt, progress=False, verbose=False)
        except CheckpointError as e:         # checkpoints are written atomically: not ours
            raise CheckpointError(f"{e} (in the runner's folder {folder}: delete that folder to "
                                  f"make the run again)") from None
    # a fresh start truncates the log and later writes the others: only files an earlier
    # attempt of this run left may be there
    refuse_strangers(_run_files(folder) if folder.is_dir() else [], _is_run_file,
                     force_hint=f"delete the folder {folder} to make the run again")
    return train(cfg, progress=False, verbose=False)


def _finished_in_log(folder: Path, cfg: TrainConfig) -> dict | None:
    """train()'s closing summary of a run that finished in `folder` (the last line of its log),
    or None. The summary is written by the runner after the run is scored; a process stopped
    in between leaves a finished run whose weights-only checkpoint cannot be resumed."""
    try:
        with open(folder / "log.jsonl", "rb") as f:
            last = json.loads(f.readlines()[-1])
    except (OSError, ValueError, IndexError):
        return None
    if isinstance(last, dict) and last.get("event") == "end" and last.get("step") == cfg.steps:
        return last
    return None


# What the runner and train() write in a run's folder (besides the lock), and how each is known
# as smolgpt's: SMOLGPT_FRESH deletes these and only these, and only when they are smolgpt's.
def _is_run_file(path: Path) -> bool:
    if path.name == "checkpoint.npz":
        return is_checkpoint(path)
    if path.name == "log.jsonl":               # train's first record says how the run began
        with open(path, "rb") as f:
            first = json.loads(f.readline())
        return isinstance(first, dict) and first.get("event") in ("start", "resume")
    if path.name == "sample.txt":              # train writes it at a run's end, beside one
        return is_checkpoint(path.parent / "checkpoint.npz")
    return isinstance(json.loads(path.read_bytes()), dict)     # summary.json, final_<n>w.json


def _run_files(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.name in ("checkpoint.npz", "log.jsonl",
            "sample.txt", "summary.json") or (p.name.startswith("final_") and
                                               p.name.endswith("w.json"))]


def _clear(folder: Path) -> None:
    """Delete a run's files from its folder to make it again, refusing (files.WouldReplace)
    when one of them is not smolgpt's; anything else in the folder is left alone."""
    files = _run_files(folder)
    refuse_strangers(files, _is_run_file,
                     force_hint=f"delete the folder {folder} to make the run again")
    for p in files:
        p.unlink()


def _read_record(path: Path, keys) -> dict:
    """A JSON record the runner wrote (summary.json, final_<n>w.json), or a one-line error."""
    try:
        record = json.loads(path.read_bytes())
    except ValueError:
        record = None
    if not isinstance(record, dict) or not all(k in record for k in keys):
        raise ValueError(f"{path} is not a record smolgpt's runner wrote ({describe_file(path)}, "
                         f"expected a JSON object with {', '.join(keys)}): delete the folder "
                         f"{path.parent} to make the run again")
    return record


def final_score(folder: Path, cfg: TrainConfig, val_tokens, windows: int) -> dict:
    """Held-out loss of the run in `folder` on `windows` evenly spaced windows, kept on disk."""
    path = Path(folder) / f"final_{windows}w.json"
    if path.exists():
        return _read_record(path, ("loss", "loss_se"))
    result = score(folder, cfg, val_tokens, windows)
    write_atomic(path, lambda f: f.write(json.dumps(result).encode()))
    return result


def score(folder: Path, cfg: TrainConfig, val_tokens, windows: int) -> dict:
    """Held-out loss of the run in `folder` on `windows` evenly spaced windows (not kept)."""
    params, gpt, _ = load_params(Path(folder) / "checkpoint.npz")
    return evaluate_params(params, gpt, val_tokens, batch_size=cfg.batch_size,
                           max_windows=windows)


class Record:
    """Finished runs kept as small JSON lines (summary, validation curve, final score, config;
    never weights), keyed as the runner keys runs. Runs that take hours outlive the machine
    that made them: committed with a chapter, they let its tables and figures rebuild from a
    fresh clone in seconds, and a later session carry on where an earlier one stopped."""

    def __init__(self, path):
        self.path = Path(path)

    # What every line holds (Record.add writes these), so that a reader may rely on them.
    FIELDS = {"key": str, "label": str, "seed": int, "n_trainable": int, "step": int,
              "tokens": int, "elapsed": (int, float), "val_curve": list, "final": dict,
              "final_windows": int, "config": dict}

    def lines(self) -> list[dict]:
        """Every run record in the file, in its order: the one reader of a record, for the
        runner and for any chapter that reads one. A line cut short, not JSON, or lacking a
        field raises ValueError naming the file and the line."""
        if not self.path.exists():
            return []
        try:
            text = self.path.read_text(encoding="utf-8")
        except UnicodeDecodeError as e:
            line = self.path.read_bytes()[:e.start].count(b"\n") + 1
            raise ValueError(f"{self.path} line {line} is not UTF-8 text; restore the file from "
                             f"the repository or remove that line") from None
        out = []
        for i, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                why = None if isinstance(rec, dict) else f"a JSON {type(rec).__name__}"
            except (ValueError, RecursionError) as e:
                rec, why = None, f"not JSON, cut short or corrupt: {e}"
            if why is None:
                wrong = [k for k, kind in self.FIELDS.items() if not isinstance(rec.get(k), kind)
                         or isinstance(rec.get(k), bool)]
                why = f"no valid {wrong[0]!r}" if wrong else None
            if why is not None:
                raise ValueError(f"{self.path} line {i} is not a run record ({why}); restore "
                                 f"the file from the repository or remove that line")
            out.append(rec)
        return out

    def runs(self) -> dict[str, dict]:
        """{key: record} of every line in the file (a later line for a key wins)."""
        return {rec["key"]: rec for rec in self.lines()}

    def get(self, key: str, final_windows: int) -> dict | None:
        rec = self.runs().get(key)
        if rec is None or rec.get("final_windows") != final_windows:
            return None
        return {**rec, "reused": True, "dir": None, "from_record": True}

    def add(self, summary: dict, cfg: TrainConfig, final_windows: int, data_id: dict,
            replace: bool = False) -> None:
        """Record a finished run. A run the record holds already keeps its line unless
        `replace` (SMOLGPT_FRESH): made again, on another machine or BLAS kernel, it rounds
        differently, and a committed line must not follow whichever machine ran last."""
        keep = ("label", "seed", "key", "n_trainable", "step", "tokens", "elapsed", "val_loss",
                "val_curve", "final")
        rec = {k: summary[k] for k in keep}
        runs = self.runs()
        if summary["key"] in runs and not replace:
            return
        # the BLAS kernel that trained it, which its folder's summary names (a folder made
        # before summaries did cannot say)
        rec.update(final_windows=final_windows, config=cfg.to_dict(), data=data_id,
                   blas=summary.get("blas") or "unknown")
        for k in ("out", "data_dir"):                  # where it ran, not what it is
            rec["config"].pop(k, None)
        if runs.get(rec["key"]) == json.loads(json.dumps(rec)):
            return                  # reused from its folder and recorded already: no churn
        runs[rec["key"]] = rec      # a run recorded again keeps its line's place
        text = "\n".join(json.dumps(r) for r in runs.values()) + "\n"
        write_atomic(self.path, lambda f: f.write(text.encode()))


def run_seeds(cfg: TrainConfig, seeds, **kwargs) -> list[dict]:
    """The same configuration over several seeds (batch order and method draws), at once."""
    return run_many([with_seed(cfg, s) for s in seeds], **kwargs)


def reused_line(summaries: list[dict], record) -> str:
    """'  reusing full, seeds 0, 1, 2 (from chapters/results/01_x.jsonl; trained in 28-29 s)':
    one line for the runs of one configuration that were not trained now. A run came from
    `record` when the record gave its numbers (its folder, if any, made again for its weights),
    else from its folder under the runs root."""
    label, seeds = summaries[0]["label"], [str(s["seed"]) for s in summaries]
    n_kept = sum(bool(s.get("from_record")) for s in summaries)
    where = []
    if n_kept:
        where.append(f"{n_kept} from {shown(record)}" if n_kept < len(summaries) else
                     f"from {shown(record)}")
    if n_kept < len(summaries):
        where.append(f"{len(summaries) - n_kept} from their folders in {shown(runs_root())}"
                     if n_kept else f"from their folders in {shown(runs_root())}")
    took = sorted(round(s["elapsed"]) for s in summaries)
    took = f"{took[0]} s" if took[0] == took[-1] else f"{took[0]}-{took[-1]} s"
    return (f"  reusing {label}, seed{'s' if len(seeds) > 1 else ''} {', '.join(seeds)} "
            f"({'; '.join(where)}; trained in {took})")


def shown(path) -> str:
    """`path` as a page may print it, never an absolute path of the machine that built the page:
    relative to the current folder or to the repository (chapters/results/...) when under
    either, else named by the variable that put it there ($SMOLGPT_RUNS, $SMOLGPT_OUT/...)."""
    path = Path(path)
    for root in (Path.cwd(), Path(__file__).resolve().parents[2]):
        if path.resolve().is_relative_to(root.resolve()):
            return str(path.resolve().relative_to(root.resolve()))
    if not path.is_absolute():
        return str(path)
    for var in ("SMOLGPT_RUNS", "SMOLGPT_OUT"):
        root = os.environ.get(var)
        if root and path.is_relative_to(Path(root).expanduser()):
            return str(Path(f"${var}") / path.relative_to(Path(root).expanduser()))
    return path.name


def compare(specs, base: TrainConfig, out: Path | None = None, title: str | None = None,
            seeds=(0,), verbose: bool = True, **kwargs) -> dict:
    """Every spec on the same base config and seeds; see compare_configs."""
    return compare_configs([dataclasses.replace(base, method=spec) for spec in specs], out,
                           title, seeds, verbose, **kwargs)


def compare_configs(configs, out: Path | None = None, title: str | None = None, seeds=(0,),
                    verbose: bool = True, references=None, **kwargs) -> dict:
    """Every config over the same seeds; returns {run name: result}.

    A result is {"label", "n_trainable", "config", "runs": [summary per seed], "final": [final
    loss per seed], "mean", "se"}. Seed s gives every config the same batches when they share
    the batch size and block size (paired comparisons). With a title and out, the validation
    curves are drawn to out/val_curves.png, with `references` [(label, loss)] as lines (by
    default the context-free unigram line of the first config's data, also printed). The
    curves are the cheap periodic validation (cfg.eval_windows windows); "final" is each run's
    score on the runner's many more final windows, so the two differ by that evaluation's
    sampling error.
    """
    seeds = tuple(seeds)
    if verbose and configs:
        c = configs[0]
        print(f"{len(configs)} configurations x {len(seeds)} seed(s), {c.steps} steps of "
              f"{c.tokens_per_step:,} tokens each (finished runs are reused from "
              f"{shown(runs_root())}):")
    if references is None and configs:
        references = [context_free_reference(configs[0])]
        if verbose:
            print(f"  context-free reference: {references[0][0]} {references[0][1]:.3f} "
                  f"(held-out loss of the training split's unigram, add-one smoothing)")
    results = {}
    every = run_many([with_seed(cfg, s) for cfg in configs for s in seeds], verbose=verbose,
                     **kwargs)                                  # every run at once
    for n, cfg in enumerate(configs):
        runs = every[n * len(seeds):(n + 1) * len(seeds)]
        final = [r["final"]["loss"] for r in runs]
        mean, se = mean_se(final)
        results[run_name(cfg.method)] = {"label": cfg.method.label(), "config": cfg,
                                         "n_trainable": runs[0]["n_trainable"], "runs": runs,
                                         "final": final, "mean": mean, "se": se}
    if title is not None and out is not None:
        plot_val_curves({r["label"]: [_curve(s) for s in r["runs"]] for r in results.values()},
                        Path(out) / "val_curves.png", title=title, references=references)
    return results


def _curve(summary: dict):
    """A run's validation curve for plot_val_curves: its log, or the record's copy of it."""
    if summary.get("dir") is not None:
        return Path(summary["dir"]) / "log.jsonl"
    return {"label": summary["label"], "n_trainable": summary["n_trainable"],
            "evals": [(tokens, loss) for _, tokens, loss in summary["val_curve"]]}


def context_free_reference(cfg: TrainConfig) -> tuple[str, float]:
    """("unigram (context-free)", its held-out loss) for the data `cfg` trains on."""
    splits, _ = data.load_splits(cfg.data_dir, cfg.gpt.tokenizer)
    return "unigram (context-free)", unigram_loss(splits["train"], splits["val"],
                                                  cfg.gpt.vocab_size)


def markdown_table(results: dict) -> str:
    """method | trainable params | final held-out loss (mean +- s.e. over seeds) | seeds."""
    rows = ["| method | trainable non-embedding params | final held-out loss | perplexity | "
            "seeds |", "|---|---:|---:|---:|---:|"]
    for r in sorted(results.values(), key=lambda r: r["mean"]):
        err = "" if math.isnan(r["se"]) else f" +- {r['se']:.3f}"
        rows.append(f"| {r['label']} | {r['n_trainable']:,} | {r['mean']:.3f}{err} | "
                    f"{perplexity(r['mean']) or math.inf:,.0f} | {len(r['final'])} |")
    return "\n".join(rows)
