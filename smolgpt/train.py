"""The training loop: any parameterization, C4 batches, AdamW, logs, checkpoints, resume.

One step is the chain rule through the method's map (see `smolgpt.methods`):

    params = method.params(trainables)                       # a -> theta
    loss, grads = loss_and_grads(params, x, y, gpt)          # dL/dtheta
    tgrads = method.pullback(trainables, grads)              # dL/da = (dtheta/da)^T dL/dtheta
    clip, then AdamW on the trainables

`train()` below is that step in a loop, evaluation every `eval_every` steps and a checkpoint every
`checkpoint_every`; everything else (starting or resuming, the log, saving, Ctrl-C, the progress
bar, the closing summary) is a helper further down.

A run folder holds `log.jsonl` (one JSON record per line, flushed as written, so a killed run
keeps its log), `checkpoint.npz` (the latest, written atomically) and `sample.txt`. While a run
goes it also holds `.lock` (`files.RunLock`), from before it writes anything until it returns,
so a second run on the same folder is refused instead of interleaving the log. Before anything
is allocated, the memory a step needs is estimated (`smolgpt.memory`), printed, and a run that
cannot fit in the memory available is refused.
A run is reproducible: the same config and seed give the same losses bit for bit on the same
machine, and a run resumed from a checkpoint continues exactly as if it had never stopped.
Under `mpiexec -n N` (smolgpt/distributed.py) N processes train one model on shares of each
global batch, summing their gradients; rank 0 alone evaluates and writes the run folder.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import shlex
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import checkpoint as ckpt
from . import data, distributed, memory
from .files import CannotWrite, RunLock, sha256_of, write_atomic
from .methods import MethodSpec, build
from .model import EMBEDDING_NAMES, GPTConfig, loss_and_grads, loss_only
from .optim import AdamWConfig, adamw_init, adamw_step, clip_grad_norm, first_nonfinite, lr_at

# TrainConfig fields a resumed run may change: where things go, how often they are written, and
# `steps` (to extend a run; the cosine schedule is then stretched, and the resume says so).
RESUME_MAY_CHANGE = frozenset({"out", "data_dir", "eval_every", "eval_log", "checkpoint_every",
                               "sample_tokens", "steps", "keep_optimizer"})
MAX_SEED = 2**32 - 1


class NotEnoughMemory(ValueError):
    """A step's estimated peak memory exceeds what the machine has available."""


class TrainingDiverged(RuntimeError):
    """Loss or gradients became NaN or infinite; the message names the step and what."""


