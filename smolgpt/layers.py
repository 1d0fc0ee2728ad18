"""GPT-2's layers as forward/backward pairs of pure functions.

Every layer follows one contract (the CS231n one):

    out, cache = layer_forward(x, params...)        # cache holds only what the backward needs
    dx, dparams... = layer_backward(dout, cache)    # gradients in the order of the forward's arrays

Shapes use fixed letters: B batch, T time, C channels (n_embd), V vocabulary, nh heads,
hs = C // nh head size, N = B*T rows. Everything works in float32 (training) and float64
(gradient checks): no function here changes the dtype it is given.

A backward never writes into `dout` or into anything the caller owns: every gradient is a new array.
"""

from __future__ import annotations

import math

import numpy as np

# ----------------------------------------------------------------------------------------------
# Linear: out = x @ w + b, with w stored (in, out) as in Hugging Face's GPT-2 Conv1D.


def linear_forward(x, w, b=None):
    """x (..., Cin), w (Cin, Cout), b (Cout,) or None -> out (..., Cout)."""
    out = x @ w
    if b is not None:
        out += b
    return out, (x, w, b is not None)


def linear_backward(dout, cache):
    """dout (..., Cout) -> dx (..., Cin), dw (Cin, Cout), db (Cout,) or None.

    out = x @ w + b, so dx = dout @ w^T, dw = sum over rows of x^T dout, db = sum of dout over
    every broadcast (leading) axis.
    """
    x, w, has_bias = cache
    cin, cout = w.shape
    x2 = x.reshape(-1, cin)                          # (N, Cin)
    d2 = dout.reshape(-1, cout)                      # (N, Cout)
    dx = dout @ w.T                                  # (..., Cin)
    dw = x2.T @ d2                                   # (Cin, Cout)
    db = d2.sum(axis=0) if has_bias else None        # (Cout,)
    return dx, dw, db


# ----------------------------------------------------------------------------------------------
# LayerNorm over the last axis: out = (x - mean) / sqrt(var + eps) * g + b


def layernorm_forward(x, g, b, eps=1e-5):
    """x (..., C), g (C,), b (C,) -> out (..., C). Biased variance, as GPT-2."""
    mean = x.mean(axis=-1, keepdims=True)            # (..., 1)
    xc = x - mean                                    # (..., C)
    var = np.mean(np.square(xc), axis=-1, keepdims=True)
    rstd = 1.0 / np.sqrt(var + eps)                  # (..., 1)
    xhat = xc * rstd                                 # (..., C) normalised input
    out = xhat * g + b
    return out, (xhat, rstd, g)


def layernorm_backward(dout, cache):
    """dout (..., C) -> dx (..., C), dg (C,), db (C,).

    With xhat = (x - mean) * rstd and out = xhat * g + b:
      db = sum dout, dg = sum dout * xhat (over every leading axis);
      dxhat = dout * g, and pushing it back through the normalisation (mean and variance both
      depend on every element of the row) gives
      dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)).
    """
    xhat, rstd, g = cache                            # (..., C), (..., 1), (C,)
    C = g.shape[0]
    d2 = dout.reshape(-1, C)                         # (N, C)
    db = d2.sum(axis=0)                              # (C,)
    dg = np.einsum("nc,nc->c", d2, xhat.reshape(-1, C))   # (C,)
    dxhat = dout * g                                 # (..., C)
    m1 = dxhat.mean(axis=-1, keepdims=True)          # (..., 1) mean(dxhat)
    m2 = np.mean(dxhat * xhat, axis=-1, keepdims=True)    # (..., 1) mean(dxhat * xhat)
    dx = (dxhat - m1 - xhat * m2) * rstd             # (..., C)
    return dx, dg, db


# ----------------------------------------------------------------------------------------------
# GELU, tanh approximation (GPT-2's "gelu_new"):
#   gelu(x) = 0.5 x (1 + tanh(u)),  u = sqrt(2/pi) (x + 0.044715 x^3)

_GELU_K = math.sqrt(2.0 / math.pi)
_GELU_A = 0.044715


def gelu_forward(x):
    """x (...) -> out (...). The cache is (x, tanh(u)): the backward needs both."""
    t = x * x                                        # built in place: no temporaries per term
    t *= _GELU_A
    t += 1.0
    t *= x
    t *= _GELU_K                                     # u = sqrt(2/pi) (x + 0.044715 x^3)
    np.tanh(t, out=t)                                # t = tanh(u)
    out = t + 1.0
    out *= x
    out *= 0.5                                       # 0.5 x (1 + t)
    return out, (x, t)


