"""The data pipeline: tokens round-trip to text, EOT placement, manifest reuse and repair,
batches, and every error a user can hit. Expected values come from reading the gzipped JSON
lines directly (gzip + json, not `datasets`) and encoding them one document at a time."""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
from glob import glob
from pathlib import Path

import numpy as np
import pytest

from smolgpt import data
from smolgpt.data import (EOT, DataError, data_dir, eval_windows, get_batch, get_encoding,
                          load_tokens, prepare)


def first_docs(pattern: str, n: int) -> list[str]:
    """The first n texts of the files a glob matches (sorted), read without `datasets`."""
    texts = []
    for path in sorted(glob(pattern)):
        with gzip.open(path, "rt", encoding="utf-8") as f:
            for line in f:
                texts.append(json.loads(line)["text"])
                if len(texts) == n:
                    return texts
    return texts


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    lines = "".join(json.dumps(r) + "\n" for r in rows).encode()
    path.write_bytes(gzip.compress(lines) if path.name.endswith(".gz") else lines)
    return path


def split_docs(tokens: np.ndarray) -> list[list[int]]:
    """Token ids of each document of an [EOT, doc, EOT, doc, ...] array."""
    starts = np.flatnonzero(tokens == EOT)
    ends = list(starts[1:]) + [len(tokens)]
    return [tokens[s + 1:e].tolist() for s, e in zip(starts, ends)]


def raises_one_line(fn, *args, **kwargs) -> str:
    """Run fn, which must raise DataError with a one-line message; return the message."""
    with pytest.raises(DataError) as info:
        fn(*args, **kwargs)
    msg = str(info.value)
    assert "\n" not in msg and len(msg) > 20, msg
    return msg


@pytest.fixture
def data_copy(prepared_data_dir, tmp_path) -> Path:
    """A private copy of the session's prepared dir, free to damage."""
    return Path(shutil.copytree(prepared_data_dir, tmp_path / "data"))


# --- round trip and layout -------------------------------------------------------------------

def test_round_trip_first_document(prepared_data_dir, c4_globs):
    train = load_tokens("train", prepared_data_dir)
    assert isinstance(train, np.memmap) and train.dtype == np.uint16 and train.ndim == 1
    text = get_encoding().decode(split_docs(np.asarray(train))[0])
    assert text == first_docs(c4_globs[0], 1)[0]
    print(f"first training document decodes back to its text: {len(text)} characters")


@pytest.mark.parametrize("split", ["train", "val"])
def test_eot_before_every_document(prepared_data_dir, c4_globs, split):
    tokens = np.asarray(load_tokens(split, prepared_data_dir))
    manifest = json.loads((prepared_data_dir / "manifest.json").read_text())
    n_docs = manifest["splits"][split]["documents"]
    assert n_docs == {"train": 200, "val": 20}[split]
    enc = get_encoding()
    want = [enc.encode_ordinary(t) for t in first_docs(c4_globs[split == "val"], n_docs)]
    assert tokens[0] == EOT and tokens[-1] != EOT
    assert int((tokens == EOT).sum()) == n_docs              # one EOT per document, no more
    assert split_docs(tokens) == want                        # each document, in order, intact
    assert len(tokens) == n_docs + sum(map(len, want)) == manifest["splits"][split]["tokens"]


def test_manifest_records_checksums_and_sizes(prepared_data_dir):
    m = json.loads((prepared_data_dir / "manifest.json").read_text())
    assert m["tokenizer"] == "gpt2" and m["eot"] == EOT and m["dtype"] == "uint16"
    assert [Path(f["path"]).name for f in m["source"]["val_files"]] == \
        ["c4-en-sample.00001.json.gz"]
    for split in ("train", "val"):
        s = m["splits"][split]
        raw = (prepared_data_dir / s["file"]).read_bytes()
        assert len(raw) == 2 * s["tokens"]
        assert hashlib.sha256(raw).hexdigest() == s["sha256"]


