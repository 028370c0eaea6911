"""What a training run shows: the header, live progress with the epoch table,
the test result and the confusion matrix. Every view takes the console to draw on;
`TrainingDisplay` is the training run's `Progress` drawn on the terminal."""
from __future__ import annotations

from contextlib import contextmanager

import numpy as np
from rich import box
from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from .console import say
from .networks import confusion_matrix
from .training import Progress as TrainingProgress
from .words import number, plural

__all__ = ["TrainingDisplay", "TrainingView", "number", "plural", "render_header", "render_confusion",
           "render_filters", "render_state_gradients", "filter_picture", "confusion_matrix"]


def render_header(console: Console, rows: list[tuple[str, str]]) -> None:
    """``key  value`` lines, keys in bold and aligned; no padding after the value."""
    width = max((len(key) for key, _ in rows), default=0)
    for key, value in rows:
        console.print(Text(key.ljust(width), style="bold") + Text("  " + value), soft_wrap=True, highlight=False)
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
    return f"{value:.2%}" if name == "accuracy" else number(value)


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
            TextColumn("loss {task.fields[loss]}"),
            TextColumn("{task.fields[metric]}"),
            TextColumn("{task.fields[speed]:,.0f} samples/s"),
            TimeElapsedColumn(),
            console=console,
        )
        self.task = None
        self.label = ""

    @contextmanager
    def live(self):
        group = Group(self.table, self.progress)
        try:
            with Live(group, console=self.console, refresh_per_second=8, transient=False) as live:
                try:
                    yield self
                finally:
                    # Leave only the table on screen, and no table at all before the first epoch ends
                    # (a run that diverges in epoch 1 shows just its error, not an empty frame).
                    live.update(self.table if self.table.row_count else Text(""), refresh=True)
        finally:  # also when an error ends the run: its message must start on a line of its own
            if self.table.row_count:
                self.console.print()

    @contextmanager
    def note(self, text: str):
        """Show ``text`` after the epoch's label while the block runs (the live view keeps
        redrawing, so the elapsed time goes on counting)."""
        self.progress.update(self.task, epoch=f"{self.label} · {text}")
        try:
            yield
        finally:
            self.progress.update(self.task, epoch=self.label)

    def start_epoch(self, label: str, batches: int) -> None:
        self.label = label
        if self.task is not None:
            self.progress.remove_task(self.task)
        self.task = self.progress.add_task(
            "train", total=batches, epoch=label, loss="–", metric="", speed=0.0
        )

    def update(self, done: int, loss: float, metric: float | None, speed: float) -> None:
        self.progress.update(
            self.task,
            completed=done,
            loss=number(loss),
            metric=f"{self.metric_name} {metric_text(self.metric_name, metric)}",
            speed=speed,
        )

    def end_epoch(self, record: dict) -> None:
        metric = self.metric_name
        cells = [str(record["epoch"]), number(record["loss"]), metric_text(metric, record.get(metric))]
        if self.with_validation:
            val_loss = record.get("val_loss")
            cells += ["–" if val_loss is None else number(val_loss), metric_text(metric, record.get(f"val_{metric}"))]
        cells += [f"{record['seconds']:.1f}", f"{record['samples_per_second']:,.0f}"]
        self.table.add_row(*cells)


class TrainingDisplay(TrainingProgress):
    """A training run (`nnrun.training.train`) as the terminal shows it: warnings on the
    error console; the header, the compile spinner and the live epoch table on the output."""

    def __init__(self, out: Console, err: Console) -> None:
        self.out, self.err = out, err
        self.view: TrainingView | None = None

    def warning(self, text: str) -> None:
        say(self.err, f"warning: {text}", style="yellow")

    def header(self, rows: list[tuple[str, str]]) -> None:
        render_header(self.out, rows)

    def compiling(self):
        return self.view.note("preparing kernels (first run: up to a minute)…")

    @contextmanager
    def training(self, metric: str, validation: bool, history: list[dict]):
        self.view = TrainingView(self.out, metric, validation)
        for record in history:  # the epochs of a resumed checkpoint
            self.view.end_epoch(record)
        with self.view.live():
            yield

    def epoch_started(self, label: str, batches: int) -> None:
        self.view.start_epoch(label, batches)

    def batch_done(self, done: int, loss: float, metric: float, samples_per_second: float) -> None:
        self.view.update(done, loss, metric, samples_per_second)

    def epoch_done(self, record: dict) -> None:
        self.view.end_epoch(record)


