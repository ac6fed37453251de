"""The tutorial through IBM's own `ibm-watson` 5.3.1 SDK (its own venv), running the README's snippet verbatim."""

from __future__ import annotations

import json
import re
import subprocess

from .readme import readme_snippets


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
        [str(watson_sdk_python), str(script)], env=snippet_env("sdk"), cwd=tutorial_folder,
        capture_output=True, text=True, timeout=600,
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
