"""Activation functions, forward and backward side by side.

    relu(x)        = max(0, x)                    relu'(x)      = [x > 0]
    leakyrelu(x)   = x if x > 0 else α·x          leakyrelu'(x) = 1 if x > 0 else α
    sigmoid(x)     = 1 / (1 + e^(−x))             σ'(x)         = y·(1 − y)
    tanh(x)                                       tanh'(x)      = 1 − y²
    softmax(x)_i   = e^(x_i − m) / Σ_j e^(x_j − m),  m = max_j x_j   (over the last axis)
        ∂L/∂x_i    = y_i·(∂L/∂y_i − Σ_j ∂L/∂y_j·y_j)
    linear(x)      = x                            linear'(x)    = 1

Sigmoid is evaluated without overflow: for x < 0 it is e^x / (1 + e^x).
Softmax subtracts the row maximum before exponentiating, so e^(…) ≤ 1.

An `ActivationLayer` statement (``relu``) becomes an `Activation` layer; so does
the activation written on a ``dense``/``conv``/``rnn`` statement: the network
inserts it as its own step right after that layer, through the same class.

Every kernel sees the input as 2-D ``(rows, last)`` (a free reshape of
``(B, …, last)``) and has the same signature, ``forward(x, alpha, y)`` and
``backward(x, y, dy, alpha, dx)``, so the layer class needs no case analysis.

Fused with the bias of the dense layer before them (the network does this on
the cpu backend for relu, tanh, sigmoid and linear; see `engine.layers.dense`):

    forward:   y = act(z),  z = x·W + b, written over z in one pass
    backward:  ∂L/∂z = ∂L/∂y · act'(z), then ∂L/∂b = Σ_batch ∂L/∂z,
               act'(z) read off the output y: relu [y > 0], tanh 1 − y², σ y·(1 − y)
"""
from __future__ import annotations

import numpy as np
from numba import njit

from nnrun.dsl.spec import LayerInfo

from .base import Layer

# ------------------------------------------------------------------- kernels (cpu)


@njit(cache=True)
def relu_forward(x, alpha, y):  # x, y: (R, N)
    for r in range(x.shape[0]):
        for i in range(x.shape[1]):
            y[r, i] = x[r, i] if x[r, i] > 0 else 0.0


@njit(cache=True)
def relu_backward(x, y, dy, alpha, dx):
    for r in range(x.shape[0]):
        for i in range(x.shape[1]):
            dx[r, i] = dy[r, i] if x[r, i] > 0 else 0.0


@njit(cache=True)
def leakyrelu_forward(x, alpha, y):
    for r in range(x.shape[0]):
        for i in range(x.shape[1]):
            y[r, i] = x[r, i] if x[r, i] > 0 else alpha * x[r, i]


@njit(cache=True)
def leakyrelu_backward(x, y, dy, alpha, dx):
    for r in range(x.shape[0]):
        for i in range(x.shape[1]):
            dx[r, i] = dy[r, i] if x[r, i] > 0 else alpha * dy[r, i]


@njit(cache=True)
def sigmoid_forward(x, alpha, y):
    for r in range(x.shape[0]):
        for i in range(x.shape[1]):
            v = x[r, i]
            if v >= 0:
                y[r, i] = 1.0 / (1.0 + np.exp(-v))
            else:
                e = np.exp(v)
                y[r, i] = e / (1.0 + e)


@njit(cache=True)
def sigmoid_backward(x, y, dy, alpha, dx):
    for r in range(x.shape[0]):
        for i in range(x.shape[1]):
            dx[r, i] = dy[r, i] * y[r, i] * (1.0 - y[r, i])


@njit(cache=True)
def tanh_forward(x, alpha, y):
    for r in range(x.shape[0]):
        for i in range(x.shape[1]):
            y[r, i] = np.tanh(x[r, i])


@njit(cache=True)
def tanh_backward(x, y, dy, alpha, dx):
    for r in range(x.shape[0]):
        for i in range(x.shape[1]):
            dx[r, i] = dy[r, i] * (1.0 - y[r, i] * y[r, i])


