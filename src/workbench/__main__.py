"""`python -m workbench` runs the CLI."""

from .cli.commands import main

raise SystemExit(main())
