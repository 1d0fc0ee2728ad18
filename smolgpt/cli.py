"""The `smolgpt` command.

    smolgpt prepare                          tokenize C4 into data/ (done on first use anyway)
    smolgpt train --method fastfood --d 1000 train a model, write runs/<name>/
    smolgpt train --resume runs/x/checkpoint.npz
    smolgpt sweep --method lora --grid 3e-4,1e-3,3e-3    tune a learning rate over seeds
    smolgpt sample runs/x/checkpoint.npz     generate text
    smolgpt eval runs/x/checkpoint.npz       loss, perplexity, bits per byte on held-out text
    smolgpt export runs/x/checkpoint.npz hf/x     a directory transformers loads
    smolgpt import hf/gpt2 runs/gpt2/checkpoint.npz   a Hugging Face GPT-2 as a checkpoint
    smolgpt bench                            tokens/s and FLOP utilisation on this machine
    smolgpt plot runs/*/log.jsonl            redraw validation curves from logs
    smolgpt book [--quick]                   every chapter run into a notebook, and a web site

The training flags are not listed here: they are made from the fields of `GPTConfig`,
`MethodSpec` and `TrainConfig` (`_dataclass_flags`), each with the help text and default its field
declares, so a new field is a new flag without touching this file.

Exit statuses: 0 done; 2 an error in what you asked for (one line saying what to fix); 3 a run
that diverged (its last good checkpoint is kept); 4 training stopped by Ctrl-C, SIGTERM or SIGHUP,
with a checkpoint saved at the step reached and the command that resumes it printed (STOPPED).
The same signals outside the training loop end the command at once with 128 + the signal's
number (130, 143, 129), keeping every file already written.

`mpiexec -n N smolgpt train ...` trains one model on N processes (smolgpt/distributed.py). There
an error on any rank prints one line and ends every rank (MPI_Abort) with the same status, since
the other ranks would otherwise wait for it forever.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import json
import os
import shlex
import signal
import sys
from pathlib import Path

from . import distributed
from .files import describe_file, refuse_strangers
from .methods import RATES, MethodSpec, refuse_foreign, refuse_foreign_training
from .model import GPTConfig, count_params
from .train import RESUME_MAY_CHANGE, TrainConfig

STOPPED = 4          # exit status of a training run stopped by a signal, its progress saved

# ----------------------------------------------------------------------------------------------
# Flags made from dataclass fields


def _dataclass_flags(parser, cls, groups: dict, title: str, skip=()):
    """One flag per field of `cls` that declares a help text, in the argument group its metadata
    names, else `title` (created on first use). The flag is `--field-name` unless the metadata
    gives `flag`; a bool field becomes a switch that sets the opposite of its default. Every
    default is None here, so that with --resume only the flags the user typed override the
    checkpoint's settings; the help shows the field's real default, or the metadata's `shown`
    where the command line's default is not the field's ("" shows none)."""
    for f in dataclasses.fields(cls):
        if "help" not in f.metadata or f.name in skip:
            continue
        group = f.metadata.get("group", title)
        if group not in groups:
            groups[group] = parser.add_argument_group(group)
        flag = "--" + _dest(f).replace("_", "-")
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        if f.type in (bool, "bool"):
            groups[group].add_argument(flag, dest=_dest(f), action="store_const",
                                       const=not default, help=f.metadata["help"])
        else:
            kind = {"int": int, "float": float, "str": str}.get(
                str(f.type).split(" |")[0], str)
            shown = f.metadata.get("shown", default)
            groups[group].add_argument(flag, dest=_dest(f), type=kind, metavar=f.name.upper(),
                                       help=f.metadata["help"] if shown in (None, "") else
                                       f"{f.metadata['help']} (default {shown})")


def _dest(f: dataclasses.Field) -> str:
    """The argparse destination of a field's flag: its own name, or the `flag` its metadata
    gives (MethodSpec.seed is --method-seed, so that it is not confused with TrainConfig.seed)."""
    return f.metadata.get("flag", f.name).replace("-", "_")


def _typed(args: argparse.Namespace, cls) -> dict:
    """{field name: value} for the fields of `cls` whose flags the user gave."""
    given = vars(args)
    return {f.name: given[_dest(f)] for f in dataclasses.fields(cls)
            if "help" in f.metadata and given.get(_dest(f)) is not None}


# one run's flags, which a sweep of many runs has no use for: why, for its refusal
NOT_FOR_A_SWEEP = {
    "--seed": "it trains seeds 0..N-1 of every grid value (--seeds N)",
    "--method-seed": "each run's method draws with the run's seed, 0..N-1 (--seeds N)",
    "--out": "its runs are kept under $SMOLGPT_RUNS (else $SMOLGPT_OUT/runs, else out/runs)",
    "--resume": "it resumes its interrupted runs itself: give the same sweep again",
    "--overwrite": "it reuses its finished runs; SMOLGPT_FRESH=1 trains them again",
    "--no-progress": "its runs draw no bars, and its one bar over the runs shows on a terminal "
                     "only and is erased when done",
}


def _not_for_a_sweep(flag: str) -> str:
    return "not_for_a_sweep_" + flag[2:].replace("-", "_")


def _add_train_args(p: argparse.ArgumentParser, run_flags: bool = True):
    """The training flags; run_flags adds those about one run's folder (--resume ...) and the
    seeds (a sweep gives each of its runs seed 0..N-1, of the batch order and of the method's
    random draws alike, so it takes neither seed flag)."""
    model = "model (a preset, optionally resized)"
    groups = {model: p.add_argument_group(model)}
    groups[model].add_argument("--preset", help="model size preset: tiny (default; 4 layers x "
                               "128), tiny-bytes (the same body reading UTF-8 bytes) or gpt2 "
                               "(GPT-2 small, 124M)")
    _dataclass_flags(p, GPTConfig, groups, model)
    _dataclass_flags(p, MethodSpec, groups, "parameterization", skip=() if run_flags else ("seed",))
    _dataclass_flags(p, TrainConfig, groups, "optimisation",
                     skip=() if run_flags else ("out", "seed"))
    if not run_flags:                         # taken only to be refused, saying why (cmd_sweep)
        for flag in NOT_FOR_A_SWEEP:
            p.add_argument(flag, nargs="?", const=True, dest=_not_for_a_sweep(flag),
                           help=argparse.SUPPRESS)
        return
    may_change = ", ".join("--" + _dest(f).replace("_", "-")
                           for f in dataclasses.fields(TrainConfig) if f.name in RESUME_MAY_CHANGE)
    p.add_argument("--resume", metavar="PATH", help="continue from a checkpoint, in its own "
                   "folder (or in --out) with its settings; of the flags, only " + may_change +
                   " may differ from them")
    p.add_argument("--overwrite", action="store_true", help="start afresh even if --out already "
                   "holds a run: its checkpoint, log and sample are removed once the new run's "
                   "checks have passed; without it that is refused")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _train_config(a: argparse.Namespace) -> TrainConfig:
    """The TrainConfig the flags ask for: the checkpoint's (with --resume) or the defaults,
    with every flag the user typed applied on top (train.run_settings merges them)."""
    from .experiments import run_name
    from .train import run_settings

    resume = getattr(a, "resume", None)
    options, changes = _typed(a, MethodSpec), _typed(a, TrainConfig)
    if resume and "init_from" in changes:     # its start is part of the run
        raise ValueError("--init-from does not apply with --resume: a resumed run keeps the "
                         "start it was trained from (the checkpoint's own); drop --init-from")
    if resume and "out" not in changes:       # a resumed run continues next to its checkpoint
        changes["out"] = str(Path(resume).parent)
    cfg = run_settings(resume, preset=a.preset, gpt=_typed(a, GPTConfig), method=options,
                       **changes)
    refuse_foreign(cfg.method.name, options)  # given, even at its default, it would be ignored
    refuse_foreign_training(cfg.method.name, changes)
    if "out" not in changes:                  # a new run goes to runs/<method>
        cfg = dataclasses.replace(cfg, out="runs/" + run_name(cfg.method))
    return cfg


# ----------------------------------------------------------------------------------------------
# The commands


def cmd_train(a):
    from .distributed import world
    from .train import train
    # under mpiexec, rank 0 reads the flags (and a --resume checkpoint) and the others get its
    # config: they need not see the run folder at all
    cfg = world().bcast(_checked_train_config(a) if world().lead else None)
    summary = train(cfg, resume=a.resume, progress=not a.no_progress)
    if summary["interrupted"]:                # train() said where the checkpoint is
        return STOPPED                        # every rank: the flag was all-reduced
    if not world().lead:
        return 0
    print(f"final validation loss {summary['val_loss']:.4f} after {summary['tokens']:,} tokens; "
          f"checkpoint {summary['checkpoint']} ({summary['checkpoint_bytes']:,} bytes)")
    if summary.get("sample"):
        print("sample:", summary["sample"])


def _checked_train_config(a) -> TrainConfig:
    """The run's TrainConfig, refusing a start or resume that would replace another run."""
    from .methods import build
    from .train import check_base_kept
    cfg = _train_config(a)
    build(cfg.method, cfg.gpt)                # validate the method's options before any data work
    _folder_flag("--out", cfg.out)
    _folder_flag("--data-dir", cfg.data_dir)
    check_base_kept(cfg)                      # before suggesting --overwrite, which would not do
    out = Path(cfg.out)
    old = out / "checkpoint.npz"
    if not a.resume and not a.overwrite and old.exists():   # a forgotten --resume loses a run
        raise ValueError(f"{cfg.out} already holds a run ({old}): continue it with --resume "
                         f"{shlex.quote(str(old))}, choose another --out, or pass --overwrite to "
                         f"start afresh")
    if a.resume and not a.overwrite and old.exists() and not old.samefile(a.resume):
        raise ValueError(f"--out {cfg.out} holds another run's checkpoint ({old}), which resuming "
                         f"{a.resume} there would replace: leave out --out to continue next to "
                         f"the checkpoint, choose an empty --out, or pass --overwrite")
    # The run's other files: a resume in the checkpoint's own folder continues them (the log is
    # appended to); anywhere else a file of those names is not this run's, and is not replaced.
    continuing = a.resume and old.exists() and old.samefile(a.resume)
    refuse_strangers([out / name for name in RUN_FILES],
                     ours=None if a.resume else _left_by_a_failed_start,
                     force=a.overwrite or continuing,
                     force_hint="pass --overwrite to start afresh and replace it")
    log = out / "log.jsonl"
    if not a.resume and not a.overwrite and log.exists():    # one a failed start left
        print(f"note: replacing {log}, the log of a run there that stopped before saving a "
              f"checkpoint")
    if cfg.warmup >= cfg.steps:               # allowed (a few-step try), but not what it seems
        print(f"note: the warmup ({cfg.warmup} steps) is not shorter than the run ({cfg.steps} "
              f"steps), so the learning rate only rises, to {cfg.steps / cfg.warmup:.0%} of its "
              f"peak; give --warmup below --steps for the full schedule")
    return cfg


