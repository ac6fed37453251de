"""One benchmark phase per process, so each phase's peak RSS is its own: `python -m bench.phases NAME WORKDIR REPEATS`.

Prints one JSON line: the phase's numbers plus `peak_rss_mb` (ru_maxrss of this process).
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import sys
import threading
import time
from collections.abc import Callable
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


def workbench(workdir: Path, precision: str | None = None):
    from workbench import Workbench

    wb = Workbench(workdir / "home", tracking_uri=False, precision=precision)
    wb.backbone.prepare(wait=True)
    return wb


def zips(workdir: Path) -> dict[str, Path]:
    """The tutorial zips, built once by `python -m bench` beside the per-repeat work folders."""
    return {name: workdir.parent / "zips" / f"{name}.zip" for name in TRAIN_FOLDERS}


def model_paths() -> dict[str, Path]:
    """Each precision's ONNX file, built (and cached) first if needed."""
    from workbench.engine.backbone import Backbone

    paths = {}
    for precision in ("fp32", "int8"):  # INT8 is calibrated here on a machine's first bench (about 15 s)
        backbone = Backbone(engine="onnxruntime", precision=precision)
        backbone.prepare(wait=True)
        paths[precision] = backbone.onnx_path
    return paths


def limit_engines(precisions: tuple[str, ...] = ("fp32", "int8")) -> dict:
    """The limit phase's engines: each precision with ORT spinning off (classify's setting) and on (the fastest)."""
    from workbench.engine.backbone import available_cpus
    from workbench.engine.onnx_engine import OnnxEngine

    return {
        f"{precision}_spin_{'on' if spinning else 'off'}": OnnxEngine(path, available_cpus(), spinning=spinning)
        for precision, path in model_paths().items()
        if precision in precisions
        for spinning in (False, True)
    }


