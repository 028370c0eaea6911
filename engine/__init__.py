"""Spec → numbers: layers (forward and backward kernels side by side), losses,
optimizers and the network that chains them.

`engine` never prints and never imports `rich` or the CLI.  The backend (plain
NumPy reference, Numba CPU, Numba CUDA) is chosen in one place:
`engine.backend`.
"""
from .spin import set_spin_environment

set_spin_environment()  # before NumPy's OpenBLAS and numba's OpenMP load (see engine.spin)
