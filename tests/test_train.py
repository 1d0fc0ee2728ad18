"""Training you can trust: resume is bit-exact, a seed fixes the run, Ctrl-C saves, a crash
mid-write keeps the previous checkpoint, divergence stops cleanly, memory stays flat, and the log
survives a kill -9.

Every run here is a 1-layer, width-16 GPT-2 (the full 50257-token vocabulary, since the data is
real GPT-2 tokens) on the session's small prepared C4 sample, for a handful of steps.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import signal
import subprocess
import sys
import time
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pytest

import smolgpt.train as train_mod
from smolgpt import checkpoint as ckpt
from smolgpt.cli import main
from smolgpt.data import get_batch, load_tokens
from smolgpt.methods import MethodSpec
from smolgpt.model import GPTConfig
from smolgpt.train import TrainConfig, TrainingDiverged, train

REPO = Path(__file__).resolve().parents[1]
TINY = GPTConfig(n_layer=1, n_head=2, n_embd=16, block_size=16)
TINY_FLAGS = ["--n-layer", "1", "--n-head", "2", "--n-embd", "16", "--block-size", "16",
              "--batch-size", "2", "--eval-windows", "4", "--no-progress", "--sample-tokens", "0"]


pytestmark = pytest.mark.usefixtures("one_blas_thread")


def tiny_cfg(data_dir, out, **changes) -> TrainConfig:
    base = dict(gpt=TINY, steps=10, batch_size=2, warmup=2, eval_every=4, eval_windows=4,
                checkpoint_every=3, out=str(out), data_dir=str(data_dir), sample_tokens=0)
    return TrainConfig(**{**base, **changes})


def _no_nan(name):
    raise ValueError(f"{name} in the log: not strict JSON")


def read_log(path) -> list[dict]:
    """Every record of a log.jsonl, parsed strictly (a NaN or Infinity fails)."""
    lines = Path(path).read_text().splitlines()
    return [json.loads(line, parse_constant=_no_nan) for line in lines]


def step_records(records, after: int = 0) -> dict[int, dict]:
    return {r["step"]: r for r in records if r["event"] == "step" and r["step"] > after}


def quiet(cfg, **kwargs):
    return train(cfg, progress=False, verbose=False, **kwargs)


# --- resume and reproducibility --------------------------------------------------------------

@pytest.mark.parametrize("spec", [MethodSpec("full"), MethodSpec("fastfood", d=8),
                                  MethodSpec("lora", rank=2), MethodSpec("vera", rank=2),
                                  MethodSpec("nola", rank=2, nola_k=6, nola_l=5)],
                         ids=lambda s: s.label())
def test_resume_is_bit_exact(prepared_data_dir, tmp_path, spec):
    N, K = 10, 5                 # K is not a multiple of checkpoint_every: the stop itself saves
    cfg_a = tiny_cfg(prepared_data_dir, tmp_path / "a", method=spec)
    cfg_b = tiny_cfg(prepared_data_dir, tmp_path / "b", method=spec)
    quiet(cfg_a)                                             # A: uninterrupted to N
    first = quiet(cfg_b, stop_at=K)                          # B: stops at K ...
    assert first["interrupted"] and first["step"] == K
    _, adam_k, meta = ckpt.load(tmp_path / "b" / "checkpoint.npz")
    assert meta["step"] == adam_k["t"] == K
    quiet(cfg_b, resume=tmp_path / "b" / "checkpoint.npz")  # ... and continues to N

    a, b = read_log(tmp_path / "a" / "log.jsonl"), read_log(tmp_path / "b" / "log.jsonl")
    assert [r["event"] for r in b if r["event"] not in ("step", "eval")] == \
        ["start", "interrupted", "resume", "end"]
    sa, sb = step_records(a, after=K), step_records(b, after=K)
    assert sorted(sb) == list(range(K + 1, N + 1)) == sorted(sa)
    for s in sa:                                # exact equality: the same floats, bit for bit
        assert (sb[s]["loss"], sb[s]["grad_norm"], sb[s]["lr"]) == \
            (sa[s]["loss"], sa[s]["grad_norm"], sa[s]["lr"]), s
    ea, eb = ([(r["step"], r["val_loss"]) for r in log if r["event"] == "eval" and r["step"] > K]
              for log in (a, b))
    assert eb == ea and [s for s, _ in ea] == [8, 10]
    ta, ada, _ = ckpt.load(tmp_path / "a" / "checkpoint.npz")
    tb, adb, _ = ckpt.load(tmp_path / "b" / "checkpoint.npz")
    for k in ta:
        assert np.array_equal(ta[k], tb[k]) and np.array_equal(ada["m"][k], adb["m"][k]) and \
            np.array_equal(ada["v"][k], adb["v"][k]), k
    print(f"{spec.label()}: steps {K + 1}..{N} after resume equal the uninterrupted run exactly "
          f"(last loss {sa[N]['loss']!r})")


def test_checkpoint_holds_everything_to_continue(prepared_data_dir, tmp_path):
    spec = MethodSpec("fastfood", d=8, seed=3)
    quiet(tiny_cfg(prepared_data_dir, tmp_path, method=spec, seed=7), stop_at=4)
    trainables, adam, meta = ckpt.load(tmp_path / "checkpoint.npz")
    # the coefficients and embeddings, never the bases (the method's seed regenerates those)
    assert set(trainables) == {"wte.weight", "wpe.weight", "coef"}
    assert trainables["coef"].shape == (8,) and set(adam["m"]) == set(trainables)
    assert meta["method"] == spec.to_dict() and meta["model"] == TINY.to_dict()
    assert TrainConfig.from_dict(meta["train"]) == tiny_cfg(prepared_data_dir, tmp_path,
                                                            method=spec, seed=7)
    manifest = json.loads((prepared_data_dir / "manifest.json").read_text())
    assert meta["data"] == {s: manifest["splits"][s]["sha256"] for s in ("train", "val")}
    assert meta["step"] == adam["t"] == 4
    # the saved batch RNG continues the stream: its next batch is the 5th batch of seed 7
    tokens = load_tokens("train", prepared_data_dir)
    saved = np.random.default_rng()
    saved.bit_generator.state = meta["rng"]
    fresh = np.random.default_rng(7)
    for _ in range(4):
        get_batch(tokens, 2, 16, fresh)
    assert np.array_equal(get_batch(tokens, 2, 16, saved)[0], get_batch(tokens, 2, 16, fresh)[0])
    by_name = ckpt.load(tmp_path / "checkpoint.npz")           # the same, by name
    assert by_name.model == TINY and by_name.method == spec and by_name.step == 4


def test_run_settings_merge_a_checkpoint_a_start_model_and_what_is_given(prepared_data_dir,
                                                                         tmp_path):
    """run_settings is the one place a resumed run's own settings, a start model's sizes and
    the settings given are merged, in that order."""
    from smolgpt.train import run_settings
    spec = MethodSpec("lora", rank=2)
    cfg = tiny_cfg(prepared_data_dir, tmp_path / "a", method=spec, seed=7)
    quiet(cfg, stop_at=2)
    path = tmp_path / "a" / "checkpoint.npz"
    assert run_settings(path) == cfg                             # its own settings
    assert run_settings(path, steps=20, method={"alpha": 2.0}) == dataclasses.replace(
        cfg, steps=20, method=MethodSpec("lora", rank=2, alpha=2.0))
    started = run_settings(init_from=str(path), method={"name": "full"})
    assert started.gpt == TINY and started.method == MethodSpec("full")   # the model's sizes
    assert started.init_from == str(path.resolve()) and started.steps == TrainConfig().steps
    assert run_settings(init_from=str(path), gpt={"n_layer": 2}).gpt.n_layer == 2
    assert run_settings(preset="tiny", gpt={"block_size": 32}).gpt == dataclasses.replace(
        GPTConfig.preset("tiny"), block_size=32)


def test_same_seed_same_losses_bit_for_bit(prepared_data_dir, tmp_path):
    def losses(name, seed):
        quiet(tiny_cfg(prepared_data_dir, tmp_path / name, steps=6, eval_every=3, seed=seed))
        log = read_log(tmp_path / name / "log.jsonl")
        return ([r["loss"] for r in log if r["event"] == "step"],
                [r["val_loss"] for r in log if r["event"] == "eval"])
    first, again, other = losses("a", 0), losses("b", 0), losses("c", 1)
    assert first == again and len(first[0]) == 6 and len(first[1]) == 3
    assert first[0] != other[0]                  # the seed does pick the batches
    print(f"seed 0 twice: identical {len(first[0])} losses; seed 1 differs")


# --- Ctrl-C and kill -9, for real, on the command line -----------------------------------------

def start_cli_run(data_dir, out) -> subprocess.Popen:
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "smolgpt.cli", "train", "--data-dir", str(data_dir),
           "--out", str(out), "--steps", "100000", "--eval-every", "100000",
           "--checkpoint-every", "100000", *TINY_FLAGS]
    return subprocess.Popen(cmd, env=env, cwd=out.parent, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_for_steps(proc, log_path: Path, n: int, timeout: float = 60.0) -> int:
    """Poll the log of a running process until it has n step records; each time, every
    complete line must already be valid JSON (the log is flushed record by record)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        text = log_path.read_text() if log_path.exists() else ""
        complete = text[:text.rfind("\n") + 1]
        records = [json.loads(line, parse_constant=_no_nan) for line in complete.splitlines()]
        steps = sum(r["event"] == "step" for r in records)
        if steps >= n:
            return steps
        time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"no {n} steps in {log_path} within {timeout} s")


