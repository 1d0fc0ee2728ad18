"""Where a training step's time goes, layer by layer (`smolgpt bench` prints it).

The step timed is the model's own `loss_and_grads`, unchanged: while it runs, every layer
function of `smolgpt.layers` that `model.py` calls is replaced by a wrapper that adds the
seconds of each call to its row (the wrapper costs ~1 microsecond a call, against the
milliseconds of a layer). The forward and backward of each layer are separate rows; "other" is
what the step spent outside the layers (the residual adds, Python). The optimizer (gradient
clipping and AdamW of full training) is timed after it, on the step's gradients. Every figure is a
median over `repeats` steps; a row's share is of the median whole step (fwd+bwd + optimizer).

The matmul rows also say how fast their products ran, in model FLOPs per second, so a row can be
compared with the machine's matmul rate: linear layers 2 N Cin Cout per product (three products
per layer counting the backward), attention 4 T^2 C per sequence and layer forward (q k^T and
att v counted whole, as MFU counts them) and twice that backward, the head 2 N C V per product.

From the same steps comes a bound: every model FLOP is in those rows, so if the rows that do no
products (LayerNorm, GELU, the embeddings, "other") took no time at all, forward+backward would
still take the products' rows' time, and run at no more than the model FLOPs over that time.
A target above the bound cannot be reached by making those passes faster; only the products'
rows can move it: their BLAS calls, and the work without products inside them (attention's mask
and softmax, the head's softmax and log, the linear layers' bias adds and sums).
"""

from __future__ import annotations

import time
import tracemalloc
from contextlib import contextmanager

from .. import layers
from ..methods import MethodSpec, build
from ..model import GPTConfig, loss_and_grads
from ..optim import AdamWConfig, adamw_init, adamw_step, clip_grad_norm
from .timing import median

# (row label, the layers function timed in it), in the order of the printed table
ROWS = (("embedding fwd", "embedding_forward"), ("layernorm fwd", "layernorm_forward"),
        ("linear fwd", "linear_forward"), ("attention fwd", "attention_forward"),
        ("gelu fwd", "gelu_forward"), ("head + loss fwd+bwd", "cross_entropy_head"),
        ("gelu bwd", "gelu_backward"), ("attention bwd", "attention_backward"),
        ("linear bwd", "linear_backward"), ("layernorm bwd", "layernorm_backward"),
        ("embedding bwd", "embedding_backward"))


@contextmanager
def _timed_layers(seconds: dict[str, float]):
    """Within the block, each function of ROWS adds its calls' seconds to seconds[label]."""
    originals = {name: getattr(layers, name) for _, name in ROWS}

    def wrap(label, fn):
        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            out = fn(*args, **kwargs)
            seconds[label] += time.perf_counter() - t0
            return out
        return timed

    try:
        for label, name in ROWS:
            setattr(layers, name, wrap(label, originals[name]))
        yield
    finally:
        for name, fn in originals.items():
            setattr(layers, name, fn)


def matmul_flops(config: GPTConfig, batch_size: int) -> dict[str, float]:
    """Model FLOPs of the rows that are matrix products (see the module docstring)."""
    C, V, nl, T = config.n_embd, config.vocab_size, config.n_layer, config.block_size
    N = batch_size * T
    linear = 2 * N * nl * (C * 3 * C + C * C + C * 4 * C + 4 * C * C)    # forward, every layer
    attention = 4 * batch_size * T * T * C * nl
    return {"linear fwd": linear, "linear bwd": 2 * linear, "attention fwd": attention,
            "attention bwd": 2 * attention, "head + loss fwd+bwd": 3 * 2 * N * C * V}


