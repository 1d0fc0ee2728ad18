"""Chapter 06, exercises 1 and 2: the elephant's backward, checked; and a trunk that cannot
wiggle.

The drawing is linear in the ten numbers, so its backward is checked exactly as a layer's. The
trunk's swing is Re(p5) * sin(phase) * bump(t): with Re(p5) = 0 every phase draws the same
elephant, and the gradient with respect to Re(p5) is the only way the fit can learn a wiggle.
"""

import smolgpt  # noqa: F401
import numpy as np

from smolgpt.companions.ch06_elephant import PUBLISHED, draw, elephant_backward, elephant_forward
from smolgpt.gradcheck import check_layer

rng = np.random.default_rng(0)
t, phases = np.linspace(0, 2 * np.pi, 50, endpoint=False), np.array([0.0, 1.0, 2.5])


def forward(p):
    frames, eye, cache = elephant_forward(p, t, phases)
    return np.concatenate([frames.ravel(), eye]), (frames.shape, cache)


def backward(dout, cache):
    shape, c = cache
    n = int(np.prod(shape))
    return elephant_backward(dout[:n].reshape(shape), dout[n:], c)


errors = check_layer(forward, backward, [PUBLISHED + rng.standard_normal((5, 2))], rng)
print(f"elephant backward vs finite differences: {errors[0]:.1e}")
assert errors[0] < 1e-7

still = PUBLISHED.copy()
still[4, 0] = 0.0                                        # Re(p5): no wiggle
moved = {phase: draw(still, phase=phase)[0] for phase in (0.0, np.pi / 2)}
wiggle = {phase: draw(PUBLISHED, phase=phase)[0] for phase in (0.0, np.pi / 2)}
print(f"Re(p5) = 0: largest move between phases {np.abs(moved[0.0] - moved[np.pi / 2]).max():.1e}; "
      f"Re(p5) = 40: {np.abs(wiggle[0.0] - wiggle[np.pi / 2]).max():.1f} picture units")
assert np.abs(moved[0.0] - moved[np.pi / 2]).max() == 0.0
assert abs(np.abs(wiggle[0.0] - wiggle[np.pi / 2]).max() - 20.0) < 0.5   # the tip: Re(p5) / 2
