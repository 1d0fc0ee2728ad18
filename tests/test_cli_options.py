"""Every option means something (issue 36): an option that applies to some method but not the
chosen one is refused, with one line naming it and exit status 2, by `train` and by `sweep`; it
is never silently ignored (a LoRA run given --d, a Fastfood run given --rank, a sweep over a
rate the method never reads, a grid with a value twice).

The table below says which method reads which option. It is written from the options' help
texts and the methods' papers, not read from the code, so that the code is checked against it.
Every value in it is a valid one that differs from the option's default: a refusal can only be
about whom the option applies to. Nothing trains here: reading the data is replaced by a
sentinel, so a command that gets that far has accepted its options.

Each method owns its options (smolgpt/methods/): what it does not declare is refused.
"""

from __future__ import annotations

import pytest
from test_cli import TINY_FLAGS

from smolgpt import data as data_mod
from smolgpt.cli import main

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

SUBSPACE = ("basis", "fastfood", "fft-fastfood")
KNOBS = ("norms", "gains", "norms-gains", "biases", "norms-biases", "heads")   # chapter 10's
METHODS = ("full", "embeddings", *SUBSPACE, "lora", "said", "vera", "nola", *KNOBS)

# option -> (its flag and a valid non-default value, the methods that read it)
OPTIONS = {
    "d": (["--d", "7"], (*SUBSPACE, "said")),
    "per_tensor": (["--per-tensor"], SUBSPACE),
    "offset": (["--no-offset"], SUBSPACE),
    "coef_init": (["--coef-init", "ones"], SUBSPACE),
    "basis_scale": (["--basis-scale", "gpt2"], SUBSPACE),
    "residual_scale": (["--no-residual-scale"], SUBSPACE),
    "coverage": (["--coverage", "constants"], SUBSPACE),
    "rank": (["--rank", "8"], ("lora", "vera", "nola")),   # at rank 2 NOLA's default k is too many
    "alpha": (["--alpha", "4"], ("lora", "nola")),
    "vera_d_init": (["--vera-d-init", "0.2"], ("vera",)),
    "nola_k": (["--nola-k", "8"], ("nola",)),
    "nola_l": (["--nola-l", "8"], ("nola",)),
    "coef_lr": (["--coef-lr", "0.5"], (*SUBSPACE, "said", *KNOBS)),
    "scale_lr": (["--scale-lr", "0.01"], ("said",)),
    "vera_lr": (["--vera-lr", "0.05"], ("vera",)),
    "nola_lr": (["--nola-lr", "0.01"], ("nola",)),
    # AdamW's decay touches only full training's weight matrices (--weight-decay's help says so)
    "weight_decay": (["--weight-decay", "0.05"], ("full",)),
}
# the rate each method's own trainables follow, besides --lr (what `sweep --field` may name)
RATES = {"lr": METHODS, **{k: OPTIONS[k][1] for k in ("coef_lr", "scale_lr", "vera_lr",
                                                        "nola_lr")}}


class ReachedTheData(Exception):
    """The command accepted its options and went on to read the prepared data."""


@pytest.fixture
def no_data(monkeypatch):
    def sentinel(*args, **kwargs):
        raise ReachedTheData
    monkeypatch.setattr(data_mod, "load_splits", sentinel)


SWEEP_TINY = [f for f in TINY_FLAGS if f != "--no-progress"]      # sweep draws no bar


def command(kind: str, method: str, flags: list[str], out) -> list[str]:
    if kind == "train":
        return ["train", "--method", method, "--out", str(out / "run"), "--steps", "1",
                *TINY_FLAGS, *flags]
    return ["sweep", "--method", method, "--grid", "1e-3,3e-3,1e-2", "--seeds", "1",
            "--steps", "1", *SWEEP_TINY, *flags]


def outcome(argv, capsys) -> tuple[object, str]:
    """(exit status, or "accepted" if the command went on to the data; stderr)."""
    try:
        rc = main(argv)
    except ReachedTheData:
        rc = "accepted"
    return rc, capsys.readouterr().err


def foreign(method: str) -> list[str]:
    return [name for name, (_, owners) in OPTIONS.items() if method not in owners]


def own(method: str) -> list[str]:
    return [name for name, (_, owners) in OPTIONS.items() if method in owners]


@st.composite
def misapplied(draw):
    """(command, method, options it reads, options it does not read (at least one))."""
    kind = draw(st.sampled_from(("train", "sweep")))
    method = draw(st.sampled_from(METHODS))
    wrong = draw(st.lists(st.sampled_from(foreign(method)), min_size=1, max_size=3, unique=True))
    right = draw(st.lists(st.sampled_from(own(method)), max_size=3, unique=True)
                 if own(method) else st.just([]))
    return kind, method, right, wrong


def _flags(names) -> list[str]:
    return [part for n in names for part in OPTIONS[n][0]]


