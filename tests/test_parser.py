"""The `.net` language, statement by statement: text in, the dataclasses of dsl/spec.py out."""
from __future__ import annotations

import subprocess
import sys

import pytest

from nnrun.dsl import parse, parse_file
from nnrun.dsl.spec import (
    Activation,
    ActivationLayer,
    BatchNorm,
    Conv,
    Dense,
    Dropout,
    Flatten,
    LossSpec,
    OptimizerSpec,
    Pool,
    Position,
    Recurrent,
    Regularization,
    TrainSpec,
)

MNIST_CNN = """\
# mnist_cnn.net — a first CNN
input 28x28x1
conv 32 3x3 relu
pool max 2
flatten
dense 10 softmax

loss cce
optimizer adam lr 0.001
train epochs 5 batch 64
"""


def only_layer(text: str):
    spec = parse(text)
    assert len(spec.layers) == 1
    return spec.layers[0]


def test_design_example():
    spec = parse(MNIST_CNN, "mnist_cnn.net")
    assert spec.input_shape == (28, 28, 1)
    assert spec.layers == (
        Conv(32, (3, 3), activation=Activation("relu")),
        Pool("max", (2,)),
        Flatten(),
        Dense(10, Activation("softmax")),
    )
    assert spec.loss == LossSpec("cce")
    assert spec.optimizer == OptimizerSpec("adam", lr=0.001)
    assert spec.train == TrainSpec(epochs=5, batch=64)
    assert spec.source == MNIST_CNN
    assert spec.filename == "mnist_cnn.net"
    assert spec.input_pos == Position("mnist_cnn.net", 2, 1)
    assert [layer.pos.line for layer in spec.layers] == [3, 4, 5, 6]
    assert spec.loss.pos == Position("mnist_cnn.net", 8, 1)


@pytest.mark.parametrize(
    ("text", "shape"),
    [("input 28x28x1", (28, 28, 1)), ("input 784", (784,)), ("input 20x8", (20, 8)), ("input 4x8x8x1", (4, 8, 8, 1))],
)
def test_input_shapes(text, shape):
    assert parse(text + "\ndense 1").input_shape == shape


def test_no_input_and_default_settings():
    spec = parse("dense 1")
    assert spec.input_shape is None and spec.input_pos is None
    assert spec.loss is None
    assert spec.optimizer == OptimizerSpec()  # adam 0.001
    assert spec.optimizer.name == "adam" and spec.optimizer.lr == 0.001
    assert spec.train == TrainSpec() and (spec.train.epochs, spec.train.batch) == (5, 32)


