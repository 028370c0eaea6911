"""Activation kernels: against the NumPy reference, known values, stability, central differences."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nnrun import dsl
from nnrun.dsl.spec import Activation as Act
from nnrun.dsl.spec import ActivationLayer, Spec
from nnrun.engine.gradcheck import check_layer_grads
from nnrun.engine.layers.activations import Activation

NAMES = ["relu", "leakyrelu", "sigmoid", "tanh", "softmax", "linear"]


def make(name, shape=(5,), reference=False, alpha=0.2):
    model = dsl.resolve(Spec(input_shape=shape, layers=(ActivationLayer(Act(name, alpha)),)))
    return Activation(model.layers[0], np.random.default_rng(0), reference=reference)


def away_from_zero(rng, shape):
    """Values with |x| ≥ 0.1: relu's kink at 0 has no derivative to check."""
    x = rng.standard_normal(shape)
    return np.where(np.abs(x) < 0.1, np.sign(x + 1e-12) * 0.1 + x, x)


@pytest.mark.parametrize("name", NAMES)
def test_kernel_matches_reference(name):
    rng = np.random.default_rng(1)
    x = (3 * rng.standard_normal((6, 5))).astype(np.float32)
    dy = rng.standard_normal((6, 5)).astype(np.float32)
    cpu, ref = make(name), make(name, reference=True)
    y_cpu, y_ref = cpu.forward(x, True), ref.forward(x, True)
    assert y_cpu.dtype == np.float32 and y_cpu.shape == x.shape
    np.testing.assert_allclose(y_cpu, y_ref, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(cpu.backward(dy), ref.backward(dy), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("reference", [False, True])
def test_known_values(reference):
    x = np.array([[-2.0, 0.0, 3.0]], np.float32)
    assert make("relu", (3,), reference).forward(x, False).tolist() == [[0, 0, 3]]
    np.testing.assert_allclose(make("leakyrelu", (3,), reference, alpha=0.2).forward(x, False), [[-0.4, 0, 3]])
    np.testing.assert_allclose(make("sigmoid", (3,), reference).forward(x, False), 1 / (1 + np.exp(-x)), rtol=1e-6)
    np.testing.assert_allclose(make("tanh", (3,), reference).forward(x, False), np.tanh(x), rtol=1e-6)
    e = np.exp(x - 3)
    np.testing.assert_allclose(make("softmax", (3,), reference).forward(x, False), e / e.sum(), rtol=1e-6)
    assert make("linear", (3,), reference).forward(x, False) is x


@pytest.mark.parametrize("reference", [False, True])
def test_large_inputs_do_not_overflow(reference):
    x = np.array([[1000.0, -1000.0, 0.0]], np.float32)
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # underflow to 0 is fine
        s = make("sigmoid", (3,), reference).forward(x, False)
        p = make("softmax", (3,), reference).forward(x, False)
    np.testing.assert_allclose(s, [[1.0, 0.0, 0.5]])
    np.testing.assert_allclose(p, [[1.0, 0.0, 0.0]])


def test_softmax_is_over_the_last_axis():
    x = np.random.default_rng(2).standard_normal((2, 4, 3)).astype(np.float32)
    y = make("softmax", (4, 3)).forward(x, False)
    np.testing.assert_allclose(y.sum(axis=-1), np.ones((2, 4)), rtol=1e-6)


@pytest.mark.parametrize("reference", [False, True])
@pytest.mark.parametrize("name", NAMES)
def test_gradients_by_central_differences(name, reference):
    x = away_from_zero(np.random.default_rng(3), (4, 5))
    check_layer_grads(make(name, reference=reference), x, rtol=1e-5, atol=1e-7)


@settings(max_examples=30, deadline=None)
@given(
    name=st.sampled_from(NAMES),
    rows=st.integers(1, 6),
    width=st.integers(1, 7),
    scale=st.floats(0.01, 30.0),
    seed=st.integers(0, 2**16),
)
def test_random_shapes_match_reference(name, rows, width, scale, seed):
    rng = np.random.default_rng(seed)
    x = (scale * rng.standard_normal((rows, width))).astype(np.float32)
    dy = rng.standard_normal((rows, width)).astype(np.float32)
    cpu, ref = make(name, (width,)), make(name, (width,), reference=True)
    np.testing.assert_allclose(cpu.forward(x, True), ref.forward(x, True), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(cpu.backward(dy), ref.backward(dy), rtol=1e-4, atol=1e-6)