def _refused_naming(rc, err, flags) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert rc == 2, f"exit {rc!r}, expected 2 (refused); stderr: {err!r}"
    assert len(lines) == 1 and "Traceback" not in err, err
    assert any(f in lines[0] for f in flags), f"none of {flags} named in: {lines[0]}"


SETTINGS = settings(max_examples=60, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


@SETTINGS
@given(case=misapplied())
def test_an_option_of_another_method_is_refused_naming_it(case, tmp_path, no_data, monkeypatch,
                                                         capsys):
    kind, method, right, wrong = case
    # train writes to --out, sweep under the runs root: both inside tmp_path, which stays empty
    monkeypatch.setenv("SMOLGPT_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("SMOLGPT_OUT", str(tmp_path / "out"))
    argv = command(kind, method, _flags(right + wrong), tmp_path)
    rc, err = outcome(argv, capsys)
    _refused_naming(rc, err, [OPTIONS[n][0][0] for n in wrong])
    assert not any(tmp_path.iterdir())


@SETTINGS
@given(kind=st.sampled_from(("train", "sweep")), method=st.sampled_from(METHODS),
       data=st.data())
def test_the_options_a_method_reads_are_accepted(kind, method, data, tmp_path, no_data, capsys):
    """The other half: the table's own options are taken (so the test above cannot pass by
    refusing everything). coef_init 'ones' with the offset and coverage 'constants' are a valid
    combination, so any subset is."""
    names = data.draw(st.lists(st.sampled_from(own(method)), unique=True)
                      if own(method) else st.just([]))
    rc, err = outcome(command(kind, method, _flags(names), tmp_path), capsys)
    assert rc == "accepted", err


@pytest.mark.parametrize("method", METHODS)
def test_sweep_over_a_rate_the_method_never_reads_is_refused(method, tmp_path, no_data, capsys):
    unused = [f for f, owners in RATES.items() if method not in owners]
    for field in unused:
        argv = command("sweep", method, ["--field", field], tmp_path)
        rc, err = outcome(argv, capsys)
        _refused_naming(rc, err, ["--field"])


@pytest.mark.parametrize("flags, why", [
    (["--seed", "3"], "seeds 0..N-1"), (["--method-seed", "3"], "seed, 0..N-1"),
    (["--out", "x"], "$SMOLGPT_RUNS"), (["--resume", "x.npz"], "give the same sweep again"),
    (["--overwrite"], "SMOLGPT_FRESH=1"), (["--no-progress"], "on a terminal only")])
def test_sweep_refuses_one_runs_flags_saying_why(flags, why, tmp_path, no_data, capsys):
    """A sweep gives its runs seeds 0..N-1 (--seeds), of the batch order and of the method's
    draws alike, and keeps them under the runs root: a seed or folder flag would be ignored, or
    (--seed, abbreviated) taken for --seeds."""
    rc, err = outcome(command("sweep", "fastfood", flags, tmp_path), capsys)
    _refused_naming(rc, err, [flags[0]])
    assert f"{flags[0]} does not apply to a sweep" in err and why in err


@pytest.mark.parametrize("grid", ["1e-3,1e-3,3e-3,1e-2", "0.001,1e-3,3e-3,1e-2"])
def test_sweep_grid_with_a_value_twice_is_refused(grid, tmp_path, no_data, capsys):
    argv = ["sweep", "--grid", grid, "--seeds", "1", "--steps", "1", *SWEEP_TINY]
    rc, err = outcome(argv, capsys)
    _refused_naming(rc, err, ["--grid"])


@pytest.mark.parametrize("field, flags", [("lr", ["--lr", "0.01"]),
                                          ("coef_lr", ["--method", "fastfood", "--coef-lr", "0.5"])])
def test_sweep_refuses_a_flag_for_the_rate_it_varies(field, flags, tmp_path, no_data, capsys):
    argv = ["sweep", "--field", field, "--grid", "1e-3,3e-3,1e-2", "--seeds", "1", "--steps", "1",
            *SWEEP_TINY, *flags]
    rc, err = outcome(argv, capsys)
    _refused_naming(rc, err, [flags[-2]])
    assert "the rate this sweep varies" in err and f"drop {flags[-2]}" in err


def test_the_table_names_every_method_option():
    """Every option the command line makes from MethodSpec and the rate fields is in the table
    (a new option gets a row, and so a test)."""
    import dataclasses

    from smolgpt.methods import METHODS as CODE_METHODS
    from smolgpt.methods import MethodSpec
    from smolgpt.train import TrainConfig
    spec_options = {f.name for f in dataclasses.fields(MethodSpec)} - {"name", "seed"}
    assert spec_options <= set(OPTIONS)
    rates = {f.name for f in dataclasses.fields(TrainConfig) if f.name.endswith("_lr")}
    assert rates and rates <= set(OPTIONS) and rates | {"lr"} == set(RATES)
    assert set(METHODS) == set(CODE_METHODS)
