"""Dense layer on the GPU: the formulas of `engine.layers.dense`, products by the tiled `matmul`.

    y = x·W + b          ∂L/∂x = ∂L/∂y·Wᵀ     ∂L/∂W = xᵀ·∂L/∂y (⊙ M, + penalty′)     ∂L/∂b = Σ_batch ∂L/∂y
"""
from __future__ import annotations

import numpy as np

from nnrun.engine.layers import dense as cpu

from .common import (ABSOLUTE, SQUARE, Uniform, add_penalty_grad_kernel, column_sums, dropconnect_mask_kernel, empty,
                     flat, grid, last, multiply_kernel, to_device, to_host, total)
from .matmul import matmul


class Regularized:
    """l1/l2 and DropConnect on a device ``kernel``, shared by `Dense` and `Conv` (attributes l1, l2, dropconnect)."""

    def masked_kernel(self, training: bool):
        """W, or W ⊙ M with a fresh DropConnect mask M = [u ≥ P]/(1 − P) at train time."""
        kernel = self.params["kernel"]
        self.mask = None
        if not (training and self.dropconnect > 0):
            return kernel
        if not hasattr(self, "_uniform"):
            self._uniform = Uniform(self.rng)
        self.mask = empty(kernel.shape)
        self._uniform.fill(self.mask)  # u, then turned into the mask in place
        dropconnect_mask_kernel[grid(kernel.size)](flat(self.mask), self.dropconnect, flat(self.mask))
        masked = empty(kernel.shape)
        multiply_kernel[grid(kernel.size)](flat(kernel), flat(self.mask), flat(masked))
        return masked

    def finish_kernel_grad(self, dkernel) -> None:
        """dkernel ⊙= M (DropConnect), then += λ1·sign(W) + 2·λ2·W."""
        if self.mask is not None:
            multiply_kernel[grid(dkernel.size)](flat(dkernel), flat(self.mask), flat(dkernel))
        if self.l1 or self.l2:
            add_penalty_grad_kernel[grid(dkernel.size)](flat(self.params["kernel"]), self.l1, self.l2, flat(dkernel))

    def penalty(self) -> float:
        kernel, value = self.params["kernel"], 0.0
        if self.l1:
            value += self.l1 * float(to_host(total(kernel, ABSOLUTE))[0])
        if self.l2:
            value += self.l2 * float(to_host(total(kernel, SQUARE))[0])
        return value


class Dense(Regularized, cpu.Dense):
    """`engine.layers.dense.Dense` with device arrays (initialised on the host by the CPU class)."""

    def __init__(self, info, rng: np.random.Generator, *, reference: bool = False) -> None:
        super().__init__(info, rng, reference=reference)
        self.params = {name: to_device(value) for name, value in self.params.items()}
        self.grads = {name: empty(value.shape) for name, value in self.params.items()}

    def forward(self, x, training: bool):
        x2 = x.reshape(-1, last(x))  # (B, in)
        kernel = self.masked_kernel(training)  # (in, units)
        self.x, self.kernel_used = x2, kernel
        y = matmul(x2, kernel, bias=self.params["bias"])  # (B, units)
        return y.reshape(*x.shape[:-1], last(y))

    def backward(self, dy):
        dy2 = dy.reshape(-1, last(dy))  # (B, units)
        dx = matmul(dy2, self.kernel_used, trans_b=True)  # (B, in)
        matmul(self.x, dy2, self.grads["kernel"], trans_a=True)  # (in, units)
        self.finish_kernel_grad(self.grads["kernel"])
        column_sums(dy2, self.grads["bias"])
        return dx.reshape(*dy.shape[:-1], last(dx))
