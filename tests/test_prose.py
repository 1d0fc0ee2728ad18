"""The book and the front page read cleanly, and their numbers are the records'.

- No committed notebook (chapters/book/) or record (chapters/results/) holds an absolute path of
  the machine that made it: a reader's machine has no /work/... or /home/....
- The README's numbers outside the long race's verdicts (which tests/test_chapters.py checks):
  its opening answer, its quick start's expected output and the runs it is compared with, and
  the chapter table's counts and times, each recomputed from the committed records.
"""

import json
import math
import re
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "chapters" / "results"

# An absolute POSIX path, or a Windows drive path; not a URL (the '/' after a host or ':'), not
# a relative path ('out/runs'), not a fraction ('1/2') or '$SMOLGPT_RUNS/...'.
ABSOLUTE = re.compile(r"(?<![\w:/.~$])/(?:[\w.-]+/)+[\w.-]*|\b[A-Z]:\\")


def notebook_text(path: Path) -> str:
    """What a reader sees of a notebook: every cell's source and every text output (not the
    base64 of its images)."""
    parts = []
    for cell in json.loads(path.read_text())["cells"]:
        parts.append("".join(cell["source"]))
        for out in cell.get("outputs", []):
            parts.append("".join(out.get("text", "")))
            for kind, value in out.get("data", {}).items():
                if kind.startswith("text/"):
                    parts.append("".join(value))
    return "\n".join(parts)


