"""Nothing a user has is ever replaced (issue 22): every command that writes is run against a
folder that already holds a stranger's file of each name it writes. The command must refuse in
one line (exit status 2, the file named, the way out given), and every byte in the folder must
be as it was. Then the other side of the rule: a command may replace what smolgpt itself wrote
(an earlier export, its own figure, its own data), and `--force` / `--overwrite` replace anything.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from test_cli import TINY_FLAGS, run, the_error_line

from smolgpt import checkpoint as ckpt
from smolgpt.experiments import chapter
from smolgpt.files import RunLock, WouldReplace, describe_file

pytestmark = pytest.mark.usefixtures("one_blas_thread")

STRANGER = b"my own notes, which no program may overwrite\n"
EXPORT_NAMES = ["model.safetensors", "config.json", "vocab.json", "merges.txt",
                "tokenizer_config.json", "special_tokens_map.json", "README.md"]


def tree(folder: Path) -> dict[str, bytes]:
    """Every file under folder (recursively), by relative path: the bytes to compare."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def refused(argv, capsys, folder: Path, name: str) -> str:
    """Run a command that must refuse because of `folder/name`; check nothing in folder
    changed; return the error line."""
    before = tree(folder)
    rc, _, err = run(argv, capsys)
    line = the_error_line(err)
    assert rc == 2, line
    assert name in line and any(way in line for way in ("--force", "--overwrite", "delete",
                                                        "move it away", "move that file away"))
    assert tree(folder) == before
    return line


def stranger(folder: Path, name: str, content: bytes = STRANGER) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


# --- export --------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", EXPORT_NAMES)
def test_export_never_replaces_a_strangers_file(name, finished_run, tmp_path, capsys):
    out = tmp_path / "hf"
    stranger(out, name)
    line = refused(["export", finished_run / "checkpoint.npz", out], capsys, out, name)
    assert "smolgpt did not write it" in line and "text of" in line


def test_export_replaces_its_own_files_and_only_with_force_a_strangers(finished_run, tmp_path,
                                                                       capsys):
    out = tmp_path / "hf"
    stranger(out, "notes.txt")                         # a file of no name export writes: kept
    rc, _, err = run(["export", finished_run / "checkpoint.npz", out], capsys)
    assert rc == 0, err
    assert (out / "notes.txt").read_bytes() == STRANGER
    rc, _, err = run(["export", finished_run / "checkpoint.npz", out], capsys)   # again: ours
    assert rc == 0, err
    (out / "README.md").write_text("# my model\nmy own words\n")       # the user's card now
    refused(["export", finished_run / "checkpoint.npz", out], capsys, out, "README.md")
    rc, _, err = run(["export", finished_run / "checkpoint.npz", out, "--force"], capsys)
    assert rc == 0, err
    assert (out / "README.md").read_text().startswith("---\nlibrary_name: transformers")


# --- import ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def hf_dir(finished_run, tmp_path_factory) -> Path:
    from smolgpt.hf import export_hf
    return export_hf(finished_run / "checkpoint.npz", tmp_path_factory.mktemp("w") / "hf")


def test_import_never_replaces_an_existing_file(hf_dir, finished_run, tmp_path, capsys):
    target = stranger(tmp_path / "runs", "checkpoint.npz")
    line = refused(["import", hf_dir, target], capsys, tmp_path / "runs", "checkpoint.npz")
    assert "already exists" in line
    # a trained run's checkpoint is no less the user's: refused too, and kept
    shutil.copy(finished_run / "checkpoint.npz", target)
    refused(["import", hf_dir, target], capsys, tmp_path / "runs", "checkpoint.npz")
    rc, _, err = run(["import", hf_dir, target, "--force"], capsys)
    assert rc == 0, err
    assert ckpt.load(target)[2]["imported_from"] == str(hf_dir)


# --- plot ------------------------------------------------------------------------------------------