def gelu_backward(dout, cache):
    """dout (...) -> dx (...).

    d gelu / dx = 0.5 (1 + t) + 0.5 x (1 - t^2) du/dx,   du/dx = sqrt(2/pi) (1 + 3 * 0.044715 x^2)
    """
    x, t = cache
    du = x * x
    du *= 3.0 * _GELU_A
    du += 1.0                                        # du/dx / sqrt(2/pi)
    g = t * t
    np.subtract(1.0, g, out=g)                       # 1 - t^2
    g *= x
    g *= du
    g *= 0.5 * _GELU_K                               # 0.5 x (1 - t^2) du/dx
    g += 0.5
    g += 0.5 * t                                     # + 0.5 (1 + t)
    g *= dout
    return g


# ----------------------------------------------------------------------------------------------
# Causal multi-head self-attention, from the fused qkv projection to the merged heads.


def _causal_mask(T, dtype):
    """(T, T) additive mask: 0 where position t may look (s <= t), -inf above the diagonal."""
    return np.triu(np.full((T, T), -np.inf, dtype=dtype), k=1)


def attention_forward(qkv, n_head):
    """qkv (B, T, 3C) -> out (B, T, C): softmax(q k^T / sqrt(hs) + causal mask) v per head."""
    B, T, C3 = qkv.shape
    C = C3 // 3
    hs = C // n_head
    heads = qkv.reshape(B, T, 3, n_head, hs).transpose(2, 0, 3, 1, 4)   # (3, B, nh, T, hs)
    q, k, v = heads[0], heads[1], heads[2]                              # (B, nh, T, hs) views
    scale = 1.0 / math.sqrt(hs)
    att = (q * scale) @ k.transpose(0, 1, 3, 2)                      # (B, nh, T, T) scores
    att += _causal_mask(T, att.dtype)                                # position t sees only <= t
    att -= att.max(axis=-1, keepdims=True)
    np.exp(att, out=att)
    att /= att.sum(axis=-1, keepdims=True)                           # (B, nh, T, T) probabilities
    y = att @ v                                                      # (B, nh, T, hs)
    out = y.transpose(0, 2, 1, 3).reshape(B, T, C)                   # (B, T, C) heads merged
    return out, (q, k, v, att, scale)


def attention_backward(dout, cache):
    """dout (B, T, C) -> dqkv (B, T, 3C). The forward read in reverse:

      y = att @ v            -> datt = dy @ v^T,  dv = att^T @ dy
      att = softmax(s)       -> ds = att * (datt - sum(datt * att, last axis))
                                (masked entries have att = 0, so their ds is 0 for free)
      s = q @ k^T * scale    -> dq = ds @ k * scale,  dk = ds^T @ q * scale
    """
    q, k, v, att, scale = cache
    B, nh, T, hs = q.shape
    dy = dout.reshape(B, T, nh, hs).transpose(0, 2, 1, 3)            # (B, nh, T, hs)
    datt = dy @ v.transpose(0, 1, 3, 2)                              # (B, nh, T, T)
    dv = att.transpose(0, 1, 3, 2) @ dy                              # (B, nh, T, hs)
    ds = att * (datt - np.sum(datt * att, axis=-1, keepdims=True))   # (B, nh, T, T)
    ds *= scale
    dq = ds @ k                                                      # (B, nh, T, hs)
    dk = ds.transpose(0, 1, 3, 2) @ q                                # (B, nh, T, hs)
    dqkv = np.empty((B, T, 3, nh, hs), dtype=dout.dtype)             # (B, T, 3, nh, hs)
    dqkv[:, :, 0] = dq.transpose(0, 2, 1, 3)
    dqkv[:, :, 1] = dk.transpose(0, 2, 1, 3)
    dqkv[:, :, 2] = dv.transpose(0, 2, 1, 3)
    return dqkv.reshape(B, T, 3 * nh * hs)


# ----------------------------------------------------------------------------------------------
# Embeddings: x = wte[idx] + wpe[0:T]


def embedding_forward(idx, wte, wpe):
    """idx (B, T) ints, wte (V, C), wpe (block_size, C) -> x (B, T, C)."""
    T = idx.shape[1]
    out = wte[idx] + wpe[:T]
    return out, (idx, wte.shape, wpe.shape)


