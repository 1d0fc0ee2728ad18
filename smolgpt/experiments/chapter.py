"""What every chapter script shares: quick mode, where outputs go, and how figures are kept.

Every chapter has a quick mode for the tests (`SMOLGPT_QUICK=1`, or `--quick` on its command
line) and writes its figures and logs under `out/<name>/`, the short name it gives `out_dir`
(`out/01_gpt2/`, `out/05_race/`; its docstring says which). `SMOLGPT_OUT` moves the root.
A figure is always saved to a file and its path printed; opened as a notebook (jupytext), the
chapter also shows it inline.

A chapter's inputs are its environment variables, and bad input gets what the command line gives
it: one line saying what was wrong and how to fix it, exit status 2. `quick_mode()`, which every
chapter calls first, checks the variables before any work and turns the errors a user can fix
(bad data files, a folder that is a file, a run folder in use, not enough memory) into that line
for the rest of the run; a bug still shows its traceback.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

_TRUE, _FALSE = ("1", "true", "yes", "on"), ("", "0", "false", "no", "off")
FOLDER_VARS = ("SMOLGPT_OUT", "SMOLGPT_RUNS", "SMOLGPT_DATA_DIR")


class ChapterError(Exception):
    """An environment variable a chapter cannot use; the message names it."""


def fail(message: str) -> None:
    """Print `<chapter>: error: message` on one line and exit with status 2."""
    print(f"{Path(sys.argv[0]).name or 'chapter'}: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def _user_errors_in_one_line(kind, value, tb):
    """sys.excepthook of a chapter: what a user can fix is one line and exit 2."""
    from ..checkpoint import CheckpointError
    from ..data import DataError
    from ..files import CannotWrite, FolderInUse, WouldReplace
    from .pool import RunsFailed                # each run's traceback, if a bug, is printed
    if issubclass(kind, (ChapterError, DataError, CheckpointError, FolderInUse, WouldReplace,
                         CannotWrite, ValueError, RunsFailed)):   # CannotWrite names its file
        fail(str(value))
    if issubclass(kind, OSError):
        fail(f"{value}; check that {', '.join(FOLDER_VARS)} name folders you can write to and "
             f"that the disk has space")
    if issubclass(kind, KeyboardInterrupt):   # Ctrl-C, or a run stopped by SIGTERM / SIGHUP
        print(f"{Path(sys.argv[0]).name or 'chapter'}: interrupted; finished runs are kept, "
              f"and a stopped run resumes from its checkpoint when the chapter runs again",
              file=sys.stderr)
        raise SystemExit(130)
    sys.__excepthook__(kind, value, tb)


def check_environment() -> None:
    """Refuse, in one line, environment variables a chapter cannot use, before any work."""
    flag = os.environ.get("SMOLGPT_QUICK", "").strip().lower()
    if flag not in _TRUE + _FALSE:
        raise ChapterError(f"SMOLGPT_QUICK={os.environ['SMOLGPT_QUICK']!r} is neither on nor "
                           f"off: set it to 1 for the quick run, or 0 (or unset it) for the full")
    for var in FOLDER_VARS:
        value = os.environ.get(var)
        if not value:
            continue
        path = Path(value).expanduser()
        if path.exists() and not path.is_dir():
            raise ChapterError(f"{var}={value} is a file, not a folder: point {var} at a folder "
                               f"(it is created if missing)")
        parent = next(p for p in [path, *path.parents] if p.exists())
        if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
            if var == "SMOLGPT_DATA_DIR" and (path / "manifest.json").is_file():
                continue                               # prepared already: read-only is fine
            raise ChapterError(f"{var}={value} cannot be created or written ({parent} is not a "
                               f"folder you can write to): point {var} at a writable folder")


def chapter_int(name: str, default: int, minimum: int = 1) -> int:
    """An integer setting of a chapter: `--name N` on its command line, else the environment
    variable SMOLGPT_<NAME>, else `default` (e.g. chapter_int("seeds", 3))."""
    flag, var = f"--{name}", f"SMOLGPT_{name.upper()}"
    args = sys.argv[1:]
    raw, where = os.environ.get(var), var
    if flag in args:
        i = args.index(flag)
        raw, where = (args[i + 1] if i + 1 < len(args) else ""), flag
    if raw is None or raw == "":
        if where == flag:
            fail(f"{flag} needs a whole number after it")
        return default
    try:
        value = int(raw)
    except ValueError:
        fail(f"{where}={raw!r} is not a whole number")
    if value < minimum:
        fail(f"{where}={value} is below {minimum}")
    return value


def requested_workers() -> int:
    """`--workers N` on the command line, else SMOLGPT_WORKERS, else one worker per core
    (pool.default_workers): how many runs of a decision train at once."""
    from .pool import default_workers
    return chapter_int("workers", default_workers())


def print_takeaways(lines, start: float) -> None:
    """The closing bullet points of a chapter, wrapped, under a header giving the run's wall time
    since `start` (a time.time()) and this machine's float32 matmul rate, so that the time means
    something on another machine."""
    import textwrap
    import time

    from ..bench.model import matmul_gflops
    print(f"Takeaways (this run took {time.time() - start:.0f} s on a machine whose float32 matmul "
          f"rate is {matmul_gflops():.0f} GFLOP/s):")
    for line in lines:
        print(textwrap.fill(line, width=96, initial_indent="  - ", subsequent_indent="    ",
                            break_on_hyphens=False))


def show_source(fn) -> None:
    """Print a function's source, so a chapter shows the lines it is about to check."""
    import inspect
    print(inspect.getsource(fn).rstrip())


