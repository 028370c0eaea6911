"""`nnrun data list` and `nnrun data fetch NAME`: where data sets are, and getting them.

Both take the parsed arguments (``args.data_dir``, and ``args.name`` for fetch),
a console for output and one for errors, and return the exit status: 0, or 2
when a data set cannot be had (the `DataError` is printed on ``err``).
"""
from __future__ import annotations

from argparse import Namespace
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn
from rich.table import Table

from nnrun.dsl.shapes import format_shape as shape_text
from nnrun.console import fatal, say
from nnrun.data import NAMED, DataError
from nnrun.data.fetch import verify
from nnrun.data.idx import find_idx_files
from nnrun.data.lookup import canonical_name, find, locate, unknown_name
from nnrun.sequences import (
    ADDING_STEPS,
    ENGLISH_WORDS,
    FOLDER_STEPS,
    FRENCH_WORDS,
    SINE_STEPS,
    TEXT_STEPS,
    WORD_ALPHABET,
    WORD_STEPS,
)


def where_now(name: str, data_dir: str | None) -> str:
    """Where `load_dataset(name)` would read the set from right now (never downloads)."""
    if NAMED[name].kind == "generated":
        return "no files needed"
    try:
        directory, _ = locate(name, data_dir)
    except DataError as exc:
        return f"damaged: {exc.message}"
    return home_to_tilde(directory) if directory else f"not found — nnrun data fetch {name}"


def home_to_tilde(path: Path) -> str:
    """``/home/ana/.cache/nnrun/mnist`` → ``~/.cache/nnrun/mnist``."""
    try:
        return "~/" + str(Path(path).relative_to(Path.home()))
    except ValueError:
        return str(path)


def _words_where() -> str:
    lists = (ENGLISH_WORDS, FRENCH_WORDS)
    if all(path.is_file() for path in lists):
        return " and ".join(map(str, lists))
    return "not found — apt-get install wamerican wfrench"


# The sequence sets (nnrun/sequences.py): name, kind, shape, task, train/test, where.
SEQUENCE_ROWS = (
    ("sine", "generated", f"{SINE_STEPS}×1", "next value", "2,000/500", lambda: "no files needed"),
    ("adding", "generated", f"{ADDING_STEPS}×2", "sum of 2 marked", "5,000/1,000", lambda: "no files needed"),
    ("words", "word lists", f"{WORD_STEPS}×{len(WORD_ALPHABET)}", "2 (en/fr)", "80 %/20 %", _words_where),
    ("text:FILE", "a text file", f"{TEXT_STEPS}×chars", "next char", "80 %/20 %", lambda: "FILE, any UTF-8 text"),
    ("FOLDER", "sub-folders", f"{FOLDER_STEPS}×chars", "1 per folder", "80 %/20 %", lambda: "FOLDER/CLASS/*.txt"),
)


def list_data(args: Namespace, out: Console, err: Console) -> int:
    """A table of the sets, then where each one's files are (paths whole, on their own lines)."""
    data_dir = getattr(args, "data_dir", None)
    table = Table(title="data sets")
    for column in ("name", "kind", "shape", "classes/task", "train/test"):
        table.add_column(column, no_wrap=True)
    where = []
    for entry in NAMED.values():
        table.add_row(
            entry.name,
            entry.kind,
            shape_text(entry.input_shape),
            str(len(entry.class_names)),
            f"{entry.train_size:,}/{entry.test_size:,}",
        )
        where.append((entry.name, where_now(entry.name, data_dir)))
    table.add_section()
    for name, kind, shape, task, split, located in SEQUENCE_ROWS:
        table.add_row(name, kind, shape, task, split)
        where.append((name, located()))
    out.print(table)
    out.print("where", style="bold")
    width = max(len(name) for name, _ in where)
    for name, place in where:  # soft_wrap: a long path is never broken mid-word by rich
        out.print(f"  {name:<{width}}  {place}", soft_wrap=True, markup=False, highlight=False)
    return 0


def fetch_data(args: Namespace, out: Console, err: Console) -> int:
    try:
        name = canonical_name(args.name)
        if name is None:
            raise unknown_name(args.name)
        if NAMED[name].kind == "generated":
            out.print(f"{name} is generated from a seed: there is nothing to fetch.")
            return 0
        directory = fetch_with_progress(name, getattr(args, "data_dir", None), out)
        files, _ = find_idx_files(directory)
        with out.status(f"checking the SHA-256 of {name}'s files…"):
            verify(name, list(files.values()))
    except DataError as exc:
        return fatal(err, exc.message, hint=exc.hint)
    say(out, f"{name}: {directory} (4 files, SHA-256 verified)")
    return 0


def fetch_with_progress(name: str, data_dir: str | None, out: Console) -> Path:
    """`find` the set, drawing one progress bar per file downloaded."""
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn())
    with Progress(*columns, console=out) as bars:
        tasks = {}

        def progress(filename: str, done: int, total: int | None) -> None:
            if filename not in tasks:
                tasks[filename] = bars.add_task(filename, total=total)
            bars.update(tasks[filename], completed=done, total=total)

        return find(name, data_dir, download=True, progress=progress)
