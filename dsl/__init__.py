"""The `.net` language: text → `Spec` → `Model` (shapes, parameters, MACs).

This package imports neither `engine` nor `rich`, and never numba, so the
calculator answers in well under a second.
"""
from .errors import SpecError
from .spec import Model, Spec, LayerInfo, Position

__all__ = ["SpecError", "Model", "Spec", "LayerInfo", "Position", "parse", "parse_file", "resolve"]


def parse(text: str, filename: str = "<inline>") -> Spec:
    """Parse spec text. Raises `SpecError` with a position on any fault."""
    from .parser import parse as _parse

    return _parse(text, filename)


def parse_file(path: str) -> Spec:
    """Read and parse a `.net` file (unreadable or binary files are `SpecError`s too)."""
    from .parser import parse_file as _parse_file

    return _parse_file(path)


def resolve(spec: Spec, input_shape: tuple[int, ...] | None = None) -> Model:
    """Infer every layer's output shape, parameters and MACs, Keras's way.

    ``input_shape`` (from ``--input`` or the data) is used when the spec has no
    `input` line; when both are given and differ, that is a `SpecError`.
    """
    from .shapes import resolve as _resolve

    return _resolve(spec, input_shape)
