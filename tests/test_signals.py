"""A stopped job keeps its progress (issue 22): SIGINT, SIGTERM and SIGHUP stop `smolgpt train`
the same way. Each signal is sent to a real `smolgpt train` process after a few steps; it must
save a checkpoint at the step it reached, log why it stopped, release the folder's lock, print
the command that resumes it, and exit with the documented status 4 (STOPPED). The resume must
then continue from that very step. Outside the training loop the same signals end the command at
once with 128 + the signal's number, one line, the lock released.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import time

import pytest
from test_cli import TINY_FLAGS, run
from test_train import read_log, start_cli_run, step_records, wait_for_steps

from smolgpt import checkpoint as ckpt
from smolgpt import data as data_mod
from smolgpt.cli import STOPPED

pytestmark = pytest.mark.usefixtures("one_blas_thread")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT],
                         ids=["SIGTERM", "SIGHUP", "SIGINT"])
def test_a_signal_saves_the_step_reached_and_resumes(signum, prepared_data_dir, tmp_path,
                                                     capsys):
    out = tmp_path / "run"
    out.mkdir()
    proc = start_cli_run(prepared_data_dir, out)        # 100,000 steps, no periodic checkpoint
    wait_for_steps(proc, out / "log.jsonl", 3)
    proc.send_signal(signum)
    stdout, stderr = proc.communicate(timeout=60)
    name = signal.Signals(signum).name
    assert proc.returncode == STOPPED, stderr
    assert "Traceback" not in stderr

    log = read_log(out / "log.jsonl")
    _, adam, meta = ckpt.load(out / "checkpoint.npz")
    k = meta["step"]
    assert adam is not None and k >= 3                    # resumable, and not step 0
    assert sorted(step_records(log)) == list(range(1, k + 1))      # the step it was on
    assert log[-1] == {"event": "interrupted", "step": k, "signal": name,
                       "checkpoint": str(out / "checkpoint.npz")}
    assert not (out / ".lock").exists()                   # released
    said = [line for line in stdout.splitlines() if line.startswith("interrupted")]
    assert len(said) == 1 and f"by {name} at step {k}" in said[0], stdout
    command = shlex.split(said[0].split("continue with: ")[1])
    assert command[:3] == ["smolgpt", "train", "--resume"]

    # the printed command continues the run from step k (two more steps here)
    rc, _, err = run([*command[1:], "--steps", str(k + 2), "--no-progress"], capsys)
    assert rc == 0, err
    assert ckpt.load(out / "checkpoint.npz")[2]["step"] == k + 2
    log = read_log(out / "log.jsonl")
    assert sorted(step_records(log)) == list(range(1, k + 3))
    events = [r["event"] for r in log if r["event"] not in ("step", "eval", "schedule_changed")]
    assert events == ["start", "interrupted", "resume", "end"]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_a_signal_before_training_starts_is_one_line_128_plus_n(signum, prepared_data_dir,
                                                                tmp_path, monkeypatch, capsys):
    def signalled(*args, **kwargs):                     # the signal arrives while data loads
        os.kill(os.getpid(), signum)
        time.sleep(5)                                   # the handler raises before this ends
        raise AssertionError("the signal did not stop the command")
    monkeypatch.setattr(data_mod, "load_splits", signalled)
    before = signal.getsignal(signum)
    rc, _, err = run(["train", "--data-dir", prepared_data_dir, "--out", tmp_path / "run",
                      *TINY_FLAGS], capsys)
    name = signal.Signals(signum).name
    assert rc == 128 + signum and "Traceback" not in err
    assert err == f"smolgpt: stopped by {name}; files already written are kept\n"
    assert not (tmp_path / "run" / ".lock").exists()
    assert not (tmp_path / "run" / "checkpoint.npz").exists()
    assert signal.getsignal(signum) is before          # main() put the old handler back


def test_the_log_of_a_stop_at_run_names_no_signal(prepared_data_dir, tmp_path):
    from smolgpt.train import TrainConfig, train
    from test_cli import TINY
    cfg = TrainConfig(gpt=TINY, steps=5, batch_size=2, warmup=1, eval_every=5, eval_windows=4,
                      out=str(tmp_path / "r"), data_dir=str(prepared_data_dir), sample_tokens=0)
    s = train(cfg, stop_at=2, progress=False, verbose=False)
    assert s["interrupted"] and s["signal"] is None
    last = json.loads((tmp_path / "r" / "log.jsonl").read_text().splitlines()[-1])
    assert last == {"event": "interrupted", "step": 2,
                    "checkpoint": str(tmp_path / "r" / "checkpoint.npz")}


def test_under_mpi_a_signal_to_one_rank_stops_every_rank_at_the_same_step(prepared_data_dir,
                                                                          tmp_path):
    """SIGTERM reaches rank 1 alone, after its second step: both ranks stop after the same step
    (the flag is all-reduced), rank 0 saves that step, and the job exits 4 with nothing hung."""
    from test_mpi import run_mpi, signalling_driver
    driver = signalling_driver(tmp_path / "signalled.py", "SIGTERM")
    out = tmp_path / "run"
    r = run_mpi([str(driver), "train", "--n-layer", "1", "--n-embd", "32", "--block-size", "32",
                 "--batch-size", "4", "--steps", "50", "--eval-windows", "4",
                 "--checkpoint-every", "1000", "--sample-tokens", "0", "--no-progress",
                 "--data-dir", str(prepared_data_dir), "--out", str(out)], tmp_path)
    assert r.returncode == STOPPED, r.stderr
    assert "Traceback" not in r.stderr
    k = ckpt.load(out / "checkpoint.npz")[2]["step"]
    assert k == 3                                  # the step rank 1 was in when it was told
    log = read_log(out / "log.jsonl")
    assert sorted(step_records(log)) == [1, 2, 3] and log[-1]["event"] == "interrupted"
    assert f"at step {k}" in r.stdout and "mpiexec -n 2 smolgpt train --resume" in r.stdout
    assert not (out / ".lock").exists()
