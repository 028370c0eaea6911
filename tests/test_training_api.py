"""The training run as a function (`nnrun.training.train`): settings in, history and model
out, progress through a callback — what the command line, the bench, sweeps and views call."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import run_cli
from nnrun.dsl import parse
from nnrun.errors import RunError
from nnrun.training import Progress, TrainConfig, TrainResult, optimizer_text, train

XOR = "input 2; dense 8 tanh; dense 1 sigmoid; loss bce; optimizer adam lr 0.05; train epochs 3 batch 16"


class Recorder(Progress):
    """Every call, in order, as (method, first argument)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []

    def warning(self, text):
        self.calls.append(("warning", text))

    def header(self, rows):
        self.calls.append(("header", dict(rows)))

    def epoch_started(self, label, batches):
        self.calls.append(("epoch_started", (label, batches)))

    def batch_done(self, done, loss, metric, samples_per_second):
        self.calls.append(("batch_done", done))

    def epoch_done(self, record):
        self.calls.append(("epoch_done", record))


def test_a_run_returns_its_history_and_trained_network_and_prints_nothing(capsys):
    progress = Recorder()
    result = train(TrainConfig(spec=parse(XOR), data="xor", seed=2), progress)
    assert isinstance(result, TrainResult) and result.stopped == "completed"
    assert [record["epoch"] for record in result.history] == [1, 2, 3]
    assert result.test["accuracy"] == 1.0 and result.metric == "accuracy"
    assert result.confusion.sum() == 4 and np.trace(result.confusion) == 4  # the four XOR points
    # the network is the trained one: its predictions give the test accuracy
    predicted = (result.network.predict(result.data.x_test, batch=4)[:, 0] >= 0.5).astype(int)
    assert (predicted == result.data.y_test.reshape(-1)).all()
    assert capsys.readouterr() == ("", "")

    kinds = [kind for kind, _ in progress.calls]
    assert kinds[0] == "header" and kinds.count("epoch_started") == 3 and kinds.count("epoch_done") == 3
    header = progress.calls[0][1]
    assert header["seed"].startswith("2 ") and header["parameters"] == f"{(2 + 1) * 8 + (8 + 1) * 1:,}"
    assert [arg for kind, arg in progress.calls if kind == "epoch_done"] == result.history
    first_epoch = kinds[kinds.index("epoch_started"):kinds.index("epoch_done")]
    assert first_epoch.count("batch_done") >= 1  # the last batch of an epoch is always reported


def test_the_same_config_repeats_the_run_bit_for_bit():
    first = train(TrainConfig(spec=parse(XOR), data="xor", seed=5, epochs=2))
    second = train(TrainConfig(spec=parse(XOR), data="xor", seed=5, epochs=2))
    assert [r["loss"] for r in first.history] == [r["loss"] for r in second.history]
    for name, array in first.network.weights().items():
        np.testing.assert_array_equal(array, second.network.weights()[name])


def test_a_loaded_data_set_can_be_given_directly_and_the_config_overrides_the_spec():
    from nnrun.datasets import load_dataset

    data = load_dataset("xor", seed=0)
    result = train(TrainConfig(spec=parse(XOR), data=data, epochs=1, batch=4, optimizer="sgd", seed=0))
    assert result.data is data and len(result.history) == 1
    assert result.settings.batch == 4 and result.settings.optimizer.name == "sgd"
    assert result.settings.optimizer.lr == 0.01  # a switched optimizer starts from its Keras default


def test_a_diverging_run_returns_and_says_so(tmp_path):
    from test_training_cli import regression_npz

    data = regression_npz(tmp_path / "linear.npz")
    result = train(TrainConfig(spec=parse("dense 1"), data=str(data), optimizer="sgd", lr=1000, epochs=5, seed=0))
    assert result.stopped == "diverged" and result.test is None
    assert result.stop.epoch == 1 and not result.stop.loss < 1e6  # exploded (a million times the first loss) or NaN


