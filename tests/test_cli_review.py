"""What a new user ran into: crashes that ended as "internal error", lost output files,
warnings on the terminal, confusing hints and numbers. Each test would have caught one."""
from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import tempfile
import warnings
from io import StringIO
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from conftest import ROOT, run_cli
from nnrun import checkpoints
from nnrun.model_io import load_model
from nnrun.views import TrainingView, number, plural
from test_training_cli import regression_npz

XOR = "input 2; dense 8 tanh; dense 1 sigmoid; loss bce; optimizer adam lr 0.05; train epochs 2 batch 16"


def assert_clean(out: str, err: str) -> None:
    assert "internal error" not in err and "Traceback" not in err + out


@pytest.fixture(scope="module")
def xor_model(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("model") / "xor.npz"
    status, _, err = run_cli(XOR, "--data", "xor", "--seed", "1", "--save", path)
    assert status == 0, err
    return path


# ------------------------------------------------------------------ arguments


@pytest.mark.parametrize("argv", [
    (XOR, "--data", "xor", "--seed", "-1"),
    ("generate", "model.npz", "--prompt", "a", "--length", "3", "--seed", "-1"),
])
def test_negative_seed_is_an_argument_error(argv):
    status, out, err = run_cli(*argv)
    assert status == 2
    assert "--seed" in err and "0 or more" in err
    assert_clean(out, err)


@pytest.mark.parametrize("value", ["inf", "nan", "-1", "0"])
def test_learning_rate_must_be_positive_and_finite(value):
    status, out, err = run_cli(XOR, "--data", "xor", f"--lr={value}")
    assert status == 2
    assert "--lr" in err and "positive finite" in err
    assert_clean(out, err)


def test_help_command_and_version_in_the_help():
    status, out, _ = run_cli("help")
    assert status == 0 and "summary" in out and "--version" in out
    status, out, _ = run_cli("help", "summary")
    assert status == 0 and "--explain" in out
    status, out, _ = run_cli("help", "train")
    assert status == 0 and "--resume" in out
    status, out, _ = run_cli("generate", "--help")
    assert status == 0
    for option in ("--prompt", "--length", "--temperature", "--seed"):
        line = next(line for line in out.splitlines() if line.strip().startswith(option))
        assert len(line.split(None, 2)) == 3 or option == "--temperature", line  # option, metavar, help


def test_train_as_an_explicit_command_word(tmp_path):
    reports = []
    for prefix in ((), ("train",)):
        report = tmp_path / f"run{len(prefix)}.json"
        status, _, err = run_cli(*prefix, XOR, "--data", "xor", "--seed", "3", "--report", report)
        assert status == 0, err
        reports.append([epoch["loss"] for epoch in json.loads(report.read_text())["epochs"]])
    assert reports[0] == reports[1]


@pytest.mark.parametrize("spec", ["specs/no_such.net", "no_such_folder/mlp", " specs/mlp.net ", "mlp.txt"])
def test_a_spec_that_looks_like_a_path_but_is_missing(spec):
    status, out, err = run_cli(spec, "--data", "xor")
    assert status == 2
    assert "no such file" in err
    assert_clean(out, err)


# ------------------------------------------------------------------ output files


@pytest.mark.parametrize("flag", ["--save", "--report"])
def test_output_paths_are_checked_before_training(tmp_path, flag):
    for target, message in (
        (tmp_path, "is a folder"),
        (tmp_path / "typo" / "out.file", "no such folder"),
        ("/proc/out.file", "cannot create a file in /proc"),
    ):
        status, out, err = run_cli(XOR, "--data", "xor", flag, target)
        assert status == 2, (target, err)
        assert message in err and flag in err
        assert "epoch" not in out  # nothing trained
        assert_clean(out, err)
    assert not (tmp_path / "typo").exists()  # a mistyped folder is not created


def test_outputs_get_the_usual_permissions(tmp_path):
    model, report = tmp_path / "m.npz", tmp_path / "r.json"
    status, _, err = run_cli(XOR, "--data", "xor", "--epochs", "1", "--save", model, "--report", report)
    assert status == 0, err
    umask = os.umask(0)
    os.umask(umask)
    for path in (model, report):
        assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_a_model_that_cannot_be_written_is_rescued(tmp_path, monkeypatch):
    target = tmp_path / "m.npz"
    real_save = checkpoints.save_model

    def full_disk(path, model):
        if Path(path) == target:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_save(path, model)

    monkeypatch.setattr(checkpoints, "save_model", full_disk)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "rescue"))
    (tmp_path / "rescue").mkdir()
    status, out, err = run_cli(XOR, "--data", "xor", "--save", target)
    assert status == 1
    assert f"could not write {target}: No space left on device" in err
    rescued = list((tmp_path / "rescue").glob("nnrun-rescued-*m.npz"))
    assert len(rescued) == 1 and str(rescued[0]) in err
    assert load_model(rescued[0]).meta["epochs_done"] == 1  # the checkpoint of the failing epoch
    assert_clean(out, err)


