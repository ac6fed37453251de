"""Build `src/workbench/data/class_names.json`: the `default` and `food` class names in Watson's 10 other languages.

Every name of the built-in models is a WordNet 3.0 noun synset (the 1,000 ImageNet leaves and the hierarchy
above them, `tools/build_general_data.py`) or a colour word, and the Open Multilingual Wordnet keys its lemmas
by those same synsets: each translation is a lemma some wordnet or Wiktionary gives for that synset, never a
machine translation. Where no source has the synset, the language has no name for it and the model answers
in English (classify says so in a warning).

Run:  python tools/build_class_names.py OMW_DATA_DIR [REFERENCE_DIR]

OMW_DATA_DIR is a checkout (or `git archive`) of github.com/omwn/omw-data: its `wns/<project>/*.tab` files
(`<offset>-<pos> TAB <lang>:lemma TAB <lemma>`) are read; a file that is missing or empty (the Japanese
WordNet and MCR Spanish files are over 4 MiB, and some copies leave them out) is skipped with a note, and its
language keeps the other sources. REFERENCE_DIR is as for build_general_data.py. Chinese (Traditional) needs
the `opencc` package at build time only (`pip install --target DIR opencc`, then PYTHONPATH=DIR).
Prints the coverage table the README shows.
"""

from __future__ import annotations

import collections
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import build_general_data as general

OUTPUT_PATH = Path(__file__).resolve().parents[1] / "src" / "workbench" / "data" / "class_names.json"
LANGUAGES = ("ar", "de", "es", "fr", "it", "ja", "ko", "pt-br", "zh-cn", "zh-tw")  # Watson's, English aside
MAX_LEMMA_CHARS = 40  # longer "lemmas" are glosses that slipped into a wordnet (WOLF's Granny Smith is a sentence)
MAX_LEMMA_WORDS = 5


@dataclass(frozen=True)
class Source:
    """One tab file of omw-data: where, what it is, under which licence (from its folder's LICENSE/README)."""

    path: str
    name: str
    licence: str
    convert: str | None = None  # an OpenCC configuration applied to its lemmas (script conversion, not translation)
    ordered: bool = False  # lists a synset's main word first (Wiktionary's translation tables); wordnets sort or not


WIKTIONARY = "Wiktionary translations linked to WordNet (Bond and Foster 2013)"
WIKT_LICENCE = "CC BY-SA 3.0 (Wiktionary)"
COW = Source("wns/cow/wn-data-cmn.tab", "Chinese Open Wordnet", "WordNet licence (wns/cow/LICENSE)", "t2s")
# Sources per language, best first: a lemma several sources give wins, then the order here.
SOURCES: dict[str, tuple[Source, ...]] = {
    "ar": (
        Source("wns/arb/wn-nodia-arb.tab", "Arabic WordNet (AWN v2), without diacritics", "CC BY-SA 3.0"),
        Source("wns/wikt/wn-wikt-arb.tab", WIKTIONARY, WIKT_LICENCE, ordered=True),
    ),
    "de": (
        Source("wns/wikt/wn-wikt-deu.tab", WIKTIONARY, WIKT_LICENCE, ordered=True),
    ),  # omw-data has no German wordnet
    "es": (
        Source("wns/mcr/wn-data-spa.tab", "Multilingual Central Repository 3.0 (Spanish)", "CC BY 3.0"),
        Source("wns/wikt/wn-wikt-spa.tab", WIKTIONARY, WIKT_LICENCE, ordered=True),
    ),
    "fr": (
        Source("wns/fra/wn-data-fra.tab", "WOLF (Wordnet Libre du Français)", "CeCILL-C"),
        Source("wns/wikt/wn-wikt-fra.tab", WIKTIONARY, WIKT_LICENCE, ordered=True),
    ),
    "it": (
        Source("wns/ita/wn-data-ita.tab", "MultiWordNet (Italian)", "CC BY 3.0"),
        Source("wns/iwn/wn-data-ita.tab", "ItalWordNet", "ODC-BY 1.0"),
        Source("wns/wikt/wn-wikt-ita.tab", WIKTIONARY, WIKT_LICENCE, ordered=True),
    ),
    "ja": (
        Source("wns/jpn/wn-data-jpn.tab", "Japanese WordNet", "Japanese WordNet licence (BSD-like)"),
        Source("wns/wikt/wn-wikt-jpn.tab", WIKTIONARY, WIKT_LICENCE, ordered=True),
    ),
    "ko": (
        Source("wns/wikt/wn-wikt-kor.tab", WIKTIONARY, WIKT_LICENCE, ordered=True),
    ),  # omw-data has no Korean wordnet
    "pt-br": (
        Source("wns/por/wn-data-por.tab", "OpenWordnet-PT (Brazilian Portuguese)", "CC BY-SA"),
        Source("wns/wikt/wn-wikt-por.tab", WIKTIONARY, WIKT_LICENCE, ordered=True),
    ),
    "zh-cn": (COW, Source("wns/wikt/wn-wikt-cmn.tab", WIKTIONARY, WIKT_LICENCE, "t2s", ordered=True)),
    "zh-tw": (
        Source("wns/cwn/wn-data-qcn.tab", "Chinese Wordnet (Taiwan)", "WordNet licence (wns/cwn/LICENSE)"),
        Source(COW.path, COW.name + ", in Traditional characters (OpenCC s2twp)", COW.licence, "s2twp"),
        Source(
            "wns/wikt/wn-wikt-cmn.tab",
            WIKTIONARY + ", in Traditional characters (OpenCC s2twp)",
            WIKT_LICENCE,
            "s2twp",
            ordered=True,
        ),
    ),
}

