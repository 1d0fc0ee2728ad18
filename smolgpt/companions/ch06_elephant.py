"""Von Neumann's elephant: five complex numbers drawn as a closed curve, and learned back.

"With four parameters I can fit an elephant, and with five I can make him wiggle his trunk."
Mayer, Khairy and Howard, "Drawing an elephant with four complex parameters", Am. J. Phys. 78,
648 (2010), took the saying literally. The outline is a closed curve (x(t), y(t)), t in
[0, 2 pi), each coordinate a truncated Fourier series

    x(t) = sum_k  A^x_k cos(k t) + B^x_k sin(k t)        k = 0 .. 5
    y(t) = sum_k  A^y_k cos(k t) + B^y_k sin(k t)

in which only eight coefficients are non-zero. Their values are the real and imaginary parts
of four complex numbers (the paper's Table I):

    p1 =  50 - 30i     B^x_1 =  50   B^y_1 = -30
    p2 =  18 +  8i     B^x_2 =  18   B^y_2 =   8
    p3 =  12 - 10i     A^x_3 =  12   B^y_3 = -10
    p4 = -14 - 60i     A^x_5 = -14   A^y_1 = -60
    p5 =  40 + 20i     wiggle amplitude 40, eye at x_eye = y_eye = 20

With these numbers the elephant stands upright, trunk to the right, when drawn with y to the
right and -x upward, so every point here is returned in those picture coordinates,
(X, Y) = (y, -x); the eye then sits at (Im p5, Im p5) = (20, 20), inside the head.

The paper gives the wiggle parameter a value but not a mechanism, so the trunk's motion is our
own choice, kept linear in the parameter: points of the trunk (t in TRUNK) are lifted by

    dY(t, phase) = Re(p5) * sin(phase) * bump(t),     bump = sin^2(pi (t - t0) / (t1 - t0)) / 2

which is zero where the trunk meets the head and 1/2 at its tip, so the tip swings from
-Re(p5)/2 to +Re(p5)/2: a peak-to-peak swing of Re(p5) picture units.

The ten real numbers live in one array p of shape (5, 2): row j is p_{j+1}, column 0 its real
part, column 1 its imaginary part. Every map from p to points is linear, so fitting p to
points matched by t is a linear least-squares problem; `fit` solves it the way a network is
trained anyway, by Adam on a hand-written gradient.

Shapes: F frames (trunk phases), N samples of t, K = 5 the highest harmonic.
"""

from __future__ import annotations

import numpy as np

from ..optim import AdamWConfig, adamw_init, adamw_step, lr_at

K = 5                                      # highest harmonic in the series
PUBLISHED = np.array([[50.0, -30.0],       # p1   (5, 2): rows p1..p5, columns (real, imag)
                      [18.0, 8.0],         # p2
                      [12.0, -10.0],       # p3
                      [-14.0, -60.0],      # p4
                      [40.0, 20.0]])       # p5: wiggle amplitude, eye position
SERIES = ("A^x", "B^x", "A^y", "B^y")      # rows of the coefficient table C (4, K+1)
# Where each outline number goes: (row of p, 0 real / 1 imag) -> (row of C, harmonic k).
PLACEMENT = {
    (0, 0): (1, 1), (0, 1): (3, 1),        # p1: B^x_1, B^y_1
    (1, 0): (1, 2), (1, 1): (3, 2),        # p2: B^x_2, B^y_2
    (2, 0): (0, 3), (2, 1): (3, 3),        # p3: A^x_3, B^y_3
    (3, 0): (0, 5), (3, 1): (2, 1),        # p4: A^x_5, A^y_1
}
TRUNK = (2.7, 4.7)                         # the t interval traced along the trunk (tip near 3.7)


def sample_t(N: int) -> np.ndarray:
    """(N,) equally spaced curve parameters 2 pi n / N, n = 0 .. N-1 (the endpoint 2 pi is the
    start point again, so it is left out)."""
    return 2.0 * np.pi * np.arange(N) / N


def trunk_bump(t: np.ndarray) -> np.ndarray:
    """(N,) -> (N,) how far each point moves per unit of wiggle: sin^2 over TRUNK, halved.

    Zero with zero slope at both ends of the trunk, so a wiggling trunk stays joined smoothly to
    the head; 1/2 at the tip.
    """
    t0, t1 = TRUNK
    u = (np.mod(t, 2.0 * np.pi) - t0) / (t1 - t0)              # (N,) 0..1 along the trunk
    return np.where((u > 0.0) & (u < 1.0), 0.5 * np.sin(np.pi * u) ** 2, 0.0)


# ---------------------------------------------------------------------------- the pieces

