"""Small training sets cut from the tutorial images, for tests that train often."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

from conftest import TUTORIAL
from workbench import Workbench

TRAIN_S = 300.0
SIZES = {"beagle": 12, "husky": 12, "cats": 10}  # 10 is the least a set may keep


def small_zip(folder: Path, name: str, count: int) -> Path:
    """The first `count` tutorial images of `name`, as `folder/name.zip`."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{name}.zip"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_STORED) as archive:
        for photo in sorted((TUTORIAL / name).iterdir())[:count]:
            archive.write(photo, f"{name}/{photo.name}")
    return target


def create_small(wb: Workbench, folder: Path) -> str:
    zips = {name: small_zip(folder, name, n) for name, n in SIZES.items()}
    cid = wb.create_classifier(
        "pets", {"beagle": zips["beagle"], "husky": zips["husky"]}, negative_examples=zips["cats"]
    )["classifier_id"]
    assert wb.wait(cid, timeout=TRAIN_S)["status"] == "ready"
    return cid


def small_sets(folder: Path, classes: tuple[str, ...], images: int = 10) -> dict[str, Path]:
    """Folders of the first `images` tutorial images of each class (copied unaltered)."""
    sets = {}
    for name in classes:
        sets[name] = folder / name
        sets[name].mkdir(parents=True)
        for path in sorted((TUTORIAL / name).iterdir())[:images]:
            shutil.copyfile(path, sets[name] / path.name)
    return sets
