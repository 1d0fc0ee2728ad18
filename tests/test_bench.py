"""The benchmark package: its timing rule and its report, on a model small enough to time fast.
Speeds themselves are machine-dependent: they are printed by `smolgpt bench`, never asserted."""

import importlib.util

import pytest

from smolgpt import bench
from smolgpt.bench import timing, vs_torch
from smolgpt.model import GPTConfig

MICRO = GPTConfig(n_layer=1, n_head=2, n_embd=16, block_size=8, vocab_size=64)


def test_rounds_interleave_and_ratios_are_per_round():
    calls = []
    t = timing.rounds({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, 3)
    assert calls == ["a", "b"] * 4                       # one warm-up round, then A B A B A B
    assert len(t["a"]) == len(t["b"]) == 3
    t = {"a": [2.0, 9.0, 4.0], "b": [1.0, 3.0, 4.0]}
    assert timing.median_ratio(t, "a", "b") == 2.0       # median of 2, 3, 1


def test_run_reports_every_figure():
    r = bench.run(MICRO, batch_size=2, repeats=2, subspace_d=10, step_repeats=1)
    assert r["model"]["mfu"] > 0 and r["matmul_gflops"] > 0 and r["threads"] >= 1
    methods = [s["method"] for s in r["steps"]]
    assert methods[0] == "full" and "embeddings" in methods and "lora r=4" in methods
    assert all(s["vs_fwd_bwd"] > 0 for s in r["steps"])
    text = bench.format_report(r)
    assert "of the matmul rate" in text and "fastfood d=10" in text


def test_vs_torch_without_torch_says_what_to_install(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "torch" else real(name, *a))
    with pytest.raises(bench.TorchUnavailable, match=r'pip install -e "\.\[hf\]"'):
        bench.run_vs_torch()


@pytest.mark.skipif(importlib.util.find_spec("torch") is None
                    or importlib.util.find_spec("transformers") is None,
                    reason="needs the hf extra")
def test_vs_torch_same_loss_on_both_sides():
    # each side in its own process, same weights and batch: the first losses agree
    r = vs_torch.compare("tiny", 1, 8, 1, threads=1)
    assert abs(r["smolgpt"]["first_loss"] - r["torch"]["first_loss"]) < 1e-4
    assert r["smolgpt"]["peak_rss_mb"] > 0 and r["torch"]["peak_rss_mb"] > 0


def _spin_seen(code: str, **env) -> list[str]:
    """Run `code` in a fresh interpreter with OPENBLAS_THREAD_TIMEOUT set as in env (absent
    unless given); it prints the variable and smolgpt's record of it."""
    import os
    import subprocess
    import sys
    environ = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}
    environ.update(env)
    tail = "import os, smolgpt; print(os.environ.get('OPENBLAS_THREAD_TIMEOUT'), " \
           "smolgpt.BLAS_THREAD_TIMEOUT)"
    out = subprocess.run([sys.executable, "-c", code + tail], env=environ, check=True,
                         capture_output=True, text=True).stdout
    return out.split()


def test_smolgpt_sets_blas_spin_before_numpy_and_keeps_a_users_choice():
    assert _spin_seen("") == ["4", "4"]                               # set: NumPy not loaded yet
    assert _spin_seen("", OPENBLAS_THREAD_TIMEOUT="12") == ["12", "12"]   # the user's, kept
    assert _spin_seen("import numpy; ") == ["None", "None"]          # too late: not pretended
    r = {"config": MICRO.to_dict(), "batch_size": 1, "threads": 1, "matmul_gflops": 1.0,
         "matmul_gflops_best": 1.0, "mfu_ok": False, "blas_thread_timeout": None,
         "model": {"seconds": 1.0, "tokens_per_s": 1.0, "gflops": 1.0, "mfu": 0.5,
                   "mfu_spread": (0.5, 0.5)}}
    assert "default spin of 2^28 cycles" in bench.format_report(r)
