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


def _rounded(value):
    """Numbers as float32 holds them, without its binary noise (1.3, not 1.2999999523162842)."""
    if isinstance(value, float):
        return float(f"{value:.7g}")
    if isinstance(value, list):
        return [_rounded(item) for item in value]
    if isinstance(value, dict):
        return {key: _rounded(item) for key, item in value.items()}
    return value


@dataclass
class Application:
    statement: str
    input: np.ndarray  # (H, W, C) or (N,)
    padded: np.ndarray  # the input with the padding zeros, (H + pads, W + pads, C)
    output: np.ndarray  # (OH, OW, F) or (N,)
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)  # zero rows/columns added: top, bottom, left, right
    warnings: tuple[str, ...] = ()  # the calculator's (rows or columns a window never reaches)
    kernel_name: str = ""  # a named kernel (sobel-x …), for titles
    kernel: np.ndarray | None = None  # conv: (KH, KW, C, F); dense: (in, units)
    bias: np.ndarray | None = None
    cells: list[Cell] = field(default_factory=list)

    def as_json(self) -> dict:
        def grid(array: np.ndarray):
            if array.ndim <= 2:  # a vector, or the rows of an activation's matrix
                return array.tolist()
            channels = [array[:, :, c].tolist() for c in range(array.shape[2])]
            return channels[0] if len(channels) == 1 else channels

        data = {"statement": self.statement, "input": grid(self.input), "padded": grid(self.padded),
                "output": grid(self.output), "cells": [cell.as_json() for cell in self.cells],
                "warnings": list(self.warnings)}
        if self.kernel is not None:
            data["kernel"] = _rounded(self.kernel.tolist())
        if self.bias is not None:
            data["bias"] = _rounded(self.bias.tolist())
        return _rounded(data)


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
    first = probe.layers[0] if probe.layers else None
    is_dense = isinstance(first, Dense)
    x = channels.reshape(-1) if is_dense else channels
    if is_dense and len(matrices) > 1:
        raise RunError("a dense layer reads one vector: give one --matrix", 'e.g. --matrix "1 0 1"')
    if isinstance(first, ActivationLayer) and len(matrices) == 1:
        x = channels[:, :, 0]  # rows of numbers: softmax normalises each row, as Keras does along the last axis
    if isinstance(first, (Conv, Pool)) and not getattr(first, "is_global", False):
        _check_window_fits(first, channels.shape)
    if not getattr(first, "use_bias", True) and np.any(bias):
        raise RunError(f"`{statement}` has no bias: leave out --bias, or remove `bias false`")
    if not isinstance(first, (Conv, Dense)) and np.any(bias):
        raise RunError(f"--bias is only for conv and dense statements; `{statement}` adds none")
    model = resolve_statement(statement, tuple(x.shape))
    layer = model.layers[0]
    network = make_network(model, "reference", 0)
    weights = weights_for(layer, x, kernels, bias)
    network.load_weights({**network.weights(), **weights})
    output = network.predict(x[None].astype(np.float32), batch=1)[0].astype(np.float64)
    application = Application(statement, x, x, output, warnings=tuple(w.split(": ", 1)[-1] for w in model.warnings))
    statement_layer = layer.layer
    if isinstance(statement_layer, (Conv, Pool)):
        application.padded, application.padding = padded_input(network, layer.name, x)
    if isinstance(statement_layer, Conv):
        padded, kernel = application.padded, weights[f"{layer.name}/kernel"].astype(np.float64)
        application.kernel = kernel
        application.bias = weights.get(f"{layer.name}/bias", np.zeros(statement_layer.filters)).astype(np.float64)
        application.cells = conv_cells(padded, kernel, application.bias, stride_of(network, layer.name), output,
                                       statement_layer.activation)
    elif isinstance(statement_layer, Pool):
        application.cells = pool_cells(application.padded, application.padding, x.shape, statement_layer, network,
                                       layer.name, output)
    elif isinstance(statement_layer, Dense):
        application.kernel = weights[f"{layer.name}/kernel"].astype(np.float64)
        application.bias = weights.get(f"{layer.name}/bias", np.zeros(statement_layer.units)).astype(np.float64)
        application.cells = dense_cells(x, application.kernel, application.bias, output, statement_layer.activation)
    else:
        application.cells = activation_cells(x, output, statement_layer.activation)
    return application


