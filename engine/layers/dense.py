"""Dense (fully connected) layer.

    y = x·W + b                       x (B, in), W (in, units) (Keras's layout), b (units,)

    ∂L/∂x = ∂L/∂y · Wᵀ                (B, in)
    ∂L/∂W = xᵀ · ∂L/∂y                (in, units)
    ∂L/∂b = Σ_batch ∂L/∂y             (units,)

Regularization (options ``l1 λ``, ``l2 λ``, ``dropconnect P``):

    penalty = λ1·Σ|W| + λ2·ΣW²        its gradient λ1·sign(W) + 2·λ2·W is added to ∂L/∂W
    DropConnect: at train time each batch uses W ⊙ M, M_ij = Bernoulli(1 − P) / (1 − P)
                 (a fresh mask per batch; inverted, so inference uses W unchanged);
                 ∂L/∂W = (xᵀ · ∂L/∂y) ⊙ M

The two matrix products go to NumPy's ``@`` (OpenBLAS, its own threads): a
product inside ``@njit`` would call SciPy's second BLAS (see PERF.md).  The
kernels below are the fused element-wise work around them.

Initialisation: W Glorot-uniform, b zeros (Keras's defaults).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from dsl.spec import LayerInfo

from .. import initializers
from .base import Layer

# ------------------------------------------------------------------- kernels (cpu)


@njit(cache=True)
def add_bias(y, bias):  # y (B, units) += bias (units,), in place
    for n in range(y.shape[0]):
        for j in range(y.shape[1]):
            y[n, j] += bias[j]


@njit(cache=True)
def bias_grad(dy, dbias):  # dbias (units,) = Σ_n dy (B, units)
    for j in range(dy.shape[1]):
        dbias[j] = 0.0
    for n in range(dy.shape[0]):
        for j in range(dy.shape[1]):
            dbias[j] += dy[n, j]


@njit(cache=True)
def dropconnect_mask(uniform, rate, mask):  # mask = [u ≥ P] / (1 − P), same shape as W
    scale = 1.0 / (1.0 - rate)
    flat_u, flat_m = uniform.ravel(), mask.ravel()
    for i in range(flat_u.size):
        flat_m[i] = scale if flat_u[i] >= rate else 0.0


@njit(cache=True)
def multiply(a, b, out):  # out = a ⊙ b (same shapes, contiguous)
    flat_a, flat_b, flat_out = a.ravel(), b.ravel(), out.ravel()
    for i in range(flat_a.size):
        flat_out[i] = flat_a[i] * flat_b[i]


@njit(cache=True)
def add_penalty_grad(kernel, l1, l2, dkernel):  # dkernel += λ1·sign(W) + 2·λ2·W
    flat_w, flat_dw = kernel.ravel(), dkernel.ravel()
    for i in range(flat_w.size):
        w = flat_w[i]
        sign = 1.0 if w > 0 else (-1.0 if w < 0 else 0.0)
        flat_dw[i] += l1 * sign + 2.0 * l2 * w


# ------------------------------------------------------ plain-NumPy reference (oracle)


def dense_forward_ref(x, kernel, bias):
    return x @ kernel + bias


def dense_backward_ref(x, kernel, dy):
    """(∂x, ∂W, ∂b) without regularization."""
    return dy @ kernel.T, x.T @ dy, dy.sum(axis=0)


def dropconnect_mask_ref(uniform, rate):
    return ((uniform >= rate) / (1 - rate)).astype(uniform.dtype)


def penalty_ref(kernel, l1, l2):
    return l1 * np.abs(kernel).sum() + l2 * (kernel * kernel).sum()


def penalty_grad_ref(kernel, l1, l2):
    return (l1 * np.sign(kernel) + 2 * l2 * kernel).astype(kernel.dtype)


# ------------------------------------------------------------------------ the layer


class Dense(Layer):
    """``dense N [act] [l1 λ] [l2 λ] [dropconnect P]``.

    The activation written on the statement is not applied here: the network
    adds it as its own `Activation` step.
    """

    def __init__(self, info: LayerInfo, rng: np.random.Generator, *, reference: bool = False) -> None:
        super().__init__(info, rng)
        self.reference = reference
        fan_in, units = info.input_shape[-1], info.layer.units
        regularization = info.layer.regularization
        self.l1, self.l2 = float(regularization.l1), float(regularization.l2)
        self.dropconnect = float(regularization.dropconnect)
        self.params = {
            "kernel": initializers.glorot_uniform(rng, (fan_in, units)),
            "bias": initializers.zeros((units,)),
        }
        self.grads = {name: np.zeros_like(value) for name, value in self.params.items()}
        self.x: np.ndarray | None = None  # (B, in), kept for backward
        self.kernel_used: np.ndarray | None = None  # W, or W ⊙ M under DropConnect
        self.mask: np.ndarray | None = None  # DropConnect mask of the last training batch

    def new_mask(self) -> np.ndarray:
        """A fresh DropConnect mask ``[u ≥ P] / (1 − P)``, shape of W (tests may replace this)."""
        kernel = self.params["kernel"]
        uniform = self.rng.random(kernel.shape, dtype=np.float32).astype(kernel.dtype, copy=False)
        if self.reference:
            return dropconnect_mask_ref(uniform, self.dropconnect)
        mask = np.empty_like(uniform)
        dropconnect_mask(uniform, self.dropconnect, mask)
        return mask

    def effective_kernel(self, training: bool) -> np.ndarray:
        kernel = self.params["kernel"]
        self.mask = self.new_mask() if training and self.dropconnect > 0 else None
        if self.mask is None:
            return kernel
        if self.reference:
            return kernel * self.mask
        masked = np.empty_like(kernel)
        multiply(kernel, self.mask, masked)
        return masked

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        x2 = x.reshape(-1, x.shape[-1])  # (B, in)
        kernel = self.effective_kernel(training)  # (in, units)
        self.x, self.kernel_used = x2, kernel
        if self.reference:
            y = dense_forward_ref(x2, kernel, self.params["bias"])
        else:
            y = x2 @ kernel  # (B, units), BLAS
            add_bias(y, self.params["bias"])
        return y.reshape(*x.shape[:-1], y.shape[-1])

    def backward(self, dy: np.ndarray) -> np.ndarray:
        dy2 = dy.reshape(-1, dy.shape[-1])  # (B, units)
        kernel = self.params["kernel"]
        if self.reference:
            dx, dkernel, dbias = dense_backward_ref(self.x, self.kernel_used, dy2)
            if self.mask is not None:
                dkernel = dkernel * self.mask
            if self.l1 or self.l2:
                dkernel = dkernel + penalty_grad_ref(kernel, self.l1, self.l2)
            self.grads = {"kernel": dkernel, "bias": dbias}
        else:
            dx = dy2 @ self.kernel_used.T  # (B, in), BLAS
            dkernel = self.x.T @ dy2  # (in, units), BLAS
            if self.mask is not None:
                multiply(dkernel, self.mask, dkernel)
            if self.l1 or self.l2:
                add_penalty_grad(kernel, self.l1, self.l2, dkernel)
            dbias = np.empty_like(self.params["bias"])
            bias_grad(dy2, dbias)
            self.grads = {"kernel": dkernel, "bias": dbias}
        return dx.reshape(*dy.shape[:-1], dx.shape[-1])

    def penalty(self) -> float:
        if not (self.l1 or self.l2):
            return 0.0
        return float(penalty_ref(self.params["kernel"], self.l1, self.l2))
