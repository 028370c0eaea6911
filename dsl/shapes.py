"""Shape and parameter inference: `Spec` + input shape → `Model`, counted as Keras counts.

For every statement: the output shape, the parameters, the forward
multiply-accumulates (MACs) per sample, and the arithmetic written out.

    conv      O = ⌊(I − K + 2P)/S⌋ + 1   (valid: P = 0;  same: O = ⌈I/S⌉)
              params = (K_volume·C_in + 1)·F       MACs = O_volume·F·K_volume·C_in
    pool      O as for conv, stride defaults to K;  global pooling keeps C;  0 params
    dense     params = (in + 1)·N                  MACs = in·N
              (after `rnn … sequences`: the same dense at each of the T steps)
    rnn       params = N·(N + F + 1)               MACs = T·N·(F + N)
    lstm      params = 4N·(N + F + 1)              MACs = T·4N·(F + N)
    gru       params = 3N·(N + F + 2)  (Keras's reset_after: two biases per gate)
    batchnorm params = 4·C  (γ, β trainable; the moving mean and variance are not)

MACs count multiplications by weights only: pooling, activations, dropout and
batchnorm count 0.  The receptive field of a spatial layer, in input pixels per
axis, grows through conv and pool as  r ← r + (K − 1)·j,  j ← j·S  (r = j = 1 at the input).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from .errors import SpecError
from .spec import (
    ActivationLayer,
    BatchNorm,
    Conv,
    Dense,
    Dropout,
    Flatten,
    LayerInfo,
    Model,
    Pool,
    Position,
    Recurrent,
    Shape,
    Spec,
)

MAX_PARAMS = 2 * 10**9  # beyond this a spec is a typo, not a network
MAX_VALUES = 10**9  # the most values one activation tensor may hold

AXIS_NAMES = {1: ("T",), 2: ("H", "W"), 3: ("D", "H", "W")}
AXIS_WORDS = {
    1: (("time step", "time steps"),),
    2: (("row", "rows"), ("column", "columns")),
    3: (("slice", "slices"), ("row", "rows"), ("column", "columns")),
}
LAYOUTS = {1: "a vector N", 2: "a sequence T×F", 3: "an image H×W×C", 4: "a volume D×H×W×C"}
LAYOUT_WORDS = {1: "a vector", 2: "a sequence", 3: "an image", 4: "a volume"}
GATES = {"rnn": 1, "lstm": 4, "gru": 3}
RECURRENT_TYPES = {"rnn": "simple_rnn", "lstm": "lstm", "gru": "gru"}


def format_shape(shape: Shape) -> str:
    """``(26, 26, 32)`` → ``26×26×32``."""
    return "×".join(str(size) for size in shape)


def format_count(number: int) -> str:
    """Thousands separators and a real minus sign: ``-1234`` → ``−1,234``."""
    return f"{number:,}".replace("-", "−")


def resolve(spec: Spec, input_shape: Shape | None = None) -> Model:
    """Infer every layer's output shape, parameters, MACs and receptive field.

    Raises `SpecError` (at the statement, with the arithmetic) when a layer does not fit.
    """
    shape = _input_shape(spec, input_shape)
    layers = _Resolver(spec).run(shape)
    loss = spec.loss.name if spec.loss is not None else default_loss(spec, layers[-1].output_shape)
    warnings = tuple(f"{info.name}: {text}" for info in layers for text in info.warnings)
    if _final_activation(spec) == "softmax" and layers[-1].output_shape[-1] == 1:
        warnings += ("softmax over a single unit always outputs 1; for two classes use `dense 1 sigmoid`",)
    optimizer = spec.optimizer
    if optimizer.name == "sgd" and optimizer.nesterov and not optimizer.momentum:
        warnings += ("`nesterov` changes nothing without momentum: write `optimizer sgd momentum 0.9 nesterov`",)
    return Model(spec=spec, input_shape=shape, layers=layers, loss=loss, warnings=warnings)


def default_loss(spec: Spec, output_shape: Shape) -> str:
    """cce after softmax, bce after a 1-unit sigmoid, mse otherwise."""
    activation = _final_activation(spec)
    if activation == "softmax":
        return "cce"
    if activation == "sigmoid" and math.prod(output_shape) == 1:
        return "bce"
    return "mse"


def _final_activation(spec: Spec) -> str | None:
    for layer in reversed(spec.layers):
        if isinstance(layer, (Dropout, Flatten)):
            continue  # they do not change what the values mean
        if isinstance(layer, ActivationLayer):
            return layer.activation.name
        activation = getattr(layer, "activation", None)
        return activation.name if activation is not None else None
    return None


def _input_shape(spec: Spec, given: Shape | None) -> Shape:
    written = tuple(spec.input_shape) if spec.input_shape is not None else None
    given = tuple(given) if given is not None else None
    if not spec.layers:
        raise _error(spec, spec.input_pos, "the spec has no layers", hint="add one, e.g. `dense 10 softmax`")
    first = spec.layers[0].pos
    if written is not None and given is not None and written != given:
        raise _error(
            spec,
            spec.input_pos,
            f"`input {'x'.join(map(str, written))}` in the spec, but {format_shape(given)} was given",
            hint="the shape given by --input or the data must agree with the `input` line;\n"
            "remove the line to take the shape from the data",
        )
    shape = written or given
    if shape is None:
        raise _error(
            spec,
            first,
            "no input shape: add an `input` line or pass --input",
            hint="the shape of one sample, e.g. `input 784`, `input 28x28x1` or `input 50x1`",
        )
    if not 1 <= len(shape) <= 4:
        raise _error(
            spec,
            spec.input_pos,
            f"an input of rank {len(shape)} ({format_shape(shape)}) is not supported",
            hint="inputs are N, T×F, H×W×C or D×H×W×C",
        )
    if min(shape) < 1:
        raise _error(spec, spec.input_pos, f"input {format_shape(shape)}: every size must be at least 1")
    if math.prod(shape) > MAX_VALUES:
        raise _error(spec, spec.input_pos, f"input {format_shape(shape)} holds {math.prod(shape):,} values; at most 10^9 are supported")
    return shape


def _error(spec: Spec, pos: Position | None, message: str, hint: str | None = None) -> SpecError:
    """A SpecError at ``pos`` quoting its source line, the caret under the statement."""
    lines = spec.source.splitlines()
    if pos is None or not 1 <= pos.line <= len(lines):
        return SpecError(message, pos, hint=hint)
    line = lines[pos.line - 1]
    statement = line[pos.column - 1 :].split(";")[0].split("#")[0].rstrip()
    return SpecError(message, pos, hint=hint, source_line=line, width=len(statement))


# ------------------------------------------------------------------ one layer at a time


@dataclass(frozen=True)
class _Step:
    """What a rule says about one layer."""

    type: str
    output_shape: Shape
    params: int = 0
    trainable_params: int | None = None  # None: all of them
    macs: int = 0
    explain: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    window: tuple[tuple[int, int], ...] | None = None  # (kernel, stride) per spatial axis
    keeps_layout: bool = False  # dropout, activation, batchnorm: same positions out as in


class _Resolver:
    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.labels = [layer.label for layer in spec.layers if layer.label]
        self.names: set[str] = set()
        self.counts: dict[str, int] = {}
        self.rows: list[LayerInfo] = []
        self.total_params = 0

    def run(self, shape: Shape) -> tuple[LayerInfo, ...]:
        self.shape = self.input_shape = shape
        spatial_rank = len(shape) - 1
        self.field = ((1, 1),) * spatial_rank if spatial_rank else None  # (r, j) per axis
        self.per_step = False  # the tensor is a sequence from `rnn … sequences`
        for layer in self.spec.layers:
            if isinstance(layer, Dense) and len(self.shape) > 1 and not self.per_step:
                self.add(Flatten(implicit=True, pos=layer.pos))
            self.add(layer)
        return tuple(self.rows)

    def add(self, layer) -> None:
        rule = RULES[type(layer)]
        step = rule(self, layer, self.shape)
        name = self.name(layer)
        values = math.prod(step.output_shape)
        if values > MAX_VALUES:
            raise self.fail(layer, f"{name}'s output {format_shape(step.output_shape)} holds {values:,} values; at most 10^9 are supported")
        self.total_params += step.params
        if self.total_params > MAX_PARAMS:
            raise self.fail(layer, f"the network reaches {self.total_params:,} parameters at {name}; at most 2·10^9 are supported")
        receptive_field = self.grow_field(step)
        self.per_step = isinstance(layer, Recurrent) and layer.return_sequences or (
            self.per_step and (step.keeps_layout or isinstance(layer, Dense))
        )
        self.rows.append(
            LayerInfo(
                name=name,
                type=step.type,
                layer=layer,
                input_shape=self.shape,
                output_shape=step.output_shape,
                params=step.params,
                trainable_params=step.params if step.trainable_params is None else step.trainable_params,
                macs=step.macs,
                receptive_field=receptive_field,
                explain=step.explain,
                warnings=step.warnings,
            )
        )
        self.shape = step.output_shape

    def grow_field(self, step: _Step) -> tuple[int, ...] | None:
        """r ← r + (K − 1)·j, j ← j·S through windows; lost at flatten, dense, recurrent."""
        if self.field is not None:
            if step.window is not None:
                self.field = tuple((r + (k - 1) * j, j * s) for (r, j), (k, s) in zip(self.field, step.window))
            elif not step.keeps_layout:
                self.field = None
        receptive_field = tuple(r for r, _ in self.field) if self.field is not None else None
        if len(step.output_shape) == 1:
            self.field = None  # global pooling: no positions left
        return receptive_field

    def name(self, layer) -> str:
        if layer.label:
            if layer.label in self.names:
                raise self.fail(layer, f"the label '{layer.label}' is used twice", hint="each layer needs its own name")
            self.names.add(layer.label)
            return layer.label
        kind = layer.activation.name if isinstance(layer, ActivationLayer) else KINDS[type(layer)]
        if isinstance(layer, Recurrent):
            kind = layer.cell
        while True:
            self.counts[kind] = self.counts.get(kind, 0) + 1
            name = f"{kind}_{self.counts[kind]}"
            if name not in self.labels and name not in self.names:
                self.names.add(name)
                return name

    def fail(self, layer, message: str, hint: str | None = None) -> SpecError:
        return _error(self.spec, layer.pos, message, hint)

    # ------------------------------------------------------------ helpers of the rules

    def spatial_rank(self, layer, shape: Shape, word: str) -> int:
        if len(shape) >= 2:
            return len(shape) - 1
        hint = (
            f"`{word}` needs positions; put it before the flatten/dense that made the vector"
            if self.rows
            else "e.g. `input 28x28x1` for an image, `input 50x1` for a sequence"
        )
        raise self.fail(layer, f"{word} needs a sequence, image or volume, not a vector", hint)

    def per_axis(self, layer, what: str, values: tuple[int, ...], rank: int, shape: Shape) -> tuple[int, ...]:
        """A bare number repeats over the spatial axes; otherwise the rank must match."""
        if len(values) == 1:
            return values * rank
        if len(values) == rank:
            return values
        written = "x".join(map(str, values))
        example = "x".join(["3"] * rank)
        axes = f"{rank} spatial {'axis' if rank == 1 else 'axes'}"
        raise self.fail(
            layer,
            f"{what} {written} is {len(values)}-D, but this layer is {rank}-D",
            hint=f"the input {format_shape(shape)} is {LAYOUTS[len(shape)]} with {axes};\n"
            f"write a {rank}-D {what} such as `{example}`"
            + (", or a bare number (`3`) for every axis" if rank > 1 else ""),
        )

    def window_output(self, layer, shape, kernel, stride, padding) -> tuple[Shape, tuple[str, ...], tuple[str, ...]]:
        """Output sizes of a sliding window, their formulas, and a warning for dropped pixels."""
        rank = len(kernel)
        if min(kernel) < 1 or min(stride) < 1:
            raise self.fail(layer, f"{describe(layer)}: kernel and stride must be at least 1")
        pads = (0,) * rank if padding in ("valid", "same") else self.per_axis(layer, "padding", padding, rank, shape)
        if min(pads) < 0:
            raise self.fail(layer, f"{describe(layer)}: padding must be at least 0")
        sizes, formulas, lost = [], [], []
        for size, k, s, p in zip(shape[:-1], kernel, stride, pads):
            if padding == "same":
                out = -(-size // s)
                formula = f"⌈{size}/{s}⌉ = {format_count(out)}"
                lost.append(None)
            else:
                span = size - k + 2 * p
                out = span // s + 1
                padded = f"+2·{p}" if p else ""
                formula = f"⌊({size}−{k}{padded})/{s}⌋+1 = {format_count(out)}"
                dropped = max(0, span % s - p) if span >= 0 else 0  # rows past the last window, padding aside
                lost.append((f"({size}−{k}{padded})/{s} = {_decimal(span / s)}", dropped) if dropped else None)
            if out < 1:
                raise self.fail(
                    layer,
                    f"{describe(layer)} on {format_shape(shape)}: {formula}",
                    hint=f"the {k}-wide window does not fit in {size}{f' (with padding {p})' if p else ''}; "
                    "use a smaller kernel or stride, `pad same`, or fewer pooling layers before it",
                )
            sizes.append(out)
            formulas.append(formula)
        return tuple(sizes), _per_axis_lines(formulas), _dropped_warnings(lost, rank)


def _decimal(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _per_axis_lines(lines: list[str]) -> tuple[str, ...]:
    if len(set(lines)) == 1:
        return (lines[0],)
    return tuple(f"{axis}: {line}" for axis, line in zip(AXIS_NAMES[len(lines)], lines))


def _dropped_warnings(lost: list, rank: int) -> tuple[str, ...]:
    """``(28−5)/2 = 11.5: the last row and column are ignored``."""
    words = AXIS_WORDS[rank]
    if all(entry is not None for entry in lost) and len(set(lost)) == 1:
        formula, count = lost[0]
        names = [plural if count > 1 else single for single, plural in words]
        return (f"{formula}: the last {_count_prefix(count)}{_and(names)} {'is' if count == 1 and rank == 1 else 'are'} ignored",)
    warnings = []
    for entry, (single, plural) in zip(lost, words):
        if entry is not None:
            formula, count = entry
            what = single if count == 1 else plural
            warnings.append(f"{formula}: the last {_count_prefix(count)}{what} {'is' if count == 1 else 'are'} ignored")
    return tuple(warnings)


def _count_prefix(count: int) -> str:
    return "" if count == 1 else f"{count} "


def _and(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def describe(layer) -> str:
    """The statement as it could be written: ``conv 32 5x5 stride 2``."""
    if isinstance(layer, Conv):
        text = f"conv {layer.filters} {'x'.join(map(str, layer.kernel))}"
    elif isinstance(layer, Pool):
        size = "global" if layer.is_global else "x".join(map(str, layer.kernel or ()))
        text = f"pool {layer.mode} {size}"
    elif isinstance(layer, Dense):
        return f"dense {layer.units}"
    elif isinstance(layer, Recurrent):
        return f"{layer.cell} {layer.units}"
    else:
        return KINDS.get(type(layer), "layer")
    if getattr(layer, "stride", None) not in (None, (1,)):
        text += f" stride {'x'.join(map(str, layer.stride))}"
    if layer.padding != "valid":
        text += f" pad {layer.padding if isinstance(layer.padding, str) else 'x'.join(map(str, layer.padding))}"
    return text


# ------------------------------------------------------------------ the rules


def _conv(r: _Resolver, layer: Conv, shape: Shape) -> _Step:
    rank = r.spatial_rank(layer, shape, "conv")
    kernel = r.per_axis(layer, "kernel", layer.kernel, rank, shape)
    stride = r.per_axis(layer, "stride", layer.stride, rank, shape)
    if layer.filters < 1:
        raise r.fail(layer, f"{describe(layer)}: a conv needs at least 1 filter")
    sizes, formulas, warnings = r.window_output(layer, shape, kernel, stride, layer.padding)
    channels, volume = shape[-1], math.prod(kernel)
    bias = 1 if layer.use_bias else 0
    params = (volume * channels + bias) * layer.filters
    terms = "·".join(map(str, kernel))
    return _Step(
        type=f"conv{rank}d",
        output_shape=(*sizes, layer.filters),
        params=params,
        macs=math.prod(sizes) * layer.filters * volume * channels,
        explain=(*formulas, f"({terms}·{channels}{'+1' if bias else ''})·{layer.filters} = {format_count(params)}"
                            + ("" if bias else " (no bias)")),
        warnings=warnings,
        window=tuple(zip(kernel, stride)),
    )


def _pool(r: _Resolver, layer: Pool, shape: Shape) -> _Step:
    rank = r.spatial_rank(layer, shape, "pool")
    kind = "max" if layer.mode == "max" else "average"
    if layer.is_global or layer.kernel is None:
        positions = shape[:-1]
        return _Step(
            type=f"global_{kind}_pooling{rank}d",
            output_shape=(shape[-1],),
            explain=(f"{kind} over {format_shape(positions)} positions → {shape[-1]}",),
            window=tuple((size, 1) for size in positions),
        )
    kernel = r.per_axis(layer, "kernel", layer.kernel, rank, shape)
    stride = r.per_axis(layer, "stride", layer.stride or layer.kernel, rank, shape)
    if not isinstance(layer.padding, str):
        pads = r.per_axis(layer, "padding", layer.padding, rank, shape)
        if any(p > k // 2 for p, k in zip(pads, kernel)):
            raise r.fail(
                layer,
                f"{describe(layer)}: padding {'x'.join(map(str, pads))} is more than half the kernel",
                hint="a window would then hold padding only; use at most K//2",
            )
    sizes, formulas, warnings = r.window_output(layer, shape, kernel, stride, layer.padding)
    return _Step(
        type=f"{kind}_pooling{rank}d",
        output_shape=(*sizes, shape[-1]),
        explain=formulas,
        warnings=warnings,
        window=tuple(zip(kernel, stride)),
    )


def _dense(r: _Resolver, layer: Dense, shape: Shape) -> _Step:
    if layer.units < 1:
        raise r.fail(layer, f"{describe(layer)}: a dense layer needs at least 1 unit")
    features = shape[-1]
    params = (features + (1 if layer.use_bias else 0)) * layer.units
    formula = (f"({features}+1)·{layer.units} = {format_count(params)}" if layer.use_bias
               else f"{features}·{layer.units} = {format_count(params)} (no bias)")
    if len(shape) == 2:  # after `rnn … sequences`: the same weights at every step
        steps = shape[0]
        return _Step(
            type="dense",
            output_shape=(steps, layer.units),
            params=params,
            macs=steps * features * layer.units,
            explain=(f"{formula}, the same weights at each of the {steps} steps",),
            keeps_layout=True,
        )
    return _Step(type="dense", output_shape=(layer.units,), params=params, macs=features * layer.units, explain=(formula,))


def _flatten(r: _Resolver, layer: Flatten, shape: Shape) -> _Step:
    size = math.prod(shape)
    explain = (f"{'·'.join(map(str, shape))} = {format_count(size)}",) if len(shape) > 1 else ()
    return _Step(type="flatten", output_shape=(size,), explain=explain)


def _dropout(r: _Resolver, layer: Dropout, shape: Shape) -> _Step:
    if not 0 <= layer.rate < 1:
        raise r.fail(layer, f"dropout {layer.rate}: the rate must be in [0, 1)", hint="e.g. `dropout 0.25` drops a quarter of the units")
    return _Step(type="dropout", output_shape=shape, keeps_layout=True)


def _batchnorm(r: _Resolver, layer: BatchNorm, shape: Shape) -> _Step:
    channels = shape[-1]
    params = 4 * channels
    return _Step(
        type="batch_normalization",
        output_shape=shape,
        params=params,
        trainable_params=2 * channels,
        explain=(
            f"4·{channels} = {format_count(params)}: γ, β, moving mean and variance",
            f"trainable: γ, β = 2·{channels} = {format_count(2 * channels)}",
        ),
        keeps_layout=True,
    )


def _activation(r: _Resolver, layer: ActivationLayer, shape: Shape) -> _Step:
    kind = "leaky_relu" if layer.activation.name == "leakyrelu" else "activation"
    return _Step(type=kind, output_shape=shape, keeps_layout=True)


def _recurrent(r: _Resolver, layer: Recurrent, shape: Shape) -> _Step:
    if len(shape) != 2:
        raise r.fail(layer, f"{layer.cell} needs a sequence input T×F; got {format_shape(shape)} ({LAYOUT_WORDS[len(shape)]})",
                     hint=_sequence_hint(shape, r.input_shape if r.rows else None))
    if layer.units < 1:
        raise r.fail(layer, f"{describe(layer)}: a recurrent layer needs at least 1 unit")
    steps, features = shape
    units, gates = layer.units, GATES[layer.cell]
    biases = (2 if layer.cell == "gru" else 1) if layer.use_bias else 0  # Keras's GRU (reset_after): two biases
    params = gates * units * (units + features + biases)
    factor = f"{gates}·" if gates > 1 else ""
    bias_term = f"+{biases}" if biases else ""
    return _Step(
        type=RECURRENT_TYPES[layer.cell],
        output_shape=(steps, units) if layer.return_sequences else (units,),
        params=params,
        macs=steps * gates * units * (features + units),
        explain=(f"{factor}{units}·({units}+{features}{bias_term}) = {format_count(params)}"
                 + ("" if biases else " (no bias)"),),
    )


def _sequence_hint(shape: Shape, input_shape: Shape | None = None) -> str:
    """How to give a recurrent layer a sequence; ``input_shape`` when layers come before it."""
    if len(shape) == 3 and input_shape is not None and len(input_shape) == 3:
        # `input 26x208` would drop the convolutions: keep them, as 1-D ones along the rows
        height, width, channels = input_shape
        return (f"an image cannot be turned into a sequence between layers; read it row by row from the start, "
                f"`input {height}x{width * channels}` ({height} steps of {width * channels} features), "
                f"and use 1-D convolutions before the recurrent layer (`conv 8 3`)")
    if len(shape) == 3:
        height, width, channels = shape
        return f"to read the image row by row, write `input {height}x{width * channels}` ({height} steps of {width * channels} features)"
    if len(shape) == 1:
        return f"a vector has no time axis; write `input {shape[0]}x1` for {shape[0]} steps of 1 feature"
    return "write the input as T×F (steps × features), e.g. `input 50x1`"


RULES = {
    Conv: _conv,
    Pool: _pool,
    Dense: _dense,
    Flatten: _flatten,
    Dropout: _dropout,
    BatchNorm: _batchnorm,
    ActivationLayer: _activation,
    Recurrent: _recurrent,
}
KINDS = {
    Conv: "conv",
    Pool: "pool",
    Dense: "dense",
    Flatten: "flatten",
    Dropout: "dropout",
    BatchNorm: "batchnorm",
    Recurrent: "rnn",
}

__all__ = ["resolve", "default_loss", "format_shape", "format_count", "describe"]
