"""Gradient checks by central differences, in float64.

The derivative of a scalar function f at x, one coordinate at a time:

    ∂f/∂x_i ≈ (f(x + ε·e_i) − f(x − ε·e_i)) / 2ε        (error O(ε²))

A layer's backward pass is checked against this on the scalar
``L = Σ forward(x) · dy + penalty()`` for a fixed random ``dy``: then ``∂L/∂y = dy``,
so ``backward(dy)`` must return ``∂L/∂x`` and set ``grads[k] = ∂L/∂params[k]``.

float32 has ~7 significant digits, too few for differences with ε small enough
to be accurate, so the check promotes the input and the layer's parameters to
float64 (the Numba kernels then compile a float64 specialisation).
"""
from __future__ import annotations

from typing import Callable

import numpy as np


def numeric_grad(f: Callable[[np.ndarray], float], x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """∂f/∂x by central differences; ``x`` is perturbed in place and restored."""
    grad = np.zeros(x.shape, dtype=np.float64)
    flat_x = x.reshape(-1)  # a view: writing flat_x[i] perturbs x
    flat_grad = grad.reshape(-1)
    for i in range(flat_x.size):
        saved = flat_x[i]
        flat_x[i] = saved + eps
        f_plus = float(f(x))
        flat_x[i] = saved - eps
        f_minus = float(f(x))
        flat_x[i] = saved
        flat_grad[i] = (f_plus - f_minus) / (2.0 * eps)
    return grad


def check_layer_grads(
    layer,
    x: np.ndarray,
    rtol: float = 1e-5,
    atol: float = 1e-7,
    *,
    eps: float = 1e-6,
    seed: int = 0,
    training: bool = True,
    threads: int | None = 1,
) -> dict[str, float]:
    """Compare ``layer.backward`` with central differences; raise AssertionError on a mismatch.

    Checks ∂L/∂x and every entry of ``layer.params`` (L as in the module docstring).
    The layer is changed: its parameters become float64 copies.  Before every
    forward call ``layer.rng`` is reset to ``default_rng(seed)``, so a layer that
    draws its train-time randomness (dropout, DropConnect masks) from ``self.rng``
    draws the same mask each time and is checked as the fixed function it is for
    one batch.  Returns the largest absolute difference per checked array
    (``"x"`` and each param name), for a test that wants to report them.

    ``threads``: Numba threads during the check (None: leave the setting alone).
    The check calls the layer thousands of times on tiny arrays; on a busy
    machine each parallel launch can wait milliseconds for a core, so one
    thread is the default.
    """
    if threads is not None:
        import numba

        before = numba.get_num_threads()
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
        try:
            return check_layer_grads(layer, x, rtol, atol, eps=eps, seed=seed, training=training, threads=None)
        finally:
            numba.set_num_threads(before)

    x = np.array(x, dtype=np.float64)  # a copy: numeric_grad perturbs it in place
    for name in layer.params:
        layer.params[name] = np.array(layer.params[name], dtype=np.float64)

    def forward(inp: np.ndarray) -> np.ndarray:
        layer.rng = np.random.default_rng(seed)
        return layer.forward(inp, training)

    y = forward(x)
    dy = np.random.default_rng(seed + 1).standard_normal(y.shape)

    def loss(inp: np.ndarray) -> float:
        return float(np.sum(forward(inp) * dy) + layer.penalty())

    analytic_dx = np.array(layer.backward(dy), dtype=np.float64)
    analytic = {name: np.array(g, dtype=np.float64) for name, g in layer.grads.items()}

    errors: dict[str, float] = {}
    failures: list[str] = []

    def compare(what: str, got: np.ndarray, expected: np.ndarray) -> None:
        if got.shape != expected.shape:
            failures.append(f"{what}: backward gave shape {got.shape}, expected {expected.shape}")
            return
        diff = np.abs(got - expected)
        errors[what] = float(diff.max()) if diff.size else 0.0
        bad = diff > atol + rtol * np.abs(expected)
        if bad.any():
            i = np.unravel_index(np.argmax(diff - rtol * np.abs(expected)), diff.shape)
            failures.append(
                f"{what}: {int(bad.sum())} of {diff.size} entries differ; worst at {tuple(map(int, i))}: "
                f"backward {got[i]:.9g}, central difference {expected[i]:.9g}"
            )

    compare("x", analytic_dx, numeric_grad(loss, x, eps))
    for name, param in layer.params.items():
        if name not in analytic:
            failures.append(f"{name}: backward set no gradient for this parameter")
            continue
        compare(name, analytic[name], numeric_grad(lambda _p: loss(x), param, eps))

    if failures:
        raise AssertionError(f"gradient check of {layer.name!r} failed:\n  " + "\n  ".join(failures))
    return errors
