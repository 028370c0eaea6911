"""Training on the real MNIST files (skipped where they are absent)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from nnrun.cli import main

SHARED = Path(os.environ.get("NNRUN_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")


@pytest.mark.skipif(not (SHARED / "mnist").is_dir(), reason="the MNIST files are not here (set NNRUN_DATA)")
def test_mlp_learns_mnist_in_one_epoch(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("NNRUN_DATA", str(SHARED))
    report = tmp_path / "mnist.json"
    spec = "dense 128 relu; dense 10 softmax; optimizer adam lr 0.001; train epochs 1 batch 64"
    status = main([spec, "--data", "mnist", "--seed", "0", "--report", str(report)])
    out, err = capsys.readouterr()
    assert status == 0, err
    result = json.loads(report.read_text())
    assert result["test"]["accuracy"] >= 0.95
    assert "confusion matrix" in out
    assert "60,000 / batch 64 → 938 iterations per epoch" in out
