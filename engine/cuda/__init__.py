"""The CUDA backend: the same layers, losses and optimizers, as ``numba.cuda`` kernels.

Every array of a run — weights, gradients, optimizer slots, activations — lives in
GPU memory.  Per batch, the data goes to the device once (`to_device`); what comes
back is the loss (one number), the predictions the metric needs, and, when the
model is saved, the weights (`to_host`).

Each module mirrors its CPU twin in `engine.layers`: the CUDA layer class is a
subclass of the CPU class (same constructor, so the same ``rng`` calls and the
same initial weights for a seed; same ``params``/``grads``/``state`` keys and
shapes), with forward and backward written as kernels.  The CPU kernels loop
over the batch; a CUDA kernel is the body of such a loop for *one* output cell,
run by one GPU thread per cell.

`load_backend()` is the only entry, named in `nnrun.engine.backend.BACKEND_LOADERS`:
`require()` imports ``numba.cuda`` and checks for a device, turning every way that
can fail into `BackendUnavailable` with one sentence, and only then are the kernels'
modules imported.
Tests run the kernels without a GPU under Numba's simulator
(``NUMBA_ENABLE_CUDASIM=1``, set before ``numba.cuda`` is first imported).
"""
from __future__ import annotations

import numpy as np

from nnrun.engine.backend import Backend, BackendUnavailable


def load_backend() -> Backend:
    """The CUDA `Backend`, once `require` has found a usable GPU (`get_backend("cuda")` calls this)."""
    require()
    from .backend import CUDA

    return CUDA


def require():
    """The ``numba.cuda`` module, ready to launch kernels; `BackendUnavailable` if it cannot be."""
    # numba-cuda 0.30 still calls np.row_stack, which NumPy 2.5 removed (np.vstack is the same function).
    if not hasattr(np, "row_stack"):
        np.row_stack = np.vstack
    try:
        from numba import cuda
    except Exception as error:  # a broken or partial install fails in many ways; all mean "no CUDA here"
        raise BackendUnavailable(f"numba's CUDA support failed to load ({type(error).__name__}: {error})") from None
    try:
        available = cuda.is_available()
    except Exception as error:
        raise BackendUnavailable(f"the CUDA driver could not be queried ({type(error).__name__}: {error})") from None
    if not available:
        raise BackendUnavailable("no CUDA GPU is available here (no NVIDIA driver or device was found)")
    return cuda
