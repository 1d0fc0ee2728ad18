"""A failed step leaves nothing in the way, and every message names its file (issue 36).

Each case is tried as a user would meet it, and must end as the README promises for bad input:
exit status 2, one line naming the file or option at fault, nothing of the user's replaced. And
the retry, once the cause is fixed, must work without --force or --overwrite:
  - `train --init-from DIR/checkpoint.npz --out DIR` would replace its own base: refused first;
  - a `prepare` that fails (a bad validation file, a write stopped midway) leaves no token files
    without a manifest, and an earlier good preparation untouched;
  - a checkpoint write stopped by the file-size limit (RLIMIT_FSIZE, in a real process) names
    the run and the file, and the run started again replaces the log it left;
  - exporting a byte-level model, a --prompt that is not UTF-8, a results record with a cut line,
    a run log cut short then resumed;
  - the resume command printed after a signal pastes into a shell as one argument per word.
"""

from __future__ import annotations

import errno
import json
import os
import resource
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_cli import DOCS, TINY_FLAGS, jsonl, run, snapshot, the_error_line
from test_train import start_cli_run, wait_for_steps

from smolgpt import checkpoint as ckpt
from smolgpt import data as data_mod
from smolgpt.cli import STOPPED
from smolgpt.files import CannotWrite, write_atomic

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.usefixtures("one_blas_thread")


def copy_of_run(finished_run: Path, where: Path) -> Path:
    return Path(shutil.copytree(finished_run, where))


def train_argv(data_dir, out, *flags) -> list:
    return ["train", "--data-dir", data_dir, "--out", out, "--steps", "2", *TINY_FLAGS, *flags]


# --- a run never destroys its own base ---------------------------------------------------------

@pytest.mark.parametrize("spelling", ["plain", "dot-dot", "relative", "through a symlinked folder"])
@pytest.mark.parametrize("overwrite", [False, True], ids=["", "--overwrite"])
def test_init_from_the_checkpoint_it_would_write_is_refused(spelling, overwrite, finished_run,
                                                            prepared_data_dir, tmp_path, capsys,
                                                            monkeypatch):
    base = copy_of_run(finished_run, tmp_path / "base")
    out = {"plain": base, "dot-dot": base / ".." / "base", "relative": Path("base"),
           "through a symlinked folder": tmp_path / "link"}[spelling]
    if spelling == "through a symlinked folder":
        os.symlink(base, tmp_path / "link")
    monkeypatch.chdir(tmp_path)
    before = snapshot(base)
    rc, _, err = run(train_argv(prepared_data_dir, out, "--method", "lora", "--init-from",
                                base / "checkpoint.npz", *(["--overwrite"] if overwrite else [])),
                     capsys)
    line = the_error_line(err)
    assert rc == 2, line
    for words in ("--init-from", "checkpoint.npz", "would write", "choose another --out"):
        assert words in line, line
    assert snapshot(base) == before                       # its weights, log: byte for byte
    ckpt.load_params(base / "checkpoint.npz")             # and still a model


def test_a_run_that_keeps_its_base_elsewhere_still_starts(finished_run, prepared_data_dir,
                                                          tmp_path, capsys):
    """The refusal is about one file: a run in the base's folder's sibling trains, and loads."""
    base = copy_of_run(finished_run, tmp_path / "base")
    rc, _, err = run(train_argv(prepared_data_dir, tmp_path / "lora", "--method", "lora",
                                "--init-from", base / "checkpoint.npz"), capsys)
    assert rc == 0, err
    ckpt.load_params(tmp_path / "lora" / "checkpoint.npz")


def test_train_called_from_python_refuses_it_too(finished_run, prepared_data_dir, tmp_path):
    from smolgpt.methods import MethodSpec
    from smolgpt.train import TrainConfig, train
    from test_cli import TINY
    base = copy_of_run(finished_run, tmp_path / "base")
    cfg = TrainConfig(gpt=TINY, method=MethodSpec("lora"), steps=1, batch_size=2, eval_windows=4,
                      out=str(base), data_dir=str(prepared_data_dir), sample_tokens=0,
                      init_from=str(base / "checkpoint.npz"))
    before = snapshot(base)
    with pytest.raises(ValueError, match="--init-from .* is the checkpoint this run would write"):
        train(cfg, progress=False, verbose=False)
    assert snapshot(base) == before


# --- prepare: a failure leaves nothing in the way ------------------------------------------------

