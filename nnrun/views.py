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
from .i18n import N_, _, ngettext, number_text, percent_text

METRIC_WORDS = (N_("accuracy"), N_("mbe"), N_("test"))  # translated where they are shown
from .networks import confusion_matrix
from .training import Progress as TrainingProgress
from .words import class_label, number, plain, plural

__all__ = ["TrainingDisplay", "TrainingView", "number", "plural", "render_header", "render_confusion",
           "render_filters", "render_state_gradients", "filter_picture", "confusion_matrix"]


def render_header(console: Console, rows: list[tuple[str, str]]) -> None:
    """``key  value`` lines, keys in bold and aligned; no padding after the value."""
    width = max((len(key) for key, _value in rows), default=0)
    for key, value in rows:
        console.print(Text(key.ljust(width), style="bold") + Text("  " + value), soft_wrap=True, highlight=False)
    console.print()


def epoch_table(metric_name: str, with_validation: bool) -> Table:
    table = Table(title=None, show_edge=True)
    table.add_column(_("epoch"), justify="right")
    table.add_column(_("loss"), justify="right")
    table.add_column(_(metric_name), justify="right")
    if with_validation:
        table.add_column(_("val loss"), justify="right")
        table.add_column(_("val {metric}").format(metric=_(metric_name)), justify="right")
    table.add_column(_("seconds"), justify="right")
    table.add_column(_("samples/s"), justify="right")
    return table


def metric_text(name: str, value: float | None) -> str:
    if value is None:
        return "–"
    return percent_text(value) if name == "accuracy" else number(value)


class TrainingView:
    """The epoch table, with the current epoch's progress bar under it while it runs."""

    #: Above this many epochs the table shows the first, the last, the best and every k-th
    #: (the report and the model file keep them all).
    MAX_ROWS = 25

    def __init__(self, console: Console, metric_name: str, with_validation: bool, epochs: int = 0) -> None:
        self.console = console
        self.metric_name = metric_name
        self.with_validation = with_validation
        self.epochs = epochs  # how many the run will have (for the every-k-th rows)
        self.records: list[dict] = []
        self.table = epoch_table(metric_name, with_validation)
        self._live: Live | None = None
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
                self._live = live
                try:
                    yield self
                finally:
                    self._live = None
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
        self.records.append(record)
        if len(self.records) <= self.MAX_ROWS and self.epochs <= self.MAX_ROWS:
            self.table.add_row(*self._cells(record))
            return
        self.table = epoch_table(self.metric_name, self.with_validation)  # the summary rows, anew
        shown = shown_epochs(self.records, self.epochs, self.MAX_ROWS, self._monitored())
        for index in shown:  # the epoch numbers show what is left out
            record = self.records[index - 1]
            best = index == best_epoch(self.records, self._monitored())
            self.table.add_row(*self._cells(record), style="bold" if best else None)
        if self._live is not None:
            self._live.update(Group(self.table, self.progress))

    def _monitored(self) -> str:
        return "val_loss" if self.with_validation else "loss"

    def _cells(self, record: dict) -> list[str]:
        metric = self.metric_name
        cells = [str(record["epoch"]), number(record["loss"]), metric_text(metric, record.get(metric))]
        if self.with_validation:
            val_loss = record.get("val_loss")
            cells += ["–" if val_loss is None else number(val_loss), metric_text(metric, record.get(f"val_{metric}"))]
        cells += [number_text(record["seconds"], 1), number_text(round(record["samples_per_second"]))]
        return cells


def best_epoch(history: list[dict], monitored: str = "loss") -> int | None:
    """The epoch (1-based position) whose ``monitored`` value is the lowest: early stopping's reference."""
    values = [(record.get(monitored), index) for index, record in enumerate(history, start=1)
              if record.get(monitored) is not None and record.get(monitored) == record.get(monitored)]
    return min(values)[1] if values else None


