"""``python -m wslib.reproduce``: the command line of :mod:`wslib.reproduce`."""
import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