def test_only_a_training_glob_holds_out_every_20th_document(tmp_path, gpt2_encoding):
    src = write_jsonl(tmp_path / "docs.jsonl", [{"text": f"Document number {i}."}
                                                for i in range(45)])
    m = prepare(tmp_path / "out", train_glob=str(src), verbose=False)
    assert (m["splits"]["train"]["documents"], m["splits"]["val"]["documents"]) == (43, 2)
    enc = get_encoding()
    val = [enc.decode(d) for d in split_docs(np.asarray(load_tokens("val", tmp_path / "out")))]
    assert val == ["Document number 19.", "Document number 39."]
    train = split_docs(np.asarray(load_tokens("train", tmp_path / "out")))
    assert enc.decode(train[19]) == "Document number 20."
    m = prepare(tmp_path / "out", train_glob=str(src), max_docs=10, verbose=False)
    assert (m["splits"]["train"]["documents"], m["splits"]["val"]["documents"]) == (10, 1)


# --- reuse and repair ------------------------------------------------------------------------

def test_second_prepare_reuses_without_tokenizing(data_copy, c4_globs, monkeypatch):
    before = {p.name: p.stat().st_mtime_ns for p in data_copy.iterdir()}
    m0 = json.loads((data_copy / "manifest.json").read_text())

    def no_tokenizing(*args, **kwargs):
        raise AssertionError("prepare re-tokenized data it should have reused")
    monkeypatch.setattr(data, "tokenize", no_tokenizing)
    m1 = prepare(data_copy, train_glob=c4_globs[0], val_glob=c4_globs[1], max_docs=200)
    load_tokens("val", data_copy)
    assert m1 == m0
    assert {p.name: p.stat().st_mtime_ns for p in data_copy.iterdir()} == before


def test_corrupted_bin_is_reprepared(data_copy, c4_globs, capsys):
    good = (data_copy / "train.bin").read_bytes()
    bad = bytearray(good)
    bad[100:104] = b"\xff\xff\xff\xff"                     # same size, different bytes
    (data_copy / "train.bin").write_bytes(bytes(bad))
    prepare(data_copy, train_glob=c4_globs[0], val_glob=c4_globs[1], max_docs=200, verbose=False)
    assert "sha256" in capsys.readouterr().out
    assert (data_copy / "train.bin").read_bytes() == good


def test_truncated_or_missing_bin_is_reprepared_by_load_tokens(data_copy, capsys):
    good = (data_copy / "val.bin").read_bytes()
    (data_copy / "val.bin").write_bytes(good[:-6])
    (data_copy / "train.bin").unlink()
    val = load_tokens("val", data_copy)                 # re-made from the manifest's own source
    out = capsys.readouterr().out
    assert "bytes" in out and "missing" in out
    assert val.tobytes() == good
    assert (data_copy / "train.bin").exists()


def test_a_different_request_reprepares(data_copy, c4_globs, capsys):
    m = prepare(data_copy, train_glob=c4_globs[0], val_glob=c4_globs[1], max_docs=50,
                verbose=False)
    assert "re-preparing" in capsys.readouterr().out
    assert (m["splits"]["train"]["documents"], m["splits"]["val"]["documents"]) == (50, 5)
    assert len(load_tokens("train", data_copy)) == m["splits"]["train"]["tokens"]


def test_data_dir_rules(monkeypatch, tmp_path):
    monkeypatch.setenv("SMOLGPT_DATA_DIR", str(tmp_path))
    assert data_dir() == tmp_path
    monkeypatch.delenv("SMOLGPT_DATA_DIR")
    assert data_dir() == Path(data.__file__).resolve().parent.parent / "data"


# --- batches ---------------------------------------------------------------------------------

def test_get_batch_is_shifted_windows_and_deterministic():
    tokens = np.arange(5000, dtype=np.uint16)                # token value = its position
    x, y = get_batch(tokens, 8, 16, np.random.default_rng(0))
    assert x.shape == y.shape == (8, 16) and x.dtype == y.dtype == np.int64
    assert np.array_equal(x - x[:, :1], np.broadcast_to(np.arange(16), (8, 16)))  # contiguous
    assert np.array_equal(y, x + 1)                          # y is x shifted by one
    assert 0 <= x.min() and y.max() <= 4999
    x2, y2 = get_batch(tokens, 8, 16, np.random.default_rng(0))
    assert np.array_equal(x, x2) and np.array_equal(y, y2)
    x3, _ = get_batch(tokens, 8, 16, np.random.default_rng(1))
    assert not np.array_equal(x, x3)


