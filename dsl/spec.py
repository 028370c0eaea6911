"""The data model of a `.net` file: frozen dataclasses, no Lark types.

Two levels:

* `Spec` is what the text says, statement by statement (``parse`` builds it).
  `repeat` blocks are already expanded; layers written without a label have
  ``label=None``.
* `Model` is the spec resolved against an input shape (``resolve`` builds it):
  every layer named (``conv_1``, ``pool_1``, ``dense_2`` …), the implicit
  flatten before a `dense` inserted as its own row, output shapes, parameter
  counts, MACs and the explanation of each number.  The engine builds a
  network from a `Model`; the summary prints one.

Shapes are channels-last and exclude the batch axis, as in Keras:
``(H, W, C)`` images, ``(T, F)`` sequences, ``(D, H, W, C)`` volumes, ``(N,)`` vectors.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Union

Shape = tuple[int, ...]


@dataclass(frozen=True)
class Position:
    """Where a statement or value starts: 1-based line and column."""

    file: str  # the spec's file name, or "<inline>" for a string on the command line
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


# --------------------------------------------------------------------------- layers


@dataclass(frozen=True)
class Activation:
    """relu, sigmoid, tanh, softmax, linear, leakyrelu (with slope ``alpha``)."""

    name: Literal["relu", "sigmoid", "tanh", "softmax", "linear", "leakyrelu"]
    alpha: float = 0.3  # leaky ReLU slope for x < 0 (Keras's default 0.3)


@dataclass(frozen=True)
class Regularization:
    """Options of `dense` and `conv`: ``l1 λ``, ``l2 λ``, ``dropconnect P``."""

    l1: float = 0.0
    l2: float = 0.0
    dropconnect: float = 0.0


@dataclass(frozen=True)
class Dense:
    units: int
    activation: Activation | None = None
    regularization: Regularization = Regularization()
    use_bias: bool = True  # `bias false`: no bias term (Keras's use_bias=False)
    label: str | None = None
    pos: Position | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Conv:
    """``conv F K [stride S] [pad valid|same|P] [act]``.

    ``kernel``, ``stride`` and (explicit) ``padding`` are kept as written:
    a 1-tuple is a bare number, to be repeated over the input's spatial rank.
    """

    filters: int
    kernel: tuple[int, ...]
    stride: tuple[int, ...] = (1,)
    padding: Union[Literal["valid", "same"], tuple[int, ...]] = "valid"
    activation: Activation | None = None
    regularization: Regularization = Regularization()
    use_bias: bool = True  # `bias false`: no bias term (Keras's use_bias=False)
    label: str | None = None
    pos: Position | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Pool:
    """``pool max|avg K [stride S] [pad …]`` or ``pool max|avg global``.

    ``stride=None`` means "equal to the kernel" (Keras's default).
    For global pooling ``kernel`` and ``stride`` are None.
    """

    mode: Literal["max", "avg"]
    kernel: tuple[int, ...] | None
    stride: tuple[int, ...] | None = None
    padding: Union[Literal["valid", "same"], tuple[int, ...]] = "valid"
    is_global: bool = False
    label: str | None = None
    pos: Position | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Flatten:
    implicit: bool = False  # True when inserted before a dense layer by `resolve`
    label: str | None = None
    pos: Position | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Dropout:
    rate: float  # probability of dropping a unit, in [0, 1)
    label: str | None = None
    pos: Position | None = field(default=None, compare=False)


@dataclass(frozen=True)
class BatchNorm:
    """Per-channel (last axis) normalization, Keras defaults."""

    momentum: float = 0.99
    epsilon: float = 1e-3
    label: str | None = None
    pos: Position | None = field(default=None, compare=False)


@dataclass(frozen=True)
class ActivationLayer:
    activation: Activation
    label: str | None = None
    pos: Position | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Recurrent:
    """``rnn N [act] [sequences]``, ``lstm N [sequences]``, ``gru N [sequences]``."""

    cell: Literal["rnn", "lstm", "gru"]
    units: int
    activation: Activation = Activation("tanh")
    return_sequences: bool = False
    use_bias: bool = True  # `bias false`: no bias term (Keras's use_bias=False)
    label: str | None = None
    pos: Position | None = field(default=None, compare=False)


Layer = Union[Dense, Conv, Pool, Flatten, Dropout, BatchNorm, ActivationLayer, Recurrent]


# ------------------------------------------------------------------ training settings


@dataclass(frozen=True)
class LossSpec:
    name: Literal["cce", "bce", "mse", "mae"]
    pos: Position | None = field(default=None, compare=False)


@dataclass(frozen=True)
class OptimizerSpec:
    """Defaults are Keras's: SGD lr 0.01; Adam lr 0.001, β1 0.9, β2 0.999, ε 1e-7."""

    name: Literal["sgd", "adam"] = "adam"
    lr: float = 0.001
    momentum: float = 0.0
    nesterov: bool = False
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-7
    clip: float | None = None  # clip each gradient tensor's norm to this value
    pos: Position | None = field(default=None, compare=False)


@dataclass(frozen=True)
class TrainSpec:
    epochs: int = 5
    batch: int = 32
    validation: float = 0.0  # fraction of the training split held out
    patience: int | None = None  # early stopping on validation loss
    seed: int | None = None
    pos: Position | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Spec:
    """A whole `.net` file."""

    input_shape: Shape | None
    layers: tuple[Layer, ...]
    loss: LossSpec | None = None  # None: chosen by `resolve` (cce after softmax, …)
    optimizer: OptimizerSpec = OptimizerSpec()
    train: TrainSpec = TrainSpec()
    source: str = ""
    filename: str = "<inline>"
    input_pos: Position | None = field(default=None, compare=False)


# ------------------------------------------------------------------ resolved model


@dataclass(frozen=True)
class LayerInfo:
    """One row of the summary; one layer of the network the engine builds."""

    name: str  # label, or kind_N as Keras would number it
    type: str  # Keras's snake_case class name: "conv2d", "max_pooling2d", "dense", …
    layer: Layer  # the statement (an implicit Flatten for the inserted row)
    input_shape: Shape
    output_shape: Shape
    params: int
    trainable_params: int
    macs: int  # forward multiply-accumulates per sample
    receptive_field: tuple[int, ...] | None = None  # spatial layers only
    explain: tuple[str, ...] = ()  # formulas with the numbers filled in
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class Model:
    spec: Spec
    input_shape: Shape
    layers: tuple[LayerInfo, ...]
    loss: Literal["cce", "bce", "mse", "mae"]
    warnings: tuple[str, ...] = ()

    @property
    def output_shape(self) -> Shape:
        return self.layers[-1].output_shape if self.layers else self.input_shape

    @property
    def total_params(self) -> int:
        return sum(info.params for info in self.layers)

    @property
    def trainable_params(self) -> int:
        return sum(info.trainable_params for info in self.layers)

    @property
    def non_trainable_params(self) -> int:
        return self.total_params - self.trainable_params

    @property
    def macs(self) -> int:
        return sum(info.macs for info in self.layers)
