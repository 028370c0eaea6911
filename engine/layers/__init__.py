"""One layer, one module: the formula in the docstring, the forward and backward
kernels side by side, a plain-NumPy reference (the test oracle), then a small
class that owns the arrays."""