def _docs(tmp_path, name, content: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


def test_a_failed_prepare_then_the_fixed_retry_needs_no_force(tmp_path, capsys, gpt2_encoding,
                                                              no_progress_bars):
    good, bad = _docs(tmp_path, "train.jsonl", DOCS), _docs(tmp_path, "val.jsonl", b"not json\n")
    d = tmp_path / "d"
    argv = ["prepare", "--data-dir", d, "--train-glob", good, "--val-glob", bad]
    rc, _, err = run(argv, capsys)
    assert rc == 2 and "val.jsonl" in the_error_line(err)
    assert not d.exists() or not any(d.iterdir())         # no token file without its manifest
    bad.write_bytes(jsonl([{"text": "A held-out document."}] * 3))        # the user fixes it
    rc, out, err = run(argv, capsys)
    assert rc == 0, err
    m = json.loads((d / "manifest.json").read_text())
    assert m["splits"]["val"]["documents"] == 3 and "unfinished" not in m


def test_a_failed_prepare_leaves_an_earlier_preparation_untouched(prepared_data_dir, tmp_path,
                                                                  capsys, no_progress_bars):
    data_copy = Path(shutil.copytree(prepared_data_dir, tmp_path / "data"))
    before = snapshot(data_copy)
    good = _docs(tmp_path, "train.jsonl", DOCS)
    bad = _docs(tmp_path, "val.jsonl", jsonl([{"text": "fine"}]) + b'{"text": "cut')
    rc, _, err = run(["prepare", "--data-dir", data_copy, "--train-glob", good, "--val-glob", bad],
                     capsys)
    assert rc == 2 and "val.jsonl line 2 is not JSON" in the_error_line(err)
    assert snapshot(data_copy) == before


@pytest.mark.parametrize("stopped_at", ["train.bin", "val.bin", "manifest.json"])
def test_a_prepare_whose_write_is_stopped_is_redone_by_the_next(stopped_at, tmp_path, capsys,
                                                                 monkeypatch, gpt2_encoding,
                                                                 no_progress_bars):
    """A full disk (or Ctrl-C) between two files: what is left is known as smolgpt's, and the
    next prepare re-makes it without --force, with a note."""
    good = _docs(tmp_path, "train.jsonl", DOCS)
    val = _docs(tmp_path, "val.jsonl", jsonl([{"text": "A held-out document."}] * 3))
    d = tmp_path / "d"
    real = data_mod.write_atomic
    writes = []

    def full_disk(path, write, *args, **kwargs):
        writes.append(Path(path).name)
        if Path(path).name == stopped_at and writes.count(stopped_at) == 1 + (
                stopped_at == "manifest.json"):       # the manifest's second write is the last
            raise CannotWrite(path, OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))
        return real(path, write, *args, **kwargs)

    monkeypatch.setattr(data_mod, "write_atomic", full_disk)
    argv = ["prepare", "--data-dir", d, "--train-glob", good, "--val-glob", val]
    rc, _, err = run(argv, capsys)
    line = the_error_line(err)
    assert rc == 2 and f"could not write {d / stopped_at}" in line and "disk is full" in line
    monkeypatch.setattr(data_mod, "write_atomic", real)
    rc, out, err = run(argv, capsys)
    assert rc == 0, err
    assert "did not finish; preparing afresh" in out
    assert data_mod.read_manifest(d)["splits"]["train"]["documents"] > 0


def test_a_stopped_prepare_is_finished_from_its_own_source_by_the_next_reader(
        tmp_path, monkeypatch, gpt2_encoding, no_progress_bars, capsys):
    """Training reads the folder with nothing asked: the claim says which source was being
    prepared, so that one is made, not the online C4 (no env vars here)."""
    good = _docs(tmp_path, "train.jsonl", DOCS)
    val = _docs(tmp_path, "val.jsonl", jsonl([{"text": "A held-out document."}] * 3))
    d = tmp_path / "d"
    real = data_mod.write_atomic

    def full_disk(path, write, *args, **kwargs):
        if Path(path).name == "val.bin":
            raise CannotWrite(path, OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))
        return real(path, write, *args, **kwargs)

    with monkeypatch.context() as m:
        m.setattr(data_mod, "write_atomic", full_disk)
        with pytest.raises(CannotWrite):
            data_mod.prepare(d, train_glob=str(good), val_glob=str(val), verbose=False)
    for var in ("SMOLGPT_C4_FILES", "SMOLGPT_C4_VAL_FILES"):
        monkeypatch.delenv(var, raising=False)
    splits, manifest = data_mod.load_splits(d)
    assert manifest["source"]["val_files"][0]["path"] == str(val)
    assert manifest["splits"]["val"]["documents"] == 3 and len(splits["val"]) > 0


