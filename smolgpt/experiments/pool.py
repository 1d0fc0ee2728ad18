"""Many runs at once: the independent runs of one decision trained side by side.

A chapter is many training runs, and most of them do not wait for one another: the seeds of a
comparison, the grid of one sweep round, the racers of a race. The runner (runs.run_many) hands
such a set to `train_all`, which gives every run to a `concurrent.futures` executor at once and
waits for all of them; a decision that needs an earlier result (a sweep extended past its edge)
is simply the next call.

- `--workers N` on a chapter's or `smolgpt sweep`'s command line, or SMOLGPT_WORKERS=N: N local
  worker processes (the standard library's process pool, started by spawn), each with one BLAS
  thread. The default is one worker per core (`default_workers`; chapters/README.md, "Running
  at larger scale", has the measurement behind it). N = 1 trains in the calling process with the
  BLAS threads it has, one run after another.
- `mpiexec -n N python -m mpi4py.futures chapters/09_long_race.py`: rank 0 runs the chapter and
  the other N - 1 processes, on as many machines as mpiexec spans, are its workers
  (`mpi4py.futures`); `--workers` is then ignored.

A run gives the same numbers whichever worker trains it: a worker has one BLAS thread, and a run
trained alone at one thread is the same run bit for bit (tests/test_pool.py). Workers train and
score; the calling process alone writes what marks a run finished, and the chapter's record.

Faults: a run that raises is named (label, seed) with its error once the runs in flight have
stopped, and the finished ones are kept. Ctrl-C, SIGTERM or SIGHUP stops every worker: each saves
its run's checkpoint (train() does that on a signal), which the next request resumes. A worker
killed by the system (SIGKILL, what the out-of-memory killer sends) is named with its run.
"""

from __future__ import annotations

import atexit
import contextlib
import heapq
import os
import signal
import sys
import traceback
from concurrent.futures import FIRST_COMPLETED, BrokenExecutor, Executor, wait
from pathlib import Path

from ..train import STOP_SIGNALS, stop_signals


class RunStopped(Exception):
    """Raised by a job whose run a stop signal ended early (its checkpoint is saved)."""


class RunsFailed(RuntimeError):
    """Some runs of a decision failed; the message names each (label, seed) and its error."""


def cores() -> int:
    """The CPUs this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def default_workers() -> int:
    """One worker of one BLAS thread per core: on a 2-core machine two processes of one thread
    trained 1.13-1.34x faster than one process of two (chapters/README.md)."""
    return cores()


def mpi_workers() -> int:
    """The worker processes of `python -m mpi4py.futures` (world size - 1), else 0."""
    from ..distributed import futures_workers
    return futures_workers()


# ---------------------------------------------------------------------------------------------
# The executor: made once per process, reused by every decision, dropped when it breaks


_executor: Executor | None = None
_executor_size = 0


def _one_blas_thread() -> None:
    """Initializer of every worker: one BLAS thread and no elementwise threads (one core each).
    Stop signals are left to train(), which catches them while it trains and saves the run it
    stops; outside a run a worker ignores them (a Ctrl-C in a terminal reaches every process of
    the job, and the calling process decides what happens next; the pool ends its idle workers
    by message, not by signal)."""
    from threadpoolctl import threadpool_limits

    from .. import layers
    threadpool_limits(1, user_api="blas")
    layers.THREADS = 1
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)


@contextlib.contextmanager
def _main_not_rerun():
    """Spawned workers import the parent's main module unless it has no file. A chapter is a
    script with no `if __name__ == "__main__"` (it opens as a notebook), so a worker would run
    the whole chapter: while workers start, its file is hidden from multiprocessing."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if path is not None:
        del main.__file__
    try:
        yield
    finally:
        if path is not None:
            main.__file__ = path


