"""Randomised SIGKILLs of creates, updates and deletes under load; counts lost images on the files on disk.

Every operation is a real process (`python -m bench.campaign_kills --op ...`) on one shared home,
killed with SIGKILL at a random moment of its run, while a load process creates and deletes other
classifiers sharing the same tutorial photos. After each kill, before any sweep or repair, every
example row of every classifier must have its blob on disk with the content its sha256 names
(a lost image is one that does not). At the end a `workbench doctor --repair --grace-seconds 0`
must leave a clean store and no file nothing uses.

    PYTHONPATH=src .venv/bin/python -m bench.campaign_kills [--kills 50] [--seed 0]

Run it against an older tree (its `src` on PYTHONPATH) to count what that one loses.
Writes bench/kill_results.json (or `--out`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bench.campaign_common import ROOT, tutorial_images, variant_jpeg, zip_bytes

RESULTS = Path(__file__).with_name("kill_results.json")
SHARED_CLASSES = (
    "beagle",
    "husky",
    "goldenretriever",
    "dalmatian",
)  # original photos: the same blobs in many classifiers
UNIQUE_IMAGES = 40  # distinct variants per operation: blobs only that classifier uses
OP_WEIGHTS = {"create": 1, "update": 1, "delete": 2}  # deletes twice: the crash
MIN_CLASSIFIERS = 3  # below it, unkilled creates top the campaign's classifiers up before the next kill
SEED_TAG = 10_000  # tags of the top-up classifiers' own photos (the kills use 1 to 3 x kills)
KILL_SPREAD = 1.2  # kill moments are uniform over this many times the operation's calibrated duration
OP_TIMEOUT_S = 120.0
READY = "ready"
DONE = "done"


@dataclass
class Kill:
    """One killed operation and what the files said afterwards."""

    op: str
    classifier_id: str
    after_s: float
    outcome: str  # what the commit decided: committed, rolled back
    newly_lost_images: int  # lost by this kill: lost images now less those lost before it
    lost_images: int  # in the store after this kill (of the killed operations' classifiers)
    pending_removals: int
    orphan_blobs: int


@dataclass
class Campaign:
    kills: list[Kill] = field(default_factory=list)
    finished_before_kill: int = 0
    load_operations: int = 0
    top_ups: int = 0
    lost_when_load_killed: int = 0  # every classifier, once the load is killed too, before any repair
    lost_after_repair: int = 0
    doctor_ok_after_repair: bool = False
    unused_files_after_repair: int = 0
    seconds: float = 0.0


# ---------------------------------------------------------------- the operations (child processes)


def unique_zip(folder: Path, tag: int) -> Path:
    """UNIQUE_IMAGES variants of tutorial photos whose bytes no other operation sends."""
    photos = tutorial_images("goldenretriever") + tutorial_images("beagle")
    rng = random.Random(tag)
    members = {f"u{tag}-{i}.jpg": variant_jpeg(rng.choice(photos), tag * 1000 + i) for i in range(UNIQUE_IMAGES)}
    path = folder / f"unique-{tag}.zip"
    path.write_bytes(zip_bytes(members))
    return path


def run_op(op: str, home: Path, target: str, tag: int, zips: Path) -> None:
    """One create, update or delete with tracking and training off; prints READY once the store is open."""
    from workbench import Workbench

    wb = Workbench(home, train=False, resume=False, tracking_uri=False)
    _ = wb.store  # the start-up sweep runs before the kill window opens
    print(READY, flush=True)
    rng = random.Random(tag)
    shared = rng.sample(SHARED_CLASSES, 2)
    if op == "create":
        record = wb.create_classifier(
            f"k{tag}",
            {shared[0]: zips / f"{shared[0]}.zip", f"mine{tag}": zips / f"unique-{tag}.zip"},
            negative_examples=zips / "cats.zip",
        )
        print(record["classifier_id"], flush=True)  # before DONE: the calibration reads it
    elif op == "update":
        wb.update_classifier(
            target, positive_examples={shared[1]: zips / f"{shared[1]}.zip", f"more{tag}": zips / f"unique-{tag}.zip"}
        )
    else:
        wb.delete_classifier(target)
    print(DONE, flush=True)


def run_load(home: Path, zips: Path, seed: int) -> None:
    """The load: creates and deletes classifiers of shared and own photos until killed; prints a line per operation."""
    from workbench import Workbench

    wb = Workbench(home, train=False, resume=False, tracking_uri=False)
    rng = random.Random(seed)
    tag = 900_000
    while True:
        tag += 1
        shared = rng.sample(SHARED_CLASSES, 2)
        created = wb.create_classifier(
            f"load{tag}", {c: zips / f"{c}.zip" for c in shared}, negative_examples=zips / "cats.zip"
        )
        print("created", flush=True)
        wb.delete_classifier(created["classifier_id"])
        print("deleted", flush=True)


# ---------------------------------------------------------------- checks on the files


def rows(home: Path, query: str, *args: object) -> list[tuple]:
    with sqlite3.connect(home / "workbench.db", timeout=60) as db:
        return db.execute(query, args).fetchall()


def lost_images(home: Path, names_like: str = "%") -> int:
    """Example rows (classifiers named like `names_like`) whose blob is gone or holds other bytes, read from the files.

    While the load runs, only the killed operations' classifiers (`k%`) are counted: a snapshot can see a
    load classifier whose delete is under way, a state that ends with that delete (unless it is killed:
    the load is killed once at the end, and then every classifier is counted).
    """
    found = rows(
        home, "SELECT e.sha256 FROM examples e JOIN classifiers c USING (classifier_id) WHERE c.name LIKE ?", names_like
    )
    lost = 0
    for sha in {sha for (sha,) in found}:
        path = home / "blobs" / sha[:2] / sha
        if not path.is_file() or hashlib.sha256(path.read_bytes()).hexdigest() != sha:
            lost += sum(1 for (other,) in found if other == sha)
    return lost


def blob_files(home: Path) -> set[str]:
    return {p.name for p in (home / "blobs").glob("*/*") if p.is_file() and not p.name.startswith(".tmp-")}


def pending_removals(home: Path) -> int:
    try:
        return rows(home, "SELECT COUNT(*) FROM pending_removals")[0][0]
    except sqlite3.OperationalError:  # an older store has no such table
        return 0


def classifier_ids(home: Path) -> list[str]:
    return [cid for (cid,) in rows(home, "SELECT classifier_id FROM classifiers WHERE name LIKE 'k%' ORDER BY created")]


# ---------------------------------------------------------------- the campaign


def op_command(op: str, home: Path, target: str, tag: int, zips: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "bench.campaign_kills",
        "--op",
        op,
        "--home",
        str(home),
        "--target",
        target,
        "--tag",
        str(tag),
        "--zips",
        str(zips),
    ]


def start(command: list[str]) -> subprocess.Popen:
    env = {**os.environ, "WORKBENCH_TRACKING_URI": "none", "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)


def wait_ready(process: subprocess.Popen) -> None:
    line = process.stdout.readline().strip()
    assert line == READY, f"the operation did not start: {line!r}"


def calibrate(home: Path, zips: Path, tag: int) -> dict[str, float]:
    """Seconds each operation takes from READY to DONE, unkilled (sets the kill window)."""
    seconds = {}
    target = ""
    for op in ("create", "update", "delete"):
        unique_zip(zips, tag)
        process = start(op_command(op, home, target, tag, zips))
        wait_ready(process)
        began = time.monotonic()
        lines = [process.stdout.readline().strip()]
        while lines[-1] != DONE:
            lines.append(process.stdout.readline().strip())
            assert process.poll() is None or lines[-1], f"calibration {op} failed"
        seconds[op] = time.monotonic() - began
        process.communicate(timeout=OP_TIMEOUT_S)
        assert process.returncode == 0, f"calibration {op} failed"
        if op == "create":
            target = lines[0]
    return seconds


def top_up(home: Path, zips: Path, campaign: Campaign) -> None:
    """Creates classifiers, unkilled, until updates and deletes have MIN_CLASSIFIERS targets (an even kill mix)."""
    while len(classifier_ids(home)) < MIN_CLASSIFIERS:
        tag = SEED_TAG + campaign.top_ups
        campaign.top_ups += 1
        unique_zip(zips, tag)
        process = start(op_command("create", home, "", tag, zips))
        process.communicate(timeout=OP_TIMEOUT_S)
        assert process.returncode == 0, "a top-up create failed"


def choose(rng: random.Random, home: Path) -> tuple[str, str]:
    """The next operation and its target classifier ("" for a create)."""
    op = rng.choices(list(OP_WEIGHTS), weights=list(OP_WEIGHTS.values()))[0]
    return op, rng.choice(classifier_ids(home)) if op != "create" else ""


def outcome(op: str, home: Path, target: str, before: set[str], tag: int) -> str:
    """What the killed operation's commit decided, read from the store."""
    now = set(classifier_ids(home))
    if op == "create":
        return "committed" if now - before else "rolled back"
    if op == "delete":
        return "rolled back" if target in now else "committed"
    added = rows(
        home, "SELECT 1 FROM examples WHERE classifier_id = ? AND class_name = ? LIMIT 1", target, f"more{tag}"
    )
    return "committed" if added else "rolled back"


