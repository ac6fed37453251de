"""`python -m bench.food_model`: the `food` model's answers on real photos, and what its `non-food` rule does.

`non-food` scores 1 minus the whole of food (the best view's or window's summed probability of the food leaves,
`food.food_classes`). This prints, per set of real photos, how many images score `non-food` >= 0.5 and the
spread of their food totals: the 257 tutorial images and `dogs.jpg` (dogs and cats: no food), and the food
photos at hand (`data/reference/fruitbowl.jpg`, scikit-image's coffee cup), with each food photo's answer.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TUTORIAL = ROOT / "data" / "tutorial"
FRUITBOWL = ROOT / "data" / "reference" / "fruitbowl.jpg"
NO_FOOD_FOLDERS = ("beagle", "husky", "goldenretriever", "dalmatian", "cats", "more-cats", "test")


def food_total(classes: list[dict]) -> float:
    """1 - the non-food score at threshold 0 (the whole of food)."""
    return 1.0 - next(c["score"] for c in classes if c["class"] == "non-food")


def main() -> None:
    from workbench import Workbench

    wb = Workbench(tempfile.mkdtemp() + "/home", tracking_uri=False)
    no_food = [
        p
        for f in NO_FOOD_FOLDERS
        for p in sorted((TUTORIAL / f).iterdir())
        if p.suffix.lower() in (".jpg", ".jpeg", ".png")
    ]
    no_food.append(TUTORIAL / "dogs.jpg")
    answer = wb.classify_iter(no_food, classifier_ids=["food"], threshold=0.0)
    totals = {}
    for path, image in zip(no_food, answer, strict=True):
        totals[f"{path.parent.name}/{path.name}"] = food_total(image["classifiers"][0]["classes"])
    values = sorted(totals.values())
    print(
        f"no food: {len(values)} images, non-food >= 0.5 on {sum(v <= 0.5 for v in values)}; food total median "
        f"{statistics.median(values):.4f}, 95th percentile {values[int(0.95 * len(values))]:.4f}, max {values[-1]:.4f}"
    )
    for name, value in sorted(totals.items(), key=lambda item: -item[1])[:5]:
        print(f"  highest food total: {name} {value:.4f}")
    food = {"fruitbowl.jpg": FRUITBOWL.read_bytes()}
    try:
        import io

        from PIL import Image
        from skimage import data

        buffer = io.BytesIO()
        Image.fromarray(data.coffee()).save(buffer, "PNG")
        food["skimage coffee.png"] = buffer.getvalue()
    except ImportError:
        print("(scikit-image missing: no coffee photo)", file=sys.stderr)
    for name, image in food.items():
        classes = wb.classify(image, classifier_ids=["food"])["images"][0]["classifiers"][0]["classes"]
        everything = wb.classify(image, classifier_ids=["food"], threshold=0.0)["images"][0]["classifiers"][0][
            "classes"
        ]
        print(f"{name}: food total {food_total(everything):.4f}; at 0.5: {json.dumps(classes)}")


if __name__ == "__main__":
    main()
