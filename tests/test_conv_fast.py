"""The convolution's Numba paths — im2col + BLAS (``fast=True``, the default), its direct
kernel for few input channels (``fast=True``, C ≤ DIRECT_MAX_CHANNELS) and the readable per-sample loops
(``fast=False``) — each against the plain-NumPy reference and central differences, on
the cases of test_conv.py and on random shapes."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from nnrun.engine.gradcheck import check_layer_grads
from nnrun.engine.layers.conv import DIRECT_MAX_CHANNELS, DIRECT_RUN, Conv, conv_backward_reference, conv_forward_reference
from nnrun.engine.layers.im2col import col2im, im2col
from nnrun.engine.layers.padding import Window, as_volume, to_3d
from tests.test_conv import CASES, IDS, conv_info, conv_problems, random_input

# (fast, direct): direct=True takes the direct kernels whatever the shape, False im2col + BLAS
PATHS = pytest.mark.parametrize("fast, direct", [(True, True), (True, False), (False, True)],
                                ids=["direct", "im2col", "readable"])


@pytest.fixture(params=CASES, ids=IDS)
def info(request):
    input_shape, filters, kernel, stride, padding, _ = request.param
    return conv_info(input_shape, filters, kernel, stride, padding)


def reference_pass(layer, x, dy):
    """(y, dx, dkernel, dbias) of the NumPy reference, with the layer's weights."""
    w = layer.window
    kernel5 = layer.params["kernel"].reshape((*w.kernel_3d, *layer.params["kernel"].shape[-2:]))
    y = conv_forward_reference(as_volume(x), kernel5, layer.params["bias"], w.stride_3d, w.pad_before_3d,
                               w.pad_after_3d)
    dx, dkernel, dbias = conv_backward_reference(as_volume(x), kernel5, as_volume(dy), w.stride_3d,
                                                 w.pad_before_3d, w.pad_after_3d)
    return y, dx, dkernel, dbias


def check_against_reference(layer, x, seed=3, tolerance=1e-5):
    y = layer.forward(x, training=True)
    dy = np.random.default_rng(seed).standard_normal(y.shape).astype(np.float32)
    dx = layer.backward(dy)
    y_ref, dx_ref, dkernel_ref, dbias_ref = reference_pass(layer, x, dy)
    assert y.dtype == dx.dtype == layer.grads["kernel"].dtype == np.float32
    np.testing.assert_allclose(y, y_ref.reshape(y.shape), rtol=tolerance, atol=tolerance)
    np.testing.assert_allclose(dx, dx_ref.reshape(x.shape), rtol=tolerance, atol=tolerance)
    np.testing.assert_allclose(layer.grads["kernel"], dkernel_ref.reshape(layer.params["kernel"].shape),
                               rtol=tolerance, atol=tolerance)
    np.testing.assert_allclose(layer.grads["bias"], dbias_ref, rtol=tolerance, atol=tolerance)


@PATHS
def test_each_path_equals_the_reference_in_float32(info, fast, direct):
    layer = Conv(info, np.random.default_rng(0), fast=fast)
    layer.direct = direct
    layer.params["bias"][:] = np.random.default_rng(2).standard_normal(info.output_shape[-1])
    check_against_reference(layer, random_input(info, batch=3))


def test_the_readable_path_by_central_differences(info):
    # (the fast path, the default, is checked in test_conv.py)
    layer = Conv(info, np.random.default_rng(0), fast=False)
    layer.params["bias"][:] = 0.1
    assert set(check_layer_grads(layer, random_input(info, dtype=np.float64), rtol=1e-6, atol=1e-8)) == {
        "x", "kernel", "bias"}


def test_the_fast_path_is_the_default():
    layer = Conv(conv_info((6, 6, DIRECT_MAX_CHANNELS + 1), 3, (3,)), np.random.default_rng(0))
    assert layer.fast
    layer.forward(random_input(layer.info), training=True)
    assert layer._cols is not None  # the im2col rows of that batch, for the backward products


def test_few_input_channels_take_the_direct_path():
    layer = Conv(conv_info((14, 14, DIRECT_MAX_CHANNELS), 3, (3,)), np.random.default_rng(0))  # runs of 166
    layer.forward(random_input(layer.info), training=True)
    assert layer._cols is None  # no im2col copy
    layer.direct = False
    layer.forward(random_input(layer.info), training=True)
    assert layer._cols is not None


def test_short_runs_stack_samples_and_equal_the_reference():
    # 4×4 outputs: runs of 4·6 − 2 = 22 numbers in planes of 6·6 = 36 — several samples at a time
    layer = Conv(conv_info((6, 6, 2), 3, (3,)), np.random.default_rng(0))
    group = layer._group()
    assert layer._run == 22 and (group - 1) * 36 + 22 >= DIRECT_RUN > (group - 2) * 36 + 22
    layer.params["bias"][:] = 0.5
    for batch in (2 * group + 5, 1, group):  # ranges ending in a short group, one sample, one whole group
        check_against_reference(layer, random_input(layer.info, batch=batch, seed=batch), tolerance=1e-4)
        assert layer._cols is None  # it went the direct way