def lane_runs(path: Path, lanes: int, batch: np.ndarray) -> Callable[[], int]:
    """A run of LIMIT_BATCHES_PER_REPEAT batches on one single-threaded session, `lanes` threads calling it at once
    (one batch each at a time: how classify runs a call of many batches, `Backbone.run_dense(lane=True)`);
    returns the images done."""
    from workbench.engine.onnx_engine import OnnxEngine

    engine = OnnxEngine(path, 1)
    per_lane = -(-LIMIT_BATCHES_PER_REPEAT // lanes)

    def lane() -> None:
        for _ in range(per_lane):
            engine.run(batch)

    def run() -> int:
        threads = [threading.Thread(target=lane) for _ in range(lanes)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return lanes * per_lane * len(batch)

    return run


def limit_runs(batch: np.ndarray, precisions: tuple[str, ...] = ("fp32", "int8")) -> dict[str, Callable[[], int]]:
    """Every limit setting as a run of about LIMIT_BATCHES_PER_REPEAT batches that returns the images done:
    one session on every core (spinning off and on), and one single-threaded session per core (`lanes`)."""
    from workbench.engine.backbone import available_cpus

    def sequential(engine) -> Callable[[], int]:
        def run() -> int:
            for _ in range(LIMIT_BATCHES_PER_REPEAT):
                engine.run(batch)
            return LIMIT_BATCHES_PER_REPEAT * len(batch)

        return run

    runs = {name: sequential(engine) for name, engine in limit_engines(precisions).items()}
    paths = {p: path for p, path in model_paths().items() if p in precisions}
    return runs | {f"{p}_lanes": lane_runs(path, available_cpus(), batch) for p, path in paths.items()}


def limit_batch() -> np.ndarray:
    return np.random.default_rng(0).uniform(-1, 1, (LIMIT_BATCH_IMAGES, 3, 224, 224)).astype(np.float32)


def images_per_s(run: Callable[[], int]) -> float:
    """The rate of one call of a limit run (which returns the images it did)."""
    seconds, _, images = timed(run)
    return images / seconds


def stolen_s() -> float:
    """CPU seconds the hypervisor ran other guests on this process's CPUs since boot ("steal", /proc/stat)."""
    cpus = {f"cpu{n}" for n in os.sched_getaffinity(0)}
    lines = Path("/proc/stat").read_text().splitlines()
    ticks = sum(int(line.split()[8]) for line in lines if line.split()[0] in cpus)
    return ticks / os.sysconf("SC_CLK_TCK")


def timed(call: Callable[[], float]) -> tuple[float, float, float]:
    """(wall seconds, the same less the time stolen from every core, `call()`): a call that keeps every core busy
    would have had the stolen time. Steal on this shared 2-vCPU machine ran at 10-40% in 10 s windows, drifting
    within seconds, so a ratio of two wall times taken seconds apart moves with it."""
    stolen, started = stolen_s(), time.perf_counter()
    result = call()
    seconds = time.perf_counter() - started
    return seconds, seconds - (stolen_s() - stolen) / len(os.sched_getaffinity(0)), result


def phase_limit(workdir: Path, repeats: int) -> dict:
    """Backbone-only throughput at batch 8 on 224x224 tensors in memory, every setting interleaved in each repeat."""
    runs = limit_runs(limit_batch())
    for run in runs.values():
        run()
    rates: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            rates[name].append(images_per_s(run))
    return {name: statistics.median(r) for name, r in rates.items()} | {"all": rates}


def _decode_blobs(blobs: list[bytes]) -> int:
    """Classify's work before the backbone on each blob: JPEG draft decode, views, normalise, colour sample; returns
    the backbone views made."""
    from workbench.analysis.colors import color_sample
    from workbench.core.limits import Limits
    from workbench.core.spec import lite0_spec, view_boxes
    from workbench.images.decode import backbone_views

    spec, limits, views = lite0_spec(), Limits(), 0
    for data in blobs:
        tensors, image = backbone_views(data, spec, limits)
        color_sample(image, view_boxes(*image.size, spec))
        views += len(tensors)
    return views


def decode_pass() -> Callable[[], tuple[float, float]]:
    """One pass of classify's work before the backbone over the 250 images (`phase_decode`), as a callable."""
    blobs = [path.read_bytes() for path in train_images()]

    def decode() -> tuple[float, float]:
        """(CPU ms per image, views per image) of one pass over the blobs."""
        started = time.process_time()  # CPU time of this thread's work: what the decode costs the cores
        views = _decode_blobs(blobs)
        return (time.process_time() - started) / len(blobs) * 1000, views / len(blobs)

    return decode


_worker_blobs: list[bytes] = []  # a `decode_all_cores` worker's copy of the 250 images, read once


def _decode_share(share: tuple[int, int]) -> int:
    """A worker's part of `decode_all_cores`: every `cpus`-th of the 250 images from the `index`-th; their count."""
    if not _worker_blobs:
        _worker_blobs.extend(path.read_bytes() for path in train_images())
    index, cpus = share
    blobs = _worker_blobs[index::cpus]
    _decode_blobs(blobs)
    return len(blobs)


def decode_all_cores() -> Callable[[], float]:
    """The decode pass on every core at once, one process each (no shared lock between them), as a callable that
    returns wall ms per image: the machine's decode rate, measured the way the limit's lanes measure inference.

    Per image it costs more than the one-thread CPU time divided by the cores: the cores share caches and memory,
    and one core alone may run faster. Both measures are kept (`phase_decode`)."""
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    from workbench.engine.backbone import available_cpus

    cpus = available_cpus()
    pool = ProcessPoolExecutor(cpus, mp_context=get_context("spawn"))  # spawned: this process may hold ORT threads
    shares = [(index, cpus) for index in range(cpus)]
    for _ in range(2):  # imports, each worker's read of the images and a first pass, outside the measure
        list(pool.map(_decode_share, shares))

    def decode() -> float:
        started = time.perf_counter()
        images = sum(pool.map(_decode_share, shares))
        return (time.perf_counter() - started) / images * 1000

    return decode


def phase_decode(workdir: Path, repeats: int) -> dict:
    """Classify's work before the backbone, per image: CPU ms on one thread, and wall ms with every core decoding at
    once (`decode_all_cores`), interleaved; and how many views (`spec.view_boxes`: backbone passes) the images
    average, which the ceiling's inference counts."""
    decode, on_all_cores = decode_pass(), decode_all_cores()
    costs, walls, views = [], [], 0.0
    for _ in range(repeats):
        cost, views = decode()
        costs.append(cost)
        walls.append(on_all_cores())
    return {
        "ms_per_image": statistics.median(costs),
        "all_cores_ms_per_image": statistics.median(walls),
        "views_per_image": views,
        "all": costs,
        "all_cores": walls,
    }


def ceiling(decode: dict, limit_images_per_s: float, cpus: int) -> float:
    """Decode on every core, then inference of each image's views on every core:
    1 / (decode_all_cores_s + views / limit), decode's wall time per image with every core decoding at once.

    Both terms are rates of every core at once, so a core that runs slower beside a busy neighbour, or a
    shared machine's stolen time, counts the same on both sides. A decode phase from before that measure gets
    `single_thread_ceiling`: 1 / (decode_s / cpus + views / limit), its one-thread CPU time spread over the
    cores. Classify runs the backbone once per view (`spec.view_boxes`: more than one for a wide
    or tall image), so the inference side counts `views_per_image` passes (1 for the 250 tutorial images; a
    decode phase from before views were counted means 1). No pipeline of decode then inference can beat it.
    """
    views = decode.get("views_per_image", 1.0)
    if "all_cores_ms_per_image" in decode:
        return 1.0 / (decode["all_cores_ms_per_image"] / 1000 + views / limit_images_per_s)
    return single_thread_ceiling(decode, limit_images_per_s, cpus)


def single_thread_ceiling(decode: dict, limit_images_per_s: float, cpus: int) -> float:
    """The ceiling as the bench computed it before 2026-12-03: one thread's decode CPU time over `cpus` cores."""
    views = decode.get("views_per_image", 1.0)
    return 1.0 / (decode["ms_per_image"] / 1000 / cpus + views / limit_images_per_s)


def phase_paired(workdir: Path, repeats: int, precision: str = "fp32") -> dict:
    """Classify's ratio to its ceiling with every number measured in this one process, seconds apart: each repeat
    runs the precision's limit settings (best of them), one decode pass on one thread and one on every core, and one
    classify of the 250 images (as `phase_classify`), and gives its own ratio; a shared machine's speed drifts over
    minutes, not seconds. Each repeat also gives its ratio to the one-thread ceiling (`single_thread_ceiling`), and
    its ratio with every wall time less the time stolen from the cores (`timed`)."""
    from workbench.engine.backbone import available_cpus

    cpus, on_all_cores = available_cpus(), decode_all_cores()
    wb, ids, folders, _ = classify_ready(workdir, precision)
    runs, decode = limit_runs(limit_batch(), (precision,)), decode_pass()
    for run in runs.values():
        run()
    rows = []
    for _ in range(repeats):
        limits = [timed(run) for run in runs.values()]
        decode_ms, views = decode()
        decoded = timed(on_all_cores)
        answered = timed(lambda: wb.classify(folders, classifier_ids=ids)["images_processed"])
        rows.append(paired_row(limits, decode_ms, views, decoded, answered, cpus))
    return {
        key: statistics.median(r[key] for r in rows)
        for key in ("ratio", "ratio_single_thread_decode", "ratio_steal_corrected", "stolen_share")
    } | {"repeats": rows}


def paired_row(
    limits: list[tuple[float, float, float]],
    decode_ms: float,
    views: float,
    decoded: tuple[float, float, float],
    answered: tuple[float, float, float],
    cpus: int,
) -> dict:
    """One paired repeat's rates and ratios from its `timed` steps: the limit runs (images done), the every-core
    decode (wall ms per image) and the classify (images answered)."""
    limit = max(images / seconds for seconds, _, images in limits)
    limit_net = max(images / net for _, net, images in limits)
    all_cores_ms = decoded[2]
    decode = {"ms_per_image": decode_ms, "all_cores_ms_per_image": all_cores_ms, "views_per_image": views}
    decode_net = decode | {"all_cores_ms_per_image": all_cores_ms * decoded[1] / decoded[0]}
    seconds, net, images = answered
    top = ceiling(decode, limit, cpus)
    steps = [*limits, decoded, answered]
    return {
        "limit": limit,
        "decode_ms": decode_ms,
        "decode_all_cores_ms": all_cores_ms,
        "ceiling": top,
        "classify": images / seconds,
        "ratio": images / seconds / top,
        "ratio_single_thread_decode": images / seconds / single_thread_ceiling(decode, limit, cpus),
        "ratio_steal_corrected": images / net / ceiling(decode_net, limit_net, cpus),
        "stolen_share": 1 - sum(step[1] for step in steps) / sum(step[0] for step in steps),
    }


def phase_naive(workdir: Path, repeats: int) -> dict:
    """A notebook user's loop: PIL open, resize and crop, one eager torch forward per image, no cache."""
    import torch
    from PIL import Image

    from workbench.core.spec import lite0_spec
    from workbench.engine.network import load_network

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
            _, logits, *_ = net(x)  # the network also returns window logits and the feature map
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


def phase_cold_create(workdir: Path, repeats: int) -> dict:
    """A first run: this process started with an empty ONNX cache (`python -m bench` points WORKBENCH_CACHE_DIR at a
    new folder) and a new home (empty embedding cache); seconds from process start to `ready`, imports included."""
    import os

    from workbench.engine.onnx_engine import CACHE_DIR_ENV

    cache = Path(os.environ[CACHE_DIR_ENV])
    if cache.exists() and any(cache.iterdir()):
        raise SystemExit(f"cold_create needs an empty {CACHE_DIR_ENV}, {cache} holds files")
    from workbench import Workbench

    z = zips(workdir)
    wb = Workbench(workdir / "home", tracking_uri=False)
    cid = wb.create_classifier("dogs", {c: z[c] for c in CREATE_CLASSES}, negative_examples=z["cats"])["classifier_id"]
    wb.wait(cid)
    seconds = time.time() - float(os.environ["BENCH_SPAWNED_AT"])
    metrics = wb.versions(cid)[-1]["metrics"]
    return {"seconds": seconds, "images_embedded": metrics["images_embedded"], "engine": wb.backbone.engine}


def _classifier_id(wb) -> str:
    return wb.list_classifiers()["classifiers"][0]["classifier_id"]


def phase_update(workdir: Path, repeats: int) -> dict:
    """The tutorial's update (dalmatian plus more cats) until `ready` again."""
    wb, z = workbench(workdir), zips(workdir)
    cid = _classifier_id(wb)
    seconds, metrics = _ready_seconds(
        wb,
        lambda: wb.update_classifier(
            cid, positive_examples={"dalmatian": z["dalmatian"]}, negative_examples=z["more-cats"]
        ),
    )
    return {"seconds": seconds, "images_embedded": metrics["images_embedded"], "fit_seconds": metrics["fit_seconds"]}


def phase_retrain(workdir: Path, repeats: int) -> dict:
    """A retraining that needs no new embedding: the more-cats negatives again, all cached."""
    wb, z = workbench(workdir), zips(workdir)
    cid = _classifier_id(wb)
    seconds, metrics = _ready_seconds(wb, lambda: wb.update_classifier(cid, negative_examples=z["more-cats"]))
    return {"seconds": seconds, "images_embedded": metrics["images_embedded"], "fit_seconds": metrics["fit_seconds"]}


def phase_classify(workdir: Path, repeats: int, precision: str = "fp32") -> dict:
    """wb.classify on the 250 training images against the classifier and `default`, at threshold 0.5 and 0.0
    (interleaved in each repeat); then one image per call at 0.5.

    The classifier was trained in FP32: an INT8 process retrains it on INT8 in the background
    (`Engine.switch_precision`), and until then scores it on both backbones. INT8 is measured once that retrain
    is done, as its user serves it; the caller gives INT8 a copy of the FP32 home (`bench.__main__.ceiling_round`),
    so an FP32 phase never scores an INT8-trained version."""
    wb, ids, folders, switch_seconds = classify_ready(workdir, precision)
    rates: dict[float, list[float]] = {0.5: [], 0.0: []}
    cpu_ms: list[float] = []  # CPU time of every thread per image at 0.5: what a call costs the cores, even under load
    for _ in range(repeats):
        for threshold, found in rates.items():
            started, cpu = time.perf_counter(), time.process_time()
            answer = wb.classify(folders, classifier_ids=ids, threshold=threshold)
            found.append(answer["images_processed"] / (time.perf_counter() - started))
            if threshold:
                cpu_ms.append((time.process_time() - cpu) / answer["images_processed"] * 1000)
    rss_after_batch = peak_rss_mb()
    latencies = []
    for path in train_images():
        started = time.perf_counter()
        wb.classify(path, classifier_ids=ids)
        latencies.append((time.perf_counter() - started) * 1000)
    return {
        "images_per_s": statistics.median(rates[0.5]),
        "threshold_0_images_per_s": statistics.median(rates[0.0]),
        "all": rates[0.5],
        "all_threshold_0": rates[0.0],
        "cpu_ms_per_image": statistics.median(cpu_ms),
        "images": answer["images_processed"],
        "batch_peak_rss_mb": rss_after_batch,
        "single_p50_ms": float(np.percentile(latencies, 50)),
        "single_p99_ms": float(np.percentile(latencies, 99)),
        "switch_retrain_wait_s": switch_seconds,
    }


def classify_ready(workdir: Path, precision: str) -> tuple:
    """(workbench, [classifier, "default"], the 250 images' folders, seconds waited) once a first classify ran and
    the classifier serves a version embedded by this process's backbone (`_embedded_by_serving_backbone`)."""
    wb = workbench(workdir, precision)
    ids = [_classifier_id(wb), "default"]
    wb.classify(TUTORIAL / "dogs.jpg", classifier_ids=ids)
    waited = _embedded_by_serving_backbone(wb, ids[0])
    return wb, ids, [TUTORIAL / name for name in TRAIN_FOLDERS], waited


def _embedded_by_serving_backbone(wb, classifier_id: str, timeout_s: float = 600.0) -> float:
    """Waits until the classifier's serving version was embedded by the backbone this process serves (at once in
    FP32; after the background switch in INT8); returns the seconds waited."""
    started = time.perf_counter()
    while True:
        wb.wait(classifier_id)
        embedded_by = wb.versions(classifier_id)[-1]["metrics"].get("backbone_id")
        if embedded_by == wb.backbone.backbone_id:
            return time.perf_counter() - started
        if wb.backbone.precision != "int8":  # only an INT8 process retrains other backbones' versions
            raise SystemExit(f"{classifier_id} was embedded by {embedded_by}: FP32 phases need a home trained in FP32")
        if time.perf_counter() - started > timeout_s:
            raise SystemExit(f"{classifier_id} was not retrained on {wb.backbone.backbone_id} in {timeout_s} s")
        time.sleep(0.5)


WHOLE_FRAME_IMAGES = 40  # tutorial images per shape in the whole-frame phase


def wide_images(shape: tuple[int, int]) -> list[bytes]:
    """Tutorial training images on a grey canvas of that aspect (3:1: the image at the left; 4:3: centred), as JPEGs."""
    import io

    from PIL import Image

    wide, high = shape
    images = []
    for path in train_images()[:: len(train_images()) // WHOLE_FRAME_IMAGES][:WHOLE_FRAME_IMAGES]:
        image = Image.open(path).convert("RGB")
        image.thumbnail((448, 448))
        side = min(image.size)
        canvas = Image.new("RGB", (side * wide // high, side), (128, 128, 128))
        canvas.paste(image.crop((0, 0, side, side)), (0 if wide >= 3 * high else (canvas.width - side) // 2, 0))
        buffer = io.BytesIO()
        canvas.save(buffer, "JPEG", quality=90)
        images.append(buffer.getvalue())
    return images


def phase_whole_frame(workdir: Path, repeats: int) -> dict:
    """What seeing the whole frame costs: wb.classify (classifier + `default`) on 3:1 and 4:3 images with every view
    (`spec.view_boxes`: 5 and 3) vs the centre square only (spec.MAX_VIEWS = 1, as classify did before), interleaved."""
    from workbench.core import spec

    wb = workbench(workdir)
    ids = [_classifier_id(wb), "default"]
    shapes = {"3:1": wide_images((3, 1)), "4:3": wide_images((4, 3))}
    every_view = spec.MAX_VIEWS
    wb.classify(shapes["3:1"][:2], classifier_ids=ids)
    rates: dict[str, list[float]] = {f"{shape}_{views}": [] for shape in shapes for views in ("whole", "centre")}
    try:
        for _ in range(repeats):
            for shape, images in shapes.items():
                for views, limit in (("whole", every_view), ("centre", 1)):
                    spec.MAX_VIEWS = limit
                    started = time.perf_counter()
                    answer = wb.classify(images, classifier_ids=ids)
                    rates[f"{shape}_{views}"].append(answer["images_processed"] / (time.perf_counter() - started))
    finally:
        spec.MAX_VIEWS = every_view
    return {f"{name}_images_per_s": statistics.median(r) for name, r in rates.items()} | {"all": rates}


def phase_batching(workdir: Path, repeats: int) -> dict:
    """Single-image backbone calls from 8 threads: one pass each (the engine under its lock) vs `Backbone.run`
    (micro-batched across the threads, with a bounded wait), vs a 3 ms wait."""
    from workbench.engine.backbone import Backbone
    from workbench.engine.batching import BatchingRunner

    backbone = Backbone(engine="onnxruntime")
    backbone.prepare(wait=True)
    tensor = np.zeros((3, 224, 224), np.float32)
    runners = {
        "direct": backbone._forward,
        "batched": backbone.run,
        "batched_3ms": BatchingRunner(backbone._forward, backbone.batch_size, wait_seconds=BATCHING_WAIT_SECONDS).run,
    }

    def rate(run) -> float:
        def client() -> None:
            for _ in range(BATCHING_CALLS_PER_THREAD):
                run([tensor])

        threads = [threading.Thread(target=client) for _ in range(BATCHING_THREADS)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return BATCHING_THREADS * BATCHING_CALLS_PER_THREAD / (time.perf_counter() - started)

    rate(runners["direct"])
    rates: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(repeats):
        for name, run in runners.items():
            rates[name].append(rate(run))
    return {name: statistics.median(r) for name, r in rates.items()}


PHASES = {
    "limit": phase_limit,
    "decode": phase_decode,
    "naive": phase_naive,
    "create": phase_create,
    "cold_create": phase_cold_create,
    "update": phase_update,
    "retrain": phase_retrain,
    "classify": phase_classify,
    "classify_int8": lambda workdir, repeats: phase_classify(workdir, repeats, "int8"),
    "paired": phase_paired,
    "paired_int8": lambda workdir, repeats: phase_paired(workdir, repeats, "int8"),
    "batching": phase_batching,
    "whole_frame": phase_whole_frame,
}


if __name__ == "__main__":
    name, workdir, repeats = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
    result = PHASES[name](workdir, repeats)
    result["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(result))
