"""The book: `smolgpt book --quick` builds notebooks and a site, and a real browser reads it.

The quick build runs two chapters, 06 (figures, no training) and 04 (figures and training through
the runner), once per module: every chapter already runs in quick mode in test_chapters.py, so
building all of them again here would double the suite's time for no new check. The browser
test opens that site in headless Chromium. The drift guard checks the committed notebooks
(chapters/book/) against their scripts, and is itself checked on a changed copy.
"""

import json
import re
import shutil
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urldefrag, urlparse
from urllib.request import urlopen

import pytest

for name in ("jupytext", "nbclient", "nbconvert", "nbformat", "ipykernel"):
    pytest.importorskip(name, reason='the book extra is not installed: pip install -e ".[book]"')

import nbformat  # noqa: E402

from smolgpt import book  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BUILT = ("04", "06")


@pytest.fixture(scope="module")
def quick_book(tmp_path_factory, prepared_data_dir):
    """The site of a quick build of chapters 04 and 06, in a folder of its own."""
    tmp = tmp_path_factory.mktemp("book")
    before = committed_files()
    with pytest.MonkeyPatch.context() as mp:
        for var, value in (("SMOLGPT_OUT", tmp / "out"), ("SMOLGPT_RUNS", tmp / "runs"),
                           ("SMOLGPT_DATA_DIR", prepared_data_dir)):
            mp.setenv(var, str(value))
        site = book.build(quick=True, out=tmp / "site", wanted=",".join(BUILT), timeout=300)
    # quick mode writes nothing into the repository's book
    assert committed_files() == before
    return site


def committed_files() -> dict:
    return {p.name: p.stat().st_mtime_ns for p in (ROOT / "chapters" / "book").glob("*")}


def images_in(nb) -> int:
    return sum("image/png" in out.get("data", {}) for cell in nb.cells if cell.cell_type == "code"
               for out in cell.get("outputs", []))


def test_a_quick_build_makes_notebooks_that_are_their_scripts(quick_book):
    notebooks = sorted((quick_book / "notebooks").glob("*.ipynb"))
    assert [p.name[:2] for p in notebooks] == list(BUILT)
    for path in notebooks:
        script = ROOT / "chapters" / f"{path.stem}.py"
        nb = nbformat.read(path, as_version=4)
        assert book.stale_cells(path, script) == []
        meta = nb.metadata["smolgpt"]
        assert meta["quick"] is True
        assert meta["commit"] == "unknown" or re.fullmatch(r"[0-9a-f]{40}", meta["commit"])
        assert meta["matmul_gflops"] > 0 and meta["seconds"] > 0 and meta["blas"]
        assert f"{meta['matmul_gflops']:.0f} GFLOP/s" in nb.cells[1].source
        # every figure the chapter saved is shown below its cell, and nothing failed
        text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                       for o in c.get("outputs", []))
        saved = re.findall(r"^(?:figure:|  saved) (\S+\.png)$", text, flags=re.M)
        assert saved and images_in(nb) == len(saved), path.name
        assert not any(o.get("output_type") == "error" for c in nb.cells
                       if c.cell_type == "code" for o in c.get("outputs", []))


def test_the_index_is_read_from_the_runs(quick_book):
    index = (quick_book / "index.html").read_text()
    for path in sorted((quick_book / "notebooks").glob("*.ipynb")):
        head = book.heading(nbformat.read(path, as_version=4))
        assert head["title"] and head["question"] and head["answer"]
        assert f'href="{path.stem}.html"' in index
        for part in ("title", "question", "answer"):      # as the page escapes it
            assert head[part][:40].replace("'", "&#39;").replace('"', "&quot;") in index or \
                head[part][:40] in index, part


def test_the_drift_guard_catches_a_changed_cell(quick_book, tmp_path):
    built = quick_book / "notebooks" / "06_elephant.ipynb"
    script = ROOT / "chapters" / "06_elephant.py"
    nb = nbformat.read(built, as_version=4)
    code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    nb.cells[code[2]].source += "\nprint('edited')"
    changed = tmp_path / "06_elephant.ipynb"
    nbformat.write(nb, changed)
    assert book.stale_cells(changed, script) == [2]
    # a cell added to the script shows as the first index past the notebook's cells
    longer = tmp_path / "06_elephant.py"
    longer.write_text(script.read_text() + "\n# %%\nprint('a new cell')\n")
    assert book.stale_cells(built, longer) == [len(code)]