def test_get_batch_reaches_both_ends():
    tokens = np.arange(10, dtype=np.uint16)                  # 2 possible windows of 8 + 1
    x, y = get_batch(tokens, 200, 8, np.random.default_rng(0))
    assert set(x[:, 0].tolist()) == {0, 1} and y.max() == 9


def test_get_batch_on_real_tokens(prepared_data_dir):
    train = load_tokens("train", prepared_data_dir)
    x, y = get_batch(train, 4, 32, np.random.default_rng(123))
    assert np.array_equal(x[:, 1:], y[:, :-1]) and x.max() <= EOT


def test_eval_windows_fixed_and_evenly_spaced():
    N, T = 1000, 16
    tokens = np.arange(N, dtype=np.uint16)
    x, y = eval_windows(tokens, 10, T)
    assert x.shape == y.shape == (10, T) and x.dtype == np.int64
    assert np.array_equal(y, x + 1)
    starts = x[:, 0]
    assert starts[0] == 0 and y[-1, -1] == N - 1             # spans the whole array
    gaps = np.diff(starts)
    assert gaps.min() >= T + 1 and gaps.max() - gaps.min() <= 1  # even, non-overlapping
    x2, y2 = eval_windows(tokens, 10, T)
    assert np.array_equal(x, x2) and np.array_equal(y, y2)


def test_too_few_tokens_says_what_fits():
    tokens = np.arange(10, dtype=np.uint16)
    for fn in (lambda: get_batch(tokens, 2, 10, np.random.default_rng(0)),
               lambda: eval_windows(tokens, 2, 10)):
        msg = raises_one_line(fn)
        assert "10 tokens" in msg and "block_size <= 9" in msg


# --- errors ----------------------------------------------------------------------------------

def test_no_env_vars_and_no_network(tmp_path, monkeypatch, gpt2_encoding):
    monkeypatch.delenv("SMOLGPT_C4_FILES", raising=False)
    monkeypatch.delenv("SMOLGPT_C4_VAL_FILES", raising=False)

    def offline(split, n_docs):
        raise ConnectionError("Couldn't reach 'allenai/c4' on the Hub (LocalEntryNotFoundError)")
    monkeypatch.setattr(data, "stream_c4_texts", offline)
    for fn in (lambda: prepare(tmp_path / "a", verbose=False),
               lambda: load_tokens("train", tmp_path / "b")):
        msg = raises_one_line(fn)
        assert "SMOLGPT_C4_FILES=" in msg and "SMOLGPT_C4_VAL_FILES=" in msg
        assert "ConnectionError" in msg


def test_glob_matching_nothing_is_named(tmp_path, monkeypatch):
    pattern = str(tmp_path / "nothing-*.json.gz")
    assert pattern in raises_one_line(prepare, tmp_path / "out", train_glob=pattern)
    monkeypatch.setenv("SMOLGPT_C4_FILES", pattern)
    monkeypatch.delenv("SMOLGPT_C4_VAL_FILES", raising=False)
    msg = raises_one_line(prepare, tmp_path / "out")
    assert f"SMOLGPT_C4_FILES='{pattern}'" in msg


def test_val_glob_without_train_glob(tmp_path, monkeypatch):
    monkeypatch.delenv("SMOLGPT_C4_FILES", raising=False)
    monkeypatch.setenv("SMOLGPT_C4_VAL_FILES", str(tmp_path / "val-*.json.gz"))
    assert "SMOLGPT_C4_FILES is not" in raises_one_line(prepare, tmp_path / "out")


def test_same_file_in_both_globs(tmp_path):
    src = write_jsonl(tmp_path / "a.jsonl", [{"text": "hello"}])
    msg = raises_one_line(prepare, tmp_path / "out", train_glob=str(src), val_glob=str(src))
    assert "both" in msg


