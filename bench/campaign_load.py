"""Campaign part 2: mixed load from two owners, then a check that no acknowledged update was lost.

Eight async clients (four per owner) draw operations at random: classify dogs.jpg and a zip of the
tutorial's test images, get, list, create small classifiers, update the owner's tracked classifiers
with images never seen before (a new class, or more images for `beagle`), delete classifiers they
created, and try the other owner's classifiers (must be 404, never a leak). Once the requests are
spent, every live classifier must settle; each acknowledged update's images must then be in its
classifier's classes (GET) and in its examples and serving version (the home's store, read after the
server stops).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.campaign_common import (
    DOGS_JPG,
    KEYS,
    TUTORIAL,
    VERSION,
    Server,
    percentile,
    sha256,
    tutorial_images,
    variant_jpeg,
    wait_settled,
    zip_bytes,
)

OWNERS = tuple(KEYS)
CLIENTS_PER_OWNER = 4
TRACKED_PER_OWNER = 2
UPDATE_IMAGES = 10
SETTLE_S = 900.0
WEIGHTS = {  # operation: weight
    "classify_dogs": 40,
    "classify_zip": 8,
    "get": 15,
    "list": 10,
    "cross_get": 4,
    "cross_classify": 3,
    "cross_update": 1,
    "create": 2,
    "update": 4,
    "delete": 2,
}
SOURCE_CLASSES = ("beagle", "husky", "goldenretriever", "dalmatian", "cats")


@dataclass
class Update:
    """An acknowledged update: which classifier, which class, the sha256 of every image it sent."""

    owner: str
    classifier_id: str
    class_name: str
    shas: list[str]


@dataclass
class LoadState:
    budget: int
    deadline: float
    tracked: dict[str, list[str]] = field(default_factory=dict)
    ephemeral: dict[str, list[str]] = field(default_factory=dict)
    deleted: set[str] = field(default_factory=set)
    updates: list[Update] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    unexpected: list[str] = field(default_factory=list)
    leaks: list[str] = field(default_factory=list)
    classify_ms: list[float] = field(default_factory=list)
    sent: int = 0
    tag: int = 100_000

    def next_tag(self) -> int:
        self.tag += 1
        return self.tag

    def spent(self) -> bool:
        return self.sent >= self.budget or time.monotonic() > self.deadline


def small_set(name: str, start: int, count: int = 10) -> bytes:
    return zip_bytes({f"{name}{i}.jpg": variant_jpeg(p, start + i) for i, p in enumerate(tutorial_images(name, count))})


def new_images(state: LoadState, rng: random.Random) -> dict[str, bytes]:
    """UPDATE_IMAGES images never sent before (tutorial photos with a unique corner pixel)."""
    source = tutorial_images(rng.choice(SOURCE_CLASSES))
    return {f"n{state.next_tag()}.jpg": variant_jpeg(rng.choice(source), state.tag) for _ in range(UPDATE_IMAGES)}


def setup(server: Server) -> dict[str, list[str]]:
    """Each owner's tracked classifiers (beagle, husky), trained to `ready`."""
    tracked = {}
    for o, owner in enumerate(OWNERS):
        with server.client(owner) as client:
            ids = []
            for t in range(TRACKED_PER_OWNER):
                files = {
                    "beagle_positive_examples": ("b.zip", small_set("beagle", 20_000 + 100 * (2 * o + t))),
                    "husky_positive_examples": ("h.zip", small_set("husky", 30_000 + 100 * (2 * o + t))),
                }
                answer = client.post(
                    "/v3/classifiers", params=VERSION, data={"name": f"tracked-{owner}-{t}"}, files=files
                )
                answer.raise_for_status()
                ids.append(answer.json()["classifier_id"])
            for cid in ids:
                assert wait_settled(client, cid, SETTLE_S)["status"] == "ready"
            tracked[owner] = ids
    return tracked


