"""Data sets: named (MNIST, Fashion-MNIST, generated ones) or your own files.

    from nnrun.data import load_dataset, labels_for_loss, DataError
    data = load_dataset("mnist")           # x float32 (N, 28, 28, 1), y int64 (N,)
    y = labels_for_loss(data.y_train, "cce", data.num_classes)

Modules: `dataset` (Dataset, DataError, the label rules), `idx` (the IDX
format), `npz`, `generated` (xor, xo, circles, spiral), `fetch` (mirrors,
sums, atomic download), `lookup` (where named sets are found, `load_dataset`).
"""
from .dataset import DataError, Dataset, labels_for_loss
from .fetch import Progress
from .lookup import NAMED, load_dataset

__all__ = ["DataError", "Dataset", "labels_for_loss", "load_dataset", "NAMED", "Progress"]
