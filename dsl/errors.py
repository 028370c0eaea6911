"""Errors are values with a position, rendered once, at the edge (the CLI)."""
from __future__ import annotations

from .spec import Position


class SpecError(Exception):
    """A fault in a spec: what is wrong, where, and (when we can tell) how to fix it.

    ``render()`` gives the text the CLI prints::

        mnist.net:3:1: error: unknown statement 'cnov'
          cnov 32 3x3 relu
          ^~~~
        hint: did you mean 'conv'?

    Shape errors carry the arithmetic in ``message``
    (``conv 32 5x5 on 3×3×16: ⌊(3−5)/1⌋+1 = −1``).
    """

    def __init__(
        self,
        message: str,
        pos: Position | None = None,
        *,
        hint: str | None = None,
        source_line: str | None = None,
        width: int = 1,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.pos = pos
        self.hint = hint
        self.source_line = source_line
        self.width = max(1, width)  # how many characters the caret underlines

    def render(self) -> str:
        where = f"{self.pos}: " if self.pos else ""
        lines = [f"{where}error: {self.message}"]
        if self.pos is not None and self.source_line is not None:
            shown, column = _visible(self.source_line, self.pos.column)
            width = max(1, min(self.width, len(shown) - column + 1))
            lines.append("  " + shown)
            lines.append("  " + " " * (column - 1) + "^" + "~" * (width - 1))
        if self.hint:  # a hint of several lines keeps its left edge under the first
            lines.append("hint: " + self.hint.replace("\n", "\n      "))
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.render()


_SHOWN = 100  # characters of a quoted line; longer lines are cut around the fault


def _visible(line: str, column: int) -> tuple[str, int]:
    """The quoted line as one terminal column per character, and the caret's column in it.

    Tabs and control characters become spaces (so the caret stays under the fault);
    a very long line (a minified or binary file) is cut to a window around the column.
    """
    shown = "".join(char if char.isprintable() else " " for char in line)
    if len(shown) <= _SHOWN:
        return shown, column
    start = max(0, min(column - 1 - _SHOWN // 2, len(shown) - _SHOWN))
    window = shown[start : start + _SHOWN]
    prefix = "…" if start > 0 else ""
    suffix = "…" if start + _SHOWN < len(shown) else ""
    return prefix + window + suffix, column - start + len(prefix)
