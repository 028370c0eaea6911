"""Sequence data sets for the recurrent layers: ``x`` is (N, T, F), one row per time step.

================  ============================  =============  ===============================
name              x (one sample)                task           target
================  ============================  =============  ===============================
``sine[:T]``      T×1 noisy sine, T = 50        regression     the next value, (N, 1)
``adding[:T]``    T×2 (value, marker), T = 50   regression     sum of the 2 marked values
``words``         12×V one-hot letters          binary         English = 0, French = 1
``text:PATH``     T×V one-hot chars, T = 40     classification the next character
a directory       100×V one-hot chars           classification the sub-folder's name
================  ============================  =============  ===============================

Every set is the same for the same ``seed``.  Text is encoded by `one_hot_text`:
one row per character (a 1 in the column of its vocabulary entry), the last
``length`` characters kept, shorter texts padded with zero rows *before* the text
(Keras's ``pad_sequences`` default), so the last step of a sequence is always its
last character and a layer that returns its last state has just read it.
"""
from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np

from .data.dataset import DataError, Dataset
from .words import plural

SINE_STEPS, ADDING_STEPS, WORD_STEPS, TEXT_STEPS, FOLDER_STEPS = 50, 50, 12, 40, 100
SINE_NOISE = 0.05  # σ of the Gaussian noise on every sine value (and so on the target)
TEXT_MAX_WINDOWS = 50_000  # at most this many training windows of a text file …
TEXT_MAX_BYTES = 256 * 2**20  # … and at most this much memory for their one-hot x_train
TEST_FRACTION = 0.2
TEXT_FILE_BYTES = 100 * 2**20  # a text data file larger than this (100 MB) is refused before it is read
MAX_STEPS = 10_000  # the longest generated sequence (sine:T, adding:T)
MAX_VOCABULARY = 10_000  # distinct characters of a text data set (the network's output units)
ENGLISH_WORDS, FRENCH_WORDS = Path("/usr/share/dict/american-english"), Path("/usr/share/dict/french")
WORDS_PER_CLASS = 10_000  # after balancing, at most this many words of each language
# a–z and the letters of French spelling; words with any other character are dropped
WORD_ALPHABET = list("abcdefghijklmnopqrstuvwxyz") + list("àâæçéèêëîïôœùûüÿ")


def one_hot_text(text: str, vocabulary: list[str], length: int) -> np.ndarray:
    """(length, len(vocabulary)) float32: the last ``length`` characters of ``text``, one-hot,
    padded with zero rows before the text when it is shorter.  A character not in the
    vocabulary is a zero row."""
    return one_hot_texts([text], vocabulary, length)[0]


def one_hot_texts(texts: list[str], vocabulary: list[str], length: int) -> np.ndarray:
    """(N, length, V) float32: `one_hot_text` of each text."""
    column = {char: i for i, char in enumerate(vocabulary)}
    codes = np.full((len(texts), length), len(vocabulary), dtype=np.int64)  # V = padding: a zero row
    for row, text in enumerate(texts):
        tail = text[-length:] if length > 0 else ""
        codes[row, length - len(tail) :] = [column.get(char, len(vocabulary)) for char in tail]
    rows = np.eye(len(vocabulary) + 1, len(vocabulary), dtype=np.float32)  # the last row is all zeros
    return rows[codes]


def load_sequence_dataset(name: str, *, seed: int = 0, length: int | None = None) -> Dataset | None:
    """The sequence set called ``name``, or None when ``name`` is not one of them.

    ``name`` is ``sine``, ``adding``, ``words``, ``text:PATH``, a directory of class
    sub-folders holding ``.txt`` files, or ``sine:T`` / ``adding:T`` for another
    sequence length.  ``length`` (T) overrides the default or the suffix.  A directory
    without sub-folders of ``.txt`` files gives None (it may hold IDX files).
    """
    kind, _, argument = name.partition(":")
    if kind in ("sine", "adding"):
        steps = length if length is not None else _steps_from_suffix(name, argument, SINE_STEPS if kind == "sine" else ADDING_STEPS)
        return sine(steps, seed) if kind == "sine" else adding(steps, seed)
    if kind == "words" and not argument:
        return words(length or WORD_STEPS, seed)
    if kind == "text":
        if not argument:
            raise DataError("'text:' needs the path of a text file after the colon", hint="e.g. --data text:book.txt")
        return text_file(Path(argument), length or TEXT_STEPS, seed)
    path = Path(name)
    if path.is_dir() and any(_txt_files(sub) for sub in _subfolders(path)):
        return text_folder(path, length or FOLDER_STEPS, seed)
    return None


