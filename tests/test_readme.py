"""The Python API snippet (chapters/README.md) runs as pasted; the module table names every module; the
chapters' output folders are named; quoted chapter results are the committed notebooks'."""

import re
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def python_blocks(text):
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_readme_python_api_snippet_runs_as_pasted():
    blocks = [b for b in python_blocks((ROOT / "chapters" / "README.md").read_text())
              if "loss_and_grads" in b]
    assert len(blocks) == 1
    scope = {}
    exec(compile(blocks[0], "chapters/README.md", "exec"), scope)       # the snippet, unchanged
    assert np.isfinite(scope["loss"]) and scope["logits"].shape == (2, 16, 50257)
    assert set(scope["tgrads"]) == set(scope["trainables"]) == {"wte.weight", "wpe.weight", "coef"}
    assert scope["trainables"]["coef"].shape == (1000,)


def test_the_module_table_names_every_module():
    """The table of the code's modules (chapters/README.md's "The code"), plain.py first."""
    text = (ROOT / "chapters" / "README.md").read_text()
    table = text[text.index("| module of `smolgpt/`, in reading order | what is in it |"):]
    table = table[:table.index("\n\n")] if "\n\n" in table else table
    assert table.splitlines()[2].startswith("| `plain.py` |"), "the module table starts elsewhere"
    modules = [p for folder in ("", "methods", "experiments", "companions")
               for p in sorted((ROOT / "smolgpt" / folder).glob("*.py"))]
    for path in modules:
        if path.name == "__init__.py":
            continue
        assert f"`{path.name}`" in table, f"the module table does not name {path.name}"


def test_readme_names_each_chapters_output_folder():
    text = (ROOT / "README.md").read_text()
    for chapter in sorted((ROOT / "chapters").glob("[0-9][0-9]_*.py")):
        folder = re.search(r'out_dir\("([^"]+)"\)', chapter.read_text())[1]
        assert f"`out/{folder}/`" in text, f"README does not name out/{folder}/ ({chapter.name})"


NUMBER = re.compile(r"(?<![\w.])[-+]?\d[\d,]*(?:\.\d+)?(?:e[-+]?\d+)?")


def notebook_output(path: Path) -> str:
    """Everything a committed notebook's code cells printed."""
    import json
    cells = json.loads(path.read_text())["cells"]
    return "".join("".join(o.get("text", "")) for c in cells if c["cell_type"] == "code"
                   for o in c.get("outputs", []))


def unprinted(quoted: list[str], output: str) -> list[str]:
    """The numbers of `quoted` that `output` does not print: a quoted number counts as printed
    when some printed number, rounded to the quoted one's decimals (or, written as 1.7e-07, to
    its significant digits), gives it: the page may quote +0.112 for a printed +0.1122, never
    0.113."""
    printed = [float(t.replace(",", "")) for t in NUMBER.findall(output)]

    def given(text):
        value = float(text.replace(",", ""))
        if "e" in text:
            digits = len(text.split("e")[0].split(".")[1]) if "." in text.split("e")[0] else 0
            return any(float(f"{p:.{digits}e}") == value for p in printed)
        places = len(text.split(".")[1]) if "." in text else 0
        return any(round(p, places) == value for p in printed)
    return [text for text in quoted if not given(text)]


DECIMAL = r"[-+]?\d[\d,]*\.\d+"
GROUP = re.compile(rf"(?:(?<![\w.]){DECIMAL} )?\[{DECIMAL}, {DECIMAL}\]|(?<![\w.]){DECIMAL} \+- {DECIMAL}")


def unprinted_together(text: str, output: str) -> list[str]:
    """The groups `text` quotes, a value with its interval ('-0.016 [-0.019, -0.012]', or the
    interval alone) and a mean with its standard error ('2.915 +- 0.034'), whose numbers no one
    printed line of `output` gives together: each number printed somewhere is not enough."""
    lines = output.splitlines()
    return [group for group in GROUP.findall(text)
            if not any(not unprinted(NUMBER.findall(group), line) for line in lines)]


def committed_notebook(number: str) -> Path | None:
    built = sorted((ROOT / "chapters" / "book").glob(f"{number}_*.ipynb"))
    return built[0] if built else None


