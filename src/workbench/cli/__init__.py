"""The command line: argparse verbs, JSON on stdout, `classify-dir`'s results files.

`workbench.cli:main` is the console script, and notebooks zip folders with `zip_folder`: both stay here.
"""

from .demo import zip_folder as zip_folder
from .entry import main as main
