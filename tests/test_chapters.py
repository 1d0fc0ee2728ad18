"""Every chapter runs end to end in quick mode and shows what it claims to show.

Each chapter is run as a user runs it (`python chapters/NN_topic.py`) with SMOLGPT_QUICK=1, its
outputs sent to a temporary folder and its data to the session's small prepared data set.
Chapter 06 is run by tests/test_elephant.py.
"""

import os
import re
import subprocess
import sys
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]


def run_chapter(name, tmp_path, data_dir):
    env = {**os.environ, "SMOLGPT_QUICK": "1", "SMOLGPT_OUT": str(tmp_path),
           "SMOLGPT_DATA_DIR": str(data_dir), "MPLBACKEND": "Agg"}
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
    errors = numbers_after(out, "max relative error")
    assert len(errors) == 4 and max(errors) < 1e-7
    assert numbers_after(out, "worst relative gradient error")[0] < 1e-6
    init_loss = numbers_after(out, "loss at init")[0]
    assert abs(init_loss - 10.825) < 0.1
    assert (tmp_path / "01_gpt2" / "val_curves.png").stat().st_size > 10_000
    assert (tmp_path / "01_gpt2" / "full" / "checkpoint.npz").exists()


def test_chapter_02(tmp_path, prepared_data_dir):
    out = run_chapter("02_random_basis.py", tmp_path, prepared_data_dir)
    assert re.search(r"basis, 5 per tensor\s+\d+\s+730", out)         # GPT-2 small: 146 x 5
    assert re.search(r"LoRA r=128\s+[\d,]+\s+18,874,368", out)
    gb = dict(re.findall(r"storing P for (GPT-2 small|tiny)\s+at d=1000 :\s+([0-9,.]+) GB", out))
    assert abs(float(gb["GPT-2 small"].replace(",", "")) - 85_056_000 * 1000 * 4 / 1e9) < 0.01
    for f in ("val_curves.png", "regeneration.png"):
        assert (tmp_path / "02_basis" / f).stat().st_size > 10_000


def test_chapter_03(tmp_path, prepared_data_dir):
    out = run_chapter("03_fastfood.py", tmp_path, prepared_data_dir)
    kurt = dict(re.findall(r"^(dense Gaussian|Fastfood|FFT-Fastfood)\s.*kurtosis ([0-9.]+)", out,
                           flags=re.M))
    assert abs(float(kurt["dense Gaussian"]) - 3) < 0.2 and abs(float(kurt["Fastfood"]) - 3) < 0.2
    assert abs(float(kurt["FFT-Fastfood"]) - 1.5) < 0.1
    for f in ("columns.png", "scaling.png", "val_curves.png"):
        assert (tmp_path / "03_fastfood" / f).stat().st_size > 10_000


def test_chapter_04(tmp_path, prepared_data_dir):
    out = run_chapter("04_lora.py", tmp_path, prepared_data_dir)
    left = {(t, m): float(v) for t, m, v in
            re.findall(r"^(low-rank|diffuse) Delta\s+(lora|subspace)\s*: error left\s+([0-9.]+)%",
                       out, flags=re.M)}
    assert left["low-rank", "lora"] < 1.0                   # LoRA fits a rank-r change exactly
    assert left["low-rank", "subspace"] > 50.0              # a random plane cannot
    ranks = dict(re.findall(r"^(lora|subspace)\s+update fitted .*: (\d+) of", out, flags=re.M))
    assert int(ranks["lora"]) == 2 and int(ranks["subspace"]) > 2
    assert (tmp_path / "04_lora" / "val_curves.png").stat().st_size > 10_000


def test_chapter_05(tmp_path, prepared_data_dir):
    out = run_chapter("05_race.py", tmp_path, prepared_data_dir)
    table = (tmp_path / "05_race" / "results.md").read_text().splitlines()
    assert len(table) == 2 + 6                              # header, rule, six methods
    # every link of the post's ordering gets a verdict computed from the losses
    verdicts = re.findall(r"^(.+?)\s+(holds|does NOT hold)\s+\(([0-9.]+) vs ([0-9.]+)", out, re.M)
    assert len(verdicts) == 4
    for link, verdict, a, b in verdicts[:3]:               # 'x < y' holds iff y - x > 0.01
        assert (verdict == "holds") == (float(b) - float(a) > 0.01), link
    logs = list((tmp_path / "05_race").glob("*/log.jsonl"))
    assert len(logs) == 6
    assert (tmp_path / "05_race" / "val_curves.png").stat().st_size > 10_000
    # the logs alone redraw the plot
    from smolgpt.cli import main
    assert main(["plot", *map(str, logs), "--out", str(tmp_path / "redrawn.png")]) == 0
    assert (tmp_path / "redrawn.png").stat().st_size > 10_000
