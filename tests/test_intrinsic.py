"""The intrinsic-dimension metric: gap closed, the crossing on log d, the bootstrap over seeds."""

import math

import pytest

from smolgpt.companions.ch08_intrinsic import crossing, d_int, describe, gap_closed, pick_lr


def test_gap_closed_is_zero_at_the_baseline_and_one_at_full():
    assert list(gap_closed([7.0, 6.0, 6.5], base=7.0, full=6.0)) == [0.0, 1.0, 0.5]


def test_crossing_interpolates_on_log_d():
    # 0.8 at d=100, 1.0 at d=10,000: 0.9 is half way in log d, at d=1,000
    assert crossing([1, 100, 10_000], [0.1, 0.8, 1.0]) == pytest.approx(1000.0)
    assert crossing([10, 100], [0.95, 0.99]) == 10.0          # already there at the first point
    assert crossing([10, 100], [0.5, 0.89]) is None
    # the FIRST crossing counts, even if the curve dips again later
    assert crossing([1, 10, 100], [0.9, 0.5, 0.95]) == 1.0


def test_d_int_without_noise_has_a_zero_width_interval():
    base, full = [8.0] * 3, [6.0] * 3
    curve = {1: [7.8] * 3, 100: [6.4] * 3, 10_000: [6.0] * 3}           # 0.1, 0.8, 1.0
    r = d_int(curve, base, full, n_boot=200)
    assert r["d_int"] == pytest.approx(1000.0) and r["lo"] == r["hi"] == pytest.approx(1000.0)
    assert r["reached_share"] == 1.0 and r["fraction"] == pytest.approx([0.1, 0.8, 1.0])
    assert "d_int90 = 1,000" in describe(r)


def test_reached_at_the_first_point_is_an_upper_bound_only():
    base, full = [8.0] * 2, [6.0] * 2
    r = d_int({1: [6.1, 6.1], 100: [6.0, 6.0]}, base, full, n_boot=100)      # 95%, 100%
    assert r["at_first"] and r["d_int"] == 1.0
    assert describe(r).startswith("d_int90 <= 1 trainable numbers: the smallest point")
    assert not d_int({1: [7.0, 7.0], 100: [6.0, 6.0]}, base, full, n_boot=100)["at_first"]


def test_not_reached_reports_the_largest_fraction_and_its_interval():
    base, full = [8.0, 8.1, 7.9], [6.0, 6.1, 5.9]
    curve = {10: [7.0, 7.2, 6.8], 1000: [6.6, 6.8, 6.4], 100_000: [6.9, 7.0, 6.8]}
    r = d_int(curve, base, full, n_boot=500)
    assert r["d_int"] is None and math.isinf(r["hi"]) and r["at"] == 1000
    assert r["max_fraction"] == pytest.approx(0.7)
    assert r["max_lo"] <= 0.7 <= r["max_hi"]
    assert "not reached: largest fraction reached 70.0% at 1,000" in describe(r)


def test_seeds_are_resampled_together():
    """Seed 1 is worse for every configuration alike: paired resampling keeps the fraction
    exact, as it would be for every single seed."""
    base, full = [8.0, 9.0], [6.0, 7.0]
    curve = {10: [7.0, 8.0], 100: [6.1, 7.1]}                      # 0.5 and 0.95 on each seed
    r = d_int(curve, base, full, n_boot=300)
    assert r["band_lo"] == pytest.approx([0.5, 0.95]) and r["band_hi"] == pytest.approx([0.5, 0.95])
    assert r["lo"] == pytest.approx(r["d_int"]) and r["hi"] == pytest.approx(r["d_int"])


def test_fewer_seeds_at_one_d_is_allowed():
    r = d_int({10: [7.0, 7.1, 6.9], 100_000: [6.1]}, [8.0, 8.0, 8.0], [6.0, 6.0, 6.0],
              n_boot=100)
    assert r["n_seeds"] == {10: 3, 100_000: 1} and r["d_int"] is not None


def test_each_seed_alone_and_paired_resamples():
    base, full = [8.0, 8.0], [6.0, 6.0]
    # seed 0 crosses between 10 and 100, seed 1 only at 1,000
    curve = {10: [7.0, 7.4], 100: [6.0, 6.8], 1000: [6.0, 6.0]}
    r = d_int(curve, base, full, n_boot=200)
    assert r["each"][0] == pytest.approx(10 ** 1.8) and r["each"][1] == pytest.approx(10 ** 2.75)
    # the same seed and seed counts draw the same resamples: a second curve's replicates pair up
    other = d_int({10: [7.1, 7.5], 100: [6.1, 6.9], 1000: [6.0, 6.0]}, base, full, n_boot=200)
    assert len(r["boot"]) == len(other["boot"]) == 200
    assert all(b >= a for a, b in zip(r["boot"], other["boot"]))     # worse curve, later crossing
    none = d_int({10: [7.0, 7.0]}, base, full, n_boot=10)
    assert none["each"] == [math.inf, math.inf]