def render_confusion(console: Console, matrix: np.ndarray, class_names: list[str]) -> None:
    """Rows are the true classes, columns the predicted ones; the diagonal is what was right.
    Columns are headed by class numbers, so ten long names still fit 80 columns."""
    numbered = [str(index) for index in range(len(class_names))]
    short = [name for name in class_names] if all(name == number for name, number in zip(class_names, numbered)) else None
    table = Table(
        title="confusion matrix",
        caption="rows: true class · columns: predicted class",
        box=box.SIMPLE_HEAD,
        padding=(0, 0),
    )
    table.add_column("true \\ pred", style="bold", no_wrap=True)
    for index in range(len(class_names)):
        table.add_column(numbered[index] if short is None else short[index], justify="right", min_width=5, no_wrap=True)
    table.add_column("recall", justify="right", min_width=7, no_wrap=True)
    for row, name in enumerate(class_names):
        total = int(matrix[row].sum())
        cells = []
        for column in range(len(class_names)):
            count = int(matrix[row, column])
            text = str(count) if count else "·"
            cells.append(f"[bold green]{text}[/]" if row == column else text)
        recall = matrix[row, row] / total if total else 0.0
        label = name if short is not None else f"{row} {name}"
        label = label if len(label) <= 11 else label[:10] + "…"
        table.add_row(label, *cells, f"{recall:.1%}")
    console.print(table)


BLOCKS = " ▏▎▍▌▋▊▉█"  # eighths of a character cell, for bars finer than one cell


def bar(value: float, largest: float, width: int) -> str:
    """``value`` as a bar of block characters, ``width`` cells long at ``largest``."""
    if not largest > 0 or not value > 0:
        return ""
    eighths = int(round(8 * width * min(value / largest, 1.0)))
    full, part = divmod(eighths, 8)
    return "█" * full + (BLOCKS[part] if part else "")


def render_state_gradients(console: Console, norms: dict[str, list[float]], width: int = 40, rows: int = 60) -> None:
    """The unrolled network of each recurrent layer, one row per time step t, with
    ‖∂L/∂h_t‖ of the last training batch as a bar scaled to the layer's largest norm.

    When the loss reads only h_T, the gradient enters at the last step and flows
    back through W at every step: in a simple RNN it shrinks by a factor each step
    (vanishes); an LSTM's cell state lets it survive.  Longer sequences than ``rows``
    show every k-th step (the first and the last always).
    """
    for layer, values in norms.items():
        values = [float(v) for v in values]
        largest = max(values, default=0.0)
        last = values[-1] if values else 0.0
        table = Table(
            title=f"{layer} unrolled: ‖∂L/∂h_t‖ per step, last training batch",
            title_justify="left",
            caption="BPTT: the gradient enters where the loss reads h_t and flows back through W to t = 1",
            caption_justify="left",
        )
        table.add_column("t", justify="right")
        table.add_column("‖∂L/∂h_t‖", justify="right")
        table.add_column("÷ last", justify="right")
        table.add_column("", width=width, no_wrap=True)
        every = max(1, -(-len(values) // rows))  # ⌈T / rows⌉
        for step, value in enumerate(values, start=1):
            if (step - 1) % every and step != len(values):
                continue
            ratio = f"{value / last:.3g}" if last > 0 else "–"
            table.add_row(str(step), f"{value:.3g}", ratio, Text(bar(value, largest, width), style="cyan"))
        console.print(table)
        first = values[0] if values else 0.0
        if last > 0 and len(values) > 1:
            console.print(
                f"{layer}: from t = {len(values)} back to t = 1 the gradient changes by a factor of "
                f"{first / last:.3g}" + (" — it vanishes" if first / last < 1e-2 else ""),
                markup=False,
            )
        console.print()


SHADES = " ░▒▓█"  # from the most negative weight (blank) to the most positive (full block)


def filter_picture(weights: np.ndarray) -> list[str]:
    """One 2-D filter (KH, KW) as lines of shade characters, two per weight so cells look square."""
    low, high = float(weights.min()), float(weights.max())
    span = high - low if high > low else 1.0
    levels = np.rint((weights - low) / span * (len(SHADES) - 1)).astype(int)
    return ["".join(SHADES[level] * 2 for level in row) for row in levels]


def render_filters(console: Console, name: str, kernel: np.ndarray, most: int = 16) -> None:
    """The first convolution's learned filters, ``kernel (KH, KW, C_in, F)``, each drawn
    from its most negative weight (blank) to its most positive (█); with several input
    channels a filter is shown summed over them."""
    filters = kernel.sum(axis=2)  # (KH, KW, F)
    count = min(most, filters.shape[-1])
    grid = Table.grid(padding=(0, 2))
    for _ in range(count):
        grid.add_column(no_wrap=True)
    pictures = [filter_picture(filters[:, :, f]) for f in range(count)]
    for row in range(filters.shape[0]):
        grid.add_row(*(Text(picture[row], style="on grey11") for picture in pictures))
    grid.add_row(*(Text(f"{f + 1}", justify="center") for f in range(count)))
    shown = f"the first {count} of {filters.shape[-1]}" if count < filters.shape[-1] else f"all {count}"
    console.print(f"[bold]learned filters of {name}[/] ({shown}; blank: most negative, █: most positive)")
    console.print(grid)
