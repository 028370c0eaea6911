"""Pooling's two Numba paths — the serial whole-batch kernels (``fast=True``, the
default) and the readable per-sample ones (``fast=False``) — against the NumPy
reference and central differences, on the cases of test_pool.py and random shapes."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from nnrun.engine.gradcheck import check_layer_grads
from nnrun.engine.layers.padding import Window, as_volume, to_3d
from nnrun.engine.layers.pool import (
    Pool,
    avg_pool_backward_fast,
    max_pool_backward_fast,
    max_pool_forward_inside,
    pool_backward_reference,
    pool_forward_fast,
    pool_forward_reference,
)
from tests.test_pool import CASES, IDS, pool_info, pool_problems, random_input

PATHS = pytest.mark.parametrize("fast", [True, False], ids=["fast", "readable"])


@pytest.fixture(params=CASES, ids=IDS)
def info(request):
    input_shape, mode, kernel, stride, padding, is_global, _ = request.param
    return pool_info(input_shape, mode, kernel, stride, padding, is_global)


@PATHS
def test_each_path_equals_the_reference_in_float32(info, fast):
    layer = Pool(info, np.random.default_rng(0), fast=fast)
    x = random_input(info, batch=3)
    y = layer.forward(x, training=True)
    dy = np.random.default_rng(3).standard_normal(y.shape).astype(np.float32)
    dx = layer.backward(dy)
    w, x5 = layer.window, as_volume(x)
    y_ref = pool_forward_reference(x5, layer.mode, w.kernel_3d, w.stride_3d, w.pad_before_3d, w.pad_after_3d)
    dx_ref = pool_backward_reference(x5, dy.reshape(y_ref.shape), layer.mode, w.kernel_3d, w.stride_3d,
                                     w.pad_before_3d, w.pad_after_3d)
    assert y.dtype == dx.dtype == np.float32
    np.testing.assert_allclose(y, y_ref.reshape(y.shape), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(dx, dx_ref.reshape(x.shape), rtol=1e-6, atol=1e-6)


def test_the_readable_path_by_central_differences(info):
    # (the fast path, the default, is checked in test_pool.py)
    layer = Pool(info, np.random.default_rng(0), fast=False)
    assert set(check_layer_grads(layer, random_input(info, dtype=np.float64), rtol=1e-6, atol=1e-8)) == {"x"}


@PATHS
def test_max_sends_the_gradient_to_the_first_of_equal_maxima(fast):
    layer = Pool(pool_info((4, 4, 2), "max", (2,)), np.random.default_rng(0), fast=fast)
    layer.forward(np.ones((1, 4, 4, 2), dtype=np.float32), training=True)
    dx = layer.backward(np.full((1, 2, 2, 2), 5.0, dtype=np.float32))
    expected = np.zeros((4, 4, 2))
    expected[::2, ::2] = 5.0
    np.testing.assert_array_equal(dx[0], expected)


@settings(max_examples=25, deadline=None)
@given(pool_problems(), st.integers(0, 2**31 - 1))
def test_fast_kernels_equal_the_reference_on_random_shapes(problem, seed):
    mode, sizes, kernel, stride, padding, channels, batch = problem
    try:
        w = Window(sizes, kernel, stride, padding)
    except ValueError:
        assume(False)
    assume(all(pad < k for pad, k in zip(w.pad_before + w.pad_after, w.kernel + w.kernel)))
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, *to_3d(sizes, 1), channels)).astype(np.float32)
    y = np.empty((batch, *w.output_3d, channels), dtype=np.float32)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dx = np.empty_like(x)
    argmax = np.empty(y.shape, dtype=np.int32)
    pool_forward_fast(x, mode == "max", *w.kernel_3d, *w.stride_3d, *w.pad_before_3d, y, argmax)
    if mode == "max" and not any(w.pad_before_3d + w.pad_after_3d):  # the layer's kernel for this case
        y_inside, argmax_inside = np.empty_like(y), np.empty_like(argmax)
        max_pool_forward_inside(x, *w.kernel_3d, *w.stride_3d, y_inside, argmax_inside)
        np.testing.assert_array_equal(y_inside, y)
        np.testing.assert_array_equal(argmax_inside, argmax)
    if mode == "max":
        max_pool_backward_fast(dy, argmax, dx)
    else:
        avg_pool_backward_fast(dy, *w.kernel_3d, *w.stride_3d, *w.pad_before_3d, dx)
    y_ref = pool_forward_reference(x, mode, w.kernel_3d, w.stride_3d, w.pad_before_3d, w.pad_after_3d)
    dx_ref = pool_backward_reference(x, dy, mode, w.kernel_3d, w.stride_3d, w.pad_before_3d, w.pad_after_3d)
    np.testing.assert_allclose(y, y_ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dx, dx_ref, rtol=1e-5, atol=1e-6)
