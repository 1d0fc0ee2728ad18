"""Checkpoints: everything needed to continue a run, written atomically.

A checkpoint is one `.npz` file (NumPy's zip of arrays) holding
  - the trainable arrays ("trainables/<key>") and Adam's moments ("adam_m/<key>", "adam_v/<key>");
  - "meta": a JSON string with the model config, the method spec (its seeds regenerate every
    frozen array and random basis, so those are never stored), the training config, the step,
    Adam's step count, the batch generator's RNG state and the data manifest's checksum.

A subspace model's checkpoint therefore holds its coefficients and its embeddings, not its bases.
A finished run trained with `--final-weights-only` keeps no Adam moments ("weights_only" in the
meta): it loads for sampling, evaluation and export, and `load` returns None for its Adam state.

`load` trusts nothing it reads: a hand-edited or foreign file gets one line naming the file and the
field or array at fault (metadata of the wrong type, an array whose shape or dtype is not what
the method's `trainable_shapes()` says, NaN or inf in a trainable, a newer format).

Writing goes through `files.write_atomic` (a temporary file, flushed to disk, renamed over the
target), so a crash mid-write leaves the previous checkpoint intact.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .files import describe_file, write_atomic

FORMAT = "smolgpt-checkpoint-1"


class CheckpointError(Exception):
    """A checkpoint that cannot be used; the message says why and what to do."""


def _first_line(e: BaseException) -> str:
    """`TypeName: the first line of its message`, short, for a one-line error."""
    text = str(e).strip().splitlines()[0][:120] if str(e).strip() else ""
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def save(path, trainables: dict, adam_state: dict | None, meta: dict) -> int:
    """Write the checkpoint atomically; returns its size in bytes. adam_state None: the weights
    only (a finished run that will not be resumed)."""
    arrays = {}
    for k, v in trainables.items():
        arrays["trainables/" + k] = v
    if adam_state is not None:
        for k in trainables:
            arrays["adam_m/" + k] = adam_state["m"][k]
            arrays["adam_v/" + k] = adam_state["v"][k]
    meta = {**meta, "format": FORMAT, "keys": list(trainables),
            "adam_t": None if adam_state is None else int(adam_state["t"]),
            "weights_only": adam_state is None}
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    return write_atomic(path, lambda f: np.savez(f, **arrays))


def is_checkpoint(path) -> bool:
    """Whether `path` is a checkpoint some smolgpt wrote (an .npz whose "meta" names a
    smolgpt-checkpoint format), read from its metadata alone: for the writing rule, which may
    replace smolgpt's own files and no other."""
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(z["meta"].tobytes())
    except Exception:
        return False
    return isinstance(meta, dict) and str(meta.get("format", "")).startswith(FORMAT[:-1])


# The entry of a weights file's metadata note that names the run its weights come from (the run's
# key): chapters write one for the pretrained models their runs start from (stable_weights)
MADE_BY = "pretraining run"


def weights_identity(path) -> str:
    """What a run that starts from the weights in `path` (`init_from`) is identified by: the
    run that made them, where the file's metadata names it ("run:<key>"), else the file's
    content ("sha256:<hex>"). By its maker, a run started from a pretrained model stays the same
    run when that model is made again with other float32 rounding (another BLAS kernel, faster
    layers), as a run from random weights does; a file of unknown origin is its bytes."""
    from .files import sha256_of
    try:
        with np.load(path, allow_pickle=False) as z:
            note = json.loads(z["meta"].tobytes()).get("note") or {}
        maker = note.get(MADE_BY) if isinstance(note, dict) else None
    except Exception:          # not a readable checkpoint: its checksum or its loading says why
        maker = None
    if isinstance(maker, str) and maker:
        return "run:" + maker
    return "sha256:" + sha256_of(path)


class Checkpoint(NamedTuple):
    """What `load` read: the arrays, and the metadata whole (`meta`, as written) and by name."""

    trainables: dict
    adam: dict | None                       # None: a weights-only checkpoint
    meta: dict

    @property
    def model(self):
        """The GPTConfig of the model it holds."""
        from .model import GPTConfig
        return GPTConfig(**self.meta["model"])

    @property
    def method(self):
        """The MethodSpec its trainables belong to."""
        from .methods import MethodSpec
        return MethodSpec(**self.meta["method"])

    @property
    def step(self):
        """The optimizer steps it was trained for (0 for an imported model; None when the
        metadata names no step)."""
        return self.meta.get("step")


