"""Build `src/workbench/data/imagenet_hierarchy.json` for the `default` general classifier.

Reads the reference ImageNet-1k hierarchy (WordNet is-a paths per class, a DAG) and writes, per class
index 0..999, a unique readable `name`, its `wnid`, and ONE readable `path` (most general kept ancestor
down to the leaf), so the classifier can answer Watson-style `type_hierarchy` strings and ancestor scores.

Run:  python tools/build_general_data.py [REFERENCE_DIR]
(REFERENCE_DIR defaults to /work/shared/reference/imagenet and must hold imagenet1k_hierarchy.json and words.txt.)
"""

from __future__ import annotations

import collections
import itertools
import json
import sys
from functools import cache
from pathlib import Path

DEFAULT_REFERENCE_DIR = Path("/work/shared/reference/imagenet")
OUTPUT_PATH = Path(__file__).resolve().parents[1] / "src" / "workbench" / "data" / "imagenet_hierarchy.json"
CLASS_COUNT = 1000
MAX_PATH_LEVELS = 7  # most names in one type_hierarchy, leaf included

DOMESTIC_ANIMAL_WNID = "n01317541"  # preferred route for dogs and cats, as Watson answers

# WordNet umbrella and taxonomy-filler synsets that say nothing to a reader; removed from every path.
UNINFORMATIVE_WNIDS: frozenset[str] = frozenset(
    {
        "n00001740",  # entity
        "n00001930",  # physical entity
        "n00002684",  # object, physical object
        "n00003553",  # whole, unit
        "n00002137",  # abstraction
        "n00004258",  # living thing
        "n00004475",  # organism
        "n00021939",  # artifact
        "n03575240",  # instrumentality
        "n01466257",  # chordate
        "n01471682",  # vertebrate, craniate
        "n01886756",  # placental
        "n01661818",  # diapsid
        "n00020827",  # matter
        "n00019613",  # substance (matter)
        "n00020090",  # substance (material)
        "n15046900",  # solid
        "n00021265",  # food, nutrient (the "solid food" synset is kept)
        "n03076708",  # commodity
        "n03093574",  # consumer goods
        "n00019128",  # natural object
        "n00027167",  # location
        "n00033020",  # communication
        "n00024264",  # attribute
        "n09287968",  # geological formation
        "n03129123",  # creation
        "n14580897",  # material, stuff
    }
)

# Parent to take where WordNet lists several and the shortest route reads wrong (a car is not a "container").
PREFERRED_PARENTS: dict[str, str] = {
    "n04576211": "n04524313",  # wheeled vehicle -> vehicle (not container)
    "n04284002": "n03153375",  # spoon -> cutlery (not container)
    "n04552348": "n03510583",  # warplane -> heavier-than-air craft (not military vehicle)
    "n04552696": "n04194289",  # warship -> ship (not military vehicle)
}

# Readable names for synsets whose first WordNet word is shared with another kept synset.
NAME_OVERRIDES: dict[str, str] = {
    "n02012849": "crane (bird)",
    "n03126707": "crane (machine)",
    "n03710721": "maillot (swimsuit)",
    "n03710637": "maillot (tights)",
    "n04379243": "table",
    "n04379964": "table (set for a meal)",
    "n04004767": "printer (computer)",
    "n04004475": "printing machine",
    "n00017222": "plant",
    "n03956922": "industrial plant",
    "n02958343": "car",
    "n02959942": "railcar",
    "n03699975": "machine",
    "n03700963": "simple machine",
}


def load_reference(reference_dir: Path) -> tuple[list[dict], dict[str, list[str]]]:
    """Return the reference classes (index order) and wnid -> synonym list from words.txt."""
    hierarchy = json.loads((reference_dir / "imagenet1k_hierarchy.json").read_text())
    classes = sorted(hierarchy["classes"], key=lambda c: c["index"])
    if [c["index"] for c in classes] != list(range(CLASS_COUNT)):
        raise ValueError("reference hierarchy must list class indices 0..999 exactly once")
    synonyms: dict[str, list[str]] = {}
    with open(reference_dir / "words.txt", encoding="utf-8") as lines:
        for line in lines:
            wnid, words = line.rstrip("\n").split("\t", 1)
            synonyms[wnid] = [w.strip() for w in words.split(",") if w.strip()]
    return classes, synonyms


def parent_map(classes: list[dict]) -> dict[str, set[str]]:
    """wnid -> its parents, restricted to the edges on the classes' root paths."""
    parents: dict[str, set[str]] = collections.defaultdict(set)
    for cls in classes:
        for path in cls["paths"]:
            for parent, child in itertools.pairwise(path):
                parents[child].add(parent)
    return parents


