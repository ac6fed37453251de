"""The store: atomic writes, transactions that roll back whole, records and manifests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from workbench.core.atomic import atomic_write_bytes
from workbench.core.errors import ClassifierNotFound
from workbench.core.records import ClassifierRecord
from workbench.store.database import Store
from workbench.store.embeddings import EmbeddingCache


def record(cid: str) -> ClassifierRecord:
    return ClassifierRecord(
        cid, "dogs", "me", "training", "2026-01-01T00:00:00.000Z", "2026-01-01T00:00:00.000Z", None, None, None, None
    )


def test_atomic_write_replaces_whole_or_not_at_all(tmp_path: Path) -> None:
    target = tmp_path / "heads" / "v1.npz"
    atomic_write_bytes(target, b"first")
    with pytest.raises(TypeError):
        atomic_write_bytes(target, "not bytes")  # fails mid-write
    assert target.read_bytes() == b"first"
    assert [p.name for p in target.parent.iterdir()] == ["v1.npz"]  # no temp file left behind


def test_a_failed_transaction_stores_nothing(tmp_path: Path) -> None:
    store = Store(tmp_path)
    with pytest.raises(RuntimeError):
        with store.transaction() as db:
            store.insert_classifier(db, record("dogs_1"))
            store.add_examples(db, "dogs_1", [("beagle", "ab" * 32, "beagle.zip/1.jpg")])
            raise RuntimeError("crash between writes")
    with pytest.raises(ClassifierNotFound):
        store.classifier("dogs_1")
    assert store.examples("dogs_1") == []


def test_classes_keep_the_order_they_were_added(tmp_path: Path) -> None:
    store = Store(tmp_path)
    with store.transaction() as db:
        store.insert_classifier(db, record("dogs_1"))
        store.add_examples(db, "dogs_1", [("husky", "1" * 64, "h"), (None, "2" * 64, "n"), ("beagle", "3" * 64, "b")])
        store.add_examples(db, "dogs_1", [("husky", "4" * 64, "h2")])
    assert store.class_names("dogs_1") == ["husky", "beagle"]
    assert store.last_example_id("dogs_1") == 4
    assert [e.class_name for e in store.examples("dogs_1", up_to=2)] == ["husky", None]


def test_delete_keeps_blobs_another_classifier_uses(tmp_path: Path) -> None:
    store = Store(tmp_path)
    shared, own = "a" * 64, "b" * 64
    for sha in (shared, own):
        store.put_blob(sha, sha.encode())
    with store.transaction() as db:
        store.insert_classifier(db, record("one_1"))
        store.insert_classifier(db, record("two_2"))
        store.add_examples(db, "one_1", [("x", shared, "s"), ("x", own, "o")])
        store.add_examples(db, "two_2", [("y", shared, "s")])
    assert store.delete_classifier("one_1") == [own]
    assert store.blob_path(shared).exists() and not store.blob_path(own).exists()
    assert store.examples("one_1") == []


def test_a_home_from_before_leases_gains_the_lease_column_and_keeps_its_records(tmp_path: Path) -> None:
    import sqlite3

    old_schema = (  # the classifiers table as homes made before leases have it
        "CREATE TABLE classifiers (classifier_id TEXT PRIMARY KEY, name TEXT NOT NULL, owner TEXT NOT NULL,"
        " status TEXT NOT NULL, created TEXT NOT NULL, updated TEXT NOT NULL, retrained TEXT, explanation TEXT,"
        " serving_version INTEGER, job_owner TEXT);"
    )
    with sqlite3.connect(tmp_path / "workbench.db") as db:
        db.executescript(old_schema)
        db.execute("INSERT INTO classifiers VALUES ('dogs_1','dogs','me','retraining','t','t',NULL,NULL,1,'host:1:ab')")
    stores = [Store(tmp_path), Store(tmp_path)]  # the second open finds the column there already
    old = stores[1].classifier("dogs_1")
    assert (old.status, old.job_owner, old.lease_expires) == ("retraining", "host:1:ab", None)
    with stores[0].transaction() as db:
        stores[0].insert_classifier(db, record("cats_2"))
        stores[0].update_classifier(db, "cats_2", lease_expires=12.5)
    assert stores[1].classifier("cats_2").lease_expires == 12.5


def test_embedding_cache_round_trip_and_delete(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path / "embeddings.db")
    vectors = {"a" * 64: np.arange(1280, dtype=np.float32), "b" * 64: np.ones(1280, np.float32)}
    cache.put_many(vectors, "backbone-1")
    found = cache.get_many(["a" * 64, "b" * 64, "c" * 64], "backbone-1")
    assert set(found) == {"a" * 64, "b" * 64}
    np.testing.assert_array_equal(found["a" * 64], vectors["a" * 64])
    assert cache.get_many(["a" * 64], "backbone-2") == {}
    cache.delete_many(["a" * 64])
    assert set(cache.get_many(["a" * 64, "b" * 64], "backbone-1")) == {"b" * 64}
