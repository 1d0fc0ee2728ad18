"""Chapter 10's knobs (smolgpt/methods/norms.py): gradients, counts, starts, the plain-GPT-2 map."""

import math

import numpy as np
import pytest

from smolgpt.gradcheck import numerical_grad, rel_error
from smolgpt.methods import MethodError, MethodSpec, build
from smolgpt.model import GPTConfig, init_params, loss_and_grads, loss_only

SMALL = GPTConfig(n_layer=2, n_head=2, n_embd=8, block_size=6, vocab_size=11)
# Knob gradients are ~1e-4 (a LayerNorm gain feeds weights of GPT-2's 0.02 scale): a 1e-4 nudge
# keeps float64 rounding of the loss (~1e-16 / 1e-4) far below the bound, as in test_methods.
EPS = 1e-4

SPECS = [
    MethodSpec("norms"),
    MethodSpec("gains"),
    MethodSpec("norms-gains", seed=2),
    MethodSpec("heads"),
    MethodSpec("biases"),
    MethodSpec("norms-biases", seed=1),
    MethodSpec("basis", d=7, coverage="norms"),
    MethodSpec("basis", d=11, coverage="norms-biases"),
    MethodSpec("fastfood", d=20, coverage="norms-gains"),
    MethodSpec("fastfood", d=3, per_tensor=True, coverage="gains"),
    MethodSpec("fft-fastfood", d=9, coverage="norms", coef_init="normal"),
]


def nudged(method, seed):
    """float64 trainables away from their start: gains far from 1 (0.3 spread), biases off 0,
    coefficients off 0, so that every term of a pullback is exercised."""
    rng = np.random.default_rng(seed)
    t = method.init(dtype=np.float64)
    return {k: v + 0.3 * rng.standard_normal(v.shape) for k, v in t.items()}


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.label().replace(" ", "_"))
def test_pullback_is_the_gradient(spec):
    """method.pullback(dL/dparams) == d L(method.params(t)) / dt by central differences in
    float64; the loss is the model's own on random targets, so the gradient flowing into the
    body is a random one."""
    method = build(spec, SMALL)
    t = nudged(method, 3)
    rng = np.random.default_rng(4)
    idx = rng.integers(0, SMALL.vocab_size, (2, 5))
    tgt = rng.integers(0, SMALL.vocab_size, (2, 5))
    _, grads = loss_and_grads(method.params(t), idx, tgt, SMALL, wanted=method.needed_grads)
    tg = method.pullback(t, grads)
    assert set(tg) == set(t)
    f = lambda: loss_only(method.params(t), idx, tgt, SMALL)
    for k in t:
        probe = None if t[k].size <= 60 else rng.choice(t[k].size, 60, replace=False)
        num = numerical_grad(f, t[k], eps=EPS, indices=probe)
        ana = tg[k].reshape(-1) if probe is None else tg[k].reshape(-1)[probe]
        assert np.abs(num).max() > 1e-8, (k, "a probe with no gradient tests nothing")
        assert rel_error(ana, num) < 1e-7, (k, rel_error(ana, num))


def test_counts_on_the_byte_models_body():
    """The brief's counts on the 4 x 128 body: 2,304 norms, 4,608 gains."""
    g = GPTConfig.preset("tiny-bytes")
    counts = {name: build(MethodSpec(name), g).n_trainable
              for name in ("norms", "gains", "norms-gains", "biases", "norms-biases", "heads")}
    assert counts == {"norms": 4 * 2 * 2 * 128 + 2 * 128, "gains": 4 * (384 + 128 + 512 + 128),
                      "norms-gains": 2304 + 4608, "biases": 4608, "norms-biases": 6912,
                      "heads": 4 * (4 + 1)}
    assert build(MethodSpec("fastfood", d=250, coverage="norms-gains"), g).n_trainable == 250
    assert build(MethodSpec("basis", d=5, per_tensor=True, coverage="norms"),
                 g).n_trainable == 5 * 18
    # each count is also what the trainables hold, embeddings aside
    for spec in (MethodSpec("norms-gains"), MethodSpec("heads"),
                 MethodSpec("basis", d=9, coverage="gains")):
        m = build(spec, g)
        shapes = m.trainable_shapes()
        assert sum(math.prod(s) for k, s in shapes.items()
                   if k not in ("wte.weight", "wpe.weight")) == m.n_trainable


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.label().replace(" ", "_"))
def test_each_starts_at_the_frozen_random_init(spec):
    """At step 0 every knob is at GPT-2's value (gains 1, biases 0): the model is the init. With
    coefficients drawn at random (coef_init normal) it starts elsewhere, and at the init once
    they are set to 0."""
    m = build(spec, SMALL)
    t = m.init(np.float64)
    ref = init_params(SMALL, spec.seed, np.float64)
    if spec.coef_init == "normal":
        moved = m.params(t)
        assert any(not np.allclose(moved[k], ref[k], rtol=0, atol=1e-6) for k in ref)
        t["coef"][:] = 0
    p = m.params(t)
    assert set(p) == set(ref)
    for k in ref:
        assert np.allclose(p[k], ref[k], rtol=0, atol=1e-15), k


