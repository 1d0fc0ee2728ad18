# ---
# jupyter:
#   jupytext:
#     formats: py:percent
# ---

# %% [markdown]
"""
# Chapter 06 — Von Neumann's elephant, drawn and then learned

**Question.** "With four parameters I can fit an elephant, and with five I can make him wiggle
his trunk." Is that literally true, and can gradient descent find those parameters on its own?

**The post** is the blog post "Training smol language models" (2025), which this book
reproduces at laptop scale; chapter 01 introduces it and the papers it builds on.

**Assumes.** Nothing from earlier chapters except the project's Adam (`smolgpt.optim`). The
elephant is the one of Mayer, Khairy and Howard, "Drawing an elephant with four complex
parameters", Am. J. Phys. 78, 648 (2010); the code that draws and fits it is
`smolgpt/companions/ch06_elephant.py`.

**Time.** A few seconds on a 2-core CPU, most of it importing matplotlib and writing the GIF
(measurements: smolgpt/bench/NOTES.md); quick mode (`SMOLGPT_QUICK=1` or `--quick`: fewer GIF
frames, Adam steps and random restarts) a little less.

**Writes** to `out/06_elephant/` (or `$SMOLGPT_OUT/06_elephant/`): `elephant.png`,
`harmonics.png`, `wiggle.gif` with one of its frames as `wiggle_frame.png`, `fit_progress.png`,
`fit_loss.png`, `symmetry.png`.
"""

# %%
import time

import smolgpt  # noqa: F401  first: it tells BLAS how to wait, before NumPy loads BLAS
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.animation import FuncAnimation, PillowWriter

from smolgpt.companions import ch06_elephant as E
from smolgpt.experiments import out_dir, print_takeaways, quick_mode, show_in_notebook

QUICK = quick_mode()
OUT = out_dir("06_elephant")
START = time.time()
GIF_FRAMES = 8 if QUICK else 24            # frames in one full swing of the trunk
FIT_STEPS = 300 if QUICK else 400          # Adam steps for the fit
SEEDS = 3 if QUICK else 8                  # random starts in the uniqueness check
print(f"quick mode: {QUICK}; writing to {OUT}")

# %% [markdown]
"""
Two small helpers for the pictures: every drawing of the elephant uses the same frame, and every
figure is saved under the chapter's folder with its path printed.
"""

# %%
def style(ax, title=None):
    """Equal axes, no ticks: a picture, not a plot."""
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlim(-80, 95)
    ax.set_ylim(-70, 95)
    if title:
        ax.set_title(title, fontsize=10)


def save(fig, name):
    """Save fig as OUT/name, close it, and print where it went."""
    path = OUT / name
    fig.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(fig)
    print(f"  saved {path}")
    show_in_notebook(path)
    return path


# %% [markdown]
"""
## 1. Ten numbers on a page

The published parameters are five complex numbers. The first four are eight Fourier
coefficients of the outline; the fifth carries the trunk's wiggle (real part) and the eye
(imaginary part). Here is where each number lands.
"""

# %%
C, _ = E.coefficients_forward(E.PUBLISHED)                 # (4, K+1)
print("published parameter -> Fourier coefficient it becomes")
for (j, part), (row, k) in E.PLACEMENT.items():
    name = f"{'Re' if part == 0 else 'Im'} p{j + 1}"
    print(f"  {name:6s} = {E.PUBLISHED[j, part]:+6.1f}  ->  {E.SERIES[row]}_{k}")
print(f"  Re p5  = {E.PUBLISHED[4, 0]:+6.1f}  ->  trunk swing (peak to peak, picture units)")
print(f"  Im p5  = {E.PUBLISHED[4, 1]:+6.1f}  ->  eye at (Im p5, Im p5)")
print(f"non-zero entries of the 4 x {E.K + 1} coefficient table: {np.count_nonzero(C)} of {C.size}")

