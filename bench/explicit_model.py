"""`python -m bench.explicit_model`: the optional `explicit` model's answers on every tutorial image, and its cost.

Needs the extra (`pip install 'workbench[explicit]'`, NudeNet's AGPL-3.0 detector). Prints how many of the
tutorial's images (dogs and cats, no nudity) answer `not explicit` at the default threshold of 0.5, the spread of
their explicit scores with the five highest, and the detector's time per image alone (decoded images, one thread).
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TUTORIAL = ROOT / "data" / "tutorial"
FOLDERS = ("beagle", "husky", "goldenretriever", "dalmatian", "cats", "more-cats", "test")


def main() -> None:
    from PIL import Image

    from workbench import Workbench
    from workbench.engine.explicit import explicit_model

    wb = Workbench(tempfile.mkdtemp() + "/home", tracking_uri=False)
    images = [
        p for f in FOLDERS for p in sorted((TUTORIAL / f).iterdir()) if p.suffix.lower() in (".jpg", ".jpeg", ".png")
    ]
    images.append(TUTORIAL / "dogs.jpg")
    scores = {}
    for path, answer in zip(images, wb.classify_iter(images, classifier_ids=["explicit"], threshold=0.0), strict=True):
        classes = answer["classifiers"][0]["classes"]
        scores[f"{path.parent.name}/{path.name}"] = next(c["score"] for c in classes if c["class"] == "explicit")
    values = sorted(scores.values())
    print(
        f"tutorial: {len(values)} images, `not explicit` at 0.5 on {sum(v <= 0.5 for v in values)}; explicit score "
        f"median {statistics.median(values):.4f}, 95th percentile {values[int(0.95 * len(values))]:.4f}, "
        f"max {values[-1]:.4f}"
    )
    for name, value in sorted(scores.items(), key=lambda item: -item[1])[:5]:
        print(f"  highest: {name} {value:.4f}")
    model, decoded = explicit_model(), [Image.open(p).copy() for p in images[:40]]
    model.score(decoded[0])  # warm up
    start = time.perf_counter()
    for image in decoded:
        model.score(image)
    per_image = (time.perf_counter() - start) / len(decoded) * 1000
    print(
        f"detector alone: {per_image:.1f} ms per image over {len(decoded)} images "
        f"(load average {os.getloadavg()[0]:.1f})"
    )


if __name__ == "__main__":
    main()