def _left_by_a_failed_start(path: Path) -> bool:
    """A log.jsonl that smolgpt train began (its first record is a "start") beside no checkpoint:
    what a run leaves when it fails before its first save (divergence at once, a full disk, a
    signal during the first evaluation). Nothing in it can be resumed, so a new start in the
    same folder replaces it, as a retry after fixing the cause expects; any other file there
    is refused as before."""
    if path.name != "log.jsonl" or (path.parent / "checkpoint.npz").exists():
        return False
    with open(path, "rb") as f:
        first = json.loads(f.readline())
    return isinstance(first, dict) and first.get("event") == "start"


# What `smolgpt train` writes in its --out folder (and `.lock` while it runs: files.RunLock).
RUN_FILES = ("checkpoint.npz", "log.jsonl", "sample.txt")


def _folder_flag(flag: str, value) -> None:
    """Refuse a flag naming a folder to write into that is an existing file, in words (the
    operating system's own complaint is a bare "[Errno 17] File exists")."""
    if value is None:
        return
    path = Path(value).expanduser()
    if path.exists() and not path.is_dir():
        raise ValueError(f"{flag} {value} is a file ({describe_file(path)}), not a folder: name a "
                         f"folder (it is created if missing)")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ValueError(f"{flag} {value}: {parent} is a file, not a folder, so nothing "
                                 f"can be created under it: name another folder")
            break


