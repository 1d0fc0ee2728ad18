"""Chapter 02, exercise 2: a wider MLP: does d_int90 grow with D?

(The exercise asks for sizes (10, 256, 256, 4), D = 69,636; to run in seconds here the check
uses (10, 128, 128, 4), D = 18,436, 3.6 times the narrow network's D.)

Li et al.'s observation is that it barely moves: the number of directions a problem needs is a
property of the problem more than of the network's size. A wider network has more parameters
but, by the same token, more good solutions near any random start.
"""

import smolgpt  # noqa: F401

from smolgpt.companions.ch02_subspace_toy import d_int90, subspace_curve

ds = (30, 100, 300)
results = {}
for sizes in ((10, 64, 64, 4), (10, 128, 128, 4)):
    r = results[sizes] = subspace_curve(ds=ds, seeds=(0,), steps=100, sizes=sizes)
    d90, target = d_int90(r)
    print(f"sizes {sizes}: D = {r['D']:>6,}, full training {r['full'][0]:.3f}; accuracy at d = "
          + ", ".join(f"{d}: {r['curve'][d][0]:.3f}" for d in ds)
          + f"; first d at 90% of full: {d90}")
narrow, wide = results.values()
assert wide["D"] > 3 * narrow["D"]
# D grew 3.6-fold; d_int90 stays on the same point of the grid, and the accuracy at each d
# barely moves
assert d_int90(narrow)[0] is not None and d_int90(wide)[0] == d_int90(narrow)[0]
for d in ds:
    assert abs(wide["curve"][d][0] - narrow["curve"][d][0]) < 0.15
