"""Recurrent layers: kernels against the NumPy reference, BPTT against central differences,
Keras's parameter shapes and initialisation, and the per-step gradient norms."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nnrun.dsl.spec import Activation, LayerInfo
from nnrun.dsl.spec import Recurrent as RecurrentStatement
from nnrun.engine.gradcheck import check_layer_grads
from nnrun.engine.layers.recurrent import Recurrent, orthogonal

CELLS = ["rnn", "lstm", "gru"]


def make_layer(cell, units, steps, features, *, sequences=False, activation="tanh", seed=0, reference=False):
    statement = RecurrentStatement(cell, units, Activation(activation), return_sequences=sequences)
    output_shape = (steps, units) if sequences else (units,)
    info = LayerInfo(f"{cell}_1", cell, statement, (steps, features), output_shape, 0, 0, 0)
    return Recurrent(info, np.random.default_rng(seed), reference=reference)


def run_both(cell, batch, steps, features, units, sequences, seed=0):
    """Forward + backward of the kernels and of the reference on the same data."""
    kernel_layer = make_layer(cell, units, steps, features, sequences=sequences, seed=seed)
    reference_layer = make_layer(cell, units, steps, features, sequences=sequences, seed=seed, reference=True)
    rng = np.random.default_rng(seed + 1)
    x = rng.standard_normal((batch, steps, features)).astype(np.float32)
    y_kernel = kernel_layer.forward(x, training=True)
    y_reference = reference_layer.forward(x, training=True)
    dy = rng.standard_normal(y_kernel.shape).astype(np.float32)
    dx_kernel = kernel_layer.backward(dy)
    dx_reference = reference_layer.backward(dy)
    return (kernel_layer, y_kernel, dx_kernel), (reference_layer, y_reference, dx_reference)


def assert_kernels_match_reference(cell, batch, steps, features, units, sequences, seed=0):
    (layer, y, dx), (ref, y_ref, dx_ref) = run_both(cell, batch, steps, features, units, sequences, seed)
    expected_shape = (batch, steps, units) if sequences else (batch, units)
    assert y.shape == expected_shape and y.dtype == np.float32
    assert dx.shape == (batch, steps, features) and dx.dtype == np.float32
    np.testing.assert_allclose(y, y_ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dx, dx_ref, rtol=1e-4, atol=1e-5)
    for name in ("kernel", "recurrent_kernel", "bias"):
        assert layer.grads[name].shape == layer.params[name].shape
        np.testing.assert_allclose(layer.grads[name], ref.grads[name], rtol=1e-4, atol=1e-5, err_msg=name)
    np.testing.assert_allclose(layer.state_gradient_norms, ref.state_gradient_norms, rtol=1e-4, atol=1e-6)


# ------------------------------------------------------------------ kernel vs reference


@pytest.mark.parametrize("sequences", [False, True])
@pytest.mark.parametrize("cell", CELLS)
def test_kernels_equal_reference(cell, sequences):
    assert_kernels_match_reference(cell, batch=4, steps=7, features=5, units=6, sequences=sequences)


@settings(max_examples=20, deadline=None)
@given(
    cell=st.sampled_from(CELLS),
    batch=st.integers(1, 5),
    steps=st.integers(1, 8),
    features=st.integers(1, 6),
    units=st.integers(1, 7),
    sequences=st.booleans(),
    seed=st.integers(0, 1000),
)
def test_kernels_equal_reference_on_random_shapes(cell, batch, steps, features, units, sequences, seed):
    assert_kernels_match_reference(cell, batch, steps, features, units, sequences, seed)


def test_relu_rnn_kernel_equals_reference():
    for activation in ("relu", "leakyrelu", "linear", "sigmoid"):
        kernel_layer = make_layer("rnn", 5, 6, 3, activation=activation, sequences=True)
        reference_layer = make_layer("rnn", 5, 6, 3, activation=activation, sequences=True, reference=True)
        x = np.random.default_rng(3).standard_normal((2, 6, 3)).astype(np.float32)
        np.testing.assert_allclose(
            kernel_layer.forward(x, True), reference_layer.forward(x, True), rtol=1e-5, atol=1e-6, err_msg=activation
        )


# ------------------------------------------------------------ central differences (float64)


@pytest.mark.parametrize("sequences", [False, True])
@pytest.mark.parametrize("cell", CELLS)
def test_gradients_through_time(cell, sequences):
    layer = make_layer(cell, units=3, steps=4, features=2, sequences=sequences)
    x = np.random.default_rng(5).standard_normal((2, 4, 2))
    errors = check_layer_grads(layer, x)
    assert set(errors) == {"x", "kernel", "recurrent_kernel", "bias"}


@pytest.mark.parametrize("activation", ["relu", "leakyrelu", "sigmoid"])
def test_rnn_gradients_with_other_activations(activation):
    layer = make_layer("rnn", units=3, steps=4, features=2, activation=activation, sequences=True)
    check_layer_grads(layer, np.random.default_rng(6).standard_normal((2, 4, 2)))


def test_reference_gradients_through_time():
    """The oracle itself is checked, so kernel == reference means kernel == the true gradient."""
    for cell in CELLS:
        layer = make_layer(cell, units=3, steps=3, features=2, sequences=True, reference=True)
        check_layer_grads(layer, np.random.default_rng(7).standard_normal((2, 3, 2)))


class Stack:
    """Two recurrent layers chained (the first returns sequences), as one layer for the check."""

    def __init__(self, first: Recurrent, second: Recurrent) -> None:
        self.name = "stack"
        self.rng = np.random.default_rng(0)
        self.layers = {"first": first, "second": second}
        self.params = {f"{key}.{n}": v for key, layer in self.layers.items() for n, v in layer.params.items()}
        self.grads: dict[str, np.ndarray] = {}

    def forward(self, x, training):
        for full_name, value in self.params.items():  # the check may have replaced the arrays
            key, name = full_name.split(".")
            self.layers[key].params[name] = value
        return self.layers["second"].forward(self.layers["first"].forward(x, training), training)

    def backward(self, dy):
        dx = self.layers["first"].backward(self.layers["second"].backward(dy))
        self.grads = {f"{key}.{n}": g for key, layer in self.layers.items() for n, g in layer.grads.items()}
        return dx

    def penalty(self):
        return 0.0


@pytest.mark.parametrize("cells", [("rnn", "lstm"), ("lstm", "gru"), ("gru", "rnn")])
def test_gradients_through_a_stack_of_two(cells):
    first = make_layer(cells[0], units=3, steps=4, features=2, sequences=True, seed=1)
    second = make_layer(cells[1], units=2, steps=4, features=3, sequences=False, seed=2)
    errors = check_layer_grads(Stack(first, second), np.random.default_rng(8).standard_normal((2, 4, 2)))
    assert len(errors) == 7  # x and three arrays per layer


# ------------------------------------------------------------ Keras's shapes and init


@pytest.mark.parametrize(
    "cell, units, steps, features",
    [("rnn", 32, 20, 8), ("lstm", 20, 30, 10), ("gru", 12, 30, 20)],
)
def test_parameter_shapes_and_counts_equal_keras(cell, units, steps, features):
    layer = make_layer(cell, units, steps, features)
    gates = {"rnn": 1, "lstm": 4, "gru": 3}[cell]
    assert layer.params["kernel"].shape == (features, gates * units)
    assert layer.params["recurrent_kernel"].shape == (units, gates * units)
    assert layer.params["bias"].shape == ((2, 3 * units) if cell == "gru" else (gates * units,))
    expected = {
        "rnn": units * (units + features + 1),
        "lstm": 4 * units * (units + features + 1),
        "gru": 3 * units * (units + features + 2),
    }[cell]
    assert sum(p.size for p in layer.params.values()) == expected
    assert expected == {"rnn": 1312, "lstm": 2480, "gru": 1224}[cell]  # Keras's model.summary()
    assert all(p.dtype == np.float32 for p in layer.params.values())


@pytest.mark.parametrize("cell", CELLS)
def test_recurrent_kernel_is_orthogonal_and_kernel_glorot(cell):
    units, features = 8, 5
    layer = make_layer(cell, units, 3, features)
    w = layer.params["recurrent_kernel"].astype(np.float64)
    np.testing.assert_allclose(w @ w.T, np.eye(units), atol=1e-5)  # orthonormal rows
    limit = np.sqrt(6.0 / (features + w.shape[1]))
    kernel = layer.params["kernel"]
    assert np.abs(kernel).max() <= limit and np.abs(kernel).max() > 0.5 * limit


def test_orthogonal_square_and_tall():
    rng = np.random.default_rng(0)
    square = orthogonal(rng, (6, 6)).astype(np.float64)
    np.testing.assert_allclose(square.T @ square, np.eye(6), atol=1e-5)
    tall = orthogonal(rng, (9, 4)).astype(np.float64)
    np.testing.assert_allclose(tall.T @ tall, np.eye(4), atol=1e-5)
    assert not np.allclose(orthogonal(np.random.default_rng(1), (6, 6)), orthogonal(np.random.default_rng(2), (6, 6)))


def test_biases_start_at_zero_except_lstm_forget_gate():
    units = 4
    lstm_bias = make_layer("lstm", units, 3, 2).params["bias"]
    np.testing.assert_array_equal(lstm_bias[units : 2 * units], 1.0)  # f
    np.testing.assert_array_equal(np.delete(lstm_bias, np.s_[units : 2 * units]), 0.0)  # i, c, o
    np.testing.assert_array_equal(make_layer("gru", units, 3, 2).params["bias"], 0.0)
    np.testing.assert_array_equal(make_layer("rnn", units, 3, 2).params["bias"], 0.0)


def test_same_seed_same_weights():
    a, b = make_layer("lstm", 5, 3, 2, seed=4), make_layer("lstm", 5, 3, 2, seed=4)
    for name in a.params:
        np.testing.assert_array_equal(a.params[name], b.params[name])


def test_softmax_inside_a_cell_is_refused():
    with pytest.raises(ValueError, match="element-wise"):
        make_layer("rnn", 4, 3, 2, activation="softmax")


def test_zero_input_gives_zero_state_for_rnn_and_gru():
    for cell in ("rnn", "gru"):
        layer = make_layer(cell, 4, 5, 3)
        np.testing.assert_array_equal(layer.forward(np.zeros((2, 5, 3), np.float32), False), 0.0)


# ------------------------------------------------------------------ the teaching view


def test_state_gradient_norms_vanish_in_a_simple_rnn():
    steps = 12
    layer = make_layer("rnn", 8, steps, 3)
    assert layer.state_gradient_norms is None
    layer.params["recurrent_kernel"] *= 0.4  # small recurrent weights: ‖∂h_t/∂h_{t−1}‖ ≤ 0.4
    x = np.random.default_rng(9).standard_normal((16, steps, 3)).astype(np.float32)
    y = layer.forward(x, training=True)
    layer.backward(np.ones_like(y))
    norms = layer.state_gradient_norms
    assert norms.shape == (steps,)
    assert np.all(np.diff(norms) > 0)  # growing towards the last step = shrinking going back in time
    assert norms[0] < 1e-3 * norms[-1]


def test_state_gradient_norms_survive_longer_in_an_lstm():
    steps = 12
    ratios = {}
    for cell in ("rnn", "lstm"):
        layer = make_layer(cell, 8, steps, 3, seed=3)
        layer.params["recurrent_kernel"] *= 0.4
        x = np.random.default_rng(9).standard_normal((16, steps, 3)).astype(np.float32)
        y = layer.forward(x, training=True)
        layer.backward(np.ones_like(y))
        ratios[cell] = layer.state_gradient_norms[0] / layer.state_gradient_norms[-1]
    assert ratios["lstm"] > 10 * ratios["rnn"]


def test_sequence_output_gradient_reaches_every_step():
    layer = make_layer("gru", 4, 6, 2, sequences=True)
    x = np.random.default_rng(2).standard_normal((3, 6, 2)).astype(np.float32)
    y = layer.forward(x, training=True)
    dy = np.zeros_like(y)
    dy[:, 2] = 1.0  # the loss sees only h_3: steps after it get no gradient, steps before it do
    dx = layer.backward(dy)
    assert np.all(layer.state_gradient_norms[3:] == 0) and np.all(layer.state_gradient_norms[:3] > 0)
    assert np.all(dx[:, 3:] == 0) and np.all(np.abs(dx[:, :3]).sum(axis=(0, 2)) > 0)


def test_parameters_are_c_contiguous():
    for cell in CELLS:
        layer = make_layer(cell, 4, 3, 2)
        assert all(p.flags.c_contiguous for p in layer.params.values()), cell
