"""Activations on the GPU: one thread per value (softmax: one thread per row).

The formulas are those of `engine.layers.activations`; the element-wise ones
share one kernel, the function chosen by a code (kernels take scalars only):

    relu  max(0, x)    leakyrelu  x or α·x    sigmoid  1/(1 + e^(−x))    tanh    linear  x

and the backward pass multiplies ∂L/∂y by the slope, written with the output y
(σ' = y(1 − y), tanh' = 1 − y²) or the input's sign (relu, leaky relu).
The device functions `activate`/`slope` are also the recurrent cells'.
"""
from __future__ import annotations

import math

from numba import cuda, float32

from nnrun.engine.layers import activations as cpu
from nnrun.engine.layers.recurrent import ACTIVATION_CODES, LEAKYRELU, RELU, SIGMOID, TANH

from .common import empty, flat, grid, last


@cuda.jit(device=True)
def sigmoid(a):
    if a >= 0:
        return float32(1.0) / (float32(1.0) + math.exp(-a))
    e = math.exp(a)
    return e / (float32(1.0) + e)


@cuda.jit(device=True)
def activate(a, activation, alpha):  # act(a) for one float32
    if activation == TANH:
        return math.tanh(a)
    if activation == SIGMOID:
        return sigmoid(a)
    if activation == RELU:
        return a if a > 0 else float32(0.0)
    if activation == LEAKYRELU:
        return a if a > 0 else float32(alpha) * a
    return a  # LINEAR


@cuda.jit(device=True)
def slope(y, activation, alpha):  # act'(a), from y = act(a) (relu, leaky relu: y > 0 ⟺ a > 0 for α ≥ 0)
    if activation == TANH:
        return float32(1.0) - y * y
    if activation == SIGMOID:
        return y * (float32(1.0) - y)
    if activation == RELU:
        return float32(1.0) if y > 0 else float32(0.0)
    if activation == LEAKYRELU:
        return float32(1.0) if y > 0 else float32(alpha)
    return float32(1.0)  # LINEAR


@cuda.jit
def activation_forward_kernel(x, activation, alpha, y):  # flat (N,)
    for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        y[i] = activate(x[i], activation, alpha)


@cuda.jit
def activation_backward_kernel(x, y, dy, activation, alpha, dx):  # flat (N,)
    for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        # relu and leaky relu take the slope from x (as the CPU kernels do); the others from y
        at = x[i] if activation == RELU or activation == LEAKYRELU else y[i]
        dx[i] = dy[i] * slope(at, activation, alpha)


@cuda.jit
def softmax_forward_kernel(x, y):  # (R, N), one thread per row
    for r in range(cuda.grid(1), x.shape[0], cuda.gridsize(1)):
        m = x[r, 0]
        for i in range(1, x.shape[1]):
            m = max(m, x[r, i])
        total = float32(0.0)
        for i in range(x.shape[1]):
            e = math.exp(x[r, i] - m)
            y[r, i] = e
            total += e
        for i in range(x.shape[1]):
            y[r, i] /= total


@cuda.jit
def softmax_backward_kernel(y, dy, dx):  # (R, N): dx = y·(dy − Σ_j dy_j·y_j), one thread per row
    for r in range(cuda.grid(1), y.shape[0], cuda.gridsize(1)):
        dot = float32(0.0)
        for i in range(y.shape[1]):
            dot += dy[r, i] * y[r, i]
        for i in range(y.shape[1]):
            dx[r, i] = y[r, i] * (dy[r, i] - dot)


def forward(function: str, alpha: float, x2):
    """y = function(x2) for a contiguous (rows, last) device array."""
    y2 = empty(x2.shape)
    if function == "softmax":
        softmax_forward_kernel[grid(x2.shape[0])](x2, y2)
    else:
        activation_forward_kernel[grid(x2.size)](flat(x2), ACTIVATION_CODES[function], alpha, flat(y2))
    return y2


def backward(function: str, alpha: float, x2, y2, dy2):
    dx2 = empty(dy2.shape)
    if function == "softmax":
        softmax_backward_kernel[grid(y2.shape[0])](y2, dy2, dx2)
    else:
        activation_backward_kernel[grid(x2.size)](
            flat(x2), flat(y2), flat(dy2), ACTIVATION_CODES[function], alpha, flat(dx2)
        )
    return dx2


class Activation(cpu.Activation):
    """`engine.layers.activations.Activation` with device arrays."""

    def forward(self, x, training: bool):
        if self.function == "linear":
            return x
        x2 = x.reshape(-1, last(x))  # (rows, last)
        y2 = forward(self.function, self.alpha, x2)
        self.x, self.y = x2, y2
        return y2.reshape(x.shape)

    def backward(self, dy):
        if self.function == "linear":
            return dy
        dx2 = backward(self.function, self.alpha, self.x, self.y, dy.reshape(self.y.shape))
        return dx2.reshape(dy.shape)