def _steps_from_suffix(name: str, argument: str, default: int) -> int:
    if not argument:
        return default
    if not argument.isdigit() or not 2 <= int(argument) <= MAX_STEPS:
        raise DataError(f"'{name}': the length after ':' must be a whole number from 2 to {MAX_STEPS:,}",
                        hint=f"e.g. {name.partition(':')[0]}:100")
    return int(argument)


# ------------------------------------------------------------------ generated sets


def sine(steps: int = SINE_STEPS, seed: int = 0, *, train: int = 2000, test: int = 500) -> Dataset:
    """Predict the next value of a noisy sine wave from the previous ``steps`` values.

    Each sample draws its own angular frequency ω ~ U(0.1, 0.5) rad/step, phase
    φ ~ U(0, 2π) and amplitude A ~ U(0.5, 1); values are A·sin(ω·t + φ) + ε,
    ε ~ N(0, σ²) with σ = 0.05 (``SINE_NOISE``).  The target, the value at t = steps,
    carries the same noise, so the best possible test MSE is σ² = 0.0025.
    """
    _check_generated_memory("sine", (train + test) * (steps + 1) * 8 * 4)
    rng = np.random.default_rng(seed)
    count = train + test
    omega = rng.uniform(0.1, 0.5, (count, 1))
    phase = rng.uniform(0.0, 2 * np.pi, (count, 1))
    amplitude = rng.uniform(0.5, 1.0, (count, 1))
    t = np.arange(steps + 1)[None, :]
    series = amplitude * np.sin(omega * t + phase) + rng.normal(0.0, SINE_NOISE, (count, steps + 1))
    x = series[:, :steps, None].astype(np.float32)  # (N, T, 1)
    y = series[:, steps:].astype(np.float32)  # (N, 1)
    return _generated(f"sine:{steps}" if steps != SINE_STEPS else "sine", x, y, train)


def adding(steps: int = ADDING_STEPS, seed: int = 0, *, train: int = 5000, test: int = 1000) -> Dataset:
    """The adding problem (Hochreiter & Schmidhuber, 1997).

    Each step has two features: a value ~ U(0, 1) and a marker, 1 at exactly two
    distinct random steps and 0 elsewhere.  The target is the sum of the two marked
    values.  It lies in [0, 2] with mean 1 and variance 2/12, so always predicting
    the mean gives MSE ≈ 0.167: a network has learned something only below that.
    """
    _check_generated_memory("adding", (train + test) * steps * 8 * 6)
    rng = np.random.default_rng(seed)
    count = train + test
    values = rng.uniform(0.0, 1.0, (count, steps))
    marked = np.argsort(rng.random((count, steps)), axis=1)[:, :2]  # two distinct steps per sample
    markers = np.zeros((count, steps))
    np.put_along_axis(markers, marked, 1.0, axis=1)
    x = np.stack([values, markers], axis=2).astype(np.float32)  # (N, T, 2)
    y = (values * markers).sum(axis=1, keepdims=True).astype(np.float32)  # (N, 1)
    return _generated(f"adding:{steps}" if steps != ADDING_STEPS else "adding", x, y, train)


def _check_generated_memory(name: str, needed: int) -> None:
    """The float64 work arrays of a generated set must fit (`adding:10000` builds about 3 GB)."""
    from .limits import check_memory

    check_memory(needed, f"generating {name}", f"use shorter sequences, e.g. {name}:100", DataError)


def _generated(name: str, x: np.ndarray, y: np.ndarray, train: int) -> Dataset:
    return Dataset(
        name=name, x_train=x[:train], y_train=y[:train], x_test=x[train:], y_test=y[train:],
        task="regression", num_classes=0, class_names=[], input_shape=x.shape[1:], source="generated",
    )


# ------------------------------------------------------------------ words


def _read_word_list(path: Path, pattern: re.Pattern) -> set[str]:
    """The lines of a word list that match ``pattern`` once lower-cased."""
    try:
        text = path.read_text(encoding="utf-8").lower()
    except FileNotFoundError:
        raise DataError(
            f"word list {path} not found (the words data set needs the English and the French lists)",
            hint="apt-get install wamerican wfrench",
        ) from None
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"cannot read word list {path}: {error}", hint="apt-get install --reinstall wamerican wfrench") from None
    return set(pattern.findall(text))


