"""The training views, drawn into a plain-text console."""
from __future__ import annotations

from io import StringIO

import numpy as np
from rich.console import Console

from nnrun.views import confusion_matrix, filter_picture, render_confusion


def console() -> Console:
    return Console(file=StringIO(), width=100, color_system=None)


def test_filter_picture_spans_the_shades_from_lowest_to_highest_weight():
    assert filter_picture(np.array([[-1.0, 0.0], [0.5, 1.0]])) == ["  ▒▒", "▓▓██"]


def test_confusion_matrix_counts_and_recall():
    true = np.array([0, 0, 1, 1, 1, 2])
    predicted = np.array([0, 1, 1, 1, 2, 2])
    matrix = confusion_matrix(true, predicted, 3)
    assert matrix.tolist() == [[1, 1, 0], [0, 2, 1], [0, 0, 1]]
    view = console()
    render_confusion(view, matrix, ["a", "b", "c"])
    text = view.file.getvalue()
    assert "50.0%" in text and "66.7%" in text and "100.0%" in text