@njit(cache=True)
def softmax_forward(x, alpha, y):  # over the last axis
    for r in range(x.shape[0]):
        m = x[r, 0]
        for i in range(1, x.shape[1]):
            m = max(m, x[r, i])
        total = 0.0
        for i in range(x.shape[1]):
            e = np.exp(x[r, i] - m)
            y[r, i] = e
            total += e
        for i in range(x.shape[1]):
            y[r, i] /= total


@njit(cache=True)
def softmax_backward(x, y, dy, alpha, dx):
    for r in range(x.shape[0]):
        dot = 0.0  # Σ_j ∂L/∂y_j · y_j
        for i in range(x.shape[1]):
            dot += dy[r, i] * y[r, i]
        for i in range(x.shape[1]):
            dx[r, i] = y[r, i] * (dy[r, i] - dot)


# ------------------------------------------------- fused with a dense layer's bias (cpu)

# activation name → the code the fused kernels branch on (LLVM hoists the branch out of the loop)
FUSED_CODES = {"linear": 0, "relu": 1, "tanh": 2, "sigmoid": 3}


@njit(cache=True)
def bias_activation_forward(z, bias, code):  # z (B, N) ← act(z + bias (N,)), in place
    # the choice of activation outside the loops, each loop over a contiguous row: vector code
    for r in range(z.shape[0]):
        row = z[r]
        if code == 1:
            for i in range(row.size):
                v = row[i] + bias[i]
                row[i] = v if v > 0 else 0.0
        elif code == 2:
            for i in range(row.size):
                row[i] = np.tanh(row[i] + bias[i])
        elif code == 3:
            for i in range(row.size):
                v = row[i] + bias[i]
                row[i] = 1.0 / (1.0 + np.exp(-v)) if v >= 0 else np.exp(v) / (1.0 + np.exp(v))
        else:
            for i in range(row.size):
                row[i] += bias[i]


@njit(cache=True)
def activation_backward(y, dy, code, dz):  # y, dy, dz flat (n,): ∂L/∂z = ∂L/∂y · act'(z), read off y
    # One loop per activation, the choice made outside it: a branch inside the loop
    # keeps LLVM from making it vector code (4 ns an element instead of 0.3 here).
    if code == 1:
        for i in range(y.size):
            dz[i] = dy[i] if y[i] > 0 else 0.0
    elif code == 2:
        for i in range(y.size):
            dz[i] = dy[i] * (1.0 - y[i] * y[i])
    elif code == 3:
        for i in range(y.size):
            dz[i] = dy[i] * y[i] * (1.0 - y[i])
    else:
        for i in range(y.size):
            dz[i] = dy[i]


# ------------------------------------------- the fast path: NumPy's vector ufuncs (cpu)
#
# numba compiles np.tanh and np.exp inside a loop to one scalar libm call per
# element; NumPy's ufuncs evaluate them on whole vectors (SIMD), 6× faster here
# (PERF.md).  The loops above stay the readable path (``Activation(…, fast=False)``).


def activation_inplace(y: np.ndarray, name: str) -> None:
    """``y ← act(y)`` in place, ``y`` 2-D ``(rows, last)``; sigmoid as ½·(1 + tanh(x/2)), which never overflows."""
    if name == "relu":
        np.maximum(y, 0, out=y)
    elif name == "tanh":
        np.tanh(y, out=y)
    elif name == "sigmoid":
        y *= 0.5
        np.tanh(y, out=y)
        y *= 0.5
        y += 0.5
    elif name == "softmax":
        y -= y.max(axis=-1, keepdims=True)
        np.exp(y, out=y)
        y /= y.sum(axis=-1, keepdims=True)
    elif name == "leakyrelu":
        raise ValueError("leakyrelu needs its α: use the loop kernels")
    elif name != "linear":
        raise ValueError(f"no vector form for the activation {name!r}")


