"""GPT-2 in the plainest NumPy: the model as formulas, forward and backward, for reading.

idx (B, T) token ids, targets (B, T) -> loss, and the gradient of every parameter.

This file is the version to learn from. `smolgpt/model.py` and `smolgpt/layers.py` compute the
same numbers quickly (threads, causal blocks of queries, head groups, chunked logits, in-place
updates); a test (tests/test_plain.py) checks that they equal this file to float64 rounding,
gradients included. Here every line is one formula, nothing is fused, no input or cached array
is changed in place, and every intermediate array is kept, so it is slow and memory-hungry: use
it on small models.

It is called `plain` and not `reference` because `smolgpt.experiments.reference` already names
something else: the unigram (context-free) reference loss that the chapters draw as a line.

Shapes: B batch, T time, C width, V vocabulary, nh heads, hs = C / nh head size.
A layer is a pair: `*_forward(...) -> out, cache` and `*_backward(dout, cache) -> the gradients
of the forward's array arguments, in order`.
"""

from __future__ import annotations

import math

import numpy as np

# ------------------------------------------------------------------------------------------
# The four layers


def linear_forward(x, w, b):
    """x (B, T, Cin), w (Cin, Cout), b (Cout,) -> y (B, T, Cout).   y = x w + b"""
    y = x @ w + b
    return y, (x, w)


def linear_backward(dy, cache):
    """dy (B, T, Cout) -> dx, dw, db.
    dx = dy w^T;  dw = sum over (B, T) of x^T dy;  db = sum over (B, T) of dy."""
    x, w = cache
    dx = dy @ w.T
    dw = np.einsum("bti,bto->io", x, dy, optimize=True)     # optimize: one BLAS product
    db = dy.sum(axis=(0, 1))
    return dx, dw, db


def layernorm_forward(x, g, b, eps=1e-5):
    """x (B, T, C) -> y (B, T, C), each row normalised.   y = g (x - mu) / sqrt(var + eps) + b"""
    mu = x.mean(axis=-1, keepdims=True)                      # (B, T, 1)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)       # (B, T, 1), biased, as GPT-2
    rstd = 1.0 / np.sqrt(var + eps)                          # (B, T, 1)
    xhat = (x - mu) * rstd                                   # (B, T, C)
    y = g * xhat + b
    return y, (xhat, rstd, g)


def layernorm_backward(dy, cache):
    """dy (B, T, C) -> dx, dg, db.
    dxhat = dy g; every x_i moves mu and var, so
    dx = rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat))   (means over the row's C entries)."""
    xhat, rstd, g = cache
    dg = (dy * xhat).sum(axis=(0, 1))
    db = dy.sum(axis=(0, 1))
    dxhat = dy * g
    dx = rstd * (dxhat - dxhat.mean(axis=-1, keepdims=True)
                 - xhat * (dxhat * xhat).mean(axis=-1, keepdims=True))
    return dx, dg, db


GELU_K = math.sqrt(2.0 / math.pi)


def gelu_forward(x):
    """x -> y, elementwise.   y = x/2 (1 + tanh(u)),  u = sqrt(2/pi) (x + 0.044715 x^3)"""
    u = GELU_K * (x + 0.044715 * x ** 3)
    y = 0.5 * x * (1.0 + np.tanh(u))
    return y, x


def gelu_backward(dy, x):
    """dy -> dx.   dy/dx = (1 + tanh u)/2 + x/2 (1 - tanh^2 u) du/dx,
    du/dx = sqrt(2/pi) (1 + 3 * 0.044715 x^2)"""
    t = np.tanh(GELU_K * (x + 0.044715 * x ** 3))            # recomputed, not cached
    du = GELU_K * (1.0 + 3 * 0.044715 * x ** 2)
    return dy * (0.5 * (1.0 + t) + 0.5 * x * (1.0 - t ** 2) * du)


def attention_forward(qkv, nh):
    """qkv (B, T, 3C) -> y (B, T, C).   y = softmax(q k^T / sqrt(hs) + mask) v, per head."""
    B, T, C3 = qkv.shape
    C = C3 // 3
    hs = C // nh
    q, k, v = np.split(qkv, 3, axis=-1)                      # each (B, T, C)
    q = q.reshape(B, T, nh, hs).transpose(0, 2, 1, 3)        # (B, nh, T, hs)
    k = k.reshape(B, T, nh, hs).transpose(0, 2, 1, 3)        # (B, nh, T, hs)
    v = v.reshape(B, T, nh, hs).transpose(0, 2, 1, 3)        # (B, nh, T, hs)
    s = q @ k.transpose(0, 1, 3, 2) / math.sqrt(hs)          # (B, nh, T, T) scores
    future = np.triu(np.ones((T, T), dtype=bool), k=1)       # (T, T) key s > query t
    s = np.where(future, -np.inf, s)                         # a token sees only its past
    p = np.exp(s - s.max(axis=-1, keepdims=True))
    p = p / p.sum(axis=-1, keepdims=True)                    # (B, nh, T, T) softmax over keys
    y = p @ v                                                # (B, nh, T, hs)
    y = y.transpose(0, 2, 1, 3).reshape(B, T, C)             # heads side by side, (B, T, C)
    return y, (q, k, v, p)