def one_kill(
    rng: random.Random, home: Path, zips: Path, tag: int, seconds: dict[str, float], campaign: Campaign
) -> None:
    top_up(home, zips, campaign)
    op, target = choose(rng, home)
    before = set(classifier_ids(home))
    lost_before = lost_images(home, "k%")
    unique_zip(zips, tag)
    process = start(op_command(op, home, target, tag, zips))
    wait_ready(process)
    after_s = rng.uniform(0, KILL_SPREAD * seconds[op])
    time.sleep(after_s)
    if process.poll() is not None:
        process.communicate()
        campaign.finished_before_kill += 1
        return
    os.kill(process.pid, signal.SIGKILL)
    process.communicate()
    referenced = {sha for (sha,) in rows(home, "SELECT DISTINCT sha256 FROM examples")}
    lost = lost_images(home, "k%")
    kill = Kill(
        op,
        target,
        round(after_s, 3),
        outcome(op, home, target, before, tag),
        max(0, lost - lost_before),
        lost,
        pending_removals(home),
        len(blob_files(home) - referenced),
    )
    campaign.kills.append(kill)
    print(
        f"kill {len(campaign.kills):3d}: {op:6s} after {after_s:5.2f} s, {kill.outcome:11s} "
        f"lost {kill.newly_lost_images} (in store {kill.lost_images}), "
        f"pending {kill.pending_removals}, orphans {kill.orphan_blobs}",
        flush=True,
    )


