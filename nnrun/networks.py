"""Building a network to run: on which device, on how many threads, and what it reports.

Shared by the training run (`nnrun.training`) and the uses of a saved model
(`nnrun.use`).  The engine is imported inside the functions, so importing this
module loads no numba.
"""
from __future__ import annotations

import numpy as np

from nnrun.dsl.spec import Model, OptimizerSpec

from .errors import RunError

# A diverging network overflows float32; the training loop's finiteness check reports
# that once, in words, so NumPy's own warnings (with a source line) are kept off the terminal.
QUIET_FLOATS = dict(over="ignore", invalid="ignore", divide="ignore")


def make_network(model: Model, device: str, seed: int, optimizer: OptimizerSpec | None = None):
    """The engine's `Network` for ``model`` on ``device`` ("cpu", "cuda" or "auto":
    the GPU when there is one, else the processor)."""
    from nnrun.engine.backend import BackendUnavailable
    from nnrun.engine.network import Network

    backend = "cuda" if device == "auto" else device
    try:
        return Network(model, seed=seed, backend=backend, optimizer=optimizer)
    except BackendUnavailable as error:
        if device == "auto":
            return Network(model, seed=seed, backend="cpu", optimizer=optimizer)
        raise RunError(str(error), "run on the processor instead: --device cpu") from None


def set_threads(threads: int | None) -> None:
    """``--threads N``: the engine's thread policy (`nnrun.engine.threads`) on N threads;
    without it the network uses every thread numba offers."""
    if threads is None:
        return
    import numba

    from nnrun.engine.threads import use_threads

    if threads < 1:
        raise RunError(f"--threads must be at least 1, not {threads}")
    available = numba.config.NUMBA_NUM_THREADS
    if threads > available:
        raise RunError(f"--threads {threads} is more than the {available} this machine offers", f"use --threads {available}")
    use_threads(threads)


def metric_name(task: str) -> str:
    """What the second column measures: accuracy for classes, the mean bias error for numbers."""
    return "accuracy" if task in ("classification", "binary") else "mbe"


def predicted_classes(probabilities: np.ndarray) -> np.ndarray:
    """The class of each row: argmax, or probability ≥ 0.5 for one sigmoid output."""
    if probabilities.ndim == 2 and probabilities.shape[1] == 1:
        return (probabilities[:, 0] >= 0.5).astype(np.int64)
    return probabilities.argmax(axis=1)


def confusion_matrix(true: np.ndarray, predicted: np.ndarray, classes: int) -> np.ndarray:
    """(classes, classes) counts: rows are the true classes, columns the predicted ones."""
    matrix = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(matrix, (true.astype(np.int64), predicted.astype(np.int64)), 1)
    return matrix


def damaged_kernel_cache(error: BaseException) -> bool:
    """Whether ``error`` came from reading numba's on-disk cache of compiled kernels (a file
    truncated by a full disk or a killed process: EOFError, UnpicklingError …)."""
    traceback = error.__traceback__
    while traceback is not None:
        if traceback.tb_frame.f_code.co_filename.replace("\\", "/").endswith("numba/core/caching.py"):
            return True
        traceback = traceback.tb_next
    return False


def clear_kernel_cache() -> int:
    """Delete the cached compiled kernels of every engine module; return how many files.
    The next call of each kernel compiles it again (and caches it anew)."""
    import importlib
    import pkgutil
    import sys
    from pathlib import Path

    import nnrun.engine
    import nnrun.engine.layers

    for package in (nnrun.engine, nnrun.engine.layers):  # the modules not loaded yet have caches too
        for found in pkgutil.iter_modules(package.__path__, package.__name__ + "."):
            if not found.ispkg:
                importlib.import_module(found.name)
    folders = set()
    for name, module in list(sys.modules.items()):
        if not name.startswith("nnrun.engine"):
            continue
        for value in vars(module).values():
            cache = getattr(value, "_cache", None)
            folder = getattr(cache, "_cache_path", None)
            if isinstance(folder, str):
                folders.add(Path(folder))
    removed = 0
    for folder in folders:
        for file in [*folder.glob("*.nbi"), *folder.glob("*.nbc")]:
            try:
                file.unlink()
                removed += 1
            except OSError:
                pass
    return removed
