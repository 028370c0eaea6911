"""The training run as a user sees it: exit statuses, messages, the report, saved models."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from nnrun.cli import main
from nnrun.model_io import load_model

ROOT = Path(__file__).resolve().parents[1]

XOR = "input 2; dense 8 tanh; dense 1 sigmoid; loss bce; optimizer adam lr 0.05; train epochs 40 batch 16"


def run(capsys, *argv):
    status = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_xor_reaches_full_accuracy_and_reports_json(capsys, tmp_path):
    report = tmp_path / "run.json"
    status, out, err = run(capsys, XOR, "--data", "xor", "--seed", "1", "--report", report)
    assert status == 0, err
    result = json.loads(report.read_text())
    assert result["stopped"] == "completed"
    assert result["data"] == "xor"
    assert result["device"] == "cpu"
    assert len(result["epochs"]) == 40
    first, last = result["epochs"][0], result["epochs"][-1]
    assert set(first) >= {"epoch", "loss", "accuracy", "val_loss", "val_accuracy", "seconds", "samples_per_second"}
    assert last["loss"] < first["loss"]
    assert result["test"]["accuracy"] == 1.0
    assert "test" in out and "100.00%" in out
    assert "iterations per epoch" in out


def test_seed_makes_runs_repeatable(capsys, tmp_path):
    reports = []
    for name in ("a.json", "b.json"):
        status, _, err = run(capsys, XOR, "--data", "xor", "--seed", "7", "--epochs", "3", "--report", tmp_path / name)
        assert status == 0, err
        reports.append(json.loads((tmp_path / name).read_text()))
    losses = [[epoch["loss"] for epoch in report["epochs"]] for report in reports]
    assert losses[0] == losses[1]


def test_output_that_does_not_fit_the_classes(capsys):
    status, out, err = run(capsys, "dense 16 relu; dense 5 softmax", "--data", "spiral", "--epochs", "1")
    assert status == 2
    assert "3 classes" in err and "dense 3 softmax" in err
    assert "Traceback" not in err + out


def test_input_shape_mismatch(capsys):
    status, out, err = run(capsys, "input 3; dense 1 sigmoid", "--data", "xor", "--epochs", "1")
    assert status == 2
    assert "input" in err and "2" in err
    assert "Traceback" not in err + out


def regression_npz(path: Path) -> Path:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 4)).astype(np.float32)
    y = (x @ np.array([1.0, -2.0, 0.5, 3.0], dtype=np.float32))[:, None]
    np.savez(path, x_train=x[:200], y_train=y[:200], x_test=x[200:], y_test=y[200:])
    return path


def test_diverging_loss_stops_with_a_hint(capsys, tmp_path):
    data = regression_npz(tmp_path / "linear.npz")
    report = tmp_path / "run.json"
    status, out, err = run(
        capsys, "dense 1", "--data", data, "--optimizer", "sgd", "--lr", "1000", "--epochs", "5", "--report", report
    )
    assert status == 1
    assert "diverged" in err and "epoch 1, batch" in err
    assert "--lr 100" in err
    assert "Traceback" not in err + out
    assert json.loads(report.read_text())["stopped"] == "diverged"


def test_save_eval_predict_round_trip(capsys, tmp_path):
    model = tmp_path / "xor.npz"
    status, _, err = run(capsys, XOR, "--data", "xor", "--seed", "1", "--save", model)
    assert status == 0, err
    saved = load_model(model)
    assert "dense 8 tanh" in saved.spec_text
    assert saved.meta["epochs_done"] == 40
    assert saved.optimizer_state  # a finished run can be resumed exactly, like a checkpoint
    assert set(saved.weights) == {"dense_1/kernel", "dense_1/bias", "dense_2/kernel", "dense_2/bias"}

    status, out, err = run(capsys, "eval", model, "--data", "xor")
    assert status == 0, err
    assert "100.00%" in out

    points = tmp_path / "points.npy"
    np.save(points, np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32))
    status, out, err = run(capsys, "predict", model, points)
    assert status == 0, err
    cells = [line.split("│") for line in out.splitlines() if line.startswith("│")]
    predicted = [row[2].strip() for row in cells]  # the "class" column
    assert predicted == ["0", "1", "1", "0"]


def test_model_file_that_is_not_an_npz(capsys, tmp_path):
    bogus = tmp_path / "model.npz"
    bogus.write_text("this is not a model")
    status, out, err = run(capsys, "eval", bogus, "--data", "xor")
    assert status == 2
    assert "not an nnrun model file" in err
    assert "Traceback" not in err + out


def test_model_file_with_pickled_objects_is_refused(capsys, tmp_path):
    evil = tmp_path / "evil.npz"
    np.savez(evil, __spec__=np.array([{"a": 1}], dtype=object), __meta__=np.array("{}"))
    status, out, err = run(capsys, "eval", evil, "--data", "xor")
    assert status == 2
    assert "Traceback" not in err + out


def test_resume_with_a_model_from_another_spec(capsys, tmp_path):
    model = tmp_path / "xor.npz"
    assert run(capsys, XOR, "--data", "xor", "--epochs", "2", "--save", model)[0] == 0
    other = XOR.replace("dense 8 tanh", "dense 6 tanh")
    status, out, err = run(capsys, other, "--data", "xor", "--resume", model, "--epochs", "4")
    assert status == 2
    assert "another spec" in err
    assert "Traceback" not in err + out


def test_damaged_weights_are_a_clear_error(capsys, tmp_path):
    model = tmp_path / "xor.npz"
    assert run(capsys, XOR, "--data", "xor", "--epochs", "1", "--save", model)[0] == 0
    with np.load(model, allow_pickle=False) as archive:
        contents = {key: archive[key] for key in archive.files}
    contents["w/dense_1/kernel"] = contents["w/dense_1/kernel"][:1]
    np.savez(model, **contents)
    status, out, err = run(capsys, "eval", model, "--data", "xor")
    assert status == 2
    assert "do not fit" in err
    assert "Traceback" not in err + out


def test_resume_continues_where_the_checkpoint_stopped(capsys, tmp_path):
    model = tmp_path / "xor.npz"
    assert run(capsys, XOR, "--data", "xor", "--seed", "3", "--epochs", "2", "--save", model)[0] == 0
    report = tmp_path / "run.json"
    status, _, err = run(
        capsys, XOR, "--data", "xor", "--seed", "3", "--epochs", "4", "--resume", model, "--save", model, "--report", report
    )
    assert status == 0, err
    epochs = [record["epoch"] for record in json.loads(report.read_text())["epochs"]]
    assert epochs == [1, 2, 3, 4]
    assert load_model(model).meta["epochs_done"] == 4


def signal_a_long_run(tmp_path, signal_number: int) -> tuple[subprocess.Popen, bytes, bytes, Path]:
    """Start a long training run with --save, send ``signal_number`` once its first checkpoint
    exists, and wait for it to end: (process, stdout, stderr, the model's path)."""
    model = tmp_path / "model.npz"
    spec = "input 2; dense 64 relu; dense 64 relu; dense 3 softmax; train epochs 100000 batch 1"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "nnrun", spec, "--data", "spiral", "--save", str(model)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=tmp_path,
    )
    try:
        deadline = time.monotonic() + 120
        while not model.exists() and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.2)
        assert model.exists(), process.communicate(timeout=5)
        time.sleep(0.3)
        process.send_signal(signal_number)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    return process, out, err, model


