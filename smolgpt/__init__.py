"""smolgpt: a GPT-2 in NumPy with hand-written backward passes, trained through few parameters.

Importing smolgpt makes two settings for the process, here, because the first must come before
NumPy loads its BLAS. `smolgpt bench --vs-torch` on a 2-core machine (float32 matmul rate
186-205 GFLOP/s) measured `tiny`'s forward+backward (batch 16) at 58% of the matmul rate without
them and 68-71% with them, GPT-2 small (1 x 1024) at 125 tokens/s without and 206-214 with.
Neither changes a single number smolgpt computes (tests/test_bench.py checks two steps).

1. BLAS threads sleep when a product is done. OpenBLAS (the BLAS NumPy ships with) keeps its
   worker threads spinning for 2^28 CPU cycles, about 0.1 s, after every matrix product, in case
   another follows at once. smolgpt runs its elementwise passes (the head's softmax, GELU,
   attention's heads) on threads of its own between products (`layers.on_row_blocks`), and on a
   2-core machine the spinning thread takes the core they need. OpenBLAS reads
   OPENBLAS_THREAD_TIMEOUT=n (spin 2^n cycles, n from 4 to 30) once, when it is loaded; 4, the
   smallest, lets its threads sleep at once. Alone, it took `tiny` from 770-890 to 710-790 ms.
   If NumPy was imported before smolgpt, OpenBLAS has read the variable already and this does
   nothing: import smolgpt first. `BLAS_THREAD_TIMEOUT` records what OpenBLAS read.

2. Freed memory is kept for the next step (glibc only). A training step allocates and frees the
   same large arrays every time (the head's 200 MB logits chunk, activations, gradients). By
   default glibc gives each one over 32 MB its own fresh mapping and returns freed memory at the
   top of the heap to the operating system, so the next step takes it back one page fault at a
   time: ~20,000 faults per `tiny` step, ~200,000 per GPT-2 small step, each page zeroed again.
   Serving every allocation below 1 GB from the heap (M_MMAP_THRESHOLD) and never trimming it
   (M_TRIM_THRESHOLD = -1) ends that: under 200 faults per step, and on top of the first
   setting `tiny` went from ~830 to ~660 ms. The process's peak memory is unchanged (measured:
   546 and 2,391 MB either way), but it keeps that peak until it exits.
   Left alone if MALLOC_MMAP_THRESHOLD_, MALLOC_TRIM_THRESHOLD_ or GLIBC_TUNABLES is set: a
   user's own malloc settings win. `KEEPS_FREED_MEMORY` records whether it was made.

SMOLGPT_PROCESS_DEFAULTS=1 in the environment makes neither setting. `smolgpt bench --vs-torch`
starts its PyTorch worker so: PyTorch is timed as its users run it.
"""

import os as _os
import sys as _sys

BLAS_SPIN_VAR = "OPENBLAS_THREAD_TIMEOUT"
BLAS_SPIN_DEFAULT = "4"
MALLOC_VARS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES")
DEFAULTS_VAR = "SMOLGPT_PROCESS_DEFAULTS"
PROCESS_DEFAULTS = _os.environ.get(DEFAULTS_VAR) == "1"    # True: neither setting is made

if "numpy" not in _sys.modules and not PROCESS_DEFAULTS:
    _os.environ.setdefault(BLAS_SPIN_VAR, BLAS_SPIN_DEFAULT)
# What OpenBLAS reads (or read) in this process: None = its own default, 2^28 cycles.
BLAS_THREAD_TIMEOUT = _os.environ.get(BLAS_SPIN_VAR) or None


def _keep_freed_memory() -> bool:
    """Setting 2 of the module docstring; True if glibc took it."""
    if PROCESS_DEFAULTS or any(v in _os.environ for v in MALLOC_VARS):
        return False
    try:
        if not _os.confstr("CS_GNU_LIBC_VERSION").startswith("glibc"):
            return False
    except (AttributeError, ValueError, OSError):       # not glibc (macOS, Windows, musl)
        return False
    import ctypes
    mallopt = ctypes.CDLL(None).mallopt
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3           # glibc's <malloc.h>
    return bool(mallopt(M_MMAP_THRESHOLD, 1 << 30)) and bool(mallopt(M_TRIM_THRESHOLD, -1))


KEEPS_FREED_MEMORY = _keep_freed_memory()
