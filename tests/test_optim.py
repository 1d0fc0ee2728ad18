"""AdamW, clipping and the schedule against steps computed by hand."""

import math

import numpy as np

from smolgpt.optim import AdamWConfig, adamw_init, adamw_step, clip_grad_norm, lr_at


def test_adamw_two_steps_by_hand():
    cfg = AdamWConfig(beta1=0.9, beta2=0.99, eps=1e-8, weight_decay=0.5)
    w = {"w": np.array([[1.0, -2.0]]), "b": np.array([3.0])}
    s = adamw_init(w)
    g1 = {"w": np.array([[0.5, 0.1]]), "b": np.array([-1.0])}
    g2 = {"w": np.array([[-0.2, 0.4]]), "b": np.array([2.0])}
    adamw_step(w, g1, s, lr=0.1, cfg=cfg, decay_keys={"w"})
    adamw_step(w, g2, s, lr=0.05, cfg=cfg, decay_keys={"w"})

    def by_hand(x, ga, gb, decay):
        m = v = 0.0
        for t, (g, lr) in enumerate([(ga, 0.1), (gb, 0.05)], start=1):
            m = 0.9 * m + 0.1 * g
            v = 0.99 * v + 0.01 * g * g
            mh, vh = m / (1 - 0.9 ** t), v / (1 - 0.99 ** t)
            if decay:
                x = x * (1 - lr * 0.5)
            x = x - lr * mh / (math.sqrt(vh) + 1e-8)
        return x

    assert abs(w["w"][0, 0] - by_hand(1.0, 0.5, -0.2, True)) < 1e-12
    assert abs(w["w"][0, 1] - by_hand(-2.0, 0.1, 0.4, True)) < 1e-12
    assert abs(w["b"][0] - by_hand(3.0, -1.0, 2.0, False)) < 1e-12     # no decay on 1-D
    assert s["t"] == 2


def test_first_adam_step_moves_each_weight_by_lr():
    # with bias correction, step 1 is lr * g / |g| (up to eps): a known Adam property
    w = {"a": np.array([1.0, 1.0, 1.0])}
    s = adamw_init(w)
    adamw_step(w, {"a": np.array([1e-3, -5.0, 2.0])}, s, lr=0.01, cfg=AdamWConfig(weight_decay=0))
    assert np.allclose(w["a"], [0.99, 1.01, 0.99], atol=1e-7)


def test_clip_grad_norm():
    g = {"a": np.array([3.0, 0.0]), "b": np.array([[4.0]])}
    norm = clip_grad_norm(g, 1.0)
    assert abs(norm - 5.0) < 1e-12
    assert abs(math.hypot(g["a"][0], g["b"][0, 0]) - 1.0) < 1e-6
    g = {"a": np.array([0.3, 0.4])}
    assert abs(clip_grad_norm(g, 1.0) - 0.5) < 1e-12 and np.allclose(g["a"], [0.3, 0.4])


def test_schedule():
    assert lr_at(0, 1.0, 10, 100) == 0.1
    assert lr_at(9, 1.0, 10, 100) == 1.0
    assert abs(lr_at(10, 1.0, 10, 100) - 1.0) < 1e-12                 # cosine starts at the top
    assert abs(lr_at(55, 1.0, 10, 100, 0.1) - 0.55) < 1e-12           # half way: mid point
    assert abs(lr_at(100, 1.0, 10, 100, 0.1) - 0.1) < 1e-12
    lrs = [lr_at(s, 1.0, 10, 100) for s in range(10, 101)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))                   # monotone decay


def test_grad_norm_is_one_float32_pass_accurate_to_float32():
    from smolgpt.optim import grad_norm
    rng = np.random.default_rng(0)
    g = {"a": rng.standard_normal((300, 70)).astype(np.float32),
         "b": rng.standard_normal(1000).astype(np.float32)}
    exact = math.sqrt(sum(float(np.sum(v.astype(np.float64) ** 2)) for v in g.values()))
    assert abs(grad_norm(g) - exact) < 1e-5 * exact
    big = {"a": np.full(4, 1e20, dtype=np.float32)}          # squares overflow float32 ...
    assert abs(grad_norm(big) - 2e20) < 1e-6 * 2e20          # ... but the norm is finite


def test_nonfinite_gradient_gives_nonfinite_norm_and_no_scaling():
    from smolgpt.optim import first_nonfinite, grad_norm
    for bad in (np.nan, np.inf, -np.inf):
        g = {"a": np.array([3.0, 4.0], dtype=np.float32), "b": np.array([1.0, bad], np.float32),
             "c": np.array([np.nan], dtype=np.float32)}
        keep = {k: v.copy() for k, v in g.items()}
        norm = clip_grad_norm(g, 1.0)
        assert not math.isfinite(norm) and not math.isfinite(grad_norm(g))
        assert np.array_equal(g["a"], keep["a"])                 # nothing was scaled
        assert first_nonfinite(g) == "b"
    assert first_nonfinite({"a": np.ones(3)}) is None


def test_adamw_blocks_equal_one_block(monkeypatch):
    # the cache-sized blocks of adamw_step do the same arithmetic as one pass over each array;
    # a non-contiguous array, larger than a block, is updated as one block
    from smolgpt import optim
    rng = np.random.default_rng(1)
    w0 = {"w": rng.standard_normal((50, 30)).astype(np.float32), "b": np.ones(7, np.float32),
          "t": rng.standard_normal((40, 20)).astype(np.float32).T}        # F-ordered
    g = {k: rng.standard_normal(v.shape).astype(np.float32) for k, v in w0.items()}
    results = []
    for block in (1 << 20, 64):
        monkeypatch.setattr(optim, "_BLOCK", block)
        w = {k: v.copy(order="K") for k, v in w0.items()}
        s = adamw_init(w)
        for _ in range(3):
            adamw_step(w, g, s, lr=0.1, decay_keys={"w"})
        results.append(w)
    assert not np.array_equal(results[0]["w"], w0["w"])                  # it moved
    for r in results[1:]:
        for k in w0:
            assert np.array_equal(results[0][k], r[k]), k
