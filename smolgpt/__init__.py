"""smolgpt: a GPT-2 in NumPy with hand-written backward passes, trained through few parameters.

One setting is made here, on import, because it must come before NumPy loads its BLAS.

OpenBLAS (the BLAS NumPy ships with) keeps its worker threads spinning for 2^28 CPU cycles,
about 0.1 s, after every matrix product, in case another follows at once. smolgpt runs its
elementwise passes (the head's softmax, GELU, attention's heads) on threads of its own between
products (`layers.on_row_blocks`), and on a 2-core machine the spinning BLAS thread takes the
core they need. OpenBLAS reads OPENBLAS_THREAD_TIMEOUT=n (spin 2^n cycles, n from 4 to 30) once,
when it is loaded; 4, the smallest, makes its threads sleep as soon as a product is done.
Measured on a 2-core machine, `tiny`'s forward+backward went from 770-890 ms to 710-790 ms and
GPT-2 small's from 6.9-7.1 s to 5.9-6.2 s (interleaved runs, float32 matmul rate 180-200 GFLOP/s).

A value the user has set is kept. If NumPy was imported before smolgpt, OpenBLAS has already
read the variable and this does nothing; `BLAS_THREAD_TIMEOUT` records which case this process
is in, and `smolgpt bench` prints it. Import smolgpt first to have the setting.
"""

import os as _os
import sys as _sys

BLAS_SPIN_VAR = "OPENBLAS_THREAD_TIMEOUT"
BLAS_SPIN_DEFAULT = "4"

if "numpy" not in _sys.modules:
    _os.environ.setdefault(BLAS_SPIN_VAR, BLAS_SPIN_DEFAULT)
# What OpenBLAS reads (or read) in this process: None = its own default, 2^28 cycles.
BLAS_THREAD_TIMEOUT = _os.environ.get(BLAS_SPIN_VAR) or None
