"""Data-parallel training over processes and machines with MPI: the world, the all-reduce, abort.

    mpiexec -n 2 smolgpt train --method fastfood --d 1000

starts two processes ("ranks") that train ONE model. Every rank draws the same global batch of B
sequences from the same RNG and keeps its own b = B/N rows, computes the loss and gradients on
them, and the trainables' gradients are summed over ranks (an all-reduce); every rank then holds
the same gradient, takes the same AdamW step and keeps the same trainables. Rank 0 alone
evaluates, logs, samples and checkpoints. The N-rank run sees exactly the tokens of the 1-process
run with the same global batch and seed; its losses equal that run's to float32 rounding (the
sums are ordered differently, so not bit for bit).

Why the reduced gradient is the 1-process gradient: each rank's loss is the mean over its b x T
tokens. The global mean over B x T tokens is the average of the ranks' means, so each rank scales
its gradients by b/B = 1/N before the sum:

    dL/da = sum over ranks r of (b/B) dL_r/da          L_r: rank r's mean loss on its rows

What is sent each step, per rank: every trainable's gradient, one all-reduce per array (in sorted
key order, the same on every rank), plus 8 bytes of loss and 1 byte of "stop" flag.
`World.step_bytes` counts them, and the training log records it in every step.

Careful with the embeddings: wte's gradient is NOT sparse. The lookup x = wte[idx] touches only
the rows of the tokens in the batch, but the head is tied (logits = x @ wte^T), and the softmax
gives every vocabulary entry a non-zero probability, so the head's part of the gradient,
dlogits^T @ x, is a dense (V, C) matrix. Sending the lookup's rows sparsely would save nothing:
they are added into a matrix that is dense anyway. Sending the head's factors instead (dlogits
and x) would be N_tokens x (V + C) numbers, more than V x C whenever a rank has more tokens than
C. So every method sends the whole of wte's gradient, V x C floats (25.7 MB per step on `tiny`),
next to which a subspace model's d coefficients are nothing.

When the process was not started by an MPI launcher (none of the launchers' environment
variables below is set), or was started as a single process and mpi4py is missing, `world()` is
a 1-process world and everything runs exactly as without this module (no MPI import, nothing
reduced, bit-identical results). Started as several processes without mpi4py, it refuses
(MPIUnavailable) rather than let each process train alone.

Faults: an MPI job whose one rank stops while the others wait in a collective would hang. The
command line (`smolgpt.cli.main`) therefore ends every rank on any error with `abort_all`: one
line, then MPI_Abort. Under mpiexec, a script that calls `train()` itself should do the same, or
run as `mpiexec -n N python -m mpi4py script.py` (mpi4py then aborts on an uncaught exception).
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field

import numpy as np

# Set by the launchers in each process they start: MPICH's hydra (PMI_*), Open MPI, PMIx (Slurm,
# recent Open MPI). Read before mpi4py is imported, so a plain run never initialises MPI.
LAUNCHER_RANK_VARS = ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK")
LAUNCHER_SIZE_VARS = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE")
THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
# A rank other than 0 waits this long before reporting its error: an error every rank meets (a bad
# flag) is then reported once, by rank 0, whose abort ends the other ranks first.
REPORT_DELAY = 1.0
# The launcher forwards a rank's output through a pipe; an abort right after printing can end the
# job before the line is forwarded (MPICH's hydra lost it in 2 of 6 tries), so wait this long.
FORWARD_DELAY = 0.3


class MPIUnavailable(ValueError):
    """Started by an MPI launcher with several processes, but mpi4py cannot be imported."""


@dataclass
class World:
    """This process's place in the job: rank r of `size` (rank 0 of 1 without MPI)."""

    rank: int = 0
    size: int = 1
    comm: object = None                      # mpi4py's COMM_WORLD when size > 1
    step_bytes: int = 0                      # bytes all-reduced since the last `mean` began
    threads: int | None = None               # BLAS threads per rank, when set here
    _mpi: object = field(default=None, repr=False)

    @property
    def lead(self) -> bool:
        """Rank 0: the one rank that evaluates, logs, samples and writes files."""
        return self.rank == 0

    def check_batch(self, batch_size: int) -> None:
        """Refuse a global batch the ranks cannot share equally (one line, naming the fix)."""
        if batch_size % self.size:
            ok = [n for n in range(1, batch_size + 1) if batch_size % n == 0]
            raise ValueError(
                f"--batch-size {batch_size} (the global batch) cannot be shared equally by "
                f"{self.size} MPI processes: use a multiple of {self.size}, e.g. "
                f"{-(-batch_size // self.size) * self.size}, or a number of processes that "
                f"divides it ({', '.join(map(str, ok))})")

    def rows(self, *batches: np.ndarray) -> tuple[np.ndarray, ...]:
        """This rank's share of each global batch: (B, ...) -> rows [r b, (r + 1) b), b = B/N."""
        if self.size == 1:
            return batches
        b = len(batches[0]) // self.size
        return tuple(a[self.rank * b:(self.rank + 1) * b] for a in batches)

    def mean(self, grads: dict[str, np.ndarray], loss: float) -> float:
        """The global batch's gradient, in place in `grads`, and its mean loss.

        grads: this rank's mean-loss gradients {key: array}; each is scaled by b/B = 1/N and
        summed over ranks (one in-place all-reduce per array, in sorted key order). Every rank
        ends with the same arrays. Starts the count of `step_bytes`.
        """
        self.step_bytes = 0
        if self.size == 1:
            return loss
        for k in sorted(grads):
            g = grads[k]
            g *= 1.0 / self.size                 # in place, still float32 (a Python scalar)
            self._allreduce(g, self._mpi.SUM)
        total = np.array([loss / self.size], dtype=np.float64)
        self._allreduce(total, self._mpi.SUM)
        return float(total[0])

    def any(self, flag: bool) -> bool:
        """True on every rank if `flag` is true on any rank (Ctrl-C reaches the ranks at
        different moments; the loop must act on one agreed value). 1 byte."""
        if self.size == 1:
            return bool(flag)
        buf = np.array([bool(flag)], dtype=np.uint8)
        self._allreduce(buf, self._mpi.MAX)
        return bool(buf[0])

    def bcast(self, obj):
        """Rank 0's `obj` on every rank (pickled; for the start state and the final summary)."""
        return obj if self.size == 1 else self.comm.bcast(obj, root=0)

    def _allreduce(self, buf: np.ndarray, op) -> None:
        if buf.flags.c_contiguous:
            self.comm.Allreduce(self._mpi.IN_PLACE, buf, op=op)
        else:                                    # MPI needs one contiguous buffer
            tmp = np.ascontiguousarray(buf)
            self.comm.Allreduce(self._mpi.IN_PLACE, tmp, op=op)
            buf[...] = tmp
        self.step_bytes += buf.nbytes

    def share_cores(self) -> int | None:
        """Split this machine's cores among the ranks running on it (BLAS and smolgpt's own
        threads), unless an environment variable (OPENBLAS_NUM_THREADS ...) already chose:
        2 ranks on 2 cores each asking BLAS for 2 threads would run 4 threads on 2 cores."""
        if any(v in os.environ for v in THREAD_VARS):
            return None
        local = self.comm.Split_type(self._mpi.COMM_TYPE_SHARED)
        on_this_machine = local.Get_size()
        local.Free()
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        threads = max(1, cores // on_this_machine)
        from . import layers
        try:
            from threadpoolctl import threadpool_limits
            threadpool_limits(threads, user_api="blas")
        except ImportError:
            pass
        layers.THREADS = threads
        return threads


def launcher_rank() -> int | None:
    """The rank an MPI launcher gave this process (from its environment), or None."""
    for var in LAUNCHER_RANK_VARS:
        if os.environ.get(var, "").isdigit():
            return int(os.environ[var])
    return None


def _launcher_size() -> int | None:
    for var in LAUNCHER_SIZE_VARS:
        if os.environ.get(var, "").isdigit():
            return int(os.environ[var])
    return None


_WORLD: World | None = None


def world() -> World:
    """This process's World, made on first call: a 1-process world unless an MPI launcher
    started several processes, in which case mpi4py is imported (initialising MPI) and the
    machine's cores are shared among its ranks. Raises MPIUnavailable if the launcher started
    several processes and mpi4py is missing (each would otherwise train alone)."""
    global _WORLD
    if _WORLD is not None:
        return _WORLD
    if launcher_rank() is None or futures_workers():
        _WORLD = World()
        return _WORLD
    try:
        from mpi4py import MPI
    except ImportError:
        n = _launcher_size()
        if n is not None and n > 1:
            raise MPIUnavailable(
                f"started by an MPI launcher as {n} processes, but mpi4py is not installed: "
                f"pip install -e \".[mpi]\", or run without mpiexec") from None
        _WORLD = World()
        return _WORLD
    comm = MPI.COMM_WORLD
    if comm.Get_size() == 1:
        _WORLD = World()
        return _WORLD
    _WORLD = World(rank=comm.Get_rank(), size=comm.Get_size(), comm=comm, _mpi=MPI)
    _WORLD.threads = _WORLD.share_cores()
    return _WORLD


def futures_workers() -> int:
    """Under `mpiexec -n N python -m mpi4py.futures script.py`, the N - 1 ranks that serve rank 0
    as a pool of workers (smolgpt.experiments.pool); else 0. Such ranks are no data-parallel
    job: each trains whole runs of its own, so each is a 1-process world."""
    core = sys.modules.get("mpi4py.futures._core")
    if core is None or getattr(core, "SharedPool", None) is None:
        return 0
    return core.MPI.COMM_WORLD.Get_size() - 1


def abort_all(code: int, line: str) -> None:
    """In a multi-rank world: print `line` (prefixed with the rank, for ranks other than 0) to
    stderr and end every rank of the job with exit status `code` (MPI_Abort; MPI adds a line of
    its own). Returns at once, printing nothing, in a 1-process world."""
    w = _WORLD
    if w is None or w.size == 1:
        return
    if not w.lead:
        time.sleep(REPORT_DELAY)                 # see REPORT_DELAY
        line = line.replace("smolgpt: ", f"smolgpt: rank {w.rank} of {w.size}: ", 1)
    print(line, file=sys.stderr, flush=True)
    time.sleep(FORWARD_DELAY)                    # see FORWARD_DELAY
    w.comm.Abort(code)
    os._exit(code)                     # MPICH's Abort can return before the launcher kills us
