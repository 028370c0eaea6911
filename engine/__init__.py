"""Spec → numbers: layers (forward and backward kernels side by side), losses,
optimizers and the network that chains them.

`engine` never prints and never imports `rich` or the CLI.  The backend (plain
NumPy reference, Numba CPU, Numba CUDA) is chosen in one place:
`engine.backend`.
"""
