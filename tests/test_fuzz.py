"""Property-based fuzzing of every loader a user's file reaches (issue 22), with Hypothesis.

Valid files are made once (a checkpoint of each kind of method, an exported safetensors model and
its config.json, a run's log, C4 JSON lines plain and gzipped), then mutated: truncated, bits
flipped, bytes overwritten, inserted or deleted, and, knowing the format, JSON values swapped for
values of the wrong type, arrays given the wrong dtype or shape, a safetensors header made huge or
its offsets moved. For every mutant the loader must either accept the file or refuse it with its
own error class, whose message is one line naming the file; nothing else may escape (a
traceback), nothing may hang (an alarm ends an example after TIMEOUT seconds), and no other
file on disk may change.

The loaders are called in-process, which is what makes a few hundred examples each affordable in
the suite. A few mutants then go through the real command line to check what a user sees there:
exit status 2, one line on stderr, no traceback.

Examples per property: SMOLGPT_FUZZ_EXAMPLES (default 200 in the suite); the derandomized
default makes CI reproducible. For a long offline run, e.g.

    SMOLGPT_FUZZ_EXAMPLES=3000 SMOLGPT_FUZZ_RANDOM=1 python -m pytest tests/test_fuzz.py
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from smolgpt import checkpoint as ckpt  # noqa: E402
from smolgpt import hf  # noqa: E402
from smolgpt.data import DataError, _read_local  # noqa: E402
from smolgpt.experiments.figures import read_log  # noqa: E402
from smolgpt.methods import MethodSpec, build  # noqa: E402
from smolgpt.model import GPTConfig, init_params  # noqa: E402
from smolgpt.optim import adamw_init  # noqa: E402
from smolgpt.train import TrainConfig  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = int(os.environ.get("SMOLGPT_FUZZ_EXAMPLES", "200"))
TIMEOUT = 20                                  # seconds: an example that takes longer hangs
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                derandomize=not os.environ.get("SMOLGPT_FUZZ_RANDOM"),
                suppress_health_check=list(HealthCheck))
pytestmark = pytest.mark.usefixtures("one_blas_thread")

SMALL = GPTConfig(n_layer=1, n_head=2, n_embd=8, block_size=8, vocab_size=64)
SPECS = [MethodSpec("full"), MethodSpec("lora", rank=2), MethodSpec("fastfood", d=7),
         MethodSpec("basis", d=3, per_tensor=True), MethodSpec("said", d=5)]


# --- the valid files -----------------------------------------------------------------------------

def make_checkpoint(path: Path, spec: MethodSpec, config: GPTConfig = SMALL) -> Path:
    method = build(spec, config)
    trainables = method.init()
    train = TrainConfig(gpt=config, method=spec, steps=4)
    meta = {"model": config.to_dict(), "method": spec.to_dict(), "train": train.to_dict(),
            "data": {"train": "0" * 64, "val": "1" * 64}, "step": 2, "elapsed": 1.5,
            "val_curve": [[0, 0, 4.2], [2, 128, 4.1]],
            "rng": np.random.default_rng(0).bit_generator.state}
    ckpt.save(path, trainables, adamw_init(trainables), meta)
    return path


class Originals(dict):
    def __repr__(self):                       # for Hypothesis's report of a failing example
        return "<the valid originals>"


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict:
    """The valid originals, and the folder each mutant is written to."""
    root = tmp_path_factory.mktemp("fuzz")
    out = Originals(root=root, checkpoints=[make_checkpoint(root / f"{s.name}.npz", s).read_bytes()
                                            for s in SPECS])
    # a Hugging Face folder as export writes it, with the smallest GPT-2 width smolgpt accepts
    gpt = GPTConfig(n_layer=1, n_head=1, n_embd=4, block_size=8)
    from safetensors.numpy import save
    out["safetensors"] = save(hf.to_hf_state_dict(init_params(gpt, seed=0)),
                              metadata={"format": "pt"})
    out["config"] = hf.hf_config(gpt)
    log = [{"event": "start", "method": "full", "n_trainable": 3312, "config": {}},
           {"event": "eval", "step": 0, "tokens": 0, "val_loss": 10.9},
           *({"event": "step", "step": i, "tokens": 32 * i, "loss": 10.0 - i / 10, "lr": 1e-3,
              "grad_norm": 1.0, "tok_per_s": 900.0} for i in range(1, 6)),
           {"event": "eval", "step": 5, "tokens": 160, "val_loss": 9.8}]
    out["log"] = "".join(json.dumps(r) + "\n" for r in log).encode()
    out["c4"] = "".join(json.dumps({"text": f"Document {i}: naïve café — a few words.",
                                    "timestamp": "2019-04-25T12:57:54Z",
                                    "url": f"https://example.com/{i}"}) + "\n"
                        for i in range(12)).encode()
    return out


# --- mutations -----------------------------------------------------------------------------------

@st.composite
def mutate_bytes(draw, original: bytes) -> bytes:
    """1 to 4 edits of a byte string: truncate, flip a bit, overwrite, insert or delete bytes.
    Positions favour the start (headers) and the end (a zip's directory) of the file."""
    raw = bytearray(original)
    for _ in range(draw(st.integers(1, 4))):
        n = len(raw)
        where = draw(st.one_of(st.integers(0, min(n, 64)), st.integers(max(0, n - 64), n),
                               st.integers(0, n)))
        op = draw(st.sampled_from(["truncate", "flip", "overwrite", "insert", "delete"]))
        if op == "truncate":
            del raw[where:]
        elif op == "flip" and where < n:
            raw[where] ^= 1 << draw(st.integers(0, 7))
        elif op == "overwrite":
            raw[where:where + 8] = draw(st.binary(min_size=1, max_size=8))
        elif op == "insert":
            raw[where:where] = draw(st.binary(min_size=1, max_size=16))
        elif op == "delete":
            del raw[where:where + draw(st.integers(1, 16))]
    return bytes(raw)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                 max_size=3),
    max_leaves=6)


