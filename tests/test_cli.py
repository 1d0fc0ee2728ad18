"""The `smolgpt` command. Every bad input in the table below must end with exit status 2, one
line on stderr saying what was wrong and how to fix it (the table lists the words that line must
hold), no traceback, and nothing already saved changed: a finished run's files and any file the
case handed in are compared byte for byte before and after. Then: a damaged token file is
re-prepared, not fatal; `--help` explains every flag; `sample` prints text; `plot` draws a PNG;
`--resume` continues on the command line.
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from smolgpt import data as data_mod
from smolgpt.cli import build_parser, main
from smolgpt.model import GPTConfig, count_params, forward, init_params

TINY = GPTConfig(n_layer=1, n_head=2, n_embd=16, block_size=16)
TINY_FLAGS = ["--n-layer", "1", "--n-head", "2", "--n-embd", "16", "--block-size", "16",
              "--batch-size", "2", "--eval-windows", "4", "--no-progress", "--sample-tokens", "0"]
D_TINY = count_params(TINY, non_embedding=True)       # 3312 numbers a global subspace can span


pytestmark = pytest.mark.usefixtures("one_blas_thread")


def run(argv, capsys) -> tuple[int, str, str]:
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def the_error_line(err: str) -> str:
    """stderr must be exactly one non-empty line, `smolgpt: error: ...`, and no traceback."""
    assert "Traceback" not in err and "Warning" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("smolgpt: error: ") and len(lines[0]) > 40, lines[0]
    return lines[0]


# --- the table of bad inputs -----------------------------------------------------------------

@dataclass
class Case:
    """What a case may use: the prepared data, its own empty folder, a finished run."""

    data: Path
    tmp: Path
    run: Path
    monkeypatch: pytest.MonkeyPatch

    @property
    def ckpt(self) -> Path:
        return self.run / "checkpoint.npz"

    def train(self, *flags):
        return ["train", "--data-dir", self.data, "--out", self.tmp / "out", "--steps", "2",
                *TINY_FLAGS, *flags]

    def train_on_files(self, train_glob, val_glob=None):
        """Train with a fresh data dir, so the C4 source comes from these env vars."""
        for name, value in (("SMOLGPT_C4_FILES", train_glob), ("SMOLGPT_C4_VAL_FILES", val_glob)):
            if value is None:
                self.monkeypatch.delenv(name, raising=False)
            else:
                self.monkeypatch.setenv(name, str(value))
        return ["train", "--data-dir", self.tmp / "fresh-data", "--out", self.tmp / "out",
                *TINY_FLAGS]

    def file(self, name, content: bytes) -> Path:
        path = self.tmp / name
        path.write_bytes(content)
        return path

    def resume(self, path, *flags):
        return ["train", "--resume", path, "--no-progress", *flags]


def jsonl(rows) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


DOCS = jsonl([{"text": f"Document number {i} has a few words in it."} for i in range(40)])


def no_network(c: Case):
    def offline(split, n_docs):
        raise ConnectionError("Failed to resolve 'huggingface.co' (network is unreachable)")
    c.monkeypatch.setattr(data_mod, "stream_c4_texts", offline)
    return c.train_on_files(None)


def damaged_checkpoint(c: Case, how: str) -> Path:
    raw = bytearray(c.ckpt.read_bytes())
    if how == "truncated":
        raw = raw[:len(raw) * 3 // 5]                      # the zip's directory is at the end
    else:
        mid = len(raw) // 2                                # inside the token embedding's bytes
        raw[mid:mid + 64] = bytes(b ^ 0xFF for b in raw[mid:mid + 64])
    return c.file(f"{how}.npz", bytes(raw))


def other_data(c: Case) -> Path:
    """A valid prepared data dir whose validation tokens differ from the run's."""
    other = Path(shutil.copytree(c.data, c.tmp / "other-data"))
    val = np.fromfile(other / "val.bin", dtype="<u2")
    val[5] = (val[5] + 1) % 50000
    val.tofile(other / "val.bin")
    m = json.loads((other / "manifest.json").read_text())
    m["splits"]["val"]["sha256"] = data_mod._sha256(other / "val.bin")
    (other / "manifest.json").write_text(json.dumps(m))
    return other


