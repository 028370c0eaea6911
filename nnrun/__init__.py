"""nnrun, the program: the command line, the rich views, data sets and the training loop.

Only this package prints.  Importing it is cheap: the calculator path
(`nnrun summary`, `nnrun check`) never imports numba.
"""
from engine.spin import set_spin_environment

set_spin_environment()  # before anything loads NumPy (see engine.spin)

__version__ = "0.1.0"
