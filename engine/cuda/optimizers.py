"""SGD (momentum, Nesterov) and Adam on the GPU, with gradient clipping (formulas: `engine.optimizers`).

The parameters and the slots (velocity; m and v) stay on the device.  The clip
factor c / max(‖g‖, c) is computed on the device too (`clip_scale_kernel`) and
read by the update kernels from a one-element array, so a step never waits for
a number to come back to the host.
"""
from __future__ import annotations

import math

import numpy as np
from numba import cuda, float32

from nnrun.engine import optimizers as cpu

from .common import SQUARE, empty, fill, flat, grid, to_host, total, zeros


@cuda.jit
def clip_scale_kernel(squares, clip, scale):  # scale[0] = c / max(√Σg², c)
    if cuda.grid(1) == 0:
        norm = math.sqrt(squares[0])
        scale[0] = clip / max(norm, clip)


@cuda.jit
def sgd_kernel(param, grad, scale, lr):  # flat (N,), in place
    s = float32(scale[0])
    for i in range(cuda.grid(1), param.size, cuda.gridsize(1)):
        param[i] -= float32(lr) * s * grad[i]


@cuda.jit
def sgd_momentum_kernel(param, grad, scale, velocity, lr, momentum, nesterov):  # flat (N,), in place
    s = float32(scale[0])
    for i in range(cuda.grid(1), param.size, cuda.gridsize(1)):
        g = s * grad[i]
        v = float32(momentum) * velocity[i] - float32(lr) * g
        velocity[i] = v
        if nesterov:
            param[i] += float32(momentum) * v - float32(lr) * g
        else:
            param[i] += v


@cuda.jit
def adam_kernel(param, grad, scale, m, v, alpha, beta1, beta2, eps):  # flat (N,), in place
    s = float32(scale[0])
    for i in range(cuda.grid(1), param.size, cuda.gridsize(1)):
        g = s * grad[i]
        m[i] += float32(1.0 - beta1) * (g - m[i])
        v[i] += float32(1.0 - beta2) * (g * g - v[i])
        param[i] -= float32(alpha) * m[i] / (math.sqrt(v[i]) + float32(eps))


class DeviceOptimizer:
    """Mixed into `engine.optimizers.SGD`/`Adam`: device slots, device clipping, host copies for `state`."""

    def __init__(self, spec, params, *, reference: bool = False) -> None:
        self.spec, self.params, self.reference = spec, params, reference
        self.iterations = 0
        self.slot_arrays = {slot: {key: zeros(p.shape) for key, p in params.items()} for slot in self.slots}
        self.unit_scale = empty((1,), np.float64)
        fill(self.unit_scale, 1.0)

    def step(self, grads) -> None:
        self.iterations += 1
        for key, param in self.params.items():
            flat_grad = flat(grads[key])
            if self.spec.clip is None:
                scale = self.unit_scale
            else:
                scale = total(flat_grad, SQUARE)
                clip_scale_kernel[1, 1](scale, float(self.spec.clip), scale)
            slots = [flat(self.slot_arrays[slot][key]) for slot in self.slots]
            self.update(flat(param), flat_grad, scale, *slots)

    def state(self) -> dict[str, np.ndarray]:
        out = {"iterations": np.array(self.iterations, dtype=np.int64)}
        for slot, arrays in self.slot_arrays.items():
            out.update({f"{slot}/{key}": to_host(array) for key, array in arrays.items()})
        return out

    # load_state is the CPU class's: ``device_array[...] = host_array`` copies to the device


class SGD(DeviceOptimizer, cpu.SGD):
    def __init__(self, spec, params, *, reference: bool = False) -> None:
        self.slots = ("velocity",) if spec.momentum > 0 else ()
        DeviceOptimizer.__init__(self, spec, params, reference=reference)

    def update(self, param, grad, scale, *slots):
        spec = self.spec
        if not slots:
            sgd_kernel[grid(param.size)](param, grad, scale, spec.lr)
        else:
            sgd_momentum_kernel[grid(param.size)](param, grad, scale, slots[0], spec.lr, spec.momentum,
                                                  spec.nesterov)


class Adam(DeviceOptimizer, cpu.Adam):
    def update(self, param, grad, scale, m, v):
        spec, t = self.spec, self.iterations
        alpha = spec.lr * math.sqrt(1.0 - spec.beta2**t) / (1.0 - spec.beta1**t)
        adam_kernel[grid(param.size)](param, grad, scale, m, v, alpha, spec.beta1, spec.beta2, spec.eps)


def make_optimizer(spec, params, *, reference: bool = False):
    if spec.name == "sgd":
        return SGD(spec, params, reference=reference)
    if spec.name == "adam":
        return Adam(spec, params, reference=reference)
    raise ValueError(f"unknown optimizer {spec.name!r}; expected 'sgd' or 'adam'")
