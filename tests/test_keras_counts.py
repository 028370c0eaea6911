"""Parameter counts and output shapes equal Keras's.

Every expected number is worked out here by hand from the formulas — dense
(in+1)·N, conv (K_volume·C_in+1)·F, simple RNN N(N+F+1), LSTM 4N(N+F+1),
GRU 3N(N+F+2), batchnorm 4·C — never copied from the program's output.
"""
from __future__ import annotations

import math
from pathlib import Path

import pytest

from nnrun import dsl
from nnrun.dsl.spec import Activation, ActivationLayer, BatchNorm, Conv, Dense, Dropout, Flatten, Pool, Recurrent, Spec

SPECS = Path(__file__).resolve().parents[1] / "specs"
relu, softmax, tanh, sigmoid = (Activation(name) for name in ("relu", "softmax", "tanh", "sigmoid"))


def model(input_shape, *layers):
    return dsl.resolve(Spec(input_shape=input_shape, layers=tuple(layers)))


# ------------------------------------------------------------------ the course's networks

MLP = (28 * 28 + 1) * 256 + (256 + 1) * 128 + (128 + 1) * 10
FIRST_CNN = (3 * 3 * 1 + 1) * 32 + (13 * 13 * 32 + 1) * 10  # 28 → 26 → pool 13
HAND_SIGNS = (3 * 3 * 3 + 1) * 32 + (3 * 3 * 32 + 1) * 32 + (30 * 30 * 32 + 1) * 6  # 64 → 62 → 60 → 30
TINY_VGG = (3 * 3 * 3 + 1) * 10 + 3 * (3 * 3 * 10 + 1) * 10 + (13 * 13 * 10 + 1) * 10  # 64→62→60→30→28→26→13
LENET5 = (5 * 5 * 1 + 1) * 6 + (5 * 5 * 6 + 1) * 16 + (5 * 5 * 16 + 1) * 120 + (120 + 1) * 84 + (84 + 1) * 10
THREE_CONV = (5 * 5 * 1 + 1) * 4 + (5 * 5 * 4 + 1) * 8 + (4 * 4 * 8 + 1) * 12 + (7 * 7 * 12 + 1) * 200 + (200 + 1) * 10
THREE_CONV_BN = THREE_CONV + 4 * (4 + 8 + 12 + 200)


def test_hand_totals_are_the_published_ones():
    assert (MLP, FIRST_CNN, HAND_SIGNS, TINY_VGG, LENET5, THREE_CONV) == (235_146, 54_410, 182_950, 19_920, 61_706, 122_270)


def test_mlp():
    assert model((28, 28, 1), Dense(256, relu), Dense(128, relu), Dense(10, softmax)).total_params == MLP


def test_first_cnn():
    m = model((28, 28, 1), Conv(32, (3, 3), activation=relu), Pool("max", (2,)), Flatten(), Dense(10, softmax))
    assert m.total_params == FIRST_CNN
    assert [info.output_shape for info in m.layers] == [(26, 26, 32), (13, 13, 32), (13 * 13 * 32,), (10,)]


def test_hand_signs():
    m = model((64, 64, 3), Conv(32, (3,), activation=relu), Conv(32, (3,), activation=relu), Pool("max", (2,)), Flatten(), Dense(6, softmax))
    assert m.total_params == HAND_SIGNS


def test_tiny_vgg():
    block = (Conv(10, (3, 3), activation=relu), Conv(10, (3, 3), activation=relu), Pool("max", (2,)))
    m = model((64, 64, 3), *block, *block, Dense(10, softmax))
    assert m.total_params == TINY_VGG
    assert m.layers[5].output_shape == (13, 13, 10)


def test_lenet5_with_same_padding():
    m = model(
        (28, 28, 1),
        Conv(6, (5, 5), padding="same", activation=tanh), Pool("avg", (2,)),
        Conv(16, (5, 5), activation=tanh), Pool("avg", (2,)),
        Dense(120, tanh), Dense(84, tanh), Dense(10, softmax),
    )
    assert m.total_params == LENET5
    assert [info.output_shape for info in m.layers[:4]] == [(28, 28, 6), (14, 14, 6), (10, 10, 16), (5, 5, 16)]


def three_conv_layers(batchnorm: bool):
    def block(*layers):
        return (*layers, BatchNorm(), ActivationLayer(relu)) if batchnorm else layers

    return (
        *block(Conv(4, (5,), padding="same", activation=None if batchnorm else relu)),
        *block(Conv(8, (5,), stride=(2,), padding="same", activation=None if batchnorm else relu)),
        *block(Conv(12, (4,), stride=(2,), padding="same", activation=None if batchnorm else relu)),
        *block(Dense(200, None if batchnorm else relu)),
        *((Dropout(0.25),) if batchnorm else ()),
        Dense(10, softmax),
    )


def test_three_conv():
    m = model((28, 28, 1), *three_conv_layers(batchnorm=False))
    assert m.total_params == THREE_CONV
    assert [info.output_shape for info in m.layers[:3]] == [(28, 28, 4), (14, 14, 8), (7, 7, 12)]


def test_three_conv_with_batchnorm_splits_trainable():
    m = model((28, 28, 1), *three_conv_layers(batchnorm=True))
    assert m.total_params == THREE_CONV_BN == 123_166
    assert m.non_trainable_params == 2 * (4 + 8 + 12 + 200)
    norms = [info for info in m.layers if info.type == "batch_normalization"]
    assert [(info.params, info.trainable_params) for info in norms] == [(4 * c, 2 * c) for c in (4, 8, 12, 200)]