def _check_window_fits(statement, shape: tuple[int, ...]) -> None:
    """A window taller or wider than the matrix: say why, when it is a typing slip."""
    kernel = tuple(statement.kernel) * 2 if len(statement.kernel) == 1 else tuple(statement.kernel)
    if len(kernel) != 2:
        raise RunError("apply works on 2-D matrices (height × width × channels): write a 2-D window, e.g. 3x3",
                       "1-D and 3-D layers are computed the same way, one more or one fewer axis")
    height, width = shape[0], shape[1]
    padded = statement.padding == "same" or (statement.padding != "valid" and statement.padding)
    if padded or (kernel[0] <= height and kernel[1] <= width):
        return
    if height == 1 and width >= kernel[0] * kernel[1] and int(width ** 0.5) ** 2 == width:
        side = int(width ** 0.5)
        raise RunError(f"the matrix was read as one row of {width} numbers",
                       f"separate its rows with ';', not ',': {side} rows of {side} numbers")
    if height == 1:
        raise RunError(f"the matrix has one row, and a {kernel[0]}x{kernel[1]} window needs {kernel[0]}",
                       f"for a window along the row, write it {1}x{kernel[1]}")


def weights_for(layer, x: np.ndarray, kernels: list[np.ndarray] | None, bias) -> dict[str, np.ndarray]:
    """The layer's weights from what was typed in, checked against the statement's shapes."""
    statement = layer.layer
    if not isinstance(statement, (Conv, Dense)):
        if kernels:
            kind = "pool" if isinstance(statement, Pool) else "an activation"
            raise RunError(f"{kind} has no weights: --kernel is only for conv and dense statements")
        return {}
    if isinstance(statement, Conv):
        *_, channels = x.shape
        size = tuple(statement.kernel) * 2 if len(statement.kernel) == 1 else tuple(statement.kernel)
        count = statement.filters * channels
        if not kernels:
            raise RunError(f"conv needs its kernel: give --kernel with a {size[0]}x{size[1]} matrix"
                           + (f", {count} times (one per filter and input channel)" if count > 1 else "")
                           + ", or a named kernel",
                           f'e.g. --kernel "1 0 1; 0 1 0; 1 0 1" or --kernel sobel-x; named: {", ".join(KERNELS)}')
        if len(kernels) == size[0] and all(kernel.shape == (1, size[1]) for kernel in kernels) and count != len(kernels):
            raise RunError(f"each --kernel is a whole {size[0]}x{size[1]} matrix, not one row of it",
                           "write its rows in one --kernel, separated by ';': --kernel \"1 0 1; 0 1 0; 1 0 1\"")
        if len(kernels) == 1 and count > 1:
            kernels = kernels * count  # one kernel for every filter and channel
        if len(kernels) != count:
            raise RunError(f"conv {statement.filters} on {channels} channel{'s' if channels > 1 else ''} needs "
                           f"{count} kernels (one per filter and input channel), got {len(kernels)}")
        for kernel in kernels:
            if kernel.shape[0] == 1 and kernel.size == size[0] * size[1] and size[0] > 1:
                raise RunError(f"the kernel was read as one row of {kernel.size} numbers",
                               f"separate its rows with ';', not ',': e.g. \"1 0 1; 0 1 0; 1 0 1\" for a "
                               f"{size[0]}x{size[1]} kernel")
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
    weights = {f"{layer.name}/kernel": kernel.astype(np.float32)}
    if not statement.use_bias:  # `bias false`: the layer has none
        return weights
    biases = np.broadcast_to(np.asarray(bias, dtype=np.float64), (units,)) if np.ndim(bias) == 0 else np.asarray(bias)
    if biases.shape != (units,):
        raise RunError(f"--bias needs one number or {units} (one per {'filter' if isinstance(statement, Conv) else 'unit'}),"
                       f" got {biases.size}")
    return {**weights, f"{layer.name}/bias": biases.astype(np.float32)}


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


