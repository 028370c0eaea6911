"""One statement of the language applied by hand to numbers typed in: the course's exercises.

    nnrun apply "conv 1 3x3" --matrix "1 1 1 0 0; 0 1 1 1 0; 0 0 1 1 1; 0 0 1 1 0; 0 1 1 0 0" \\
                             --kernel "1 0 1; 0 1 0; 1 0 1"
    nnrun apply "pool max 2" --matrix "1 1 2 4; 5 6 7 8; 3 2 1 0; 1 2 3 4"

The numbers come from the engine itself: the statement is resolved like any spec
(`nnrun.dsl`), built as a network on the *reference* backend (the plain-NumPy
functions the tests hold the fast kernels to), given the weights typed in, and run
forward.  What this module adds is the sum of each output cell written out, term by
term (``1·1 + 1·0 + 1·1 + … = 4``; ``max(1, 1, 5, 6) = 6``), from the same padded
input and kernel — the arithmetic a student does on paper.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from nnrun import dsl
from nnrun.dsl.spec import ActivationLayer, Conv, Dense, Pool

from .errors import RunError
from .words import plain

# Named 3×3 kernels (image processing's classics; sobel-x responds to vertical edges).
KERNELS = {
    "identity": [[0, 0, 0], [0, 1, 0], [0, 0, 0]],
    "sobel-x": [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]],
    "sobel-y": [[-1, -2, -1], [0, 0, 0], [1, 2, 1]],
    "laplacian": [[0, 1, 0], [1, -4, 1], [0, 1, 0]],
    "box-blur": [[1 / 9] * 3] * 3,
    "gaussian-blur": [[1 / 16, 2 / 16, 1 / 16], [2 / 16, 4 / 16, 2 / 16], [1 / 16, 2 / 16, 1 / 16]],
    "sharpen": [[0, -1, 0], [-1, 5, -1], [0, -1, 0]],
    "emboss": [[-2, -1, 0], [-1, 1, 1], [0, 1, 2]],
}
MAX_CELLS_WRITTEN_OUT = 36
MAX_VALUES = 1_000_000  # numbers typed in (or read from an image) at most


@dataclass
class Cell:
    row: int
    col: int
    terms: str  # "1·1 + 1·0 + … + 0" or "max(1, 1, 5, 6)"
    value: float
    filter: int = 0

    def as_json(self) -> dict:
        return {"row": self.row, "col": self.col, "filter": self.filter, "terms": self.terms, "value": self.value}


@dataclass
class Application:
    statement: str
    input: np.ndarray  # (H, W, C) or (N,)
    padded: np.ndarray  # the input with the padding zeros, (H + pads, W + pads, C)
    output: np.ndarray  # (OH, OW, F) or (N,)
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)  # zero rows/columns added: top, bottom, left, right
    kernel: np.ndarray | None = None  # conv: (KH, KW, C, F); dense: (in, units)
    bias: np.ndarray | None = None
    cells: list[Cell] = field(default_factory=list)

    def as_json(self) -> dict:
        def grid(array: np.ndarray):
            if array.ndim == 1:
                return array.tolist()
            channels = [array[:, :, c].tolist() for c in range(array.shape[2])]
            return channels[0] if len(channels) == 1 else channels

        return {"statement": self.statement, "input": grid(self.input), "padded": grid(self.padded),
                "output": grid(self.output), "cells": [cell.as_json() for cell in self.cells]}


def parse_matrix(text: str, what: str = "--matrix") -> np.ndarray:
    """``"1 1 2 4; 5 6 7 8"`` → a 2×4 array: rows separated by ``;`` (or new lines), numbers by
    spaces or commas.  A ragged matrix or a word that is not a number is a `RunError`."""
    rows = [row for row in re.split(r"[;\n]", text.strip()) if row.strip()]
    if not rows:
        raise RunError(f"{what} is empty", 'write the rows separated by ";" and the numbers by spaces: "1 2; 3 4"')
    values = []
    for number, row in enumerate(rows, start=1):
        cells = [cell for cell in re.split(r"[,\s]+", row.strip()) if cell]
        try:
            values.append([float(cell) for cell in cells])
        except ValueError:
            bad = next(cell for cell in cells if not _is_number(cell))
            raise RunError(f"{what}: {bad!r} in row {number} is not a number",
                           'write numbers like 3, -1 or 0.5, separated by spaces or commas') from None
    widths = {len(row) for row in values}
    if len(widths) > 1:
        lengths = ", ".join(str(len(row)) for row in values)
        raise RunError(f"{what} is ragged: its rows have {lengths} numbers", "every row needs the same number of values")
    array = np.array(values, dtype=np.float64)
    if not np.isfinite(array).all():
        raise RunError(f"{what} holds a value that is not a finite number", "write ordinary numbers")
    return array


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def kernel_matrix(text: str) -> np.ndarray:
    """A `--kernel`: a named kernel (sobel-x …) or typed-in numbers."""
    name = text.strip().lower()
    if name in KERNELS:
        return np.array(KERNELS[name], dtype=np.float64)
    if re.fullmatch(r"[a-z][a-z-]*", name):
        raise RunError(f"unknown kernel name {text!r}", f"the named kernels are {', '.join(KERNELS)}")
    return parse_matrix(text, "--kernel")


def resolve_statement(statement: str, input_shape: tuple[int, ...]):
    """The one statement of ``statement``, resolved on ``input_shape`` (a `dsl.Model`)."""
    spec = dsl.parse(statement, "<apply>")
    if len(spec.layers) != 1:
        raise RunError(f"apply takes one statement; {statement!r} has {len(spec.layers)}",
                       'e.g. "conv 1 3x3", "pool max 2", "relu" or "dense 2"')
    layer = spec.layers[0]
    if not isinstance(layer, (Conv, Pool, Dense, ActivationLayer)):
        raise RunError(f"apply works on conv, pool, dense and activation statements, not {statement.split()[0]!r}",
                       'e.g. "conv 1 3x3", "pool max 2", "relu" or "dense 2"; recurrent layers run through time: '
                       "train one with `nnrun SPEC --data sine`")
    return dsl.resolve(spec, input_shape)


def apply(statement: str, matrices: list[np.ndarray], kernels: list[np.ndarray] | None = None,
          bias: float | list[float] = 0.0) -> Application:
    """Apply ``statement`` to the channels ``matrices`` (each H×W; a dense layer reads them as one
    vector), with ``kernels`` (conv: one per filter and input channel, in that order; dense: one
    in×units matrix) and ``bias`` (one number for every filter or unit, or one each)."""
    from .networks import make_network

    channels = np.stack(matrices, axis=-1)  # (H, W, C)
    if channels.size > MAX_VALUES:
        raise RunError(f"the input has {channels.size:,} values; apply takes at most {MAX_VALUES:,}")
    probe = dsl.parse(statement, "<apply>")
    is_dense = probe.layers and isinstance(probe.layers[0], Dense)
    x = channels.reshape(-1) if is_dense else channels
    if is_dense and len(matrices) > 1:
        raise RunError("a dense layer reads one vector: give one --matrix", 'e.g. --matrix "1 0 1"')
    model = resolve_statement(statement, tuple(x.shape))
    layer = model.layers[0]
    network = make_network(model, "reference", 0)
    weights = weights_for(layer, x, kernels, bias)
    network.load_weights({**network.weights(), **weights})
    output = network.predict(x[None].astype(np.float32), batch=1)[0].astype(np.float64)
    application = Application(statement, x, x, output)
    statement_layer = layer.layer
    if isinstance(statement_layer, (Conv, Pool)):
        application.padded, application.padding = padded_input(network, layer.name, x)
    if isinstance(statement_layer, Conv):
        padded, kernel = application.padded, weights[f"{layer.name}/kernel"].astype(np.float64)
        application.kernel = kernel
        application.bias = weights[f"{layer.name}/bias"].astype(np.float64)
        application.cells = conv_cells(padded, kernel, application.bias, stride_of(network, layer.name), output,
                                       statement_layer.activation)
    elif isinstance(statement_layer, Pool):
        application.cells = pool_cells(application.padded, statement_layer, network, layer.name, output)
    elif isinstance(statement_layer, Dense):
        application.kernel = weights[f"{layer.name}/kernel"].astype(np.float64)
        application.bias = weights[f"{layer.name}/bias"].astype(np.float64)
        application.cells = dense_cells(x, application.kernel, application.bias, output, statement_layer.activation)
    else:
        application.cells = activation_cells(x, output, statement_layer.activation)
    return application


def weights_for(layer, x: np.ndarray, kernels: list[np.ndarray] | None, bias) -> dict[str, np.ndarray]:
    """The layer's weights from what was typed in, checked against the statement's shapes."""
    statement = layer.layer
    if not isinstance(statement, (Conv, Dense)):
        if kernels:
            raise RunError(f"{layer.type} has no weights: --kernel is only for conv and dense statements")
        return {}
    if isinstance(statement, Conv):
        *_, channels = x.shape
        size = tuple(statement.kernel) * 2 if len(statement.kernel) == 1 else tuple(statement.kernel)
        count = statement.filters * channels
        if not kernels:
            raise RunError(f"conv needs its kernel: give --kernel {count} time{'s' if count > 1 else ''} "
                           f"(one {size[0]}x{size[1]} matrix per filter and input channel) or a named kernel",
                           f'e.g. --kernel "1 0 1; 0 1 0; 1 0 1" or --kernel sobel-x; named: {", ".join(KERNELS)}')
        if len(kernels) == 1 and count > 1:
            kernels = kernels * count  # one kernel for every filter and channel
        if len(kernels) != count:
            raise RunError(f"conv {statement.filters} on {channels} channel{'s' if channels > 1 else ''} needs "
                           f"{count} kernels (one per filter and input channel), got {len(kernels)}")
        for kernel in kernels:
            if kernel.shape != size:
                raise RunError(f"the kernel is {kernel.shape[0]}x{kernel.shape[1]} but the statement says "
                               f"{size[0]}x{size[1]}", f"write `conv {statement.filters} {kernel.shape[0]}x{kernel.shape[1]}` "
                                                       f"or give a {size[0]}x{size[1]} kernel")
        kernel = np.stack([np.stack(kernels[f * channels:(f + 1) * channels], axis=-1)
                           for f in range(statement.filters)], axis=-1)  # (KH, KW, C, F)
        units = statement.filters
    else:
        if not kernels or len(kernels) != 1:
            raise RunError(f"dense {statement.units} needs one --kernel: its weights as a {x.size}x{statement.units} "
                           "matrix (a row per input, a column per unit)", 'e.g. --kernel "1 -1; 1 -1"')
        kernel = kernels[0]
        if kernel.shape != (x.size, statement.units):
            raise RunError(f"the kernel is {kernel.shape[0]}x{kernel.shape[1]} but dense {statement.units} on "
                           f"{x.size} inputs needs {x.size}x{statement.units}", "a row per input, a column per unit")
        units = statement.units
    biases = np.broadcast_to(np.asarray(bias, dtype=np.float64), (units,)) if np.ndim(bias) == 0 else np.asarray(bias)
    if biases.shape != (units,):
        raise RunError(f"--bias needs one number or {units} (one per {'filter' if isinstance(statement, Conv) else 'unit'}),"
                       f" got {biases.size}")
    return {f"{layer.name}/kernel": kernel.astype(np.float32), f"{layer.name}/bias": biases.astype(np.float32)}


def _engine_layer(network, name: str):
    return next(layer for layer in network.layers if layer.name == name)


def stride_of(network, name: str) -> tuple[int, int]:
    return tuple(_engine_layer(network, name).window.stride_3d[1:])


def padded_input(network, name: str, x: np.ndarray) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """``x`` (H, W, C) with the layer's padding zeros around it, as its window sees it, and the
    padding (top, bottom, left, right); Keras's `same` puts an odd one after."""
    window = _engine_layer(network, name).window
    before, after = window.pad_before_3d[1:], window.pad_after_3d[1:]
    padded = np.pad(x, ((before[0], after[0]), (before[1], after[1]), (0, 0)))
    return padded, (before[0], after[0], before[1], after[1])


