"""The one kind of error a command ends with: a sentence, a hint, an exit status.

`RunError` is raised anywhere below the command line — reading a spec file,
loading data (`nnrun.data.DataError`), opening a model file
(`nnrun.model_io.ModelFileError`), training — and rendered once, by `nnrun.cli`,
as ``nnrun: error: …`` and ``hint: …``.  Status 2: bad spec, data or arguments;
1: a failure at run time; 130 Ctrl-C; 143 SIGTERM.
"""
from __future__ import annotations


TERMINATED = 143  # 128 + SIGTERM, as a shell reports it


class Terminated(KeyboardInterrupt):
    """SIGTERM — what `timeout`, `kill` and a job scheduler send: it ends a command the way
    Ctrl-C does (a checkpoint already written is kept, temporary files are removed), with
    status 143."""


class RunError(Exception):
    """Ends a command with a message, a hint and an exit status (2: bad input, 1: run-time failure)."""

    def __init__(self, message: str, hint: str | None = None, status: int = 2) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.status = status
