"""The data sets' public names, for the rest of nnrun: ``from nnrun.datasets import load_dataset``.

The code lives in the package `nnrun.data` (one module per concern); see its
docstring for the label rules and the lookup order of named sets.
"""
from .data import NAMED, DataError, Dataset, Progress, labels_for_loss, load_dataset
from .data.idx import read_idx

__all__ = ["NAMED", "DataError", "Dataset", "Progress", "labels_for_loss", "load_dataset", "read_idx"]
