"""Weight initialisers, Keras's defaults.

Glorot (Xavier) uniform, Keras's default for `Dense` and `Conv`:

    W ~ U(−limit, +limit),   limit = √(6 / (fan_in + fan_out))

Fans follow Keras's ``compute_fans``: a kernel of shape ``(*K, C_in, F)`` has a
receptive field of ``∏K`` cells, so ``fan_in = ∏K·C_in`` and ``fan_out = ∏K·F``;
a dense kernel ``(in, units)`` is the case ``∏K = 1``.

Every initialiser draws from the generator it is given, never from global
state, so a seed makes a network bit-for-bit repeatable.
"""
from __future__ import annotations

import math

import numpy as np


def fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a kernel, Keras's way."""
    if len(shape) < 2:
        raise ValueError(f"a kernel needs at least 2 axes, got shape {shape}")
    receptive_field = math.prod(shape[:-2])
    return receptive_field * shape[-2], receptive_field * shape[-1]


CHUNK = 1 << 20  # numbers drawn at a time: float64 draws for a whole large kernel would cost 12 bytes a weight


def glorot_uniform(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """U(−√(6/(fan_in+fan_out)), +√(6/(fan_in+fan_out))), float32.

    Drawn a chunk at a time into the float32 array: the same numbers as one draw of the
    whole shape (the generator's stream does not depend on how it is cut), without a
    float64 copy of the kernel."""
    fan_in, fan_out = fans(shape)
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    kernel = np.empty(shape, dtype=np.float32)
    flat = kernel.reshape(-1)
    for start in range(0, flat.size, CHUNK):
        stop = min(start + CHUNK, flat.size)
        flat[start:stop] = rng.uniform(-limit, limit, size=stop - start)
    return kernel


def zeros(shape: tuple[int, ...]) -> np.ndarray:
    return np.zeros(shape, dtype=np.float32)


def ones(shape: tuple[int, ...]) -> np.ndarray:
    return np.ones(shape, dtype=np.float32)