@pytest.mark.parametrize(
    ("text", "layer"),
    [
        ("dense 10", Dense(10)),
        ("dense 10 relu", Dense(10, Activation("relu"))),
        ("dense 10 l1 0.01", Dense(10, regularization=Regularization(l1=0.01))),
        ("dense 10 l2=1e-4 relu", Dense(10, Activation("relu"), Regularization(l2=1e-4))),
        (
            "dense 64 dropconnect 0.5 l1 0.1 l2 0.2 tanh",
            Dense(64, Activation("tanh"), Regularization(l1=0.1, l2=0.2, dropconnect=0.5)),
        ),
        ("dense 3 leakyrelu", Dense(3, Activation("leakyrelu", 0.3))),
        ("dense 3 leakyrelu 0.1", Dense(3, Activation("leakyrelu", 0.1))),
        ("dense 3 leakyrelu alpha 0.2", Dense(3, Activation("leakyrelu", 0.2))),
        ("dense 3 leakyrelu alpha=0.2", Dense(3, Activation("leakyrelu", 0.2))),
        ("conv 6 5x5", Conv(6, (5, 5))),
        ("conv 6 5", Conv(6, (5,))),
        ("conv 4 3x3x3 relu", Conv(4, (3, 3, 3), activation=Activation("relu"))),
        ("conv 4 5x1 stride 2x1", Conv(4, (5, 1), stride=(2, 1))),
        ("conv 8 3 stride 2", Conv(8, (3,), stride=(2,))),
        ("conv 8 3 stride=2 pad=same", Conv(8, (3,), stride=(2,), padding="same")),
        ("conv 8 3 pad valid", Conv(8, (3,), padding="valid")),
        ("conv 8 3 pad 1", Conv(8, (3,), padding=(1,))),
        ("conv 8 3 pad 1x2", Conv(8, (3,), padding=(1, 2))),
        ("conv 8 3 pad 0", Conv(8, (3,), padding=(0,))),
        (
            "conv 8 3x3 relu stride 2 pad same l2 0.001 dropconnect 0.1",
            Conv(8, (3, 3), (2,), "same", Activation("relu"), Regularization(l2=0.001, dropconnect=0.1)),
        ),
        ("conv 8 3x3 stride 2 sigmoid pad 1", Conv(8, (3, 3), (2,), (1,), Activation("sigmoid"))),
        ("pool max 2", Pool("max", (2,))),
        ("pool avg 2x2 stride 1", Pool("avg", (2, 2), stride=(1,))),
        ("pool max 3 stride 2 pad same", Pool("max", (3,), (2,), "same")),
        ("pool max 2x2 pad=1", Pool("max", (2, 2), padding=(1,))),
        ("pool avg global", Pool("avg", None, is_global=True)),
        ("pool max global", Pool("max", None, is_global=True)),
        ("flatten", Flatten()),
        ("dropout 0.5", Dropout(0.5)),
        ("dropout 0", Dropout(0.0)),
        ("batchnorm", BatchNorm()),
        ("batchnorm momentum 0.9 epsilon 1e-5", BatchNorm(0.9, 1e-5)),
        ("batchnorm eps=0.01", BatchNorm(epsilon=0.01)),
        ("relu", ActivationLayer(Activation("relu"))),
        ("sigmoid", ActivationLayer(Activation("sigmoid"))),
        ("tanh", ActivationLayer(Activation("tanh"))),
        ("softmax", ActivationLayer(Activation("softmax"))),
        ("linear", ActivationLayer(Activation("linear"))),
        ("leakyrelu", ActivationLayer(Activation("leakyrelu"))),
        ("leakyrelu 0.01", ActivationLayer(Activation("leakyrelu", 0.01))),
        ("leakyrelu alpha 0.1", ActivationLayer(Activation("leakyrelu", 0.1))),
        ("rnn 16", Recurrent("rnn", 16)),
        ("rnn 16 relu", Recurrent("rnn", 16, Activation("relu"))),
        ("rnn 16 sequences", Recurrent("rnn", 16, return_sequences=True)),
        ("rnn 16 sequences sigmoid", Recurrent("rnn", 16, Activation("sigmoid"), True)),
        ("lstm 32", Recurrent("lstm", 32)),
        ("lstm 32 sequences", Recurrent("lstm", 32, return_sequences=True)),
        ("gru 8", Recurrent("gru", 8)),
        ("gru 8 sequences", Recurrent("gru", 8, return_sequences=True)),
    ],
)
def test_layers(text, layer):
    assert only_layer(text) == layer


def test_recurrent_default_activation_is_tanh():
    assert only_layer("rnn 4").activation == Activation("tanh")
    assert only_layer("lstm 4").activation == Activation("tanh")


@pytest.mark.parametrize(
    ("text", "loss"), [("loss cce", "cce"), ("loss bce", "bce"), ("loss mse", "mse"), ("loss mae", "mae")]
)
def test_losses(text, loss):
    assert parse("dense 1\n" + text).loss == LossSpec(loss)


@pytest.mark.parametrize(
    ("text", "optimizer"),
    [
        ("optimizer sgd", OptimizerSpec("sgd", lr=0.01)),  # Keras's SGD default
        ("optimizer adam", OptimizerSpec("adam", lr=0.001)),
        ("optimizer sgd lr 0.1", OptimizerSpec("sgd", lr=0.1)),
        ("optimizer sgd lr=0.1 momentum=0.9 nesterov", OptimizerSpec("sgd", lr=0.1, momentum=0.9, nesterov=True)),
        ("optimizer sgd nesterov momentum 0.5 clip 1", OptimizerSpec("sgd", momentum=0.5, nesterov=True, lr=0.01, clip=1.0)),
        (
            "optimizer adam lr 3e-4 beta1 0.8 beta2 0.99 eps 1e-8 clip 5",
            OptimizerSpec("adam", lr=3e-4, beta1=0.8, beta2=0.99, eps=1e-8, clip=5.0),
        ),
        ("optimizer adam epsilon 1e-6", OptimizerSpec("adam", eps=1e-6)),
        ("optimizer adam lr .5", OptimizerSpec("adam", lr=0.5)),
    ],
)
def test_optimizers(text, optimizer):
    assert parse("dense 1\n" + text).optimizer == optimizer


