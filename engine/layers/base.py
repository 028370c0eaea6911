"""The interface every layer of the engine implements.

Arrays are float32, C-contiguous, batch first, channels last:
``x`` has shape ``(B, *info.input_shape)`` and ``forward`` returns
``(B, *info.output_shape)``.
"""
from __future__ import annotations

import numpy as np

from nnrun.dsl.spec import LayerInfo


class Layer:
    """A layer owns its weights, their gradients, and what its backward pass needs.

    * ``params``: trainable arrays under Keras's names and layouts
      (``kernel`` ``(in, units)`` for dense, ``(*K, C_in, F)`` for conv, ``bias``,
      ``gamma``, ``beta``, …).
    * ``grads``: same keys and shapes; ``backward`` overwrites them (it does not
      accumulate), including the gradient of the layer's l1/l2 penalty.
    * ``state``: non-trainable arrays saved with the model (batch norm's
      ``moving_mean`` and ``moving_variance``).
    """

    def __init__(self, info: LayerInfo, rng: np.random.Generator) -> None:
        self.info = info
        self.name = info.name
        self.rng = rng  # drives initialisation and train-time randomness (dropout)
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.state: dict[str, np.ndarray] = {}

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        raise NotImplementedError

    def backward(self, dy: np.ndarray) -> np.ndarray:
        """Given ∂L/∂y of the last ``forward(…, training=True)``, set ``grads`` and return ∂L/∂x."""
        raise NotImplementedError

    def penalty(self) -> float:
        """The l1/l2 term this layer adds to the loss (0 for most layers)."""
        return 0.0
