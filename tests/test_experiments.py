"""The experiment runner's statistics and the learning-rate tuner, on values whose answers are
known without training (the runs themselves are exercised by the chapter tests); the record of
finished runs and a run stopped short, on a micro model."""

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
import scipy.stats

from smolgpt.experiments import runs as runs_module
from smolgpt.experiments import sweep as sweep_module
from smolgpt.experiments.runs import Record, run
from smolgpt.layers import blas_kernel
from smolgpt.experiments.stats import mean_se, paired_interval, verdict
from smolgpt.methods import MethodSpec
from smolgpt.model import GPTConfig
from smolgpt.train import TrainConfig


def test_paired_interval_is_students_t_on_the_differences():
    a = [7.0, 7.2, 7.1, 7.3]
    b = [7.1, 7.28, 7.22, 7.38]
    d = np.subtract(b, a)
    half = scipy.stats.t.ppf(0.975, 3) * d.std(ddof=1) / 2
    iv = paired_interval(a, b)
    assert iv["diff"] == pytest.approx(d.mean())
    assert (iv["lo"], iv["hi"]) == pytest.approx((d.mean() - half, d.mean() + half))
    assert verdict(iv) == "<"                      # every b is above its a: a is lower
    assert verdict(paired_interval(b, a)) == ">"
    assert verdict(paired_interval(a, [7.1, 7.1, 7.2, 7.2])) == "~"   # differences straddle 0


def test_one_seed_gives_no_interval_and_no_verdict():
    iv = paired_interval([7.0], [7.5])
    assert math.isnan(iv["lo"]) and verdict(iv) == "~"
    assert math.isnan(mean_se([7.0])[1])
    with pytest.raises(ValueError, match="same seeds"):
        paired_interval([1.0, 2.0], [1.0, 2.0, 3.0])


def _runner(loss_of):
    """A stand-in for runs.run_many that gives each config the final loss loss_of(cfg)."""
    def run_many(cfgs, verbose=True, **kwargs):
        return [{"final": {"loss": loss_of(cfg)}} for cfg in cfgs]
    return run_many


def _fake_runs(best: float, calls: list):
    """run_many stand-in: the final loss is (log10 lr - log10 best)^2, recorded per run."""
    def loss(cfg):
        calls.append(cfg.coef_lr)
        return (math.log10(cfg.coef_lr) - math.log10(best)) ** 2 + 7
    return _runner(loss)


@pytest.mark.parametrize("best, grid_after", [
    (0.3, [0.1, 0.3, 1.0]),                       # interior at once: no extension
    (3.0, [0.1, 0.3, 1.0, 3.33, 11.1]),           # past the top edge: two steps of x1/0.3
    (0.08, [0.0333, 0.1, 0.3, 1.0]),              # one step down, at the grid's own spacing
])
def test_tune_extends_the_grid_until_the_best_is_interior(monkeypatch, best, grid_after):
    calls = []
    monkeypatch.setattr(sweep_module, "run_many", _fake_runs(best, calls))
    base = TrainConfig(method=MethodSpec("fastfood", d=10))
    r = sweep_module.tune(base, "coef_lr", [0.1, 0.3, 1.0], seeds=(0,), extend=2)
    assert r["grid"] == pytest.approx(grid_after, rel=1e-2)
    assert r["interior"]
    assert r["best"] == pytest.approx(min(grid_after, key=lambda v: abs(math.log(v / best))),
                                      rel=1e-2)


def test_tune_gives_up_after_extend_steps_and_says_the_edge(monkeypatch):
    monkeypatch.setattr(sweep_module, "run_many", _fake_runs(100.0, []))
    r = sweep_module.tune(TrainConfig(method=MethodSpec("fastfood", d=10)), "coef_lr",
                          [0.1, 0.3, 1.0], seeds=(0,), extend=1)
    assert not r["interior"] and r["best"] == r["grid"][-1]
    assert "extend the grid" in sweep_module.format_sweep(r)