def executor(workers: int) -> Executor:
    """The executor of `workers` local processes (spawned, one BLAS thread each), or of
    mpi4py.futures' workers under `python -m mpi4py.futures`."""
    global _executor, _executor_size
    if _executor is not None and _executor_size == workers:
        return _executor
    drop_executor()
    if mpi_workers():
        from mpi4py.futures import MPIPoolExecutor
        # main=False: a worker must not import the chapter, which would run it again
        _executor = MPIPoolExecutor(initializer=_one_blas_thread, main=False)
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor
        _executor = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                        initializer=_one_blas_thread)
    _executor_size = workers
    return _executor


def drop_executor() -> None:
    """Shut the executor down (its workers end), so that the next decision starts afresh."""
    global _executor, _executor_size
    if _executor is not None:
        _executor.shutdown(wait=True, cancel_futures=True)
    _executor, _executor_size = None, 0


atexit.register(drop_executor)         # workers end before the interpreter tears this down


def _local_processes() -> dict:
    """{pid: multiprocessing.Process} of the local pool's workers (none under MPI)."""
    return dict(getattr(_executor, "_processes", None) or {})


def wall_time(decisions, workers: int) -> float:
    """Seconds to train `decisions` ([[seconds of each run] per decision], one decision after
    another) on `workers` workers that each take the next run when free, as the pool does."""
    total = 0.0
    for runs in decisions:
        free = [0.0] * workers                         # when each worker is next free
        for seconds in runs:
            heapq.heapreplace(free, free[0] + seconds)
        total += max(free)
    return total


# ---------------------------------------------------------------------------------------------
# One decision's runs


def train_all(make, jobs: list, names: list[str], done, workers: int, locks: list | None = None,
              verbose: bool = True) -> None:
    """Call make(*job) for every job, on `workers` processes, and done(i, result) in this process
    as each finishes (done returns the line to print, or None).

    names[i] says which run job i is ('LoRA r=4, seed 1'); locks[i] is its run folder's lock
    file, which names the process training it (to tell which run a killed worker had, and to
    start last the runs another process is making: by then they are usually finished, and
    reused, instead of holding a worker that waits). With one worker (and outside
    mpi4py.futures) the jobs run here, one after another. Raises RunsFailed naming every run that
    raised, KeyboardInterrupt when a stop signal ended some runs; every run that finished has
    been given to `done` first.
    """
    if not jobs:
        return
    order = sorted(range(len(jobs)), key=lambda i: bool(locks) and _made_elsewhere(locks[i]))
    with _bar(len(jobs), verbose) as bar:
        if workers <= 1 and not mpi_workers():
            _serially(make, jobs, order, done, bar)
        else:
            _in_parallel(make, jobs, order, names, done, bar, workers, locks)


def _made_elsewhere(lock) -> bool:
    """Whether a live process other than this one holds the run folder's lock file `lock`."""
    pid = _lock_holder(lock)
    if pid is None or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False                          # a lock left by a killed run: free to take over
    except PermissionError:
        return True                           # another user's process, alive
    return True


def _serially(make, jobs, order, done, bar) -> None:
    for i in order:
        try:
            result = make(*jobs[i])
        except RunStopped as e:
            raise KeyboardInterrupt(str(e)) from None
        bar.finished(done(i, result))


def _in_parallel(make, jobs, order, names, done, bar, workers, locks) -> None:
    pool = executor(workers)
    with _main_not_rerun():
        futures = {pool.submit(make, *jobs[i]): i for i in order}
    failed, stopped, lost = [], [], []
    known = _local_processes()
    with stop_signals() as stop:           # the first stop signal this process got
        pending = set(futures)
        while pending:
            finished, pending = wait(pending, timeout=1.0, return_when=FIRST_COMPLETED)
            known.update(_local_processes())
            for f in sorted(finished, key=futures.get):
                i = futures[f]
                if f.cancelled():                # never started: nothing to report
                    continue
                try:
                    bar.finished(done(i, f.result()))
                except RunStopped as e:
                    stopped.append(f"{names[i]}: {e}")
                except BrokenExecutor:
                    lost.append(i)
                except Exception as e:      # the run's own error, raised again here
                    failed.append(f"{names[i]}: {type(e).__name__}: {e}")
                    if not _users_to_fix(e):                          # a bug: show where
                        traceback.print_exception(e)
            if failed or stop.signum:
                for f in pending:
                    f.cancel()               # not started: nothing to save
                # running: each saves its checkpoint and returns (sent again each second, for
                # a run that was starting and not yet listening)
                _send_stop({_lock_holder(locks[futures[f]]) for f in pending if locks}
                           & set(known))
            bar.refresh()
    if lost:
        drop_executor()
        failed += _who_was_killed(lost, names, locks, known)
    if failed:
        raise RunsFailed(f"{len(failed)} of {len(jobs)} runs failed (the finished ones are kept"
                         f", stopped ones resume when asked for again): " + "; ".join(failed))
    if stop.signum or stopped:
        raise KeyboardInterrupt("; ".join(stopped) or "stopped")