def choose_paths(
    classes: list[dict], parents: dict[str, set[str]], synonyms: dict[str, list[str]]
) -> dict[str, tuple[str, ...]]:
    """Pick ONE root path per synset so the chosen paths form a tree.

    Each synset takes its parent's chosen path plus itself (dynamic programming), so any two classes
    agree on the path above a shared ancestor.  Preference: PREFERRED_PARENTS, then through
    "domestic animal" when possible, then fewest informative nodes, then alphabetical names (determinism).
    """

    def rank(path: tuple[str, ...]) -> tuple:
        informative = [w for w in path if w not in UNINFORMATIVE_WNIDS]
        return (DOMESTIC_ANIMAL_WNID not in path, len(informative), [synonyms[w][0] for w in path], path)

    @cache
    def best(wnid: str) -> tuple[str, ...]:
        if not parents.get(wnid):
            return (wnid,)
        if PREFERRED_PARENTS.get(wnid) in parents[wnid]:
            return (*best(PREFERRED_PARENTS[wnid]), wnid)
        return min(((*best(p), wnid) for p in parents[wnid]), key=rank)

    return {cls["wnid"]: best(cls["wnid"]) for cls in classes}


def informative_paths(full_paths: dict[str, tuple[str, ...]]) -> dict[str, list[str]]:
    """Drop umbrella nodes, then single-child chain nodes until every path fits MAX_PATH_LEVELS.

    A node with exactly one child in the tree always scores the same as that child, so removing it
    loses nothing; nodes are removed globally (never per path) to keep the tree consistent.
    """
    paths = {leaf: [w for w in path if w not in UNINFORMATIVE_WNIDS] for leaf, path in full_paths.items()}
    while max(len(p) for p in paths.values()) > MAX_PATH_LEVELS:
        children: dict[str, set[str]] = collections.defaultdict(set)
        for path in paths.values():
            for parent, child in itertools.pairwise(path):
                children[parent].add(child)
        too_long = [p for p in paths.values() if len(p) > MAX_PATH_LEVELS]
        # the most general single-child ancestor below the root of an over-long path: general
        # taxonomy filler ("bony fish", "ruminant") goes before specific groups ("sheep")
        candidates = [(i, w) for p in too_long for i, w in enumerate(p[1:-1], 1) if len(children[w]) == 1]
        if not candidates:
            # no lossless removal left: drop the second-deepest ancestor of the longest path
            longest = max(too_long, key=lambda p: (len(p), p))
            candidates = [(len(longest) - 2, longest[-2])]
        drop = min(candidates)[1]
        paths = {leaf: [w for w in path if w != drop] for leaf, path in paths.items()}
    return paths


def node_names(paths: dict[str, list[str]], synonyms: dict[str, list[str]]) -> dict[str, str]:
    """Map every kept wnid to a unique readable name (first synonym, qualified when shared)."""
    parent_of = {w: path[i - 1] for path in paths.values() for i, w in enumerate(path) if i > 0}
    by_word: dict[str, set[str]] = collections.defaultdict(set)
    for wnid in {w for path in paths.values() for w in path}:
        by_word[synonyms[wnid][0]].add(wnid)
    names: dict[str, str] = {}
    for word, wnids in by_word.items():
        for wnid in wnids:
            if wnid in NAME_OVERRIDES:
                names[wnid] = NAME_OVERRIDES[wnid]
            elif len(wnids) == 1:
                names[wnid] = word
            elif len(synonyms[wnid]) > 1:
                names[wnid] = f"{word} ({synonyms[wnid][1]})"
            else:
                names[wnid] = f"{word} ({synonyms[parent_of[wnid]][0]})" if wnid in parent_of else word
    counts = collections.Counter(names.values())
    clashes = sorted(n for n, k in counts.items() if k > 1)
    if clashes:
        raise ValueError(f"node names still not unique: {clashes}; extend NAME_OVERRIDES")
    return names


def build(reference_dir: Path) -> dict:
    """Return the package-data document: source note plus one entry per class index."""
    classes, synonyms = load_reference(reference_dir)
    paths = informative_paths(choose_paths(classes, parent_map(classes), synonyms))
    names = node_names(paths, synonyms)
    entries = [
        {"wnid": c["wnid"], "name": names[c["wnid"]], "path": [names[w] for w in paths[c["wnid"]]]} for c in classes
    ]
    return {
        "source": "WordNet is-a paths of the ImageNet-1k classes (see /work/shared/reference/SOURCES.md); "
        "built by tools/build_general_data.py",
        "classes": entries,
    }


def write_compact(document: dict, output_path: Path) -> None:
    """Write minified JSON with one class per line (small, and diffs stay readable)."""
    lines = [json.dumps(entry, ensure_ascii=False, separators=(",", ":")) for entry in document["classes"]]
    text = '{"source":' + json.dumps(document["source"]) + ',"classes":[\n' + ",\n".join(lines) + "\n]}\n"
    output_path.parent.mkdir(parents=True, exist_ok=True)
    output_path.write_text(text, encoding="utf-8")


def main(argv: list[str]) -> None:
    reference_dir = Path(argv[1]) if len(argv) > 1 else DEFAULT_REFERENCE_DIR
    document = build(reference_dir)
    write_compact(document, OUTPUT_PATH)
    print(f"wrote {OUTPUT_PATH} ({OUTPUT_PATH.stat().st_size} bytes, {len(document['classes'])} classes)")


if __name__ == "__main__":
    main(sys.argv)
