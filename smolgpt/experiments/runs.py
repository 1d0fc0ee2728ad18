"""Running several parameterizations on the same tokens, and tabulating what they reached.

The chapters compare methods the same way every time: one base `TrainConfig` (model, steps,
batch, seed, so the same C4 windows in the same order) and one `MethodSpec` per run. This module
is that loop and its Markdown table, so no chapter repeats it.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

from .methods import MethodSpec
from .model import GPTConfig
from .plots import plot_val_curves
from .train import TrainConfig, train

# The chapters' quick mode (the tests run it): a 2-layer, 64-wide GPT-2 with the full vocabulary,
# a handful of steps of 4 x 64 tokens, evaluated twice on 8 held-out windows.
QUICK_MODEL = GPTConfig(n_layer=2, n_head=2, n_embd=64, block_size=64)


def quick_config(steps: int, sample_tokens: int = 0) -> TrainConfig:
    """A TrainConfig small enough for a chapter's quick mode to train several models in seconds."""
    return TrainConfig(model=QUICK_MODEL, steps=steps, batch_size=4, warmup=2,
                       eval_every=max(1, steps // 2), eval_windows=8, sample_tokens=sample_tokens)


def run_name(spec: MethodSpec) -> str:
    """A folder name for a spec: 'fastfood_d=1000', 'basis_5-per-tensor', 'lora_r=4'."""
    return spec.label().replace(" ", "_").replace("/", "-per-")


def compare(specs, base: TrainConfig, out: Path, title: str | None = None,
            verbose: bool = True) -> dict:
    """Train every spec with the same base config; returns {run name: summary}.

    Each run writes out/<run name>/log.jsonl, checkpoint.npz and sample.txt; with a title, the
    validation curves of all runs are drawn to out/val_curves.png.
    """
    if verbose:
        print(f"training {len(specs)} models for {base.steps} steps of {base.tokens_per_step} "
              f"tokens:")
    results = {}
    for spec in specs:
        name = run_name(spec)
        cfg = dataclasses.replace(base, method=spec, out=str(Path(out) / name))
        s = train(cfg, progress=False, verbose=False)
        s["label"] = spec.label()
        results[name] = s
        if verbose:
            print(f"  {s['label']:<28} {s['n_trainable']:>9,} trainable: val loss "
                  f"{s['val_curve'][0][2]:.3f} -> {s['val_loss']:.3f}  ({s['elapsed']:.0f} s)")
    if title is not None:
        fig = plot_val_curves([Path(out) / name / "log.jsonl" for name in results],
                              Path(out) / "val_curves.png", title=title)
        if verbose:
            print(f"figure: {fig}")
    return results


def markdown_table(results: dict) -> str:
    """method | trainable params | final val loss | perplexity | wall time | checkpoint bytes."""
    rows = ["| method | trainable non-embedding params | final val loss | perplexity | "
            "wall time (s) | checkpoint bytes |", "|---|---:|---:|---:|---:|---:|"]
    for s in sorted(results.values(), key=lambda s: s["val_loss"]):
        rows.append(f"| {s['label']} | {s['n_trainable']:,} | {s['val_loss']:.3f} | "
                    f"{math.exp(s['val_loss']):,.0f} | {s['elapsed']:.0f} | "
                    f"{s['checkpoint_bytes']:,} |")
    return "\n".join(rows)
