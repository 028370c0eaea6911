"""Convolution, 1-D/2-D/3-D: the Numba kernels against the plain-NumPy reference,
both against central differences, and on randomly drawn shapes."""
from __future__ import annotations

import numba
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from nnrun import dsl
from nnrun.dsl.spec import Conv as ConvStatement
from nnrun.dsl.spec import Regularization, Spec
from nnrun.engine.gradcheck import check_layer_grads
from nnrun.engine.layers.conv import (
    Conv,
    conv_backward,
    conv_backward_reference,
    conv_forward,
    conv_forward_reference,
)
from nnrun.engine.layers.padding import Window, as_volume, to_3d


def conv_info(input_shape, filters, kernel, stride=(1,), padding="valid", regularization=Regularization()):
    """The LayerInfo of a one-layer model, as the calculator resolves it."""
    statement = ConvStatement(filters, kernel, stride, padding, regularization=regularization)
    return dsl.resolve(Spec(input_shape=input_shape, layers=(statement,))).layers[0]


# input shape, filters, kernel, stride, padding, output shape worked out by hand
CASES = [
    ((9, 2), 3, (3,), (1,), "valid", (7, 3)),  # 1-D
    ((9, 3), 2, (4,), (2,), "same", (5, 2)),  # 1-D, even kernel, stride 2: pad 1 before, 2 after
    ((6, 7, 2), 3, (3, 2), (1,), "valid", (4, 6, 3)),  # 2-D, rectangular kernel
    ((7, 6, 1), 4, (2,), (2,), "same", (4, 3, 4)),  # 2-D, even kernel, stride 2, asymmetric padding
    ((5, 5, 2), 2, (3,), (1,), "same", (5, 5, 2)),  # 2-D, odd kernel, same
    ((6, 5, 2), 3, (3,), (2, 1), (1,), (3, 5, 3)),  # 2-D, explicit pad 1, stride per axis
    ((4, 5, 4, 2), 2, (2, 3, 2), (1,), "valid", (3, 3, 3, 2)),  # 3-D
    ((4, 4, 5, 1), 2, (3,), (2,), "same", (2, 2, 3, 2)),  # 3-D, stride 2, same
    ((3, 4, 3, 2), 2, (2,), (1,), (1,), (4, 5, 4, 2)),  # 3-D, explicit pad 1
]
IDS = [f"{len(c[0]) - 1}d-k{'x'.join(map(str, c[2]))}-s{'x'.join(map(str, c[3]))}-{c[4]}" for c in CASES]


@pytest.fixture(params=CASES, ids=IDS)
def case(request):
    input_shape, filters, kernel, stride, padding, expected = request.param
    return conv_info(input_shape, filters, kernel, stride, padding), expected


def random_input(info, batch=2, dtype=np.float32, seed=1):
    return np.random.default_rng(seed).standard_normal((batch, *info.input_shape)).astype(dtype)


def test_output_shape_is_the_models_and_the_hand_computed_one(case):
    info, expected = case
    layer = Conv(info, np.random.default_rng(0))
    y = layer.forward(random_input(info, batch=3), training=False)
    assert info.output_shape == expected
    assert y.shape == (3, *expected)
    assert y.dtype == np.float32


