"""Chapter 09, exercise 2: bits per byte from nats per token, for both models of the long race.

A loss of L nats per token is L / ln 2 bits per token; spread over the bytes those tokens cover,
it is L / ln 2 * tokens / bytes bits per byte. The byte model reads one byte per token, so
its bits per byte are its nats per token over ln 2 (up to the document separators, ids that
stand for no byte of text); a
GPT-2 token of C4 covers several bytes, so the same nats per token means several times fewer
bits per byte. Every run of the committed record is checked against the evaluator's own figure.
"""

import smolgpt  # noqa: F401
import json
import math
from pathlib import Path

RECORD = Path(__file__).resolve().parents[1] / "results" / "09_long_race.jsonl"
runs = [json.loads(line) for line in RECORD.read_text().splitlines() if line.strip()]


def predicted(final):
    """Bits per byte from a run's final nats per token and the tokens and bytes it scored."""
    return final["loss"] / math.log(2) * final["tokens"] / final["bytes"]


worst = max(abs(predicted(r["final"]) - r["final"]["bits_per_byte"]) for r in runs)
print(f"{len(runs)} recorded runs: predicted minus recorded bits per byte, at most {worst:.1e}")
assert worst < 1e-9
for tokenizer in ("bytes", "gpt2"):
    r = next(r for r in runs if r["config"]["gpt"]["tokenizer"] == tokenizer)["final"]
    per_token = r["bytes"] / r["tokens"]
    print(f"{tokenizer:<5}: {r['loss']:.3f} nats per token = {r['loss'] / math.log(2):.3f} bits "
          f"per token, {per_token:.2f} bytes per token -> {predicted(r):.3f} bits per byte")
    assert (0.95 < per_token < 1.05) if tokenizer == "bytes" else (3 < per_token < 6)