def coefficients_forward(p: np.ndarray):
    """p (5, 2) -> C (4, K+1) Fourier coefficients, rows A^x, B^x, A^y, B^y; cache.

    A copy into a zero table at the places PLACEMENT names. p5 (row 4) is not part of the
    outline and is not read here.
    """
    C = np.zeros((4, K + 1), dtype=p.dtype)
    for (j, part), (row, k) in PLACEMENT.items():
        C[row, k] = p[j, part]
    return C, (p.shape, p.dtype)


def coefficients_backward(dC: np.ndarray, cache) -> np.ndarray:
    """dC (4, K+1) -> dp (5, 2). The forward copied, so the backward gathers the same places;
    row 4 (p5) gets zero from here (its gradient comes from the trunk and the eye)."""
    shape, dtype = cache
    dp = np.zeros(shape, dtype=dtype)
    for (j, part), (row, k) in PLACEMENT.items():
        dp[j, part] = dC[row, k]
    return dp


def curve_forward(C: np.ndarray, w: np.ndarray, t: np.ndarray, phases: np.ndarray):
    """C (4, K+1), w () wiggle amplitude, t (N,), phases (F,) -> frames (F, N, 2), cache.

    frames[f, n] is the picture point (X, Y) = (y(t_n), -x(t_n) + w sin(phases[f]) bump(t_n)):
    the outline once per trunk phase, the same everywhere except along the trunk.
    """
    k = np.arange(K + 1)
    cos_kt = np.cos(np.outer(t, k))                            # (N, K+1)
    sin_kt = np.sin(np.outer(t, k))                            # (N, K+1)
    x = cos_kt @ C[0] + sin_kt @ C[1]                          # (N,)  x(t)
    y = cos_kt @ C[2] + sin_kt @ C[3]                          # (N,)  y(t)
    lift = np.outer(np.sin(phases), trunk_bump(t))             # (F, N) trunk shape per phase
    F, N = len(phases), len(t)
    frames = np.empty((F, N, 2), dtype=np.result_type(C, w, t))
    frames[:, :, 0] = y                                        # X = y, broadcast over frames
    frames[:, :, 1] = -x + w * lift                            # Y = -x + trunk lift
    return frames, (cos_kt, sin_kt, lift)


def curve_backward(dframes: np.ndarray, cache):
    """dframes (F, N, 2) -> (dC (4, K+1), dw ()). t and phases are data: no gradient.

    Read the forward from the bottom up:
        Y = -x + w lift    ->  dx = -sum_f dY,   dw = sum_{f,n} dY * lift
        X = y (every f)    ->  dy = sum_f dX     (a broadcast forward is a sum backward)
        x = cos_kt @ A^x + sin_kt @ B^x  ->  dA^x = cos_kt^T dx, dB^x = sin_kt^T dx; same for y.
    """
    cos_kt, sin_kt, lift = cache
    dX = dframes[:, :, 0]                                      # (F, N)
    dY = dframes[:, :, 1]                                      # (F, N)
    dw = np.sum(dY * lift)                                     # ()
    dx = -dY.sum(axis=0)                                       # (N,)
    dy = dX.sum(axis=0)                                        # (N,)
    dC = np.stack([cos_kt.T @ dx, sin_kt.T @ dx,               # (4, K+1)
                   cos_kt.T @ dy, sin_kt.T @ dy])
    return dC, np.asarray(dw)


def elephant_forward(p: np.ndarray, t: np.ndarray, phases: np.ndarray):
    """p (5, 2), t (N,), phases (F,) -> frames (F, N, 2), eye (2,), cache.

    The whole drawing: p1..p4 through the coefficient table into the outline, Re p5 into the
    trunk's swing, Im p5 into the eye at (Im p5, Im p5).
    """
    C, c_cache = coefficients_forward(p)                       # (4, K+1)
    frames, k_cache = curve_forward(C, p[4, 0], t, phases)     # (F, N, 2)
    eye = np.array([p[4, 1], p[4, 1]], dtype=p.dtype)          # (2,)
    return frames, eye, (c_cache, k_cache)


def elephant_backward(dframes: np.ndarray, deye: np.ndarray, cache) -> np.ndarray:
    """dframes (F, N, 2), deye (2,) -> dp (5, 2): the forward's three lines undone in reverse."""
    c_cache, k_cache = cache
    dC, dw = curve_backward(dframes, k_cache)                  # outline and trunk
    dp = coefficients_backward(dC, c_cache)                    # (5, 2), zero in row 4
    dp[4, 0] = dw                                              # wiggle amplitude
    dp[4, 1] = deye.sum()                                      # eye = (Im p5, Im p5)
    return dp


def mse_forward(pred: np.ndarray, target: np.ndarray):
    """pred, target (..., 2) points -> loss (), cache: mean squared distance between matched points.

    Points are matched by index (here: by the curve parameter t), not by nearest neighbour.
    """
    diff = pred - target                                       # (..., 2)
    count = diff.size // diff.shape[-1]                        # number of points
    return float(np.sum(diff * diff) / count), (diff, count)