def load(path) -> Checkpoint:
    """-> Checkpoint(trainables, adam state or None for a weights-only checkpoint, meta), the one
    reader of checkpoints. Raises CheckpointError with a one-line message naming the file and what
    is wrong in it."""
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"{path} is a folder, not a checkpoint: pass the checkpoint.npz "
                              f"inside a run's folder")
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}: check the path (runs keep theirs as "
                              f"<out>/checkpoint.npz)")
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic not in (b"PK\x03\x04", b"PK\x05\x06"):   # every .npz is a zip archive
        raise CheckpointError(f"{path} is not a smolgpt checkpoint: it is "
                              f"{describe_file(path)}, and a checkpoint is an .npz archive; pass "
                              f"the checkpoint.npz that smolgpt train (or smolgpt import) wrote")
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except Exception as e:    # zip, .npy header and data errors of every kind, NumPy's or zlib's
        raise CheckpointError(f"checkpoint {path} is truncated or corrupt "
                              f"({_first_line(e)}): use an earlier checkpoint or start the run "
                              f"again") from None
    if "meta" not in data:
        raise CheckpointError(f"{path} is not a smolgpt checkpoint (no metadata): pass the "
                              f"checkpoint.npz that smolgpt train wrote in its --out folder")
    try:
        meta = json.loads(data["meta"].tobytes().decode())
    except (ValueError, RecursionError) as e:           # not UTF-8, not JSON, nested too deep
        raise CheckpointError(f"checkpoint {path} has corrupt metadata: use an earlier "
                              f"checkpoint or start the run again") from e
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path} is not a smolgpt checkpoint (its metadata is a "
                              f"{type(meta).__name__}, not an object): pass the checkpoint.npz "
                              f"that smolgpt train wrote in its --out folder")
    fmt = meta.get("format")
    if fmt != FORMAT:
        newer = isinstance(fmt, str) and fmt.startswith(FORMAT[:-1]) and fmt > FORMAT
        raise CheckpointError(f"{path} has format {fmt!r}, this smolgpt reads {FORMAT!r}: " +
                              ("it was written by a newer smolgpt; upgrade smolgpt to read it"
                               if newer else "use the smolgpt version that wrote it, or train "
                               "again"))
    _check_meta(path, meta)
    keys = meta["keys"]
    kinds = ("trainables/",) if meta.get("weights_only") else ("trainables/", "adam_m/", "adam_v/")
    missing = [p + k for k in keys for p in kinds if p + k not in data]
    if missing:
        raise CheckpointError(f"checkpoint {path} is incomplete (missing {missing[0]}): use an "
                              f"earlier checkpoint or start the run again")
    _check_arrays(path, meta, data, kinds)
    trainables = {k: data["trainables/" + k] for k in keys}
    if meta.get("weights_only"):
        return Checkpoint(trainables, None, meta)
    adam = {"t": meta["adam_t"], "m": {k: data["adam_m/" + k] for k in keys},
            "v": {k: data["adam_v/" + k] for k in keys}}
    return Checkpoint(trainables, adam, meta)


# The metadata fields `load` relies on, and the JSON types they must have (resuming also reads
# "train", "step" and "rng": train.py checks those).
_META_TYPES = {"keys": list, "model": dict, "method": dict}


def _check_meta(path, meta: dict) -> None:
    """Every field the loader and the trainer read is there with its JSON type, and the model
    and method it names can be built."""
    from .methods import MethodSpec
    from .model import GPTConfig

    def bad(field, what):
        return CheckpointError(f"checkpoint {path} has a bad metadata field {field!r} ({what}): "
                               f"it was edited or not written by smolgpt; use an earlier "
                               f"checkpoint or start the run again")

    for field, kind in _META_TYPES.items():
        if field not in meta:
            raise bad(field, "missing")
        v = meta[field]
        if not isinstance(v, kind) or isinstance(v, bool):
            raise bad(field, f"a {type(v).__name__}, expected a {kind.__name__}")
    if not all(isinstance(k, str) for k in meta["keys"]):
        raise bad("keys", "not a list of array names")
    weights_only = meta.get("weights_only", False)
    t = meta.get("adam_t")
    if not isinstance(weights_only, bool):
        raise bad("weights_only", f"a {type(weights_only).__name__}, expected true or false")
    if not weights_only and (not isinstance(t, int) or isinstance(t, bool) or t < 0):
        raise bad("adam_t", f"{t!r}, expected Adam's step count, an integer >= 0")
    for field, cls in (("model", GPTConfig), ("method", MethodSpec)):
        try:
            cls(**meta[field])
        except (TypeError, ValueError) as e:
            raise bad(field, str(e).split("\n")[0]) from None


