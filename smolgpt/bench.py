"""Benchmarks: how fast the model trains, relative to what this machine's BLAS can do.

Everything is measured in the same run, so ratios compare like with like:
  - the float32 matrix-multiply rate (GFLOP/s) of this machine, best of a few 2048^3 products
    (its peak: utilisation against it is conservative);
  - forward+backward of the model on random tokens (median of repeats): seconds, tokens/s,
    model FLOP utilisation (MFU) = model FLOPs per second / the matmul rate;
  - a whole training step (params -> loss and grads -> pullback -> clip -> AdamW) for full
    training and for subspace methods, as a ratio to the full step;
  - optionally the random-projection operators on their own (`smolgpt.bench_transforms`).

Model FLOPs per token of forward+backward, the usual count (backward = 2 x forward):
  6 * (12 n_layer C^2)      the block matmuls (c_attn 3C^2, c_proj C^2, c_fc 4C^2, mlp c_proj 4C^2)
  + 6 * C V                 the tied output head
  + 12 * n_layer * T * C    attention's q k^T and att v (computed for all T x T, mask included)
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from .methods import MethodSpec, build
from .model import GPTConfig, loss_and_grads
from .optim import AdamWConfig, adamw_init, adamw_step, clip_grad_norm


def matmul_gflops(n: int = 2048, repeats: int = 5) -> float:
    """Best float32 GFLOP/s of an n x n x n product on this machine, now."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    c = np.empty((n, n), dtype=np.float32)
    np.matmul(a, b, out=c)                                   # warm up threads and caches
    best = min(_timed(lambda: np.matmul(a, b, out=c)) for _ in range(repeats))
    return 2 * n ** 3 / best / 1e9


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def flops_per_token(config: GPTConfig, T: int | None = None) -> int:
    """Model FLOPs of forward+backward per token (see the module docstring)."""
    C, V, nl = config.n_embd, config.vocab_size, config.n_layer
    T = config.block_size if T is None else T
    return 6 * 12 * nl * C * C + 6 * C * V + 12 * nl * T * C


def bench_model(config: GPTConfig, batch_size: int, repeats: int = 5) -> dict:
    """Seconds per forward+backward (median of `repeats`, after a warm-up), tokens/s, FLOP rate."""
    rng = np.random.default_rng(0)
    params = build(MethodSpec("full"), config).init()
    x = rng.integers(0, config.vocab_size, (batch_size, config.block_size))
    y = rng.integers(0, config.vocab_size, (batch_size, config.block_size))
    loss_and_grads(params, x, y, config)
    sec = statistics.median(_timed(lambda: loss_and_grads(params, x, y, config))
                            for _ in range(repeats))
    tokens = batch_size * config.block_size
    return {"seconds": sec, "tokens_per_s": tokens / sec,
            "gflops": flops_per_token(config) * tokens / sec / 1e9}


def bench_step(config: GPTConfig, spec: MethodSpec, batch_size: int, repeats: int = 3) -> dict:
    """Seconds of one whole training step with a given parameterization (median of repeats)."""
    rng = np.random.default_rng(0)
    method = build(spec, config)
    trainables = method.init()
    adam = adamw_init(trainables)
    decay = method.decay_keys(trainables)
    x = rng.integers(0, config.vocab_size, (batch_size, config.block_size))
    y = rng.integers(0, config.vocab_size, (batch_size, config.block_size))

    def step():
        params = method.params(trainables)
        _, grads = loss_and_grads(params, x, y, config)
        tgrads = method.pullback(trainables, grads)
        clip_grad_norm(tgrads, 1.0)
        adamw_step(trainables, tgrads, adam, 1e-4, AdamWConfig(), decay)

    step()
    sec = statistics.median(_timed(step) for _ in range(repeats))
    return {"method": spec.label(), "n_trainable": method.n_trainable, "seconds": sec,
            "tokens_per_s": batch_size * config.block_size / sec}


def run(config: GPTConfig, batch_size: int = 16, repeats: int = 5, subspace_d: int = 1000,
        transforms: bool = False) -> dict:
    """The whole benchmark as one dict (what `smolgpt bench --json` prints)."""
    result = {"config": config.to_dict(), "batch_size": batch_size}
    result["matmul_gflops"] = matmul_gflops()
    m = bench_model(config, batch_size, repeats)
    result["model"] = {**m, "mfu": m["gflops"] / result["matmul_gflops"]}
    steps = [bench_step(config, MethodSpec("full"), batch_size),
             bench_step(config, MethodSpec("fastfood", d=subspace_d), batch_size),
             bench_step(config, MethodSpec("fastfood", d=5, per_tensor=True), batch_size),
             bench_step(config, MethodSpec("embeddings"), batch_size)]
    full = steps[0]["seconds"]
    for s in steps:
        s["vs_full"] = s["seconds"] / full
    result["steps"] = steps
    result["matmul_gflops_after"] = matmul_gflops()     # the machine's rate may drift: show both
    if transforms:
        from . import bench_transforms
        result["transforms"] = bench_transforms.run()
    return result


def format_report(r: dict) -> str:
    c = r["config"]
    m = r["model"]
    lines = [
        f"model: n_layer={c['n_layer']} n_head={c['n_head']} n_embd={c['n_embd']} "
        f"block_size={c['block_size']} vocab={c['vocab_size']}, batch {r['batch_size']}",
        f"float32 matmul rate of this machine: {r['matmul_gflops']:.1f} GFLOP/s "
        f"(again at the end: {r['matmul_gflops_after']:.1f})",
        f"forward+backward: {m['seconds'] * 1e3:.1f} ms = {m['tokens_per_s']:,.0f} tokens/s, "
        f"{m['gflops']:.1f} GFLOP/s of model FLOPs = {m['mfu']:.0%} of the matmul rate",
        "whole training step (params -> grads -> pullback -> clip -> AdamW):",
    ]
    for s in r["steps"]:
        lines.append(f"  {s['method']:<22} {s['n_trainable']:>9,} trainable  "
                     f"{s['seconds'] * 1e3:8.1f} ms  {s['tokens_per_s']:8,.0f} tok/s  "
                     f"{s['vs_full']:.2f}x full")
    if "transforms" in r:
        from . import bench_transforms
        lines.append(bench_transforms.format_report(r["transforms"]))
    return "\n".join(lines)
