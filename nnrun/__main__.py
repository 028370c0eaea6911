"""`python -m nnrun` is the same program as `nnrun`."""
import sys

from nnrun.cli import main

sys.exit(main())
