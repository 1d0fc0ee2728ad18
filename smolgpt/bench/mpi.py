"""One machine's cores as threads of one process, or as MPI processes: `smolgpt bench --mpi`.

Two layouts of the same cores train the same global batch:
  1 process  x P threads   the BLAS and smolgpt's elementwise passes split each matmul
  P processes x 1 thread   data parallel (smolgpt/distributed.py): each process a share of the
                           batch, then an all-reduce of the trainables' gradients
and for each method (full, fastfood d=1000, lora) the benchmark reports tokens/s of whole
training steps (the loop's own step: params -> grads -> pullback -> all-reduce -> clip -> AdamW,
on random tokens), the bytes each step all-reduces, and the seconds one all-reduce of those
gradients takes alone (processes already in step, so no waiting for a slower rank).

Each (layout, method) is one job, `python -m smolgpt.bench.mpi --worker ...` (under
`mpiexec -n P` for the MPI layout), that times `steps` steps after one warm-up step; the jobs run
in interleaved rounds (layout A, layout B, A, B ...) and every figure is a median, as everywhere
in the benchmarks (bench/timing.py). The matmul rate is measured in the same run, before and after.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from ..methods import MethodSpec
from ..model import GPTConfig
from .model import flops_per_token, matmul_probe, random_batch, training_step
from .timing import median, rounds


def default_specs(subspace_d: int = 1000) -> list[MethodSpec]:
    return [MethodSpec("full"), MethodSpec("fastfood", d=subspace_d), MethodSpec("lora", rank=4)]


def find_mpiexec() -> str:
    """The mpiexec installed next to this Python (the mpich wheel's), else one on PATH; raises
    ValueError naming the fix when there is none or mpi4py is missing."""
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        raise ValueError('smolgpt bench --mpi needs mpi4py and an MPI: pip install -e ".[mpi]"') \
            from None
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    exe = shutil.which("mpiexec", path=path)
    if exe is None:
        raise ValueError('smolgpt bench --mpi found no mpiexec: pip install -e ".[mpi]" (which '
                         'brings MPICH), or put an MPI\'s mpiexec on PATH')
    return exe


def run(config: GPTConfig, batch_size: int = 16, steps: int = 5, cores: int = 2,
        n_rounds: int = 2, specs: list[MethodSpec] | None = None) -> dict:
    """Every method in both layouts of `cores` cores, `n_rounds` interleaved rounds of jobs."""
    if batch_size % cores:
        raise ValueError(f"--batch-size {batch_size} must divide among the {cores} processes")
    mpiexec = find_mpiexec()
    specs = specs or default_specs()
    layouts = {f"1 process x {cores} threads": (1, cores),
               f"{cores} processes x 1 thread": (cores, 1)}
    probe, probe_flops = matmul_probe()
    matmul = [probe_flops / median(rounds({"m": probe}, 3)["m"]) / 1e9]
    jobs = {}
    for spec in specs:
        for name, (procs, threads) in layouts.items():
            jobs[(spec.label(), name)] = (lambda procs=procs, threads=threads, spec=spec:
                                          _job(mpiexec, procs, threads, config, spec,
                                               batch_size, steps))
    results = {key: [] for key in jobs}
    for _ in range(n_rounds):
        for key, job in jobs.items():
            results[key].append(job())
    matmul.append(probe_flops / median(rounds({"m": probe}, 3)["m"]) / 1e9)
    rows = []
    for (label, layout), rs in results.items():
        sec = median([r["step_seconds"] for r in rs])
        rows.append({"method": label, "layout": layout, "step_seconds": sec,
                     "tokens_per_s": batch_size * config.block_size / sec,
                     "allreduce_bytes": rs[0]["allreduce_bytes"],
                     "allreduce_seconds": median([r["allreduce_seconds"] for r in rs]),
                     "n_trainable": rs[0]["n_trainable"]})
    return {"config": config.to_dict(), "batch_size": batch_size, "steps": steps,
            "rounds": n_rounds, "cores": cores, "matmul_gflops_before_after": matmul,
            "flops_per_token": flops_per_token(config), "rows": rows}


def _job(mpiexec, procs, threads, config, spec, batch_size, steps) -> dict:
    """One worker job; returns rank 0's JSON line."""
    env = {**os.environ, "OPENBLAS_NUM_THREADS": str(threads), "OMP_NUM_THREADS": str(threads),
           "MKL_NUM_THREADS": str(threads)}
    args = json.dumps({"config": config.to_dict(), "spec": spec.to_dict(),
                       "batch_size": batch_size, "steps": steps, "threads": threads})
    cmd = [sys.executable, "-m", "smolgpt.bench.mpi", "--worker", args]
    if procs > 1:
        cmd = [mpiexec, "-n", str(procs), *cmd]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"benchmark job {' '.join(cmd[:4])} ... failed: {r.stderr.strip()}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def worker(args: dict) -> dict | None:
    """Time `steps` training steps in this process (one rank of the job); rank 0 returns the
    figures, the others None."""
    from .. import distributed
    from . import set_threads
    w = distributed.world()
    set_threads(args["threads"])
    config, spec = GPTConfig(**args["config"]), MethodSpec(**args["spec"])
    x, y = random_batch(config, args["batch_size"])
    method, step = training_step(config, spec, x, y, world=w if w.size > 1 else None)

    def whole_step():                      # and the stop flag every rank agrees on, as in train()
        step()
        w.any(False)

    whole_step()                                               # warm-up
    times = []
    for _ in range(args["steps"]):
        t0 = time.perf_counter()
        whole_step()
        times.append(time.perf_counter() - t0)
    sent = w.step_bytes
    grads = {k: np.zeros(s, dtype=np.float32) for k, s in method.trainable_shapes().items()}
    reduce_times = []
    for _ in range(3):                                         # the all-reduce alone
        w.any(False)                                           # every rank here first
        t0 = time.perf_counter()
        w.mean(grads, 0.0)
        reduce_times.append(time.perf_counter() - t0)
    if not w.lead:
        return None
    return {"step_seconds": median(times), "allreduce_bytes": sent,
            "allreduce_seconds": median(reduce_times) if w.size > 1 else 0.0,
            "n_trainable": method.n_trainable}


def format_report(r: dict) -> str:
    c, (before, after) = r["config"], r["matmul_gflops_before_after"]
    lines = [f"model: n_layer={c['n_layer']} n_embd={c['n_embd']} block_size={c['block_size']} "
             f"vocab={c['vocab_size']}, global batch {r['batch_size']}, {r['cores']} cores; "
             f"median of {r['steps']} steps x {r['rounds']} rounds per layout",
             f"float32 matmul rate, {r['cores']} threads: {before:.1f} GFLOP/s before, "
             f"{after:.1f} after",
             f"  {'method':<16} {'layout':<24} {'tok/s':>8} {'step ms':>9} "
             f"{'bytes/step':>12} {'all-reduce ms':>14}"]
    for row in r["rows"]:
        lines.append(f"  {row['method']:<16} {row['layout']:<24} {row['tokens_per_s']:8,.0f} "
                     f"{row['step_seconds'] * 1e3:9.1f} {row['allreduce_bytes']:12,} "
                     f"{row['allreduce_seconds'] * 1e3:14.1f}")
    return "\n".join(lines)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        out = worker(json.loads(sys.argv[2]))
        if out is not None:
            print(json.dumps(out), flush=True)
