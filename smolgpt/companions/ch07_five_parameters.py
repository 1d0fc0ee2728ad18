"""Chapter 07's analysis, behind named functions: the study's table and figures, the coefficients'
trajectories, the measurements of the mechanism, and the answer to the post's FAQ 3.

The chapter defines the settings and trains them; these functions only read what the runs left
(final losses, logged coefficients, checkpoints) and print or draw it. A setting is named by its
row in the chapter's SETTINGS; `config_of(name)` gives its TrainConfig.

    WORD[verdict(interval)]      -> "learns" / "nothing" / "worse" against embeddings only
"""

from __future__ import annotations

import math
import textwrap

import numpy as np

from .. import checkpoint
from ..experiments.coefficients import coef_gradient, coef_trajectory, mean_loss, tensor_scales
from ..experiments.runs import folder_of
from ..experiments.stats import fmt, mean_se, verdict
from ..methods import MethodError, MethodSpec, build

WORD = {">": "learns", "~": "nothing", "<": "worse"}

# Kinds of tensor whose effective scales are averaged over the layers: substring -> label.
KINDS = {"attn.c_attn": "c_attn", "attn.c_proj": "attn c_proj", "mlp.c_fc": "c_fc",
         "mlp.c_proj": "mlp c_proj", "ln_": "LayerNorm gains"}


def show(iv: dict) -> str:
    """'+0.123 [+0.045, +0.201]', or the mean alone when one seed gives no interval."""
    if math.isnan(iv["lo"]):
        return f"{iv['diff']:+.3f} [no interval: 1 seed]"
    return f"{iv['diff']:+.3f} [{iv['lo']:+.3f}, {iv['hi']:+.3f}]"


def best_levels(settings: dict, vs_base: dict, baseline: MethodSpec):
    """For each factor, the level (if any) whose paired interval against the baseline lies below
    0 with the lowest mean, combined where they are compatible.

    settings: {name: (factor, MethodSpec changes, TrainConfig changes)}. Returns (the combined
    MethodSpec changes, the combined TrainConfig changes, the names of the levels used)."""
    chosen = {}
    for name, (factor, sc, cc) in settings.items():
        if factor in ("baseline", "interaction") or not vs_base[name]["hi"] < 0:
            continue
        if factor not in chosen or vs_base[name]["diff"] < vs_base[chosen[factor]]["diff"]:
            chosen[factor] = name
    recipe_sc, recipe_cc, used = {}, {}, []
    for factor, name in chosen.items():
        _, sc, cc = settings[name]
        try:
            MethodSpec(**{**baseline.to_dict(), **recipe_sc, **sc})
        except MethodError:
            continue                                  # incompatible with a level already chosen
        recipe_sc.update(sc), recipe_cc.update(cc), used.append(name)
    return recipe_sc, recipe_cc, used


def results_table(final: dict, runs: dict, emb: list, vs_emb: dict, vs_base: dict) -> str:
    """The markdown table of section 3: each setting's final loss, against embeddings only and
    against the baseline, with the verdict."""
    emb_mean, emb_se = mean_se(emb)
    rows = [f"embeddings only: final held-out loss {fmt(emb_mean, emb_se)} over {len(emb)} seeds",
            "", "| setting | trainable | final loss | minus embeddings only [95% interval] | "
            "verdict | minus baseline [95% interval] |", "|---|---:|---:|---:|---|---:|"]
    for name in final:
        m, se = mean_se(final[name])
        rows.append(f"| {name} | {runs[name][0]['n_trainable']:,} | {fmt(m, se)} | "
                    f"{show(vs_emb[name])} | {WORD[verdict(vs_emb[name])]} | "
                    f"{show(vs_base[name])} |")
    return "\n".join(rows)


