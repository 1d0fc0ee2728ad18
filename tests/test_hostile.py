"""A new user's hostile but ordinary inputs (issue 11), beyond the table in test_cli.py.

The AUDIT table holds one case per input, across `prepare`, `train`, `sample`, `plot`, `bench`
and hand-edited or foreign checkpoints. Each must give what the README promises for bad input:
exit status 2, one line on stderr naming the flag or file at fault (the words listed), no
traceback, and no byte changed in another run's folder or in the files handed in. The chapters'
environment variables get the same rule, run as a user runs a chapter.

Then what the audit found missing: a run folder has one writer (a lock, stale locks taken over),
resume writes next to the checkpoint it is given, a finished run can keep its weights only, and
files the project writes are readable like any other (0644 less the umask).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from test_cli import DOCS, TINY, TINY_FLAGS, Case, jsonl, run, snapshot, the_error_line

from smolgpt import checkpoint as ckpt
from smolgpt import memory as memory_mod
from smolgpt.files import FolderInUse, RunLock, write_atomic
from smolgpt.train import TrainConfig, TrainingDiverged, train

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.usefixtures("one_blas_thread")


@dataclass
class HCase(Case):
    held: list = field(default_factory=list)       # locks a case holds while the command runs

    def forged(self, name, meta=None, arrays=None) -> Path:
        """A copy of the finished run's checkpoint with its metadata or arrays edited by hand."""
        with np.load(self.ckpt) as z:
            raw = {k: z[k] for k in z.files}
        m = json.loads(raw["meta"].tobytes())
        if meta is not None:
            m = meta(m)
        if arrays is not None:
            arrays(raw)
        raw["meta"] = np.frombuffer(json.dumps(m).encode(), dtype=np.uint8)
        path = self.tmp / name
        np.savez(path, **raw)
        return path

    def weights_only(self) -> Path:
        trainables, _, meta = ckpt.load(self.ckpt)
        path = self.tmp / "final.npz"
        ckpt.save(path, trainables, None, meta)
        return path

    def log(self, name, content: bytes) -> Path:
        return self.file(name, content)


def _set(d, key, value):
    d[key] = value
    return d


def _model(**changes):
    return lambda m: {**m, "model": {**m["model"], **changes}}


def _held(c: HCase, folder: Path):
    c.held.append(RunLock(folder, note=False).acquire())
    return c.train("--out", folder)


def _copy_of_run_ckpt(c: HCase) -> Path:
    copy = c.tmp / "copy" / "checkpoint.npz"
    copy.parent.mkdir()
    shutil.copy(c.ckpt, copy)
    return copy


def _little_memory(c: HCase):
    c.monkeypatch.setattr(memory_mod, "available_bytes", lambda: 5_000_000)
    return c.train()


W = "trainables/h.0.attn.c_attn.weight"
START = {"event": "start", "method": "full", "n_trainable": 3312}
EVAL = {"event": "eval", "step": 2, "tokens": 64, "val_loss": 10.8}

