"""Diagrams the chapters draw with matplotlib (no image files are shipped, the chapter makes them).

    fig = block_diagram()       # one GPT-2 transformer block, bottom to top, with shapes
"""

from __future__ import annotations

# (label, formula or shape note, the plain.py function that computes it)
BLOCK_STEPS = [
    ("ln_1", "LayerNorm: g (x - mu) / sigma + b", "layernorm_forward"),
    ("c_attn", "x W + b:  (B, T, C) -> (B, T, 3C) = q, k, v", "linear_forward"),
    ("attention", "softmax(q k^T / sqrt(hs) + mask) v, per head", "attention_forward"),
    ("c_proj", "x W + b:  (B, T, C) -> (B, T, C)", "linear_forward"),
    ("ln_2", "LayerNorm", "layernorm_forward"),
    ("c_fc", "x W + b:  (B, T, C) -> (B, T, 4C)", "linear_forward"),
    ("gelu", "x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))", "gelu_forward"),
    ("mlp.c_proj", "x W + b:  (B, T, 4C) -> (B, T, C)", "linear_forward"),
]


def block_diagram():
    """One pre-LayerNorm block as boxes on a residual stream; returns the matplotlib figure.

    The stream x (B, T, C) runs up the left; each branch reads it through a LayerNorm and adds
    its result back at a (+). Box colours: normalisation, learned linear maps, the fixed
    nonlinearities (attention's softmax mixing, GELU)."""
    import matplotlib.pyplot as plt

    colours = {"layernorm_forward": "#f4d58d", "linear_forward": "#9cc5e8",
               "attention_forward": "#f2a07b", "gelu_forward": "#b5dfa8"}
    fig, ax = plt.subplots(figsize=(8.5, 9.5))
    ax.set_xlim(0, 10)
    ax.set_ylim(-0.6, 12.2)
    ax.axis("off")
    y_box = {i: 0.9 + i * 1.1 + (0.6 if i >= 4 else 0) for i in range(len(BLOCK_STEPS))}
    ax.annotate("", xy=(1.0, 11.3), xytext=(1.0, -0.3),
                arrowprops=dict(arrowstyle="-|>", lw=2.5, color="#555555"))
    ax.text(1.0, -0.5, "x  (B, T, C)  in", ha="center", va="top", fontsize=10)
    ax.text(1.0, 11.45, "x  (B, T, C)  out", ha="center", va="bottom", fontsize=10)
    for (name, formula, fn), i in zip(BLOCK_STEPS, range(len(BLOCK_STEPS))):
        y = y_box[i]
        ax.add_patch(plt.Rectangle((2.6, y - 0.38), 6.9, 0.76, facecolor=colours[fn],
                                   edgecolor="black", lw=0.8))
        ax.text(2.75, y + 0.12, name, fontsize=10, fontweight="bold", va="center")
        ax.text(2.75, y - 0.17, formula, fontsize=8.5, va="center")
        if i in (0, 4):                                   # a branch leaves the stream
            ax.annotate("", xy=(2.6, y), xytext=(1.0, y),
                        arrowprops=dict(arrowstyle="-|>", color="black"))
        else:                                             # up from the box below
            ax.annotate("", xy=(6.0, y - 0.38), xytext=(6.0, y_box[i - 1] + 0.38),
                        arrowprops=dict(arrowstyle="-|>", color="black"))
        if i in (3, 7):                                   # the branch is added back: x + f
            y_add = y + 0.75
            ax.plot([6.0, 6.0, 1.0], [y + 0.38, y_add, y_add], color="black", lw=1)
            ax.add_patch(plt.Circle((1.0, y_add), 0.22, facecolor="white", edgecolor="black",
                                    zorder=3))
            ax.text(1.0, y_add, "+", ha="center", va="center", fontsize=13, zorder=4)
    ax.text(9.6, (y_box[0] + y_box[3]) / 2, "attention\nsub-block", ha="left", va="center",
            fontsize=9, rotation=90)
    ax.text(9.6, (y_box[4] + y_box[7]) / 2, "MLP\nsub-block", ha="left", va="center",
            fontsize=9, rotation=90)
    ax.set_title("One GPT-2 block (pre-LayerNorm): x = x + attn(ln_1(x)); x = x + mlp(ln_2(x))",
                 fontsize=10)
    return fig