def _opt(help: str, group: str = "optimisation", **extra):
    """Field metadata read by the command line (smolgpt/cli.py): one help text, one default."""
    return dict(help=help, group=group, **extra)


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a run. Defaults: a few minutes of `tiny` on a 2-core CPU.

    Each field's help text is what `smolgpt train --help` prints next to its flag.
    """

    gpt: GPTConfig = field(default_factory=lambda: GPTConfig.preset("tiny"))
    method: MethodSpec = field(default_factory=MethodSpec)
    steps: int = field(default=200, metadata=_opt(
        "optimizer steps; tokens seen = steps x batch size x block size"))
    batch_size: int = field(default=16, metadata=_opt("sequences per step"))
    lr: float = field(default=1e-3, metadata=_opt(
        "peak learning rate of arrays trained directly (weights, embeddings, LoRA factors)"))
    coef_lr: float = field(default=0.3, metadata=_opt(
        "peak learning rate of subspace coefficients, and of the knob methods' knobs (norms, "
        "gains, biases, heads)"))
    scale_lr: float = field(default=0.03, metadata=_opt(
        "peak learning rate of SAID's per-tensor scales (they start at 1)", neutral=True))
    vera_lr: float = field(default=0.1, metadata=_opt(
        "peak learning rate of VeRA's vectors d and b", neutral=True))
    nola_lr: float = field(default=3e-2, metadata=_opt(
        "peak learning rate of NOLA's coefficients alpha and beta", neutral=True))
    init_from: str | None = field(default=None, metadata=_opt(
        "start from a saved model's weights (a smolgpt checkpoint of any method, or one made by "
        "smolgpt import) instead of a random init: full trains them, embeddings, lora, vera and "
        "nola freeze them, the knob methods (norms, gains, biases, heads; or a subspace of "
        "knobs, --coverage norms ...) freeze them and move the knobs from there, the other "
        "subspace methods and said use them as theta_0 (offset form and --coverage all only). "
        "The model flags must match it; left out, they are taken from it", "parameterization",
        neutral=True))
    warmup: int = field(default=20, metadata=_opt("linear warmup steps"))
    min_lr_ratio: float = field(default=0.1, metadata=_opt(
        "the cosine schedule decays to this fraction of the peak"))
    weight_decay: float = field(default=0.1, metadata=_opt(
        "AdamW decoupled weight decay of the weight matrices; only full training has any "
        "(embeddings, biases, LayerNorm, coefficients and LoRA factors are not decayed)"))
    grad_clip: float = field(default=1.0, metadata=_opt(
        "clip the global gradient norm to this; 0 disables"))
    seed: int = field(default=0, metadata=_opt("seed of the batch order"))
    eval_every: int = field(default=50, metadata=_opt(
        "validation loss every N steps (and at the last)", "evaluation and output"))
    eval_log: bool = field(default=False, metadata=_opt(
        "also evaluate at every power-of-two step (1, 2, 4, ...), so that one run gives the "
        "validation loss at log-spaced budgets", "evaluation and output", neutral=True))
    eval_windows: int = field(default=64, metadata=_opt(
        "fixed held-out windows in the validation loss", "evaluation and output"))
    checkpoint_every: int = field(default=100, metadata=_opt(
        "save a checkpoint every N steps (also at the end, and on Ctrl-C, SIGTERM or SIGHUP)",
        "evaluation and output"))
    out: str = field(default="runs/run", metadata=_opt(
        "run folder for log.jsonl, checkpoint.npz and sample.txt", "evaluation and output",
        shown="runs/<method label>, e.g. runs/fastfood_d=1000"))
    data_dir: str | None = field(default=None, metadata=_opt(
        "folder of the prepared token files (default $SMOLGPT_DATA_DIR, else data/ of the "
        "checkout, or ./data outside one; a byte model's tokens are in its bytes/ subfolder)",
        "evaluation and output"))
    sample_tokens: int = field(default=40, metadata=_opt(
        "tokens of text generated at the end; 0 for none", "evaluation and output"))
    keep_optimizer: bool = field(default=True, metadata=_opt(
        "the finished run's checkpoint keeps the weights only, without Adam's two moments (a "
        "third of the size for full training); it can be sampled, evaluated and exported, but "
        "not resumed to train further", "evaluation and output", flag="final-weights-only"))

    def __post_init__(self):
        def bad(name, rule, v, flag=None):
            flag = flag or "--" + name.replace("_", "-")
            return ValueError(f"{name} must be {rule}, got {v!r}: fix {flag}")

        def number(v):
            return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)

        for name in ("steps", "batch_size", "eval_every", "eval_windows", "checkpoint_every"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
                raise bad(name, "a positive integer", v)
        for name in ("lr", "coef_lr", "scale_lr", "vera_lr", "nola_lr"):
            v = getattr(self, name)
            if not (number(v) and math.isfinite(v) and v > 0):
                raise bad(name, "a positive finite number", v)
        if not isinstance(self.warmup, (int, np.integer)) or self.warmup < 0:
            raise bad("warmup", ">= 0", self.warmup)
        for name in ("weight_decay", "grad_clip"):
            v = getattr(self, name)
            if not (number(v) and math.isfinite(v) and v >= 0):
                raise bad(name, "a finite number >= 0", v)
        if not (number(self.min_lr_ratio) and 0 <= self.min_lr_ratio <= 1):
            raise bad("min_lr_ratio", "between 0 and 1", self.min_lr_ratio)
        if self.init_from is not None and not (isinstance(self.init_from, str) and self.init_from):
            raise bad("init_from", "the path of a checkpoint", self.init_from)
        if not isinstance(self.sample_tokens, (int, np.integer)) or self.sample_tokens < 0:
            raise bad("sample_tokens", "an integer >= 0 (0 for no sample)", self.sample_tokens)
        # numpy's own complaint about a negative seed names neither the seed nor the flag
        for name, v, flag in (("seed", self.seed, "--seed"),
                              ("method seed (--method-seed)", self.method.seed, "--method-seed")):
            if not isinstance(v, (int, np.integer)) or v < 0:
                raise bad(name, "an integer >= 0", v, flag)
            if v > MAX_SEED:
                raise bad(name, f"at most 2**32 - 1 = {MAX_SEED}", v, flag)

    @property
    def tokens_per_step(self) -> int:
        return self.batch_size * self.gpt.block_size

    def evaluates_at(self, step: int) -> bool:
        """Whether the loop measures the validation loss after `step`: every eval_every steps,
        at the last, and with eval_log at each power of two."""
        return (step % self.eval_every == 0 or step == self.steps
                or (self.eval_log and step & (step - 1) == 0))

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["gpt"] = self.gpt.to_dict()
        d["method"] = self.method.to_dict()
        return d

    @staticmethod
    def of_checkpoint(meta: dict, path) -> "TrainConfig":
        """The TrainConfig a checkpoint's metadata records, or CheckpointError naming the file."""
        try:
            return TrainConfig.from_dict(meta["train"])
        except (TypeError, ValueError, KeyError) as e:
            raise ckpt.CheckpointError(
                f"checkpoint {path} has a bad metadata field 'train' "
                f"({str(e).splitlines()[0] if str(e) else type(e).__name__}): it was edited or "
                f"not written by smolgpt; use an earlier checkpoint or start a new run") from None

    @staticmethod
    def from_dict(d: dict) -> "TrainConfig":
        d = dict(d)
        if "model" in d:                          # checkpoints written before the rename
            d["gpt"] = d.pop("model")
        d["gpt"] = GPTConfig(**d["gpt"])
        d["method"] = MethodSpec(**d["method"])
        return TrainConfig(**d)