def test_pick_lr_keeps_its_rate_on_a_near_tie_only(capsys):
    asked = []

    def losses(at):
        def at_lr(lr):
            asked.append(lr)
            return at[lr]
        return at_lr

    # 0.03 is best by 0.01 on average, but the seeds disagree: not resolved, 0.01 stays
    tie = {1e-3: [5.0, 5.1, 5.2], 1e-2: [4.00, 4.05, 4.10], 3e-2: [4.02, 4.00, 4.08],
           1e-1: [4.5, 4.6, 4.7]}
    assert pick_lr(losses(tie), [1e-3, 1e-2, 3e-2, 1e-1], "t") == 3e-2
    assert pick_lr(losses(tie), [1e-3, 1e-2, 3e-2, 1e-1], "t", keep=1e-2) == 1e-2
    assert "kept 0.01" in capsys.readouterr().out
    # 0.03 better on every seed by about 0.1: resolved, the kept rate gives way and says so
    clear = {**tie, 3e-2: [3.90, 3.96, 4.00]}
    assert pick_lr(losses(clear), [1e-3, 1e-2, 3e-2, 1e-1], "t", keep=1e-2) == 3e-2
    assert "0.03 replaces it" in capsys.readouterr().out
    # a kept rate the sweep does not run cannot be checked, so it is refused before any run
    asked.clear()
    with pytest.raises(ValueError, match="not on the sweep's grid"):
        pick_lr(losses(tie), [1e-3, 1e-2, 3e-2, 1e-1], "t", keep=5e-2)
    assert asked == []


def test_stable_weights_depend_on_the_weights_alone(tmp_path, finished_run):
    import time
    import numpy as np
    from smolgpt.checkpoint import load_params, start_params
    from smolgpt.companions.ch08_intrinsic import stable_weights
    src = finished_run / "checkpoint.npz"
    a = stable_weights(src, tmp_path / "a.npz", note={"run": "x"})
    time.sleep(1.1)                                    # nothing of the time may enter
    b = stable_weights(src, tmp_path / "b.npz", note={"run": "x"})
    assert a.read_bytes() == b.read_bytes()
    params, gpt, _ = load_params(src)
    again = start_params(a, gpt)
    assert sorted(again) == sorted(params)
    assert all(np.array_equal(again[k], params[k]) for k in params)
    assert stable_weights(src, tmp_path / "c.npz", note={"run": "y"}).read_bytes() != a.read_bytes()


def test_a_run_from_pretrained_weights_is_keyed_by_the_run_that_made_them(tmp_path,
                                                                            finished_run):
    """Weights a chapter keeps for its fine-tuning runs name the run that made them: the runs
    started from them are keyed by that run, so the same pretraining made again with other
    float32 rounding (a BLAS kernel, faster layers) keeps every fine-tuning run it already has.
    A file that names no maker is keyed by its bytes."""
    import dataclasses
    from smolgpt.checkpoint import MADE_BY, load, save, weights_identity
    from smolgpt.companions.ch08_intrinsic import stable_weights
    from smolgpt.experiments.runs import run_key
    from smolgpt.methods import MethodSpec
    from smolgpt.train import TrainConfig
    src = finished_run / "checkpoint.npz"
    a = stable_weights(src, tmp_path / "a.npz", note={MADE_BY: "0123456789abcdef", "seed": 0})
    trainables, adam, meta = load(src)
    trainables["wte.weight"][0, 0] += 1e-6                  # rounded another way
    moved = tmp_path / "moved.npz"
    save(moved, trainables, adam, meta)
    b = stable_weights(moved, tmp_path / "b.npz", note={MADE_BY: "0123456789abcdef", "seed": 0})
    assert a.read_bytes() != b.read_bytes()
    assert weights_identity(a) == weights_identity(b) == "run:0123456789abcdef"
    c = TrainConfig(gpt=load(src).model, method=MethodSpec("fastfood", d=8))
    data_id = {"train": "x", "val": "y"}
    key = lambda p: run_key(dataclasses.replace(c, init_from=str(p)), data_id)  # noqa: E731
    assert key(a) == key(b) == run_key(dataclasses.replace(c, init_from="gone.npz"), data_id,
                                       source="run:0123456789abcdef")
    other = stable_weights(src, tmp_path / "o.npz", note={MADE_BY: "fedcba9876543210"})
    plain = stable_weights(src, tmp_path / "p.npz", note={"seed": 0})
    assert len({key(a), key(other), key(plain)}) == 3
    assert weights_identity(plain).startswith("sha256:")
