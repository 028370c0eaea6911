"""Teaching views (issue 14): a layer applied by hand, learning curves, what a trained model
does inside, honest metrics for the course's setups, and `bias false`."""
from __future__ import annotations

import json
import math
import re
import sys
from io import StringIO

import numpy as np
import pytest
from rich.console import Console

from conftest import run_cli
from nnrun.cli import main

IMAGE = [[1, 1, 1, 0, 0], [0, 1, 1, 1, 0], [0, 0, 1, 1, 1], [0, 0, 1, 1, 0], [0, 1, 1, 0, 0]]  # the course's 5×5
KERNEL = [[1, 0, 1], [0, 1, 0], [1, 0, 1]]
GRID = [[1, 1, 2, 4], [5, 6, 7, 8], [3, 2, 1, 0], [1, 2, 3, 4]]  # the course's max-pooling slide


def rows(matrix) -> str:
    return "; ".join(" ".join(str(v) for v in row) for row in matrix)


def run80(*args) -> tuple[int, str, str]:
    """The CLI on an 80-column console, as in a classroom terminal."""
    out = Console(file=StringIO(), width=80, color_system=None)
    err = Console(file=StringIO(), width=80, color_system=None)
    status = main([str(arg) for arg in args], out=out, err=err)
    return status, out.file.getvalue(), err.file.getvalue()


def by_hand_convolution(image, kernel, stride=1):
    """S(i, j) = Σm Σn I(i·s + m, j·s + n)·K(m, n), written as the course writes it."""
    size, k = len(image), len(kernel)
    out = (size - k) // stride + 1
    return [[sum(image[i * stride + m][j * stride + n] * kernel[m][n] for m in range(k) for n in range(k))
             for j in range(out)] for i in range(out)]


# ------------------------------------------------------------------ nnrun apply


def test_the_courses_convolution_by_hand():
    status, out, err = run_cli("apply", "conv 1 3x3", "--matrix", rows(IMAGE), "--kernel", rows(KERNEL), "--json")
    assert status == 0, err
    result = json.loads(out)
    assert result["output"] == by_hand_convolution(IMAGE, KERNEL)  # [[4, 3, 4], [2, 4, 3], [2, 3, 4]]
    assert result["input"] == result["padded"] == IMAGE
    first = result["cells"][0]
    assert (first["row"], first["col"], first["value"]) == (0, 0, 4)
    assert first["terms"] == "1·1 + 1·0 + 1·1 + 0·0 + 1·1 + 1·0 + 0·1 + 0·0 + 1·1"
    for cell in result["cells"]:  # each written-out sum adds up to the engine's value
        products = [term.split("·") for term in cell["terms"].split(" + ")]
        assert sum(float(a.strip("()")) * float(b.strip("()")) for a, b in products) == cell["value"]


def test_the_courses_max_pooling_by_hand():
    status, out, err = run_cli("apply", "pool max 2", "--matrix", rows(GRID), "--json")
    assert status == 0, err
    result = json.loads(out)
    by_hand = [[max(GRID[2 * i + m][2 * j + n] for m in range(2) for n in range(2)) for j in range(2)] for i in range(2)]
    assert result["output"] == by_hand == [[6, 8], [3, 4]]
    assert [cell["terms"] for cell in result["cells"]] == ["max(1, 1, 5, 6)", "max(2, 4, 7, 8)",
                                                          "max(3, 2, 1, 2)", "max(1, 0, 3, 4)"]
    status, out, _ = run_cli("apply", "pool avg 2", "--matrix", rows(GRID), "--json")
    assert json.loads(out)["output"] == [[13 / 4, 21 / 4], [2, 2]]


def test_padding_stride_bias_and_activation_are_written_out():
    status, out, err = run_cli("apply", "conv 1 3x3 stride 2 pad 1 relu", "--matrix", rows(IMAGE), "--kernel",
                               rows(KERNEL), "--bias", "-2", "--json")
    assert status == 0, err
    result = json.loads(out)
    padded = [[0] * 7] + [[0, *row, 0] for row in IMAGE] + [[0] * 7]
    assert result["padded"] == padded
    by_hand = [[max(0, value - 2) for value in row] for row in by_hand_convolution(padded, KERNEL, stride=2)]
    assert result["output"] == by_hand
    assert result["cells"][0]["terms"].startswith("relu(0·1 + ") and " − 2) = relu(" in result["cells"][0]["terms"]


