"""C4 English in, two flat arrays of token ids out, and random windows of them as batches.

Two tokenizers turn text into ids (`TOKENIZERS`): GPT-2's BPE, the default everywhere, and raw
UTF-8 bytes (ids 0-255, plus 256 as the document separator), which the byte-level model
`tiny-bytes` reads. Each prepares into its own folder (`data_dir(tokenizer)`).

The whole pipeline, in the order this file goes through it:

  1. Where the documents come from (`_requested_source`):
       - local JSON-lines files (optionally gzipped), named by two globs:
         `SMOLGPT_C4_FILES` (training) and `SMOLGPT_C4_VAL_FILES` (validation);
       - only the training glob: every 20th document of it (0-based index % 20 == 19) is held
         out for validation and the other 19 of every 20 are for training;
       - neither: the first documents of `allenai/c4` 'en' (train and validation splits),
         streamed from the Hugging Face Hub (needs the network).
     Local files are read with `datasets.load_dataset("json", ...)`; only the `text` field is used.
  2. Tokenize (`tokenize`): tiktoken's `gpt2` BPE, `encode_ordinary` (a literal
     "<|endoftext|>" in the text is ordinary text), and ONE end-of-text token (EOT = 50256)
     *before* every document, so every document starts right after an EOT:

         [EOT, doc0 tokens..., EOT, doc1 tokens..., EOT, doc2 tokens...]

     With the `bytes` tokenizer the ids are the documents' UTF-8 bytes and the separator
     before each document is 256, the one id no byte can take.

  3. Store (`prepare`): `train.bin` and `val.bin`, raw little-endian uint16 (GPT-2 has 50257
     ids, which fit), plus `manifest.json` recording the source, document and token counts,
     the sha256 of each .bin and the tokenizer. Later runs asking for the same source reuse
     them; a .bin whose size or checksum disagrees with the manifest is re-made, with a note.
  4. Read (`load_tokens`): a read-only `np.memmap`, so nothing is copied into memory.
  5. Batch (`get_batch`, `eval_windows`): windows of T+1 consecutive tokens; x is the first T,
     y the last T, so y[b, t] is the token that follows x[b, :t+1].

Where the files go (`data_dir`): `$SMOLGPT_DATA_DIR`, else the repository's `data/` (the folder
next to this package, as with `pip install -e .`), else `./data`; the byte-level data goes to a
`bytes/` folder inside that one.

Every problem a user can fix is raised as `DataError`, with a one-line message that says what
was wrong and how to fix it. Errors from deep inside `datasets`/`pyarrow`/`gzip` are wrapped
(`raise DataError(...) from e`), so the original is still there in the traceback's cause.

    prepare()                                      # once; later calls reuse data/
    train = load_tokens("train")                   # (N,) uint16 memmap
    x, y = get_batch(train, 8, 64, np.random.default_rng(0))   # (8, 64) int64 each
"""

from __future__ import annotations

import gzip
import hashlib
import itertools
import json
import os
import shlex
import time
import zlib
from glob import glob
from pathlib import Path

import numpy as np
import tiktoken

from .files import write_atomic
from .model import TOKENIZERS                  # tokenizer -> vocabulary size

ENCODING = "gpt2"
EOT = 50256                      # "<|endoftext|>", the last of GPT-2's 50257 ids
BYTE_SEP = 256                   # the byte tokenizer's document separator, after the 256 bytes
SEPARATOR = {"gpt2": EOT, "bytes": BYTE_SEP}   # tokenizer -> the id before every document
DTYPE = np.dtype("<u2")          # uint16, little-endian on disk whatever the machine
SPLITS = ("train", "val")
VAL_EVERY = 20                   # one-glob split: document i is validation iff i % 20 == 19
ONLINE_DOCS = {"train": 20000, "val": 2000}   # default documents streamed from allenai/c4
MANIFEST = "manifest.json"
FORMAT = 1                       # bump when the .bin layout or the manifest's meaning changes
ENV_TRAIN, ENV_VAL = "SMOLGPT_C4_FILES", "SMOLGPT_C4_VAL_FILES"
EXAMPLE = (f"export {ENV_TRAIN}='/path/to/c4/c4-train.*.json.gz' "
           f"{ENV_VAL}='/path/to/c4/c4-validation.*.json.gz'")


class DataError(Exception):
    """Data that cannot be had or used; the one-line message says why and how to fix it."""


def _one_line(e: BaseException, limit: int = 160) -> str:
    """`TypeName: first line of the message`, short enough to sit inside a DataError's line."""
    text = str(e).strip().splitlines()[0] if str(e).strip() else ""
    text = text if len(text) <= limit else text[:limit] + "..."
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


# ---------------------------------------------------------------------------------------------
# The tokenizer and the data directory
# ---------------------------------------------------------------------------------------------