def run_settings(resume=None, *, preset: str | None = None, gpt: dict | None = None,
                 method: dict | None = None, **changes) -> TrainConfig:
    """The settings of a run, merged here alone: a resumed run's own (from its checkpoint
    `resume`), else the defaults; a new run started from a saved model (`init_from`) takes that
    model's sizes; then on top what is given: a GPTConfig preset, GPTConfig fields (`gpt`),
    MethodSpec fields (`method`) and TrainConfig fields (`changes`). train() then checks the
    result against the checkpoints it reads (a resumed run must keep its model and method)."""
    base = TrainConfig.of_checkpoint(ckpt.load(resume).meta, resume) if resume else TrainConfig()
    if changes.get("init_from"):
        # absolute, since the run's frozen weights are read from there later; a new run's model
        # is the starting checkpoint's unless flags change it (a mismatch is refused at start)
        changes["init_from"] = str(Path(changes["init_from"]).expanduser().resolve())
        if not resume:
            base = dataclasses.replace(base, gpt=ckpt.load(changes["init_from"]).model)
    model = dataclasses.replace(GPTConfig.preset(preset) if preset else base.gpt, **(gpt or {}))
    spec = MethodSpec(**{**base.method.to_dict(), **(method or {})})
    return dataclasses.replace(base, gpt=model, method=spec, **changes)


# ----------------------------------------------------------------------------------------------
# The loop


def train(cfg: TrainConfig, resume: str | Path | None = None, stop_at: int | None = None,
          progress: bool = True, verbose: bool = True) -> dict:
    """Run (or continue) training; returns a summary dict (also the last line of the log).

    resume: a checkpoint path to continue from; its model and method must match cfg. The run
        continues in cfg.out (the command line sets that to the checkpoint's own folder).
    stop_at: stop after this step as Ctrl-C would (checkpoint saved), for tests and demos.
    Ctrl-C, SIGTERM or SIGHUP during training saves a checkpoint at the step reached and returns
    with summary["interrupted"] = True and summary["signal"] its name.
    Raises TrainingDiverged if the loss, a gradient or the validation loss stops being finite;
    files.FolderInUse if another run holds cfg.out; NotEnoughMemory if a step cannot fit.
    Under mpiexec every rank calls train() with the same cfg (smolgpt.distributed): cfg.batch_size
    is the global batch, each rank trains on its share, rank 0 alone writes cfg.out, and every
    rank returns rank 0's summary. An exception on one rank leaves the others waiting: end the
    job then, as the command line does (`distributed.abort_all`), or run the script with
    `python -m mpi4py`.
    """
    with _Run.open(cfg, resume, verbose) as run:        # holds cfg.out's lock until it returns
        s, world = run.state, run.world          # under MPI: rank 0 alone evaluates and writes
        with stop_signals() as stop, _progress_bar(cfg, s.step, progress and world.lead) as bar:
            stopping = world.any(stop.is_set())
            while s.step < cfg.steps and not stopping:
                t0 = time.perf_counter()
                x, y = data.get_batch(run.train_tokens, cfg.batch_size, cfg.gpt.block_size, s.rng)
                lr = lr_at(s.step, cfg.lr, cfg.warmup, cfg.steps, cfg.min_lr_ratio)
                # this rank's rows of the global batch; the gradient is summed over ranks inside
                loss, gnorm = run.train_step(*world.rows(x, y), lr)   # params -> grads -> AdamW
                s.step += 1
                # a signal reaches MPI ranks at different moments: every rank acts on one answer
                stopping = world.any(stop.is_set() or s.step == stop_at)
                dt = time.perf_counter() - t0
                s.elapsed += dt
                run.log.write(event="step", step=s.step, tokens=s.step * cfg.tokens_per_step,
                              loss=loss, lr=lr, grad_norm=gnorm,
                              tok_per_s=cfg.tokens_per_step / dt,
                              allreduce_bytes=world.step_bytes,      # 0 in one process
                              **run.method.log_values(s.trainables))
                bar.show(loss, cfg.tokens_per_step / dt)
                if world.lead and cfg.evaluates_at(s.step):
                    bar.say(f"step {s.step}: val loss {run.evaluate():.4f}")
                if world.lead and (s.step % cfg.checkpoint_every == 0 or s.step == cfg.steps
                                   or stopping):
                    run.save()
        return world.bcast(run.finish(interrupted=stopping, signal_name=stop.name)
                           if world.lead else None)


