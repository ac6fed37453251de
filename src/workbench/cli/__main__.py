"""`python -m workbench.cli`: the console script without the installed `workbench` command."""

import sys

from .entry import main

if __name__ == "__main__":
    sys.exit(main())
