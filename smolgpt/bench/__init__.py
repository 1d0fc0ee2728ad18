"""Benchmarks: how fast smolgpt trains on this machine, and against what.

    from smolgpt import bench
    r = bench.run(GPTConfig.preset("tiny"), batch_size=16, repeats=5)   # what `smolgpt bench` does
    print(bench.format_report(r))                                        # or json.dumps(r)

    v = bench.run_vs_torch(threads=2)          # `smolgpt bench --vs-torch` (needs the hf extra)
    print(bench.format_vs_torch(v))

One timing rule everywhere (`timing.rounds`): candidates run in interleaved rounds and every
figure is a median, ratios being medians of per-round ratios. Modules:
  model.py       forward+backward against the matmul rate (MFU) and every method's whole step
  breakdown.py   where a step's time goes, layer by layer, and its peak memory
  transforms.py  the random projections against a memory copy and the dense basis
  vs_torch.py    smolgpt and PyTorch eager side by side, each in its own process
  mpi.py         1 process x N threads vs N MPI processes x 1 thread (`smolgpt bench --mpi`)
  timing.py      the interleaved-rounds helper
The CLI formats the dicts; everything here returns plain dicts, so `--json` carries every figure.
"""

from __future__ import annotations

from ..model import GPTConfig
from . import breakdown as _breakdown
from . import transforms as _transforms
from . import vs_torch as _vs_torch
from .model import bench_model, default_specs
from .vs_torch import TorchUnavailable, check_torch

# The targets, checked (never asserted) in the report.
TARGET_MFU = 0.70              # forward+backward, model FLOPs / matmul rate
TARGET_STEP_RATIO = 1.10       # any method's whole step / forward+backward
TARGET_VS_TORCH = {"tiny": 1.5, "tiny-bytes": 1.5, "gpt2": 1.0}
TARGET_MFU_GPT2 = 0.75


def set_threads(threads: int | None) -> int:
    """Use `threads` threads for BLAS (via threadpoolctl, when installed) and for smolgpt's
    elementwise passes; None keeps the defaults. Returns the count in use."""
    from .. import layers
    if threads is not None:
        try:
            from threadpoolctl import threadpool_limits
            threadpool_limits(threads, user_api="blas")
        except ImportError:                 # OPENBLAS_NUM_THREADS, set before start, still works
            pass
        layers.THREADS = threads
    return layers.THREADS


def process_settings() -> dict:
    """The BLAS kernel in use (OpenBLAS picks one per CPU unless OPENBLAS_CORETYPE forces one)
    and the two settings smolgpt's import makes for the process (see smolgpt/__init__.py), as
    in force here: OpenBLAS's idle spin (None = its default, 2^28 cycles) and whether freed
    memory is kept for the next step."""
    import smolgpt

    from ..layers import blas_kernel
    return {"blas_kernel": blas_kernel(), "blas_thread_timeout": smolgpt.BLAS_THREAD_TIMEOUT,
            "keeps_freed_memory": smolgpt.KEEPS_FREED_MEMORY,
            "defaults_asked": smolgpt.PROCESS_DEFAULTS}


def format_process_settings(p: dict) -> str:
    if p.get("defaults_asked"):
        return "process: BLAS and malloc at their defaults (SMOLGPT_PROCESS_DEFAULTS=1)"
    timeout = p["blas_thread_timeout"]
    spin = ("OpenBLAS's default 2^28 cycles (NumPy was loaded before smolgpt)" if timeout is None
            else f"2^{timeout} cycles")
    memory = "kept for reuse" if p["keeps_freed_memory"] else "returned to the OS (malloc default)"
    kernel = p.get("blas_kernel", "unknown")
    return (f"process: BLAS {kernel}; BLAS threads spin {spin} after a product; freed memory "
            f"{memory}")


def run(config: GPTConfig, batch_size: int = 16, repeats: int = 5, subspace_d: int = 1000,
        transforms: bool = False, threads: int | None = None, steps: bool = True,
        step_repeats: int = 5, layers: bool = True) -> dict:
    """The in-process benchmark as one dict (what `smolgpt bench --json` prints).

    repeats: rounds of forward+backward vs the matmul probe; step_repeats: rounds of the
    methods' whole steps; steps=False skips them; transforms adds the projections' benchmark;
    layers: the step's time layer by layer and its peak memory (`breakdown.py`), over `repeats`
    steps.
    """
    result = {"config": config.to_dict(), "batch_size": batch_size,
              "threads": set_threads(threads), "process": process_settings()}
    specs = default_specs(subspace_d) if steps else None
    result.update(bench_model(config, batch_size, repeats, specs, step_repeats))
    result["targets"] = {"mfu": TARGET_MFU, "step_vs_fwd_bwd": TARGET_STEP_RATIO}
    result["mfu_ok"] = result["model"]["mfu"] >= TARGET_MFU
    if steps:
        result["steps_ok"] = all(s["vs_fwd_bwd"] <= TARGET_STEP_RATIO for s in result["steps"])
    if layers:
        result["layers"] = _breakdown.run(config, batch_size, repeats)
    if transforms:
        result["transforms"] = _transforms.run()
    return result