def test_the_table_view_shows_the_padded_input_and_each_sum():
    status, out, err = run80("apply", "conv 1 3x3 pad same", "--matrix", "1 2; 3 4", "--kernel", "laplacian")
    assert status == 0, err
    assert "input (padded: the zeros dimmed)" in out and "kernel" in out and "output" in out
    assert "output[1, 1] = 0·0 + 0·1 + 0·0 + 0·1 + 1·(-4) + 2·1 + 0·0 + 3·1 + 4·0 = 1" in out  # counted from 1


def test_several_channels_and_filters():
    status, out, err = run_cli("apply", "conv 2 2x2", "--matrix", "1 2; 3 4", "--matrix", "0 1; 1 0",
                               "--kernel", "1 0; 0 1", "--kernel", "1 1; 1 1", "--kernel", "0 0; 0 0",
                               "--kernel", "1 0; 0 0", "--json")
    assert status == 0, err
    output = json.loads(out)["output"]  # a list per filter
    assert output == [[[1 + 4 + 0 + 1 + 1 + 0]], [[0 + 0]]]


def test_dense_and_an_activation_by_hand():
    status, out, err = run_cli("apply", "dense 2 relu", "--matrix", "1 0 1", "--kernel", "1 -1; 1 -1; 1 -1",
                               "--bias", "0 1", "--json")
    assert status == 0, err
    result = json.loads(out)
    assert result["output"] == [2, 0]
    assert result["cells"][1]["terms"] == "relu(1·(-1) + 0·(-1) + 1·(-1) + 1) = relu(-1)"
    status, out, err = run_cli("apply", "relu", "--matrix", "-1 2; 3 -4", "--json")
    assert json.loads(out)["output"] == [[0, 2], [3, 0]]


def test_a_named_kernel_finds_vertical_edges():
    bar = np.zeros((8, 8))
    bar[:, 3:5] = 1  # a vertical bar
    matrix = rows(bar.astype(int).tolist())
    responses = {}
    for name in ("sobel-x", "sobel-y"):
        status, out, err = run_cli("apply", "conv 1 3x3", "--matrix", matrix, "--kernel", name, "--json")
        assert status == 0, err
        responses[name] = np.abs(np.array(json.loads(out)["output"])).max()
    assert responses["sobel-x"] == 4 and responses["sobel-y"] == 0


def test_sobel_on_an_mnist_digit_draws_before_and_after(data_dir, tmp_path):
    picture = tmp_path / "sobel.png"
    status, out, err = run80("apply", "conv 1 3x3", "--kernel", "sobel-x", "--data", "mnist", "--sample", "0",
                             "--data-dir", data_dir, "--png", picture)
    assert status == 0, err
    assert "before" in out and "after" in out and "28×28" in out and "26×26" in out
    assert max(len(line) for line in out.splitlines()) <= 80
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and picture.stat().st_size > 5000


def test_a_picture_from_a_file_npy_or_png(tmp_path):
    import matplotlib.pyplot as plt

    image = np.zeros((10, 10))
    image[:, 5:] = 1  # dark left half, bright right half: one vertical edge
    np.save(tmp_path / "edge.npy", image)
    plt.imsave(tmp_path / "edge.png", image, cmap="gray")
    for name in ("edge.npy", "edge.png"):
        status, out, err = run_cli("apply", "conv 1 3x3", "--kernel", "sobel-x", "--image", tmp_path / name, "--json")
        assert status == 0, err
        output = np.array(json.loads(out)["output"])
        assert output.shape == (8, 8)
        assert np.allclose(output[:, 3:5], 4, atol=0.05) and np.allclose(output[:, :3], 0, atol=0.05)