def _require(ok: bool, flag: str, rule: str, value) -> None:
    """Refuse a flag's value that its type allows but its meaning does not, naming the flag."""
    if not ok:
        raise ValueError(f"{flag} must be {rule}, got {value}")


def cmd_prepare(a):
    from .data import SPLITS, prepare
    _require(a.max_docs is None or a.max_docs >= 1, "--max-docs", "at least 1 (leave it out for "
             "every local document)", a.max_docs)
    _folder_flag("--data-dir", a.data_dir)
    m = prepare(a.data_dir, train_glob=a.train_glob, val_glob=a.val_glob, max_docs=a.max_docs,
                force=a.force, tokenizer=a.tokenizer)
    print(m["source"]["description"])
    for split in SPLITS:
        s = m["splits"][split]
        print(f"{split}: {s['documents']:,} documents, {s['tokens']:,} tokens, "
              f"sha256 {s['sha256'][:12]}...")


def cmd_sample(a):
    import math

    from .checkpoint import load_params
    from .sample import sample_text
    from .train import MAX_SEED
    _require(a.tokens >= 1, "--tokens", "at least 1 (new tokens per sample)", a.tokens)
    _require(math.isfinite(a.temperature) and a.temperature >= 0, "--temperature",
             "a finite number >= 0 (0 is greedy, 1 samples the model as it is)", a.temperature)
    if a.temperature == 0:                    # greedy: the likeliest token, every time
        unused = [f for f, v in (("--top-k", a.top_k), ("--seed", a.seed)) if v is not None]
        if unused:
            flags = " and ".join(unused)
            raise ValueError(f"{flags} {'does' if len(unused) == 1 else 'do'} nothing with "
                             f"--temperature 0 (greedy decoding takes the likeliest token every "
                             f"time): drop {flags}, or sample with a temperature above 0")
        _require(a.num == 1, "--num", "1 with --temperature 0 (greedy decoding writes the same "
                 "text every time)", a.num)
    a.top_k = 40 if a.top_k is None else a.top_k
    a.seed = 0 if a.seed is None else a.seed
    _require(a.top_k >= 0, "--top-k", "an integer >= 0 (0 keeps every token)", a.top_k)
    _require(a.num >= 1, "--num", "at least 1 (how many samples)", a.num)
    _require(0 <= a.seed <= MAX_SEED - a.num, "--seed", f"an integer from 0 to "
             f"{MAX_SEED - a.num} (sample i uses seed + i)", a.seed)
    try:
        a.prompt.encode("utf-8")
    except UnicodeEncodeError as e:           # bytes the shell passed that are not UTF-8 text
        code = ord(a.prompt[e.start])       # Python keeps such a byte b as the code 0xDC00 + b
        what = f"byte 0x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else f"U+{code:04X}"
        raise ValueError(f"--prompt is not UTF-8 text ({what} at character {e.start + 1}); give "
                         f"the prompt in UTF-8, e.g. convert it with iconv -f latin1 -t utf-8") \
            from None
    params, gpt, spec = load_params(a.checkpoint)
    if a.prompt:
        from .data import encode
        n = len(encode(a.prompt, gpt.tokenizer))
        if n > gpt.block_size:
            print(f"note: the prompt is {n} tokens, longer than the model's context of "
                  f"{gpt.block_size}: the model sees only its last {gpt.block_size}")
    for i in range(a.num):
        text = sample_text(params, gpt, prompt=a.prompt, max_new_tokens=a.tokens,
                           temperature=a.temperature, top_k=a.top_k or None, seed=a.seed + i)
        print(f"--- sample {i + 1} ({spec.label()}) ---\n{text}")