def test_sigint_saves_a_checkpoint_exits_4_and_resumes_exactly(prepared_data_dir, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    proc = start_cli_run(prepared_data_dir, out)
    wait_for_steps(proc, out / "log.jsonl", 3)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 4, stderr                     # cli.STOPPED: progress saved
    assert "Traceback" not in stderr and "interrupted by SIGINT at step" in stdout

    log = read_log(out / "log.jsonl")
    _, _, meta = ckpt.load(out / "checkpoint.npz")
    k = meta["step"]
    assert log[-1] == {"event": "interrupted", "step": k, "signal": "SIGINT",
                       "checkpoint": str(out / "checkpoint.npz")}
    assert sorted(step_records(log)) == list(range(1, k + 1))      # it saved the step it was on

    # resume from the signal's checkpoint; it continues exactly as a run that never stopped
    cfg = TrainConfig.from_dict(meta["train"])
    quiet(cfg, resume=out / "checkpoint.npz", stop_at=k + 2)
    quiet(dataclasses.replace(cfg, out=str(tmp_path / "ref")), stop_at=k + 2)
    resumed = step_records(read_log(out / "log.jsonl"))
    ref = step_records(read_log(tmp_path / "ref" / "log.jsonl"))
    assert sorted(resumed) == sorted(ref) == list(range(1, k + 3))
    assert [resumed[s]["loss"] for s in ref] == [ref[s]["loss"] for s in ref]
    print(f"SIGINT after step {k}: exit 4, checkpoint at step {k}, resumed to {k + 2} exactly")


def test_log_is_complete_json_lines_after_kill_9(prepared_data_dir, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    proc = start_cli_run(prepared_data_dir, out)
    seen = wait_for_steps(proc, out / "log.jsonl", 3)         # valid JSON while it runs
    proc.kill()                                               # SIGKILL: no handler, no flush
    proc.communicate(timeout=30)
    text = (out / "log.jsonl").read_text()
    assert text.endswith("\n")                                # no half-written last line
    log = read_log(out / "log.jsonl")                         # every line strict JSON
    assert log[0]["event"] == "start" and log[1]["event"] == "eval"
    steps = sorted(step_records(log))
    assert steps == list(range(1, len(steps) + 1)) and len(steps) >= seen
    print(f"kill -9 after {len(steps)} steps: all {len(log)} log lines are complete JSON")


def test_every_record_is_in_the_file_before_the_next_step(prepared_data_dir, tmp_path,
                                                          monkeypatch):
    """What another process (or what is left after kill -9) reads: at the start of step i, the
    file already holds steps 1..i-1, complete. A log buffered in the process would lag."""
    real = train_mod.loss_and_grads
    seen = []

    def reading_the_log(*args, **kwargs):
        text = (tmp_path / "log.jsonl").read_text()
        assert text.endswith("\n")
        seen.append(sorted(step_records(read_log(tmp_path / "log.jsonl"))))
        return real(*args, **kwargs)
    monkeypatch.setattr(train_mod, "loss_and_grads", reading_the_log)
    quiet(tiny_cfg(prepared_data_dir, tmp_path, steps=6, eval_every=2))
    assert seen == [list(range(1, i)) for i in range(1, 7)]


# --- atomic checkpoints --------------------------------------------------------------------

def test_crash_mid_write_keeps_the_previous_checkpoint(prepared_data_dir, tmp_path, monkeypatch):
    real_savez = np.savez
    saves, good = [], {}

    def savez_that_dies_on_the_second_save(f, **arrays):
        saves.append(1)
        if len(saves) < 2:
            return real_savez(f, **arrays)
        good["bytes"] = (tmp_path / "checkpoint.npz").read_bytes()     # what is there now
        buf = io.BytesIO()
        real_savez(buf, **arrays)
        f.write(buf.getvalue()[:buf.tell() // 2])                      # half a zip, then ...
        raise OSError(28, "No space left on device")                   # ... the disk is full
    monkeypatch.setattr(np, "savez", savez_that_dies_on_the_second_save)
    with pytest.raises(OSError, match="No space"):
        quiet(tiny_cfg(prepared_data_dir, tmp_path, steps=8, checkpoint_every=3))
    assert len(saves) == 2                                             # died saving step 6
    assert (tmp_path / "checkpoint.npz").read_bytes() == good["bytes"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.npz", "log.jsonl"]
    _, _, meta = ckpt.load(tmp_path / "checkpoint.npz")
    assert meta["step"] == 3


def test_interrupt_mid_write_leaves_no_temporary_file(tmp_path, monkeypatch):
    w = {"w": np.arange(6, dtype=np.float32).reshape(2, 3)}
    adam = {"t": 1, "m": {"w": np.zeros((2, 3), np.float32)},
            "v": {"w": np.ones((2, 3), np.float32)}}
    path = tmp_path / "checkpoint.npz"
    ckpt.save(path, w, adam, {"step": 1})
    before = path.read_bytes()

    def interrupted(f, **arrays):
        f.write(b"PK\x03\x04" + bytes(100))
        raise KeyboardInterrupt
    monkeypatch.setattr(np, "savez", interrupted)
    with pytest.raises(KeyboardInterrupt):
        ckpt.save(path, {"w": w["w"] + 1}, adam, {"step": 2})
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["checkpoint.npz"]
    with np.load(path) as z:                  # (ckpt.load would also want a real model's meta)
        assert np.array_equal(z["trainables/w"], w["w"])


# --- divergence ------------------------------------------------------------------------------

@pytest.mark.parametrize("method, lr_flag", [(["full"], "--lr"),
                                             (["fastfood", "--d", "8"], "--coef-lr")])
def test_huge_learning_rate_stops_with_exit_3(prepared_data_dir, tmp_path, capsys, method,
                                              lr_flag):
    out = tmp_path / "run"
    with warnings.catch_warnings(record=True) as caught:     # NumPy's overflow warnings would
        warnings.simplefilter("always")                      # print more lines on stderr
        rc = main(["train", "--data-dir", str(prepared_data_dir), "--out", str(out), "--method",
                   *method, lr_flag, "1e30", "--warmup", "0", "--steps", "10",
                   "--checkpoint-every", "1", *TINY_FLAGS])
    err = capsys.readouterr().err
    assert rc == 3
    assert [str(w.message) for w in caught] == []
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    msg = lines[0]
    log = read_log(out / "log.jsonl")
    bad = log[-1]
    assert bad["event"] == "diverged" and bad["step"] >= 2
    assert f"diverged at step {bad['step']}" in msg and f"{bad['what']} is not finite" in msg
    assert bad["what"] == "the loss" or bad["what"].startswith("the gradient of ")
    assert f"{lr_flag} (now 1e+30)" in msg and "last good checkpoint" in msg
    trainables, _, meta = ckpt.load(out / "checkpoint.npz")       # the last good one loads
    assert meta["step"] == bad["step"] - 1 and f"(step {meta['step']})" in msg
    assert all(np.isfinite(v).all() for v in trainables.values())
    print(msg)


def test_overwrite_replaces_the_whole_run_and_divergence_names_the_checkpoint(
        prepared_data_dir, tmp_path, capsys, monkeypatch):
    """--overwrite keeps the old run until the new one's checks pass (bad input loses nothing),
    then removes it whole: a new run that diverges before its first save leaves its own log and
    no checkpoint of another run. A resumed run that diverges names its checkpoint's step."""
    out = tmp_path / "run"
    base = ["train", "--data-dir", str(prepared_data_dir), "--out", str(out), "--steps", "2",
            *TINY_FLAGS]
    assert main(base) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert main([*base, "--overwrite", "--block-size", "100000"]) == 2       # refused: kept
    with monkeypatch.context() as m:      # the last check, the untrained model's loss: kept too
        m.setattr(train_mod, "_val_loss", lambda *args: float("nan"))
        assert main([*base, "--overwrite"]) == 2
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert "the validation loss of the untrained model is nan" in capsys.readouterr().err
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rc = main([*base, "--overwrite", "--lr", "1e30", "--warmup", "0", "--steps", "10",
                   "--checkpoint-every", "100"])
    err = capsys.readouterr().err
    assert rc == 3 and "no checkpoint had been written yet" in err, err
    assert sorted(p.name for p in out.iterdir()) == ["log.jsonl"]
    assert read_log(out / "log.jsonl")[0]["config"]["lr"] == 1e30

    assert main(base[:-len(TINY_FLAGS)] + ["--overwrite", *TINY_FLAGS]) == 0
    real_step = train_mod.adamw_step

    def breaks_a_weight(trainables, *args, **kwargs):          # the first step after resuming
        real_step(trainables, *args, **kwargs)
        trainables["h.0.mlp.c_fc.weight"][0, 0] = np.inf
    monkeypatch.setattr(train_mod, "adamw_step", breaks_a_weight)
    rc = main(["train", "--resume", str(out / "checkpoint.npz"), "--steps", "10",
               "--checkpoint-every", "100", "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 3 and f"last good checkpoint is {out / 'checkpoint.npz'} (step 2)" in err, err


def test_resuming_into_another_runs_folder_with_overwrite_replaces_it(prepared_data_dir, tmp_path,
                                                                      capsys, monkeypatch):
    """--resume X --out Y --overwrite: Y's run goes whole (its sample too), Y's log is this
    run's alone, and a divergence before the first save in Y names X as the last good state."""
    base = ["--data-dir", str(prepared_data_dir), "--steps", "2", *TINY_FLAGS]
    x, y = tmp_path / "x", tmp_path / "y"
    assert main(["train", "--out", str(x), *base]) == 0
    assert main(["train", "--out", str(y), *base[:-2], "--sample-tokens", "5"]) == 0
    assert (y / "sample.txt").exists()
    real_step = train_mod.adamw_step

    def breaks_a_weight(trainables, *args, **kwargs):
        real_step(trainables, *args, **kwargs)
        trainables["h.0.mlp.c_fc.weight"][0, 0] = np.inf
    monkeypatch.setattr(train_mod, "adamw_step", breaks_a_weight)
    capsys.readouterr()
    rc = main(["train", "--resume", str(x / "checkpoint.npz"), "--out", str(y), "--overwrite",
               "--steps", "6", "--checkpoint-every", "100", "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 3 and f"last good checkpoint is {x / 'checkpoint.npz'} (step 2)" in err, err
    assert sorted(p.name for p in y.iterdir()) == ["log.jsonl"]
    assert [r["event"] for r in read_log(y / "log.jsonl")][:1] == ["resume"]


def test_non_finite_weights_are_never_checkpointed(prepared_data_dir, tmp_path, monkeypatch):
    real_step = train_mod.adamw_step
    calls = []

    def step_that_breaks_a_weight(trainables, *args, **kwargs):
        real_step(trainables, *args, **kwargs)
        calls.append(1)
        if len(calls) == 4:                                  # step 4's update makes an inf
            trainables["h.0.mlp.c_fc.weight"][0, 0] = np.inf
    monkeypatch.setattr(train_mod, "adamw_step", step_that_breaks_a_weight)
    with pytest.raises(TrainingDiverged) as info:
        quiet(tiny_cfg(prepared_data_dir, tmp_path, checkpoint_every=2, eval_every=100))
    msg = str(info.value)
    assert "step 4" in msg and "h.0.mlp.c_fc.weight is not finite" in msg and "(step 2)" in msg
    trainables, _, meta = ckpt.load(tmp_path / "checkpoint.npz")
    assert meta["step"] == 2 and np.isfinite(trainables["h.0.mlp.c_fc.weight"]).all()


# --- long runs -------------------------------------------------------------------------------

def test_memory_stays_flat_over_300_steps(prepared_data_dir, tmp_path, monkeypatch):
    """tracemalloc sees every NumPy buffer. Record (current, peak since the last record) at the
    start of every step, into a preallocated array so that recording allocates nothing.

    Margin, 64 KiB: between the two windows (200 steps apart) a run legitimately keeps only 8
    more (step, tokens, val_loss) tuples in its curve, < 2 KiB, plus interpreter and NumPy
    cache warm-up (measured about 15 KiB). A leak of even one step's batch, x and y of
    (2, 16) int64 = 512 B per step, would add 100 KiB; of one step's gradients, 3 MB.
    """
    n, margin = 300, 64 * 1024
    mem = np.zeros((n + 1, 2), dtype=np.int64)   # mem[i]: at the start of step i, over step i-1
    calls = [0]
    real = train_mod.loss_and_grads

    def recording(*args, **kwargs):
        calls[0] += 1
        mem[calls[0]] = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        return real(*args, **kwargs)
    monkeypatch.setattr(train_mod, "loss_and_grads", recording)
    cfg = tiny_cfg(prepared_data_dir, tmp_path, steps=n, eval_every=25, checkpoint_every=50)
    tracemalloc.start()
    try:
        quiet(cfg)
    finally:
        tracemalloc.stop()
    assert calls[0] == n
    # windows over steps 49..98 and 249..298: each holds 2 evaluations and 1 checkpoint
    early, late = mem[50:100], mem[250:300]
    peak_early, peak_late = early[:, 1].max(), late[:, 1].max()
    assert peak_early > 1_000_000                 # it did see the step's arrays (logits, grads)
    assert peak_late <= peak_early + margin, (peak_early, peak_late)
    assert late[:, 0].max() <= early[:, 0].max() + margin, (early[:, 0].max(), late[:, 0].max())
    print(f"peak per step: {peak_early / 1e6:.3f} MB at steps 49-98, {peak_late / 1e6:.3f} MB at "
          f"249-298; held between steps: {early[:, 0].max() / 1e6:.3f} -> "
          f"{late[:, 0].max() / 1e6:.3f} MB")


def test_a_run_refused_at_its_start_leaves_no_empty_folder(prepared_data_dir, tmp_path, capsys):
    out = tmp_path / "a" / "run"
    rc = main(["train", "--data-dir", str(prepared_data_dir), "--out", str(out), *TINY_FLAGS,
               "--block-size", "100000"])
    err = capsys.readouterr().err
    assert rc == 2 and "block" in err, err
    assert not out.exists() and (tmp_path / "a").is_dir()  # the run folder, not those above
    kept = tmp_path / "kept"
    kept.mkdir()
    rc = main(["train", "--data-dir", str(prepared_data_dir), "--out", str(kept), *TINY_FLAGS,
               "--block-size", "100000"])
    assert rc == 2 and kept.is_dir()                        # a folder it did not make stays
