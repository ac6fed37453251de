"""`python -m bench.int8_agreement`: does INT8 keep FP32's answers on images its calibration never saw?

The INT8 model the package builds calibrates on the photos shipped in src/workbench/data/calibration
(`quantize.calibration_images`), so every other real image is held out: the tutorial's 257 images and
dogs.jpg, the real photos that ship with scikit-image, matplotlib and scikit-learn, and
data/reference/fruitbowl.jpg. Measured here, the shipped INT8 model against FP32:
- ImageNet top-1 agreement on all of them (`int8_heldout_agreement`);
- the largest move of a custom score: a tutorial classifier (three breeds, the cats as negatives) trained
  on every other tutorial image scores the images it was not trained on, (a) its FP32 heads on INT8
  embeddings (old heads, new backbone) and (b) heads refit on INT8 embeddings (a re-embedded store)
  against the FP32 ones (`int8_max_custom_score_move`).
INT8 becomes the default only at >= 0.97 top-1 and <= 0.03 score move (issue 23); the bench prints the
choice and writes it as `default_precision` into bench/results.json's summary, beside the numbers.
A minute or two on 2 shared cores (one calibration when the INT8 model is not cached yet).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TUTORIAL = ROOT / "data" / "tutorial"
RESULTS = Path(__file__).with_name("results.json")
FOLDERS = ("beagle", "husky", "goldenretriever", "dalmatian", "cats", "more-cats", "test")
CLASSES = ("beagle", "husky", "goldenretriever")
NEGATIVES = ("cats",)
SKIMAGE_PHOTOS = (
    "astronaut.png",
    "brick.png",
    "camera.png",
    "chelsea.png",
    "coffee.png",
    "coins.png",
    "grass.png",
    "gravel.png",
    "horse.png",
    "hubble_deep_field.jpg",
    "moon.png",
    "motorcycle_left.png",
    "motorcycle_right.png",
    "page.png",
    "retina.jpg",
    "rocket.jpg",
    "text.png",
)
MIN_TOP1, MAX_SCORE_MOVE = 0.97, 0.03
BATCH = 8
STALE_KEYS = ("int8_default", "int8_heldout_max_score_move", "int8_shipped_outside_agreement")  # older names


def tutorial_split() -> tuple[list[Path], list[Path]]:
    """(training half, scoring half) of the tutorial: every other image of each folder, plus dogs.jpg scored.
    Both halves are held out from the INT8 calibration; the halves split the custom classifier's images."""
    train_half, score_half = [], [TUTORIAL / "dogs.jpg"]
    for folder in FOLDERS:
        paths = sorted(p for p in (TUTORIAL / folder).iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
        train_half += paths[0::2]
        score_half += paths[1::2]
    return train_half, score_half


def outside_photos() -> list[Path]:
    """Real photos that ship with the installed libraries (and the reference fruit bowl): never calibration images."""
    import matplotlib
    import skimage
    import sklearn

    data = Path(skimage.__file__).parent / "data"
    paths = [data / name for name in SKIMAGE_PHOTOS]
    paths += [
        Path(matplotlib.get_data_path()) / "sample_data" / n
        for n in ("grace_hopper.jpg", "Minduka_Present_Blue_Pack.png")
    ]
    paths += [Path(sklearn.__file__).parent / "datasets" / "images" / n for n in ("china.jpg", "flower.jpg")]
    return [*paths, ROOT / "data" / "reference" / "fruitbowl.jpg"]


def passes(engine, tensors: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(embeddings, top-1 ImageNet class) of every tensor through one ONNX engine."""
    outputs = [engine.run(np.stack(tensors[i : i + BATCH])) for i in range(0, len(tensors), BATCH)]
    return np.concatenate([o[0] for o in outputs]), np.concatenate([o[1] for o in outputs]).argmax(1)


def training_set(paths: list[Path]) -> tuple[list[int], list[str]]:
    """Which of `paths` train the custom classifier, and their labels (negatives: the empty label)."""
    from workbench.analysis.training import NEGATIVE_LABEL

    rows, labels = [], []
    for i, path in enumerate(paths):
        folder = path.parent.name
        if folder in CLASSES or folder in NEGATIVES:
            rows.append(i)
            labels.append(folder if folder in CLASSES else NEGATIVE_LABEL)
    return rows, labels


def measure(name: str, fp32: tuple, int8: tuple, heads32, heads8) -> dict:
    """Top-1 agreement on one set; with heads, the largest score move of FP32 heads and of refit heads."""
    (e32, top32), (e8, top8) = fp32, int8
    row = {"set": name, "images": len(top32), "top1_agreement": float(np.mean(top32 == top8))}
    if heads32 is None:
        return {**row, "max_score_move_old_heads": None, "max_score_move_refit": None}
    row["max_score_move_old_heads"] = float(np.abs(heads32.scores(e32) - heads32.scores(e8)).max())
    row["max_score_move_refit"] = float(np.abs(heads32.scores(e32) - heads8.scores(e8)).max())
    return row


def main() -> None:
    from workbench.analysis.training import train
    from workbench.core.limits import Limits
    from workbench.engine.backbone import Backbone, available_cpus
    from workbench.engine.onnx_engine import OnnxEngine
    from workbench.images.decode import backbone_input

    print(f"load average before {os.getloadavg()}", flush=True)
    fp32_backbone, int8_backbone = Backbone(engine="onnxruntime", precision="fp32"), Backbone(precision="int8")
    for backbone in (fp32_backbone, int8_backbone):
        backbone.prepare(wait=True)
    print(f"INT8 model {int8_backbone.onnx_path.name}; load average {os.getloadavg()}", flush=True)
    spec, threads = fp32_backbone.spec, available_cpus()
    train_half, score_half = tutorial_split()
    outside = outside_photos()
    every = [*train_half, *score_half, *outside]
    tensors = [backbone_input(p.read_bytes(), spec, Limits(), p.name)[0] for p in every]
    results = {}
    for label, backbone in (("fp32", fp32_backbone), ("int8", int8_backbone)):
        embeddings, top1 = passes(OnnxEngine(backbone.onnx_path, threads), tensors)
        results[label] = dict(zip(every, zip(embeddings, top1, strict=True), strict=True))

    def stacked(label: str, paths: list[Path]) -> tuple[np.ndarray, np.ndarray]:
        return np.stack([results[label][p][0] for p in paths]), np.array([results[label][p][1] for p in paths])

    rows, labels = training_set(train_half)
    heads = {label: train(stacked(label, train_half)[0][rows], labels, list(CLASSES)).heads for label in results}
    measures = [
        measure(
            "tutorial images",
            stacked("fp32", [*train_half, *score_half]),
            stacked("int8", [*train_half, *score_half]),
            None,
            None,
        ),
        measure(
            "tutorial images the classifier never saw",
            stacked("fp32", score_half),
            stacked("int8", score_half),
            heads["fp32"],
            heads["int8"],
        ),
        measure(
            "outside photos (libraries, fruit bowl)",
            stacked("fp32", outside),
            stacked("int8", outside),
            heads["fp32"],
            heads["int8"],
        ),
    ]
    agreement = float(np.mean(stacked("fp32", every)[1] == stacked("int8", every)[1]))
    moved = max(max(m["max_score_move_old_heads"], m["max_score_move_refit"]) for m in measures[1:])
    default = "int8" if agreement >= MIN_TOP1 and moved <= MAX_SCORE_MOVE else "fp32"
    print(f"{'held-out set':<46} {'images':>6} {'top-1':>6} {'move, FP32 heads':>16} {'move, refit':>11}")
    for m in measures:
        old, refit = (m[k] for k in ("max_score_move_old_heads", "max_score_move_refit"))
        moves = f"{old:>16.3f} {refit:>11.3f}" if old is not None else f"{'-':>16} {'-':>11}"
        print(f"{m['set']:<46} {m['images']:>6} {m['top1_agreement']:>6.3f} {moves}")
    print(
        f"INT8 held-out top-1 agreement {agreement:.3f} on {len(every)} images (target >= {MIN_TOP1}); "
        f"largest custom-score move {moved:.3f} (target <= {MAX_SCORE_MOVE}) -> default precision: {default}"
    )
    print(f"load average after {os.getloadavg()}")
    merge_into_results(
        {
            "int8_heldout_agreement": agreement,
            "int8_heldout_images": len(every),
            "int8_max_custom_score_move": moved,
            "default_precision": default,
        },
        {"int8_agreement": measures},
    )


def merge_into_results(summary: dict, raw: dict) -> None:
    """Adds to bench/results.json's summary and raw, keeping what the other benches wrote there."""
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results.setdefault("summary", {}).update(summary)
    for stale in STALE_KEYS:
        results["summary"].pop(stale, None)
    results.setdefault("raw", {}).update(raw)
    tmp = RESULTS.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=2) + "\n")
    os.replace(tmp, RESULTS)


if __name__ == "__main__":
    main()
