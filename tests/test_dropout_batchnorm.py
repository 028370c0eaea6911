"""Dropout and batch normalization: train/inference behaviour, Keras's statistics, reference, gradients."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nnrun import dsl
from nnrun.dsl.spec import BatchNorm as BatchNormStatement
from nnrun.dsl.spec import Dropout as DropoutStatement
from nnrun.dsl.spec import Spec
from nnrun.engine.gradcheck import check_layer_grads
from nnrun.engine.layers.batchnorm import BatchNorm
from nnrun.engine.layers.dropout import Dropout


def make_dropout(rate=0.5, shape=(10,), reference=False, seed=0):
    info = dsl.resolve(Spec(input_shape=shape, layers=(DropoutStatement(rate),))).layers[0]
    return Dropout(info, np.random.default_rng(seed), reference=reference)


def make_batchnorm(shape=(3,), reference=False):
    info = dsl.resolve(Spec(input_shape=shape, layers=(BatchNormStatement(),))).layers[0]
    return BatchNorm(info, np.random.default_rng(0), reference=reference)


# ------------------------------------------------------------------------- dropout


@pytest.mark.parametrize("reference", [False, True])
def test_dropout_is_identity_at_inference(reference):
    x = np.random.default_rng(1).standard_normal((4, 10)).astype(np.float32)
    layer = make_dropout(reference=reference)
    assert layer.forward(x, False) is x
    assert layer.backward(x) is x


@pytest.mark.parametrize("reference", [False, True])
def test_dropout_inverted_scaling(reference):
    x = np.ones((200, 100), np.float32)
    y = make_dropout(0.3, (100,), reference).forward(x, True)
    assert set(np.unique(y)) == {0.0, np.float32(1 / 0.7)}
    assert (y == 0).mean() == pytest.approx(0.3, abs=0.01)
    assert y.mean() == pytest.approx(1.0, abs=0.02)  # E[y] = x


def test_dropout_kernel_matches_reference_mask_for_mask():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((6, 10)).astype(np.float32)
    dy = rng.standard_normal((6, 10)).astype(np.float32)
    cpu, ref = make_dropout(seed=7), make_dropout(reference=True, seed=7)
    np.testing.assert_array_equal(cpu.forward(x, True), ref.forward(x, True))
    np.testing.assert_array_equal(cpu.backward(dy), ref.backward(dy))
    first = cpu.mask.copy()
    cpu.forward(x, True)
    assert not np.array_equal(first, cpu.mask)  # a fresh mask per batch


@pytest.mark.parametrize("reference", [False, True])
def test_dropout_gradient_with_a_fixed_mask(reference):
    # check_layer_grads resets layer.rng before each forward: the mask is the same each time
    x = np.random.default_rng(3).standard_normal((3, 10))
    check_layer_grads(make_dropout(0.4, reference=reference), x)


# ---------------------------------------------------------------------- batch norm


def test_batchnorm_parameters_and_state_follow_keras():
    layer = make_batchnorm((5, 5, 4))
    assert layer.momentum == 0.99 and layer.epsilon == 1e-3
    np.testing.assert_array_equal(layer.params["gamma"], np.ones(4))
    np.testing.assert_array_equal(layer.params["beta"], np.zeros(4))
    np.testing.assert_array_equal(layer.state["moving_mean"], np.zeros(4))
    np.testing.assert_array_equal(layer.state["moving_variance"], np.ones(4))


@pytest.mark.parametrize("reference", [False, True])
def test_batchnorm_training_normalises_and_updates_moving_statistics(reference):
    rng = np.random.default_rng(4)
    x = (5 + 3 * rng.standard_normal((8, 2, 2, 3))).astype(np.float32)
    layer = make_batchnorm((2, 2, 3), reference)
    layer.params["gamma"][:] = [1.0, 2.0, 0.5]
    layer.params["beta"][:] = [0.0, 1.0, -1.0]
    y = layer.forward(x, True)
    per_channel = x.reshape(-1, 3).astype(np.float64)
    mean, var = per_channel.mean(0), per_channel.var(0)  # biased, as Keras 3
    expected = (per_channel - mean) / np.sqrt(var + 1e-3) * [1.0, 2.0, 0.5] + [0.0, 1.0, -1.0]
    np.testing.assert_allclose(y.reshape(-1, 3), expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(layer.state["moving_mean"], 0.01 * mean, rtol=1e-5)
    np.testing.assert_allclose(layer.state["moving_variance"], 0.99 + 0.01 * var, rtol=1e-5)


@pytest.mark.parametrize("reference", [False, True])
def test_batchnorm_inference_uses_moving_statistics(reference):
    layer = make_batchnorm((3,), reference)
    layer.state["moving_mean"][:] = [1.0, -2.0, 0.0]
    layer.state["moving_variance"][:] = [4.0, 1.0, 0.25]
    x = np.random.default_rng(5).standard_normal((5, 3)).astype(np.float32)
    expected = (x - [1.0, -2.0, 0.0]) / np.sqrt(np.array([4.0, 1.0, 0.25]) + 1e-3)
    np.testing.assert_allclose(layer.forward(x, False), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(layer.state["moving_mean"], [1.0, -2.0, 0.0])  # untouched


@pytest.mark.parametrize("reference", [False, True])
@pytest.mark.parametrize("shape", [(6, 4), (3, 2, 3, 2)])
def test_batchnorm_gradients_by_central_differences(shape, reference):
    layer = make_batchnorm(shape[1:], reference)
    rng = np.random.default_rng(6)
    layer.params["gamma"][:] = rng.uniform(0.5, 2.0, shape[-1])
    layer.params["beta"][:] = rng.standard_normal(shape[-1])
    check_layer_grads(layer, rng.standard_normal(shape), rtol=1e-5, atol=1e-7)


@settings(max_examples=25, deadline=None)
@given(rows=st.integers(2, 9), channels=st.integers(1, 6), training=st.booleans(), seed=st.integers(0, 2**16))
def test_batchnorm_random_shapes_match_reference(rows, channels, training, seed):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((rows, channels)) * rng.uniform(0.1, 10)).astype(np.float32)
    dy = rng.standard_normal((rows, channels)).astype(np.float32)
    cpu, ref = make_batchnorm((channels,)), make_batchnorm((channels,), reference=True)
    np.testing.assert_allclose(cpu.forward(x, training), ref.forward(x, training), rtol=1e-4, atol=1e-4)
    for name in ("moving_mean", "moving_variance"):
        np.testing.assert_allclose(cpu.state[name], ref.state[name], rtol=1e-5, atol=1e-6)
    if training:
        np.testing.assert_allclose(cpu.backward(dy), ref.backward(dy), rtol=1e-3, atol=1e-3)
        for name in ("gamma", "beta"):
            np.testing.assert_allclose(cpu.grads[name], ref.grads[name], rtol=1e-4, atol=1e-4)
