"""The README's fenced code blocks, with the markers that say how a test treats each one.

Markers are HTML comments (invisible on GitHub) on the line before a block:
`<!-- snippet:NAME -->` names a block the compat tests run verbatim; `<!-- not-run: REASON -->`
says why a block is never run by a test. `<!-- section:NAME -->` ... `<!-- /section:NAME -->`
brackets a section that is edited as one piece.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"
FENCE = re.compile(r"^```(\S*)\s*$")
MARKER = re.compile(r"^<!--\s*(snippet|not-run):(.*?)-->\s*$")
SECTION = re.compile(r"^<!--\s*(/?)section:([\w-]+)\s*-->\s*$")


@dataclass(frozen=True)
class Block:
    """One fenced block: where it is, its language and text, and its marker (if any)."""

    line: int  # 1-based line of the opening fence
    heading: str  # the nearest `#` heading above it
    sections: tuple[str, ...]  # the `section:` brackets it lies in
    lang: str  # "" for an untagged fence
    body: str
    snippet: str | None = None
    not_run: str | None = None  # the reason, stripped ("" when the marker gives none)

    @property
    def label(self) -> str:
        """A short name for test ids and reports: line, language, first line."""
        first = self.body.strip().splitlines()[0] if self.body.strip() else ""
        return f"L{self.line}-{self.lang or 'text'}: {first[:60]}"


def readme_blocks(text: str | None = None) -> list[Block]:
    """Every fenced block of the README, in order."""
    lines = (README.read_text() if text is None else text).splitlines()
    blocks: list[Block] = []
    heading, sections, marker = "", [], None
    index = 0
    while index < len(lines):
        line = lines[index]
        fence = FENCE.match(line)
        if fence:
            end = next((j for j in range(index + 1, len(lines)) if lines[j].strip() == "```"), None)
            if end is None:
                raise ValueError(f"README line {index + 1}: fence never closed")
            body = "\n".join(lines[index + 1 : end]) + "\n"
            kind, value = marker or (None, None)
            blocks.append(
                Block(
                    index + 1,
                    heading,
                    tuple(sections),
                    fence.group(1),
                    body,
                    snippet=value if kind == "snippet" else None,
                    not_run=value if kind == "not-run" else None,
                )
            )
            marker, index = None, end + 1
            continue
        if line.startswith("#"):
            heading = line.lstrip("#").strip()
        if found := MARKER.match(line.strip()):
            marker = (found.group(1), found.group(2).strip())
        elif found := SECTION.match(line.strip()):
            closing, name = found.groups()
            if closing:
                sections.remove(name)
            else:
                sections.append(name)
        elif line.strip():
            marker = None  # a marker applies only to the block right after it
        index += 1
    return blocks


def readme_snippets() -> dict[str, str]:
    """The named snippets (`<!-- snippet:NAME -->`), by name."""
    return {b.snippet: b.body for b in readme_blocks() if b.snippet}