def cmd_eval(a):
    from .evaluate import evaluate_checkpoint, format_report
    if a.max_windows is not None and a.max_windows < 1:
        raise ValueError(f"--max-windows must be at least 1, got {a.max_windows}")
    if a.batch_size < 1:
        raise ValueError(f"--batch-size must be at least 1, got {a.batch_size}")
    _folder_flag("--data-dir", a.data_dir)
    if a.data_dir is not None and not os.path.lexists(a.data_dir):    # a typo would prepare anew
        raise ValueError(f"--data-dir {a.data_dir} does not exist: give the folder the held-out "
                         f"text was prepared in, or prepare one first with smolgpt prepare "
                         f"--data-dir {shlex.quote(a.data_dir)} (add --tokenizer bytes for a "
                         f"byte model)")
    r = evaluate_checkpoint(a.checkpoint, data_dir=a.data_dir, batch_size=a.batch_size,
                            max_windows=a.max_windows, progress=a.progress)   # bar on stderr
    print(json.dumps(r, indent=2) if a.json else format_report(r))


def cmd_export(a):
    from .hf import export_hf
    out = export_hf(a.checkpoint, a.out_dir, force=a.force)
    print(f"wrote {out}: load it with transformers' GPT2LMHeadModel.from_pretrained({str(out)!r})"
          f" and AutoTokenizer.from_pretrained({str(out)!r})")


def cmd_import(a):
    from .hf import import_hf
    out = import_hf(a.source, a.out_checkpoint, force=a.force)
    path = shlex.quote(str(out))
    print(f"wrote {out}: sample it with `smolgpt sample {path}`, score it with "
          f"`smolgpt eval {path}`")