AUDIT = [
    # sweep: a grid that is not one
    ("sweep: a word in the grid", lambda c: ["sweep", "--data-dir", c.data, "--grid", "1e-3,fast"],
     ["--grid", "comma-separated numbers"]),
    ("sweep: a zero rate", lambda c: ["sweep", "--data-dir", c.data, "--grid", "0,1e-3,1e-2"],
     ["--grid", "positive"]),
    ("sweep: no seeds", lambda c: ["sweep", "--data-dir", c.data, "--grid", "1e-3,3e-3,1e-2",
                                   "--seeds", "0"], ["--seeds must be 1 or more"]),
    # train: values their type allows but their meaning does not
    ("train: absurd batch size", lambda c: c.train("--batch-size", "100000000"),
     ["a training step needs about", "TB", "available", "lower --batch-size (now 100000000)"]),
    ("train: absurd width", lambda c: c.train("--n-embd", str(2**22), "--n-head", "1"),
     ["a training step needs about", "pick a smaller model"]),
    ("train: a machine with 5 MB free", _little_memory,
     ["needs about 19", "machine has 5.0 MB available", "--batch-size"]),
    ("train: alpha nan", lambda c: c.train("--method", "lora", "--rank", "2", "--alpha", "nan"),
     ["--alpha", "must be a positive finite number", "nan"]),
    ("train: alpha inf", lambda c: c.train("--method", "lora", "--rank", "2", "--alpha", "inf"),
     ["--alpha", "positive finite", "inf"]),
    ("train: alpha zero", lambda c: c.train("--method", "lora", "--rank", "2", "--alpha", "0"),
     ["--alpha", "positive finite", "got 0"]),
    ("train: alpha negative", lambda c: c.train("--method", "lora", "--alpha", "-3"),
     ["--alpha", "got -3"]),
    ("train: lr that overflows to inf", lambda c: c.train("--lr", "1e400"),
     ["lr must be a positive finite number", "inf", "fix --lr"]),
    ("train: min lr ratio nan", lambda c: c.train("--min-lr-ratio", "nan"),
     ["min_lr_ratio must be between 0 and 1", "fix --min-lr-ratio"]),
    ("train: negative sample tokens", lambda c: c.train("--sample-tokens", "-1"),
     ["sample_tokens must be an integer >= 0", "fix --sample-tokens"]),
    ("train: seed beyond 2**32", lambda c: c.train("--seed", str(2**32)),
     ["seed must be at most 2**32 - 1", "fix --seed"]),
    ("train: method seed beyond 2**32", lambda c: c.train("--method-seed", str(10**30)),
     ["--method-seed", "at most 2**32 - 1"]),
    ("train: eval every negative", lambda c: c.train("--eval-every", "-1"),
     ["eval_every must be a positive integer", "fix --eval-every"]),
    ("train: checkpoint every zero", lambda c: c.train("--checkpoint-every", "0"),
     ["checkpoint_every must be a positive integer", "fix --checkpoint-every"]),
    ("train: a folder another run holds", lambda c: _held(c, c.tmp / "busy"),
     ["busy is in use by another run", f"pid {os.getpid()}", "choose another --out"]),
    # resume
    ("resume: into another run's folder", lambda c: c.resume(_copy_of_run_ckpt(c), "--out", c.run),
     ["holds another run's checkpoint", "leave out --out", "--overwrite"]),
    ("resume: a weights-only checkpoint", lambda c: c.resume(c.weights_only()),
     ["final.npz holds the weights only", "cannot be resumed", "sample or evaluate it"]),
    ("resume: NaN in a trainable (not a divergence)",
     lambda c: c.resume(c.forged("nan.npz", arrays=lambda a: a[W].__setitem__((0, 0), np.nan))),
     ["nan.npz", "h.0.attn.c_attn.weight holds NaN or infinite values", "edited or is damaged"]),
    ("resume: step is text", lambda c: c.resume(c.forged("s.npz", meta=lambda m: _set(m, "step",
                                                                                  "3"))),
     ["s.npz has a bad metadata field 'step'", "'3', expected a count of steps"]),
    ("resume: model missing", lambda c: c.resume(c.forged("m.npz", meta=lambda m: {
        k: v for k, v in m.items() if k != "model"})),
     ["m.npz has a bad metadata field 'model' (missing)"]),
    ("resume: width as text", lambda c: c.resume(c.forged("w.npz", meta=_model(n_embd="16"))),
     ["bad metadata field 'model'", "n_embd must be a positive integer"]),
    ("resume: unknown method", lambda c: c.resume(c.forged("u.npz", meta=lambda m: _set(
        m, "method", {**m["method"], "name": "magic"}))),
     ["bad metadata field 'method'", "unknown method 'magic'"]),
    ("resume: keys not a list", lambda c: c.resume(c.forged("k.npz", meta=lambda m: _set(
        m, "keys", "wte.weight"))), ["bad metadata field 'keys'"]),
    ("resume: negative Adam step", lambda c: c.resume(c.forged("t.npz", meta=lambda m: _set(
        m, "adam_t", -1))), ["bad metadata field 'adam_t'", "-1"]),
    ("resume: a future format", lambda c: c.resume(c.forged("f.npz", meta=lambda m: _set(
        m, "format", "smolgpt-checkpoint-2"))), ["written by a newer smolgpt", "upgrade smolgpt"]),
    ("resume: metadata that is a list", lambda c: c.resume(c.forged("l.npz", meta=lambda m: [m])),
     ["l.npz is not a smolgpt checkpoint", "metadata is a list"]),
    ("resume: a transposed array", lambda c: c.resume(c.forged("tr.npz", arrays=lambda a: _set(
        a, W, np.ascontiguousarray(a[W].T)))),
     ["array trainables/h.0.attn.c_attn.weight is float32 (48, 16)", "need float32 (16, 48)"]),
    ("resume: float64 arrays", lambda c: c.resume(c.forged("d.npz", arrays=lambda a: _set(
        a, W, a[W].astype(np.float64)))), ["is float64 (16, 48)", "need float32"]),
    ("resume: another vocabulary than its arrays",
     lambda c: c.resume(c.forged("v.npz", meta=_model(vocab_size=1000))),
     ["trainables/wte.weight is float32 (50257, 16)", "need float32 (1000, 16)"]),
    ("resume: an array it does not name",
     lambda c: c.resume(c.forged("x.npz", meta=lambda m: _set(m, "keys", m["keys"] + ["extra"]))),
     ["missing trainables/extra"]),
    ("resume: a key its method does not have", lambda c: c.resume(c.forged(
        "y.npz", meta=lambda m: _set(m, "keys", m["keys"] + ["extra"]),
        arrays=lambda a: a.update({k + "extra": np.zeros(1, np.float32)
                                   for k in ("trainables/", "adam_m/", "adam_v/")}))),
     ["does not match its own model and method", "unexpected array 'extra'"]),
    ("resume: a learning rate that is text", lambda c: c.resume(c.forged(
        "lr.npz", meta=lambda m: _set(m, "train", {**m["train"], "lr": "fast"}))),
     ["bad metadata field 'train'", "lr must be a positive finite number"]),
    ("resume: a batch order state that is garbage", lambda c: c.resume(c.forged(
        "rng.npz", meta=lambda m: _set(m, "rng", {"state": 1}))),
     ["rng.npz has a bad metadata field 'rng'"]),
    ("resume: an npz whose meta is numbers",
     lambda c: c.resume(_npz(c, "nums.npz", meta=np.full(8, 255, np.uint8))),
     ["nums.npz has corrupt metadata"]),
    # sample
    ("sample: zero tokens", lambda c: ["sample", c.ckpt, "--tokens", "0"],
     ["--tokens must be at least 1", "got 0"]),
    ("sample: negative tokens", lambda c: ["sample", c.ckpt, "--tokens", "-5"],
     ["--tokens must be at least 1", "-5"]),
    ("sample: temperature nan", lambda c: ["sample", c.ckpt, "--temperature", "nan"],
     ["--temperature must be a finite number >= 0", "nan"]),
    ("sample: temperature inf", lambda c: ["sample", c.ckpt, "--temperature", "inf"],
     ["--temperature must be a finite number", "inf"]),
    ("sample: negative top-k", lambda c: ["sample", c.ckpt, "--top-k", "-3"],
     ["--top-k must be an integer >= 0", "-3"]),
    ("sample: zero samples", lambda c: ["sample", c.ckpt, "--num", "0"],
     ["--num must be at least 1"]),
    ("sample: negative seed", lambda c: ["sample", c.ckpt, "--seed", "-1"],
     ["--seed must be an integer from 0 to"]),
    ("sample: a NaN checkpoint", lambda c: ["sample", c.forged(
        "nan.npz", arrays=lambda a: a[W].__setitem__((1, 1), np.inf))],
     ["holds NaN or infinite values"]),
    ("sample: a folder", lambda c: ["sample", c.run],
     ["is a folder, not a checkpoint", "the checkpoint.npz inside"]),
    # plot
    ("plot: an extension matplotlib cannot write",
     lambda c: ["plot", c.run / "log.jsonl", "--out", c.tmp / "x.xyz"],
     ["--out", "x.xyz", "cannot draw a 'xyz'", ".png"]),
    ("plot: no extension", lambda c: ["plot", c.run / "log.jsonl", "--out", c.tmp / "curves"],
     ["cannot draw a 'file without an extension'"]),
    ("plot: into a missing folder",
     lambda c: ["plot", c.run / "log.jsonl", "--out", c.tmp / "no" / "x.png"],
     ["folder", "does not exist", "create it"]),
    ("plot: a checkpoint, not a log", lambda c: ["plot", c.ckpt],
     ["checkpoint.npz is not a text file", "log.jsonl"]),
    ("plot: an empty log", lambda c: ["plot", c.log("empty.jsonl", b"")],
     ["empty.jsonl has no validation records", "first evaluation"]),
    ("plot: JSON lines of something else", lambda c: ["plot", c.log("f.jsonl", jsonl([{"a": 1}]))],
     ["f.jsonl line 1 is not a smolgpt log record"]),
    ("plot: a broken line in the middle",
     lambda c: ["plot", c.log("b.jsonl", jsonl([START]) + b"{oops\n" + jsonl([EVAL]))],
     ["b.jsonl line 2 is not JSON"]),
    ("plot: an eval record without numbers",
     lambda c: ["plot", c.log("e.jsonl", jsonl([START, {**EVAL, "val_loss": "low"}]))],
     ["e.jsonl line 2 is not a smolgpt log record"]),
    ("plot: a run that never evaluated", lambda c: ["plot", c.log("s.jsonl", jsonl([START]))],
     ["s.jsonl has no validation records"]),
    # prepare
    ("prepare: zero documents", lambda c: ["prepare", "--data-dir", c.tmp / "d", "--max-docs", "0"],
     ["--max-docs must be at least 1", "got 0"]),
    ("prepare: negative documents",
     lambda c: ["prepare", "--data-dir", c.tmp / "d", "--max-docs", "-5"], ["--max-docs", "-5"]),
    ("prepare: a glob of folders", lambda c: ["prepare", "--data-dir", c.tmp / "d", "--train-glob",
                                              _folders(c)],
     ["train_glob=", "matches only folders", "the JSON-lines files inside"]),
    ("prepare: bad JSON on line 5", lambda c: _prepare(c, _bad_line(c, 5, b'{"text": "cut')),
     ["bad.jsonl line 5 is not JSON", "fix or remove that line"]),
    ("prepare: a number as text on line 7",
     lambda c: _prepare(c, _bad_line(c, 7, b'{"text": 5}')),
     ["bad.jsonl line 7 has a 'text' of JSON type int", "not strings"]),
    ("prepare: a list on line 3",
     lambda c: _prepare(c, _bad_line(c, 3, b'[1, 2]')),
     ["bad.jsonl has no 'text' field (line 3 has list)"]),
    ("prepare: --data-dir a file",
     lambda c: _prepare(c, _bad_line(c, 0, b""), data_dir=c.file("plain", b"x")),
     ["--data-dir", "plain is a file", "not a folder"]),
    # loaders name the file and what it is (issue 22)
    ("eval: a run's log, not a checkpoint", lambda c: ["eval", c.run / "log.jsonl"],
     ["log.jsonl is not a smolgpt checkpoint", "a run's log.jsonl", "an .npz archive"]),
    ("sample: a single .npy array", lambda c: ["sample", _npy(c)],
     ["w.npy is not a smolgpt checkpoint", "a single NumPy array"]),
    ("prepare: a Latin-1 line",
     lambda c: _prepare(c, _bad_line(c, 3, '{"text": "caf\u00e9"}'.encode("latin-1"))),
     ["bad.jsonl line 3 is not UTF-8 text", "byte 0xe9", "iconv"]),
    ("prepare: a first line that is null (datasets segfaults on it)",
     lambda c: _prepare(c, _bad_line(c, 1, b"null")),
     ["bad.jsonl has no 'text' field (line 1 has NoneType)"]),
    # bench (checked before any timing starts)
    ("bench: zero repeats", lambda c: ["bench", "--repeats", "0"],
     ["--repeats must be at least 1"]),
    ("bench: zero batch", lambda c: ["bench", "--batch-size", "0"],
     ["--batch-size must be at least 1"]),
    ("bench: unknown preset", lambda c: ["bench", "--preset", "huge"],
     ["unknown model preset 'huge'", "tiny"]),
    ("bench: d zero", lambda c: ["bench", "--d", "0"], ["--d must be between 1 and the"]),
    ("bench: d negative", lambda c: ["bench", "--d", "-1"], ["--d must be between 1", "-1"]),
    ("bench: d above D", lambda c: ["bench", "--d", "10000000"],
     ["--d must be between 1 and the 793,344 non-embedding parameters of tiny"]),
]


