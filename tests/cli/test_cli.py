"""The `workbench` command: the tutorial via `demo`, JSON on stdout, errors on stderr with exit 1."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import DOGS_JPG, TUTORIAL
from support.servers import workbench_command
from workbench import tracking_uri
from workbench.cli.parser import build_parser
from workbench.cli.versions_table import TABLE_WIDTH
from workbench.tracking.tracked_files import staged_ids


def workbench(home: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        workbench_command(home, *args),
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **(env or {})},
    )


def json_documents(text: str) -> list:
    decoder, documents, at = json.JSONDecoder(), [], 0
    while at < len(text):
        if text[at].isspace():
            at += 1
            continue
        document, at = decoder.raw_decode(text, at)
        documents.append(document)
    return documents


def test_demo_prints_the_tutorial_answers(tmp_path: Path) -> None:
    done = workbench(tmp_path / "home", "demo")
    assert done.returncode == 0, done.stderr
    created, ready, updated, retrained, classified, hierarchy, *rest = json_documents(done.stdout)
    assert created["status"] == "training" and ready["status"] == "ready"
    assert updated["status"] == "retraining" and retrained["status"] == "ready"
    assert {c["class"] for c in retrained["classes"]} == {"beagle", "husky", "goldenretriever", "dalmatian"}
    custom, general = classified["images"][0]["classifiers"]
    assert custom["classes"][0] == {"class": "goldenretriever", "score": custom["classes"][0]["score"]}
    assert custom["classes"][0]["score"] >= 0.5
    assert general["classifier_id"] == "default"
    breeds = [c for c in hierarchy["images"][0]["classifiers"][0]["classes"] if "/dog/" in c.get("type_hierarchy", "")]
    assert breeds and breeds[0]["type_hierarchy"].startswith("/animal/domestic animal/dog/")
    assert rest[-1] == {"classifiers": []}  # deleted at the end
    assert "embedding" in done.stderr  # the progress bar


def test_cli_create_get_classify_delete(tmp_path: Path) -> None:
    home = tmp_path / "home"
    created = workbench(
        home,
        "create",
        "pets",
        "-p",
        f"beagle={TUTORIAL / 'beagle'}",
        "-n",
        str(TUTORIAL / "cats"),
    )
    assert created.returncode == 0, created.stderr
    cid = json.loads(created.stdout)["classifier_id"]
    assert json.loads(workbench(home, "get", cid).stdout)["status"] == "ready"
    answer = json.loads(workbench(home, "classify", str(TUTORIAL / "test" / "4.jpg"), "-c", cid).stdout)
    assert answer["images"][0]["classifiers"][0]["classes"][0]["class"] == "beagle"
    assert workbench(home, "delete", cid).returncode == 0
    missing = workbench(home, "get", cid)
    assert missing.returncode == 1 and "not found" in missing.stderr and missing.stdout == ""


def test_cli_errors_are_readable_and_exit_non_zero(tmp_path: Path) -> None:
    home = tmp_path / "home"
    one_set = workbench(home, "create", "dogs", "-p", f"beagle={TUTORIAL / 'beagle'}")
    assert one_set.returncode == 1 and "two example sets" in one_set.stderr
    bad_threshold = workbench(home, "classify", str(DOGS_JPG), "--threshold", "2")
    assert bad_threshold.returncode == 1 and "threshold" in bad_threshold.stderr
    assert workbench(home, "list").stdout.strip().startswith("{")


def parser_actions(parser: argparse.ArgumentParser, path: str = "workbench") -> list[tuple[str, argparse.Action]]:
    """Every action of the parser and of its sub-commands, named by the command path that owns it."""
    found = []
    for action in parser._actions:
        found.append((path, action))
        if isinstance(action, argparse._SubParsersAction):
            for verb, sub in action.choices.items():
                found.extend(parser_actions(sub, f"{path} {verb}"))
    return found


def test_every_option_and_positional_has_help() -> None:
    actions = parser_actions(build_parser())
    assert any(path == "workbench keys add" for path, _ in actions)  # the walk reaches nested verbs
    missing = [
        f"{path}: {action.option_strings or action.dest}"
        for path, action in actions
        if not isinstance(action, argparse._HelpAction) and not (action.help or "").strip()
    ]
    assert missing == []


def test_a_reader_that_went_away_ends_quietly(tmp_path: Path) -> None:
    """`workbench list --verbose | head -c 0`: stdout's reader is gone; no traceback, the shell's SIGPIPE code."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # closed before the child writes a byte, so its first write meets a broken pipe
    try:
        done = subprocess.run(
            workbench_command(tmp_path / "home", "list", "--verbose"),
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )
    finally:
        os.close(write_end)
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr, done.stderr
    assert done.returncode in (0, 128 + signal.SIGPIPE, -signal.SIGPIPE)


def mlflow_runs(mlruns: Path, classifier_id: str) -> list:
    """Every run of the classifier's experiment in a local tracking folder."""
    from mlflow.tracking import MlflowClient

    uri = tracking_uri(mlruns)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = client.get_experiment_by_name(classifier_id)
    return client.search_runs([experiment.experiment_id]) if experiment is not None else []


