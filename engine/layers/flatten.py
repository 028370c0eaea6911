"""Flatten: ``(B, d1, d2, …) → (B, d1·d2·…)``, channels-last order as in Keras.

    y = reshape(x)           ∂L/∂x = reshape(∂L/∂y) back to x's shape

No arithmetic, so no kernel: a reshape of a C-contiguous array is a view.
The ``flatten`` statement and the implicit flatten that `resolve` inserts
before a ``dense`` on an image (``Flatten(implicit=True)``) are this one class.
"""
from __future__ import annotations

import numpy as np

from nnrun.dsl.spec import LayerInfo

from .base import Layer


class Flatten(Layer):
    def __init__(self, info: LayerInfo, rng: np.random.Generator, *, reference: bool = False) -> None:
        super().__init__(info, rng)
        self.reference = reference  # the same code on every backend

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        return np.ascontiguousarray(x).reshape(x.shape[0], -1)  # (B, ∏ input_shape)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        return dy.reshape(dy.shape[0], *self.info.input_shape)  # (B, *input_shape)
