"""API keys: hashes only on disk, one owner per key, from the environment and from `workbench keys add`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from workbench import InvalidRequest, cli
from workbench.keys import KeyFile, KeyRing, env_keys, key_hash


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
