"""Every option means something: an option (or learning rate) the chosen method never reads is
refused with one line naming it, by the spec, by `smolgpt train` and by `smolgpt sweep`, never
silently ignored. The methods' own declarations (smolgpt/methods/__init__.py) are the one source."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smolgpt.cli import main
from smolgpt.experiments.sweep import sweep
from smolgpt.methods import (METHODS, OPTIONS, RATES, MethodError, MethodSpec, flag_of,
                             method_class)
from smolgpt.train import TrainConfig

# a value each option's owners accept, other than its default (None: a switch, no value)
OTHER = dict(d="3", per_tensor=None, offset=None, coef_init="ones", basis_scale="gpt2",
             residual_scale=None, coverage="constants", rank="2", alpha="4", vera_d_init="0.5",
             nola_k="8", nola_l="8")
RATE_VALUE = "0.05"


def test_every_option_has_a_value_here_and_an_owner():
    assert set(OTHER) == set(OPTIONS), "a new option needs a value in OTHER"
    assert all(any(name in cls.options for cls, _ in METHODS.values()) for name in OPTIONS)


def test_the_spec_refuses_every_foreign_option_by_its_flag():
    for method in METHODS:
        for name, f in OPTIONS.items():
            if name in method_class(method).options:
                continue
            value = not f.default if isinstance(f.default, bool) else type(f.default)(OTHER[name])
            with pytest.raises(MethodError, match=f"drop {flag_of(name)}"):
                MethodSpec(method, **{name: value})


def test_a_methods_rates_and_decay_are_what_its_lr_groups_and_decay_keys_say():
    from smolgpt.methods import build
    from smolgpt.model import GPTConfig
    gpt = GPTConfig(n_layer=1, n_head=1, n_embd=64, block_size=8, vocab_size=32)
    for method in METHODS:
        spec = MethodSpec(method, d=4) if "d" in method_class(method).options else \
            MethodSpec(method, rank=2) if "rank" in method_class(method).options else \
            MethodSpec(method)
        built = build(spec, gpt)
        assert set(built.lr_groups({}).values()) == set(method_class(method).rates)
        assert bool(built.decay_keys(built.init())) == method_class(method).decays


def the_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("smolgpt: error: "), err
    return lines[0]


@st.composite
def foreign_flags(draw):
    """(method, argv, the flags that do not apply): a method and a shuffled mix of its own
    options and at least one option or learning rate that it never reads."""
    method = draw(st.sampled_from(list(METHODS)))
    cls = method_class(method)
    foreign = [n for n in OPTIONS if n not in cls.options] + [r for r in RATES
                                                               if r not in cls.rates]
    foreign += [] if cls.decays else ["weight_decay"]
    own = [n for n in OPTIONS if n in cls.options and n not in ("coverage", "coef_init")]
    bad = draw(st.lists(st.sampled_from(foreign), min_size=1, max_size=3, unique=True))
    good = draw(st.lists(st.sampled_from(own), max_size=2, unique=True)) if own else []
    argv, flags = [], []
    for name in draw(st.permutations(bad + good)):
        if name in RATES or name == "weight_decay":
            flag, value = "--" + name.replace("_", "-"), RATE_VALUE
        else:
            flag, value = flag_of(name), OTHER[name]
            if value is not None and draw(st.booleans()):      # its default is refused too
                value = str(OPTIONS[name].default)
        argv += [flag] if value is None else [flag, value]
        if name in bad:
            flags.append(flag)
    return method, argv, flags


# capsys is read (and so emptied) on every example
@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=foreign_flags(), command=st.sampled_from(["train", "sweep"]))
def test_the_command_line_refuses_what_the_method_never_reads(case, command, tmp_path_factory,
                                                             monkeypatch, capsys):
    method, argv, flags = case
    out = tmp_path_factory.mktemp("out")
    # train writes to --out, sweep under the runs root and the output root: all three are `out`
    monkeypatch.setenv("SMOLGPT_RUNS", str(out / "runs"))
    monkeypatch.setenv("SMOLGPT_OUT", str(out))
    extra = ["--out", str(out)] if command == "train" else ["--grid", "1e-3,3e-3,1e-2"]
    rc = main([command, "--method", method, "--steps", "1", *argv, *extra])
    line = the_error_line(capsys.readouterr().err)
    assert rc == 2
    assert any(flag in line for flag in flags), line
    assert not any(out.iterdir())


@pytest.mark.parametrize("method, field", [("lora", "coef_lr"), ("full", "scale_lr"),
                                           ("basis", "vera_lr"), ("said", "nola_lr")])
def test_a_sweep_over_a_rate_the_method_never_reads_is_refused(method, field):
    base = TrainConfig(method=MethodSpec(method))
    with pytest.raises(ValueError, match=f"never reads {field}"):
        sweep(base, field, [1e-3, 3e-3, 1e-2])


def test_a_grid_with_repeated_values_is_refused(capsys):
    with pytest.raises(ValueError, match="repeats 0.003"):
        sweep(TrainConfig(), "lr", [1e-3, 3e-3, 3e-3, 1e-2])
    rc = main(["sweep", "--grid", "1e-3,3e-3,0.003"])
    assert rc == 2 and "repeats 0.003" in the_error_line(capsys.readouterr().err)


def test_options_a_method_reads_are_accepted_at_their_default():
    """Not everything is refused: a method's own flags, even at their defaults, pass."""
    for method in METHODS:
        own = {n: OPTIONS[n].default for n in method_class(method).options}
        assert dataclasses.asdict(MethodSpec(method, **own)) == \
            dataclasses.asdict(MethodSpec(method))
