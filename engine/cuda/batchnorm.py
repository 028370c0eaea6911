"""Batch normalization on the GPU (formulas in `engine.layers.batchnorm`).

The per-channel sums (μ, σ², ∂L/∂β = Σ∂L/∂y, ∂L/∂γ = Σ∂L/∂y·x̂) are block
reductions, one block per channel; normalising and ∂L/∂x are element-wise.
"""
from __future__ import annotations

import math

from numba import cuda, float32, float64

from nnrun.engine.layers import batchnorm as cpu

from .common import THREADS, block_sum, column_sums, empty, grid, last, to_device


@cuda.jit
def batch_moments_kernel(x, mean, var):  # x (N, C) → mean, var (C,), biased; one block per channel
    buffer = cuda.shared.array(THREADS, float64)
    n, channels = x.shape
    for c in range(cuda.blockIdx.x, channels, cuda.gridDim.x):
        partial = 0.0
        for i in range(cuda.threadIdx.x, n, cuda.blockDim.x):
            partial += x[i, c]
        mu = block_sum(buffer, partial) / n
        partial = 0.0
        for i in range(cuda.threadIdx.x, n, cuda.blockDim.x):
            d = x[i, c] - mu
            partial += d * d
        squares = block_sum(buffer, partial)
        if cuda.threadIdx.x == 0:
            mean[c] = mu
            var[c] = squares / n


@cuda.jit
def update_moving_kernel(moving, batch, momentum):  # moving = momentum·moving + (1 − momentum)·batch, (C,)
    for c in range(cuda.grid(1), moving.size, cuda.gridsize(1)):
        moving[c] = float32(momentum) * moving[c] + float32(1.0 - momentum) * batch[c]


@cuda.jit
def normalize_kernel(x, mean, var, eps, gamma, beta, y, xhat):  # x, y, xhat (N, C)
    channels = x.shape[1]
    for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        row, c = i // channels, i % channels
        h = (x[row, c] - mean[c]) / math.sqrt(var[c] + float32(eps))
        xhat[row, c] = h
        y[row, c] = gamma[c] * h + beta[c]


@cuda.jit
def batchnorm_dx_kernel(dy, xhat, gamma, var, eps, dgamma, dbeta, dx):  # dy, xhat, dx (N, C)
    n, channels = dy.shape
    for i in range(cuda.grid(1), dy.size, cuda.gridsize(1)):
        row, c = i // channels, i % channels
        scale = gamma[c] / (n * math.sqrt(var[c] + float32(eps)))
        dx[row, c] = scale * (n * dy[row, c] - dbeta[c] - xhat[row, c] * dgamma[c])


class BatchNorm(cpu.BatchNorm):
    def __init__(self, info, rng, *, reference: bool = False) -> None:
        super().__init__(info, rng, reference=reference)
        self.params = {name: to_device(value) for name, value in self.params.items()}
        self.grads = {name: empty(value.shape) for name, value in self.params.items()}
        self.state = {name: to_device(value) for name, value in self.state.items()}

    def forward(self, x, training: bool):
        x2 = x.reshape(-1, last(x))  # (N, C)
        channels = x2.shape[1]
        gamma, beta = self.params["gamma"], self.params["beta"]
        if training:
            mean, var = empty((channels,)), empty((channels,))
            batch_moments_kernel[min(channels, 4096), THREADS](x2, mean, var)
            for name, batch in (("moving_mean", mean), ("moving_variance", var)):
                update_moving_kernel[grid(channels)](self.state[name], batch, self.momentum)
        else:
            mean, var = self.state["moving_mean"], self.state["moving_variance"]
        y, xhat = empty(x2.shape), empty(x2.shape)
        normalize_kernel[grid(x2.size)](x2, mean, var, self.epsilon, gamma, beta, y, xhat)
        if training:
            self.xhat, self.batch_var = xhat, var
        return y.reshape(x.shape)

    def backward(self, dy):
        dy2 = dy.reshape(self.xhat.shape)  # (N, C)
        dgamma, dbeta = self.grads["gamma"], self.grads["beta"]
        column_sums(dy2, dbeta)
        column_sums(dy2, dgamma, times=self.xhat)
        dx = empty(dy2.shape)
        batchnorm_dx_kernel[grid(dx.size)](dy2, self.xhat, self.params["gamma"], self.batch_var, self.epsilon,
                                          dgamma, dbeta, dx)
        return dx.reshape(dy.shape)
