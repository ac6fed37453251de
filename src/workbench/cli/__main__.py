"""`python -m workbench.cli`: the console script without the installed `workbench` command."""

import sys

from .commands import main

if __name__ == "__main__":
    sys.exit(main())
