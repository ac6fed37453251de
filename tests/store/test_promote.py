"""Promote and roll back: an older version serves classify, exports, MLflow's alias; a training leaves a pin alone.

Through every front: Python (`wb.promote`), the CLI (`workbench promote`, a real process), HTTP
(`POST /v3/classifiers/{id}/serving` on a real server on 127.0.0.1) and the status widget's version
picker (changed as a browser changes it). Answers are checked against each version's own answers on
images no version trained on. The crash-safety test is tests/reliability/test_killed_promote.py.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from pathlib import Path

import httpx
import pytest
from mlflow import MlflowClient

from conftest import Gate
from support import promote as promote_fixtures
from support.promote import HELD_OUT, TRAIN_S, held_out_scores, noise_set, same_scores, small_sets
from support.servers import workbench_command
from workbench import ClassifierNotFound, InvalidRequest, VersionNotFound, Workbench, widgets
from workbench.core.records import VersionRecord
from workbench.scoring import export
from workbench.server.app import create_app
from workbench.server.keys import KeyRing
from workbench.server.runner import ServerThread
from workbench.store import findings as fd
from workbench.store import promotion
from workbench.store.database import Store
from workbench.tracking.recovery import out_of_sync
from workbench.tracking.tags import SERVING_ALIAS, TAG_VERSION

template = promote_fixtures.template  # the module-scoped two-version `pets` (a fixture)
VERSION = {"version": "2018-03-19"}
KEYS = {"me": "key-me-5e1a", "bob": "key-bob-c3d9"}


@pytest.fixture
def pets(template, tmp_path: Path, make_workbench) -> tuple[Workbench, str]:
    """A Workbench on a fresh copy of the template home: `pets` with v1 and v2, v2 serving."""
    home = template.copy(tmp_path / "home")
    return make_workbench(home=home), template.classifier_id


# ------------------------------------------------------------------ Python


def test_promote_serves_the_older_version_and_latest_the_newest_again(pets, template) -> None:
    wb, cid = pets
    before = wb.get_classifier(cid)
    assert before["serving_version"] == 2 and "pinned_version" not in before
    promoted = wb.promote(cid, 1)
    assert promoted["status"] == "ready"
    assert promoted["serving_version"] == 1 and promoted["pinned_version"] == 1
    assert same_scores(held_out_scores(wb, cid), template.answers[1])
    assert wb.out_of_fold(cid).version == 1  # the widgets' default version follows too
    back = wb.promote(cid)  # no version: the pin is lifted, the newest serves
    assert back["serving_version"] == 2 and "pinned_version" not in back
    assert same_scores(held_out_scores(wb, cid), template.answers[2])
    assert wb.promote(cid, 1)["pinned_version"] == 1 and wb.promote(cid, "latest")["serving_version"] == 2
    assert [v["version"] for v in wb.versions(cid)] == [1, 2]  # nothing is removed or retrained
    assert fd.BAD_SERVING_VERSION not in {f.kind for f in wb.doctor().findings}


def test_a_training_while_pinned_stores_its_version_but_the_pin_serves(pets, template, tmp_path) -> None:
    wb, cid = pets
    wb.promote(cid, 1)
    cats = small_sets(tmp_path / "more", ("cats",))["cats"]
    wb.update_classifier(cid, negative_examples=cats)
    record = wb.wait(cid, timeout=TRAIN_S)
    assert record["status"] == "ready"  # Watson's status: the training finished
    assert [v["version"] for v in wb.versions(cid)] == [1, 2, 3]
    assert record["serving_version"] == 1 and record["pinned_version"] == 1 and record["retrained"]
    assert same_scores(held_out_scores(wb, cid), template.answers[1])
    newest = wb.promote(cid)
    assert newest["serving_version"] == 3 and "pinned_version" not in newest
    v3 = held_out_scores(wb, cid)
    assert {c for image in v3 for c in image} == {"beagle", "husky", "goldenretriever"}
    assert not same_scores(v3, template.answers[1])


def test_promote_during_a_retraining_holds_when_it_finishes(pets, template, tmp_path) -> None:
    wb, cid = pets
    gate = Gate("fitting")
    wb.subscribe(gate)
    wb.update_classifier(cid, negative_examples=small_sets(tmp_path / "more", ("cats",))["cats"])
    assert gate.reached.wait(TRAIN_S)
    during = wb.promote(cid, 1)
    assert during["status"] == "retraining" and during["serving_version"] == 1
    assert same_scores(held_out_scores(wb, cid), template.answers[1])
    gate.opened.set()
    record = wb.wait(cid, timeout=TRAIN_S)
    assert record["status"] == "ready" and record["serving_version"] == 1 and record["pinned_version"] == 1
    assert [v["version"] for v in wb.versions(cid)] == [1, 2, 3]


def test_lifting_the_pin_during_a_retraining_lets_the_new_version_serve(pets, tmp_path) -> None:
    wb, cid = pets
    wb.promote(cid, 1)
    gate = Gate("fitting")
    wb.subscribe(gate)
    wb.update_classifier(cid, negative_examples=small_sets(tmp_path / "more", ("cats",))["cats"])
    assert gate.reached.wait(TRAIN_S)
    assert wb.promote(cid, "latest")["serving_version"] == 2  # the newest there is, until the training ends
    gate.opened.set()
    record = wb.wait(cid, timeout=TRAIN_S)
    assert record["serving_version"] == 3 and "pinned_version" not in record


def test_versions_that_do_not_exist_or_failed_are_refused_and_change_nothing(
    template, tmp_path, make_workbench, embedding_cache
) -> None:
    home = template.copy(tmp_path / "home")
    wb, cid = make_workbench(home=home, resume=False), template.classifier_id  # adopts nothing: the test trains
    storing_only = Workbench(wb.home, train=False, resume=False, tracking_uri=False, embedding_cache=embedding_cache)
    storing_only.update_classifier(cid, positive_examples={"noise": noise_set(tmp_path / "noise", seed=os.getpid())})
    for row in wb.store.examples(cid):
        if row.class_name == "noise":  # unreadable once stored: the training fails and makes no version
            wb.store.blob_path(row.sha256).write_bytes(b"these bytes are no image")
    wb.jobs.request(cid)
    failed = wb.wait(cid, timeout=TRAIN_S)
    assert failed["status"] == "failed" and failed["serving_version"] == 2
    for missing in (3, 99):
        with pytest.raises(VersionNotFound) as caught:
            wb.promote(cid, missing)
        assert caught.value.code == 404 and "trained versions: 1, 2" in caught.value.message
    for bad in (0, -1, True, 1.0, "one", "1.5", "", " ", "v1", "\u0661"):  # the last: an Arabic-Indic one
        with pytest.raises(InvalidRequest) as refused:
            wb.promote(cid, bad)
        assert refused.value.code == 400
    with pytest.raises(ClassifierNotFound):
        wb.promote("nobody_1", 1)
    with pytest.raises(ClassifierNotFound):
        wb.as_owner("bob").promote(cid, 1)  # another owner's classifier is not there
    assert wb.get_classifier(cid)["serving_version"] == 2 and "pinned_version" not in wb.get_classifier(cid)
    rolled_back = wb.promote(cid, 1)  # a failed classifier may still roll back; its status stays
    assert rolled_back["status"] == "failed" and rolled_back["serving_version"] == 1


def test_exports_and_the_core_ml_download_follow_the_serving_version(pets, tmp_path, monkeypatch) -> None:
    wb, cid = pets

    def built(source, spec) -> bytes:  # what the real builders are given is the point here, not the graph
        return f"{source.classifier_id} v{source.version} {','.join(source.heads.classes)}".encode()

    monkeypatch.setitem(export.BUILDERS, "onnx", built)
    monkeypatch.setitem(export.BUILDERS, "coreml", built)
    monkeypatch.setattr("workbench.service.engine.coreml_available", lambda: True)
    wb.promote(cid, 1)
    path = wb.export(cid, format="onnx", path=tmp_path)
    assert path.name == f"{cid}-v1.onnx" and path.read_bytes() == f"{cid} v1 beagle,husky".encode()
    assert wb.core_ml_model(cid) == f"{cid} v1 beagle,husky".encode()
    wb.promote(cid, None)
    path = wb.export(cid, format="onnx", path=tmp_path)
    assert path.name == f"{cid}-v2.onnx" and path.read_bytes() == f"{cid} v2 beagle,husky,goldenretriever".encode()
    assert wb.core_ml_model(cid) == f"{cid} v2 beagle,husky,goldenretriever".encode()


def test_a_home_from_before_promote_gains_the_pin_column(tmp_path) -> None:
    old_schema = (  # the classifiers table as homes made before promote have it
        "CREATE TABLE classifiers (classifier_id TEXT PRIMARY KEY, name TEXT NOT NULL, owner TEXT NOT NULL,"
        " status TEXT NOT NULL, created TEXT NOT NULL, updated TEXT NOT NULL, retrained TEXT, explanation TEXT,"
        " serving_version INTEGER, job_owner TEXT, lease_expires REAL);"
    )
    with sqlite3.connect(tmp_path / "workbench.db") as db:
        db.executescript(old_schema)
        db.execute("INSERT INTO classifiers VALUES ('dogs_1','dogs','me','ready','t','t','t',NULL,2,NULL,NULL)")
    store = Store(tmp_path)
    with store.transaction() as db:
        for number in (1, 2):
            store.insert_version(db, VersionRecord("dogs_1", number, "t", ["a", "b"], number, {}, f"v{number}.npz"))
    old = store.classifier("dogs_1")
    assert (old.serving_version, old.pinned_version) == (2, None)
    assert promotion.promote(store, "dogs_1", 1, "me").pinned_version == 1
    reopened = Store(tmp_path).classifier("dogs_1")  # a second open finds the column there already
    assert (reopened.serving_version, reopened.pinned_version) == (1, 1)
    assert promotion.promote(store, "dogs_1", "latest", "me").serving_version == 2


def test_doctor_reports_a_pin_that_is_not_what_serves(pets) -> None:
    wb, cid = pets
    wb.promote(cid, 1)
    with wb.store.transaction() as db:  # by hand: promote always writes both together
        wb.store.update_classifier(db, cid, pinned_version=2)
    [finding] = wb.doctor().of_kind(fd.BAD_SERVING_VERSION)
    assert finding.subject == cid and "pinned v2 but serving v1" in finding.detail
    wb.doctor(repair=True)
    record = wb.store.classifier(cid)
    assert record.status == "failed" and record.serving_version == 1 and record.pinned_version is None
    assert not wb.doctor().of_kind(fd.BAD_SERVING_VERSION)


# ------------------------------------------------------------------ the widget


def browser_picks(dropdown, label: str) -> None:
    """What JupyterLab sends when a person picks an entry: a comm `update` of the synced `index`."""
    index = list(dropdown._options_labels).index(label)
    dropdown._handle_msg(
        {"content": {"data": {"method": "update", "state": {"index": index}, "buffer_paths": []}}, "buffers": []}
    )


def test_the_status_widget_picker_promotes_what_a_person_picks(pets, template, tmp_path) -> None:
    wb, cid = pets
    status = widgets.StatusWidget(wb, cid)
    picker = status.serving
    assert picker.dropdown.value == widgets.LATEST and picker.dropdown.options[1:] == (("v1", 1), ("v2", 2))
    assert "serving v2" in picker.note.value
    browser_picks(picker.dropdown, "v1")
    record = wb.get_classifier(cid)
    assert record["serving_version"] == 1 and record["pinned_version"] == 1
    assert same_scores(held_out_scores(wb, cid), template.answers[1])
    assert "serving v1 (pinned" in picker.note.value and "promoted" in status.stages
    wb.update_classifier(cid, negative_examples=small_sets(tmp_path / "more", ("cats",))["cats"])
    wb.wait(cid, timeout=TRAIN_S)
    assert [n for _, n in picker.dropdown.options[1:]] == [1, 2, 3]  # the new version is offered, not served
    assert picker.dropdown.value == 1 and wb.get_classifier(cid)["serving_version"] == 1
    browser_picks(picker.dropdown, widgets.LATEST_LABEL)
    record = wb.get_classifier(cid)
    assert record["serving_version"] == 3 and "pinned_version" not in record
    assert picker.dropdown.value == widgets.LATEST and "serving v3" in picker.note.value
    status.close()


# ------------------------------------------------------------------ the CLI


def workbench_cli(home: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        workbench_command(home, *args),
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "WORKBENCH_TRACKING_URI": "none"},
    )


def test_cli_promote_rolls_back_and_latest_follows_the_newest(template, tmp_path) -> None:
    home = template.copy(tmp_path / "home")
    cid = template.classifier_id
    done = workbench_cli(home, "promote", cid, "1")
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    assert record["serving_version"] == 1 and record["pinned_version"] == 1 and record["status"] == "ready"
    classified = workbench_cli(home, "classify", *map(str, HELD_OUT), "-c", cid, "--threshold", "0")
    assert classified.returncode == 0, classified.stderr
    assert same_scores(promote_fixtures.scores_of(json.loads(classified.stdout), cid), template.answers[1])
    assert json.loads(workbench_cli(home, "get", cid).stdout)["pinned_version"] == 1
    missing = workbench_cli(home, "promote", cid, "7")
    assert missing.returncode == 1 and "error 404" in missing.stderr and "no version 7" in missing.stderr
    bad = workbench_cli(home, "promote", cid, "newest")
    assert bad.returncode == 1 and "error 400" in bad.stderr
    latest = workbench_cli(home, "promote", cid, "latest")
    assert latest.returncode == 0, latest.stderr
    record = json.loads(latest.stdout)
    assert record["serving_version"] == 2 and "pinned_version" not in record


# ------------------------------------------------------------------ HTTP


def test_http_promote_on_a_real_server(template, tmp_path, make_workbench) -> None:
    home = template.copy(tmp_path / "home")
    wb, cid = make_workbench(home=home), template.classifier_id
    keys = KeyRing(tmp_path / "keys", env_value=",".join(f"{o}:{k}" for o, k in KEYS.items()))
    path = f"/v3/classifiers/{cid}/serving"
    with (
        ServerThread(create_app(wb, keys=keys)) as url,
        httpx.Client(base_url=url, timeout=120, auth=("apikey", KEYS["me"])) as me,
    ):
        answer = me.post(path, params=VERSION, data={"serving_version": "1"})
        assert answer.status_code == 200, answer.text
        assert answer.json()["serving_version"] == 1 and answer.json()["pinned_version"] == 1
        got = me.get(f"/v3/classifiers/{cid}", params=VERSION).json()
        assert got["status"] == "ready" and got["serving_version"] == 1 and got["pinned_version"] == 1
        files = [("images_file", (p.name, p.read_bytes(), "image/jpeg")) for p in HELD_OUT[:6]]
        classified = me.post(
            "/v3/classify", params=VERSION, files=files, data={"classifier_ids": cid, "threshold": "0"}
        )
        assert classified.status_code == 200, classified.text
        scores = promote_fixtures.scores_of(classified.json(), cid)
        assert same_scores(scores, template.answers[1][:6])
        multipart = me.post(path, params=VERSION, files={"serving_version": (None, "latest")})
        assert multipart.status_code == 200 and multipart.json()["serving_version"] == 2
        assert "pinned_version" not in multipart.json()
        refusals = {
            "missing version": (me.post(path, params=VERSION, data={"serving_version": "9"}), 404),
            "not a number": (me.post(path, params=VERSION, data={"serving_version": "two"}), 400),
            "no field": (me.post(path, params=VERSION, data={"other": "1"}), 400),
            "no API version": (me.post(path, data={"serving_version": "1"}), 400),
            "not a form": (me.post(path, params=VERSION, json={"serving_version": "1"}), 415),
            "unknown classifier": (
                me.post("/v3/classifiers/nobody_1/serving", params=VERSION, data={"serving_version": "1"}),
                404,
            ),
            "another owner": (
                httpx.post(f"{url}{path}", params=VERSION, data={"serving_version": "1"}, auth=("apikey", KEYS["bob"])),
                404,
            ),
            "no key": (httpx.post(f"{url}{path}", params=VERSION, data={"serving_version": "1"}), 401),
        }
        for what, (refused, code) in refusals.items():
            assert refused.status_code == code, (what, refused.text)
            assert refused.json()["code"] == code and refused.json()["error"], what
        assert me.get(f"/v3/classifiers/{cid}", params=VERSION).json()["serving_version"] == 2  # nothing changed


# ------------------------------------------------------------------ MLflow


def alias_version(client: MlflowClient, cid: str) -> str:
    return client.get_model_version_by_alias(cid, SERVING_ALIAS).tags[TAG_VERSION]


@pytest.mark.slow
def test_mlflow_serving_alias_follows_the_pin_and_a_pinned_training_is_logged(
    template, tmp_path, make_workbench
) -> None:
    home = template.copy(tmp_path / "home")
    wb, cid = make_workbench(home=home, tracking_uri=tmp_path / "mlruns"), template.classifier_id
    assert wb.tracker.flush(timeout=TRAIN_S)  # the sweep logs v1 and v2 (trained with tracking off)
    client = MlflowClient(tracking_uri=wb.tracker.uri, registry_uri=wb.tracker.uri)
    assert alias_version(client, cid) == "2"
    wb.promote(cid, 1)  # the tracker hears "promoted" and moves the alias on its own thread
    assert wb.tracker.flush(timeout=TRAIN_S)
    assert alias_version(client, cid) == "1" and out_of_sync(client, wb.store) == []
    wb.update_classifier(cid, negative_examples=small_sets(tmp_path / "more", ("cats",))["cats"])
    assert wb.wait(cid, timeout=TRAIN_S)["serving_version"] == 1
    assert wb.tracker.flush(timeout=TRAIN_S)
    registered = sorted(int(v.tags[TAG_VERSION]) for v in client.search_model_versions(f"name='{cid}'"))
    assert registered == [1, 2, 3] and alias_version(client, cid) == "1"  # v3 logged, not serving
    frame = wb.compare_versions(cid)
    assert frame.loc[frame["serving"], "version"].tolist() == [1]
    wb.promote(cid, "latest")
    assert wb.tracker.flush(timeout=TRAIN_S)
    assert alias_version(client, cid) == "3" and out_of_sync(client, wb.store) == []
    wb.tracker.close()