def test_gains_scale_output_channels_and_heads_scale_heads():
    """W = W0 diag(g) column by column; a head's volume scales exactly its value columns."""
    m = build(MethodSpec("norms-gains"), SMALL)
    t = nudged(m, 1)
    p, W0 = m.params(t), init_params(SMALL, 0, np.float64)
    g = t["h.1.mlp.c_fc.gain"]
    assert np.allclose(p["h.1.mlp.c_fc.weight"], W0["h.1.mlp.c_fc.weight"] * g[None, :])
    assert np.array_equal(p["h.0.ln_2.bias"], t["h.0.ln_2.bias"])
    h = build(MethodSpec("heads"), SMALL)
    t = h.init(np.float64)
    t["h.0.attn.head_gain"][1] = 3.0
    W = h.params(t)["h.0.attn.c_attn.weight"] / W0["h.0.attn.c_attn.weight"]    # (C, 3C) ratio
    C, hs = SMALL.n_embd, SMALL.n_embd // SMALL.n_head
    expect = np.ones(3 * C)
    expect[2 * C + hs:] = 3.0                       # head 1's value columns, and only those
    assert np.allclose(W, expect[None, :])


def test_the_loop_learns_what_it_declares():
    """Every knob trains at coef_lr, undecayed; the gradients it reads are declared."""
    for spec in SPECS:
        m = build(spec, SMALL)
        t = m.init()
        assert set(m.lr_groups({}).values()) == {"coef_lr"}
        assert set(m.lr_groups({})) == set(t) - {"wte.weight", "wpe.weight"}
        assert m.decay_keys(t) == set()
    m = build(MethodSpec("gains"), SMALL)
    assert "h.0.attn.c_attn.weight" in m.needed_grads and "h.0.ln_1.weight" not in m.needed_grads


@pytest.mark.parametrize("spec, words", [
    (dict(name="basis", d=5, coverage="norms", offset=False), "drop --no-offset"),
    (dict(name="basis", d=5, coverage="gains", residual_scale=False), "--no-residual-scale"),
    (dict(name="basis", d=9999, coverage="norms"), "larger than the"),
    (dict(name="norms", coverage="norms"), "--coverage is an option of basis"),
])
def test_bad_knob_options_are_refused(spec, words):
    with pytest.raises(MethodError, match=words):
        build(MethodSpec(**spec), SMALL)


def test_start_from_freezes_given_weights_and_starts_the_norms_there():
    rng = np.random.default_rng(0)
    start = {k: v + 0.1 * rng.standard_normal(v.shape) for k, v in init_params(SMALL, 5,
                                                                               np.float64).items()}
    for spec in (MethodSpec("norms-gains"), MethodSpec("fastfood", d=4, coverage="norms")):
        m = build(spec, SMALL, start=start)
        p = m.params(m.init(np.float64))
        for k in start:
            assert np.allclose(p[k], start[k], rtol=0, atol=1e-15), (spec, k)


def test_collect_adds_each_lane_run_once(tmp_path):
    """Chapter 10's lanes write records of their own; collect adds each run (by key) once."""
    import json
    from smolgpt.companions.ch10_which_numbers import collect
    a, b, into = tmp_path / "a.jsonl", tmp_path / "b.jsonl", tmp_path / "into.jsonl"

    def rec(key):                       # a run record with every field Record requires
        return json.dumps({"key": key, "label": "norms", "seed": 0, "n_trainable": 2304,
                           "step": 1, "tokens": 1, "elapsed": 1.0, "val_curve": [],
                           "final": {}, "final_windows": 1, "config": {}})

    a.write_text(rec("k1") + "\n" + rec("k2"))
    b.write_text(rec("k2") + "\n" + rec("k3"))
    into.write_text(rec("k0") + "\n")
    assert collect([a, b], into) == 3
    assert collect([a, b], into) == 0
    keys = [json.loads(line)["key"] for line in into.read_text().splitlines()]
    assert keys == ["k0", "k1", "k2", "k3"]


