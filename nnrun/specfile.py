"""What every command reads first: a SPEC (a `.net` file or inline text) and ``--input SHAPE``.

Below both the command line and the commands, so that neither imports the other
for it.  Imports only the language (`nnrun.dsl`): the calculator stays light.
"""
from __future__ import annotations

import os
import re

from nnrun.dsl import Spec, parse, parse_file

from .errors import RunError

SPEC_SUFFIXES = (".net", ".txt", ".spec")  # a SPEC ending so names a file, never inline text


def load_spec(text_or_path: str) -> Spec:
    """SPEC is a file when such a file exists or the text looks like a path, else an inline spec."""
    if os.path.exists(text_or_path):
        return parse_file(text_or_path)
    if looks_like_path(text_or_path):
        stripped = text_or_path.strip()
        if stripped != text_or_path:
            hint = (f"the name has spaces around it; did you mean '{stripped}'?" if os.path.exists(stripped)
                    else "check the path; an inline spec looks like \"dense 16 relu; dense 10 softmax\"")
            raise RunError(f"no such file: {text_or_path!r}", hint)
        raise RunError(f"no such file: {text_or_path}",
                       "check the path; an inline spec looks like \"dense 16 relu; dense 10 softmax\"")
    return parse(text_or_path, "<inline>")


def looks_like_path(text: str) -> bool:
    """A path, not spec text: one word with a folder separator or a spec file's suffix.
    Layers are separated by `;` or new lines, so inline text has those or spaces inside."""
    word = text.strip()
    if not word or re.search(r"[;\n]", word) or " " in word:
        return False
    return "/" in word or "\\" in word or word.lower().endswith(SPEC_SUFFIXES)


def parse_input_shape(text: str | None) -> tuple[int, ...] | None:
    """``--input 28x28x1`` → ``(28, 28, 1)``; ``x``, ``×`` and ``,`` all separate."""
    if text is None:
        return None
    parts = re.split(r"\s*[xX×,]\s*", text.strip())
    if not all(part.isdigit() for part in parts) or min(int(part) for part in parts) < 1:
        raise RunError(f"--input {text!r} is not a shape", "write it like 28x28x1, 50x1 or 784")
    return tuple(int(part) for part in parts)
