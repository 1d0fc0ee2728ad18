"""Checkpoints: everything needed to continue a run, written atomically.

A checkpoint is one `.npz` file (NumPy's zip of arrays) holding
  - the trainable arrays ("trainables/<key>") and Adam's moments ("adam_m/<key>", "adam_v/<key>");
  - "meta": a JSON string with the model config, the method spec (its seeds regenerate every
    frozen array and random basis, so those are never stored), the training config, the step,
    Adam's step count, the batch generator's RNG state and the data manifest's checksum.

A subspace model's checkpoint therefore holds its coefficients and its embeddings, not its bases.

Writing goes to a temporary file in the same folder, which is flushed to disk and then renamed
over the target: a rename is atomic, so a crash mid-write leaves the previous checkpoint intact.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

FORMAT = "smolgpt-checkpoint-1"


class CheckpointError(Exception):
    """A checkpoint that cannot be used; the message says why and what to do."""


def save(path, trainables: dict, adam_state: dict, meta: dict) -> int:
    """Write the checkpoint atomically; returns its size in bytes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for k, v in trainables.items():
        arrays["trainables/" + k] = v
    for k in trainables:
        arrays["adam_m/" + k] = adam_state["m"][k]
        arrays["adam_v/" + k] = adam_state["v"][k]
    meta = {**meta, "format": FORMAT, "adam_t": int(adam_state["t"]), "keys": list(trainables)}
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path.stat().st_size


def load(path) -> tuple[dict, dict, dict]:
    """-> (trainables, adam_state, meta). Raises CheckpointError with a clear message."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}: check the path (runs keep theirs as "
                              f"<out>/checkpoint.npz)")
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as e:
        raise CheckpointError(f"checkpoint {path} is truncated or corrupt "
                              f"({e.__class__.__name__}): "
                              f"use an earlier checkpoint or start the run again") from e
    if "meta" not in data:
        raise CheckpointError(f"{path} is not a smolgpt checkpoint (no metadata): pass the "
                              f"checkpoint.npz that smolgpt train wrote in its --out folder")
    try:
        meta = json.loads(data["meta"].tobytes().decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"checkpoint {path} has corrupt metadata: use an earlier "
                              f"checkpoint or start the run again") from e
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path} has format {meta.get('format')!r}, this smolgpt reads "
                              f"{FORMAT!r}: use the smolgpt version that wrote it, or train again")
    keys = meta["keys"]
    missing = [k for k in keys for p in ("trainables/", "adam_m/", "adam_v/") if p + k not in data]
    if missing:
        raise CheckpointError(f"checkpoint {path} is incomplete (missing {missing[0]}): use an "
                              f"earlier checkpoint or start the run again")
    trainables = {k: data["trainables/" + k] for k in keys}
    adam = {"t": meta["adam_t"], "m": {k: data["adam_m/" + k] for k in keys},
            "v": {k: data["adam_v/" + k] for k in keys}}
    return trainables, adam, meta


def describe(meta: dict) -> str:
    """One line naming a checkpoint's model and method, for error messages."""
    m = meta.get("model", {})
    s = meta.get("method", {})
    return (f"model n_layer={m.get('n_layer')} n_head={m.get('n_head')} n_embd={m.get('n_embd')} "
            f"block_size={m.get('block_size')} vocab={m.get('vocab_size')}, method {s}")

