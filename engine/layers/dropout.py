"""Dropout, inverted: the scaling happens at train time, so inference is the identity.

    training:   y = x ⊙ M,   M_i = [u_i ≥ P] / (1 − P),  u_i ~ U(0, 1)
                (each unit kept with probability 1 − P; E[y] = x)
    inference:  y = x

    ∂L/∂x = ∂L/∂y ⊙ M

A fresh mask per batch, drawn from the layer's generator (seeded runs repeat).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from nnrun.dsl.spec import LayerInfo

from .base import Layer

# ------------------------------------------------------------------- kernels (cpu)


@njit(cache=True)
def dropout_forward(x, uniform, rate, y, mask):  # all flat (N,)
    scale = 1.0 / (1.0 - rate)
    for i in range(x.size):
        keep = scale if uniform[i] >= rate else 0.0
        mask[i] = keep
        y[i] = x[i] * keep


@njit(cache=True)
def dropout_backward(dy, mask, dx):  # all flat (N,)
    for i in range(dy.size):
        dx[i] = dy[i] * mask[i]


# ------------------------------------------------------ plain-NumPy reference (oracle)


def dropout_forward_ref(x, uniform, rate):
    """(y, mask)"""
    mask = ((uniform >= rate) / (1 - rate)).astype(x.dtype)
    return x * mask, mask


def dropout_backward_ref(dy, mask):
    return dy * mask


# ------------------------------------------------------------------------ the layer


class Dropout(Layer):
    """``dropout P``: no parameters."""

    def __init__(self, info: LayerInfo, rng: np.random.Generator, *, reference: bool = False) -> None:
        super().__init__(info, rng)
        self.reference = reference
        self.rate = float(info.layer.rate)
        if not 0.0 <= self.rate < 1.0:
            raise ValueError(f"{self.name}: dropout rate must be in [0, 1), got {self.rate}")
        self.mask: np.ndarray | None = None  # flat (N,), of the last training batch

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        if not training or self.rate == 0.0:
            self.mask = None
            return x
        uniform = self.rng.random(x.size, dtype=np.float32).astype(x.dtype, copy=False)
        flat_x = x.reshape(-1)
        if self.reference:
            y, self.mask = dropout_forward_ref(flat_x, uniform, self.rate)
        else:
            y, self.mask = np.empty_like(flat_x), np.empty_like(flat_x)
            dropout_forward(flat_x, uniform, self.rate, y, self.mask)
        return y.reshape(x.shape)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        if self.mask is None:
            return dy
        flat_dy = dy.reshape(-1)
        if self.reference:
            dx = dropout_backward_ref(flat_dy, self.mask)
        else:
            dx = np.empty_like(flat_dy)
            dropout_backward(flat_dy, self.mask, dx)
        return dx.reshape(dy.shape)