BAD_FILES = {
    "no_text.jsonl": (lambda p: write_jsonl(p, [{"title": "a"}, {"title": "b"}]), "'text'"),
    "null_text.jsonl": (lambda p: write_jsonl(p, [{"text": None}, {"text": ""}]), "no documents"),
    "int_text.jsonl": (lambda p: write_jsonl(p, [{"text": 5}]), "not strings"),
    "empty.jsonl": (lambda p: p.write_bytes(b""), "empty"),
    "empty.json.gz": (lambda p: p.write_bytes(gzip.compress(b"")), "empty"),
    "not_json.jsonl": (lambda p: p.write_bytes(b"hello world\nnot json\n"), "JSON"),
    "truncated.json.gz": (lambda p: p.write_bytes(gzip.compress(
        b"".join(json.dumps({"text": f"doc {i} " * 50}).encode() + b"\n" for i in range(300))
    )[:1500]), "not a valid gzip"),
    "garbage.json.gz": (lambda p: p.write_bytes(gzip.compress(b'{"text": "x"}\n')[:12]
                                               + bytes(range(256)) * 8), "not a valid gzip"),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_file_is_a_clear_data_error(tmp_path, name, gpt2_encoding):
    make, says = BAD_FILES[name]
    path = tmp_path / name
    make(path)
    with pytest.raises(DataError) as info:
        prepare(tmp_path / "out", train_glob=str(path), verbose=False)
    msg = str(info.value)
    assert "\n" not in msg and says in msg, msg
    print(f"{name}: {msg}")


def test_missing_tokenizer_cache(tmp_path, monkeypatch):
    def no_network(name):
        raise ConnectionError("Failed to resolve 'openaipublic.blob.core.windows.net'")
    monkeypatch.setattr(data.tiktoken, "get_encoding", no_network)
    assert "TIKTOKEN_CACHE_DIR=" in raises_one_line(get_encoding)


def test_max_docs_must_be_positive(tmp_path, c4_globs):
    assert "max_docs=0" in raises_one_line(prepare, tmp_path, train_glob=c4_globs[0], max_docs=0)


def test_unknown_split(prepared_data_dir):
    assert "'train' or 'val'" in raises_one_line(load_tokens, "test", prepared_data_dir)


# ---- plain text files as a second domain -------------------------------------------------------

def test_text_files_split_by_file_and_recorded(tmp_path, gpt2_encoding, monkeypatch):
    folder = tmp_path / "texts"
    folder.mkdir()
    texts = [f"def f{i}():\n    return {i} * 'caf\u00e9'\n" for i in range(7)]
    files = []
    for i, t in enumerate(texts):
        (folder / f"m{i}.py").write_text(t, encoding="utf-8")
        files.append(folder / f"m{i}.py")
    (folder / "m3.py").write_bytes(b"x = 1  # \xff not UTF-8\n")       # decoded with U+FFFD
    texts[3] = "x = 1  # \ufffd not UTF-8\n"
    out = tmp_path / "data"
    m = data.prepare_text_files(out, files, val_every=3, verbose=False)
    split = [f["split"] for f in m["files"]]
    assert split == ["train", "train", "val", "train", "train", "val", "train"]
    tokens = {s: np.fromfile(out / f"{s}.bin", dtype="<u2") for s in ("train", "val")}
    for s in ("train", "val"):
        want = [t for t, k in zip(texts, split) if k == s]
        assert split_docs(tokens[s]) == [gpt2_encoding.encode_ordinary(t) for t in want]
    rec = json.loads((out / data.SOURCES).read_text())
    assert [f["sha256"] for f in rec["files"]] == \
        [hashlib.sha256(p.read_bytes()).hexdigest() for p in files]
    # the same files again: nothing is re-tokenized
    monkeypatch.setattr(data, "tokenize", lambda *a, **k: pytest.fail("re-tokenized"))
    again = data.prepare_text_files(out, files, val_every=3, verbose=False)
    assert again["splits"] == m["splits"]


def test_text_files_refuse_too_few_and_unreadable(tmp_path):
    (tmp_path / "a.txt").write_text("a")
    assert "too few" in raises_one_line(data.prepare_text_files, tmp_path / "d",
                                        [tmp_path / "a.txt"], val_every=2)
    assert "cannot read" in raises_one_line(data.prepare_text_files, tmp_path / "d",
                                            [tmp_path / "a.txt", tmp_path / "gone.txt"],
                                            val_every=2)


def test_stdlib_files_are_a_sorted_list_of_modules():
    files = data.stdlib_files()
    assert len(files) > 50 and files == sorted(files)
    assert any(f.name == "os.py" for f in files) and all(f.suffix == ".py" for f in files)
