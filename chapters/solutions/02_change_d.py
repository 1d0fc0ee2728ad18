"""Chapter 02, exercise 1: the small MLP's accuracy at d = 2,000 and at d = D = 5,124.

Past d_int90 the curve is nearly flat, so d = 2,000 ends close to full training. At d = D the
random basis spans every direction: any theta is reachable, so the subspace model *could* match
full training. It need not match it step by step: Adam adapts its step per coordinate, and the
coordinates here are the coefficients a, not the weights, so the same optimizer in a rotated
and rescaled coordinate system (unit-norm random columns, its own learning rate) follows a
different path in the same number of steps.
"""

import smolgpt  # noqa: F401

from smolgpt.companions.ch02_subspace_toy import subspace_curve

r = subspace_curve(ds=(30, 2000, 5124), seeds=(0,), steps=100)
print(f"D = {r['D']:,}; full training: accuracy {r['full'][0]:.3f}")
for d, acc in r["curve"].items():
    print(f"  d = {d:>5}: accuracy {acc[0]:.3f} ({acc[0] / r['full'][0]:.0%} of full training's)")
assert r["curve"][2000][0] > r["curve"][30][0]
assert r["curve"][5124][0] > 0.85 * r["full"][0]