def shown_epochs(history: list[dict], planned: int, rows: int, monitored: str) -> list[int]:
    """Which epochs (1-based) a long run's table shows: the first, every k-th, the best and the last."""
    total = len(history)
    every = max(1, -(-max(planned, total) // (rows - 3)))  # ⌈epochs / (rows − 3)⌉
    shown = {1, total, *range(1, total + 1, every)}
    best = best_epoch(history, monitored)
    if best is not None:
        shown.add(best)
    return sorted(shown)


SPARKS = "▁▂▃▄▅▆▇█"


def sparkline(values: list[float], low: float, high: float, width: int) -> str:
    """``values`` as one line of eighth-blocks between ``low`` and ``high``; more values than
    ``width`` are averaged in groups.  A missing value (None, NaN) is a space."""
    if len(values) > width:
        groups = np.array_split(np.array([np.nan if v is None else v for v in values], dtype=float), width)
        values = [float(np.nanmean(group)) if np.isfinite(group).any() else None for group in groups]
    span = high - low if high > low else 1.0
    line = ""
    for value in values:
        if value is None or value != value:
            line += " "
        else:
            line += SPARKS[int(round((min(max(value, low), high) - low) / span * (len(SPARKS) - 1)))]
    return line


def render_curves(console: Console, history: list[dict], metric: str, width: int = 50) -> None:
    """Learning curves in the terminal: loss and ``metric`` per epoch, training against validation,
    each pair on one scale; the epoch with the lowest validation (else training) loss marked ▲."""
    if len(history) < 2:
        return
    width = max(10, min(width, console.width - 46))  # beside the names and the first → last values
    validation = any(record.get("val_loss") is not None for record in history)
    best = best_epoch(history, "val_loss" if validation else "loss")
    columns = min(len(history), width)
    stretch = max(1, min(4, width // len(history)))  # a few epochs: each several characters wide
    lowest = _("the lowest validation loss") if validation else _("the lowest loss")
    heading = _("learning curves") + " (" + ngettext("{n} epoch", "{n} epochs", len(history)).format(n=len(history))
    if columns < len(history):
        heading += _(", one column per {count} epochs").format(count=f"{len(history) / columns:.3g}")
    heading += _("; each line from its lowest ▁ to its highest █; ▲ {lowest}, epoch {epoch})").format(
        lowest=lowest, epoch=best)
    console.print(Text(heading))
    grid = Table.grid(padding=(0, 2))
    for _column in range(4):
        grid.add_column(no_wrap=True)
    for key in ("loss", metric):
        series = [(_("training"), [record.get(key) for record in history])]
        if validation:
            series.append((_("validation"), [record.get(f"val_{key}") for record in history]))
        for index, (name, values) in enumerate(series):
            ends = [v for v in values if v is not None and v == v]
            if not ends:
                continue
            low, high = min(ends), max(ends)  # each curve on its own scale: a small rise still shows
            line = "".join(char * stretch for char in sparkline(values, low, high, width))
            grid.add_row(_(key) if index == 0 else "", name, Text(line, style="cyan"),
                         f"{metric_text(key, ends[0]) if key != 'loss' else number(ends[0])} → "
                         f"{metric_text(key, ends[-1]) if key != 'loss' else number(ends[-1])}")
    marker = " " * (int((best - 1) * columns / len(history)) * stretch + stretch // 2) + "▲"
    grid.add_row("", "", Text(marker, style="bold"), "")
    console.print(grid)


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
    def training(self, metric: str, validation: bool, history: list[dict], epochs: int):
        self.view = TrainingView(self.out, metric, validation, epochs)
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
        title=_("confusion matrix"),
        caption=_("rows: true class · columns: predicted class"),
        box=box.SIMPLE_HEAD,
        padding=(0, 0),
    )
    table.add_column(_("true \\ pred"), style="bold", no_wrap=True)
    for index in range(len(class_names)):
        table.add_column(numbered[index] if short is None else short[index], justify="right", min_width=5, no_wrap=True)
    table.add_column(_("recall"), justify="right", min_width=7, no_wrap=True)
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
        table.add_row(label, *cells, percent_text(recall, 1))
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
    return picture(weights, wide=True)


def render_filters(console: Console, name: str, kernel: np.ndarray, most: int = 16) -> None:
    """The first convolution's learned filters, ``kernel (KH, KW, C_in, F)``, each drawn
    from its most negative weight (blank) to its most positive (█); with several input
    channels a filter is shown summed over them.  As many per row as the console holds."""
    filters = kernel.sum(axis=2)  # (KH, KW, F)
    count = min(most, filters.shape[-1])
    shown = f"the first {count} of {filters.shape[-1]}" if count < filters.shape[-1] else f"all {count}"
    console.print(f"[bold]learned filters of {name}[/] ({shown}; blank: most negative, █: most positive)")
    render_pictures(console, [(str(f + 1), filter_picture(filters[:, :, f])) for f in range(count)], titles_below=True)


# ------------------------------------------------------------------ nnrun apply


def print_matrix(console: Console, matrix: np.ndarray, title: str,
                 padding: tuple[int, int, int, int] = (0, 0, 0, 0)) -> None:
    """``title``, then a 2-D array as a grid of numbers; the cells of ``padding`` (top, bottom, left,
    right) dimmed."""
    console.print(Text(title, style="bold"))
    table = Table(show_header=False, box=box.SQUARE, padding=(0, 1))
    for _column in range(matrix.shape[1]):
        table.add_column(justify="right")
    top, bottom, left, right = padding
    for row in range(matrix.shape[0]):
        cells = []
        for col in range(matrix.shape[1]):
            pad = row < top or row >= matrix.shape[0] - bottom or col < left or col >= matrix.shape[1] - right
            cells.append(Text(plain(matrix[row, col]), style="dim" if pad else ""))
        table.add_row(*cells)
    console.print(table)


def picture(matrix: np.ndarray, wide: bool = False) -> list[str]:
    """A 2-D array as lines of shade characters, one per cell (two when ``wide``, so that cells
    look square): blank the lowest value, █ the highest."""
    low, high = float(matrix.min()), float(matrix.max())
    span = high - low if high > low else 1.0
    levels = np.clip(np.rint((matrix - low) / span * (len(SHADES) - 1)), 0, len(SHADES) - 1).astype(int)
    return ["".join(SHADES[level] * (2 if wide else 1) for level in row) for row in levels]


def render_pictures(console: Console, shown: list[tuple[str, list[str]]], width: int | None = None,
                    titles_below: bool = False) -> None:
    """Pictures drawn by `picture`, titled, side by side, as many per row as fit the console."""
    width = width or console.width
    column = max(max(len(lines[0]) for _, lines in shown), max(len(title) for title, _ in shown)) if shown else 0
    per_row = max(1, (width + 2) // (column + 2))
    for start in range(0, len(shown), per_row):
        grid = Table.grid(padding=(0, 2))
        group = shown[start:start + per_row]
        for _column in group:
            grid.add_column(no_wrap=True)
        titles = [Text(title, style="bold", justify="center" if titles_below else "left") for title, _ in group]
        if not titles_below:
            grid.add_row(*titles)
        for row in range(max(len(lines) for _, lines in group)):
            grid.add_row(*(Text(lines[row] if row < len(lines) else "", style="on grey11") for _, lines in group))
        if titles_below:
            grid.add_row(*titles)
        console.print(grid)


def block_mean(image: np.ndarray, factor: int) -> np.ndarray:
    """``image`` (H, W) at 1/``factor`` of its size, each factor×factor block averaged (the last,
    partial rows and columns padded with their edge)."""
    if factor == 1:
        return image
    height, wide = (-(-image.shape[0] // factor)) * factor, (-(-image.shape[1] // factor)) * factor
    padded = np.pad(image, ((0, height - image.shape[0]), (0, wide - image.shape[1])), mode="edge")
    return padded.reshape(height // factor, factor, wide // factor, factor).mean(axis=(1, 3))


def shrink_to(image: np.ndarray, width: int) -> tuple[np.ndarray, int]:
    """``image`` (H, W) made at most ``width`` wide by `block_mean`; (image, factor)."""
    factor = max(1, -(-image.shape[1] // width))
    return block_mean(image, factor), factor


def wrapped(console: Console, text: str, style: str | None = None) -> None:
    """A sentence, wrapped at the console's width, no markup."""
    console.print(text, style=style, markup=False, highlight=False)


def render_application(console: Console, application, pictures: bool = False) -> None:
    """`nnrun apply`: the input (padded), the weights, the output, and each cell's sum written out.
    Positions are counted from 1, as maps and filters are."""
    x, padded, output = application.input, application.padded, application.output
    if x.ndim == 2:  # rows of numbers for an activation: one channel
        x, padded, output = x[:, :, None], padded[:, :, None], output[:, :, None]
    console.print(f"[bold]{application.statement}[/]", highlight=False)
    for warning in application.warnings:
        wrapped(console, f"warning: {warning}", style="yellow")
    if pictures and x.ndim == 3 and output.ndim == 3:
        maps = output.shape[2]
        column = max(8, (console.width - 2 * maps) // (maps + 1))  # the pictures side by side
        before, factor = shrink_to(x[:, :, 0], column)
        shown = [("before", picture(before))] + [
            (f"after{'' if maps == 1 else f' (filter {f + 1})'}", picture(shrink_to(output[:, :, f], column)[0]))
            for f in range(maps)]
        render_pictures(console, shown)
        wrapped(console, f"before: {x.shape[0]}×{x.shape[1]}, values {x.min():.3g} to {x.max():.3g}; "
                     f"after: {output.shape[0]}×{output.shape[1]}, values {output.min():.3g} to {output.max():.3g} "
                     "(blank: the lowest, █: the highest)"
                     + (f"; drawn at 1/{factor} of their size" if factor > 1 else ""))
        return
    if pictures:  # global pooling or dense on a picture: numbers, not pictures
        wrapped(console, f"input  {x.shape[0]}×{x.shape[1]} picture, values {x.min():.3g} to {x.max():.3g}")
    elif x.ndim == 1:
        wrapped(console, f"input  {' '.join(plain(v) for v in x)}")
    else:
        for c in range(x.shape[2]):
            label = "input" if x.shape[2] == 1 else f"input, channel {c + 1}"
            label += " (padded: the zeros dimmed)" if any(application.padding) else ""
            print_matrix(console, padded[:, :, c], label, application.padding)
    kernel = application.kernel
    if kernel is not None and kernel.ndim == 4:
        for f in range(kernel.shape[3]):
            for c in range(kernel.shape[2]):
                which = "" if kernel.shape[2] * kernel.shape[3] == 1 else f", filter {f + 1}, channel {c + 1}"
                print_matrix(console, kernel[:, :, c, f], f"kernel{which}")
    elif kernel is not None and not pictures:
        print_matrix(console, kernel, "weights (a row per input, a column per unit)")
    if application.bias is not None and application.bias.any():
        wrapped(console, f"bias  {' '.join(plain(b) for b in application.bias)}")
    if output.ndim == 1:
        wrapped(console, f"output  {' '.join(plain(v) for v in output)}")
    else:
        for f in range(output.shape[2]):
            print_matrix(console, output[:, :, f], "output" if output.shape[2] == 1 else f"output {f + 1}")
    if application.cells:
        many = output.ndim == 3 and output.shape[2] > 1
        for cell in application.cells:
            where = f"[{cell.row + 1}, {cell.col + 1}]" if output.ndim == 3 else f"[{cell.col + 1}]"
            where += f" (map {cell.filter + 1})" if many else ""
            console.print(f"output{where} = {cell.terms} = {plain(cell.value)}", highlight=False, markup=False)
    elif output.size:
        wrapped(console, f"({plural(output.size, 'output value')}: each sum is written out when there are at most 36)")


# ------------------------------------------------------------------ nnrun show


def render_inside(console: Console, inside, index: int = 0) -> None:
    """One sample through a saved model: the sample, each layer's output, the prediction.
    Feature maps larger than 16×16 are drawn at half size so that many fit 80 columns; each
    map is drawn from its own lowest to its own highest value (the range is printed)."""
    sample = inside.samples[index]
    console.print(f"[bold]{inside.labels[index]}[/]", highlight=False)
    text = _as_text(sample, inside.class_names)
    if text is not None:  # a one-hot window of characters: the text itself
        console.print(Text("input", style="bold") + Text(f"  {text!r}"))
    else:
        _render_values(console, "input", sample)
    for name, kind, outputs in inside.layers:
        if kind == "flatten":  # the same numbers as the maps before it, in one row
            continue
        value = outputs[index]
        shape = "×".join(map(str, value.shape))
        note = " (inactive when predicting: the values pass unchanged)" if kind == "dropout" else ""
        if value.ndim == 3:
            small = value.shape[0] > 16
            console.print(f"[bold]{name}[/] ({kind}) {shape}: one map per channel"
                          + (", drawn at half size" if small else "")
                          + f", values {value.min():.3g} to {value.max():.3g}{note}", highlight=False)
            render_pictures(console, [(str(c + 1), picture(block_mean(value[:, :, c], 2 if small else 1)))
                                      for c in range(value.shape[2])])
        else:
            _render_values(console, f"{name} ({kind}){note}", value)
    _render_prediction(console, inside, index)


def _as_text(sample: np.ndarray, characters: list[str]) -> str | None:
    """A one-hot window (T, V) of a text model, read back as its T characters."""
    if sample.ndim != 2 or sample.shape[1] != len(characters) or not all(len(c) == 1 for c in characters):
        return None
    if not np.all(np.isin(sample, (0.0, 1.0))) or not np.all(sample.sum(axis=1) <= 1):
        return None
    return "".join(characters[int(row.argmax())] if row.any() else "" for row in sample)


def _render_values(console: Console, title: str, value: np.ndarray) -> None:
    shape = "×".join(map(str, value.shape))
    if value.ndim == 2 and value.shape[1] <= 8 and value.shape[0] > 16:  # a sequence: one line per feature
        console.print(f"[bold]{title}[/] {shape}: a line per feature, the steps left to right", highlight=False)
        for feature in range(value.shape[1]):
            series = value[:, feature]
            console.print(Text(f"  {feature + 1}  ") + Text(sparkline(list(series), float(series.min()),
                                                                      float(series.max()), 60), style="cyan")
                          + Text(f"  {series.min():.3g} to {series.max():.3g}"))
        return
    if value.ndim >= 2 and value.size > 16:  # an image or a long sequence: a picture
        flat = value.mean(axis=-1) if value.ndim == 3 else value.T if value.ndim == 2 else value
        console.print(f"[bold]{title}[/] {shape}" + (": a row per channel, the steps left to right" if value.ndim == 2
                                                   else ""), highlight=False)
        render_pictures(console, [("", picture(flat))])
        return
    values = value.reshape(-1)
    shown = " ".join(number(float(v)) for v in values[:32]) + (" …" if values.size > 32 else "")
    console.print(Text(f"{title} {shape}", style="bold") + Text(f"  {shown}"))


def _render_prediction(console: Console, inside, index: int) -> None:
    output = inside.outputs[index].reshape(-1)
    if inside.task in ("classification", "binary"):
        probabilities = np.array([1 - output[0], output[0]]) if output.size == 1 else output
        order = np.argsort(-probabilities)[:3]
        label = lambda k: class_label(inside.class_names, k)  # noqa: E731
        others = ", ".join(f"{label(k)} {probabilities[k]:.1%}" for k in order[1:])
        console.print(f"[bold]prediction[/]  class {label(order[0])} ({probabilities[order[0]]:.1%})"
                      + (f"; next: {others}" if others else ""), highlight=False)
    else:
        console.print(f"[bold]prediction[/]  {' '.join(number(float(v)) for v in output)}", highlight=False)


def fits_a_table(inside, most: int = 10) -> bool:
    """Whether the samples' values fit one table (XOR's: 2 inputs, 2 hidden values, 1 output)."""
    inputs = inside.samples[0].size
    values = sum(outputs[0].size for _name, _kind, outputs in inside.layers)
    return all(outputs.ndim == 2 for _name, _kind, outputs in inside.layers) and inputs + values <= most


def render_values_table(console: Console, inside) -> None:
    """Several small samples (XOR's four points) in one table: the inputs, each layer's values
    (h1, h2 … of a hidden layer, y of the output), and the predicted class — the course's slide."""
    console.print("[bold]inside the network[/]: each layer's output, sample by sample", highlight=False)
    table = Table()
    inputs = inside.samples.reshape(len(inside.samples), -1)
    for i in range(inputs.shape[1]):
        table.add_column(f"x{i + 1}", justify="right")
    last = len(inside.layers) - 1
    for position, (name, _kind, outputs) in enumerate(inside.layers):
        width = outputs.reshape(len(outputs), -1).shape[1]
        for j in range(width):
            symbol = "y" if position == last else "h"
            table.add_column(f"{name}\n{symbol}{j + 1 if width > 1 or symbol == 'h' else ''}", justify="right")
    classifier = inside.task in ("classification", "binary")
    if classifier:
        table.add_column("class", justify="right")
    for row in range(len(inputs)):
        cells = [plain(v) for v in inputs[row]]
        for _name, _kind, outputs in inside.layers:
            cells += [number(float(v)) for v in outputs[row].reshape(-1)]
        if classifier:
            output = inside.outputs[row].reshape(-1)
            best = int(output[0] >= 0.5) if output.size == 1 else int(np.argmax(output))
            cells.append(inside.class_names[best] if best < len(inside.class_names) else str(best))
        table.add_row(*cells)
    console.print(table)
