"""Optimizers, Keras 3's formulas, updating the parameters in place.

SGD (``lr``, ``momentum`` μ, ``nesterov``), velocity v starting at 0:

    μ = 0:       θ ← θ − lr·g
    μ > 0:       v ← μ·v − lr·g
                 θ ← θ + v                    (classical momentum)
                 θ ← θ + μ·v − lr·g           (Nesterov)

Adam (``lr``, β1 0.9, β2 0.999, ε 1e-7), m and v starting at 0, step t = 1, 2, …:

    m ← m + (1 − β1)·(g − m)                  (= β1·m + (1 − β1)·g)
    v ← v + (1 − β2)·(g² − v)
    α = lr·√(1 − β2^t) / (1 − β1^t)           (bias correction folded into the step size)
    θ ← θ − α·m / (√v + ε)

Gradient clipping (``clip`` c, Keras's ``clipnorm``): each gradient tensor is
scaled by c / max(‖g‖₂, c) before the update, so no tensor's norm exceeds c.

The update kernels are fused (one pass over θ, g and the slots) and take the
clip scale as an argument, so a clipped gradient is never materialised.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from nnrun.dsl.spec import OptimizerSpec

# ------------------------------------------------------------------- kernels (cpu)


@njit(cache=True)
def sum_squares(g):  # flat (N,) → Σ g²
    total = 0.0
    for i in range(g.size):
        total += g[i] * g[i]
    return total


@njit(cache=True)
def sgd_update(param, grad, scale, lr):  # flat (N,), in place
    for i in range(param.size):
        param[i] -= lr * scale * grad[i]


@njit(cache=True)
def sgd_momentum_update(param, grad, scale, velocity, lr, momentum, nesterov):  # flat (N,), in place
    for i in range(param.size):
        g = scale * grad[i]
        v = momentum * velocity[i] - lr * g
        velocity[i] = v
        if nesterov:
            param[i] += momentum * v - lr * g
        else:
            param[i] += v


@njit(cache=True)
def adam_update(param, grad, scale, m, v, alpha, beta1, beta2, eps):  # flat (N,), in place
    for i in range(param.size):
        g = scale * grad[i]
        m[i] += (1.0 - beta1) * (g - m[i])
        v[i] += (1.0 - beta2) * (g * g - v[i])
        param[i] -= alpha * m[i] / (np.sqrt(v[i]) + eps)


# ------------------------------------------------------ plain-NumPy reference (oracle)


def sgd_update_ref(param, grad, scale, lr):
    param -= lr * scale * grad


def sgd_momentum_update_ref(param, grad, scale, velocity, lr, momentum, nesterov):
    g = scale * grad
    velocity[...] = momentum * velocity - lr * g
    param += momentum * velocity - lr * g if nesterov else velocity


def adam_update_ref(param, grad, scale, m, v, alpha, beta1, beta2, eps):
    g = scale * grad
    m += (1 - beta1) * (g - m)
    v += (1 - beta2) * (g * g - v)
    param -= alpha * m / (np.sqrt(v) + eps)


def clip_scale(norm: float, clip: float | None) -> float:
    """The factor c / max(‖g‖, c) that brings a gradient's norm down to at most c."""
    return 1.0 if clip is None else clip / max(norm, clip)


# ------------------------------------------------------------------- the optimizers


class Optimizer:
    """Updates ``params`` (a dict of the layers' own arrays, keyed "layer/param") in place.

    ``slots`` names the per-parameter arrays of the method ("velocity"; "m", "v").
    """

    slots: tuple[str, ...] = ()

    def __init__(self, spec: OptimizerSpec, params: dict[str, np.ndarray], *, reference: bool = False) -> None:
        self.spec = spec
        self.params = params
        self.reference = reference
        self.iterations = 0
        self.slot_arrays = {slot: {key: np.zeros_like(p) for key, p in params.items()} for slot in self.slots}
        # flat views made once (the arrays are only ever updated in place): per key, (θ, *slots)
        self.flat = {key: (p.reshape(-1), *(self.slot_arrays[slot][key].reshape(-1) for slot in self.slots))
                     for key, p in params.items()}

    def step(self, grads: dict[str, np.ndarray]) -> None:
        """One update of every parameter from its gradient (same keys as ``params``)."""
        self.iterations += 1
        for key, (param, *slots) in self.flat.items():
            flat_grad = grads[key].reshape(-1)
            if self.spec.clip is None:
                scale = 1.0
            elif self.reference:
                scale = clip_scale(float(np.linalg.norm(flat_grad.astype(np.float64))), self.spec.clip)
            else:
                scale = clip_scale(math.sqrt(sum_squares(flat_grad)), self.spec.clip)
            self.update(param, flat_grad, scale, *slots)

    def update(self, param: np.ndarray, grad: np.ndarray, scale: float, *slots: np.ndarray) -> None:
        raise NotImplementedError

    def state(self) -> dict[str, np.ndarray]:
        """Copies of the step count and every slot, keyed "slot/layer/param"."""
        out = {"iterations": np.array(self.iterations, dtype=np.int64)}
        for slot, arrays in self.slot_arrays.items():
            out.update({f"{slot}/{key}": array.copy() for key, array in arrays.items()})
        return out

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        expected = self.state()
        missing = sorted(set(expected) - set(state))
        unexpected = sorted(set(state) - set(expected))
        if missing or unexpected:
            raise ValueError(
                f"optimizer state does not fit this network: missing {missing or 'nothing'}, "
                f"unexpected {unexpected or 'nothing'}"
            )
        for name, value in state.items():
            if np.shape(value) != expected[name].shape:
                raise ValueError(
                    f"optimizer state {name!r}: shape {np.shape(value)}, this network needs {expected[name].shape}"
                )
        self.iterations = int(state["iterations"])
        for slot, arrays in self.slot_arrays.items():
            for key, array in arrays.items():
                array[...] = state[f"{slot}/{key}"]


class SGD(Optimizer):
    def __init__(self, spec: OptimizerSpec, params: dict[str, np.ndarray], *, reference: bool = False) -> None:
        self.slots = ("velocity",) if spec.momentum > 0 else ()
        super().__init__(spec, params, reference=reference)

    def update(self, param, grad, scale, *slots):
        spec = self.spec
        if not slots:
            (sgd_update_ref if self.reference else sgd_update)(param, grad, scale, spec.lr)
            return
        kernel = sgd_momentum_update_ref if self.reference else sgd_momentum_update
        kernel(param, grad, scale, slots[0], spec.lr, spec.momentum, spec.nesterov)


class Adam(Optimizer):
    slots = ("m", "v")

    def update(self, param, grad, scale, m, v):
        spec, t = self.spec, self.iterations
        alpha = spec.lr * math.sqrt(1.0 - spec.beta2**t) / (1.0 - spec.beta1**t)
        kernel = adam_update_ref if self.reference else adam_update
        kernel(param, grad, scale, m, v, alpha, spec.beta1, spec.beta2, spec.eps)


def make_optimizer(spec: OptimizerSpec, params: dict[str, np.ndarray], *, reference: bool = False) -> Optimizer:
    if spec.name == "sgd":
        return SGD(spec, params, reference=reference)
    if spec.name == "adam":
        return Adam(spec, params, reference=reference)
    raise ValueError(f"unknown optimizer {spec.name!r}; expected 'sgd' or 'adam'")