# --- a write the system stops names the file ----------------------------------------------------

def test_write_atomic_names_the_file_and_leaves_no_temporary(tmp_path):
    def no_space(f):
        f.write(b"partial")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    target = tmp_path / "x.bin"
    with pytest.raises(CannotWrite) as e:
        write_atomic(target, no_space)
    assert str(e.value).startswith(f"could not write {target}") and "disk is full" in str(e.value)
    assert isinstance(e.value, OSError) and e.value.errno == errno.ENOSPC
    assert list(tmp_path.iterdir()) == []


def test_a_file_size_limit_names_the_run_and_file_and_the_retry_needs_no_overwrite(
        prepared_data_dir, tmp_path):
    """A real process under RLIMIT_FSIZE (as `ulimit -f` sets it): Python ignores SIGXFSZ, so the
    checkpoint's write fails with EFBIG. One line naming the run, the file and the limit; no
    temporary file left; then, the limit lifted, the same command starts the run again."""
    out = tmp_path / "my run"
    cmd = [sys.executable, "-m", "smolgpt.cli", *map(str, train_argv(prepared_data_dir, out))]
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}

    def limit():                                       # the log fits, the 9.6 MB checkpoint not
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))

    p = subprocess.run(cmd, env=env, preexec_fn=limit, capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 2, p.stderr
    line = the_error_line(p.stderr)
    for words in (f"the run in {out}", f"could not write {out / 'checkpoint.npz'}",
                  "File too large", "ulimit -f", "no checkpoint had been written yet"):
        assert words in line, line
    assert sorted(f.name for f in out.iterdir()) == ["log.jsonl"]     # no .tmp, no lock
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert f"note: replacing {out / 'log.jsonl'}" in p.stdout
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["event"] for r in log].count("start") == 1        # one run's log, not two
    ckpt.load(out / "checkpoint.npz")


def test_a_log_that_is_not_a_failed_start_is_still_refused(prepared_data_dir, tmp_path, capsys,
                                                           finished_run):
    """What a failed start may replace is narrow: a log beside a checkpoint (a run), or one that
    does not begin with smolgpt's start record, is refused as before."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "log.jsonl").write_bytes(jsonl([{"event": "resume", "step": 3}]))
    before = snapshot(out)
    rc, _, err = run(train_argv(prepared_data_dir, out), capsys)
    assert rc == 2 and "log.jsonl already exists" in the_error_line(err)
    assert snapshot(out) == before


# --- messages that name what is wrong -----------------------------------------------------------

@pytest.fixture(scope="module")
def byte_checkpoint(tmp_path_factory) -> Path:
    from smolgpt.methods import MethodSpec, build
    from smolgpt.model import GPTConfig
    from smolgpt.optim import adamw_init
    gpt = GPTConfig(n_layer=1, n_head=2, n_embd=16, block_size=32, vocab_size=257,
                    tokenizer="bytes")
    spec = MethodSpec("full")
    trainables = build(spec, gpt).init()
    path = tmp_path_factory.mktemp("bytes") / "checkpoint.npz"
    ckpt.save(path, trainables, adamw_init(trainables),
              {"model": gpt.to_dict(), "method": spec.to_dict(), "step": 0})
    return path


def test_export_of_a_byte_model_names_the_checkpoint_and_what_can_be(byte_checkpoint, tmp_path,
                                                                      capsys):
    rc, _, err = run(["export", byte_checkpoint, tmp_path / "hf"], capsys)
    line = the_error_line(err)
    assert rc == 2
    for words in (f"cannot export {byte_checkpoint}", "byte-level", "GPT-2's BPE",
                  "every preset but tiny-bytes"):
        assert words in line, line
    assert not (tmp_path / "hf").exists()


@pytest.mark.parametrize("prompt, what", [("caf\udce9", "byte 0xe9 at character 4"),
                                          ("\udcff\udcfe", "byte 0xff at character 1")])
def test_a_prompt_that_is_not_utf8_names_prompt(prompt, what, byte_checkpoint, finished_run,
                                                capsys):
    """Python hands a command line's undecodable bytes over as lone surrogates; the byte model
    (and GPT-2's) would fail on them deep inside the encoder."""
    for model in (byte_checkpoint, finished_run / "checkpoint.npz"):
        rc, _, err = run(["sample", model, "--prompt", prompt, "--tokens", "2"], capsys)
        line = the_error_line(err)
        assert rc == 2 and "--prompt is not UTF-8 text" in line and what in line, line


def test_a_prompt_in_latin1_from_a_real_shell(byte_checkpoint):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO),
                                                        os.environ.get("PYTHONPATH", "")])}
    p = subprocess.run([os.fsencode(sys.executable), b"-m", b"smolgpt.cli", b"sample",
                        os.fsencode(byte_checkpoint), b"--prompt", "café".encode("latin-1")],
                       env=env, capture_output=True, timeout=120)
    assert p.returncode == 2
    assert "--prompt is not UTF-8 text (byte 0xe9" in the_error_line(p.stderr.decode())


