"""The benchmark package: its timing rule and its report, on a model small enough to time fast.
Speeds themselves are machine-dependent: they are printed by `smolgpt bench`, never asserted."""

import importlib.util

import pytest

import smolgpt
from smolgpt import bench
from smolgpt.bench import breakdown, timing, vs_torch
from smolgpt.model import GPTConfig

MICRO = GPTConfig(n_layer=1, n_head=2, n_embd=16, block_size=8, vocab_size=64)


def test_rounds_interleave_and_ratios_are_per_round():
    calls = []
    t = timing.rounds({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, 3)
    assert calls == ["a", "b"] * 4                       # one warm-up round, then A B A B A B
    assert len(t["a"]) == len(t["b"]) == 3
    t = {"a": [2.0, 9.0, 4.0], "b": [1.0, 3.0, 4.0]}
    assert timing.median_ratio(t, "a", "b") == 2.0       # median of 2, 3, 1


def test_run_reports_every_figure():
    r = bench.run(MICRO, batch_size=2, repeats=2, subspace_d=10, step_repeats=1)
    assert r["model"]["mfu"] > 0 and r["matmul_gflops"] > 0 and r["threads"] >= 1
    methods = [s["method"] for s in r["steps"]]
    assert methods[0] == "full" and "embeddings" in methods and "lora r=4" in methods
    assert all(s["vs_fwd_bwd"] > 0 for s in r["steps"])
    text = bench.format_report(r)
    assert "of the matmul rate" in text and "fastfood d=10" in text
    assert f"BLAS {r['process']['blas_kernel']};" in text


def test_the_kernel_named_is_the_one_openblas_runs():
    """OPENBLAS_CORETYPE forces a kernel; the bench and the long runs' records name it."""
    import os
    import subprocess
    import sys
    code = "import smolgpt, numpy; from smolgpt.layers import blas_kernel; print(blas_kernel())"
    forced = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={**os.environ, "OPENBLAS_CORETYPE": "Haswell"}, check=True)
    kernel = forced.stdout.strip()
    if not kernel.startswith("openblas"):
        pytest.skip(f"NumPy's BLAS here is {kernel}, not OpenBLAS")
    assert kernel == "openblas Haswell"


def test_vs_torch_without_torch_says_what_to_install(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "torch" else real(name, *a))
    with pytest.raises(bench.TorchUnavailable, match=r'pip install -e "\.\[hf\]"'):
        bench.run_vs_torch()


@pytest.mark.skipif(importlib.util.find_spec("torch") is None
                    or importlib.util.find_spec("transformers") is None,
                    reason="needs the hf extra")
def test_vs_torch_same_loss_on_both_sides():
    # each side in its own process, same weights and batch: the first losses agree
    r = vs_torch.compare("tiny", 1, 8, 1, threads=1)
    assert abs(r["smolgpt"]["first_loss"] - r["torch"]["first_loss"]) < 1e-4
    assert r["smolgpt"]["peak_rss_mb"] > 0 and r["torch"]["peak_rss_mb"] > 0


def _fresh_python(code: str, **env) -> list[str]:
    """The words `code` prints in a fresh interpreter whose environment has none of the
    variables smolgpt's import looks at, except those given in env."""
    import os
    import subprocess
    import sys
    unset = (smolgpt.BLAS_SPIN_VAR, smolgpt.DEFAULTS_VAR) + smolgpt.MALLOC_VARS
    environ = {k: v for k, v in os.environ.items() if k not in unset}
    environ.update(env)
    return subprocess.run([sys.executable, "-c", code], env=environ, check=True,
                          capture_output=True, text=True).stdout.split()


SPIN = "import os, smolgpt; print(os.environ.get('OPENBLAS_THREAD_TIMEOUT'), " \
       "smolgpt.BLAS_THREAD_TIMEOUT)"


def test_smolgpt_sets_blas_spin_before_numpy_and_keeps_a_users_choice():
    assert _fresh_python(SPIN) == ["4", "4"]                          # set: NumPy not loaded yet
    assert _fresh_python(SPIN, OPENBLAS_THREAD_TIMEOUT="12") == ["12", "12"]   # the user's, kept
    assert _fresh_python("import numpy; " + SPIN) == ["None", "None"]   # too late: not pretended
    r = {"config": MICRO.to_dict(), "batch_size": 1, "threads": 1, "matmul_gflops": 1.0,
         "matmul_gflops_best": 1.0, "mfu_ok": False,
         "process": {"blas_thread_timeout": None, "keeps_freed_memory": False},
         "model": {"seconds": 1.0, "tokens_per_s": 1.0, "gflops": 1.0, "mfu": 0.5,
                   "mfu_spread": (0.5, 0.5)}}
    assert "OpenBLAS's default 2^28 cycles" in bench.format_report(r)


