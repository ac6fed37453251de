"""The reliability campaign of issue 13, rerun: hostile inputs, mixed two-owner load, SIGKILLs in training, RSS;
and issue 22's classify-by-URL attacks and racing `workbench keys` (part `urls_keys`), amplification
(decoded bytes, zip members), connections (slowloris, idle sockets, slow bodies) and storage faults
(full disk, a foreign lock), and slow URL hosts with slowloris at once (together), one section each
(bench/campaign_<name>.py).

Drives a real `workbench serve` subprocess on 127.0.0.1 with httpx clients, and real CLI processes
killed with SIGKILL. Prints a table and writes bench/reliability_results.json.

    PYTHONPATH=src .venv/bin/python -m bench.reliability_campaign [--quick]

`--quick` sends a tenth of the load and runs fewer crash points (for development). `--parts urls_keys`
runs part 5 alone and keeps the other parts' figures in the results file; `--record-as KEY` stores
it under another key (the run before the fix: `urls_keys_before`). `--parts amplification,connections,storage
--suffix _before` records those sections under `<name>_before`.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench import campaign_crash, campaign_hostile, campaign_load, campaign_urls_keys
from bench.campaign_common import TUTORIAL, VERSION, Server, tutorial_images, variant_jpeg, wait_settled, zip_bytes

# issue 22's further sections, each a module with run_<name>(folder) -> dict and describe(result) -> lines
SECTIONS = ("amplification", "connections", "storage", "together")

RESULTS = Path(__file__).with_name("reliability_results.json")
FULL = {"requests": 3000, "seconds": 900.0}
QUICK = {"requests": 300, "seconds": 120.0}


def bob_private(server: Server) -> str:
    """A classifier of the second owner, for the cross-owner malformed requests."""
    with server.client("bob") as client:
        files = {
            name + "_positive_examples": (
                f"{name}.zip",
                zip_bytes(
                    {
                        f"{name}{i}.jpg": variant_jpeg(p, 70_000 + 100 * k + i)
                        for i, p in enumerate(tutorial_images(name, 10))
                    }
                ),
            )
            for k, name in enumerate(("beagle", "husky"))
        }
        answer = client.post("/v3/classifiers", params=VERSION, data={"name": "bob-private"}, files=files)
        answer.raise_for_status()
        cid = answer.json()["classifier_id"]
        assert wait_settled(client, cid, 600)["status"] == "ready"
        return cid


def served_parts(folder: Path, quick: bool, results: dict) -> None:
    """Parts 1, 2 and 4: hostile inputs and mixed load on one server, its memory around each."""
    home = folder / "home"
    home.mkdir(parents=True)
    server = Server(
        home, env={"WORKBENCH_TRACKING_URI": str(folder / "mlruns")}, extra_args=("--allow-file-root", str(TUTORIAL))
    )
    memory = results["server_memory"] = {}
    with server:
        memory["start"] = server.memory()
        other = bob_private(server)
        started = time.monotonic()
        rows = campaign_hostile.run_hostile_files(server)
        results["hostile_files"] = campaign_hostile.summarise(rows)
        rows_malformed = campaign_hostile.run_malformed(server, other)
        results["malformed_requests"] = campaign_hostile.summarise(rows_malformed)
        results["hostile_rows"] = rows + rows_malformed
        results["hostile_seconds"] = round(time.monotonic() - started, 1)
        memory["after_hostile"] = server.memory()
        size = QUICK if quick else FULL
        state, figures = campaign_load.run_load(server, size["requests"], size["seconds"])
        memory["after_load"] = server.memory()
        records = figures.pop("records")
    lost = campaign_load.lost_updates(state, records, home)
    results["mixed_load"] = {**figures, "lost_updates": len(lost), "lost": lost[:20]}


def table(results: dict) -> str:
    """The closing figures as a plain-text table."""
    hostile, malformed, load = results["hostile_files"], results["malformed_requests"], results["mixed_load"]
    memory = results["server_memory"]
    lines = [
        f"{'figure':<58} value",
        f"{'hostile files sent (requests)':<58} {hostile['inputs']}  {hostile['by_status']}",
        f"{'  neither 2xx nor Watson 4xx':<58} {len(hostile['bad'])}",
        f"{'malformed requests':<58} {malformed['inputs']}  {malformed['by_status']}",
        f"{'  neither 2xx nor Watson 4xx':<58} {len(malformed['bad'])}",
        f"{'mixed load: requests / clients / owners / seconds':<58} "
        f"{load['requests']} / {load['clients']} / {load['owners']} / {load['seconds']}",
        f"{'  by status':<58} {load['by_status']}",
        f"{'  5xx':<58} {load['5xx']}",
        f"{'  acknowledged updates / lost updates':<58} {load['acknowledged_updates']} / {load['lost_updates']}",
        f"{'  cross-owner leaks':<58} {load['cross_owner_leaks']}",
        f"{'  unexpected answers (not 5xx)':<58} {load['unexpected_count']}",
        f"{'  stuck classifiers after settling':<58} {len(load['stuck_classifiers'])}",
        f"{'  classify p50 / p99 ms (under load)':<58} {load['classify_p50_ms']} / {load['classify_p99_ms']}",
        f"{'server RSS MB: start / after hostile / after load':<58} "
        f"{memory['start']['rss_mb']} / {memory['after_hostile']['rss_mb']} / {memory['after_load']['rss_mb']}",
        f"{'server peak RSS (VmHWM) MB after load':<58} {memory['after_load']['hwm_mb']}",
    ]
    for point in results.get("crash_points", []):
        lines.append(f"{'crash: ' + point['point']:<58} " + campaign_crash.describe(point))
    return "\n".join(lines)


KILLS = Path(__file__).with_name("kill_results.json")
KILLS_COMMAND = "python -m bench.campaign_kills"


def amplification_cell(result: dict) -> str:
    rows = result["rows"].values()
    padded = result["rows"]["padded_classes_create"]
    return (
        f"peak {max(r['peak_rss_mb'] for r in rows):,.0f} MB; 1,907 MB of images: {padded['status']}, "
        f"+{padded['disk_growth_mb']:,.0f} MB on disk; most written {max(r['disk_growth_mb'] for r in rows):,.0f} MB"
    )


def storage_cell(faults: list[dict]) -> str:
    reads_ok, reads = sum(sum(f["reads_ok"].values()) for f in faults), sum(sum(f["reads"].values()) for f in faults)
    writes_503, writes = (
        sum(sum(f["writes_503"].values()) for f in faults),
        sum(sum(f["writes"].values()) for f in faults),
    )
    return f"reads 200: {reads_ok}/{reads}; writes 503: {writes_503}/{writes}"


def closed_after(holders: dict) -> str:
    if not holders["closed_by_server"]:
        return "no socket closed"
    return f"sockets closed {holders['close_after_s_min']}-{holders['close_after_s_max']} s after connecting"


def faults(result: dict, *keys: str) -> list[dict]:
    return [result[key] for key in keys if key in result and "skipped" not in result[key]]


# "Done when" of issue 22: (figure, target, section, cell); a section's before run is recorded as `<section>_before`
DONE_WHEN = (
    (
        "images lost in 50 SIGKILLs of deletes/updates/creates under load (on disk)",
        "0",
        "kills",
        lambda k: f"{k['lost_images']} ({k['kills_that_lost_images']} of {k['kills']} kills)",
    ),
    ("escapes of the URL root or prefixes", "0", "urls_keys", lambda u: str(u["urls"]["escapes"])),
    ("hung request threads (no answer in 30 s)", "0", "urls_keys", lambda u: str(u["urls"]["hung"])),
    (
        "classify p99 beside 50 slow URL hosts",
        "< 1 s",
        "urls_keys",
        lambda u: (
            f"{u['urls']['slow_hosts']['classify_p99_ms']:,} ms, {u['urls']['slow_hosts']['legit_failures']} of "
            f"{u['urls']['slow_hosts']['legit_requests']} failed"
        ),
    ),
    (
        "classify p99 beside 500 slowloris connections",
        "< 1 s",
        "connections",
        lambda c: (
            f"{c['slowloris']['legit']['p99_ms']:,} ms, {c['slowloris']['legit']['failures']} of "
            f"{c['slowloris']['legit']['requests']} failed; " + closed_after(c["slowloris"])
        ),
    ),
    (
        "classify beside 1,100 idle sockets (soft limit 1,024 files): p99, failures",
        "0 failed",
        "connections",
        lambda c: (
            f"{c['idle']['legit']['p99_ms']:,} ms, {c['idle']['legit']['failures']} of "
            f"{c['idle']['legit']['requests']} failed; {c['server_log_emfile_lines']:,} EMFILE log lines"
        ),
    ),
    (
        "classify p99 beside 50 slow URL hosts and 500 slowloris at once",
        "< 1 s",
        "together",
        lambda t: (
            f"{t['legit']['p99_ms']:,} ms, {t['legit']['failures']} of {t['legit']['requests']} failed"
            + (f" (no attack: {t['quiet']['p99_ms']:,} ms)" if "quiet" in t else "")
        ),
    ),
    ("amplification inputs: server peak RSS, disk growth", "< 1.5 GB; <= 256 MB", "amplification", amplification_cell),
    (
        "a zip of 1,000,000 members (create; classify): answer after",
        "refused",
        "amplification",
        lambda a: "; ".join(
            f"{a['rows'][k]['status']} after {a['rows'][k]['seconds']:g} s"
            for k in ("million_members_create", "million_members_classify")
        ),
    ),
    (
        "keys lost in 100 rounds of racing add/remove (printed key dead, removed key back)",
        "0",
        "urls_keys",
        lambda u: f"{u['keys']['lost_keys']} + {u['keys']['removed_keys_back']} of {u['keys']['printed_keys']}",
    ),
    (
        "full disk (RLIMIT_FSIZE 0; a filled tmpfs): reads 200, writes 503",
        "all",
        "storage",
        lambda s: storage_cell(faults(s, "full_disk_rlimit", "full_disk_tmpfs")),
    ),
    (
        "foreign lock held 60 s: reads 200, writes 503",
        "all",
        "storage",
        lambda s: storage_cell(faults(s, "foreign_lock")),
    ),
    ("trainings a transient fault left failed", "0", "storage", lambda s: str(s["trainings_left_failed"])),
)


def recorded(results: dict, kills: dict, section: str, before: bool) -> dict | None:
    """A section's recorded figures: the run before the fixes, or the latest after them (None if never run)."""
    if section == "kills":
        return next(
            (run for label, run in reversed(kills.items()) if label.startswith("before" if before else "after")), None
        )
    return results.get(section + ("_before" if before else ""))


