"""Recurrent networks as a user meets them: training on sequence sets, the unrolled
gradient table and its JSON, `nnrun generate`, and the errors of bad sequence data."""
from __future__ import annotations

import json
from io import StringIO

import numpy as np
import pytest

from conftest import run_cli
from nnrun.data.dataset import Dataset

TINY_TEXT = "the cat sat on the mat. the dog sat on the log. " * 20  # 13 distinct characters


def assert_clean_failure(status: int, out: str, err: str) -> None:
    assert status == 2, out + err
    assert "Traceback" not in out + err and "internal error" not in err


# ------------------------------------------------------------------ training


def test_rnn_on_sine_shows_the_gradient_table_and_reports_it(tmp_path):
    report = tmp_path / "run.json"
    status, out, err = run_cli("rnn 8; dense 1", "--data", "sine:12", "--epochs", "2", "--seed", "1", "--report", report)
    assert status == 0, err
    assert "rnn_1 unrolled: ‖∂L/∂h_t‖ per step" in out
    assert "from t = 12 back to t = 1 the gradient changes by a factor of" in out
    result = json.loads(report.read_text())
    norms = result["state_gradient_norms"]["rnn_1"]
    assert len(norms) == 12 and all(value > 0 for value in norms)
    # The loss reads only h_12, so the last step holds the largest share in this short, fresh RNN.
    assert norms[-1] == max(norms)
    assert result["test"]["loss"] < 0.5


def test_stacked_recurrent_layers_with_clipping_train(tmp_path):
    report = tmp_path / "run.json"
    spec = "rnn 8 sequences; lstm 8; dense 1; optimizer adam lr 0.01 clip 1.0"
    status, out, err = run_cli(spec, "--data", "sine:10", "--epochs", "2", "--seed", "2", "--report", report)
    assert status == 0, err
    result = json.loads(report.read_text())
    assert set(result["state_gradient_norms"]) == {"rnn_1", "lstm_1"}
    assert all(len(v) == 10 for v in result["state_gradient_norms"].values())
    assert result["epochs"][1]["loss"] < result["epochs"][0]["loss"]


def test_no_gradient_table_without_a_recurrent_layer(tmp_path):
    report = tmp_path / "run.json"
    status, out, err = run_cli("dense 4 tanh; dense 1 sigmoid", "--data", "xor", "--epochs", "1", "--report", report)
    assert status == 0, err
    assert "∂L/∂h_t" not in out and "state_gradient_norms" not in json.loads(report.read_text())


def test_per_step_output_trains_on_per_step_targets(monkeypatch, tmp_path):
    """`rnn … sequences` then `dense 1` predicts at every step (as in Keras): with targets
    (N, T, 1) — here the running sum of the inputs — loss and labels line up per step."""
    rng = np.random.default_rng(0)
    x = rng.normal(0, 0.5, (400, 8, 1)).astype(np.float32)
    y = np.cumsum(x, axis=1).astype(np.float32)  # (N, T, 1)
    data = Dataset(
        name="running-sum", x_train=x[:320], y_train=y[:320], x_test=x[320:], y_test=y[320:], task="regression",
        num_classes=0, class_names=[], input_shape=(8, 1), source="generated in the test",
    )
    monkeypatch.setattr("nnrun.datasets.load_dataset", lambda *args, **kwargs: data)
    report = tmp_path / "run.json"
    spec = "rnn 16 sequences; dense 1; optimizer adam lr 0.01"
    status, out, err = run_cli(spec, "--data", "running-sum", "--epochs", "8", "--seed", "1", "--report", report)
    assert status == 0, err
    result = json.loads(report.read_text())
    assert "8×1" in out  # the output shape in the header: one value per step
    baseline = float(np.mean((y[320:] - y[:320].mean()) ** 2))
    assert result["test"]["loss"] < 0.2 * baseline


def test_per_step_output_against_one_target_per_sequence():
    status, out, err = run_cli("rnn 8 sequences; dense 1", "--data", "sine:10", "--epochs", "1")
    assert_clean_failure(status, out, err)
    assert "one per time step" in err and "drop `sequences` from rnn_1" in err


def test_sequence_longer_than_the_spec_input_says_what_to_do():
    status, out, err = run_cli("input 20x1; rnn 8; dense 1", "--data", "sine", "--epochs", "1")
    assert_clean_failure(status, out, err)
    assert "the spec's input is 20×1 but sine samples are 50×1" in err
    assert "input 50x1" in err and "--data sine:20" in err


# ------------------------------------------------------------------ bad sequence data


def test_empty_text_file(tmp_path):
    path = tmp_path / "empty.txt"
    path.write_bytes(b"")
    status, out, err = run_cli("lstm 4; dense 2 softmax", "--data", f"text:{path}", "--epochs", "1")
    assert_clean_failure(status, out, err)
    assert "is empty" in err