def check_against_notebooks(quoted: dict, where: str, texts: dict) -> None:
    """{chapter number: the numbers a page quotes for it}: each must be printed by that
    chapter's committed notebook (a full-size run, chapters/book/), so a re-run cannot leave
    the page behind, and each value with its interval or standard error in `texts` ({chapter
    number: the page's text for it}) on one printed line. Chapters whose notebooks are not
    built yet are named in a skip."""
    import pytest
    checked, waiting = [], []
    for number, numbers in sorted(quoted.items()):
        built = committed_notebook(number)
        if not built:
            waiting.append(number)
            continue
        output = notebook_output(built)
        missing = unprinted(numbers, output) + unprinted_together(texts[number], output)
        assert not missing, f"{where} for chapter {number} quotes {missing}, which its " \
                            f"notebook {built.name} does not print: quote the notebook's numbers"
        checked.append(number)
    if waiting:
        pytest.skip(f"checked chapters {checked}; no committed notebook yet for {waiting}")


def test_quoted_chapter_results_are_the_committed_notebooks():
    """Each number chapters/README.md quotes for a chapter in its table of the other chapters'
    results is one that chapter's committed notebook printed."""
    text = (ROOT / "chapters" / "README.md").read_text()
    table = text[text.index("| chapter | what the default run measured |"):]
    rows = dict(re.findall(r"^\| (\d\d) \| (.+) \|$", table[:table.index("\n\n")], flags=re.M))
    assert rows, "chapters/README.md has no table of the chapters' results"
    check_against_notebooks({n: NUMBER.findall(row) for n, row in rows.items()},
                            "chapters/README.md's results table", rows)


def chapter_sections() -> dict:
    """{chapter number: its section's text} for chapters/README.md's "### ... (chapter NN)"
    sections under "## Results"."""
    text = (ROOT / "chapters" / "README.md").read_text()
    results = text[text.index("## Results"):]
    results = results[:results.index("\n## ", 1)]
    parts = re.split(r"^### ", results, flags=re.M)[1:]
    return {m[1]: part for part in parts
            if (m := re.search(r"\(chapter (\d\d)\)", part.splitlines()[0]))}


def test_each_chapters_results_section_is_its_committed_notebook():
    """In each chapter's section of chapters/README.md's results, every number with a decimal
    point (losses, differences, intervals) and every share in percent is one that chapter's
    committed notebook printed, up to the rounding the page chose. Whole numbers (counts, sizes, seeds) are the
    design, not a measurement, and are not checked."""
    sections = chapter_sections()
    assert set(sections) >= {"05", "07", "08"}, sorted(sections)
    check_against_notebooks({n: [x for x in NUMBER.findall(text) if "." in x] + percents(text)
                             for n, text in sections.items()},
                            "chapters/README.md's results section", sections)


def percents(text: str) -> list[str]:
    """The shares a text quotes ('46%', both ends of '98-104%'), but not the levels that define
    its terms (90% for d_int90, 95% for an interval)."""
    found = re.findall(r"(?<![\w.])(\d+(?:\.\d+)?)(?:-(\d+(?:\.\d+)?))?%", text)
    return [x for pair in found for x in pair if x and x not in ("90", "95")]


def test_the_number_rules_catch_what_they_are_for():
    assert percents("closes 46%, then 98-104% (d_int90: 90%; 95% [0.1, 0.2]), 100.5%") == \
        ["46", "98", "104", "100.5"]
    assert unprinted(["46", "0.113", "1.4e-09"], "kept 45.9% and +0.1122, error 1.4e-09") == \
        ["0.113"]
    printed = "a - b: +0.1122 [-0.0581, +0.159]\nfull 2.915 +- 0.0341\nembeddings 3.812 +- 0.004"
    assert unprinted_together("a - b = +0.112 [-0.058, +0.159], full 2.915 +- 0.034 and "
                              "[-0.058, +0.16]; 2.915 +- 0.004", printed) == ["2.915 +- 0.004"]


def test_the_count_of_bad_inputs_the_readme_claims():
    """'more than N bad inputs': the two tables of refused inputs (tests/test_cli.py's CASES and
    tests/test_hostile.py's AUDIT, each one command checked for one error line and nothing
    changed) hold more than N."""
    from test_cli import CASES
    from test_hostile import AUDIT
    claimed = int(re.search(r"more than (\d+)\s+bad\s+inputs", (ROOT / "README.md").read_text())[1])
    assert len(CASES) + len(AUDIT) > claimed, (len(CASES), len(AUDIT))
