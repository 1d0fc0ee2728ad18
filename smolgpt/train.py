"""The training loop: any parameterization, C4 batches, AdamW, logs, checkpoints, resume.

One step is the chain rule through the method's map (see `smolgpt.methods`):

    params = method.params(trainables)                       # a -> theta
    loss, grads = loss_and_grads(params, x, y, model)        # dL/dtheta
    tgrads = method.pullback(trainables, grads)              # dL/da = (dtheta/da)^T dL/dtheta
    clip, then AdamW on the trainables

A run directory holds `log.jsonl` (one JSON record per line, flushed as written, so a killed run
keeps its log), `checkpoint.npz` (the latest, written atomically) and `sample.txt`.
A run is reproducible: the same config and seed give the same losses bit for bit on the same
machine, and a run resumed from a checkpoint continues exactly as if it had never stopped.
"""

from __future__ import annotations

import dataclasses
import json
import math
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import checkpoint as ckpt
from . import data
from .methods import MethodSpec, SUBSPACE_KINDS, build
from .model import GPTConfig, loss_and_grads, loss_only
from .optim import AdamWConfig, adamw_init, adamw_step, clip_grad_norm, lr_at


# TrainConfig fields a resumed run may change: where things go, how often they are written, and
# `steps` (to extend a run; the cosine schedule is then stretched, and the resume says so).
RESUME_MAY_CHANGE = frozenset({"out", "data_dir", "eval_every", "checkpoint_every",
                               "sample_tokens", "steps"})


