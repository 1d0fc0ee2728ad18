"""smolgpt against PyTorch eager on the same GPT-2, side by side (`smolgpt bench --vs-torch`).

The PyTorch side is Hugging Face's `GPT2LMHeadModel` built with smolgpt's shape and choices
(tanh-GELU, LayerNorm eps 1e-5, tied head, no dropout), loaded with the very same initial
weights, in float32 training mode; its loss is the plain cross-entropy of its logits against
the same targets, so both sides compute the same function on the same batch (the report shows
both first losses). What is timed is one forward+backward of that batch.

Each side lives in its own worker subprocess, so `ru_maxrss` (the peak resident memory the OS
counted) is that side's own; a third worker times the float32 matmul probe, so each round
yields an MFU for both sides. Every worker gets the same thread count (OpenBLAS/OpenMP/MKL via
the environment, `torch.set_num_threads`, and smolgpt's `layers.THREADS`); the PyTorch worker
runs without the process settings smolgpt's import makes (smolgpt/__init__.py), as PyTorch's users
run it, and the report says which settings each side had. The parent sends
"step" to one worker after the other, A B A B (`timing.rounds`), and reports median tokens/s,
the median of per-round ratios and its spread.

Needs the optional extra: pip install -e ".[hf]"   (torch CPU and transformers).
"""

from __future__ import annotations

import importlib.util
import json
import os
import resource
import subprocess
import sys

from .. import BLAS_SPIN_VAR, DEFAULTS_VAR
from ..model import GPTConfig
from .timing import median, rounds, spread

# (preset, batch size, sequence length, rounds): GPT-2 small at batch 1 x 1024 (~20 s a step per
# side on 2 cores: 3 rounds keep the whole run to minutes); every other preset as the chapters
# train it, 16 sequences of its full context, in 5 rounds.
SPECIAL_CASES = {"gpt2": (1, 1024, 3)}
DEFAULT_BATCH, DEFAULT_ROUNDS = 16, 5


def case(preset: str) -> tuple[str, int, int, int]:
    """(preset, batch size, T, rounds) of the comparison of `preset`; ConfigError if unknown."""
    config = GPTConfig.preset(preset)
    return (preset, *SPECIAL_CASES.get(preset, (DEFAULT_BATCH, config.block_size,
                                                DEFAULT_ROUNDS)))


CASES = tuple(case(p) for p in ("tiny", "gpt2"))      # the default comparison
INSTALL_HINT = 'smolgpt bench --vs-torch needs PyTorch and transformers: pip install -e ".[hf]"'


class TorchUnavailable(RuntimeError):
    """torch or transformers is not installed; the message is the one line to show."""


def check_torch() -> None:
    if importlib.util.find_spec("torch") is None or importlib.util.find_spec("transformers") is None:
        raise TorchUnavailable(INSTALL_HINT)


def default_threads() -> int:
    from .. import layers
    return layers.THREADS


# ----------------------------------------------------------------------------------------------
# The parent: start the workers, alternate them, collect the figures.


class _Worker:
    """One side in its own process: `ask("step")` runs one timed unit there and returns its reply."""

    def __init__(self, side: str, config: GPTConfig, batch_size: int, T: int, threads: int):
        env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads),
                   MKL_NUM_THREADS=str(threads))
        if side == "torch":                 # PyTorch as its users run it: without the process
            env[DEFAULTS_VAR] = "1"         # settings smolgpt's import makes (smolgpt/__init__.py)
            env.pop(BLAS_SPIN_VAR, None)    # (set in this process's environment by that import)
        args = json.dumps({"side": side, "config": config.to_dict(), "batch_size": batch_size,
                           "T": T, "threads": threads})
        self.side = side
        code = "import sys; from smolgpt.bench.vs_torch import worker_main; worker_main(sys.argv[1])"
        self.proc = subprocess.Popen([sys.executable, "-c", code, args],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env,
                                     text=True, bufsize=1)

    def reply(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the {self.side} worker stopped (exit code {self.proc.wait()}); "
                               f"its error is printed above")
        return json.loads(line)

    def ask(self, command: str) -> dict:
        self.proc.stdin.write(command + "\n")
        return self.reply()

    def finish(self) -> dict:
        info = self.ask("exit")
        self.proc.wait()
        return info


def compare(preset: str, batch_size: int, T: int, n_rounds: int, threads: int) -> dict:
    """One case: smolgpt and torch, A B A B for n_rounds (after one warm-up step each)."""
    from .model import PROBE_FLOPS, flops_per_token
    config = GPTConfig.preset(preset)
    workers = {side: _Worker(side, config, batch_size, T, threads)
               for side in ("smolgpt", "torch", "matmul")}
    ready = {side: w.reply() for side, w in workers.items()}          # built (in parallel)
    try:
        first = {side: workers[side].ask("step")["loss"] for side in ("smolgpt", "torch")}
        times = rounds({side: (lambda w=w: w.ask("step")) for side, w in workers.items()},
                       n_rounds, warmup=False)                        # warmed up just above
    finally:
        info = {side: w.finish() for side, w in workers.items()}
    tokens = batch_size * T
    model_flops = flops_per_token(config, T) * tokens
    probe_flops = PROBE_FLOPS
    result = {"preset": preset, "config": config.to_dict(), "batch_size": batch_size, "T": T,
              "threads": threads, "rounds": n_rounds,
              "matmul_gflops": probe_flops / median(times["matmul"]) / 1e9,
              "torch_attention": ready["torch"]["attention"],
              "blas_threads": {s: ready[s]["blas_threads"] for s in ("smolgpt", "torch")},
              "process": {s: ready[s]["process"] for s in ("smolgpt", "torch")}}
    for side in ("smolgpt", "torch"):
        mfu = [(model_flops / t) / (probe_flops / m)
               for t, m in zip(times[side], times["matmul"])]
        result[side] = {"seconds": median(times[side]), "tokens_per_s": tokens / median(times[side]),
                        "mfu": median(mfu), "peak_rss_mb": info[side]["peak_rss_mb"],
                        "first_loss": first[side]}
    ratios = [t / s for s, t in zip(times["smolgpt"], times["torch"])]
    result["speedup"] = median(ratios)                 # > 1: smolgpt is faster
    result["speedup_spread"] = spread(ratios)
    return result


