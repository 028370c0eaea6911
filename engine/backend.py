"""The one place where the backend is chosen.

* ``"cpu"`` (default): the Numba kernels (``@njit(cache=True)``), with NumPy's
  BLAS for the big matrix products.
* ``"reference"``: the plain-NumPy functions next to each kernel — slow, obviously
  right, the oracle the tests compare the kernels with.
* ``"cuda"``: ``numba.cuda`` kernels (`nnrun.engine.cuda`), every array on the GPU;
  `BackendUnavailable` with one sentence when there is no usable GPU.  That package
  is loaded by name (`BACKEND_LOADERS`), so this module never imports it.

How a backend reaches the kernels: every layer class, the `Loss` and the
optimizers take a keyword ``reference: bool = False`` and call either the
kernel or its reference.  A `Backend` maps each statement type of
`dsl.spec` to its layer class (the module of that name in its ``package``)
and passes its ``reference`` flag on.

Where the arrays live is the backend's business too: the network hands each
batch to `Backend.to_device` and reads predictions and weights through
`Backend.to_host` — both the identity on the CPU, copies to and from GPU
memory on CUDA.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass

import numpy as np

from nnrun.dsl import spec as S
from nnrun.dsl.spec import LayerInfo, OptimizerSpec

from .layers.base import Layer


class BackendUnavailable(RuntimeError):
    """The backend asked for cannot run here (not implemented, or no device)."""


# statement type → "module:Class" under engine.layers (imported on first use, so a
# layer module that is missing only matters to a network that uses that layer)
LAYER_CLASSES: dict[type, str] = {
    S.Dense: "dense:Dense",
    S.Conv: "conv:Conv",
    S.Pool: "pool:Pool",
    S.Flatten: "flatten:Flatten",
    S.Dropout: "dropout:Dropout",
    S.BatchNorm: "batchnorm:BatchNorm",
    S.ActivationLayer: "activations:Activation",
    S.Recurrent: "recurrent:Recurrent",
}


@dataclass(frozen=True)
class Backend:
    name: str  # "cpu", "reference" or "cuda"
    reference: bool  # True: plain NumPy everywhere
    package: str = "nnrun.engine.layers"  # where the layer modules are

    def layer_class(self, statement: S.Layer) -> type[Layer]:
        kind = type(statement).__name__
        try:
            module_name, class_name = LAYER_CLASSES[type(statement)].split(":")
        except KeyError:
            raise BackendUnavailable(f"no layer implements the statement {kind}") from None
        try:
            module = importlib.import_module(f"{self.package}.{module_name}")
        except ModuleNotFoundError as error:
            if error.name != f"{self.package}.{module_name}":
                raise
            raise BackendUnavailable(f"{kind} layers are not implemented yet") from None
        return getattr(module, class_name)

    def make_layer(self, info: LayerInfo, rng: np.random.Generator) -> Layer:
        return self.layer_class(info.layer)(info, rng, reference=self.reference)

    def make_loss(self, name: str, *, fused: str | None = None):
        from .losses import Loss

        return Loss(name, fused=fused, reference=self.reference)

    def make_optimizer(self, spec: OptimizerSpec, params: dict[str, np.ndarray]):
        from .optimizers import make_optimizer

        return make_optimizer(spec, params, reference=self.reference)

    def to_device(self, x: np.ndarray) -> np.ndarray:
        """A batch of input, where this backend's layers want it (the CPU: where it already is)."""
        return x

    def to_host(self, a) -> np.ndarray:
        """An array of this backend's as a NumPy array (on the CPU: the array itself, no copy)."""
        return a


BACKENDS = {"cpu": Backend("cpu", reference=False), "reference": Backend("reference", reference=True)}

# Backends in packages of their own, as "module:function" returning the `Backend`
# (or raising `BackendUnavailable`).  This name is the one seam between the core and
# the CUDA kernels: `nnrun.engine.cuda` imports this module for `Backend` and
# `BackendUnavailable`, and this module only names it, so the two never import each
# other, and a machine without numba's CUDA support never loads any of it.
BACKEND_LOADERS = {"cuda": "nnrun.engine.cuda:load_backend"}


def get_backend(name: str = "cpu") -> Backend:
    """The backend called ``name``: "cpu" (default), "reference" or "cuda"."""
    if name in BACKENDS:
        return BACKENDS[name]
    if name in BACKEND_LOADERS:
        module_name, function = BACKEND_LOADERS[name].split(":")
        return getattr(importlib.import_module(module_name), function)()
    choices = ", ".join([*BACKENDS, *BACKEND_LOADERS])
    raise ValueError(f"unknown backend {name!r}; choose one of: {choices}")
