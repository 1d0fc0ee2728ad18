"""Every chapter's exercise solutions run, and their own checks pass.

A solution (chapters/solutions/NN_*.py) asserts the answer it prints, so a change to smolgpt
that makes an answer wrong fails here instead of leaving the solution stale.
"""

import re
import runpy
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = sorted((ROOT / "chapters" / "solutions").glob("[0-9][0-9]_*.py"))


@pytest.mark.parametrize("path", SOLUTIONS, ids=[p.name for p in SOLUTIONS])
def test_solution_runs_and_checks_its_answer(path, capsys):
    runpy.run_path(str(path), run_name="__main__")
    assert capsys.readouterr().out.strip()               # it says what it found


def test_every_chapter_states_exercises_with_solutions():
    for chapter in sorted((ROOT / "chapters").glob("[0-9][0-9]_*.py")):
        nn = chapter.name[:2]
        text = chapter.read_text()
        assert re.search(r"^#? ?## Exercises", text, flags=re.M), chapter.name
        assert f"chapters/solutions/{nn}_" in text, chapter.name
        assert any(p.name.startswith(nn + "_") for p in SOLUTIONS), chapter.name