def test_a_report_that_cannot_be_written_keeps_the_model(tmp_path, monkeypatch):
    model, report = tmp_path / "m.npz", tmp_path / "r.json"

    def failing(path, write):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(checkpoints, "atomic_write", failing)
    status, out, err = run_cli(XOR, "--data", "xor", "--save", model, "--report", report)
    assert status == 1
    assert f"could not write the report {report}: Read-only file system" in err
    assert f"the model was saved to {model}" in err
    assert load_model(model).meta["epochs_done"] == 2
    assert_clean(out, err)


# ------------------------------------------------------------------ the training view


def test_error_text_starts_on_its_own_line():
    console = Console(file=StringIO(), width=80, color_system=None)
    view = TrainingView(console, "accuracy", False)
    with pytest.raises(RuntimeError):
        with view.live():
            view.start_epoch("1/2", 3)
            view.end_epoch({"epoch": 1, "loss": 0.5, "accuracy": 0.5, "seconds": 1.0, "samples_per_second": 10.0})
            raise RuntimeError("stop")
    assert console.file.getvalue().endswith("┘\n")


def test_divergence_shows_no_numpy_warnings_and_no_empty_table(tmp_path):
    data = regression_npz(tmp_path / "linear.npz")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        status, out, err = run_cli("dense 64 relu; dense 1", "--data", data, "--optimizer", "sgd", "--lr", "1e6", "--epochs", "3")
    assert status == 1 and "diverged" in err and "epoch 1" in err
    assert not [w for w in caught if issubclass(w.category, RuntimeWarning)], [str(w.message) for w in caught]
    assert "┏" not in out  # no table without a finished epoch


def test_numbers_and_plurals():
    assert number(1767162482265348608.0) == "1.767e+18"
    assert number(0.5) == "0.5000" and number(0.0) == "0.0000" and number(3.2e-7) == "3.200e-07"
    assert number(float("inf")) == "inf"
    assert plural(1, "epoch") == "1 epoch" and plural(1000, "iteration") == "1,000 iterations"


def test_header_plurals_batch_warning_and_no_trailing_spaces():
    status, out, err = run_cli(XOR, "--data", "xor", "--epochs", "1", "--batch", "5000")
    assert status == 0, err
    assert "warning: batch 5000 is larger than the 256 training samples" in err
    assert "1 epoch" in out and "1 epochs" not in out
    assert "→ 1 iteration per epoch" in out
    header = out.split("\n\n")[0].splitlines()
    assert header[0].startswith("spec") and all(line == line.rstrip() for line in header)


def test_resume_header_and_the_checkpoint_seed(tmp_path):
    model = tmp_path / "m.npz"
    status, _, err = run_cli(XOR, "--data", "xor", "--seed", "11", "--save", model)
    assert status == 0, err
    status, out, err = run_cli(XOR, "--data", "xor", "--epochs", "3", "--resume", model, "--save", model)
    assert status == 0, err
    assert f"resuming from epoch 3 of 3 ({model})" in out
    assert "11 (the checkpoint's" in out


# ------------------------------------------------------------------ eval / predict


def test_eval_on_data_of_another_shape_talks_about_the_data(xor_model, tmp_path):
    status, out, err = run_cli("eval", xor_model, "--data", regression_npz(tmp_path / "linear.npz"))
    assert status == 2
    assert "trained on 2 data (xor)" in err and "evaluated on data of that shape" in err
    assert "write `input" not in err
    assert_clean(out, err)


