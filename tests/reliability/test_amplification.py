"""Decompression amplification (issue 22): a request is bounded by what it decodes and by the work it costs, not by
its upload size.

The campaign found a 3.4 MB create (20 classes of zero-padded JPEGs) that wrote 2.1 GB and peaked at 2.7 GB RSS,
and a zip of a million members that took 57-107 s and 1.1 GB to refuse. Now one create or update may hold at most
`max_request_bytes` of images (Watson's 256 MB per training call), checked from the zips' central directories
before any image is read, and a zip's directory is walked with struct and refused at `max_zip_members` + 1.
"""

from __future__ import annotations

import gc
import io
from pathlib import Path

import pytest

from conftest import TUTORIAL, zip_bytes
from reliability.hand_zips import member_flood, padded_zip, restated
from reliability.served_http import VERSION, open_app, served
from reliability.test_classify_counts_images_before_reading import reset_peak_rss, status_kib
from workbench import InvalidRequest, LimitExceeded, Limits, Workbench
from workbench.core.limits import MAX_REQUEST_BYTES, MAX_ZIP_BYTES, MAX_ZIP_MEMBERS
from workbench.images import folder_reader
from workbench.images.classify_inputs import read_images
from workbench.images.examples import read_example_set, request_budget

BEAGLES = sorted((TUTORIAL / "beagle").glob("*.jpg"))
HUSKIES = sorted((TUTORIAL / "husky").glob("*.jpg"))
CATS = sorted((TUTORIAL / "cats").glob("*.jpg"))
PADDED_BYTES = 10_000_000  # ten of them fill a zip under Watson's 100 MB (104,857,600 bytes)
A_MILLION = 1_000_000
JSON = {"Accept": "application/json"}


def blob_files(home: Path) -> list[Path]:
    return sorted(p for p in (home / "blobs").rglob("*") if p.is_file())


def stored_state(wb: Workbench) -> tuple:
    """What a refused request must not change: classifiers, their examples, the blob files."""
    classifiers = wb.list_classifiers(verbose=True)["classifiers"]
    examples = {
        c["classifier_id"]: sorted(row.sha256 for row in wb.store.examples(c["classifier_id"])) for c in classifiers
    }
    return classifiers, examples, blob_files(wb.home)


def post_create(client, name: str, sets: dict[str, bytes]):
    files = [(f"{label}_positive_examples", (f"{label}.zip", data, "application/zip")) for label, data in sets.items()]
    return client.post("/v3/classifiers", params=VERSION, data={"name": name}, files=files, headers=JSON)


def test_a_create_over_the_request_limit_is_refused_before_any_image_is_read(
    tmp_path: Path, embedding_cache: Path
) -> None:
    """Three zips of 100 MB of images each (the JPEGs' own size each uploaded): each within Watson's
    per-zip limits, together past 256 MB. Refused with 413 from their directories: no image read, no
    blob written, nothing stored changed."""
    sets = {f"dog{i}": padded_zip(BEAGLES[10 * i : 10 * i + 10], PADDED_BYTES) for i in range(3)}
    assert sum(map(len, sets.values())) < 3 * 10 * PADDED_BYTES // 100  # under 1% of what the images hold
    assert 2 * 10 * PADDED_BYTES < MAX_REQUEST_BYTES < 3 * 10 * PADDED_BYTES and 10 * PADDED_BYTES < MAX_ZIP_BYTES
    wb = Workbench(tmp_path / "home", embedding_cache=embedding_cache, tracking_uri=False, train=False)
    kept = wb.create_classifier(
        "kept",
        {
            "beagle": zip_bytes({p.name: p.read_bytes() for p in BEAGLES[:10]}),
            "husky": zip_bytes({p.name: p.read_bytes() for p in HUSKIES[:10]}),
        },
    )
    before = stored_state(wb)
    with served(open_app(wb)) as client:
        assert post_create(client, "warm-up", {"a": b"not a zip", "b": b"nor this"}).status_code == 400
        gc.collect()
        reset_peak_rss()
        rss_before = status_kib("VmRSS")
        created = post_create(client, "amplified", sets)
        updated = client.post(
            f"/v3/classifiers/{kept['classifier_id']}",
            params=VERSION,
            headers=JSON,
            files=[
                (f"{label}_positive_examples", (f"{label}.zip", data, "application/zip"))
                for label, data in sets.items()
            ],
        )
        growth_kib = status_kib("VmHWM") - rss_before
    for answer in (created, updated):
        assert answer.status_code == 413, answer.text
        assert answer.json() == {
            "code": 413,
            "error": (
                "The example sets of this request hold 300000000 bytes of images; "
                f"one create or update may hold at most {MAX_REQUEST_BYTES} bytes"
            ),
        }
    assert stored_state(wb) == before
    assert growth_kib < 100 * 1024, f"the server's peak RSS grew {growth_kib} KiB to refuse 300 MB of images"