@pytest.mark.parametrize("argv, message", [
    (("conv 1 2x2", "--matrix", "1 2; 3", "--kernel", "1 0; 0 1"), "ragged: its rows have 2, 1 numbers"),
    (("conv 1 2x2", "--matrix", "1 two; 3 4", "--kernel", "1 0; 0 1"), "'two' in row 1 is not a number"),
    (("conv 1 3x3", "--matrix", "1 2 3; 4 5 6; 7 8 9", "--kernel", "1 0; 0 1"), "the kernel is 2x2 but the statement says 3x3"),
    (("conv 1 3x3", "--matrix", "1 2 3; 4 5 6; 7 8 9"), "conv needs its kernel"),
    (("conv 2 2x2", "--matrix", "1 2; 3 4", "--kernel", "1 0; 0 1", "--kernel", "1 0; 0 1", "--kernel", "1 0; 0 1"),
     "needs 2 kernels"),
    (("conv 1 3x3", "--matrix", "1 2 3; 4 5 6; 7 8 9", "--kernel", "sobel-z"), "unknown kernel name"),
    (("lstm 4", "--matrix", "1 2; 3 4"), "apply works on conv, pool, dense and activation statements, not 'lstm'"),
    (("conv 1 3x3", "--matrix", "1 2; 3 4", "--kernel", "identity"), "⌊(2−3)/1⌋+1"),
    (("pool max 2",), "give the numbers with --matrix"),
    (("pool max 2", "--matrix", "1 2; 3 4", "--kernel", "1"), "has no weights"),
    (("pool max 2", "--data", "xo"), "--data needs --sample K"),
    (("pool max 2", "--data", "xo", "--sample", "5000"), "--sample 5000 is out of range"),
])
def test_bad_input_to_apply_is_one_sentence(argv, message):
    status, out, err = run_cli("apply", *argv)
    assert status == 2, out
    assert message in err and "Traceback" not in err and "internal error" not in err


# ------------------------------------------------------------------ learning curves and long runs


def test_learning_curves_in_the_terminal_and_as_a_picture(tmp_path):
    picture = tmp_path / "curves.png"
    spec = "input 2; dense 8 tanh; dense 1 sigmoid; optimizer adam lr 0.05; train epochs 12 batch 32 validation 0.25"
    status, out, err = run80(spec, "--data", "xor", "--seed", "1", "--plot", picture)
    assert status == 0, err
    assert "learning curves (12 epochs; each line from its lowest ▁ to its highest █; ▲ the lowest validation loss, epoch" in " ".join(out.split())
    lines = out.splitlines()
    curves = [line for line in lines if re.match(r"^(loss|accuracy)?\s+(training|validation)\s+[▁▂▃▄▅▆▇█ ]{24,}\s", line)]
    assert len(curves) == 4, out  # loss and accuracy, training and validation, 2 or more characters an epoch
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and picture.stat().st_size > 10_000
    svg = tmp_path / "curves.svg"
    assert run_cli(spec, "--data", "xor", "--seed", "1", "--plot", svg)[0] == 0
    assert svg.read_text().lstrip().startswith("<?xml") and "<svg" in svg.read_text()


