"""One benchmark phase per process, so each phase's peak RSS is its own: `python -m bench.phases NAME WORKDIR REPEATS`.

Prints one JSON line: the phase's numbers plus `peak_rss_mb` (ru_maxrss of this process).
"""

from __future__ import annotations

import json
import resource
import statistics
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TUTORIAL = ROOT / "data" / "tutorial"
TRAIN_FOLDERS = ("beagle", "husky", "goldenretriever", "dalmatian", "cats", "more-cats")  # the 250 images
CREATE_CLASSES = ("beagle", "husky", "goldenretriever")
LIMIT_BATCH_IMAGES = 8
LIMIT_BATCHES_PER_REPEAT = 25
BATCHING_THREADS = 8
BATCHING_CALLS_PER_THREAD = 20
BATCHING_WAIT_SECONDS = 0.003


def train_images() -> list[Path]:
    return [p for folder in TRAIN_FOLDERS for p in sorted((TUTORIAL / folder).iterdir())]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def workbench(workdir: Path):
    from workbench import Workbench

    wb = Workbench(workdir / "home", tracking_uri=False)
    wb.backbone.prepare(wait=True)
    return wb


def zips(workdir: Path) -> dict[str, Path]:
    """The tutorial zips, built once by `python -m bench` beside the per-repeat work folders."""
    return {name: workdir.parent / "zips" / f"{name}.zip" for name in TRAIN_FOLDERS}


def phase_limit(workdir: Path, repeats: int) -> dict:
    """Backbone-only throughput: ONNX Runtime, batch 8, 224x224 tensors already in memory."""
    from workbench.backbone import Backbone

    backbone = Backbone(engine="onnxruntime")
    batch = list(np.random.default_rng(0).uniform(-1, 1, (LIMIT_BATCH_IMAGES, 3, 224, 224)).astype(np.float32))
    for _ in range(3):
        backbone.run(batch)
    rates = []
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(LIMIT_BATCHES_PER_REPEAT):
            backbone.run(batch)
        rates.append(LIMIT_BATCH_IMAGES * LIMIT_BATCHES_PER_REPEAT / (time.perf_counter() - started))
    return {"images_per_s": statistics.median(rates), "all": rates}


def phase_naive(workdir: Path, repeats: int) -> dict:
    """A notebook user's loop: PIL open, resize and crop, one eager torch forward per image, no cache."""
    import torch
    from PIL import Image

    from workbench.spec import lite0_spec
    from workbench.network import load_network

    spec = lite0_spec()
    net = load_network(spec)

    def classify_one(path: Path) -> np.ndarray:
        image = Image.open(path).convert("RGB")
        w, h = image.size
        scale = 224 / min(w, h)
        image = image.resize((max(224, round(w * scale)), max(224, round(h * scale))), Image.BICUBIC)
        left, top = (image.width - 224) // 2, (image.height - 224) // 2
        pixels = np.asarray(image.crop((left, top, left + 224, top + 224)), np.float32)
        x = torch.from_numpy(((pixels - 127.0) / 128.0).transpose(2, 0, 1).copy()).unsqueeze(0)
        with torch.no_grad():
            _, logits = net(x)
        return torch.softmax(logits, dim=1).numpy()

    paths = train_images()
    classify_one(paths[0])
    rates = []
    for _ in range(repeats):
        started = time.perf_counter()
        for path in paths:
            classify_one(path)
        rates.append(len(paths) / (time.perf_counter() - started))
    return {"images_per_s": statistics.median(rates), "all": rates}


def _ready_seconds(wb, call) -> tuple[float, dict]:
    started = time.perf_counter()
    cid = call()["classifier_id"]
    wb.wait(cid)
    seconds = time.perf_counter() - started
    return seconds, wb.versions(cid)[-1]["metrics"]