def _paths(value, prefix=()):
    """Every place in a JSON value: tuples of keys and indices."""
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value[:4]):
            yield from _paths(v, prefix + (i,))


@st.composite
def mutate_json(draw, original):
    """A JSON value with 1 to 3 places replaced by values of any type, or deleted."""
    value = json.loads(json.dumps(original))
    for _ in range(draw(st.integers(1, 3))):
        places = list(_paths(value))
        path = draw(st.sampled_from(places))
        new = draw(JSON_VALUES)
        if not path:
            value = new
            continue
        parent = value
        for k in path[:-1]:
            parent = parent[k]
        if draw(st.booleans()) and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = new
    return value


# --- the property --------------------------------------------------------------------------------

@contextlib.contextmanager
def alarm(seconds: int):
    def hang(signum, frame):
        raise TimeoutError(f"no answer within {seconds} s: a hang")
    old = signal.signal(signal.SIGALRM, hang)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def tree(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def check(call, errors, named: Path, folder: Path, may_write=()) -> BaseException | None:
    """Run call(): it must succeed or raise one of `errors` with a one-line message naming
    `named`; no file in `folder` other than `may_write` may change. Returns the error."""
    before = tree(folder)
    error = None
    with alarm(TIMEOUT):
        try:
            call()
        except errors as e:
            error = e
    if error is not None:
        text = str(error)
        assert "\n" not in text and len(text) < 1000, text
        assert named.name in text, text
        assert "Traceback" not in text
    after = tree(folder)
    for name in may_write:
        after.pop(name, None)
        before.pop(name, None)
    assert after == before, "a file changed on disk"
    return error


def write(path: Path, raw: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(raw)
    return path


def load_fully(path: Path):
    """What sample, eval, export and resume read of a checkpoint."""
    trainables, adam, meta = ckpt.load(path)
    ckpt.materialise(trainables, meta)
    TrainConfig.of_checkpoint(meta, path)


# --- checkpoints ---------------------------------------------------------------------------------

@FUZZ
@given(data=st.data())
def test_fuzz_checkpoint_bytes(files, data):
    original = data.draw(st.sampled_from(files["checkpoints"]))
    path = write(files["root"] / "case" / "checkpoint.npz", data.draw(mutate_bytes(original)))
    check(lambda: load_fully(path), ckpt.CheckpointError, path, files["root"])


def _npz(raw: bytes) -> dict:
    import io
    with np.load(io.BytesIO(raw)) as z:
        return {k: z[k] for k in z.files}


@st.composite
def mutate_checkpoint(draw, files):
    """A checkpoint with its metadata's JSON mutated, or one array's dtype or shape changed."""
    arrays = _npz(draw(st.sampled_from(files["checkpoints"])))
    meta = json.loads(arrays["meta"].tobytes())
    what = draw(st.sampled_from(["meta", "meta", "dtype", "shape", "drop", "values"]))
    names = sorted(k for k in arrays if k != "meta")
    name = draw(st.sampled_from(names))
    if what == "meta":
        meta = draw(mutate_json(meta))
    elif what == "dtype":
        kind = draw(st.sampled_from(["float64", "float16", "int32", "uint8", "bool", "complex64"]))
        arrays[name] = arrays[name].astype(kind)
    elif what == "shape":
        a = arrays[name]
        shape = draw(st.sampled_from([a.T.shape, (a.size,), (1, *a.shape), (0,), ()]))
        arrays[name] = np.zeros(shape, np.float32) if 0 in shape or shape == () else \
            a.reshape(shape)
    elif what == "drop":
        del arrays[name]
    else:
        a = arrays[name].copy()
        a.flat[draw(st.integers(0, a.size - 1))] = draw(st.sampled_from([np.nan, np.inf, 1e38]))
        arrays[name] = a
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    return arrays


@FUZZ
@given(data=st.data())
def test_fuzz_checkpoint_fields(files, data):
    arrays = data.draw(mutate_checkpoint(files))
    path = files["root"] / "case" / "edited.npz"
    path.parent.mkdir(exist_ok=True)
    np.savez(path, **arrays)
    check(lambda: load_fully(path), ckpt.CheckpointError, path, files["root"])


# --- safetensors and config.json: smolgpt import --------------------------------------------------

def _import(folder: Path):
    return hf.import_hf(str(folder), folder.parent / "imported.npz", force=True)


@FUZZ
@given(data=st.data())
def test_fuzz_safetensors_bytes(files, data):
    folder = files["root"] / "hf"
    write(folder / "config.json", json.dumps(files["config"]).encode())
    raw = files["safetensors"]
    if data.draw(st.booleans()):                    # the header, knowing the format
        n = int.from_bytes(raw[:8], "little")
        header = data.draw(mutate_json(json.loads(raw[8:8 + n])))
        text = json.dumps(header).encode()
        if data.draw(st.integers(0, 9)) == 0:       # a header length far past the file's end
            raw = (2**62).to_bytes(8, "little") + text + raw[8 + n:]
        else:
            raw = len(text).to_bytes(8, "little") + text + raw[8 + n:]
    else:
        raw = data.draw(mutate_bytes(raw))
    path = write(folder / "model.safetensors", raw)
    check(lambda: _import(folder), hf.HFError, path.parent, files["root"],
          may_write=("imported.npz",))


@FUZZ
@given(data=st.data())
def test_fuzz_hf_config(files, data):
    folder = files["root"] / "hf"
    write(folder / "model.safetensors", files["safetensors"])
    if data.draw(st.booleans()):
        raw = json.dumps(data.draw(mutate_json(files["config"])), allow_nan=True).encode()
    else:
        raw = data.draw(mutate_bytes(json.dumps(files["config"]).encode()))
    path = write(folder / "config.json", raw)
    check(lambda: _import(folder), hf.HFError, path.parent, files["root"],
          may_write=("imported.npz",))


# --- logs: smolgpt plot ---------------------------------------------------------------------------

@FUZZ
@given(data=st.data())
def test_fuzz_log(files, data):
    if data.draw(st.booleans()):
        records = [json.loads(line) for line in files["log"].decode().splitlines()]
        records = data.draw(mutate_json(records))
        lines = records if isinstance(records, list) else [records]
        raw = "".join(json.dumps(r) + "\n" for r in lines).encode()
    else:
        raw = data.draw(mutate_bytes(files["log"]))
    path = write(files["root"] / "case" / "log.jsonl", raw)
    check(lambda: read_log(path), ValueError, path, files["root"])


# --- C4 JSON lines, plain and gzipped: smolgpt prepare -------------------------------------------

C4_EXAMPLES = max(10, EXAMPLES // 4)        # `datasets` reads each mutant: ~0.2 s an example


@settings(FUZZ, max_examples=C4_EXAMPLES)
@given(data=st.data())
def test_fuzz_c4(files, data, no_progress_bars):
    gz = data.draw(st.booleans())
    if data.draw(st.booleans()):
        rows = [json.loads(line) for line in files["c4"].decode().splitlines()]
        rows = data.draw(mutate_json(rows))
        rows = rows if isinstance(rows, list) else [rows]
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        # C4 is UTF-8; a file saved as Latin-1 has the same text in other bytes
        raw = text.encode(data.draw(st.sampled_from(["utf-8", "latin-1"])), errors="replace")
    else:
        raw = data.draw(mutate_bytes(files["c4"]))
    if gz:
        raw = gzip.compress(raw, mtime=0)
        if data.draw(st.booleans()):
            raw = data.draw(mutate_bytes(raw))
    path = write(files["root"] / "case" / ("c4.json.gz" if gz else "c4.json"), raw)
    check(lambda: _read_local([str(path)], verbose=False), DataError, path, files["root"])


# --- one kind of file where another is expected ---------------------------------------------------

@FUZZ
@given(data=st.data())
def test_fuzz_any_file_where_another_is_expected(files, data):
    """A log, C4 file, safetensors model, config.json or plain .npy, as they are or mutated,
    given to the checkpoint loader, the log reader and import."""
    import io
    npy = io.BytesIO()
    np.save(npy, np.zeros((3, 4), np.float32))
    original = data.draw(st.sampled_from([files["log"], files["c4"], files["safetensors"],
                                          json.dumps(files["config"]).encode(), npy.getvalue(),
                                          gzip.compress(files["c4"], mtime=0), b""]))
    raw = data.draw(st.one_of(st.just(original), mutate_bytes(original)))
    path = write(files["root"] / "case" / "given.file", raw)
    check(lambda: load_fully(path), ckpt.CheckpointError, path, files["root"])
    check(lambda: read_log(path), ValueError, path, files["root"])
    folder = files["root"] / "hf"
    write(folder / "model.safetensors", raw)
    write(folder / "config.json", json.dumps(files["config"]).encode())
    check(lambda: _import(folder), hf.HFError, folder, files["root"],
          may_write=("imported.npz",))


# --- what a user sees: the real command line ------------------------------------------------------

def test_mutants_on_the_command_line_are_one_line_and_exit_2(files, tmp_path):
    """A handful of mutants through `python -m smolgpt.cli`, in one process per command."""
    raw = files["checkpoints"][0]
    bad_ckpt = write(tmp_path / "cut.npz", raw[:len(raw) // 3])
    flipped = bytearray(raw)
    flipped[len(raw) - 30] ^= 0xFF                             # inside the zip's directory
    bad_zip = write(tmp_path / "flipped.npz", bytes(flipped))
    hf_dir = tmp_path / "hf"
    write(hf_dir / "config.json", json.dumps({**files["config"], "n_embd": "4"}).encode())
    write(hf_dir / "model.safetensors", files["safetensors"][:100])
    log = write(tmp_path / "log.jsonl", files["log"][:40] + b"\xff\xfe" + files["log"][40:])
    c4 = write(tmp_path / "c4.json.gz", gzip.compress(files["c4"])[:-12])
    null = write(tmp_path / "null.json", b"null\n" + files["c4"])    # datasets segfaulted
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    commands = [["eval", bad_ckpt], ["sample", bad_zip], ["eval", log],
                ["import", hf_dir, tmp_path / "out.npz"], ["plot", log],
                ["prepare", "--data-dir", tmp_path / "data", "--train-glob", c4],
                ["prepare", "--data-dir", tmp_path / "data", "--train-glob", null]]
    script = ("import sys; from smolgpt.cli import main\n"
              "import json\n"
              "for argv in json.loads(sys.argv[1]):\n"
              "    print('STATUS', main(argv), flush=True)\n"
              "    print('---', file=sys.stderr, flush=True)\n")
    before = tree(tmp_path)
    proc = subprocess.run([sys.executable, "-c", script,
                           json.dumps([[str(a) for a in c] for c in commands])],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    statuses = [line.split()[1] for line in proc.stdout.splitlines() if line.startswith("STATUS")]
    errors = proc.stderr.split("---\n")[:-1]
    assert statuses == ["2"] * len(commands), (statuses, proc.stderr)
    for command, err in zip(commands, errors):
        lines = [line for line in err.splitlines() if line.strip()]
        assert len(lines) == 1 and "Traceback" not in err, (command, err)
        assert lines[0].startswith("smolgpt: error: "), lines[0]
    assert tree(tmp_path) == before