def run_vs_torch(threads: int | None = None, presets=("tiny", "gpt2"),
                 rounds: int | None = None) -> dict:
    """smolgpt vs PyTorch eager for each of `presets` (any of GPTConfig's) at its case's batch
    (`vs_torch.case`: gpt2 1 x 1024 in 3 rounds, the others 16 x block_size in 5); rounds
    overrides those defaults. Raises ConfigError for an unknown preset (before any timing) and
    TorchUnavailable (message: the pip command) without the hf extra."""
    cases = [_vs_torch.case(p) for p in presets]                 # refuses an unknown preset
    cases = [(p, b, T, rounds or n) for p, b, T, n in cases]
    r = _vs_torch.run(cases, set_threads(threads))
    for c in r["cases"]:
        target = TARGET_VS_TORCH.get(c["preset"])
        c["target_speedup"] = target
        c["speedup_ok"] = target is not None and c["speedup"] >= target
        if c["preset"] == "gpt2":
            c["mfu_ok"] = c["smolgpt"]["mfu"] >= TARGET_MFU_GPT2
    return r


def _ok(flag: bool) -> str:
    return "ok" if flag else "MISSED"


def format_report(r: dict) -> str:
    c = r["config"]
    m = r["model"]
    lo, hi = m["mfu_spread"]
    lines = [
        f"model: n_layer={c['n_layer']} n_head={c['n_head']} n_embd={c['n_embd']} "
        f"block_size={c['block_size']} vocab={c['vocab_size']}, batch {r['batch_size']}, "
        f"{r['threads']} threads",
        format_process_settings(r["process"]),
        f"float32 matmul rate of this machine: {r['matmul_gflops']:.1f} GFLOP/s median "
        f"(best {r['matmul_gflops_best']:.1f}), timed in each round next to the model",
        f"forward+backward: {m['seconds'] * 1e3:.1f} ms = {m['tokens_per_s']:,.0f} tokens/s, "
        f"{m['gflops']:.1f} GFLOP/s of model FLOPs = {m['mfu']:.0%} of the matmul rate "
        f"(rounds {lo:.0%}-{hi:.0%}; target {TARGET_MFU:.0%}: {_ok(r['mfu_ok'])})",
    ]
    if "steps" in r:
        lines.append(f"whole training step (params -> grads -> pullback -> clip -> AdamW), "
                     f"{r['step_rounds']} rounds; target <= {TARGET_STEP_RATIO:.2f}x fwd+bwd: "
                     f"{_ok(r['steps_ok'])}")
        for s in r["steps"]:
            lines.append(f"  {s['method']:<22} {s['n_trainable']:>9,} trainable  "
                         f"{s['seconds'] * 1e3:8.1f} ms  {s['tokens_per_s']:8,.0f} tok/s  "
                         f"{s['vs_fwd_bwd']:.2f}x fwd+bwd  {s['vs_full']:.2f}x full")
    if "layers" in r:
        lines.append(_breakdown.format_report(r["layers"], r["matmul_gflops"]))
    if "transforms" in r:
        lines.append(_transforms.format_report(r["transforms"]))
    return "\n".join(lines)


def format_vs_torch(r: dict) -> str:
    lines = [_vs_torch.format_report(r)]
    for c in r["cases"]:
        if c["target_speedup"] is None:
            lines.append(f"target {c['preset']}: none set")
            continue
        line = (f"target {c['preset']}: >= {c['target_speedup']:.1f}x torch -> "
                f"{_ok(c['speedup_ok'])}")
        if "mfu_ok" in c:
            line += f"; >= {TARGET_MFU_GPT2:.0%} of the matmul rate -> {_ok(c['mfu_ok'])}"
        lines.append(line)
    if r["cases"]:
        for side in ("smolgpt", "torch"):
            lines.append(f"{side}'s " + format_process_settings(r["cases"][0]["process"][side]))
    return "\n".join(lines)


__all__ = ["run", "format_report", "run_vs_torch", "format_vs_torch", "set_threads",
           "TorchUnavailable", "check_torch", "GPTConfig"]