def effects_figure(names, vs_emb: dict, vs_base: dict, subtitle: str):
    """Two panels: each setting's paired interval against embeddings only and the baseline,
    coloured by its verdict against embeddings only."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 0.42 * len(names) + 1.6), sharey=True)
    colour = {"learns": "tab:green", "nothing": "tab:gray", "worse": "tab:red"}
    for ax, ivs, ref in ((axes[0], vs_emb, "embeddings only"), (axes[1], vs_base, "the baseline")):
        for i, name in enumerate(names):
            iv = ivs[name]
            c = colour[WORD[verdict(vs_emb[name])]]
            ax.plot([iv["diff"]], [i], "o", color=c)
            if not math.isnan(iv["lo"]):
                ax.plot([iv["lo"], iv["hi"]], [i, i], "-", color=c, lw=2)
        ax.axvline(0, color="k", lw=0.8)
        ax.set_xlabel(f"final loss minus {ref} (nats)")
    axes[0].set_yticks(range(len(names)), names)
    axes[0].invert_yaxis()
    axes[0].set_title("green: learns, grey: nothing, red: worse", fontsize=9)
    axes[1].set_title(subtitle, fontsize=9)
    fig.suptitle("which choice makes 5 coefficients learn nothing? (means, paired 95% intervals)")
    fig.tight_layout()
    return fig


def trajectories(names, runs: dict, config_of) -> dict:
    """{name: (steps (n,), coefficients (n, d))} of seed 0, from its log, with the method's start
    as step 0 (empty arrays for a run made before coefficients were logged)."""
    traj = {}
    for name in names:
        steps_, coefs = coef_trajectory(folder_of(runs[name][0]) / "log.jsonl")
        if len(steps_):                                   # a at step 0 is the method's start
            cfg = config_of(name)
            a0 = build(cfg.method, cfg.gpt).init()["coef"].astype(np.float64)
            steps_, coefs = np.concatenate([[0], steps_]), np.vstack([a0, coefs])
        traj[name] = (steps_, coefs)
    return traj


def trajectories_figure(names, traj: dict):
    """One panel per setting: every a_k against the step, and |a| / sqrt(d) dashed."""
    import matplotlib.pyplot as plt

    cols = 4
    rows_n = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows_n, cols, figsize=(3.4 * cols, 2.5 * rows_n), sharex=True)
    for ax, name in zip(axes.flat, names):
        steps_, coefs = traj[name]
        if len(steps_):
            ax.plot(steps_, coefs, lw=1)
            ax.plot(steps_, np.linalg.norm(coefs, axis=1) / math.sqrt(coefs.shape[1]), "k--",
                    lw=1)
        else:
            ax.text(0.5, 0.5, "coefficients not logged\n(run made before logging)",
                    ha="center", va="center", transform=ax.transAxes, fontsize=8)
        ax.set_title(textwrap.shorten(name, 34), fontsize=8)
        ax.axhline(0, color="k", lw=0.5)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    fig.supxlabel("step")
    fig.supylabel("a_k (dashed: |a| / sqrt(d))")
    fig.tight_layout()
    return fig


def print_moves(names, traj: dict) -> None:
    """|a| / sqrt(d) at the start and the end, and the largest move of one coefficient."""
    print(f"{'setting':<48} {'|a|/sqrt(d) start':>17} {'end':>7} {'largest |a_k| move':>19}")
    for name in names:
        steps_, coefs = traj[name]
        if not len(steps_):
            continue
        a0, d = coefs[0], coefs.shape[1]
        print(f"{name:<48} {np.linalg.norm(a0) / math.sqrt(d):>17.3f} "
              f"{np.linalg.norm(coefs[-1]) / math.sqrt(d):>7.3f} "
              f"{np.abs(coefs[-1] - a0).max():>19.3f}")


def start_gradients(names, config_of, probe) -> tuple[dict, dict]:
    """At each setting's start: ({name: (|dL/da|, radial part a_hat . dL/da)}, {name: loss}),
    on the probe windows; printed as a table."""
    print(f"{'setting':<48} {'loss at start':>13} {'|dL/da|':>9} {'radial part':>12}")
    start_grad, start_loss = {}, {}
    for name in names:
        cfg = config_of(name)
        method = build(cfg.method, cfg.gpt)
        t0 = method.init()
        g = coef_gradient(method, t0, probe, cfg.gpt)
        a = t0["coef"].astype(np.float64)
        radial = float(g @ a / np.linalg.norm(a)) if np.linalg.norm(a) > 0 else math.nan
        start_grad[name] = (float(np.linalg.norm(g)), radial)
        start_loss[name] = mean_loss(method, t0, probe, cfg.gpt)
        print(f"{name:<48} {start_loss[name]:>13.3f} "
              f"{np.linalg.norm(g):>9.2e} {radial:>+12.2e}")
    return start_grad, start_loss


def trained(name, runs: dict, config_of):
    """(method, trainables at the end of seed 0) of a setting."""
    cfg = config_of(name)
    t, _, _ = checkpoint.load(folder_of(runs[name][0]) / "checkpoint.npz")
    return build(cfg.method, cfg.gpt), t


def by_kind(scales: dict) -> dict:
    """{kind: mean effective scale over the layers} of a tensor_scales result."""
    out = {}
    for key, kind in KINDS.items():
        vals = [v for n, v in scales.items() if key in n]
        if vals:
            out[kind] = float(np.mean(vals))
    return out


def scale_trajectory(method, traj_entry) -> list:
    """[(step, {kind: effective scale})] at the start, about 8 logged steps, and the end."""
    steps_, coefs = traj_entry
    every = max(1, len(steps_) // 8)
    logged = [(int(s), c) for s, c in zip(steps_, coefs)]
    pts = logged[::every] + logged[-1:]                          # the start, ~8 points, the end
    return [(s, by_kind(tensor_scales(method, np.asarray(c, dtype=np.float32)))) for s, c in pts]


def mechanism_figure(S, radial_scan: dict, t_axis, axis_scan: list, scale_traj: dict):
    """Three panels: loss along the global scale of a; the baseline's loss along each
    coefficient; each kind of tensor's effective scale over training."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    for name, losses in radial_scan.items():
        axes[0].plot(S, losses, "o-", label=textwrap.shorten(name, 30))
    axes[0].axvline(1, color="k", lw=0.5)
    axes[0].set_xscale("symlog", linthresh=0.25)
    axes[0].set_xlim(left=0)
    axes[0].set_xlabel("s (a = s * a_end)")
    axes[0].set_ylabel("held-out loss")
    axes[0].set_title("loss along the global scale of a")
    axes[0].legend(fontsize=8)
    for k, losses in enumerate(axis_scan):
        axes[1].plot(t_axis, losses, "o-", label=f"a_{k + 1}")
    axes[1].set_xlabel("t (a = a_end + t e_k)")
    axes[1].set_title("baseline: loss along each coefficient")
    axes[1].legend(fontsize=8)
    styles = dict(zip(scale_traj, ("-", ":")))
    for name, pts in scale_traj.items():
        for j, kind in enumerate(pts[0][1]):
            axes[2].plot([s for s, _ in pts], [v[kind] for _, v in pts], styles[name],
                         color=f"C{j}",
                         label=f"{kind} ({'literal' if 'literal' in name else 'baseline'})")
    axes[2].set_yscale("log")
    axes[2].set_xlabel("step")
    axes[2].set_title("effective scale |W| / |W at GPT-2's init|")
    axes[2].legend(fontsize=7, ncol=2, loc="center right")
    fig.tight_layout()
    return fig


