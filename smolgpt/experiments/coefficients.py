"""What a subspace model's few coefficients do: measured at a point, along a line, over a run.

Chapter 07 asks why some ways of instantiating W = a_1 W^1 + ... + a_d W^d learn nothing. These
are its instruments, each a plain function of a method (see `smolgpt.methods`), its trainables
and a few fixed batches (x, y), each (B, T):

    g = coef_gradient(method, t, batches, gpt)          # dL/da (d,), averaged over the batches
    losses = line_scan(method, t, direction, ts, batches, gpt)   # L(a + t * direction) per t
    scales = tensor_scales(method, coef)                 # |W_t(a)| / |W_t at GPT-2's init|
    steps, coefs = coef_trajectory(log_path)             # a over training, from a run's log
    changes = weight_changes(checkpoint_path)            # how far a run moved each tensor kind
"""

from __future__ import annotations

import math

import numpy as np

from ..model import EMBEDDING_NAMES, init_constant, init_std, loss_and_grads, loss_only


def mean_loss(method, trainables, batches, gpt) -> float:
    """The loss of method.params(trainables), averaged over `batches` [(x, y)]."""
    params = method.params(trainables)
    return float(np.mean([loss_only(params, x, y, gpt) for x, y in batches]))


def coef_gradient(method, trainables, batches, gpt) -> np.ndarray:
    """dL/da (the shape of trainables["coef"]) averaged over `batches`: the chain rule through
    the model (loss_and_grads) and back through the method's map (pullback)."""
    params = method.params(trainables)
    total = np.zeros_like(trainables["coef"], dtype=np.float64)
    for x, y in batches:
        _, grads = loss_and_grads(params, x, y, gpt, wanted=method.needed_grads)
        total += method.pullback(trainables, grads)["coef"]
    return total / len(batches)


def line_scan(method, trainables, direction, ts, batches, gpt) -> np.ndarray:
    """[L(a + t * direction) for t in ts]: the loss along one line through coefficient space,
    every other trainable (the embeddings) held where it is."""
    a = trainables["coef"]
    out = []
    for t in ts:
        moved = {**trainables, "coef": (a + t * np.asarray(direction)).astype(a.dtype)}
        out.append(mean_loss(method, moved, batches, gpt))
    return np.array(out)


def reference_norm(config, name: str, n: int) -> float:
    """|W| of a tensor of n entries at GPT-2's init: init_std * sqrt(n) for the random ones,
    |constant| * sqrt(n) for LayerNorm gains; 0 for biases (they start at 0)."""
    std = init_std(config, name)
    return (std if std > 0 else abs(init_constant(name))) * math.sqrt(n)


def tensor_scales(method, coef) -> dict[str, float]:
    """{tensor name: |W_t(a)| / |W_t at GPT-2's init|} for every tensor of the combination that
    GPT-2 does not start at 0 (weight matrices and LayerNorm gains): how far the coefficients
    have turned each tensor up (> 1) or down (< 1) from a normal init."""
    theta = method.theta(np.asarray(coef))
    out = {}
    for name, shape, off in method.layout:
        n = math.prod(shape)
        ref = reference_norm(method.config, name, n)
        if ref > 0:
            out[name] = float(np.linalg.norm(theta[off:off + n]) / ref)
    return out


def coef_trajectory(log_path) -> tuple[np.ndarray, np.ndarray]:
    """(steps (n,), coefficients (n, d)): a after each step, from the step records of a run's
    log.jsonl (a at step 0 is not logged: it is method.init()'s)."""
    from ..experiments.figures import log_records    # skips a line a killed run cut short
    steps, coefs = [], []
    for _, r in log_records(log_path):
        if r.get("event") == "step" and "coef" in r:
            steps = [s for s in steps if s < r["step"]]              # after a resume
            coefs = coefs[:len(steps)]
            steps.append(r["step"])
            coefs.append(r["coef"])
    return np.array(steps), np.array(coefs, dtype=np.float64).reshape(len(steps), -1)


# The kinds of non-embedding tensor, by the end of their name: every block has one of each.
TENSOR_KINDS = {"attn.c_attn.weight": "attention in", "attn.c_proj.weight": "attention out",
                "mlp.c_fc.weight": "MLP in", "mlp.c_proj.weight": "MLP out",
                ".bias": "linear biases", "ln_": "LayerNorm"}


def tensor_kind(name: str) -> str:
    """The kind of a non-embedding tensor: one of TENSOR_KINDS' values (LayerNorm gains and
    biases together; the final LayerNorm too)."""
    if ".ln_" in name or name.startswith("ln_f"):
        return "LayerNorm"
    for ending, kind in TENSOR_KINDS.items():
        if name.endswith(ending):
            return kind
    raise ValueError(f"{name} is not a non-embedding tensor of GPT-2")


def weight_changes(checkpoint_path) -> dict[str, float]:
    """{kind: root-mean-square change per entry} of a trained model's non-embedding tensors,
    from where its run started to its checkpoint, with "all" for every non-embedding entry.

    The start is rebuilt as the run began (its seed's random init, theta_0 for a subspace, or
    the weights it was started from with --init-from), so no second file is needed."""
    from .. import checkpoint
    trainables, _, meta = checkpoint.load(checkpoint_path)
    method, _, _ = checkpoint.method_of(meta)
    final = method.params(trainables)
    start = method.params(method.init(trainables["wte.weight"].dtype))
    sums: dict[str, list[float]] = {}
    for name, w in final.items():
        if name in EMBEDDING_NAMES:
            continue
        d = np.asarray(w, dtype=np.float64) - np.asarray(start[name], dtype=np.float64)
        for key in (tensor_kind(name), "all"):
            acc = sums.setdefault(key, [0.0, 0])
            acc[0] += float(np.dot(d.ravel(), d.ravel()))
            acc[1] += d.size
    return {k: math.sqrt(total / n) for k, (total, n) in sums.items()}
