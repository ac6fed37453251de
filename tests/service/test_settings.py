"""service.settings: where a Workbench keeps its store, from its arguments or the environment, checked first.

A PostgreSQL store without a shared blob folder would let each host keep the images and heads it
wrote to itself, so the others could neither classify nor retrain: refused before anything opens.
"""

from __future__ import annotations

import pytest

from workbench import Workbench
from workbench.core.errors import InvalidRequest

URI = "postgresql://workbench@db.example:5432/workbench"


@pytest.fixture(autouse=True)
def no_store_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WORKBENCH_STORE", raising=False)
    monkeypatch.delenv("WORKBENCH_BLOBS", raising=False)


def test_sqlite_in_the_home_is_the_default(tmp_path) -> None:
    settings = Workbench(tmp_path, tracking_uri=False).settings
    assert (settings.store, settings.blobs) == (None, None)


def test_a_postgresql_store_and_its_blob_folder_come_from_arguments_or_the_environment(tmp_path, monkeypatch) -> None:
    settings = Workbench(tmp_path, store=URI, blobs=tmp_path / "shared", tracking_uri=False).settings
    assert (settings.store, settings.blobs) == (URI, tmp_path / "shared")
    monkeypatch.setenv("WORKBENCH_STORE", URI)
    monkeypatch.setenv("WORKBENCH_BLOBS", str(tmp_path / "mounted"))
    settings = Workbench(tmp_path, tracking_uri=False).settings
    assert (settings.store, settings.blobs) == (URI, tmp_path / "mounted")


def test_a_postgresql_store_without_a_shared_blob_folder_is_refused(tmp_path) -> None:
    with pytest.raises(InvalidRequest, match="needs blobs=FOLDER"):
        Workbench(tmp_path, store=URI, tracking_uri=False)


def test_a_store_uri_that_is_not_postgresql_is_refused_without_its_password(tmp_path) -> None:
    with pytest.raises(InvalidRequest, match="store must be a PostgreSQL URI") as caught:
        Workbench(tmp_path, store="mysql://wb:s3cret@db/x", blobs=tmp_path, tracking_uri=False)
    assert "s3cret" not in caught.value.message


def test_a_blob_folder_without_a_postgresql_store_is_refused(tmp_path) -> None:
    with pytest.raises(InvalidRequest, match=r"blobs .* is for a PostgreSQL store"):
        Workbench(tmp_path, blobs=tmp_path / "shared", tracking_uri=False)
