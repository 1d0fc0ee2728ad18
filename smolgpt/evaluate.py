"""How good is a checkpoint on held-out text: loss, perplexity and bits per byte over the WHOLE
validation split, each with its standard error.

    result = evaluate_checkpoint("runs/run/checkpoint.npz")
    print(format_report(result))

What is measured, precisely (N tokens in the split, T = block_size):
  - windows: the split is cut into W = (N - 1) // T consecutive windows that do not overlap:
    window w reads tokens[wT : wT + T] and predicts tokens[wT + 1 : wT + T + 1]. If N - 1 is not
    a multiple of T, one more window reads the split's last T + 1 tokens and only its last
    (N - 1) % T predictions count (the others are counted already). So every token but the very
    first is predicted exactly once. A token early in its window sees little context, as in any
    non-overlapping evaluation; a sliding window would score a little lower at T times the cost.
  - loss: the mean negative log-likelihood of those N - 1 predictions, in nats per token;
    perplexity = exp(loss) (None beyond the float range: a diverged model).
  - bits per byte: the total nats / ln 2 / bytes, where `bytes` counts the UTF-8 bytes of the
    text the predicted tokens decode to: the sum of each predicted token's length in tiktoken's
    byte table, which is exactly the documents' UTF-8 text (the BPE is lossless; a byte model's
    ids are the bytes). The end-of-text
    token between documents is predicted and its nats count, but it stands for no text and adds
    0 bytes. Unlike the loss, this does not depend on the tokenizer: models with other
    vocabularies, byte-level ones included, are compared on the same footing.
  - standard errors: windows are the sampling unit. With S_w the summed nats of window w and n_w
    its counted predictions, loss = sum S / sum n is a ratio estimator, and by the delta method
        SE(loss) = sqrt(W / (W - 1) * sum_w (S_w - loss * n_w)^2) / sum_w n_w
    (std of the window means / sqrt(W) when all windows count T). Bits per byte uses the same
    formula with bytes b_w in place of n_w, and perplexity's is exp(loss) * SE(loss). This is
    the sampling error of the held-out text. Neighbouring windows of one document are
    correlated, so it is somewhat optimistic.

Cost: one forward per window plus the (T, V) head, whose matmul and softmax dominate: on a
2-core CPU the `tiny` model takes minutes for C4 sample's 479k held-out tokens. `max_windows`
evaluates an evenly spaced subset for a quick estimate (the standard error says how rough).
"""

from __future__ import annotations

import math
import time

import numpy as np

from . import data
from .checkpoint import load_params
from .model import GPTConfig, body_forward, check_tokens


def token_nll(params, idx, targets, config: GPTConfig, chunk: int = 512) -> np.ndarray:
    """idx, targets (B, T) -> nll (B, T) float64: -log softmax(x @ wte^T)[target] per position.

    The head as in `layers.cross_entropy_head` without the gradient: `chunk` rows of logits at a
    time in one reused (chunk, V) buffer, shifted by their max so exp cannot overflow:
        nll = log sum_v exp(logit_v - m) - (logit_target - m)
    """
    idx = check_tokens(idx, config)
    targets = check_tokens(targets, config)
    B, T = idx.shape
    x, _ = body_forward(params, idx, config)                  # (B, T, C)
    x = x.reshape(B * T, -1)                                  # (N, C)
    tgt = targets.reshape(-1)                                 # (N,)
    wte = params["wte.weight"]                                # (V, C)
    N = B * T
    nll = np.empty(N, dtype=np.float64)
    logits = np.empty((min(chunk, N), wte.shape[0]), dtype=x.dtype)   # (chunk, V), reused
    for s in range(0, N, chunk):
        e = min(s + chunk, N)
        lg = logits[:e - s]
        np.matmul(x[s:e], wte.T, out=lg)                      # (n, V)
        m = lg.max(axis=1)                                    # (n,)
        target = lg[np.arange(e - s), tgt[s:e]].astype(np.float64) - m
        lg -= m[:, None]
        np.exp(lg, out=lg)
        nll[s:e] = np.log(lg.sum(axis=1).astype(np.float64)) - target
    return nll.reshape(B, T)


def ratio_se(num: np.ndarray, den: np.ndarray) -> float | None:
    """Standard error of sum(num) / sum(den) over W sampling units (delta method)."""
    W = len(num)
    if W < 2:
        return None                              # one window: no spread to measure
    r = num.sum() / den.sum()
    return float(math.sqrt(W / (W - 1) * np.sum((num - r * den) ** 2)) / den.sum())


def windows(N: int, T: int, max_windows: int | None = None) -> tuple[np.ndarray, np.ndarray, int]:
    """Window starts for N tokens and context T -> (starts (W,), counted (W,), T').

    Each window reads tokens[start : start + T'] and predicts tokens[start + 1 : start + T' + 1];
    only its last `counted` predictions count. T' = T unless the split is shorter than one
    window. With max_windows, an evenly spaced subset of the full windows (no tail window).
    """
    if max_windows is not None and (not isinstance(max_windows, (int, np.integer))
                                    or max_windows < 1):
        raise ValueError(f"max_windows must be a positive integer or None, got {max_windows!r}")
    if N < 2:
        raise data.DataError(f"the held-out split has {N} token(s), at least 2 are needed: "
                             f"prepare more documents")
    T = min(T, N - 1)
    W = (N - 1) // T
    starts = np.arange(W, dtype=np.int64) * T
    counted = np.full(W, T, dtype=np.int64)
    if max_windows is not None and max_windows < W:
        pick = np.linspace(0, W - 1, max_windows).round().astype(np.int64)
        return starts[pick], counted[pick], T
    tail = (N - 1) % T
    if tail:                        # the last T + 1 tokens; its first T - tail were counted
        starts = np.append(starts, N - 1 - T)
        counted = np.append(counted, tail)
    return starts, counted, T


