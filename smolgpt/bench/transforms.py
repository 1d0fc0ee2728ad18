"""How fast are the random projections? Times P z and P^T g against the cost of a memory copy.

Two targets (times are machine-dependent, so they are measured here, never asserted in tests):
  1. Fastfood's matvec and rmatvec at D = 2^24, d = 1024 each take at most 20x the time of
     copying D float32 values (np.copyto into a preallocated array), measured in the same run.
  2. Fastfood is at least 100x faster than the regenerated DenseGaussian at D = 2^20, d = 1000.
FFTFastfood is timed at the target-1 size for comparison.

    from smolgpt.bench import transforms
    print(transforms.format_report(transforms.run()))

Each time is the median of `repeats` rounds (`timing.rounds`: within a round the copy and the
products run in turn, so a ratio compares times taken under the same load). The DenseGaussian
products take ~10 s each on a small CPU and run once.
"""

from __future__ import annotations

import time

import numpy as np

from ..transforms import DenseGaussian, Fastfood, FFTFastfood
from .timing import median, rounds

COPY_RATIO_TARGET = 20.0    # Fastfood product / copy of D float32, at most
DENSE_SPEEDUP_TARGET = 100.0  # DenseGaussian product / Fastfood product, at least


def _median_times(fns, repeats):
    """Median seconds of each fn() over `repeats` interleaved rounds (no warm-up call: the
    DenseGaussian products are too slow to run twice for nothing)."""
    times = rounds(dict(enumerate(fns)), repeats, warmup=False)
    return [median(times[i]) for i in range(len(fns))]


def _products(P, rng):
    """[P z, P^T g] as two argument-free float32 calls."""
    z = rng.standard_normal(P.d).astype(np.float32)
    g = rng.standard_normal(P.D).astype(np.float32)
    return [lambda: P.matvec(z), lambda: P.rmatvec(g)]


def run(D_ff=2**24, d_ff=1024, D_dense=2**20, d_dense=1000, repeats=3, seed=0):
    """Measure the two targets; returns a dict of seconds, ratios and pass/fail flags."""
    rng = np.random.default_rng(seed)
    r = {"D_ff": D_ff, "d_ff": d_ff, "D_dense": D_dense, "d_dense": d_dense, "repeats": repeats}

    # Target 1: Fastfood (and FFTFastfood) against a copy of D float32 values.
    src = rng.standard_normal(D_ff).astype(np.float32)
    dst = np.empty_like(src)
    np.copyto(dst, src)                                        # touch the pages once
    names = ("fastfood", "fft_fastfood")
    fns = [lambda: np.copyto(dst, src)]
    for name, cls in zip(names, (Fastfood, FFTFastfood)):
        t0 = time.perf_counter()
        P = cls(D_ff, d_ff, seed)
        r[f"{name}_build_s"] = time.perf_counter() - t0
        # ... and P z written into a preallocated output: no fresh pages to fault in.
        z, out = rng.standard_normal(d_ff).astype(np.float32), np.empty(D_ff, np.float32)
        fns += _products(P, rng) + [lambda P=P, z=z, out=out: P.matvec(z, out=out)]
    times = _median_times(fns, repeats)
    r["copy_s"] = times[0]
    for i, name in enumerate(names):
        for j, what in enumerate(("matvec", "rmatvec", "matvec_out")):
            r[f"{name}_{what}_s"] = times[1 + 3 * i + j]
            r[f"{name}_{what}_copies"] = times[1 + 3 * i + j] / r["copy_s"]
    fns.clear()
    src = dst = None                                           # free 128 MB before the next part
    worst = max(r["fastfood_matvec_copies"], r["fastfood_rmatvec_copies"])
    r["target1_ok"] = worst <= COPY_RATIO_TARGET

    # Target 2: Fastfood against the dense Gaussian regenerated from its seed.
    mv, rmv = _median_times(_products(Fastfood(D_dense, d_dense, seed), rng), repeats)
    r["small_fastfood_matvec_s"], r["small_fastfood_rmatvec_s"] = mv, rmv
    dmv, drmv = _median_times(_products(DenseGaussian(D_dense, d_dense, seed), rng), 1)
    r["dense_matvec_s"], r["dense_rmatvec_s"] = dmv, drmv
    r["dense_over_fastfood_matvec"] = dmv / mv
    r["dense_over_fastfood_rmatvec"] = drmv / rmv
    worst = min(r["dense_over_fastfood_matvec"], r["dense_over_fastfood_rmatvec"])
    r["target2_ok"] = worst >= DENSE_SPEEDUP_TARGET
    return r


def format_report(result):
    """The dict from run() as a short plain-text table."""
    r = result
    ok = {True: "ok", False: "MISSED"}
    lines = [
        f"copy of D={r['D_ff']:,} float32 values: {r['copy_s'] * 1e3:.1f} ms",
        f"{'D=' + format(r['D_ff'], ',') + ', d=' + str(r['d_ff']):<24}{'build':>8}{'P z':>10}"
        f"{'P^T g':>10}{'P z/copy':>10}{'P^T g/copy':>12}{'P z, out=':>12}",
    ]
    for name, label in (("fastfood", "Fastfood"), ("fft_fastfood", "FFTFastfood")):
        lines.append(
            f"  {label:<22}{r[name + '_build_s']:>7.2f}s{r[name + '_matvec_s'] * 1e3:>8.1f}ms"
            f"{r[name + '_rmatvec_s'] * 1e3:>8.1f}ms{r[name + '_matvec_copies']:>9.1f}x"
            f"{r[name + '_rmatvec_copies']:>11.1f}x{r[name + '_matvec_out_copies']:>11.1f}x")
    lines += [
        f"  target: Fastfood <= {COPY_RATIO_TARGET:g} copies -> {ok[r['target1_ok']]}",
        f"D={r['D_dense']:,}, d={r['d_dense']}:{'P z':>14}{'P^T g':>12}",
        f"  {'DenseGaussian (1 run)':<24}{r['dense_matvec_s']:>10.2f}s"
        f" {r['dense_rmatvec_s']:>10.2f}s",
        f"  {'Fastfood':<24}{r['small_fastfood_matvec_s'] * 1e3:>9.2f}ms"
        f"{r['small_fastfood_rmatvec_s'] * 1e3:>10.2f}ms",
        f"  {'Dense / Fastfood':<24}{r['dense_over_fastfood_matvec']:>10.0f}x"
        f"{r['dense_over_fastfood_rmatvec']:>11.0f}x",
        f"  target: Fastfood >= {DENSE_SPEEDUP_TARGET:g}x faster -> {ok[r['target2_ok']]}",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(format_report(run()))
