"""store.postgres: the store's rows on a real PostgreSQL 15, seen from two homes (two hosts).

The fast tests check the SQL seam; the slow ones (a throwaway cluster, `support.postgres`) check
what SQLite's `BEGIN IMMEDIATE` gave the store and the PostgreSQL store must give too: one writer at
a time (a second waits, then gives up as StoreUnavailable), reads that never wait, a lease taken once
across hosts, a curation's new ids, and the named lock the MLflow logging claim uses.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.postgres import Postgres, running_postgres
from support.servers import free_port
from workbench.core.errors import StoreUnavailable
from workbench.core.records import ClassifierRecord
from workbench.store import curation, leases
from workbench.store.database import Store
from workbench.store.doctor import run_doctor
from workbench.store.postgres import redacted, translate
from workbench.tracking.claims import LoggedElsewhere, logging_claim

OTHER_HOST = "build-agent-7:4242:99:abcd1234"
LEASE_S = 30.0


def test_the_store_sql_is_translated_once_for_postgresql() -> None:
    assert translate("SELECT * FROM t WHERE a = ? AND b LIKE 'x%'") == "SELECT * FROM t WHERE a = %s AND b LIKE 'x%%'"
    assert translate("INSERT OR IGNORE INTO customer_data VALUES (?, ?)") == (
        "INSERT INTO customer_data VALUES (%s, %s) ON CONFLICT DO NOTHING"
    )


def test_a_password_never_shows_in_messages() -> None:
    assert (
        redacted("postgresql://wb:s3cret@db.example:5432/workbench") == "postgresql://wb:***@db.example:5432/workbench"
    )
    assert redacted("postgresql://wb@db.example/workbench") == "postgresql://wb@db.example/workbench"


def test_an_unreachable_server_is_store_unavailable(tmp_path: Path) -> None:
    uri = f"postgresql://workbench:hunter2@127.0.0.1:{free_port()}/workbench"
    refused = re.escape("PostgreSQL server postgresql://workbench:***@127.0.0.1")
    with pytest.raises(StoreUnavailable, match=refused) as caught:
        Store(tmp_path / "home", uri=uri, files=tmp_path / "shared")
    assert "hunter2" not in caught.value.message


@pytest.fixture(scope="module")
def cluster() -> Iterator[Postgres]:
    with running_postgres() as server:
        yield server


@pytest.fixture(scope="module")
def store_uri(cluster: Postgres) -> str:
    return cluster.database("workbench")


@pytest.fixture
def hosts(store_uri: str, tmp_path: Path) -> tuple[Store, Store]:
    """Two stores on one database and one shared folder, each with its own home (two hosts); emptied first."""
    stores = tuple(Store(tmp_path / name, uri=store_uri, files=tmp_path / "shared") for name in ("a", "b"))
    with stores[0].transaction() as db:
        db.execute("DELETE FROM classifiers")
    return stores  # type: ignore[return-value]


def record(cid: str, status: str = "training", owner: str | None = None, expires: float | None = None):
    stamp = "2026-12-03T00:00:00.000Z"
    return ClassifierRecord(cid, cid, "me", status, stamp, stamp, None, None, None, owner, expires)


pg = pytest.mark.slow  # a throwaway PostgreSQL cluster


@pg
def test_a_write_on_one_host_is_read_on_the_other(hosts) -> None:
    a, b = hosts
    with a.transaction() as db:
        a.insert_classifier(db, record("dogs", "ready"))
        a.add_examples(db, "dogs", [("beagle", "0" * 64, "beagle.zip/1.jpg"), (None, "1" * 64, "cats.zip/2.jpg")])
    a.label_customer("c1", "dogs")
    a.label_customer("c1", "dogs")  # INSERT OR IGNORE: the second is no error
    assert [r.classifier_id for r in b.classifiers()] == ["dogs"]
    assert [(e.class_name, e.source) for e in b.examples("dogs")] == [
        ("beagle", "beagle.zip/1.jpg"),
        (None, "cats.zip/2.jpg"),
    ]
    assert b.customer_classifiers("c1") == ["dogs"]
    assert b.blob_path("0" * 64) == a.blob_path("0" * 64)  # one shared folder


@pg
def test_a_lease_is_taken_once_across_hosts(hosts) -> None:
    a, b = hosts
    with a.transaction() as db:
        a.insert_classifier(db, record("held", owner=OTHER_HOST, expires=time.time() + 3600))
        a.insert_classifier(db, record("lapsed", owner=OTHER_HOST, expires=time.time() - 1))
    with b.transaction() as db:
        assert leases.orphans(db, "b") == ["lapsed"]
        assert not leases.claim(db, "held", "b", LEASE_S)
        assert leases.claim(db, "lapsed", "b", LEASE_S)
    with a.transaction() as db:
        assert not leases.claim(db, "lapsed", "a", LEASE_S)  # b holds it now, until its lease lapses
        assert leases.renew(db, "b", LEASE_S) == 1
    assert b.classifier("lapsed").job_owner == "b"
    assert b.classifier("lapsed").lease_expires == pytest.approx(time.time() + LEASE_S, abs=5)


@pg
def test_one_writer_at_a_time_and_reads_never_wait(hosts, store_uri: str, tmp_path: Path) -> None:
    a, _ = hosts
    impatient = Store(tmp_path / "c", busy_timeout=0.3, uri=store_uri, files=tmp_path / "shared")
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with a.transaction() as db:
            a.insert_classifier(db, record("slow"))
            holding.set()
            release.wait(60)

    writer = threading.Thread(target=hold)
    writer.start()
    try:
        assert holding.wait(60)
        with pytest.raises(StoreUnavailable, match="locked by another process"):
            with impatient.transaction() as db:
                impatient.insert_classifier(db, record("fast"))
        assert impatient.classifier_ids() == set()  # a snapshot: neither the held write nor the refused one
    finally:
        release.set()
        writer.join()
    assert impatient.classifier_ids() == {"slow"}


@pg
def test_a_curation_gets_new_ids_from_postgresql(hosts) -> None:
    a, b = hosts
    with a.transaction() as db:
        a.insert_classifier(db, record("dogs", "ready"))
        rows = [("beagle", f"{i:064x}", f"beagle.zip/{i}.jpg") for i in range(6)]
        a.add_examples(db, "dogs", rows + [("husky", f"{i:064x}", f"husky.zip/{i}.jpg") for i in range(6, 12)])
    first = b.examples("dogs")[0].example_id
    with b.transaction() as db:
        change = curation.apply(db, "dogs", [], {first: "husky"}, 5)
    assert change.curation_id is not None and change.curation_id >= 1
    (relabelled,) = change.relabelled
    after = {e.example_id: e for e in a.examples("dogs")}
    assert after[first].removed_by == change.curation_id
    assert after[relabelled.new_example_id].class_name == "husky" and after[relabelled.new_example_id].replaces == first


@pg
def test_the_mlflow_logging_claim_holds_across_hosts(hosts) -> None:
    a, b = hosts
    with logging_claim(a, "dogs"):
        with pytest.raises(LoggedElsewhere, match="PostgreSQL store"):
            with logging_claim(b, "dogs", wait_s=0.3):
                pass
        with logging_claim(b, "cats", wait_s=0.3):  # another classifier is free
            pass
    with logging_claim(b, "dogs", wait_s=0.3):  # released with its holder's session
        pass


@pg
def test_doctor_on_another_host_removes_only_the_shared_blob_no_example_uses(hosts) -> None:
    a, b = hosts
    used, orphan = "a" * 64, "b" * 64
    for sha in (used, orphan):
        a.put_blob(sha, b"image bytes")
    with a.transaction() as db:
        a.insert_classifier(db, record("dogs", "ready"))
        a.add_examples(db, "dogs", [("beagle", used, "beagle.zip/1.jpg")])
    report = run_doctor(b, repair=True, full=False, grace_s=0)
    assert [(f.kind, f.subject, f.action) for f in report.findings] == [
        ("orphan_blob", f"blobs/bb/{orphan}", "removed")
    ]
    assert a.blob_path(used).exists() and not a.blob_path(orphan).exists()


@pg
def test_a_restarted_server_costs_no_request(hosts, cluster: Postgres) -> None:
    a, b = hosts
    with a.transaction() as db:
        a.insert_classifier(db, record("dogs", "ready"))
    assert b.classifier_ids() == {"dogs"}  # b's pool now holds a connection
    cluster.restart()  # which the server closes
    assert b.classifier_ids() == {"dogs"}
    with b.transaction() as db:
        b.update_classifier(db, "dogs", explanation="after the restart")
    assert a.classifier("dogs").explanation == "after the restart"


@pg
def test_a_store_made_before_a_newer_column_gets_it_on_open(cluster: Postgres, tmp_path: Path) -> None:
    uri = cluster.database("older")
    first = Store(tmp_path / "a", uri=uri, files=tmp_path / "shared")
    with first.transaction() as db:
        first.insert_classifier(db, record("dogs", "ready"))
        db.execute("ALTER TABLE classifiers DROP COLUMN pinned_version")  # as a store made before promote was
    reopened = Store(tmp_path / "b", uri=uri, files=tmp_path / "shared")
    assert reopened.classifier("dogs").pinned_version is None
    with reopened.transaction() as db:
        reopened.update_classifier(db, "dogs", pinned_version=1)
    assert first.classifier("dogs").pinned_version == 1
