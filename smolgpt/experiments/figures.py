"""Figures drawn from training logs, so a plot can be redrawn without retraining."""

from __future__ import annotations

import json
from pathlib import Path


def read_log(path) -> dict:
    """A run's log.jsonl -> {"label", "n_trainable", "evals": [(tokens, val_loss)], "steps":
    [(tokens, loss)], "end": the summary record or None}."""
    run = {"label": Path(path).parent.name, "n_trainable": None, "evals": [], "steps": [],
           "end": None}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                r = json.loads(line)
            except json.JSONDecodeError:           # a run killed mid-line: keep what came before
                break
            ev = r.get("event")
            if ev == "start":
                run["label"], run["n_trainable"] = r["method"], r["n_trainable"]
            elif ev == "eval":
                run["evals"] = [e for e in run["evals"] if e[0] < r["tokens"]]   # after a resume
                run["evals"].append((r["tokens"], r["val_loss"]))
            elif ev == "step":
                run["steps"] = [s for s in run["steps"] if s[0] < r["tokens"]]
                run["steps"].append((r["tokens"], r["loss"]))
            elif ev == "end":
                run["end"] = r
    return run


def plot_val_curves(logs, path, title="validation loss on held-out C4", baseline=None):
    """One curve per run: validation loss against tokens seen, labelled with the trainable
    non-embedding parameter count. baseline: an optional (label, value) horizontal line."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    for log in logs:
        run = read_log(log) if not isinstance(log, dict) else log
        if not run["evals"]:
            continue
        t, v = zip(*run["evals"])
        n = run["n_trainable"]
        label = run["label"] if n is None else f"{run['label']} ({n:,} trainable)"
        ax.plot(t, v, marker="o", ms=3, label=label)
    if baseline is not None:
        ax.axhline(baseline[1], color="gray", ls=":", label=baseline[0])
    ax.set_xlabel("training tokens seen")
    ax.set_ylabel("validation loss (nats/token)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
