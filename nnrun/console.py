"""The program's two consoles — one for output, one for errors — and `fatal()`.

Commands take both consoles as arguments, so a test renders into
``Console(file=StringIO(), width=100, color_system=None)`` and reads the text.
"""
from __future__ import annotations

from rich.console import Console


class _PipeConsole(Console):
    """A console whose reader may go away (``nnrun … | head -3``): rich would exit with
    status 1, a failure; this one stops printing and lets `cli.main` end with 141."""

    def on_broken_pipe(self) -> None:
        self.quiet = True  # print nothing more, not even while the live view closes
        raise BrokenPipeError


def make_consoles() -> tuple[Console, Console]:
    """(out, err) on the real stdout and stderr."""
    return _PipeConsole(), _PipeConsole(stderr=True)


def say(console: Console, text: str, style: str | None = None) -> None:
    """Print text as it is: no markup, no highlighting, no wrapping of long lines."""
    console.print(text, style=style, markup=False, highlight=False, soft_wrap=True)


def fatal(err: Console, message: str, *, hint: str | None = None, status: int = 2) -> int:
    """Print ``nnrun: error: message`` (and a hint) on the error console; return ``status``.

    Status 2: bad spec, data or arguments; 1: a failure at run time (DESIGN §2).
    """
    try:
        say(err, f"nnrun: error: {message}", style="bold red")
        if hint:
            say(err, f"hint: {hint}")
    except OSError:  # stderr itself cannot be written (a full disk): the status still tells
        pass
    return status
