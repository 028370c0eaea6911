"""resolve(): shape rules, names, the implicit flatten, MACs, receptive fields,
warnings for dropped pixels, the default loss and the errors, on Spec objects."""
from __future__ import annotations

import subprocess
import sys

import pytest

from nnrun import dsl
from nnrun.dsl import SpecError
from nnrun.dsl.spec import (
    Activation,
    ActivationLayer,
    BatchNorm,
    Conv,
    Dense,
    Dropout,
    Flatten,
    LossSpec,
    Pool,
    Position,
    Recurrent,
    Spec,
)

relu, softmax, sigmoid = Activation("relu"), Activation("softmax"), Activation("sigmoid")
FIRST_CNN = (Conv(32, (3, 3), activation=relu), Pool("max", (2,)), Dense(10, softmax))


def model(input_shape, *layers, loss=None, given=None):
    return dsl.resolve(Spec(input_shape=input_shape, layers=tuple(layers), loss=loss), given)


def error(input_shape, *layers, given=None, source="", pos=None) -> SpecError:
    with pytest.raises(SpecError) as caught:
        dsl.resolve(Spec(input_shape=input_shape, layers=tuple(layers), source=source), given)
    return caught.value


# ------------------------------------------------------------------ names and rows


def test_implicit_flatten_before_dense_is_its_own_row():
    m = model((28, 28, 1), *FIRST_CNN)
    assert [(info.name, info.type) for info in m.layers] == [
        ("conv_1", "conv2d"), ("pool_1", "max_pooling2d"), ("flatten_1", "flatten"), ("dense_1", "dense"),
    ]
    implicit = m.layers[2].layer
    assert isinstance(implicit, Flatten) and implicit.implicit
    assert m.layers[2].output_shape == (13 * 13 * 32,)


def test_no_flatten_on_vectors_or_after_an_explicit_one():
    assert [info.type for info in model((784,), Dense(10), Dense(2)).layers] == ["dense", "dense"]
    m = model((4, 4, 2), Flatten(), Dense(3))
    assert [info.type for info in m.layers] == ["flatten", "dense"]
    assert not m.layers[0].layer.implicit


def test_names_count_per_kind_and_labels_do_not_take_numbers():
    m = model(
        (28, 28, 1),
        Conv(4, (3,), label="c1"), Conv(4, (3,)), ActivationLayer(relu), Pool("max", (2,)),
        Dropout(0.5), BatchNorm(), Dense(10), ActivationLayer(relu), Dense(2), ActivationLayer(Activation("leakyrelu")),
    )
    names = [info.name for info in m.layers]
    assert names == ["c1", "conv_1", "relu_1", "pool_1", "dropout_1", "batchnorm_1", "flatten_1", "dense_1", "relu_2", "dense_2", "leakyrelu_1"]
    types = [info.type for info in m.layers]
    assert types[2] == "activation" and types[-1] == "leaky_relu" and types[5] == "batch_normalization"


def test_duplicate_labels_are_an_error():
    e = error((4,), Dense(3, label="a"), Dense(3, label="a"))
    assert "'a' is used twice" in e.message


def test_a_label_that_looks_automatic_is_skipped_by_the_numbering():
    m = model((4,), Dense(3), Dense(3, label="dense_2"), Dense(3))
    assert [info.name for info in m.layers] == ["dense_1", "dense_2", "dense_3"]


# ------------------------------------------------------------------ MACs and receptive fields


def test_macs_of_the_first_cnn():
    m = model((28, 28, 1), *FIRST_CNN)
    assert [info.macs for info in m.layers] == [26 * 26 * 32 * (3 * 3 * 1), 0, 0, 13 * 13 * 32 * 10]
    assert m.macs == 248_768  # DESIGN §2's example


def test_macs_of_recurrent_layers_count_every_step():
    m = model((20, 8), Recurrent("lstm", 16, return_sequences=True), Recurrent("rnn", 4), Dense(1))
    assert [info.macs for info in m.layers] == [20 * 4 * 16 * (8 + 16), 20 * 4 * (16 + 4), 4]


