"""What a data set is, the one error type of this package, and labels for each loss.

Label rules (the engine maps the spec's loss onto these with `labels_for_loss`):

* ``task == "classification"``: ``y`` is int64 class indices, shape ``(N,)``,
  ``0 <= y < num_classes``.  MNIST, Fashion-MNIST, ``spiral``, IDX directories
  and ``.npz`` files with integer ``y``.
* ``task == "binary"``: ``y`` is float32 0/1, shape ``(N, 1)``, ``num_classes == 2``
  — what a 1-unit sigmoid with ``loss bce`` wants.  The generated two-class sets
  ``xor``, ``xo`` and ``circles``.
* ``task == "regression"``: ``y`` is float32 targets, ``num_classes == 0``.
  ``.npz`` files with float ``y``.

``x`` is always float32, channels-last ``(N, *input_shape)``; 8-bit images are
scaled to [0, 1].
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from nnrun.errors import RunError

Task = Literal["classification", "binary", "regression"]


class DataError(RunError):
    """A data set that cannot be found, read or used: what went wrong, and how to fix it.

    ``render()`` gives the text the CLI prints (then it exits with status 2)::

        error: mnist not found. Looked in:
          …
        hint: set NNRUN_DATA=DIR (with DIR/mnist/…), or run `nnrun data fetch mnist` once online
    """

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message, hint, status=2)

    def render(self) -> str:
        text = f"error: {self.message}"
        if self.hint:
            text += f"\nhint: {self.hint}"
        return text

    def __str__(self) -> str:
        return self.render()


@dataclass(frozen=True, eq=False)
class Dataset:
    """A train split and a test split, and what their labels mean."""

    name: str  # "mnist", "xo", or the path's file name
    x_train: np.ndarray  # (N, *input_shape) float32
    y_train: np.ndarray  # see the label rules in the module docstring
    x_test: np.ndarray
    y_test: np.ndarray
    task: Task
    num_classes: int  # 0 for regression
    class_names: list[str]  # one per class: ["0", …, "9"], ["X", "O"], []
    input_shape: tuple[int, ...]  # one sample, channels-last: (28, 28, 1), (2,)
    source: str  # the directory or file it was read from, or "generated"


def class_indices(y: np.ndarray) -> np.ndarray:
    """Int64 class indices ``(N,)`` from either label form (indices, or binary 0/1 ``(N, 1)``)."""
    return np.asarray(y).reshape(len(y)).astype(np.int64)


def labels_for_loss(y: np.ndarray, loss: str, num_classes: int, *, units: int | None = None) -> np.ndarray:
    """The targets ``loss`` wants, from a data set's labels, so any spec works with any set.

    ``units`` is the width of the network's output (default: 1 for two classes,
    else ``num_classes``).

    ====================  ==============================  =========================
    loss                  classes (num_classes >= 2)      regression (num_classes 0)
    ====================  ==============================  =========================
    ``cce``               int64 indices ``(N,)``          DataError
    ``bce``               float32 0/1 ``(N, 1)`` when     DataError
                          units == 1, else one-hot
    ``mse``, ``mae``      like ``bce``                    float32 ``y`` as given
    ====================  ==============================  =========================
    """
    if loss not in ("cce", "bce", "mse", "mae"):
        raise DataError(f"unknown loss '{loss}'", hint="the losses are cce, bce, mse and mae")
    if num_classes == 0:
        if loss in ("cce", "bce"):
            raise DataError(
                f"loss {loss} needs class labels, but this data set's targets are numbers (regression)",
                hint="use loss mse or mae",
            )
        y = np.asarray(y, dtype=np.float32)
        return y.reshape(len(y), -1)
    indices = class_indices(y)
    if loss == "cce":
        return indices
    if units is None:
        units = 1 if num_classes == 2 else num_classes
    if units == 1 and num_classes == 2:
        return indices.astype(np.float32).reshape(-1, 1)
    if units != num_classes:
        raise DataError(
            f"the network ends in {units} unit{'s' if units != 1 else ''} but the data has {num_classes} classes",
            hint=f"end with `dense {num_classes} softmax`" + (" or `dense 1 sigmoid`" if num_classes == 2 else ""),
        )
    one_hot = np.zeros((len(indices), num_classes), dtype=np.float32)
    one_hot[np.arange(len(indices)), indices] = 1.0
    return one_hot
