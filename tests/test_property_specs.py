"""Random specs: resolve() never crashes, and its numbers match the formulas.

Random layer stacks (as Spec objects) either resolve or raise SpecError; when they
resolve, every row's output shape and parameter count are recomputed here from
the course's formulas, independently of dsl.shapes.  Random text through
`nnrun summary` ends with status 0 or 2, never a traceback.
"""
from __future__ import annotations

import math

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from nnrun import dsl
from conftest import run_cli
from nnrun.dsl import SpecError
from nnrun.dsl.spec import Activation, ActivationLayer, BatchNorm, Conv, Dense, Dropout, Flatten, Pool, Recurrent, Spec

activations = st.builds(Activation, st.sampled_from(["relu", "sigmoid", "tanh", "softmax", "linear", "leakyrelu"]))
sizes = st.integers(1, 5)
windows = st.one_of(sizes.map(lambda k: (k,)), st.lists(sizes, min_size=2, max_size=3).map(tuple))  # mostly bare numbers
paddings = st.one_of(st.sampled_from(["valid", "same"]), st.integers(0, 2).map(lambda p: (p,)))

layers = st.one_of(
    st.builds(Dense, st.integers(1, 20), st.none() | activations),
    st.builds(Conv, st.integers(1, 8), windows, st.integers(1, 3).map(lambda s: (s,)), paddings, st.none() | activations),
    st.builds(Pool, st.sampled_from(["max", "avg"]), windows, st.none() | st.integers(1, 3).map(lambda s: (s,)), st.sampled_from(["valid", "same"])),
    st.builds(Pool, st.sampled_from(["max", "avg"]), st.none(), is_global=st.just(True)),
    st.builds(Flatten),
    st.builds(Dropout, st.floats(0, 0.9)),
    st.builds(BatchNorm),
    st.builds(ActivationLayer, activations),
    st.builds(Recurrent, st.sampled_from(["rnn", "lstm", "gru"]), st.integers(1, 8), return_sequences=st.booleans()),
)
input_shapes = st.one_of(
    st.tuples(st.integers(1, 50)),
    st.tuples(st.integers(1, 30), st.integers(1, 5)),
    st.tuples(st.integers(1, 32), st.integers(1, 32), st.integers(1, 3)),
    st.tuples(st.integers(1, 10), st.integers(1, 10), st.integers(1, 10), st.integers(1, 2)),
)


def window_size(size: int, kernel: int, stride: int, padding) -> int:
    """Keras: valid ⌊(I−K)/S⌋+1, same ⌈I/S⌉, explicit ⌊(I−K+2P)/S⌋+1."""
    if padding == "same":
        return math.ceil(size / stride)
    pad = 0 if padding == "valid" else padding[0]
    return (size - kernel + 2 * pad) // stride + 1


def expected(layer, shape: tuple[int, ...]) -> tuple[tuple[int, ...], int]:
    """(output shape, parameters) of one layer on an input of ``shape``, from the formulas."""
    if isinstance(layer, Dense):
        return (*shape[:-1], layer.units), (shape[-1] + 1) * layer.units
    if isinstance(layer, Conv):
        spatial = shape[:-1]
        kernel = layer.kernel * len(spatial) if len(layer.kernel) == 1 else layer.kernel
        out = [window_size(i, k, layer.stride[0], layer.padding) for i, k in zip(spatial, kernel)]
        return (*out, layer.filters), (math.prod(kernel) * shape[-1] + 1) * layer.filters
    if isinstance(layer, Pool):
        if layer.is_global:
            return (shape[-1],), 0
        spatial = shape[:-1]
        kernel = layer.kernel * len(spatial) if len(layer.kernel) == 1 else layer.kernel
        stride = kernel if layer.stride is None else layer.stride * len(spatial)
        return (*[window_size(i, k, s, layer.padding) for i, k, s in zip(spatial, kernel, stride)], shape[-1]), 0
    if isinstance(layer, Flatten):
        return (math.prod(shape),), 0
    if isinstance(layer, BatchNorm):
        return shape, 4 * shape[-1]
    if isinstance(layer, Recurrent):
        steps, features, units = shape[0], shape[1], layer.units
        params = {"rnn": units * (units + features + 1), "lstm": 4 * units * (units + features + 1), "gru": 3 * units * (units + features + 2)}
        return ((steps, units) if layer.return_sequences else (units,)), params[layer.cell]
    return shape, 0  # dropout, activations


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(input_shapes, st.lists(layers, min_size=1, max_size=6))
def test_random_stacks_resolve_or_raise_spec_error_and_counts_match_the_formulas(input_shape, stack):
    spec = Spec(input_shape=input_shape, layers=tuple(stack))
    try:
        model = dsl.resolve(spec)
    except SpecError as error:
        assert error.message and "Traceback" not in error.render()
        event("SpecError")
        return
    event("resolved")
    shape = input_shape
    for info in model.layers:
        assert info.input_shape == shape
        output_shape, params = expected(info.layer, shape)
        assert (info.output_shape, info.params) == (output_shape, params), info.name
        assert min(info.output_shape) >= 1
        shape = info.output_shape
    assert model.total_params == sum(expected(info.layer, info.input_shape)[1] for info in model.layers)
    written = [info.layer for info in model.layers if not (isinstance(info.layer, Flatten) and info.layer.implicit)]
    assert written == list(stack)  # every statement is a row, in order; only implicit flattens are added
    assert len({info.name for info in model.layers}) == len(model.layers)


WORDS = [
    "input", "28x28x1", "50x1", "784", "dense", "conv", "pool", "max", "avg", "global", "flatten", "dropout",
    "batchnorm", "relu", "softmax", "leakyrelu", "rnn", "lstm", "gru", "sequences", "repeat", "{", "}", ";", "\n",
    "3x3", "5", "0", "-1", "1e9", "0.5", "stride", "pad", "same", "valid", "loss", "cce", "optimizer", "sgd", "adam",
    "lr", "train", "epochs", "batch", "x:", "#", "=", "cnov", "×", "\t", "99999999999999999999",
]
spec_texts = st.one_of(
    st.lists(st.sampled_from(WORDS), min_size=1, max_size=14).map(" ".join),
    st.text(min_size=1, max_size=40),
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec_texts, st.sampled_from([None, "28x28x1", "50x1", "16"]))
def test_random_text_never_ends_in_a_traceback(text, shape):
    extra = ("--input", shape) if shape else ()
    status, out, err = run_cli("summary", "--", text, *extra) if not extra else run_cli("summary", *extra, "--", text)
    assert status in (0, 2), err
    event(f"exit {status}")
    assert "Traceback" not in err and "internal error" not in err