def test_text_file_that_is_not_utf8(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("le café est très bon ".encode("latin-1") * 10)
    status, out, err = run_cli("lstm 4; dense 2 softmax", "--data", f"text:{path}", "--epochs", "1")
    assert_clean_failure(status, out, err)
    assert "not UTF-8" in err and "0xe9" in err and "iconv" in err


def test_class_folder_with_one_class(tmp_path):
    (tmp_path / "spam").mkdir()
    (tmp_path / "spam" / "a.txt").write_text("win a prize", encoding="utf-8")
    status, out, err = run_cli("lstm 4; dense 2 softmax", "--data", tmp_path, "--epochs", "1")
    assert_clean_failure(status, out, err)
    assert "1 class folder" in err and "at least two" in err


# ------------------------------------------------------------------ generate


@pytest.fixture(scope="module")
def text_model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("text")
    corpus = folder / "tiny.txt"
    corpus.write_text(TINY_TEXT, encoding="utf-8")
    model = folder / "tiny.npz"
    classes = len(set(TINY_TEXT))
    status, out, err = run_cli(
        f"rnn 16; dense {classes} softmax; optimizer adam lr 0.01", "--data", f"text:{corpus}",
        "--epochs", "3", "--seed", "1", "--save", model,
    )
    assert status == 0, err
    return model


def generate(model, *options) -> tuple[int, str, str]:
    return run_cli("generate", model, "--prompt", "the ", *options)


def test_generate_is_deterministic_with_a_seed(text_model):
    runs = [generate(text_model, "--length", "150", "--seed", seed) for seed in (5, 5, 6)]
    assert all(status == 0 for status, _, _ in runs), runs
    first, again, other = (out.rstrip("\n") for _, out, _ in runs)
    assert first.startswith("the ") and len(first) == len("the ") + 150  # one line: no wrapping added
    assert set(first) <= set(TINY_TEXT)
    assert first == again
    assert first != other


def test_generate_near_zero_temperature_is_argmax(text_model):
    outs = {generate(text_model, "--length", "30", "--temperature", "1e-4", "--seed", seed)[1] for seed in (1, 2, 3)}
    assert len(outs) == 1  # the most likely character each time, whatever the seed


def test_generate_rejects_characters_outside_the_vocabulary(text_model):
    status, out, err = run_cli("generate", text_model, "--prompt", "The cat é", "--length", "5")
    assert_clean_failure(status, out, err)
    assert "2 characters the model never saw: 'T', 'é'" in err
    assert "' .acdeghlmnost'" in err  # the vocabulary, to choose from


@pytest.mark.parametrize("options, message", [
    (("--length", "0"), "must be at least 1"),
    (("--length", "5", "--temperature", "0"), "--temperature must be a positive number, not 0"),
    (("--length", "5", "--temperature", "-0.5"), "--temperature must be a positive number, not -0.5"),
])
def test_generate_rejects_bad_options(text_model, options, message):
    status, out, err = generate(text_model, *options)
    assert_clean_failure(status, out, err)
    assert message in err


def test_generate_with_a_model_that_is_not_a_text_model(tmp_path):
    model = tmp_path / "xor.npz"
    status, _, err = run_cli("dense 4 tanh; dense 1 sigmoid", "--data", "xor", "--epochs", "1", "--save", model)
    assert status == 0, err
    status, out, err = run_cli("generate", model, "--prompt", "a", "--length", "5")
    assert_clean_failure(status, out, err)
    assert "is not a text model" in err and "xor" in err and "--data text:" in err


def test_generate_without_a_model_file(tmp_path):
    status, out, err = run_cli("generate", tmp_path / "missing.npz", "--prompt", "a", "--length", "5")
    assert_clean_failure(status, out, err)


class RecordingFile(StringIO):
    """Counts the writes that reach the terminal, so a test sees text arrive piece by piece."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


def test_generate_streams_the_characters(text_model):
    from rich.console import Console

    from nnrun.cli import main

    out = Console(file=RecordingFile(), width=100, color_system=None)
    err = Console(file=StringIO(), width=100, color_system=None)
    status = main(["generate", str(text_model), "--prompt", "the ", "--length", "20", "--seed", "1"], out=out, err=err)
    assert status == 0
    assert out.file.writes >= 20  # one write per character, not one at the end
    assert len(out.file.getvalue().rstrip("\n")) == len("the ") + 20


def test_generate_keeps_the_text_on_ctrl_c(text_model, monkeypatch):
    from nnrun import use

    real_sample, calls = use.sample, []

    def interrupted_on_the_fourth(*args):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return real_sample(*args)

    monkeypatch.setattr(use, "sample", interrupted_on_the_fourth)
    status, out, err = generate(text_model, "--length", "50", "--seed", "1")
    assert status == 130
    assert out.endswith("\n") and len(out.rstrip("\n")) == len("the ") + 3
    assert "Traceback" not in out + err