async def operation(
    kind: str, owner: str, client: httpx.AsyncClient, state: LoadState, rng: random.Random, blobs: dict[str, bytes]
) -> None:
    """Sends one request of `kind` and records what came back."""
    other = next(o for o in OWNERS if o != owner)
    started = time.perf_counter()
    expect: tuple[int, ...] = (200,)
    update: Update | None = None
    if kind in ("classify_dogs", "classify_zip"):
        image = ("dogs.jpg", blobs["dogs"]) if kind == "classify_dogs" else ("test.zip", blobs["test_zip"])
        ids = ",".join([rng.choice(state.tracked[owner]), "default"])
        request = client.post(
            "/v3/classify", params=VERSION, data={"classifier_ids": ids}, files={"images_file": image}
        )
    elif kind == "get":
        cid = rng.choice(state.tracked[owner])
        request = client.get(f"/v3/classifiers/{cid}", params=VERSION)
    elif kind == "list":
        request = client.get("/v3/classifiers", params={**VERSION, "verbose": rng.choice(["true", "false"])})
    elif kind == "cross_get":
        expect = (404,)
        request = client.get(f"/v3/classifiers/{rng.choice(state.tracked[other])}", params=VERSION)
    elif kind == "cross_classify":
        expect = (404,)
        request = client.post(
            "/v3/classify",
            params=VERSION,
            data={"classifier_ids": rng.choice(state.tracked[other])},
            files={"images_file": ("dogs.jpg", blobs["dogs"])},
        )
    elif kind == "cross_update":
        expect = (404,)
        request = client.post(
            f"/v3/classifiers/{rng.choice(state.tracked[other])}",
            params=VERSION,
            files={"negative_examples": ("n.zip", blobs["beagle_zip"])},
        )
    elif kind == "create":
        files = {
            "beagle_positive_examples": ("b.zip", blobs["beagle_zip"]),
            "husky_positive_examples": ("h.zip", blobs["husky_zip"]),
        }
        request = client.post("/v3/classifiers", params=VERSION, data={"name": f"load-{owner}"}, files=files)
    elif kind == "update":
        cid = rng.choice(state.tracked[owner])
        images = new_images(state, rng)
        class_name = "beagle" if rng.random() < 0.5 else f"u{state.tag}"
        update = Update(owner, cid, class_name, [sha256(d) for d in images.values()])
        request = client.post(
            f"/v3/classifiers/{cid}",
            params=VERSION,
            files={f"{class_name}_positive_examples": ("u.zip", zip_bytes(images))},
        )
    elif kind == "delete":
        if not state.ephemeral[owner]:
            return
        cid = state.ephemeral[owner].pop(rng.randrange(len(state.ephemeral[owner])))
        state.deleted.add(cid)
        request = client.delete(f"/v3/classifiers/{cid}", params=VERSION)
    else:
        raise AssertionError(kind)
    state.sent += 1
    try:
        answer = await request
    except httpx.HTTPError as exc:
        state.statuses["transport"] += 1
        state.unexpected.append(f"{kind}: {exc!r}"[:300])
        return
    state.statuses[answer.status_code] += 1
    if answer.status_code not in expect:
        note = f"{kind}: {answer.status_code} {answer.text[:200]}"
        (state.leaks if kind.startswith("cross_") and answer.status_code < 300 else state.unexpected).append(note)
        return
    if kind.startswith("classify"):
        state.classify_ms.append(1000 * (time.perf_counter() - started))
    elif kind == "list":
        foreign = {c["classifier_id"] for c in answer.json()["classifiers"]} & set(
            state.tracked[other] + state.ephemeral[other]
        )
        if foreign:
            state.leaks.append(f"list of {owner} shows {sorted(foreign)}")
    elif kind == "create":
        state.ephemeral[owner].append(answer.json()["classifier_id"])
    elif update is not None:
        state.updates.append(update)


async def worker(server: Server, owner: str, seed: int, state: LoadState, blobs: dict[str, bytes]) -> None:
    rng = random.Random(seed)
    kinds, weights = zip(*WEIGHTS.items(), strict=True)
    async with server.async_client(owner) as client:
        while not state.spent():
            await operation(rng.choices(kinds, weights)[0], owner, client, state, rng, blobs)


