"""The engine's thread policy, set in one place.

Two kinds of parallel work run in a training step, each on its own pool:

* the engine's kernels (convolutions, pooling blocks, im2col): numba ``prange``
  loops over the batch cut into one range per thread (`parts`), on numba's
  OpenMP pool — starting one costs ~3 µs;
* the matrix products (dense layers, im2col products): NumPy's OpenBLAS, on its
  own threads, called from the main thread only.

Both pools keep their threads spinning only briefly after their work
(`nnrun.spin`), so that the other pool, which runs next, has the processors.
Measured on the 2-core machine (PERF.md), median training step, LeNet-5 at batch 64,
first CNN at 128, MLP at 128:

    policy                                              LeNet-5   first CNN    MLP
    kernels on Python threads, products split by rows    8.0 ms    11.7 ms    2.4 ms
    kernels in prange, products on one BLAS thread       5.6 ms    10.0 ms    2.4 ms
    kernels in prange, products on OpenBLAS's threads    5.7 ms     9.2 ms    1.5 ms
      (both pools spinning briefly: this policy)

The first row was this module's earlier policy: handing a range to a Python thread
took 70–140 µs (waking a sleeping thread), 45× a ``prange`` start.  And OpenBLAS's
threads with their default spin (0.1 s) slowed the kernels around the products by
a third; with `nnrun.spin` they no longer do.  Two calls into a multi-threaded
OpenBLAS at once, from two threads, collapse (a convolution backward pass 1.9 s
instead of 60 ms): so products are never made inside a ``prange``.

On a machine shared with other busy processes, spinning threads of any pool wait
for siblings that are not running; ``--threads 1`` is the remedy there.

`use_threads` sets all of this, once per run (``nnrun … --threads N`` and
bench/bench.py call it; so does the first `Network`, with every thread numba offers,
when nobody has).  It also sets the allocator policy (`keep_freed_memory`), the one
other process-wide setting that decides how fast every step runs.
"""
from __future__ import annotations

import ctypes
import ctypes.util

import numba

_threads = 0  # 0: use_threads has not been called yet


def keep_freed_memory() -> bool:
    """Ask glibc's allocator to keep freed memory for reuse instead of returning it to the
    system; return whether it could be asked (not on other C libraries).

    A training step allocates its activations and gradients afresh (a few MB each step).
    By default glibc serves every block over 128 KB with a fresh ``mmap`` and unmaps it on
    free, so each step the kernel hands out, and zero-fills, the same pages again: a page
    fault per 4 KB touched.  Raising the mmap threshold to its maximum (32 MB) and the
    trim threshold keeps those blocks in the heap, where the next step reuses them — LeNet-5
    at batch 64 trained ≈ 10 % faster, measured in alternating processes (PERF.md reports
    the same effect on PyTorch).  Blocks over 32 MB (big im2col buffers) still come from
    mmap; the layers keep those between steps themselves."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's <malloc.h>
    return bool(mallopt(M_MMAP_THRESHOLD, 32 * 2**20)) and bool(mallopt(M_TRIM_THRESHOLD, 256 * 2**20))


def use_threads(threads: int | None = None) -> int:
    """Run the engine on ``threads`` threads (default: every thread numba offers): numba's
    kernels and OpenBLAS's products alike; return the count.  Also sets the allocator
    policy (`keep_freed_memory`)."""
    global _threads
    threads = numba.config.NUMBA_NUM_THREADS if threads is None else int(threads)
    if threads < 1:
        raise ValueError(f"threads must be at least 1, not {threads}")
    keep_freed_memory()
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    from threadpoolctl import ThreadpoolController

    ThreadpoolController().select(user_api="blas").limit(limits=threads)
    _threads = threads
    return threads


def threads() -> int:
    """The engine's thread count (sets the default policy on first use)."""
    return _threads or use_threads()


def parts(batch: int) -> int:
    """How many ranges a kernel cuts a batch into: one per thread, at most one per sample."""
    return max(1, min(threads(), batch))