def strings(value):
    """Every string inside a JSON value."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings(v)


def test_the_rule_catches_machine_paths_only():
    assert ABSOLUTE.findall("reused from /work/main/chapters/results/04_lora.jsonl") == \
        ["/work/main/chapters/results/04_lora.jsonl"]
    assert ABSOLUTE.findall("C:\\Users\\me") != []
    assert ABSOLUTE.findall("out/runs/full_seed0, http://localhost:8000/x, 1/2, "
                            "$SMOLGPT_RUNS/x, chapters/results/01.jsonl, ~/data/x") == []


def test_no_machine_path_in_the_committed_book_or_records():
    found = {}
    for path in sorted((ROOT / "chapters" / "book").glob("*.ipynb")):
        if hits := ABSOLUTE.findall(notebook_text(path)):
            found[path.name] = sorted(set(hits))[:3]
    for path in sorted(RESULTS.iterdir()):
        text = path.read_text()
        if path.suffix == ".jsonl":
            text = "\n".join(s for line in text.splitlines() if line.strip()
                             for s in strings(json.loads(line)))
        if hits := ABSOLUTE.findall(text):
            found[path.name] = sorted(set(hits))[:3]
    assert not found, f"absolute paths of the building machine (print them relative, as " \
                      f"smolgpt.experiments.runs.shown does, and rebuild): {found}"


def record(name: str) -> list[dict]:
    return [json.loads(line) for line in (RESULTS / f"{name}.jsonl").read_text().splitlines()
            if line.strip()]


def readme() -> str:
    return (ROOT / "README.md").read_text()


def long_race_shares() -> dict:
    """{model: {racer: percent of full training's gain kept}} at the full budget, from chapter
    09's committed table and record (as its verdicts compute them)."""
    from smolgpt.companions.ch09_long_race import RACERS, runs_at
    runs, shares = record("09_long_race"), {}
    for section in (RESULTS / "09_long_race.md").read_text().split("### ")[1:]:
        model, bpb = section.split()[0], {}
        for line in section.splitlines():
            cells = [c.strip() for c in line.strip("|").split("|")]
            if line.startswith("| ") and cells[0] in RACERS:
                bpb[cells[0]] = np.mean([r["final"]["bits_per_byte"]
                                         for r in runs_at(runs, RACERS[cells[0]], model, cells[1])])
        E, F = bpb["embeddings only"], bpb["full"]
        shares[model] = {r: 100 * (E - v) / (E - F) for r, v in bpb.items()}
    return shares


def test_the_readmes_answer_is_the_long_race():
    """Every percentage of the README's opening answer (from the top to the figure) is a share
    of full training's gain some racer keeps at the long race's full budget, and the shares
    it names for the byte model are the byte model's."""
    text = readme()[:readme().index("![")]
    shares = long_race_shares()
    quoted = [int(p) for p in re.findall(r"(\d+)%", text)]
    assert len(quoted) >= 5, quoted
    pool = {round(v) for model in shares.values() for v in model.values()}
    assert set(quoted) <= pool | {89, 92}, f"the README's answer quotes {quoted}; the long race " \
                                           f"gives {sorted(pool)} (89% and 92%: the models' make-up)"
    byte_part = text[text.index("2. "):text.index("3. ")]
    for racer in ("5 in all", "LoRA", "Fastfood"):
        assert f"{round(shares['bytes'][racer])}%" in byte_part, racer


def test_the_quick_start_prints_what_the_record_says():
    """The quick start's command is chapter 05's '5 in all' at its own rates, seed 0; the output
    the README expects is that run's validation curve in chapter 05's record, and the runs it is
    compared with are the same record's full training and embeddings only at seed 0."""
    text = readme()
    quick = text[text.index("## Quick start"):]
    quick = quick[:quick.index("\n## ")]
    command = " ".join(quick[quick.index("smolgpt train"):quick.index("```", quick.index(
        "smolgpt train"))].replace("\\\n", " ").split())
    from smolgpt.cli import _train_config, build_parser
    cfg = _train_config(build_parser().parse_args(command.split()[1:]))
    runs = {(r["label"], r["config"]["lr"]): r for r in record("05_race") if r["seed"] == 0}
    mine = runs[cfg.method.label(), cfg.lr]
    from smolgpt.experiments.runs import run_key
    from smolgpt.train import TrainConfig
    kept = TrainConfig.from_dict(mine["config"])
    assert run_key(cfg, mine["data"]) == run_key(kept, mine["data"]), \
        "the quick start's command is not chapter 05's recorded run"
    expected = re.findall(r"^step (\d+): val loss ([\d.]+)$", quick, flags=re.M)
    assert [(int(s), float(v)) for s, v in expected] == \
        [(s, round(v, 4)) for s, _, v in mine["val_curve"] if s > 0]
    assert f"final validation loss {mine['val_curve'][-1][2]:.4f} after " \
           f"{mine['tokens']:,} tokens" in quick
    assert f"] {mine['n_trainable']:,} trainable non-embedding parameters" in quick
    for label, words in (("full", "every weight trained ends at"),
                         ("embeddings", "with the embeddings alone at")):
        end = runs[label, cfg.lr]["val_curve"][-1][2]
        assert f"{words} {end:.4f}" in " ".join(quick.split()), label
    assert f"trained in {mine['elapsed']:.0f} s" in quick
    assert f"{math.log(cfg.gpt.vocab_size):.2f}" in quick


def test_the_chapter_tables_counts_and_times_are_the_records():
    """The README's chapter table gives, for each chapter with a record, 'N runs recorded, X
    min of training summed' as its record holds them (and chapter 09's parts, and chapter 01's
    range of run times)."""
    text = readme()
    table = text[text.index("| chapter | question | default run |"):]
    rows = dict(re.findall(r"^\| `(\d\d)_\w+\.py` .*\| ([^|]+) \|$", table, flags=re.M))
    for path in sorted(RESULTS.glob("*.jsonl")):
        runs = record(path.stem)
        minutes = sum(r["elapsed"] for r in runs) / 60
        said = re.search(r"([\d,]+) runs recorded, ([\d.]+) min of training summed",
                         rows[path.name[:2]])
        assert said, f"the README's chapter table gives no record figures for {path.stem}"
        assert int(said[1].replace(",", "")) == len(runs), path.stem
        assert float(said[2]) == round(minutes, 1), (path.stem, minutes)
    took = sorted(round(r["elapsed"]) for r in record("01_gpt2_from_scratch"))
    assert f"({took[0]}-{took[-1]} s each)" in rows["01"]
    from smolgpt.companions.ch09_long_race import BRIDGES
    bridge = {s.label() for s in BRIDGES.values()}
    parts = {"the byte model's race": [r for r in record("09_long_race") if r["config"]["gpt"][
                 "tokenizer"] == "bytes" and r["label"] not in bridge],
             "its bridges": [r for r in record("09_long_race") if r["label"] in bridge],
             "`tiny`'s race": [r for r in record("09_long_race")
                               if r["config"]["gpt"]["tokenizer"] == "gpt2"]}
    for part, runs in parts.items():
        hours = sum(r["elapsed"] for r in runs) / 3600
        assert re.search(rf"{re.escape(part)} {len(runs)}( runs)? \({hours:.1f} h\)", rows["09"]), \
            (part, len(runs), hours)
    # chapter 10: its default run's runs (at most the race's 1,024 steps) and the longer budget's;
    # the chapter's notebook prints the first as the default run's cost from an empty cache
    from smolgpt.companions.ch10_which_numbers import LONGER_STEPS
    runs = record("10_which_numbers")
    default = [r for r in runs if r["step"] < LONGER_STEPS]
    parts = {"the default run's": default, "the longer budget's": [
        r for r in runs if r["step"] == LONGER_STEPS]}
    for part, runs in parts.items():
        hours = sum(r["elapsed"] for r in runs) / 3600
        assert re.search(rf"{re.escape(part)} {len(runs)}( runs)? \({hours:.1f} h", rows["10"]), \
            (part, len(runs), hours)
    from test_readme import notebook_output
    printed = notebook_output(ROOT / "chapters" / "book" / "10_which_numbers.ipynb")
    hours = sum(r["elapsed"] for r in default) / 3600
    assert f"{len(default)} runs, {hours:.1f} h of training" in " ".join(printed.split())


def test_the_methods_table_counts_are_the_methods():
    """chapters/README.md's table of the methods: each count is what the method builds on GPT-2
    small and on `tiny` (the counts are the design: a config, not a measurement)."""
    from smolgpt.methods import MethodSpec, build
    from smolgpt.model import GPTConfig
    text = (ROOT / "chapters" / "README.md").read_text()
    table = text[text.index("| method | what is trained besides the embeddings |"):]
    rows = {r.split(" | ")[0][3:-1]: r.strip("|").split(" | ")[-2:]
            for r in table[:table.index("\n\n")].splitlines()[2:]}
    specs = {"full": (MethodSpec("full"), MethodSpec("full")),
             "lora": (MethodSpec("lora", rank=128), MethodSpec("lora", rank=4)),
             "vera": (MethodSpec("vera", rank=4),) * 2,
             "nola": (MethodSpec("nola", nola_k=64, nola_l=64),) * 2,
             "basis --per-tensor": (MethodSpec("basis", d=5, per_tensor=True),) * 2,
             "basis": (MethodSpec("basis", d=5),) * 2,
             "embeddings": (MethodSpec("embeddings"),) * 2}
    assert set(specs) | {"fastfood", "said"} == set(rows), sorted(rows)
    for name, pair in specs.items():
        for cell, spec, preset in zip(rows[name], pair, ("gpt2", "tiny")):
            count = build(spec, GPTConfig.preset(preset)).n_trainable
            assert re.search(rf"(?<![\d,]){count:,}(?![\d,])", cell), (name, preset, count, cell)
    for cell, preset in zip(rows["said"], ("gpt2", "tiny")):       # d + one scale per tensor
        extra = build(MethodSpec("said", d=10), GPTConfig.preset(preset)).n_trainable - 10
        assert cell.strip() == f"d + {extra}", (preset, cell)


def test_the_headlines_other_numbers_are_chapter_09s():
    """The README's headline section outside its tables and its verdict lists (which
    tests/test_chapters.py recomputes): each number with a decimal point is one chapter 09's
    committed tables or notebook print, up to rounding."""
    from test_readme import NUMBER, notebook_output, unprinted, unprinted_together
    text = readme()
    section = text[text.index("## The headline"):]
    section = section[:section.index("\n## ")]
    prose = [p for p in section.split("\n\n") if not p.startswith(("|", "The post's three"))]
    quoted = [x for p in prose for x in NUMBER.findall(p) if "." in x]
    assert quoted, "the headline's prose quotes no measured number"
    printed = notebook_output(ROOT / "chapters" / "book" / "09_long_race.ipynb") + "".join(
        (RESULTS / name).read_text() for name in ("09_long_race.md", "09_long_race_bridges.md"))
    assert not unprinted(quoted, printed), unprinted(quoted, printed)
    apart = unprinted_together("\n\n".join(prose), printed)
    assert not apart, apart


def test_the_which_numbers_paragraph_is_chapter_10s():
    """The README's chapter 10 section: each number it quotes (but the counts of the racers'
    numbers and the goal's 50%) is one chapter 10's notebook printed or its committed tables
    hold, up to rounding, and it links the record."""
    from test_readme import NUMBER, notebook_output, unprinted, unprinted_together
    text = readme()
    section = text[text.index("## Which numbers? (chapter 10)"):]
    section = section[:section.index("\n## ")]
    assert "(chapters/results/10_which_numbers.md#the-record)" in section
    prose = re.sub(r"\(Frankle et al., ICLR 2021\)|\d+ random directions|at most [\d,]+|"
                   r"~?[\d,]+ numbers|at [\d,]+ the|Fastfood's 5,000|goal of 50%", "", section)
    quoted = [x for x in NUMBER.findall(prose.split("\n", 1)[1])]
    assert len(quoted) >= 15, quoted
    printed = notebook_output(ROOT / "chapters" / "book" / "10_which_numbers.ipynb") + (
        RESULTS / "10_which_numbers.md").read_text()
    assert not unprinted(quoted, printed), unprinted(quoted, printed)
    assert not unprinted_together(section, printed), unprinted_together(section, printed)
