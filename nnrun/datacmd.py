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

from dsl.shapes import format_shape as shape_text
from nnrun.data import NAMED, DataError
from nnrun.data.fetch import verify
from nnrun.data.idx import find_idx_files
from nnrun.data.lookup import canonical_name, find, locate, unknown_name


def where_now(name: str, data_dir: str | None) -> str:
    """Where `load_dataset(name)` would read the set from right now (never downloads)."""
    if NAMED[name].kind == "generated":
        return "no files needed"
    try:
        directory, _ = locate(name, data_dir)
    except DataError as exc:
        return f"damaged: {exc.message}"
    return str(directory) if directory else f"not found — nnrun data fetch {name}"


def list_data(args: Namespace, out: Console, err: Console) -> int:
    data_dir = getattr(args, "data_dir", None)
    table = Table(title="data sets")
    for column in ("name", "kind", "shape", "classes", "train/test"):
        table.add_column(column, no_wrap=True)
    table.add_column("where", overflow="fold")
    for entry in NAMED.values():
        table.add_row(
            entry.name,
            entry.kind,
            shape_text(entry.input_shape),
            str(len(entry.class_names)),
            f"{entry.train_size}/{entry.test_size}",
            where_now(entry.name, data_dir),
        )
    out.print(table)
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
        err.print(exc.render(), markup=False, highlight=False)
        return 2
    out.print(f"{name}: {directory} (4 files, SHA-256 verified)", markup=False, highlight=False)
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