def quick_mode() -> bool:
    """True when the chapter should run its small, under-a-minute version. Called first by
    every chapter, it also checks the environment (see the module docstring)."""
    if sys.excepthook is sys.__excepthook__:
        sys.excepthook = _user_errors_in_one_line
    try:
        check_environment()
    except ChapterError as e:
        fail(str(e))
    return _quick()


def _quick() -> bool:
    flag = os.environ.get("SMOLGPT_QUICK", "").strip().lower()
    return flag in _TRUE or "--quick" in sys.argv[1:]


MARK = ".smolgpt-chapter"       # in a chapter's output folder: the chapter made this folder


def committed_record() -> Path | None:
    """`chapters/results/NN_topic.jsonl` of the chapter script running now (its `__file__`, which
    `smolgpt book` sets in its kernel too), or None outside a chapter of a checkout."""
    script = getattr(sys.modules.get("__main__"), "__file__", None)
    if not script or not re.fullmatch(r"\d\d_\w+\.py", Path(script).name):
        return None
    results = Path(script).resolve().parent / "results"
    return results / f"{Path(script).stem}.jsonl" if results.is_dir() else None


def chapter_record() -> Path | None:
    """The record the runner keeps a chapter's runs in when the chapter names none: at full size
    its committed record (committed_record()), so that a clone on another machine rebuilds the
    chapter without training those runs again, but for the few whose weights or logs it reads.
    Quick runs, and runs made outside a chapter, are never recorded."""
    return None if _quick() else committed_record()


def out_dir(name: str) -> Path:
    """`out/<name>/` (or `$SMOLGPT_OUT/<name>/`), created if needed and marked as the chapter's.

    A chapter writes fixed names (figures, results.md) into its folder and replaces them on every
    run, so it writes only into a folder it made itself (holding its mark, MARK). A folder of that
    name that holds other files and no mark is someone else's: the chapter then writes into the
    first free `<name>-2`, `<name>-3`, ... instead, and says so.
    """
    root = Path(os.environ.get("SMOLGPT_OUT", "out"))
    path = root / name
    try:
        for n in range(2, 1000):
            if not path.exists() or (path / MARK).is_file() or (path.is_dir() and
                                                                 not any(path.iterdir())):
                break
            path = root / f"{name}-{n}"
        if path.name != name:
            print(f"note: {root / name} holds files this chapter did not write (it has no "
                  f"{MARK}); writing to {path} instead. To let the chapter write there, empty "
                  f"it, or create an empty {root / name / MARK} if its files are the chapter's")
        path.mkdir(parents=True, exist_ok=True)
        (path / MARK).touch()
    except OSError as e:
        raise ChapterError(f"cannot create the output folder {path} ({e.strerror}): point "
                           f"SMOLGPT_OUT at a folder you can write to") from None
    return path


# Written into every figure smolgpt saves (where the format has metadata), so that a later save
# or `smolgpt plot --out` can tell its own figure, which it may replace, from someone else's.
FIGURE_MARK = "smolgpt"
_FIGURE_METADATA = {"png": {"Software": FIGURE_MARK}, "pdf": {"Creator": FIGURE_MARK},
                    "svg": {"Creator": FIGURE_MARK}, "ps": {"Creator": FIGURE_MARK},
                    "eps": {"Creator": FIGURE_MARK}}


def is_smolgpt_figure(path) -> bool:
    """Whether the image at `path` was saved by smolgpt (it carries FIGURE_MARK in its metadata,
    which sits in the first or the last few kilobytes of every format that has it)."""
    with open(path, "rb") as f:
        head = f.read(1 << 16)
        f.seek(max(0, f.seek(0, os.SEEK_END) - (1 << 16)))
        tail = f.read()
    needles = (b"Software\x00" + FIGURE_MARK.encode(), b"(" + FIGURE_MARK.encode() + b")",
               b">" + FIGURE_MARK.encode() + b"<", b"%%Creator: " + FIGURE_MARK.encode())
    return any(n in head or n in tail for n in needles)


def save_figure(fig, path, force: bool = False) -> Path:
    """Save `fig` to `path`, print where, and show it inline when running as a notebook.

    The file is written atomically and marked as smolgpt's (is_smolgpt_figure); an existing file
    at `path` is replaced only if it carries that mark, or with force.

    In a plain `python chapters/...` run (no display, or a desktop one) nothing pops up: a
    25-minute chapter must not stop on a window waiting to be closed. In a notebook the saved
    file is shown inline (show_in_notebook).
    """
    import matplotlib.pyplot as plt

    from ..files import refuse_strangers, write_atomic
    fmt = Path(path).suffix.lstrip(".").lower()
    refuse_strangers([path], ours=is_smolgpt_figure, force=force, force_hint="delete it")
    write_atomic(path, lambda f: fig.savefig(f, format=fmt or None, dpi=110,
                                             metadata=_FIGURE_METADATA.get(fmt)))
    print(f"figure: {path}")
    plt.close(fig)
    show_in_notebook(path)
    return Path(path)


def show_in_notebook(path) -> None:
    """Show the image saved at `path` below the running cell, when the chapter runs in a Jupyter
    kernel (`smolgpt book`, or the script opened as a notebook); elsewhere do nothing.

    The notebook shows the very file the chapter saved, so the book and out/ cannot disagree.
    IPython is never imported here: a kernel has loaded it already, a plain run has not.
    """
    if "IPython" not in sys.modules or Path(path).suffix.lower() not in (".png", ".jpg",
                                                                           ".jpeg", ".gif"):
        return
    from IPython import get_ipython
    from IPython.display import Image, display
    if getattr(get_ipython(), "kernel", None) is not None:     # not a terminal IPython
        display(Image(filename=str(path)))
