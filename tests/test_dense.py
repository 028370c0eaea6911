"""Dense (and flatten): reference, formulas, initialisation, regularization, central differences."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nnrun import dsl
from nnrun.dsl.spec import Dense as DenseStatement
from nnrun.dsl.spec import Flatten as FlattenStatement
from nnrun.dsl.spec import Regularization, Spec
from nnrun.engine import initializers
from nnrun.engine.gradcheck import check_layer_grads
from nnrun.engine.layers.dense import Dense
from nnrun.engine.layers.flatten import Flatten


def make(inputs=4, units=3, reference=False, seed=0, **regularization):
    statement = DenseStatement(units, regularization=Regularization(**regularization))
    info = dsl.resolve(Spec(input_shape=(inputs,), layers=(statement,))).layers[0]
    return Dense(info, np.random.default_rng(seed), reference=reference)


def test_forward_is_x_times_kernel_plus_bias():
    layer = make()
    layer.params["bias"][:] = [0.5, -1.0, 2.0]
    x = np.random.default_rng(1).standard_normal((2, 4)).astype(np.float32)
    expected = x.astype(np.float64) @ layer.params["kernel"] + layer.params["bias"]
    np.testing.assert_allclose(layer.forward(x, False), expected, rtol=1e-5)


@pytest.mark.parametrize("regularization", [{}, {"l1": 0.1, "l2": 0.05}])
def test_kernels_match_reference(regularization):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((5, 4)).astype(np.float32)
    dy = rng.standard_normal((5, 3)).astype(np.float32)
    cpu, ref = make(**regularization), make(reference=True, **regularization)
    np.testing.assert_array_equal(cpu.params["kernel"], ref.params["kernel"])
    np.testing.assert_allclose(cpu.forward(x, True), ref.forward(x, True), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(cpu.backward(dy), ref.backward(dy), rtol=1e-5, atol=1e-6)
    for name in ("kernel", "bias"):
        assert cpu.grads[name].dtype == np.float32
        np.testing.assert_allclose(cpu.grads[name], ref.grads[name], rtol=1e-5, atol=1e-6)
    assert cpu.penalty() == pytest.approx(ref.penalty())


def test_glorot_uniform_initialisation():
    layer = make(inputs=300, units=100)
    kernel = layer.params["kernel"]
    limit = math.sqrt(6 / (300 + 100))
    assert kernel.shape == (300, 100) and kernel.dtype == np.float32
    assert np.abs(kernel).max() <= limit and np.abs(kernel).max() > 0.95 * limit
    assert kernel.std() == pytest.approx(limit / math.sqrt(3), rel=0.02)  # std of U(−a, a)
    assert not layer.params["bias"].any()
    np.testing.assert_array_equal(kernel, make(inputs=300, units=100).params["kernel"])  # same seed
    assert not np.array_equal(kernel, make(inputs=300, units=100, seed=1).params["kernel"])


def test_fans_of_a_conv_kernel_follow_keras():
    assert initializers.fans((3, 3, 16, 32)) == (144, 288)
    assert initializers.fans((784, 10)) == (784, 10)


def test_penalty_value():
    layer = make(l1=0.1, l2=0.01)
    kernel = layer.params["kernel"]
    assert layer.penalty() == pytest.approx(0.1 * np.abs(kernel).sum() + 0.01 * (kernel**2).sum(), rel=1e-5)
    assert make().penalty() == 0.0


@pytest.mark.parametrize("reference", [False, True])
@pytest.mark.parametrize(
    "regularization", [{}, {"l1": 0.3}, {"l2": 0.2}, {"dropconnect": 0.5}, {"l1": 0.1, "l2": 0.1, "dropconnect": 0.3}]
)
def test_gradients_by_central_differences(regularization, reference):
    layer = make(reference=reference, **regularization)
    x = np.random.default_rng(4).standard_normal((3, 4))
    # l1's |W| has a kink at 0: Glorot weights are nowhere near it (|W| ≫ ε)
    check_layer_grads(layer, x, rtol=1e-5, atol=1e-7)


def test_dropconnect_masks_training_only():
    layer = make(inputs=50, units=40, dropconnect=0.25)
    x = np.random.default_rng(5).standard_normal((2, 50)).astype(np.float32)
    plain = x @ layer.params["kernel"]
    np.testing.assert_allclose(layer.forward(x, False), plain, rtol=1e-5)  # inference: W unchanged
    assert layer.mask is None
    layer.forward(x, True)
    first = layer.mask.copy()
    assert set(np.unique(first)) == {0.0, np.float32(1 / 0.75)}
    assert (first == 0).mean() == pytest.approx(0.25, abs=0.03)
    layer.forward(x, True)
    assert not np.array_equal(first, layer.mask)  # a fresh mask per batch
    np.testing.assert_allclose(layer.forward(x, True), x @ (layer.params["kernel"] * layer.mask), rtol=1e-5, atol=1e-6)


def test_dense_on_a_sequence_acts_on_the_last_axis():
    layer = make(inputs=4, units=3)
    x = np.random.default_rng(6).standard_normal((2, 5, 4)).astype(np.float32)
    y = layer.forward(x, True)
    assert y.shape == (2, 5, 3)
    np.testing.assert_allclose(y, x @ layer.params["kernel"], rtol=1e-5, atol=1e-6)
    assert layer.backward(np.ones_like(y)).shape == x.shape


@settings(max_examples=25, deadline=None)
@given(batch=st.integers(1, 8), inputs=st.integers(1, 9), units=st.integers(1, 9), seed=st.integers(0, 2**16))
def test_random_shapes_match_reference(batch, inputs, units, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, inputs)).astype(np.float32)
    dy = rng.standard_normal((batch, units)).astype(np.float32)
    cpu, ref = make(inputs, units, seed=seed), make(inputs, units, reference=True, seed=seed)
    np.testing.assert_allclose(cpu.forward(x, True), ref.forward(x, True), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(cpu.backward(dy), ref.backward(dy), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(cpu.grads["kernel"], ref.grads["kernel"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(cpu.grads["bias"], ref.grads["bias"], rtol=1e-5, atol=1e-5)


def test_flatten_reshapes_channels_last_and_back():
    statement = FlattenStatement()
    info = dsl.resolve(Spec(input_shape=(2, 3, 4), layers=(statement,))).layers[0]
    layer = Flatten(info, np.random.default_rng(0))
    x = np.arange(2 * 24, dtype=np.float32).reshape(2, 2, 3, 4)
    y = layer.forward(x, True)
    assert y.shape == (2, 24)
    np.testing.assert_array_equal(y[1], x[1].ravel())
    np.testing.assert_array_equal(layer.backward(y), x)