def load_of(run: dict | None) -> str:
    """The 1-minute load average at the start and the end of a run."""
    if not run or "load_average_at_start" not in run:
        return "n/a"
    return f"{run['load_average_at_start'][0]:.1f}-{run.get('load_average_at_end', ['?'])[0]:.1f}"


def done_when_table(results: dict, kills: dict) -> str:
    """Issue 22's "Done when" figures before and after the fixes, a Markdown table (with each run's 1-min load)."""
    lines = [
        "| figure | target | before | after | command (1-min load, start-end: before; after) |",
        "|---|---|---|---|---|",
    ]
    for figure, target, section, cell in DONE_WHEN:
        runs = [recorded(results, kills, section, before) for before in (True, False)]
        cells = ["not recorded" if run is None else cell(run) for run in runs]
        command = KILLS_COMMAND if section == "kills" else f"--parts {section}"
        tree = runs[0] and (runs[0].get("tree") or runs[0].get("label"))
        lines.append(
            f"| {figure} | {target} | {cells[0]} | {cells[1]} | `{command}`"
            f"{', before on ' + tree if tree else ''} (load {load_of(runs[0])}; {load_of(runs[1])}) |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the load, fewer crash points")
    parser.add_argument(
        "--parts",
        default=",".join(["served", "crash", "urls_keys", *SECTIONS]),
        help="comma-separated: served (hostile, load, RSS), crash, urls_keys, " + ", ".join(SECTIONS) + " (issue 22)",
    )
    parser.add_argument("--record-as", default="urls_keys", help="the results key of part urls_keys")
    parser.add_argument("--suffix", default="", help="appended to the results key of each issue-22 section (_before)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument(
        "--table", action="store_true", help="print issue 22's before/after table from the results files"
    )
    args = parser.parse_args()
    if args.table:
        print(done_when_table(json.loads(RESULTS.read_text()), json.loads(KILLS.read_text()) if KILLS.exists() else {}))
        return
    parts = set(args.parts.split(","))
    folder = Path(tempfile.mkdtemp(prefix="campaign-"))
    command = " ".join([Path(sys.executable).name, "-m", "bench.reliability_campaign", *sys.argv[1:]])
    alone = not parts & {"served", "crash"}  # sections alone: the other parts' figures stay in the file
    results: dict = (
        json.loads(RESULTS.read_text())
        if alone and RESULTS.exists()
        else {
            "command": command,
            "quick": args.quick,
            "machine": platform.platform(),
            "cpus": os.cpu_count(),
            "load_average_at_start": os.getloadavg(),
        }
    )
    started = time.monotonic()
    try:
        if "served" in parts:
            served_parts(folder / "served", args.quick, results)
        if "crash" in parts:
            results["crash_points"] = campaign_crash.run_crash_points(folder / "crash", args.quick)
        if "urls_keys" in parts:
            part_started = time.monotonic()
            part = results[args.record_as] = {"command": command, "load_average_at_start": os.getloadavg()}
            part["urls"] = campaign_urls_keys.run_urls(folder / "urls")
            part["keys"] = campaign_urls_keys.run_keys(
                folder / "keys", 10 if args.quick else campaign_urls_keys.KEY_ROUNDS
            )
            part["seconds"] = round(time.monotonic() - part_started, 1)
            part["load_average_at_end"] = os.getloadavg()
        for name in SECTIONS:
            if name in parts:
                section = importlib.import_module(f"bench.campaign_{name}")
                part_started, load_at_start = time.monotonic(), os.getloadavg()
                result = getattr(section, f"run_{name}")(folder / name)
                result["seconds"] = round(time.monotonic() - part_started, 1)
                result.update(command=command, load_average_at_start=load_at_start, load_average_at_end=os.getloadavg())
                results[name + args.suffix] = result
    finally:
        if not alone:
            results["seconds"] = round(time.monotonic() - started, 1)
            results["load_average_at_end"] = os.getloadavg()
        RESULTS.write_text(json.dumps(results, indent=2, default=str) + "\n")
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
        else:
            print(f"kept {folder}", file=sys.stderr)
    if "served" in parts:
        print(table(results))
    elif "crash" in parts:
        print("\n".join(f"{p['point']:<58} {campaign_crash.describe(p)}" for p in results["crash_points"]))
    if "urls_keys" in parts and args.record_as in results:
        print("\n".join(campaign_urls_keys.describe(results[args.record_as])))
    for name in SECTIONS:
        if name in parts and name + args.suffix in results:
            print("\n".join(importlib.import_module(f"bench.campaign_{name}").describe(results[name + args.suffix])))
    print(f"wrote {RESULTS} ({round(time.monotonic() - started, 1)} s)")


if __name__ == "__main__":
    main()