def test_a_million_member_zip_is_refused_from_its_directory(tmp_path: Path, embedding_cache: Path) -> None:
    """Create and classify refuse it from its end record's count, not after a million ZipInfo objects (the
    walk itself, for a zip whose count lies, is the next test)."""
    flood = member_flood(A_MILLION)
    wb = Workbench(tmp_path / "home", embedding_cache=embedding_cache, tracking_uri=False, train=False)
    message = f"declares {A_MILLION} members (files and folders); the limit is {MAX_ZIP_MEMBERS}"
    with served(open_app(wb)) as client:
        created = post_create(
            client, "flood", {"flood": flood, "beagle": zip_bytes({p.name: p.read_bytes() for p in BEAGLES[:10]})}
        )
        classified = client.post(
            "/v3/classify", params=VERSION, headers=JSON, files={"images_file": ("flood.zip", flood, "application/zip")}
        )
    for answer in (created, classified):
        assert answer.status_code == 413, answer.text
        assert answer.json() == {"code": 413, "error": f"flood.zip {message}"}
    assert wb.list_classifiers()["classifiers"] == [] and blob_files(wb.home) == []


@pytest.mark.parametrize(
    ("liar", "message"),
    [
        (lambda: member_flood(A_MILLION, stated=3), f"holds more than {MAX_ZIP_MEMBERS} members"),
        (
            lambda: restated(zip_bytes({p.name: p.read_bytes() for p in HUSKIES[:12]}), A_MILLION),
            f"declares {A_MILLION} members",
        ),
    ],
    ids=["states-3-holds-a-million", "states-a-million-holds-12-images"],
)
def test_an_end_record_that_lies_about_its_count_is_refused(tmp_path: Path, liar, message: str) -> None:
    """zipfile walks the directory by its size and ignores the stated count; so does the walk here, and a stated
    count over the limit is refused without a walk. Nothing is stored either way."""
    data = liar()
    wb = Workbench(tmp_path / "home", tracking_uri=False, train=False)
    beagles = zip_bytes({p.name: p.read_bytes() for p in BEAGLES[:10]})
    with pytest.raises(LimitExceeded, match=f"liar.zip {message}"):
        wb.create_classifier("liar", {"liar": data, "beagle": beagles})
    with pytest.raises(LimitExceeded, match=message):
        read_images([io.BytesIO(data)], limits=wb.limits)  # the classify reader (a file object named by its position)
    assert wb.list_classifiers()["classifiers"] == [] and blob_files(wb.home) == []


def test_a_zip_of_exactly_the_member_limit_is_read(tmp_path: Path) -> None:
    """30,000 members (ten images, the rest folders and __MACOSX files) are read; one more is refused."""
    images = {p.name: p.read_bytes() for p in BEAGLES[:10]}
    fillers = MAX_ZIP_MEMBERS - len(images)
    members = {**images, **{f"__MACOSX/d{i // 2}/._{i}.jpg" if i % 2 else f"d{i // 2}/": b"" for i in range(fillers)}}
    at_limit = zip_bytes(members)
    result = read_example_set(at_limit, label="beagle")
    assert len(result.images) == 10 and len(result.skipped) == fillers
    over = zip_bytes({**members, "one-more.txt": b""})
    with pytest.raises(LimitExceeded, match=f"declares {MAX_ZIP_MEMBERS + 1} members"):
        read_example_set(over, label="beagle")


