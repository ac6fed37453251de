"""Campaign part 3: SIGKILL a training process at several points, then check that everything converges.

Each point gets a copy of one base home (classifier `pair`, v1 ready, beagle and husky) and its own
MLflow store (SQLite in the temporary folder, empty: the recovery must log v1 too). The killed
process is a `workbench create`/`update` CLI, or, where the point is a training stage, a Python
process with a listener that holds the training thread at that stage until the kill lands. Then:

* single process: `workbench wait` (a new process) resumes the training;
* two processes: a `workbench serve` on the same home must adopt the orphan by itself (lease expiry),
  timed from the kill to the first GET that says `ready`.

For each point: did the classifier reach `ready`; did the serving version stay the last good one
until then; is `workbench doctor` clean (after `--repair --grace-seconds 0` if it was not); did MLflow
converge (a FINISHED version run for every stored version, registered, alias `serving` = serving version).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import traceback
from pathlib import Path

from bench.campaign_common import VERSION, Server, cli, tutorial_images, variant_jpeg, wait_settled

TRAIN_S = 600.0
CONVERGE_S = 180.0
POLL_S = 0.02
SHORT_LEASES = {"WORKBENCH_LEASE_S": "3", "WORKBENCH_LEASE_RENEW_S": "0.5", "WORKBENCH_LEASE_SCAN_S": "0.5"}
DEFAULT_LEASES = {
    "WORKBENCH_LEASE_S": "",
    "WORKBENCH_LEASE_RENEW_S": "",
    "WORKBENCH_LEASE_SCAN_S": "",
}  # "" = the defaults
NEW_IMAGES = 50
ME = {"me": "campaign-key-me-0003"}  # the CLI's classifiers belong to `me`

HOLD_AT_STAGE = """
import sys, threading, time
from pathlib import Path
from workbench import Workbench

home, cid, folder, class_name, stage = sys.argv[1], sys.argv[2], Path(sys.argv[3]), sys.argv[4], sys.argv[5]
wb = Workbench(home)  # tracking from WORKBENCH_TRACKING_URI
if stage == "logging":
    assert wb.tracker.flush(timeout=600)  # v1 logged: the next RUNNING run is v2's
    print("logged", flush=True)

def hold(event):
    if event.classifier_id == cid and event.stage == stage:
        print(stage, flush=True)
        time.sleep(3600)  # the training thread waits here until the campaign kills this process

wb.subscribe(hold)
wb.update_classifier(cid, positive_examples={class_name: folder})
wb.wait(cid, timeout=600)
print("trained", flush=True)
threading.Event().wait()  # the tracker logs v2 in the background until the kill
"""


def env_for(mlruns: Path, leases: dict[str, str]) -> dict[str, str]:
    env = {**os.environ, "WORKBENCH_TRACKING_URI": str(mlruns), **leases}
    return {k: v for k, v in env.items() if v != ""}


def fresh_images(folder: Path, tag: int, count: int = NEW_IMAGES) -> Path:
    """`count` images never embedded before (tutorial dalmatians with a unique corner pixel)."""
    folder.mkdir(parents=True)
    sources = tutorial_images("dalmatian")
    for i in range(count):
        (folder / f"d{tag}-{i}.jpg").write_bytes(variant_jpeg(sources[i % len(sources)], tag * 1000 + i))
    return folder


def base_home(folder: Path) -> tuple[Path, str]:
    """A home with `pair` (beagle, husky; v1 ready), trained by the CLI with tracking off."""
    home = folder / "base"
    sets = folder / "base-sets"
    for name in ("beagle", "husky"):
        (sets / name).mkdir(parents=True)
        for path in tutorial_images(name, 12):
            shutil.copyfile(path, sets / name / path.name)
    env = {**os.environ, "WORKBENCH_TRACKING_URI": "none"}
    done = subprocess.run(
        cli(home, "create", "pair", "-p", f"beagle={sets / 'beagle'}", "-p", f"husky={sets / 'husky'}"),
        env=env,
        capture_output=True,
        text=True,
        timeout=TRAIN_S,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return home, json.loads(done.stdout)["classifier_id"]


def db_row(home: Path, cid: str) -> dict | None:
    with sqlite3.connect(f"file:{home / 'workbench.db'}?mode=ro", uri=True, timeout=30) as db:
        db.row_factory = sqlite3.Row
        row = db.execute("SELECT * FROM classifiers WHERE classifier_id = ?", (cid,)).fetchone()
        return dict(row) if row else None


def db_rows(home: Path) -> list[dict]:
    if not (home / "workbench.db").exists():
        return []
    with sqlite3.connect(f"file:{home / 'workbench.db'}?mode=ro", uri=True, timeout=30) as db:
        db.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in db.execute("SELECT * FROM classifiers")]
        except sqlite3.OperationalError:  # not created yet
            return []


def embedded(home: Path) -> int:
    path = home / "embeddings.db"
    if not path.exists():
        return 0
    with sqlite3.connect(path, timeout=30) as db:
        try:
            return db.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0]
        except sqlite3.OperationalError:
            return 0


def running_runs(mlruns: Path) -> int:
    path = mlruns / "mlflow.db"
    if not path.exists():
        return 0
    with sqlite3.connect(path, timeout=30) as db:
        try:
            return db.execute("SELECT COUNT(*) FROM runs WHERE status = 'RUNNING'").fetchone()[0]
        except sqlite3.OperationalError:
            return 0


def poll(condition, deadline_s: float, process: subprocess.Popen | None = None) -> bool:
    """Polls `condition()` until true (True), the deadline passes or `process` exits (False)."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if condition():
            return True
        if process is not None and process.poll() is not None:
            return False
        time.sleep(POLL_S)
    return False