# ----------------------------------------------------------------------------------------------
# What the loop calls: a run's state, its files, Ctrl-C and the progress bar


@dataclass
class RunState:
    """What changes as a run goes and is saved in its checkpoint."""

    trainables: dict
    adam: dict
    rng: np.random.Generator                 # the batch order
    lr_scale: dict                           # {trainable key: its peak rate / cfg.lr}
    step: int = 0
    elapsed: float = 0.0                     # seconds spent in training steps
    curve: list = field(default_factory=list)     # [(step, tokens, val loss)]


class RunLog:
    """A JSON-lines log, each record flushed at once (a killed run keeps every line written).
    A write the system refuses (disk full, file-size limit) is CannotWrite naming the log."""

    def __init__(self, path: Path, append: bool):
        self.path = path
        try:
            self.f = open(path, "a" if append else "w", buffering=1)
            if append and self.f.tell() > 0:     # a line cut short (a full disk) stays one line
                with open(path, "rb") as f:
                    f.seek(-1, os.SEEK_END)
                    if f.read(1) != b"\n":
                        self.f.write("\n")
        except OSError as e:
            raise CannotWrite(path, e) from e

    def write(self, **record):
        try:
            self.f.write(json.dumps(record) + "\n")
            self.f.flush()
        except OSError as e:
            raise CannotWrite(self.path, e) from e

    def close(self):
        with contextlib.suppress(OSError):   # a line a full disk refused was already reported
            self.f.close()