def test_a_run_being_made_by_another_process_is_waited_for_and_reused(
        prepared_data_dir, tmp_path, monkeypatch, capsys):
    import dataclasses
    import threading
    import time

    from smolgpt.experiments import runs
    from smolgpt.files import RunLock

    monkeypatch.setenv("SMOLGPT_RUNS", str(tmp_path / "runs"))
    cfg = dataclasses.replace(runs.quick_config(steps=2), data_dir=str(prepared_data_dir),
                              method=MethodSpec("embeddings"))
    first = runs.run(cfg, final_windows=4)
    folder = Path(first["dir"])
    summary = (folder / "summary.json").read_bytes()
    (folder / "summary.json").unlink()          # as if another process were still making it
    maker = RunLock(folder).acquire()
    real_sleep = time.sleep
    monkeypatch.setattr(runs.time, "sleep", lambda s: real_sleep(0.02))
    got = {}
    waiter = threading.Thread(target=lambda: got.update(runs.run(cfg, final_windows=4)))
    waiter.start()
    real_sleep(0.5)
    assert waiter.is_alive()                      # it waits while the folder is held
    (folder / "summary.json").write_bytes(summary)
    maker.release()                               # the maker finishes
    waiter.join(timeout=30)
    assert got["reused"] and got["final"]["loss"] == first["final"]["loss"]
    assert "is being made by another process" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------
# The runner on real (tiny) runs: the committed record, and a run stopped short


@pytest.fixture
def micro_run(prepared_data_dir, tmp_path, monkeypatch, one_blas_thread):
    monkeypatch.setenv("SMOLGPT_RUNS", str(tmp_path / "runs"))
    gpt = GPTConfig(n_layer=1, n_head=2, n_embd=16, block_size=16)
    return TrainConfig(gpt=gpt, steps=4, batch_size=2, warmup=1, eval_every=4, eval_windows=2,
                       sample_tokens=0, data_dir=str(prepared_data_dir))


def test_a_recorded_run_is_reused_without_its_folder(micro_run, tmp_path):
    record, cfg = tmp_path / "record.jsonl", micro_run
    first = run(cfg, final_windows=4, verbose=False, record=record)
    assert not first["reused"]
    lines = record.read_text().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["key"] == first["key"]
    assert json.loads(lines[0])["blas"] == blas_kernel()         # the kernel that trained it
    # reused from its folder, a recorded run leaves the record as it was: a committed record
    # changes only where a run is new
    other = run(dataclasses.replace(cfg, seed=cfg.seed + 1), final_windows=4, verbose=False,
                record=record)
    text = record.read_text()
    assert run(cfg, final_windows=4, verbose=False, record=record)["reused"]
    assert record.read_text() == text
    assert [json.loads(line)["key"] for line in text.splitlines()] == [first["key"],
                                                                       other["key"]]
    import shutil
    shutil.rmtree(tmp_path / "runs")                     # a fresh clone has no run folders
    again = run(cfg, final_windows=4, verbose=False, record=record)
    assert again["reused"] and again["dir"] is None
    assert again["final"] == first["final"] and again["val_curve"] == [list(p) for p in
                                                                      first["val_curve"]]
    assert not (tmp_path / "runs").exists()              # nothing was trained
    # another final-window count is another score: not taken from the record
    assert Record(record).get(first["key"], 8) is None