# Allocate, fill and free a 100 MB array five times; print smolgpt's flag and the page faults
# of the last four rounds (the first one maps the memory in any case).
REFAULTS = """
import resource, smolgpt, numpy as np
def faults(): return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
np.ones(25_000_000, np.float32)
before = faults()
for _ in range(4): np.ones(25_000_000, np.float32)
print(smolgpt.KEEPS_FREED_MEMORY, faults() - before)
"""


@pytest.mark.skipif(not smolgpt.KEEPS_FREED_MEMORY, reason="glibc's malloc settings only")
def test_freed_memory_is_reused_without_page_faults_unless_the_user_set_malloc():
    kept, faults = _fresh_python(REFAULTS)
    assert kept == "True" and int(faults) < 50
    kept, faults = _fresh_python(REFAULTS, MALLOC_TRIM_THRESHOLD_="131072")  # glibc's default
    # each round faults its 100 MB in anew: 24,414 pages of 4 KB, or 48 huge pages at the least
    assert kept == "False" and int(faults) >= 4 * 48


# Two AdamW steps of full training on `tiny` (batch 2: its 51 MB logits exceed glibc's default
# mmap threshold, so both malloc policies are exercised); prints a digest of the losses and weights.
TWO_STEPS = """
import hashlib, smolgpt
from smolgpt.bench.model import random_batch
from smolgpt.methods import MethodSpec, build
from smolgpt.model import GPTConfig, loss_and_grads
from smolgpt.optim import adamw_init, adamw_step, clip_grad_norm
cfg = GPTConfig.preset("tiny"); x, y = random_batch(cfg, 2)
method = build(MethodSpec("full"), cfg); w = method.init(); state = adamw_init(w)
h = hashlib.sha256()
for _ in range(2):
    loss, g = loss_and_grads(method.params(w), x, y, cfg)
    clip_grad_norm(g, 1.0); adamw_step(w, g, state, 1e-3); h.update(repr(loss).encode())
for k in sorted(w): h.update(w[k].tobytes())
print(smolgpt.KEEPS_FREED_MEMORY or smolgpt.BLAS_THREAD_TIMEOUT is not None, h.hexdigest())
"""


def test_process_settings_change_no_number():
    made, digest = _fresh_python(TWO_STEPS)
    plain, plain_digest = _fresh_python(TWO_STEPS, SMOLGPT_PROCESS_DEFAULTS="1")
    assert made == "True" and plain == "False"               # the settings were on, then off
    assert digest == plain_digest


def test_run_prints_where_the_step_goes_and_its_memory():
    r = bench.run(MICRO, batch_size=2, repeats=2, steps=False)
    rows = {row["label"]: row for row in r["layers"]["rows"]}
    assert {"attention fwd", "attention bwd", "linear bwd", "layernorm fwd", "gelu bwd",
            "head + loss fwd+bwd", "optimizer (clip + AdamW)", "other"} <= set(rows)
    assert all(row["seconds"] >= 0 for label, row in rows.items() if label != "other")
    # the layers' rows and "other" add up to the forward+backward of the same steps (medians
    # of each row need not add up exactly, so only roughly)
    total = sum(row["seconds"] for label, row in rows.items() if label != "optimizer (clip + AdamW)")
    assert 0.5 * r["layers"]["fwd_bwd_seconds"] < total < 2 * r["layers"]["fwd_bwd_seconds"]
    assert r["layers"]["peak_step_bytes"] > 0
    # the bound is wired to the rows it names: all the model FLOPs over the products' rows' time
    # (what it means is argued in breakdown.py; this checks only that it is that quotient)
    flops = breakdown.matmul_flops(MICRO, 2)
    products = sum(row["seconds"] for label, row in rows.items() if label in flops)
    assert r["layers"]["products_seconds"] == pytest.approx(products)
    assert r["layers"]["products_bound_gflops"] == pytest.approx(sum(flops.values()) / products / 1e9)
    text = bench.format_report(r)
    assert "attention bwd" in text and "peak memory of a step" in text
    assert "were every row without products free" in text


def test_the_breakdown_leaves_the_layers_as_they_were():
    from smolgpt import layers
    before = {name: getattr(layers, name) for _, name in breakdown.ROWS}
    breakdown.run(MICRO, batch_size=1, repeats=1)
    assert all(getattr(layers, name) is fn for name, fn in before.items())


def test_vs_torch_takes_any_preset_and_refuses_an_unknown_one():
    from smolgpt.model import ConfigError
    assert vs_torch.case("tiny-bytes") == ("tiny-bytes", 16, 256, 5)
    assert vs_torch.case("gpt2") == ("gpt2", 1, 1024, 3)
    with pytest.raises(ConfigError, match="unknown model preset 'nope'"):
        bench.run_vs_torch(presets=("nope",))