def test_what_must_be_fixed_first_is_a_run_error_before_any_training():
    progress = Recorder()
    with pytest.raises(RunError) as error:
        train(TrainConfig(spec=parse("input 3; dense 1 sigmoid"), data="xor"), progress)
    assert "input is 3" in error.value.message and error.value.status == 2
    assert progress.calls == []


def test_the_header_names_every_optimizer_setting():
    assert optimizer_text(parse("dense 1; optimizer sgd lr 0.1").optimizer) == "sgd lr 0.1 momentum 0"
    assert optimizer_text(parse("dense 1; optimizer sgd momentum 0.9 nesterov").optimizer) == "sgd lr 0.01 momentum 0.9 nesterov"
    assert optimizer_text(parse("dense 1; optimizer adam clip 1").optimizer) == "adam lr 0.001 beta1 0.9 beta2 0.999 clip 1"
    status, out, err = run_cli("input 2; dense 1 sigmoid; optimizer sgd lr 0.1; train epochs 1", "--data", "xor")
    assert status == 0, err
    assert "optimizer" not in err and "sgd lr 0.1 momentum 0 ·" in out


# ------------------------------------------------------------------ the course's MLP: `input 784` on MNIST images


def image_npz(path, count=64):
    """Two classes of 6×6×1 images (a bright top half or a bright bottom half)."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, count)
    x = rng.uniform(0, 0.2, (count, 6, 6, 1)).astype(np.float32)
    x[y == 0, :3] += 0.8
    x[y == 1, 3:] += 0.8
    np.savez(path, x_train=x[:48], y_train=y[:48], x_test=x[48:], y_test=y[48:])
    return path, x


def test_a_vector_input_reads_images_flattened(tmp_path):
    data, images = image_npz(tmp_path / "halves.npz")
    model = tmp_path / "mlp.npz"
    status, out, err = run_cli("input 36; dense 8 relu; dense 2 softmax; train epochs 3 batch 8", "--data", data,
                               "--seed", "0", "--save", model)
    assert status == 0, err
    assert "36 (6×6×1 samples flattened) → 2" in out
    # the saved model evaluates and predicts on the images too
    status, out, err = run_cli("eval", model, "--data", data)
    assert status == 0 and "test" in out, err
    np.save(tmp_path / "four.npy", images[:4])
    status, out, err = run_cli("predict", model, tmp_path / "four.npy")
    assert status == 0, err
    assert out.count("%") >= 4
    np.save(tmp_path / "one.npy", images[0])  # one image, 6×6×1
    status, out, err = run_cli("predict", model, tmp_path / "one.npy")
    assert status == 0, err
    rows = [line for line in out.splitlines() if line.startswith("│")]
    assert len(rows) == 1 and rows[0].split("│")[1].strip() == "0"  # one sample


def test_an_image_without_its_channel_axis_is_read_row_by_row(tmp_path):
    data, _ = image_npz(tmp_path / "halves.npz")
    status, out, err = run_cli("input 6x6; rnn 8; dense 2 softmax; train epochs 2 batch 8", "--data", data, "--seed", "0")
    assert status == 0, err
    assert "6×6 (6×6×1 samples without their channel axis) → 2" in out


def test_a_vector_input_of_another_size_is_still_refused(tmp_path):
    data, _ = image_npz(tmp_path / "halves.npz")
    status, _, err = run_cli("input 35; dense 2 softmax", "--data", data)
    assert status == 2
    assert "the spec's input is 35 but halves samples are 6×6×1" in err


def test_the_courses_mlp_trains_on_mnist_flattened(data_dir):
    status, out, err = run_cli("input 784; dense 64 relu; dense 10 softmax; train epochs 1 batch 128",
                               "--data", "mnist", "--data-dir", data_dir, "--seed", "0")
    assert status == 0, err
    assert "784 (28×28×1 samples flattened) → 10" in out
    accuracy = float(out.split("accuracy ")[-1].split("%")[0])
    assert accuracy > 90