def test_wide_layers_take_im2col():
    layer = Conv(conv_info((6, 6, 2), DIRECT_MAX_CHANNELS + 1, (3,)), np.random.default_rng(0))
    layer.forward(random_input(layer.info), training=True)
    assert layer._cols is not None


# ------------------------------------ the direct path (C ≤ DIRECT_MAX_CHANNELS)

DIRECT_CASES = [  # input shape, filters, kernel, stride, padding
    ((9, 1), 3, (3,), (1,), "valid"),  # 1-D
    ((11, 3), 2, (4,), (2,), "same"),  # 1-D, even kernel, stride 2
    ((12, 2), 5, (5,), (3,), (2,)),  # 1-D, stride 3, explicit padding
    ((28, 28, 1), 6, (5,), (1,), "same"),  # LeNet-5's first convolution
    ((28, 28, 1), 4, (5,), (1,), "same"),  # the three-conv network's first
    ((14, 14, 4), 8, (5,), (2,), "same"),  # and its second: stride 2, C = 4
    ((7, 6, 1), 4, (2,), (2,), "same"),  # even kernel, stride 2, asymmetric padding
    ((6, 5, 2), 3, (3,), (2, 1), (1,)),  # explicit pad 1, stride per axis
    ((6, 7, 3), 2, (3, 2), (1,), "valid"),  # rectangular kernel, C = 3
    ((5, 5, 4), 1, (5,), (1,), "valid"),  # the kernel as big as the image: one output
    ((4, 5, 4, 2), 2, (2, 3, 2), (1,), "valid"),  # 3-D
    ((5, 4, 6, 1), 3, (3,), (2,), "same"),  # 3-D, stride 2, same
    ((14, 14, 6), 16, (5,), (1,), "valid"),  # LeNet-5's second convolution, C = 6
    ((7, 8, 16), 5, (3,), (2,), "same"),  # C = 16, stride 2
    ((8, 7, 32), 7, (3,), (1,), "valid"),  # C = 32, the most the direct path takes by itself
    ((4, 5, 4, 9), 3, (2,), (1,), (1,)),  # 3-D, C = 9, explicit padding
    ((7, 8, 5), 2, (3,), (3,), "valid"),  # the last input row and column are read by no output: ∂L/∂x = 0 there
    ((3, 4, 3, 4), 2, (2,), (1,), (1,)),  # 3-D, explicit pad 1, C = 4
]
DIRECT_IDS = [f"{len(c[0]) - 1}d-c{c[0][-1]}-k{'x'.join(map(str, c[2]))}-s{'x'.join(map(str, c[3]))}-{c[4]}"
              for c in DIRECT_CASES]


@pytest.mark.parametrize("case", DIRECT_CASES, ids=DIRECT_IDS)
def test_the_direct_path_equals_the_reference_in_float32(case):
    input_shape, filters, kernel, stride, padding = case
    info = conv_info(input_shape, filters, kernel, stride, padding)
    layer = Conv(info, np.random.default_rng(0))
    layer.direct = True  # whatever the length of its runs
    layer.params["bias"][:] = np.random.default_rng(2).standard_normal(filters)
    check_against_reference(layer, random_input(info, batch=5), tolerance=1e-4)
    assert layer._cols is None  # it did go the direct way


@pytest.mark.parametrize("case", DIRECT_CASES[::2], ids=DIRECT_IDS[::2])
def test_the_direct_path_by_central_differences(case):
    input_shape, filters, kernel, stride, padding = case
    info = conv_info(input_shape, filters, kernel, stride, padding)
    layer = Conv(info, np.random.default_rng(0))
    layer.direct = True
    layer.params["bias"][:] = 0.1
    assert set(check_layer_grads(layer, random_input(info, batch=2, dtype=np.float64), rtol=1e-6, atol=1e-8)) == {
        "x", "kernel", "bias"}
    assert layer._cols is None