def words(steps: int = WORD_STEPS, seed: int = 0, *, english: Path = ENGLISH_WORDS, french: Path = FRENCH_WORDS) -> Dataset:
    """Is a word English (0) or French (1)?  From Debian's ``wamerican`` and ``wfrench`` lists.

    Words are lower-cased; those with a character outside ``WORD_ALPHABET`` (a–z and
    the French accented letters: apostrophes, hyphens, digits, other accents), those
    longer than ``steps``, and those in both lists are dropped.  Each language then
    keeps the same number of words (at most ``WORDS_PER_CLASS``, drawn with the
    seed), split 80/20 within each class, so both splits are balanced.
    """
    pattern = re.compile(rf"^[{''.join(WORD_ALPHABET)}]{{1,{steps}}}$", re.MULTILINE)
    lists = [_read_word_list(english, pattern), _read_word_list(french, pattern)]
    common = lists[0] & lists[1]
    english_words, french_words = (sorted(w - common) for w in lists)
    rng = np.random.default_rng(seed)
    per_class = min(len(english_words), len(french_words), WORDS_PER_CLASS)
    if per_class < 2:
        raise DataError("the word lists leave fewer than two words per language", hint="apt-get install --reinstall wamerican wfrench")
    chosen = [list(rng.choice(np.array(ws, dtype=object), per_class, replace=False)) for ws in (english_words, french_words)]
    texts = [w for ws in chosen for w in ws]
    labels = np.repeat(np.arange(2), per_class)
    x = one_hot_texts(texts, WORD_ALPHABET, steps)
    train_index, test_index = _stratified_split(labels, rng)
    y = labels.astype(np.float32)[:, None]  # binary: (N, 1) 0/1
    return Dataset(
        name="words", x_train=x[train_index], y_train=y[train_index], x_test=x[test_index], y_test=y[test_index],
        task="binary", num_classes=2, class_names=["English", "French"], input_shape=x.shape[1:],
        source=f"{english} {french}",
    )