def test_a_request_of_exactly_the_byte_limit_is_stored(tmp_path: Path) -> None:
    """Two sets whose images hold exactly max_request_bytes are stored; one byte more is refused unread."""
    beagles = {p.name: p.read_bytes() for p in BEAGLES[:10]}
    cats = {p.name: p.read_bytes() for p in CATS[:10]}
    total = sum(map(len, beagles.values())) + sum(map(len, cats.values()))
    sets = {"beagle": zip_bytes(beagles), "cat": zip_bytes(cats)}
    over = Workbench(tmp_path / "over", tracking_uri=False, train=False, limits=Limits(max_request_bytes=total - 1))
    with pytest.raises(
        LimitExceeded, match=f"hold {total} bytes of images; one create or update may hold at most {total - 1}"
    ):
        over.create_classifier("over", sets)
    assert over.list_classifiers()["classifiers"] == [] and blob_files(over.home) == []
    exact = Workbench(tmp_path / "exact", tracking_uri=False, train=False, limits=Limits(max_request_bytes=total))
    created = exact.create_classifier("exact", sets)
    assert len(exact.store.examples(created["classifier_id"])) == 20 and len(blob_files(exact.home)) == 20


def test_reads_stop_once_the_request_is_past_its_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A folder that grows after the request's sizes were checked: its own sizes, taken again before reading, refuse
    it unread; and had it grown after those too (a stale size, here), the read stops one byte past the limit."""
    folders = {}
    for label, images in (("beagle", BEAGLES[:10]), ("cat", CATS[:10])):
        folders[label] = tmp_path / label
        folders[label].mkdir()
        for image in images:
            (folders[label] / image.name).write_bytes(image.read_bytes())
    sizes = {p: p.stat().st_size for folder in folders.values() for p in folder.iterdir()}
    beagle_bytes = sum(size for p, size in sizes.items() if p.parent == folders["beagle"])
    limits = Limits(max_request_bytes=sum(sizes.values()))
    refused = f"more than {limits.max_request_bytes} bytes of images \\(cat goes past it\\)"
    budget = request_budget(list(folders.items()), limits)
    with open(sorted(folders["cat"].iterdir())[0], "ab") as file:
        file.write(bytes(5_000_000))
    read_example_set(folders["beagle"], label="beagle", limits=limits, budget=budget)
    with pytest.raises(LimitExceeded, match=refused):
        read_example_set(folders["cat"], label="cat", limits=limits, budget=budget)
    assert budget.used == beagle_bytes  # not a byte of cat read

    scan = folder_reader.folder_scan
    monkeypatch.setattr(
        folder_reader, "folder_scan", lambda root: (scan(root)[0], [(n, p, sizes[p]) for n, p, _ in scan(root)[1]])
    )
    budget = request_budget(list(folders.items()), limits)
    read_example_set(folders["beagle"], label="beagle", limits=limits, budget=budget)
    with pytest.raises(LimitExceeded, match=refused):
        read_example_set(folders["cat"], label="cat", limits=limits, budget=budget)
    assert budget.used == limits.max_request_bytes + 1


def test_the_new_limits_come_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKBENCH_MAX_REQUEST_BYTES", "1000")
    monkeypatch.setenv("WORKBENCH_MAX_ZIP_MEMBERS", "50")
    limits = Workbench(tmp_path / "home", tracking_uri=False).limits
    assert (limits.max_request_bytes, limits.max_zip_members) == (1000, 50)
    assert limits.max_zip_images == Limits().max_zip_images
    assert Workbench(tmp_path / "home", tracking_uri=False, limits=Limits()).limits == Limits()  # given limits win
    monkeypatch.setenv("WORKBENCH_MAX_ZIP_MEMBERS", "lots")
    with pytest.raises(InvalidRequest, match="WORKBENCH_MAX_ZIP_MEMBERS must be a whole number"):
        Workbench(tmp_path / "home", tracking_uri=False)