def test_plot_replaces_only_its_own_figure(finished_run, tmp_path, capsys):
    png = stranger(tmp_path, "curves.png")
    log = finished_run / "log.jsonl"
    refused(["plot", log, "--out", png], capsys, tmp_path, "curves.png")
    rc, _, err = run(["plot", log, "--out", png, "--force"], capsys)
    assert rc == 0, err
    assert chapter.is_smolgpt_figure(png)
    rc, _, err = run(["plot", log, "--out", png], capsys)              # its own: replaced
    assert rc == 0, err
    import matplotlib.pyplot as plt
    for fmt in ("pdf", "svg", "eps"):             # the mark is in every format that has metadata
        chapter.save_figure(plt.figure(figsize=(1, 1)), tmp_path / f"c.{fmt}")
        assert chapter.is_smolgpt_figure(tmp_path / f"c.{fmt}")
    folder = tmp_path / "dir.png"
    folder.mkdir()
    line = refused(["plot", log, "--out", folder, "--force"], capsys, tmp_path, "dir.png")
    assert "is a folder" in line


# --- prepare ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["manifest.json", "train.bin", "val.bin"])
def test_prepare_never_replaces_a_strangers_file(name, c4_globs, gpt2_encoding, tmp_path, capsys):
    data = tmp_path / "data"
    stranger(data, name)
    refused(["prepare", "--data-dir", data, "--train-glob", c4_globs[0], "--val-glob",
             c4_globs[1], "--max-docs", "20"], capsys, data, name)


def test_prepare_replaces_its_own_data_and_with_force_a_strangers(c4_globs, gpt2_encoding,
                                                                   tmp_path, capsys):
    data = tmp_path / "data"
    argv = ["prepare", "--data-dir", data, "--train-glob", c4_globs[0], "--val-glob",
            c4_globs[1], "--max-docs", "20"]
    assert run(argv, capsys)[0] == 0
    assert run([*argv[:-1], "10"], capsys)[0] == 0                   # another request: its own
    stranger(data, "manifest.json")
    refused(argv, capsys, data, "manifest.json")
    rc, _, err = run([*argv, "--force"], capsys)
    assert rc == 0, err
    assert json.loads((data / "manifest.json").read_text())["tokenizer"] == "gpt2"


# --- train -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["checkpoint.npz", "log.jsonl", "sample.txt", ".lock"])
def test_train_never_replaces_a_strangers_file(name, prepared_data_dir, tmp_path, capsys):
    out = tmp_path / "run"
    stranger(out, name)
    refused(["train", "--data-dir", prepared_data_dir, "--out", out, "--steps", "1",
             *TINY_FLAGS], capsys, out, name)


def test_train_resumes_next_to_its_own_files_and_overwrite_replaces(prepared_data_dir,
                                                                    finished_run, tmp_path,
                                                                    capsys):
    out = tmp_path / "run"
    shutil.copytree(finished_run, out)
    stranger(out, "notes.txt")
    rc, _, err = run(["train", "--resume", out / "checkpoint.npz", "--steps", "4",
                      "--no-progress"], capsys)                      # its own log: appended
    assert rc == 0, err
    other = tmp_path / "other"
    stranger(other, "log.jsonl")                                    # resuming into a stranger's
    refused(["train", "--resume", out / "checkpoint.npz", "--out", other, "--steps", "5",
             "--no-progress"], capsys, other, "log.jsonl")
    rc, _, err = run(["train", "--data-dir", prepared_data_dir, "--out", other, "--steps", "1",
                      "--overwrite", *TINY_FLAGS], capsys)
    assert rc == 0, err
    assert json.loads((other / "log.jsonl").read_text().splitlines()[0])["event"] == "start"
    assert (out / "notes.txt").read_bytes() == STRANGER


def test_a_strangers_lock_file_is_refused_and_kept(tmp_path):
    stranger(tmp_path, ".lock")
    with pytest.raises(WouldReplace, match="smolgpt did not write it"):
        RunLock(tmp_path).acquire()
    assert (tmp_path / ".lock").read_bytes() == STRANGER


