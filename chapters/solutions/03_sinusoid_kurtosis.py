"""Chapter 03, exercise 2: why FFT-Fastfood's columns have kurtosis 1.5 instead of 3.

A column of FFT-Fastfood is a sinusoid whose entries have been permuted: permuting does not
change the histogram, so its kurtosis is the sinusoid's. For x = cos(theta) with theta uniform,
E[x^2] = 1/2 and E[x^4] = 3/8, so the kurtosis E[x^4] / E[x^2]^2 = (3/8) / (1/4) = 1.5. A
Gaussian has 3: its tails are heavier. The sampled values over whole periods give exactly 1.5.
"""

import smolgpt  # noqa: F401
import numpy as np

from smolgpt.transforms import FFTFastfood

L = 4096
x = np.cos(2 * np.pi * 5 * np.arange(L) / L)           # 5 whole periods
kurt = np.mean(x ** 4) / np.mean(x ** 2) ** 2
print(f"kurtosis of a sampled sinusoid: {kurt:.6f} (Gaussian: 3)")
assert abs(kurt - 1.5) < 1e-12

col = FFTFastfood(L, 8, seed=0).dense()[:, 3]
k_col = np.mean((col - col.mean()) ** 4) / np.var(col) ** 2
print(f"kurtosis of one FFT-Fastfood column: {k_col:.4f}")
assert abs(k_col - 1.5) < 0.05