def finish(home: Path, campaign: Campaign) -> None:
    """Repairs what the kills left and checks the store is whole and holds no file nothing uses."""
    done = subprocess.run(
        [sys.executable, "-m", "workbench", "--home", str(home), "doctor", "--repair", "--grace-seconds", "0"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    check = subprocess.run(
        [sys.executable, "-m", "workbench", "--home", str(home), "doctor"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    campaign.doctor_ok_after_repair = done.returncode == 0 and check.returncode == 0
    if not campaign.doctor_ok_after_repair:
        print(check.stdout[-3000:], file=sys.stderr)
    referenced = {sha for (sha,) in rows(home, "SELECT DISTINCT sha256 FROM examples")}
    campaign.lost_after_repair = lost_images(home)
    campaign.unused_files_after_repair = len(blob_files(home) - referenced)


def run_campaign(kills: int, seed: int) -> Campaign:
    rng = random.Random(seed)
    campaign = Campaign()
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="kill-campaign-") as folder:
        home, zips = Path(folder) / "home", Path(folder) / "zips"
        zips.mkdir()
        for name in (*SHARED_CLASSES, "cats"):
            (zips / f"{name}.zip").write_bytes(zip_bytes({p.name: p.read_bytes() for p in tutorial_images(name)}))
        seconds = calibrate(home, zips, 1)
        print("calibrated (s from ready to done):", {k: round(v, 2) for k, v in seconds.items()}, flush=True)
        load = start(
            [
                sys.executable,
                "-m",
                "bench.campaign_kills",
                "--load",
                "--home",
                str(home),
                "--zips",
                str(zips),
                "--tag",
                str(seed),
            ]
        )
        try:
            tag = 2
            while len(campaign.kills) < kills and tag < 3 * kills + 2:
                one_kill(rng, home, zips, tag, seconds, campaign)
                tag += 1
        finally:
            os.kill(load.pid, signal.SIGKILL)  # the load's own end is one more kill
            out, _ = load.communicate()
            campaign.load_operations = len(out.split())
        campaign.lost_when_load_killed = lost_images(home)
        finish(home, campaign)
    campaign.seconds = round(time.monotonic() - began, 1)
    return campaign


def summary(campaign: Campaign) -> dict:
    by_op: dict[str, dict[str, int]] = {}
    for kill in campaign.kills:
        counts = by_op.setdefault(kill.op, {"kills": 0, "committed": 0, "rolled back": 0, "lost_images": 0})
        counts["kills"] += 1
        counts[kill.outcome] += 1
        counts["lost_images"] += kill.newly_lost_images
    return {
        "kills": len(campaign.kills),
        "finished_before_kill": campaign.finished_before_kill,
        "kills_that_lost_images": sum(1 for k in campaign.kills if k.newly_lost_images),
        "lost_images": sum(k.newly_lost_images for k in campaign.kills),
        "lost_images_worst_kill": max((k.newly_lost_images for k in campaign.kills), default=0),
        "kills_leaving_pending_removals": sum(1 for k in campaign.kills if k.pending_removals),
        "by_op": by_op,
        "load_operations": campaign.load_operations,
        "top_up_creates": campaign.top_ups,
        "lost_when_load_killed": campaign.lost_when_load_killed,
        "lost_after_repair": campaign.lost_after_repair,
        "doctor_ok_after_repair": campaign.doctor_ok_after_repair,
        "unused_files_after_repair": campaign.unused_files_after_repair,
        "seconds": campaign.seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--label", default="", help="a name for this run in the results file (e.g. the commit)")
    parser.add_argument("--op", choices=list(OP_WEIGHTS), help=argparse.SUPPRESS)
    parser.add_argument("--load", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--home", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--target", default="", help=argparse.SUPPRESS)
    parser.add_argument("--tag", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--zips", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.op:
        return run_op(args.op, args.home, args.target, args.tag, args.zips)
    if args.load:
        return run_load(args.home, args.zips, args.tag)
    load_at_start = os.getloadavg()
    campaign = run_campaign(args.kills, args.seed)
    result = {
        "label": args.label,
        "seed": args.seed,
        **summary(campaign),
        "load_average_at_start": load_at_start,
        "load_average_at_end": os.getloadavg(),
        "kill_log": [asdict(k) for k in campaign.kills],
    }
    print(json.dumps({k: v for k, v in result.items() if k != "kill_log"}, indent=2))
    runs = json.loads(args.out.read_text()) if args.out.exists() else {}
    runs[args.label or "latest"] = result
    args.out.write_text(json.dumps(runs, indent=2) + "\n")


if __name__ == "__main__":
    main()
