"""Without a GPU (and without the simulator), asking for CUDA is a sentence, not a traceback.

Run in subprocesses: this pytest session may have switched Numba's CUDA
simulator on (tests/test_cuda.py), which makes "cuda" available in-process.
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
XOR = "input 2; dense 4 tanh; dense 1 sigmoid; train epochs 1 batch 4"


def run(*argv, timeout=120):
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    return subprocess.run([sys.executable, *argv], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def has_gpu() -> bool:
    probe = run("-c", "from nnrun.engine.backend import get_backend; get_backend('cuda')")
    return probe.returncode == 0


@pytest.fixture(scope="module")
def no_gpu():
    if has_gpu():
        pytest.skip("this machine has a CUDA GPU")


def test_get_backend_cuda_raises_one_clear_sentence(no_gpu):
    code = (
        "from nnrun.engine.backend import BackendUnavailable, get_backend\n"
        "try:\n    get_backend('cuda')\nexcept BackendUnavailable as error:\n    print('unavailable:', error)\n"
    )
    result = run("-c", code)
    assert result.returncode == 0, result.stderr
    message = result.stdout.strip()
    assert message.startswith("unavailable: ")
    assert "CUDA" in message and message.count(". ") == 0 and "\n" not in message


def test_device_cuda_exits_2_with_the_way_out(no_gpu):
    result = run("-m", "nnrun", XOR, "--data", "xor", "--device", "cuda")
    assert result.returncode == 2
    assert "--device cpu" in result.stderr
    assert "CUDA" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_device_auto_falls_back_to_the_cpu(no_gpu, tmp_path):
    report = tmp_path / "run.json"
    result = run("-m", "nnrun", XOR, "--data", "xor", "--device", "auto", "--report", report)
    assert result.returncode == 0, result.stderr
    assert '"device": "cpu"' in report.read_text()