@dataclass
class _Run:
    """One run's fixed pieces (config, method, data, files) and its RunState."""

    cfg: TrainConfig
    method: object
    state: RunState
    train_tokens: np.ndarray
    val: tuple                               # (x, y) fixed held-out windows
    meta: dict                               # what every checkpoint of this run records
    log: RunLog
    verbose: bool
    good: tuple[Path, int] | None = None     # this run's last good checkpoint and its step (the
                                             # one it resumed from, then each it saves)
    world: distributed.World = field(default_factory=distributed.world)   # MPI rank and size

    @property
    def ckpt_path(self) -> Path:
        return Path(self.cfg.out) / "checkpoint.npz"

    @classmethod
    @contextlib.contextmanager
    def open(cls, cfg: TrainConfig, resume, verbose: bool):
        """Lock the run folder, then `_start` the run in it; yields the _Run. On leaving (normal
        end, divergence, an exception, Ctrl-C) the log is closed and the lock released.
        Under MPI only rank 0 does this; the other ranks `_follow` it and never touch cfg.out."""
        check_base_kept(cfg)
        start = ckpt.start_params(cfg.init_from, cfg.gpt) if cfg.init_from else None
        method = build(cfg.method, cfg.gpt, start=start)
        world = distributed.world()
        world.check_batch(cfg.batch_size)
        if not world.lead:
            run = cls._follow(cfg, method, world)
            yield run
            run.log.close()
            return
        with RunLock(cfg.out, note=verbose):
            run = cls._start(cfg, method, resume, verbose)
            try:
                run._lead_the_ranks()
                yield run
            finally:
                run.log.close()

    @classmethod
    def _start(cls, cfg: TrainConfig, method, resume, verbose: bool) -> "_Run":
        """Load the data, check the memory a step needs, and start afresh or from the
        checkpoint `resume`."""
        out = Path(cfg.out)
        splits, manifest = data.load_splits(cfg.data_dir, cfg.gpt.tokenizer)
        for split in sorted(splits, key=lambda k: len(splits[k])):     # the shortest first
            data.check_fits(splits[split], cfg.gpt.block_size, f"the prepared {split} split")
        _check_memory(cfg, method, verbose)                 # before the first big array
        val = data.eval_windows(splits["val"], cfg.eval_windows, cfg.gpt.block_size)
        data_id = {s: manifest["splits"][s]["sha256"] for s in data.SPLITS}
        meta = {"model": cfg.gpt.to_dict(), "method": cfg.method.to_dict(),
                "train": cfg.to_dict(), "data": data_id}
        if cfg.init_from:                   # what the frozen weights are; checked when loaded
            meta["init_from_sha256"] = sha256_of(cfg.init_from)
        ckpt_path = out / "checkpoint.npz"
        if resume is None:
            trainables = method.init()
            state = RunState(trainables, adamw_init(trainables), np.random.default_rng(cfg.seed),
                             {})
            old, good = None, None
            first = _val_loss(method, trainables, cfg, val)
            if not math.isfinite(first):
                raise ValueError(
                    f"the validation loss of the untrained model is {first} (not a divergence: "
                    f"no step was taken); check the model and method settings")
        else:
            state, old = _resumed_state(cfg, resume, meta)
            same = ckpt_path.exists() and ckpt_path.samefile(resume)
            good, first = (ckpt_path if same else Path(resume), state.step), None
        state.lr_scale = {k: getattr(cfg, group) / cfg.lr
                          for k, group in method.lr_groups(state.trainables).items()}
        continuing = good is not None and good[0] == ckpt_path
        if not continuing:    # every check has passed: a run this one replaces (--overwrite)
            for name in ("checkpoint.npz", "sample.txt"):   # goes whole, its log with it, so
                (out / name).unlink(missing_ok=True)       # no folder holds two runs' files
        run = cls(cfg, method, state, splits["train"], val, meta,
                  RunLog(out / "log.jsonl", append=continuing), verbose, good=good)
        run._announce(resume, old, first)
        return run

    def _announce(self, resume, old, first: float | None):
        """The log's first record of this session, and the validation loss at step 0 (`first`,
        computed before anything in the run folder changed)."""
        cfg, label = self.cfg, self.cfg.method.label()
        if resume is None:
            self.log.write(event="start", method=label, n_trainable=self.method.n_trainable,
                           config=cfg.to_dict())
            if self.verbose:
                print(f"[{label}] {self.method.n_trainable:,} trainable non-embedding parameters;"
                      f" {cfg.steps} steps of {cfg.tokens_per_step} tokens")
            self.evaluate(first)
            return
        self.log.write(event="resume", step=self.state.step, checkpoint=str(resume))
        if self.verbose:
            print(f"[{label}] resumed from {resume} at step {self.state.step}")
        planned = old["train"]["steps"]
        if planned != cfg.steps:
            self.log.write(event="schedule_changed", step=self.state.step, old_steps=planned,
                           new_steps=cfg.steps)
            if self.verbose:
                print(f"note: the schedule was planned for {planned} steps and now "
                      f"runs to {cfg.steps}: the learning rate follows the new cosine from step "
                      f"{self.state.step}")
        was, now = old.get("processes", 1), self.world.size
        if was != now:                   # allowed: the batches, hence the tokens, are the same
            self.log.write(event="processes_changed", step=self.state.step, old=was, new=now)
            if self.verbose:
                print(f"note: this run was trained by {was} MPI process(es) and continues on "
                      f"{now}: the same global batches and tokens, but the gradient is summed "
                      f"in another order, so the losses equal those of an unchanged run to "
                      f"float32 rounding, not bit for bit")

    def _lead_the_ranks(self):
        """Under MPI, on rank 0: send the start state (fresh or resumed) to the other ranks, and
        log and print what each step will all-reduce. Nothing in one process."""
        w, cfg = self.world, self.cfg
        if w.size == 1:
            return
        w.bcast(self.state)
        nbytes = {k: a.nbytes for k, a in self.state.trainables.items()}   # = their gradients'
        emb = sum(n for k, n in nbytes.items() if k in EMBEDDING_NAMES)
        own = sum(nbytes.values()) - emb
        self.log.write(event="mpi", processes=w.size, rows_per_process=cfg.batch_size // w.size,
                       threads_per_process=w.threads, allreduce_bytes_per_step=emb + own + 9,
                       embedding_bytes=emb, method_bytes=own)
        if self.verbose:
            print(f"[{cfg.method.label()}] {w.size} MPI processes, {cfg.batch_size // w.size} "
                  f"sequences each of the global batch of {cfg.batch_size}; each step "
                  f"all-reduces {emb + own + 9:,} bytes: {emb:,} of embedding gradients (wte's "
                  f"is dense: the tied head touches every row), {own:,} of the method's own "
                  f"and 9 of loss and stop flag")

    @classmethod
    def _follow(cls, cfg: TrainConfig, method, world) -> "_Run":
        """An MPI rank other than 0: rank 0's start state, the training tokens (read once rank 0
        has prepared them) and a log to nowhere. It never touches cfg.out."""
        state = world.bcast(None)
        splits, _ = data.load_splits(cfg.data_dir, cfg.gpt.tokenizer)
        return cls(cfg, method, state, splits["train"], None, {},
                   RunLog(Path(os.devnull), append=True), verbose=False, world=world)

    def train_step(self, x, y, lr: float) -> tuple[float, float]:
        """One optimizer step on (x, y): the chain rule through the parameterization, then
        clipping and AdamW. Returns (loss, gradient norm before clipping); raises
        TrainingDiverged, before touching the trainables, if the loss or a gradient is not
        finite."""
        method, s, cfg = self.method, self.state, self.cfg
        # Overflow is checked for just below and reported as divergence, so NumPy's
        # RuntimeWarnings would only repeat it.
        with np.errstate(over="ignore", invalid="ignore"):
            params = method.params(s.trainables)                                 # a -> theta
            loss, grads = loss_and_grads(params, x, y, cfg.gpt, wanted=method.needed_grads)
            tgrads = method.pullback(s.trainables, grads)                        # dL/da
            loss = self.world.mean(tgrads, loss)   # MPI: over all ranks' rows, the global batch's
            gnorm = clip_grad_norm(tgrads, cfg.grad_clip)      # not finite if any gradient is
        if not (math.isfinite(loss) and math.isfinite(gnorm)):
            what = ("the loss" if not math.isfinite(loss) else
                    f"the gradient of {first_nonfinite(tgrads)}")
            raise self.diverged(s.step + 1, what, f"loss {loss}, gradient norm {gnorm}")
        with np.errstate(over="ignore", invalid="ignore"):
            adamw_step(s.trainables, tgrads, s.adam, lr,
                       AdamWConfig(weight_decay=cfg.weight_decay),
                       method.decay_keys(s.trainables), s.lr_scale)
        return loss, gnorm

    def evaluate(self, v: float | None = None) -> float:
        """Validation loss on the fixed windows (`v`, if already computed), logged and added to
        the curve."""
        s, cfg = self.state, self.cfg
        if v is None:
            v = _val_loss(self.method, s.trainables, cfg, self.val)
        if not math.isfinite(v):
            raise self.diverged(s.step, "the validation loss", f"val loss {v}")
        s.curve.append((s.step, s.step * cfg.tokens_per_step, v))
        self.log.write(event="eval", step=s.step, tokens=s.step * cfg.tokens_per_step, val_loss=v)
        return v

    def save(self) -> int:
        """Write the checkpoint (never over a good one with non-finite trainables). A finished
        run with keep_optimizer=False keeps its weights only."""
        s, cfg = self.state, self.cfg
        bad = first_nonfinite(s.trainables)
        if bad:
            raise self.diverged(s.step, f"the trainable {bad}", "after the update")
        meta = {**self.meta, "step": s.step, "rng": s.rng.bit_generator.state,
                "elapsed": s.elapsed, "val_curve": s.curve, "processes": self.world.size}
        finished = s.step >= cfg.steps
        adam = None if finished and not cfg.keep_optimizer else s.adam
        try:
            nbytes = ckpt.save(self.ckpt_path, s.trainables, adam, meta)
        except CannotWrite as e:           # name the run and the step, and what is kept
            kept = (f"its last checkpoint is kept: continue with "
                    f"{resume_command(self.good[0], self.world.size)}"
                    if self.good else "no checkpoint had been written yet")
            raise CannotWrite(e.path, e, f"the run in {cfg.out} could not save its checkpoint at "
                              f"step {s.step}: {e}; {kept}") from None
        self.good = (self.ckpt_path, s.step)
        return nbytes

    def diverged(self, at_step, what, value) -> TrainingDiverged:
        """Log it and return the error: the step, what is not finite, where the good state is."""
        self.log.write(event="diverged", step=at_step, what=what, value=value)
        where = ("rank 0 says where the last good checkpoint is" if not self.world.lead else
                 f"the last good checkpoint is {self.good[0]} (step {self.good[1]})"
                 if self.good else "no checkpoint had been written yet")
        self.log.close()
        rates = ("lr", *self.method.rates)              # the rates this method reads
        lower = " or ".join(f"--{r.replace('_', '-')} (now {getattr(self.cfg, r)})" for r in rates)
        return TrainingDiverged(f"training diverged at step {at_step}: {what} is not finite "
                                f"({value}); {where}; lower {lower}")

    def finish(self, interrupted: bool, signal_name: str | None = None) -> dict:
        """The closing summary: logged, and with a text sample when the run completed.
        interrupted: stopped early (a stop signal named by signal_name, or stop_at)."""
        cfg, s = self.cfg, self.state
        path = self.ckpt_path
        nbytes = path.stat().st_size if self.good == (path, s.step) else self.save()
        summary = {"event": "end", "method": cfg.method.label(),
                   "n_trainable": self.method.n_trainable, "step": s.step,
                   "tokens": s.step * cfg.tokens_per_step, "elapsed": s.elapsed,
                   "val_loss": s.curve[-1][2], "val_curve": s.curve, "checkpoint": str(path),
                   "checkpoint_bytes": nbytes, "interrupted": interrupted}
        if interrupted:
            why = {} if signal_name is None else {"signal": signal_name}
            self.log.write(event="interrupted", step=s.step, checkpoint=str(path), **why)
            summary["signal"] = signal_name
            if self.verbose:
                by = f" by {signal_name}" if signal_name else ""
                # after SIGHUP the terminal may be gone: the checkpoint and log are what count
                with contextlib.suppress(OSError):
                    print(f"interrupted{by} at step {s.step}; checkpoint saved to {path}; "
                          f"continue with: {resume_command(path, self.world.size)}", flush=True)
        else:
            if cfg.sample_tokens > 0:
                from .sample import sample_text
                text = sample_text(self.method.params(s.trainables), cfg.gpt,
                                   max_new_tokens=cfg.sample_tokens, seed=cfg.seed)
                write_atomic(Path(cfg.out) / "sample.txt",
                             lambda f: f.write((text + "\n").encode("utf-8")))
                summary["sample"] = text
            self.log.write(**summary)
        self.log.close()
        return summary