def _users_to_fix(e: Exception) -> bool:
    """Whether a run's error is one its message tells the user how to fix (a file in the way,
    bad data, a rate that diverged), so its one line is enough; anything else is a bug, whose
    traceback is shown."""
    from ..checkpoint import CheckpointError
    from ..data import DataError
    from ..files import FolderInUse, WouldReplace
    from ..train import TrainingDiverged
    return isinstance(e, (ValueError, OSError, DataError, CheckpointError, FolderInUse,
                          WouldReplace, TrainingDiverged))


def _who_was_killed(lost, names, locks, processes) -> list[str]:
    """A line per run lost with a broken pool: 'its worker (pid) was killed by SIGKILL ...' for
    the run whose lock names a dead worker, 'not finished when a worker died' for the others
    (the pool stops them when it breaks; each saves its checkpoint)."""
    dead = {pid: p.exitcode for pid, p in processes.items()
            if p.exitcode is not None and p.exitcode != 0}
    out = []
    for i in lost:
        pid = _lock_holder(locks[i]) if locks else None
        if pid in dead and dead[pid] < 0:
            how = signal.Signals(-dead[pid]).name
            why = " (the system's out-of-memory killer sends it)" if how == "SIGKILL" else ""
            out.append(f"{names[i]}: its worker (pid {pid}) was killed by {how}{why}")
        elif pid in dead:
            out.append(f"{names[i]}: its worker (pid {pid}) exited with status {dead[pid]}")
        else:
            out.append(f"{names[i]}: not finished when a worker died (resumes when asked for "
                       f"again)")
    return out


def _lock_holder(lock) -> int | None:
    """The pid a run folder's .lock names (files.RunLock writes it), if any."""
    import json
    try:
        return int(json.loads(Path(lock).read_text())["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _send_stop(pids) -> None:
    """SIGTERM to the workers training: a Ctrl-C in a terminal reaches them by itself, a `kill`
    of this process does not. Each saves its checkpoint and returns."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)


class _Bar:
    """tqdm's bar over a decision's runs (finished / total, time left), on a terminal only and
    even for a quiet caller (it leaves nothing behind), and, when `say`, one printed line per
    finished run."""

    def __init__(self, total: int, say: bool):
        self.on, self.tqdm = say, None
        if total > 1:
            from tqdm import tqdm
            self.tqdm = tqdm(total=total, unit="run", desc="runs", dynamic_ncols=True,
                             disable=None, leave=False)          # None: only on a terminal

    def finished(self, line: str | None) -> None:
        if line and self.on:
            if self.tqdm is not None and not self.tqdm.disable:
                self.tqdm.write(line)
            else:
                print(line, flush=True)
        if self.tqdm is not None:
            self.tqdm.update(1)

    def refresh(self) -> None:
        if self.tqdm is not None:
            self.tqdm.refresh()


@contextlib.contextmanager
def _bar(total: int, on: bool):
    bar = _Bar(total, on)
    try:
        yield bar
    finally:
        if bar.tqdm is not None:
            with contextlib.suppress(OSError):
                bar.tqdm.close()
