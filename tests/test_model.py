"""The whole model: counts, init, invariants and a gradient check of every parameter tensor."""

import math

import numpy as np
import pytest

from smolgpt.gradcheck import numerical_grad, rel_error
from smolgpt.model import (ConfigError, GPTConfig, count_params, forward, init_params,
                           loss_and_grads, loss_only, non_embedding_table, param_table)

SMALL = GPTConfig(n_layer=2, n_head=2, n_embd=8, block_size=6, vocab_size=11)


def perturbed_params(config, seed=0):
    """A float64 init moved off its special values (LayerNorm gains 1, biases 0, tiny weights)
    so that no gradient term can hide behind a zero or a one."""
    rng = np.random.default_rng(seed)
    p = init_params(config, seed, dtype=np.float64)
    for k in p:
        p[k] = p[k] + 0.3 * rng.standard_normal(p[k].shape)
    return p


def test_gpt2_small_counts_match_the_post():
    c = GPTConfig.preset("gpt2")
    assert count_params(c) == 124_439_808
    assert count_params(c, non_embedding=True) == 85_056_000
    assert len(non_embedding_table(c)) == 146


def test_param_names_follow_hugging_face():
    names = [n for n, _ in param_table(SMALL)]
    assert names[:2] == ["wte.weight", "wpe.weight"]
    assert "h.1.attn.c_attn.weight" in names and "h.0.mlp.c_proj.bias" in names
    assert names[-2:] == ["ln_f.weight", "ln_f.bias"]
    p = init_params(SMALL)
    assert p["h.0.attn.c_attn.weight"].shape == (8, 24)            # (in, out) layout
    assert set(p) == set(names)


def test_init_statistics():
    c = GPTConfig(n_layer=4, n_head=4, n_embd=128, block_size=32, vocab_size=1000)
    p = init_params(c, seed=3)
    w = p["h.0.mlp.c_fc.weight"]                                   # 65,536 entries
    assert abs(w.std() - 0.02) < 0.02 * 6 / math.sqrt(2 * w.size)  # 6 sigma of the std estimate
    r = p["h.0.mlp.c_proj.weight"]
    assert abs(r.std() - 0.02 / math.sqrt(8)) < 0.01 * 0.02
    assert np.all(p["h.2.ln_1.weight"] == 1) and np.all(p["h.2.attn.c_attn.bias"] == 0)
    assert p["wte.weight"].dtype == np.float32
    # reproducible, and seeds differ
    assert np.array_equal(init_params(c, 3)["wte.weight"], p["wte.weight"])
    assert not np.array_equal(init_params(c, 4)["wte.weight"], p["wte.weight"])


def test_loss_at_init_is_near_uniform():
    c = GPTConfig(n_layer=2, n_head=2, n_embd=32, block_size=16)   # full GPT-2 vocabulary
    p = init_params(c, 0)
    rng = np.random.default_rng(0)
    idx = rng.integers(0, c.vocab_size, (2, 16))
    loss = loss_only(p, idx, np.roll(idx, -1, 1), c)
    # logits at init have std ~ 0.02 * ||x|| ~ 0.1, so the loss sits within ~0.01 of ln V
    assert abs(loss - math.log(c.vocab_size)) < 0.05, loss


def test_forward_matches_loss():
    p = perturbed_params(SMALL)
    rng = np.random.default_rng(1)
    idx = rng.integers(0, 11, (3, 6))
    tgt = rng.integers(0, 11, (3, 6))
    logits = forward(p, idx, SMALL)
    assert logits.shape == (3, 6, 11)
    m = logits.max(-1, keepdims=True)
    logp = logits - m - np.log(np.exp(logits - m).sum(-1, keepdims=True))
    ref = -np.mean(np.take_along_axis(logp, tgt[..., None], -1))
    assert abs(loss_only(p, idx, tgt, SMALL) - ref) < 1e-12
    assert abs(loss_and_grads(p, idx, tgt, SMALL)[0] - ref) < 1e-12


def test_causality():
    p = perturbed_params(SMALL)
    rng = np.random.default_rng(2)
    idx = rng.integers(0, 11, (2, 6))
    a = forward(p, idx, SMALL)
    idx2 = idx.copy()
    idx2[:, 4] = (idx2[:, 4] + 1) % 11                              # change token t+1 = 4
    b = forward(p, idx2, SMALL)
    assert np.array_equal(a[:, :4], b[:, :4])                       # positions <= 3 untouched
    assert not np.allclose(a[:, 4], b[:, 4])


def test_every_parameter_gradient():
    """loss_and_grads against central differences, every tensor (all coordinates: SMALL is small)."""
    c = SMALL
    p = perturbed_params(c, seed=5)
    rng = np.random.default_rng(5)
    idx = rng.integers(0, c.vocab_size, (2, 5))
    tgt = rng.integers(0, c.vocab_size, (2, 5))
    _, grads = loss_and_grads(p, idx, tgt, c, chunk=3)             # chunk < N exercises chunking
    assert set(grads) == set(p)
    f = lambda: loss_only(p, idx, tgt, c)
    for name in p:
        assert grads[name].shape == p[name].shape
        err = rel_error(grads[name], numerical_grad(f, p[name]))
        assert err < 1e-7, (name, err)


