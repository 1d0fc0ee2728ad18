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
