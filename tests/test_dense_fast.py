"""The cpu fast path of dense layers: fused bias+activation, the skipped ∂L/∂x of a first
layer — each against the plain-NumPy reference and by central differences — and the
thread policy of `engine.threads`."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nnrun import dsl
from nnrun.dsl.spec import Activation as ActivationSpec
from nnrun.dsl.spec import ActivationLayer, Spec
from nnrun.dsl.spec import Dense as DenseStatement
from nnrun.engine import threads
from nnrun.engine.gradcheck import check_layer_grads
from nnrun.engine.layers.activations import Activation
from nnrun.engine.layers.dense import Dense

FUSED = ["linear", "relu", "tanh", "sigmoid"]


def make(inputs, units, activation=None, reference=False, seed=0):
    """A dense layer; with ``activation`` fused into it (cpu) or the separate step (reference)."""
    spec = Spec(input_shape=(inputs,), layers=(DenseStatement(units), ActivationLayer(ActivationSpec(activation or "linear"))))
    dense_info, activation_info = dsl.resolve(spec).layers
    dense = Dense(dense_info, np.random.default_rng(seed), reference=reference)
    dense.params["bias"][:] = np.random.default_rng(seed + 1).standard_normal(units)  # not all zeros
    step = Activation(activation_info, np.random.default_rng(seed), reference=True)
    if activation and not reference:
        dense.fuse_activation(activation)
    return dense, (step if activation else None)


def reference_pass(dense, step, x, dy):
    """(y, ∂L/∂x, grads) of the reference dense followed by the reference activation step."""
    y = dense.forward(x, True)
    if step is not None:
        y = step.forward(y, True)
        dy = step.backward(dy)
    return y, dense.backward(dy), dense.grads


@pytest.mark.parametrize("activation", FUSED)
@settings(max_examples=15, deadline=None)
@given(batch=st.integers(1, 9), inputs=st.integers(1, 12), units=st.integers(1, 12), seed=st.integers(0, 2**16))
def test_fused_dense_matches_dense_then_activation(activation, batch, inputs, units, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, inputs)).astype(np.float32)
    dy = rng.standard_normal((batch, units)).astype(np.float32)
    fused, _ = make(inputs, units, activation, seed=seed)
    dense, step = make(inputs, units, activation, reference=True, seed=seed)
    y_ref, dx_ref, grads_ref = reference_pass(dense, step, x, dy)
    np.testing.assert_allclose(fused.forward(x, True), y_ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fused.backward(dy), dx_ref, rtol=1e-4, atol=1e-5)
    for name in ("kernel", "bias"):
        assert fused.grads[name].dtype == np.float32
        np.testing.assert_allclose(fused.grads[name], grads_ref[name], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("reference", [False, True])
@pytest.mark.parametrize("activation", FUSED)
def test_fused_dense_gradients_by_central_differences(activation, reference):
    dense, _ = make(5, 4, activation, reference=reference)
    if reference:
        dense.fuse_activation(activation)  # the reference path of a fused layer composes the NumPy functions
    x = np.random.default_rng(3).standard_normal((3, 5))
    check_layer_grads(dense, x, rtol=1e-5, atol=1e-7)


def test_only_the_four_activations_fuse():
    dense, _ = make(3, 2)
    with pytest.raises(ValueError, match="cannot fuse the activation 'softmax'"):
        dense.fuse_activation("softmax")


@pytest.mark.parametrize("activation", [None, "relu"])
def test_a_first_layer_skips_the_input_gradient_only(activation):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((6, 7)).astype(np.float32)
    dy = rng.standard_normal((6, 5)).astype(np.float32)
    first, _ = make(7, 5, activation)
    full, _ = make(7, 5, activation)
    first.input_grad = False
    np.testing.assert_array_equal(first.forward(x, True), full.forward(x, True))
    assert first.backward(dy) is None
    assert full.backward(dy).shape == x.shape
    for name in ("kernel", "bias"):
        np.testing.assert_allclose(first.grads[name], full.grads[name], rtol=1e-6)


@pytest.mark.parametrize("count", [1, 2])
def test_use_threads_sets_both_pools(count):
    from threadpoolctl import threadpool_info

    import numba

    before = threads.threads()
    try:
        assert threads.use_threads(count) == count
        assert numba.get_num_threads() == min(count, numba.config.NUMBA_NUM_THREADS)
        blas = [info for info in threadpool_info() if info["user_api"] == "blas"]
        assert blas and all(1 <= info["num_threads"] <= count for info in blas)  # OpenBLAS caps it at the cores
        if count == 1:
            assert all(info["num_threads"] == 1 for info in blas)
        assert threads.parts(64) == count and threads.parts(1) == 1  # ranges of a batch: never more than samples
        with pytest.raises(ValueError, match="at least 1"):
            threads.use_threads(0)
    finally:
        threads.use_threads(before)


def test_the_spin_settings_fill_in_and_never_override():
    from nnrun.spin import SETTINGS, set_spin_environment

    assert set_spin_environment({}) == SETTINGS
    mine = {"OPENBLAS_THREAD_TIMEOUT": "4"}
    assert set_spin_environment(mine)["OPENBLAS_THREAD_TIMEOUT"] == "4"
    assert mine["GOMP_SPINCOUNT"] == SETTINGS["GOMP_SPINCOUNT"]