def cmd_bench(a):
    from . import bench
    _require(a.repeats >= 1, "--repeats", "at least 1 (timed rounds; the median is kept)",
             a.repeats)
    _require(a.batch_size >= 1, "--batch-size", "at least 1 (sequences per step)", a.batch_size)
    a.preset_given = a.preset is not None
    a.preset = a.preset or "tiny"
    config = GPTConfig.preset(a.preset)
    D = count_params(config, non_embedding=True)
    _require(1 <= a.d <= D, "--d", f"between 1 and the {D:,} non-embedding parameters of "
             f"{a.preset}", a.d)
    _require(a.threads is None or a.threads >= 1, "--threads", "at least 1", a.threads)
    if a.mpi:                             # the MPI comparison alone (smolgpt/bench/mpi.py)
        unused = [f for f, on in (("--vs-torch", a.vs_torch), ("--transforms", a.transforms))
                  if on]
        if unused:
            raise ValueError(f"{' and '.join(unused)} {'does' if len(unused) == 1 else 'do'} not "
                             f"apply with --mpi, which times the MPI comparison alone: run "
                             f"{'it' if len(unused) == 1 else 'them'} in a bench of its own")
        from .bench import mpi
        cores = a.threads or len(os.sched_getaffinity(0))
        r = mpi.run(config, batch_size=a.batch_size, steps=a.repeats, cores=cores,
                    specs=mpi.default_specs(a.d))
        print(json.dumps(r, indent=2) if a.json else mpi.format_report(r))
        return
    if a.vs_torch:                        # fail on a missing torch before minutes of timing
        bench.check_torch()
    r = bench.run(config, batch_size=a.batch_size, repeats=a.repeats, subspace_d=a.d,
                  transforms=a.transforms, threads=a.threads, step_repeats=a.repeats)
    if not a.json:
        print(bench.format_report(r), flush=True)
    if a.vs_torch:
        v = bench.run_vs_torch(threads=a.threads,
                               presets=(a.preset,) if a.preset_given else ("tiny", "gpt2"))
        r = {"bench": r, "vs_torch": v}
        if not a.json:
            print(bench.format_vs_torch(v))
    if a.json:
        print(json.dumps(r, indent=2))


def cmd_sweep(a):
    from .experiments.sweep import format_sweep, tune
    for flag, why in NOT_FOR_A_SWEEP.items():
        if getattr(a, _not_for_a_sweep(flag)) is not None:
            raise ValueError(f"{flag} does not apply to a sweep: {why}")
    if a.field in _typed(a, TrainConfig):     # the grid sets it: the flag would be ignored
        flag = "--" + a.field.replace("_", "-")
        raise ValueError(f"{flag} is the rate this sweep varies (--field {a.field}, over --grid "
                         f"{a.grid}): drop {flag}")
    cfg = _train_config(a)
    _folder_flag("--data-dir", cfg.data_dir)
    try:
        values = [float(v) for v in a.grid.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"--grid {a.grid!r}: give comma-separated numbers, e.g. "
                         f"1e-3,3e-3,1e-2") from None
    if any(not (v > 0 and v < float("inf")) for v in values):
        raise ValueError(f"--grid {a.grid!r}: every learning rate must be a positive number")
    for flag, value, least in (("--seeds", a.seeds, 1), ("--extend", a.extend, 0),
                               ("--workers", a.workers, 1)):
        if value is not None and value < least:
            raise ValueError(f"{flag} must be {least} or more, got {value}")
    print(format_sweep(tune(cfg, a.field, values, seeds=range(a.seeds), extend=a.extend,
                            workers=a.workers)))


def cmd_plot(a):
    from matplotlib.figure import Figure

    from .experiments import plot_val_curves, read_log
    from .experiments.chapter import is_smolgpt_figure
    missing = [p for p in a.logs if not os.path.isfile(p)]
    if missing:
        raise FileNotFoundError(f"no log file {missing[0]}: pass runs' log.jsonl files")
    kinds = Figure().canvas.get_supported_filetypes()
    ext = Path(a.out).suffix.lstrip(".").lower()
    if ext not in kinds:
        raise ValueError(f"--out {a.out}: cannot draw a {ext or 'file without an extension'!r}; "
                         f"end the name with one of {', '.join('.' + k for k in sorted(kinds))}")
    if not Path(a.out).resolve().parent.is_dir():
        raise ValueError(f"--out {a.out}: folder {Path(a.out).parent} does not exist; create it "
                         f"or choose another path")
    refuse_strangers([a.out], ours=is_smolgpt_figure, force=a.force)
    for path in a.logs:
        if not read_log(path)["evals"]:               # read_log names a bad file and line
            raise ValueError(f"{path} has no validation records (no line with event 'eval'): "
                             f"pass the log.jsonl of a run that got to its first evaluation")
    plot_val_curves(a.logs, a.out, force=a.force)     # prints where it wrote the figure