def test_without_matplotlib_a_picture_is_one_sentence(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now fails
    status, out, err = run_cli("input 2; dense 1 sigmoid", "--data", "xor", "--plot", tmp_path / "c.png")
    assert status == 2 and "pictures need matplotlib" in err and "pip install 'nnrun[plots]'" in err
    status, out, err = run_cli("input 2; dense 1 sigmoid; train epochs 2", "--data", "xor")
    assert status == 0 and "learning curves" in out  # the terminal views need no matplotlib


def test_a_picture_name_must_say_its_type(tmp_path):
    status, _, err = run_cli("input 2; dense 1 sigmoid", "--data", "xor", "--plot", tmp_path / "curves.jpg")
    assert status == 2 and "must end in .png, .svg, .pdf" in err


def test_a_long_run_shows_a_readable_table_and_reports_every_epoch(tmp_path):
    report = tmp_path / "run.json"
    status, out, err = run80("input 2; dense 4 tanh; dense 1 sigmoid; train batch 256", "--data", "xor", "--epochs", "300",
                             "--seed", "1", "--report", report)
    assert status == 0, err
    table_rows = [line for line in out.splitlines() if re.match(r"^│\s+\d+ │", line)]
    epochs = [int(line.split("│")[1]) for line in table_rows]
    assert 10 <= len(epochs) <= 25 and epochs[0] == 1 and epochs[-1] == 300
    history = json.loads(report.read_text())["epochs"]
    assert len(history) == 300
    best = min(range(300), key=lambda i: history[i]["loss"]) + 1
    assert best in epochs


# ------------------------------------------------------------------ inside a trained model


@pytest.fixture(scope="module")
def xor_mse_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("xor") / "xor.npz"
    status, out, err = run_cli("input 2; dense 2 tanh; dense 1 sigmoid; loss mse; optimizer adam lr 0.05; "
                               "train epochs 100 batch 16", "--data", "xor", "--seed", "2", "--save", path)
    assert status == 0, err
    return path, out


def test_the_xor_network_inside_is_the_courses_table(xor_mse_model):
    model, _ = xor_mse_model
    status, out, err = run80("show", model, "--data", "xor")
    assert status == 0, err
    rows_ = [line for line in out.splitlines() if re.match(r"^│\s+[01] │\s+[01] │", line)]
    assert len(rows_) == 4  # the four XOR points
    assert "h1" in out and "h2" in out and "y" in out and "class" in out
    for line in rows_:
        x1, x2, h1, h2, y, label = (cell.strip() for cell in line.strip("│").split("│"))
        assert abs(float(h1)) <= 1 and abs(float(h2)) <= 1  # tanh
        assert int(label) == int(x1) ^ int(x2) and (float(y) >= 0.5) == (label == "1")


def test_a_classifier_trained_with_mse_reports_accuracy_and_a_confusion_matrix(xor_mse_model):
    _, out = xor_mse_model
    assert "accuracy" in out and "mbe" not in out and "confusion matrix" in out


def test_a_first_cnn_inside_fits_80_columns(data_dir, tmp_path):
    model, picture = tmp_path / "cnn.npz", tmp_path / "maps.png"
    status, out, err = run_cli("input 28x28x1; conv 32 3x3 relu; pool max 2; dense 10 softmax; train epochs 1 batch 128",
                               "--data", "mnist", "--data-dir", data_dir, "--seed", "0", "--save", model)
    assert status == 0, err
    status, out, err = run80("show", model, "--data", "mnist", "--data-dir", data_dir, "--sample", "0", "--png", picture)
    assert status == 0, err
    assert "conv_1 (conv2d) 26×26×32: one map per channel" in out and "pool_1 (max_pooling2d) 13×13×32" in out
    titles = re.findall(r"(?m)^\s*((?:\d+\s+)*\d+)\s*$", out)
    assert sum(len(line.split()) for line in titles) >= 64  # 32 conv maps and 32 pool maps, numbered
    assert max(len(line) for line in out.splitlines()) <= 80
    assert "prediction  class 7" in out
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_learned_filters_wrap_to_80_columns(tmp_path):
    status, out, err = run80("input 16x16x1; conv 16 3x3 relu; pool max 2; dense 2 softmax; train epochs 1", "--data", "xo")
    assert status == 0, err
    assert "learned filters of conv_1 (all 16;" in out
    assert max(len(line) for line in out.splitlines()) <= 80


def test_show_bad_input(xor_mse_model, tmp_path):
    model, _ = xor_mse_model
    status, _, err = run_cli("show", model, "--data", "xor", "--png", tmp_path / "maps.png")
    assert status == 2 and "has no convolution or pooling layer" in err
    status, _, err = run_cli("show", model, "--data", "xor", "--sample", "4")
    assert status == 2 and "--sample 4 is out of range" in err
    status, _, err = run_cli("show", model)
    assert status == 2 and "--data NAME" in err


# ------------------------------------------------------------------ honest metrics and explosions


def test_a_loss_that_explodes_without_overflowing_is_a_divergence(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 4)).astype(np.float32)
    y = (x.sum(axis=1) > 0).astype(np.int64)
    data = tmp_path / "points.npz"
    np.savez(data, x_train=x[:200], y_train=y[:200], x_test=x[200:], y_test=y[200:])
    status, out, err = run_cli("dense 64 relu; dense 2 softmax", "--data", data, "--optimizer", "sgd", "--lr", "50",
                               "--epochs", "3", "--seed", "0")
    assert status == 1, out
    assert "a million times its first value: training diverged" in err and "--lr 5" in err