@pytest.mark.parametrize(
    ("text", "train"),
    [
        ("train", TrainSpec()),
        ("train epochs 10", TrainSpec(epochs=10)),
        ("train epochs 3 batch 16", TrainSpec(epochs=3, batch=16)),
        (
            "train batch=8 epochs=2 validation=0.2 patience=3 seed=42",
            TrainSpec(epochs=2, batch=8, validation=0.2, patience=3, seed=42),
        ),
        ("train patience 0 seed 0", TrainSpec(patience=0, seed=0)),
    ],
)
def test_train(text, train):
    assert parse("dense 1\n" + text).train == train


def test_numbers_as_written():
    spec = parse("dense 1 l1 1e-3 l2 2.5E-2\noptimizer adam lr 1.")
    assert spec.layers[0].regularization == Regularization(l1=0.001, l2=0.025)
    assert spec.optimizer.lr == 1.0


def test_settings_anywhere_in_the_file():
    spec = parse("loss mse\ntrain epochs 2\ndense 3\noptimizer sgd\ndense 1")
    assert len(spec.layers) == 2
    assert (spec.loss.name, spec.train.epochs, spec.optimizer.name) == ("mse", 2, "sgd")


def test_semicolons_and_newlines_are_equivalent():
    lines = parse("input 8x8x1\nconv 4 3x3 relu\npool max 2\nflatten\ndense 10 softmax\nloss cce")
    semicolons = parse("input 8x8x1; conv 4 3x3 relu; pool max 2; flatten; dense 10 softmax; loss cce")
    assert lines.layers == semicolons.layers
    assert (lines.input_shape, lines.loss) == (semicolons.input_shape, semicolons.loss)


def test_blank_lines_comments_tabs_crlf_and_trailing_space():
    text = "\r\n# a comment\r\n\tinput 4   \r\n\r\n  dense\t3  relu # trailing comment\r\n;;\r\nsoftmax\t\r\n"
    spec = parse(text)
    assert spec.input_shape == (4,)
    assert spec.layers == (Dense(3, Activation("relu")), ActivationLayer(Activation("softmax")))
    assert spec.layers[0].pos.line == 5 and spec.layers[0].pos.column == 3
    assert spec.layers[1].pos.line == 7
    assert spec.source == text  # as given, CRLF and all


def test_old_mac_line_endings_and_byte_order_mark():
    spec = parse("\ufeffdense 3\rdense 2\r")
    assert [layer.units for layer in spec.layers] == [3, 2]
    assert spec.layers[1].pos == Position("<inline>", 2, 1)


def test_comment_may_hold_any_text():
    spec = parse("# LeNet — «classic» 28×28 ✓ { } ; dense\ndense 1  # ← ünïcödé")
    assert len(spec.layers) == 1


def test_key_value_and_key_equals_value_are_the_same():
    assert parse("conv 8 3 stride 2 pad same").layers == parse("conv 8 3 stride=2 pad=same").layers
    assert parse("conv 8 3 stride = 2 pad= same").layers == parse("conv 8 3 stride 2 pad same").layers


def test_labels():
    spec = parse("c1: conv 6 5x5 relu\ns2 : pool avg 2\nf6:dense 84 tanh\ndense 10")
    assert [layer.label for layer in spec.layers] == ["c1", "s2", "f6", None]
    assert spec.layers[0] == Conv(6, (5, 5), activation=Activation("relu"), label="c1")
    assert spec.layers[2].pos == Position("<inline>", 3, 1)  # a statement starts at its label