def cmd_book(a):
    from .book import ChapterFailed, build
    _require(a.timeout is None or a.timeout >= 1, "--timeout", "at least 1 second", a.timeout)
    try:
        build(quick=a.quick, out=a.out and Path(a.out), wanted=a.chapters, timeout=a.timeout)
    except ChapterFailed as e:
        return _fail(1, f"smolgpt: {e}")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="smolgpt", description="How few trained parameters can a "
                                "GPT-2 get by with? Train, sample and benchmark NumPy GPT-2s.")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("prepare", help="tokenize C4 into uint16 token files (train/val)",
                       description="Tokenize C4 with GPT-2's BPE (or into UTF-8 bytes) into the "
                       "data folder. Offline, "
                       "name local C4 JSON-lines files with --train-glob/--val-glob or "
                       "SMOLGPT_C4_FILES/SMOLGPT_C4_VAL_FILES; otherwise C4 is streamed with "
                       "`datasets`. Token files already made from the same source are reused.")
    s.add_argument("--data-dir", help="output folder (default $SMOLGPT_DATA_DIR, else data/ of "
                   "the checkout, or ./data outside one; bytes go to its bytes/ subfolder)")
    s.add_argument("--tokenizer", choices=("gpt2", "bytes"), default="gpt2",
                   help="gpt2 (GPT-2's BPE, default) or bytes (UTF-8 bytes, for --preset "
                   "tiny-bytes)")
    s.add_argument("--train-glob", help="training JSON-lines(.gz) files (with neither glob "
                   "given: $SMOLGPT_C4_FILES); alone, every 20th document is held out for "
                   "validation")
    s.add_argument("--val-glob", help="validation files, with --train-glob (with neither glob "
                   "given: $SMOLGPT_C4_VAL_FILES)")
    s.add_argument("--max-docs", type=int, help="cap on training documents, local or streamed; "
                   "validation gets a tenth of it (default: every local document, or the first "
                   "20,000 / 2,000 when streaming)")
    s.add_argument("--force", action="store_true", help="tokenize again even if up to date, "
                   "and replace train.bin, val.bin and manifest.json in --data-dir even if "
                   "smolgpt did not write them")
    s.set_defaults(fn=cmd_prepare)

    s = sub.add_parser("train", help="train a model with any parameterization",
                       description="Train GPT-2 from scratch on C4 with a chosen "
                       "parameterization; prints the trainable non-embedding parameter count. "
                       "'The post' in the flags below is the blog post whose experiment smolgpt "
                       "repeats (the README says what it found).")
    _add_train_args(s)
    s.set_defaults(fn=cmd_train)

    # no abbreviations: --seed would be taken for --seeds (a sweep has no --seed of its own)
    s = sub.add_parser("sweep", help="tune a learning rate: one run per grid value and seed",
                       allow_abbrev=False,
                       description="Train the same configuration at every value of a log grid "
                       "of one learning rate, over several seeds, through the experiment runner "
                       "(finished runs are reused), and name the best value only if it is "
                       "interior to the grid (both neighbours worse).")
    _add_train_args(s, run_flags=False)
    s.add_argument("--field", choices=("lr", *RATES), default="lr", help="which rate to sweep "
                   "(default lr; coef_lr: a subspace's coefficients and the knob methods' "
                   "knobs; scale_lr: SAID's per-tensor scales; vera_lr: VeRA's vectors; "
                   "nola_lr: NOLA's coefficients)")
    s.add_argument("--grid", required=True, help="comma-separated values, e.g. 3e-4,1e-3,3e-3")
    s.add_argument("--seeds", type=int, default=2, help="seeds per value, 0..N-1 (default 2)")
    s.add_argument("--extend", type=int, default=0, help="while the best value is on an edge of "
                   "the grid, add the next value past it (at the grid's own spacing), at most "
                   "N times (default 0)")
    s.add_argument("--workers", type=int, default=None, help="train N runs at once, each in "
                   "its own process of one BLAS thread (default $SMOLGPT_WORKERS, else one per "
                   "core; 1 trains one run after another in this process)")
    s.set_defaults(fn=cmd_sweep)

    s = sub.add_parser("sample", help="generate text from a checkpoint")
    s.add_argument("checkpoint", help="a run's checkpoint.npz")
    s.add_argument("--prompt", default="", help="text to continue (default: start of a document)")
    s.add_argument("--tokens", type=int, default=60, help="new tokens per sample (default 60)")
    s.add_argument("--temperature", type=float, default=0.8, help="softmax temperature; 0 is "
                   "greedy (default 0.8)")
    s.add_argument("--top-k", type=int, help="sample among the k likeliest tokens; 0 for all "
                   "(default 40; not with --temperature 0)")
    s.add_argument("--num", type=int, default=1, help="how many samples (default 1)")
    s.add_argument("--seed", type=int, help="sampling seed; sample i uses seed + i (default 0; "
                   "not with --temperature 0)")
    s.set_defaults(fn=cmd_sample)

    s = sub.add_parser("eval", help="loss, perplexity and bits per byte on the held-out split",
                       description="Score a checkpoint (any method) on the whole prepared "
                       "held-out split, in non-overlapping windows of the model's context: mean "
                       "loss (nats/token), perplexity and bits per byte (nats * tokens / UTF-8 "
                       "bytes / ln 2, which does not depend on the tokenizer), each with its "
                       "standard error over windows.")
    s.add_argument("checkpoint", help="a checkpoint.npz (trained, or made by `smolgpt import`)")
    s.add_argument("--data-dir", help="folder of the prepared token files (default "
                   "$SMOLGPT_DATA_DIR, else data/ of the checkout, or ./data outside one; a "
                   "byte model's tokens are in its bytes/ subfolder)")
    s.add_argument("--max-windows", type=int, help="score only this many evenly spaced windows, "
                   "for a quick estimate (default: the whole split)")
    s.add_argument("--batch-size", type=int, default=8, help="windows per forward (default 8)")
    s.add_argument("--progress", action="store_true", help="show a progress bar (on stderr: "
                   "--json's output stays one JSON object)")
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.set_defaults(fn=cmd_eval)

    s = sub.add_parser("export", help="write a checkpoint as a Hugging Face transformers GPT-2",
                       description="Write OUT_DIR with config.json, model.safetensors, GPT-2's "
                       "tokenizer files and a model card, which transformers' "
                       "GPT2LMHeadModel.from_pretrained and AutoTokenizer.from_pretrained load "
                       "with no other file. Subspace, LoRA, VeRA and NOLA models export the full "
                       "weights their trainables make; a byte-level model (tiny-bytes) has no "
                       "tokenizer transformers could load, and is refused. Needs no torch.")
    s.add_argument("checkpoint", help="a checkpoint.npz")
    s.add_argument("out_dir", help="folder to write (created if missing); a file there that an "
                   "earlier smolgpt export did not write is never replaced, the export is refused")
    s.add_argument("--force", action="store_true", help="replace files in OUT_DIR whatever wrote "
                   "them")
    s.set_defaults(fn=cmd_export)

    s = sub.add_parser("import", help="turn a Hugging Face GPT-2 into a smolgpt checkpoint",
                       description="Read a Hugging Face GPT-2 directory (config.json and "
                       "safetensors weights), or with network a Hub id such as gpt2, and write a "
                       "smolgpt checkpoint (method full, step 0) that sample, eval and training "
                       "accept. Architectures smolgpt does not have are refused.")
    s.add_argument("source", help="a local directory, or a Hub id (needs network)")
    s.add_argument("out_checkpoint", help="the checkpoint file to write, e.g. "
                   "runs/gpt2/checkpoint.npz; refused if it exists")
    s.add_argument("--force", action="store_true", help="replace OUT_CHECKPOINT if it exists")
    s.set_defaults(fn=cmd_import)

    s = sub.add_parser("bench", help="tokens/s and FLOP utilisation against this machine's "
                       "matmul rate")
    s.add_argument("--preset", help="model preset (default tiny; with --vs-torch, default "
                   "both tiny and gpt2)")
    s.add_argument("--batch-size", type=int, default=16, help="sequences per step (default 16)")
    s.add_argument("--repeats", type=int, default=5, help="timed repeats of each measurement; "
                   "the median is kept (default 5)")
    s.add_argument("--d", type=int, default=1000, help="subspace dimension of the Fastfood and "
                   "FFT-Fastfood steps timed against full training (default 1000)")
    s.add_argument("--transforms", action="store_true", help="also time the projection "
                   "operators at D=2^24 (Fastfood) and D=2^20 (dense vs Fastfood)")
    s.add_argument("--threads", type=int, help="threads for BLAS and smolgpt (and torch with "
                   "--vs-torch); default: what BLAS uses now")
    s.add_argument("--vs-torch", action="store_true", help="also time Hugging Face's PyTorch "
                   "GPT-2 of the same shape side by side, interleaved, each in its own process, "
                   "at the comparison's own batch and rounds (gpt2: 1 x 1024, 3 rounds; the "
                   "others: 16 x their context, 5) (needs pip install -e \".[hf]\")")
    s.add_argument("--mpi", action="store_true", help="instead, train steps of full, fastfood "
                   "--d and lora as 1 process x N threads and as N MPI processes x 1 thread "
                   "(N: --threads, default every core): tokens/s and bytes all-reduced per step; "
                   "--repeats timed steps per job (needs pip install -e \".[mpi]\")")
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.set_defaults(fn=cmd_bench)

    s = sub.add_parser("plot", help="redraw validation curves from run logs")
    s.add_argument("logs", nargs="+", help="log.jsonl files of runs")
    s.add_argument("--out", default="val_curves.png", help="image to write (default "
                   "val_curves.png in the current folder); an existing file is replaced only if "
                   "smolgpt drew it")
    s.add_argument("--force", action="store_true", help="replace --out whatever wrote it")
    s.set_defaults(fn=cmd_plot)

    s = sub.add_parser("book", help="run every chapter into a notebook and write the book's "
                       "web site", description="Run each chapter script in a Jupyter kernel "
                       "into a notebook with its printed output and figures, and write the "
                       "notebooks as a static web site with an index (needs pip install -e "
                       "\".[book]\"). Without --quick it writes the notebooks to "
                       "chapters/book/, replacing the committed ones. Finished training runs are "
                       "reused, so a rebuild takes minutes once the chapters have run.")
    s.add_argument("--quick", action="store_true", help="run the chapters' quick modes, writing "
                   "notebooks and site into --out only (the committed notebooks in "
                   "chapters/book/ are left alone)")
    s.add_argument("--out", help="folder of the web site (default out/book, or out/book-quick "
                   "with --quick; under $SMOLGPT_OUT if set)")
    s.add_argument("--chapters", help="comma-separated chapter numbers to run, e.g. 01,05 "
                   "(default all); the site shows every notebook already built")
    s.add_argument("--timeout", type=int, help="seconds any one cell may take before the build "
                   "stops (default no limit)")
    s.set_defaults(fn=cmd_book)
    return p


