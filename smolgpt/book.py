"""`smolgpt book`: the chapter scripts run into notebooks, and the notebooks made a web site.

The scripts `chapters/NN_topic.py` stay the only source. For each chapter, jupytext reads the
script as a notebook, nbclient runs it in a fresh Jupyter kernel (in the current folder, with
your environment, as `python chapters/NN_topic.py` runs) and nbconvert writes it as a page.
Each figure a chapter saves is shown below its cell (save_figure), and a cell under the title
says which commit, machine and wall time produced the page, and which of the chapter's own
switches were set (`SMOLGPT_CH10_LONGER=1 smolgpt book --chapters 10` adds chapter 10's longer
budget to its page, and the page says so).

    smolgpt book                  every chapter at full size: chapters/book/NN_topic.ipynb
                                  (committed) and the site in out/book/
    smolgpt book --quick          every chapter's quick mode: notebooks and site in out/book-quick/
    smolgpt book --chapters 01,05 only those chapters; the site holds every notebook there is

A rebuild reuses every finished training run through the experiment runner, so after the
chapters have run once it takes minutes. The site is plain files: open out/book/index.html, or
serve it with `python -m http.server -d out/book`.

jupytext, nbclient, nbconvert and ipykernel come with the `book` extra and are imported here
only, when the command runs.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import time
from pathlib import Path

from .files import refuse_strangers, write_atomic

CHAPTERS = Path(__file__).resolve().parents[1] / "chapters"
COMMITTED = CHAPTERS / "book"          # the default run's notebooks, which GitHub shows readers
KERNEL_TIMEOUT = 60                    # seconds for a kernel to start


class ChapterFailed(Exception):
    """A chapter raised an error in the kernel; the message says where its notebook is."""


def _libraries():
    """(jupytext, nbclient, nbconvert, nbformat), or a one-line error saying how to get them."""
    try:
        import ipykernel  # noqa: F401  the kernel nbclient starts
        import jupytext
        import nbclient
        import nbconvert
        import nbformat
    except ImportError as e:
        raise ValueError(f"smolgpt book needs the book extra (missing {e.name}): "
                         f'pip install -e ".[book]"') from None
    return jupytext, nbclient, nbconvert, nbformat


def chapter_scripts(wanted: str | None = None) -> list[Path]:
    """The chapter scripts in order; `wanted` ("01,05") keeps those numbers only (None: all of
    them; an empty string names none, and is refused like any other list without a chapter)."""
    if not CHAPTERS.is_dir():
        raise ValueError(f"no chapters/ folder at {CHAPTERS}: smolgpt book runs the chapters of a "
                         f"smolgpt checkout, installed with pip install -e")
    scripts = sorted(CHAPTERS.glob("[0-9][0-9]_*.py"))
    if wanted is None:
        return scripts
    numbers = [n.strip().zfill(2) for n in wanted.split(",") if n.strip()]
    known = {s.name[:2] for s in scripts}
    unknown = [n for n in numbers if n not in known]
    if unknown or not numbers:
        raise ValueError(f"--chapters {wanted!r}: no chapter {', '.join(unknown) or 'given'}; "
                         f"give numbers from {', '.join(sorted(known))}, comma-separated")
    return [s for s in scripts if s.name[:2] in numbers]


# ----------------------------------------------------------------------------------------------
# Running one chapter


def switches(script: Path) -> dict:
    """{name: value} of the environment variables the chapter reads itself (each
    `os.environ.get("NAME"` in its text) that are set: a page built with one (SMOLGPT_MODELS,
    SMOLGPT_CH10_LONGER, ...) shows other outputs than a plain build, and says so."""
    names = dict.fromkeys(re.findall(r'os\.environ\.get\("([A-Z0-9_]+)"', script.read_text()))
    return {n: os.environ[n] for n in names if os.environ.get(n, "").strip()}


def provenance(seconds: float, quick: bool, script: Path) -> dict:
    """What produced a notebook: commit, mode, the chapter's own switches, this machine's matmul
    rate and BLAS, wall time."""
    from .bench.model import matmul_gflops
    from .layers import blas_kernel

    def git(*args):
        try:
            return subprocess.run(["git", *args], cwd=CHAPTERS, capture_output=True, text=True,
                                  timeout=30).stdout.strip()
        except OSError:
            return ""
    commit = git("rev-parse", "HEAD") or "unknown"
    # the chapters and the package are what a page depends on; a change there is worth saying
    dirty = bool(git("status", "--porcelain", "--", str(CHAPTERS.parent / "smolgpt"),
                     *map(str, CHAPTERS.glob("[0-9][0-9]_*.py"))))
    return {"commit": commit, "uncommitted_changes": dirty, "quick": quick,
            "switches": switches(script),
            "matmul_gflops": round(matmul_gflops(), 1), "blas": blas_kernel(),
            "seconds": round(seconds, 1), "date": time.strftime("%Y-%m-%d")}


def provenance_text(script: Path, p: dict) -> str:
    """The sentence under a page's title that says where its outputs come from."""
    commit = p["commit"][:12] + (" with uncommitted changes" if p["uncommitted_changes"] else "")
    mode = "in quick mode (`SMOLGPT_QUICK=1`)" if p["quick"] else "at full size"
    mode += "".join(f", `{k}={v}`" for k, v in p.get("switches", {}).items())
    return (f"*This page is `chapters/{script.name}` run {mode} by `smolgpt book` on "
            f"{p['date']}, at commit `{commit}`: it took {p['seconds']:.0f} s on a machine whose "
            f"float32 matmul rate was {p['matmul_gflops']:.0f} GFLOP/s (BLAS: {p['blas']}). "
            f"Its code cells are the script's; edit the script, not this notebook.*")