# %% [markdown]
"""
Eight of the 24 coefficients up to the fifth harmonic are non-zero, and there is no constant
term, so the outline is centred on the origin. Drawing it is a sum of cosines and sines.
"""

# %%
outline, eye = E.draw(E.PUBLISHED, N=600)
print(f"outline closes on itself? first point {outline[0].round(3)}, last point "
      f"{outline[-1].round(3)}, gap {np.linalg.norm(outline[0] - outline[-1]):.1e}")
centre = outline[:-1].mean(axis=0)
print(f"centre of the outline (mean of 600 points): {np.linalg.norm(centre):.1e} from the origin")
print(f"eye at {eye}")

fig, ax = plt.subplots(figsize=(4.5, 4.5))
ax.plot(*outline.T, color="tab:gray", lw=2.5)
ax.plot(*eye, "o", color="black", ms=6)
style(ax, "p1..p4: outline, Im p5: eye")
save(fig, "elephant.png")

# %% [markdown]
"""
That is the elephant: head and ear at the top, legs at the bottom, trunk to the right. The
coefficients are indexed by harmonic k, and each harmonic adds its own epicycles (turning k
times per tour of the outline) on top of the previous ones. Cutting the series after k = 1, 2, 3
shows how the shape is built up.
"""

# %%
t_fine = np.append(E.sample_t(600), 2 * np.pi)             # (601,) a closed loop
fig, axes = plt.subplots(1, 4, figsize=(13, 3.6))
for ax, kmax in zip(axes, (1, 2, 3, 5)):
    Ck = C.copy()
    Ck[:, kmax + 1:] = 0.0                                 # drop the higher harmonics
    frames, _ = E.curve_forward(Ck, 0.0, t_fine, np.zeros(1))
    ax.plot(*frames[0].T, color="tab:gray", lw=2)
    style(ax, f"harmonics k <= {kmax}: {np.count_nonzero(Ck)} numbers")
save(fig, "harmonics.png")
print("left to right: k <= 1 is an ellipse, k <= 2 dents it, k <= 3 adds head and trunk, "
      "k = 5 the legs")

# %% [markdown]
"""
## 2. The fifth parameter: the wiggle

The paper gives the wiggle parameter a value (40) but leaves open how it moves the trunk. Our
choice (in `smolgpt/companions/ch06_elephant.py`): the trunk's points are lifted by
`Re(p5) * sin(phase) * bump(t)`, where the bump is zero where the trunk meets the head and 1/2
at its tip. The tip therefore swings through 40 picture units, and the outline stays a smooth
closed curve at every phase.
"""

# %%
phases = 2 * np.pi * np.arange(GIF_FRAMES) / GIF_FRAMES
t_anim = t_fine
frames, eye, _ = E.elephant_forward(E.PUBLISHED, t_anim, phases)   # (F, N+1, 2)
tip = np.argmin(np.abs(t_anim - 3.7))                             # middle of the trunk
swing = frames[:, tip, 1].max() - frames[:, tip, 1].min()
body = E.trunk_bump(t_anim) == 0
still = np.abs(frames[:, body] - frames[:1, body]).max()
print(f"trunk tip moves through {swing:.1f} units over one cycle "
      f"(Re p5 = {E.PUBLISHED[4, 0]:.0f}); the rest of the body moves by {still:.1e}")

# %% [markdown]
"""
The same frames as an animation: one full swing of the trunk, saved as a GIF.
"""

# %%
fig, ax = plt.subplots(figsize=(4, 4))
(line,) = ax.plot(*frames[0].T, color="tab:gray", lw=2.5)
ax.plot(*eye, "o", color="black", ms=6)
style(ax, "Re p5: the trunk wiggles")


def show(i):
    line.set_data(frames[i, :, 0], frames[i, :, 1])
    return (line,)


gif = OUT / "wiggle.gif"
FuncAnimation(fig, show, frames=GIF_FRAMES, blit=True).save(
    gif, writer=PillowWriter(fps=12), dpi=70)