# ------------------------------------------------------------------ recurrent layers


@pytest.mark.parametrize(
    "cell, units, steps, features, expected",
    [
        ("rnn", 32, 20, 8, 32 * (32 + 8 + 1)),  # 1,312
        ("lstm", 20, 30, 10, 4 * 20 * (20 + 10 + 1)),  # 2,480
        ("gru", 12, 30, 20, 3 * 12 * (12 + 20 + 2)),  # 1,224 (reset_after: two biases)
    ],
)
def test_recurrent_counts(cell, units, steps, features, expected):
    m = model((steps, features), Recurrent(cell, units))
    assert m.total_params == expected
    assert expected in (1_312, 2_480, 1_224)
    assert m.layers[0].type == {"rnn": "simple_rnn", "lstm": "lstm", "gru": "gru"}[cell]
    assert m.output_shape == (units,)
    sequences = model((steps, features), Recurrent(cell, units, return_sequences=True))
    assert sequences.output_shape == (steps, units)


def test_dense_after_sequences_applies_per_time_step():
    m = model((50, 8), Recurrent("lstm", 16, return_sequences=True), Dense(4))
    assert m.layers[1].output_shape == (50, 4)
    assert m.layers[1].params == (16 + 1) * 4
    assert [info.type for info in m.layers] == ["lstm", "dense"]  # no flatten


# ------------------------------------------------------------------ output sizes, Keras's rules


@pytest.mark.parametrize(
    "size, kernel, stride, expected",
    [(28, 4, 3, math.ceil(28 / 3)), (7, 2, 2, 4), (10, 6, 4, 3), (5, 8, 1, 5), (28, 2, 1, 28)],
)
def test_same_padding_is_ceil_of_size_over_stride(size, kernel, stride, expected):
    conv = model((size, size, 2), Conv(3, (kernel,), stride=(stride,), padding="same"))
    assert conv.output_shape == (expected, expected, 3)
    pool = model((size, size, 2), Pool("max", (kernel,), (stride,), padding="same"))
    assert pool.output_shape == (expected, expected, 2)


def test_conv1d_shapes_and_params():
    m = model((100, 3), Conv(16, (5,), stride=(2,)), Pool("avg", (3,)))
    assert m.layers[0].type == "conv1d" and m.layers[1].type == "average_pooling1d"
    assert m.layers[0].output_shape == ((100 - 5) // 2 + 1, 16) == (48, 16)
    assert m.layers[1].output_shape == (16, 16)
    assert m.layers[0].params == (5 * 3 + 1) * 16


def test_conv3d_shapes_and_params():
    m = model((10, 12, 14, 2), Conv(4, (3,)), Pool("max", (2,)), Conv(5, (1, 3, 3), padding="same"))
    assert [info.type for info in m.layers] == ["conv3d", "max_pooling3d", "conv3d"]
    assert m.layers[0].output_shape == (8, 10, 12, 4)
    assert m.layers[1].output_shape == (4, 5, 6, 4)
    assert m.layers[2].output_shape == (4, 5, 6, 5)
    assert m.total_params == (3 * 3 * 3 * 2 + 1) * 4 + (1 * 3 * 3 * 4 + 1) * 5


def test_explicit_padding():
    m = model((28, 28, 1), Conv(8, (5,), stride=(1,), padding=(2,)), Conv(8, (3,), stride=(2,), padding=(1,)))
    assert m.layers[0].output_shape == ((28 - 5 + 2 * 2) // 1 + 1,) * 2 + (8,) == (28, 28, 8)
    assert m.layers[1].output_shape == (14, 14, 8)


def test_global_pooling_keeps_channels():
    m = model((12, 12, 7), Pool("avg", None, is_global=True))
    assert m.layers[0].type == "global_average_pooling2d" and m.output_shape == (7,)
    m = model((30, 5), Pool("max", None, is_global=True))
    assert m.layers[0].type == "global_max_pooling1d" and m.output_shape == (5,)


# ------------------------------------------------------------------ the spec files say the same


FILES = {
    "mlp.net": MLP,
    "first_cnn.net": FIRST_CNN,
    "hand_signs.net": HAND_SIGNS,
    "tiny_vgg.net": TINY_VGG,
    "lenet5.net": LENET5,
    "three_conv.net": THREE_CONV,
    "three_conv_bn.net": THREE_CONV_BN,
    "xor.net": (2 + 1) * 2 + (2 + 1) * 1,
    "rnn.net": 32 * (32 + 1 + 1) + (32 + 1) * 1,
    "lstm.net": 4 * 32 * (32 + 1 + 1) + (32 + 1) * 1,
    "conv1d.net": (5 * 1 + 1) * 16 + (5 * 16 + 1) * 32 + (32 + 1) * 2,
    "conv3d.net": (27 * 1 + 1) * 8 + (27 * 8 + 1) * 16 + (4 * 4 * 4 * 16 + 1) * 10,
}


@pytest.mark.parametrize("name, expected", sorted(FILES.items()))
def test_spec_files(name, expected):
    assert dsl.resolve(dsl.parse_file(str(SPECS / name))).total_params == expected


def test_xo_takes_its_shape_from_the_data():
    spec = dsl.parse_file(str(SPECS / "xo.net"))
    assert spec.input_shape is None
    m = dsl.resolve(spec, (16, 16, 1))  # the `xo` data set's images
    assert m.total_params == (3 * 3 * 1 + 1) * 8 + (3 * 3 * 8 + 1) * 16 + (4 * 4 * 16 + 1) * 1
    assert m.loss == "bce"