def run_chapter(script: Path, quick: bool, failed: Path, timeout: int | None = None):
    """`script` run in a fresh kernel: the executed notebook, its provenance in a cell under the
    title and in its metadata ("smolgpt").

    The kernel starts in the current folder with this process's environment, quick mode set or
    cleared as asked, and `__file__` naming the script, as `python chapters/NN_topic.py` would
    see; like the script, it shows only what the chapter prints and displays. Figures are drawn
    off-screen (MPLBACKEND=Agg): a chapter shows each saved one itself. `timeout` bounds each
    cell (None: no bound). A chapter that fails raises ChapterFailed, its notebook with the
    traceback written into the folder `failed`.
    """
    jupytext, nbclient, _, nbformat = _libraries()
    nb = jupytext.read(script)
    env = {**os.environ, "SMOLGPT_QUICK": "1" if quick else "0", "MPLBACKEND": "Agg"}
    # the kernel has no widget library, so tqdm.auto (which datasets imports) warns, naming its
    # own file, every time a chapter touches C4: not something the chapter prints
    env["PYTHONWARNINGS"] = ",".join(filter(None, [os.environ.get("PYTHONWARNINGS"),
                                                   "ignore:IProgress not found"]))
    # set in the kernel before the first cell, without a cell of its own (so that the notebook's
    # code cells stay exactly the script's); and a cell's last expression is not echoed, since
    # the script shows what it prints and nothing else
    set_file = f"__file__ = {json.dumps(str(script.resolve()))}"      # a "..." literal inside
    startup = [f"--IPKernelApp.exec_lines={[set_file]!r}",            # the list's '...' literal
               "--InteractiveShell.ast_node_interactivity=none",
               "--IPKernelApp.log_level=ERROR"]    # not the kernel's note on local TCP
    client = nbclient.NotebookClient(nb, timeout=timeout, startup_timeout=KERNEL_TIMEOUT,
                                     kernel_name="python3", extra_arguments=startup,
                                     on_cell_executed=_progress(nb))
    start = time.time()
    try:
        client.execute(cwd=os.getcwd(), env=env)
    except nbclient.exceptions.CellExecutionError as e:
        where = failed / f"{script.stem}.ipynb"
        write_notebook(nb, where)
        last = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
        raise ChapterFailed(f"{script.name} failed ({last}); its notebook, with the traceback, "
                            f"is {where}") from None
    except nbclient.exceptions.DeadKernelError as e:
        raise ChapterFailed(kernel_died(script, nb, failed, e)) from None
    except AssertionError as e:      # nbclient's own clean-up of a kernel that died mid-cell
        if not isinstance(e.__context__, nbclient.exceptions.DeadKernelError):
            raise
        raise ChapterFailed(kernel_died(script, nb, failed, e.__context__)) from None
    p = provenance(time.time() - start, quick, script)
    nb.metadata["smolgpt"] = p
    nb.cells.insert(1, nbformat.v4.new_markdown_cell(provenance_text(script, p)))
    return nb