def resume_command(checkpoint, processes: int = 1) -> str:
    """The command that continues a run from `checkpoint`, quoted for a POSIX shell (a path with
    a space or a quote in it pastes as one argument)."""
    mpi = f"mpiexec -n {processes} " if processes > 1 else ""
    return f"{mpi}smolgpt train --resume {shlex.quote(str(checkpoint))}"


def check_base_kept(cfg: TrainConfig) -> None:
    """Refuse a run whose --init-from is the very checkpoint it would write (its --out folder's
    checkpoint.npz): the new run's first save would replace the frozen weights that define it,
    and it could never be loaded again. A hard link or a symbolic link at --out is no such case
    (the save replaces the link, and the base survives under its own name)."""
    if not cfg.init_from:
        return
    base = Path(cfg.init_from).expanduser().resolve()
    mine = Path(cfg.out).expanduser().resolve() / "checkpoint.npz"
    if base == mine:
        raise ValueError(f"--init-from {cfg.init_from} is the checkpoint this run would write "
                         f"in --out {cfg.out}: its first save would replace the weights the new "
                         f"model is built on; choose another --out (or copy the checkpoint "
                         f"elsewhere and start from the copy)")


def _check_memory(cfg: TrainConfig, method, verbose: bool) -> int:
    """Estimate a step's peak memory from the config (nothing allocated yet), print it, and
    refuse the run when it exceeds the memory available. Returns the estimate in bytes."""
    parts = memory.estimate_training_bytes(cfg.gpt, cfg.batch_size, method)
    free = memory.available_bytes()
    have = f"{memory.human(free)} available" if free is not None else "available memory unknown"
    if verbose:
        print(f"[{cfg.method.label()}] memory: a step needs {memory.summary(parts)}; {have}")
    if free is not None and parts["total"] > free:
        raise NotEnoughMemory(
            f"a training step needs about {memory.human(parts['total'])} (activations "
            f"{memory.human(parts['activations'])}, loss head {memory.human(parts['head'])}, "
            f"parameters and Adam {memory.human(parts['parameters'] + parts['adam'])}) but this "
            f"machine has {memory.human(free)} available: lower --batch-size (now "
            f"{cfg.batch_size}) or --block-size (now {cfg.gpt.block_size}), or pick a smaller "
            f"model")
    return parts["total"]


