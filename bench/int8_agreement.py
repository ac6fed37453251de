"""`python -m bench.int8_agreement`: does INT8 keep FP32's answers on images its calibration never saw?

The INT8 model the package builds calibrates on every image under data/tutorial (`quantize.calibration_images`),
so agreement measured there flatters it. Here, two held-out measures:
1. the recipe, calibrated afresh on half of the tutorial images (every other file of each folder), against
   FP32 on the other half plus the real photos that ship with scikit-image, matplotlib and scikit-learn
   and data/reference/fruitbowl.jpg;
2. the shipped INT8 model (calibrated on all the tutorial) against FP32 on those outside photos.
Each gives ImageNet top-1 agreement and the largest move of a custom score: a tutorial classifier (three
breeds, the cats as negatives, trained on the calibration half) scoring each held-out image, (a) its FP32
heads on INT8 embeddings (old heads, new backbone) and (b) heads refit on INT8 embeddings (a re-embedded
store) against the FP32 ones. INT8 becomes the default only at >= 0.97 top-1 and <= 0.03 score move
(issue 23); the bench prints the choice and writes `int8_heldout_agreement`, `int8_heldout_max_score_move`
and `int8_default` into bench/results.json's summary. A few minutes on 2 shared cores (one calibration).
"""

from __future__ import annotations

import json
import os
import tempfile
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


def tutorial_split() -> tuple[list[Path], list[Path]]:
    """(calibration half, held-out half): every other image of each tutorial folder, plus dogs.jpg held out."""
    calibrate, held = [], [TUTORIAL / "dogs.jpg"]
    for folder in FOLDERS:
        paths = sorted(p for p in (TUTORIAL / folder).iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
        calibrate += paths[0::2]
        held += paths[1::2]
    return calibrate, held


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
    (e32, top32), (e8, top8) = fp32, int8
    old_heads = float(np.abs(heads32.scores(e32) - heads32.scores(e8)).max())
    refit = float(np.abs(heads32.scores(e32) - heads8.scores(e8)).max())
    return {
        "set": name,
        "images": len(top32),
        "top1_agreement": float(np.mean(top32 == top8)),
        "max_score_move_old_heads": old_heads,
        "max_score_move_refit": refit,
    }


def main() -> None:
    from workbench.analysis.training import train
    from workbench.core.limits import Limits
    from workbench.engine.backbone import Backbone, available_cpus
    from workbench.engine.onnx_engine import OnnxEngine
    from workbench.engine.quantize import quantize
    from workbench.images.decode import backbone_input

    print(f"load average before {os.getloadavg()}", flush=True)
    fp32_backbone, shipped_backbone = Backbone(engine="onnxruntime", precision="fp32"), Backbone(precision="int8")
    for backbone in (fp32_backbone, shipped_backbone):
        backbone.prepare(wait=True)
    spec, threads = fp32_backbone.spec, available_cpus()
    calibrate, held = tutorial_split()
    outside = outside_photos()
    every = [*calibrate, *held, *outside]
    tensors = {p: backbone_input(p.read_bytes(), spec, Limits(), p.name)[0] for p in every}

    fp32 = OnnxEngine(fp32_backbone.onnx_path, threads)
    shipped = OnnxEngine(shipped_backbone.onnx_path, threads)
    with tempfile.TemporaryDirectory(prefix="int8-half-") as tmp:
        half_path = Path(tmp) / "half-int8.onnx"
        quantize(fp32_backbone.onnx_path, half_path, spec, images=calibrate)
        half = OnnxEngine(half_path, threads)
        results = {}
        for label, engine in (("fp32", fp32), ("half", half), ("shipped", shipped)):
            results[label] = {
                p: r for p, r in zip(every, zip(*passes(engine, [tensors[p] for p in every]), strict=True), strict=True)
            }

    def stacked(label: str, paths: list[Path]) -> tuple[np.ndarray, np.ndarray]:
        return np.stack([results[label][p][0] for p in paths]), np.array([results[label][p][1] for p in paths])

    rows, labels = training_set(calibrate)
    heads = {}
    for label in ("fp32", "half", "shipped"):
        embeddings = stacked(label, calibrate)[0][rows]
        heads[label] = train(embeddings, labels, list(CLASSES)).heads
    measures = [
        measure(
            "recipe calibrated on half the tutorial: the other half",
            stacked("fp32", held),
            stacked("half", held),
            heads["fp32"],
            heads["half"],
        ),
        measure(
            "recipe calibrated on half the tutorial: outside photos",
            stacked("fp32", outside),
            stacked("half", outside),
            heads["fp32"],
            heads["half"],
        ),
        measure(
            "shipped INT8 (all the tutorial): outside photos",
            stacked("fp32", outside),
            stacked("shipped", outside),
            heads["fp32"],
            heads["shipped"],
        ),
    ]
    held_out = len(held) + len(outside)
    agreement = (measures[0]["top1_agreement"] * len(held) + measures[1]["top1_agreement"] * len(outside)) / held_out
    moved = max(max(m["max_score_move_old_heads"], m["max_score_move_refit"]) for m in measures)
    worst_top1 = min(agreement, measures[2]["top1_agreement"])
    default = "int8" if worst_top1 >= MIN_TOP1 and moved <= MAX_SCORE_MOVE else "fp32"
    print(f"{'held-out set':<58} {'images':>6} {'top-1':>6} {'move, FP32 heads':>16} {'move, refit':>11}")
    for m in measures:
        print(
            f"{m['set']:<58} {m['images']:>6} {m['top1_agreement']:>6.3f} {m['max_score_move_old_heads']:>16.3f} "
            f"{m['max_score_move_refit']:>11.3f}"
        )
    print(
        f"held-out top-1 agreement {agreement:.3f} on {held_out} images (target >= {MIN_TOP1}); "
        f"largest custom-score move {moved:.3f} (target <= {MAX_SCORE_MOVE}) -> default precision: {default}"
    )
    print(f"load average after {os.getloadavg()}")
    merge_into_results(
        {
            "int8_heldout_agreement": agreement,
            "int8_heldout_images": held_out,
            "int8_shipped_outside_agreement": measures[2]["top1_agreement"],
            "int8_heldout_max_score_move": moved,
            "int8_default": default == "int8",
        },
        {"int8_agreement": measures},
    )


def merge_into_results(summary: dict, raw: dict) -> None:
    """Adds to bench/results.json's summary and raw, keeping what the other benches wrote there."""
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results.setdefault("summary", {}).update(summary)
    results.setdefault("raw", {}).update(raw)
    tmp = RESULTS.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=2) + "\n")
    os.replace(tmp, RESULTS)


if __name__ == "__main__":
    main()
