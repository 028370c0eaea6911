"""The network: a resolved `Model` turned into a chain of layers, a loss and an optimizer.

    forward:   a₀ = x,  a_k = layer_k(a_(k−1))            (the last a is the prediction)
    loss:      L = loss(a_last, y) + Σ_k penalty_k          (l1/l2 terms of dense/conv)
    backward:  ∂L/∂a_(k−1) = layer_k.backward(∂L/∂a_k), from the last layer to the first
    update:    every parameter, by the optimizer, in place

An activation written on a ``dense`` or ``conv`` statement (``dense 10 softmax``)
becomes its own step right after that layer, the same `Activation` class as a
standalone ``softmax`` line.  (``rnn N tanh`` is different: its activation acts
inside the recurrence, so the recurrent layer applies it itself.)  When the last step is softmax and the loss cce (or sigmoid and bce), the
loss takes the logits instead and applies the activation itself — the fused,
numerically stable form of `engine.losses`.

Three shortcuts, the same arithmetic: on the cpu backend a dense or conv layer
runs the relu/tanh/sigmoid/linear step after it itself (`Dense.fuse_activation`,
`Conv.fuse_activation`); a small conv → relu → max pool block that the pool
tiles becomes one step that never stores the convolution (`engine.layers.conv_block`);
and the first layer with parameters skips ∂L/∂x of the data (``input_grad =
False``: nothing uses it).  ``layers`` still lists
every step; ``steps`` is what a training or evaluation pass runs.

Everything random (initialisation, dropout and DropConnect masks) comes from one
``np.random.default_rng(seed)``, so a seed makes a run bit-for-bit repeatable.
Work is done per batch, never per sample, in float32.

The backend decides where the arrays live: each batch goes through
``backend.to_device`` before the first layer, and what the caller reads back
(predictions, metrics, weights) through ``backend.to_host`` — the identity on
the CPU, one copy each way on CUDA; weights, gradients and optimizer state stay
where the backend put them.  (``load_weights`` assigns with ``array[...] = …``,
which device arrays also accept.)
"""
from __future__ import annotations

import numpy as np

from nnrun.dsl.spec import ActivationLayer, Conv, Dense, LayerInfo, Model, OptimizerSpec

from . import metrics
from .backend import get_backend
from .layers.base import Layer
from .layers.conv_block import ConvBlock, fusable
from .losses import Loss
from .threads import threads

FUSABLE = ("linear", "relu", "tanh", "sigmoid")  # activation steps a dense layer can run itself
TASKS = {"cce": "classification", "bce": "binary", "mse": "regression", "mae": "regression"}


def activation_step(info: LayerInfo) -> LayerInfo:
    """The row for the activation written on ``info``'s statement, as a layer of its own."""
    activation = info.layer.activation
    return LayerInfo(
        name=f"{info.name}_{activation.name}",
        type="activation",
        layer=ActivationLayer(activation),
        input_shape=info.output_shape,
        output_shape=info.output_shape,
        params=0,
        trainable_params=0,
        macs=0,
    )