def test_options_in_any_order():
    assert only_layer("dense 10 l2 0.1 relu") == only_layer("dense 10 relu l2 0.1")
    assert only_layer("conv 8 3 relu stride 2") == only_layer("conv 8 3 stride 2 relu")
    assert only_layer("rnn 4 sequences relu") == only_layer("rnn 4 relu sequences")


def test_positions_after_semicolons():
    spec = parse("dense 4 relu; dropout 0.5;flatten\n  loss cce; dense 2")
    assert [(layer.pos.line, layer.pos.column) for layer in spec.layers] == [(1, 1), (1, 15), (1, 27), (2, 13)]
    assert spec.loss.pos == Position("<inline>", 2, 3)


def test_positions_file_name():
    spec = parse("dense 1", "models/x.net")
    assert spec.layers[0].pos == Position("models/x.net", 1, 1)
    assert str(spec.layers[0].pos) == "models/x.net:1:1"


def test_repeat_expands_in_order():
    spec = parse("input 32x32x3\nrepeat 2 { repeat 2 { conv 10 3x3 relu }; pool max 2 }\nflatten\ndense 10 softmax")
    kinds = [type(layer).__name__ for layer in spec.layers]
    assert kinds == ["Conv", "Conv", "Pool", "Conv", "Conv", "Pool", "Flatten", "Dense"]


def test_repeat_positions_point_into_the_block():
    spec = parse("repeat 3 {\n  dense 4\n  dropout 0.1\n}\ndense 1")
    assert len(spec.layers) == 7
    assert [layer.pos.line for layer in spec.layers] == [2, 3, 2, 3, 2, 3, 5]
    assert spec.layers[0].pos.column == 3


def test_repeat_on_one_line_and_nested_counts():
    assert len(parse("repeat 3 { repeat 4 { repeat 5 { relu } } }").layers) == 60
    assert len(parse("repeat 1 {dense 1;dense 2}").layers) == 2
    spec = parse("repeat 2 {\n\n  dense 1 ; \n\n}\n")
    assert len(spec.layers) == 2


def test_repeat_limit_is_reachable():
    assert len(parse("repeat 1000 { repeat 10 { relu } }").layers) == 10_000


def test_parse_file(tmp_path):
    path = tmp_path / "net.net"
    path.write_bytes(MNIST_CNN.encode("utf-8"))
    spec = parse_file(str(path))
    assert spec.filename == str(path)
    assert spec.layers[0].pos == Position(str(path), 3, 1)
    assert spec.source == MNIST_CNN


def test_parse_file_accepts_pathlike_and_bom(tmp_path):
    path = tmp_path / "bom.net"
    path.write_bytes(b"\xef\xbb\xbfdense 2\r\n")
    spec = parse_file(path)
    assert spec.layers == (Dense(2),)
    assert spec.layers[0].pos == Position(str(path), 1, 1)


def test_spec_objects_are_frozen_and_hashable():
    spec = parse(MNIST_CNN)
    assert hash(spec) == hash(parse(MNIST_CNN))
    with pytest.raises(AttributeError):
        spec.layers = ()  # type: ignore[misc]


def test_import_is_light():
    """`import nnrun.dsl.parser` and a parse load neither numba, rich, the engine nor numpy."""
    code = (
        "import sys\n"
        "import nnrun.dsl.parser as p\n"
        "p.parse('dense 1')\n"
        "print([m for m in ('numba', 'rich', 'nnrun.engine', 'numpy') if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]", out


def test_no_lark_type_leaks_out():
    """Every value in a Spec is a plain Python value: no lark Token (a str subclass) or Tree."""
    spec = parse(MNIST_CNN + "c9: rnn 4 relu sequences\nlstm 2\npool avg global\nleakyrelu alpha 0.2\n")

    def walk(value):
        if type(value).__module__.startswith("lark"):
            raise AssertionError(f"lark value in the spec: {value!r}")
        if isinstance(value, (tuple, list)):
            for item in value:
                walk(item)
        elif hasattr(value, "__dataclass_fields__"):
            for name in value.__dataclass_fields__:
                walk(getattr(value, name))
        else:
            assert type(value) in (str, int, float, bool, type(None)), (type(value), value)

    walk(spec)
