"""The `smolgpt` command: prepare | train | sample | bench | plot.

    smolgpt prepare                          tokenize C4 into data/ (done on first use anyway)
    smolgpt train --method fastfood --d 1000 train a model, write runs/<name>/
    smolgpt train --resume runs/x/checkpoint.npz
    smolgpt sample runs/x/checkpoint.npz     generate text
    smolgpt bench                            tokens/s and FLOP utilisation on this machine
    smolgpt plot runs/*/log.jsonl            redraw validation curves from logs

Errors in what you asked for print one line saying what to fix, and exit with status 2;
a run that diverges exits with status 3 and keeps its last good checkpoint; Ctrl-C during
training saves a checkpoint and exits with status 0 (before training starts: 130, nothing lost).
"""

from __future__ import annotations

import argparse
import json
import sys

from .methods import METHODS, MethodSpec

_TRAIN_DEFAULTS = None


def _train_defaults():
    global _TRAIN_DEFAULTS
    if _TRAIN_DEFAULTS is None:
        from .train import TrainConfig
        _TRAIN_DEFAULTS = TrainConfig()
    return _TRAIN_DEFAULTS


def _add_train_args(p: argparse.ArgumentParser):
    # Every default is None here so that, with --resume, only flags the user typed override the
    # checkpoint's settings; the real defaults are TrainConfig's and MethodSpec's.
    g = p.add_argument_group("model (a preset, optionally resized)")
    g.add_argument("--preset", help="model size preset: tiny (default; 4 layers x 128) or gpt2 "
                   "(GPT-2 small, 124M)")
    g.add_argument("--n-layer", type=int, help="override the preset's number of blocks")
    g.add_argument("--n-head", type=int, help="override the preset's attention heads")
    g.add_argument("--n-embd", type=int, help="override the preset's width C")
    g.add_argument("--block-size", type=int, help="override the preset's context length T")
    g = p.add_argument_group("parameterization")
    g.add_argument("--method", help=f"what is trained: {', '.join(METHODS)} (default full). "
                   "full: every tensor; embeddings: only wte/wpe; basis: a dense random subspace; "
                   "fastfood / fft-fastfood: the same with a fast structured projection; lora: "
                   "low-rank updates of a frozen random init")
    g.add_argument("--d", type=int, help="subspace dimension (default 5): trainable numbers for "
                   "the whole model, or per tensor with --per-tensor")
    g.add_argument("--per-tensor", action="store_const", const=True,
                   help="one d-dimensional subspace per tensor (the post's '5 per tensor')")
    g.add_argument("--no-offset", action="store_const", const=True,
                   help="the post's form theta = sum_k a_k W^k instead of Li et al.'s "
                   "theta_0 + P a")
    g.add_argument("--rank", type=int, help="LoRA rank r (default 4)")
    g.add_argument("--alpha", type=float, help="LoRA scale alpha; the update is (alpha/r) A B "
                   "(default 8)")
    g.add_argument("--method-seed", type=int, help="seed of the random init, bases and LoRA A "
                   "(default 0)")
    g = p.add_argument_group("optimisation")
    g.add_argument("--steps", type=int, help="optimizer steps (default 200)")
    g.add_argument("--batch-size", type=int, help="sequences per step (default 16)")
    g.add_argument("--lr", type=float, help="peak learning rate of directly trained arrays "
                   "(default 1e-3)")
    g.add_argument("--coef-lr", type=float, help="peak learning rate of subspace coefficients "
                   "(default 0.3)")
    g.add_argument("--warmup", type=int, help="linear warmup steps (default 20)")
    g.add_argument("--weight-decay", type=float, help="AdamW decoupled decay on 2-D weights "
                   "(default 0.1)")
    g.add_argument("--grad-clip", type=float, help="clip the global gradient norm to this "
                   "(default 1.0; 0 disables)")
    g.add_argument("--seed", type=int, help="seed of the batch order (default 0)")
    g = p.add_argument_group("evaluation and output")
    g.add_argument("--eval-every", type=int, help="validation loss every N steps (default 50)")
    g.add_argument("--eval-windows", type=int, help="held-out windows in the validation loss "
                   "(default 64)")
    g.add_argument("--checkpoint-every", type=int, help="save a checkpoint every N steps "
                   "(default 100; also at the end and on Ctrl-C)")
    g.add_argument("--out", help="run folder for log.jsonl, checkpoint.npz, sample.txt "
                   "(default runs/<method>)")
    g.add_argument("--data-dir", help="where prepared token files live (default: $SMOLGPT_DATA_DIR "
                   "or the repository's data/)")
    g.add_argument("--sample-tokens", type=int, help="tokens of text generated at the end "
                   "(default 40; 0 for none)")
    p.add_argument("--resume", metavar="PATH", help="continue from a checkpoint; its settings are "
                   "used, flags you give must agree with its model and method")
    p.add_argument("--overwrite", action="store_true", help="start afresh even if --out already "
                   "holds a run's checkpoint (which is then replaced); without it that is refused")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _train_config(a: argparse.Namespace):
    import dataclasses

    from .checkpoint import load as load_ckpt
    from .model import GPTConfig
    from .train import TrainConfig

    if a.resume:
        base = TrainConfig.from_dict(load_ckpt(a.resume)[2]["train"])
    else:
        base = _train_defaults()
    model = GPTConfig.preset(a.preset) if a.preset else base.model
    resize = {k: v for k, v in dict(n_layer=a.n_layer, n_head=a.n_head, n_embd=a.n_embd,
                                     block_size=a.block_size).items() if v is not None}
    model = dataclasses.replace(model, **resize) if resize else model
    ms = base.method
    spec = dict(name=a.method, d=a.d, per_tensor=a.per_tensor,
                offset=False if a.no_offset else None, rank=a.rank, alpha=a.alpha,
                seed=a.method_seed)
    spec = MethodSpec(**{**ms.to_dict(), **{k: v for k, v in spec.items() if v is not None}})
    changes = dict(steps=a.steps, batch_size=a.batch_size, lr=a.lr, coef_lr=a.coef_lr,
                   warmup=a.warmup, weight_decay=a.weight_decay, grad_clip=a.grad_clip,
                   seed=a.seed, eval_every=a.eval_every, eval_windows=a.eval_windows,
                   checkpoint_every=a.checkpoint_every, out=a.out, data_dir=a.data_dir,
                   sample_tokens=a.sample_tokens)
    changes = {k: v for k, v in changes.items() if v is not None}
    if not a.resume and a.out is None:
        from .experiments import run_name
        changes["out"] = "runs/" + run_name(spec)
    return dataclasses.replace(base, model=model, method=spec, **changes)