def kernel_died(script: Path, nb, failed: Path, e) -> str:
    """The one line for a chapter whose kernel died (killed, or out of memory); the cells it
    ran are kept in the folder `failed`."""
    where = failed / f"{script.stem}.ipynb"
    write_notebook(nb, where)
    return (f"{script.name}: its kernel died ({e}; killed, or out of memory?); the cells it ran "
            f"are in {where}. Finished training runs are kept: build again to go on")


def _progress(nb, slow: float = 60.0):
    """A hook nbclient calls after each cell: it names the cells that took `slow` seconds or
    more, so that a build of many minutes says where it is."""
    cells = sum(c.cell_type == "code" for c in nb.cells)
    last = [time.time()]

    def executed(cell, cell_index, execute_reply):
        now, n = time.time(), sum(c.cell_type == "code" for c in nb.cells[:cell_index + 1])
        if now - last[0] >= slow:
            print(f"  cell {n} of {cells} took {now - last[0]:.0f} s", flush=True)
        last[0] = now
    return executed


def write_notebook(nb, path: Path) -> None:
    _, _, _, nbformat = _libraries()
    write_atomic(path, lambda f: f.write(nbformat.writes(nb).encode()))


def is_book_file(path: Path) -> bool:
    """Whether `path` is a notebook or page this command wrote (which it may replace)."""
    text = path.read_text(encoding="utf-8", errors="replace")
    if path.suffix == ".ipynb":
        return "smolgpt" in json.loads(text).get("metadata", {})
    return "<code>smolgpt book</code>" in text


# ----------------------------------------------------------------------------------------------
# What a page says about its chapter


def heading(nb) -> dict:
    """{"title", "question", "answer"} of an executed chapter: the title and question from the
    opening docstring, the answer the first takeaway its run printed (None if it printed none)."""
    opening = nb.cells[0].source if nb.cells and nb.cells[0].cell_type == "markdown" else ""
    title = next((line.lstrip("# ").strip() for line in opening.splitlines()
                  if line.startswith("# ")), "untitled")
    paragraphs = re.split(r"\n\s*\n", opening)
    question = next((re.sub(r"^\W*Question[.:]*\**\s*", "", p).strip() for p in paragraphs
                     if re.match(r"^\W*Question", p)), "")
    return {"title": title, "question": sentence(" ".join(question.split())),
            "answer": first_takeaway(nb)}


def sentence(text: str) -> str:
    """`text` with a capital first letter when it starts with a word, not with an identifier
    such as d_int90 that a capital would change."""
    return text[:1].upper() + text[1:] if re.match(r"[a-z][a-z']*\s", text) else text


def first_takeaway(nb) -> str | None:
    """The first bullet ("  - ...", with its continuation lines) after the line "Takeaways" that
    the chapter printed."""
    text = "".join(out.get("text", "") for cell in nb.cells if cell.cell_type == "code"
                   for out in cell.get("outputs", []) if out.get("output_type") == "stream")
    found = re.search(r"^Takeaways.*\n  - (.+(?:\n    .+)*)", text, flags=re.M)
    return sentence(" ".join(found[1].split())) if found else None


def stale_cells(notebook: Path, script: Path) -> list[int]:
    """The indices of `notebook`'s code cells that are not the script's, in order (the notebook
    was built before the script changed); a cell added or removed counts from where it is."""
    jupytext, _, _, nbformat = _libraries()
    built = [c.source for c in nbformat.read(notebook, as_version=4).cells
             if c.cell_type == "code"]
    now = [c.source for c in jupytext.read(script).cells if c.cell_type == "code"]
    return [i for i in range(max(len(built), len(now)))
            if i >= len(built) or i >= len(now) or built[i] != now[i]]


