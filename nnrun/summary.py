"""The calculator's views of a resolved `Model`: a rich table, or the JSON object of DESIGN §2.

    layer       type           output shape    parameters
    conv_1      conv2d         26×26×32               320
    …
    total parameters 54,410 · trainable 54,410 · non-trainable 0
    weights 212.5 KiB (float32) · 248,768 MACs per sample
"""
from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from dsl import Model
from dsl.shapes import format_count, format_shape

FLOAT32_BYTES = 4


def summary_json(model: Model) -> dict:
    """``{"input": [...], "layers": [{name, type, output_shape, params, trainable_params, macs}], totals}``."""
    return {
        "input": list(model.input_shape),
        "layers": [
            {
                "name": info.name,
                "type": info.type,
                "output_shape": list(info.output_shape),
                "params": info.params,
                "trainable_params": info.trainable_params,
                "macs": info.macs,
            }
            for info in model.layers
        ],
        "total_params": model.total_params,
        "trainable_params": model.trainable_params,
        "non_trainable_params": model.non_trainable_params,
        "macs": model.macs,
    }


def render_summary(model: Model, console: Console, explain: bool = False) -> None:
    """The table, the totals under it, then the warnings."""
    table = Table(title=f"{model.spec.filename}: input {format_shape(model.input_shape)}", title_justify="left")
    table.add_column("layer", no_wrap=True)
    if not explain:  # with --explain the arithmetic says what each layer is
        table.add_column("type", no_wrap=True)
    table.add_column("output shape", justify="right", no_wrap=True)
    table.add_column("parameters", justify="right", no_wrap=True)
    if explain:
        table.add_column("arithmetic", ratio=1)
    for info in model.layers:
        implicit = getattr(info.layer, "implicit", False)
        name = Text(info.name)
        if implicit:
            name.append(" (implicit)", style="dim")
        shape, params = format_shape(info.output_shape), format_count(info.params)
        if explain:
            lines = [info.type, *info.explain]
            if info.receptive_field:
                lines.append(f"receptive field {format_shape(info.receptive_field)}")
            row = [name, shape, params, Text("\n".join(lines))]
        else:
            row = [name, info.type, shape, params]
        table.add_row(*row, style="dim" if implicit else None, end_section=explain)
    console.print(table)

    totals = Table.grid(padding=(0, 2))
    totals.add_column()
    totals.add_column(justify="right")
    totals.add_column()
    totals.add_row("total parameters", format_count(model.total_params), "")
    totals.add_row("trainable", format_count(model.trainable_params), "")
    totals.add_row("non-trainable", format_count(model.non_trainable_params), "")
    totals.add_row("weight memory", human_bytes(model.total_params * FLOAT32_BYTES), "float32")
    totals.add_row("MACs per sample", format_count(model.macs), human_count(model.macs))
    chosen = "" if model.spec.loss is not None else "default for this output"
    totals.add_row("loss", model.loss, chosen)
    console.print(totals)
    for warning in model.warnings:
        console.print(Text(f"warning: {warning}", style="yellow"))


def human_bytes(size: int) -> str:
    """1024-based: ``217640`` → ``212.5 KiB``."""
    value, unit = float(size), "B"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            break
        value /= 1024
    return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"


def human_count(number: int) -> str:
    """1000-based: ``248768`` → ``248.8 K``; empty below a thousand."""
    for scale, unit in ((10**12, "T"), (10**9, "G"), (10**6, "M"), (10**3, "K")):
        if number >= scale:
            return f"{number / scale:.1f} {unit}"
    return ""