def cmd_train(a):
    from pathlib import Path

    from .methods import build
    from .train import train
    cfg = _train_config(a)
    build(cfg.method, cfg.model)              # validate the method's options before any data work
    old = Path(cfg.out) / "checkpoint.npz"
    if not a.resume and not a.overwrite and old.exists():   # a forgotten --resume loses a run
        raise ValueError(f"{cfg.out} already holds a run ({old}): continue it with --resume {old}, "
                         f"choose another --out, or pass --overwrite to start afresh")
    summary = train(cfg, resume=a.resume, progress=not a.no_progress)
    if summary["interrupted"]:
        return                                # train() said where the checkpoint is
    print(f"final validation loss {summary['val_loss']:.4f} after {summary['tokens']:,} tokens; "
          f"checkpoint {summary['checkpoint']} ({summary['checkpoint_bytes']:,} bytes)")
    if summary.get("sample"):
        print("sample:", summary["sample"])


def cmd_prepare(a):
    from .data import prepare
    m = prepare(a.data_dir, max_docs=a.max_docs, force=a.force)
    print(json.dumps(m, indent=2))


def cmd_sample(a):
    from .sample import sample_text
    from .train import load_params
    params, model, spec = load_params(a.checkpoint)
    for i in range(a.num):
        text = sample_text(params, model, prompt=a.prompt, max_new_tokens=a.tokens,
                           temperature=a.temperature, top_k=a.top_k or None, seed=a.seed + i)
        print(f"--- sample {i + 1} ({spec.label()}) ---\n{text}")