@pytest.mark.parametrize("activation", ["relu", "tanh"])
@pytest.mark.parametrize("shape, filters, kernel, padding, batch", [
    ((28, 28, 1), 6, (5,), "same", 4),  # LeNet-5's first convolution: one sample at a time
    ((6, 6, 2), 3, (3,), "valid", 31),  # short runs: samples stacked, ranges ending in a short group
], ids=["long-runs", "stacked"])
def test_the_direct_path_applies_a_fused_activation(activation, shape, filters, kernel, padding, batch):
    info = conv_info(shape, filters, kernel, (1,), padding)
    x = random_input(info, batch=batch)
    dy = np.random.default_rng(5).standard_normal((batch, *info.output_shape)).astype(np.float32)
    results = []
    for direct in (True, False):
        layer = Conv(info, np.random.default_rng(0))
        layer.params["bias"][:] = np.random.default_rng(2).standard_normal(filters) * 0.1
        layer.direct = direct
        layer.fuse_activation(activation)
        y = layer.forward(x, training=True)
        results.append((y, layer.backward(dy), layer.grads["kernel"], layer.grads["bias"]))
        assert (layer._cols is None) == direct
    y = results[0][0]
    assert activation != "relu" or y.min() == 0.0
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_the_direct_path_skips_the_input_gradient_and_follows_the_batch_size():
    info = conv_info((9, 8, 2), 3, (3,), (2,), "same")
    layer = Conv(info, np.random.default_rng(0))
    layer.input_grad = False
    for batch in (5, 1, 5):
        x = random_input(info, batch=batch, seed=batch)
        y = layer.forward(x, training=True)
        dy = np.random.default_rng(batch).standard_normal(y.shape).astype(np.float32)
        assert layer.backward(dy) is None
        y_ref, _, dkernel_ref, dbias_ref = reference_pass(layer, x, dy)
        np.testing.assert_allclose(y, y_ref.reshape(y.shape), rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(layer.grads["kernel"], dkernel_ref.reshape(layer.params["kernel"].shape),
                                   rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(layer.grads["bias"], dbias_ref, rtol=1e-4, atol=1e-4)


def test_both_paths_agree_on_a_course_sized_layer_and_skip_the_input_gradient():
    # LeNet-5's second convolution, batch 8: K·C = 150, the shape the fast path is for
    info = conv_info((14, 14, 6), 16, (5,))
    x = random_input(info, batch=8)
    dy = np.random.default_rng(5).standard_normal((8, *info.output_shape)).astype(np.float32)
    results = {}
    for fast in (True, False):
        for input_grad in (True, False):
            layer = Conv(info, np.random.default_rng(0), fast=fast)
            layer.input_grad = input_grad
            y = layer.forward(x, training=True)
            results[fast, input_grad] = (y, layer.backward(dy), layer.grads["kernel"], layer.grads["bias"])
    assert results[True, False][1] is None and results[False, False][1] is None
    for a, b in zip(results[True, True], results[False, True]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
    for fast in (True, False):
        np.testing.assert_array_equal(results[fast, False][2], results[fast, True][2])


def test_the_work_arrays_follow_the_batch_size():
    info = conv_info((7, 6, 2), 3, (3,), (2,), "same")
    layer = Conv(info, np.random.default_rng(0))
    layer.direct = False  # the im2col path's work arrays
    for batch in (4, 1, 4):  # a smaller last batch, then full ones again
        check_against_reference(layer, random_input(info, batch=batch, seed=batch))


# ------------------------------------------------------------------ im2col / col2im


def window_or_skip(sizes, kernel, stride, padding):
    try:
        return Window(sizes, kernel, stride, padding)
    except ValueError:  # the kernel does not fit
        assume(False)


@settings(max_examples=30, deadline=None)
@given(conv_problems(max_channels=4), st.integers(0, 2**31 - 1))
def test_col2im_is_the_adjoint_of_im2col(problem, seed):
    # <im2col(x), g> = <x, col2im(g)> for every x and g: col2im sends each row back where it came from
    sizes, kernel, stride, padding, channels, _, batch = problem
    w = window_or_skip(sizes, kernel, stride, padding)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, *to_3d(sizes, 1), channels))
    rows = int(np.prod(w.kernel_3d)) * channels
    cols = np.empty((batch, *w.output_3d, rows + 1))
    im2col(x, *w.kernel_3d, *w.stride_3d, *w.pad_before_3d, cols)
    assert np.all(cols[..., -1] == 1.0)  # the bias column
    g = rng.standard_normal((batch, *w.output_3d, rows))
    dx = np.empty_like(x)
    col2im(g, *w.kernel_3d, *w.stride_3d, *w.pad_before_3d, dx)
    assert np.sum(cols[..., :-1] * g) == pytest.approx(np.sum(x * dx), rel=1e-9, abs=1e-9)


@settings(max_examples=20, deadline=None)
@given(conv_problems(max_channels=9, max_filters=6), st.integers(0, 2**31 - 1), st.booleans())
def test_the_fast_layer_equals_the_reference_on_random_shapes(problem, seed, direct):
    # channels 1..9: both the direct kernel and, with direct=False, im2col + BLAS
    sizes, kernel, stride, padding, channels, filters, batch = problem
    window_or_skip(sizes, kernel, stride, padding)
    info = conv_info((*sizes, channels), filters, kernel, stride, padding)
    layer = Conv(info, np.random.default_rng(seed), fast=True)
    layer.direct = direct
    layer.params["bias"][:] = np.random.default_rng(seed + 1).standard_normal(filters)
    check_against_reference(layer, random_input(info, batch=batch, seed=seed), seed=seed + 2, tolerance=1e-4)
