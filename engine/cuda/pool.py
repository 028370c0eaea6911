"""Max and average pooling (windowed or global, any rank) on the GPU.

Forward: one thread per output cell y[b, o, c], the loop of `engine.layers.pool`
over its window (max also records *which* cell won, as (d·H + h)·W + w).
Backward: one thread per input cell x[b, p, c], which gathers from every window
containing it — the windows o with o·S − P ≤ p ≤ o·S − P + K − 1 —
∂L/∂y[b, o, c] if it was that window's maximum, or ∂L/∂y[b, o, c] / n (avg, n
valid cells).  Gathering instead of scattering: no two threads write the same
cell, so no atomics, and overlapping windows (stride < kernel) add up correctly.
"""
from __future__ import annotations

import numpy as np
from numba import cuda, float32

from nnrun.engine.layers import pool as cpu
from nnrun.engine.layers.padding import as_volume

from .common import empty, grid, volume_cell

MAX, AVG = 0, 1


@cuda.jit(device=True)
def window_range(o, stride, pad, kernel, size):  # the kernel cells m of window o that lie inside the input
    start = o * stride - pad
    return start, max(0, -start), min(kernel, size - start)


@cuda.jit
def pool_forward_kernel(x, mode, kernel_d, kernel_h, kernel_w, stride_d, stride_h, stride_w, pad_d, pad_h, pad_w,
                        y, argmax):
    # y, argmax (B, OD, OH, OW, C); x (B, D, H, W, C)
    _, depth, height, width, channels = x.shape
    _, out_d, out_h, out_w, _ = y.shape
    for i in range(cuda.grid(1), y.size, cuda.gridsize(1)):
        b, od, oh, ow, c = volume_cell(i, out_d, out_h, out_w, channels)
        d0, d_lo, d_hi = window_range(od, stride_d, pad_d, kernel_d, depth)
        h0, h_lo, h_hi = window_range(oh, stride_h, pad_h, kernel_h, height)
        w0, w_lo, w_hi = window_range(ow, stride_w, pad_w, kernel_w, width)
        best = float32(-np.inf) if mode == MAX else float32(0.0)
        best_cell = -1
        for m_d in range(d_lo, d_hi):
            for m_h in range(h_lo, h_hi):
                for m_w in range(w_lo, w_hi):
                    value = x[b, d0 + m_d, h0 + m_h, w0 + m_w, c]
                    if mode == AVG:
                        best += value
                    elif value > best or best_cell < 0:  # strict: ties keep the first
                        best = value
                        best_cell = ((d0 + m_d) * height + h0 + m_h) * width + w0 + m_w
        if mode == AVG:
            count = max(d_hi - d_lo, 0) * max(h_hi - h_lo, 0) * max(w_hi - w_lo, 0)
            if count > 0:
                best /= count
        y[b, od, oh, ow, c] = best
        argmax[b, od, oh, ow, c] = best_cell


@cuda.jit(device=True)
def windows_containing(p, stride, pad, kernel, out):  # first and last+1 window o with o·S − P ≤ p < o·S − P + K
    first = max(0, (p + pad - kernel + stride) // stride)  # ⌈(p + P − K + 1) / S⌉
    return first, min(out, (p + pad) // stride + 1)


@cuda.jit
def pool_backward_kernel(dy, argmax, mode, kernel_d, kernel_h, kernel_w, stride_d, stride_h, stride_w,
                         pad_d, pad_h, pad_w, dx):
    _, depth, height, width, channels = dx.shape
    _, out_d, out_h, out_w, _ = dy.shape
    for i in range(cuda.grid(1), dx.size, cuda.gridsize(1)):
        b, d, h, w, c = volume_cell(i, depth, height, width, channels)
        cell = (d * height + h) * width + w
        total = float32(0.0)
        od_lo, od_hi = windows_containing(d, stride_d, pad_d, kernel_d, out_d)
        oh_lo, oh_hi = windows_containing(h, stride_h, pad_h, kernel_h, out_h)
        ow_lo, ow_hi = windows_containing(w, stride_w, pad_w, kernel_w, out_w)
        for od in range(od_lo, od_hi):
            _, d_lo, d_hi = window_range(od, stride_d, pad_d, kernel_d, depth)
            for oh in range(oh_lo, oh_hi):
                _, h_lo, h_hi = window_range(oh, stride_h, pad_h, kernel_h, height)
                for ow in range(ow_lo, ow_hi):
                    grad = dy[b, od, oh, ow, c]
                    if mode == MAX:
                        if argmax[b, od, oh, ow, c] == cell:
                            total += grad
                    else:
                        _, w_lo, w_hi = window_range(ow, stride_w, pad_w, kernel_w, width)
                        total += grad / ((d_hi - d_lo) * (h_hi - h_lo) * (w_hi - w_lo))
        dx[b, d, h, w, c] = total


class Pool(cpu.Pool):
    """`engine.layers.pool.Pool` with device arrays."""

    def forward(self, x, training: bool):
        w = self.window
        x5 = as_volume(x)
        self._x_shape = x5.shape
        y = empty((x5.shape[0], *w.output_3d, x5.shape[4]))
        self._argmax = empty(y.shape, np.int32)
        mode = MAX if self.mode == "max" else AVG
        pool_forward_kernel[grid(y.size)](x5, mode, *w.kernel_3d, *w.stride_3d, *w.pad_before_3d, y, self._argmax)
        return y.reshape(x.shape[0], *self.info.output_shape)

    def backward(self, dy):
        w = self.window
        dy5 = dy.reshape(dy.shape[0], *w.output_3d, self._x_shape[4])
        dx = empty(self._x_shape)
        mode = MAX if self.mode == "max" else AVG
        pool_backward_kernel[grid(dx.size)](dy5, self._argmax, mode, *w.kernel_3d, *w.stride_3d, *w.pad_before_3d, dx)
        return dx.reshape(dx.shape[0], *self.info.input_shape)