def _bias_term(bias: float) -> str:
    """`` + 1``, `` − 2`` or nothing: the bias added to a sum."""
    if not bias:
        return ""
    return f" − {plain(-bias)}" if bias < 0 else f" + {plain(bias)}"


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
                text = " + ".join(terms) + _bias_term(bias[f])
                if activation is not None and activation.name != "linear":
                    window = padded[top:top + kernel_h, left:left + kernel_w, :]
                    total = float((window * kernel[:, :, :, f]).sum() + bias[f])
                    text = f"{activation.name}({text}) = {activation.name}({plain(total)})"
                cells.append(Cell(row, col, text, float(output[row, col, f]), f))
    return cells


def pool_cells(padded, padding, shape, statement: Pool, network, name: str, output) -> list[Cell]:
    """``max(1, 1, 5, 6)`` or ``(1 + 1 + 5 + 6)/4`` per output cell and channel.  Cells of the
    padding are left out, as Keras's pooling leaves them out (an average divides by the cells
    of the input the window covers)."""
    if statement.is_global:
        if padded.size > MAX_CELLS_WRITTEN_OUT * 4:
            return []
        cells = []
        for c in range(shape[2]):
            values = padded[:, :, c].reshape(-1)
            text = _pooled(values, statement.mode)
            cells.append(Cell(0, c, text, float(output[c]), c))
        return cells
    if output.ndim != 3 or output.size > MAX_CELLS_WRITTEN_OUT:
        return []
    window = _engine_layer(network, name).window
    kernel_h, kernel_w = window.kernel_3d[1:]
    stride = window.stride_3d[1:]
    inside = np.zeros(padded.shape[:2], dtype=bool)
    inside[padding[0]:padding[0] + shape[0], padding[2]:padding[2] + shape[1]] = True
    cells = []
    for c in range(output.shape[2]):
        for row in range(output.shape[0]):
            for col in range(output.shape[1]):
                top, left = row * stride[0], col * stride[1]
                covered = inside[top:top + kernel_h, left:left + kernel_w]
                values = padded[top:top + kernel_h, left:left + kernel_w, c][covered]
                cells.append(Cell(row, col, _pooled(values, statement.mode), float(output[row, col, c]), c))
    return cells


def _pooled(values: np.ndarray, mode: str) -> str:
    if mode == "max":
        return f"max({', '.join(plain(v) for v in values)})"
    return f"({' + '.join(plain(v) for v in values)})/{len(values)}"


def dense_cells(x, kernel, bias, output, activation) -> list[Cell]:
    """Unit j: Σ_i x_i·w_ij + b_j (then the activation)."""
    if output.size > MAX_CELLS_WRITTEN_OUT:
        return []
    cells = []
    for j in range(kernel.shape[1]):
        text = " + ".join(f"{factor(x[i])}·{factor(kernel[i, j])}" for i in range(kernel.shape[0]))
        text += _bias_term(bias[j])
        if activation is not None and activation.name != "linear":
            total = float(x @ kernel[:, j] + bias[j])
            text = f"{activation.name}({text}) = {activation.name}({plain(total)})"
        cells.append(Cell(0, j, text, float(output[j])))
    return cells


def activation_cells(x, output, activation) -> list[Cell]:
    """``relu(-3)`` per cell (its channel as the map); softmax with its denominator, row by row."""
    if output.size > MAX_CELLS_WRITTEN_OUT:
        return []
    grid = x.reshape(1, -1, 1) if x.ndim == 1 else x[:, :, None] if x.ndim == 2 else x
    result = output.reshape(grid.shape)
    cells = []
    for c in range(grid.shape[2]):
        for row in range(grid.shape[0]):
            for col in range(grid.shape[1]):
                value = grid[row, col, c]
                if activation.name == "softmax":
                    terms = " + ".join(f"e^{factor(v)}" for v in grid[row, :, c])
                    text = f"e^{factor(value)} / ({terms})"
                else:
                    text = f"{activation.name}({plain(value)})"
                cells.append(Cell(row, col, text, float(result[row, col, c]), c))
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