# The colour words of the `default` model (workbench.analysis.colors.COLOR_ANCHORS_RGB), each as the WordNet 3.0 noun
# synset that names that colour (ids as in /work/shared/reference/imagenet/words.txt). WordNet has no "dark green"
# nor "light blue": bottle green ("a dark shade of green") and azure/sky-blue ("a light shade of blue") stand in.
COLOR_SYNSETS: dict[str, str] = {
    "black color": "n04960277",  # black, blackness, inkiness
    "charcoal color": "n04962240",  # charcoal, charcoal grey, oxford grey
    "gray color": "n04961691",  # gray, grayness, grey
    "silver color": "n04962062",  # ash grey, silver, silver grey
    "white color": "n04960729",  # white, whiteness
    "ivory color": "n04961331",  # bone, ivory, pearl, off-white
    "beige color": "n04973291",  # beige, ecru
    "tan color": "n04973020",  # tan, topaz
    "light brown color": "n04972801",  # light brown
    "brown color": "n04971928",  # brown, brownness
    "maroon color": "n04964878",  # maroon
    "red color": "n04962784",  # red, redness
    "pink color": "n04970916",  # pink
    "orange color": "n04965179",  # orange, orangeness
    "yellow color": "n04965661",  # yellow, yellowness
    "olive green color": "n04968139",  # olive green
    "green color": "n04967191",  # green, greenness, viridity
    "dark green color": "n04967882",  # bottle green: a dark shade of green
    "teal color": "n04968426",  # bluish green, blue green, teal
    "light blue color": "n04969242",  # azure, cerulean, sky-blue: a light shade of blue
    "blue color": "n04968895",  # blue, blueness
    "navy color": "n04969703",  # dark blue, navy, navy blue
    "purple color": "n04970059",  # purple, purpleness
}
COLOR_WORD_SYNSET = "n04956594"  # color, colour: qualifies a colour whose lemma another class already has
NON_FOOD = "non-food"  # the `food` model's answer for images without food: no synset, so English everywhere


def read_tab(path: Path) -> dict[str, list[str]]:
    """synset id (`n02084071`) -> lemmas in file order, for noun synsets; {} if the file is missing or empty."""
    lemmas: dict[str, list[str]] = collections.defaultdict(list)
    if not path.is_file():
        return lemmas
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            if line.startswith("#"):
                continue
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 3 or not parts[0].endswith("-n") or parts[1].split(":")[-1] != "lemma":
                continue
            lemma = " ".join(parts[2].split())
            if lemma and lemma not in lemmas["n" + parts[0][:-2]]:
                lemmas["n" + parts[0][:-2]].append(lemma)
    return lemmas