# --- sweep (the experiment runner's folders) -------------------------------------------------------

SWEEP_RUN_NAMES = ["summary.json", "final_256w.json", "checkpoint.npz", "log.jsonl", ".lock"]


SWEEP = ["--grid", "1e-3,3e-3,1e-2", "--seeds", "1", "--steps", "2", "--n-layer", "1",
         "--n-head", "2", "--n-embd", "16", "--block-size", "16", "--batch-size", "2",
         "--eval-windows", "4", "--sample-tokens", "0"]


def first_run_folder(data_dir: Path, root: Path) -> Path:
    """Where the sweep below makes its first run (lr 1e-3, seed 0), computed as the runner does."""
    import dataclasses

    from smolgpt import data
    from smolgpt.cli import _train_config, build_parser
    from smolgpt.experiments import runs
    cfg = _train_config(build_parser().parse_args(["sweep", "--data-dir", str(data_dir), *SWEEP]))
    cfg = runs.with_seed(dataclasses.replace(cfg, lr=1e-3), 0)
    manifest = data.read_manifest(data_dir)
    key = runs.run_key(cfg, {s: manifest["splits"][s]["sha256"] for s in data.SPLITS})
    return root / f"{runs.run_name(cfg.method)}_seed0_{key}"


@pytest.mark.parametrize("name", SWEEP_RUN_NAMES)
def test_sweep_never_replaces_a_strangers_file(name, prepared_data_dir, tmp_path, monkeypatch,
                                               capsys):
    import functools

    from smolgpt.experiments import runs
    # the runner gives a folder with a checkpoint but no summary 15 s to get its summary (its
    # maker may be writing it); nobody is writing here
    monkeypatch.setattr(runs, "_train_or_wait", functools.partial(runs._train_or_wait,
                                                                  grace=0.0))
    root = tmp_path / "runs"
    monkeypatch.setenv("SMOLGPT_RUNS", str(root))
    stranger(first_run_folder(prepared_data_dir, root), name)
    refused(["sweep", "--data-dir", prepared_data_dir, *SWEEP], capsys, root, name)
    monkeypatch.setenv("SMOLGPT_FRESH", "1")         # making the run again: refused as well
    refused(["sweep", "--data-dir", prepared_data_dir, *SWEEP], capsys, root, name)


def test_a_sweeps_workers_refuse_a_strangers_file_in_one_line(prepared_data_dir, tmp_path,
                                                              monkeypatch, capsys):
    """On worker processes the refusal comes back named with its run (RunsFailed), and the
    command still ends in one line, exit 2, not a traceback; the stranger's file is untouched
    (the sweep's other runs, on other workers, may finish and are kept)."""
    root = tmp_path / "runs"
    monkeypatch.setenv("SMOLGPT_RUNS", str(root))
    theirs = stranger(first_run_folder(prepared_data_dir, root), "log.jsonl")
    rc, _, err = run(["sweep", "--data-dir", prepared_data_dir, *SWEEP, "--workers", "2"],
                     capsys)
    line = the_error_line(err)
    assert rc == 2 and "Traceback" not in err, err
    assert "runs failed" in line and "seed 0" in line and "log.jsonl" in line
    assert theirs.read_bytes() == STRANGER


def test_making_a_run_again_deletes_only_its_own_files(finished_run, tmp_path):
    """SMOLGPT_FRESH=1 (runs._clear) deleted the whole run folder; now only the run's files,
    and none at all if one of them is not smolgpt's."""
    from smolgpt.experiments import runs
    folder = Path(shutil.copytree(finished_run, tmp_path / "run"))
    for name in ("summary.json", "final_256w.json"):
        (folder / name).write_text(json.dumps({"label": "full", "loss": 10.0}))
    stranger(folder, "notes.txt")
    (folder / "log.jsonl").rename(tmp_path / "log.jsonl")
    stranger(folder, "log.jsonl")
    before = tree(folder)
    with pytest.raises(WouldReplace, match="log.jsonl already exists and smolgpt did not"):
        runs._clear(folder)
    assert tree(folder) == before
    (tmp_path / "log.jsonl").replace(folder / "log.jsonl")
    runs._clear(folder)
    assert [p.name for p in folder.iterdir()] == ["notes.txt"]


