"""API keys for the HTTP front: each key is an owner; only SHA-256 hashes of keys are stored.

Keys come from two places, read together:

* the environment: `WORKBENCH_API_KEYS="alice:KEY1,bob:KEY2"` (a bare `KEY` belongs to owner `me`,
  the owner the Python API and the CLI use by default);
* `{home}/api_keys.json`, written by `workbench keys add OWNER`, which prints the new key once.

A key is a random 256-bit token, so one unsalted SHA-256 is enough to keep the file useless to a reader.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from ..core.atomic import atomic_write_bytes
from ..core.errors import InvalidRequest, KeyFileCorrupt
from ..core.timestamps import now_iso
from ..core.vocabulary import OWNER_ME

KEYS_ENV = "WORKBENCH_API_KEYS"
KEYS_FILE_NAME = "api_keys.json"
DEFAULT_KEY_OWNER = OWNER_ME
KEY_BYTES = 32  # entropy of a generated key
KEY_ID_CHARS = 12  # hash prefix shown by `workbench keys list`
LOCK_FILE_NAME = "api_keys.json.lock"  # flock'd around each read-modify-write (the key file itself is replaced)
OWNER_PATTERN = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
SHA256_PATTERN = re.compile(r"^[0-9a-f]{64}$")

logger = logging.getLogger(__name__)


def key_hash(key: str) -> str:
    """The stored form of a key: its SHA-256, hex."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def check_owner(owner: str) -> str:
    """An owner name: 1 to 64 letters, digits or `_ . @ -`."""
    if not OWNER_PATTERN.match(owner):
        raise InvalidRequest(f"owner must be 1 to 64 letters, digits or _ . @ -, got {owner!r}")
    return owner


@dataclass(frozen=True)
class KeyRecord:
    """One stored key: who it belongs to, its hash, and when it was added."""

    owner: str
    sha256: str
    created: str

    @property
    def key_id(self) -> str:
        return self.sha256[:KEY_ID_CHARS]


def env_keys(value: str | None) -> dict[str, str]:
    """`owner:key,owner:key` (or bare `key`, owner `me`) from the environment, as hash -> owner."""
    hashes = {}
    for item in (value or "").split(","):
        item = item.strip()
        if not item:
            continue
        owner, sep, key = item.partition(":")
        if not sep:
            owner, key = DEFAULT_KEY_OWNER, item
        hashes[key_hash(key)] = check_owner(owner)
    return hashes


class KeyFile:
    """`{home}/api_keys.json`: the keys `workbench keys add` created, as hashes.

    `add` and `remove` read, change and replace the file under an exclusive lock on a sibling lock
    file, so concurrent `workbench keys` processes never drop each other's keys; a key is returned
    (and printed) only after the new file and its folder entry are on disk.
    """

    def __init__(self, home: Path) -> None:
        self.path = Path(home) / KEYS_FILE_NAME
        self.lock_path = Path(home) / LOCK_FILE_NAME

    def records(self) -> list[KeyRecord]:
        """The stored keys; KeyFileCorrupt when the file is not what `keys add` writes (never guessed around)."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        except (OSError, UnicodeDecodeError) as exc:
            raise self._corrupt(f"cannot be read ({exc})") from None
        try:
            items = json.loads(text)["keys"]
            if not isinstance(items, list):
                raise TypeError("'keys' is not a list")
            records = [KeyRecord(**item) for item in items]
        except (ValueError, KeyError, TypeError) as exc:
            raise self._corrupt(f"is not the JSON `workbench keys add` writes ({type(exc).__name__}: {exc})") from None
        for record in records:
            if (
                not all(isinstance(v, str) for v in asdict(record).values())
                or not OWNER_PATTERN.match(record.owner)
                or not SHA256_PATTERN.match(record.sha256)
            ):
                raise self._corrupt(
                    f"holds an entry that is not an owner and a SHA-256 hex hash: {asdict(record)!r:.200}"
                )
        return records

    def _corrupt(self, why: str) -> KeyFileCorrupt:
        return KeyFileCorrupt(
            f"The API key file {self.path} {why}. Restore it from a backup or fix it by hand; removing it removes "
            "every key it holds (then `workbench keys add OWNER` makes new ones)"
        )

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """An exclusive flock on the lock file, held across one read-modify-write (waits for another holder)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def _write(self, records: list[KeyRecord]) -> None:
        """Replaces the file atomically and durably: the data, then the folder entry, are fsync'd."""
        body = json.dumps({"keys": [asdict(r) for r in records]}, indent=2).encode()
        atomic_write_bytes(self.path, body)  # mkstemp: created 0o600
        os.chmod(self.path, 0o600)
        folder = os.open(self.path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)

    def add(self, owner: str, key: str | None = None) -> str:
        """Stores a key for `owner` (a new random one unless given) and returns it once durable: shown only now."""
        key = key or secrets.token_urlsafe(KEY_BYTES)
        record = KeyRecord(check_owner(owner), key_hash(key), now_iso())
        with self._locked():
            records = self.records()
            if any(r.sha256 == record.sha256 for r in records):
                raise InvalidRequest("This key is already stored")
            self._write([*records, record])
        return key

    def remove(self, owner_or_key_id: str) -> list[KeyRecord]:
        """Removes every key of an owner, or the one key whose id (hash prefix) is given; returns them."""
        with self._locked():
            records = self.records()
            gone = [r for r in records if owner_or_key_id in (r.owner, r.key_id)]
            if not gone:
                raise InvalidRequest(f"No stored key has the owner or key id {owner_or_key_id!r}")
            self._write([r for r in records if r not in gone])
        return gone


class KeyRing:
    """Answers "whose key is this?" from the environment and the key file (re-read when it changes)."""

    def __init__(self, home: Path, env_value: str | None = None) -> None:
        self.file = KeyFile(home)
        self._env = env_keys(env_value if env_value is not None else os.environ.get(KEYS_ENV))
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._stored: dict[str, str] = {}

    def _file_hashes(self) -> dict[str, str]:
        try:
            stat = self.file.path.stat()
            stamp = (stat.st_mtime_ns, stat.st_size)
        except FileNotFoundError:
            stamp = None
        with self._lock:
            if stamp != self._stamp:
                try:
                    self._stored = {r.sha256: r.owner for r in self.file.records()}
                except KeyFileCorrupt as exc:  # edited under a running server: its keys stop working, loudly
                    logger.error("%s; until then no key from that file is accepted", exc.message)
                    self._stored = {}
                self._stamp = stamp
            return self._stored

    def check(self) -> None:
        """Raises KeyFileCorrupt when the key file is unusable: a server checks this before it starts."""
        self.file.records()

    def __len__(self) -> int:
        return len(self._env) + len(self._file_hashes())

    def owner_for(self, key: str) -> str | None:
        """The owner of `key`, or None when no configured key matches."""
        digest = key_hash(key)
        found = None
        for known, owner in [*self._env.items(), *self._file_hashes().items()]:
            if hmac.compare_digest(known, digest):
                found = owner
        return found
