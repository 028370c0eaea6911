"""nnrun, the program: the command line, the rich views, data sets and the training loop.

What is installed is this one package: `nnrun.dsl` (the language, from the
repository's `dsl/` folder), `nnrun.engine` (the numbers, from `engine/`) and the
program's own modules.  Only the program prints.  Importing `nnrun` is cheap: it
sets the thread libraries' spin limits (`nnrun.spin`, before anything loads NumPy)
and nothing else, so the calculator path (`nnrun summary`, `nnrun check`) never
imports numba.
"""
from nnrun.spin import set_spin_environment

set_spin_environment()  # before anything loads NumPy (see nnrun.spin)

__version__ = "0.1.0"