def usable(lemma: str) -> bool:
    """A lemma that reads as a name: not a gloss, not a number, not MultiWordNet's "GAP!" marks, no "/" (it
    separates the steps of a type_hierarchy), not a stray
    one- or two-letter Latin word (WOLF's "et")."""
    latin = lemma.isascii() or all(ord(c) < 0x250 for c in lemma)
    return (
        len(lemma) <= MAX_LEMMA_CHARS
        and len(lemma.split()) <= MAX_LEMMA_WORDS
        and not lemma.isdigit()
        and "!" not in lemma
        and "/" not in lemma
        and not (latin and len(lemma) < 3)
    )


def converter(config: str | None):
    """OpenCC's converter for `config` (build time only), or the identity."""
    if config is None:
        return lambda text: text
    import opencc

    return opencc.OpenCC(config).convert


def candidates(synset: str, tables: list[tuple[Source, dict[str, list[str]]]]) -> list[str]:
    """The synset's usable lemmas, best first: given by more sources, then listed earlier by a source that lists
    the main word first (Wiktionary), then by the earlier source, then file order."""
    votes: collections.Counter[str] = collections.Counter()
    first_seen: dict[str, tuple[int, int]] = {}
    main_rank: dict[str, int] = {}
    for rank, (source, table) in enumerate(tables):
        for position, lemma in enumerate(dict.fromkeys(name for name in table.get(synset, []) if usable(name))):
            votes[lemma] += 1  # once per source: a converted source can repeat a lemma
            first_seen.setdefault(lemma, (rank, position))
            if source.ordered:
                main_rank[lemma] = min(main_rank.get(lemma, position), position)
    unlisted = sys.maxsize  # no Wiktionary position: after every listed lemma
    return sorted(votes, key=lambda lemma: (-votes[lemma], main_rank.get(lemma, unlisted), first_seen[lemma]))


def choose(
    nodes: list[str],
    english: dict[str, str],
    options: dict[str, list[str]],
    parent: dict[str, str],
    reserved: set[str],
    weight: dict[str, int],
) -> dict[str, str]:
    """One unique name per node that has one: its best lemma, or the next one free, or `lemma (parent's name)`.

    A lemma several nodes want goes to the node with the most ImageNet leaves beneath it (French "nourriture"
    names `food`, 22 leaves, not `fare`, 1), then to the first in order. Nodes without a lemma keep their
    English name, so translated names must not take those, nor `reserved`.
    """
    taken = {english[n] for n in nodes if not options.get(n)} | reserved
    chosen: dict[str, str] = {}
    wanted = collections.Counter(options[n][0] for n in nodes if options.get(n))
    # uncontested first choices, then the others by leaves beneath, ties in node order (deterministic)
    for node in nodes:
        lemmas = options.get(node)
        if lemmas and wanted[lemmas[0]] == 1 and lemmas[0] not in taken:
            chosen[node] = lemmas[0]
            taken.add(lemmas[0])
    for node in sorted(nodes, key=lambda n: -weight.get(n, 0)):  # stable: ties keep their order
        lemmas = options.get(node)
        if not lemmas or node in chosen:
            continue
        free = [lemma for lemma in lemmas if lemma not in taken]
        if free:
            chosen[node] = free[0]
        elif (
            parent.get(node) in chosen
            and chosen[parent[node]] != lemmas[0]
            and f"{lemmas[0]} ({chosen[parent[node]]})" not in taken
        ):
            chosen[node] = f"{lemmas[0]} ({chosen[parent[node]]})"
        else:
            continue  # no unique name: English
        taken.add(chosen[node])
    return chosen


