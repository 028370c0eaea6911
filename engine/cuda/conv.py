"""Convolution (1-D, 2-D, 3-D) on the GPU, as a matrix product on the im2col matrix.

The sum of `engine.layers.conv`,

    y[b, o, f] = bias[f] + Σm Σc x[b, o·S − P + m, c] · kernel[m, c, f],

is a matrix product once every window is laid out as a row: the im2col matrix

    cols[(b, o), (m, c)] = x[b, o·S − P + m, c]        (0 where the window is on the padding)

has one row per output position and one column per (kernel cell, channel), and the
Keras kernel (KD, KH, KW, C, F) *is* the matrix (KD·KH·KW·C, F) in memory, so

    y = cols · kernel + bias          ∂L/∂kernel = colsᵀ · ∂L/∂y          ∂L/∂cols = ∂L/∂y · kernelᵀ

and ∂L/∂x gathers ∂L/∂cols back: each input cell adds up the entries of the
windows it appeared in (`col2im_kernel`, one thread per input cell, no atomics).
Every rank is a volume (B, D, H, W, C), as on the CPU.
"""
from __future__ import annotations

import numpy as np
from numba import cuda, float32

from nnrun.engine.layers import conv as cpu
from nnrun.engine.layers.padding import as_volume

from .common import column_sums, empty, grid, to_device, volume_cell
from .dense import Regularized
from .matmul import matmul


@cuda.jit
def im2col_kernel(x, kernel_d, kernel_h, kernel_w, stride_d, stride_h, stride_w, pad_d, pad_h, pad_w,
                  out_d, out_h, out_w, cols):
    # x (B, D, H, W, C) → cols (B·OD·OH·OW, KD·KH·KW·C), one thread per entry
    _, depth, height, width, channels = x.shape
    width_cols = cols.shape[1]
    for i in range(cuda.grid(1), cols.size, cuda.gridsize(1)):
        row, col = i // width_cols, i % width_cols
        ow = row % out_w
        oh = (row // out_w) % out_h
        od = (row // (out_w * out_h)) % out_d
        b = row // (out_w * out_h * out_d)
        c = col % channels
        m_w = (col // channels) % kernel_w
        m_h = (col // (channels * kernel_w)) % kernel_h
        m_d = col // (channels * kernel_w * kernel_h)
        d = od * stride_d - pad_d + m_d
        h = oh * stride_h - pad_h + m_h
        w = ow * stride_w - pad_w + m_w
        inside = 0 <= d < depth and 0 <= h < height and 0 <= w < width
        cols[row, col] = x[b, d, h, w, c] if inside else float32(0.0)


@cuda.jit
def col2im_kernel(dcols, kernel_d, kernel_h, kernel_w, stride_d, stride_h, stride_w, pad_d, pad_h, pad_w,
                  out_d, out_h, out_w, dx):
    # dx[b, d, h, w, c] = Σ over the windows o containing the cell, at m = (d, h, w) − o·S + P, of dcols[(b, o), (m, c)]
    _, depth, height, width, channels = dx.shape
    for i in range(cuda.grid(1), dx.size, cuda.gridsize(1)):
        b, d, h, w, c = volume_cell(i, depth, height, width, channels)
        total = float32(0.0)
        for m_d in range(kernel_d):
            at_d = d + pad_d - m_d  # = od·S when the cell is kernel cell m_d of window od
            if at_d < 0 or at_d % stride_d != 0 or at_d // stride_d >= out_d:
                continue
            for m_h in range(kernel_h):
                at_h = h + pad_h - m_h
                if at_h < 0 or at_h % stride_h != 0 or at_h // stride_h >= out_h:
                    continue
                for m_w in range(kernel_w):
                    at_w = w + pad_w - m_w
                    if at_w < 0 or at_w % stride_w != 0 or at_w // stride_w >= out_w:
                        continue
                    row = ((b * out_d + at_d // stride_d) * out_h + at_h // stride_h) * out_w + at_w // stride_w
                    col = ((m_d * kernel_h + m_h) * kernel_w + m_w) * channels + c
                    total += dcols[row, col]
        dx[b, d, h, w, c] = total


def im2col(x5, window):
    out = window.output_3d
    cols = empty((x5.shape[0] * out[0] * out[1] * out[2], int(np.prod(window.kernel_3d)) * x5.shape[4]))
    im2col_kernel[grid(cols.size)](x5, *window.kernel_3d, *window.stride_3d, *window.pad_before_3d, *out, cols)
    return cols


def col2im(dcols, window, x_shape):
    dx = empty(x_shape)
    col2im_kernel[grid(dx.size)](dcols, *window.kernel_3d, *window.stride_3d, *window.pad_before_3d,
                                 *window.output_3d, dx)
    return dx


class Conv(Regularized, cpu.Conv):
    """`engine.layers.conv.Conv` with device arrays (initialised on the host by the CPU class)."""

    def __init__(self, info, rng: np.random.Generator, *, reference: bool = False) -> None:
        super().__init__(info, rng, reference=reference)
        regularization = self.regularization
        self.l1, self.l2 = float(regularization.l1), float(regularization.l2)
        self.dropconnect = float(regularization.dropconnect)
        self.params = {name: to_device(value) for name, value in self.params.items()}
        self.grads = {name: empty(value.shape) for name, value in self.params.items()}
        self.mask = None

    def _matrix(self, kernel):  # (*K, C, F) → (K_volume·C, F), a view
        return kernel.reshape(-1, self.filters)

    def forward(self, x, training: bool):
        x5 = as_volume(x)
        self._x_shape = x5.shape
        self._kernel = self.masked_kernel(training)
        self._cols = im2col(x5, self.window)  # (B·O, K·C)
        y = matmul(self._cols, self._matrix(self._kernel), bias=self.params["bias"])  # (B·O, F)
        return y.reshape(x.shape[0], *self.info.output_shape)

    def backward(self, dy):
        dy2 = dy.reshape(-1, self.filters)  # (B·O, F)
        matmul(self._cols, dy2, self._matrix(self.grads["kernel"]), trans_a=True)
        self.finish_kernel_grad(self.grads["kernel"])
        column_sums(dy2, self.grads["bias"])
        if not self.input_grad:  # a first layer: ∂L/∂x of the data is never used (see the CPU class)
            return None
        dcols = matmul(dy2, self._matrix(self._kernel), trans_b=True)  # (B·O, K·C)
        dx = col2im(dcols, self.window, self._x_shape)
        return dx.reshape(dy.shape[0], *self.info.input_shape)