def test_create_from_folder_says_it_logs_then_versions_table_and_delete(tmp_path: Path) -> None:
    """A fastai-style folder (a sub-folder per class, `negatives`) through the CLI with MLflow on."""
    folder = tmp_path / "pets"
    folder.mkdir()
    for name, source in {"beagle": "beagle", "husky": "husky", "negatives": "cats"}.items():
        (folder / name).symlink_to(TUTORIAL / source, target_is_directory=True)
    home, tracking = tmp_path / "home", {"WORKBENCH_TRACKING_URI": str(tmp_path / "mlruns")}

    started = time.perf_counter()
    created = workbench(home, "create", "pets", "--from-folder", str(folder), env=tracking)
    print(f"\ntracked create: {time.perf_counter() - started:.1f} s wall")
    assert created.returncode == 0, created.stderr
    record = json.loads(created.stdout)
    assert record["status"] == "ready" and {c["class"] for c in record["classes"]} == {"beagle", "husky"}
    cid = record["classifier_id"]
    # the answer comes once the version is stored; a detached process logs it, and `wait` waits for that
    assert f"workbench: {cid} is stored; logging to MLflow at sqlite:" in created.stderr
    assert "logged to MLflow in" not in created.stderr
    waited = workbench(home, "wait", cid, env=tracking)
    assert waited.returncode == 0 and "workbench: logged to MLflow in" in waited.stderr, waited.stderr

    table = workbench(home, "versions", cid, env=tracking)
    assert table.returncode == 0, table.stderr
    rows = {line.split()[0]: line.split()[1:] for line in table.stdout.splitlines()[1:]}
    assert max(map(len, table.stdout.splitlines())) <= TABLE_WIDTH and "run_id" not in rows
    assert table.stdout.split()[0] == "v1"
    assert rows["images"] == ["125"] and rows["negatives"] == ["25"] and rows["registered_version"] == ["1"]
    assert rows["class_names"] == ["beagle,", "husky"] and float(rows["accuracy"][0]) > 0.9
    runs = mlflow_runs(tmp_path / "mlruns", cid)  # the background logger and `wait` logged v1 once between them
    assert [(r.info.status, r.data.tags.get("workbench.version")) for r in runs] == [("FINISHED", "1")]
    (version,) = json.loads(workbench(home, "versions", cid, "--json").stdout)  # from the store: tracking off
    assert version["version"] == 1 and version["images"] == 125 and version["negatives"] == 25
    assert all(isinstance(version[key], int) for key in ("version", "images", "negatives", "images_embedded"))

    deleted = workbench(home, "delete", cid)
    assert deleted.returncode == 0 and json.loads(deleted.stdout) == {"deleted": cid}
    assert json.loads(workbench(home, "list").stdout) == {"classifiers": []}


HEAVY_MODULES = ("sklearn", "mlflow", "torch", "fastapi", "matplotlib", "onnxruntime", "pandas", "scipy")


def test_help_imports_none_of_the_engine() -> None:
    """`workbench --help` stays fast because it imports no heavy library (each costs 0.2 to 1.2 s)."""
    probe = (
        "import sys, contextlib, io\n"
        "from workbench.cli.entry import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try: main(['--help'])\n"
        "    except SystemExit: pass\n"
        f"print(sorted(m for m in {HEAVY_MODULES!r} if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


SHORT_COMMAND_FORBIDDEN = ("pandas", "matplotlib", "sklearn", "onnxruntime", "torch", "mlflow")


def test_list_get_delete_import_none_of_the_engine(
    make_workbench, tutorial_zips: dict[str, Path], tmp_path: Path
) -> None:
    """`workbench list`, `get` and `delete` on a real classifier, MLflow tracking on, stay short: no heavy library.

    `delete` only stages the classifier's history for the next tracking process (resume=False), so
    not even MLflow loads. The wall time of each is printed (`pytest -s`), not asserted: it depends on the machine.
    """
    wb = make_workbench()
    cid = wb.create_classifier("pets", {"beagle": tutorial_zips["beagle"]}, negative_examples=tutorial_zips["cats"])[
        "classifier_id"
    ]
    assert wb.wait(cid, timeout=300)["status"] == "ready"
    probe = (
        "import sys, contextlib, io\n"
        "from workbench.cli.entry import main\n"
        "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
        "    code = main(sys.argv[1:])\n"
        "import json\n"
        "print(json.dumps({'code': code, 'out': out.getvalue(),\n"
        f"                  'heavy': sorted(m for m in {SHORT_COMMAND_FORBIDDEN!r} if m in sys.modules)}}))"
    )
    tracking = {**os.environ, "WORKBENCH_TRACKING_URI": str(tmp_path / "mlruns")}
    for verb in (["list"], ["get", cid], ["delete", cid]):
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", probe, "--home", str(wb.home), *verb],
            capture_output=True,
            text=True,
            timeout=120,
            env=tracking,
        )
        print(f"\nworkbench {verb[0]}: {time.perf_counter() - started:.2f} s wall (interpreter start to exit)")
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout)
        assert report["code"] == 0 and cid in report["out"], report
        assert report["heavy"] == [], f"`workbench {verb[0]}` imported {report['heavy']}"
    assert json.loads(workbench(wb.home, "list").stdout) == {"classifiers": []}
    assert cid in staged_ids(wb.store)  # its history waits, staged, for the next process that tracks


def test_versions_table_fits_100_columns(dogs) -> None:
    """The tutorial's two versions (class lists of 3 and 4 classes, per-class metrics) as a table at most 100 wide."""
    wb, cid = dogs
    table = workbench(wb.home, "versions", cid)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    print(f"\nversions table: {max(map(len, lines))} columns wide")
    assert lines[0].split() == ["v1", "v2"] and max(map(len, lines)) <= 100
    rows = {line.split()[0]: line.split()[1:] for line in lines[1:]}
    assert float(rows["accuracy"][1]) > 0.9 and rows["images"] == ["175", "250"]
