"""The losses on the GPU (formulas in `engine.losses`): one thread per row (cce) or per value.

Each kernel writes ∂L/∂output, the predictions, and each row's or value's loss;
`common.total` adds those up on the device, and only that one number is
copied back.  Labels are checked on the host (`engine.losses.class_indices`)
and copied to the device with the batch.
"""
from __future__ import annotations

import math

import numpy as np
from numba import cuda, float32

from nnrun.engine import losses as cpu

from .common import empty, flat, grid, last, to_device, to_host, total

EPSILON = cpu.EPSILON


@cuda.jit
def softmax_cce_kernel(logits, labels, probs, grad, row_loss):  # (B, C), labels (B,), row_loss (B,)
    rows, classes = logits.shape
    for n in range(cuda.grid(1), rows, cuda.gridsize(1)):
        m = logits[n, 0]
        for j in range(1, classes):
            m = max(m, logits[n, j])
        sum_exp = float32(0.0)
        for j in range(classes):
            e = math.exp(logits[n, j] - m)
            probs[n, j] = e
            sum_exp += e
        row_loss[n] = m + math.log(sum_exp) - logits[n, labels[n]]
        for j in range(classes):
            probs[n, j] /= sum_exp
            grad[n, j] = probs[n, j] / rows
        grad[n, labels[n]] -= float32(1.0) / rows


@cuda.jit
def cce_kernel(probs, labels, grad, row_loss):  # probabilities (B, C); the clipped generic form
    rows, classes = probs.shape
    for n in range(cuda.grid(1), rows, cuda.gridsize(1)):
        for j in range(classes):
            grad[n, j] = 0.0
        p = probs[n, labels[n]]
        clipped = min(max(p, float32(EPSILON)), float32(1.0 - EPSILON))
        row_loss[n] = -math.log(clipped)
        if p == clipped:
            grad[n, labels[n]] = float32(-1.0) / (rows * p)


@cuda.jit
def sigmoid_bce_kernel(logits, targets, probs, grad, loss):  # all flat (N,)
    count = logits.size
    for i in range(cuda.grid(1), count, cuda.gridsize(1)):
        z, y = logits[i], targets[i]
        e = math.exp(-abs(z))  # ≤ 1
        loss[i] = max(z, float32(0.0)) - z * y + math.log1p(e)
        p = float32(1.0) / (float32(1.0) + e) if z >= 0 else e / (float32(1.0) + e)
        probs[i] = p
        grad[i] = (p - y) / count


@cuda.jit
def bce_kernel(probs, targets, grad, loss):  # all flat (N,)
    count = probs.size
    one = float32(1.0)
    for i in range(cuda.grid(1), count, cuda.gridsize(1)):
        p, y = probs[i], targets[i]
        clipped = min(max(p, float32(EPSILON)), float32(1.0 - EPSILON))
        loss[i] = -(y * math.log(clipped) + (one - y) * math.log(one - clipped))
        grad[i] = (-y / p + (one - y) / (one - p)) / count if p == clipped else float32(0.0)


@cuda.jit
def mse_kernel(pred, targets, grad, loss):  # all flat (N,)
    count = pred.size
    for i in range(cuda.grid(1), count, cuda.gridsize(1)):
        d = pred[i] - targets[i]
        loss[i] = d * d
        grad[i] = float32(2.0) * d / count


@cuda.jit
def mae_kernel(pred, targets, grad, loss):  # all flat (N,)
    count = pred.size
    for i in range(cuda.grid(1), count, cuda.gridsize(1)):
        d = pred[i] - targets[i]
        loss[i] = abs(d)
        grad[i] = (float32(1.0) if d > 0 else (float32(-1.0) if d < 0 else float32(0.0))) / count


# (loss name, fused activation) → (kernel, one thread per row?)
FORMS = {
    ("cce", "softmax"): softmax_cce_kernel,
    ("bce", "sigmoid"): sigmoid_bce_kernel,
    ("cce", None): cce_kernel,
    ("bce", None): bce_kernel,
    ("mse", None): mse_kernel,
    ("mae", None): mae_kernel,
}


class Loss(cpu.Loss):
    """`engine.losses.Loss` on device outputs: returns (mean loss as a float, ∂L/∂output, predictions), the
    last two on the device."""

    def __init__(self, name: str, *, fused: str | None = None, reference: bool = False) -> None:
        super().__init__(name, fused=fused, reference=reference)
        self.kernel = FORMS[(name, fused)]

    def __call__(self, output, y):
        if self.name == "cce":
            inputs = output.reshape(-1, last(output))  # (B, C)
            targets = to_device(cpu.class_indices(y, inputs.shape))
            items = inputs.shape[0]
        else:
            inputs = flat(output)  # (N,)
            host_targets = np.asarray(y, dtype=np.float32).reshape(-1)
            if host_targets.size != inputs.size:
                raise ValueError(
                    f"{self.name}: targets have {host_targets.size} values, the network outputs {inputs.size} "
                    f"(shape {output.shape})"
                )
            targets = to_device(host_targets)
            items = inputs.size
        grad, each = empty(inputs.shape), empty((items,))
        if self.fused:
            pred = empty(inputs.shape)
            self.kernel[grid(items)](inputs, targets, pred, grad, each)
        else:
            pred = inputs
            self.kernel[grid(items)](inputs, targets, grad, each)
        loss = float(to_host(total(each))[0]) / items
        return loss, grad.reshape(output.shape), pred.reshape(output.shape)
