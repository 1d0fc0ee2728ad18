"""The elephant: published outline, hand-written gradients, the fit, the symmetry, the chapter."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from smolgpt.companions import ch06_elephant as E
from smolgpt.gradcheck import numerical_grad, rel_error

ROOT = Path(__file__).resolve().parents[1]


def central_diff(f, x, eps=1e-4):
    """Central differences of the scalar f() w.r.t. every entry of x (nudged in place), shaped
    like x.

    Every map in elephant.py is linear in its inputs and the loss quadratic, so central
    differences carry no truncation error at any eps; eps = 1e-4 rather than 1e-6 only keeps
    the rounding error (~1e-16 * |f| / eps) small next to outputs of size ~1e3.
    """
    return numerical_grad(f, x, eps).reshape(x.shape)


rel_err = rel_error


# ------------------------------------------------------------------ the published elephant

def test_published_numbers_land_in_the_papers_slots():
    C, _ = E.coefficients_forward(E.PUBLISHED)
    A_x, B_x, A_y, B_y = C
    assert (B_x[1], B_y[1]) == (50.0, -30.0)          # p1
    assert (B_x[2], B_y[2]) == (18.0, 8.0)            # p2
    assert (A_x[3], B_y[3]) == (12.0, -10.0)          # p3
    assert (A_x[5], A_y[1]) == (-14.0, -60.0)         # p4
    assert np.count_nonzero(C) == 8                   # nothing else, no constant term


def test_published_outline_points_by_hand():
    # x(t) = 50 sin t + 18 sin 2t + 12 cos 3t - 14 cos 5t
    # y(t) = -60 cos t - 30 sin t + 8 sin 2t - 10 sin 3t,  picture (X, Y) = (y, -x)
    t = np.array([0.0, np.pi / 2, np.pi, 1.234])
    frames, eye, _ = E.elephant_forward(E.PUBLISHED, t, np.zeros(1))
    x = 50 * np.sin(t) + 18 * np.sin(2 * t) + 12 * np.cos(3 * t) - 14 * np.cos(5 * t)
    y = -60 * np.cos(t) - 30 * np.sin(t) + 8 * np.sin(2 * t) - 10 * np.sin(3 * t)
    np.testing.assert_allclose(frames[0, :, 0], y, atol=1e-12)
    np.testing.assert_allclose(frames[0, :, 1], -x, atol=1e-12)
    np.testing.assert_allclose(frames[0, 0], [-60.0, 2.0], atol=1e-12)     # t = 0
    np.testing.assert_allclose(frames[0, 1], [-20.0, -50.0], atol=1e-12)   # t = pi/2
    np.testing.assert_allclose(eye, [20.0, 20.0])


def test_outline_is_closed_and_centred():
    wiggling, _ = E.draw(E.PUBLISHED, N=500, phase=0.7)  # closed at every trunk phase
    assert np.linalg.norm(wiggling[0] - wiggling[-1]) < 1e-10
    still, _ = E.draw(E.PUBLISHED, N=4000)
    assert np.linalg.norm(still[0] - still[-1]) < 1e-10
    # no k = 0 term: the mean over a full period of equally spaced samples is the origin
    assert np.abs(still[:-1].mean(axis=0)).max() < 1e-10
    assert np.abs(wiggling[:-1].mean(axis=0)).max() > 1.0   # (a raised trunk moves the mean)
    # and the outline's extent, which the series fixes: about 155 wide and 143 tall
    width, height = np.ptp(still[:, 0]), np.ptp(still[:, 1])
    assert 150 < width < 160 and 140 < height < 150


def test_wiggle_moves_only_the_trunk_by_re_p5():
    t = E.sample_t(720)
    phases = np.array([0.0, np.pi / 2, 3 * np.pi / 2])
    frames, _, _ = E.elephant_forward(E.PUBLISHED, t, phases)
    body = E.trunk_bump(t) == 0
    assert body.sum() > 400 and (~body).sum() > 100
    assert np.abs(frames[:, body] - frames[0, body]).max() == 0.0
    np.testing.assert_array_equal(frames[:, :, 0], frames[[0, 0, 0], :, 0])  # only Y moves
    lift = frames[1, :, 1] - frames[0, :, 1]
    # the tip rises by Re(p5) / 2 = 20 at phase pi/2 and sinks by 20 at 3 pi / 2
    assert lift.max() == pytest.approx(20.0, abs=0.01)
    np.testing.assert_allclose(frames[2, :, 1] - frames[0, :, 1], -lift, atol=1e-12)
    # the bump has zero slope at its ends: no kink where the trunk meets the head
    t0, t1 = E.TRUNK
    h = 1e-4
    for edge in (t0, t1):
        slope = (E.trunk_bump(np.array([edge + h])) - E.trunk_bump(np.array([edge - h]))) / (2 * h)
        assert abs(slope[0]) < 1e-3


# ------------------------------------------------------------------ gradients

@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def test_coefficients_backward(rng):
    p = rng.standard_normal((5, 2)) * 20
    C, cache = E.coefficients_forward(p)
    dC = rng.standard_normal(C.shape)
    dp = E.coefficients_backward(dC, cache)
    num = central_diff(lambda: np.sum(E.coefficients_forward(p)[0] * dC), p)
    assert rel_err(dp, num) < 1e-8
    assert np.all(dp[4] == 0.0)


def test_curve_backward(rng):
    C = rng.standard_normal((4, E.K + 1)) * 10
    w = np.array(7.3)
    t = E.sample_t(64) + 0.01
    phases = rng.uniform(0, 2 * np.pi, 3)
    frames, cache = E.curve_forward(C, w, t, phases)
    dframes = rng.standard_normal(frames.shape)
    dC, dw = E.curve_backward(dframes.copy(), cache)

    def f():
        return np.sum(E.curve_forward(C, w, t, phases)[0] * dframes)

    assert rel_err(dC, central_diff(f, C)) < 1e-8
    assert rel_err(dw, central_diff(f, w)) < 1e-8
    assert abs(dw) > 1.0                              # the trunk term is really exercised


def test_elephant_backward_with_loss(rng):
    p = rng.standard_normal((5, 2)) * 30
    t = E.sample_t(96)
    phases = np.array([0.3, 1.9, 4.0])
    target_frames = rng.standard_normal((3, 96, 2)) * 40
    target_eye = np.array([3.0, -5.0])
    _, dp = E.loss_and_grad(p, t, phases, target_frames, target_eye)
    num = central_diff(lambda: E.loss_and_grad(p, t, phases, target_frames, target_eye)[0], p)
    assert rel_err(dp, num) < 1e-7
    assert np.all(np.abs(dp) > 1e-3)                  # every one of the ten numbers matters


def test_elephant_backward_random_upstream(rng):
    p = rng.standard_normal((5, 2)) * 30
    t = E.sample_t(50)
    phases = np.array([0.5, 2.0])
    frames, eye, cache = E.elephant_forward(p, t, phases)
    dframes = rng.standard_normal(frames.shape)
    deye = rng.standard_normal(2)
    dframes_copy, deye_copy = dframes.copy(), deye.copy()
    dp = E.elephant_backward(dframes, deye, cache)
    np.testing.assert_array_equal(dframes, dframes_copy)   # upstream gradients untouched
    np.testing.assert_array_equal(deye, deye_copy)

    def f():
        fr, ey, _ = E.elephant_forward(p, t, phases)
        return np.sum(fr * dframes) + np.sum(ey * deye)

    assert rel_err(dp, central_diff(f, p)) < 1e-8


def test_mse_backward(rng):
    pred = rng.standard_normal((3, 7, 2))
    target = rng.standard_normal((3, 7, 2))
    loss, cache = E.mse_forward(pred, target)
    assert loss == pytest.approx(np.sum((pred - target) ** 2) / 21)
    dpred = E.mse_backward(0.7, cache)
    num = central_diff(lambda: 0.7 * E.mse_forward(pred, target)[0], pred)
    assert rel_err(dpred, num) < 1e-8


# ------------------------------------------------------------------ learning it back

def test_fit_from_random_start_recovers_published_numbers():
    t = E.sample_t(128)
    phases = 2 * np.pi * np.arange(4) / 4
    target_frames, target_eye, _ = E.elephant_forward(E.PUBLISHED, t, phases)
    for seed in (0, 1, 2):
        p, losses, snaps = E.fit(target_frames, target_eye, t, phases, steps=400, lr=2.0,
                                 seed=seed, snapshot_steps=(0, 400))
        assert losses[0] > 1000.0                     # the start really is far away
        assert np.abs(snaps[0] - E.PUBLISHED).max() > 20.0
        assert losses[-1] < 1e-5                      # RMS point distance < 0.003 units
        np.testing.assert_allclose(p, E.PUBLISHED, atol=0.01)
        np.testing.assert_array_equal(snaps[400], p)


# ------------------------------------------------------------------ the symmetry

def test_retimings_draw_the_same_outline_with_other_numbers():
    t = E.sample_t(200)                               # even N: t + pi is on the grid too
    eq = E.equivalent_parameters(E.PUBLISHED)
    ref = E.elephant_forward(E.PUBLISHED, t, np.zeros(1))[0][0]
    np.testing.assert_array_equal(eq[0], E.PUBLISHED)
    np.testing.assert_array_equal(eq[1, :4], [[-50, 30], [18, 8], [-12, 10], [14, 60]])
    np.testing.assert_array_equal(eq[2, :4], [[-50, 30], [-18, -8], [12, 10], [-14, -60]])
    for q in eq[1:]:
        pts = E.elephant_forward(q, t, np.zeros(1))[0][0]
        assert E.nearest_distance(pts, ref) < 1e-9 and E.nearest_distance(ref, pts) < 1e-9
        assert E.mse_forward(pts, ref)[0] > 1000.0    # but matched by t they are far apart
        assert np.abs(q - E.PUBLISHED).max() >= 20.0
    # the exact re-timings: t + pi and -t of the published curve
    shifted = E.elephant_forward(eq[1], t, np.zeros(1))[0][0]
    np.testing.assert_allclose(shifted, np.roll(ref, -100, axis=0), atol=1e-10)
    reversed_ = E.elephant_forward(eq[2], t, np.zeros(1))[0][0]
    np.testing.assert_allclose(reversed_, ref[(-np.arange(200)) % 200], atol=1e-10)


# ------------------------------------------------------------------ the chapter

def test_chapter_runs_in_quick_mode(tmp_path):
    env = dict(os.environ, SMOLGPT_QUICK="1", SMOLGPT_OUT=str(tmp_path),
               PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               MPLBACKEND="Agg")
    run = subprocess.run([sys.executable, "chapters/06_elephant.py"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    out = tmp_path / "06_elephant"
    for name in ("elephant.png", "harmonics.png", "wiggle.gif", "wiggle_frame.png",
                 "fit_progress.png", "fit_loss.png", "symmetry.png"):
        assert (out / name).stat().st_size > 1000, name
    assert "Takeaways" in run.stdout
    # the chapter counts GPT-2 small itself; the BRIEF's figure is 85,056,000
    assert "85,056,000 non-embedding weights" in run.stdout