def attention_backward(dy, cache):
    """dy (B, T, C) -> dqkv (B, T, 3C).
    From y = p v: dp = dy v^T, dv = p^T dy.  Softmax: ds = p (dp - sum_keys(dp p)).
    From s = q k^T / sqrt(hs): dq = ds k / sqrt(hs), dk = ds^T q / sqrt(hs).
    (The mask adds a constant; its entries have p = 0, so ds is 0 there.)"""
    q, k, v, p = cache
    B, nh, T, hs = q.shape
    dy = dy.reshape(B, T, nh, hs).transpose(0, 2, 1, 3)      # (B, nh, T, hs)
    dp = dy @ v.transpose(0, 1, 3, 2)                        # (B, nh, T, T)
    dv = p.transpose(0, 1, 3, 2) @ dy                        # (B, nh, T, hs)
    ds = p * (dp - (dp * p).sum(axis=-1, keepdims=True))     # (B, nh, T, T)
    dq = ds @ k / math.sqrt(hs)                              # (B, nh, T, hs)
    dk = ds.transpose(0, 1, 3, 2) @ q / math.sqrt(hs)        # (B, nh, T, hs)
    parts = [d.transpose(0, 2, 1, 3).reshape(B, T, nh * hs) for d in (dq, dk, dv)]
    return np.concatenate(parts, axis=-1)                    # (B, T, 3C)


# ------------------------------------------------------------------------------------------
# One transformer block:   x = x + attn(ln_1(x));   x = x + mlp(ln_2(x))


def block_forward(x, P, nh):
    """x (B, T, C), P the block's parameters without the "h.i." prefix -> x (B, T, C)."""
    h, c1 = layernorm_forward(x, P["ln_1.weight"], P["ln_1.bias"])
    qkv, c2 = linear_forward(h, P["attn.c_attn.weight"], P["attn.c_attn.bias"])   # (B, T, 3C)
    a, c3 = attention_forward(qkv, nh)                                             # (B, T, C)
    a, c4 = linear_forward(a, P["attn.c_proj.weight"], P["attn.c_proj.bias"])
    x = x + a                                                # residual: attention's output added
    h, c5 = layernorm_forward(x, P["ln_2.weight"], P["ln_2.bias"])
    f, c6 = linear_forward(h, P["mlp.c_fc.weight"], P["mlp.c_fc.bias"])           # (B, T, 4C)
    f, c7 = gelu_forward(f)
    f, c8 = linear_forward(f, P["mlp.c_proj.weight"], P["mlp.c_proj.bias"])       # (B, T, C)
    x = x + f                                                # residual: the MLP's output added
    return x, (c1, c2, c3, c4, c5, c6, c7, c8)


def block_backward(dx, cache):
    """dx (B, T, C) -> dx (B, T, C), grads of the block's parameters (names without "h.i.").
    The forward read bottom-up. A residual x + f sends dx unchanged to both x and f."""
    c1, c2, c3, c4, c5, c6, c7, c8 = cache
    g = {}
    df, g["mlp.c_proj.weight"], g["mlp.c_proj.bias"] = linear_backward(dx, c8)
    df = gelu_backward(df, c7)
    dh, g["mlp.c_fc.weight"], g["mlp.c_fc.bias"] = linear_backward(df, c6)
    dh, g["ln_2.weight"], g["ln_2.bias"] = layernorm_backward(dh, c5)
    dx = dx + dh                                             # the residual's two paths meet
    da, g["attn.c_proj.weight"], g["attn.c_proj.bias"] = linear_backward(dx, c4)
    dqkv = attention_backward(da, c3)
    dh, g["attn.c_attn.weight"], g["attn.c_attn.bias"] = linear_backward(dqkv, c2)
    dh, g["ln_1.weight"], g["ln_1.bias"] = layernorm_backward(dh, c1)
    dx = dx + dh
    return dx, g


# ------------------------------------------------------------------------------------------
# The whole model and its loss


def block_params(params, i):
    """Block i's parameters, keyed without the "h.i." prefix."""
    prefix = f"h.{i}."
    return {k[len(prefix):]: v for k, v in params.items() if k.startswith(prefix)}


def loss_and_grads(params, idx, targets, n_layer, n_head):
    """params (the dict of model.py), idx, targets (B, T) -> mean cross-entropy, grads (same keys).

    logits = ln_f(blocks(wte[idx] + wpe[:T])) wte^T;   loss = -mean log softmax(logits)[target]
    """
    B, T = idx.shape
    wte, wpe = params["wte.weight"], params["wpe.weight"]     # (V, C), (block_size, C)
    x = wte[idx] + wpe[:T]                                    # (B, T, C) embeddings
    caches = []
    for i in range(n_layer):
        x, c = block_forward(x, block_params(params, i), n_head)
        caches.append(c)
    h, c_f = layernorm_forward(x, params["ln_f.weight"], params["ln_f.bias"])
    logits = h @ wte.T                                        # (B, T, V), the head tied to wte
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    prob = e / e.sum(axis=-1, keepdims=True)                  # (B, T, V) softmax
    p_target = np.take_along_axis(prob, targets[..., None], axis=-1)   # (B, T, 1)
    loss = -np.log(p_target).mean()

    # backward: the forward in reverse
    grads = {}
    dlogits = prob.copy()
    np.put_along_axis(dlogits, targets[..., None], p_target - 1.0, axis=-1)
    dlogits /= B * T                                          # d loss / d logits = (p - onehot) / N
    dh = dlogits @ wte                                        # (B, T, C)
    dwte = np.einsum("btv,btc->vc", dlogits, h, optimize=True)   # (V, C) the head's share
    dx, grads["ln_f.weight"], grads["ln_f.bias"] = layernorm_backward(dh, c_f)
    for i in reversed(range(n_layer)):
        dx, g = block_backward(dx, caches[i])
        grads.update({f"h.{i}.{k}": v for k, v in g.items()})
    np.add.at(dwte, idx, dx)                                  # the lookup's share: row idx gets dx
    dwpe = np.zeros_like(wpe)
    dwpe[:T] = dx.sum(axis=0)
    grads["wte.weight"], grads["wpe.weight"] = dwte, dwpe
    return float(loss), grads
