"""Hints for mistyped words and for characters that only look like ASCII."""
from __future__ import annotations

import difflib
import unicodedata

# Words people bring from Keras, PyTorch or the lecture notes, and what nnrun calls them.
ALIASES: dict[str, str] = {
    "conv1d": "conv",
    "conv2d": "conv",
    "conv3d": "conv",
    "convolution": "conv",
    "fc": "dense",
    "linear_layer": "dense",
    "fully_connected": "dense",
    "maxpool": "pool max",
    "max_pool": "pool max",
    "maxpooling": "pool max",
    "maxpooling2d": "pool max",
    "avgpool": "pool avg",
    "avg_pool": "pool avg",
    "averagepooling2d": "pool avg",
    "average": "avg",
    "mean": "avg",
    "globalpool": "pool avg global",
    "bn": "batchnorm",
    "batchnormalization": "batchnorm",
    "batch_norm": "batchnorm",
    "simplernn": "rnn",
    "leaky_relu": "leakyrelu",
    "lrelu": "leakyrelu",
    "leaky": "leakyrelu",
    "identity": "linear",
    "none": "linear",
    "optimiser": "optimizer",
    "categorical_crossentropy": "cce",
    "crossentropy": "cce",
    "cross_entropy": "cce",
    "ce": "cce",
    "binary_crossentropy": "bce",
    "mean_squared_error": "mse",
    "mean_absolute_error": "mae",
    "l2_loss": "mse",
    "momentum": "sgd momentum 0.9",
    "padding": "pad",
    "strides": "stride",
    "return_sequences": "sequences",
    "epoch": "epochs",
    "batch_size": "batch",
    "batchsize": "batch",
    "learning_rate": "lr",
    "eta": "lr",
    "validation_split": "validation",
    "val": "validation",
    "beta_1": "beta1",
    "beta_2": "beta2",
}


def did_you_mean(word: str, choices: list[str]) -> str | None:
    """``did you mean 'conv'?`` for a near miss among ``choices``, else None."""
    lowered = word.lower()
    if lowered in choices:
        return f"keywords are lower case: write '{lowered}'"
    alias = ALIASES.get(lowered)
    if alias is not None and alias.split()[0] in choices:
        return f"did you mean '{alias}'?"
    close = difflib.get_close_matches(lowered, choices, n=3, cutoff=0.6)
    if not close:
        return None
    if len(close) == 1:
        return f"did you mean '{close[0]}'?"
    return "did you mean " + ", ".join(f"'{c}'" for c in close[:-1]) + f" or '{close[-1]}'?"


# Characters that are easy to paste from slides and word processors.
_LOOKALIKES: dict[str, str] = {
    "\u00d7": "x",  # MULTIPLICATION SIGN, as in 28×28×1
    "\u2715": "x",
    "\u2a2f": "x",
    "\u2212": "-",  # MINUS SIGN
    "\u2010": "-",
    "\u2011": "-",
    "\u2012": "-",
    "\u2013": "-",  # EN DASH
    "\u2014": "-",
    "\u2018": "'",
    "\u2019": "'",
    "\u201a": "'",
    "\u201c": '"',
    "\u201d": '"',
    "\u201e": '"',
    "\u00a0": " ",  # NO-BREAK SPACE
    "\u2009": " ",
    "\u202f": " ",
    "\u200b": "",  # ZERO WIDTH SPACE
    "\ufeff": "",
    "\u2026": "...",
    "\u00b7": ".",
}
# Cyrillic and Greek letters drawn like Latin ones (only those that matter in keywords).
_LETTERS = {
    "CYRILLIC SMALL LETTER A": "a",
    "CYRILLIC SMALL LETTER IE": "e",
    "CYRILLIC SMALL LETTER O": "o",
    "CYRILLIC SMALL LETTER ER": "p",
    "CYRILLIC SMALL LETTER ES": "c",
    "CYRILLIC SMALL LETTER U": "y",
    "CYRILLIC SMALL LETTER HA": "x",
    "CYRILLIC SMALL LETTER BYELORUSSIAN-UKRAINIAN I": "i",
    "CYRILLIC SMALL LETTER DZE": "s",
    "CYRILLIC SMALL LETTER JE": "j",
    "GREEK SMALL LETTER OMICRON": "o",
    "GREEK SMALL LETTER ALPHA": "a",
    "GREEK SMALL LETTER NU": "v",
    "GREEK SMALL LETTER RHO": "p",
}


def char_name(char: str) -> str:
    """``U+00D7 MULTIPLICATION SIGN`` (control characters have no name in Unicode)."""
    name = unicodedata.name(char, "")
    if not name:
        name = {"\x00": "NUL", "\x1b": "ESCAPE", "\x7f": "DELETE"}.get(char, "control character")
    return f"U+{ord(char):04X} {name}"


def ascii_lookalike(char: str) -> str | None:
    """The ASCII text a non-ASCII character stands for, if it looks like one."""
    if char in _LOOKALIKES:
        return _LOOKALIKES[char]
    latin = _LETTERS.get(unicodedata.name(char, ""))
    if latin is not None:
        return latin
    folded = unicodedata.normalize("NFKC", char)  # full-width ｃｏｎｖ, ；, ＝ …
    if folded != char and folded.isascii() and folded.isprintable():
        return folded
    return None