def _npz(c: HCase, name, **arrays) -> Path:
    path = c.tmp / name
    np.savez(path, **arrays)
    return path


def _npy(c: HCase) -> Path:
    path = c.tmp / "w.npy"
    np.save(path, np.zeros(3, np.float32))
    return path


def _prepare(c: HCase, train_glob, data_dir=None) -> list:
    return ["prepare", "--data-dir", data_dir or c.tmp / "d", "--train-glob", train_glob]


def _folders(c: HCase) -> str:
    (c.tmp / "shards" / "part.json.gz").mkdir(parents=True)
    return str(c.tmp / "shards" / "*")


def _bad_line(c: HCase, n: int, line: bytes) -> Path:
    rows = DOCS.splitlines()
    if n:
        rows[n - 1] = line
    return c.file("bad.jsonl", b"\n".join(rows) + b"\n")


def test_audit_has_at_least_40_cases():
    assert len(AUDIT) >= 40 and len({a[0] for a in AUDIT}) == len(AUDIT)


@pytest.mark.parametrize("make_argv, words", [a[1:] for a in AUDIT], ids=[a[0] for a in AUDIT])
def test_hostile_input_one_line_exit_2_nothing_changed(make_argv, words, prepared_data_dir,
                                                      finished_run, tmp_path, monkeypatch,
                                                      capsys, no_progress_bars):
    case = HCase(prepared_data_dir, tmp_path, finished_run, monkeypatch)
    try:
        argv = make_argv(case)
        run_before, given_before = snapshot(finished_run), snapshot(tmp_path)
        rc, _, err = run(argv, capsys)
    finally:
        for lock in case.held:
            lock.release()
    line = the_error_line(err)
    assert rc == 2, line
    for w in words:
        assert w in line, f"{w!r} not in: {line}"
    assert snapshot(finished_run) == run_before                  # another run's folder: intact
    assert snapshot(tmp_path) == given_before                    # the files handed in: intact
    out = tmp_path / "out"
    assert not (out / "checkpoint.npz").exists() and not (out / "log.jsonl").exists()


