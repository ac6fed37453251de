"""The embedding cache: backbone embeddings keyed by (image sha256, backbone id) in SQLite.

Retraining embeds only the images it has not seen. It is only a cache: a full disk or a lock held
by another process never fails the training or delete that uses it (see `EmbeddingCache`).
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Sequence
from contextlib import closing
from pathlib import Path

import numpy as np

from ..core.atomic import open_for_reading, private_database

CACHE_TIMEOUT_S = 30.0  # how long an embedding-cache write waits for another process's lock
log = logging.getLogger(__name__)


class EmbeddingCache:
    """Embeddings keyed by (image sha256, backbone id) in SQLite, so retraining embeds only new images.

    Only a cache: a disk that is full (or a file another process holds locked) never fails the
    training or delete that uses it. A read goes on through a connection that needs no space, or
    finds nothing; a write that cannot be made is logged and skipped (the vectors are computed again).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        private_database(path)  # 0600 (its -wal and -shm too), a folder it creates 0700
        try:
            with closing(self._connect()) as db, db:
                db.execute(
                    "CREATE TABLE IF NOT EXISTS embeddings ("
                    " sha256 TEXT NOT NULL, backbone_id TEXT NOT NULL, vector BLOB NOT NULL,"
                    " PRIMARY KEY (sha256, backbone_id))"
                )
        except sqlite3.OperationalError as exc:
            log.warning("embedding cache %s not opened for writing (%s); embeddings are computed as needed", path, exc)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=CACHE_TIMEOUT_S)
        try:
            db.execute("PRAGMA journal_mode=WAL")
        except BaseException:
            db.close()
            raise
        return db

    def get_many(self, shas: Sequence[str], backbone_id: str) -> dict[str, np.ndarray]:
        """The cached embeddings among `shas` (none when the cache cannot be read at all)."""
        try:
            with closing(self._connect()) as db:
                return self._select(db, shas, backbone_id)
        except sqlite3.OperationalError as exc:  # a full disk refuses the WAL index a normal connection needs
            try:
                with closing(open_for_reading(self.path, CACHE_TIMEOUT_S)) as db:
                    return self._select(db, shas, backbone_id)
            except (OSError, sqlite3.Error):
                log.warning("embedding cache %s unreadable (%s); computing the embeddings", self.path, exc)
                return {}

    @staticmethod
    def _select(db: sqlite3.Connection, shas: Sequence[str], backbone_id: str) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        for start in range(0, len(shas), 500):
            chunk = list(shas[start : start + 500])
            marks = ",".join("?" * len(chunk))
            rows = db.execute(
                f"SELECT sha256, vector FROM embeddings WHERE backbone_id = ? AND sha256 IN ({marks})",
                [backbone_id, *chunk],
            )
            for sha, blob in rows:
                found[sha] = np.frombuffer(blob, dtype=np.float32)
        return found

    def put_many(self, items: dict[str, np.ndarray], backbone_id: str) -> bool:
        """Stores embeddings (one transaction); False when the cache could not take them (logged, not raised)."""
        rows = [(sha, backbone_id, np.asarray(v, np.float32).tobytes()) for sha, v in items.items()]
        return self._write("INSERT OR REPLACE INTO embeddings (sha256, backbone_id, vector) VALUES (?, ?, ?)", rows)

    def delete_many(self, shas: Sequence[str]) -> bool:
        """Forgets the embeddings of deleted images, for every backbone; False when the cache refused (logged)."""
        return self._write("DELETE FROM embeddings WHERE sha256 = ?", [(sha,) for sha in shas])

    def _write(self, statement: str, rows: list[tuple]) -> bool:
        if not rows:
            return True
        try:
            with closing(self._connect()) as db, db:
                db.executemany(statement, rows)
        except sqlite3.OperationalError as exc:  # full or locked: the cache stays as it was
            log.warning("embedding cache %s not written (%s): %d rows skipped", self.path, exc, len(rows))
            return False
        return True
