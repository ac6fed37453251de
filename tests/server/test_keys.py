"""API keys: hashes only on disk, one owner per key, from the environment and from `workbench keys add`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from workbench import InvalidRequest
from workbench.cli import entry as cli
from workbench.server.app import create_app
from workbench.server.keys import KeyFile, KeyRing, env_keys, key_hash
from workbench.server.runner import ServerThread

VERSION = {"version": "2018-03-19"}


def test_keys_add_stores_only_a_hash_and_the_ring_finds_its_owner(tmp_path) -> None:
    ring = KeyRing(tmp_path, env_value="")
    key = KeyFile(tmp_path).add("alice")
    stored = (tmp_path / "api_keys.json").read_text()
    assert key not in stored and key_hash(key) in stored
    assert ring.owner_for(key) == "alice"  # added after the ring was made: the file is re-read
    assert ring.owner_for(key + "x") is None and ring.owner_for("") is None


def test_environment_keys_name_their_owner_or_belong_to_me() -> None:
    hashes = env_keys("alice:k1, k2 ,,bob:k3")
    assert hashes == {key_hash("k1"): "alice", key_hash("k2"): "me", key_hash("k3"): "bob"}
    ring = KeyRing(Path("/nonexistent"), env_value="alice:k1,k2")
    assert ring.owner_for("k1") == "alice" and ring.owner_for("k2") == "me" and len(ring) == 2


def test_remove_by_owner_or_by_key_id(tmp_path) -> None:
    keys = KeyFile(tmp_path)
    first, second, other = keys.add("alice"), keys.add("alice"), keys.add("bob")
    ring = KeyRing(tmp_path, env_value="")
    (gone,) = keys.remove(key_hash(first)[:12])
    assert gone.owner == "alice" and ring.owner_for(first) is None and ring.owner_for(second) == "alice"
    assert [r.owner for r in keys.remove("alice")] == ["alice"]
    assert ring.owner_for(second) is None and ring.owner_for(other) == "bob"
    with pytest.raises(InvalidRequest):
        keys.remove("alice")


@pytest.mark.parametrize("owner", ["", "two words", "a:b", "x" * 65])
def test_an_owner_name_is_checked(tmp_path, owner) -> None:
    with pytest.raises(InvalidRequest):
        KeyFile(tmp_path).add(owner)


def test_the_same_key_cannot_be_stored_twice(tmp_path) -> None:
    keys = KeyFile(tmp_path)
    keys.add("alice", "chosen-key")
    with pytest.raises(InvalidRequest):
        keys.add("bob", "chosen-key")


def test_keys_commands(tmp_path, capsys) -> None:
    home = str(tmp_path)
    assert cli.main(["--home", home, "keys", "add", "alice"]) == 0
    added = json.loads(capsys.readouterr().out)
    assert added["owner"] == "alice" and len(added["key"]) >= 40
    assert cli.main(["--home", home, "keys", "list"]) == 0
    (listed,) = json.loads(capsys.readouterr().out)["keys"]
    assert listed["owner"] == "alice" and listed["key_id"] == key_hash(added["key"])[:12] and "key" not in listed
    assert cli.main(["--home", home, "keys", "remove", "alice"]) == 0
    capsys.readouterr()
    assert cli.main(["--home", home, "keys", "remove", "alice"]) == 1
    assert "No stored key" in capsys.readouterr().err


# ------------------------------------------------------------------ concurrent `workbench keys` processes (issue 22)

PARALLEL_ADDS = 20


def keys_process(home: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "workbench", "--home", str(home), "keys", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def printed_keys(processes: list[subprocess.Popen]) -> dict[str, str]:
    """key -> owner for every `keys add` that exited 0 and printed a key."""
    keys = {}
    for process in processes:
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err
        added = json.loads(out)
        keys[added["key"]] = added["owner"]
    return keys


@pytest.mark.slow
def test_parallel_keys_add_loses_no_printed_key(tmp_path) -> None:
    adds = [keys_process(tmp_path, "add", f"owner{i}") for i in range(PARALLEL_ADDS)]
    printed = printed_keys(adds)
    ring = KeyRing(tmp_path, env_value="")
    assert len(printed) == PARALLEL_ADDS
    assert {key: ring.owner_for(key) for key in printed} == printed, "a printed key does not work"
    assert len(KeyFile(tmp_path).records()) == PARALLEL_ADDS


@pytest.mark.slow
def test_keys_remove_racing_adds_never_brings_the_key_back(tmp_path) -> None:
    keys = KeyFile(tmp_path)
    for round_ in range(3):
        victim = keys.add(f"victim{round_}")
        racers = [keys_process(tmp_path, "remove", f"victim{round_}")]
        racers += [keys_process(tmp_path, "add", f"round{round_}-{i}") for i in range(5)]
        removal, adds = racers[0], racers[1:]
        assert removal.wait(300) == 0, removal.stderr.read()
        printed = printed_keys(adds)
        ring = KeyRing(tmp_path, env_value="")
        assert ring.owner_for(victim) is None, f"round {round_}: the removed key works again"
        assert {key: ring.owner_for(key) for key in printed} == printed, f"round {round_}: a printed key was lost"


# ------------------------------------------------------------------ a corrupt key file (issue 22)

CORRUPT_KEY_FILES = {
    "not JSON": '{"keys": [',
    "no keys list": "{}",
    "keys not a list": '{"keys": 5}',
    "an entry without a hash": '{"keys": [{"owner": "alice", "created": "x"}]}',
    "a hash that is no SHA-256": '{"keys": [{"owner": "alice", "sha256": "abc", "created": "x"}]}',
    "bytes that are no UTF-8": "\udcff",
}


def write_key_file(home: Path, text: str) -> Path:
    path = home / "api_keys.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    return path


@pytest.mark.parametrize("corruption", CORRUPT_KEY_FILES)
def test_a_corrupt_key_file_stops_the_keys_verbs_with_a_clear_message(tmp_path, capsys, corruption) -> None:
    path = write_key_file(tmp_path, CORRUPT_KEY_FILES[corruption])
    before = path.read_bytes()
    for verb in (["list"], ["add", "alice"], ["remove", "alice"]):
        assert cli.main(["--home", str(tmp_path), "keys", *verb]) == 1
        err = capsys.readouterr().err
        assert f"The API key file {path}" in err and "Traceback" not in err
    assert path.read_bytes() == before, "a keys verb rewrote a file it could not read"


def test_serve_refuses_to_start_on_a_corrupt_key_file(tmp_path) -> None:
    path = write_key_file(tmp_path, CORRUPT_KEY_FILES["a hash that is no SHA-256"])
    env = {k: v for k, v in os.environ.items() if k != "WORKBENCH_API_KEYS"}
    served = subprocess.run(
        [sys.executable, "-m", "workbench", "--home", str(tmp_path), "serve", "--port", "1"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert served.returncode == 1
    assert f"The API key file {path}" in served.stderr and "Traceback" not in served.stderr


def test_a_key_file_corrupted_under_a_running_server_answers_401_not_500(make_workbench, tmp_path) -> None:
    wb = make_workbench()
    file_key = KeyFile(wb.home).add("alice")
    app = create_app(wb, keys=KeyRing(wb.home, env_value="bob:env-key-bob"))
    with ServerThread(app) as url:
        assert httpx.get(f"{url}/v3/classifiers", params=VERSION, auth=("apikey", file_key)).status_code == 200
        write_key_file(wb.home, CORRUPT_KEY_FILES["not JSON"])
        by_file = httpx.get(f"{url}/v3/classifiers", params=VERSION, auth=("apikey", file_key))
        by_env = httpx.get(f"{url}/v3/classifiers", params=VERSION, auth=("apikey", "env-key-bob"))
    assert by_file.status_code == 401 and by_file.json()["code"] == 401, by_file.text
    assert by_env.status_code == 200, by_env.text
