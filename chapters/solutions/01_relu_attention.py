"""Chapter 01, exercise 2: forward and backward of one head of "ReLU attention", checked.

    s = q k^T / sqrt(hs)      (T, T)
    p = relu(s)               (T, T)   no softmax, no mask
    y = p v                   (T, hs)

Backward, in reverse: dp = dy v^T, dv = p^T dy; relu passes the gradient where s > 0:
ds = dp * (s > 0); then dq = ds k / sqrt(hs), dk = ds^T q / sqrt(hs).
"""

import smolgpt  # noqa: F401
import numpy as np

from smolgpt.gradcheck import check_layer


def relu_attention_forward(q, k, v):
    hs = q.shape[-1]
    s = q @ k.T / np.sqrt(hs)
    p = np.maximum(s, 0.0)
    return p @ v, (q, k, v, s, p)


def relu_attention_backward(dy, cache):
    q, k, v, s, p = cache
    hs = q.shape[-1]
    dp = dy @ v.T
    dv = p.T @ dy
    ds = dp * (s > 0)
    return ds @ k / np.sqrt(hs), ds.T @ q / np.sqrt(hs), dv


rng = np.random.default_rng(0)
T, hs = 6, 4
errors = check_layer(relu_attention_forward, relu_attention_backward,
                     [rng.standard_normal((T, hs)) for _ in range(3)], rng)
print(f"ReLU attention backward vs finite differences (dq, dk, dv): "
      f"{', '.join(f'{e:.1e}' for e in errors)}")
assert max(errors) < 1e-7