async def drive(server: Server, state: LoadState, blobs: dict[str, bytes]) -> None:
    await asyncio.gather(
        *(
            worker(server, owner, 1000 * o + c, state, blobs)
            for o, owner in enumerate(OWNERS)
            for c in range(CLIENTS_PER_OWNER)
        )
    )


def settle_all(server: Server, state: LoadState) -> dict[str, dict]:
    """Every live classifier's record once it settles (or after SETTLE_S: then it counts as stuck)."""
    records = {}
    for owner in OWNERS:
        with server.client(owner) as client:
            for cid in state.tracked[owner] + state.ephemeral[owner]:
                records[cid] = wait_settled(client, cid, SETTLE_S)
    return records


def lost_updates(state: LoadState, records: dict[str, dict], home: Path) -> list[str]:
    """Acknowledged updates whose class is missing from GET, or whose images are not in the store or not trained."""
    from workbench.store.database import Store  # the home, read after the server has stopped

    store = Store(home)
    lost = []
    for update in state.updates:
        classes = {c["class"] for c in records[update.classifier_id].get("classes", [])}
        if update.class_name not in classes:
            lost.append(f"{update.classifier_id}: class {update.class_name} missing from GET")
            continue
        rows = {(r.class_name, r.sha256): r.example_id for r in store.examples(update.classifier_id)}
        missing = [s for s in update.shas if (update.class_name, s) not in rows]
        serving = store.classifier(update.classifier_id).serving_version
        trained_up_to = next(v.last_example_id for v in store.versions(update.classifier_id) if v.version == serving)
        untrained = [s for s in update.shas if rows.get((update.class_name, s), 0) > trained_up_to]
        if missing or untrained:
            lost.append(
                f"{update.classifier_id}/{update.class_name}: "
                f"{len(missing)} images missing, {len(untrained)} not trained"
            )
    return lost


def run_load(server: Server, requests: int, seconds: float) -> tuple[LoadState, dict]:
    """Drives the load; returns the state (to check after the server stops) and the figures so far."""
    blobs = {
        "dogs": DOGS_JPG.read_bytes(),
        "test_zip": zip_bytes({p.name: p.read_bytes() for p in sorted((TUTORIAL / "test").iterdir())}),
        "beagle_zip": small_set("beagle", 40_000),
        "husky_zip": small_set("husky", 40_100),
    }
    state = LoadState(budget=requests, deadline=0.0)
    state.tracked = setup(server)
    state.ephemeral = {owner: [] for owner in OWNERS}
    state.deadline = time.monotonic() + seconds
    started = time.monotonic()
    asyncio.run(drive(server, state, blobs))
    elapsed = time.monotonic() - started
    settle_started = time.monotonic()
    records = settle_all(server, state)
    stuck = [cid for cid, r in records.items() if r.get("status") not in ("ready", "failed")]
    failed = [f"{cid}: {r.get('explanation')}" for cid, r in records.items() if r.get("status") == "failed"]
    figures = {
        "clients": CLIENTS_PER_OWNER * len(OWNERS),
        "owners": len(OWNERS),
        "requests": state.sent,
        "seconds": round(elapsed, 1),
        "requests_per_s": round(state.sent / elapsed, 1),
        "by_status": {str(k): v for k, v in sorted(state.statuses.items(), key=str)},
        "5xx": sum(v for k, v in state.statuses.items() if isinstance(k, int) and k >= 500),
        "transport_errors": state.statuses["transport"],
        "unexpected": state.unexpected[:20],
        "unexpected_count": len(state.unexpected),
        "cross_owner_leaks": len(state.leaks),
        "leaks": state.leaks[:20],
        "acknowledged_updates": len(state.updates),
        "creates_acknowledged": len(state.ephemeral["alice"]) + len(state.ephemeral["bob"]) + len(state.deleted),
        "deletes": len(state.deleted),
        "classify_requests_ok": len(state.classify_ms),
        "classify_p50_ms": round(percentile(state.classify_ms, 0.5), 1),
        "classify_p99_ms": round(percentile(state.classify_ms, 0.99), 1),
        "settle_s": round(time.monotonic() - settle_started, 1),
        "stuck_classifiers": stuck,
        "failed_classifiers": failed,
    }
    return state, {"records": records, **figures}
