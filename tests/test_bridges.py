"""VeRA and NOLA from the command line: train, export, evaluate, sweep their own rates; their bad
options end with one error line and status 2. (Their maps and gradients: tests/test_methods.py.)"""

from __future__ import annotations

import json

import numpy as np
import pytest

from smolgpt import checkpoint as ckpt
from smolgpt.cli import main
from smolgpt.data import eval_windows, load_tokens
from smolgpt.evaluate import evaluate_params
from smolgpt.methods import MethodSpec, build
from smolgpt.model import GPTConfig
from smolgpt.train import evaluate

TINY_FLAGS = ["--n-layer", "1", "--n-head", "2", "--n-embd", "16", "--block-size", "16",
              "--batch-size", "2", "--eval-windows", "4", "--no-progress", "--sample-tokens", "0"]

pytestmark = pytest.mark.usefixtures("one_blas_thread")


def run(argv, capsys) -> tuple[int, str, str]:
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.mark.parametrize("flags, count, first", [
    (["--method", "vera", "--rank", "4", "--vera-lr", "0.05"], 4 * 4 + (48 + 16 + 64 + 16),
     "vera.h.0.attn.c_attn.weight.b"),
    (["--method", "nola", "--rank", "2", "--nola-k", "6", "--nola-l", "10", "--nola-lr", "0.02"],
     4 * (6 + 10), "nola.h.0.attn.c_attn.weight.beta")], ids=["vera", "nola"])
def test_train_export_and_evaluate_from_the_command_line(flags, count, first, prepared_data_dir,
                                                         tmp_path, capsys):
    out = tmp_path / "run"
    rc, stdout, err = run(["train", "--data-dir", prepared_data_dir, "--out", out, "--steps", "3",
                           "--eval-every", "3", *TINY_FLAGS, *flags], capsys)
    assert rc == 0, err
    assert f"{count:,} trainable non-embedding parameters" in stdout
    trainables, adam, meta = ckpt.load(out / "checkpoint.npz")
    assert np.abs(trainables[first]).max() > 0                  # moved off its zero start
    rate = flags[flags.index("--vera-lr" if "vera" in flags else "--nola-lr") + 1]
    assert meta["train"][f"{flags[1]}_lr"] == float(rate)
    records = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    steps = [r for r in records if r["event"] == "step"]
    norm = "b_norm" if "vera" in flags else "beta_norm"
    assert steps[0][norm] > 0 and steps[-1][norm] > steps[0][norm] * 0.5
    # no frozen matrix is stored: the checkpoint holds the trainables and nothing else
    spec = MethodSpec(**meta["method"])
    assert set(trainables) == set(build(spec, GPTConfig(**meta["model"])).trainable_shapes())

    rc, stdout, err = run(["export", out / "checkpoint.npz", tmp_path / "hf"], capsys)
    assert rc == 0 and (tmp_path / "hf" / "config.json").is_file(), err
    rc, stdout, err = run(["eval", out / "checkpoint.npz", "--data-dir", prepared_data_dir,
                           "--max-windows", "4", "--json"], capsys)
    assert rc == 0, err
    # eval scores the trained weights (not the init): the same number from the loaded model, and
    # the run's last logged loss is those weights' loss on the run's own fixed windows
    params, gpt, _ = ckpt.load_params(out / "checkpoint.npz")
    val = load_tokens("val", prepared_data_dir)
    scored = evaluate_params(params, gpt, val, max_windows=4)["loss"]
    assert json.loads(stdout)["loss"] == pytest.approx(scored, rel=1e-9)
    start = build(spec, gpt)
    assert scored != evaluate_params(start.params(start.init()), gpt, val, max_windows=4)["loss"]
    logged = [r["val_loss"] for r in records if r["event"] == "eval"][-1]
    assert logged == evaluate(params, gpt, *eval_windows(val, 4, gpt.block_size), 2)


@pytest.mark.parametrize("flags, words", [
    (["--method", "nola", "--rank", "1", "--nola-k", "17"],
     ["--nola-k 17 exceeds the 16 entries", "--nola-k <= 16"]),
    (["--method", "lora", "--nola-k", "8"], ["--nola-k is an option of nola, not of 'lora'"]),
    (["--method", "fastfood", "--vera-d-init", "0.5"], ["--vera-d-init is an option of vera"]),
    (["--method", "vera", "--vera-d-init", "0"], ["--vera-d-init must be a finite non-zero"]),
    (["--method", "vera", "--alpha", "16"], ["vera has no scale alpha"]),
    (["--method", "vera", "--rank", "0"], ["VeRA rank must be a positive integer"]),
    (["--method", "vera", "--vera-lr", "nan"], ["vera_lr must be a positive finite number"]),
    (["--method", "nola", "--nola-lr", "0"], ["nola_lr must be a positive finite number"]),
])
def test_bad_bridge_options_are_one_line_exit_2(flags, words, prepared_data_dir, tmp_path, capsys):
    rc, _, err = run(["train", "--data-dir", prepared_data_dir, "--out", tmp_path / "out",
                      "--steps", "2", *TINY_FLAGS, *flags], capsys)
    lines = [line for line in err.splitlines() if line.strip()]
    assert rc == 2 and len(lines) == 1 and "Traceback" not in err, err
    for w in words:
        assert w in lines[0], (w, lines[0])
    assert not (tmp_path / "out").exists()
