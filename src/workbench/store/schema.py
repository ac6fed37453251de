"""The store's tables (`workbench.db`), the columns newer than some homes, and the migration that adds them."""

from __future__ import annotations

import json
import sqlite3

from ..core.records import VersionRecord

TABLES = frozenset({"classifiers", "examples", "versions", "customer_data", "pending_removals"})
SCHEMA = """
CREATE TABLE IF NOT EXISTS classifiers (
    classifier_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    owner TEXT NOT NULL,
    status TEXT NOT NULL,
    created TEXT NOT NULL,
    updated TEXT NOT NULL,
    retrained TEXT,
    explanation TEXT,
    serving_version INTEGER,
    job_owner TEXT,               -- the runner training it (leases.py): host:pid:random
    lease_expires REAL,           -- epoch seconds; past it, a watching process may adopt the training
    pinned_version INTEGER        -- promote's pin (promotion.py): NULL, or equal to serving_version
);
CREATE TABLE IF NOT EXISTS examples (
    example_id INTEGER PRIMARY KEY AUTOINCREMENT,
    classifier_id TEXT NOT NULL REFERENCES classifiers(classifier_id) ON DELETE CASCADE,
    class_name TEXT,              -- NULL for negative examples
    sha256 TEXT NOT NULL,
    source TEXT NOT NULL,         -- e.g. "beagle.zip/foo.jpg"
    removed_by INTEGER,           -- the curation that removed (or relabelled) it; NULL while it trains (curation.py)
    replaces INTEGER              -- the example it relabels (same image, new label); NULL for an added one
);
CREATE INDEX IF NOT EXISTS examples_by_classifier ON examples(classifier_id, example_id);
CREATE INDEX IF NOT EXISTS examples_by_sha256 ON examples(sha256);  -- "does any example still use this blob?"
CREATE TABLE IF NOT EXISTS versions (
    classifier_id TEXT NOT NULL REFERENCES classifiers(classifier_id) ON DELETE CASCADE,
    version INTEGER NOT NULL,
    created TEXT NOT NULL,
    classes TEXT NOT NULL,        -- JSON list of class names, in head order
    last_example_id INTEGER NOT NULL,
    metrics TEXT NOT NULL,        -- JSON of cross-validated metrics
    head_file TEXT NOT NULL,
    last_curation_id INTEGER NOT NULL DEFAULT 0,  -- with last_example_id: the examples it trained on (curation.py)
    PRIMARY KEY (classifier_id, version)
);
CREATE TABLE IF NOT EXISTS curations (  -- each removal or relabelling of examples, one commit each (curation.py)
    curation_id INTEGER PRIMARY KEY AUTOINCREMENT,
    classifier_id TEXT NOT NULL REFERENCES classifiers(classifier_id) ON DELETE CASCADE,
    created TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS customer_data (  -- X-Watson-Metadata: customer_id labels, for DELETE /v3/user_data
    customer_id TEXT NOT NULL,
    classifier_id TEXT NOT NULL REFERENCES classifiers(classifier_id) ON DELETE CASCADE,
    PRIMARY KEY (customer_id, classifier_id)
);
CREATE TABLE IF NOT EXISTS pending_removals (  -- files a committed delete has still to remove (a crash may stop it)
    kind TEXT NOT NULL,           -- "blob": name is a sha256, removed only while no example uses it;
                                  -- "heads": name is a classifier id
    name TEXT NOT NULL,
    PRIMARY KEY (kind, name)
);
"""
ADDED_COLUMNS = {  # columns newer than some existing homes: (table, column) -> declaration
    ("classifiers", "lease_expires"): "REAL",
    ("examples", "removed_by"): "INTEGER",
    ("examples", "replaces"): "INTEGER",
    ("versions", "last_curation_id"): "INTEGER NOT NULL DEFAULT 0",
    ("classifiers", "pinned_version"): "INTEGER",
}
EXAMPLE_COLUMNS = "example_id, class_name, sha256, source, removed_by, replaces"
VERSION_COLUMNS = "classifier_id, version, created, classes, last_example_id, metrics, head_file, last_curation_id"


def missing_columns(db: sqlite3.Connection) -> list[tuple[str, str, str]]:
    """The (table, column, declaration) of each ADDED_COLUMNS entry the home lacks."""
    missing = []
    for (table, column), declaration in ADDED_COLUMNS.items():
        if column not in {row[1] for row in db.execute(f"PRAGMA table_info({table})")}:
            missing.append((table, column, declaration))
    return missing


def migrate(db: sqlite3.Connection) -> None:
    """Adds the columns a home made by an older version lacks.

    Read first, without a lock, so opening a current home never waits behind another process's
    write; only a missing column takes the write lock (and is checked again under it).
    """
    if not missing_columns(db):
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        for table, column, declaration in missing_columns(db):
            db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


def version_record(row: tuple) -> VersionRecord:
    """A `versions` row read as VERSION_COLUMNS -> its VersionRecord (classes and metrics decoded from JSON)."""
    cid, version, created, classes, last_id, metrics, head_file, last_curation_id = row
    return VersionRecord(
        cid, version, created, json.loads(classes), last_id, json.loads(metrics), head_file, last_curation_id
    )
