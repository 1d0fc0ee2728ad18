"""Chapter 09, exercise 1: a link of the long race, and a racer's share of the gain, recomputed
by hand from the committed record of its runs.

The byte model's table (chapters/results/09_long_race.md) gives each racer's tuned rate. The
runs of a racer are the record's lines with its label, that rate and the full budget; seed s of
two racers saw the same batches, so their difference is taken seed by seed. LoRA - full is the
first link of the post's ordering; the share of full training's gain LoRA keeps is
(L_embeddings - L_LoRA) / (L_embeddings - L_full), on the seeds' means.
"""

import smolgpt  # noqa: F401
import json
from pathlib import Path

import numpy as np

from smolgpt.companions.ch09_long_race import MODELS, RACERS
from smolgpt.experiments.stats import fmt, mean_se, paired_interval

RESULTS = Path(__file__).resolve().parents[1] / "results"
record = [json.loads(line) for line in (RESULTS / "09_long_race.jsonl").read_text().splitlines()
          if line.strip()]
table = (RESULTS / "09_long_race.md").read_text().split("### ")[1]       # the byte model's part
assert table.startswith("bytes"), "the table's first section is the byte model's"
rows = {cells[0]: cells for line in table.splitlines() if line.startswith("| ")
        for cells in [[c.strip() for c in line.strip("|").split("|")]]}


def bits_per_byte(racer):
    """{seed: final held-out bits per byte} of a racer's full-budget runs at its tuned rate."""
    field, value = rows[racer][1].split(" (")[0].split(" = ")
    return {r["seed"]: r["final"]["bits_per_byte"] for r in record
            if r["label"] == RACERS[racer].label() and r["step"] == MODELS["bytes"][1]
            and r["config"]["gpt"]["tokenizer"] == "bytes"
            and abs(r["config"][field] / float(value) - 1) < 1e-2}


runs = {racer: bits_per_byte(racer) for racer in ("full", "LoRA", "embeddings only")}
seeds = sorted(set.intersection(*(set(r) for r in runs.values())))
full, lora, emb = ([runs[racer][s] for s in seeds] for racer in ("full", "LoRA", "embeddings only"))
iv = paired_interval(full, lora)                                         # LoRA - full, per seed
kept = (np.mean(emb) - np.mean(lora)) / (np.mean(emb) - np.mean(full))
print(f"byte model, seeds {seeds}: full {fmt(*mean_se(full))}, LoRA {fmt(*mean_se(lora))}, "
      f"embeddings only {fmt(*mean_se(emb))} bits per byte")
print(f"LoRA - full = {iv['diff']:+.4f} bits per byte, 95% interval [{iv['lo']:+.4f}, "
      f"{iv['hi']:+.4f}] over {iv['n']} paired seeds")
print(f"LoRA keeps {kept:.0%} of full training's gain over embeddings only")
assert len(seeds) >= 2
for racer, values in (("full", full), ("LoRA", lora), ("embeddings only", emb)):
    assert rows[racer][3] == fmt(*mean_se(values)), racer      # the same runs as the table's
assert iv["lo"] > 0                          # resolved: full training is lower, the link holds
assert 0 < kept < 1                          # LoRA gains over the embeddings, less than full