# --- chapters --------------------------------------------------------------------------------------

def test_a_chapter_writes_only_into_a_folder_it_made(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SMOLGPT_OUT", str(tmp_path))
    theirs = stranger(tmp_path / "02_random_basis", "regeneration.png")
    path = chapter.out_dir("02_random_basis")
    assert path == tmp_path / "02_random_basis-2" and "writing to" in capsys.readouterr().out
    assert chapter.out_dir("02_random_basis") == path                  # its own, the next time
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    chapter.save_figure(plt.figure(), path / "regeneration.png")
    chapter.save_figure(plt.figure(), path / "regeneration.png")       # its own: replaced
    stranger(path, "notes.png")
    with pytest.raises(WouldReplace, match="notes.png already exists and smolgpt did not"):
        chapter.save_figure(plt.figure(), path / "notes.png")
    assert theirs.read_bytes() == STRANGER and (path / "notes.png").read_bytes() == STRANGER


# --- describe_file: what an error says a file is ---------------------------------------------------

def test_describe_file_names_what_a_file_is(finished_run, hf_dir, tmp_path):
    import gzip
    cases = {
        finished_run / "checkpoint.npz": "a zip archive",
        finished_run / "log.jsonl": "a run's log.jsonl",
        hf_dir / "model.safetensors": "a safetensors file",
        hf_dir / "config.json": "JSON of",
        stranger(tmp_path, "e.txt", b""): "an empty file",
        stranger(tmp_path, "g.gz", gzip.compress(b"x")): "a gzip file",
        stranger(tmp_path, "b.bin", bytes(range(256))): "binary data",
        stranger(tmp_path, "t.txt", "naïve text\n".encode()): "text of",
        tmp_path: "a folder",
    }
    np.save(tmp_path / "a.npy", np.zeros(3))
    cases[tmp_path / "a.npy"] = "a single NumPy array"
    for path, words in cases.items():
        assert words in describe_file(path), (path, describe_file(path))


def test_a_path_under_a_file_is_refused_in_words(finished_run, hf_dir, tmp_path, capsys):
    plain = stranger(tmp_path, "plain")
    for argv in (["import", hf_dir, plain / "runs" / "checkpoint.npz"],
                 ["export", finished_run / "checkpoint.npz", plain / "hf"],
                 ["train", "--resume", finished_run / "checkpoint.npz", "--out", plain / "r"]):
        rc, _, err = run(argv, capsys)
        line = the_error_line(err)
        assert rc == 2 and "Errno" not in line and "plain" in line, line
        assert "is a file" in line, line
    assert plain.read_bytes() == STRANGER


def test_a_damaged_manifest_is_named_as_such(c4_globs, gpt2_encoding, prepared_data_dir, tmp_path,
                                             capsys):
    """A manifest.json cut short is not called somebody else's file: the message says it is not
    readable and how to prepare the folder again; nothing changes until --force."""
    data = tmp_path / "data"
    shutil.copytree(prepared_data_dir, data, ignore=shutil.ignore_patterns("bytes"))
    text = (data / "manifest.json").read_bytes()
    (data / "manifest.json").write_bytes(text[:len(text) // 2])
    argv = ["prepare", "--data-dir", data, "--train-glob", c4_globs[0], "--val-glob",
            c4_globs[1], "--max-docs", "20"]
    line = refused(argv, capsys, data, "manifest.json")
    assert "is not readable JSON" in line and f"smolgpt prepare --force --data-dir {data}" in line
    assert run([*argv, "--force"], capsys)[0] == 0
    assert json.loads((data / "manifest.json").read_text())["tokenizer"] == "gpt2"