def run(config: GPTConfig, batch_size: int = 16, repeats: int = 5, x=None, y=None) -> dict:
    """The breakdown of `repeats` full-training steps (after one warm-up) as one dict:
    rows [{"label", "seconds", "share", "gflops" (matmul rows)}], and the step's medians."""
    from .model import random_batch
    if x is None:
        x, y = random_batch(config, batch_size)
    method = build(MethodSpec("full"), config)
    params = method.init()
    adam = adamw_init(params)
    labels = [label for label, _ in ROWS] + ["other", "optimizer (clip + AdamW)"]
    per_step = {label: [] for label in labels}
    totals = []
    for i in range(repeats + 1):
        seconds = dict.fromkeys(labels, 0.0)
        t0 = time.perf_counter()
        with _timed_layers(seconds):
            _, grads = loss_and_grads(params, x, y, config)
        t1 = time.perf_counter()
        clip_grad_norm(grads, 1.0)
        adamw_step(params, grads, adam, 1e-4, AdamWConfig(), method.decay_keys(params))
        t2 = time.perf_counter()
        seconds["other"] = (t1 - t0) - sum(seconds[label] for label, _ in ROWS)
        seconds["optimizer (clip + AdamW)"] = t2 - t1
        if i > 0:                                          # the first step is a warm-up
            for label in labels:
                per_step[label].append(seconds[label])
            totals.append((t1 - t0, t2 - t0))
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    tracemalloc.reset_peak()
    _, grads = loss_and_grads(params, x, y, config)
    clip_grad_norm(grads, 1.0)
    adamw_step(params, grads, adam, 1e-4, AdamWConfig(), method.decay_keys(params))
    peak = tracemalloc.get_traced_memory()[1] - before
    del grads
    tracemalloc.stop()
    step = median([s for _, s in totals])
    flops = matmul_flops(config, batch_size)
    rows = []
    for label in labels:
        sec = median(per_step[label])
        row = {"label": label, "seconds": sec, "share": sec / step}
        if label in flops:
            row["gflops"] = flops[label] / sec / 1e9
        rows.append(row)
    products_seconds = sum(row["seconds"] for row in rows if row["label"] in flops)
    return {"rows": rows, "fwd_bwd_seconds": median([f for f, _ in totals]),
            "step_seconds": step, "repeats": repeats, "peak_step_bytes": peak,
            "products_seconds": products_seconds,
            "products_bound_gflops": sum(flops.values()) / products_seconds / 1e9}


def _rate(gflops: float, matmul_gflops: float | None) -> str:
    """'X GFLOP/s', and '= Y% of the matmul rate' when that is known."""
    text = f"{gflops:6.1f} GFLOP/s"
    return text + (f" = {gflops / matmul_gflops:.0%} of the matmul rate" if matmul_gflops else "")


def format_report(r: dict, matmul_gflops: float | None = None) -> str:
    """The table: one row per layer kind, its milliseconds, share of the step, and for products
    their rate (and its fraction of matmul_gflops, when given)."""
    lines = [f"where a full-training step goes (medians of {r['repeats']} steps; each layer "
             f"summed over the model's blocks):",
             f"  {'layer':<26}{'ms':>8}{'share':>7}  products at"]
    for row in r["rows"]:
        rate = _rate(row["gflops"], matmul_gflops) if "gflops" in row else ""
        lines.append(f"  {row['label']:<26}{row['seconds'] * 1e3:8.1f}{row['share']:>7.0%}  {rate}")
    lines.append(f"  {'forward+backward':<26}{r['fwd_bwd_seconds'] * 1e3:8.1f}")
    lines.append(f"  {'whole step':<26}{r['step_seconds'] * 1e3:8.1f}{1:>7.0%}")
    lines.append(f"bound: the rows with products took {r['products_seconds'] * 1e3:.1f} ms; were "
                 f"every row without products free, forward+backward would run at no more than "
                 f"{_rate(r['products_bound_gflops'], matmul_gflops).strip()}")
    lines.append(f"peak memory of a step (tracemalloc, beyond the weights, Adam and the batch): "
                 f"{r['peak_step_bytes'] / 2**20:,.1f} MB")
    return "\n".join(lines)
