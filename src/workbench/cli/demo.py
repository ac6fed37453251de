"""`demo`: the Watson tutorial end to end on the bundled images; `zip_folder` makes its example zips."""

from __future__ import annotations

import sys
import tempfile
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

from .output import print_json

if TYPE_CHECKING:
    from ..service.workbench import Workbench

TUTORIAL_DIR = Path("data") / "tutorial"
TUTORIAL_CREATE = {"beagle": "beagle", "husky": "husky", "goldenretriever": "goldenretriever"}
TUTORIAL_UPDATE = {"dalmatian": "dalmatian"}
DEMO_HIERARCHY_THRESHOLD = 0.1  # ImageNet probabilities spread over similar breeds; 0.1 shows the breeds


def tutorial_dir() -> Path:
    """The bundled tutorial images: ./data/tutorial, else the checkout this package was installed from."""
    if TUTORIAL_DIR.is_dir():
        return TUTORIAL_DIR
    return Path(__file__).resolve().parents[3] / TUTORIAL_DIR


def zip_folder(folder: Path, target: Path) -> Path:
    """Zips a folder of images (stored, not recompressed) as the tutorial's example zips."""
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_STORED) as archive:
        for path in sorted(folder.iterdir()):
            if path.is_file():
                archive.write(path, f"{folder.name}/{path.name}")
    return target


def run_demo(wb: Workbench, data: Path, keep: bool) -> None:
    """The tutorial end to end: create `dogs`, update it, classify dogs.jpg, delete."""
    with tempfile.TemporaryDirectory() as tmp:
        zips = {
            name: zip_folder(data / name, Path(tmp) / f"{name}.zip")
            for name in [*TUTORIAL_CREATE, *TUTORIAL_UPDATE, "cats", "more-cats"]
        }
        print("# Step 2: create the dogs classifier", file=sys.stderr)
        created = wb.create_classifier("dogs", {c: zips[c] for c in TUTORIAL_CREATE}, negative_examples=zips["cats"])
        print_json(created)
        cid = created["classifier_id"]
        print_json(wb.wait(cid, timeout=None))
        print("# Step 3: add dalmatian and more-cats", file=sys.stderr)
        print_json(
            wb.update_classifier(
                cid, positive_examples={c: zips[c] for c in TUTORIAL_UPDATE}, negative_examples=zips["more-cats"]
            )
        )
        print_json(wb.wait(cid, timeout=None))
    print("# Step 4: classify dogs.jpg against dogs and default", file=sys.stderr)
    print_json(wb.classify(data / "dogs.jpg", classifier_ids=[cid, "default"]))
    print(f"# The default model's hierarchy for dogs.jpg at threshold {DEMO_HIERARCHY_THRESHOLD}", file=sys.stderr)
    print_json(wb.classify(data / "dogs.jpg", classifier_ids=["default"], threshold=DEMO_HIERARCHY_THRESHOLD))
    if not keep:
        print("# Step 5: delete the classifier", file=sys.stderr)
        wb.delete_classifier(cid)
        print_json(wb.list_classifiers())
