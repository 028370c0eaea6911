"""Max and average pooling, windowed and global, 1-D/2-D/3-D: the Numba kernels
against the plain-NumPy reference, both against central differences, and on
randomly drawn shapes."""
from __future__ import annotations

import numba
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from nnrun import dsl
from nnrun.dsl.spec import Pool as PoolStatement
from nnrun.dsl.spec import Spec
from nnrun.engine.gradcheck import check_layer_grads
from nnrun.engine.layers.padding import Window, to_3d
from nnrun.engine.layers.pool import (
    Pool,
    avg_pool_backward,
    avg_pool_forward,
    max_pool_backward,
    max_pool_forward,
    pool_backward_reference,
    pool_forward_reference,
)


def pool_info(input_shape, mode, kernel=None, stride=None, padding="valid", is_global=False):
    """The LayerInfo of a one-layer model, as the calculator resolves it."""
    statement = PoolStatement(mode, kernel, stride, padding, is_global=is_global)
    return dsl.resolve(Spec(input_shape=input_shape, layers=(statement,))).layers[0]


# input shape, mode, kernel, stride, padding, global, output shape worked out by hand
CASES = [
    ((8, 3), "max", (2,), None, "valid", False, (4, 3)),  # 1-D, stride = kernel
    ((8, 2), "avg", (3,), (2,), "same", False, (4, 2)),  # 1-D, same: 0 before, 1 after
    ((6, 6, 2), "max", (2,), None, "valid", False, (3, 3, 2)),  # 2-D, the first CNN's pool
    ((5, 7, 3), "avg", (2,), None, "same", False, (3, 4, 3)),  # 2-D, even window, same
    ((5, 5, 1), "max", (3,), (2,), "same", False, (3, 3, 1)),  # 2-D, odd window, stride 2, same
    ((6, 5, 2), "avg", (3, 2), (1, 2), "valid", False, (4, 2, 2)),  # 2-D, per-axis window and stride
    ((5, 4, 2), "max", (2,), (2,), (1,), False, (3, 3, 2)),  # 2-D, explicit pad 1
    ((7, 9, 2), "max", (3,), (2,), "valid", False, (3, 4, 2)),  # 2-D, overlapping windows, a column unused
    ((4, 4, 4, 2), "max", (2,), None, "valid", False, (2, 2, 2, 2)),  # 3-D
    ((3, 5, 4, 1), "avg", (2,), None, "same", False, (2, 3, 2, 1)),  # 3-D, same
    ((4, 5, 3), "max", None, None, "valid", True, (3,)),  # global, 2-D
    ((6, 2), "avg", None, None, "valid", True, (2,)),  # global, 1-D
    ((2, 3, 4, 2), "avg", None, None, "valid", True, (2,)),  # global, 3-D
]
IDS = [
    f"{len(c[0]) - 1}d-{c[1]}-" + ("global" if c[5] else f"k{'x'.join(map(str, c[2]))}-s{c[3] and 'x'.join(map(str, c[3]))}-{c[4]}")
    for c in CASES
]


@pytest.fixture(params=CASES, ids=IDS)
def case(request):
    input_shape, mode, kernel, stride, padding, is_global, expected = request.param
    return pool_info(input_shape, mode, kernel, stride, padding, is_global), expected


def random_input(info, batch=2, dtype=np.float32, seed=1):
    return np.random.default_rng(seed).standard_normal((batch, *info.input_shape)).astype(dtype)


def test_output_shape_is_the_models_and_the_hand_computed_one(case):
    info, expected = case
    y = Pool(info, np.random.default_rng(0)).forward(random_input(info, batch=3), training=False)
    assert info.output_shape == expected
    assert y.shape == (3, *expected)
    assert y.dtype == np.float32


@pytest.mark.parametrize("reference", [False, True], ids=["numba", "reference"])
def test_gradients_by_central_differences(case, reference):
    info, _ = case
    layer = Pool(info, np.random.default_rng(0), reference=reference)
    errors = check_layer_grads(layer, random_input(info, dtype=np.float64), rtol=1e-6, atol=1e-8)
    assert set(errors) == {"x"}


@pytest.mark.parametrize("reference", [False, True], ids=["numba", "reference"])
def test_max_sends_the_gradient_to_the_first_of_equal_maxima(reference):
    layer = Pool(pool_info((4, 4, 1), "max", (2,)), np.random.default_rng(0), reference=reference)
    x = np.ones((1, 4, 4, 1), dtype=np.float32)
    layer.forward(x, training=True)
    dx = layer.backward(np.full((1, 2, 2, 1), 5.0, dtype=np.float32))
    expected = np.zeros((4, 4))
    expected[::2, ::2] = 5.0  # the top-left cell of every 2×2 window
    np.testing.assert_array_equal(dx[0, :, :, 0], expected)


