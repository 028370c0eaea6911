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

The matrix products go to NumPy's BLAS, on its own threads (`engine.threads`):
a product inside ``@njit`` would call SciPy's second BLAS (see PERF.md).  The kernels below are the fused
element-wise work around them.

Two shortcuts of the cpu backend, both set by the network:

* ``activation``: the activation step after this layer (relu, tanh, sigmoid,
  linear) runs inside it — bias and activation in one pass forward, the
  activation's slope and ∂L/∂b in one pass backward
  (`engine.layers.activations.bias_activation_forward`).
* ``input_grad = False`` on the network's first layer: ∂L/∂x of the data is
  never used, and it is one of the three products; ``backward`` returns None.

Initialisation: W Glorot-uniform, b zeros (Keras's defaults).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from nnrun.dsl.spec import LayerInfo

from .. import initializers
from .activations import (FUNCTIONS, FUSED_CODES, VECTOR_FORMS, activation_backward, activation_inplace,
                          bias_activation_forward)
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
    adds it as its own `Activation` step (and on the cpu backend may hand it
    back with `fuse_activation`).
    """

    #: False: ``backward`` skips ∂L/∂x and returns None (the network's first layer).
    input_grad = True

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
        self.activation: str | None = None  # fused activation step (see fuse_activation)
        self.y: np.ndarray | None = None  # (B, units), its output, kept for backward

    def fuse_activation(self, name: str) -> None:
        """Apply the activation ``name`` (a key of `FUSED_CODES`) inside this layer from now on."""
        if name not in FUSED_CODES:
            raise ValueError(f"{self.name}: cannot fuse the activation {name!r}")
        self.activation = name

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
        bias = self.params["bias"]
        if self.reference:
            y = dense_forward_ref(x2, kernel, bias)
            if self.activation not in (None, "linear"):
                y = FUNCTIONS[self.activation][2](y, 0.0)  # its plain-NumPy forward
        else:
            y = np.matmul(x2, kernel)  # (B, units), BLAS
            if self.activation is None:
                add_bias(y, bias)
            elif self.activation in VECTOR_FORMS:  # numba's tanh/exp are scalar: NumPy's are vector code
                add_bias(y, bias)
                activation_inplace(y, self.activation)
            else:
                bias_activation_forward(y, bias, FUSED_CODES[self.activation])
        self.y = y
        return y.reshape(*x.shape[:-1], y.shape[-1])

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        dy2 = dy.reshape(-1, dy.shape[-1])  # (B, units), ∂L/∂y
        kernel = self.params["kernel"]
        if self.reference:
            if self.activation not in (None, "linear"):
                # ∂L/∂z, plain NumPy; y stands in for z, as relu's [z > 0] = [y > 0]
                dy2 = FUNCTIONS[self.activation][3](self.y, self.y, dy2, 0.0)
            dx, dkernel, dbias = dense_backward_ref(self.x, self.kernel_used, dy2)
            if self.mask is not None:
                dkernel = dkernel * self.mask
            if self.l1 or self.l2:
                dkernel = dkernel + penalty_grad_ref(kernel, self.l1, self.l2)
        else:
            dbias = np.empty_like(self.params["bias"])
            if self.activation is None:
                bias_grad(dy2, dbias)
            else:  # ∂L/∂z = ∂L/∂y · act'(z), then ∂L/∂b = Σ ∂L/∂z
                dz = np.empty(dy2.shape, dtype=dy2.dtype)
                activation_backward(self.y.reshape(-1), dy2.reshape(-1), FUSED_CODES[self.activation], dz.reshape(-1))
                bias_grad(dz, dbias)
                dy2 = dz
            dx = np.matmul(dy2, self.kernel_used.T) if self.input_grad else None  # (B, in), BLAS
            dkernel = np.matmul(self.x.T, dy2)  # (in, units), BLAS
            if self.mask is not None:
                multiply(dkernel, self.mask, dkernel)
            if self.l1 or self.l2:
                add_penalty_grad(kernel, self.l1, self.l2, dkernel)
        self.grads = {"kernel": dkernel, "bias": dbias}
        if not self.input_grad:
            return None
        return dx.reshape(*dy.shape[:-1], dx.shape[-1])

    def penalty(self) -> float:
        if not (self.l1 or self.l2):
            return 0.0
        return float(penalty_ref(self.params["kernel"], self.l1, self.l2))