# ------------------------------------------------------------------ bias false


@pytest.mark.parametrize("statement, shape, keras", [
    ("conv 1 5x5 bias false", "5x5x1", 5 * 5),  # "a 5×5 window: 25 learnable parameters"
    ("conv 8 3x3 bias=false", "6x6x3", 3 * 3 * 3 * 8),
    ("dense 10 bias false", "784", 784 * 10),
    ("rnn 16 bias false", "20x3", 16 * (16 + 3)),  # h_t = tanh(U x_t + W h_{t−1}), no b
    ("lstm 8 bias false", "20x3", 4 * 8 * (8 + 3)),
    ("gru 8 bias false", "20x3", 3 * 8 * (8 + 3)),
    ("dense 10 bias true", "784", 785 * 10),
])
def test_bias_false_counts_as_keras_use_bias_false(statement, shape, keras):
    status, out, err = run_cli("summary", statement, "--input", shape, "--json")
    assert status == 0, err
    assert json.loads(out)["total_params"] == keras


def test_bias_false_trains_without_a_bias(tmp_path):
    from nnrun.model_io import load_model

    model = tmp_path / "nobias.npz"
    status, out, err = run_cli("input 16x16x1; conv 4 3x3 relu bias false; pool max 2; dense 2 softmax bias false; "
                               "train epochs 2", "--data", "xo", "--seed", "0", "--save", model)
    assert status == 0, err
    saved = load_model(model)
    assert set(saved.weights) == {"conv_1/kernel", "dense_1/kernel"}
    accuracy = float(out.split("accuracy ")[-1].split("%")[0])
    assert accuracy > 90
    status, out, err = run_cli("summary", "input 16x16x1; conv 1 3x3 bias false", "--explain")
    assert "(3·3·1)·1 = 9 (no bias)" in out


def test_a_frozen_zero_bias_stays_zero_and_is_no_parameter():
    from nnrun.dsl import parse, resolve
    from nnrun.engine.network import Network

    network = Network(resolve(parse("input 3; dense 4 tanh bias false; dense 1 bias false; loss mse")), seed=0)
    x = np.random.default_rng(0).normal(size=(16, 3)).astype(np.float32)
    y = np.ones((16, 1), np.float32)
    for _ in range(5):
        network.train_step(x, y)
    assert all(not layer.params["bias"].any() for layer in network.layers if "bias" in layer.params)
    assert not any(key.endswith("/bias") for key in network.params) and not any(key.endswith("/bias") for key in network.weights())


# ------------------------------------------------------------------ a teacher's review


def test_pooling_leaves_the_padding_out_of_its_sums():
    status, out, err = run_cli("apply", "pool avg 2 pad same", "--matrix", "1 2 3; 4 5 6; 7 8 9", "--json")
    assert status == 0, err
    result = json.loads(out)
    assert result["output"] == [[3, 4.5], [7.5, 9]]  # Keras: the average of the input cells the window covers
    assert [cell["terms"] for cell in result["cells"]] == ["(1 + 2 + 4 + 5)/4", "(3 + 6)/2", "(7 + 8)/2", "(9)/1"]
    status, out, _ = run_cli("apply", "pool max 2 pad same", "--matrix", "-1 -2 -3; -4 -5 -6; -7 -8 -9", "--json")
    assert json.loads(out)["cells"][1]["terms"] == "max(-3, -6)"


def test_softmax_on_a_row_and_its_denominator():
    status, out, err = run_cli("apply", "softmax", "--matrix", "1 2 3", "--json")
    assert status == 0, err
    result = json.loads(out)
    exps = [math.exp(v) for v in (1, 2, 3)]
    assert result["output"] == [[round(e / sum(exps), 4) for e in exps]] or \
        np.allclose(result["output"], [[e / sum(exps) for e in exps]], atol=1e-6)
    assert result["cells"][0]["terms"] == "e^1 / (e^1 + e^2 + e^3)"