def cmd_bench(a):
    from . import bench
    from .model import GPTConfig
    config = GPTConfig.preset(a.preset)
    r = bench.run(config, batch_size=a.batch_size, repeats=a.repeats, subspace_d=a.d,
                  transforms=a.transforms)
    print(json.dumps(r, indent=2) if a.json else bench.format_report(r))


def cmd_plot(a):
    from .plots import plot_val_curves
    missing = [p for p in a.logs if not __import__("os").path.isfile(p)]
    if missing:
        raise FileNotFoundError(f"no log file {missing[0]}: pass runs' log.jsonl files")
    print("wrote", plot_val_curves(a.logs, a.out))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="smolgpt", description="How few trained parameters can a "
                                "GPT-2 get by with? Train, sample and benchmark NumPy GPT-2s.")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("prepare", help="tokenize C4 into uint16 token files (train/val)",
                       description="Tokenize C4 with GPT-2's BPE into data/. Offline, set "
                       "SMOLGPT_C4_FILES (and SMOLGPT_C4_VAL_FILES) to globs of local C4 "
                       "JSON-lines files; otherwise C4 is streamed with `datasets`.")
    s.add_argument("--data-dir", help="output folder (default $SMOLGPT_DATA_DIR or data/)")
    s.add_argument("--max-docs", type=int, help="documents to take per split when streaming")
    s.add_argument("--force", action="store_true", help="tokenize again even if up to date")
    s.set_defaults(fn=cmd_prepare)

    s = sub.add_parser("train", help="train a model with any parameterization",
                       description="Train GPT-2 from scratch on C4 with a chosen "
                       "parameterization; prints the trainable non-embedding parameter count.")
    _add_train_args(s)
    s.set_defaults(fn=cmd_train)

    s = sub.add_parser("sample", help="generate text from a checkpoint")
    s.add_argument("checkpoint", help="a run's checkpoint.npz")
    s.add_argument("--prompt", default="", help="text to continue (default: start of a document)")
    s.add_argument("--tokens", type=int, default=60, help="new tokens per sample (default 60)")
    s.add_argument("--temperature", type=float, default=0.8, help="softmax temperature; 0 is "
                   "greedy (default 0.8)")
    s.add_argument("--top-k", type=int, default=40, help="sample among the k likeliest tokens; "
                   "0 for all (default 40)")
    s.add_argument("--num", type=int, default=1, help="how many samples (default 1)")
    s.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    s.set_defaults(fn=cmd_sample)

    s = sub.add_parser("bench", help="tokens/s and FLOP utilisation against this machine's "
                       "matmul rate")
    s.add_argument("--preset", default="tiny", help="model preset (default tiny)")
    s.add_argument("--batch-size", type=int, default=16, help="sequences per step (default 16)")
    s.add_argument("--repeats", type=int, default=5, help="timed repeats, best kept (default 5)")
    s.add_argument("--d", type=int, default=1000, help="subspace dimension of the Fastfood step "
                   "timed against full training (default 1000)")
    s.add_argument("--transforms", action="store_true", help="also time the projection "
                   "operators at D=2^24 (Fastfood) and D=2^20 (dense vs Fastfood)")
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.set_defaults(fn=cmd_bench)

    s = sub.add_parser("plot", help="redraw validation curves from run logs")
    s.add_argument("logs", nargs="+", help="log.jsonl files of runs")
    s.add_argument("--out", default="val_curves.png", help="image to write (default "
                   "val_curves.png)")
    s.set_defaults(fn=cmd_plot)
    return p


def main(argv=None) -> int:
    from .checkpoint import CheckpointError
    from .data import DataError
    from .train import TrainingDiverged
    args = build_parser().parse_args(argv)
    try:
        args.fn(args)
    except TrainingDiverged as e:
        print(f"smolgpt: {e}", file=sys.stderr)
        return 3
    except (ValueError, DataError, CheckpointError, FileNotFoundError) as e:
        print(f"smolgpt: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:                      # --out or --data-dir a file, no permission, disk full
        print(f"smolgpt: error: {e}; check that the path is a folder you can write to and that "
              f"the disk has space", file=sys.stderr)
        return 2
    except KeyboardInterrupt:                 # Ctrl-C outside the training loop (which saves)
        print("smolgpt: interrupted; checkpoints already written are kept", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