def evaluate_params(params, config: GPTConfig, tokens: np.ndarray, batch_size: int = 8,
                    max_windows: int | None = None, progress: bool = False) -> dict:
    """A parameter dict on a token array (N,) -> the numbers described in the module docstring."""
    t0 = time.perf_counter()
    starts, counted, T = windows(len(tokens), config.block_size, max_windows)
    nbytes_of = data.token_bytes(config.tokenizer)            # (V,)
    W = len(starts)
    nats = np.empty(W, dtype=np.float64)                      # S_w
    nbytes = np.empty(W, dtype=np.int64)                      # b_w
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=W, desc="eval", unit="window", dynamic_ncols=True)
    for s in range(0, W, batch_size):
        e = min(s + batch_size, W)
        rows = starts[s:e, None] + np.arange(T + 1)           # (b, T+1)
        win = np.asarray(tokens[rows], dtype=np.int64)        # (b, T+1)
        x, y = win[:, :-1], win[:, 1:]                        # (b, T) each
        keep = np.arange(T) >= (T - counted[s:e, None])       # (b, T): the counted predictions
        nll = token_nll(params, x, y, config)                 # (b, T)
        nats[s:e] = np.where(keep, nll, 0.0).sum(axis=1)
        nbytes[s:e] = np.where(keep, nbytes_of[y], 0).sum(axis=1)
        if bar is not None:
            bar.update(e - s)
    if bar is not None:
        bar.close()
    n_tokens, n_bytes = int(counted.sum()), int(nbytes.sum())
    loss = float(nats.sum() / n_tokens)
    loss_se = ratio_se(nats, counted.astype(np.float64))
    bpb = float(nats.sum() / n_bytes / math.log(2))
    bpb_se = ratio_se(nats / math.log(2), nbytes.astype(np.float64))
    ppl = perplexity(loss)
    ppl_se = None if ppl is None or loss_se is None else ppl * loss_se
    return {"loss": loss, "loss_se": loss_se,
            "perplexity": ppl,
            "perplexity_se": ppl_se if ppl_se is None or math.isfinite(ppl_se) else None,
            "bits_per_byte": bpb, "bits_per_byte_se": bpb_se,
            "tokens": n_tokens, "bytes": n_bytes, "windows": W, "window": T,
            "whole_split": max_windows is None or n_tokens == len(tokens) - 1,
            "split_tokens": int(len(tokens)), "seconds": time.perf_counter() - t0}


def evaluate_checkpoint(path, data_dir=None, batch_size: int = 8, max_windows: int | None = None,
                        progress: bool = False) -> dict:
    """A checkpoint (any method) on the prepared held-out split (`val` in data_dir, default
    `smolgpt.data.data_dir()`) -> a JSON-able dict: loss, loss_se, perplexity, perplexity_se,
    bits_per_byte, bits_per_byte_se, tokens, bytes, windows, window, whole_split, split_tokens,
    seconds, and the checkpoint, method and model it measured."""
    params, config, spec = load_params(path)
    tokens = data.load_tokens("val", data_dir, config.tokenizer)
    result = evaluate_params(params, config, tokens, batch_size, max_windows, progress)
    return {"checkpoint": str(path), "method": spec.label(), "model": config.to_dict(), **result}


def perplexity(loss: float) -> float | None:
    """exp(loss), or None where that exceeds the largest float (a loss above ~709 nats/token: a
    diverged model, which is scored, not refused; None keeps `eval --json` valid JSON)."""
    return math.exp(loss) if loss < math.log(np.finfo(np.float64).max) else None


def format_report(r: dict) -> str:
    """The human-readable lines `smolgpt eval` prints."""
    def pm(value, se, spec):
        if value is None:
            return "beyond the float range (the model has diverged)"
        return f"{value:{spec}}" + ("" if se is None else f" ± {se:{spec}}")

    what = ("the whole held-out split" if r["whole_split"] else
            f"{r['windows']:,} evenly spaced windows of the held-out split")
    return (f"{r.get('checkpoint', 'model')} ({r.get('method', '?')}) on {what}: "
            f"{r['tokens']:,} tokens, {r['bytes']:,} UTF-8 bytes, {r['windows']:,} windows of "
            f"{r['window']}, {r['seconds']:.1f} s\n"
            f"  loss           {pm(r['loss'], r['loss_se'], '.4f')} nats/token\n"
            f"  perplexity     {pm(r['perplexity'], r['perplexity_se'], ',.2f')}\n"
            f"  bits per byte  {pm(r['bits_per_byte'], r['bits_per_byte_se'], '.4f')}\n"
            f"  (± one standard error, windows as the sampling unit)")
