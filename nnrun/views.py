"""What a training run shows: the header, live progress with the epoch table,
the test result and the confusion matrix. Every view takes the console to draw on."""
from __future__ import annotations

from contextlib import contextmanager

import numpy as np
from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table


def render_header(console: Console, rows: list[tuple[str, str]]) -> None:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    for key, value in rows:
        grid.add_row(key, value)
    console.print(grid)
    console.print()


def epoch_table(metric_name: str, with_validation: bool) -> Table:
    table = Table(title=None, show_edge=True)
    table.add_column("epoch", justify="right")
    table.add_column("loss", justify="right")
    table.add_column(metric_name, justify="right")
    if with_validation:
        table.add_column("val loss", justify="right")
        table.add_column(f"val {metric_name}", justify="right")
    table.add_column("seconds", justify="right")
    table.add_column("samples/s", justify="right")
    return table


def metric_text(name: str, value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.2%}" if name == "accuracy" else f"{value:.4f}"


class TrainingView:
    """The epoch table, with the current epoch's progress bar under it while it runs."""

    def __init__(self, console: Console, metric_name: str, with_validation: bool) -> None:
        self.console = console
        self.metric_name = metric_name
        self.with_validation = with_validation
        self.table = epoch_table(metric_name, with_validation)
        self.progress = Progress(
            TextColumn("[bold]epoch {task.fields[epoch]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]:.4f}"),
            TextColumn("{task.fields[metric]}"),
            TextColumn("{task.fields[speed]:,.0f} samples/s"),
            TimeElapsedColumn(),
            console=console,
        )
        self.task = None

    @contextmanager
    def live(self):
        group = Group(self.table, self.progress)
        with Live(group, console=self.console, refresh_per_second=8, transient=False) as live:
            try:
                yield self
            finally:
                # Leave only the table on screen.
                live.update(self.table, refresh=True)
        self.console.print()

    def start_epoch(self, label: str, batches: int) -> None:
        if self.task is not None:
            self.progress.remove_task(self.task)
        self.task = self.progress.add_task(
            "train", total=batches, epoch=label, loss=0.0, metric="", speed=0.0
        )

    def update(self, done: int, loss: float, metric: float | None, speed: float) -> None:
        self.progress.update(
            self.task,
            completed=done,
            loss=loss,
            metric=f"{self.metric_name} {metric_text(self.metric_name, metric)}",
            speed=speed,
        )

    def end_epoch(self, record: dict) -> None:
        metric = self.metric_name
        cells = [str(record["epoch"]), f"{record['loss']:.4f}", metric_text(metric, record.get(metric))]
        if self.with_validation:
            val_loss = record.get("val_loss")
            cells += ["–" if val_loss is None else f"{val_loss:.4f}", metric_text(metric, record.get(f"val_{metric}"))]
        cells += [f"{record['seconds']:.1f}", f"{record['samples_per_second']:,.0f}"]
        self.table.add_row(*cells)


def render_confusion(console: Console, matrix: np.ndarray, class_names: list[str]) -> None:
    """Rows are the true classes, columns the predicted ones; the diagonal is what was right."""
    table = Table(title="confusion matrix", caption="rows: true class · columns: predicted class")
    table.add_column("true \\ pred", style="bold")
    short = [name if len(name) <= 6 else name[:5] + "…" for name in class_names]
    for name in short:
        table.add_column(name, justify="right")
    table.add_column("recall", justify="right")
    for row, name in enumerate(class_names):
        total = int(matrix[row].sum())
        cells = []
        for column in range(len(class_names)):
            count = int(matrix[row, column])
            text = str(count) if count else "·"
            cells.append(f"[bold green]{text}[/]" if row == column else text)
        recall = matrix[row, row] / total if total else 0.0
        table.add_row(name, *cells, f"{recall:.1%}")
    console.print(table)


def confusion_matrix(true: np.ndarray, predicted: np.ndarray, classes: int) -> np.ndarray:
    matrix = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(matrix, (true.astype(np.int64), predicted.astype(np.int64)), 1)
    return matrix
