"""The calculator's views of a resolved `Model`: a rich table, or the JSON object of DESIGN §2.

    layer       type           output shape    parameters
    conv_1      conv2d         26×26×32               320
    …
    total parameters 54,410 · trainable 54,410 · non-trainable 0
    weights 212.5 KiB (float32) · 248,768 MACs per sample
"""
from __future__ import annotations

import re

from rich.console import Console
from rich.table import Table
from rich.text import Text

from nnrun.dsl import Model
from nnrun.dsl.shapes import format_shape
from nnrun.dsl.memory import training_memory
from nnrun.dsl.spec import Recurrent

from .i18n import _, language, number_text
from .words import human_bytes


def count_text(number: int) -> str:
    """A count as the language writes it (``235,146``, ``235 146``), a real minus sign."""
    return number_text(number).replace("-", "−")


def numbers_in(line: str) -> str:
    """The calculator's formulas in the language's style: ``(784+1)·300 = 235,500`` → ``235 500`` in French."""
    return re.sub(r"(?<=\d),(?=\d{3}\b)", " ", line) if language() == "fr" else line

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
    table = Table(title=model.spec.filename + ": " + _("input") + " " + format_shape(model.input_shape),
                  title_justify="left")
    table.add_column(_("layer"), no_wrap=True)
    if not explain:  # with --explain the arithmetic says what each layer is
        table.add_column(_("type"), no_wrap=True)
    table.add_column(_("output shape"), justify="right", no_wrap=True)
    table.add_column(_("parameters"), justify="right", no_wrap=True)
    if explain:
        table.add_column(_("arithmetic"), ratio=1)
    for info in model.layers:
        implicit = getattr(info.layer, "implicit", False)
        name = Text(info.name)
        if implicit:
            name.append(" (" + _("implicit") + ")", style="dim")
        shape, params = format_shape(info.output_shape), count_text(info.params)
        if explain:
            lines = [info.type, *(numbers_in(line) for line in info.explain)]
            if isinstance(info.layer, Recurrent):
                lines += unrolled(info.layer, info.input_shape)
            if info.receptive_field:
                lines.append(_("receptive field") + " " + format_shape(info.receptive_field))
            row = [name, shape, params, Text("\n".join(lines))]
        else:
            row = [name, info.type, shape, params]
        table.add_row(*row, style="dim" if implicit else None, end_section=explain)
    console.print(table)

    totals = Table.grid(padding=(0, 2))
    totals.add_column()
    totals.add_column(justify="right")
    totals.add_column()
    totals.add_row(_("total parameters"), count_text(model.total_params), "")
    totals.add_row(_("trainable"), count_text(model.trainable_params), "")
    totals.add_row(_("non-trainable"), count_text(model.non_trainable_params), "")
    totals.add_row(_("weight memory"), human_bytes(model.total_params * FLOAT32_BYTES), "float32")
    totals.add_row(_("MACs per sample"), count_text(model.macs), human_count(model.macs))
    need = training_memory(model, model.spec.train.batch)
    totals.add_row(_("memory to train"), human_bytes(need.total),
                   _("estimate at batch {batch}, {optimizer}").format(batch=need.batch, optimizer=model.spec.optimizer.name))
    chosen = "" if model.spec.loss is not None else _("default for this output")
    totals.add_row(_("loss"), model.loss, chosen)
    console.print(totals)
    for warning in model.warnings:
        console.print(Text(f"warning: {warning}", style="yellow"))
    if explain and any(isinstance(info.layer, Recurrent) for info in model.layers):
        console.print(
            "The calculator does not train, so it cannot measure gradients: `nnrun SPEC --data NAME` "
            "shows ‖∂L/∂h_t‖ at every step after training (and --report FILE.json keeps them)."
        )


# Per cell: the equations of one step, in the course's notation (U acts on x_t, W on h_{t−1});
# ACT stands for the statement's activation.
CELL_STEPS = {
    "rnn": ("h_t = ACT(U·x_t + W·h_{t−1} + b)",),
    "lstm": (
        "i, f, o = σ(U·x_t + W·h_{t−1} + b)",
        "g = ACT(U·x_t + W·h_{t−1} + b)",
        "c_t = f⊙c_{t−1} + i⊙g",
        "h_t = o⊙ACT(c_t)",
    ),
    "gru": (
        "z, r = σ(U·x_t + W·h_{t−1} + b)",
        "ĥ = ACT(U·x_t + r⊙(W·h_{t−1} + b_h) + b)",
        "h_t = z⊙h_{t−1} + (1 − z)⊙ĥ",
    ),
}
CELL_BPTT = {
    "rnn": "each step back multiplies it by ACT′·Wᵀ: over many steps it vanishes (or explodes)",
    "lstm": "along c_{t−1} → c_t it is only multiplied by f: it can survive many steps",
    "gru": "along h_{t−1} → h_t it is only multiplied by z: it can survive many steps",
}


def unrolled(layer: Recurrent, input_shape: tuple[int, ...]) -> list[str]:
    """The recurrent layer written out as one cell applied at every time step."""
    steps, features = input_shape
    units, gates = layer.units, {"rnn": 1, "lstm": 4, "gru": 3}[layer.cell]
    act = layer.activation.name
    width = f"{gates}·{units}" if gates > 1 else f"{units}"
    bias = f"2×{width}" if layer.cell == "gru" else width
    output = f"every h_t: {steps}×{units} (sequences)" if layer.return_sequences else f"the last state h_{steps}: {units}"
    lines = [
        f"unrolled: T = {steps} steps, h_0 = 0, for t = 1 … {steps}:",
        *(f"  {line.replace('ACT', act)}" for line in CELL_STEPS[layer.cell]),
        f"x_t {features}, h_t {units}; U {features}×{width}, W {units}×{width}, b {bias}",
        f"the same U, W, b at all {steps} steps (shared)",
        f"output: {output}",
        f"BPTT: ∂L/∂h_t flows back from t = {steps} to 1, the gradients of U, W, b are "
        f"summed over the steps; {CELL_BPTT[layer.cell].replace('ACT', act)}",
    ]
    if not layer.use_bias:  # `bias false`: h_t = tanh(U·x_t + W·h_{t−1}), no b anywhere
        lines = [re.sub(r" \+ b(_h)?\b", "", line.replace("U, W, b", "U, W").replace(f", b {bias}", ""))
                 for line in lines]
    return lines


def human_count(number: int) -> str:
    """1000-based: ``248768`` → ``248.8 K``; empty below a thousand."""
    for scale, unit in ((10**12, "T"), (10**9, "G"), (10**6, "M"), (10**3, "K")):
        if number >= scale:
            return f"{number / scale:.1f} {unit}"
    return ""