def test_a_run_made_again_never_rewrites_its_recorded_line(micro_run, tmp_path):
    """A recorded run made again (for its weights, by folder_of, or on another machine) rounds
    as that machine does: the chapter keeps reporting the record's numbers, with the new folder
    for its weights, and the committed line stays as it was. Only SMOLGPT_FRESH replaces it."""
    from smolgpt.experiments.runs import folder_of, reused_line
    record, cfg = tmp_path / "record.jsonl", micro_run
    first = run(cfg, final_windows=4, verbose=False, record=record)
    line = json.loads(record.read_text())
    line["final"]["loss"] += 0.001                # as another BLAS kernel would have rounded
    line["blas"] = "another kernel"
    record.write_text(json.dumps(line) + "\n")
    text = record.read_text()
    import shutil
    shutil.rmtree(first["dir"])
    kept = run(cfg, final_windows=4, verbose=False, record=record)
    assert kept["dir"] is None and kept["final"]["loss"] == line["final"]["loss"]
    made = folder_of(kept)                        # the weights, made again here
    assert (made / "checkpoint.npz").exists() and record.read_text() == text
    again = run(cfg, final_windows=4, verbose=False, record=record)
    assert again["dir"] == str(made) and again["final"]["loss"] == line["final"]["loss"]
    assert reused_line([again], record).endswith(f"(from {record.name}; trained in "
                                                 f"{round(line['elapsed'])} s)")
    assert record.read_text() == text             # the record's line, not this machine's
    fresh = run(cfg, final_windows=4, verbose=False, record=record, fresh=True)
    assert json.loads(record.read_text())["final"]["loss"] == fresh["final"]["loss"] == \
        first["final"]["loss"]


def test_reused_seeds_are_named_in_one_line_without_a_machine_path(micro_run, tmp_path,
                                                                    monkeypatch, capsys):
    """run_seeds names the seeds of a configuration it reuses in one line, saying where they
    came from (the record, their folders) by relative or variable-named paths only."""
    from smolgpt.experiments.runs import run_seeds
    record = tmp_path / "record.jsonl"
    run_seeds(micro_run, (0, 1), final_windows=4, verbose=False, record=record)
    monkeypatch.chdir(tmp_path)
    run_seeds(micro_run, (0, 1), final_windows=4, record=False)           # from their folders
    import shutil
    shutil.rmtree(tmp_path / "runs")
    run_seeds(micro_run, (0, 1), final_windows=4, record=record)          # from the record
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2, lines
    assert lines[0].startswith("  reusing full, seeds 0, 1 (from their folders in runs;")
    assert lines[1].startswith("  reusing full, seeds 0, 1 (from record.jsonl;")
    assert all(str(tmp_path) not in line for line in lines)


def test_a_chapter_at_full_size_keeps_its_runs_in_its_committed_record(micro_run, tmp_path,
                                                                        monkeypatch):
    """A chapter run at full size keeps every run it trains in chapters/results/<chapter>.jsonl
    (the runner asks chapter.chapter_record()); from that record alone (a fresh clone) the chapter's curves redraw
    and a run whose weights it needs is made again, identical. Quick mode records nothing."""
    import sys

    from smolgpt.experiments import chapter, runs
    monkeypatch.setenv("SMOLGPT_OUT", str(tmp_path / "out"))
    script = tmp_path / "chapters" / "05_topic.py"
    (script.parent / "results").mkdir(parents=True)
    monkeypatch.setattr(sys.modules["__main__"], "__file__", str(script), raising=False)
    monkeypatch.setenv("SMOLGPT_QUICK", "1")
    assert chapter.chapter_record() is None
    monkeypatch.setenv("SMOLGPT_QUICK", "0")
    record = script.parent / "results" / "05_topic.jsonl"
    assert chapter.chapter_record() == record
    first = run(micro_run, final_windows=4, verbose=False)       # names no record
    assert [json.loads(line)["key"] for line in record.read_text().splitlines()] == [
        first["key"]]
    import shutil
    shutil.rmtree(tmp_path / "runs")                             # a fresh clone
    results = runs.compare_configs([micro_run], tmp_path / "plots", title="t",
                                   seeds=(micro_run.seed,), final_windows=4, verbose=False)
    again = next(iter(results.values()))["runs"][0]
    assert again["dir"] is None and again["final"] == first["final"]
    assert (tmp_path / "plots" / "val_curves.png").stat().st_size > 10_000   # from the record
    assert not (tmp_path / "runs").exists()
    folder = runs.folder_of(again)                               # its weights: trained again
    assert (folder / "checkpoint.npz").is_file() and folder.name == Path(first["dir"]).name
    assert json.loads((folder / "summary.json").read_text())["val_loss"] == first["val_loss"]


