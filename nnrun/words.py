"""How numbers read in the sentences and tables nnrun prints."""
from __future__ import annotations


def number(value: float) -> str:
    """A loss or metric: four decimals, or scientific notation when that would hide it
    (``1.77e+18`` rather than nineteen digits, ``3.2e-07`` rather than ``0.0000``)."""
    from .i18n import decimal_text

    if value != value or value in (float("inf"), float("-inf")):
        return str(value)
    if abs(value) >= 1e6 or (value != 0 and abs(value) < 1e-4):
        return decimal_text(f"{value:.3e}")
    return decimal_text(f"{value:.4f}")


def plural(count: int, word: str) -> str:
    """``1 epoch``, ``2 epochs``, ``1,000 iterations``."""
    return f"{count:,} {word}" + ("" if count == 1 else "s")


def human_bytes(size: int) -> str:
    """1024-based: ``217640`` → ``212.5 KiB``."""
    value, unit = float(size), "B"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            break
        value /= 1024
    return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"


def class_label(names: list[str], index: int) -> str:
    """Class ``index`` by its name; a name that is one blank or punctuation character (a text
    model's classes) quoted, so that ``' '`` is seen."""
    if index >= len(names):
        return str(index)
    name = names[index]
    return repr(name) if len(name) == 1 and not name.isalnum() else name


def plain(value: float) -> str:
    """A number as a student writes it: ``3``, ``-1``, ``0.5``, ``0.1111``."""
    value = float(value)
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.4g}"