@pytest.mark.parametrize("reference", [False, True], ids=["numba", "reference"])
def test_same_padding_takes_no_part_in_the_result(reference):
    # 3 inputs, window 2, stride 2, same: one padded cell after the last input
    x = np.array([[[-1.0], [-2.0], [-3.0]]], dtype=np.float32)
    biggest = Pool(pool_info((3, 1), "max", (2,), padding="same"), np.random.default_rng(0), reference=reference)
    assert biggest.forward(x, training=False)[0, :, 0].tolist() == [-1.0, -3.0]  # not max(−3, 0) = 0
    mean = Pool(pool_info((3, 1), "avg", (2,), padding="same"), np.random.default_rng(0), reference=reference)
    assert mean.forward(x, training=False)[0, :, 0].tolist() == [-1.5, -3.0]  # not (−3 + 0) / 2
    mean.forward(x, training=True)
    assert mean.backward(np.ones((1, 2, 1), dtype=np.float32))[0, :, 0].tolist() == [0.5, 0.5, 1.0]


def test_global_pooling_is_the_max_and_mean_over_all_positions():
    x = np.random.default_rng(5).standard_normal((3, 4, 5, 2)).astype(np.float32)
    biggest = Pool(pool_info((4, 5, 2), "max", is_global=True), np.random.default_rng(0))
    mean = Pool(pool_info((4, 5, 2), "avg", is_global=True), np.random.default_rng(0))
    np.testing.assert_array_equal(biggest.forward(x, training=False), x.max(axis=(1, 2)))
    np.testing.assert_allclose(mean.forward(x, training=False), x.mean(axis=(1, 2)), rtol=1e-6)


def test_a_model_whose_shape_disagrees_is_refused():
    info = pool_info((8, 8, 1), "max", (2,))
    wrong = type(info)(**{**info.__dict__, "output_shape": (3, 3, 1)})
    with pytest.raises(ValueError, match="output shape"):
        Pool(wrong, np.random.default_rng(0))


# ------------------------------------------------------------------ random shapes


@st.composite
def pool_problems(draw):
    rank = draw(st.integers(1, 3))
    sizes = tuple(draw(st.integers(1, 6)) for _ in range(rank))
    kernel = tuple(draw(st.integers(1, 4)) for _ in range(rank))
    stride = draw(st.one_of(st.none(), st.tuples(*(st.integers(1, 3) for _ in range(rank)))))
    padding = draw(st.sampled_from(["valid", "same", (0,), (1,)]))
    return draw(st.sampled_from(["max", "avg"])), sizes, kernel, stride, padding, draw(st.integers(1, 3)), draw(st.integers(1, 3))


@settings(max_examples=25, deadline=None)
@given(pool_problems(), st.integers(0, 2**31 - 1))
def test_kernels_equal_the_reference_on_random_shapes(problem, seed):
    mode, sizes, kernel, stride, padding, channels, batch = problem
    try:
        w = Window(sizes, kernel, stride, padding)
    except ValueError:  # the window does not fit
        assume(False)
    # every window must hold at least one input cell (an explicit pad as wide as the window would not)
    assume(all(pad < k for pad, k in zip(w.pad_before + w.pad_after, w.kernel + w.kernel)))
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, *to_3d(sizes, 1), channels)).astype(np.float32)
    y = np.empty((batch, *w.output_3d, channels), dtype=np.float32)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dx = np.empty_like(x)
    if mode == "max":
        argmax = np.empty(y.shape, dtype=np.int64)
        max_pool_forward(x, *w.kernel_3d, *w.stride_3d, *w.pad_before_3d, y, argmax)
        max_pool_backward(dy, argmax, dx)
    else:
        avg_pool_forward(x, *w.kernel_3d, *w.stride_3d, *w.pad_before_3d, y)
        avg_pool_backward(dy, *w.kernel_3d, *w.stride_3d, *w.pad_before_3d, dx)
    y_ref = pool_forward_reference(x, mode, w.kernel_3d, w.stride_3d, w.pad_before_3d, w.pad_after_3d)
    dx_ref = pool_backward_reference(x, dy, mode, w.kernel_3d, w.stride_3d, w.pad_before_3d, w.pad_after_3d)
    np.testing.assert_allclose(y, y_ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dx, dx_ref, rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------ threads


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs 2 Numba threads")
@pytest.mark.parametrize("mode", ["max", "avg"])
def test_one_and_two_threads_give_the_same_result(mode):
    info = pool_info((9, 8, 3), mode, (3,), (2,), "same")
    x = random_input(info, batch=7)
    dy = np.random.default_rng(4).standard_normal((7, *info.output_shape)).astype(np.float32)
    results = []
    before = numba.get_num_threads()
    try:
        for threads in (1, 2):
            numba.set_num_threads(threads)
            layer = Pool(info, np.random.default_rng(0))
            results.append((layer.forward(x, training=True), layer.backward(dy)))
    finally:
        numba.set_num_threads(before)
    for one, two in zip(*results):
        np.testing.assert_array_equal(one, two)
