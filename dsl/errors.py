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
            lines.append("  " + self.source_line)
            lines.append("  " + " " * (self.pos.column - 1) + "^" + "~" * (self.width - 1))
        if self.hint:
            lines.append(f"hint: {self.hint}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.render()
