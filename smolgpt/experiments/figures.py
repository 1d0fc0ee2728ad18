"""Figures drawn from training logs, so a plot can be redrawn without retraining."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .chapter import save_figure


def log_records(path) -> list[tuple[int, dict]]:
    """[(line number, record)] of a run's log.jsonl: the one reader of run logs.

    A line that is not JSON is a line cut short by a killed run or a full disk, and is skipped
    when it is the last line or the run was resumed right after it; anywhere else, and for any
    line that is not a smolgpt log record (an object with an "event"; eval records with numeric
    "tokens" and "val_loss"), ValueError names the file and the line."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = [(i, line.strip()) for i, line in enumerate(f, 1) if line.strip()]
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not a text file: pass runs' log.jsonl files") from None
    records = []
    for n, (i, line) in enumerate(lines):
        try:
            r = json.loads(line)
        except json.JSONDecodeError:
            after = lines[n + 1][1] if n + 1 < len(lines) else None
            if after is None or after.startswith('{"event": "resume"'):
                continue                       # cut short, then the run ended or resumed
            raise ValueError(f"{path} line {i} is not JSON: pass runs' log.jsonl files, "
                             f"unedited") from None
        bad = (not isinstance(r, dict) or not isinstance(r.get("event"), str) or
               (r["event"] == "eval" and not all(isinstance(r.get(k), (int, float))
                                                 for k in ("tokens", "val_loss"))))
        if bad:
            raise ValueError(f"{path} line {i} is not a smolgpt log record (an object with an "
                             f"'event'; eval records with numeric 'tokens' and 'val_loss'): pass "
                             f"runs' log.jsonl files")
        records.append((i, r))
    return records


def read_log(path) -> dict:
    """A run's log.jsonl -> {"label", "n_trainable", "evals": [(tokens, val_loss)]}, read by
    `log_records` (a line cut short is skipped; anything else that is not a smolgpt log record
    raises ValueError naming the file and the line)."""
    run = {"label": Path(path).parent.name, "n_trainable": None, "evals": []}
    for _, r in log_records(path):
        ev = r.get("event")
        if ev == "start":
            n = r.get("n_trainable")
            run["label"], run["n_trainable"] = r.get("method", run["label"]), \
                n if isinstance(n, int) else None
        elif ev == "eval":
            run["evals"] = [e for e in run["evals"] if e[0] < r["tokens"]]   # after a resume
            run["evals"].append((r["tokens"], r["val_loss"]))
    return run


def plot_val_curves(logs, path, title="validation loss on held-out C4", references=(),
                    force: bool = False):
    """Validation loss against tokens seen, one curve per run or per group of seeds.

    logs: log.jsonl paths (one curve each), or {label: [log paths of its seeds]} (the mean over
        seeds, with a band of +- one standard error where there are several). A log may also
        be given as what read_log returns (a recorded run's curve has no file).
    references: [(label, loss)] drawn as horizontal lines, e.g. the unigram loss (one far below
        or above the curves is named in the legend instead, so it does not squash them).
    Curves are labelled with their trainable non-embedding parameter count.
    """
    import matplotlib.pyplot as plt

    groups = logs if isinstance(logs, dict) else {None: [p] for p in logs}
    fig, ax = plt.subplots(figsize=(8, 5))
    for label, paths in groups.items():
        runs = [p if isinstance(p, dict) else read_log(p) for p in paths]
        runs = [r for r in runs if r["evals"]]
        if not runs:
            continue
        n = min(len(r["evals"]) for r in runs)              # seeds cut short: common prefix
        tokens = np.array([t for t, _ in runs[0]["evals"][:n]])
        losses = np.array([[v for _, v in r["evals"][:n]] for r in runs])   # (seeds, n)
        name = label if label is not None else runs[0]["label"]
        count = runs[0]["n_trainable"]
        text = name if count is None else f"{name} ({count:,} non-embedding trainable)"
        if len(runs) > 1:
            text += f", {len(runs)} seeds"
        mean = losses.mean(axis=0)
        line, = ax.plot(tokens, mean, marker="o", ms=3, label=text)
        if len(runs) > 1:
            se = losses.std(axis=0, ddof=1) / np.sqrt(len(runs))
            ax.fill_between(tokens, mean - se, mean + se, color=line.get_color(), alpha=0.2)
    lo, hi = ax.get_ylim()
    for label, value in references:
        if value < lo - 0.25 * (hi - lo) or value > hi + 0.25 * (hi - lo):
            # far off the curves' scale (a short run): named in the legend, not drawn
            ax.plot([], [], color="gray", ls=":", lw=1,
                    label=f"{label} {value:.2f} (off the axis)")
            continue
        ax.axhline(value, color="gray", ls=":", lw=1)
        ax.annotate(f"{label} {value:.2f}", (1.0, value), xycoords=("axes fraction", "data"),
                    xytext=(-4, 3), textcoords="offset points", ha="right", fontsize=7,
                    color="dimgray")
    ax.set_xlabel("training tokens seen")
    ax.set_ylabel("validation loss (nats/token)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path, force=force)