def get_encoding() -> tiktoken.Encoding:
    """tiktoken's `gpt2` encoding (V = 50257). Offline it needs TIKTOKEN_CACHE_DIR."""
    try:
        return tiktoken.get_encoding(ENCODING)
    except Exception as e:  # no network and no cache: requests' ConnectionError, or worse
        raise DataError(
            f"could not load tiktoken's '{ENCODING}' encoding ({_one_line(e)}); without network, "
            f"point TIKTOKEN_CACHE_DIR at a tiktoken cache holding the GPT-2 BPE files, e.g. "
            f"export TIKTOKEN_CACHE_DIR=/path/to/tiktoken-cache") from e


def check_tokenizer(tokenizer: str) -> str:
    if tokenizer not in TOKENIZERS:
        raise DataError(f"unknown tokenizer {tokenizer!r}: use one of {sorted(TOKENIZERS)}")
    return tokenizer


def encode(text: str, tokenizer: str = ENCODING) -> list[int]:
    """One text -> its ids, no separator added (a prompt, say)."""
    if check_tokenizer(tokenizer) == "bytes":
        return list(text.encode("utf-8"))
    return get_encoding().encode_ordinary(text)


def decode(ids, tokenizer: str = ENCODING) -> str:
    """Ids -> text. Bytes that do not form valid UTF-8 (a model can emit any byte) become
    U+FFFD; a byte model's document separator is written as a blank line."""
    if check_tokenizer(tokenizer) == "bytes":
        ids = np.asarray(ids, dtype=np.int64)
        docs = np.split(ids, np.flatnonzero(ids == BYTE_SEP))   # each but the first opens with 256
        return "\n\n".join(bytes(d[d != BYTE_SEP].astype(np.uint8)).decode("utf-8", "replace")
                           for d in docs)
    return get_encoding().decode(list(ids))


def token_bytes(tokenizer: str = ENCODING) -> np.ndarray:
    """(V,) int64: how many UTF-8 bytes each id stands for; 0 for the document separator."""
    if check_tokenizer(tokenizer) == "bytes":
        lengths = np.ones(TOKENIZERS["bytes"], dtype=np.int64)
    else:
        enc = get_encoding()
        lengths = np.array([len(enc.decode_single_token_bytes(i)) for i in range(enc.n_vocab)],
                           dtype=np.int64)
    lengths[SEPARATOR[tokenizer]] = 0                         # a document boundary, not text
    return lengths


def data_dir(tokenizer: str = ENCODING) -> Path:
    """Where train.bin, val.bin and manifest.json live (the folder need not exist yet): GPT-2
    tokens in the data folder itself, bytes in its `bytes/` subfolder."""
    if os.environ.get("SMOLGPT_DATA_DIR"):
        root = Path(os.environ["SMOLGPT_DATA_DIR"]).expanduser()
    else:
        repo = Path(__file__).resolve().parent.parent          # smolgpt/.. in a source checkout
        if (repo / "pyproject.toml").exists() or (repo / "setup.cfg").exists():
            root = repo / "data"
        else:
            root = Path.cwd() / "data"                          # installed into site-packages
    return root if check_tokenizer(tokenizer) == ENCODING else root / tokenizer


# ---------------------------------------------------------------------------------------------
# Step 1: which documents. A "source" is a small JSON-able dict, stored in the manifest and
# compared with the next request to decide whether the prepared files can be reused.
# ---------------------------------------------------------------------------------------------

def _match(pattern: str, name: str) -> list[dict]:
    """Files a glob names, sorted, as [{"path": absolute path, "bytes": size}]."""
    matched = glob(os.path.expanduser(pattern))
    paths = sorted(p for p in matched if os.path.isfile(p))
    if matched and not paths:
        raise DataError(f"{name}='{pattern}' matches only folders ({sorted(matched)[0]}); point "
                        f"it at the JSON-lines files inside, e.g. "
                        f"'{os.path.join(sorted(matched)[0], '*.json.gz')}'")
    if not paths:
        raise DataError(f"{name}='{pattern}' matches no files (looked from {os.getcwd()}); "
                        f"point it at existing C4 JSON-lines files, e.g. {EXAMPLE}")
    return [{"path": os.path.abspath(p), "bytes": os.path.getsize(p)} for p in paths]