def test_tied_embedding_gets_both_contributions():
    c = SMALL
    p = perturbed_params(c, seed=6)
    rng = np.random.default_rng(6)
    idx = np.zeros((1, 4), dtype=np.int64)                          # only token 0 is an input
    tgt = rng.integers(1, c.vocab_size, (1, 4))
    _, g = loss_and_grads(p, idx, tgt, c)
    # rows of tokens that are never inputs get gradient only from the head
    head_only = np.setdiff1d(np.arange(c.vocab_size), [0])
    assert np.all(np.abs(g["wte.weight"][head_only]).sum(1) > 0)
    # row 0 gets both: compare with the gradient when the input lookup is cut off
    from smolgpt import layers
    from smolgpt.model import body_forward
    x, _ = body_forward(p, idx, c)
    _, _, dw_head = layers.cross_entropy_head(x.reshape(4, -1), p["wte.weight"], tgt.reshape(-1))
    assert not np.allclose(g["wte.weight"][0], dw_head[0])          # input path adds something
    assert np.allclose(g["wte.weight"][1:], dw_head[1:])            # nothing else changes


@pytest.mark.parametrize("kwargs, words", [
    (dict(n_embd=10, n_head=3), "not divisible"),
    (dict(n_layer=0), "positive"),
    (dict(block_size=-4), "positive"),
    (dict(vocab_size=2.5), "positive integer"),
])
def test_bad_configs_are_refused_clearly(kwargs, words):
    with pytest.raises(ConfigError, match=words):
        GPTConfig(**kwargs)


def test_unknown_preset():
    with pytest.raises(ConfigError, match="unknown model preset 'huge'.*tiny"):
        GPTConfig.preset("huge")


@pytest.mark.parametrize("idx, words", [
    (np.array([[0, 11]]), "outside the vocabulary"),
    (np.array([[-1, 2]]), "outside the vocabulary"),
    (np.zeros((1, 7), dtype=int), "block_size"),
    (np.zeros(3, dtype=int), "2-D"),
    (np.zeros((1, 2)), "integers"),
])
def test_bad_tokens_are_refused_clearly(idx, words):
    p = init_params(SMALL)
    with pytest.raises(ValueError, match=words):
        forward(p, idx, SMALL)


@pytest.mark.parametrize("wanted", [
    {"wte.weight", "wpe.weight"},                                   # embeddings-only
    {"wte.weight", "wpe.weight", "h.0.attn.c_attn.weight", "h.1.mlp.c_proj.weight"},   # LoRA-like
    {"h.1.ln_2.bias", "ln_f.weight"},
])
def test_gradient_subset_equals_full_gradient(wanted):
    c = SMALL
    p = perturbed_params(c, seed=8)
    rng = np.random.default_rng(8)
    idx = rng.integers(0, c.vocab_size, (2, 5))
    tgt = rng.integers(0, c.vocab_size, (2, 5))
    loss, full = loss_and_grads(p, idx, tgt, c, chunk=3)
    loss_s, sub = loss_and_grads(p, idx, tgt, c, chunk=3, wanted=frozenset(wanted))
    assert loss_s == loss
    assert set(sub) == set(wanted)
    for name in wanted:
        assert np.array_equal(sub[name], full[name]), name


def test_gradient_subset_refuses_unknown_names():
    p = init_params(SMALL)
    idx = np.zeros((1, 3), dtype=int)
    with pytest.raises(KeyError, match="h.9.mlp"):
        loss_and_grads(p, idx, idx, SMALL, wanted={"h.9.mlp.c_fc.weight"})


def test_the_model_imports_without_a_tokenizer():
    """The model and its layers read ids, never text: they import without tiktoken installed
    (here blocked by an import hook) and without smolgpt.data."""
    import subprocess
    import sys
    code = "\n".join([
        "import sys",
        "class NoTiktoken:",
        "    def find_spec(self, name, path=None, target=None):",
        "        if name.partition('.')[0] == 'tiktoken':",
        "            raise ImportError('tiktoken is not installed (blocked by the test)')",
        "sys.meta_path.insert(0, NoTiktoken())",
        "import smolgpt.model, smolgpt.layers, smolgpt.methods",
        "assert 'smolgpt.data' not in sys.modules and 'tiktoken' not in sys.modules",
        "cfg = smolgpt.model.GPTConfig.preset('tiny-bytes')",
        "print(smolgpt.model.count_params(cfg, non_embedding=True))",
    ])
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0 and int(done.stdout) > 0, done.stderr
    blocked = subprocess.run([sys.executable, "-c", code.replace(
        "import smolgpt.model,", "import smolgpt.data, smolgpt.model,")], capture_output=True,
        text=True)
    assert blocked.returncode != 0 and "blocked by the test" in blocked.stderr   # the hook works