def test_committed_notebooks_are_their_chapters_now():
    """A chapter changed after its book page was built fails here: rebuild with `smolgpt book
    --chapters NN` (the runs are reused) and commit the notebook."""
    committed = sorted((ROOT / "chapters" / "book").glob("*.ipynb"))
    if not committed:
        pytest.skip("no committed notebooks yet: `smolgpt book` writes them to chapters/book/")
    readme = (ROOT / "README.md").read_text()
    for path in committed:
        script = ROOT / "chapters" / f"{path.stem}.py"
        assert script.exists(), f"{path.name} has no chapter script: remove it"
        assert book.stale_cells(path, script) == [], \
            f"{path.name} is older than {script.name}: rebuild with smolgpt book --chapters " \
            f"{path.name[:2]} and commit it"
        assert nbformat.read(path, as_version=4).metadata["smolgpt"]["quick"] is False
        assert f"(chapters/book/{path.name})" in readme, f"the README's chapter table does " \
            f"not link {path.name}"


def test_a_page_names_the_chapter_switches_it_was_built_with(tmp_path, monkeypatch):
    """A chapter's own switches (environment variables it reads) change what its page shows: the
    ones set when it was built are named under its title, those unset or empty are not."""
    script = tmp_path / "10_topic.py"
    script.write_text('import os\nA = os.environ.get("SMOLGPT_LONGER", "")\n'
                      'B = os.environ.get("SMOLGPT_MODELS", "bytes")\n'
                      'C = os.environ.get("OTHER")\n')
    monkeypatch.setenv("SMOLGPT_LONGER", "1")
    monkeypatch.setenv("SMOLGPT_MODELS", " ")
    monkeypatch.delenv("OTHER", raising=False)
    assert book.switches(script) == {"SMOLGPT_LONGER": "1"}
    p = {"commit": "0" * 40, "uncommitted_changes": False, "quick": False, "date": "today",
         "switches": book.switches(script), "seconds": 1.0, "matmul_gflops": 1.0, "blas": "x"}
    said = book.provenance_text(script, p)
    assert "run at full size, `SMOLGPT_LONGER=1` by `smolgpt book`" in said
    monkeypatch.delenv("SMOLGPT_LONGER")
    assert book.switches(script) == {}


