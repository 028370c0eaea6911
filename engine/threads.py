"""The engine's thread policy, set in one place: one owner of the processors at a time.

Two kinds of parallel work run in a training step: numba's ``prange`` loops
(its OpenMP pool) and matrix products (NumPy's OpenBLAS).  Left to themselves
both keep a pool of threads, and a pool that has just finished *spins* for a
while, waiting for more work, stealing the processor from whatever runs next;
OpenBLAS's threads also spin-wait for each other inside a product, which turns
into a time-slice wait whenever another process holds a core.  Measured on the
2-core machine (PERF.md), shared with other work (load 5–7), training samples/s,
best of two runs of each, SGD, 2 threads:

    network (batch)       BLAS 2 threads   this policy   everything on 1 thread
    MLP (128)                  4,138          43,420          63,082
    first CNN (128)               29           2,745           2,292
    LeNet-5 (64)                 437           1,498           1,349
    three-conv (100)             558           2,123           3,069
    hand-signs (32)               32              65              49
    LSTM T=30 F=28 H=64 (64)   1,461           2,910           3,081

    the MLP's products alone: OpenBLAS on 2 threads 14–23 GFLOP/s, on 1 thread
    42–52, rows split over 2 threads of 1-thread products 55–65.

OpenBLAS on 2 threads is the one choice that collapses under load (10–100×);
the policy below and one thread for everything trade places from run to run
under load.  (No idle machine was available for these figures; there the split
should use both cores as OpenBLAS's own threads do, without their spinning —
measure it with bench/bench.py.)

So the policy is:

* BLAS always runs on **one thread** per call: it never spins between calls and
  never waits on a descheduled sibling.
* numba's ``prange`` loops get the run's thread count (`numba.set_num_threads`).
* Big matrix products are parallel all the same: `matmul` splits the output
  rows into one block per thread and runs the blocks on a small pool of Python
  threads (NumPy releases the GIL inside a product).  A waiting Python thread
  sleeps; it does not spin.  Layers call ``matmul(a, b)`` instead of ``a @ b``
  for any product worth splitting.

One more run-wide setting lives here, because it is the same kind of thing — a
process-wide policy that decides how fast every step runs: `keep_freed_memory`.

`use_threads` sets all of this, once per run (``nnrun … --threads N`` and
bench/bench.py call it; so does the first `Network`, with every thread numba offers,
when nobody has).
"""
from __future__ import annotations

import ctypes
import ctypes.util
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np

#: Products smaller than this many multiply-adds run on the calling thread alone:
#: handing a block to another thread costs ~20–50 µs.
SPLIT_MACS = 500_000

_threads = 0  # 0: use_threads has not been called yet
_pool: ThreadPoolExecutor | None = None  # threads − 1 helpers; the caller computes one block itself


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
    """Run the engine on ``threads`` threads (default: every thread numba offers); return the count.
    Also sets the allocator policy (`keep_freed_memory`)."""
    global _threads, _pool
    keep_freed_memory()
    threads = numba.config.NUMBA_NUM_THREADS if threads is None else int(threads)
    if threads < 1:
        raise ValueError(f"threads must be at least 1, not {threads}")
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    from threadpoolctl import ThreadpoolController

    ThreadpoolController().select(user_api="blas").limit(limits=1)
    if threads != _threads:
        if _pool is not None:
            _pool.shutdown(wait=True)
        _pool = ThreadPoolExecutor(threads - 1, thread_name_prefix="nnrun-matmul") if threads > 1 else None
        _threads = threads
    return threads


def threads() -> int:
    """The engine's thread count (sets the default policy on first use)."""
    return _threads or use_threads()


def matmul(a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``out = a @ b`` for 2-D ``a (M, K)``, ``b (K, N)`` (views such as ``x.T`` are fine),
    the rows of ``out`` split into one block per thread when the product is big.

    A product with few rows and a long inner dimension (a weight gradient xᵀ·∂L/∂y
    summed over a whole batch of positions) is split along the inner dimension
    instead: each thread multiplies its share of the sum, and the partial products
    are added at the end, in a fixed order."""
    rows, inner = a.shape
    if out is None:
        out = np.empty((rows, b.shape[1]), dtype=np.result_type(a, b))
    parts = min(threads(), max(rows, inner))
    if parts == 1 or rows * inner * b.shape[1] < SPLIT_MACS:
        return np.matmul(a, b, out=out)
    if rows < 8 * parts <= inner:  # too few rows to share: split the sum
        bounds = [inner * part // parts for part in range(parts + 1)]
        partials = [np.empty_like(out) for _ in range(parts - 1)]
        pending = [_pool.submit(np.matmul, a[:, start:stop], b[start:stop], out=partial)
                   for start, stop, partial in zip(bounds[1:-1], bounds[2:], partials)]
        np.matmul(a[:, : bounds[1]], b[: bounds[1]], out=out)
        for block, partial in zip(pending, partials):
            block.result()
            out += partial
        return out
    bounds = [rows * part // parts for part in range(parts + 1)]
    pending = [_pool.submit(np.matmul, a[start:stop], b, out=out[start:stop])
               for start, stop in zip(bounds[1:-1], bounds[2:])]
    np.matmul(a[: bounds[1]], b, out=out[: bounds[1]])
    for block in pending:
        block.result()
    return out


def over_batch(kernel, batch: int, *args) -> None:
    """Run ``kernel(start, stop, part, *args)`` over the batch cut into one range per
    thread (``part`` = 0, 1, …), on the same Python threads as `matmul`.  The kernel must
    be ``@njit(nogil=True)`` (or the ranges run one after the other) and each part
    must write only its own samples or its own partial sums."""
    parts = min(threads(), batch)
    bounds = [batch * part // parts for part in range(parts + 1)]
    pending = [_pool.submit(kernel, start, stop, part + 1, *args)
               for part, (start, stop) in enumerate(zip(bounds[1:-1], bounds[2:]))]
    kernel(bounds[0], bounds[1], 0, *args)
    for block in pending:
        block.result()


def parts() -> int:
    """How many ranges `over_batch` cuts a batch of at least that many samples into."""
    return threads()