def test_a_damaged_record_names_its_line(tmp_path):
    path = tmp_path / "record.jsonl"
    good = {"key": "a", "label": "full", "seed": 0, "n_trainable": 1, "step": 1, "tokens": 1,
            "elapsed": 1.0, "val_curve": [], "final": {"loss": 1.0}, "final_windows": 8,
            "config": {}}
    path.write_text(json.dumps(good) + '\nnot json\n')
    with pytest.raises(ValueError, match="line 2 is not a run record"):
        Record(path).runs()
    path.write_text(json.dumps(good) + "\n" + json.dumps({"key": "b"}) + "\n")   # fields lost
    with pytest.raises(ValueError, match="line 2 is not a run record .no valid 'label'"):
        Record(path).runs()


def test_a_run_stopped_short_is_not_kept_as_finished(micro_run, tmp_path, monkeypatch):
    """Ctrl-C inside a run: train() saves and returns 'interrupted'; the runner must neither
    keep that as the finished run nor record it, and the next request resumes it."""
    record = tmp_path / "record.jsonl"
    real_train = runs_module.train
    monkeypatch.setattr(runs_module, "train",
                        lambda cfg, **kw: real_train(cfg, stop_at=2, **kw))
    with pytest.raises(KeyboardInterrupt, match="stopped at step 2 of 4"):
        run(micro_run, final_windows=4, verbose=False, record=record)
    assert not record.exists()
    assert not list((tmp_path / "runs").glob("*/summary.json"))
    monkeypatch.setattr(runs_module, "train", real_train)
    done = run(micro_run, final_windows=4, verbose=False, record=record)
    assert done["step"] == 4 and not done["interrupted"]
    assert [p[0] for p in done["val_curve"]] == [0, 4]
    uninterrupted = run(micro_run, final_windows=4, verbose=False, fresh=True)
    assert uninterrupted["val_loss"] == done["val_loss"]          # resumed exactly


def test_each_bridge_is_the_size_nearest_its_count_on_the_byte_model():
    """The bridges' sizes are the ones `nearest_size` finds on tiny-bytes, by each method's own
    count (VeRA's rank, NOLA's k = l), and every racer matched at a count is within 3% of it but
    LoRA at rank 1, LoRA's least, which has more."""
    from smolgpt.companions.ch09_long_race import BRIDGES, MATCHED, SPECS, nearest_size
    from smolgpt.methods import build
    body = GPTConfig.preset("tiny-bytes")
    vera = nearest_size(lambda r: MethodSpec("vera", rank=r), range(1, 65), 5000, body)
    assert (vera, BRIDGES["VeRA r=24"].rank) == ((24, 4992), 24)       # r = 25 gives 5,008
    for count, name in ((5000, "NOLA k=l=156"), (250, "NOLA k=l=8")):
        k, _ = nearest_size(lambda k: MethodSpec("nola", nola_k=k, nola_l=k), range(1, 257),
                            count, body)
        assert BRIDGES[name].nola_k == BRIDGES[name].nola_l == k
    lowest_lora = build(MethodSpec("lora", rank=1), body).n_trainable
    for count, racers in MATCHED.items():
        for racer in racers:
            have = build(SPECS[racer], body).n_trainable
            assert abs(have - count) <= 0.03 * count or have == lowest_lora > count, racer