def faq3_measurements(*, base_name, steps, vocab_size, vs_emb, start_grad, start_loss,
                      scale_traj, moved, s_best) -> list[str]:
    """The measurements behind chapter 07's answer to FAQ 3, one line each with what it means:
    the baseline against embeddings only; what putting LayerNorm inside the combination does at
    the start; how far the coefficients move at the embeddings' rate; and how the baseline's
    coefficients set the random weights' scale. The chapter's prose draws the conclusion."""
    lines = [f"FAQ 3, answered at this scale: {base_name} minus embeddings only = "
             f"{show(vs_emb[base_name])} nats ({WORD[verdict(vs_emb[base_name])]})."]
    lit, rate = "literal: LN, biases in", "a at the embeddings' rate"
    if lit in start_grad and base_name in start_grad:
        gains = [scale_traj[lit][k][1]["LayerNorm gains"] for k in (0, -1)]
        lines.append(f"LayerNorm inside the combination: the gains start at {gains[0]:.2f} of "
                     f"GPT-2's and end at {gains[1]:.2f}; the gradient with respect to a is "
                     f"{start_grad[base_name][0] / start_grad[lit][0]:.0f} times smaller than "
                     f"the baseline's; the loss at the start is {start_loss[lit]:.3f} (ln V = "
                     f"{math.log(vocab_size):.3f}).")
    if rate in moved and base_name in moved:
        lines.append(f"At the embeddings' rate the coefficients move by at most "
                     f"{moved[rate]:.3f} in {steps} steps (at their own rate: "
                     f"{moved[base_name]:.2f}).")
    end = scale_traj[base_name][-1][1]
    weights = [v for k, v in end.items() if k != "LayerNorm gains"]
    lines.append(f"The baseline's coefficients end with every kind of weight matrix at "
                 f"{min(weights):.2f} to {max(weights):.2f} times GPT-2's init scale (LayerNorm "
                 f"gains {end['LayerNorm gains']:.2f}); its loss along s * a is lowest at "
                 f"s = {s_best:g} of the values scanned.")
    return lines
