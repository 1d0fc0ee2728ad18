"""Every chapter runs end to end in quick mode and shows what it claims to show.

Each chapter is run as a user runs it (`python chapters/NN_topic.py`) with SMOLGPT_QUICK=1, its
outputs sent to a temporary folder and its data to the session's small prepared data set.
Chapter 06 is run by tests/test_elephant.py.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np


ROOT = Path(__file__).resolve().parents[1]


def run_chapter(name, tmp_path, data_dir, **more_env):
    env = {**os.environ, "SMOLGPT_QUICK": "1", "SMOLGPT_OUT": str(tmp_path),
           "SMOLGPT_RUNS": str(tmp_path / "runs"), "SMOLGPT_DATA_DIR": str(data_dir),
           "MPLBACKEND": "Agg", **more_env}
    proc = subprocess.run([sys.executable, str(ROOT / "chapters" / name)], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Takeaways" in proc.stdout
    return proc.stdout


def numbers_after(text, label):
    """Every number that follows `label` on a line of text."""
    return [float(x) for x in re.findall(re.escape(label) + r"\s*([-+0-9.e]+)", text)]


def test_chapter_01(tmp_path, prepared_data_dir):
    out = run_chapter("01_gpt2_from_scratch.py", tmp_path, prepared_data_dir)
    errors = numbers_after(out, "max relative error")      # 5 plain layers/block, 4 fast
    assert len(errors) == 9 and max(errors) < 1e-7
    plain_vs_fast = re.search(r"largest gradient difference over 28 tensors ([0-9.e-]+)", out)
    assert plain_vs_fast and float(plain_vs_fast[1]) < 1e-12
    adam = numbers_after(out, "plain vs fast AdamW after one step: largest weight difference")
    assert adam[0] < 1e-12
    for f in ("block.png", "plain_training.png"):
        assert (tmp_path / "01_gpt2" / f).stat().st_size > 10_000
    assert numbers_after(out, "worst relative gradient error")[0] < 1e-6
    init_loss = numbers_after(out, "loss at init")[0]
    assert abs(init_loss - 10.825) < 0.1
    assert (tmp_path / "01_gpt2" / "val_curves.png").stat().st_size > 10_000
    for name in ("full", "embeddings"):                      # two seeds each, kept by the runner
        assert len(list((tmp_path / "runs").glob(f"{name}_seed*/checkpoint.npz"))) == 2
    gap = re.search(r"full training ends ([0-9.]+) nats/token below embeddings only \(95% "
                    r"interval ([-0-9.]+) to ([-0-9.]+) over 2 paired seeds", out)
    assert gap and float(gap[2]) <= float(gap[1]) <= float(gap[3])
    assert "--- full ---" in out and "--- embeddings ---" in out


def test_chapter_02(tmp_path, prepared_data_dir):
    out = run_chapter("02_random_basis.py", tmp_path, prepared_data_dir)
    assert re.search(r"basis, 5 per tensor\s+\d+\s+730", out)         # GPT-2 small: 146 x 5
    assert re.search(r"LoRA r=128\s+[\d,]+\s+18,874,368", out)
    gb = dict(re.findall(r"storing P for (GPT-2 small|tiny)\s+at d=1000 :\s+([0-9,.]+) GB", out))
    assert abs(float(gb["GPT-2 small"].replace(",", "")) - 85_056_000 * 1000 * 4 / 1e9) < 0.01
    for f in ("toy_subspace.png", "val_curves.png", "regeneration.png"):
        assert (tmp_path / "02_basis" / f).stat().st_size > 10_000
    # the small MLP: full training beats its init by far, and subspace accuracy rises with d
    toy = re.search(r"MLP with D = 5,124 parameters, 1 seed\(s\): held-out accuracy ([0-9.]+) "
                    r"at init, ([0-9.]+) after full training", out)
    assert toy and float(toy[2]) > float(toy[1]) + 0.3
    acc = [float(a) for a in re.findall(r"random subspace of d =\s+\d+: accuracy ([0-9.]+)", out)]
    assert len(acc) == 5 and acc[-1] > acc[0] + 0.2
    # every basis model against embeddings only, and each offset pair, as paired intervals
    assert len(re.findall(r"^basis .*[-+][0-9.]+ \[[-+][0-9.]+, [-+][0-9.]+\]$", out,
                          flags=re.M)) == 4
    assert len(re.findall(r"no offset minus offset = .* over 2 seeds", out)) == 2


def test_chapter_03(tmp_path, prepared_data_dir):
    out = run_chapter("03_fastfood.py", tmp_path, prepared_data_dir)
    kurt = dict(re.findall(r"^(dense Gaussian|Fastfood|FFT-Fastfood)\s.*kurtosis ([0-9.]+)", out,
                           flags=re.M))
    assert abs(float(kurt["dense Gaussian"]) - 3) < 0.2 and abs(float(kurt["Fastfood"]) - 3) < 0.2
    assert abs(float(kurt["FFT-Fastfood"]) - 1.5) < 0.1
    for f in ("columns.png", "scaling.png", "val_curves.png", "weight_changes.png"):
        assert (tmp_path / "03_fastfood" / f).stat().st_size > 10_000
    # each d gets its own coefficient rate, chosen only when interior to its grid
    assert len(re.findall(r"chosen: coef_lr = [0-9.e-]+ \(both neighbours are worse\)", out)) == 2
    assert re.search(r"^(Still flat|Not flat) in d|  - (Still flat|Not flat) in d", out, flags=re.M)
    changes = re.findall(r"^(fastfood d=\d+|full)\s+((?:[0-9.]+e[-+]\d+\s*){7})$", out,
                         flags=re.M)
    assert len(changes) == 3 and all(float(v) > 0 for _, row in changes for v in row.split())


def test_chapter_04(tmp_path, prepared_data_dir):
    out = run_chapter("04_lora.py", tmp_path, prepared_data_dir)
    left = {(t, m): float(v) for t, m, v in
            re.findall(r"^(low-rank|diffuse) Delta\s+(lora|subspace)\s*: error left\s+([0-9.]+)%",
                       out, flags=re.M)}
    assert left["low-rank", "lora"] < 1.0                   # LoRA fits a rank-r change exactly
    assert left["low-rank", "subspace"] > 50.0              # a random plane cannot
    ranks = dict(re.findall(r"^(lora|subspace)\s+update fitted .*: (\d+) of", out, flags=re.M))
    assert int(ranks["lora"]) == 2 and int(ranks["subspace"]) > 2
    # the four parameterizations on one layer of tiny (128 x 512): r (m + n), r + n, k + l, d
    counts = re.findall(r"^(LoRA|VeRA|NOLA|subspace)\s+trains\s+([\d,]+) numbers", out, flags=re.M)
    assert {k: int(v.replace(",", "")) for k, v in counts} == \
        {"LoRA": 4 * 640, "VeRA": 4 + 512, "NOLA": 64 + 64, "subspace": 5}
    changed = dict(re.findall(r"^(LoRA|VeRA|NOLA|subspace)\s+change of .*: rank (\d+) of", out,
                              flags=re.M))
    assert [int(changed[k]) for k in ("LoRA", "VeRA", "NOLA")] == [4, 4, 4]
    assert int(changed["subspace"]) == 128
    assert (tmp_path / "04_lora" / "val_curves.png").stat().st_size > 10_000
    iv = re.search(r"Fastfood minus LoRA = ([-+][0-9.]+), 95% interval \[([-+][0-9.]+), "
                   r"([-+][0-9.]+)\] over 2 seeds", out)
    assert iv and float(iv[2]) <= float(iv[1]) <= float(iv[3])


def test_chapter_07(tmp_path, prepared_data_dir):
    out = run_chapter("07_five_parameters.py", tmp_path, prepared_data_dir)
    settings = ["baseline (5 in all)", "a = 1/d", "a ~ N(0, 1)", "a ~ N(0, 1/d)",
                "a = 0 + frozen offset", "W^k at GPT-2 scale", "no residual scaling",
                "literal: LN, biases in", "LN, biases constant", "LN, biases trained",
                "a at the embeddings' rate", "post: literal, GPT-2 scale, no res., one rate"]
    table = (tmp_path / "07_five_parameters" / "results.md").read_text()
    rows = {r.split(" | ")[0][2:]: r for r in table.splitlines()
            if r.startswith("| ") and not r.startswith("| setting")}
    assert set(settings) <= set(rows)
    for name in settings:           # two paired intervals per row, each around its mean
        ivs = re.findall(r"([-+][0-9.]+) \[([-+][0-9.]+), ([-+][0-9.]+)\]", rows[name])
        assert len(ivs) == 2, rows[name]
        for diff, lo, hi in ivs:
            assert float(lo) <= float(diff) <= float(hi)
        verdict = rows[name].split(" | ")[4]
        # the verdict is taken from the unrounded bounds; a printed "-0.000" is a bound just
        # below 0, so read each bound's side of 0 from its sign, not from its rounded value
        _, lo, hi = ivs[0]
        assert verdict == ("learns" if hi.startswith("-") else
                           "worse" if lo.startswith("+") else "nothing"), rows[name]
    # the mechanism: with LayerNorm gains inside the combination a's gradient is far smaller
    grad = dict(re.findall(r"^(.+?)\s+[0-9.]+\s+([0-9.]+e[-+][0-9]+)\s+[-+nan0-9.e]+$", out,
                           re.M))
    assert float(grad["literal: LN, biases in"]) < 0.2 * float(grad["baseline (5 in all)"])
    # at the embeddings' rate (1e-3) two steps move no coefficient by more than ~2e-3
    moved = dict(re.findall(r"^(.+?)\s+[0-9.]+\s+[0-9.]+\s+([0-9.]+)$", out, re.M))
    assert float(moved["a at the embeddings' rate"]) < 0.01
    assert float(moved["baseline (5 in all)"]) > 0.05
    assert "FAQ 3, answered at this scale" in out and "GFLOP/s" in out
    for f in ("effects.png", "coefficients.png", "mechanism.png"):
        assert (tmp_path / "07_five_parameters" / f).stat().st_size > 10_000


def test_chapter_05(tmp_path, prepared_data_dir):
    out = run_chapter("05_race.py", tmp_path, prepared_data_dir)
    text = (tmp_path / "05_race" / "results.md").read_text()
    assert text.count("| method |") == 2                    # one table per protocol
    rows = [r for r in text.splitlines() if r.startswith("| ") and "method" not in r]
    assert len(rows) == 2 * 6 and all("+-" in r for r in rows)     # mean +- s.e. everywhere
    # every link of the post's ordering gets a verdict from a paired interval, per protocol
    links = re.findall(r"^  (.+?) < (.+?)\s+(holds|REVERSED|not resolved)\s+.*= ([-+0-9.]+), "
                       r"95% interval \[([-+0-9.]+), ([-+0-9.]+)\] over (\d+) seeds", out, re.M)
    assert len(links) == 8
    for _, _, said, diff, lo, hi, n in links:
        lo, hi, diff = float(lo), float(hi), float(diff)
        assert lo <= diff <= hi and int(n) == 2
        assert (said == "holds") == (lo > 0) and (said == "REVERSED") == (hi < 0)
    unigram = numbers_after(out, "add-one smoothing)")[0]
    assert 7 < unigram < 11
    assert (tmp_path / "05_race" / "val_curves.png").stat().st_size > 10_000
    # a second run reuses every run it made the first time
    again = run_chapter("05_race.py", tmp_path, prepared_data_dir)
    assert "reusing" in again and "final loss" not in again.split("Takeaways")[0].split(
        "own rates:")[0].split("post's protocol:")[1]
    logs = list((tmp_path / "runs").glob("*/log.jsonl"))
    assert len(logs) >= 6
    from smolgpt.cli import main
    assert main(["plot", *map(str, logs[:3]), "--out", str(tmp_path / "redrawn.png")]) == 0
    assert (tmp_path / "redrawn.png").stat().st_size > 10_000


def test_chapter_08(tmp_path, prepared_data_dir):
    import json
    out = run_chapter("08_intrinsic_dimension.py", tmp_path, prepared_data_dir)
    # d_int90 with its bootstrap interval, or the largest fraction reached with its interval,
    # for both regimes and both methods
    found = re.findall(r"^(from scratch|fine-tuning)\s+(DID \(Fastfood\)|SAID)\s+"
                       r"(d_int90 = [\d,]+ .*95% bootstrap interval [\d,]+ to .*|"
                       r"d_int90 <= [\d,]+ .*95% bootstrap band .*|"
                       r"90% not reached: largest fraction reached .*95% bootstrap interval .*)$",
                       out, flags=re.M)
    assert {(regime, method) for regime, method, _ in found} == {
        (r, m) for r in ("from scratch", "fine-tuning") for m in ("DID (Fastfood)", "SAID")}
    folder = tmp_path / "08_intrinsic_dimension"
    assert (folder / "gap_closed.png").stat().st_size > 10_000
    assert len(json.loads((folder / "d_int.json").read_text())) == 4
    files = json.loads((folder / "stdlib_files.json").read_text())["files"]
    assert files and all(len(f["sha256"]) == 64 for f in files)
    assert {f["split"] for f in files} == {"train", "val"}


def test_every_chapter_imports_smolgpt_before_numpy():
    # smolgpt's import sets how OpenBLAS's threads wait, which works only before NumPy loads
    # OpenBLAS (smolgpt/__init__.py); matplotlib and scipy load NumPy too
    import ast
    loads_numpy = {"numpy", "matplotlib", "scipy", "datasets", "tiktoken"}
    for path in sorted((ROOT / "chapters").glob("[0-9][0-9]_*.py")):
        for node in ast.parse(path.read_text()).body:
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            tops = {n.split(".")[0] for n in names}
            if "smolgpt" in tops:
                break
            assert not tops & loads_numpy, f"{path.name} imports {tops & loads_numpy} before smolgpt"


def test_chapter_09(tmp_path, prepared_data_dir):
    from smolgpt.companions.ch09_long_race import CHECKED
    data_dir = tmp_path / "data"        # the chapter prepares its own, larger training set
    out = run_chapter("09_long_race.py", tmp_path, data_dir)
    text = (tmp_path / "09_long_race" / "results.md").read_text()
    rows = [r for r in text.splitlines() if r.startswith("| ") and "racer" not in r]
    assert len(rows) == 7 + 1 and all("+-" in r for r in rows[:7])   # 7 racers, the unigram
    links = re.findall(r"^  (.+?) < (.+?)\s+(holds|REVERSED|not resolved)\s+.*= ([-+0-9.]+) "
                       r"bits per byte, 95% \[([-+0-9.]+), ([-+0-9.]+)\]", out, re.M)
    assert len(links) == 4
    for _, _, said, diff, lo, hi in links:
        lo, hi, diff = float(lo), float(hi), float(diff)
        assert lo <= diff <= hi
        assert (said == "holds") == (lo > 0) and (said == "REVERSED") == (hi < 0)
    # the CHECKED racers are checked at the full budget: each keeps its rate or moves
    settled = re.findall(r"^  -> (.+) (stands:|moved to) (lr|coef_lr) = ([0-9.e+-]+)$", out,
                         re.M)
    assert sorted(r for r, *_ in settled) == sorted(CHECKED)
    for racer, verb, field, value in settled:  # a rate that moved is marked in the table
        row = next(r for r in rows if r.startswith(f"| {racer} |"))
        assert f"| {field} = {float(value):.3g}" in row
        assert (verb == "moved to") == ("(set at the full budget)" in row)
    for name in ("race.png", "gap_closed.png"):
        assert (tmp_path / "09_long_race" / name).stat().st_size > 10_000
    check_bridges(out, (tmp_path / "09_long_race" / "bridges.md").read_text())
    # the second run takes every run from the record: nothing is trained, no run folder is new
    folders = set((tmp_path / "runs").iterdir())
    again = run_chapter("09_long_race.py", tmp_path, data_dir)
    assert set((tmp_path / "runs").iterdir()) == folders
    def takeaways(text):                       # without their first line, the wall time
        return text.split("Takeaways")[1].split("\n", 1)[1]
    assert takeaways(again) == takeaways(out)


def check_bridges(out, table):
    """Chapter 09's bridges at equal counts, as printed: each count's formula agrees with the
    method's own count; one table row (mean +- s.e.) per racer matched at each count; every pair
    at a count a paired interval whose verdict follows from its bounds; each bridge's paired
    difference at the last budgets."""
    from smolgpt.companions.ch09_long_race import BRIDGES, MATCHED
    counts = re.findall(r"^  ~[\d,]+\s+(.+?)\s+one matrix: (?:.* = )?(\S+)\s+\((\S+)\)\s+"
                        r"the model: .* = ([\d,]+)\s+\(([\d,]+)\)$", out, re.M)
    assert {racer for racer, *_ in counts} == {r for racers in MATCHED.values() for r in racers}
    for racer, one, own_one, model, own_model in counts:      # the formula = the method's count
        assert (one, model) == (own_one, own_model), racer
    rows = [r for r in table.splitlines() if r.startswith("| ") and not r.startswith("| racer")]
    assert sorted(r.split(" | ")[0][2:] for r in rows) == sorted(
        r for racers in MATCHED.values() for r in racers)
    assert all(re.search(r"\| [0-9.]+ \+- [0-9.]+ \| [0-9.]+ \+- [0-9.]+ \|$", r) for r in rows)
    pairs = re.findall(r"^  ~[\d,]+\s+(.+?) - (.+?)\s+= ([-+][0-9.]+) bits per byte, 95% "
                       r"\[([-+][0-9.]+), ([-+][0-9.]+)\]: (.+)$", out, re.M)
    assert len(pairs) == sum(len(r) * (len(r) - 1) // 2 for r in MATCHED.values())
    for b, a, diff, lo, hi, said in pairs:        # b - a; a bound's side of 0 is its sign
        assert float(lo) <= float(diff) <= float(hi)
        assert said == (f"{a} lower" if lo.startswith("+") else
                        f"{b} lower" if hi.startswith("-") else "not resolved"), (a, b)
    along = re.findall(r"^  ~[\d,]+\s+(.+?) - (.+?)\s+((?:[-+][0-9.]+[* ]\s*)+)$", out, re.M)
    assert sorted(b for b, *_ in along) == sorted(BRIDGES)
    assert all(len(diffs.split()) == 4 for *_, diffs in along)   # quick: steps 1, 2, 4, 8


def test_the_committed_records_are_what_the_runner_made():
    """Every committed run (chapters/results/*.jsonl: chapter 09's, and each chapter's full-size
    runs) is keyed by its own config, data and the results version: an edited line, or a code
    change that bumped RESULTS_VERSION, fails here."""
    import json
    from smolgpt.experiments.runs import run_key
    from smolgpt.train import TrainConfig
    paths = sorted((ROOT / "chapters" / "results").glob("*.jsonl"))
    assert ROOT / "chapters" / "results" / "09_long_race.jsonl" in paths
    for path in paths:
        records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        assert records, path.name
        for r in records:
            cfg = TrainConfig.from_dict(r["config"])
            # a fine-tuning run's key holds the run that made the weights it starts from, which
            # its chapter names (tests/test_reproduce_08.py checks those keys)
            if not cfg.init_from:
                assert run_key(cfg, r["data"]) == r["key"], (path.name, r["label"])
            assert cfg.method.label() == r["label"], (path.name, r["label"])
            assert r["final"]["windows"] == r["final_windows"]
            assert [p[0] for p in r["val_curve"]][-1] == cfg.steps == r["step"]


def check_row(line, runs, spec, model, readme):
    """A table row '| racer | rate | count | bits per byte | nats per token |' is the mean +-
    standard error of its recorded runs' final scores, and the README, where it gives the row
    (the byte model's table), quotes it verbatim."""
    from smolgpt.experiments.stats import fmt, mean_se
    racer, rate, count, bpb, nats = [c.strip() for c in line.strip("|").split("|")]
    from smolgpt.companions.ch09_long_race import runs_at
    mine = runs_at(runs, spec, model, rate)
    assert len(mine) >= 2, f"{model} {racer}: {len(mine)} recorded runs"
    assert count == f"{mine[0]['n_trainable']:,}"
    assert bpb == fmt(*mean_se([r["final"]["bits_per_byte"] for r in mine]))
    assert nats == fmt(*mean_se([r["final"]["loss"] for r in mine]))
    if readme is not None:
        assert line in readme, f"the README's long race table differs from the run's: {racer}"


def committed_runs():
    import json
    record = ROOT / "chapters" / "results" / "09_long_race.jsonl"
    return [json.loads(line) for line in record.read_text().splitlines() if line.strip()]


def test_the_long_race_table_is_read_from_its_runs():
    """Each row of chapter 09's committed table (which the README quotes) is recomputed from the
    committed record of its runs: racer, rate and budget pick the runs, and their final scores
    give the mean +- standard error printed. The README's rows are the table's, verbatim."""
    import pytest
    from smolgpt.companions.ch09_long_race import RACERS
    table = ROOT / "chapters" / "results" / "09_long_race.md"
    if not table.exists():
        pytest.skip("chapter 09's default run has not written its table yet")
    runs, readme = committed_runs(), (ROOT / "README.md").read_text()
    model, checked = None, 0
    for line in table.read_text().splitlines():
        if line.startswith("### "):
            model = line.split()[1]
            continue
        racer = line.strip("|").split("|")[0].strip()
        if line.startswith("| ") and racer in RACERS:
            check_row(line, runs, RACERS[racer], model, readme if model == "bytes" else None)
            checked += 1
    assert checked >= len(RACERS)


def test_the_readmes_long_race_verdicts_are_its_runs():
    """Every measured number the README's headline gives in a model's verdicts (the paragraph
    that starts "The post's three claims, on <the model>", with its list) is recomputed from the
    committed record: each racer's mean bits per byte over seeds, the paired per-seed
    differences of every two racers of that model's table, in bits per byte, each racer's share
    of full training's gain and full training's lead over embeddings only,
    at the full budget and at every budget along the way, and the rates the record's runs
    trained at. A number counts when one of those, rounded as the README rounds it, gives it.
    Whole numbers other than shares (counts, budgets) are the design, and an interval's level
    ('95% [') is not a measurement. Every model of the table has its block."""
    import pytest
    table = ROOT / "chapters" / "results" / "09_long_race.md"
    if not table.exists():
        pytest.skip("chapter 09's default run has not written its table yet")
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## The headline"):]
    section = section[:section.index("\n## ")]
    blocks = {}                  # each runs from its first line to the end of its list
    for start in re.finditer(r"^The post's three claims, on ", section, flags=re.M):
        block = " ".join(section[start.start():].split("\n\n")[0].split())
        for model, name in (("bytes", "the byte model"), ("tiny", "`tiny`")):
            if block.startswith(f"The post's three claims, on {name} "):
                blocks[model] = block
    runs = committed_runs()
    sections = {s.split()[0]: s for s in table.read_text().split("### ")[1:]}
    assert set(blocks) == set(sections), f"the README's verdicts are for {sorted(blocks)}, " \
                                         f"the table's models are {sorted(sections)}"
    for model, verdicts in blocks.items():
        check_verdicts(verdicts, sections[model], runs, model)


def check_verdicts(verdicts, section, runs, model):
    """One model's verdicts (README text) against its table's runs; see above."""
    from smolgpt.companions.ch09_long_race import RACERS, gap_closed, losses, runs_at
    from smolgpt.experiments.stats import paired_interval
    results = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if line.startswith("| ") and cells[0] in RACERS:
            results[cells[0]] = sorted(runs_at(runs, RACERS[cells[0]], model, cells[1]),
                                       key=lambda r: r["seed"])
    bpb = {r: [x["final"]["bits_per_byte"] for x in rs] for r, rs in results.items()}
    derived = {float(r["config"][f]) for r in runs for f in ("lr", "coef_lr")}
    derived |= {np.mean(v) for v in bpb.values()}                 # each racer's final score
    for a in bpb:
        for b in bpb:
            if a != b:
                iv = paired_interval(bpb[a], bpb[b])
                derived |= {iv["diff"], iv["lo"], iv["hi"]}
    E, F = np.mean(bpb["embeddings only"]), np.mean(bpb["full"])
    shares = [100 * (E - np.mean(v)) / (E - F) for v in bpb.values()]
    leads = losses(results, "embeddings only").mean(0) - losses(results, "full").mean(0)
    derived |= set(leads) | set(leads / np.log(2))   # full training's lead along the way
    shares += [100 * x for v in gap_closed(results).values() for x in v if np.isfinite(x)]

    def given(text, pool):
        places = len(text.split(".")[1]) if "." in text else 0
        return any(round(v, places) == float(text) for v in pool)

    decimals = re.findall(r"(?<![\w.])[-+]?\d+\.\d+", verdicts)
    percents = [n for pair in re.findall(r"(\d+)(?:-(\d+))?%(?! \[)", verdicts) for n in pair if n]
    assert len(decimals) >= 6 and len(percents) >= 1, (model, decimals, percents)
    # a difference written 'A - B = d [lo, hi]' is that pair's, not any pair's
    names = "|".join(re.escape(r) for r in sorted(bpb, key=len, reverse=True))
    num = r"([-+]?\d+\.\d+)"
    named = re.findall(rf"({names}) - ({names}) = {num} \[{num}, {num}\]", verdicts)
    assert len(named) >= 1, verdicts
    for a, b, *quoted in named:
        iv = paired_interval(bpb[b], bpb[a])                        # a - b, seed by seed
        assert [given(q, [v]) for q, v in zip(quoted, (iv["diff"], iv["lo"], iv["hi"]))] == \
            [True] * 3, f"the README's {a} - {b} = {quoted} on {model} is not that pair's {iv}"
    missing = [n for n in decimals if not given(n, derived)] + \
              [f"{n}%" for n in percents if not given(n, shares)]
    assert not missing, f"the README's long race verdicts on {model} quote {missing}, which " \
                        f"the committed runs do not give: quote chapter 09's printed numbers"


def test_chapters_quote_the_long_race_from_its_committed_table():
    """committed_finding, which chapters 05, 07 and 08 print, gives one line per model of the
    committed table, with the table's full training and embeddings only (bits per byte)."""
    from smolgpt.companions.ch09_long_race import committed_finding
    results = ROOT / "chapters" / "results"
    sections = (results / "09_long_race.md").read_text().split("### ")[1:]
    lines = committed_finding(results)
    assert len(lines) == len(sections)
    for line, section in zip(lines, sections):
        assert line.startswith(f"the long race, {section.splitlines()[0]}: ")
        for racer, quoted in (("full", "full training"), ("embeddings only", "embeddings only")):
            row = next(r for r in section.splitlines() if r.startswith(f"| {racer} |"))
            mean = row.split("|")[4].split("+-")[0].strip()
            assert re.search(rf"{quoted} {re.escape(mean)}\b", line), racer
    for chapter in ("05_race.py", "07_five_parameters.py", "08_intrinsic_dimension.py"):
        assert "committed_finding(" in (ROOT / "chapters" / chapter).read_text(), chapter


def test_the_long_race_bridges_table_is_read_from_its_runs():
    """The same for chapter 09's committed table of the bridges at equal counts: every racer
    matched at each count has its row, recomputed from the record. Skipped, saying how many bridge runs the record holds, until a default run writes it."""
    import pytest
    from smolgpt.companions.ch09_long_race import BRIDGES, MATCHED, SPECS
    table = ROOT / "chapters" / "results" / "09_long_race_bridges.md"
    runs = committed_runs()
    if not table.exists():
        labels = {s.label() for s in BRIDGES.values()}
        pytest.skip(f"chapter 09's default run has not raced the bridges yet: no "
                    f"{table.name}; the record holds "
                    f"{sum(r['label'] in labels for r in runs)} runs of the bridges")
    model, rows = None, {}
    for line in table.read_text().splitlines():
        if line.startswith("### "):               # '### bytes at ~5,000 trainable ...'
            model, count = line.split()[1], int(line.split()[3][1:].replace(",", ""))
            continue
        racer = line.strip("|").split("|")[0].strip()
        if line.startswith("| ") and racer in SPECS:
            check_row(line, runs, SPECS[racer], model, None)
            rows.setdefault(count, []).append(racer)
    assert {c: sorted(r) for c, r in rows.items()} == {c: sorted(r) for c, r in MATCHED.items()}


def test_chapter_10_tables_are_read_from_its_runs():
    """Each row of chapter 10's committed tables (which the README quotes) is recomputed from the
    committed records: racer and rate pick the full-budget runs (chapter 10's, or the long
    race's for its racers), their final scores give the mean +- standard error printed, and the
    share is of full training's gain over embeddings only in the long race's table. Skipped
    until a default run writes the tables."""
    import json
    import pytest
    from smolgpt.companions.ch09_long_race import SPECS, runs_at
    from smolgpt.companions.ch10_which_numbers import NEW
    from smolgpt.experiments.stats import fmt, mean_se
    table = ROOT / "chapters" / "results" / "10_which_numbers.md"
    if not table.exists():
        pytest.skip("chapter 10's default run has not written its tables yet")
    runs = committed_runs() + [json.loads(line) for line in (
        ROOT / "chapters" / "results" / "10_which_numbers.jsonl").read_text().splitlines()]
    specs = {**SPECS, **NEW}

    def mean_bpb(racer, rate):
        return np.mean([r["final"]["bits_per_byte"] for r in runs_at(runs, specs[racer],
                                                                     "bytes", rate)])
    long_rows = {}
    for line in (ROOT / "chapters" / "results" / "09_long_race.md").read_text().split(
            "### ")[1].splitlines():              # the byte model's table comes first
        cells = [c.strip() for c in line.strip("|").split("|")]
        long_rows[cells[0]] = cells
    E = mean_bpb("embeddings only", long_rows["embeddings only"][1])
    F = mean_bpb("full", long_rows["full"][1])
    checked = 0
    for line in table.read_text().split("## The record")[0].splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if not line.startswith("| ") or cells[0] not in specs:
            continue
        racer, count, rate, bpb, kept = cells
        mine = runs_at(runs, specs[racer], "bytes", rate)
        assert len(mine) == 3, (racer, len(mine))
        assert count == f"{mine[0]['n_trainable']:,}", racer
        scores = [r["final"]["bits_per_byte"] for r in mine]
        assert bpb == fmt(*mean_se(scores)), racer
        assert kept == f"{(E - np.mean(scores)) / (E - F):.0%}", racer
        checked += 1
    assert checked >= len(NEW)
    # the longer budget's table: its runs are chapter 10's own, at LONGER_STEPS, and its shares
    # are of full training's gain over embeddings only on that budget
    longer = ROOT / "chapters" / "results" / "10_which_numbers_longer.md"
    assert longer.exists(), "a full-size run with SMOLGPT_CH10_LONGER=1 writes it"
    from smolgpt.companions.ch10_which_numbers import LONGER_RACERS, LONGER_STEPS
    rows = {cells[0]: cells for line in longer.read_text().splitlines()
            if line.startswith("| ") and (cells := [c.strip() for c in line.strip("|").split(
                "|")])[0] in specs}

    def scores_at(racer):
        mine = runs_at(runs, specs[racer], "bytes", rows[racer][2], steps=LONGER_STEPS)
        assert len(mine) == 3, (racer, len(mine))
        assert rows[racer][1] == f"{mine[0]['n_trainable']:,}", racer
        return [r["final"]["bits_per_byte"] for r in mine]
    assert set(rows) > set(LONGER_RACERS)                        # and the best new racer
    E, F = np.mean(scores_at("embeddings only")), np.mean(scores_at("full"))
    for racer, (_, _, _, bpb, kept) in rows.items():
        scores = scores_at(racer)
        assert bpb == fmt(*mean_se(scores)), racer
        assert kept == f"{(E - np.mean(scores)) / (E - F):.0%}", racer


def test_chapter_10(tmp_path):
    """Chapter 10 in quick mode: the demo switches one feature off, the gradient reach is a
    share, every table row and record entry is well formed, each paired verdict follows from its
    bounds; then the score command, on a racer the chapter ran, reuses every run; then the
    longer budget (SMOLGPT_CH10_LONGER=1) shows its racers, on longer runs of their own."""
    from smolgpt.companions.ch10_which_numbers import LIMITS, LONGER_RACERS, NEW
    data_dir = tmp_path / "data"        # the long race's own, larger training set
    out = run_chapter("10_which_numbers.py", tmp_path, data_dir)
    assert numbers_after(out, "feature")[0] >= 0
    off = re.search(r"gain g_\d+ = 0: feature \d+ mean ([-0-9.]+), the others moved by "
                    r"([0-9.]+) at most", out)
    assert off and float(off[1]) == 0 and float(off[2]) == 0
    reach = [float(v) for v in re.findall(r"follows\s+([0-9.]+)% of the gradient", out)]
    assert reach and all(0 <= v <= 100 for v in reach)
    verdicts = re.findall(r"^  .+ - .+\s+([-+][0-9.]+) bits per byte, 95% \[([-+][0-9.]+), "
                          r"([-+][0-9.]+)\]: .+ (lower|higher|not resolved)$", out, re.M)
    assert verdicts
    for diff, lo, hi, said in verdicts:      # lower: the new racer's interval below 0
        assert float(lo) <= float(diff) <= float(hi)
        assert said == ("lower" if float(hi) < 0 else "higher" if float(lo) > 0
                        else "not resolved")
    knobs = re.findall(r"the best knobs, .+?, are (ahead of|behind|not resolved from) the best "
                       r"racer that moves the whole body, .+? = ([-+][0-9.]+) bits per byte, 95% "
                       r"\[([-+][0-9.]+), ([-+][0-9.]+)\]", " ".join(out.split()))
    assert knobs
    for said, diff, lo, hi in knobs:
        assert float(lo) <= float(diff) <= float(hi)
        assert said == ("ahead of" if float(hi) < 0 else "behind" if float(lo) > 0
                        else "not resolved from")
    record = (tmp_path / "10_which_numbers" / "record.md").read_text()
    entries = [r for r in record.splitlines() if re.match(r"\| [\d,]+ \|", r)]
    assert [int(r.split("|")[1].replace(",", "")) for r in entries] == list(LIMITS)
    assert "Rules:" in record and "sha256" in record
    assert (tmp_path / "10_which_numbers" / "shares.png").stat().st_size > 10_000
    folders = set((tmp_path / "runs").iterdir())
    env = {**os.environ, "SMOLGPT_OUT": str(tmp_path), "SMOLGPT_RUNS": str(tmp_path / "runs"),
           "SMOLGPT_DATA_DIR": str(data_dir)}
    proc = subprocess.run([sys.executable, "-m", "smolgpt.companions.ch10_which_numbers",
                           "score", "--quick", "--method", "heads", "--record",
                           str(tmp_path / "10_which_numbers" / "record.jsonl")], env=env,
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert re.search(r"^heads: [\d,]+ trainable non-embedding numbers, coef_lr = ", proc.stdout,
                     re.M)
    said = re.search(r"at most 250: against the standing .+ (a new record|does not beat it)",
                     proc.stdout)
    assert said
    entry = re.search(r"^\| 250 \| (.+?) \|", proc.stdout, re.M)   # the table the verdict
    assert (entry[1] == "heads") == (said[1] == "a new record")    # printed agrees with it
    assert set((tmp_path / "runs").iterdir()) == folders          # nothing was trained again
    # the longer budget: two lanes race its fixed racers, each into a copy of the record, and
    # collect gathers them; the chapter then makes only the best new racer's runs
    assert "SMOLGPT_CH10_LONGER=1 runs it" in out
    record = tmp_path / "10_which_numbers" / "record.jsonl"
    lanes = []
    for i, racers in enumerate((LONGER_RACERS[:2], LONGER_RACERS[2:])):
        lanes.append(tmp_path / f"lane{i}.jsonl")
        lanes[-1].write_bytes(record.read_bytes())
        proc = subprocess.run([sys.executable, "-m", "smolgpt.companions.ch10_which_numbers",
                               "lane", "--longer", "--quick", "--racers", ",".join(racers),
                               "--record", str(lanes[-1])], env=env, cwd=ROOT,
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    proc = subprocess.run([sys.executable, "-m", "smolgpt.companions.ch10_which_numbers",
                           "collect", *map(str, lanes), "--into", str(record)], env=env,
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and re.match(r"[1-9]\d* run\(s\) added", proc.stdout), proc.stdout
    by_lanes = set((tmp_path / "runs").iterdir()) - folders
    assert by_lanes                                              # longer runs of their own
    folders |= by_lanes
    longer = run_chapter("10_which_numbers.py", tmp_path, data_dir, SMOLGPT_CH10_LONGER="1")
    shown = re.findall(r"^  (\S.*?)\s+((?:(?:-|-?\d+%)\s*){5})$", longer, re.M)
    reduced = [r for r in LONGER_RACERS if r not in ("full", "embeddings only")]
    assert [r for r, _ in shown] == reduced + [shown[-1][0]]     # and the best new racer
    assert shown[-1][0] in NEW
    checked = re.findall(r"^(\S.*?): (?:lr|coef_lr) over \d+ values", longer[
        :longer.index("passes over the")], re.M)
    expect = [r for r in (*LONGER_RACERS, shown[-1][0]) if r != "embeddings only"]
    assert checked[-len(expect):] == expect                      # each rate's check, printed
    table = longer[longer.index("### The longer budget: "):].split("\n\n")[1]
    assert set(re.findall(r"^\| (.+?) \| [\d,]+ \| ", table, re.M)) == {r for r, _ in shown} | {
        "full", "embeddings only"}                               # its table: every racer
    assert (tmp_path / "10_which_numbers" / "gap_longer.png").stat().st_size > 10_000
    iv = r"([-+][0-9.]+) \[([-+][0-9.]+), ([-+][0-9.]+)\]"
    growth = re.findall(rf"^  (\S.*?)\s+{iv} {iv} {iv}$", longer, re.M)
    assert [g[0] for g in growth] == [r for r, _ in shown]      # the gap, with its change
    for g in growth:
        for diff, lo, hi in zip(*[iter(map(float, g[1:]))] * 3):
            assert lo <= diff <= hi
    said = re.findall(r"the gap between (.+?) and full training changed by ([-+][0-9.]+) bits per "
                      r"byte, 95% \[([-+][0-9.]+), ([-+][0-9.]+)\]: (it widened|it narrowed|not "
                      r"resolved);", " ".join(longer.split()))
    assert [s[0] for s in said] == [g[0] for g in growth]       # one takeaway per racer
    for _, diff, lo, hi, verdict in said:
        assert verdict == ("it widened" if float(lo) > 0 else "it narrowed" if float(hi) < 0
                           else "not resolved")
    # the lanes' longer runs were reused: the chapter's own are the best new racer's, and 5 in
    # all's at the default budget (its gap there, which the long race's record holds at full size)
    by_chapter = set((tmp_path / "runs").iterdir()) - folders
    assert by_chapter
    steps = {f: json.loads((f / "summary.json").read_text())["step"] for f in by_chapter | by_lanes}
    raced = {f.name.rsplit("_seed", 1)[0] for f in by_lanes}
    assert all(steps[f] < max(steps.values()) for f in by_chapter
               if f.name.rsplit("_seed", 1)[0] in raced)