def factor(value: float) -> str:
    """A factor of a product: negative numbers in parentheses, ``2·(−1)``."""
    text = plain(value)
    return f"({text})" if text.startswith("-") else text


def conv_cells(padded, kernel, bias, stride, output, activation) -> list[Cell]:
    """Each output cell's sum, Σ over the window and the channels of x·w, + b (then the activation)."""
    out_h, out_w, filters = output.shape
    if out_h * out_w * filters > MAX_CELLS_WRITTEN_OUT:
        return []
    kernel_h, kernel_w, channels, _ = kernel.shape
    cells = []
    for f in range(filters):
        for row in range(out_h):
            for col in range(out_w):
                top, left = row * stride[0], col * stride[1]
                terms = [f"{factor(padded[top + m, left + n, c])}·{factor(kernel[m, n, c, f])}"
                         for c in range(channels) for m in range(kernel_h) for n in range(kernel_w)]
                text = " + ".join(terms) + (f" + {plain(bias[f])}" if bias[f] else "")
                if activation is not None and activation.name != "linear":
                    window = padded[top:top + kernel_h, left:left + kernel_w, :]
                    total = float((window * kernel[:, :, :, f]).sum() + bias[f])
                    text = f"{activation.name}({text}) = {activation.name}({plain(total)})"
                cells.append(Cell(row, col, text, float(output[row, col, f]), f))
    return cells