def test_receptive_field_grows_through_conv_and_pool():
    m = model((32, 32, 3), Conv(8, (3,)), Pool("max", (2,)), Conv(8, (3,)), ActivationLayer(relu), Conv(8, (5, 3), stride=(2,)), Dense(2))
    # r ← r + (K−1)·j, j ← j·S:  3 (j 1) → 4 (j 2) → 8 (j 2) → 8 → 16×12 (j 4)
    assert [info.receptive_field for info in m.layers] == [(3, 3), (4, 4), (8, 8), (8, 8), (16, 12), None, None]


def test_receptive_field_of_a_sequence():
    m = model((100, 1), Conv(4, (5,)), Conv(4, (5,), stride=(2,)), Conv(4, (5,)))
    assert [info.receptive_field for info in m.layers] == [(5,), (9,), (17,)]


# ------------------------------------------------------------------ explanations and warnings


def test_explain_fills_in_the_numbers():
    m = model((28, 28, 1), *FIRST_CNN)
    assert m.layers[0].explain == ("⌊(28−3)/1⌋+1 = 26", "(3·3·1+1)·32 = 320")
    assert m.layers[1].explain == ("⌊(26−2)/2⌋+1 = 13",)
    assert m.layers[3].explain == ("(5408+1)·10 = 54,090",)
    same = model((28, 28, 1), Conv(4, (5,), stride=(2,), padding="same")).layers[0]
    assert same.explain[0] == "⌈28/2⌉ = 14"
    rect = model((28, 20, 1), Conv(4, (3,))).layers[0]
    assert rect.explain[:2] == ("H: ⌊(28−3)/1⌋+1 = 26", "W: ⌊(20−3)/1⌋+1 = 18")


def test_dropped_pixels_are_warned_about():
    m = model((28, 28, 1), Conv(4, (5,), stride=(2,)), Dense(2))
    assert m.layers[0].warnings == ("(28−5)/2 = 11.5: the last row and column are ignored",)
    assert m.warnings == ("conv_1: (28−5)/2 = 11.5: the last row and column are ignored",)
    odd_pool = model((13, 13, 4), Pool("max", (2,))).layers[0]
    assert odd_pool.warnings == ("(13−2)/2 = 5.5: the last row and column are ignored",)
    only_rows = model((29, 28, 1), Conv(4, (2,), stride=(2,))).layers[0]
    assert only_rows.warnings == ("(29−2)/2 = 13.5: the last row is ignored",)
    sequence = model((10, 1), Conv(4, (3,), stride=(4,))).layers[0]
    assert sequence.warnings == ("(10−3)/4 = 1.75: the last 3 time steps are ignored",)


def test_no_warning_when_only_padding_is_dropped_or_windows_fit():
    assert model((28, 28, 1), Conv(4, (3,), stride=(2,), padding=(1,))).warnings == ()  # drops padding only
    assert model((28, 28, 1), Conv(4, (5,), stride=(2,), padding="same")).warnings == ()
    assert model((28, 28, 1), *FIRST_CNN).warnings == ()


# ------------------------------------------------------------------ the default loss


@pytest.mark.parametrize(
    "last, loss",
    [
        (Dense(10, softmax), "cce"),
        (Dense(1, sigmoid), "bce"),
        (Dense(3, sigmoid), "mse"),
        (Dense(1), "mse"),
        (ActivationLayer(softmax), "cce"),
    ],
)
def test_default_loss(last, loss):
    assert model((4,), Dense(5), last).loss == loss


def test_default_loss_looks_through_dropout_and_a_written_loss_wins():
    assert model((4,), Dense(3, softmax), Dropout(0.1)).loss == "cce"
    assert model((4,), Dense(3, softmax), loss=LossSpec("mse")).loss == "mse"


# ------------------------------------------------------------------ the input shape


def test_input_from_the_argument_or_the_spec():
    assert model(None, Dense(3), given=(5,)).input_shape == (5,)
    assert model((5,), Dense(3), given=(5,)).input_shape == (5,)
    missing = error(None, Dense(3))
    assert "no input shape: add an `input` line or pass --input" in missing.message
    assert "28x28x1" not in missing.message  # not a fact about this spec: only an example, in the hint
    assert "e.g. `input 784`, `input 28x28x1` or `input 50x1`" in missing.hint
    mismatch = error((28, 28, 1), Dense(3), given=(32, 32, 3))
    assert "`input 28x28x1` in the spec, but 32×32×3 was given" in mismatch.message
    assert "--input or the data" in mismatch.hint