def main(argv=None) -> int:
    from .checkpoint import CheckpointError
    from .data import DataError
    from .experiments.pool import RunsFailed
    from .files import CannotWrite, FolderInUse, WouldReplace
    from .train import TrainingDiverged
    parser = build_parser()
    if distributed.launcher_rank():           # under mpiexec, rank 0 alone prints --help or usage
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            args = parser.parse_args(argv)
    else:
        args = parser.parse_args(argv)
    try:
        with _signals_stop_the_command():
            distributed.world()               # under mpiexec: join the job before anything fails
            status = args.fn(args) or 0
    except TrainingDiverged as e:
        return _fail(3, f"smolgpt: {e}")
    except (ValueError, DataError, CheckpointError, FolderInUse, WouldReplace, CannotWrite,
            FileNotFoundError, RunsFailed) as e:      # RunsFailed: a sweep's workers, each named
        return _fail(2, f"smolgpt: error: {e}")
    except BrokenPipeError:                   # `smolgpt sample ... | head`: the reader had enough
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())   # no flush error at exit
        return 0
    except OSError as e:                      # --out or --data-dir a file, no permission, disk full
        return _fail(2, f"smolgpt: error: {e}; check that the path is a folder you can write to "
                     f"and that the disk has space")
    except Stopped as e:                      # SIGTERM or SIGHUP outside the training loop
        return _fail(128 + e.signum, f"smolgpt: stopped by {e.name}; files already written "
                     f"are kept")
    except KeyboardInterrupt:                 # Ctrl-C outside the training loop (which saves)
        return _fail(130, "smolgpt: interrupted; checkpoints already written are kept")
    except Exception as e:
        # a bug or a crash: under mpiexec, one line and every rank ended; in one process, the
        # traceback as always
        distributed.abort_all(1, f"smolgpt: {type(e).__name__}: {e}")
        raise
    return status