show(GIF_FRAMES // 4)                      # the frame with the trunk raised highest
save(fig, "wiggle_frame.png")
print(f"  saved {gif} ({GIF_FRAMES} frames, {gif.stat().st_size // 1024} KB)")

# %% [markdown]
"""
Four numbers for the shape, a fifth for the motion (and, to be fair, its other half for the
eye). Von Neumann's boast holds up.

## 3. Learning the ten numbers back

Now forget the table. We sample the target at N equally spaced values of t, at four trunk
phases (so the wiggle is visible in the data), plus the eye; we start from ten random numbers
and minimise the mean squared distance between each model point and the target point with the
*same* t. The gradient is the hand-written `elephant_backward` (checked against finite
differences in `tests/test_elephant.py`), and the step is the project's Adam, exactly as a
network is trained.
"""

# %%
t = E.sample_t(256)                                         # (N,)
fit_phases = 2 * np.pi * np.arange(4) / 4                   # (F,) trunk level, up, level, down
target_frames, target_eye, _ = E.elephant_forward(E.PUBLISHED, t, fit_phases)
snap_steps = (0, 20, 50, 100, FIT_STEPS)
p_fit, losses, snaps = E.fit(target_frames, target_eye, t, fit_phases, steps=FIT_STEPS,
                             lr=2.0, seed=0, snapshot_steps=snap_steps)
print(f"loss (mean squared distance, picture units^2) at steps 0 / 20 / 50 / 100 / {FIT_STEPS}: "
      + " / ".join(f"{losses[s]:.3g}" for s in snap_steps))
print(f"final RMS distance between learned and target points: {np.sqrt(losses[-1]):.1e} units")

# %% [markdown]
"""
What the fit looks like at those steps (grey: the published elephant, blue: the fit), and its
loss step by step.
"""

# %%
fig, axes = plt.subplots(1, len(snap_steps), figsize=(3.2 * len(snap_steps), 3.4))
for ax, s in zip(axes, snap_steps):
    outl, eye_s = E.draw(snaps[s], N=400, phase=np.pi / 2)
    ax.plot(*E.draw(E.PUBLISHED, N=400, phase=np.pi / 2)[0].T, color="0.8", lw=4)
    ax.plot(*outl.T, color="tab:blue", lw=1.5)
    ax.plot(*eye_s, "o", color="tab:blue", ms=5)
    style(ax, f"step {s}: loss {losses[s]:.2g}")
    ax.set_xlim(-120, 120)                 # wider than the elephant: room for the scribble
    ax.set_ylim(-120, 120)
save(fig, "fit_progress.png")

# %%
fig, ax = plt.subplots(figsize=(5, 3.4))
ax.semilogy(losses)
ax.set_xlabel("Adam step")
ax.set_ylabel("mean squared distance")
ax.set_title("fitting the elephant from a random start")
ax.grid(alpha=0.3)
save(fig, "fit_loss.png")

# %% [markdown]
"""
The random start is a scribble; within a hundred steps it is an elephant. How close are the
learned numbers to the published ones?
"""

# %%
print("parameter   published     learned")
for j in range(5):
    pub = complex(*E.PUBLISHED[j])
    got = complex(*p_fit[j])
    print(f"  p{j + 1}      {pub.real:+5.0f}{pub.imag:+5.0f}i   {got.real:+9.4f}{got.imag:+9.4f}i")
print(f"largest difference over the ten numbers: {np.abs(p_fit - E.PUBLISHED).max():.1e}")

# %% [markdown]
"""
All ten come back. Is that luck of the seed? Every map from parameters to points is linear, so
the loss is a quadratic bowl; its Hessian is constant, and we can get it exactly from the
gradient at the eleven points 0, e_1, ..., e_10. If its smallest eigenvalue is positive the
bowl has one bottom, and every start must end there.
"""

# %%
zero = np.zeros((5, 2))
g0 = E.loss_and_grad(zero, t, fit_phases, target_frames, target_eye)[1].ravel()
H = np.empty((10, 10))
for i in range(10):
    e = np.zeros(10)
    e[i] = 1.0
    g = E.loss_and_grad(e.reshape(5, 2), t, fit_phases, target_frames, target_eye)[1]
    H[:, i] = g.ravel() - g0               # exact, not approximate: the loss is quadratic
eig = np.linalg.eigvalsh(H)
print(f"Hessian eigenvalues: smallest {eig[0]:.3g}, largest {eig[-1]:.3g} "
      f"(all positive: one minimum, no flat direction)")
ends = np.stack([E.fit(target_frames, target_eye, t, fit_phases, steps=FIT_STEPS, lr=2.0,
                       seed=s)[0] for s in range(SEEDS)])
print(f"{SEEDS} random starts: largest distance of any learned number from the published one "
      f"{np.abs(ends - E.PUBLISHED).max():.1e}")

# %% [markdown]
"""
## 4. The symmetry we avoided by matching points by t

Our loss pairs each model point with the target point of the same t. A loss that compared only
*shapes* (say, each point to its nearest neighbour on the other curve) would see less: the same
outline can be traced starting elsewhere or running the other way. Most re-timings move
coefficients into slots this eight-number family keeps at zero, so they are not available to
it, but two survive:

- starting half-way round, t -> t + pi, flips the sign of every odd harmonic:
  p1 -> -p1, p3 -> -p3, p4 -> -p4, p2 stays;
- running backwards, t -> -t, flips every sine coefficient: p1 -> -p1, p2 -> -p2, p3 -> its
  complex conjugate, p4 stays;

and their composition. Four different parameter sets, one elephant.
"""

# %%
t_even = E.sample_t(400)                                    # N even: t + pi stays on the grid
reference = E.elephant_forward(E.PUBLISHED, t_even, np.zeros(1))[0][0]
names = ("published", "t -> t + pi", "t -> -t", "t -> pi - t")
fig, axes = plt.subplots(1, 4, figsize=(13, 3.6))
print("re-timing      p1          p2          p3          p4        "
      "shape distance  matched-by-t loss")
for ax, name, q in zip(axes, names, E.equivalent_parameters(E.PUBLISHED)):
    pts = E.elephant_forward(q, t_even, np.zeros(1))[0][0]          # (N, 2)
    shape_gap = max(E.nearest_distance(pts, reference), E.nearest_distance(reference, pts))
    matched = E.mse_forward(pts, reference)[0]
    nums = "  ".join(f"{q[j, 0]:+4.0f}{q[j, 1]:+4.0f}i" for j in range(4))
    print(f"  {name:12s} {nums}   {shape_gap:9.1e}      {matched:9.1f}")
    ax.plot(*pts.T, color="tab:gray", lw=2)
    ax.plot(*pts[0], "o", color="tab:red", ms=7)                    # where t = 0 is
    ax.annotate("", xy=pts[30], xytext=pts[0],
                arrowprops=dict(arrowstyle="-|>", color="tab:red", lw=2))  # which way t runs
    style(ax, f"{name}: starts at the dot")
save(fig, "symmetry.png")

# %% [markdown]
"""
The four parameter sets draw the same set of points (shape distance at rounding level), but
start at a different place or run the other way (the red dot and arrow), so the matched-by-t
loss tells them apart by thousands of units squared. That is why our fit has a single answer.
A fit by shape alone would be ambiguous among these four, and with every Fourier slot free it
would be worse: any start point t -> t + s would do, a whole circle of equally good answers.
The wiggle and the eye are left out of this: the eye does not move, and the trunk's lift is
tied to the original timing.

## 5. The joke, and why it stings

Four numbers draw an elephant and a fifth wiggles its trunk. The question behind this project
was whether five numbers could likewise steer a GPT-2. In the global random-basis model every
non-embedding weight of GPT-2 small is a fixed random combination of five trainable
coefficients. In the post, trained on a billion tokens, it learned nothing beyond its
embeddings. Chapter 05 races five numbers against embeddings only at this project's scale
(tens of thousands of tokens per run, several seeds, paired intervals), and chapter 07 takes
apart the choices the post left open: whether LayerNorm's gains and biases sit inside the random
combination, how the W^k are scaled, and whether the five numbers get a learning rate of their
own or the embeddings' small one. The two models side by side:
"""

# %%
from smolgpt.methods import MethodSpec, build
from smolgpt.model import GPTConfig, count_params

gpt2 = GPTConfig.preset("gpt2")
GPT2_SMALL_NON_EMBEDDING = count_params(gpt2, non_embedding=True)                  # 85,056,000
GPT2_GLOBAL_BASIS_TRAINABLE = build(MethodSpec("basis", d=5, offset=False), gpt2).n_trainable
rows = [
    ("Von Neumann's elephant", "4 (5)", "8 Fourier coefficients of one curve (+ trunk, eye)",
     "an elephant, wiggling"),
    ("GPT-2 small, global basis", f"{GPT2_GLOBAL_BASIS_TRAINABLE}",
     f"{GPT2_SMALL_NON_EMBEDDING:,} non-embedding weights",
     "in the post: nothing beyond the embeddings"),
]
print(f"{'model':27s} {'params':>6s}   {'what they steer':52s} result")
for name, n, steers, result in rows:
    print(f"{name:27s} {n:>6s}   {steers:52s} {result}")
print(f"each elephant number moves one Fourier coefficient; each of the GPT-2's "
      f"{GPT2_GLOBAL_BASIS_TRAINABLE} numbers moves all {GPT2_SMALL_NON_EMBEDDING:,} weights at "
      f"once")

# %% [markdown]
"""
## What this chapter showed

Von Neumann's boast is literally true: four complex numbers, eight real Fourier coefficients,
draw Mayer, Khairy and Howard's elephant, and a fifth swings the trunk and places the eye. The
numbers can also be learned: with the published ones forgotten, Adam on a hand-derived gradient
finds them again from a random start. That is no luck of the seed. Matching the model's points
to the target's by t makes every map from parameters to points linear, so the loss is a
quadratic bowl, and a positive smallest Hessian eigenvalue means it has one bottom that every
start reaches. A loss that compared shapes alone would be ambiguous: starting half-way round or
running backwards gives four parameter sets with the same outline.

The elephant works because its family of curves was designed for it: Mayer, Khairy and
Howard traced an elephant, kept only its largest Fourier coefficients and threw the rest away,
so every one of the eight numbers sits exactly where an elephant needs a number. Five numbers
steering 85 million weights along fixed random directions have no such design behind them;
what they can do at laptop scale is chapters 05 and 07's question.
"""

# %%
err_fit = np.abs(ends - E.PUBLISHED).max()
print_takeaways([
    f"Yes: four complex numbers draw the elephant and a fifth wiggles its trunk, and Adam finds "
    f"them from {SEEDS} random starts, every one of the ten numbers within {err_fit:.1e} of the "
    f"published one.",
    f"The loss matched by t is a quadratic bowl: smallest Hessian eigenvalue {eig[0]:.3g} "
    f"(> 0: one bottom).",
    f"The elephant's 8 numbers each move one Fourier coefficient; GPT-2 small's global basis "
    f"steers {GPT2_SMALL_NON_EMBEDDING:,} weights with {GPT2_GLOBAL_BASIS_TRAINABLE}.",
], START)

# %% [markdown]
"""
## Exercises
Solutions: `chapters/solutions/06_*.py` (each runs in seconds; a test runs them).

1. **Check the drawing's backward.** `elephant_backward` (`smolgpt.companions.ch06_elephant`)
   undoes the drawing. Check it against finite differences with `smolgpt.gradcheck.check_layer`,
   treating the frames and the eye as one output vector, at random parameters.
2. **A trunk that cannot wiggle.** Predict what changes between phase 0 and phase pi/2 when
   Re(p5) = 0, and how far the trunk's tip moves when Re(p5) = 40. Check with `draw`.
"""