def test_kernels_equal_the_reference_in_float32(case):
    info, _ = case
    layer = Conv(info, np.random.default_rng(0))
    layer.params["bias"][:] = np.random.default_rng(2).standard_normal(info.output_shape[-1])
    x = random_input(info, batch=3)
    y = layer.forward(x, training=True)
    dy = np.random.default_rng(3).standard_normal(y.shape).astype(np.float32)
    dx = layer.backward(dy)

    w = layer.window
    x5, dy5 = as_volume(x), as_volume(dy)
    kernel5 = layer.params["kernel"].reshape((*w.kernel_3d, *layer.params["kernel"].shape[-2:]))
    y_ref = conv_forward_reference(x5, kernel5, layer.params["bias"], w.stride_3d, w.pad_before_3d, w.pad_after_3d)
    dx_ref, dkernel_ref, dbias_ref = conv_backward_reference(
        x5, kernel5, dy5, w.stride_3d, w.pad_before_3d, w.pad_after_3d
    )
    np.testing.assert_allclose(y, y_ref.reshape(y.shape), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dx, dx_ref.reshape(x.shape), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(layer.grads["kernel"], dkernel_ref.reshape(layer.params["kernel"].shape),
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(layer.grads["bias"], dbias_ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("reference", [False, True], ids=["numba", "reference"])
def test_gradients_by_central_differences(case, reference):
    info, _ = case
    layer = Conv(info, np.random.default_rng(0), reference=reference)
    layer.params["bias"][:] = 0.1  # non-zero, so the bias is in play
    errors = check_layer_grads(layer, random_input(info, dtype=np.float64), rtol=1e-6, atol=1e-8)
    assert set(errors) == {"x", "kernel", "bias"}


def test_the_course_formula_on_a_small_image():
    # S(i, j) = Σm Σn I(i+m, j+n)·K(m, n) on a 3×3 image with a 2×2 kernel
    image = np.arange(1.0, 10.0, dtype=np.float32).reshape(1, 3, 3, 1)  # 1 2 3 / 4 5 6 / 7 8 9
    layer = Conv(conv_info((3, 3, 1), 1, (2,)), np.random.default_rng(0))
    layer.params["kernel"][:] = np.array([[1.0, 0.0], [0.0, -1.0]], dtype=np.float32).reshape(2, 2, 1, 1)
    layer.params["bias"][:] = 0.5
    y = layer.forward(image, training=False)
    assert y[0, :, :, 0].tolist() == [[1 - 5 + 0.5, 2 - 6 + 0.5], [4 - 8 + 0.5, 5 - 9 + 0.5]]


def test_same_padding_with_an_even_kernel_puts_the_extra_zero_after():
    # Keras: 4 inputs, kernel 2, stride 1, same → total padding 1: 0 before, 1 after
    layer = Conv(conv_info((4, 1), 1, (2,), padding="same"), np.random.default_rng(0))
    layer.params["kernel"][:] = 1.0
    y = layer.forward(np.array([[[1.0], [2.0], [3.0], [4.0]]], dtype=np.float32), training=False)
    assert y[0, :, 0].tolist() == [3.0, 5.0, 7.0, 4.0]


def test_initialisation_is_glorot_uniform_with_zero_bias():
    info = conv_info((28, 28, 1), 32, (3,))
    layer = Conv(info, np.random.default_rng(0))
    kernel, bias = layer.params["kernel"], layer.params["bias"]
    assert kernel.shape == (3, 3, 1, 32) and kernel.dtype == np.float32
    assert bias.shape == (32,) and not bias.any()
    limit = np.sqrt(6.0 / (9 * 1 + 9 * 32))
    assert np.abs(kernel).max() <= limit
    assert np.abs(kernel).max() > 0.9 * limit  # spread over the whole interval, not a smaller one
    assert kernel.size + bias.size == info.params == 320  # Keras's count


def test_a_model_whose_shape_disagrees_is_refused():
    info = conv_info((8, 8, 1), 2, (3,))
    wrong = type(info)(**{**info.__dict__, "output_shape": (5, 5, 2)})
    with pytest.raises(ValueError, match="output shape"):
        Conv(wrong, np.random.default_rng(0))


def test_a_first_layer_can_skip_the_input_gradient():
    info = conv_info((6, 5, 2), 3, (3,), padding="same")
    x = random_input(info)
    dy = np.random.default_rng(3).standard_normal((2, *info.output_shape)).astype(np.float32)
    full, first = Conv(info, np.random.default_rng(0)), Conv(info, np.random.default_rng(0))
    first.input_grad = False
    full.forward(x, True), first.forward(x, True)
    assert full.backward(dy).shape == x.shape
    assert first.backward(dy) is None
    for name in ("kernel", "bias"):
        np.testing.assert_array_equal(first.grads[name], full.grads[name])


# ------------------------------------------------------------------ regularization


def test_l1_l2_penalty_value_and_gradient():
    info = conv_info((5, 4, 2), 2, (2,), regularization=Regularization(l1=0.01, l2=0.02))
    layer = Conv(info, np.random.default_rng(0))
    kernel = layer.params["kernel"].astype(np.float64)
    assert layer.penalty() == pytest.approx(0.01 * np.abs(kernel).sum() + 0.02 * np.square(kernel).sum())
    check_layer_grads(layer, random_input(info, dtype=np.float64), rtol=1e-6, atol=1e-8)

    # the penalty's gradient reaches the kernel only, not the bias
    plain = Conv(conv_info((5, 4, 2), 2, (2,)), np.random.default_rng(0))
    x = random_input(info)
    dy = np.ones((2, *info.output_shape), dtype=np.float32)
    plain.forward(x, True), plain.backward(dy)
    layer = Conv(info, np.random.default_rng(0))
    layer.forward(x, True), layer.backward(dy)
    kernel = layer.params["kernel"]
    np.testing.assert_allclose(layer.grads["kernel"] - plain.grads["kernel"],
                               0.01 * np.sign(kernel) + 2 * 0.02 * kernel, rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(layer.grads["bias"], plain.grads["bias"])


def test_dropconnect_gradient_with_a_fixed_mask():
    info = conv_info((6, 5, 2), 3, (3,), padding="same", regularization=Regularization(dropconnect=0.4))
    layer = Conv(info, np.random.default_rng(0))
    # check_layer_grads re-seeds layer.rng before every forward: one mask, a fixed function
    check_layer_grads(layer, random_input(info, dtype=np.float64), rtol=1e-6, atol=1e-8)


def test_dropconnect_masks_weights_at_train_time_only():
    info = conv_info((6, 6, 1), 8, (3,), regularization=Regularization(dropconnect=0.5))
    layer = Conv(info, np.random.default_rng(0))
    x = random_input(info)
    plain = layer.forward(x, training=False)
    np.testing.assert_array_equal(plain, layer.forward(x, training=False))
    trained = layer.forward(x, training=True)
    assert not np.allclose(trained, plain)

    scale = layer._mask_scale
    assert set(np.unique(scale).tolist()) == {0.0, 2.0}  # mask / (1 − P)
    assert 0.3 < (scale == 0).mean() < 0.7  # 72 weights, P = 0.5
    again = layer.forward(x, training=True)
    assert not np.array_equal(layer._mask_scale, scale)  # a fresh mask per batch
    assert again.shape == trained.shape


# ------------------------------------------------------------------ random shapes


@st.composite
def conv_problems(draw, max_channels=3, max_filters=4):
    rank = draw(st.integers(1, 3))
    sizes = tuple(draw(st.integers(1, 6)) for _ in range(rank))
    kernel = tuple(draw(st.integers(1, 4)) for _ in range(rank))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(rank))
    padding = draw(st.sampled_from(["valid", "same", (0,), (1,), (2,)]))
    channels, filters = draw(st.integers(1, max_channels)), draw(st.integers(1, max_filters))
    return sizes, kernel, stride, padding, channels, filters, draw(st.integers(1, 3))


@settings(max_examples=25, deadline=None)
@given(conv_problems(), st.integers(0, 2**31 - 1))
def test_kernels_equal_the_reference_on_random_shapes(problem, seed):
    sizes, kernel, stride, padding, channels, filters, batch = problem
    try:
        w = Window(sizes, kernel, stride, padding)
    except ValueError:  # the kernel does not fit
        assume(False)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, *to_3d(sizes, 1), channels)).astype(np.float32)
    weights = rng.standard_normal((*w.kernel_3d, channels, filters)).astype(np.float32)
    bias = rng.standard_normal(filters).astype(np.float32)
    y = np.empty((batch, *w.output_3d, filters), dtype=np.float32)
    conv_forward(x, weights, bias, *w.stride_3d, *w.pad_before_3d, y)
    y_ref = conv_forward_reference(x, weights, bias, w.stride_3d, w.pad_before_3d, w.pad_after_3d)
    np.testing.assert_allclose(y, y_ref, rtol=1e-4, atol=1e-5)

    dy = rng.standard_normal(y.shape).astype(np.float32)
    dx, dkernel, dbias = np.empty_like(x), np.empty_like(weights), np.empty_like(bias)
    conv_backward(x, dy, weights, *w.stride_3d, *w.pad_before_3d, min(batch, 2), True, dx, dkernel, dbias)
    dx_ref, dkernel_ref, dbias_ref = conv_backward_reference(x, weights, dy, w.stride_3d, w.pad_before_3d,
                                                             w.pad_after_3d)
    np.testing.assert_allclose(dx, dx_ref, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(dkernel, dkernel_ref, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(dbias, dbias_ref, rtol=1e-4, atol=1e-4)


# ------------------------------------------------------------------ threads


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs 2 Numba threads")
def test_one_and_two_threads_give_the_same_result():
    info = conv_info((9, 8, 3), 5, (3,), (2,), "same")
    x = random_input(info, batch=7)
    dy = np.random.default_rng(4).standard_normal((7, *info.output_shape)).astype(np.float32)
    results = []
    before = numba.get_num_threads()
    try:
        for threads in (1, 2):
            numba.set_num_threads(threads)
            layer = Conv(info, np.random.default_rng(0))
            y = layer.forward(x, training=True)
            dx = layer.backward(dy)
            results.append((y, dx, layer.grads["kernel"], layer.grads["bias"]))
    finally:
        numba.set_num_threads(before)
    (y1, dx1, dk1, db1), (y2, dx2, dk2, db2) = results
    np.testing.assert_array_equal(y1, y2)  # each sample is computed by one thread either way
    np.testing.assert_array_equal(dx1, dx2)
    # the weight gradient is summed in 1 part, then in 2 parts: equal up to rounding
    np.testing.assert_allclose(dk1, dk2, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(db1, db2, rtol=1e-5, atol=1e-5)
