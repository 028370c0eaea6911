"""Losses, each with its gradient ∂L/∂output, averaged over the batch as Keras does.

Categorical cross-entropy fused with softmax (on the logits z; labels are class indices):

    L = (1/B) Σ_n [log Σ_j e^(z_nj) − z_n,label]       (log-sum-exp with the row maximum
                                                         subtracted: no overflow)
    ∂L/∂z = (p − onehot(label)) / B,   p = softmax(z)

Binary cross-entropy fused with sigmoid (on the logits z; targets y ∈ {0, 1}):

    L = (1/N) Σ [max(z, 0) − z·y + log(1 + e^(−|z|))]  (= −y·log σ(z) − (1−y)·log(1−σ(z)),
                                                         written so that no e^(…) overflows)
    ∂L/∂z = (σ(z) − y) / N

The network uses the fused forms whenever the last step is softmax (cce) or
sigmoid (bce): the gradient is then exact and cannot blow up.  Otherwise (cce or
bce after some other activation) the generic forms take the outputs as
probabilities and clip them to [ε, 1 − ε], ε = 1e-7, like Keras:

    cce:  L = −(1/B) Σ_n log clip(p_n,label)          ∂L/∂p_n,label = −1 / (B·p)
    bce:  L = −(1/N) Σ [y·log clip(p) + (1−y)·log(1 − clip(p))]
                                                     ∂L/∂p = (−y/p + (1−y)/(1−p)) / N
    (the gradient is 0 where the clip is active; unlike Keras, cce does not first
     renormalise the row to sum to 1.)

Regression (mean over the batch and the outputs, N = B·outputs):

    mse:  L = (1/N) Σ (ŷ − y)²       ∂L/∂ŷ = 2·(ŷ − y) / N
    mae:  L = (1/N) Σ |ŷ − y|        ∂L/∂ŷ = sign(ŷ − y) / N

Labels: cce takes int class indices ``(B,)``; bce float 0/1 ``(B,)`` or
``(B, 1)``; mse/mae float of the output's shape.
"""
from __future__ import annotations

import numpy as np
from numba import njit

EPSILON = 1e-7  # Keras's backend epsilon, the clip for the generic cross-entropies

# ------------------------------------------------------------------- kernels (cpu)


@njit(cache=True)
def softmax_cce(logits, labels, probs, grad):  # logits, probs, grad (B, C); labels (B,) → mean loss
    rows, classes = logits.shape
    total = 0.0
    for n in range(rows):
        m = logits[n, 0]
        for j in range(1, classes):
            m = max(m, logits[n, j])
        sum_exp = 0.0
        for j in range(classes):
            e = np.exp(logits[n, j] - m)
            probs[n, j] = e
            sum_exp += e
        total += m + np.log(sum_exp) - logits[n, labels[n]]
        for j in range(classes):
            probs[n, j] /= sum_exp
            grad[n, j] = probs[n, j] / rows
        grad[n, labels[n]] -= 1.0 / rows
    return total / rows


@njit(cache=True)
def sigmoid_bce(logits, targets, probs, grad):  # all flat (N,) → mean loss
    count = logits.size
    total = 0.0
    for i in range(count):
        z, y = logits[i], targets[i]
        e = np.exp(-abs(z))  # ≤ 1
        total += max(z, 0.0) - z * y + np.log1p(e)
        p = 1.0 / (1.0 + e) if z >= 0 else e / (1.0 + e)
        probs[i] = p
        grad[i] = (p - y) / count
    return total / count


@njit(cache=True)
def cce(probs, labels, grad):  # probs, grad (B, C); labels (B,) → mean loss (clipped)
    rows = probs.shape[0]
    total = 0.0
    grad[:] = 0.0
    for n in range(rows):
        p = probs[n, labels[n]]
        clipped = min(max(p, EPSILON), 1.0 - EPSILON)
        total -= np.log(clipped)
        if p == clipped:
            grad[n, labels[n]] = -1.0 / (rows * p)
    return total / rows


@njit(cache=True)
def bce(probs, targets, grad):  # all flat (N,) → mean loss (clipped)
    count = probs.size
    total = 0.0
    for i in range(count):
        p, y = probs[i], targets[i]
        clipped = min(max(p, EPSILON), 1.0 - EPSILON)
        total -= y * np.log(clipped) + (1.0 - y) * np.log(1.0 - clipped)
        grad[i] = (-y / p + (1.0 - y) / (1.0 - p)) / count if p == clipped else 0.0
    return total / count


@njit(cache=True)
def mse(pred, targets, grad):  # all flat (N,) → mean loss
    count = pred.size
    total = 0.0
    for i in range(count):
        d = pred[i] - targets[i]
        total += d * d
        grad[i] = 2.0 * d / count
    return total / count


@njit(cache=True)
def mae(pred, targets, grad):  # all flat (N,) → mean loss
    count = pred.size
    total = 0.0
    for i in range(count):
        d = pred[i] - targets[i]
        total += abs(d)
        grad[i] = (1.0 if d > 0 else (-1.0 if d < 0 else 0.0)) / count
    return total / count