def pool_cells(padded, statement: Pool, network, name: str, output) -> list[Cell]:
    """``max(1, 1, 5, 6)`` or ``(1 + 1 + 5 + 6)/4`` per output cell and channel."""
    if output.ndim != 3 or output.size > MAX_CELLS_WRITTEN_OUT:
        return []
    window = _engine_layer(network, name).window
    kernel_h, kernel_w = window.kernel_3d[1:]
    stride = window.stride_3d[1:]
    cells = []
    for c in range(output.shape[2]):
        for row in range(output.shape[0]):
            for col in range(output.shape[1]):
                top, left = row * stride[0], col * stride[1]
                values = padded[top:top + kernel_h, left:left + kernel_w, c].reshape(-1)
                listed = ", ".join(plain(v) for v in values)
                text = f"max({listed})" if statement.mode == "max" else \
                    f"({' + '.join(plain(v) for v in values)})/{len(values)}"
                cells.append(Cell(row, col, text, float(output[row, col, c]), c))
    return cells


def dense_cells(x, kernel, bias, output, activation) -> list[Cell]:
    """Unit j: Σ_i x_i·w_ij + b_j (then the activation)."""
    if output.size > MAX_CELLS_WRITTEN_OUT:
        return []
    cells = []
    for j in range(kernel.shape[1]):
        text = " + ".join(f"{factor(x[i])}·{factor(kernel[i, j])}" for i in range(kernel.shape[0]))
        text += f" + {plain(bias[j])}" if bias[j] else ""
        if activation is not None and activation.name != "linear":
            total = float(x @ kernel[:, j] + bias[j])
            text = f"{activation.name}({text}) = {activation.name}({plain(total)})"
        cells.append(Cell(0, j, text, float(output[j])))
    return cells


