"""Bad specs through the CLI, one per kind of error: exit status 2, `file:line:column`
on stderr, the fault quoted with a caret, a hint, and never a traceback."""
from __future__ import annotations

import re
import subprocess
import sys

import pytest

from conftest import ROOT, run_cli

CASES = [  # file bytes, where (line:column), text expected on stderr
    pytest.param(b"input 28x28x1\ncnov 32 3x3 relu\n", "2:1", "did you mean 'conv'?", id="unknown word"),
    pytest.param(b"input 3x3x16\nconv 32 5x5\n", "2:1", "conv 32 5x5 on 3×3×16: ⌊(3−5)/1⌋+1 = −1", id="shape arithmetic"),
    pytest.param(b"input 50x1\nconv 8 3x3\n", "2:1", "write a 1-D kernel such as `3`", id="kernel rank"),
    pytest.param(b"input 28x28x1\nrnn 8\n", "2:1", "write `input 28x28`", id="rnn on an image"),
    pytest.param(b"input 28x28x1\ndropout 1.5\n", "2:9", "1.5", id="range"),
    pytest.param(b"input 28x28x1\nconv 32 3x3 stride 2 stride 3\n", "2:22", "stride", id="duplicate option"),
    pytest.param(b"# only a comment\n\n", "1:1", "no layers", id="empty spec"),
    pytest.param(bytes(range(256)) * 3, None, "binary", id="binary garbage"),
    pytest.param("input 28x28x1\nconv 32 3\u00d73\n".encode(), "2:10", "it looks like 'x'", id="non-ASCII look-alike"),
    pytest.param(
        "input 28x28x1\nc\u043env 32 3x3\n".encode(), "2:2", "it looks like 'o'", id="Cyrillic look-alike",
    ),
]


@pytest.mark.parametrize("content, where, expected", CASES)
@pytest.mark.parametrize("command", ["summary", "check"])
def test_bad_spec_file(tmp_path, command, content, where, expected):
    path = tmp_path / "bad.net"
    path.write_bytes(content)
    status, out, err = run_cli(command, path)
    assert status == 2, err
    assert out == ""
    assert "Traceback" not in err and "internal error" not in err
    location = re.search(rf"{re.escape(str(path))}:(\d+):(\d+): error: ", err)
    assert location, err
    if where is not None:
        assert f"{location.group(1)}:{location.group(2)}".startswith(where), err
    assert expected in err


def test_the_fault_is_quoted_with_a_caret(tmp_path):
    path = tmp_path / "bad.net"
    path.write_text("input 3x3x16\nconv 32 5x5 relu\n")
    _, _, err = run_cli("summary", path)
    assert err.splitlines()[1:3] == ["  conv 32 5x5 relu", "  ^~~~~~~~~~~~~~~~"]


def test_inline_specs_name_inline():
    status, _, err = run_cli("summary", "dense 10; cnov 3", "--input", "4")
    assert status == 2
    assert err.startswith("<inline>:1:11: error: ") and "did you mean 'conv'?" in err


def test_a_missing_spec_file_is_an_error_not_a_traceback(tmp_path):
    status, _, err = run_cli("check", tmp_path / "missing.net")
    assert status == 2 and "missing.net" in err and "Traceback" not in err


def test_a_directory_named_like_a_spec(tmp_path):
    folder = tmp_path / "folder.net"
    folder.mkdir()
    status, _, err = run_cli("check", folder)
    assert status == 2 and "Traceback" not in err


def test_the_real_process_exits_2_without_a_traceback(tmp_path):
    path = tmp_path / "garbage.net"
    path.write_bytes(bytes(range(256)))
    result = subprocess.run([sys.executable, "-m", "nnrun", "check", str(path)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and "error:" in result.stderr
