"""The tutorial through IBM's own `ibm-watson` 5.3.1 SDK (its own venv), running the README's snippet verbatim."""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from .conftest import DOGS_JPG
from .readme import readme_snippets

pytestmark = pytest.mark.slow  # `make test-slow`: IBM's SDK in a venv of its own


def json_documents(text: str) -> list:
    """The JSON documents printed one after another, each starting a line (the SDK's own notices skipped)."""
    decoder, documents, at = json.JSONDecoder(), [], 0
    for start in (m.start() for m in re.finditer(r"^\{", text, re.M)):
        if start >= at:
            document, at = decoder.raw_decode(text, start)
            documents.append(document)
    return documents


def test_tutorial_with_the_ibm_watson_sdk(watson_sdk_python, snippet_env, tutorial_folder) -> None:
    script = tutorial_folder / "sdk_tutorial.py"
    script.write_text(readme_snippets()["sdk-tutorial"])
    done = subprocess.run(
        [str(watson_sdk_python), str(script)],
        env=snippet_env("sdk"),
        cwd=tutorial_folder,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    created, ready, updated, ready_again, classified, listing = json_documents(done.stdout)
    cid = created["classifier_id"]
    assert created["status"] == "training" and created["owner"] == "sdk"
    assert ready["status"] == "ready" and ready["classifier_id"] == cid
    assert updated["status"] == "retraining" and len(updated["classes"]) == 4
    assert ready_again["status"] == "ready" and ready_again["retrained"] >= ready_again["created"]
    custom = classified["images"][0]["classifiers"][0]
    assert custom["classifier_id"] == cid and custom["classes"][0]["class"] == "goldenretriever"
    assert classified["images"][0]["classifiers"][1]["classifier_id"] == "default"
    assert cid not in [c["classifier_id"] for c in listing["classifiers"]]


SDK_CORE_ML = """
import json, os, sys
from ibm_cloud_sdk_core import ApiException
from ibm_cloud_sdk_core.authenticators import BasicAuthenticator
from ibm_watson import VisualRecognitionV3

def service(key):
    vr = VisualRecognitionV3(version="2018-03-19", authenticator=BasicAuthenticator("apikey", key))
    vr.set_service_url(os.environ["WB_URL"])
    return vr

def status(call):
    try:
        call()
    except ApiException as exc:
        return exc.code
    return 200

mine, theirs = service(os.environ["WB_APIKEY"]), service(os.environ["OTHER_APIKEY"])
classifier_id, target = sys.argv[1], sys.argv[2]
model = mine.get_core_ml_model(classifier_id).get_result()
with open(target, "wb") as f:
    f.write(model.content)
answers = {"type": model.headers["content-type"], "disposition": model.headers["content-disposition"],
           "other_owner": status(lambda: theirs.get_core_ml_model(classifier_id))}
mine.delete_classifier(classifier_id)
answers["after_delete"] = status(lambda: mine.get_core_ml_model(classifier_id))
print(json.dumps(answers))
"""


def test_get_core_ml_model_with_the_ibm_watson_sdk(
    watson_sdk_python, compat_server, snippet_env, tutorial_zips, tmp_path
) -> None:
    wb = compat_server.workbench.as_owner("sdk")
    cid = wb.create_classifier(
        "pair",
        {"beagle": tutorial_zips["beagle"], "husky": tutorial_zips["husky"]},
        negative_examples=tutorial_zips["cats"],
    )["classifier_id"]
    assert wb.wait(cid, timeout=300)["status"] == "ready"
    exported = wb.export(cid, format="coreml", path=tmp_path / "python.mlmodel")
    script = tmp_path / "core_ml.py"
    script.write_text(SDK_CORE_ML)
    done = subprocess.run(
        [str(watson_sdk_python), str(script), cid, str(tmp_path / "sdk.mlmodel")],
        env=snippet_env("sdk", OTHER_APIKEY=compat_server.keys["curl"]),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "sdk.mlmodel").read_bytes() == exported.read_bytes()
    assert json.loads(done.stdout.splitlines()[-1]) == {
        "type": "application/octet-stream",
        "disposition": f'attachment; filename="{cid}.mlmodel"',
        "other_owner": 404,
        "after_delete": 404,
    }


SDK_LANGUAGE = """
import json, os, sys
from ibm_cloud_sdk_core import ApiException
from ibm_cloud_sdk_core.authenticators import BasicAuthenticator
from ibm_watson import VisualRecognitionV3

vr = VisualRecognitionV3(version="2018-03-19", authenticator=BasicAuthenticator("apikey", os.environ["WB_APIKEY"]))
vr.set_service_url(os.environ["WB_URL"])
answers = {}
for language in ("ja", "zh-tw"):
    with open(sys.argv[1], "rb") as images_file:
        answers[language] = vr.classify(images_file=images_file, classifier_ids=["default", "food"],
                                        accept_language=language).get_result()
try:
    with open(sys.argv[1], "rb") as images_file:
        vr.classify(images_file=images_file, accept_language="xx")
except ApiException as exc:
    answers["xx"] = {"code": exc.code, "message": exc.message}
print(json.dumps(answers))
"""


def test_classify_accept_language_with_the_ibm_watson_sdk(
    watson_sdk_python, compat_server, snippet_env, tmp_path
) -> None:
    script = tmp_path / "language.py"
    script.write_text(SDK_LANGUAGE)
    done = subprocess.run(
        [str(watson_sdk_python), str(script), str(DOGS_JPG)],
        env=snippet_env("sdk"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    answers = json_documents(done.stdout)[0]
    wb = compat_server.workbench.as_owner("sdk")
    for language in ("ja", "zh-tw"):
        expected = wb.classify(DOGS_JPG, classifier_ids=["default", "food"], accept_language=language)
        assert answers[language]["images"][0]["classifiers"] == expected["images"][0]["classifiers"]
    assert "犬" in {c["class"] for c in answers["ja"]["images"][0]["classifiers"][0]["classes"]}
    assert answers["xx"]["code"] == 400 and "Accept-Language" in answers["xx"]["message"]
