"""Inverted dropout on the GPU (formulas in `engine.layers.dropout`).

The uniform numbers u come from the device generator (`common.Uniform`), so a
training run draws no random numbers on the host; the kernels themselves take u
as an array, like the CPU's, and give the same mask for the same u.
"""
from __future__ import annotations

from numba import cuda, float32

from nnrun.engine.layers import dropout as cpu

from .common import Uniform, empty, flat, grid


@cuda.jit
def dropout_forward_kernel(x, uniform, rate, y, mask):  # all flat (N,)
    scale = float32(1.0 / (1.0 - rate))
    for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        keep = scale if uniform[i] >= rate else float32(0.0)
        mask[i] = keep
        y[i] = x[i] * keep


@cuda.jit
def dropout_backward_kernel(dy, mask, dx):  # all flat (N,)
    for i in range(cuda.grid(1), dy.size, cuda.gridsize(1)):
        dx[i] = dy[i] * mask[i]


class Dropout(cpu.Dropout):
    def __init__(self, info, rng, *, reference: bool = False) -> None:
        super().__init__(info, rng, reference=reference)
        self.uniform = Uniform(rng)

    def forward(self, x, training: bool):
        if not training or self.rate == 0.0:
            self.mask = None
            return x
        flat_x = flat(x)
        uniform, y, self.mask = empty(flat_x.shape), empty(flat_x.shape), empty(flat_x.shape)
        self.uniform.fill(uniform)
        dropout_forward_kernel[grid(flat_x.size)](flat_x, uniform, self.rate, y, self.mask)
        return y.reshape(x.shape)

    def backward(self, dy):
        if self.mask is None:
            return dy
        dx = empty(self.mask.shape)
        dropout_backward_kernel[grid(dx.size)](flat(dy), self.mask, dx)
        return dx.reshape(dy.shape)