# ------------------------------------------------------ plain-NumPy reference (oracle)


def relu_forward_ref(x, alpha):
    return np.where(x > 0, x, 0).astype(x.dtype)


def relu_backward_ref(x, y, dy, alpha):
    return np.where(x > 0, dy, 0).astype(x.dtype)


def leakyrelu_forward_ref(x, alpha):
    return np.where(x > 0, x, alpha * x).astype(x.dtype)


def leakyrelu_backward_ref(x, y, dy, alpha):
    return np.where(x > 0, dy, alpha * dy).astype(x.dtype)


def sigmoid_forward_ref(x, alpha):
    e = np.exp(-np.abs(x))  # ≤ 1: never overflows
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype)


def sigmoid_backward_ref(x, y, dy, alpha):
    return dy * y * (1 - y)


def tanh_forward_ref(x, alpha):
    return np.tanh(x)


def tanh_backward_ref(x, y, dy, alpha):
    return dy * (1 - y * y)


def softmax_forward_ref(x, alpha):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def softmax_backward_ref(x, y, dy, alpha):
    return y * (dy - (dy * y).sum(axis=-1, keepdims=True))


# name → (forward kernel, backward kernel, forward reference, backward reference)
FUNCTIONS = {
    "relu": (relu_forward, relu_backward, relu_forward_ref, relu_backward_ref),
    "leakyrelu": (leakyrelu_forward, leakyrelu_backward, leakyrelu_forward_ref, leakyrelu_backward_ref),
    "sigmoid": (sigmoid_forward, sigmoid_backward, sigmoid_forward_ref, sigmoid_backward_ref),
    "tanh": (tanh_forward, tanh_backward, tanh_forward_ref, tanh_backward_ref),
    "softmax": (softmax_forward, softmax_backward, softmax_forward_ref, softmax_backward_ref),
}


#: Default for new layers: True, NumPy's vector ufuncs where they are faster (`VECTOR_FORMS`); False, the loops.
FAST = True
VECTOR_FORMS = ("tanh", "sigmoid", "softmax")

# ------------------------------------------------------------------------ the layer


class Activation(Layer):
    """An activation as its own step; no parameters.

    ``info.layer`` is an `ActivationLayer` statement (the network builds one for
    the activation written on a dense/conv/rnn statement).
    """

    def __init__(self, info: LayerInfo, rng: np.random.Generator, *, reference: bool = False,
                 fast: bool | None = None) -> None:
        super().__init__(info, rng)
        self.reference = reference
        self.fast = FAST if fast is None else fast  # NumPy's vector ufuncs for tanh, sigmoid and softmax
        self.function = info.layer.activation.name  # "relu", "softmax", …
        self.alpha = float(info.layer.activation.alpha)
        if self.function != "linear" and self.function not in FUNCTIONS:
            raise ValueError(f"{self.name}: unknown activation {self.function!r}")
        self.x: np.ndarray | None = None
        self.y: np.ndarray | None = None

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        if self.function == "linear":
            return x
        forward, _, forward_ref, _ = FUNCTIONS[self.function]
        x2 = x.reshape(-1, x.shape[-1])  # (rows, last)
        if self.reference:
            y2 = forward_ref(x2, self.alpha)
        elif self.fast and self.function in VECTOR_FORMS:
            y2 = x2.copy()
            activation_inplace(y2, self.function)
        else:
            y2 = np.empty_like(x2)
            forward(x2, self.alpha, y2)
        self.x, self.y = x2, y2
        return y2.reshape(x.shape)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        if self.function == "linear":
            return dy
        _, backward, _, backward_ref = FUNCTIONS[self.function]
        dy2 = dy.reshape(self.y.shape)
        if self.reference:
            dx2 = backward_ref(self.x, self.y, dy2, self.alpha)
        else:
            dx2 = np.empty_like(dy2)
            backward(self.x, self.y, dy2, self.alpha, dx2)
        return dx2.reshape(dy.shape)
