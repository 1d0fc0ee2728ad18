"""How fast the model trains, against what this machine's BLAS can do, measured in one run.

  - the float32 matrix-multiply rate of this machine: four 2048^3 products (PROBE_PRODUCTS),
    timed together in every round next to the model, so "model FLOP utilisation" (MFU) is the
    median of per-round ratios model FLOPs per second / matmul FLOPs per second, both under the
    same load;
  - forward+backward of the model on random tokens: seconds, tokens/s, MFU;
  - a whole training step (params -> grads -> pullback -> clip -> AdamW) of every method, as a
    ratio to the forward+backward and to the full step, timed in the same rounds.

Model FLOPs per token of forward+backward, the usual count (backward = 2 x forward):
  6 * (12 n_layer C^2)      the block matmuls (c_attn 3C^2, c_proj C^2, c_fc 4C^2, mlp c_proj 4C^2)
  + 6 * C V                 the tied output head
  + 12 * n_layer * T * C    attention's q k^T and att v, counted for all T x T as is usual (the
                            causal blocks of `layers.attention_forward` skip part of it)
"""

from __future__ import annotations

import numpy as np

from ..methods import MethodSpec, build
from ..model import GPTConfig, loss_and_grads
from ..optim import AdamWConfig, adamw_init, adamw_step, clip_grad_norm
from .timing import median, median_ratio, rounds, spread

PROBE_N = 2048      # the matmul probe: n x n x n float32 products,
PROBE_PRODUCTS = 4  # this many per call (~0.35 s at 200 GFLOP/s): one product alone, ~0.09 s,
                    # was too short a sample next to a step of seconds (its rounds spread ~2x)
PROBE_FLOPS = PROBE_PRODUCTS * 2 * PROBE_N ** 3


def matmul_probe(n: int = PROBE_N, products: int = PROBE_PRODUCTS):
    """(fn, flops): a function computing `products` n x n x n float32 products, and their FLOPs."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    c = np.empty((n, n), dtype=np.float32)

    def fn():
        for _ in range(products):
            np.matmul(a, b, out=c)

    return fn, products * 2 * n ** 3


def matmul_gflops(repeats: int = 3) -> float:
    """This machine's float32 matmul rate now (GFLOP/s, median of `repeats` timings of
    PROBE_PRODUCTS products after a warm-up): what a chapter quotes next to its wall time."""
    fn, flops = matmul_probe()
    times = rounds({"matmul": fn}, repeats)["matmul"]
    return flops / median(times) / 1e9


def flops_per_token(config: GPTConfig, T: int | None = None) -> int:
    """Model FLOPs of forward+backward per token (see the module docstring)."""
    C, V, nl = config.n_embd, config.vocab_size, config.n_layer
    T = config.block_size if T is None else T
    return 6 * 12 * nl * C * C + 6 * C * V + 12 * nl * T * C


def random_batch(config: GPTConfig, batch_size: int, T: int | None = None, seed: int = 0):
    """(x, y): random token ids, (B, T) each, the same for a given seed wherever it is drawn."""
    T = config.block_size if T is None else T
    rng = np.random.default_rng(seed)
    x = rng.integers(0, config.vocab_size, (batch_size, T))
    y = rng.integers(0, config.vocab_size, (batch_size, T))
    return x, y


def training_step(config: GPTConfig, spec: MethodSpec, x, y, world=None):
    """(method, step): a function doing one whole training step of the method on (x, y).

    world: a `distributed.World` of several ranks: as in `smolgpt train`, each rank takes its
    rows of the global batch (x, y) and the trainables' gradients are all-reduced."""
    method = build(spec, config)
    trainables = method.init()
    adam = adamw_init(trainables)
    decay = method.decay_keys(trainables)
    if world is not None:
        x, y = world.rows(x, y)

    def step():
        params = method.params(trainables)
        loss, grads = loss_and_grads(params, x, y, config, wanted=method.needed_grads)
        tgrads = method.pullback(trainables, grads)
        if world is not None:
            world.mean(tgrads, loss)
        clip_grad_norm(tgrads, 1.0)
        adamw_step(trainables, tgrads, adam, 1e-4, AdamWConfig(), decay)

    return method, step


def default_specs(subspace_d: int = 1000) -> list[MethodSpec]:
    """The methods whose whole step is timed: one of each family."""
    return [MethodSpec("full"), MethodSpec("embeddings"), MethodSpec("fastfood", d=subspace_d),
            MethodSpec("fastfood", d=5, per_tensor=True),
            MethodSpec("fft-fastfood", d=subspace_d), MethodSpec("lora", rank=4)]


def bench_model(config: GPTConfig, batch_size: int, repeats: int = 5,
                specs: list[MethodSpec] | None = None, step_repeats: int = 5) -> dict:
    """Forward+backward against the matmul probe (`repeats` rounds), then every method's step
    against forward+backward (`step_repeats` rounds). Returns the figures as one dict."""
    x, y = random_batch(config, batch_size)
    tokens = x.size
    params = build(MethodSpec("full"), config).init()
    probe, probe_flops = matmul_probe()
    model_flops = flops_per_token(config) * tokens

    t = rounds({"matmul": probe, "fwd_bwd": lambda: loss_and_grads(params, x, y, config)},
               repeats)
    mfus = [(model_flops / fb) / (probe_flops / mm) for mm, fb in zip(t["matmul"], t["fwd_bwd"])]
    sec = median(t["fwd_bwd"])
    result = {
        "matmul_gflops": probe_flops / median(t["matmul"]) / 1e9,
        "matmul_gflops_best": probe_flops / min(t["matmul"]) / 1e9,
        "model": {"seconds": sec, "tokens_per_s": tokens / sec, "gflops": model_flops / sec / 1e9,
                  "mfu": median(mfus), "mfu_spread": spread(mfus), "rounds": repeats},
    }
    if specs:
        fns, labels = {"fwd_bwd": lambda: loss_and_grads(params, x, y, config)}, {}
        for spec in specs:
            method, fns[spec.label()] = training_step(config, spec, x, y)
            labels[spec.label()] = method.n_trainable
        t = rounds(fns, step_repeats)
        steps = []
        for label, n_trainable in labels.items():
            ratios = [s / fb for s, fb in zip(t[label], t["fwd_bwd"])]
            steps.append({"method": label, "n_trainable": n_trainable,
                          "seconds": median(t[label]),
                          "tokens_per_s": tokens / median(t[label]),
                          "vs_fwd_bwd": median(ratios), "vs_fwd_bwd_spread": spread(ratios),
                          "vs_full": median_ratio(t, label, specs[0].label())})
        result["steps"] = steps
        result["steps_fwd_bwd_seconds"] = median(t["fwd_bwd"])
        result["step_rounds"] = step_repeats
    return result
