"""A Workbench's configuration, resolved once from its constructor's arguments and frozen.

One value object instead of eleven loose attributes: the engine is wired from it, owner views share it,
and nothing can change it under a running engine.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable
from pathlib import Path

from ..core.errors import InvalidRequest
from ..core.limits import Limits
from ..jobs.runner import JobSettings
from ..scoring.export import check_format
from ..store.postgres import is_postgres_uri, redacted

HOME_ENV = "WORKBENCH_HOME"
STORE_ENV = "WORKBENCH_STORE"  # a postgresql:// URI: the rows on PostgreSQL (servers on many hosts)
BLOBS_ENV = "WORKBENCH_BLOBS"  # with it: the folder every host mounts, for image blobs and heads
DEFAULT_HOME = Path("data") / "workbench"


def default_home() -> Path:
    """`WORKBENCH_HOME`, else `data/workbench/` under the current directory."""
    return Path(os.environ.get(HOME_ENV) or DEFAULT_HOME)


def store_location(store: str | None, blobs: str | os.PathLike | None) -> tuple[str | None, Path | None]:
    """The store URI and shared blob folder (given, else $WORKBENCH_STORE and $WORKBENCH_BLOBS), checked.

    None, None: SQLite in the home (one host). A `postgresql://` URI needs `blobs`: every host must
    read the images and heads the others wrote.
    """
    uri = store if store is not None else os.environ.get(STORE_ENV) or None
    folder = blobs if blobs is not None else os.environ.get(BLOBS_ENV) or None
    if uri is None:
        if folder is not None:
            raise InvalidRequest(
                "blobs (or $WORKBENCH_BLOBS) is for a PostgreSQL store: give store='postgresql://...' too"
            )
        return None, None
    if not is_postgres_uri(uri):
        raise InvalidRequest(
            f"store must be a PostgreSQL URI (postgresql://user@host:port/database), got {redacted(str(uri))!r}; "
            "leave it out for SQLite in the home"
        )
    if folder is None:
        raise InvalidRequest(
            f"a PostgreSQL store ({redacted(uri)}) needs blobs=FOLDER (or $WORKBENCH_BLOBS): "
            "a folder every host mounts, for image blobs and trained heads"
        )
    return uri, Path(folder)


@dataclasses.dataclass(frozen=True)
class Settings:
    """What a Workbench was built with (see `Workbench` for each setting's meaning), defaults resolved."""

    home: Path
    limits: Limits  # WORKBENCH_MAX_REQUEST_BYTES, WORKBENCH_MAX_ZIP_MEMBERS when not given
    embedding_cache: Path
    progress: bool = False
    resume: bool = True
    train: bool = True
    tracking_uri: str | os.PathLike | bool | None = None  # None: $MLFLOW_TRACKING_URI or ./mlruns; False: off
    job_settings: JobSettings | None = None  # None: JobSettings.from_env() when the engine opens
    prebuild_exports: tuple[str, ...] = ()
    precision: str | None = None  # the backbone's: "fp32" or "int8" (None: $WORKBENCH_PRECISION, else FP32)
    read_only: bool = False  # classify only, writing nothing in the home; the embedding cache goes to scratch
    store: str | None = None  # a postgresql:// URI (rows on PostgreSQL); None: SQLite in the home
    blobs: Path | None = None  # with `store`: the shared folder of image blobs and heads

    @classmethod
    def resolve(
        cls,
        home: str | os.PathLike | None,
        *,
        limits: Limits | None,
        progress: bool,
        resume: bool,
        train: bool,
        embedding_cache: str | os.PathLike | None,
        tracking_uri: str | os.PathLike | bool | None,
        job_settings: JobSettings | None,
        prebuild_exports: Iterable[str],
        precision: str | None,
        read_only: bool,
        store: str | None = None,
        blobs: str | os.PathLike | None = None,
    ) -> Settings:
        """The settings of `Workbench(home, ...)`: the default home, limits and embedding cache filled in."""
        folder = Path(home) if home is not None else default_home()
        uri, shared = store_location(store, blobs)
        return cls(
            home=folder,
            limits=limits or Limits.from_env(),
            embedding_cache=Path(embedding_cache) if embedding_cache else folder / "embeddings.db",
            progress=progress,
            resume=resume,
            train=train,
            tracking_uri=tracking_uri,
            job_settings=job_settings,
            prebuild_exports=tuple(check_format(f) for f in prebuild_exports),
            precision=precision,
            read_only=read_only,
            store=uri,
            blobs=shared,
        )
