"""The chapters read as notebooks, and their prose cannot go stale.

Two rules, checked on the text of every chapter (no chapter is run here):

- **Short code cells.** A code cell shows one step: at most MAX_CELL_LINES lines from its first
  to its last non-blank line. Longer analysis or plotting belongs behind a named, documented
  helper in `smolgpt/experiments/`, and the chapter keeps what a learner must see.
- **No measured number in prose.** The markdown cells and the opening docstring explain; the
  numbers a run measures are printed by its code, so a re-run cannot leave the prose behind.
  Prose may therefore hold no decimal number, percentage or timing, except the few in ALLOWED:
  constants of a formula, definitions, figures fixed by a configuration or a committed record
  (checked here against it), and made-up inputs of an exercise.
"""

import math
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "chapters").glob("[0-9][0-9]_*.py"))
MAX_CELL_LINES = 25

# A decimal number (7.828), a percentage (42%, 42 %), or a timing (3 s, 12 ms, 200 GFLOP/s).
# Not inside a word or an identifier (arXiv:1804.08838, d_int90, 1e-3, sqrt(2)).
NUMBER = re.compile(r"(?<![\w.:/^-])(\d[\d.,]*\s?(?:ms|s)\b|\d[\d,]*\.\d+|\d[\d.,]*\s?%|GFLOP)")

ALLOWED = {
    # constants of a formula
    "0.044715": "GELU's tanh approximation",
    "10.82": "ln 50257, the loss of a uniform guess over GPT-2's vocabulary",
    "2.7": "e, the factor of probability one nat stands for",
    "1.5": "the kurtosis of an arcsine law (FFT-Fastfood's columns), exact",
    "0.02": "GPT-2's init standard deviation, a constant of the model",
    # definitions
    "0.9": "d_int90's threshold, 90% of full training's gain",
    "90%": "d_int90's threshold",
    "95%": "the level of every interval",
    "100%": "the ends of the gap-closed scale: as good as full training",
    "0%": "the ends of the gap-closed scale: no better than embeddings only",
    "0.3": "the default coefficient learning rate, a setting",
    # made-up inputs of an exercise
    "0.03": "chapter 05's exercise: a made-up difference between two methods",
    "0.05": "chapter 05's exercise: a made-up spread between seeds",
    # fixed by a configuration or a record: test_configuration_figures_in_prose checks each
    "89%": "the share of `tiny`'s weights in its embeddings",
    "11%": "the share of `tiny`'s weights in its body",
    "92%": "the share of the byte model's weights in its body",
    "6.4": "`tiny`'s embedding weights, in millions",
    "0.8": "`tiny`'s non-embedding weights, in millions",
    "4.5": "bytes per GPT-2 token of C4 text (chapter 09), checked against its committed record",
}


def cells(path):
    """[(kind, text)] of a chapter in jupytext percent form; the docstring is markdown."""
    parts = re.split(r"^# %%(.*)$", path.read_text(), flags=re.M)
    return [("markdown" if "[markdown]" in head else "code", body)
            for head, body in zip(parts[1::2], parts[2::2])]


def span(body):
    """Lines from a cell's first to its last non-blank line."""
    lines = body.strip("\n").split("\n")
    return len(lines) if body.strip() else 0


def prose_numbers(path):
    """[(number, line)] of every number in a chapter's prose that ALLOWED does not explain."""
    found = []
    for kind, body in cells(path):
        if kind != "markdown":
            continue
        for line in body.splitlines():
            for m in NUMBER.finditer(line):
                if m[1].replace(" ", "") not in ALLOWED:
                    found.append((m[1], line.strip()))
    return found


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.name for p in CHAPTERS])
def test_no_code_cell_is_long(path):
    long = [(span(body), body.strip().split("\n")[0]) for kind, body in cells(path)
            if kind == "code" and span(body) > MAX_CELL_LINES]
    assert not long, (f"{path.name}: code cells over {MAX_CELL_LINES} lines (split them into "
                      f"steps, or move the analysis behind a helper in smolgpt/experiments/): "
                      f"{long}")


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.name for p in CHAPTERS])
def test_prose_quotes_no_measured_number(path):
    found = prose_numbers(path)
    assert not found, (f"{path.name}: prose quotes numbers a run would print (print them from "
                       f"the code instead, or explain a constant in ALLOWED): {found}")


def test_the_rules_catch_what_they_are_for():
    assert NUMBER.findall("ends at 7.828 nats, 42% of the gap, in 3.5 s at 190 GFLOP/s") == \
        ["7.828", "42%", "3.5 s", "GFLOP"]
    assert NUMBER.findall("arXiv:1804.08838, d_int90, lr 1e-3, sqrt(2), 5 seeds, 64 steps") == []
    assert span("\nx = 1\n\ny = 2\n\n") == 3


def test_configuration_figures_in_prose():
    """The allowed figures that a configuration fixes are what the configuration gives, and
    chapter 09's bytes per token is what its committed runs scored."""
    from smolgpt.model import GPTConfig, count_params
    tiny = GPTConfig.preset("tiny")
    total, body = count_params(tiny), count_params(tiny, non_embedding=True)
    assert f"{(total - body) / total:.0%}" == "89%" and f"{body / total:.0%}" == "11%"
    assert f"{(total - body) / 1e6:.1f}" == "6.4" and f"{body / 1e6:.1f}" == "0.8"
    from smolgpt.companions.ch09_long_race import MODELS
    byte_model = GPTConfig.preset(MODELS["bytes"][0])
    share = count_params(byte_model, non_embedding=True) / count_params(byte_model)
    assert f"{share:.0%}" == "92%"
    assert math.isclose(math.log(50257), 10.82, abs_tol=0.005)
    import json
    record = ROOT / "chapters" / "results" / "09_long_race.jsonl"
    scored = [json.loads(line)["final"] for line in record.read_text().splitlines()
              if '"tokenizer": "gpt2"' in line]
    assert scored and all(f"{f['bytes'] / f['tokens']:.1f}" == "4.5" for f in scored)
