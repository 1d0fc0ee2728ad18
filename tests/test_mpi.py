"""Data-parallel training under MPI (smolgpt/distributed.py): 2 ranks train the same model as 1
process, send the bytes they should, and a failing rank ends the whole job.

Each test starts `mpiexec -n 2` on small models (2 blocks of width 32, context 32, global batch
4); all of them are skipped when mpi4py or mpiexec is missing (pip install -e ".[mpi]").
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from smolgpt import checkpoint as ckpt
from smolgpt.methods import MethodSpec, build
from smolgpt.model import GPTConfig
from smolgpt.train import TrainConfig, train

REPO = Path(__file__).resolve().parents[1]
SMALL = GPTConfig(n_layer=2, n_head=2, n_embd=32, block_size=32)
STEPS = 6
SPECS = {"full": MethodSpec("full"), "fastfood": MethodSpec("fastfood", d=100),
         "lora": MethodSpec("lora", rank=2)}
TIMEOUT = 90                     # seconds for one mpiexec job; a hang fails instead of blocking CI

pytestmark = pytest.mark.usefixtures("one_blas_thread")


def _mpiexec() -> str:
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        pytest.skip('mpi4py is not installed (pip install -e ".[mpi]")')
    # the launcher installed next to this Python (the mpich wheel's), else one on PATH
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    exe = shutil.which("mpiexec", path=path)
    if exe is None:
        pytest.skip('no mpiexec found (pip install -e ".[mpi]" brings MPICH\'s)')
    return exe


def small_cfg(data_dir, out, spec, **changes) -> TrainConfig:
    base = dict(gpt=SMALL, method=spec, steps=STEPS, batch_size=4, warmup=2, eval_every=3,
                eval_windows=4, checkpoint_every=2, out=str(out), data_dir=str(data_dir),
                sample_tokens=0)
    return TrainConfig(**{**base, **changes})


def run_mpi(args: list[str], tmp_path: Path, n: int = 2) -> subprocess.CompletedProcess:
    """`mpiexec -n n python args...` with one BLAS thread per rank; fails on a hang."""
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    cmd = [_mpiexec(), "-n", str(n), sys.executable, *args]
    try:
        return subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True,
                              timeout=TIMEOUT)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"mpiexec still running after {TIMEOUT} s: {e.stderr}") from None


def steps_of(log_path) -> dict[int, dict]:
    records = [json.loads(line) for line in Path(log_path).read_text().splitlines()]
    return {r["step"]: r for r in records if r["event"] == "step"}


@pytest.fixture(scope="module")
def two_rank_runs(prepared_data_dir, tmp_path_factory) -> Path:
    """One `mpiexec -n 2` job training the three methods through the Python API, one after the
    other; returns the folder holding runs <name>/ (python -m mpi4py aborts on an exception)."""
    _mpiexec()
    root = tmp_path_factory.mktemp("mpi2")
    driver = root / "driver.py"
    driver.write_text(textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(REPO / 'tests')!r})
        from test_mpi import SPECS, small_cfg
        from smolgpt.train import train
        for name, spec in SPECS.items():
            train(small_cfg({str(prepared_data_dir)!r}, {str(root)!r} + "/" + name, spec),
                  progress=False, verbose=False)
        """))
    r = run_mpi(["-m", "mpi4py", str(driver)], root)
    assert r.returncode == 0, r.stderr
    return root


@pytest.mark.parametrize("name", list(SPECS))
def test_two_ranks_give_the_losses_of_one_process(two_rank_runs, prepared_data_dir, tmp_path,
                                                  name):
    train(small_cfg(prepared_data_dir, tmp_path / name, SPECS[name]), progress=False,
          verbose=False)
    one, two = steps_of(tmp_path / name / "log.jsonl"), steps_of(two_rank_runs / name /
                                                                  "log.jsonl")
    assert sorted(one) == sorted(two) == list(range(1, STEPS + 1))
    worst = 0.0
    for s in one:                  # the same tokens, the sums in another order: float32 rounding
        assert two[s]["loss"] == pytest.approx(one[s]["loss"], rel=1e-5), s
        assert two[s]["grad_norm"] == pytest.approx(one[s]["grad_norm"], rel=1e-3), s
        worst = max(worst, abs(two[s]["loss"] - one[s]["loss"]))
    a, _, _ = ckpt.load(tmp_path / name / "checkpoint.npz")
    b, _, meta = ckpt.load(two_rank_runs / name / "checkpoint.npz")
    assert meta["processes"] == 2
    for k in a:
        np.testing.assert_allclose(b[k], a[k], rtol=1e-4, atol=1e-6, err_msg=k)
    print(f"{SPECS[name].label()}: {STEPS} losses of 2 ranks vs 1 process, largest difference "
          f"{worst:.1e}")


