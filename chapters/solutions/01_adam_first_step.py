"""Chapter 01, exercise 3: what AdamW's first step does to tiny and to huge gradients.

At t = 1, m = (1 - b1) g and v = (1 - b2) g^2, so the bias-corrected m_hat = g and v_hat = g^2:
the step is lr * g / (|g| + eps), that is lr * sign(g) as long as |g| >> eps = 1e-8. A gradient
of 1e-6 and one of 1e3 move their weight by the same lr (the first one by 1% less, because of
eps). Adam's steps are about the learning rate, whatever the gradient's scale.
"""

import smolgpt  # noqa: F401
import numpy as np

from smolgpt.optim import AdamWConfig, adamw_init, adamw_step

lr = 1e-3
w = {"w": np.zeros(3)}
g = {"w": np.array([1e-6, 1e3, -1e3])}
adamw_step(w, g, adamw_init(w), lr=lr, cfg=AdamWConfig(weight_decay=0.0))
print(f"first step with gradients {g['w']}: moves {-w['w']} (lr = {lr})")
expected = -lr * g["w"] / (np.abs(g["w"]) + 1e-8)
assert np.allclose(w["w"], expected, rtol=1e-12, atol=0)
assert abs(-w["w"][0] / lr - 1e-6 / (1e-6 + 1e-8)) < 1e-12           # 0.990: eps shows
