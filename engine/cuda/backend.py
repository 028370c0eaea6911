"""The CUDA `Backend`: layers from `engine.cuda`, device-side loss and optimizers, copies in and out."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nnrun.engine.backend import Backend

from . import common


@dataclass(frozen=True)
class CudaBackend(Backend):
    def make_loss(self, name: str, *, fused: str | None = None):
        from .losses import Loss

        return Loss(name, fused=fused, reference=self.reference)

    def make_optimizer(self, spec, params):
        from .optimizers import make_optimizer

        return make_optimizer(spec, params, reference=self.reference)

    def to_device(self, x: np.ndarray):
        return common.to_device(x)

    def to_host(self, a) -> np.ndarray:
        return common.to_host(a)


CUDA = CudaBackend("cuda", reference=False, package="nnrun.engine.cuda")
