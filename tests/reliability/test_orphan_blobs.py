"""A create killed while it stores its images leaves orphan blobs; `workbench doctor` finds and repairs them.

Before the fix nothing removed them (47 MB seen) and there was no way to check a store at all.
The kill is a real SIGKILL of a real `workbench create` process, timed by polling the blobs folder.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import struct
import subprocess
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from conftest import TUTORIAL
from support.servers import workbench_command
from workbench.images.entries import sha256_hex
from workbench.store import doctor as dr
from workbench.store import findings as fd
from workbench.store import repairs as rp

COPIES = 12  # each tutorial photo this many times (distinct bytes): about 40 MB of images in all
DEADLINE_S = 120
KILL_AFTER_BLOBS = 300  # of about 1500 (storing them all takes seconds)


def jpeg_with_comment(data: bytes, comment: str) -> bytes:
    """The same JPEG with a COM segment after SOI, as editors write one: a distinct, valid file."""
    text = comment.encode()
    return data[:2] + b"\xff\xfe" + struct.pack(">H", len(text) + 2) + text + data[2:]


def large_zip(folder: Path, target: Path) -> Path:
    """A zip of every JPEG in `folder`, each COPIES times with a different comment (stored, not recompressed)."""
    photos = [p for p in sorted(folder.iterdir()) if p.suffix.lower() in (".jpg", ".jpeg")]
    with zipfile.ZipFile(target, "w", zipfile.ZIP_STORED) as archive:
        for copy in range(COPIES):
            for photo in photos:
                archive.writestr(
                    f"{folder.name}/{copy}-{photo.name}", jpeg_with_comment(photo.read_bytes(), f"copy {copy}")
                )
    return target


def workbench_cli(home: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(workbench_command(home, *args), capture_output=True, text=True, timeout=600)


def doctor_cli(home: Path, *args: str) -> tuple[int, dict]:
    done = workbench_cli(home, "doctor", *args)
    assert done.returncode in (0, 1), done.stderr
    return done.returncode, json.loads(done.stdout)


def blob_files(home: Path) -> list[Path]:
    return [p for p in (home / "blobs").glob("*/*") if p.is_file()]


def kinds(report: dict, action: str | None = None) -> dict[str, int]:
    counts: dict[str, int] = {}
    for finding in report["findings"]:
        if action is None or finding["action"] == action:
            counts[finding["kind"]] = counts.get(finding["kind"], 0) + 1
    return counts


@pytest.fixture(scope="module")
def large_zips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("large")
    return {name: large_zip(TUTORIAL / name, folder / f"{name}.zip") for name in ("beagle", "husky", "cats")}


def start_create(home: Path, zips: dict[str, Path]) -> subprocess.Popen:
    """`workbench create` on the large zips, in its own process; returns once it is storing blobs."""
    create = subprocess.Popen(
        workbench_command(
            home,
            "create",
            "big",
            "-p",
            f"beagle={zips['beagle']}",
            "-p",
            f"husky={zips['husky']}",
            "-n",
            str(zips["cats"]),
        ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + DEADLINE_S
    while len([p for p in blob_files(home) if not p.name.startswith(".tmp-")]) < KILL_AFTER_BLOBS:
        assert create.poll() is None, create.stderr.read().decode()
        assert time.monotonic() < deadline, "the create never started storing blobs"
        time.sleep(0.001)
    return create


def test_a_create_killed_while_storing_blobs_is_repaired(
    tmp_path: Path, tutorial_zips, large_zips, make_workbench
) -> None:
    home = tmp_path / "home"
    create = start_create(home, large_zips)
    os.kill(create.pid, signal.SIGKILL)
    create.wait(30)
    create.stderr.close()
    left = blob_files(home)
    with sqlite3.connect(home / "workbench.db") as db:  # the create never committed
        assert db.execute("SELECT COUNT(*) FROM classifiers").fetchone()[0] == 0
        assert db.execute("SELECT COUNT(*) FROM examples").fetchone()[0] == 0
    orphans = [p for p in left if not p.name.startswith(".tmp-")]
    orphan_bytes = sum(p.stat().st_size for p in left)
    print(f"left by the killed create: {len(left)} files, {orphan_bytes / 1e6:.1f} MB")
    assert orphans

    code, report = doctor_cli(home)
    assert code == 1 and not report["ok"]
    assert kinds(report)[fd.ORPHAN_BLOB] == len(orphans)
    assert {f["subject"] for f in report["findings"] if f["kind"] == fd.ORPHAN_BLOB} == {
        p.relative_to(home).as_posix() for p in orphans
    }
    assert blob_files(home) == left  # only reported

    code, report = doctor_cli(home, "--repair")  # within the grace period: a create may still own them
    assert code == 1 and kinds(report, fd.KEPT_RECENT)[fd.ORPHAN_BLOB] == len(orphans)
    assert len(blob_files(home)) == len(left)

    code, report = doctor_cli(home, "--repair", "--grace-seconds", "0")
    assert code == 0 and report["ok"], report
    assert kinds(report, fd.REMOVED)[fd.ORPHAN_BLOB] == len(orphans)
    assert blob_files(home) == []

    wb = make_workbench(home=home)
    created = wb.create_classifier("pets", {"beagle": tutorial_zips["beagle"]}, negative_examples=tutorial_zips["cats"])
    assert wb.wait(created["classifier_id"], timeout=300)["status"] == "ready"
    assert wb.doctor().findings == ()


def test_a_corrupt_blob_is_found_by_the_full_check(make_workbench, tutorial_zips) -> None:
    wb = make_workbench()
    cid = wb.create_classifier("pets", {"beagle": tutorial_zips["beagle"]}, negative_examples=tutorial_zips["cats"])[
        "classifier_id"
    ]
    assert wb.wait(cid, timeout=300)["status"] == "ready"
    assert wb.doctor().ok
    examples = wb.store.examples(cid)
    row = examples[3]
    blob = wb.store.blob_path(row.sha256)
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte: same size, still a plausible JPEG
    blob.write_bytes(bytes(data))

    assert wb.doctor(full=False).findings == ()  # the cheap check does not hash
    report = wb.doctor()
    assert not report.ok
    corrupt = report.of_kind(fd.CORRUPT_BLOB)
    assert [f.subject for f in corrupt] == [f"blobs/{row.sha256[:2]}/{row.sha256}"]
    assert row.source in corrupt[0].detail
    assert [f.subject for f in report.of_kind(fd.BROKEN_CLASSIFIER)] == [cid]
    assert wb.get_classifier(cid)["status"] == "ready"  # only reported

    repaired = wb.doctor(repair=True)
    assert repaired.ok
    record = wb.get_classifier(cid)
    assert record["status"] == "failed" and row.source in record["explanation"]
    assert (wb.home / rp.QUARANTINE_DIR / row.sha256).read_bytes() == bytes(data)  # moved aside, not deleted
    assert wb.store.examples(cid) == examples  # the examples are all still there
    answer = wb.classify(TUTORIAL / "test" / "4.jpg", classifier_ids=[cid])  # the serving version still answers
    assert "error" not in answer["images"][0]


def test_the_full_check_covers_versions_heads_examples_and_the_cache(make_workbench, tutorial_zips) -> None:
    wb = make_workbench()
    cid = wb.create_classifier("pets", {"beagle": tutorial_zips["beagle"]}, negative_examples=tutorial_zips["cats"])[
        "classifier_id"
    ]
    other = wb.create_classifier("more", {"husky": tutorial_zips["husky"]}, negative_examples=tutorial_zips["cats"])[
        "classifier_id"
    ]
    for classifier_id in (cid, other):
        assert wb.wait(classifier_id, timeout=300)["status"] == "ready"
    examples_before = {c: len(wb.store.examples(c)) for c in (cid, other)}
    store = wb.store
    store.out_of_fold_path(cid, 1).unlink()  # plots lose it; the classifier still works
    store.head_path(other, 1).write_bytes(b"not an npz")  # the serving heads are broken
    stray = store.head_path(cid, 7)
    stray.write_bytes(store.head_path(cid, 1).read_bytes())  # a training killed before its commit
    missing = store.examples(cid)[0]
    store.blob_path(missing.sha256).unlink()
    temp = store.blob_dir / "ab" / ".tmp-killed"
    temp.parent.mkdir(exist_ok=True)
    temp.write_bytes(b"half a photo")
    with sqlite3.connect(wb.embedding_cache) as db:
        db.execute(
            "INSERT OR REPLACE INTO embeddings VALUES (?, ?, ?)", ("f" * 64, wb.backbone.backbone_id, b"\x00" * 10)
        )
        db.execute(
            "INSERT OR REPLACE INTO embeddings VALUES (?, ?, ?)",
            ("e" * 64, wb.backbone.backbone_id, np.full(wb.backbone.spec.embedding_size, np.nan, np.float32).tobytes()),
        )

    report = wb.doctor(grace_s=0)
    found = {(f.kind, f.subject) for f in report.findings}
    assert (fd.BROKEN_OUT_OF_FOLD, f"heads/{cid}/v1.oof.npz") in found
    assert (fd.BROKEN_HEAD, f"heads/{other}/v1.npz") in found
    assert (fd.STRAY_FILE, f"heads/{cid}/v7.npz") in found
    assert (fd.MISSING_BLOB, f"blobs/{missing.sha256[:2]}/{missing.sha256}") in found
    assert (fd.TEMP_FILE, "blobs/ab/.tmp-killed") in found
    assert len(report.of_kind(fd.BAD_EMBEDDING)) == 2
    assert {f.subject for f in report.of_kind(fd.BROKEN_CLASSIFIER)} == {cid, other}

    repaired = wb.doctor(repair=True, grace_s=0)
    assert not stray.exists() and not temp.exists()
    for classifier_id in (cid, other):
        assert wb.get_classifier(classifier_id)["status"] == "failed"
    assert missing.source in wb.get_classifier(cid)["explanation"]
    assert wb.store.classifier(other).serving_version is None  # no usable version left: classify says so clearly
    assert {c: len(wb.store.examples(c)) for c in (cid, other)} == examples_before  # no example deleted
    with sqlite3.connect(wb.embedding_cache) as db:
        assert (
            db.execute("SELECT COUNT(*) FROM embeddings WHERE sha256 IN (?, ?)", ("f" * 64, "e" * 64)).fetchone()[0]
            == 0
        )
    left = {f.kind for f in repaired.findings if not f.repaired}
    assert left == {fd.BROKEN_OUT_OF_FOLD, fd.BROKEN_HEAD, fd.MISSING_BLOB}  # reported: only the user can restore them


def test_the_start_up_sweep_leaves_recent_orphans_and_removes_old_ones(
    make_workbench, tutorial_zips, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    blob = home / "blobs" / "ab" / ("ab" + "0" * 62)
    blob.parent.mkdir(parents=True)
    blob.write_bytes(b"an image a killed create stored")
    _ = make_workbench(home=home).store  # start-up: too recent to be sure no create in another process owns it
    assert blob.exists()
    old = time.time() - dr.STARTUP_GRACE_S - 60
    os.utime(blob, (old, old))
    _ = make_workbench(home=home).store
    assert not blob.exists()


def test_repair_spares_an_old_orphan_that_a_concurrent_create_takes_up(
    tmp_path: Path, large_zips, make_workbench
) -> None:
    """Time of check against time of use: the orphan is listed, then a create in another process stores
    the same image (its blob already exists, so it is not rewritten) and commits. Removal rechecks under
    the write lock, which that create holds while storing, and keeps the blob."""
    home = tmp_path / "home"
    with zipfile.ZipFile(large_zips["beagle"]) as archive:
        first = archive.read(sorted(archive.namelist())[0])
    store = make_workbench(home=home, train=False).store
    orphan = store.blob_path(sha256_hex(first))
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(first)  # left by a create killed minutes ago (within the start-up sweep's grace)...
    old = time.time() - dr.STARTUP_GRACE_S / 2
    os.utime(orphan, (old, old))
    create = start_create(home, large_zips)  # ... and now sent again: this create holds the write lock
    try:
        report = make_workbench(home=home, train=False).doctor(repair=True, full=False, grace_s=0)
    finally:
        os.kill(create.pid, signal.SIGKILL)  # it has committed (doctor waited for it) and is training
        create.wait(30)
        create.stderr.close()
    subject = orphan.relative_to(home).as_posix()
    assert [f.action for f in report.findings if f.subject == subject] == [fd.KEPT_IN_USE]
    assert not [f for f in report.findings if f.action == fd.REMOVED]
    assert orphan.stat().st_mtime == pytest.approx(old)  # the very file: neither removed nor rewritten
    full = make_workbench(home=home, train=False).doctor()
    assert full.of_kind(fd.MISSING_BLOB) == [] and full.of_kind(fd.ORPHAN_BLOB) == []