# ----------------------------------------------------------------------------------------------
# The site


def write_site(notebooks: list[Path], site: Path) -> list[Path]:
    """One HTML page per notebook, with links to the previous and next chapters and the index,
    and index.html listing every chapter's title, question and answer; returns the pages."""
    _, _, nbconvert, nbformat = _libraries()
    exporter = nbconvert.HTMLExporter(exclude_input_prompt=True, exclude_output_prompt=True)
    site.mkdir(parents=True, exist_ok=True)
    pages, entries = [], []
    for i, path in enumerate(notebooks):
        nb = nbformat.read(path, as_version=4)
        head = heading(nb)
        entries.append((path.stem, head))
        links = ["[Contents](index.html)"]
        if i > 0:
            links.insert(0, f"[Previous: {notebooks[i - 1].stem}]({notebooks[i - 1].stem}.html)")
        if i + 1 < len(notebooks):
            links.append(f"[Next: {notebooks[i + 1].stem}]({notebooks[i + 1].stem}.html)")
        bar = " · ".join(links)
        nb.cells = [nbformat.v4.new_markdown_cell(bar), *nb.cells,
                    nbformat.v4.new_markdown_cell(bar)]
        pages.append(_write_page(exporter, nb, site / f"{path.stem}.html", head["title"]))
    rows = ["# smolgpt, the book", "",
            "Each chapter is a script in `chapters/`, run by `smolgpt book`; the answer is the "
            "first takeaway that chapter's run printed.", ""]
    for stem, head in entries:
        rows += [f"## [{head['title']}]({stem}.html)", "",
                 f"**Question.** {head['question'] or '(not stated)'}", "",
                 f"**Answer.** {head['answer'] or '(the run printed no takeaways)'}", ""]
    index = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("\n".join(rows))])
    pages.insert(0, _write_page(exporter, index, site / "index.html", "smolgpt, the book"))
    return pages


def _write_page(exporter, nb, path: Path, title: str) -> Path:
    nb.metadata["title"] = title                   # nbconvert's <title>
    html, _ = exporter.from_notebook_node(nb)
    write_atomic(path, lambda f: f.write(html.encode("utf-8")))
    return path


# ----------------------------------------------------------------------------------------------
# The command


def build(quick: bool = False, out: Path | None = None, wanted: str | None = None,
          timeout: int | None = None) -> Path:
    """Run the chapters asked for and write the site; returns the site's folder.

    Full size: notebooks into chapters/book/ (the committed ones), the site into `out` (default
    $SMOLGPT_OUT/book, else out/book). Quick: both into `out` (default .../book-quick), never
    over committed files.
    """
    scripts = chapter_scripts(wanted)
    _libraries()
    root = Path(os.environ.get("SMOLGPT_OUT") or "out")
    site = Path(out) if out else root / ("book-quick" if quick else "book")
    folder = site / "notebooks" if quick else COMMITTED
    notebooks = [folder / f"{s.stem}.ipynb" for s in scripts]
    pages = {site / "index.html"} | {site / f"{p.stem}.html" for p in
                                     notebooks + list(folder.glob("[0-9][0-9]_*.ipynb"))}
    # before hours of work: nothing of someone else's is in the way
    refuse_strangers(sorted(pages) + notebooks, ours=is_book_file,
                     force_hint="give another --out")
    for script, notebook in zip(scripts, notebooks):
        print(f"running {script.name} ({'quick' if quick else 'full size'}) ...", flush=True)
        nb = run_chapter(script, quick, site / "failed", timeout)
        write_notebook(nb, notebook)
        print(f"  {notebook} in {nb.metadata['smolgpt']['seconds']:.0f} s", flush=True)
    written = write_site(sorted(folder.glob("[0-9][0-9]_*.ipynb")), site)
    print(f"the book: {len(written) - 1} chapter(s) in {site / 'index.html'} (serve it with "
        f"{serve_command(site)})")
    return site


def serve_command(site) -> str:
    """The command that serves the site, quoted for a POSIX shell (a folder may have spaces)."""
    return f"python -m http.server -d {shlex.quote(str(site))}"
