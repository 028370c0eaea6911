"""How long the engine's idle worker threads spin before they sleep — set before the
thread libraries load, so this module imports nothing.

Two pools share the processors in a training step (`nnrun.engine.threads`): numba's
(GNU OpenMP) for the engine's kernels and OpenBLAS's for the matrix products.  A
pool that has finished keeps its threads spinning for a while in case more work
comes — by default ~0.1 s for OpenBLAS (2^28 cycles), during which the other pool's
threads fight them for the two cores (the kernels of LeNet-5 ran 30 % slower).
Both libraries read a spin limit from the environment when they load:

* ``OPENBLAS_THREAD_TIMEOUT = 20``: 2^20 cycles, about a third of a millisecond —
  long enough that the products of one dense layer after another find OpenBLAS's
  threads awake, short enough that they are asleep through most of a convolution's
  kernels.  Measured, bench/bench.py ratios against PyTorch, mean of five runs each
  (2-core machine): 2^12 / 2^20 / 2^24 cycles — MLP training 1.20 / 1.53 / 1.5,
  MLP inference 0.93 / 1.04 / 1.0, first CNN 3.1 / 3.6 / 1.8, LeNet-5 1.42 / 1.44 / 0.6,
  three-conv 1.06 / 1.15 / 0.6, hand-signs 0.77 / 0.74 / 0.7 (the last within the noise);
* ``GOMP_SPINCOUNT = 20000``: tens of microseconds — long enough that the next
  kernel of the same step, a few microseconds later, finds the threads awake
  (3 µs to start a parallel loop, against ~100 µs to wake sleeping threads).

`set_spin_environment` is called first thing by `import nnrun`, which every import
of `nnrun.engine` and `nnrun.dsl` goes through; it never
overrides a value the user has set, and it has no effect on a library already
loaded (a program that imported NumPy before the engine keeps OpenBLAS's default).
"""
from __future__ import annotations

import os

SETTINGS = {"OPENBLAS_THREAD_TIMEOUT": "20", "GOMP_SPINCOUNT": "20000"}


def set_spin_environment(environ=os.environ):
    """Add `SETTINGS` to ``environ`` where they are not set already; return ``environ``."""
    for name, value in SETTINGS.items():
        environ.setdefault(name, value)
    return environ