def _requested_source(train_glob, val_glob, max_docs, old_source) -> dict:
    """The source a call to prepare() asks for.

    Globs given as arguments win; else the env vars; else, if nothing at all was asked for
    (no glob, no env var, no max_docs), whatever the data directory already holds; else the
    online C4. `max_docs` caps the training documents and the validation split gets a tenth of
    it (at least 1); None means every local document, or 20000 / 2000 online.
    """
    if train_glob is None and val_glob is None:
        train_glob, val_glob = os.environ.get(ENV_TRAIN) or None, os.environ.get(ENV_VAL) or None
        train_name, val_name = ENV_TRAIN, ENV_VAL
    else:
        train_name, val_name = "train_glob", "val_glob"
    if val_glob and not train_glob:
        raise DataError(f"{val_name} is set but {train_name} is not; set both (a training glob "
                        f"and a validation glob), e.g. {EXAMPLE}")
    if max_docs is not None:
        if int(max_docs) < 1:
            raise DataError(f"max_docs={max_docs}; use at least 1 (or None for the default)")
        caps = {"train": int(max_docs), "val": max(1, int(max_docs) // 10)}
    elif train_glob:
        caps = {"train": None, "val": None}                 # every local document
    else:
        caps = dict(ONLINE_DOCS)
    if train_glob:
        train_files = _match(train_glob, train_name)
        val_files = _match(val_glob, val_name) if val_glob else []
        shared = {f["path"] for f in train_files} & {f["path"] for f in val_files}
        if shared:
            raise DataError(f"{sorted(shared)[0]} is matched by both {train_name} and {val_name};"
                            f" the validation files must be held out, so make the globs disjoint")
        if val_glob:
            how, rule = f"val = {val_name}='{val_glob}'", "val files"
        else:
            how = f"val = every {VAL_EVERY}th document of the training files"
            rule = f"document i is val iff i % {VAL_EVERY} == {VAL_EVERY - 1}"
        if max_docs is not None:
            how += f" (first {caps['train']} train / {caps['val']} val documents)"
        return {"kind": "local", "description": f"local JSON lines: train = {train_name}="
                f"'{train_glob}', {how}", "train_files": train_files, "val_files": val_files,
                "val_rule": rule, "max_docs": caps}
    if max_docs is None and old_source is not None:
        return old_source
    return {"kind": "online", "description": f"allenai/c4 'en' streamed from the Hugging Face "
            f"Hub: first {caps['train']} train / {caps['val']} validation documents",
            "dataset": "allenai/c4", "config": "en", "max_docs": caps}


def stream_c4_texts(split: str, n_docs: int) -> list[str]:
    """The first n_docs texts of allenai/c4 'en' `split` ("train" or "validation"), streamed.

    Tests replace this function (monkeypatch) so that they never touch the network.
    """
    import datasets
    stream = datasets.load_dataset("allenai/c4", "en", split=split, streaming=True)
    return [row["text"] for row in itertools.islice(stream, n_docs)]


def _probe(path: str) -> str | None:
    """Why one JSON-lines(.gz) file cannot be used, or None. Reads it all: for error paths only."""
    is_gz = path.endswith(".gz")
    try:
        with (gzip.open(path, "rb") if is_gz else open(path, "rb")) as f:
            first = f.readline()
            total = len(first)
            while chunk := f.read(1 << 20):
                total += len(chunk)
    except (OSError, EOFError, zlib.error) as e:      # gzip.BadGzipFile is an OSError
        kind = "not a valid gzip file" if is_gz else "unreadable"
        return f"is {kind} ({_one_line(e)}); replace it with a good copy or leave it out"
    if total == 0:
        return "is empty (no documents); remove it or add JSON lines with a 'text' field"
    with (gzip.open(path, "rb") if is_gz else open(path, "rb")) as f:
        for i, line in enumerate(f, 1):                # the first bad line, by its number
            if not line.strip():
                continue
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as e:
                return (f"line {i} is not UTF-8 text (byte 0x{line[e.start]:02x} at byte "
                        f"{e.start + 1} of the line); C4's JSON lines are UTF-8: convert the "
                        f"file, e.g. iconv -f latin1 -t utf-8, or leave it out")
            try:
                row = json.loads(line)
            except (ValueError, RecursionError):
                if i == 1:
                    return ("does not hold JSON lines (line 1 is not JSON); give one JSON "
                            "object per line, with the document in 'text'")
                return (f"line {i} is not JSON (the lines before it are); fix or remove that "
                        f"line: one JSON object per line, with the document in 'text'")
            if not isinstance(row, dict) or "text" not in row:
                fields = sorted(row) if isinstance(row, dict) else type(row).__name__
                return (f"has no 'text' field (line {i} has {fields}); give one JSON object per "
                        f"line with the document in 'text', like C4's "
                        f"{{\"text\", \"timestamp\", \"url\"}}")
            if not isinstance(row["text"], (str, type(None))):
                kind = type(row["text"]).__name__
                return (f"line {i} has a 'text' of JSON type {kind}, not strings; give each "
                        f"document as a JSON string in 'text'")
    return None


def _starts_with_an_object(path: str) -> bool:
    """Whether the first non-blank line of a JSON-lines(.gz) file is a JSON object."""
    try:
        with (gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb")) as f:
            for line in f:
                if line.strip():
                    return isinstance(json.loads(line), dict)
    except (OSError, EOFError, zlib.error, ValueError, RecursionError):
        return False
    return False                                       # empty


def _explain(files: list[str], e: BaseException | None) -> DataError:
    """A DataError naming the first bad file among `files`, or the wrapped error if none is."""
    for path in files:
        problem = _probe(path)
        if problem:
            return DataError(f"{path} {problem}")
    if isinstance(e, OSError) and not isinstance(e, ConnectionError):   # the files read fine
        return DataError(f"datasets could not use its cache folder ({_one_line(e)}); set "
                         f"HF_HOME to a writable folder with free space, e.g. "
                         f"export HF_HOME=/tmp/hf_home")
    if e is None:
        return DataError(f"no 'text' field in {len(files)} file(s) starting with {files[0]}; "
                         f"give one JSON object per line with the document in 'text'")
    while e.__cause__ is not None:                 # the innermost error says the most
        e = e.__cause__
    return DataError(f"datasets could not read {len(files)} file(s) starting with {files[0]} "
                     f"({_one_line(e)}); check they are JSON lines (optionally .gz) with a "
                     f"'text' field")


def _read_local(files: list[str], verbose: bool) -> list[str]:
    """All non-empty `text` values of some JSON-lines(.gz) files, in file order then line order."""
    import datasets
    for path in files:
        if not os.path.isfile(path):
            raise DataError(f"{path} is gone; set {ENV_TRAIN} / {ENV_VAL} to the files to use "
                            f"and run `smolgpt prepare`, e.g. {EXAMPLE}")
    for path in files:
        if not _starts_with_an_object(path):
            # datasets' JSON reader (pyarrow) can crash the whole process on such a file (a first
            # line `null` is a segmentation fault with datasets 5.2 / pyarrow 26), so it never
            # sees one: the file is read here instead, to name its first bad line
            raise _explain([path], None)
    bars = not datasets.are_progress_bars_disabled()
    if not verbose:
        datasets.disable_progress_bars()
    # datasets logs its own parse errors (several lines on stderr); they are explained below in
    # one line naming the file and line, so its logger is silenced while it reads
    verbosity = datasets.logging.get_verbosity()
    try:
        datasets.logging.set_verbosity(datasets.logging.CRITICAL + 1)
        ds = datasets.load_dataset("json", data_files=files, split="train")
    except Exception as e:  # StopIteration (empty file), zlib.error, EOFError, ArrowInvalid, ...
        raise _explain(files, e) from e
    finally:
        datasets.logging.set_verbosity(verbosity)
        if bars:
            datasets.enable_progress_bars()
    if "text" not in ds.column_names:
        raise _explain(files, None)
    kind = getattr(ds.features["text"], "dtype", type(ds.features["text"]).__name__)
    if kind not in ("string", "large_string"):
        for path in files:                             # the first file and line at fault
            problem = _probe(path)
            if problem:
                raise DataError(f"{path} {problem}")
        raise DataError(f"the 'text' field in {len(files)} file(s) starting with {files[0]} "
                        f"holds {kind}, not strings; give one JSON object per line with the "
                        f"document in 'text'")
    try:
        texts = [t for t in ds["text"] if t]                  # C4 has no empty documents
    except UnicodeDecodeError as e:              # arrow kept bytes that are not UTF-8 text
        raise _explain(files, e) from None
    if not texts:
        raise DataError(f"no documents in {len(files)} file(s) starting with {files[0]}: every "
                        f"'text' is empty or null; point {ENV_TRAIN} at files with documents")
    return texts


def _read_split(source: dict, split: str, verbose: bool) -> list[str]:
    """The documents of one split ("train" or "val") of a source, capped at max_docs."""
    cap = source["max_docs"][split]
    if source["kind"] == "online":
        hub_split = {"train": "train", "val": "validation"}[split]
        if verbose:
            print(f"data: streaming the first {cap} {hub_split} documents of allenai/c4 'en' "
                  f"(needs network; or set {ENV_TRAIN})")
        try:
            texts = stream_c4_texts(hub_split, cap)
        except Exception as e:  # ConnectionError, OfflineModeIsEnabled, timeouts, ...
            raise DataError(f"no local C4 files are set and downloading allenai/c4 failed "
                            f"({_one_line(e)}); to use local C4 JSON-lines files instead set "
                            f"{ENV_TRAIN} (training glob) and {ENV_VAL} (validation glob), "
                            f"e.g. {EXAMPLE}") from e
        texts = [t for t in texts if t]
        if not texts:
            raise DataError(f"allenai/c4 'en' {hub_split} gave no documents; set {ENV_TRAIN} "
                            f"and {ENV_VAL} to local files instead, e.g. {EXAMPLE}")
        return texts
    if source["val_files"]:
        files = [f["path"] for f in source[f"{split}_files"]]
        return _read_local(files, verbose)[:cap]
    docs = _read_local([f["path"] for f in source["train_files"]], verbose)
    is_val = (np.arange(len(docs)) % VAL_EVERY) == VAL_EVERY - 1          # (n_docs,)
    picked = [d for d, v in zip(docs, is_val) if v == (split == "val")][:cap]
    if not picked:
        raise DataError(f"only {len(docs)} documents in {source['description']}: too few to hold "
                        f"out every {VAL_EVERY}th for validation; add files or set {ENV_VAL}")
    return picked


# ---------------------------------------------------------------------------------------------
# Step 2: tokenize
# ---------------------------------------------------------------------------------------------

def tokenize(texts: list[str], enc: tiktoken.Encoding | None = None,
             tokenizer: str = ENCODING) -> np.ndarray:
    """n documents -> (N,) uint16 = [EOT, doc0..., EOT, doc1..., ...], N = n + sum(len(doc_i)).

    With tokenizer="bytes": [256, doc0's UTF-8 bytes..., 256, doc1's bytes..., ...].

    tiktoken's batch encoder runs its Rust BPE on a thread pool (the GIL is released), so
    ~6M characters take well under a second on 2 cores. Documents go in chunks of 1000 so
    the Python lists of ids (28 bytes per int) never hold more than one chunk.
    """
    if check_tokenizer(tokenizer) == "bytes":
        parts = []
        for text in texts:
            raw = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)           # (n_i,)
            parts += [np.array([BYTE_SEP], dtype=DTYPE), raw.astype(DTYPE)]
        return np.concatenate(parts) if parts else np.empty(0, DTYPE)
    enc = enc or get_encoding()
    threads = os.cpu_count() or 1
    parts = []
    for i in range(0, len(texts), 1000):
        ids = enc.encode_ordinary_batch(texts[i:i + 1000], num_threads=threads)  # [[int]]
        n = len(ids) + sum(len(d) for d in ids)
        flat = itertools.chain.from_iterable(itertools.chain((EOT,), d) for d in ids)
        parts.append(np.fromiter(flat, dtype=DTYPE, count=n))                    # (n,)
    return np.concatenate(parts) if parts else np.empty(0, DTYPE)


# ---------------------------------------------------------------------------------------------
# Step 3: store, with a manifest; reuse when the request matches and the checksums do
# ---------------------------------------------------------------------------------------------

def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _read_manifest(out: Path, tokenizer: str = ENCODING) -> dict | None:
    """The manifest in `out`, or None if there is none or it is not one this code wrote.
    A folder prepared with the other tokenizer is refused, not re-made over."""
    path = out / MANIFEST
    if not path.exists():
        return None
    m = None
    try:
        m = json.loads(path.read_text())
        other = m["tokenizer"] in TOKENIZERS and m["tokenizer"] != tokenizer
        ok = (m["format"] == FORMAT and m["tokenizer"] == tokenizer
              and m["eot"] == SEPARATOR[tokenizer]
              and m["dtype"] == "uint16" and isinstance(m["source"], dict)
              and all(isinstance(m["splits"][s]["tokens"], int) for s in SPLITS))
    except (ValueError, KeyError, TypeError):
        ok = other = False
    if other:
        raise DataError(f"{out} holds data made with the {m['tokenizer']!r} tokenizer, but this "
                        f"model reads {tokenizer!r}; give it another data folder (the default "
                        f"for {tokenizer!r} is {data_dir(tokenizer)})")
    if not ok:
        if isinstance(m, dict) and m.get("unfinished") is True:   # claimed, then stopped
            print(f"data: note: an earlier prepare in {out} did not finish; preparing afresh")
        elif _written_by_smolgpt(path):            # else prepare refuses to replace it
            print(f"data: note: {path} is from another format; preparing afresh")
        return None
    return m


UNREADABLE = object()                # what _parsed returns for a file that is not JSON


def _parsed(manifest: Path):
    """The JSON value a manifest.json holds, or UNREADABLE."""
    try:
        return json.loads(manifest.read_bytes())
    except (OSError, ValueError):
        return UNREADABLE


def _written_by_smolgpt(manifest: Path, m=None) -> bool:
    """Whether a manifest.json (its parsed value `m`, if already read) was written by some
    version of smolgpt's prepare (a JSON object with its "format", "tokenizer" and "splits"), so
    that it and the .bin files it describes are smolgpt's to replace."""
    m = _parsed(manifest) if m is None else m
    return isinstance(m, dict) and all(k in m for k in ("format", "tokenizer", "splits"))


def _refuse_strangers(out: Path, force: bool, tokenizer: str = ENCODING) -> None:
    """The writing rule (smolgpt/files.py): train.bin, val.bin and manifest.json are replaced
    only in a folder whose manifest smolgpt wrote, or with force (`smolgpt prepare --force`)."""
    from .files import WouldReplace, describe_file, refuse_strangers
    m = _parsed(out / MANIFEST) if (out / MANIFEST).is_file() else {}
    ours = _written_by_smolgpt(out / MANIFEST, m)
    if m is UNREADABLE and not force:
        raise WouldReplace(
            f"{out / MANIFEST} is not readable JSON ({describe_file(out / MANIFEST)}): damaged, "
            f"or another program's file; to prepare this folder again, replacing it and the "
            f"token files, run smolgpt prepare --force --data-dir {shlex.quote(str(out))}"
            + ("" if tokenizer == ENCODING else f" --tokenizer {tokenizer}"))
    refuse_strangers([out / MANIFEST, *(out / f"{s}.bin" for s in SPLITS)], lambda p: ours,
                     force, force_hint="run smolgpt prepare --force to replace it")


def _problem(out: Path, entry: dict) -> str | None:
    """Why a split's .bin does not match its manifest entry, or None if it does."""
    path = out / entry["file"]
    if not path.exists():
        return f"{path} is missing"
    size, want = path.stat().st_size, entry["tokens"] * DTYPE.itemsize
    if size != want:
        return f"{path} is {size} bytes but its manifest says {want}"
    if _sha256(path) != entry["sha256"]:
        return f"{path} does not match its manifest's sha256"
    return None


def _same(a: dict, b: dict) -> bool:
    """Two sources ask for the same documents (the human description may differ)."""
    strip = lambda s: {k: v for k, v in s.items() if k != "description"}  # noqa: E731
    return strip(a) == strip(b)


def _prepare(out: Path, source: dict, old: dict | None, force: bool, verbose: bool,
             tokenizer: str = ENCODING) -> dict:
    """Make `out` hold `source` tokenized; reuse what is there if it is that and intact."""
    say = print if verbose else (lambda *a, **k: None)
    if old is not None and not force and _same(old["source"], source):
        todo = []
        for split in SPLITS:
            problem = _problem(out, old["splits"][split])
            if problem:
                print(f"data: note: {problem}; re-preparing {split} from {source['description']}")
                todo.append(split)
        if not todo:
            s = old["splits"]
            say(f"data: reusing {out} ({source['description']}; train {s['train']['tokens']:,} "
                f"tokens, val {s['val']['tokens']:,} tokens)")
            return old
        splits = dict(old["splits"])
    else:
        if old is not None and not force:
            print(f"data: note: {out} holds {old['source']['description']}, not the requested "
                  f"{source['description']}; re-preparing")
        todo, splits = list(SPLITS), {}

    # fail on the tokenizer before reading anything
    enc = get_encoding() if tokenizer == ENCODING else None
    _refuse_strangers(out, force, tokenizer)
    # Every split is read and tokenized before any file is touched, so that a bad input (the
    # usual failure) leaves the folder as it was. Then the folder is claimed for smolgpt (a
    # manifest marked unfinished) before the first .bin is written: a write stopped midway (a
    # full disk, Ctrl-C) leaves files that the next prepare knows as its own and re-makes,
    # never token files without a manifest, which it would have to refuse as a stranger's.
    made = {}
    for split in todo:
        t0 = time.perf_counter()
        texts = _read_split(source, split, verbose)
        made[split] = (len(texts), tokenize(texts, enc, tokenizer), t0)    # (N,) uint16
        del texts
    header = {"format": FORMAT, "tokenizer": tokenizer, "eot": SEPARATOR[tokenizer],
              "eot_placement": "one separator before every document", "dtype": "uint16"}
    _write_manifest(out, {**header, "source": source, "splits": {}, "unfinished": True})
    for split, (n_docs, tokens, t0) in made.items():
        write_atomic(out / f"{split}.bin", lambda f: f.write(tokens.data))
        splits[split] = {"file": f"{split}.bin", "documents": n_docs, "tokens": int(tokens.size),
                         "sha256": hashlib.sha256(tokens.data).hexdigest()}
        say(f"data: {split}: {n_docs:,} documents -> {tokens.size:,} tokens "
            f"-> {out / (split + '.bin')} ({time.perf_counter() - t0:.1f} s)")
    manifest = {**header, "source": source, "splits": {s: splits[s] for s in SPLITS}}
    _write_manifest(out, manifest)
    return manifest


def _write_manifest(out: Path, manifest: dict) -> None:
    text = json.dumps(manifest, indent=1) + "\n"
    write_atomic(out / MANIFEST, lambda f: f.write(text.encode()))


def prepare(out_dir=None, *, train_glob=None, val_glob=None, max_docs=None, force=False,
            verbose=True, tokenizer: str = ENCODING) -> dict:
    """Tokenize a source into out_dir/{train,val}.bin + manifest.json; return the manifest.

    Source: `train_glob`/`val_glob` if given, else $SMOLGPT_C4_FILES/$SMOLGPT_C4_VAL_FILES,
    else (nothing asked for) what out_dir already holds, else the online allenai/c4. Only a
    training glob: every 20th document is validation. `max_docs` caps the training documents
    (validation: a tenth of it, at least 1); None = every local document or 20000/2000 online.
    Reuses the files when the manifest has the same source and each .bin matches its size and
    sha256; re-makes a .bin that does not (printing a note). `force` re-makes everything.
    `tokenizer`: "gpt2" (GPT-2's BPE) or "bytes" (UTF-8 bytes); out_dir defaults to its folder.
    """
    out = Path(out_dir) if out_dir is not None else data_dir(check_tokenizer(tokenizer))
    old = _read_manifest(out, tokenizer)
    held = old["source"] if old else _unfinished_source(out)    # asked for nothing: the same
    source = _requested_source(train_glob, val_glob, max_docs, held)
    return _prepare(out, source, old, force, verbose, tokenizer)


def _unfinished_source(out: Path) -> dict | None:
    """The source an unfinished prepare in `out` was making (its claim records it), or None."""
    try:
        m = json.loads((out / MANIFEST).read_bytes())
    except (OSError, ValueError):
        return None
    if isinstance(m, dict) and m.get("unfinished") is True and isinstance(m.get("source"), dict):
        return m["source"]
    return None


# ---------------------------------------------------------------------------------------------
# Another domain: plain text files (for fine-tuning a C4 model on something else)
# ---------------------------------------------------------------------------------------------

SOURCES = "sources.json"         # which text files a prepare_text_files folder was made from


def stdlib_files() -> list[Path]:
    """The Python standard library's own top-level modules: every `*.py` directly in
    `sysconfig.get_paths()["stdlib"]`, sorted by name. Text every machine with Python has
    offline; which files (and so which tokens) depends on the Python version, so
    `prepare_text_files` records each file's sha256."""
    import sysconfig
    root = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(p for p in root.glob("*.py") if p.is_file())
    if not files:
        raise DataError(f"no *.py files in the standard library folder {root} (a Python without "
                        f"its sources?): pass other text files to prepare_text_files")
    return files


def prepare_text_files(out_dir, files, val_every: int = 10, verbose: bool = True) -> dict:
    """Plain text files -> out_dir/{train,val}.bin + manifest.json, like `prepare`; returns the
    manifest with "files" added: [{"name", "sha256", "bytes", "split"}] in the given order.

    Each file is one document. The split is by file: file i (0-based, in the order given) is
    validation iff i % val_every == val_every - 1, so no held-out text was ever seen in training.
    The files are read as UTF-8 (an undecodable byte becomes U+FFFD) and written, one JSON line
    per file, to out_dir/source/{train,val}.jsonl, which `prepare` then tokenizes; the list of
    files with their sha256 is kept in out_dir/sources.json. A second call with the same files
    reuses everything.
    """
    out = Path(out_dir)
    files = [Path(f) for f in files]
    if not isinstance(val_every, int) or val_every < 2:
        raise DataError(f"val_every={val_every!r}: use an integer >= 2 (one file in val_every is "
                        f"held out)")
    if len(files) < val_every:
        raise DataError(f"{len(files)} text file(s) are too few to hold out one in {val_every}: "
                        f"give at least {val_every}")
    lines = {"train": [], "val": []}
    record = []
    for i, path in enumerate(files):
        try:
            raw = path.read_bytes()
        except OSError as e:
            raise DataError(f"cannot read {path} ({_one_line(e)}): pass readable text files") \
                from e
        split = "val" if i % val_every == val_every - 1 else "train"
        sha = hashlib.sha256(raw).hexdigest()
        lines[split].append(json.dumps({"text": raw.decode("utf-8", errors="replace"),
                                        "file": path.name, "sha256": sha}))
        record.append({"name": path.name, "sha256": sha, "bytes": len(raw), "split": split})
    # The writing rule (smolgpt/files.py): these files are replaced only in a folder whose
    # sources.json this function wrote; it is written first, so that a call stopped before the
    # end leaves a folder the next call knows as its own.
    from .files import refuse_strangers
    ours = _written_by_prepare_text_files(out / SOURCES)
    refuse_strangers([out / SOURCES, *(out / "source" / f"{s}.jsonl" for s in lines)],
                     lambda p: ours, force_hint="give prepare_text_files another folder")
    sources = {"val_every": val_every, "rule": f"file i is val iff i % {val_every} == "
               f"{val_every - 1}", "folder": str(files[0].parent), "files": record}
    write_atomic(out / SOURCES, lambda f: f.write((json.dumps(sources, indent=1) + "\n").encode()))
    for split, rows in lines.items():
        payload = ("\n".join(rows) + "\n").encode()
        target = out / "source" / f"{split}.jsonl"
        if not target.is_file() or target.read_bytes() != payload:     # unchanged: keep it
            write_atomic(target, lambda f: f.write(payload))
    manifest = prepare(out, train_glob=str(out / "source" / "train.jsonl"),
                       val_glob=str(out / "source" / "val.jsonl"), verbose=verbose)
    return {**manifest, "files": record}


def _written_by_prepare_text_files(path: Path) -> bool:
    """Whether a sources.json is one prepare_text_files wrote (an object with its "rule" and
    "files")."""
    try:
        m = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return False
    return isinstance(m, dict) and all(k in m for k in ("val_every", "rule", "files"))


# ---------------------------------------------------------------------------------------------
# Step 4: read
# ---------------------------------------------------------------------------------------------

def read_manifest(out_dir=None, tokenizer: str = ENCODING) -> dict | None:
    """The manifest of the prepared data in out_dir (default data_dir(tokenizer)), or None."""
    return _read_manifest(Path(out_dir) if out_dir is not None else data_dir(tokenizer),
                          tokenizer)


def load_splits(out_dir=None, tokenizer: str = ENCODING) -> tuple[dict[str, np.ndarray], dict]:
    """Both splits as (N,) uint16 read-only memmaps, and the manifest; each file checked once.

    Uses whatever out_dir holds if its files match the manifest (whatever the env vars say:
    call prepare() to change the source); re-makes a damaged .bin from the manifest's own
    source; prepares with the defaults (env vars, else online C4) when there is nothing yet.
    """
    out = Path(out_dir) if out_dir is not None else data_dir(check_tokenizer(tokenizer))
    old = _read_manifest(out, tokenizer)
    if old is not None:
        manifest = _prepare(out, old["source"], old, False, False, tokenizer)
    else:
        manifest = prepare(out, tokenizer=tokenizer)
    splits = {s: np.memmap(out / manifest["splits"][s]["file"], dtype=DTYPE, mode="r")
              for s in SPLITS}
    return splits, manifest


def load_tokens(split: str, out_dir=None, tokenizer: str = ENCODING) -> np.ndarray:
    """(N,) uint16 read-only memmap of one split ("train" or "val"); see load_splits."""
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}; use 'train' or 'val'")
    return load_splits(out_dir, tokenizer)[0][split]


# ---------------------------------------------------------------------------------------------
# Step 5: batches
# ---------------------------------------------------------------------------------------------

def check_fits(tokens: np.ndarray, block_size: int, what: str = "the token array") -> int:
    """N = len(tokens), after checking that one window of block_size + 1 tokens fits."""
    N = len(tokens)
    if block_size < 1:
        raise DataError(f"block_size={block_size}; use a block_size of at least 1")
    if N < block_size + 1:
        fix = (f"use a block_size <= {N - 1} (--block-size) or prepare more documents"
               if N >= 2 else "prepare more documents (--max-docs)")
        raise DataError(f"{what} has only {N} tokens, too few for block_size={block_size} (a "
                        f"window needs block_size + 1 = {block_size + 1}); {fix}")
    return N


def _windows(tokens: np.ndarray, starts: np.ndarray, block_size: int):
    """Windows of T+1 tokens at `starts` (n,) -> x, y (n, T) int64, y one token ahead of x."""
    idx = starts[:, None] + np.arange(block_size + 1)                    # (n, T+1)
    windows = np.array(tokens[idx], dtype=np.int64)                      # (n, T+1), a copy
    return np.ascontiguousarray(windows[:, :-1]), np.ascontiguousarray(windows[:, 1:])


def get_batch(tokens: np.ndarray, batch_size: int, block_size: int,
              rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """tokens (N,) -> x, y (B, T) int64, B random windows; y[b, t] = x[b, t + 1] = next token.

    Window starts are uniform over 0..N-T-1, so every window of T+1 tokens can be drawn and the
    same rng state always gives the same batch. Windows cross document boundaries freely: the
    EOT between documents teaches the model where one ends.
    """
    N = check_fits(tokens, block_size)
    starts = rng.integers(0, N - block_size, size=batch_size)            # (B,) in [0, N-T-1]
    return _windows(tokens, starts, block_size)


def eval_windows(tokens: np.ndarray, n_windows: int,
                 block_size: int) -> tuple[np.ndarray, np.ndarray]:
    """tokens (N,) -> x, y (n_windows, T) int64: a FIXED set of windows for validation loss.

    Starts are evenly spaced from 0 to N-T-1 (the last window ends at the last token), so
    the set spans the whole split and is the same on every call. They do not overlap when
    n_windows * (T + 1) <= N; asking for more is allowed and makes them overlap.
    """
    N = check_fits(tokens, block_size)
    starts = np.linspace(0, N - block_size - 1, n_windows).astype(np.int64)   # (n,)
    return _windows(tokens, starts, block_size)