def test_book_refuses_unknown_chapters_in_one_line(capsys):
    from smolgpt.cli import main
    assert main(["book", "--quick", "--chapters", "01,77"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no chapter 77" in err


@pytest.mark.parametrize("name, code, message, last_output", [
    ("01_broken", 'raise ValueError("a chapter bug")', "01_broken.py failed .*a chapter bug",
     ["error"]),                                          # its traceback is kept in the notebook
    ("01_killed", "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)",
     "01_killed.py: its kernel died .*build again", []),  # killed, or out of memory
])
def test_a_failing_chapter_stops_the_build_in_one_line_with_its_cells_kept(
        tmp_path, name, code, message, last_output):
    script = tmp_path / f"{name}.py"
    script.write_text(f'# %% [markdown]\n"""\n# Chapter 01\n"""\n\n# %%\nprint("before")\n\n'
                      f"# %%\n{code}\n")
    with pytest.raises(book.ChapterFailed, match=message):
        book.run_chapter(script, True, tmp_path / "failed", timeout=60)
    nb = nbformat.read(tmp_path / "failed" / f"{name}.ipynb", as_version=4)
    assert [o["output_type"] for o in nb.cells[-1].outputs] == last_output
    assert nb.cells[1].outputs[0]["text"] == "before\n"


def test_a_chapter_sees_its_own_file_as_when_run_as_a_script(tmp_path):
    """In the kernel, `__file__` names the script, as `python chapters/NN_topic.py` sees it:
    chapters read their committed results beside it, and out_dir finds the chapter's record by
    it. A folder name with a quote in it must not break that."""
    folder = tmp_path / "it's here"
    folder.mkdir()
    script = folder / "01_probe.py"
    script.write_text('# %%\nimport sys\nprint(__file__)\n'
                      'print(sys.modules["__main__"].__file__)\n')
    nb = book.run_chapter(script, True, tmp_path / "failed", timeout=60)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code[0].outputs[0]["text"] == f"{script.resolve()}\n" * 2


# ----------------------------------------------------------------------------------------------
# In a real browser

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")


@pytest.fixture
def browser(tmp_path):
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip("no chromium and chromedriver (Debian: apt-get install chromium "
                    "chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--window-size=1200,1500",
                 f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    driver.set_script_timeout(60)
    yield driver
    driver.quit()


@pytest.fixture
def served(quick_book):
    """The site served over HTTP on a free local port, as `python -m http.server` serves it."""
    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    class Server(ThreadingHTTPServer):
        def handle_error(self, request, client_address):
            pass                      # a browser that leaves a page cuts its downloads short
    server = Server(("127.0.0.1", 0), partial(Quiet, directory=str(quick_book)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/"
    server.shutdown()
    server.server_close()


# the page as the browser has it, once it has loaded (the driver can hand a page back while it
# is still parsing, as a busy CI machine once showed); each image is decoded (img.decode()
# settles once the browser has the pixels, or fails), then its natural width read: 0 means a
# broken image
PAGE_STATE = """
const done = arguments[arguments.length - 1];
const loaded = document.readyState === 'complete' ? Promise.resolve()
  : new Promise(resolve => window.addEventListener('load', resolve));
loaded.then(() => Promise.all([...document.images].map(
    i => i.decode().then(() => i.naturalWidth, () => 0))))
  .then(widths => done({ready: document.readyState, title: document.title,
                        text: document.body.innerText, widths: widths,
                        links: [...document.querySelectorAll('a[href]')].map(a => a.href),
                        ids: [...document.querySelectorAll('[id]')].map(e => e.id)}));
"""


def test_the_book_reads_in_a_browser(browser, served, quick_book, tmp_path):
    """Every page loads, every figure decodes, no cell shows an error, every link resolves;
    screenshots of the index and a chapter are kept next to the site."""
    pages, queue, links = {}, [served + "index.html"], []
    while queue:
        url = queue.pop()
        if url in pages:
            continue
        browser.get(url)
        state = browser.execute_async_script(PAGE_STATE)
        pages[url] = state
        assert state["ready"] == "complete" and state["title"], url
        assert all(width > 0 for width in state["widths"]), (url, state["widths"])
        assert "Traceback" not in state["text"] and "Error" not in state["title"], url
        for link in state["links"]:
            target, fragment = urldefrag(link)
            if urlparse(target).netloc != urlparse(served).netloc:
                continue                         # the web beyond the site: no network here
            links.append((url, target, fragment))
            if target.endswith(".html"):
                queue.append(target)
    chapters = {u: s for u, s in pages.items() if not u.endswith("index.html")}
    assert len(chapters) == len(BUILT)
    for url, target, fragment in links:
        with urlopen(target) as response:               # the file is there
            assert response.status == 200, (url, target)
        if fragment:
            assert fragment in pages[target]["ids"], (url, f"#{fragment} is not on {target}")
    # each chapter page shows every figure its notebook holds, and links to the index
    for url, state in chapters.items():
        nb = nbformat.read(quick_book / "notebooks" / url.rsplit("/", 1)[1].replace(
            ".html", ".ipynb"), as_version=4)
        assert len(state["widths"]) == images_in(nb) > 0, url
        assert served + "index.html" in state["links"]
    shots = quick_book / "screenshots"
    shots.mkdir(exist_ok=True)
    for name in ("index", "06_elephant"):
        browser.get(served + f"{name}.html")
        browser.execute_script("const i = document.images[0]; if (i) i.scrollIntoView();")
        assert browser.save_screenshot(str(shots / f"{name}.png"))
        assert (shots / f"{name}.png").stat().st_size > 10_000
    (shots / "pages.json").write_text(json.dumps(sorted(pages)))
    # and the image check can fail: a picture whose bytes are not an image reads as width 0
    broken = tmp_path / "broken.html"
    broken.write_text('<html><body><img src="data:image/png;base64,iVBORw0KGgoAAAA="></body>'
                      '</html>')
    browser.get(broken.as_uri())
    assert browser.execute_async_script(PAGE_STATE)["widths"] == [0]
