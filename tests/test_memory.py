"""The memory estimate (smolgpt/memory.py) against what a training step really allocates.

tracemalloc sees every NumPy buffer, so its peak over two whole steps (params, loss and gradients,
pullback, clipping, AdamW), with the trainables and Adam's moments alive from the start, is the
number the estimate claims. It must stay within [0.85, 1.2] of it for configs where the head
dominates (the full GPT-2 vocabulary), where the activations do (a small vocabulary, T = 128 and
256, T above the attention block), and for every method, so the estimate cannot drift silently
when the layers change.
"""

from __future__ import annotations

import os
import re
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from smolgpt.memory import available_bytes, estimate_training_bytes
from smolgpt.methods import MethodSpec, build
from smolgpt.model import GPTConfig, loss_and_grads
from smolgpt.optim import AdamWConfig, adamw_init, adamw_step, clip_grad_norm

pytestmark = pytest.mark.usefixtures("one_blas_thread")

LOW, HIGH = 0.85, 1.2

CONFIGS = {
    "head-bound": (GPTConfig(n_layer=1, n_head=2, n_embd=16, block_size=16), 2),
    "head-bound, 2 chunks": (GPTConfig(n_layer=2, n_head=2, n_embd=32, block_size=64), 20),
    "activation-bound": (GPTConfig(n_layer=2, n_head=4, n_embd=64, block_size=128,
                                   vocab_size=512), 8),
    "T above the attention block": (GPTConfig(n_layer=2, n_head=2, n_embd=64, block_size=300,
                                              vocab_size=512), 3),
}
SPECS = [MethodSpec("full"), MethodSpec("embeddings"), MethodSpec("lora", rank=4),
         MethodSpec("fastfood", d=64), MethodSpec("basis", d=64), MethodSpec("fft-fastfood", d=64),
         MethodSpec("vera", rank=4), MethodSpec("nola", rank=4, nola_k=16, nola_l=16)]


def measured_peak(gpt: GPTConfig, batch_size: int, spec: MethodSpec, steps: int = 2) -> int:
    rng = np.random.default_rng(0)
    tracemalloc.start()
    try:
        method = build(spec, gpt)
        trainables = method.init()
        adam = adamw_init(trainables)
        for _ in range(steps):
            x, y = rng.integers(0, gpt.vocab_size, (2, batch_size, gpt.block_size))
            params = method.params(trainables)
            _, grads = loss_and_grads(params, x, y, gpt, wanted=method.needed_grads)
            tgrads = method.pullback(trainables, grads)
            clip_grad_norm(tgrads, 1.0)
            adamw_step(trainables, tgrads, adam, 1e-3, AdamWConfig(),
                       method.decay_keys(trainables))
            del params, grads, tgrads
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("name", CONFIGS)
@pytest.mark.parametrize("spec", SPECS, ids=[s.label() for s in SPECS])
def test_estimate_is_within_the_stated_factor_of_the_measured_peak(name, spec):
    gpt, batch_size = CONFIGS[name]
    est = estimate_training_bytes(gpt, batch_size, build(spec, gpt))
    peak = measured_peak(gpt, batch_size, spec)
    ratio = est["total"] / peak
    print(f"{name} {spec.label()}: estimate {est['total'] / 1e6:.1f} MB, "
          f"peak {peak / 1e6:.1f} MB, ratio {ratio:.2f}")
    assert LOW <= ratio <= HIGH, (est, peak)


def test_estimate_grows_as_the_batch_and_the_parts_add_up():
    gpt = GPTConfig.preset("tiny")
    method = build(MethodSpec("full"), gpt)
    small, big = (estimate_training_bytes(gpt, b, method) for b in (16, 64))
    assert big["activations"] == pytest.approx(4 * small["activations"], rel=0.01)
    assert big["total"] > small["total"]
    persistent = small["parameters"] + small["adam"] + small["activations"]
    assert small["total"] == persistent + max(small["head"],
                                              small["gradients"] + small["backward"])


def test_available_bytes_is_a_plausible_number():
    free = available_bytes()
    assert free is None or 10**7 < free < 10**15
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():                   # Linux: read from there, not left unknown
        kb = int(re.search(r"^MemAvailable:\s+(\d+) kB", meminfo.read_text(), re.M)[1])
        assert free == pytest.approx(kb * 1024, rel=0.05)


def test_available_bytes_falls_back_to_sysconf_without_proc(monkeypatch):
    real_open = open

    def no_proc(path, *args, **kwargs):
        if str(path) == "/proc/meminfo":
            raise FileNotFoundError(path)
        return real_open(path, *args, **kwargs)
    monkeypatch.setattr("builtins.open", no_proc)
    free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")     # it moves a little
    assert available_bytes() == pytest.approx(free, rel=0.05)