def _resumed_state(cfg: TrainConfig, resume, meta: dict) -> tuple[RunState, dict]:
    """The RunState saved in checkpoint `resume`, after checking it is this very run."""
    trainables, adam, old = ckpt.load(resume)
    if adam is None:
        raise ckpt.CheckpointError(
            f"checkpoint {resume} holds the weights only (its run finished with "
            f"--final-weights-only, dropping Adam's moments), so it cannot be resumed: sample or "
            f"evaluate it, or start a new run with more --steps")
    step = old.get("step")
    if not isinstance(step, int) or isinstance(step, bool) or step < 0:
        raise ckpt.CheckpointError(
            f"checkpoint {resume} has a bad metadata field 'step' ({step!r}, expected a count of "
            f"steps >= 0): it was edited; use an earlier checkpoint or start a new run")
    # compared as configs: a checkpoint from before the tokenizer field is the same GPT-2
    then, now = GPTConfig(**old["model"]).to_dict(), cfg.gpt.to_dict()
    differ = [f"{k} {then[k]!r} -> {now[k]!r}" for k in then if then[k] != now[k]]
    differ += [f"method {k} {old['method'].get(k)!r} -> {meta['method'].get(k)!r}"
               for k in sorted(set(old["method"]) | set(meta["method"]))
               if old["method"].get(k) != meta["method"].get(k)]
    if differ:
        raise ckpt.CheckpointError(
            f"checkpoint {resume} holds another model or method than this run asks for "
            f"({', '.join(differ)}): a resumed run keeps its own, so drop those flags, or start "
            f"a new run")
    started = TrainConfig.of_checkpoint(old, resume).init_from

    def where(p):
        return None if p is None else Path(p).expanduser().resolve()
    if where(cfg.init_from) != where(started):
        raise ckpt.CheckpointError(
            f"checkpoint {resume} was started from {started or 'a random init'}, and a resumed "
            f"run keeps its start: resume with init_from={started!r}, the checkpoint's own")
    if old.get("init_from_sha256") != meta.get("init_from_sha256"):
        raise ckpt.CheckpointError(
            f"checkpoint {resume} was started from {cfg.init_from}, which has changed since: "
            f"restore that checkpoint, or start a new run")
    if old.get("data") != meta["data"]:
        folder = cfg.data_dir or data.data_dir(cfg.gpt.tokenizer)
        raise ckpt.CheckpointError(
            f"checkpoint {resume} was trained on other data than {folder} holds now: give "
            f"--data-dir the folder it was trained on, prepare the same files there again "
            f"(SMOLGPT_C4_FILES), or start a new run")
    # A resumed run is the same run: anything that shapes the trajectory (schedule length,
    # learning rates, batch, batch order, validation windows) must match, or the losses after
    # the resume would not be those of the uninterrupted run.
    new, before = cfg.to_dict(), TrainConfig.of_checkpoint(old, resume).to_dict()
    changed = [k for k in before if k not in RESUME_MAY_CHANGE and before[k] != new[k]]
    if changed:
        what = ", ".join(f"{k} {before[k]!r} -> {new[k]!r}" for k in changed)
        raise ckpt.CheckpointError(
            f"checkpoint {resume} was trained with other settings ({what}): resume with the "
            f"checkpoint's own settings, or start a new run to change them")
    try:
        rng = np.random.default_rng()
        rng.bit_generator.state = old["rng"]
        state = RunState(trainables, adam, rng, {}, step=old["step"],
                         elapsed=float(old.get("elapsed", 0.0)),
                         curve=[(int(s), int(t), float(v)) for s, t, v in old.get("val_curve", [])])
    except (TypeError, ValueError, KeyError) as e:
        raise ckpt.CheckpointError(
            f"checkpoint {resume} has a bad metadata field 'rng', 'elapsed' or 'val_curve' "
            f"({type(e).__name__}: {e}): it was edited; use an earlier checkpoint") from None
    if cfg.steps <= step:
        raise ckpt.CheckpointError(
            f"checkpoint {resume} is at step {step} already, so --steps {cfg.steps} would train "
            f"nothing: give --steps above {step} to train further (or sample or evaluate it)")
    return state, old


