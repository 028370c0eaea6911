"""Batch normalization over the last (channel) axis, Keras's defaults.

For each channel c, over the N = B·(spatial positions) values of the batch:

    μ = (1/N) Σ x            σ² = (1/N) Σ (x − μ)²     (biased, as Keras 3's ops.moments)
    x̂ = (x − μ) / √(σ² + ε)
    y = γ·x̂ + β

    ∂L/∂β = Σ ∂L/∂y          ∂L/∂γ = Σ ∂L/∂y · x̂
    ∂L/∂x = γ / (N·√(σ² + ε)) · (N·∂L/∂y − ∂L/∂β − x̂·∂L/∂γ)

Training normalises with the batch's μ, σ² and updates the moving statistics

    moving = momentum·moving + (1 − momentum)·batch       (momentum 0.99)

with the *biased* batch variance, as Keras 3 does (PyTorch uses the unbiased
one here; the two differ by N/(N−1)).  Inference normalises with the moving
statistics.  γ = 1, β = 0 (trainable); moving mean 0, moving variance 1
(state, saved with the model); ε = 1e-3.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from nnrun.dsl.spec import LayerInfo

from .. import initializers
from .base import Layer

# ------------------------------------------------------------------- kernels (cpu)


@njit(cache=True)
def batch_moments(x, mean, var):  # x (N, C) → mean, var (C,), biased variance
    n, channels = x.shape
    for c in range(channels):
        total = 0.0  # float64 accumulators: N may be large
        for i in range(n):
            total += x[i, c]
        mu = total / n
        squares = 0.0
        for i in range(n):
            d = x[i, c] - mu
            squares += d * d
        mean[c] = mu
        var[c] = squares / n


@njit(cache=True)
def normalize(x, mean, var, eps, gamma, beta, y, xhat):  # x, y, xhat (N, C)
    n, channels = x.shape
    for c in range(channels):
        inv_std = 1.0 / np.sqrt(var[c] + eps)
        for i in range(n):
            h = (x[i, c] - mean[c]) * inv_std
            xhat[i, c] = h
            y[i, c] = gamma[c] * h + beta[c]


@njit(cache=True)
def batchnorm_backward(dy, xhat, gamma, var, eps, dx, dgamma, dbeta):  # dy, xhat, dx (N, C)
    n, channels = dy.shape
    for c in range(channels):
        sum_dy = 0.0
        sum_dy_xhat = 0.0
        for i in range(n):
            sum_dy += dy[i, c]
            sum_dy_xhat += dy[i, c] * xhat[i, c]
        dbeta[c] = sum_dy
        dgamma[c] = sum_dy_xhat
        scale = gamma[c] / (n * np.sqrt(var[c] + eps))
        for i in range(n):
            dx[i, c] = scale * (n * dy[i, c] - sum_dy - xhat[i, c] * sum_dy_xhat)


# ------------------------------------------------------ plain-NumPy reference (oracle)


def batch_moments_ref(x):
    mean = x.mean(axis=0)
    return mean, ((x - mean) ** 2).mean(axis=0)


def normalize_ref(x, mean, var, eps, gamma, beta):
    """(y, x̂)"""
    xhat = (x - mean) / np.sqrt(var + eps)
    return (gamma * xhat + beta).astype(x.dtype), xhat.astype(x.dtype)


def batchnorm_backward_ref(dy, xhat, gamma, var, eps):
    """(∂x, ∂γ, ∂β)"""
    n = dy.shape[0]
    dbeta = dy.sum(axis=0)
    dgamma = (dy * xhat).sum(axis=0)
    dx = gamma / (n * np.sqrt(var + eps)) * (n * dy - dbeta - xhat * dgamma)
    return dx.astype(dy.dtype), dgamma, dbeta


# ------------------------------------------------------------------------ the layer


class BatchNorm(Layer):
    """``batchnorm``: γ, β trainable; moving mean and variance in ``state``."""

    def __init__(self, info: LayerInfo, rng: np.random.Generator, *, reference: bool = False) -> None:
        super().__init__(info, rng)
        self.reference = reference
        self.momentum = float(info.layer.momentum)
        self.epsilon = float(info.layer.epsilon)
        channels = info.input_shape[-1]
        self.params = {"gamma": initializers.ones((channels,)), "beta": initializers.zeros((channels,))}
        self.grads = {name: np.zeros_like(value) for name, value in self.params.items()}
        self.state = {
            "moving_mean": initializers.zeros((channels,)),
            "moving_variance": initializers.ones((channels,)),
        }
        self.xhat: np.ndarray | None = None  # (N, C) of the last training batch
        self.batch_var: np.ndarray | None = None  # (C,)

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        x2 = x.reshape(-1, x.shape[-1])  # (N, C): every position of every sample
        gamma, beta = self.params["gamma"], self.params["beta"]
        if training:
            if self.reference:
                mean, var = batch_moments_ref(x2)
            else:
                mean, var = np.empty(x2.shape[1], x2.dtype), np.empty(x2.shape[1], x2.dtype)
                batch_moments(x2, mean, var)
            for name, batch in (("moving_mean", mean), ("moving_variance", var)):
                moving = self.state[name]  # updated in place: the array's identity is kept
                moving *= self.momentum
                moving += (1.0 - self.momentum) * batch
        else:
            mean, var = self.state["moving_mean"], self.state["moving_variance"]
        if self.reference:
            y, xhat = normalize_ref(x2, mean, var, self.epsilon, gamma, beta)
        else:
            y, xhat = np.empty_like(x2), np.empty_like(x2)
            normalize(x2, mean, var, self.epsilon, gamma, beta, y, xhat)
        if training:
            self.xhat, self.batch_var = xhat, var
        return y.reshape(x.shape)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        dy2 = dy.reshape(self.xhat.shape)  # (N, C)
        gamma = self.params["gamma"]
        if self.reference:
            dx, dgamma, dbeta = batchnorm_backward_ref(dy2, self.xhat, gamma, self.batch_var, self.epsilon)
        else:
            dx = np.empty_like(dy2)
            dgamma, dbeta = np.empty_like(gamma), np.empty_like(gamma)
            batchnorm_backward(dy2, self.xhat, gamma, self.batch_var, self.epsilon, dx, dgamma, dbeta)
        self.grads = {"gamma": dgamma, "beta": dbeta}
        return dx.reshape(dy.shape)
