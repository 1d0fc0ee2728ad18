"""smolgpt <-> Hugging Face: export, import, the tokenizer files, and the model itself checked
against an independent implementation, transformers' PyTorch GPT-2.

The tests that need torch and transformers (the optional `hf` extra) skip cleanly without them;
the rest (file layout, export then import, refusals) need only NumPy and safetensors.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from smolgpt import checkpoint as ckpt
from smolgpt import hf
from smolgpt.data import EOT, load_tokens
from smolgpt.methods import METHODS, MethodSpec
from smolgpt.model import GPTConfig, forward, init_params, loss_and_grads, param_table
from smolgpt.sample import generate, sample_text
from smolgpt.train import TrainConfig, train

SMALL = GPTConfig(n_layer=2, n_head=2, n_embd=32, block_size=32)
SPECS = {
    "full": MethodSpec("full"),
    "embeddings": MethodSpec("embeddings"),
    "basis": MethodSpec("basis", d=8),
    "fastfood": MethodSpec("fastfood", d=8),
    "fft-fastfood": MethodSpec("fft-fastfood", d=4, per_tensor=True),
    "lora": MethodSpec("lora", rank=2),
    "said": MethodSpec("said", d=8),
    "vera": MethodSpec("vera", rank=2),
    "nola": MethodSpec("nola", rank=2, nola_k=6, nola_l=5),
    "norms": MethodSpec("norms"),
    "gains": MethodSpec("gains"),
    "norms-gains": MethodSpec("norms-gains"),
    "biases": MethodSpec("biases"),
    "norms-biases": MethodSpec("norms-biases"),
    "heads": MethodSpec("heads"),
}
assert set(SPECS) == set(METHODS), "a new method needs an entry here"

# float32 logits: smolgpt and transformers sum the same products in different orders, so they
# agree to float32 rounding (eps 1.2e-7) accumulated over a few layers, relative to the logits'
# size: max |ours - theirs| <= LOGIT_RTOL * max |ours|.
LOGIT_RTOL = 1e-5
# float64 loss and gradients: the same function computed two ways, agreeing to float64 rounding
# (eps 2.2e-16) accumulated: per parameter, max |ours - autograd| <= GRAD_RTOL * max |autograd|.
GRAD_RTOL = 1e-12


def torch_modules():
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    return torch, transformers


@pytest.fixture(scope="module")
def trained(tmp_path_factory, prepared_data_dir, one_blas_thread) -> dict:
    """method name -> checkpoint of SMALL trained 3 steps with it (every trainable has moved)."""
    root = tmp_path_factory.mktemp("hf_runs")
    paths = {}
    for name, spec in SPECS.items():
        cfg = TrainConfig(gpt=SMALL, method=spec, steps=3, batch_size=4, lr=1e-2, warmup=0,
                          eval_every=3, eval_windows=2, checkpoint_every=3,
                          out=str(root / name), data_dir=str(prepared_data_dir), sample_tokens=0)
        paths[name] = train(cfg, progress=False, verbose=False)["checkpoint"]
    return paths


@pytest.fixture(scope="module")
def exported(trained, tmp_path_factory) -> dict:
    """method name -> its exported Hugging Face directory."""
    root = tmp_path_factory.mktemp("hf_export")
    return {name: hf.export_hf(path, root / name) for name, path in trained.items()}


# ----------------------------------------------------------------------------------------------
# The exported files, without torch


def test_export_writes_gpt2_names_shapes_and_config(exported, trained):
    from safetensors.numpy import load_file
    out = exported["lora"]
    names = {p.name for p in out.iterdir()}
    assert {"config.json", "model.safetensors", "vocab.json", "merges.txt",
            "tokenizer_config.json", "special_tokens_map.json", "README.md"} <= names
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["model_type"] == "gpt2" and cfg["activation_function"] == "gelu_new"
    assert cfg["layer_norm_epsilon"] == 1e-5 and cfg["tie_word_embeddings"] is True
    assert (cfg["n_layer"], cfg["n_head"], cfg["n_embd"], cfg["n_positions"], cfg["vocab_size"]) \
        == (2, 2, 32, 32, 50257)
    state = load_file(out / "model.safetensors")
    want = {"transformer." + n: s for n, s in param_table(SMALL)}
    assert {k: v.shape for k, v in state.items()} == want           # no lm_head: it is tied
    assert all(v.dtype == np.float32 for v in state.values())
    # the materialised weights: a LoRA model exports W_frozen + (alpha / r) A B, worked out here
    # from its trained factors and the seed's frozen init
    spec = SPECS["lora"]
    trainables, _, _ = ckpt.load(trained["lora"])
    frozen = init_params(SMALL, spec.seed, np.float64)
    for name, shape in param_table(SMALL):
        if name in trainables:                                      # the embeddings
            want = trainables[name]
        elif len(shape) == 2:
            A, B = (np.asarray(trainables[f"lora.{name}.{f}"], np.float64) for f in "AB")
            assert np.abs(A @ B).max() > 0                          # the update has moved
            want = frozen[name] + spec.alpha / spec.rank * (A @ B)
        else:                                                       # LayerNorms, biases
            want = frozen[name]
        np.testing.assert_allclose(state["transformer." + name], want, rtol=1e-5, atol=1e-6)


def test_model_card_says_what_trained_it(exported, trained):
    card = (exported["fastfood"] / "README.md").read_text()
    _, _, meta = ckpt.load(trained["fastfood"])
    tokens = 3 * 4 * SMALL.block_size
    assert "fastfood d=8" in card and "8 trainable non-embedding parameters" in card
    assert f"{tokens:,} tokens" in card
    assert f"{meta['val_curve'][-1][2]:.4f} nats/token" in card


def test_export_refuses_a_file_as_out_dir(trained, tmp_path):
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(hf.HFError, match="is a file"):
        hf.export_hf(trained["full"], target)


def test_byte_table_and_merges_are_gpt2s(gpt2_encoding):
    table = hf.byte_to_unicode()
    assert len(set(table.values())) == 256 and table[ord(" ")] == "Ġ" and table[10] == "Ċ"
    assert all(c.isprintable() and not c.isspace() for c in table.values())
    ranks = gpt2_encoding._mergeable_ranks
    for token in [b" the", b"ing", b" understanding", b"\n\n", "ü".encode()]:
        left, right = hf.split_token(token, ranks)
        assert left + right == token and max(ranks[left], ranks[right]) < ranks[token]


# ----------------------------------------------------------------------------------------------
# Export then import is the identity; import refuses what smolgpt cannot hold


@pytest.mark.parametrize("name", list(SPECS))
def test_export_then_import_is_the_identity(name, trained, exported, tmp_path):
    back = hf.import_hf(str(exported[name]), tmp_path / "imported.npz")
    params, config, spec = ckpt.load_params(back)
    original, original_config, _ = ckpt.load_params(trained[name])
    assert config == original_config and spec == MethodSpec("full")
    assert params.keys() == original.keys()
    for k in params:
        np.testing.assert_array_equal(params[k], original[k])        # bit for bit
    trainables, adam, meta = ckpt.load(back)
    assert meta["step"] == 0 and adam["t"] == 0 and meta["imported_from"] == str(exported[name])
    assert all(not m.any() for m in adam["m"].values())
    assert TrainConfig.from_dict(meta["train"]).gpt == config     # readable as a run config


def write_hf_dir(folder, params, config, prefix="transformer.", extra=None, **cfg_changes):
    """A Hugging Face GPT-2 directory written by hand (config.json + model.safetensors)."""
    from safetensors.numpy import save_file
    folder.mkdir(parents=True, exist_ok=True)
    state = {prefix + k: np.ascontiguousarray(v) for k, v in params.items()}
    state.update(extra or {})
    save_file(state, folder / "model.safetensors", metadata={"format": "pt"})
    (folder / "config.json").write_text(json.dumps({**hf.hf_config(config), **cfg_changes}))
    return folder


def test_import_accepts_tied_head_and_mask_buffers(trained, tmp_path):
    """The Hub's `gpt2` stores names without the prefix, plus the attention-mask buffers;
    others also store the tied lm_head.weight. All are read, the extras dropped."""
    params, config, _ = ckpt.load_params(trained["full"])
    T = config.block_size
    mask = np.tril(np.ones((T, T), dtype=np.float32))[None, None]
    extra = {"lm_head.weight": params["wte.weight"].copy()}
    for i in range(config.n_layer):
        extra[f"h.{i}.attn.bias"] = mask
        extra[f"h.{i}.attn.masked_bias"] = np.array(-1e4, dtype=np.float32)
    folder = write_hf_dir(tmp_path / "hub_style", params, config, prefix="", extra=extra,
                          activation_function="gelu_pytorch_tanh", n_inner=4 * config.n_embd)
    got, got_config, _ = ckpt.load_params(hf.import_hf(folder, tmp_path / "c.npz"))
    assert got_config == config
    for k in params:
        np.testing.assert_array_equal(got[k], params[k])


REFUSALS = [
    ({"model_type": "llama"}, None, "model_type is 'llama'"),
    ({"n_inner": 100}, None, "n_inner=100"),
    ({"activation_function": "relu"}, None, "activation_function is 'relu'"),
    ({"layer_norm_epsilon": 1e-6}, None, "layer_norm_epsilon is 1e-06"),
    ({"scale_attn_by_inverse_layer_idx": True}, None, "scale_attn_by_inverse_layer_idx"),
    ({"scale_attn_weights": False}, None, "scale_attn_weights is false"),
    ({"vocab_size": 1000}, None, "vocab_size is 1000"),
    ({"n_positions": 64}, None, "wpe.weight has shape (32, 32)"),
    ({}, "untied", "lm_head.weight differs from wte.weight"),
    ({"tie_word_embeddings": False}, None, "no lm_head.weight"),
    ({}, "extra", "h.0.attn.q_norm.weight"),
    ({}, "missing", "no tensor ln_f.bias"),
]


@pytest.mark.parametrize("changes, weights, message", REFUSALS)
def test_import_refuses_what_smolgpt_does_not_have(changes, weights, message, trained,
                                                   tmp_path):
    params, config, _ = ckpt.load_params(trained["full"])
    params = dict(params)
    extra = {}
    if weights == "untied":
        extra["lm_head.weight"] = params["wte.weight"] + 1.0
    elif weights == "extra":
        extra["transformer.h.0.attn.q_norm.weight"] = np.ones(32, dtype=np.float32)
    elif weights == "missing":
        del params["ln_f.bias"]
    folder = write_hf_dir(tmp_path / "model", params, config, extra=extra, **changes)
    with pytest.raises(hf.UnsupportedModel, match=re.escape(message)) as e:
        hf.import_hf(folder, tmp_path / "c.npz")
    assert "\n" not in str(e.value) and isinstance(e.value, ValueError)
    assert not (tmp_path / "c.npz").exists()


def test_import_explains_sources_it_cannot_read(tmp_path, monkeypatch):
    with pytest.raises(hf.HFError, match="no directory"):
        hf.import_hf(str(tmp_path / "nowhere"), tmp_path / "c.npz")
    (tmp_path / "torch_only").mkdir()
    (tmp_path / "torch_only" / "config.json").write_text(json.dumps(hf.hf_config(SMALL)))
    (tmp_path / "torch_only" / "pytorch_model.bin").write_bytes(b"")
    with pytest.raises(hf.HFError, match="only pytorch_model.bin"):
        hf.import_hf(tmp_path / "torch_only", tmp_path / "c.npz")
    # a Hub id offline: one line saying so, and no network call
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)   # read at import
    with pytest.raises(hf.HFError, match="'gpt2' is not a local directory and Hub downloads "
                                         "are off") as e:
        hf.import_hf("gpt2", tmp_path / "c.npz")
    assert "\n" not in str(e.value)


def test_import_reads_bfloat16(trained, tmp_path):
    """bfloat16 has no NumPy dtype; its values are the top halves of float32s, read exactly."""
    torch, _ = torch_modules()
    from safetensors.torch import save_file
    params, config, _ = ckpt.load_params(trained["full"])
    folder = write_hf_dir(tmp_path / "bf16", params, config)
    halves = {"transformer." + k: torch.from_numpy(v).to(torch.bfloat16)
              for k, v in params.items()}
    save_file(halves, folder / "model.safetensors", metadata={"format": "pt"})
    got, _, _ = ckpt.load_params(hf.import_hf(folder, tmp_path / "c.npz"))
    for k, v in halves.items():
        np.testing.assert_array_equal(got[k[len("transformer."):]], v.float().numpy())


# ----------------------------------------------------------------------------------------------
# Against transformers (the optional `hf` extra)


def test_tokenizer_encodes_as_tiktoken(exported, prepared_data_dir, gpt2_encoding):
    _, transformers = torch_modules()
    tok = transformers.AutoTokenizer.from_pretrained(exported["full"])
    val = np.asarray(load_tokens("val", prepared_data_dir), dtype=np.int64)
    ends = np.flatnonzero(val == EOT)
    docs = [gpt2_encoding.decode(val[a + 1:b].tolist()) for a, b in zip(ends[:8], ends[1:9])]
    texts = docs + ["Hello world!  It's\ta test,\n\n  of 日本語, émojis 🤖 and   spaces   ",
                    "don't you'll I'M 1234567 3.14159 $$$ ### \u200b\u00a0end"]
    for text in texts:
        assert tok(text)["input_ids"] == gpt2_encoding.encode_ordinary(text)
        assert tok.decode(gpt2_encoding.encode_ordinary(text)) == text
    # a literal "<|endoftext|>" is the special token to transformers, as to tiktoken's encode()
    text = "one<|endoftext|>two"
    assert tok(text)["input_ids"] == gpt2_encoding.encode(text, allowed_special="all")


def test_exported_state_dict_is_gpt2s(exported):
    torch, transformers = torch_modules()
    from safetensors.numpy import load_file
    reference = transformers.GPT2LMHeadModel(transformers.GPT2Config(**hf.hf_config(SMALL)))
    want = {k: tuple(v.shape) for k, v in reference.state_dict().items()
            if k != "lm_head.weight" and not k.endswith((".attn.bias", ".attn.masked_bias"))}
    got = {k: v.shape for k, v in load_file(exported["full"] / "model.safetensors").items()}
    assert got == want


@pytest.mark.parametrize("name", list(SPECS))
def test_transformers_loads_and_samples_every_method(name, exported, trained, gpt2_encoding):
    torch, transformers = torch_modules()
    model = transformers.GPT2LMHeadModel.from_pretrained(exported[name]).eval()
    tok = transformers.AutoTokenizer.from_pretrained(exported[name])
    params, config, _ = ckpt.load_params(trained[name])
    idx = np.random.default_rng(0).integers(0, config.vocab_size, (2, config.block_size))
    ours = forward(params, idx, config)                                   # (B, T, V)
    with torch.no_grad():
        theirs = model(torch.from_numpy(idx)).logits.numpy()
    err = np.abs(theirs - ours).max()
    assert err <= LOGIT_RTOL * np.abs(ours).max(), f"max logit difference {err:.2e}"
    # greedy decoding gives the same tokens (transformers stops early at end-of-text)
    prompt = gpt2_encoding.encode_ordinary("The weather today")
    with torch.no_grad():
        out = model.generate(torch.tensor([prompt]), max_new_tokens=8, do_sample=False,
                             pad_token_id=EOT)[0].tolist()
    want = generate(params, prompt, config, max_new_tokens=8, temperature=0)
    assert len(out) > len(prompt) and out == want[:len(out)]
    text = tok.decode(out)
    assert text.startswith("The weather today") and text == gpt2_encoding.decode(out)
    torch.manual_seed(0)
    ids = tok("The weather today", return_tensors="pt").input_ids
    with torch.no_grad():
        sampled = model.generate(ids, max_new_tokens=5, do_sample=True, top_k=40,
                                 min_new_tokens=5, pad_token_id=EOT)[0]
    assert len(sampled) == len(prompt) + 5


def test_hf_directory_is_imported_and_sampled(tmp_path, gpt2_encoding):
    """A directory transformers itself wrote (save_pretrained), imported and run by smolgpt."""
    torch, transformers = torch_modules()
    torch.manual_seed(0)
    hf_cfg = transformers.GPT2Config(n_layer=2, n_head=4, n_embd=32, n_positions=24)
    model = transformers.GPT2LMHeadModel(hf_cfg).eval()
    with torch.no_grad():                       # biases and gains away from GPT-2's constants
        for k, v in model.named_parameters():
            if v.ndim == 1:
                v.add_(0.1 * torch.randn_like(v))
    model.save_pretrained(tmp_path / "hf_gpt2")
    path = hf.import_hf(tmp_path / "hf_gpt2", tmp_path / "imported.npz")
    params, config, _ = ckpt.load_params(path)
    assert config == GPTConfig(n_layer=2, n_head=4, n_embd=32, block_size=24)
    idx = np.random.default_rng(1).integers(0, config.vocab_size, (2, 24))
    with torch.no_grad():
        theirs = model(torch.from_numpy(idx)).logits.numpy()
    ours = forward(params, idx, config)
    assert np.abs(theirs - ours).max() <= LOGIT_RTOL * np.abs(ours).max()
    text = sample_text(params, config, prompt="Once upon a time", max_new_tokens=10)
    assert text.startswith("Once upon a time")
    assert len(gpt2_encoding.encode_ordinary(text)) >= 10


def test_loss_and_grads_match_pytorch_autograd():
    """float64: smolgpt's hand-written backward against autograd through transformers' GPT-2,
    every parameter, with non-trivial values (random LayerNorm gains and biases everywhere)."""
    torch, transformers = torch_modules()
    config = GPTConfig(n_layer=2, n_head=2, n_embd=16, block_size=8, vocab_size=61)
    rng = np.random.default_rng(0)
    params = {}
    for name, shape in param_table(config):
        value = rng.standard_normal(shape) * (0.3 if len(shape) == 2 else 0.1)
        if name.endswith(".weight") and len(shape) == 1:          # LayerNorm gains around 1
            value += 1.0
        params[name] = value
    B, T = 3, 7                                                   # T < block_size: wpe partly used
    idx = rng.integers(0, config.vocab_size, (B, T))
    targets = rng.integers(0, config.vocab_size, (B, T))
    loss, grads = loss_and_grads(params, idx, targets, config)

    hf_cfg = {**hf.hf_config(config), "bos_token_id": 0, "eos_token_id": 0}
    model = transformers.GPT2LMHeadModel(transformers.GPT2Config(**hf_cfg)).double().eval()
    assert model.lm_head.weight is model.transformer.wte.weight   # the head is tied
    with torch.no_grad():
        named = dict(model.named_parameters())
        for name, value in params.items():
            named["transformer." + name].copy_(torch.from_numpy(value))
    logits = model(torch.from_numpy(idx)).logits                   # (B, T, V) float64
    ref = torch.nn.functional.cross_entropy(logits.reshape(B * T, -1),
                                            torch.from_numpy(targets).reshape(-1))
    ref.backward()
    assert abs(loss - ref.item()) <= GRAD_RTOL * abs(ref.item())
    np.testing.assert_allclose(forward(params, idx, config), logits.detach().numpy(),
                               rtol=0, atol=1e-12)
    assert set(named) == {"transformer." + k for k in params}
    for name, g in grads.items():
        want = named["transformer." + name].grad.numpy()
        err = np.abs(g - want).max() / max(np.abs(want).max(), 1e-300)
        assert err <= GRAD_RTOL, f"{name}: relative error {err:.1e}"