# ------------------------------------------------------ plain-NumPy reference (oracle)
# Each returns (mean loss, ∂L/∂input, predictions) with the kernels' shapes.


def softmax_cce_ref(logits, labels):
    rows = logits.shape[0]
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_sum_exp = np.log(np.exp(shifted).sum(axis=1))
    probs = np.exp(shifted - log_sum_exp[:, None])
    loss = float((log_sum_exp - shifted[np.arange(rows), labels]).mean())
    onehot = np.zeros_like(logits)
    onehot[np.arange(rows), labels] = 1
    return loss, (probs - onehot) / rows, probs


def sigmoid_bce_ref(logits, targets):
    e = np.exp(-np.abs(logits))
    loss = float((np.maximum(logits, 0) - logits * targets + np.log1p(e)).mean())
    probs = np.where(logits >= 0, 1 / (1 + e), e / (1 + e))
    return loss, (probs - targets) / logits.size, probs


def cce_ref(probs, labels):
    rows = probs.shape[0]
    p = probs[np.arange(rows), labels]
    clipped = np.clip(p, EPSILON, 1 - EPSILON)
    grad = np.zeros_like(probs)
    with np.errstate(divide="ignore"):
        grad[np.arange(rows), labels] = np.where(p == clipped, -1 / (rows * p), 0)
    return float(-np.log(clipped).mean()), grad, probs


def bce_ref(probs, targets):
    clipped = np.clip(probs, EPSILON, 1 - EPSILON)
    loss = float(-(targets * np.log(clipped) + (1 - targets) * np.log(1 - clipped)).mean())
    with np.errstate(divide="ignore", invalid="ignore"):
        grad = np.where(probs == clipped, (-targets / probs + (1 - targets) / (1 - probs)) / probs.size, 0)
    return loss, grad.astype(probs.dtype), probs


def mse_ref(pred, targets):
    d = pred - targets
    return float((d * d).mean()), 2 * d / d.size, pred


def mae_ref(pred, targets):
    d = pred - targets
    return float(np.abs(d).mean()), np.sign(d) / d.size, pred


# ------------------------------------------------------------------------- the loss

# (loss name, activation it is fused with or None) → (kernel, reference)
FORMS = {
    ("cce", "softmax"): (softmax_cce, softmax_cce_ref),
    ("bce", "sigmoid"): (sigmoid_bce, sigmoid_bce_ref),
    ("cce", None): (cce, cce_ref),
    ("bce", None): (bce, bce_ref),
    ("mse", None): (mse, mse_ref),
    ("mae", None): (mae, mae_ref),
}


class Loss:
    """One loss of the network; ``fused`` is "softmax", "sigmoid" or None.

    When fused, ``__call__`` receives the logits (the input of the final
    activation) and returns the activation's output as predictions.
    """

    def __init__(self, name: str, *, fused: str | None = None, reference: bool = False) -> None:
        if (name, fused) not in FORMS:
            raise ValueError(f"no loss {name!r}" + (f" fused with {fused}" if fused else ""))
        self.name, self.fused, self.reference = name, fused, reference
        self.kernel, self.kernel_ref = FORMS[(name, fused)]

    @staticmethod
    def fuses(name: str, last_activation: str | None) -> str | None:
        """The activation the loss ``name`` fuses with when the network ends in ``last_activation``."""
        return last_activation if (name, last_activation) in FORMS else None

    def __call__(self, output: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        """(mean loss, ∂L/∂output, predictions); ``output`` is ``(B, *out)``."""
        if self.name == "cce":
            inputs = output.reshape(-1, output.shape[-1])  # (B, C)
            targets = class_indices(y, inputs.shape)
        else:
            inputs = output.reshape(-1)  # (N,)
            targets = np.asarray(y, dtype=output.dtype).reshape(-1)
            if targets.size != inputs.size:
                raise ValueError(
                    f"{self.name}: targets have {targets.size} values, the network outputs {inputs.size} "
                    f"(shape {output.shape})"
                )
        if self.reference:
            loss, grad, pred = self.kernel_ref(inputs, targets)
        else:
            grad = np.empty_like(inputs)
            if self.fused:
                pred = np.empty_like(inputs)
                loss = self.kernel(inputs, targets, pred, grad)
            else:
                pred = inputs
                loss = self.kernel(inputs, targets, grad)
        return float(loss), grad.reshape(output.shape), pred.reshape(output.shape)


def class_indices(y: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``y`` as int64 class indices ``(B,)``, checked against ``shape = (B, C)``."""
    labels = np.asarray(y)
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"cce needs integer class indices, got labels of dtype {labels.dtype}")
    labels = labels.reshape(-1).astype(np.int64, copy=False)
    rows, classes = shape
    if labels.size != rows:
        raise ValueError(f"cce: {labels.size} labels for a batch of {rows} outputs")
    if labels.size and (labels.min() < 0 or labels.max() >= classes):
        raise ValueError(f"cce: labels must lie in [0, {classes}), got {labels.min()}…{labels.max()}")
    return labels
