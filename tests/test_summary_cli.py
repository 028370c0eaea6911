"""`nnrun summary` and `nnrun check` as a user sees them: the table, the arithmetic,
the JSON of DESIGN §2, exit statuses, argument errors, and no numba on this path."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT, SPECS, run_cli

FIRST_CNN = "conv 32 3x3 relu; pool max 2; dense 10 softmax"
NEEDS_INPUT = {"xo.net": "16x16x1"}  # specs that take their shape from the data


def test_summary_table_shows_the_implicit_flatten_and_the_total():
    status, out, err = run_cli("summary", FIRST_CNN, "--input", "28x28x1")
    assert status == 0, err
    rows = {line.split("│")[1].strip(): line for line in out.splitlines() if line.startswith("│")}
    assert "flatten_1 (implicit)" in rows and "5408" in rows["flatten_1 (implicit)"]
    assert "26×26×32" in rows["conv_1"] and "320" in rows["conv_1"]
    assert "54,090" in rows["dense_1"]
    assert "total parameters" in out and "54,410" in out
    assert "248,768" in out  # MACs per sample
    assert err == ""


def test_explain_shows_the_formulas():
    status, out, _ = run_cli("summary", FIRST_CNN, "--input", "28x28x1", "--explain")
    assert status == 0
    assert "(3·3·1+1)·32 = 320" in out
    assert "⌊(28−3)/1⌋+1 = 26" in out
    assert "(5408+1)·10 = 54,090" in out
    assert "receptive field 3×3" in out


def test_warnings_are_printed_under_the_table():
    status, out, _ = run_cli("summary", "conv 4 5x5 stride 2; dense 2 softmax", "--input", "28x28x1")
    assert status == 0
    table_end = out.index("└")
    assert out.index("warning: conv_1: (28−5)/2 = 11.5: the last row and column are ignored") > table_end


def test_json_is_the_design_object():
    status, out, err = run_cli("summary", FIRST_CNN, "--input", "28x28x1", "--json")
    assert status == 0, err
    result = json.loads(out)  # nothing but the object on stdout
    assert set(result) == {"input", "layers", "total_params", "trainable_params", "non_trainable_params", "macs"}
    assert result["input"] == [28, 28, 1]
    assert result["layers"][0] == {
        "name": "conv_1", "type": "conv2d", "output_shape": [26, 26, 32],
        "params": 320, "trainable_params": 320, "macs": 194688,
    }
    assert [layer["name"] for layer in result["layers"]] == ["conv_1", "pool_1", "flatten_1", "dense_1"]
    assert (result["total_params"], result["trainable_params"], result["non_trainable_params"], result["macs"]) == (54410, 54410, 0, 248768)


@pytest.mark.parametrize("path", sorted(SPECS.glob("*.net")), ids=lambda path: path.name)
def test_json_of_every_course_spec(path):
    extra = ("--input", NEEDS_INPUT[path.name]) if path.name in NEEDS_INPUT else ()
    status, out, err = run_cli("summary", path, "--json", *extra)
    assert status == 0, err
    result = json.loads(out)
    assert result["total_params"] == sum(layer["params"] for layer in result["layers"]) > 0
    assert result["trainable_params"] == sum(layer["trainable_params"] for layer in result["layers"])
    assert result["non_trainable_params"] == result["total_params"] - result["trainable_params"]
    assert result["macs"] == sum(layer["macs"] for layer in result["layers"])
    assert err == ""  # the course's specs drop no pixels


def test_spec_files_document_their_totals():
    for path in SPECS.glob("*.net"):
        extra = ("--input", NEEDS_INPUT[path.name]) if path.name in NEEDS_INPUT else ()
        total = json.loads(run_cli("summary", path, "--json", *extra)[1])["total_params"]
        header = "".join(line for line in path.read_text().splitlines() if line.startswith("#"))
        assert f"{total:,}" in header, f"{path.name}: the header should state {total:,} parameters"


def test_check():
    status, out, err = run_cli("check", SPECS / "first_cnn.net")
    assert (status, err) == (0, "")
    assert out.strip() == f"OK {SPECS / 'first_cnn.net'}: 4 layers, 54,410 parameters"
    status, out, _ = run_cli("check", SPECS / "xo.net")
    assert status == 0 and "shapes not checked" in out
    status, out, _ = run_cli("check", SPECS / "xo.net", "--input", "16x16x1")
    assert status == 0 and "1,505 parameters" in out


def test_summary_without_an_input_shape_is_a_spec_error():
    status, out, err = run_cli("summary", "dense 10")
    assert status == 2 and out == ""
    assert "no input shape" in err and "--input" in err


@pytest.mark.parametrize(
    "argv, expected",
    [
        (("summary",), "the following arguments are required: SPEC"),
        ((), "give a spec to train, or a command"),
        (("sumary", "x.net"), "did you mean 'summary'?"),
        (("summary", FIRST_CNN, "--bogus"), "unrecognized arguments: --bogus"),
        (("specs/mlp.net",), "required: --data"),
        (("specs/mlp.net", "--data", "mnist", "--epochs", "0"), "must be at least 1"),
        (("eval", "m.npz", "--data", "mnist", "--device", "tpu"), "invalid choice: 'tpu'"),
        (("data", "drop"), "invalid choice: 'drop'"),
    ],
)
def test_argument_errors_exit_2_with_usage(argv, expected):
    status, out, err = run_cli(*argv)
    assert status == 2
    assert expected in err
    assert "usage:" in err and "Traceback" not in err and out == ""


@pytest.mark.parametrize("shape", ["28y28", "0x3", "", "28x"])
def test_a_bad_input_shape_exits_2(shape):
    status, out, err = run_cli("summary", FIRST_CNN, "--input", shape)
    assert (status, out) == (2, "")
    assert f"--input {shape!r} is not a shape" in err and "hint: write it like 28x28x1" in err


def test_help_goes_to_stdout_and_exits_0():
    status, out, err = run_cli("--help")
    assert status == 0 and err == ""
    assert all(command in out for command in ("summary", "check", "eval", "predict", "data", "generate"))
    status, out, _ = run_cli("summary", "--help")
    assert status == 0 and "--explain" in out


def test_commands_reach_their_implementations_with_the_documented_arguments(monkeypatch):
    from nnrun import commands, datacmd

    seen = {}

    def record(name):
        def command(args, out, err):
            seen[name] = vars(args)
            return 0

        return command

    for name in ("train", "evaluate", "predict"):
        monkeypatch.setattr(commands, name, record(name))
    monkeypatch.setattr(commands, "generate", record("generate"), raising=False)
    monkeypatch.setattr(datacmd, "list_data", record("list_data"))
    monkeypatch.setattr(datacmd, "fetch_data", record("fetch_data"))

    assert run_cli("specs/mlp.net", "--data", "mnist", "--epochs", "3", "--data-dir", "/d", "--input", "28x28x1")[0] == 0
    assert seen["train"] == {
        "command": "train", "spec": "specs/mlp.net", "data": "mnist", "data_dir": "/d", "epochs": 3, "batch": None,
        "lr": None, "optimizer": None, "seed": None, "device": None, "threads": None, "save": None,
        "report": None, "plot": None, "resume": None, "input": "28x28x1", "validation": None, "lang": None,
    }
    assert run_cli("eval", "m.npz", "--data", "xo", "--batch", "8")[0] == 0
    assert (seen["evaluate"]["model"], seen["evaluate"]["data"], seen["evaluate"]["batch"]) == ("m.npz", "xo", 8)
    assert run_cli("predict", "m.npz", "digit.png", "--top", "3")[0] == 0
    assert (seen["predict"]["model"], seen["predict"]["input"], seen["predict"]["top"]) == ("m.npz", "digit.png", 3)
    assert run_cli("generate", "m.npz", "--prompt", "to be", "--length", "20")[0] == 0
    assert (seen["generate"]["prompt"], seen["generate"]["length"], seen["generate"]["temperature"]) == ("to be", 20, None)
    assert run_cli("data", "list")[0] == 0 and "list_data" in seen
    assert run_cli("data", "fetch", "mnist", "--data-dir", "/d")[0] == 0
    assert (seen["fetch_data"]["name"], seen["fetch_data"]["data_dir"]) == ("mnist", "/d")


def test_an_internal_error_is_one_line_and_a_hint(monkeypatch):
    import nnrun.cli

    def broken(*args, **kwargs):
        raise RuntimeError("something broke\nsecond line")

    monkeypatch.setattr(nnrun.cli, "resolve", broken)
    monkeypatch.delenv("NNRUN_DEBUG", raising=False)
    status, out, err = run_cli("summary", FIRST_CNN, "--input", "28x28x1")
    assert status == 1
    assert err.splitlines()[0] == "nnrun: error: internal error: RuntimeError: something broke"
    assert "report" in err and "NNRUN_DEBUG=1" in err and "Traceback" not in err
    monkeypatch.setenv("NNRUN_DEBUG", "1")
    status, _, err = run_cli("summary", FIRST_CNN, "--input", "28x28x1")
    assert status == 1 and "Traceback" in err


def test_interrupt_exits_130(monkeypatch):
    import nnrun.cli

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(nnrun.cli, "resolve", interrupted)
    status, _, err = run_cli("summary", FIRST_CNN, "--input", "28x28x1")
    assert status == 130 and "interrupted" in err


def test_summary_path_imports_no_numba():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "nnrun", "summary", "specs/mlp.net"],
        cwd=ROOT, capture_output=True, text=True, env=env, timeout=60,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    imported = [line.split("|")[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")]
    assert "nnrun.dsl.shapes" in imported and "rich.table" in imported  # the log really lists our imports
    assert not [name for name in imported if name.split(".")[0] in ("numba", "llvmlite")]
    # nothing of the engine: the spin settings that must come before NumPy are the program's (nnrun.spin)
    assert not {name for name in imported if name.startswith("nnrun.engine")}
    assert "235,146" in result.stdout
