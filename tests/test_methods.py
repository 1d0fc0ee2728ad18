"""Every parameterization: its map's gradient checked through the whole model, counts, errors."""

import math

import numpy as np
import pytest

from smolgpt.gradcheck import numerical_grad, rel_error
from smolgpt.methods import MethodError, MethodSpec, build
from smolgpt.model import (GPTConfig, count_params, init_constant, init_params, loss_and_grads,
                           loss_only, non_embedding_table)

SMALL = GPTConfig(n_layer=2, n_head=2, n_embd=8, block_size=6, vocab_size=11)

SPECS = [
    MethodSpec("full"),
    MethodSpec("embeddings"),
    MethodSpec("basis", d=7),
    MethodSpec("basis", d=3, per_tensor=True),
    MethodSpec("basis", d=7, offset=False),
    MethodSpec("fastfood", d=20),
    MethodSpec("fastfood", d=4, per_tensor=True),
    MethodSpec("fft-fastfood", d=20),
    MethodSpec("fft-fastfood", d=4, per_tensor=True, offset=False),
    MethodSpec("lora", rank=2, alpha=3.0),
    # chapter 07's options of the combination, each through the whole model
    MethodSpec("basis", d=4, offset=False, coef_init="normal_inv_d", basis_scale="gpt2",
               residual_scale=False, coverage="literal"),
    MethodSpec("basis", d=3, offset=False, coef_init="inv_d", coverage="constants"),
    MethodSpec("basis", d=3, per_tensor=True, offset=False, coef_init="normal",
               coverage="trained"),
    MethodSpec("basis", d=5, offset=False, coef_init="zeros"),
    MethodSpec("fastfood", d=8, coverage="trained", basis_scale="gpt2", residual_scale=False),
    MethodSpec("basis", d=4, coef_init="ones", coverage="constants"),
    # SAID: a shared a, a scale per tensor; d=300 is larger than every tensor of SMALL
    MethodSpec("said", d=20),
    MethodSpec("said", d=300, seed=3),
    # the bridges: VeRA (r=20 is above every width of SMALL, which VeRA allows) and NOLA
    MethodSpec("vera", rank=3),
    MethodSpec("vera", rank=20, vera_d_init=-0.5, seed=2),
    MethodSpec("nola", rank=2, alpha=3.0, nola_k=5, nola_l=7),
    MethodSpec("nola", rank=8, nola_k=40, nola_l=3, seed=1),
]


def nudged_trainables(method, seed):
    """float64 trainables moved off their starting values (coefficients 0, LoRA B = 0), so that
    every term of the pullback is exercised."""
    rng = np.random.default_rng(seed)
    t = method.init(dtype=np.float64)
    for k in t:
        t[k] = t[k] + 0.3 * rng.standard_normal(t[k].shape)
    return t


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.label().replace(" ", "_"))
def test_pullback_is_the_gradient(spec):
    """method.pullback(dL/dparams) == d L(method.params(t)) / dt by central differences."""
    method = build(spec, SMALL)
    t = nudged_trainables(method, 3)
    rng = np.random.default_rng(4)
    idx = rng.integers(0, SMALL.vocab_size, (2, 5))
    tgt = rng.integers(0, SMALL.vocab_size, (2, 5))
    _, grads = loss_and_grads(method.params(t), idx, tgt, SMALL)
    tg = method.pullback(t, grads)
    assert set(tg) == set(t)
    f = lambda: loss_only(method.params(t), idx, tgt, SMALL)
    for k in t:
        probe = None if t[k].size <= 60 else rng.choice(t[k].size, 60, replace=False)
        # A coefficient moves every weight by only ~0.02 * its change, so its gradient is ~1e-4
        # and a 1e-6 nudge changes the loss by ~1e-10, where float64 rounding of the loss
        # (~1e-16) already costs ~1e-6 relative. A 1e-4 nudge moves weights by only ~2e-6, so
        # its truncation error stays far below the bound while rounding drops 100x.
        # LayerNorm and bias tensors a subspace method trains directly sit next to weights of
        # GPT-2's scale, so their gradients are as small, and get the same nudge.
        # SAID's scales multiply offsets of that size too.
        # VeRA's vectors scale products of two small frozen matrices (gradients ~1e-4, as
        # small as a coefficient's, and moving b or d by 1e-3 moves a weight by only ~1e-5);
        # NOLA's coefficients sit between (~1e-2): measured rounding-vs-truncation optimum.
        eps = 1e-4 if k in ("coef", "scale") or k in dict(getattr(method, "trained", ())) \
            else 1e-3 if k.startswith("vera.") else 1e-5 if k.startswith("nola.") else 1e-6
        num = numerical_grad(f, t[k], eps=eps, indices=probe)
        assert np.abs(num).max() > 1e-8, (k, "a probe with no gradient tests nothing")
        ana = tg[k].reshape(-1) if probe is None else tg[k].reshape(-1)[probe]
        assert rel_error(ana, num) < 1e-7, (k, rel_error(ana, num))