@pytest.mark.parametrize("name", list(SPECS))
def test_bytes_per_step_are_the_trainables_gradients(two_rank_runs, name):
    C, V, T = SMALL.n_embd, SMALL.vocab_size, SMALL.block_size
    embeddings = 4 * (V * C + T * C)                       # float32 wte and wpe, both dense
    own = {"full": 4 * build(MethodSpec("full"), SMALL).n_trainable,    # every block tensor
           "fastfood": 4 * 100,                                         # d coefficients
           "lora": 4 * build(SPECS["lora"], SMALL).n_trainable}[name]   # the A and B factors
    records = [json.loads(line) for line in
               (two_rank_runs / name / "log.jsonl").read_text().splitlines()]
    mpi = next(r for r in records if r["event"] == "mpi")
    assert (mpi["embedding_bytes"], mpi["method_bytes"]) == (embeddings, own)
    sent = {r["allreduce_bytes"] for r in records if r["event"] == "step"}
    assert sent == {embeddings + own + 9}                  # + 8 bytes of loss, 1 of stop flag
    print(f"{SPECS[name].label()}: {embeddings + own + 9:,} bytes all-reduced per step, "
          f"{own:,} of them the method's own")


def test_a_failing_rank_ends_the_job_and_the_run_resumes(two_rank_runs, prepared_data_dir,
                                                         tmp_path):
    """Rank 1 raises in step 5: every rank stops at once with one line of ours, the checkpoint
    of step 4 loads, and resuming it under mpiexec finishes the run exactly as the
    uninterrupted 2-rank run did."""
    out = tmp_path / "run"
    driver = tmp_path / "failing.py"
    driver.write_text(textwrap.dedent("""
        import sys
        from smolgpt import cli, distributed, train
        step = train._Run.train_step
        def failing(run, x, y, lr):
            if distributed.world().rank == 1 and run.state.step == 4:
                raise RuntimeError("injected failure in step 5")
            return step(run, x, y, lr)
        train._Run.train_step = failing
        sys.exit(cli.main(sys.argv[1:]))
        """))
    flags = ["--n-layer", "2", "--n-head", "2", "--n-embd", "32", "--block-size", "32",
             "--batch-size", "4", "--steps", str(STEPS), "--warmup", "2", "--eval-every", "3",
             "--eval-windows", "4", "--checkpoint-every", "2", "--sample-tokens", "0",
             "--method", "fastfood", "--d", "100", "--no-progress",
             "--data-dir", str(prepared_data_dir)]
    r = run_mpi([str(driver), "train", "--out", str(out), *flags], tmp_path)
    assert r.returncode == 1, r.stderr
    ours = [line for line in r.stderr.splitlines() if line.startswith("smolgpt:")]
    assert ours == ["smolgpt: rank 1 of 2: RuntimeError: injected failure in step 5"], r.stderr
    _, adam, meta = ckpt.load(out / "checkpoint.npz")
    assert meta["step"] == adam["t"] == 4

    r = run_mpi(["-m", "smolgpt.cli", "train", "--resume", str(out / "checkpoint.npz"),
                 "--no-progress"], tmp_path)
    assert r.returncode == 0, r.stderr
    resumed, whole = steps_of(out / "log.jsonl"), steps_of(two_rank_runs / "fastfood" /
                                                           "log.jsonl")
    for s in (5, 6):                        # the same N: the same floats, bit for bit
        assert resumed[s]["loss"] == whole[s]["loss"], s
    print(f"rank 1 failed in step 5: one line, exit 1; resumed from step 4 to {STEPS} with the "
          f"losses of the uninterrupted run")


def test_a_batch_the_ranks_cannot_share_is_refused_in_one_line(prepared_data_dir, tmp_path):
    r = run_mpi(["-m", "smolgpt.cli", "train", "--batch-size", "5", "--steps", "1",
                 "--data-dir", str(prepared_data_dir), "--out", str(tmp_path / "run")], tmp_path)
    assert r.returncode == 2
    ours = [line for line in r.stderr.splitlines() if line.startswith("smolgpt:")]
    assert len(ours) == 1 and "--batch-size 5" in ours[0] and "multiple of 2" in ours[0], r.stderr
    assert not (tmp_path / "run").exists()          # refused before any file was written


def signalling_driver(path, signal_name: str):
    """A script that runs the command line, with rank 1 sending itself `signal_name` during its
    third step; returns its path."""
    path.write_text(textwrap.dedent(f"""
        import os, signal, sys
        from smolgpt import cli, distributed, train
        step = train._Run.train_step
        def signalled(run, x, y, lr):
            if distributed.world().rank == 1 and run.state.step == 2:
                os.kill(os.getpid(), signal.{signal_name})
            return step(run, x, y, lr)
        train._Run.train_step = signalled
        sys.exit(cli.main(sys.argv[1:]))
        """))
    return path


def test_a_killed_rank_ends_the_job(prepared_data_dir, tmp_path):
    """A rank that dies without a word (kill -9, out of memory): MPI's launcher ends the rest."""
    driver = signalling_driver(tmp_path / "dying.py", "SIGKILL")
    r = run_mpi([str(driver), "train", "--n-layer", "1", "--n-embd", "32", "--block-size", "32",
                 "--batch-size", "4", "--steps", "10", "--eval-windows", "4",
                 "--sample-tokens", "0", "--no-progress", "--data-dir", str(prepared_data_dir),
                 "--out", str(tmp_path / "run")], tmp_path)
    assert r.returncode not in (0, 2), r.stderr        # not a success, nor a refused command
    records = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text()
               .splitlines()]
    assert [e["step"] for e in records if e["event"] == "step"] == [1, 2]   # died in step 3
    assert not any(e["event"] == "end" for e in records)