def test_the_bridges_tune_on_top_of_the_main_race_rates(monkeypatch):
    """`LongRace.tune(racers=BRIDGES, rates=...)` sweeps each bridge's own rate field, trains the
    embeddings of VeRA and NOLA at embeddings only's chosen `lr`, and returns the given rates
    with the bridges'; the main race's configs come out as before."""
    from smolgpt.companions.ch09_long_race import BRIDGE_GRIDS, BRIDGES, LongRace
    seen = []

    def loss(cfg):
        seen.append(cfg)
        field = {"vera": "vera_lr", "nola": "nola_lr", "lora": "lr"}[cfg.method.name]
        best = {"vera_lr": 0.1, "nola_lr": 0.03, "lr": 3e-3}[field]
        return math.log10(getattr(cfg, field) / best) ** 2 + 2
    monkeypatch.setattr(sweep_module, "run_many", _runner(loss))
    plan = LongRace("bytes")
    given = {"embeddings only": {"field": "lr", "value": 2e-3, "sweep": {}},
             "Fastfood": {"field": "coef_lr", "value": 0.3, "sweep": {}}}
    rates = plan.tune(verbose=False, racers=BRIDGES, rates=given)
    assert set(rates) == set(given) | set(BRIDGES) and set(given) == {"embeddings only",
                                                                     "Fastfood"}
    for racer, (field, _) in BRIDGE_GRIDS.items():
        assert rates[racer]["field"] == field and rates[racer]["sweep"]["interior"]
        cfg = plan.config(racer, rates)
        assert cfg.method == BRIDGES[racer] and cfg.steps == plan.base.steps
        assert cfg.lr == (rates[racer]["value"] if field == "lr" else 2e-3)
    assert {c.steps for c in seen} == {plan.proxy().steps}
    assert all(c.lr == 2e-3 for c in seen if c.method.name in ("vera", "nola"))
    fastfood = plan.config("Fastfood", rates)           # a main racer: as before the bridges
    assert (fastfood.lr, fastfood.coef_lr, fastfood.method.d) == (2e-3, 0.3, 5000)


def test_the_long_race_races_at_the_rate_that_wins_at_the_full_budget(monkeypatch):
    """`LongRace.settle`: full training's choice at a quarter budget (lr 1e-3) loses to its
    upper neighbour at the full budget, so the sweep goes on there until interior and the race
    uses its best; 5 in all's choice (coef_lr 0.3) still wins and stands."""
    from smolgpt.companions.ch09_long_race import LongRace
    truth = {"lr": 4e-3, "coef_lr": 0.3}             # each field's best value at the full budget
    seen = []

    def loss(cfg):
        field = "lr" if cfg.method.name == "full" else "coef_lr"
        seen.append(cfg.steps)
        return (math.log10(getattr(cfg, field) / truth[field])) ** 2 + 2
    monkeypatch.setattr(sweep_module, "run_many", _runner(loss))

    plan = LongRace("bytes")
    def chosen(field, value, grid):
        return {"field": field, "value": value, "sweep": {"grid": grid}}
    rates = {"embeddings only": chosen("lr", 3e-3, [1e-3, 3e-3, 1e-2]),
             "full": chosen("lr", 1e-3, [3.33e-4, 1e-3, 3e-3]),
             "5 in all": chosen("coef_lr", 0.3, [0.1, 0.3, 1.0])}
    settled, sweeps = plan.settle(rates, racers=("full", "5 in all"), verbose=False)
    assert set(seen) == {plan.base.steps}                      # every run at the full budget
    assert settled["full"]["value"] == pytest.approx(3e-3, rel=1e-2)
    assert settled["full"]["at_full_budget"] and sweeps["full"]["interior"]
    assert len(sweeps["full"]["grid"]) == 4                     # one value past 3e-3: 9e-3
    assert settled["5 in all"] is rates["5 in all"]
    assert plan.config("full", settled).lr == settled["full"]["value"]
    assert rates["full"]["value"] == 1e-3                       # the caller's dict is not changed
    runs = len(seen)                  # a rate settled at the full budget is not checked again
    again, sweeps_again = plan.settle(settled, racers=("full",), verbose=False)
    assert again == settled and sweeps_again["full"] is sweeps["full"] and len(seen) == runs