def test_ctrl_c_keeps_the_last_checkpoint(tmp_path):
    process, out, err, model = signal_a_long_run(tmp_path, signal.SIGINT)
    assert process.returncode == 130
    assert b"Traceback" not in err + out
    assert b"--resume" in err
    saved = load_model(model)
    assert saved.meta["epochs_done"] >= 1
    assert saved.optimizer_state  # a checkpoint can be resumed


def test_missing_gpu_is_a_clear_error(capsys):
    status, out, err = run(capsys, XOR, "--data", "xor", "--device", "cuda", "--epochs", "1", "--batch", "256")
    # Without a GPU this ends with a sentence and the way out; with one (or the CUDA simulator
    # of tests/test_cuda.py: hence one batch an epoch, the simulator is slow), it trains.
    if status != 0:
        assert status == 2
        assert "--device cpu" in err
        assert "Traceback" not in err + out


def test_a_cnn_run_shows_its_learned_filters(capsys):
    status, out, err = run(capsys, "conv 4 3x3 relu; pool max 2; dense 1 sigmoid", "--data", "xo", "--epochs", "1", "--seed", "0")
    assert status == 0, err
    assert "learned filters of conv_1 (all 4;" in out
    heading = out.splitlines().index(next(line for line in out.splitlines() if "learned filters" in line))
    pictures = out.splitlines()[heading + 1 : heading + 4]  # 3 rows of a 3×3 kernel
    assert all(len(line.split()) >= 1 for line in pictures)
    assert out.splitlines()[heading + 4].split() == ["1", "2", "3", "4"]