def _stratified_split(labels: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Shuffled train and test indices, TEST_FRACTION of each class in the test split."""
    train, test = [], []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        cut = int(round(len(members) * TEST_FRACTION))
        test.append(members[:cut])
        train.append(members[cut:])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))


# ------------------------------------------------------------------ text files


def _read_text(path: Path) -> str:
    from .limits import regular_file
    from .words import human_bytes

    if not path.exists():
        raise DataError(f"text file {path} not found", hint="give the path of a UTF-8 text file: --data text:PATH")
    if path.is_dir():
        raise DataError(f"{path} is a directory, not a text file", hint="for a folder of class sub-folders, give its path without 'text:'")
    regular_file(path, "a text file", DataError)  # /dev/zero or a FIFO would never end
    try:
        size = path.stat().st_size
        if size > TEXT_FILE_BYTES:
            raise DataError(f"text file {path} is {human_bytes(size)}; at most {human_bytes(TEXT_FILE_BYTES)} is read",
                            hint="train on a part of it: head -c 10000000 FILE > part.txt")
        with open(path, "rb") as file:
            data = file.read(TEXT_FILE_BYTES + 1)
    except OSError as error:
        raise DataError(f"cannot read {path}: {error.strerror}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise DataError(
            f"{path} is not UTF-8 text: byte {error.start} (0x{data[error.start]:02x}) cannot be decoded",
            hint=f"convert it, e.g. iconv -f latin1 -t utf-8 {path.name} > {path.stem}.utf8.txt",
        ) from None


def text_file(path: Path, steps: int = TEXT_STEPS, seed: int = 0) -> Dataset:
    """Next-character prediction on one UTF-8 text file.

    The vocabulary is the file's distinct characters, sorted; it is stored in
    ``class_names`` (class i is character ``class_names[i]``), which is what a model
    needs to generate text later (with `one_hot_text`).  Each sample is a window of
    ``steps`` characters, one-hot; its target the character after it.  Windows start
    every ``stride`` characters, the stride chosen so that there are at most
    ``TEXT_MAX_WINDOWS`` training windows and their one-hot array stays under
    ``TEXT_MAX_BYTES``; a seeded shuffle puts 20 % of the windows in the test split.
    """
    text = _read_text(path)
    if not text:
        raise DataError(f"text file {path} is empty", hint="next-character prediction needs some text to learn from")
    if len(text) < steps + 1:
        raise DataError(
            f"text file {path} has {len(text)} characters; windows of {steps} and the next character need at least {steps + 1}",
            hint="use a longer text, or shorter windows",
        )
    vocabulary = sorted(set(text))
    if len(vocabulary) > MAX_VOCABULARY:
        raise DataError(f"text file {path} has {len(vocabulary):,} distinct characters; at most {MAX_VOCABULARY:,} "
                        "can be the classes of a next-character model", hint="use a text in fewer scripts")
    index = {char: i for i, char in enumerate(vocabulary)}
    codes = np.fromiter((index[c] for c in text), dtype=np.int64, count=len(text))
    windows = len(text) - steps  # window k is text[k : k+steps], its target text[k+steps]
    by_memory = TEXT_MAX_BYTES // (steps * len(vocabulary) * 4)
    cap = max(1, int(min(TEXT_MAX_WINDOWS, by_memory) / (1 - TEST_FRACTION)))
    starts = np.arange(0, windows, max(1, math.ceil(windows / cap)))
    rng = np.random.default_rng(seed)
    starts = rng.permutation(starts)
    cut = int(round(len(starts) * TEST_FRACTION))
    if cut == 0:
        raise DataError(
            f"text file {path} has {len(text)} characters: {plural(windows, 'window')} of {steps} characters, "
            f"too few to hold {TEST_FRACTION:.0%} of them out for the test split",
            hint=f"use a longer text (at least {steps + 3} characters), or shorter windows",
        )
    test_starts, train_starts = starts[:cut], starts[cut:]

    def encode(window_starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        positions = window_starts[:, None] + np.arange(steps)[None, :]  # (N, T)
        x = np.zeros((*positions.shape, len(vocabulary)), dtype=np.float32)  # (N, T, V) one-hot
        np.put_along_axis(x, codes[positions][..., None], 1.0, axis=2)
        return x, codes[window_starts + steps]

    x_train, y_train = encode(train_starts)
    x_test, y_test = encode(test_starts)
    return Dataset(
        name=path.name, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test,
        task="classification", num_classes=len(vocabulary), class_names=vocabulary,
        input_shape=(steps, len(vocabulary)), source=str(path),
    )


# ------------------------------------------------------------------ a folder per class


def _subfolders(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))


def _txt_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix == ".txt" and p.is_file())


def text_folder(path: Path, steps: int = FOLDER_STEPS, seed: int = 0) -> Dataset:
    """Classify texts by folder: ``path/CLASS/*.txt`` (e.g. ``spam/`` and ``ham/``).

    Each file is lower-cased, its first ``steps`` characters kept and one-hot encoded
    over the sorted characters seen in all files (pre-padded when shorter).  Classes
    are the sub-folder names, sorted; 20 % of each class goes to the test split.
    """
    classes = _subfolders(path)
    files = {folder.name: _txt_files(folder) for folder in classes}
    if len(classes) < 2:
        raise DataError(
            f"{path} has {len(classes)} class folder{'s' if len(classes) != 1 else ''}; a classifier needs at least two",
            hint=f"put each class's .txt files in its own sub-folder: {path}/spam/*.txt, {path}/ham/*.txt",
        )
    for name, found in files.items():
        if not found:
            raise DataError(f"class folder {path / name} has no .txt files", hint="add .txt files, or remove the folder")
    texts, labels = [], []
    for label, (name, found) in enumerate(files.items()):
        for file in found:
            texts.append(_read_text(file).lower()[:steps])
            labels.append(label)
    vocabulary = sorted(set("".join(texts)))
    if not vocabulary:
        raise DataError(f"every .txt file under {path} is empty")
    x = one_hot_texts(texts, vocabulary, steps)
    labels = np.array(labels, dtype=np.int64)
    train_index, test_index = _stratified_split(labels, np.random.default_rng(seed))
    if len(test_index) == 0:
        raise DataError(
            f"{path} has too few .txt files to hold {TEST_FRACTION:.0%} of each class out for the test split",
            hint="put at least 3 .txt files in each class folder",
        )
    return Dataset(
        name=path.name, x_train=x[train_index], y_train=labels[train_index], x_test=x[test_index],
        y_test=labels[test_index], task="classification", num_classes=len(classes),
        class_names=list(files), input_shape=(steps, len(vocabulary)), source=str(path),
    )


def make_spam_folder(directory: Path, *, seed: int = 0, per_class: int = 20) -> Path:
    """Write a tiny spam / not-spam example under ``directory`` (``spam/`` and ``ham/``,
    ``per_class`` short .txt messages each) and return ``directory``."""
    rng = np.random.default_rng(seed)
    spam = ["WIN a FREE prize now!!!", "Cheap pills, click here", "You are our lucky winner $$$", "Claim your cash bonus today"]
    ham = ["see you at lunch tomorrow", "the meeting moved to 3pm", "can you send me the notes?", "thanks for the photos"]
    for folder, phrases in (("spam", spam), ("ham", ham)):
        (directory / folder).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            picked = rng.choice(len(phrases), size=2)
            text = " ".join(phrases[j] for j in picked)
            (directory / folder / f"{i:03d}.txt").write_text(text + "\n", encoding="utf-8")
    return directory