def _check_arrays(path, meta: dict, data: dict, kinds) -> None:
    """Every array has the shape the method's init() would give it, is float32, and the
    trainables are finite (training never saves a non-finite one)."""
    from .methods import MethodError, MethodSpec, build
    from .model import GPTConfig
    try:
        method = build(MethodSpec(**meta["method"]), GPTConfig(**meta["model"]))
    except MethodError as e:
        raise CheckpointError(f"checkpoint {path} names a method that cannot be built ({e}): "
                              f"it was edited; use an earlier checkpoint") from None
    shapes = method.trainable_shapes()
    keys = meta["keys"]
    if set(keys) != set(shapes):
        extra, lacking = sorted(set(keys) - set(shapes)), sorted(set(shapes) - set(keys))
        what = f"unexpected array {extra[0]!r}" if extra else f"no array {lacking[0]!r}"
        raise CheckpointError(f"checkpoint {path} does not match its own model and method "
                              f"({what} for {describe(meta)}): it was edited or is damaged; use "
                              f"an earlier checkpoint")
    for k in keys:
        for prefix in kinds:
            a = data[prefix + k]
            if a.shape != tuple(shapes[k]) or a.dtype != np.float32:
                raise CheckpointError(
                    f"checkpoint {path}: array {prefix + k} is {a.dtype} {a.shape}, but its "
                    f"model and method need float32 {tuple(shapes[k])}: it was edited or is "
                    f"damaged; use an earlier checkpoint")
        if not np.all(np.isfinite(data["trainables/" + k])):
            raise CheckpointError(f"checkpoint {path}: trainables/{k} holds NaN or infinite "
                                  f"values (training never saves those, so it was edited or is "
                                  f"damaged): use an earlier checkpoint or start the run again")


def describe(meta: dict) -> str:
    """One line naming a checkpoint's model and method, for error messages."""
    m = meta.get("model", {})
    s = meta.get("method", {})
    return (f"model n_layer={m.get('n_layer')} n_head={m.get('n_head')} n_embd={m.get('n_embd')} "
            f"block_size={m.get('block_size')} vocab={m.get('vocab_size')}, method {s}")


def load_params(path):
    """A checkpoint -> (params dict, GPTConfig, MethodSpec): the model ready for sampling."""
    trainables, _, meta = load(path)                 # validated: these cannot fail
    return materialise(trainables, meta)


def materialise(trainables: dict, meta: dict):
    """A checkpoint's trainables and meta -> (params dict, GPTConfig, MethodSpec)."""
    method, model, spec = method_of(meta)
    return method.params(trainables), model, spec


def method_of(meta: dict):
    """A checkpoint's meta -> (its method, GPTConfig, MethodSpec): the method rebuilt as it was
    trained, from its seed, or from the weights it started from.

    A run started from another model (`init_from`) rebuilds its frozen weights from that
    checkpoint, which must still be there unchanged (its sha256 is in the meta); it is read only
    if the method needs it (full training's trainables are the whole model already).
    """
    from .methods import MethodSpec, build
    from .model import GPTConfig
    model = GPTConfig(**meta["model"])
    spec = MethodSpec(**meta["method"])
    train = meta.get("train")
    source = train.get("init_from") if isinstance(train, dict) else None
    start = None
    if isinstance(source, str) and source:
        start = lambda: start_params(source, model, meta.get("init_from_sha256"))  # noqa: E731
    return build(spec, model, start=start), model, spec


def start_params(path, config, sha256: str | None = None) -> dict:
    """The weights of checkpoint `path` (any method, materialised) for a model `config` to start
    from (`--init-from`). CheckpointError, one line, when the file is not there, is not the file
    a run was started from (`sha256`), or holds another model."""
    from .files import sha256_of
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"--init-from {path}: no checkpoint there; pass a checkpoint.npz "
                              f"written by smolgpt train or smolgpt import" if sha256 is None else
                              f"this model was started from {path}, which is gone: its frozen "
                              f"weights live there; put that checkpoint back")
    if sha256 is not None and sha256_of(path) != sha256:
        raise CheckpointError(f"this model was started from {path}, which has changed since "
                              f"(sha256 differs): its frozen weights were that file's; put the "
                              f"original back")
    params, model, _ = load_params(path)
    if model != config:
        raise CheckpointError(f"--init-from {path} holds a model with n_layer={model.n_layer} "
                              f"n_head={model.n_head} n_embd={model.n_embd} block_size="
                              f"{model.block_size} vocab={model.vocab_size}, this run's is "
                              f"n_layer={config.n_layer} n_head={config.n_head} n_embd="
                              f"{config.n_embd} block_size={config.block_size} vocab="
                              f"{config.vocab_size}: give no model flags (they are taken from "
                              f"the checkpoint) or the checkpoint's own")
    return params
