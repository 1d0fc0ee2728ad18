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
from .train import TrainConfig, train


def run_name(spec: MethodSpec) -> str:
    """A folder name for a spec: 'fastfood_d=1000', 'basis_5-per-tensor', 'lora_r=4'."""
    return spec.label().replace(" ", "_").replace("/", "-per-")


def compare(specs, base: TrainConfig, out: Path, lr_for=None, verbose: bool = True) -> dict:
    """Train every spec with the same base config; returns {run name: summary}.

    lr_for: optional function spec -> dict of TrainConfig overrides (e.g. a LoRA learning rate).
    Each run writes out/<run name>/log.jsonl, checkpoint.npz and sample.txt.
    """
    results = {}
    for spec in specs:
        name = run_name(spec)
        extra = lr_for(spec) if lr_for else {}
        cfg = dataclasses.replace(base, method=spec, out=str(Path(out) / name), **extra)
        s = train(cfg, progress=False, verbose=False)
        s["label"] = spec.label()
        results[name] = s
        if verbose:
            print(f"  {s['label']:<28} {s['n_trainable']:>9,} trainable: val loss "
                  f"{s['val_curve'][0][2]:.3f} -> {s['val_loss']:.3f}  ({s['elapsed']:.0f} s)")
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