class TrainingDiverged(RuntimeError):
    """Loss or gradients became NaN or infinite; the message names the step and what."""


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a run. Defaults: a few minutes of `tiny` on a 2-core CPU."""

    model: GPTConfig = field(default_factory=lambda: GPTConfig.preset("tiny"))
    method: MethodSpec = field(default_factory=MethodSpec)
    steps: int = 200                 # optimizer steps; tokens seen = steps * batch_size * block
    batch_size: int = 16
    lr: float = 1e-3                 # peak learning rate of directly trained arrays
    coef_lr: float = 0.3             # peak learning rate of subspace coefficients
    warmup: int = 20
    min_lr_ratio: float = 0.1        # cosine decays to this fraction of the peak
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    eval_every: int = 50
    eval_windows: int = 64           # fixed held-out windows for the validation loss
    checkpoint_every: int = 100
    seed: int = 0                    # batch order (the method's seed is in `method`)
    out: str = "runs/run"
    data_dir: str | None = None
    sample_tokens: int = 40

    def __post_init__(self):
        for name in ("steps", "batch_size", "eval_every", "eval_windows", "checkpoint_every"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        for name in ("lr", "coef_lr"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be a positive finite number, got {v!r}")
        if self.warmup < 0:
            raise ValueError(f"warmup must be >= 0, got {self.warmup}")
        for name in ("weight_decay", "grad_clip"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")
        if not 0 <= self.min_lr_ratio <= 1:
            raise ValueError(f"min_lr_ratio must be between 0 and 1, got {self.min_lr_ratio}")
        # numpy's own complaint about a negative seed names neither the seed nor the flag
        for name, v in (("seed", self.seed), ("method seed (--method-seed)", self.method.seed)):
            if not isinstance(v, (int, np.integer)) or v < 0:
                raise ValueError(f"{name} must be an integer >= 0, got {v!r}")

    @property
    def tokens_per_step(self) -> int:
        return self.batch_size * self.model.block_size

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["model"] = self.model.to_dict()
        d["method"] = self.method.to_dict()
        return d

    @staticmethod
    def from_dict(d: dict) -> "TrainConfig":
        d = dict(d)
        d["model"] = GPTConfig(**d["model"])
        d["method"] = MethodSpec(**d["method"])
        return TrainConfig(**d)


def evaluate(params, model: GPTConfig, xs, ys, batch_size: int) -> float:
    """Mean loss over fixed windows xs, ys (n, T), batch by batch."""
    total = 0.0
    for s in range(0, len(xs), batch_size):
        x, y = xs[s:s + batch_size], ys[s:s + batch_size]
        total += loss_only(params, x, y, model) * len(x)
    return total / len(xs)


def _first_nonfinite(arrays) -> str | None:
    for k, a in arrays.items():
        if not np.all(np.isfinite(a)):
            return k
    return None


def _check_splits_fit(splits: dict, block_size: int) -> None:
    """A clear error, before anything is written, when the shortest split has no room for one
    window of block_size + 1 tokens."""
    split, n = min(((s, len(t)) for s, t in splits.items()), key=lambda sn: sn[1])
    if n < block_size + 1:
        raise data.DataError(
            f"block_size={block_size} needs windows of {block_size + 1} tokens but the prepared "
            f"{split} split has only {n}: use a block_size <= {max(n - 1, 1)} (--block-size) "
            f"or prepare more documents")


class _Log:
    """A JSON-lines log, each record flushed at once."""

    def __init__(self, path: Path, append: bool):
        self.f = open(path, "a" if append else "w", buffering=1)

    def write(self, **record):
        self.f.write(json.dumps(record) + "\n")
        self.f.flush()

    def close(self):
        self.f.close()


def train(cfg: TrainConfig, resume: str | Path | None = None, stop_at: int | None = None,
          progress: bool = True, verbose: bool = True) -> dict:
    """Run (or continue) training; returns a summary dict (also the last line of the log).

    resume: a checkpoint path to continue from; its model and method must match cfg.
    stop_at: stop after this step as Ctrl-C would (checkpoint saved), for tests and demos.
    Ctrl-C during training saves a checkpoint and returns with summary["interrupted"] = True.
    Raises TrainingDiverged if the loss, a gradient, the validation loss or (checked before each
    save, so a checkpoint is never overwritten by one) a trainable stops being finite.
    """
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path = out / "checkpoint.npz"
    model = cfg.model
    method = build(cfg.method, model)

    train_tokens = data.load_tokens("train", cfg.data_dir)
    val_tokens = data.load_tokens("val", cfg.data_dir)
    manifest = data.read_manifest(cfg.data_dir)
    data_id = {s: manifest["splits"][s]["sha256"] for s in data.SPLITS}   # what was trained on
    _check_splits_fit({"train": train_tokens, "val": val_tokens}, model.block_size)
    val_x, val_y = data.eval_windows(val_tokens, cfg.eval_windows, model.block_size)

    meta = {"model": model.to_dict(), "method": cfg.method.to_dict(), "train": cfg.to_dict(),
            "data": data_id}
    if resume is not None:
        trainables, adam, old = ckpt.load(resume)
        if old["model"] != meta["model"] or old["method"] != meta["method"]:
            raise ckpt.CheckpointError(
                f"checkpoint {resume} is for {ckpt.describe(old)}; this run is "
                f"{ckpt.describe(meta)}: resume with the checkpoint's own settings")
        if old.get("data") != data_id:
            raise ckpt.CheckpointError(
                f"checkpoint {resume} was trained on other data than is prepared now: point "
                f"SMOLGPT_C4_FILES at the same files, or start a new run")
        # A resumed run is the same run: anything that shapes the trajectory (schedule length,
        # learning rates, batch, batch order, validation windows) must match, or the losses
        # after the resume would not be those of the uninterrupted run.
        new = cfg.to_dict()
        changed = [k for k in old["train"] if k not in RESUME_MAY_CHANGE
                   and old["train"][k] != new.get(k)]
        if changed:
            what = ", ".join(f"{k} {old['train'][k]!r} -> {new.get(k)!r}" for k in changed)
            raise ckpt.CheckpointError(
                f"checkpoint {resume} was trained with other settings ({what}): resume with the "
                f"checkpoint's own settings, or start a new run to change them")
        step = old["step"]
        rng = np.random.default_rng()
        rng.bit_generator.state = old["rng"]
        elapsed = old.get("elapsed", 0.0)
        curve = old.get("val_curve", [])
    else:
        trainables = method.init()
        adam = adamw_init(trainables)
        step, elapsed, curve = 0, 0.0, []
        rng = np.random.default_rng(cfg.seed)

    decay = method.decay_keys(trainables)
    lr_scale = {"coef": cfg.coef_lr / cfg.lr} if cfg.method.name in SUBSPACE_KINDS else {}
    adam_cfg = AdamWConfig(weight_decay=cfg.weight_decay)
    log = _Log(out / "log.jsonl", append=resume is not None)

    saved_step = None                       # step of the checkpoint this run last wrote

    def diverged(at_step, what, value):
        """Log it and return the error: the step, what is not finite, where the good state is."""
        log.write(event="diverged", step=at_step, what=what, value=value)  # a str: JSON has no NaN
        where = ("no checkpoint had been written yet" if not ckpt_path.exists() else
                 f"the last good checkpoint is {ckpt_path}" +
                 (f" (step {saved_step})" if saved_step is not None else ""))
        return TrainingDiverged(
            f"training diverged at step {at_step}: {what} is not finite ({value}); {where}; "
            f"lower --lr (now {cfg.lr}) or --coef-lr (now {cfg.coef_lr})")

    def save():
        nonlocal saved_step
        bad = _first_nonfinite(trainables)             # never replace a good checkpoint with NaN
        if bad:
            raise diverged(step, f"the trainable {bad}", "after the update")
        m = {**meta, "step": step, "rng": rng.bit_generator.state, "elapsed": elapsed,
             "val_curve": curve}
        nbytes = ckpt.save(ckpt_path, trainables, adam, m)
        saved_step = step
        return nbytes

    def val_loss():
        with np.errstate(over="ignore", invalid="ignore"):
            return evaluate(method.params(trainables), model, val_x, val_y, cfg.batch_size)

    if resume is None:
        log.write(event="start", method=cfg.method.label(), n_trainable=method.n_trainable,
                  config=cfg.to_dict())
        if verbose:
            print(f"[{cfg.method.label()}] {method.n_trainable:,} trainable non-embedding "
                  f"parameters; {cfg.steps} steps of {cfg.tokens_per_step} tokens")
        v = val_loss()
        curve.append((0, 0, v))
        log.write(event="eval", step=0, tokens=0, val_loss=v)
    else:
        log.write(event="resume", step=step, checkpoint=str(resume))
        if verbose:
            print(f"[{cfg.method.label()}] resumed from {resume} at step {step}")
        if old["train"]["steps"] != cfg.steps:
            note = (f"the schedule was planned for {old['train']['steps']} steps and now runs to "
                    f"{cfg.steps}: the learning rate follows the new cosine from step {step}")
            log.write(event="schedule_changed", step=step, old_steps=old["train"]["steps"],
                      new_steps=cfg.steps)
            if verbose:
                print("note:", note)

    interrupted = False

    def on_sigint(signum, frame):
        nonlocal interrupted
        interrupted = True

    try:
        old_handler = signal.signal(signal.SIGINT, on_sigint)
    except ValueError:                      # not in the main thread: Ctrl-C stays default
        old_handler = None

    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=cfg.steps, initial=step, desc=cfg.method.label(), unit="step",
                   dynamic_ncols=True)
    try:
        while step < cfg.steps and not interrupted:
            t0 = time.perf_counter()
            x, y = data.get_batch(train_tokens, cfg.batch_size, model.block_size, rng)
            lr = lr_at(step, cfg.lr, cfg.warmup, cfg.steps, cfg.min_lr_ratio)
            # the chain rule through the parameterization. Overflow is checked for just below
            # and reported as divergence, so NumPy's RuntimeWarnings would only repeat it.
            with np.errstate(over="ignore", invalid="ignore"):
                params = method.params(trainables)
                loss, grads = loss_and_grads(params, x, y, model)
                tgrads = method.pullback(trainables, grads)
            bad_grad = _first_nonfinite(tgrads)
            if not math.isfinite(loss) or bad_grad:
                raise diverged(step + 1, "the loss" if not math.isfinite(loss) else
                               f"the gradient of {bad_grad}", f"loss {loss}")
            gnorm = clip_grad_norm(tgrads, cfg.grad_clip)
            with np.errstate(over="ignore", invalid="ignore"):
                adamw_step(trainables, tgrads, adam, lr, adam_cfg, decay, lr_scale)
            step += 1
            dt = time.perf_counter() - t0
            elapsed += dt
            tps = cfg.tokens_per_step / dt
            log.write(event="step", step=step, tokens=step * cfg.tokens_per_step, loss=loss,
                      lr=lr, grad_norm=gnorm, tok_per_s=tps)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.3f}", tok_s=f"{tps:,.0f}")
            if step % cfg.eval_every == 0 or step == cfg.steps:
                v = val_loss()
                if not math.isfinite(v):
                    raise diverged(step, "the validation loss", f"val loss {v}")
                curve.append((step, step * cfg.tokens_per_step, v))
                log.write(event="eval", step=step, tokens=step * cfg.tokens_per_step, val_loss=v)
                if bar is not None:
                    bar.write(f"step {step}: val loss {v:.4f}")
            if step == stop_at:
                interrupted = True
            if step % cfg.checkpoint_every == 0 or step == cfg.steps or interrupted:
                save()
    except BaseException:                   # diverged, disk full, ...: the log is complete
        log.close()
        raise
    finally:
        if bar is not None:
            bar.close()
        if old_handler is not None:
            signal.signal(signal.SIGINT, old_handler)

    nbytes = ckpt_path.stat().st_size if ckpt_path.exists() else save()
    summary = {"event": "end", "method": cfg.method.label(), "n_trainable": method.n_trainable,
               "step": step, "tokens": step * cfg.tokens_per_step, "elapsed": elapsed,
               "val_loss": curve[-1][2], "val_curve": curve, "checkpoint": str(ckpt_path),
               "checkpoint_bytes": nbytes, "interrupted": interrupted}
    if interrupted:
        log.write(event="interrupted", step=step, checkpoint=str(ckpt_path))
        if verbose:
            print(f"interrupted at step {step}; checkpoint saved to {ckpt_path}; continue with: "
                  f"smolgpt train --resume {ckpt_path}")
    else:
        if cfg.sample_tokens > 0:
            from .sample import sample_text
            text = sample_text(method.params(trainables), model,
                               max_new_tokens=cfg.sample_tokens, seed=cfg.seed)
            (out / "sample.txt").write_text(text + "\n")
            summary["sample"] = text
        log.write(**summary)
    log.close()
    return summary


def load_params(path):
    """A checkpoint -> (params dict, GPTConfig, MethodSpec): the model ready for sampling."""
    trainables, _, meta = ckpt.load(path)
    model = GPTConfig(**meta["model"])
    spec = MethodSpec(**meta["method"])
    return build(spec, model).params(trainables), model, spec
