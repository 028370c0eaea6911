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


def _find_siblings_in_a_checkout() -> None:
    """In the repository (not installed, or Python started in its root, where this folder
    hides an installed copy), `nnrun.dsl` and `nnrun.engine` are the sibling folders
    dsl/ and engine/: a finder for exactly those two names says so.  An installed
    package has them inside and needs none."""
    import sys
    from importlib.util import spec_from_file_location
    from pathlib import Path

    here = Path(__file__).resolve().parent
    root = here.parent
    if (here / "dsl").is_dir() or not (root / "dsl" / "grammar.lark").is_file():
        return

    class CheckoutFinder:
        def find_spec(self, fullname: str, path=None, target=None):
            if fullname not in ("nnrun.dsl", "nnrun.engine"):
                return None
            folder = root / fullname.partition(".")[2]
            return spec_from_file_location(fullname, folder / "__init__.py", submodule_search_locations=[str(folder)])

    if not any(type(finder).__name__ == "CheckoutFinder" for finder in sys.meta_path):
        sys.meta_path.insert(0, CheckoutFinder())


_find_siblings_in_a_checkout()
