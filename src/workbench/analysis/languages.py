"""Accept-Language: which of Watson's languages a request asks for, and the built-in class names in it.

Negotiation follows HTTP's (RFC 9110 12.5.4, RFC 4647 lookup): the header is a list of language ranges with
optional quality values; ranges are tried by quality (ties in the order given), `q=0` excludes one, and each
range maps to the nearest language answered: its primary subtag (`ja-JP` -> `ja`, `fr-CH` -> `fr`), Chinese
by script or region (`zh-Hant`, `zh-TW`, `zh-HK`, `zh-MO` -> `zh-tw`; `zh`, `zh-Hans`, `zh-CN`, `zh-SG` ->
`zh-cn`), any Portuguese -> `pt-br`, `*` -> `en`. No header (or an empty one) is English; a header none of
whose ranges maps to a language answered, or that is not a language list, is a 400 (`UnsupportedLanguage`).

Names come from `data/class_names.json` (tools/build_class_names.py: Open Multilingual Wordnet lemmas of the
same WordNet synsets), read once on first use. A name with no lemma in a language stays English and is
reported, so the caller can say so. Only built-in names are in the table: custom class names never pass here.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from ..core.errors import UnsupportedLanguage, echo
from ..core.vocabulary import DEFAULT_LANGUAGE, LANGUAGES
from .hierarchy import load_hierarchy

NAMES_RESOURCE = ("data", "class_names.json")  # under package workbench; built by tools/build_class_names.py
_RANGE = re.compile(r"\*|[a-z]{1,8}(-[a-z0-9]{1,8})*")
_QUALITY = re.compile(r"0(\.\d{0,3})?|1(\.0{0,3})?")
TRADITIONAL_CHINESE = frozenset({"hant", "tw", "hk", "mo"})  # zh subtags written in Traditional characters


def _nearest(language_range: str) -> str | None:
    """The language answered for one range (lower case), or None."""
    if language_range == "*":
        return DEFAULT_LANGUAGE
    if language_range in LANGUAGES:
        return language_range
    primary, *subtags = language_range.split("-")
    if primary == "zh":
        return "zh-tw" if TRADITIONAL_CHINESE.intersection(subtags) else "zh-cn"
    if primary == "pt":
        return "pt-br"
    return primary if primary in LANGUAGES else None


def negotiate(accept_language: str | None) -> str:
    """The language to answer in, from an Accept-Language value (`ja`, `ja-JP`, `fr-CH, fr;q=0.9, en;q=0.8`)."""
    if accept_language is not None and not isinstance(accept_language, str):
        raise UnsupportedLanguage(f"Accept-Language must be text, got {echo(accept_language)}")
    if accept_language is None or not accept_language.strip():
        return DEFAULT_LANGUAGE
    ranked: list[tuple[float, int, str]] = []
    for position, item in enumerate(accept_language.split(",")):
        if not item.strip():
            continue
        tag, *parameters = (part.strip() for part in item.split(";"))
        tag = tag.lower().replace("_", "-")
        quality = 1.0
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            if name.strip().lower() != "q" or not _QUALITY.fullmatch(value.strip()):
                raise UnsupportedLanguage(
                    f"Accept-Language {echo(accept_language)} is not a language list: {echo(item)}"
                )
            quality = float(value)
        if not _RANGE.fullmatch(tag):
            raise UnsupportedLanguage(f"Accept-Language {echo(accept_language)} is not a language list: {echo(item)}")
        if quality > 0:
            ranked.append((-quality, position, tag))
    for _, _, tag in sorted(ranked):
        found = _nearest(tag)
        if found is not None:
            return found
    raise UnsupportedLanguage(
        f"Accept-Language {echo(accept_language)} names no supported language; supported: {', '.join(LANGUAGES)}"
    )


@dataclass(frozen=True)
class Names:
    """One language's names: English name -> name, and each leaf's English type_hierarchy -> (type_hierarchy,
    its steps that stay English)."""

    language: str
    names: dict[str, str]  # only names that have a translation
    hierarchies: dict[str, tuple[str, tuple[str, ...]]]


@lru_cache(maxsize=1)
def _table() -> tuple[tuple[str, ...], list[list[str | None]]]:
    """The packaged names: the languages of its columns, and one row per name (English first), read once."""
    text = resources.files("workbench").joinpath(*NAMES_RESOURCE).read_text(encoding="utf-8")
    document = json.loads(text)
    return tuple(document["languages"]), document["rows"]


@lru_cache(maxsize=len(LANGUAGES))
def names_in(language: str) -> Names:
    """The names of `language` (not English), every leaf's type_hierarchy translated step by step."""
    columns, rows = _table()
    column = columns.index(language) + 1
    names = {str(row[0]): str(row[column]) for row in rows if row[column] is not None}
    return Names(language, names, {path: _hierarchy_in(path, names) for path in load_hierarchy().type_hierarchies})


def _hierarchy_in(path: str, names: dict[str, str]) -> tuple[str, tuple[str, ...]]:
    """A type_hierarchy with each step in `names`' language, and the steps left in English."""
    steps = path.split("/")[1:]
    return "/" + "/".join(names.get(step, step) for step in steps), tuple(s for s in steps if s not in names)


def translate(classes: list[dict], names: Names, untranslated: dict[str, None]) -> list[dict]:
    """Built-in class dicts with their `class` and `type_hierarchy` in `names`' language, in the same order.

    English names that have no translation are added to `untranslated` (an ordered set), in order met.
    At threshold 0 (`default`: 1,754 classes) it costs less than building the entries did (`_hierarchy_entries`).
    """
    table, hierarchies = names.names, names.hierarchies
    translated = []
    for entry in classes:
        out = dict(entry)
        name = table.get(out["class"])
        if name is None:
            untranslated[out["class"]] = None
        else:
            out["class"] = name
        path = out.get("type_hierarchy")
        if path is not None:
            out["type_hierarchy"], english_steps = hierarchies.get(path) or _hierarchy_in(path, table)
            for step in english_steps:
                untranslated[step] = None
        translated.append(out)
    return translated