def activation_cells(x, output, activation) -> list[Cell]:
    if output.size > MAX_CELLS_WRITTEN_OUT:
        return []
    flat_in, flat_out = x.reshape(-1), output.reshape(-1)
    shape = x.shape if x.ndim == 3 else (1, x.size, 1)
    cells = []
    for index, (value, result) in enumerate(zip(flat_in, flat_out)):
        row, col, _ = np.unravel_index(index, shape)
        cells.append(Cell(int(row), int(col), f"{activation.name}({plain(value)})", float(result)))
    return cells



def image_matrix(array: np.ndarray, what: str) -> np.ndarray:
    """A picture as one grey matrix in [0, 1]: bytes scaled by 1/255, colour channels averaged."""
    array = np.asarray(array)
    if array.dtype.kind not in "biuf":
        raise RunError(f"{what} holds {array.dtype} values, not pixels")
    scale = 255.0 if array.dtype == np.uint8 else 1.0
    array = array.astype(np.float64) / scale
    if array.ndim == 3:
        array = array[..., :3].mean(axis=-1) if array.shape[-1] in (3, 4) else array[..., 0] if array.shape[-1] == 1 \
            else None
    if array is None or array.ndim != 2:
        raise RunError(f"{what} is not one picture (a 2-D array, or height × width × channels)",
                       "give a grey or colour image, e.g. an .npy of shape 28×28")
    if array.size > MAX_VALUES or not np.isfinite(array).all():
        raise RunError(f"{what} is too large or holds values that are not finite numbers")
    return array


def read_image(path: str) -> np.ndarray:
    """``--image FILE``: an .npy array, or a PNG/JPEG read with matplotlib (which brings Pillow)."""
    from .limits import read_npy, regular_file

    regular_file(path, "an image file")
    if path.lower().endswith(".npy"):
        return image_matrix(read_npy(path), path)
    try:
        import matplotlib.image
    except ImportError:
        raise RunError("reading PNG or JPEG images needs matplotlib", "pip install 'nnrun[plots]'") from None
    try:
        return image_matrix(matplotlib.image.imread(path), path)
    except (OSError, ValueError, SyntaxError) as error:
        raise RunError(f"{path} is not a readable image ({error})", "give a PNG or JPEG file, or an .npy array") from None


def data_sample(name: str, index: int, data_dir: str | None = None) -> np.ndarray:
    """``--data NAME --sample K``: the K-th image of the data set's test split."""
    from .datasets import load_dataset

    data = load_dataset(name, data_dir=data_dir)
    if not 0 <= index < len(data.x_test):
        raise RunError(f"--sample {index} is out of range: {data.name}'s test split has {len(data.x_test):,} samples",
                       f"give a number from 0 to {len(data.x_test) - 1:,}")
    return image_matrix(data.x_test[index], f"{data.name} sample {index}")
