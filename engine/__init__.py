"""Model → numbers: layers (forward and backward kernels side by side), losses,
optimizers and the network that chains them.  Installed as `nnrun.engine`.

`nnrun.engine` never prints and never imports `rich` or the command line.  The
backend (plain NumPy reference, Numba CPU, Numba CUDA) is chosen in one place:
`nnrun.engine.backend`.  The thread libraries' spin limits are set before NumPy
loads by the package above it (`nnrun.spin`, run by `import nnrun`), which every
import of `nnrun.engine` goes through.
"""
