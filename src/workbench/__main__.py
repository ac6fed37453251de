"""`python -m workbench` runs the CLI."""

from .cli.entry import main

raise SystemExit(main())