def build(omw_dir: Path, reference_dir: Path) -> tuple[dict, list[tuple]]:
    """The package-data document and the coverage rows (language, leaves, ancestors, colours, sources used)."""
    classes, synonyms = general.load_reference(reference_dir)
    paths = general.informative_paths(general.choose_paths(classes, general.parent_map(classes), synonyms))
    names = general.node_names(paths, synonyms)
    leaves = [c["wnid"] for c in classes]
    ancestors = sorted({w for path in paths.values() for w in path[:-1]} - set(leaves), key=lambda w: names[w])
    parent = {w: path[i - 1] for path in paths.values() for i, w in enumerate(path) if i > 0}
    weight = collections.Counter(w for path in paths.values() for w in path)  # leaves beneath (a leaf: 1)
    colour_ids = {f"color:{name}": wnid for name, wnid in COLOR_SYNSETS.items()}
    english = {**names, **{key: key[len("color:") :] for key in colour_ids}}
    nodes = leaves + ancestors + list(colour_ids)
    rows: dict[str, dict[str, str]] = {}
    coverage = []
    for language in LANGUAGES:
        tables, used = [], []
        for source in SOURCES[language]:
            table = read_tab(omw_dir / source.path)
            if not table:
                print(f"note: {language}: {source.path} is missing or empty; {source.name} not used", file=sys.stderr)
                continue
            convert = converter(source.convert)
            tables.append((source, {synset: [convert(name) for name in lemmas] for synset, lemmas in table.items()}))
            used.append(source)
        options = {node: candidates(colour_ids.get(node, node), tables) for node in nodes}
        colour_word = candidates(COLOR_WORD_SYNSET, tables)
        reserved: set[str] = set()
        while True:  # a node left English keeps its English name: no translated name may be it
            plain = choose(nodes, english, options, parent, reserved, weight)
            for key in colour_ids:  # a colour whose lemma names an object too ("orange") is qualified by "colour"
                if key not in plain and options[key] and colour_word:
                    qualified = f"{options[key][0]} ({colour_word[0]})"
                    if qualified not in plain.values() and qualified not in reserved:
                        plain[key] = qualified
            left_english = {english[n] for n in nodes if n not in plain}
            clashes = {name for name in plain.values() if name in left_english} - reserved
            if not clashes:
                break
            reserved |= clashes
        rows[language] = plain
        coverage.append(
            (
                language,
                sum(w in plain for w in leaves),
                len(leaves),
                sum(w in plain for w in ancestors),
                len(ancestors),
                sum(k in plain for k in colour_ids),
                len(colour_ids),
                used,
            )
        )
    document = {
        "source": "Open Multilingual Wordnet data (github.com/omwn/omw-data) by WordNet 3.0 synset; "
        "built by tools/build_class_names.py. Columns: English, then "
        + ", ".join(LANGUAGES)
        + "; null: no name in that language (English is answered)",
        "languages": list(LANGUAGES),
        "rows": [[english[n], *[rows[lang].get(n) for lang in LANGUAGES]] for n in nodes]
        + [[NON_FOOD, *[None for _ in LANGUAGES]]],
    }
    return document, coverage


def write_compact(document: dict, output_path: Path) -> None:
    """Minified JSON, one row per line."""
    lines = [json.dumps(row, ensure_ascii=False, separators=(",", ":")) for row in document["rows"]]
    text = (
        '{"source":'
        + json.dumps(document["source"])
        + ',"languages":'
        + json.dumps(document["languages"])
        + ',"rows":[\n'
        + ",\n".join(lines)
        + "\n]}\n"
    )
    output_path.write_text(text, encoding="utf-8")


def coverage_table(coverage: list[tuple]) -> str:
    """The README's table: share of the leaves, of the ancestors and of the colours named in each language."""
    lines = [
        "| language | ImageNet leaves named | hierarchy names above them | colour words | sources |",
        "|---|---|---|---|---|",
    ]
    for language, leaves, n_leaves, ancestors, n_ancestors, colours, n_colours, used in coverage:
        sources = "; ".join(
            dict.fromkeys(
                re.sub(r", in Traditional.*", "", s.name) + (" (s2twp)" if s.convert == "s2twp" else "") for s in used
            )
        )
        lines.append(
            f"| `{language}` | {leaves}/{n_leaves} ({leaves / n_leaves:.0%}) | {ancestors}/{n_ancestors} "
            f"({ancestors / n_ancestors:.0%}) | {colours}/{n_colours} | {sources} |"
        )
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    if len(argv) < 2:
        raise SystemExit(__doc__)
    reference_dir = Path(argv[2]) if len(argv) > 2 else general.DEFAULT_REFERENCE_DIR
    document, coverage = build(Path(argv[1]), reference_dir)
    write_compact(document, OUTPUT_PATH)
    print(f"wrote {OUTPUT_PATH} ({OUTPUT_PATH.stat().st_size} bytes, {len(document['rows'])} names)")
    print(coverage_table(coverage))


if __name__ == "__main__":
    main(sys.argv)
