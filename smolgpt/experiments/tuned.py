"""The learning rates the sweeps chose, in one table, with the command that reproduces each.

The race (chapter 05) runs every method at the budget `RACE` below. Each rate in `TUNED` was
chosen by `smolgpt sweep` at that budget (seed 0; finished runs are cached, so re-running a
sweep costs nothing once done) and is *interior* to its grid: both grid neighbours had a higher
final held-out loss. Coefficient rates of the subspace methods were swept with the embeddings at
their own tuned `lr`.

To reproduce a row (the grid is the one printed next to it):

    smolgpt sweep --method embeddings --steps 64 --batch-size 8 --warmup 6 --eval-every 16 \\
        --eval-windows 32 --sample-tokens 0 --seeds 1 --field lr --grid 1e-3,3e-3,1e-2,3e-2

(for a coefficient rate: `--lr 3e-3 --field coef_lr --grid 0.1,0.3,1 --extend 2` and the
method's flags, e.g. `--method basis --d 5 --per-tensor --no-offset`).
"""

from __future__ import annotations

import dataclasses

from ..methods import MethodSpec
from ..model import GPTConfig
from ..train import TrainConfig

# The race's budget: 64 steps of 8 x 128 tokens (65,536 tokens) per run on `tiny`.
RACE = TrainConfig(gpt=GPTConfig.preset("tiny"), steps=64, batch_size=8, warmup=6, eval_every=16,
                   eval_windows=32, sample_tokens=0)

# method label -> {TrainConfig field: chosen value, "grid": what was swept, "final": the final
# held-out loss at each grid value (seed 0, 256 windows, each with a standard error of ~0.04)}.
# The subspace entries' coefficient rates were swept with lr at the embeddings' 3e-3.
TUNED: dict[str, dict] = {
    "embeddings": {"lr": 3e-3, "grid": (1e-3, 3e-3, 1e-2, 3e-2),
                   "final": (8.4350, 8.2388, 9.0665, 10.6638)},
    # interior, but its margin over 1e-3 (0.013) is inside one seed's evaluation noise
    "full": {"lr": 3e-3, "grid": (3e-4, 1e-3, 3e-3, 1e-2),
             "final": (9.3793, 7.8588, 7.8462, 7.9417)},
    "lora r=4": {"lr": 3e-3, "grid": (1e-3, 3e-3, 1e-2), "final": (7.9616, 7.9278, 7.9482)},
    # coefficient rates, swept with the embeddings at their own lr (3e-3)
    "basis d=5 no-offset": {"lr": 3e-3, "coef_lr": 0.3, "grid": (0.1, 0.3, 1.0),
                            "final": (7.8292, 7.8067, 7.8232)},
    # grid extended twice past its top edge (`--extend 2`) before the best was interior
    "basis 5/tensor no-offset": {"lr": 3e-3, "coef_lr": 3.33,
                                 "grid": (0.1, 0.3, 1.0, 3.33, 11.1),
                                 "final": (7.9394, 7.8756, 7.8295, 7.8071, 8.0430)},
    # grid extended once past its top edge
    "fastfood d=5000": {"lr": 3e-3, "coef_lr": 1.0, "grid": (0.1, 0.3, 1.0, 3.33),
                        "final": (7.9114, 7.9024, 7.7796, 7.8064)},
}


def tuned(spec: MethodSpec) -> dict:
    """The tuned TrainConfig fields for a method ({} when its label was never swept)."""
    return {k: v for k, v in TUNED.get(spec.label(), {}).items() if k not in ("grid", "final")}


def at_tuned_rates(base: TrainConfig, spec: MethodSpec) -> TrainConfig:
    """base with method spec and the spec's tuned rates (base's own where none were tuned)."""
    return dataclasses.replace(base, method=spec, **tuned(spec))
