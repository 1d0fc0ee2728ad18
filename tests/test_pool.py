"""Many runs at once (smolgpt/experiments/pool.py, runs.run_many): the numbers of one run after
another at one BLAS thread, bit for bit, whether 2 local workers or mpi4py.futures' workers train
them; the record in the order asked; a failing run, a killed worker and a stop signal named and
survived."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from smolgpt.experiments import pool, runs
from smolgpt.methods import MethodSpec
from smolgpt.model import GPTConfig
from smolgpt.train import TrainConfig

REPO = Path(__file__).resolve().parents[1]
TIMEOUT = 240                   # seconds for one chapter; a hang fails instead of blocking CI

pytestmark = pytest.mark.usefixtures("one_blas_thread")


@pytest.fixture
def micro(prepared_data_dir) -> TrainConfig:
    gpt = GPTConfig(n_layer=1, n_head=2, n_embd=16, block_size=16)
    return TrainConfig(gpt=gpt, steps=4, batch_size=2, warmup=1, eval_every=2, eval_windows=2,
                       sample_tokens=0, data_dir=str(prepared_data_dir))


def the_numbers(folder: Path) -> dict:
    """Everything a run computed, without its timings: curve, losses, score, final weights."""
    summary = json.loads((folder / "summary.json").read_text())
    [final] = [json.loads(p.read_text()) for p in folder.glob("final_*w.json")]
    final.pop("seconds")
    with np.load(folder / "checkpoint.npz") as z:
        weights = {k: z[k] for k in z.files if k.startswith("trainables")}
    return {"curve": summary["val_curve"], "val_loss": summary["val_loss"],
            "step": summary["step"], "final": final, "weights": weights}


def assert_same_runs(a: Path, b: Path, only: str = "*") -> int:
    """The run folders under a and b (those named `only`) are the same runs with the same
    numbers, bit for bit."""
    names = sorted(p.name for p in a.glob(only))
    assert names and names == sorted(p.name for p in b.glob(only))
    for name in names:
        x, y = the_numbers(a / name), the_numbers(b / name)
        wx, wy = x.pop("weights"), y.pop("weights")
        assert x == y, name
        assert wx.keys() == wy.keys() and all(np.array_equal(wx[k], wy[k]) for k in wx), name
    return len(names)


def test_two_workers_train_the_runs_of_one_process_bit_for_bit(micro, tmp_path, monkeypatch):
    cfgs = [runs.with_seed(dataclasses.replace(micro, method=spec), seed)
            for spec in (MethodSpec("full"), MethodSpec("lora", rank=2)) for seed in (0, 1)]
    for workers in (1, 2):
        monkeypatch.setenv("SMOLGPT_RUNS", str(tmp_path / f"runs{workers}"))
        got = runs.run_many(cfgs, final_windows=4, workers=workers, verbose=False,
                            record=tmp_path / f"record{workers}.jsonl")
        assert [(s["label"], s["seed"]) for s in got] == [(c.method.label(), c.seed)
                                                          for c in cfgs]
    assert assert_same_runs(tmp_path / "runs1", tmp_path / "runs2") == 4
    keys = [[json.loads(line)["key"] for line in (tmp_path / f"record{w}.jsonl").open()]
            for w in (1, 2)]
    assert keys[0] == keys[1] == [runs.run_key(c, runs._data(c)[1]) for c in cfgs]


def test_a_failing_run_is_named_and_the_others_are_kept(micro, tmp_path, monkeypatch):
    monkeypatch.setenv("SMOLGPT_RUNS", str(tmp_path / "runs"))
    good, bad = runs.with_seed(micro, 0), runs.with_seed(micro, 1)
    folder = runs.runs_root() / f"full_seed1_{runs.run_key(bad, runs._data(bad)[1])}"
    folder.mkdir(parents=True)
    (folder / "log.jsonl").write_text("someone else's notes\n")     # train() must refuse it
    record = tmp_path / "record.jsonl"
    with pytest.raises(pool.RunsFailed, match=r"1 of 2 runs failed.*full, seed 1: "
                                              r"\w*(Error|Replace)"):
        runs.run_many([good, bad], final_windows=4, workers=2, verbose=False, record=record)
    assert [json.loads(line)["seed"] for line in record.open()] == [0]
    assert len(list(runs.runs_root().glob("*/summary.json"))) == 1


def test_a_worker_killed_by_the_system_is_named(micro, tmp_path, monkeypatch):
    """SIGKILL (what the out-of-memory killer sends) ends one worker mid-run: the decision ends
    with a line naming that run and the signal, not a hang; the next decision starts afresh."""
    monkeypatch.setenv("SMOLGPT_RUNS", str(tmp_path / "runs"))
    long = runs.with_seed(dataclasses.replace(micro, steps=100_000, checkpoint_every=10), 0)

    def kill_when_training():
        for _ in range(600):
            for lock in runs.runs_root().glob("*/.lock"):
                pid = pool._lock_holder(lock)
                if pid is not None and pid != os.getpid():
                    os.kill(pid, signal.SIGKILL)
                    return
            time.sleep(0.1)
    killer = threading.Thread(target=kill_when_training)
    killer.start()
    with pytest.raises(pool.RunsFailed, match=r"full, seed 0: its worker \(pid \d+\) was killed "
                                              r"by SIGKILL \(the system's out-of-memory"):
        runs.run_many([long], final_windows=4, workers=2, verbose=False, record=False)
    killer.join()
    again = runs.run_many([runs.with_seed(micro, 3)], final_windows=4, workers=2, verbose=False,
                          record=False)
    assert again[0]["step"] == micro.steps


STOPPED_DRIVER = """
import dataclasses, sys
from smolgpt.experiments import runs
from smolgpt.model import GPTConfig
from smolgpt.train import TrainConfig
gpt = GPTConfig(n_layer=1, n_head=2, n_embd=16, block_size=16)
cfg = TrainConfig(gpt=gpt, steps=100_000, batch_size=2, warmup=1, eval_every=100_000,
                  eval_windows=2, sample_tokens=0, data_dir=sys.argv[1], checkpoint_every=100_000)
