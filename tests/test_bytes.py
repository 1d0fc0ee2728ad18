"""The byte-level model: UTF-8 bytes in, the same GPT-2 body, bits per byte out.

The byte tokenizer is the identity on UTF-8 with one extra id (256) before every document; these
tests check it is lossless, that it prepares into its own folder and never into GPT-2's, that a
`tiny-bytes` model trains, samples text and is scored in bits per byte, and that a run's
log-spaced evaluations land where they are asked for.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from smolgpt import data
from smolgpt.evaluate import evaluate_params, windows
from smolgpt.model import ConfigError, GPTConfig, init_params
from smolgpt.sample import generate, sample_text
from smolgpt.train import TrainConfig, train

pytestmark = pytest.mark.usefixtures("one_blas_thread")

MICRO_BYTES = GPTConfig(n_layer=1, n_head=2, n_embd=16, block_size=32, vocab_size=257,
                        tokenizer="bytes")


@pytest.fixture(scope="module")
def bytes_dir(tmp_path_factory, c4_globs):
    out = tmp_path_factory.mktemp("bytes_data")
    data.prepare(out, train_glob=c4_globs[0], val_glob=c4_globs[1], max_docs=60, verbose=False,
                 tokenizer="bytes")
    return out


def test_bytes_round_trip_every_document(c4_globs):
    texts = ["plain ascii", "naïve café — ünïcödé ✓", "", "🙂 four-byte"]
    ids = data.tokenize(texts, tokenizer="bytes")
    assert ids.dtype == data.DTYPE and ids.max() <= 256
    assert (ids == data.BYTE_SEP).sum() == len(texts)
    assert ids[0] == data.BYTE_SEP
    assert len(ids) == len(texts) + sum(len(t.encode("utf-8")) for t in texts)
    assert data.decode(ids[1:], "bytes") == "\n\n".join(texts)
    assert data.encode(texts[1], "bytes") == list(texts[1].encode("utf-8"))


def test_decoding_any_bytes_never_fails():
    # a model can emit a lone continuation byte; decoding replaces it instead of raising
    assert data.decode([0xE2, 0x82, 65], "bytes") == "\ufffdA"


def test_token_bytes_counts_text_not_separators(gpt2_encoding):
    tb = data.token_bytes("bytes")
    assert tb.shape == (257,) and tb[:256].tolist() == [1] * 256 and tb[256] == 0
    gb = data.token_bytes("gpt2")
    assert gb.shape == (50257,) and gb[data.EOT] == 0
    assert gb[gpt2_encoding.encode_ordinary(" the")[0]] == 4


def test_bytes_prepare_into_their_own_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("SMOLGPT_DATA_DIR", str(tmp_path))
    assert data.data_dir("gpt2") == tmp_path
    assert data.data_dir("bytes") == tmp_path / "bytes"
    with pytest.raises(data.DataError, match="unknown tokenizer"):
        data.data_dir("words")


def test_a_folder_of_the_other_tokenizer_is_refused_not_replaced(bytes_dir, tmp_path):
    before = (bytes_dir / "manifest.json").read_bytes()
    with pytest.raises(data.DataError, match="'bytes' tokenizer, but this model reads 'gpt2'"):
        data.load_splits(bytes_dir)
    assert (bytes_dir / "manifest.json").read_bytes() == before


def test_bytes_manifest_and_split(bytes_dir, c4_globs):
    m = data.read_manifest(bytes_dir, "bytes")
    assert m["tokenizer"] == "bytes" and m["eot"] == data.BYTE_SEP
    val = data.load_tokens("val", bytes_dir, "bytes")
    first = data.decode(val[1:np.flatnonzero(val == data.BYTE_SEP)[1]], "bytes")
    with __import__("gzip").open(c4_globs[1], "rt") as f:
        assert first == json.loads(f.readline())["text"]


def test_the_preset_holds_most_weights_in_the_body():
    from smolgpt.model import count_params
    g = GPTConfig.preset("tiny-bytes")
    share = count_params(g, non_embedding=True) / count_params(g)
    assert g.tokenizer == "bytes" and g.vocab_size == 257
    assert share > 0.9
    tiny = GPTConfig.preset("tiny")
    assert count_params(tiny, non_embedding=True) / count_params(tiny) < 0.15


def test_a_byte_model_needs_a_vocabulary_for_every_byte():
    with pytest.raises(ConfigError, match="smaller than the 'bytes' tokenizer's 257"):
        GPTConfig(vocab_size=200, tokenizer="bytes")
    with pytest.raises(ConfigError, match="unknown tokenizer"):
        GPTConfig(tokenizer="words")


def test_bits_per_byte_of_a_byte_model_is_its_loss_in_bits(bytes_dir):
    val = data.load_tokens("val", bytes_dir, "bytes")
    params = init_params(MICRO_BYTES, seed=0)
    r = evaluate_params(params, MICRO_BYTES, val, max_windows=12)
    # every predicted id is one byte except separators, which count none: counted here from the
    # windows' targets themselves
    starts, counted, T = windows(len(val), MICRO_BYTES.block_size, 12)
    targets = np.asarray(val)[starts[:, None] + 1 + np.arange(T)]     # (12, T), all counted
    assert r["tokens"] == counted.sum() == targets.size
    assert r["bytes"] == int((targets != data.BYTE_SEP).sum())
    assert r["bytes"] < r["tokens"]                  # these windows hold a document boundary
    assert r["bits_per_byte"] == pytest.approx(r["loss"] / math.log(2) * r["tokens"] / r["bytes"],
                                               rel=1e-12)


def test_a_byte_model_trains_samples_and_logs_power_of_two_evaluations(bytes_dir, tmp_path):
    cfg = TrainConfig(gpt=MICRO_BYTES, steps=12, batch_size=4, warmup=2, eval_every=12,
                      eval_log=True, eval_windows=4, sample_tokens=30, lr=1e-2,
                      out=str(tmp_path / "run"), data_dir=str(bytes_dir))
    s = train(cfg, progress=False, verbose=False)
    steps = [step for step, _, _ in s["val_curve"]]
    assert steps == [0, 1, 2, 4, 8, 12]
    assert s["val_curve"][-1][2] < s["val_curve"][0][2]
    assert isinstance(s["sample"], str) and len(s["sample"].encode("utf-8", "replace")) > 0
    params = init_params(MICRO_BYTES, seed=1)
    ids = generate(params, data.encode("The ", "bytes"), MICRO_BYTES, 8)
    assert len(ids) == 4 + 8 and all(0 <= i < 257 for i in ids)
    text = sample_text(params, MICRO_BYTES, prompt="The ", max_new_tokens=8)
    assert text == "The " + data.decode(ids[4:], "bytes") and len(text) > 4


def test_eval_log_is_not_part_of_the_trajectory():
    cfg = TrainConfig(steps=10, eval_every=5)
    assert [s for s in range(1, 11) if cfg.evaluates_at(s)] == [5, 10]
    cfg = TrainConfig(steps=10, eval_every=5, eval_log=True)
    assert [s for s in range(1, 11) if cfg.evaluates_at(s)] == [1, 2, 4, 5, 8, 10]