def not_a_checkpoint(c: Case) -> Path:
    path = c.tmp / "weights.npz"
    np.savez(path, w=np.ones(3))
    return path


CASES = [
    # model config
    ("n_embd % n_head", lambda c: c.train("--n-head", "3"),
     ["n_embd=16 is not divisible by n_head=3", "pick n_head among", "[1, 2, 4, 8, 16]"]),
    ("zero layers", lambda c: c.train("--n-layer", "0"),
     ["n_layer must be a positive integer", "got 0"]),
    ("negative width", lambda c: c.train("--n-embd", "-16"),
     ["n_embd must be a positive integer", "got -16"]),
    ("zero block_size", lambda c: c.train("--block-size", "0"),
     ["block_size must be a positive integer"]),
    ("block_size beyond the data", lambda c: c.train("--block-size", "100000"),
     ["block_size=100000", "val split has only", "--block-size", "prepare more documents"]),
    ("unknown preset", lambda c: c.train("--preset", "huge"),
     ["unknown model preset 'huge'", "choose one of", "gpt2", "tiny"]),
    ("unknown method", lambda c: c.train("--method", "sgd"),
     ["unknown method 'sgd'", "choose one of", "fastfood", "lora"]),
    # optimisation
    ("zero steps", lambda c: c.train("--steps", "0"), ["steps must be a positive integer"]),
    ("negative batch", lambda c: c.train("--batch-size", "-4"),
     ["batch_size must be a positive integer", "-4"]),
    ("zero eval windows", lambda c: c.train("--eval-windows", "0"),
     ["eval_windows must be a positive integer"]),
    ("lr nan", lambda c: c.train("--lr", "nan"), ["lr must be a positive finite number", "nan"]),
    ("lr zero", lambda c: c.train("--lr", "0"), ["lr must be a positive finite number"]),
    ("coef lr inf", lambda c: c.train("--coef-lr", "inf"),
     ["coef_lr must be a positive finite number", "inf"]),
    ("negative warmup", lambda c: c.train("--warmup", "-1"), ["warmup must be >= 0"]),
    ("negative weight decay", lambda c: c.train("--weight-decay", "-0.1"),
     ["weight_decay must be a finite number >= 0", "-0.1"]),
    ("grad clip nan", lambda c: c.train("--grad-clip", "nan"),
     ["grad_clip must be a finite number >= 0"]),
    ("negative seed", lambda c: c.train("--seed", "-1"), ["seed must be an integer >= 0"]),
    ("negative method seed", lambda c: c.train("--method", "basis", "--method-seed", "-2"),
     ["--method-seed", "must be an integer >= 0", "-2"]),
    # subspace and LoRA
    ("d zero", lambda c: c.train("--method", "fastfood", "--d", "0"),
     ["subspace dimension d must be a positive integer", "got 0"]),
    ("d negative", lambda c: c.train("--method", "basis", "--d", "-3"),
     ["subspace dimension d must be a positive integer", "got -3"]),
    ("d above D", lambda c: c.train("--method", "fastfood", "--d", str(D_TINY + 1)),
     [f"d={D_TINY + 1} is larger than the {D_TINY} non-embedding parameters",
      f"use d <= {D_TINY}"]),
    ("d per tensor above the smallest tensor",
     lambda c: c.train("--method", "basis", "--per-tensor", "--d", "17"),
     ["d=17 per tensor is larger than the smallest tensor (16 numbers", "use d <= 16",
      "--per-tensor"]),
    ("lora rank above min(m, n)", lambda c: c.train("--method", "lora", "--rank", "17"),
     ["LoRA rank 17 exceeds min(m, n) = 16", "--rank <= 16"]),
    ("lora rank zero", lambda c: c.train("--method", "lora", "--rank", "0"),
     ["LoRA rank must be a positive integer", "got 0"]),
    # data
    ("no C4 reachable, no local files", no_network,
     ["no local C4 files are set", "downloading allenai/c4 failed", "network is unreachable",
      "SMOLGPT_C4_FILES", "SMOLGPT_C4_VAL_FILES"]),
    ("a glob matching nothing", lambda c: c.train_on_files(c.tmp / "nothing-*.json.gz"),
     ["SMOLGPT_C4_FILES=", "nothing-*.json.gz' matches no files", "point it at existing"]),
    ("validation glob alone", lambda c: c.train_on_files(None, c.file("val.jsonl", DOCS)),
     ["SMOLGPT_C4_VAL_FILES is set but SMOLGPT_C4_FILES is not", "set both"]),
    ("JSON lines without text",
     lambda c: c.train_on_files(c.file("body.jsonl", jsonl([{"body": "no text"}] * 30)),
                                c.file("val.jsonl", DOCS)),
     ["body.jsonl has no 'text' field", "['body']", "with the document in 'text'"]),
    ("an empty file", lambda c: c.train_on_files(c.file("empty.jsonl", b""),
                                                 c.file("val.jsonl", DOCS)),
     ["empty.jsonl is empty", "remove it or add JSON lines"]),
    ("not gzip", lambda c: c.train_on_files(c.file("fake.json.gz", DOCS)),
     ["fake.json.gz is not a valid gzip file", "replace it with a good copy"]),
    ("lines that are not JSON",
     lambda c: c.train_on_files(c.file("prose.jsonl.gz", gzip.compress(b"just prose\n" * 30))),
     ["does not hold JSON lines", "one JSON object per line"]),
    ("--data-dir is a file", lambda c: c.train("--data-dir", c.file("notadir", b"x")),
     ["--data-dir", "notadir is a file", "not a folder"]),
    ("--out is a file", lambda c: c.train("--out", c.file("notadir", b"x")),
     ["--out", "notadir is a file", "not a folder"]),
    # checkpoints
    ("resume: no such file", lambda c: c.resume(c.tmp / "nope.npz"),
     ["no checkpoint at", "nope.npz", "check the path", "<out>/checkpoint.npz"]),
    ("resume: truncated", lambda c: c.resume(damaged_checkpoint(c, "truncated")),
     ["truncated.npz is truncated or corrupt", "use an earlier checkpoint"]),
    ("resume: corrupt bytes", lambda c: c.resume(damaged_checkpoint(c, "flipped")),
     ["flipped.npz is truncated or corrupt", "use an earlier checkpoint"]),
    ("resume: a log, not a checkpoint", lambda c: c.resume(c.run / "log.jsonl"),
     ["log.jsonl is not a smolgpt checkpoint", "a run's log.jsonl", "an .npz archive"]),
    ("resume: an npz that is not ours", lambda c: c.resume(not_a_checkpoint(c)),
     ["weights.npz is not a smolgpt checkpoint", "pass the checkpoint.npz"]),
    ("resume: another model", lambda c: c.resume(c.ckpt, "--n-embd", "32"),
     ["holds another model or method than this run asks for (n_embd 16 -> 32)",
      "drop those flags"]),
    ("resume: another method", lambda c: c.resume(c.ckpt, "--method", "lora", "--rank", "2"),
     ["(method name 'full' -> 'lora', method rank 4 -> 2)", "drop those flags"]),
    ("resume: another start", lambda c: c.resume(c.ckpt, "--init-from", c.ckpt),
     ["--init-from does not apply with --resume", "drop --init-from"]),
    ("resume: no steps left", lambda c: c.resume(c.ckpt),
     ["is at step 3 already, so --steps 3 would train nothing", "--steps above 3"]),
    ("resume: other data", lambda c: c.resume(c.ckpt, "--data-dir", other_data(c)),
     ["trained on other data than", "other-data holds now", "--data-dir", "start a new run"]),
    ("resume: another learning rate", lambda c: c.resume(c.ckpt, "--lr", "0.5"),
     ["trained with other settings", "lr 0.001 -> 0.5", "start a new run"]),
    ("resume: another batch order", lambda c: c.resume(c.ckpt, "--seed", "9"),
     ["trained with other settings", "seed", "-> 9", "start a new run"]),
    ("a new run over a finished one", lambda c: c.train("--out", c.run),
     ["already holds a run", "continue it with --resume", "--overwrite"]),
    ("sample: no such file", lambda c: ["sample", c.tmp / "nope.npz"], ["no checkpoint at"]),
    ("sample: corrupt checkpoint", lambda c: ["sample", damaged_checkpoint(c, "flipped")],
     ["is truncated or corrupt", "use an earlier checkpoint"]),
    ("sample: negative temperature", lambda c: ["sample", c.ckpt, "--temperature", "-1"],
     ["--temperature must be a finite number >= 0", "-1"]),
    ("sample: greedy with top-k and a seed",
     lambda c: ["sample", c.ckpt, "--temperature", "0", "--top-k", "5", "--seed", "7"],
     ["--top-k and --seed do nothing with --temperature 0", "drop --top-k and --seed"]),
    ("sample: greedy, twice", lambda c: ["sample", c.ckpt, "--temperature", "0", "--num", "3"],
     ["--num must be 1 with --temperature 0", "same text every time"]),
    ("bench: --mpi with the others", lambda c: ["bench", "--mpi", "--vs-torch", "--transforms"],
     ["--vs-torch and --transforms do not apply with --mpi"]),
    ("book: an empty chapter list", lambda c: ["book", "--quick", "--chapters", ""],
     ["--chapters '': no chapter given"]),
    ("sweep: a flag for the swept rate", lambda c: ["sweep", "--grid", "1e-3,1e-2", "--lr", "0.1"],
     ["--lr is the rate this sweep varies", "drop --lr"]),
    ("eval: a data folder that is not there",
     lambda c: ["eval", c.ckpt, "--data-dir", c.tmp / "dta"],
     ["--data-dir", "dta does not exist", "smolgpt prepare --data-dir"]),
    ("plot: no such log", lambda c: ["plot", c.tmp / "nope.jsonl"],
     ["no log file", "nope.jsonl", "pass runs' log.jsonl files"]),
]


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.mark.parametrize("make_argv, words", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_one_line_exit_2_nothing_lost(make_argv, words, prepared_data_dir,
                                                finished_run, tmp_path, monkeypatch, capsys,
                                                no_progress_bars):
    case = Case(prepared_data_dir, tmp_path, finished_run, monkeypatch)
    argv = make_argv(case)
    run_before, given_before = snapshot(finished_run), snapshot(tmp_path)
    rc, _, err = run(argv, capsys)
    line = the_error_line(err)
    assert rc == 2, line
    for w in words:
        assert w in line, f"{w!r} not in: {line}"
    assert snapshot(finished_run) == run_before                  # the finished run is intact
    assert snapshot(tmp_path) == given_before                    # so are the files handed in
    out = tmp_path / "out"
    assert not (out / "checkpoint.npz").exists() and not (out / "log.jsonl").exists()


def test_ctrl_c_before_training_starts_is_one_line_exit_130(prepared_data_dir, tmp_path,
                                                           monkeypatch, capsys):
    def interrupted(*args, **kwargs):                   # Ctrl-C while the data is loading
        raise KeyboardInterrupt
    monkeypatch.setattr(data_mod, "load_splits", interrupted)
    rc, _, err = run(["train", "--data-dir", prepared_data_dir, "--out", tmp_path / "run",
                      *TINY_FLAGS], capsys)
    assert rc == 130 and "Traceback" not in err
    assert err == "smolgpt: interrupted; checkpoints already written are kept\n"


def test_argparse_errors_are_one_usage_and_one_error_line(capsys):
    for argv in (["train", "--steps", "many"], ["frobnicate"], ["sample"]):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 2
        err = capsys.readouterr().err
        assert "Traceback" not in err
        errors = [line for line in err.splitlines() if "error:" in line]
        assert len(errors) == 1 and err.startswith("usage: smolgpt"), err


@pytest.mark.parametrize("ids, words", [
    ([[1, 2, 50257]], ["token id 50257 is outside the vocabulary 0..50256", "tiktoken 'gpt2'"]),
    ([[-1, 2]], ["token id -1 is outside the vocabulary"]),
    ([[1.0, 2.0]], ["token ids must be integers", "float64"]),
    ([1, 2, 3], ["2-D (batch, time) array", "(3,)"]),
    ([list(range(17))], ["sequence length 17 is outside 1..block_size=16", "crop the input"]),
])
def test_model_api_rejects_bad_tokens_before_numpy_sees_them(ids, words):
    params = init_params(TINY)
    with pytest.raises(ValueError) as info:
        forward(params, np.array(ids), TINY)
    msg = str(info.value)
    assert "\n" not in msg and all(w in msg for w in words), msg
    assert Path(info.traceback[-1].path).name == "model.py"      # raised by the check itself
    assert info.traceback[-1].name == "check_tokens"


# --- what still works: repair, help, sample, plot, resume --------------------------------------

def test_token_file_not_matching_its_manifest_is_reprepared(prepared_data_dir, tmp_path, capsys):
    data = Path(shutil.copytree(prepared_data_dir, tmp_path / "data"))
    good = (data / "train.bin").read_bytes()
    (data / "train.bin").write_bytes(good[:-100])              # 50 tokens short of its manifest
    rc, out, err = run(["train", "--data-dir", data, "--out", tmp_path / "run", "--steps", "1",
                        *TINY_FLAGS], capsys)
    assert rc == 0 and "Traceback" not in err, err
    assert f"{data / 'train.bin'} is {len(good) - 100} bytes but its manifest says {len(good)}" \
        in out and "re-preparing train" in out
    assert (data / "train.bin").read_bytes() == good
    assert (tmp_path / "run" / "checkpoint.npz").exists()


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


@pytest.mark.parametrize("command", ["prepare", "train", "sample", "bench", "plot", "book"])
def test_help_explains_every_flag(command, capsys):
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith(f"usage: smolgpt {command}")
    flags = [a for a in _subcommands()[command]._actions if a.dest != "help"]
    assert flags
    for a in flags:
        assert a.help and len(a.help) >= 15, a.dest            # a sentence, not a placeholder
        shown = a.option_strings[0] if a.option_strings else a.dest
        assert shown in text, shown


def test_top_level_help_lists_the_subcommands(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    text = capsys.readouterr().out
    assert info.value.code == 0
    assert all(c in text for c in ("prepare", "train", "sample", "bench", "plot"))


def test_book_without_its_extra_is_one_line_naming_the_install(monkeypatch, capsys):
    import sys
    monkeypatch.setitem(sys.modules, "jupytext", None)        # as if it were not installed
    assert main(["book", "--quick", "--chapters", "06"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and 'pip install -e ".[book]"' in err and "jupytext" in err


def test_the_core_never_imports_the_books_libraries():
    import subprocess
    import sys
    code = ("import smolgpt.cli, smolgpt.experiments, smolgpt.experiments.runs, smolgpt.book, sys; "
            "print(sorted(m for m in ('jupytext', 'nbclient', 'nbconvert', 'nbformat', "
            "'IPython', 'ipykernel', 'selenium') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_eval_json_with_a_progress_bar(finished_run, prepared_data_dir, capsys):
    """--progress draws on stderr, so --json's stdout stays one JSON object."""
    rc, out, err = run(["eval", finished_run / "checkpoint.npz", "--data-dir", prepared_data_dir,
                        "--max-windows", "3", "--json", "--progress"], capsys)
    assert rc == 0 and json.loads(out)["windows"] == 3
    assert "3/3" in err


def test_greedy_sampling_is_one_text(finished_run, capsys):
    argv = ["sample", finished_run / "checkpoint.npz", "--temperature", "0", "--tokens", "5"]
    rc, out, err = run(argv, capsys)
    assert rc == 0 and err == "" and out.count("--- sample ") == 1


def test_sample_prints_text(finished_run, capsys):
    argv = ["sample", finished_run / "checkpoint.npz", "--prompt", "The city", "--tokens", "6",
            "--num", "2", "--seed", "5"]
    rc, out, err = run(argv, capsys)
    assert rc == 0 and err == ""
    parts = out.split("--- sample ")
    assert parts[0] == "" and [p.split("\n", 1)[0] for p in parts[1:]] == \
        ["1 (full) ---", "2 (full) ---"]
    for p in parts[1:]:
        text = p.split("\n", 1)[1].rstrip("\n")
        assert text.startswith("The city") and len(text) > len("The city"), text
    assert run(argv, capsys)[1] == out                           # the seed fixes the text


def test_plot_writes_a_png_even_from_a_killed_run(finished_run, tmp_path, capsys):
    killed = tmp_path / "killed" / "log.jsonl"
    killed.parent.mkdir()
    text = (finished_run / "log.jsonl").read_text()
    killed.write_text(text[:text.rfind("\n", 0, len(text) - 1) + 20])  # last line cut short
    png = tmp_path / "curves.png"
    rc, out, err = run(["plot", finished_run / "log.jsonl", killed, "--out", png], capsys)
    assert rc == 0 and err == "" and str(png) in out
    raw = png.read_bytes()
    assert raw[:8] == b"\x89PNG\r\n\x1a\n" and len(raw) > 5000


def test_resume_on_the_command_line_continues_the_log(prepared_data_dir, tmp_path, capsys):
    out = tmp_path / "run"
    base = ["train", "--data-dir", prepared_data_dir, "--out", out, "--eval-every", "2",
            *TINY_FLAGS]
    assert run([*base, "--steps", "3"], capsys)[0] == 0
    rc, stdout, _ = run(["train", "--resume", out / "checkpoint.npz", "--steps", "5",
                         "--no-progress"], capsys)
    assert rc == 0 and "resumed from" in stdout and "final validation loss" in stdout
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if r["event"] == "step"] == [1, 2, 3, 4, 5]
    assert [r["event"] for r in log if r["event"] not in ("step", "eval")] == \
        ["start", "end", "resume", "schedule_changed", "end"]
    # a new run over it is refused (see the table); --overwrite starts afresh
    rc, _, _ = run([*base, "--steps", "2", "--overwrite"], capsys)
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert rc == 0 and [r["step"] for r in log if r["event"] == "step"] == [1, 2]


def test_a_warmup_longer_than_the_run_is_noted(prepared_data_dir, tmp_path, capsys):
    rc, out, err = run(["train", "--data-dir", prepared_data_dir, "--out", tmp_path / "r",
                        "--steps", "4", "--warmup", "8", *TINY_FLAGS], capsys)
    assert rc == 0 and err == "", err
    assert "the warmup (8 steps) is not shorter than the run (4 steps)" in out
    assert "to 50% of its peak" in out
    rc, out, _ = run(["train", "--data-dir", prepared_data_dir, "--out", tmp_path / "s",
                      "--steps", "4", "--warmup", "2", *TINY_FLAGS], capsys)
    assert rc == 0 and "note: the warmup" not in out
