"""Shared fixtures: the CLI run in-process with captured consoles, and the data directory."""
from __future__ import annotations

import os
from io import StringIO
from pathlib import Path

import pytest
from rich.console import Console

from nnrun.cli import main

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"


def run_cli(*args) -> tuple[int, str, str]:
    """``nnrun ARGS`` in this process: (exit status, stdout text, stderr text)."""
    out = Console(file=StringIO(), width=100, color_system=None)
    err = Console(file=StringIO(), width=100, color_system=None)
    status = main([str(arg) for arg in args], out=out, err=err)
    return status, out.file.getvalue(), err.file.getvalue()


@pytest.fixture(autouse=True)
def english_messages(monkeypatch):
    """Every test reads English unless it asks for French: the suite does not follow the LANG of
    the machine it runs on (nnrun does, for its users)."""
    monkeypatch.setenv("LANG", "C.UTF-8")
    for name in ("LANGUAGE", "LC_ALL", "LC_MESSAGES"):
        monkeypatch.delenv(name, raising=False)
    from nnrun.i18n import set_language

    set_language("en")


@pytest.fixture
def data_dir() -> Path:
    """/work/shared/data (or $NNRUN_DATA); the test is skipped when it is absent."""
    path = Path(os.environ.get("NNRUN_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")
    if not path.is_dir():
        pytest.skip(f"no data directory at {path}")
    return path