def test_bias_false_global_pooling_and_warnings_in_apply():
    status, out, err = run_cli("apply", "conv 1 2x2 bias false", "--matrix", "1 2; 3 4", "--kernel", "1 1; 1 1", "--json")
    assert status == 0 and json.loads(out)["output"] == [[10]], err
    status, _, err = run_cli("apply", "conv 1 2x2 bias false", "--matrix", "1 2; 3 4", "--kernel", "1 1; 1 1", "--bias", "1")
    assert status == 2 and "has no bias" in err
    status, out, err = run_cli("apply", "pool max global", "--matrix", "1 2; 3 4", "--json")
    assert status == 0 and json.loads(out)["cells"][0]["terms"] == "max(1, 2, 3, 4)"
    status, out, err = run_cli("apply", "pool max global", "--data", "xo", "--sample", "0")
    assert status == 0 and "output" in out, err
    status, out, err = run_cli("apply", "pool max 2", "--matrix", "; ".join(["1 2 3 4 5"] * 5))
    assert status == 0 and "warning: (5−2)/2 = 1.5: the last row and column are ignored" in out


def test_channels_of_an_activation_and_json_numbers():
    status, out, err = run_cli("apply", "relu", "--matrix", "-1 2", "--matrix", "3 -4", "--json")
    result = json.loads(out)
    assert [(cell["filter"], cell["value"]) for cell in result["cells"]] == [(0, 0), (0, 2), (1, 3), (1, 0)]
    status, out, err = run_cli("apply", "dense 1", "--matrix", "1.3 2", "--kernel", "1; 1", "--bias", "0.1", "--json")
    result = json.loads(out)
    assert result["output"] == [3.4] and result["kernel"] == [[1], [1]] and result["bias"] == [0.1]


@pytest.mark.parametrize("argv, message", [
    (("conv 1 3x3", "--matrix", "1 2 3, 4 5 6, 7 8 9", "--kernel", "identity"), "the matrix was read as one row of 9"),
    (("conv 1 3x3", "--matrix", "1 2 3; 4 5 6; 7 8 9", "--kernel", "1 0 1, 0 1 0, 1 0 1"), "the kernel was read as one row"),
    (("conv 1 3x3", "--matrix", "1 2 3; 4 5 6; 7 8 9", "--kernel", "1 0 1", "--kernel", "0 1 0", "--kernel", "1 0 1"),
     "each --kernel is a whole 3x3 matrix"),
    (("conv 1 3", "--matrix", "1 2 3 4 5", "--kernel", "1 1 1"), "for a window along the row, write it 1x3"),
    (("pool max 2", "--matrix", "1 2; 3 4", "--sample", "3"), "with --matrix there is nothing to pick"),
    (("pool max 2", "--matrix", "1 2; 3 4", "--bias", "1"), "--bias is only for conv and dense"),
])
def test_a_students_typing_slips_get_the_right_hint(argv, message):
    status, out, err = run_cli("apply", *argv)
    assert status == 2 and message in err, err


def test_show_reads_text_and_sequences_as_they_are(tmp_path):
    from test_recurrent_cli import TINY_TEXT

    corpus = tmp_path / "tiny.txt"
    corpus.write_text(TINY_TEXT, encoding="utf-8")
    model = tmp_path / "text.npz"
    classes = len(set(TINY_TEXT))
    assert run_cli(f"rnn 8; dense {classes} softmax", "--data", f"text:{corpus}", "--epochs", "1", "--seed", "1",
                   "--save", model)[0] == 0
    status, out, err = run80("show", model, "--data", f"text:{corpus}", "--sample", "0")
    assert status == 0, err
    first = out.splitlines()[1]
    assert first.startswith("input  '") and len(eval(first[len("input  "):])) == 40  # the window, as text
    assert "true class" in out.splitlines()[0] and "prediction  class" in out
    sine = tmp_path / "sine.npz"
    assert run_cli("input 50x1; rnn 4; dense 1", "--data", "sine", "--epochs", "1", "--save", sine)[0] == 0
    status, out, err = run80("show", sine, "--data", "sine", "--sample", "1")
    assert status == 0 and "input 50×1: a line per feature, the steps left to right" in out


def test_explain_without_bias_writes_no_b():
    status, out, err = run_cli("summary", "input 20x3; rnn 4 bias false", "--explain")
    assert "h_t = tanh(U·x_t + W·h_{t−1})" in out and "+ b" not in out and "U, W, b" not in out