def test_counts_in_the_posts_terms():
    gpt2 = GPTConfig.preset("gpt2")
    assert build(MethodSpec("full"), gpt2).n_trainable == 85_056_000
    assert build(MethodSpec("embeddings"), gpt2).n_trainable == 0
    assert build(MethodSpec("basis", d=5), gpt2).n_trainable == 5
    assert build(MethodSpec("basis", d=5, per_tensor=True), gpt2).n_trainable == 730
    # LoRA r on c_attn (768x2304), attn c_proj (768x768), c_fc (768x3072), mlp c_proj (3072x768)
    r = 4
    per_block = r * ((768 + 2304) + (768 + 768) + (768 + 3072) + (3072 + 768))
    assert build(MethodSpec("lora", rank=r), gpt2).n_trainable == 12 * per_block


def test_subspace_offset_form_starts_at_the_gpt2_init():
    m = build(MethodSpec("fastfood", d=16), SMALL)
    p = m.params(m.init(np.float64))
    ref = init_params(SMALL, 0, np.float64)
    for name in p:
        assert np.allclose(p[name], ref[name], atol=1e-6), name


@pytest.mark.parametrize("kind", ["basis", "fastfood", "fft-fastfood"])
def test_no_offset_form_has_gpt2_init_statistics(kind):
    c = GPTConfig(n_layer=2, n_head=2, n_embd=64, block_size=8, vocab_size=50)
    m = build(MethodSpec(kind, d=5, offset=False), c)
    p = m.params(m.init(np.float64))
    w = p["h.0.mlp.c_fc.weight"]                                   # 16,384 entries
    # a = ones: each weight is sum_k P[i, k] / sqrt(5) * 0.02, unit-variance P entries, so
    # N(0, 0.02^2)-like; 6-sigma bound on the std estimate (4th moment of the sinusoidal
    # FFT-Fastfood entries is smaller than a Gaussian's, so the bound holds for it too)
    assert abs(w.std() - 0.02) < 6 * 0.02 / math.sqrt(2 * w.size)
    r = p["h.1.attn.c_proj.weight"]                                # residual: 0.02 / sqrt(4)
    assert abs(r.std() - 0.01) < 6 * 0.01 / math.sqrt(2 * r.size)
    g = p["h.1.ln_2.weight"]                                       # LayerNorm gains near 1
    assert abs(g.mean() - 1.0) < 6 * 0.02 / math.sqrt(g.size)


def test_lora_starts_at_the_init_and_is_low_rank():
    m = build(MethodSpec("lora", rank=2), SMALL)
    t = m.init(np.float64)
    p0 = m.params(t)
    ref = init_params(SMALL, 0, np.float64)
    assert all(np.array_equal(p0[k], ref[k]) for k in ref)         # B = 0: no change at start
    t = nudged_trainables(m, 1)
    p = m.params(t)
    delta = p["h.0.mlp.c_fc.weight"] - ref["h.0.mlp.c_fc.weight"]
    s = np.linalg.svd(delta, compute_uv=False)
    assert s[1] > 1e-3 and s[2] < 1e-12 * s[0]                    # rank exactly 2