def test_the_record_goes_to_the_lowest_challenger_that_beats_the_standing_entry():
    """Chapter 10's record rule: a challenger within the count must beat the standing entry by a
    paired 95% interval; of several that do, the lowest mean holds the record; one over the count,
    or one whose interval holds zero, does not, however low its mean."""
    from smolgpt.companions.ch10_which_numbers import standing

    def racer(n, *bpb):
        return [{"n_trainable": n, "final": {"bits_per_byte": v}} for v in bpb]

    results = {"5 per tensor": racer(250, 3.00, 3.10, 3.20),
               "a": racer(250, 2.90, 3.00, 3.10),             # beats it by 0.1 on every seed
               "b": racer(200, 2.80, 2.91, 3.02),             # beats it, lower still
               "c": racer(240, 2.00, 3.60, 2.90),             # lowest mean, interval holds 0
               "d": racer(5000, 1.00, 1.00, 1.00)}            # over the count
    best, tried = standing(results, 250)
    assert best == "b"
    assert {r for r, _ in tried} == {"a", "b", "c"}
    assert standing(results, 250, old="b")[0] == "b"          # nobody beats the new holder
    assert standing({k: results[k] for k in ("5 per tensor", "c")}, 250)[0] == "5 per tensor"


def test_chapter_10_shows_every_racer_within_its_count():
    """Every new racer of chapter 10 is in one of its tables (MATCHED), and every racer of a
    table trains up to about the table's count of non-embedding numbers on the byte model
    (NOLA k=l=8's 256 at ~250)."""
    from smolgpt.companions.ch09_long_race import LongRace
    from smolgpt.companions.ch10_which_numbers import MATCHED, NEW, WhichNumbers
    shown = {r for racers in MATCHED.values() for r in racers}
    assert set(NEW) <= shown, set(NEW) - shown
    specs, gpt = WhichNumbers(record=None).plan.specs, LongRace("bytes").base.gpt
    for target, racers in MATCHED.items():
        for racer in racers:
            assert build(specs[racer], gpt).n_trainable <= 1.03 * target, (target, racer)


@pytest.mark.parametrize("which", ["norms-gains", "biases", "heads"])
def test_gradient_reach_is_the_gradients_projection_on_the_knobs(which):
    """Chapter 10's gradient reach of a knob set, its closed form (a coordinate's squared
    gradient, <G_j, W0_j>^2 / ||W0_j||^2 per gain), against brute force: the body's loss gradient
    projected by least squares on the directions each knob moves the weights in (the model is
    linear in its knobs, so a unit step of one knob gives its direction exactly)."""
    from smolgpt.companions.ch10_which_numbers import gradient_reach
    from smolgpt.model import non_embedding_table
    rng = np.random.default_rng(0)
    x = rng.integers(0, SMALL.vocab_size, (3, SMALL.block_size))
    y = rng.integers(0, SMALL.vocab_size, (3, SMALL.block_size))
    m = build(MethodSpec(which), SMALL)
    start = m.init(np.float64)
    body = [n for n, _ in non_embedding_table(SMALL)]
    p0 = m.params(start)
    p_init = init_params(SMALL, 0, np.float64)
    assert all(np.array_equal(p0[n], p_init[n]) for n in body)     # the knobs start at the init
    _, g = loss_and_grads(p0, x, y, SMALL)
    flat = np.concatenate([g[n].ravel() for n in body])
    directions = []
    for name, shape in m.knobs:
        for i in range(math.prod(shape)):
            t = {k: v.copy() for k, v in start.items()}
            t[name].reshape(-1)[i] += 1.0
            p = m.params(t)
            directions.append(np.concatenate([(p[n] - p0[n]).ravel() for n in body]))
    D = np.stack(directions, 1)
    coef = np.linalg.lstsq(D, flat, rcond=None)[0]
    brute = float(np.square(D @ coef).sum() / np.square(flat).sum())
    label = {"norms-gains": "norms+gains"}.get(which, which)
    n, followed = gradient_reach(SMALL, 0, x, y)[label]
    assert n == m.n_trainable
    assert abs(followed - brute) <= 1e-10 * max(brute, 1e-12), (followed, brute)