def embedding_backward(dout, cache):
    """dout (B, T, C) -> dwte (V, C), dwpe (block_size, C).

    A row of wte gets the sum of dout over every position where its token appears (np.add.at
    accumulates repeated indices, a plain fancy-index assignment would keep only one);
    a row of wpe gets the sum over the batch at its position.
    """
    idx, wte_shape, wpe_shape = cache
    T = idx.shape[1]
    C = wte_shape[1]
    dwte = np.zeros(wte_shape, dtype=dout.dtype)
    np.add.at(dwte, idx.reshape(-1), dout.reshape(-1, C))
    dwpe = np.zeros(wpe_shape, dtype=dout.dtype)
    dwpe[:T] = dout.sum(axis=0)
    return dwte, dwpe


# ----------------------------------------------------------------------------------------------
# The output head and the loss. The head is tied: logits = x @ wte^T, (N, V).
# On the `tiny` config the logits are 2048 x 50257 floats (400 MB) per batch, more than the rest
# of the model's activations together, so the training loss never builds them whole.


def head_forward(x, wte):
    """x (..., C), wte (V, C) -> logits (..., V). For sampling and tests; training uses the
    fused `cross_entropy_head` below."""
    return x @ wte.T


def cross_entropy_head(x, wte, targets, chunk=1024, with_grads=True):
    """Mean cross-entropy of softmax(x @ wte^T) against targets, and its gradients, fused.

    x (N, C), wte (V, C), targets (N,) ints -> loss, dx (N, C), dwte (V, C)
    (dx and dwte are None when with_grads is False).

    This is a forward and a backward in one pass, legitimately: the loss is the last operation,
    so its upstream gradient is the constant 1 and the gradient of the logits is known the moment
    they are computed:  dlogits = (softmax(logits) - onehot(targets)) / N.
    Rows are processed `chunk` at a time: a chunk's logits are born, reduced to its loss, turned
    into their own gradient, pushed back into dx and dwte, and dropped. Peak memory is chunk x V
    floats (200 MB at the default 1024 rows) instead of N x V, and every pass is in place.
    """
    N, C = x.shape
    V = wte.shape[0]
    dtype = x.dtype
    total = 0.0
    dx = np.empty_like(x) if with_grads else None
    dwte = np.zeros_like(wte) if with_grads else None
    n0 = min(chunk, N)
    logits = np.empty((n0, V), dtype=dtype)                      # reused buffer, (chunk, V)
    dw_part = np.empty_like(wte) if with_grads and N > chunk else None
    for s in range(0, N, chunk):
        e = min(s + chunk, N)
        n = e - s
        lg = logits[:n]
        xs = x[s:e]                                              # (n, C)
        np.matmul(xs, wte.T, out=lg)                             # (n, V) logits
        rows = np.arange(n)
        tgt = targets[s:e]
        m = lg.max(axis=1, keepdims=True)                        # (n, 1) for a stable softmax
        lg -= m
        target_logit = lg[rows, tgt].astype(np.float64)         # (n,) shifted target logits
        np.exp(lg, out=lg)                                       # (n, V) unnormalised probs
        z = lg.sum(axis=1, keepdims=True)                        # (n, 1) partition function
        # loss_i = log z_i - (logit_i[target] - m_i)
        total += float(np.sum(np.log(z[:, 0].astype(np.float64)) - target_logit))
        if not with_grads:
            continue
        # dlogits = (E / z - onehot) / N with E = lg the unnormalised probabilities. Rather than
        # scale the (n, V) chunk, push E through the matmuls first and scale the small results:
        #   dx   = dlogits @ wte   = (E @ wte) * s - wte[tgt] / N               s = 1 / (z N)
        #   dwte = dlogits^T @ x   = E^T @ (x * s) - (row tgt_i gets x_i / N)
        # which saves a full pass over the chunk and leaves E untouched.
        scale = 1.0 / (z * N)                                    # (n, 1)
        dxs = dx[s:e]
        np.matmul(lg, wte, out=dxs)                              # (n, C)  E @ wte
        dxs *= scale
        dxs -= wte[tgt] * (1.0 / N)
        if dw_part is None:
            np.matmul(lg.T, xs * scale, out=dwte)                # (V, C)  E^T @ (x s)
        else:
            np.matmul(lg.T, xs * scale, out=dw_part)             # (V, C)  this chunk's share
            dwte += dw_part
        np.add.at(dwte, tgt, xs * (-1.0 / N))                    # the one-hot part, row by row
    return total / N, dx, dwte