@pytest.mark.parametrize("spec, words", [
    (dict(name="bogus"), "unknown method"),
    (dict(name="basis", d=0), "positive integer"),
    (dict(name="fastfood", d=10 ** 9), "larger than the"),
    (dict(name="basis", d=9, per_tensor=True), "smallest tensor"),
    (dict(name="lora", rank=9), "exceeds min"),
    (dict(name="lora", rank=0), "positive integer"),
])
def test_bad_method_options_are_refused_clearly(spec, words):
    with pytest.raises(MethodError, match=words):
        build(MethodSpec(**spec), SMALL)


def test_embeddings_only_trains_only_embeddings():
    m = build(MethodSpec("embeddings"), SMALL)
    t = m.init()
    assert set(t) == {"wte.weight", "wpe.weight"} and m.n_trainable == 0
    assert count_params(SMALL) - count_params(SMALL, True) == sum(v.size for v in t.values())


def test_per_tensor_coefficients_shape():
    m = build(MethodSpec("basis", d=3, per_tensor=True), SMALL)
    assert m.init()["coef"].shape == (len(non_embedding_table(SMALL)), 3)


# ---- the options of the combination (chapter 07) ---------------------------------------------

WIDE = GPTConfig(n_layer=2, n_head=2, n_embd=64, block_size=8, vocab_size=50)


def start(**options):
    """The parameters a no-offset d=5 basis on WIDE starts at, in float64, with `options`."""
    m = build(MethodSpec("basis", d=5, offset=False, **options), WIDE)
    return m, m.params(m.init(np.float64))


def near(x, value, n):
    """|x - value| within 6 standard errors of an estimate from n draws of spread `value`."""
    return abs(x - value) < 6 * value / math.sqrt(2 * n)