class Network:
    def __init__(
        self,
        model: Model,
        *,
        seed: int | None = None,
        backend: str = "cpu",
        optimizer: OptimizerSpec | None = None,
    ) -> None:
        self.model = model
        self.backend = get_backend(backend)
        self.device = self.backend.name
        self.task = TASKS[model.loss]  # "classification", "binary" or "regression"
        self.rng = np.random.default_rng(seed)

        self.layers: list[Layer] = []  # the steps, in order, activation steps included
        for info in model.layers:
            self.layers.append(self.backend.make_layer(info, self.rng))
            if isinstance(info.layer, (Dense, Conv)) and info.layer.activation is not None:
                self.layers.append(self.backend.make_layer(activation_step(info), self.rng))

        last = self.layers[-1] if self.layers else None
        last_activation = getattr(last, "function", None)
        fused = Loss.fuses(model.loss, last_activation)
        self.loss = self.backend.make_loss(model.loss, fused=fused)
        # with a fused loss, training and evaluation stop before the last step
        self.body = self.layers[:-1] if fused else self.layers
        self.steps = self._shortcuts(self.body)  # what train_step and evaluate run
        self.predict_steps = self.steps + self.layers[len(self.body):]  # + the activation the loss fused
        threads()  # the engine's thread policy, unless the run has set it (engine.threads)

        self.metric_name, self.metric_sum = metrics.BY_TASK[self.task]
        # `bias false` (Keras's use_bias=False): the layer keeps a bias of zeros that its kernels add,
        # but it is no parameter — never updated, saved or counted
        self.no_bias = {f"{info.name}/bias" for info in model.layers if getattr(info.layer, "use_bias", True) is False}
        self.params = {key: p for key, p in self._arrays("params").items() if key not in self.no_bias}
        self.optimizer = self.backend.make_optimizer(optimizer or model.spec.optimizer, self.params)

    def measure_as_classifier(self) -> None:
        """Report accuracy, not the mean bias error, for a classifier trained with mse or mae
        (the course's XOR network uses mse): argmax against the one-hot targets, or the 0.5
        threshold for one output."""
        if self.task != "regression":
            return
        self.task = "binary" if self.model.output_shape[-1] == 1 else "classification"
        self.metric_name, self.metric_sum = metrics.ONE_HOT[self.task]

    def _shortcuts(self, body: list[Layer]) -> list[Layer]:
        """``body`` with dense+activation pairs fused (cpu backend) and the first
        layer with parameters told not to compute ∂L/∂x."""
        for layer in body:
            if layer.params:
                if hasattr(layer, "input_grad"):
                    layer.input_grad = False
                break
        if self.backend.name != "cpu":
            return list(body)
        steps: list[Layer] = []
        body = list(body)
        while body:
            layer = body.pop(0)
            if len(body) >= 2 and fusable(layer, body[0], body[1]):  # conv → relu → max pool
                steps.append(ConvBlock(layer, body.pop(0), body.pop(0)))
                continue
            previous = steps[-1] if steps else None
            function = getattr(layer, "function", None)
            if (hasattr(previous, "fuse_activation") and previous.activation is None
                    and function in FUSABLE and previous.info.output_shape == layer.info.input_shape):
                previous.fuse_activation(function)
            else:
                steps.append(layer)
        return steps

    # ------------------------------------------------------------------ passes

    def _input(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=np.float32)
        if x.shape[1:] != tuple(self.model.input_shape):
            raise ValueError(
                f"input of shape {x.shape[1:]} per sample; this network takes {tuple(self.model.input_shape)}"
            )
        return x

    def _forward(self, layers: list[Layer], x: np.ndarray, training: bool) -> np.ndarray:
        for layer in layers:
            x = layer.forward(x, training)
        return x

    def penalty(self) -> float:
        return float(sum(layer.penalty() for layer in self.layers))

    def train_step(self, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        """One batch: forward, loss, backward, update.

        Returns (mean loss incl. penalties, metric summed over the batch): the
        number of correct samples for classification, Σ per-sample bias for regression.
        """
        output = self._forward(self.steps, self.backend.to_device(self._input(x)), training=True)
        loss, grad, prediction = self.loss(output, y)
        loss += self.penalty()
        for layer in reversed(self.steps):
            grad = layer.backward(grad)
            if grad is None:  # the first layer with parameters: nothing before it learns
                break
        grads = {key: g for key, g in self._arrays("grads").items() if key not in self.no_bias}
        self.optimizer.step(grads)
        return loss, self.metric_sum(self.backend.to_host(prediction), y)

    def evaluate(self, x: np.ndarray, y: np.ndarray, batch: int = 1000) -> dict[str, float]:
        """Mean loss (incl. penalties) and accuracy or MBE over all of ``x``, at inference."""
        x = self._input(x)
        count = x.shape[0]
        if count == 0:
            raise ValueError("evaluate needs at least one sample")
        y = np.asarray(y)
        loss_sum = metric_sum = 0.0
        for start in range(0, count, batch):
            xb, yb = x[start : start + batch], y[start : start + batch]
            output = self._forward(self.steps, self.backend.to_device(xb), training=False)
            loss, _, prediction = self.loss(output, yb)
            loss_sum += loss * xb.shape[0]
            metric_sum += self.metric_sum(self.backend.to_host(prediction), yb)
        return {"loss": loss_sum / count + self.penalty(), self.metric_name: metric_sum / count}

    def predict(self, x: np.ndarray, batch: int = 1000) -> np.ndarray:
        """Outputs at inference: probabilities after softmax/sigmoid, raw values for regression."""
        x = self._input(x)
        outputs = [self.backend.to_host(self._forward(self.predict_steps, self.backend.to_device(x[start : start + batch]),
                                                      training=False))
                   for start in range(0, x.shape[0], batch)]
        if not outputs:
            return np.zeros((0, *self.model.output_shape), dtype=np.float32)
        return np.concatenate(outputs)

    # ----------------------------------------------------------------- weights

    def _arrays(self, kind: str) -> dict[str, np.ndarray]:
        """Every layer's ``params``, ``grads`` or ``state`` arrays, keyed "layer/name"."""
        return {f"{layer.name}/{k}": v for layer in self.layers for k, v in getattr(layer, kind).items()}

    def _weights(self) -> dict[str, np.ndarray]:
        """The arrays a model file holds: parameters and state (batch norm's moving statistics)."""
        return {key: v for key, v in {**self._arrays("params"), **self._arrays("state")}.items() if key not in self.no_bias}

    def weights(self) -> dict[str, np.ndarray]:
        """Copies of every parameter and state array, keyed "layer/param"."""
        return {key: self.backend.to_host(v).copy() for key, v in self._weights().items()}

    def load_weights(self, weights: dict[str, np.ndarray]) -> None:
        """Copy ``weights`` into the network's arrays (in place); ValueError on any mismatch."""
        own = self._weights()
        missing = sorted(set(own) - set(weights))
        unexpected = sorted(set(weights) - set(own))
        if missing:
            raise ValueError(f"weights do not fit this network: missing {', '.join(missing)}")
        if unexpected:
            raise ValueError(f"weights do not fit this network: unexpected {', '.join(unexpected)}")
        for key, array in own.items():
            if np.shape(weights[key]) != array.shape:
                raise ValueError(
                    f"weights do not fit this network: {key} has shape {np.shape(weights[key])}, "
                    f"this network needs {array.shape}"
                )
        for key, array in own.items():
            array[...] = np.asarray(weights[key], dtype=np.float32)

    def optimizer_state(self) -> dict[str, np.ndarray]:
        return self.optimizer.state()

    def load_optimizer_state(self, state: dict[str, np.ndarray]) -> None:
        self.optimizer.load_state(state)
