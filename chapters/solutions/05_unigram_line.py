"""Chapter 05, exercise 2: the unigram line on text you can count by hand.

The unigram line is the held-out loss of predicting every token from its training frequency,
with add-one smoothing: p(v) = (count(v) + 1) / (N + V). Two predictions: when every token of a
V-word vocabulary is equally frequent, the line is ln V (the uniform guess); when the training
text repeats one token, that token's cost is small and every other token's is about ln(N + V).
"""

import smolgpt  # noqa: F401
import math

import numpy as np

from smolgpt.experiments.reference import unigram_loss

V = 10
uniform = np.tile(np.arange(V), 100)                     # every token 100 times
line = unigram_loss(uniform, uniform, V)
print(f"all {V} tokens equally frequent: unigram line {line:.6f}, ln V = {math.log(V):.6f}")
assert abs(line - math.log(V)) < 1e-12

train = np.zeros(1000, dtype=np.int64)                   # one token, 1000 times
val = np.array([0, 0, 3])                                # the first token is not scored
line = unigram_loss(train, val, V)
expected = (-math.log(1001 / 1010) - math.log(1 / 1010)) / 2
print(f"training text of one repeated token: {line:.4f} (by hand {expected:.4f})")
assert abs(line - expected) < 1e-12
