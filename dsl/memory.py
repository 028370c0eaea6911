"""How much memory training a `Model` takes, estimated from its shapes before anything is built.

Training keeps, for one batch of B samples (float32, 4 bytes a number):

    weights W and their gradients ∂L/∂W              2 · params
    the optimizer's slots (Adam: m and v; SGD with     2 · params, 1 · params, or 0
    momentum: the velocity; plain SGD: none)
    DropConnect's mask and masked kernel              2 · the layer's kernel
    each layer's output, kept for the backward pass,  B · Σ outputs · 2
    and the gradient flowing back through it
    a max pool's winners (8-byte indices)             B · its outputs · 2
    a recurrent layer's states at every step          B · T · units · (gates + 3)
    a convolution's work arrays (padded input       B · (its input · 2 + its positions ·
    planes, im2col's rows)                            (window · C_in + 1))

Evaluation runs the forward pass alone on batches of 1000.  The estimate is the
larger of the two, plus the parameters; it errs on the high side by design, so that
a run it lets through does not run out of memory halfway.  (The data set itself is
not counted: it is already in memory when the run starts.)
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from .spec import Conv, Dense, Model, OptimizerSpec, Pool, Recurrent

FLOAT = 4  # bytes of a float32
EVAL_BATCH = 1000
GATES = {"rnn": 1, "lstm": 4, "gru": 3}


@dataclass(frozen=True)
class MemoryEstimate:
    weights: int  # the parameters and their gradients
    optimizer: int  # the optimizer's slots
    training_activations: int  # one training batch's outputs, gradients and work arrays
    evaluation_activations: int  # one evaluation batch's outputs (forward only, EVAL_BATCH samples)
    batch: int

    @property
    def activations(self) -> int:
        return max(self.training_activations, self.evaluation_activations)

    @property
    def total(self) -> int:
        return self.weights + self.optimizer + self.activations


def optimizer_slots(optimizer: OptimizerSpec) -> int:
    """Arrays the optimizer keeps per parameter."""
    if optimizer.name == "adam":
        return 2
    return 1 if optimizer.momentum > 0 else 0


def per_sample(model: Model, training: bool) -> int:
    """Bytes one sample costs in a forward pass (and its backward pass when ``training``)."""
    numbers = math.prod(model.input_shape)
    for info in model.layers:
        out = math.prod(info.output_shape)
        statement = info.layer
        kept = out * (2 if getattr(statement, "activation", None) is not None and not isinstance(statement, Recurrent) else 1)
        if isinstance(statement, Pool) and statement.mode == "max":
            kept += 2 * out  # int64 winners
        if isinstance(statement, Recurrent):
            steps = info.input_shape[0]
            kept += steps * statement.units * (GATES[statement.cell] + 3)
        if isinstance(statement, Conv):  # padded input planes, and im2col's rows (positions × window)
            *_, channels = info.input_shape
            window = math.prod(statement.kernel) ** (1 if len(statement.kernel) > 1 else len(info.input_shape) - 1)
            kept += 2 * math.prod(info.input_shape) + math.prod(info.output_shape[:-1]) * (window * channels + 1)
        numbers += kept
    return FLOAT * numbers * (2 if training else 1)


def training_memory(model: Model, batch: int, optimizer: OptimizerSpec | None = None) -> MemoryEstimate:
    """The memory a training run of ``model`` at ``batch`` needs, by the rules in the module docstring."""
    optimizer = optimizer or model.spec.optimizer
    params = model.total_params
    dropconnect = sum(info.params for info in model.layers
                      if isinstance(info.layer, (Dense, Conv)) and info.layer.regularization.dropconnect > 0)
    return MemoryEstimate(
        weights=FLOAT * (2 * params + 2 * dropconnect),
        optimizer=FLOAT * params * optimizer_slots(optimizer),
        training_activations=batch * per_sample(model, training=True),
        evaluation_activations=EVAL_BATCH * per_sample(model, training=False),
        batch=batch,
    )


def inference_memory(model: Model, batch: int = EVAL_BATCH) -> int:
    """Bytes to run ``model`` forward on batches of ``batch`` (eval, predict)."""
    return FLOAT * model.total_params + batch * per_sample(model, training=False)