def phase_create(workdir: Path, repeats: int) -> dict:
    """Create the tutorial classifier from zips (fresh home, nothing cached) until `ready`."""
    wb, z = workbench(workdir), zips(workdir)
    seconds, metrics = _ready_seconds(
        wb, lambda: wb.create_classifier("dogs", {c: z[c] for c in CREATE_CLASSES}, negative_examples=z["cats"])
    )
    return {"seconds": seconds, "images_embedded": metrics["images_embedded"], "fit_seconds": metrics["fit_seconds"]}


def _classifier_id(wb) -> str:
    return wb.list_classifiers()["classifiers"][0]["classifier_id"]


def phase_update(workdir: Path, repeats: int) -> dict:
    """The tutorial's update (dalmatian plus more cats) until `ready` again."""
    wb, z = workbench(workdir), zips(workdir)
    cid = _classifier_id(wb)
    seconds, metrics = _ready_seconds(
        wb, lambda: wb.update_classifier(cid, positive_examples={"dalmatian": z["dalmatian"]}, negative_examples=z["more-cats"])
    )
    return {"seconds": seconds, "images_embedded": metrics["images_embedded"], "fit_seconds": metrics["fit_seconds"]}


def phase_retrain(workdir: Path, repeats: int) -> dict:
    """A retraining that needs no new embedding: the more-cats negatives again, all cached."""
    wb, z = workbench(workdir), zips(workdir)
    cid = _classifier_id(wb)
    seconds, metrics = _ready_seconds(wb, lambda: wb.update_classifier(cid, negative_examples=z["more-cats"]))
    return {"seconds": seconds, "images_embedded": metrics["images_embedded"], "fit_seconds": metrics["fit_seconds"]}


def phase_classify(workdir: Path, repeats: int) -> dict:
    """wb.classify on the 250 training images against the classifier and `default`; then one image per call."""
    wb = workbench(workdir)
    ids = [_classifier_id(wb), "default"]
    folders = [TUTORIAL / name for name in TRAIN_FOLDERS]
    wb.classify(TUTORIAL / "dogs.jpg", classifier_ids=ids)
    rates = []
    for _ in range(repeats):
        started = time.perf_counter()
        answer = wb.classify(folders, classifier_ids=ids)
        rates.append(answer["images_processed"] / (time.perf_counter() - started))
    rss_after_batch = peak_rss_mb()
    latencies = []
    for path in train_images():
        started = time.perf_counter()
        wb.classify(path, classifier_ids=ids)
        latencies.append((time.perf_counter() - started) * 1000)
    return {
        "images_per_s": statistics.median(rates),
        "all": rates,
        "images": answer["images_processed"],
        "batch_peak_rss_mb": rss_after_batch,
        "single_p50_ms": float(np.percentile(latencies, 50)),
        "single_p99_ms": float(np.percentile(latencies, 99)),
    }


def phase_batching(workdir: Path, repeats: int) -> dict:
    """Single-image backbone passes from 8 threads: one pass each vs micro-batched (greedy, and 3 ms window)."""
    from workbench.backbone import Backbone
    from bench.batching import BatchingRunner

    backbone = Backbone(engine="onnxruntime")
    tensor = np.zeros((3, 224, 224), np.float32)
    runners = {
        "direct": backbone,
        "batched_greedy": BatchingRunner(backbone),
        "batched_3ms": BatchingRunner(backbone, wait_seconds=BATCHING_WAIT_SECONDS),
    }

    def rate(runner) -> float:
        def client() -> None:
            for _ in range(BATCHING_CALLS_PER_THREAD):
                runner.run([tensor])

        threads = [threading.Thread(target=client) for _ in range(BATCHING_THREADS)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return BATCHING_THREADS * BATCHING_CALLS_PER_THREAD / (time.perf_counter() - started)

    rate(runners["direct"])
    return {name: statistics.median([rate(r) for _ in range(repeats)]) for name, r in runners.items()}


PHASES = {
    "limit": phase_limit,
    "naive": phase_naive,
    "create": phase_create,
    "update": phase_update,
    "retrain": phase_retrain,
    "classify": phase_classify,
    "batching": phase_batching,
}


if __name__ == "__main__":
    name, workdir, repeats = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
    result = PHASES[name](workdir, repeats)
    result["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(result))