# The signals that stop training the way Ctrl-C does: SIGINT (Ctrl-C), SIGTERM (what `kill` and
# batch schedulers send before they kill a job) and SIGHUP (the terminal or SSH session closed).
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class StopFlag:
    """Set by a stop signal; remembers which one, for the log and the closing message."""

    def __init__(self):
        self.signum: int | None = None

    def set(self, signum: int) -> None:
        if self.signum is None:              # the first signal is the one that stopped the run
            self.signum = signum

    def is_set(self) -> bool:
        return self.signum is not None

    @property
    def name(self) -> str | None:
        return None if self.signum is None else signal.Signals(self.signum).name


@contextlib.contextmanager
def stop_signals():
    """SIGINT, SIGTERM and SIGHUP set a flag the loop checks after each step (so it can save
    the step reached and return), instead of ending the process. The handlers in place before
    are restored on leaving. Outside the main thread signals cannot be caught, and each keeps
    the handler it had."""
    flag = StopFlag()
    old = {}
    for signum in STOP_SIGNALS:
        try:
            old[signum] = signal.signal(signum, lambda n, frame: flag.set(n))
        except ValueError:                   # not the main thread
            break
    try:
        yield flag
    finally:
        for signum, handler in old.items():
            signal.signal(signum, handler)


class _Bar:
    """tqdm's progress bar, or nothing at all."""

    def __init__(self, cfg: TrainConfig, step: int, on: bool):
        self.tqdm = None
        if on:
            from tqdm import tqdm
            self.tqdm = tqdm(total=cfg.steps, initial=step, desc=cfg.method.label(), unit="step",
                             dynamic_ncols=True)

    def show(self, loss, tok_per_s):
        if self.tqdm is not None:
            self.tqdm.update(1)
            self.tqdm.set_postfix(loss=f"{loss:.3f}", tok_s=f"{tok_per_s:,.0f}")

    def say(self, text):
        if self.tqdm is not None:
            self.tqdm.write(text)


@contextlib.contextmanager
def _progress_bar(cfg: TrainConfig, step: int, on: bool):
    bar = _Bar(cfg, step, on)
    try:
        yield bar
    finally:
        if bar.tqdm is not None:
            with contextlib.suppress(OSError):        # a terminal gone (SIGHUP) is no error
                bar.tqdm.close()


def _val_loss(method, trainables: dict, cfg: TrainConfig, val: tuple) -> float:
    """The validation loss of `trainables` on the run's fixed windows (NaN or inf, not a warning,
    if the model has blown up)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return evaluate(method.params(trainables), cfg.gpt, *val, cfg.batch_size)


def evaluate(params, gpt: GPTConfig, xs, ys, batch_size: int) -> float:
    """Mean loss over fixed windows xs, ys (n, T), batch by batch."""
    total = 0.0
    for s in range(0, len(xs), batch_size):
        x, y = xs[s:s + batch_size], ys[s:s + batch_size]
        total += loss_only(params, x, y, gpt) * len(x)
    return total / len(xs)