def kill(process: subprocess.Popen, reap: bool = True) -> float:
    """SIGKILL (reaped, or left a zombie until the caller reaps it); the monotonic time of the kill."""
    at = time.monotonic()
    if process.poll() is None:
        os.kill(process.pid, signal.SIGKILL)
    if reap:
        process.wait()
    return at


# MLflow ----------------------------------------------------------------------------------------------
def mlflow_out_of_sync(home: Path, mlruns: Path) -> list[str]:
    """What MLflow lacks against the store (empty once converged): the tracker's own rule, from outside."""
    from mlflow import MlflowClient

    from workbench.store.database import Store
    from workbench.tracking.recovery import out_of_sync
    from workbench.tracking.target import tracking_target

    uri = tracking_target(mlruns).uri
    return out_of_sync(MlflowClient(tracking_uri=uri, registry_uri=uri), Store(home))


def converged(home: Path, mlruns: Path, within_s: float) -> tuple[bool, float, list[str]]:
    """Polls MLflow against the store; (converged, seconds it took, what was still missing)."""
    started = time.monotonic()
    while True:
        try:
            missing = mlflow_out_of_sync(home, mlruns)
        except Exception as exc:
            missing = [f"MLflow not readable yet: {exc!r}"[:200]]
        if not missing or time.monotonic() - started > within_s:
            return not missing, round(time.monotonic() - started, 1), missing
        time.sleep(1.0)


def doctor(home: Path, env: dict) -> dict:
    """`workbench doctor`; if not clean, `--repair --grace-seconds 0` and doctor again."""
    first = subprocess.run(cli(home, "doctor"), env=env, capture_output=True, text=True, timeout=TRAIN_S)
    result = {"doctor_clean_at_once": first.returncode == 0}
    if first.returncode != 0:
        result["doctor_findings"] = [f.get("kind") for f in json.loads(first.stdout or "{}").get("findings", [])][:20]
        subprocess.run(
            cli(home, "doctor", "--repair", "--grace-seconds", "0"), env=env, capture_output=True, timeout=TRAIN_S
        )
        again = subprocess.run(cli(home, "doctor"), env=env, capture_output=True, text=True, timeout=TRAIN_S)
        result["doctor_clean_after_repair"] = again.returncode == 0
        if again.returncode != 0:
            result["doctor_after_repair"] = again.stdout[-1500:]
    return result


# the points --------------------------------------------------------------------------------------------
class Point:
    """One crash point: a copy of the base home, its own MLflow store, and the checks after recovery."""

    def __init__(self, folder: Path, base: Path, cid: str, name: str, leases: dict[str, str]) -> None:
        self.folder = folder / name
        self.home = self.folder / "home"
        shutil.copytree(base, self.home)
        self.mlruns = self.folder / "mlruns"
        self.cid, self.name = cid, name
        self.env = env_for(self.mlruns, leases)
        self.result: dict = {"point": name}

    def serving(self, cid: str | None = None) -> int | None:
        row = db_row(self.home, cid or self.cid)
        return None if row is None else row["serving_version"]

    def resume_with_wait(self, cid: str) -> None:
        """Single process: `workbench wait` (a new process) picks the orphan up and finishes it."""
        serving_before = self.serving(cid)
        started = time.monotonic()
        done = subprocess.run(
            cli(self.home, "wait", cid, "--timeout", str(TRAIN_S)),
            env=self.env,
            capture_output=True,
            text=True,
            timeout=TRAIN_S + 60,
        )
        self.result["resumed_by"] = "workbench wait"
        self.result["resume_s"] = round(time.monotonic() - started, 1)
        self.result["serving_kept_until_resumed"] = serving_before
        if done.returncode != 0:
            self.result["resume_error"] = done.stderr[-1000:]

    def finish(self, cid: str, expect_serving_before: int | None) -> dict:
        """The checks after recovery: ready, versions, doctor, MLflow."""
        row = db_row(self.home, cid)
        self.result["status"] = row["status"] if row else "missing"
        self.result["reached_ready"] = self.result["status"] == "ready"
        self.result["serving_version_after"] = row and row["serving_version"]
        if "serving_stayed_last_good" not in self.result:
            self.result["serving_stayed_last_good"] = (
                self.result.get("serving_kept_until_resumed") == expect_serving_before
            )
        self.result.update(doctor(self.home, self.env))
        ok, seconds, missing = converged(self.home, self.mlruns, CONVERGE_S)
        self.result.update({"mlflow_converged": ok, "mlflow_converge_s": seconds, "mlflow_missing": missing[:5]})
        return self.result


