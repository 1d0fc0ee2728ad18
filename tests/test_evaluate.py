"""`evaluate_checkpoint`: every held-out token predicted once, loss against the training code's
own loss, bits per byte against the bytes tiktoken decodes, and the standard error's formula."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from smolgpt import checkpoint as ckpt
from smolgpt.data import EOT, load_tokens
from smolgpt.evaluate import (evaluate_checkpoint, evaluate_params, format_report, ratio_se,
                              token_nll, windows)
from smolgpt.methods import MethodSpec, build
from smolgpt.model import GPTConfig, init_params, loss_only
from smolgpt.optim import adamw_init

SMALL = GPTConfig(n_layer=1, n_head=2, n_embd=16, block_size=32)


@pytest.mark.parametrize("N, T", [(1000, 32), (33 * 31 + 1, 33), (20, 32), (2, 8)])
def test_windows_predict_every_token_but_the_first_exactly_once(N, T):
    starts, counted, T_used = windows(N, T)
    predicted = np.concatenate([np.arange(s + 1 + T_used - c, s + 1 + T_used)
                                for s, c in zip(starts, counted)])
    assert np.array_equal(np.sort(predicted), np.arange(1, N))          # each of 1..N-1 once
    assert T_used == min(T, N - 1) and starts.max() + T_used + 1 <= N   # inside the split
    assert np.all(np.diff(starts[:-1]) == T_used)                       # no overlap before the tail


def test_max_windows_is_an_even_subset():
    starts, counted, T = windows(10_000, 32, max_windows=5)
    assert len(starts) == 5 and starts[0] == 0 and np.all(counted == 32)
    assert np.all(np.diff(starts) > 0) and np.all(starts % 32 == 0)
    with pytest.raises(ValueError, match="max_windows"):
        windows(10_000, 32, max_windows=0)


def test_token_nll_matches_the_training_loss():
    params = init_params(SMALL, seed=3)
    rng = np.random.default_rng(0)
    idx, targets = rng.integers(0, SMALL.vocab_size, (2, 2, 32))
    nll = token_nll(params, idx, targets, SMALL, chunk=24)             # chunks cut across rows
    assert nll.shape == (2, 32) and nll.dtype == np.float64
    assert nll.mean() == pytest.approx(loss_only(params, idx, targets, SMALL), rel=1e-6)


def test_ratio_se_is_the_std_of_window_means_for_equal_windows():
    rng = np.random.default_rng(0)
    means = rng.normal(3.0, 0.5, size=50)
    se = ratio_se(means * 128, np.full(50, 128.0))
    assert se == pytest.approx(means.std(ddof=1) / math.sqrt(50), rel=1e-12)
    assert ratio_se(np.array([1.0]), np.array([2.0])) is None        # one window: no spread


@pytest.fixture(scope="module")
def untrained_checkpoint(tmp_path_factory):
    """SMALL at its fresh init, saved as `smolgpt train` would at step 0."""
    spec = MethodSpec("full")
    trainables = build(spec, SMALL).init()
    path = tmp_path_factory.mktemp("eval") / "checkpoint.npz"
    ckpt.save(path, trainables, adamw_init(trainables),
              {"model": SMALL.to_dict(), "method": spec.to_dict(), "step": 0})
    return path


def test_evaluate_checkpoint_on_the_whole_split(untrained_checkpoint, prepared_data_dir,
                                                gpt2_encoding, one_blas_thread):
    r = evaluate_checkpoint(untrained_checkpoint, prepared_data_dir, batch_size=16)
    val = np.asarray(load_tokens("val", prepared_data_dir), dtype=np.int64)
    N, T = len(val), SMALL.block_size
    assert r["whole_split"] and r["tokens"] == N - 1 and r["split_tokens"] == N
    assert r["windows"] == (N - 1) // T + (1 if (N - 1) % T else 0) and r["window"] == T
    # bytes: the UTF-8 text of the predicted tokens, as tiktoken decodes it, without the EOTs
    predicted = val[1:]
    assert r["bytes"] == len(gpt2_encoding.decode_bytes(predicted[predicted != EOT].tolist()))
    assert r["bits_per_byte"] == pytest.approx(
        r["loss"] * r["tokens"] / r["bytes"] / math.log(2), rel=1e-12)
    assert r["perplexity"] == pytest.approx(math.exp(r["loss"]), rel=1e-12)
    # a fresh GPT-2 init predicts nearly uniformly: loss near ln V, and not exactly it
    assert abs(r["loss"] - math.log(SMALL.vocab_size)) < 0.05
    assert 0 < r["loss_se"] < 0.01 and 0 < r["bits_per_byte_se"] < 0.1
    json.dumps(r, allow_nan=False)                                     # what `eval --json` prints
    text = format_report(r)
    assert "bits per byte" in text and f"{r['bits_per_byte']:.4f}" in text
    assert f"{r['tokens']:,} tokens" in text


def test_loss_agrees_with_the_training_code_on_full_windows(untrained_checkpoint,
                                                             prepared_data_dir, one_blas_thread):
    """Cut the split to a whole number of windows (no tail): the loss is then the mean of
    `loss_only` over those windows, as the training loop computes validation loss."""
    params, config, _ = ckpt.load_params(untrained_checkpoint)
    val = np.asarray(load_tokens("val", prepared_data_dir), dtype=np.int64)
    T = config.block_size
    W = 12
    tokens = val[:W * T + 1]
    r = evaluate_params(params, config, tokens, batch_size=16)
    x, y = tokens[:-1].reshape(W, T), tokens[1:].reshape(W, T)
    assert r["windows"] == W and r["tokens"] == W * T
    assert r["loss"] == pytest.approx(loss_only(params, x, y, config), rel=1e-6)
    sub = evaluate_params(params, config, tokens, batch_size=16, max_windows=5)
    assert not sub["whole_split"] and sub["tokens"] == 5 * T
    assert "5 evenly spaced windows" in format_report(sub)


def test_a_diverged_model_is_scored_without_overflow(prepared_data_dir):
    """A loss above ~709 nats has no float perplexity: eval reports the loss, says so, and its
    JSON stays valid; a sweep's table prints inf."""
    from smolgpt.experiments.runs import markdown_table
    params = init_params(SMALL, seed=0)
    params["wte.weight"] = params["wte.weight"] * 1e5                  # logits of ~1e4
    r = evaluate_params(params, SMALL, load_tokens("val", prepared_data_dir), max_windows=2)
    assert r["loss"] > 1000 and r["perplexity"] is None and r["perplexity_se"] is None
    json.dumps(r, allow_nan=False)
    assert "the model has diverged" in format_report(r)
    table = markdown_table({"x": {"label": "full", "n_trainable": 1, "mean": r["loss"],
                                  "se": 1.0, "final": [r["loss"]]}})
    assert "| inf |" in table