# ------------------------------------------------------------------ errors


def test_kernel_larger_than_input_shows_the_arithmetic():
    e = error((3, 3, 16), Conv(32, (5, 5)))
    assert e.message == "conv 32 5x5 on 3×3×16: ⌊(3−5)/1⌋+1 = −1"


def test_kernel_of_the_wrong_rank():
    e = error((50, 1), Conv(16, (3, 3)))
    assert e.message == "kernel 3x3 is 2-D, but this layer is 1-D"
    assert "the input 50×1 is a sequence T×F with 1 spatial axis;" in e.hint and "`3`" in e.hint
    e = error((8, 8, 1), Conv(3, (3, 3, 3)))
    assert "8×8×1 is an image H×W×C with 2 spatial axes;" in e.hint and "axises" not in e.hint
    assert "`3x3`, or a bare number (`3`)" in e.hint
    assert "3 spatial axes" in error((4, 8, 8, 1), Pool("max", (2, 2))).hint


SHAPE_FAULTS = [  # spec text, --input
    ("input 8x8x1\nconv 3 3x3x3", None),
    ("input 50x1\nconv 16 3x3", None),
    ("input 16x16x1\ndense 3", (8, 8, 1)),
    ("dense 3", None),
    ("input 784\nconv 3 3", None),
]


@pytest.mark.parametrize("text, given", SHAPE_FAULTS)
def test_shape_errors_fit_an_80_column_terminal(text, given):
    with pytest.raises(SpecError) as caught:
        dsl.resolve(dsl.parse(text, "specs/mnist.net"), given)
    rendered = caught.value.render()
    assert rendered.startswith("specs/mnist.net:") and all(len(line) <= 80 for line in rendered.splitlines()), rendered


def test_conv_and_pool_need_positions():
    assert "conv needs a sequence, image or volume, not a vector" in error((784,), Conv(3, (3,))).message
    assert "before the flatten/dense" in error((8, 8, 1), Flatten(), Pool("max", (2,))).hint


def test_recurrent_needs_a_sequence():
    e = error((28, 28, 1), Recurrent("rnn", 8))
    assert e.message.startswith("rnn needs a sequence input T×F; got 28×28×1")
    assert "input 28x28" in e.hint


def test_absurd_sizes_are_errors():
    assert "parameters" in error((10_000,), Dense(300_000)).message
    assert "values" in error((10_000, 10_000, 3), Conv(64, (1,))).message


def test_bad_values_in_hand_built_specs_are_errors_not_crashes():
    for layers in [(Dropout(1.5),), (Dense(0),), (Conv(0, (3,)),), (Conv(2, (0,)),), (Pool("max", (2,), (0,)),), (Recurrent("gru", 0),)]:
        error((8, 8, 3) if not isinstance(layers[0], (Dense, Recurrent)) else (8, 3), *layers)


def test_errors_point_at_the_statement():
    source = "input 3x3x16\nconv 32 5x5 relu ; dense 2\n"
    e = error((3, 3, 16), Conv(32, (5, 5), activation=relu, pos=Position("x.net", 2, 1)), source=source)
    assert e.render().splitlines() == [
        "x.net:2:1: error: conv 32 5x5 on 3×3×16: ⌊(3−5)/1⌋+1 = −1",
        "  conv 32 5x5 relu ; dense 2",
        "  ^~~~~~~~~~~~~~~~",
        "hint: the 5-wide window does not fit in 3; use a smaller kernel or stride, `pad same`, "
        "or fewer pooling layers before it",
    ]


def test_the_calculator_imports_no_numba_rich_or_engine():
    code = "import sys; from nnrun import dsl; import nnrun.dsl.spec; dsl.resolve(dsl.spec.Spec((4,), (dsl.spec.Dense(2),))); " \
           "print(sorted(m for m in ('numba', 'rich', 'nnrun.engine') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