@pytest.mark.parametrize("array, message", [
    (np.array([[0.0, np.nan]], dtype=np.float32), "not finite"),
    (np.array([[np.inf, 1.0]], dtype=np.float32), "not finite"),
    (np.zeros((0, 2), dtype=np.float32), "no samples"),
])
def test_predict_rejects_unusable_arrays(xor_model, tmp_path, array, message):
    path = tmp_path / "input.npy"
    np.save(path, array)
    status, out, err = run_cli("predict", xor_model, path)
    assert status == 2
    assert message in err
    assert_clean(out, err)


def test_predict_on_a_random_binary_file(xor_model, tmp_path):
    path = tmp_path / "noise.bin"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    status, out, err = run_cli("predict", xor_model, path)
    assert status == 2
    assert "INPUT" in err and "neither an .npy array nor an IDX images file" in err
    assert "director" not in err and "folder" not in err
    assert_clean(out, err)


# ------------------------------------------------------------------ pipes


def test_a_closed_pipe_ends_quietly():
    spec = "; ".join(["dense 8 relu"] * 400)  # far more than a pipe holds
    process = subprocess.Popen(
        [sys.executable, "-m", "nnrun", "summary", spec, "--input", "8", "--explain"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    process.stdout.readline()
    process.stdout.close()
    err = process.stderr.read().decode()
    assert process.wait(timeout=60) == 141
    assert err == ""


# ------------------------------------------------------------------ a student's review of the wording (issue 12)


def test_a_percentage_for_a_rate_suggests_the_fraction():
    status, _, err = run_cli("summary", "input 784; dropout 50; dense 10")
    assert status == 2
    assert "hint: did you mean 0.5?" in err
    status, _, err = run_cli("summary", "input 784; dense 10 dropconnect 25")
    assert status == 2 and "did you mean 0.25?" in err
    status, _, err = run_cli("summary", "input 784; dropout 1.5; dense 10")
    assert status == 2 and "did you mean" not in err  # 1.5 is no percentage


def test_a_recurrent_layer_after_convolutions_keeps_them_in_the_hint():
    status, _, err = run_cli("summary", "input 28x28x1; conv 8 3x3; lstm 8; dense 10 softmax")
    assert status == 2
    assert "`input 28x28`" in err and "1-D convolutions" in err
    assert "input 26x208" not in err  # the old hint, which dropped the convolution
    status, _, err = run_cli("summary", "input 28x28x1; lstm 8; dense 10 softmax")
    assert status == 2 and "`input 28x28` (28 steps of 28 features)" in err


def test_one_sigmoid_output_with_cce_blames_the_loss_line():
    status, _, err = run_cli("input 2; dense 1 sigmoid; loss cce", "--data", "xor")
    assert status == 2
    assert "loss cce needs one output per class" in err and "`loss bce`" in err
    assert "1 outputs" not in err


def test_softmax_outputs_with_bce_blame_the_loss_line():
    status, _, err = run_cli("input 2; dense 3 softmax; loss bce", "--data", "spiral")
    assert status == 2
    assert "write `loss cce`" in err and "end with `dense 3 softmax`" not in err


def test_nesterov_without_momentum_is_a_warning():
    status, _, err = run_cli("check", "input 2; dense 1; optimizer sgd nesterov")
    assert status == 0 and "`nesterov` changes nothing without momentum" in err


def test_counts_of_one_are_singular():
    status, out, _ = run_cli("check", "input 4; dense 1")
    assert status == 0 and "1 layer, 5 parameters" in out
    status, out, _ = run_cli("check", "dense 1")
    assert status == 0 and "1 layer parsed" in out
    status, _, err = run_cli("input 2; dense 1", "--data", regression_npz_path())
    assert status == 2 and "1 outputs" not in err and "gives 1 output but" in err


def regression_npz_path() -> Path:
    path = Path(tempfile.mkdtemp()) / "four.npz"
    x = np.zeros((8, 2), dtype=np.float32)
    np.savez(path, x_train=x, y_train=np.zeros((8, 2), np.float32), x_test=x, y_test=np.zeros((8, 2), np.float32))
    return path


def test_predict_help_promises_only_what_it_reads():
    status, out, _ = run_cli("predict", "--help")
    assert status == 0
    assert "image" not in out.replace("IDX images", "")
    assert ".npy" in out and "IDX" in out