# --- the chapters' environment variables --------------------------------------------------------

@pytest.mark.parametrize("var, value, words", [
    ("SMOLGPT_QUICK", "maybe", ["SMOLGPT_QUICK='maybe' is neither on nor off", "set it to 1"]),
    ("SMOLGPT_OUT", "{file}", ["SMOLGPT_OUT=", "is a file, not a folder"]),
    ("SMOLGPT_DATA_DIR", "{file}/data", ["SMOLGPT_DATA_DIR=", "cannot be created or written"]),
    ("SMOLGPT_RUNS", "{file}", ["SMOLGPT_RUNS=", "is a file, not a folder"]),
])
def test_chapter_env_vars_one_line_exit_2(var, value, words, tmp_path):
    plain = tmp_path / "plain"
    plain.write_bytes(b"x")
    env = {**os.environ, "SMOLGPT_QUICK": "1", "SMOLGPT_OUT": str(tmp_path / "out"),
           "MPLBACKEND": "Agg", var: value.format(file=plain)}
    proc = subprocess.run([sys.executable, str(REPO / "chapters" / "02_random_basis.py")],
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0].startswith("02_random_basis.py: error: ")
    for w in words:
        assert w in lines[0], lines[0]
    assert plain.read_bytes() == b"x"


# --- one writer per run folder ----------------------------------------------------------------