# --- one reader of results records, one of run logs ---------------------------------------------

def _results_with(tmp_path, damage) -> Path:
    results = tmp_path / "results"
    results.mkdir()
    for name in ("09_long_race.md", "09_long_race.jsonl"):
        shutil.copy(REPO / "chapters" / "results" / name, results / name)
    record = results / "09_long_race.jsonl"
    lines = record.read_bytes().splitlines()
    lines[4] = damage(lines[4])
    record.write_bytes(b"\n".join(lines) + b"\n")
    return results


@pytest.mark.parametrize("damage, words", [
    (lambda line: line[:len(line) // 2], "line 5 is not a run record (not JSON"),
    (lambda line: line.replace(b'"final"', b'"finale"'), "line 5 is not a run record (no valid "
                                                          "'final')"),
    (lambda line: b"[1, 2]", "line 5 is not a run record (a JSON list)"),
    (lambda line: line.replace(b"{", b"{\xe9", 1), "line 5 is not UTF-8"),
], ids=["cut", "a field renamed", "not an object", "not UTF-8"])
def test_a_damaged_committed_record_names_its_file_and_line(damage, words, tmp_path):
    """committed_finding (chapters 05, 07, 08 print it) reads the long race's record through
    runs.Record, as the runner does."""
    from smolgpt.companions.ch09_long_race import committed_finding
    from smolgpt.experiments.runs import Record
    results = _results_with(tmp_path, damage)
    for read in (lambda: committed_finding(results), lambda: Record(
            results / "09_long_race.jsonl").runs()):
        with pytest.raises(ValueError) as e:
            read()
        assert str(e.value).startswith(str(results / "09_long_race.jsonl")) and words in \
            str(e.value), e.value
        assert "\n" not in str(e.value)


def test_every_committed_record_reads(tmp_path):
    from smolgpt.experiments.runs import Record
    for path in sorted((REPO / "chapters" / "results").glob("*.jsonl")):
        lines = Record(path).lines()
        assert lines and len(Record(path).runs()) <= len(lines)


START = {"event": "start", "method": "full", "n_trainable": 3312}


def test_a_log_cut_short_then_resumed_still_reads(tmp_path):
    """A run whose log line was cut (a full disk, kill -9) and then resumed: the reader skips
    the cut line; a bad line anywhere else is still an error naming the file and line."""
    from smolgpt.experiments.coefficients import coef_trajectory
    from smolgpt.experiments.figures import read_log
    step = {"event": "step", "step": 1, "coef": [0.5]}
    ev = {"event": "eval", "step": 1, "tokens": 32, "val_loss": 9.0}
    resumed = {"event": "resume", "step": 1, "checkpoint": "x"}
    log = tmp_path / "log.jsonl"
    log.write_bytes(jsonl([START, step, ev]) + b'{"event": "st\n' +
                    jsonl([resumed, {**step, "step": 2, "coef": [0.7]},
                           {**ev, "step": 2, "tokens": 64}]))
    assert read_log(log)["evals"] == [(32, 9.0), (64, 9.0)]
    steps, coefs = coef_trajectory(log)
    assert list(steps) == [1, 2] and np.allclose(coefs[:, 0], [0.5, 0.7])
    log.write_bytes(jsonl([START, step]) + b'{"event": "st\n' + jsonl([ev]))
    for read in (read_log, coef_trajectory):
        with pytest.raises(ValueError, match=r"log.jsonl line 3 is not JSON"):
            read(log)


def test_a_resumed_log_starts_on_a_line_of_its_own(finished_run, prepared_data_dir, tmp_path,
                                                   capsys):
    run_dir = copy_of_run(finished_run, tmp_path / "run")
    with open(run_dir / "log.jsonl", "ab") as f:
        f.write(b'{"event": "step", "st')                # the write a full disk cut
    rc, _, err = run(["train", "--resume", run_dir / "checkpoint.npz", "--steps", "4",
                      "--data-dir", prepared_data_dir, "--no-progress"], capsys)
    assert rc == 0, err
    lines = (run_dir / "log.jsonl").read_text().splitlines()
    cut = lines.index('{"event": "step", "st')
    assert json.loads(lines[cut + 1])["event"] == "resume"
    from smolgpt.experiments.figures import read_log
    assert read_log(run_dir / "log.jsonl")["evals"][-1][0] == 4 * 2 * 16


# --- the printed resume command ---------------------------------------------------------------

def test_the_resume_command_after_a_signal_pastes_into_a_shell(prepared_data_dir, tmp_path):
    """A folder with a space and a quote in its name: the printed command, given to a real
    shell, passes the checkpoint's path as one argument."""
    out = tmp_path / "my run's folder"
    out.mkdir()
    proc = start_cli_run(prepared_data_dir, out)
    wait_for_steps(proc, out / "log.jsonl", 2)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == STOPPED, stderr
    said = [line for line in stdout.splitlines() if line.startswith("interrupted")]
    command = said[0].split("continue with: ")[1]
    assert shlex.split(command) == ["smolgpt", "train", "--resume", str(out / "checkpoint.npz")]
    argv = subprocess.run(["bash", "-c", f"printf '%s\\n' {command}"], capture_output=True,
                          text=True, check=True).stdout.splitlines()
    assert argv == ["smolgpt", "train", "--resume", str(out / "checkpoint.npz")]


def test_the_other_printed_commands_are_quoted_too(tmp_path, capsys, finished_run):
    from smolgpt.book import serve_command
    site = "/my book/site's"
    assert shlex.split(serve_command(site))[-2:] == ["-d", site]
    # `smolgpt import` prints the commands that sample and score what it wrote
    from smolgpt.hf import export_hf
    hf_dir = export_hf(finished_run / "checkpoint.npz", tmp_path / "hf")
    target = tmp_path / "a b" / "it's.npz"
    rc, out, err = run(["import", hf_dir, target], capsys)
    assert rc == 0, err
    commands = out.split("`")[1::2]
    assert [shlex.split(c)[1] for c in commands] == ["sample", "eval"], out
    for cmd in commands:
        assert shlex.split(cmd)[-1] == str(target), out


def test_the_mpi_resume_command_is_quoted_too():
    from smolgpt.train import resume_command
    assert shlex.split(resume_command("/a b/c'd/checkpoint.npz", 2)) == [
        "mpiexec", "-n", "2", "smolgpt", "train", "--resume", "/a b/c'd/checkpoint.npz"]


def test_prepare_text_files_never_replaces_a_strangers_source(tmp_path, gpt2_encoding,
                                                              monkeypatch):
    """Another writer of the data folder: its source/*.jsonl are replaced only where its own
    sources.json says the folder is its own (written first, so a stopped call leaves that)."""
    files = []
    for i in range(3):
        files.append(tmp_path / f"doc{i}.txt")
        files[-1].write_text(f"A small text file, number {i}.")
    out = tmp_path / "d"
    (out / "source").mkdir(parents=True)
    mine = out / "source" / "train.jsonl"
    mine.write_bytes(b'{"text": "the user\'s own"}\n')
    with pytest.raises(Exception, match="train.jsonl already exists and smolgpt did not write it"):
        data_mod.prepare_text_files(out, files, val_every=3, verbose=False)
    assert mine.read_bytes() == b'{"text": "the user\'s own"}\n'
    mine.unlink()

    def stopped(*args, **kwargs):
        raise KeyboardInterrupt                   # Ctrl-C once the sources are written
    with monkeypatch.context() as m:
        m.setattr(data_mod, "prepare", stopped)
        with pytest.raises(KeyboardInterrupt):
            data_mod.prepare_text_files(out, files, val_every=3, verbose=False)
    m = data_mod.prepare_text_files(out, files, val_every=3, verbose=False)   # the retry
    assert [f["split"] for f in m["files"]] == ["train", "train", "val"]