def mse_backward(dloss: float, cache) -> np.ndarray:
    """dloss () -> dpred (..., 2) = dloss * 2 (pred - target) / count (a new array)."""
    diff, count = cache
    return (2.0 * dloss / count) * diff


# ---------------------------------------------------------------------------- using them

def draw(p: np.ndarray, N: int = 400, phase: float = 0.0):
    """p (5, 2) -> outline (N+1, 2) closed (last point repeats the first), eye (2,).

    Picture coordinates, ready for ax.plot(*outline.T) and ax.plot(*eye, "o").
    """
    t = np.append(sample_t(N), 2.0 * np.pi)                    # (N+1,) closes the loop
    frames, eye, _ = elephant_forward(np.asarray(p, dtype=np.float64), t, np.array([phase]))
    return frames[0], eye


def loss_and_grad(p: np.ndarray, t: np.ndarray, phases: np.ndarray,
                  target_frames: np.ndarray, target_eye: np.ndarray):
    """p (5, 2) -> (loss (), dp (5, 2)); loss = mse(outline frames) + mse(eye).

    The outline term averages over F*N points and the eye term over one, so each counts once.
    """
    frames, eye, cache = elephant_forward(p, t, phases)
    l_out, out_cache = mse_forward(frames, target_frames)
    l_eye, eye_cache = mse_forward(eye[None, :], target_eye[None, :])
    dframes = mse_backward(1.0, out_cache)                     # (F, N, 2)
    deye = mse_backward(1.0, eye_cache)[0]                     # (2,)
    return l_out + l_eye, elephant_backward(dframes, deye, cache)


def fit(target_frames: np.ndarray, target_eye: np.ndarray, t: np.ndarray, phases: np.ndarray,
        steps: int = 400, lr: float = 2.0, init_std: float = 30.0, seed: int = 0,
        snapshot_steps=()):
    """Learn p (5, 2) from points: Adam from a random start, cosine-decayed learning rate.

    target_frames (F, N, 2) the outline at each trunk phase, target_eye (2,), both in picture
    coordinates. Returns (p (5, 2), losses (steps + 1,) with losses[s] the loss before step s
    and the last entry the final loss, snapshots {step: p (5, 2)} for each step in snapshot_steps
    (the parameters before that step; step == steps gives the final ones)).
    """
    rng = np.random.default_rng(seed)
    trainables = {"p": rng.normal(0.0, init_std, size=(5, 2))}  # ten random numbers
    state = adamw_init(trainables)
    cfg = AdamWConfig(weight_decay=0.0)
    losses = np.empty(steps + 1)
    snapshots = {}
    for step in range(steps + 1):
        if step in snapshot_steps:
            snapshots[step] = trainables["p"].copy()
        loss, dp = loss_and_grad(trainables["p"], t, phases, target_frames, target_eye)
        losses[step] = loss
        if step == steps:
            break
        adamw_step(trainables, {"p": dp}, state, lr_at(step, lr, 0, steps, 0.01), cfg)
    return trainables["p"], losses, snapshots


def equivalent_parameters(p: np.ndarray) -> np.ndarray:
    """p (5, 2) -> (4, 5, 2): four parameter sets that trace the same outline as sets of points.

    Re-timing the curve leaves its shape alone. Two re-timings keep every non-zero coefficient
    in its own slot (so stay inside this eight-number family):
        t -> t + pi   cos(k(t+pi)) = (-1)^k cos(kt), sin likewise: odd harmonics change sign
        t -> -t       cos is even, sin odd: every B coefficient changes sign
    and their composition t -> pi - t. Returned in the order: identity, t + pi, -t, pi - t.
    p5 is copied unchanged: the eye does not move, and the trunk's lift is tied to the original
    timing, so only the still outline is equivalent.
    """
    out = np.repeat(np.asarray(p, dtype=np.float64)[None], 4, axis=0)   # (4, 5, 2)
    for (j, part), (row, k) in PLACEMENT.items():
        shift = (-1.0) ** k                                    # t -> t + pi
        flip = -1.0 if row in (1, 3) else 1.0                  # t -> -t flips B^x, B^y
        out[1, j, part] *= shift
        out[2, j, part] *= flip
        out[3, j, part] *= shift * flip
    return out


def nearest_distance(a: np.ndarray, b: np.ndarray) -> float:
    """a (N, 2), b (M, 2) -> the largest distance from a point of a to its nearest point of b.

    Zero when every point of a is also a point of b, whatever their order: a comparison of
    shapes with no correspondence between the points.
    """
    d2 = np.sum((a[:, None, :] - b[None, :, :]) ** 2, axis=-1)   # (N, M)
    return float(np.sqrt(d2.min(axis=1).max()))