try:
    runs.run_many([runs.with_seed(cfg, s) for s in (0, 1, 2)], final_windows=4, workers=2,
                  verbose=False, record=False)
except KeyboardInterrupt as e:
    print("stopped:", e)
"""


def test_sigterm_stops_every_worker_and_each_saves_its_run(prepared_data_dir, tmp_path):
    runs_dir = tmp_path / "runs"
    env = {**os.environ, "SMOLGPT_RUNS": str(runs_dir), "OPENBLAS_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-c", STOPPED_DRIVER, str(prepared_data_dir)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(600):                            # both workers training
            if len(list(runs_dir.glob("*/.lock"))) == 2:
                break
            time.sleep(0.1)
        time.sleep(1.0)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    saved = sorted(runs_dir.glob("*/checkpoint.npz"))
    # both runs in flight, and the third if a worker had taken it already, each stopped
    assert "stopped:" in out and out.count("stopped at step") == len(saved) >= 2, out + err
    assert not list(runs_dir.glob("*/summary.json"))
    for path in saved:
        log = [json.loads(line) for line in (path.parent / "log.jsonl").open()]
        assert log[-1]["event"] == "interrupted" and log[-1]["signal"] == "SIGTERM"


def test_the_memory_check_lowers_the_workers_with_one_line(micro, monkeypatch, capsys):
    from smolgpt import memory
    need = memory.estimate_training_bytes(micro.gpt, micro.batch_size,
                                          runs.build(micro.method, micro.gpt))["total"]
    assert memory.workers_that_fit(need, 8, None) == 8
    assert memory.workers_that_fit(need, 8, 10 * need) == 8
    assert memory.workers_that_fit(need, 8, int(2.5 * need)) == 2
    assert memory.workers_that_fit(need, 8, need // 2) == 1
    monkeypatch.setattr(memory, "available_bytes", lambda: 3 * need)
    assert runs._workers_that_fit([micro], 8, verbose=True) == 3
    line = capsys.readouterr().out.strip()
    assert "\n" not in line and line.startswith("memory: 8 workers would need") and \
        line.endswith("using 3")


# ---------------------------------------------------------------------------------------------
# A chapter's quick mode: 2 local workers, and mpi4py.futures' 2 workers, against one process


def run_chapter(cmd: list[str], out: Path, data_dir: Path) -> str:
    env = {**os.environ, "SMOLGPT_QUICK": "1", "SMOLGPT_OUT": str(out),
           "SMOLGPT_RUNS": str(out / "runs"), "SMOLGPT_DATA_DIR": str(data_dir),
           "MPLBACKEND": "Agg", "OPENBLAS_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    try:
        proc = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True,
                              timeout=TIMEOUT)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"{cmd} still running after {TIMEOUT} s: {e.stderr}") from None
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Takeaways" in proc.stdout
    return proc.stdout


def retrain_alone(folders, into: Path, data_dir: Path, monkeypatch) -> None:
    """The runs in `folders` trained again here, one after another, at one BLAS thread."""
    monkeypatch.setenv("SMOLGPT_RUNS", str(into))
    for folder in folders:
        cfg = TrainConfig.from_dict(json.loads((folder / "log.jsonl").open().readline())
                                    ["config"])
        windows = int(next(folder.glob("final_*w.json")).name[6:-6])
        runs.run(dataclasses.replace(cfg, data_dir=str(data_dir)), final_windows=windows,
                 workers=1, verbose=False, record=False)


def mpiexec() -> str:
    pytest.importorskip("mpi4py", reason='mpi4py is not installed (pip install -e ".[mpi]")')
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    exe = shutil.which("mpiexec", path=path)
    if exe is None:
        pytest.skip('no mpiexec found (pip install -e ".[mpi]" brings MPICH\'s)')
    return exe


CHAPTER = str(REPO / "chapters" / "04_lora.py")


@pytest.fixture(scope="module")
def chapter_with_workers(prepared_data_dir, tmp_path_factory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("workers")
    return out, run_chapter([sys.executable, CHAPTER, "--workers", "2"], out, prepared_data_dir)


def test_a_chapter_on_two_workers_gets_the_runs_of_one_process(chapter_with_workers, tmp_path,
                                                               prepared_data_dir, monkeypatch):
    """Seed 0's runs of each method (seed 1's are made alike), trained again one by one."""
    out, text = chapter_with_workers
    retrain_alone(sorted((out / "runs").glob("*_seed0_*")), tmp_path / "alone",
                  prepared_data_dir, monkeypatch)
    assert assert_same_runs(out / "runs", tmp_path / "alone", only="*_seed0_*") >= 3


def test_a_chapter_under_mpi4py_futures_gets_the_same_runs(chapter_with_workers,
                                                           prepared_data_dir, tmp_path):
    exe = mpiexec()
    out, text = chapter_with_workers
    mpi_text = run_chapter([exe, "-n", "3", sys.executable, "-m", "mpi4py.futures", CHAPTER],
                           tmp_path, prepared_data_dir)
    assert assert_same_runs(out / "runs", tmp_path / "runs") >= 4
    results = [[line for line in t.splitlines() if "final held-out loss" in line]
               for t in (text, mpi_text)]                   # the chapter's results, as printed
    assert len(results[0]) >= 3 and results[0] == results[1]


def test_wall_time_hands_each_run_to_the_first_worker_free():
    assert pool.wall_time([[3, 1, 1, 1], [2]], 1) == 8
    assert pool.wall_time([[3, 1, 1, 1], [2]], 2) == 3 + 2         # 3 | 1+1+1, then 2
    assert pool.wall_time([[1, 1, 3]], 2) == 4                      # FIFO, not longest first
    assert pool.wall_time([[5, 1], []], 64) == 5


def test_a_run_stopped_while_scored_is_kept_not_resumed(micro, tmp_path, monkeypatch):
    """Killed after training but before its summary was written (workers score before the
    parent writes it), a run is taken from its log: its weights-only checkpoint is not resumed."""
    monkeypatch.setenv("SMOLGPT_RUNS", str(tmp_path / "runs"))
    first = runs.run(micro, final_windows=4, workers=1, verbose=False, record=False)
    folder = Path(first["dir"])
    for name in ("summary.json", "final_4w.json"):
        (folder / name).unlink()
    real_sleep = time.sleep
    monkeypatch.setattr(runs.time, "sleep", lambda s: real_sleep(0.01))     # the grace wait
    again = runs.run(micro, final_windows=4, workers=1, verbose=False, record=False)
    assert again["val_curve"] == json.loads(json.dumps(first["val_curve"]))
    assert again["final"]["loss"] == first["final"]["loss"]
    assert again["elapsed"] == first["elapsed"]                  # not trained a second time


def _lock_naming(path: Path, pid: int) -> Path:
    path.mkdir(parents=True)
    (path / ".lock").write_text(json.dumps({"pid": pid, "host": "here", "command": "x"}))
    return path / ".lock"


def test_a_run_another_process_is_making_is_taken_last(tmp_path):
    """One worker (a lane) reaching a run that another live process is training takes the other
    runs first, instead of waiting there; a lock left by a dead process does not defer its run."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    locks = [_lock_naming(tmp_path / "a", os.getppid()),          # alive, not this process
             tmp_path / "b" / ".lock",                             # free
             _lock_naming(tmp_path / "c", dead.pid),               # its holder is gone
             _lock_naming(tmp_path / "d", os.getpid())]            # this very process
    made = []
    pool.train_all(lambda name: made.append(name) or name, [("a",), ("b",), ("c",), ("d",)],
                   list("abcd"), lambda i, result: None, workers=1, locks=locks, verbose=False)
    assert made == ["b", "c", "d", "a"]
