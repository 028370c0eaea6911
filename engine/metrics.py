"""Metrics, as *sums over the batch* so that batches of any size add up exactly;
divide by the number of samples for the mean.

    accuracy (classification):  [argmax_j ŷ_nj = label_n]
    accuracy (binary, sigmoid):  mean over the outputs of [ (ŷ > 0.5) = y ]   (Keras's binary_accuracy)
    MBE (regression):           mean over the outputs of (ŷ − y)    — mean bias error: the sign
                                says whether the model over- or under-estimates on average

Per-batch NumPy; no per-sample Python work.
"""
from __future__ import annotations

import numpy as np


def correct(pred: np.ndarray, labels: np.ndarray) -> float:
    """How many rows of ``pred`` (B, C) have their largest value at the label (B,)."""
    pred2 = pred.reshape(-1, pred.shape[-1])
    return float(np.count_nonzero(pred2.argmax(axis=1) == np.asarray(labels).reshape(-1)))


def binary_correct(pred: np.ndarray, targets: np.ndarray) -> float:
    """Σ over samples of the fraction of sigmoid outputs on the right side of 0.5."""
    rows = pred.shape[0]
    hits = (pred.reshape(rows, -1) > 0.5) == (np.asarray(targets).reshape(rows, -1) > 0.5)
    return float(hits.mean(axis=1).sum())


def bias_sum(pred: np.ndarray, targets: np.ndarray) -> float:
    """Σ over samples of mean(ŷ − y) over the outputs (MBE × batch size)."""
    rows = pred.shape[0]
    diff = pred.reshape(rows, -1).astype(np.float64) - np.asarray(targets, dtype=np.float64).reshape(rows, -1)
    return float(diff.mean(axis=1).sum())


def one_hot_correct(pred: np.ndarray, targets: np.ndarray) -> float:
    """How many rows of ``pred`` (B, C) have their largest value where the one-hot target's 1 is
    (a classifier trained with mse or mae)."""
    rows = pred.shape[0]
    return float(np.count_nonzero(pred.reshape(rows, -1).argmax(axis=1) ==
                                  np.asarray(targets).reshape(rows, -1).argmax(axis=1)))


# network.task → (metric name in evaluate()'s dict, its batch sum)
BY_TASK = {
    "classification": ("accuracy", correct),
    "binary": ("accuracy", binary_correct),
    "regression": ("mbe", bias_sum),
}
# the same for a classifier trained with a regression loss (mse/mae on one-hot or 0/1 targets)
ONE_HOT = {"classification": ("accuracy", one_hot_correct), "binary": ("accuracy", binary_correct)}