def point_create_acknowledged(folder: Path, base: Path, cid: str) -> dict:
    """A `workbench create` CLI killed as soon as its classifier is in the store (the create acknowledged)."""
    point = Point(folder, base, cid, "create: killed once acknowledged (CLI)", {})
    sets = point.folder / "sets"
    a, b = fresh_images(sets / "spots", 1), fresh_images(sets / "dots", 2)
    before = {r["classifier_id"] for r in db_rows(point.home)}
    process = subprocess.Popen(
        cli(point.home, "create", "fresh", "-p", f"spots={a}", "-p", f"dots={b}"),
        env=point.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    new = lambda: [r for r in db_rows(point.home) if r["classifier_id"] not in before]  # noqa: E731
    seen = poll(lambda: new(), TRAIN_S, process)
    kill(process)
    if not seen:
        return {**point.result, "error": "the create finished or failed before it was acknowledged"}
    created = new()[0]
    point.result["status_at_kill"] = created["status"]
    point.resume_with_wait(created["classifier_id"])
    return point.finish(created["classifier_id"], None)


def point_update_embedding(folder: Path, base: Path, cid: str) -> dict:
    """A `workbench update` CLI killed while it embeds new images."""
    point = Point(folder, base, cid, "update: killed while embedding (CLI)", {})
    images = fresh_images(point.folder / "dalmatian", 3)
    before = embedded(point.home)
    process = subprocess.Popen(
        cli(point.home, "update", cid, "-p", f"dalmatian={images}"),
        env=point.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    seen = poll(lambda: embedded(point.home) > before, TRAIN_S, process)
    kill(process)
    point.result["embedded_at_kill"] = f"{embedded(point.home) - before} of {NEW_IMAGES}"
    if not seen:
        return {**point.result, "error": "the update ended before it embedded anything"}
    point.resume_with_wait(cid)
    return point.finish(cid, 1)


def point_held_stage(folder: Path, base: Path, cid: str, stage: str, label: str) -> dict:
    """A Python process updating `pair`, killed while its training thread is at `stage` (held there)."""
    point = Point(folder, base, cid, label, {})
    images = fresh_images(point.folder / "dalmatian", 4, 12)
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD_AT_STAGE, str(point.home), cid, str(images), "dalmatian", stage],
        env=point.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = process.stdout.readline().strip()
    kill(process)
    if line != stage:
        return {**point.result, "error": f"never reached {stage}: {line!r} {process.stderr.read()[-1500:]}"}
    point.result["versions_at_kill"] = len(_versions(point.home, cid))
    point.resume_with_wait(cid)
    return point.finish(cid, 1 if stage != "ready" else 2)


def point_mlflow_logging(folder: Path, base: Path, cid: str) -> dict:
    """A Python process killed while its tracker logs v2 to MLflow (a run RUNNING), after v2 was saved."""
    point = Point(folder, base, cid, "update: killed while logging to MLflow", {})
    images = fresh_images(point.folder / "dalmatian", 5, 12)
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD_AT_STAGE, str(point.home), cid, str(images), "dalmatian", "logging"],
        env=point.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    if process.stdout.readline().strip() != "logged":
        kill(process)
        return {**point.result, "error": f"v1 never logged: {process.stderr.read()[-1500:]}"}
    saw_run = poll(lambda: len(_versions(point.home, cid)) >= 2 and running_runs(point.mlruns) > 0, TRAIN_S, process)
    kill(process)
    point.result["run_running_at_kill"] = saw_run
    point.result["versions_at_kill"] = len(_versions(point.home, cid))
    point.resume_with_wait(cid)
    return point.finish(cid, point.result["versions_at_kill"])


def _versions(home: Path, cid: str) -> list[int]:
    with sqlite3.connect(f"file:{home / 'workbench.db'}?mode=ro", uri=True, timeout=30) as db:
        return [
            v for (v,) in db.execute("SELECT version FROM versions WHERE classifier_id = ? ORDER BY version", (cid,))
        ]