def test_default_options_are_the_old_behaviour():
    """coef_init 'default' is zeros with the offset and ones without; labels are unchanged."""
    assert MethodSpec("basis", d=5, offset=False).label() == "basis d=5 no-offset"
    for offset, fill in ((True, 0.0), (False, 1.0)):
        m = build(MethodSpec("basis", d=5, offset=offset), SMALL)
        assert np.array_equal(m.init()["coef"], np.full(5, fill, np.float32))
        same = build(MethodSpec("basis", d=5, offset=offset, coef_init="zeros" if offset else
                                "ones"), SMALL)
        a, b = m.params(m.init(np.float64)), same.params(same.init(np.float64))
        assert all(np.array_equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("how, mean, std", [("ones", 1.0, 0.0), ("inv_d", 0.2, 0.0),
                                            ("zeros", 0.0, 0.0), ("normal", 0.0, 1.0),
                                            ("normal_inv_d", 0.0, 1 / math.sqrt(5))])
def test_coefficient_inits(how, mean, std):
    m = build(MethodSpec("basis", d=5, per_tensor=True, offset=False, coef_init=how), WIDE)
    a = m.init(np.float64)["coef"]                                   # (26, 5): 130 draws
    if std == 0:
        assert np.all(a == mean)
    else:
        assert abs(a.mean() - mean) < 6 * std / math.sqrt(a.size) and near(a.std(), std, a.size)
    again = build(MethodSpec("basis", d=5, per_tensor=True, offset=False, coef_init=how), WIDE)
    assert np.array_equal(again.init(np.float64)["coef"], a)        # drawn from the seed


def test_basis_scale_and_residual_scale_set_the_weights_spread():
    _, p = start(basis_scale="gpt2")                    # every W^k spread 0.02: sum of 5 at a=1
    assert near(p["h.0.mlp.c_fc.weight"].std(), 0.02 * math.sqrt(5), 64 * 256)
    _, p = start(coef_init="inv_d", basis_scale="gpt2")             # a = 1/d: 0.02 / sqrt(5)
    assert near(p["h.0.mlp.c_fc.weight"].std(), 0.02 / math.sqrt(5), 64 * 256)
    _, p = start()
    assert near(p["h.1.mlp.c_proj.weight"].std(), 0.01, 256 * 64)   # 0.02 / sqrt(2 * 2)
    _, p = start(residual_scale=False)
    assert near(p["h.1.mlp.c_proj.weight"].std(), 0.02, 256 * 64)   # the Flax port's init
    assert near(p["h.1.attn.c_proj.weight"].std(), 0.02, 64 * 64)
    assert near(p["h.1.mlp.c_fc.weight"].std(), 0.02, 64 * 256)     # others unchanged


def test_coverages():
    m, p = start(coverage="literal")              # gains are the combination alone: near 0
    g = np.concatenate([p[f"h.{i}.ln_{j}.weight"] for i in range(2) for j in (1, 2)])
    assert abs(g.mean()) < 6 * 0.02 / math.sqrt(g.size) and near(g.std(), 0.02, g.size)
    for coverage in ("constants", "trained"):
        m, p = start(coverage=coverage)
        assert all(np.all(p[n] == init_constant(n)) for n, s in non_embedding_table(WIDE)
                   if len(s) == 1)
        assert near(p["h.0.mlp.c_fc.weight"].std(), 0.02, 64 * 256)
    n_rest = sum(math.prod(s) for _, s in non_embedding_table(WIDE) if len(s) == 1)
    assert build(MethodSpec("basis", d=5, coverage="constants"), WIDE).n_trainable == 5
    trained = build(MethodSpec("basis", d=5, coverage="trained"), WIDE)
    assert trained.n_trainable == 5 + n_rest
    t = trained.init()
    assert set(t) - {"wte.weight", "wpe.weight", "coef"} == \
        {n for n, s in non_embedding_table(WIDE) if len(s) == 1}
    assert trained.decay_keys(t) == set() and trained.lr_groups(t) == {"coef": "coef_lr"}
    assert set(trained.trainable_shapes()) == set(t)


def test_every_non_default_option_is_in_the_label():
    specs = [MethodSpec("basis", d=5, offset=False)] + [
        MethodSpec("basis", d=5, offset=False, **o) for o in (
            dict(coef_init="ones"), dict(coef_init="inv_d"), dict(coef_init="normal"),
            dict(coef_init="normal_inv_d"), dict(basis_scale="gpt2"),
            dict(residual_scale=False), dict(coverage="literal"), dict(coverage="constants"),
            dict(coverage="trained"))]
    assert len({s.label() for s in specs}) == len(specs)


def test_coefficients_are_logged_every_step():
    m = build(MethodSpec("basis", d=5, offset=False), SMALL)
    logged = m.log_values(m.init())
    assert logged["coef"] == [1.0] * 5 and abs(logged["coef_norm"] - math.sqrt(5)) < 1e-6
    assert build(MethodSpec("full"), SMALL).log_values({}) == {}


@pytest.mark.parametrize("spec, words", [
    (dict(name="basis", coef_init="twos"), "--coef-init must be one of"),
    (dict(name="basis", basis_scale="huge"), "--basis-scale must be one of"),
    (dict(name="basis", coverage="some"), "--coverage must be one of"),
    (dict(name="lora", coef_init="ones"),
     "--coef-init is an option of basis, fastfood, fft-fastfood, not of 'lora'"),
    (dict(name="full", residual_scale=False), "drop --no-residual-scale"),
    (dict(name="said", coverage="trained"), "--coverage is an option of basis, fastfood"),
    (dict(name="basis", coverage="literal"), "add --no-offset"),
    (dict(name="basis", offset=False, coef_init="zeros", coverage="constants"),
     "could never move"),
])
def test_bad_combination_options_are_refused(spec, words):
    with pytest.raises(MethodError, match=words):
        MethodSpec(**spec)


def test_zeros_without_offset_moves_only_through_the_biases():
    """Why MethodSpec refuses zeros without an offset when only weight matrices combine: with
    every weight matrix 0, their gradients are exactly 0 (with coverage 'all' the bias and
    LayerNorm coordinates still give a a gradient)."""
    m = build(MethodSpec("basis", d=5, offset=False, coef_init="zeros"), SMALL)
    t = m.init(np.float64)
    rng = np.random.default_rng(0)
    idx = rng.integers(0, SMALL.vocab_size, (2, 5))
    _, grads = loss_and_grads(m.params(t), idx, np.roll(idx, -1, 1), SMALL)
    assert all(np.all(grads[n] == 0) for n, s in non_embedding_table(SMALL) if len(s) == 2)
    assert np.abs(m.pullback(t, grads)["coef"]).max() > 0


# ---- SAID ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("d", [5, 300])
def test_said_is_its_formula_against_dense_projections(d):
    """theta_t = theta0_t + lambda_t sigma_t (P_t a) / sqrt(d), each P_t built as a dense matrix
    (the first D_t rows of its Fastfood when the tensor is smaller than d)."""
    from smolgpt.model import init_std
    m = build(MethodSpec("said", d=d), SMALL)
    rng = np.random.default_rng(0)
    t = m.init(np.float64)
    t["coef"] = rng.standard_normal(d)
    t["scale"] = rng.uniform(-2, 2, len(m.table))
    p = m.params(t)
    theta0 = init_params(SMALL, 0, np.float64)
    for i, ((name, shape), op) in enumerate(zip(m.table, m.operators())):
        P = op.dense()[:math.prod(shape)]                           # (D_t, d)
        sigma = init_std(SMALL, name) or 0.02
        want = theta0[name] + t["scale"][i] * sigma * (P @ t["coef"]).reshape(shape) / math.sqrt(d)
        assert np.allclose(p[name], want, rtol=1e-12, atol=1e-14), name


def test_said_counts_and_start():
    m = build(MethodSpec("said", d=7), SMALL)
    m_tensors = len(non_embedding_table(SMALL))
    assert m.n_trainable == 7 + m_tensors
    t = m.init()
    assert np.all(t["coef"] == 0) and np.all(t["scale"] == 1) and t["scale"].shape == (m_tensors,)
    assert set(m.trainable_shapes()) == set(t)
    p, ref = m.params(m.init(np.float64)), init_params(SMALL, 0, np.float64)
    assert all(np.array_equal(p[k], ref[k]) for k in ref)          # a = 0: exactly theta_0
    assert m.lr_groups(t) == {"coef": "coef_lr", "scale": "scale_lr"} and m.decay_keys(t) == set()
    assert build(MethodSpec("said", d=1000), GPTConfig.preset("gpt2")).n_trainable == 1000 + 146
    assert MethodSpec("said", d=1000).label() == "said d=1000"


def test_said_scale_has_no_gradient_until_a_moves():
    m = build(MethodSpec("said", d=9), SMALL)
    t = m.init(np.float64)
    rng = np.random.default_rng(1)
    idx = rng.integers(0, SMALL.vocab_size, (2, 5))
    _, grads = loss_and_grads(m.params(t), idx, np.roll(idx, -1, 1), SMALL)
    tg = m.pullback(t, grads)
    assert np.all(tg["scale"] == 0) and np.abs(tg["coef"]).max() > 0


@pytest.mark.parametrize("spec, words", [
    (dict(name="said", d=4, per_tensor=True), "drop --per-tensor"),
    (dict(name="said", d=4, offset=False), "drop --no-offset"),
])
def test_said_refuses_what_it_is_not(spec, words):
    with pytest.raises(MethodError, match=words):
        build(MethodSpec(**spec), SMALL)


# ---- the bridges: VeRA and NOLA -----------------------------------------------------------------

def moved(method, seed=0):
    """float64 trainables away from their start (b, alpha, beta 0; d at d_init)."""
    rng = np.random.default_rng(seed)
    t = method.init(np.float64)
    for k in t:
        if k.startswith(("vera.", "nola.")):
            t[k] = t[k] + rng.uniform(0.5, 1.5, t[k].shape) * rng.choice([-1, 1], t[k].shape)
    return t


def test_vera_is_its_formula_in_the_papers_layout():
    """W = W_0 + (Lambda_b B Lambda_d A)^T with the paper's A (r, m), B (n, r): corners of one
    shared pair of the largest shape, written with explicit diagonal matrices."""
    m = build(MethodSpec("vera", rank=3), SMALL)
    t = moved(m)
    p, ref = m.params(t), init_params(SMALL, 0, np.float64)
    A_ours, B_ours = m.shared_pair(np.float64)                # (m_max, r), (r, n_max)
    A_paper, B_paper = A_ours.T, B_ours.T                     # (r, m_max), (n_max, r)
    for name, (rows, cols) in m.targets:
        d, b = t[f"vera.{name}.d"], t[f"vera.{name}.b"]
        dW = np.diag(b) @ B_paper[:cols] @ np.diag(d) @ A_paper[:, :rows]     # (out, in)
        assert np.allclose(p[name], ref[name] + dW.T, rtol=1e-12, atol=1e-15), name
    for name, shape in non_embedding_table(SMALL):            # the rest is frozen
        if len(shape) == 1:
            assert np.array_equal(p[name], ref[name]), name


def test_vera_pair_is_shared_seeded_and_kaiming_uniform():
    m = build(MethodSpec("vera", rank=3, seed=5), WIDE)       # widths 64, 192, 256
    A, B = m.shared_pair(np.float64)
    assert A.shape == (256, 3) and B.shape == (3, 256)
    assert np.abs(A).max() <= 1 / math.sqrt(256) and np.abs(B).max() <= 1 / math.sqrt(3)
    assert near(A.std(), 1 / math.sqrt(3 * 256), A.size)      # uniform: std = bound / sqrt(3)
    again = build(MethodSpec("vera", rank=3, seed=5), WIDE).shared_pair(np.float64)
    assert np.array_equal(again[0], A) and np.array_equal(again[1], B)
    other = build(MethodSpec("vera", rank=3, seed=6), WIDE).shared_pair(np.float64)
    assert not np.allclose(other[0], A)
    a1, _ = m.pair_for((64, 192), np.float64)                 # c_attn and attn.c_proj share rows
    a2, _ = m.pair_for((64, 64), np.float64)
    assert np.shares_memory(a1, A) and np.array_equal(a1, a2)


def test_nola_is_its_formula():
    """W = W_0 + (alpha / r) (A_0 + sum_i alpha_i A_i)(sum_j beta_j B_j), summed term by term;
    A_0 is LoRA's starting A of the same seed."""
    spec = MethodSpec("nola", rank=2, alpha=3.0, nola_k=5, nola_l=7)
    m = build(spec, SMALL)
    t = moved(m)
    p, ref = m.params(t), init_params(SMALL, 0, np.float64)
    lora_A = build(MethodSpec("lora", rank=2), SMALL).init(np.float64)
    for i, (name, (rows, cols)) in enumerate(m.targets):
        A0, A_basis, B_basis = m.frozen(np.float64)[i]
        assert np.array_equal(A0, lora_A[f"lora.{name}.A"])
        A = A0 + sum(a * A_basis[j].reshape(rows, 2) for j, a in enumerate(t[f"nola.{name}.alpha"]))
        B = sum(b * B_basis[j].reshape(2, cols) for j, b in enumerate(t[f"nola.{name}.beta"]))
        assert np.allclose(p[name], ref[name] + 1.5 * A @ B, rtol=1e-12, atol=1e-15), name
        assert np.abs(A_basis).max() <= 1 / math.sqrt(5)
        assert np.abs(B_basis).max() <= 1 / math.sqrt(7)
    bases = [f[1] for f in m.frozen(np.float64)]              # every matrix its own basis
    assert not np.allclose(bases[0][:, :16], bases[1][:, :16])


@pytest.mark.parametrize("spec", [MethodSpec("vera", rank=3), MethodSpec("nola", rank=2,
                                                                          nola_k=5, nola_l=7)],
                         ids=lambda s: s.name)
def test_bridges_start_at_the_init_with_a_low_rank_update(spec):
    m = build(spec, WIDE)
    ref = init_params(WIDE, 0, np.float64)
    p0 = m.params(m.init(np.float64))
    assert all(np.array_equal(p0[k], ref[k]) for k in ref)    # b = 0 / beta = 0: no change
    p = m.params(moved(m))
    for name, _ in m.targets:
        s = np.linalg.svd(p[name] - ref[name], compute_uv=False)
        r = spec.rank
        assert s[r - 1] > 1e-3 * s[0] and s[r] < 1e-12 * s[0], name   # rank exactly r


@pytest.mark.parametrize("spec, first, later", [
    (MethodSpec("vera", rank=3), "b", "d"),
    (MethodSpec("nola", rank=2, nola_k=5, nola_l=7), "beta", "alpha")],
    ids=lambda s: getattr(s, "name", str(s)))
def test_bridges_first_gradient_reaches_one_vector(spec, first, later):
    """At the start the update is 0 through b (beta): their gradients are non-zero, those of d
    (alpha) are exactly 0, as LoRA's A waits for its B."""
    m = build(spec, SMALL)
    t = m.init(np.float64)
    rng = np.random.default_rng(1)
    idx = rng.integers(0, SMALL.vocab_size, (2, 5))
    _, grads = loss_and_grads(m.params(t), idx, np.roll(idx, -1, 1), SMALL)
    tg = m.pullback(t, grads)
    for name, _ in m.targets:
        key = f"{spec.name}.{name}."
        assert np.abs(tg[key + first]).max() > 0 and np.all(tg[key + later] == 0), name


def test_bridges_counts_on_tiny_and_gpt2_small():
    tiny, gpt2 = GPTConfig.preset("tiny"), GPTConfig.preset("gpt2")
    widths = lambda c: sum(n for _, s in non_embedding_table(c) if len(s) == 2 for n in s[1:])
    assert widths(tiny) == 4_608 and widths(gpt2) == 82_944   # sum of output widths
    for r in (1, 4, 256):                                     # r + n per matrix, 16 and 48 of them
        assert build(MethodSpec("vera", rank=r), tiny).n_trainable == 4_608 + 16 * r
        assert build(MethodSpec("vera", rank=r), gpt2).n_trainable == 82_944 + 48 * r
    for k, l, r in ((64, 64, 4), (7, 9, 1), (100, 50, 16)):   # k + l per matrix, any rank
        spec = MethodSpec("nola", rank=r, nola_k=k, nola_l=l)
        assert build(spec, tiny).n_trainable == 16 * (k + l)
        assert build(spec, gpt2).n_trainable == 48 * (k + l)


@pytest.mark.parametrize("spec", [MethodSpec("vera", rank=3),
                                  MethodSpec("nola", rank=2, nola_k=5, nola_l=7)],
                         ids=lambda s: s.name)
def test_bridges_declare_what_the_loop_needs(spec):
    m = build(spec, SMALL)
    t = m.init()
    assert {k: v.shape for k, v in t.items()} == m.trainable_shapes()
    assert sum(v.size for k, v in t.items() if k not in ("wte.weight", "wpe.weight")) == \
        m.n_trainable
    field = f"{spec.name}_lr"
    groups = m.lr_groups({})
    assert set(groups) == set(t) - {"wte.weight", "wpe.weight"} and set(groups.values()) == {field}
    assert m.decay_keys(t) == set()
    assert m.needed_grads == {"wte.weight", "wpe.weight"} | {n for n, _ in m.targets}
    logged = m.log_values(t)
    first = {"vera": ("b_norm", "d_norm"), "nola": ("beta_norm", "alpha_norm")}[spec.name]
    assert logged[first[0]] == 0 and set(logged) == set(first)
    if spec.name == "vera":                                   # |d| = 0.1 sqrt(r * 10 matrices)
        assert abs(logged["d_norm"] - 0.1 * math.sqrt(3 * 8)) < 1e-6
    assert spec.label() == {"vera": "vera r=3", "nola": "nola k=5 l=7 r=2"}[spec.name]


def test_bridge_labels_name_their_options():
    assert MethodSpec("vera", rank=4, vera_d_init=0.01).label() == "vera r=4 d_init=0.01"
    assert MethodSpec("nola", rank=1, nola_k=10, nola_l=20).label() == "nola k=10 l=20 r=1"


@pytest.mark.parametrize("spec, words", [
    (dict(name="vera", rank=0), "VeRA rank must be a positive integer"),
    (dict(name="nola", rank=9, nola_k=4, nola_l=4), "exceeds min"),
    (dict(name="nola", rank=1, nola_k=9), "--nola-k 9 exceeds the 8 entries"),
    (dict(name="nola", rank=2, nola_k=4, nola_l=17), "--nola-l 17 exceeds the 16 entries"),
])
def test_bridge_options_that_cannot_work_are_refused(spec, words):
    with pytest.raises(MethodError, match=words):
        build(MethodSpec(**spec), SMALL)


@pytest.mark.parametrize("spec, words", [
    (dict(name="lora", nola_k=8), "--nola-k is an option of nola"),
    (dict(name="vera", nola_l=8), "--nola-l is an option of nola"),
    (dict(name="nola", vera_d_init=0.5), "--vera-d-init is an option of vera"),
    (dict(name="vera", vera_d_init=0.0), "finite non-zero"),
    (dict(name="vera", vera_d_init=float("nan")), "finite non-zero"),
    (dict(name="nola", nola_k=0), "--nola-k must be a positive integer"),
    (dict(name="vera", alpha=16.0), "vera has no scale alpha"),
])
def test_bridge_options_are_checked_in_the_spec(spec, words):
    with pytest.raises(MethodError, match=words):
        MethodSpec(**spec)


# ---- starting from saved weights (--init-from) -------------------------------------------------

def some_weights(seed=7):
    """A parameter dict of SMALL that is no random init of any method seed."""
    rng = np.random.default_rng(seed)
    return {k: rng.standard_normal(v.shape) * 0.1 for k, v in init_params(SMALL, 0).items()}


@pytest.mark.parametrize("spec", [MethodSpec("full"), MethodSpec("embeddings"),
                                  MethodSpec("basis", d=5), MethodSpec("fastfood", d=9),
                                  MethodSpec("fft-fastfood", d=3, per_tensor=True),
                                  MethodSpec("lora", rank=2), MethodSpec("said", d=11),
                                  MethodSpec("vera", rank=3), MethodSpec("nola", nola_k=4,
                                                                         nola_l=6, rank=2)],
                         ids=lambda s: s.label().replace(" ", "_"))
def test_every_method_starts_exactly_at_given_weights(spec):
    start = some_weights()
    m = build(spec, SMALL, start=start)
    p = m.params(m.init(np.float64))
    assert set(p) == set(start)
    for k in start:
        assert np.array_equal(p[k], start[k]), k
    t = m.init(np.float64)                          # the caller's updates never reach the start
    for v in t.values():
        v += 1.0
    assert all(np.array_equal(a, b) for a, b in zip(start.values(), some_weights().values()))


def test_start_moves_with_the_trainables_as_before():
    """Around given weights a method is the same map: params(t) - start == params0(t) - init."""
    start = some_weights()
    for spec in (MethodSpec("fastfood", d=9), MethodSpec("said", d=11), MethodSpec("lora", rank=2),
                 MethodSpec("vera", rank=3), MethodSpec("nola", nola_k=4, nola_l=6, rank=2)):
        a, b = build(spec, SMALL, start=start), build(spec, SMALL)
        t = nudged_trainables(b, 2)
        if "scale" in t:
            t["scale"] = t["scale"] + 1
        pa, pb, ref = a.params(t), b.params(t), init_params(SMALL, 0, np.float64)
        for k in ref:
            if k not in t:
                assert np.allclose(pa[k] - start[k], pb[k] - ref[k], atol=1e-12), (spec, k)


def test_a_lazy_start_is_read_only_when_needed():
    calls = []

    def loader():
        calls.append(1)
        return some_weights()

    full = build(MethodSpec("full"), SMALL, start=loader)
    full.params(some_weights())                     # full: the trainables are the model
    assert calls == []
    emb = build(MethodSpec("embeddings"), SMALL, start=loader)
    emb.params(emb.init())
    emb.params(emb.init())
    assert calls == [1]


@pytest.mark.parametrize("spec, words", [
    (dict(name="basis", d=5, offset=False), "drop --no-offset"),
    (dict(name="fastfood", d=5, coverage="constants"), "--coverage all"),
])
def test_start_needs_a_theta0(spec, words):
    with pytest.raises(MethodError, match=words):
        build(MethodSpec(**spec), SMALL, start=some_weights())


def test_start_of_another_model_is_refused():
    other = init_params(GPTConfig(n_layer=2, n_head=2, n_embd=16, block_size=6, vocab_size=11))
    m = build(MethodSpec("embeddings"), SMALL, start=other)
    with pytest.raises(MethodError, match="do not fit this model"):
        m.init()