class Stopped(KeyboardInterrupt):
    """SIGTERM or SIGHUP arrived outside the training loop (which saves instead): the command
    unwinds as for Ctrl-C (locks released, temporary files removed) and exits 128 + signum."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum
        self.name = signal.Signals(signum).name


@contextlib.contextmanager
def _signals_stop_the_command():
    """While a command runs, SIGTERM and SIGHUP raise Stopped, as Ctrl-C raises
    KeyboardInterrupt, instead of ending the process on the spot; training replaces the handlers
    with its own while it loops (smolgpt.train), so that it saves first. The handlers before are
    restored after (main() may be called from Python, as the tests do)."""
    def stop(signum, frame):
        raise Stopped(signum)

    old = {}
    for signum in (signal.SIGTERM, signal.SIGHUP):
        try:
            old[signum] = signal.signal(signum, stop)
        except ValueError:                    # not the main thread: signals keep their defaults
            break
    try:
        yield
    finally:
        for signum, handler in old.items():
            signal.signal(signum, handler)


def _fail(status: int, line: str) -> int:
    """Print one line to stderr and return the exit status. Under mpiexec, end every rank
    instead (MPI_Abort): the others would wait forever for this one in their next collective."""
    distributed.abort_all(status, line)       # returns only in a 1-process world
    print(line, file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