def tiny(data_dir, out, **changes) -> TrainConfig:
    base = dict(gpt=TINY, steps=2, batch_size=2, warmup=1, eval_every=2, eval_windows=4,
                out=str(out), data_dir=str(data_dir), sample_tokens=0)
    return TrainConfig(**{**base, **changes})


def lock_is_free(folder: Path) -> bool:
    try:
        RunLock(folder, note=False).acquire().release()
        return True
    except FolderInUse:
        return False


def test_lock_says_who_holds_it_and_is_released_on_every_exit(prepared_data_dir, tmp_path,
                                                              monkeypatch):
    out = tmp_path / "run"
    with RunLock(out, note=False):
        holder = json.loads((out / ".lock").read_text())
        assert holder["pid"] == os.getpid() and holder["host"] and holder["started"]
        with pytest.raises(FolderInUse, match=f"in use by another run .pid {os.getpid()} on "):
            train(tiny(prepared_data_dir, out), progress=False, verbose=False)
    # normal end, then a resume of the same folder in the same process (as the runner does)
    train(tiny(prepared_data_dir, out), progress=False, verbose=False)
    assert lock_is_free(out) and not (out / ".lock").exists()      # a clean release deletes it
    train(tiny(prepared_data_dir, out, steps=3), resume=out / "checkpoint.npz", progress=False,
          verbose=False)
    assert lock_is_free(out)
    # divergence
    with pytest.raises(TrainingDiverged):
        train(tiny(prepared_data_dir, tmp_path / "div", lr=1e30, steps=4, grad_clip=0),
              progress=False, verbose=False)
    assert lock_is_free(tmp_path / "div")
    # an exception while starting, and Ctrl-C while training
    with pytest.raises(ckpt.CheckpointError):
        train(tiny(prepared_data_dir, tmp_path / "bad"), resume=tmp_path / "nope.npz",
              progress=False, verbose=False)
    assert lock_is_free(tmp_path / "bad")
    import smolgpt.train as train_mod

    def ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(train_mod, "lr_at", ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        train(tiny(prepared_data_dir, tmp_path / "int"), progress=False, verbose=False)
    assert lock_is_free(tmp_path / "int")


def test_lock_of_a_killed_run_is_taken_over_with_a_note(prepared_data_dir, tmp_path, capsys):
    out = tmp_path / "run"
    code = ("import os, sys; from smolgpt.files import RunLock; "
            f"RunLock({str(out)!r}).acquire(); os._exit(9)")           # dies holding the lock
    proc = subprocess.run([sys.executable, "-c", code, "smolgpt", "train", "--killed"],
                          cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 9
    left = json.loads((out / ".lock").read_text())
    assert left["pid"] != os.getpid() and "--killed" in left["command"]
    rc, stdout, err = run(["train", "--data-dir", prepared_data_dir, "--out", out, "--steps", "1",
                           *TINY_FLAGS], capsys)
    assert rc == 0, err
    notes = [line for line in stdout.splitlines() if "taking over the lock" in line]
    assert len(notes) == 1 and f"pid {left['pid']}" in notes[0] and "--killed" in notes[0]
    assert not (out / ".lock").exists() and (out / "checkpoint.npz").exists()


def test_two_processes_on_one_folder_second_is_refused(prepared_data_dir, tmp_path):
    out = tmp_path / "run"
    code = ("import sys, time; from smolgpt.files import RunLock; "
            f"lock = RunLock({str(out)!r}).acquire(); print('held', flush=True); "
            "sys.stdin.readline()")
    holder = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        proc = subprocess.run([sys.executable, "-m", "smolgpt.cli", "train", "--data-dir",
                               str(prepared_data_dir), "--out", str(out), *TINY_FLAGS],
                              cwd=REPO, capture_output=True, text=True, timeout=120,
                              env={**os.environ, "OPENBLAS_NUM_THREADS": "1"})
    finally:
        holder.communicate("\n", timeout=30)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and f"pid {holder.pid}" in proc.stderr, proc.stderr
    assert not (out / "log.jsonl").exists() and not (out / "checkpoint.npz").exists()


# --- resume writes next to the checkpoint it is given --------------------------------------------

def test_resume_of_a_copy_continues_next_to_the_copy(prepared_data_dir, finished_run, tmp_path,
                                                     capsys, monkeypatch):
    before = snapshot(finished_run)
    copy = tmp_path / "copy" / "checkpoint.npz"
    copy.parent.mkdir()
    shutil.copy(finished_run / "checkpoint.npz", copy)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)                  # another working directory, a relative path
    rc, stdout, err = run(["train", "--resume", os.path.relpath(copy), "--steps", "4",
                           "--no-progress"], capsys)
    assert rc == 0, err
    assert snapshot(finished_run) == before                  # the original run: not one byte
    assert list(elsewhere.iterdir()) == []                   # nothing in the working directory
    log = [json.loads(line) for line in (copy.parent / "log.jsonl").read_text().splitlines()]
    assert log[0]["event"] == "resume" and log[-1]["event"] == "end" and log[-1]["step"] == 4
    assert ckpt.load(copy)[2]["step"] == 4
    # or where --out says, if it holds no other run
    target = tmp_path / "target"
    rc, _, err = run(["train", "--resume", copy, "--steps", "5", "--out", target,
                      "--no-progress"], capsys)
    assert rc == 0, err
    assert ckpt.load(target / "checkpoint.npz")[2]["step"] == 5
    assert ckpt.load(copy)[2]["step"] == 4


# --- weights only, and readable files -----------------------------------------------------------

def test_final_weights_only_is_a_third_the_size_and_still_samples(prepared_data_dir, tmp_path,
                                                                  capsys):
    full = train(tiny(prepared_data_dir, tmp_path / "full"), progress=False, verbose=False)
    slim = train(tiny(prepared_data_dir, tmp_path / "slim", keep_optimizer=False),
                 progress=False, verbose=False)
    assert 0.30 < slim["checkpoint_bytes"] / full["checkpoint_bytes"] < 0.36
    trainables, adam, meta = ckpt.load(tmp_path / "slim" / "checkpoint.npz")
    assert adam is None and meta["weights_only"] is True
    t_full, _, _ = ckpt.load(tmp_path / "full" / "checkpoint.npz")
    assert all(np.array_equal(trainables[k], t_full[k]) for k in t_full)     # same weights
    rc, out, err = run(["sample", tmp_path / "slim" / "checkpoint.npz", "--tokens", "3"], capsys)
    assert rc == 0 and err == "" and out.startswith("--- sample 1 (full) ---")
    # an interrupted run keeps Adam's moments: it is not finished
    cut = train(tiny(prepared_data_dir, tmp_path / "cut", steps=4, keep_optimizer=False),
                stop_at=2, progress=False, verbose=False)
    assert cut["interrupted"] and ckpt.load(tmp_path / "cut" / "checkpoint.npz")[1] is not None


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_written_files_are_0644_less_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        path = tmp_path / "f.bin"
        write_atomic(path, lambda f: f.write(b"x"))
    finally:
        os.umask(old)
    assert (path.stat().st_mode & 0o777) == 0o644 & ~umask


def test_a_finished_checkpoint_is_readable_by_others(finished_run):
    assert (finished_run / "checkpoint.npz").stat().st_mode & 0o777 == 0o644 & ~_umask()


def _umask() -> int:
    old = os.umask(0)
    os.umask(old)
    return old


def test_every_run_prints_its_memory_estimate(prepared_data_dir, tmp_path, capsys):
    rc, out, err = run(["train", "--data-dir", prepared_data_dir, "--out", tmp_path / "r",
                        "--steps", "1", *TINY_FLAGS], capsys)
    assert rc == 0, err
    line = next(line for line in out.splitlines() if "memory:" in line)
    assert "a step needs about 19" in line and "MB" in line and "available" in line
