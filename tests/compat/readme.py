"""The README's marked snippets (`<!-- snippet:NAME -->` before a fenced block), which the compat tests run verbatim."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"
SNIPPET = re.compile(r"<!-- snippet:([\w-]+) -->\s*```(\w+)\n(.*?)```", re.S)


def readme_snippets() -> dict[str, str]:
    """The snippets by name."""
    return {name: body for name, _lang, body in SNIPPET.findall(README.read_text())}