def point_two_process(folder: Path, base: Path, cid: str, leases: dict[str, str], label: str, reap: bool) -> dict:
    """`workbench serve` on the home; a CLI `update` on the same home killed mid-embedding; the server adopts it.

    `reap=False` leaves the killed CLI a zombie (this process reaps it only after the adoption): its PID
    still answers kill(0), which once made the classifier look owned forever.
    """
    point = Point(folder, base, cid, label, leases)
    images = fresh_images(point.folder / "dalmatian", 6)
    server = Server(point.home, env={k: v for k, v in point.env.items() if k.startswith("WORKBENCH_")}, keys=ME)
    with server, server.client("me") as client:
        before = embedded(point.home)
        process = subprocess.Popen(
            cli(point.home, "update", cid, "-p", f"dalmatian={images}"),
            env=point.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        seen = poll(
            lambda: embedded(point.home) > before and (db_row(point.home, cid) or {}).get("job_owner"), TRAIN_S, process
        )
        killed_at = kill(process, reap)
        point.result["killed_process"] = "reaped at once" if reap else "left a zombie until adopted"
        if not seen:
            return {**point.result, "error": "the CLI update ended before it embedded anything"}
        serving_during, statuses = set(), set()
        while time.monotonic() - killed_at < TRAIN_S:
            serving = point.serving()  # read before the GET: counts only if the GET then still says retraining
            record = client.get(f"/v3/classifiers/{cid}", params=VERSION).json()
            statuses.add(record["status"])
            if record["status"] in ("ready", "failed"):
                break
            serving_during.add(serving)
            time.sleep(0.2)
        process.wait()
        point.result["adoption_s"] = round(time.monotonic() - killed_at, 1)
        point.result["statuses_seen"] = sorted(statuses)
        point.result["serving_during_adoption"] = sorted(serving_during, key=str)
        point.result["serving_stayed_last_good"] = serving_during <= {1}
        point.result["resumed_by"] = "the running server (its orphan scan)"
        point.result["lease_settings"] = {k: (v or "default") for k, v in leases.items()} or "defaults"
        settled = wait_settled(client, cid, TRAIN_S)
        point.result["classes_after"] = sorted(c["class"] for c in settled.get("classes", []))
        point.result["mlflow_converged_while_serving"] = converged(point.home, point.mlruns, CONVERGE_S)[0]
    return point.finish(cid, 1)


def run_crash_points(folder: Path, quick: bool) -> list[dict]:
    folder.mkdir(parents=True)
    base, cid = base_home(folder)
    points = [
        lambda: point_create_acknowledged(folder, base, cid),
        lambda: point_update_embedding(folder, base, cid),
        lambda: point_held_stage(folder, base, cid, "fitting", "update: killed while fitting"),
        lambda: point_held_stage(folder, base, cid, "ready", "update: killed just after v2 was saved"),
        lambda: point_mlflow_logging(folder, base, cid),
        lambda: point_two_process(
            folder, base, cid, SHORT_LEASES, "two processes: CLI update killed, reaped (short leases)", True
        ),
        lambda: point_two_process(
            folder, base, cid, DEFAULT_LEASES, "two processes: CLI update killed, zombie (default leases)", False
        ),
        lambda: point_two_process(
            folder, base, cid, DEFAULT_LEASES, "two processes: CLI update killed, reaped (default leases)", True
        ),
    ]
    if quick:
        points = points[:2] + points[4:6]
    if only := os.environ.get("CAMPAIGN_CRASH_POINTS"):  # e.g. "6,7": rerun some points while developing
        points = [points[int(i) - 1] for i in only.split(",")]
    results = []
    for run in points:
        started = time.monotonic()
        try:
            result = run()
        except Exception as exc:  # a campaign reports what broke and goes on
            result = {
                "point": f"point {points.index(run) + 1}",
                "error": repr(exc)[:300],
                "traceback": traceback.format_exc()[-3000:],
            }
        result["seconds"] = round(time.monotonic() - started, 1)
        print(f"crash point done: {result.get('point')}: {describe(result)}", file=sys.stderr, flush=True)
        results.append(result)
    return results


def describe(point: dict) -> str:
    """One line: the outcome of a crash point."""
    if "error" in point:
        return f"ERROR {point['error'][:150]}"
    doctor_ok = point.get("doctor_clean_at_once") or point.get("doctor_clean_after_repair")
    parts = [
        f"ready={point.get('reached_ready')}",
        f"serving kept={point.get('serving_stayed_last_good')}",
        f"doctor={'clean' if point.get('doctor_clean_at_once') else ('repaired' if doctor_ok else 'NOT CLEAN')}",
        f"mlflow={'converged' if point.get('mlflow_converged') else 'NOT CONVERGED'}",
    ]
    if "adoption_s" in point:
        parts.append(f"adopted in {point['adoption_s']} s")
    else:
        parts.append(f"resumed in {point.get('resume_s')} s")
    return ", ".join(parts)