def run(cases=CASES, threads: int | None = None) -> dict:
    """Every case of `cases` ((preset, batch size, T, rounds), ...) as one dict."""
    check_torch()
    threads = default_threads() if threads is None else threads
    return {"threads": threads,
            "cases": [compare(p, b, T, n, threads) for p, b, T, n in cases]}


def format_report(r: dict) -> str:
    lines = [f"smolgpt vs PyTorch eager (HF GPT2LMHeadModel), forward+backward, "
             f"{r['threads']} threads each, interleaved rounds, medians:",
             f"{'model':<11}{'batch':>9}{'side':>9}{'tokens/s':>10}{'MFU':>6}{'peak RSS':>10}"
             f"{'first loss':>12}"]
    for c in r["cases"]:
        for side in ("smolgpt", "torch"):
            s = c[side]
            lines.append(f"{c['preset']:<11}{str(c['batch_size']) + 'x' + str(c['T']):>9}{side:>9}"
                         f"{s['tokens_per_s']:>10,.0f}{s['mfu']:>6.0%}"
                         f"{s['peak_rss_mb'] / 1024:>8.2f}GB{s['first_loss']:>12.5f}")
        lo, hi = c["speedup_spread"]
        lines.append(f"  smolgpt / torch speed: {c['speedup']:.2f}x (rounds: {lo:.2f}x-{hi:.2f}x,"
                     f" {c['rounds']} rounds; matmul rate {c['matmul_gflops']:.0f} GFLOP/s; "
                     f"torch attention: {c['torch_attention']})")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------
# A worker: build one side, then answer "step" / "exit" on stdin, one JSON line each.


def _blas_threads():
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]


def _smolgpt_side(config, x, y, threads):
    from .. import layers
    from ..model import init_params, loss_and_grads
    layers.THREADS = threads
    params = init_params(config)
    return (lambda: loss_and_grads(params, x, y, config)[0]), "smolgpt"


def _torch_side(config, x, y, threads):
    import torch
    import torch.nn.functional as F
    from transformers import GPT2Config, GPT2LMHeadModel

    from ..model import init_params
    torch.set_num_threads(threads)
    hf = GPT2LMHeadModel(GPT2Config(
        n_layer=config.n_layer, n_head=config.n_head, n_embd=config.n_embd,
        n_positions=config.block_size, vocab_size=config.vocab_size,
        activation_function="gelu_new", resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
        layer_norm_epsilon=1e-5, tie_word_embeddings=True,
        bos_token_id=config.vocab_size - 1, eos_token_id=config.vocab_size - 1))   # unused here
    state = {"transformer." + k: torch.from_numpy(v) for k, v in init_params(config).items()}
    missing, unexpected = hf.load_state_dict(state, strict=False)
    assert not unexpected and all("attn.bias" in k or "masked_bias" in k or k == "lm_head.weight"
                                  for k in missing), (missing, unexpected)
    hf.train()                                          # dropout is 0: train mode is the same math
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)

    def step():
        hf.zero_grad(set_to_none=True)
        logits = hf(xt).logits                          # (B, T, V)
        loss = F.cross_entropy(logits.reshape(-1, config.vocab_size), yt.reshape(-1))
        loss.backward()
        return loss.item()

    return step, getattr(hf.config, "_attn_implementation", "eager")


def _matmul_side(config, x, y, threads):
    from .model import matmul_probe
    probe, _ = matmul_probe()

    def step():
        probe()                                         # PROBE_PRODUCTS products; no loss to say

    return step, "-"


def worker_main(args_json: str) -> None:
    """The worker process's main: args_json as _Worker builds it."""
    args = json.loads(args_json)
    from .model import random_batch
    config = GPTConfig(**args["config"])
    x, y = random_batch(config, args["batch_size"], args["T"])
    build = {"smolgpt": _smolgpt_side, "torch": _torch_side, "matmul": _matmul_side}[args["side"]]
    step, attention = build(config, x, y, args["threads"])
    out = sys.stdout

    def say(obj):
        out.write(json.dumps(obj) + "\n")
        out.flush()

    from . import process_settings
    say({"ready": True, "attention": attention, "blas_threads": _blas_threads(),
         "process": process_settings()})
    for line in sys.stdin:
        if line.strip() == "step":
            say({"loss": step()})
        else:
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024    # KB -> MB (Linux)
            say({"peak_rss_mb": peak})
            return

