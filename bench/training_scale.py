"""`python -m bench.training_scale [SIZES...]`: how create and retrain cost grow with the training set.

For each size (default 250, 2,000 and 10,000 images) it writes augmented copies of the tutorial
images (random crop, mirror, colour jitter; every copy a distinct file) into one zip per set (three
breeds and the negatives, a quarter each), then, each in a fresh process so its peak RSS is its own:
- create: a new home (nothing cached) from the zips until `ready`;
- retrain: the same home, 10 new beagle images added (the rest cached), until `ready` again.
Prints one row a size and phase (seconds, embed / fit seconds, how the held-out evidence was made,
peak RSS, the 1-min load average) and merges the numbers into bench/results.json's summary
(`create_10000_images_s`, `retrain_add_10_to_10000_s`, ...).
10,000 images take several minutes on 2 shared cores, most of it embedding.

Each phase is timed as a process that has trained before (a server) runs it: scikit-learn, which
the fit imports on first use, is imported before the timer and its seconds printed apart (`imports
s`: 1-2 s idle, 35+ s at load 25 on these cores, more than a reused retrain's whole fit).

`python -m bench.training_scale --existing FOLDER` retrains a folder this bench built before (its
`home` and an `added.zip` of new images kept) with `added.zip`, the row it reports and merges; a
home trained by an older release is first retrained with 10 other beagle copies (a full k-fold
that keeps the held-out logits the next retrain reuses).
"""

from __future__ import annotations

import io
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TUTORIAL = ROOT / "data" / "tutorial"
RESULTS = Path(__file__).with_name("results.json")
SETS = {
    "beagle": ("beagle",),
    "husky": ("husky",),
    "goldenretriever": ("goldenretriever",),
    "negatives": ("cats", "more-cats"),
}
SIZES = (250, 2000, 10000)
ADDED = 10  # images the retrain adds
SHORT_SIDE_PX = 256  # the copies' short side: small files, still above the backbone's 224
JPEG_QUALITY = 85
SEED = 23
WAIT_S = 4 * 3600  # wait's default (600 s) is too short for 10,000 images on busy cores


def sources(folders: tuple[str, ...]) -> list:
    """The tutorial images of `folders`, decoded once and reduced (short side 320) so copies are cheap to make."""
    from PIL import Image

    images = []
    for folder in folders:
        for path in sorted((TUTORIAL / folder).iterdir()):
            with Image.open(path) as image:
                image = image.convert("RGB")
                scale = 320 / min(image.size)
                images.append(image.resize((round(image.width * scale), round(image.height * scale))))
    return images


def augmented(image, rng: random.Random) -> bytes:
    """One random copy: a crop of 60-100% of the area, maybe mirrored, brightness/contrast/colour jitter, as JPEG."""
    from PIL import ImageEnhance, ImageOps

    area = rng.uniform(0.6, 1.0)
    w, h = round(image.width * area**0.5), round(image.height * area**0.5)
    left, top = rng.randint(0, image.width - w), rng.randint(0, image.height - h)
    copy = image.crop((left, top, left + w, top + h))
    if rng.random() < 0.5:
        copy = ImageOps.mirror(copy)
    for enhancer in (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color):
        copy = enhancer(copy).enhance(rng.uniform(0.8, 1.2))
    scale = SHORT_SIDE_PX / min(copy.size)
    copy = copy.resize((max(SHORT_SIDE_PX, round(copy.width * scale)), max(SHORT_SIDE_PX, round(copy.height * scale))))
    buffer = io.BytesIO()
    copy.save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()


def write_zip(path: Path, images: list, count: int, rng: random.Random, prefix: str) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for i in range(count):
            archive.writestr(f"{prefix}-{i:05d}.jpg", augmented(images[i % len(images)], rng))
    return path


def make_zips(size: int, folder: Path) -> dict[str, Path]:
    """One zip of a quarter of `size` augmented copies per set, plus `added.zip` (ADDED new beagle copies)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(SEED + size)
    zips = {}
    for i, (name, folders) in enumerate(SETS.items()):
        images = sources(folders)
        zips[name] = folder / f"{name}.zip"
        write_zip(zips[name], images, size // len(SETS) + (i < size % len(SETS)), rng, name)
        if name == "beagle":
            zips["added"] = folder / "added.zip"
            write_zip(zips["added"], images, ADDED, random.Random(SEED - size), "added")
    return zips


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def import_training_libraries() -> None:
    """What the fit imports on first use (see the docstring: a server has them already)."""
    import sklearn.linear_model
    import sklearn.metrics
    import sklearn.model_selection  # noqa: F401


def phase(name: str, folder: Path, added: str = "added") -> dict:
    """create, or retrain adding `added`.zip, in this process; seconds to `ready`, the version's cost metrics,
    how its held-out evidence was made (metrics["cv"]: `analysis.retraining`), this process's peak RSS."""
    from workbench import Workbench

    wb = Workbench(folder / "home", tracking_uri=False)
    wb.backbone.prepare(wait=True)
    zips = {p.stem: p for p in folder.glob("*.zip")}
    started = time.perf_counter()
    import_training_libraries()
    imports = time.perf_counter() - started
    started = time.perf_counter()
    if name == "create":
        cid = wb.create_classifier(
            "scale", {c: zips[c] for c in ("beagle", "husky", "goldenretriever")}, negative_examples=zips["negatives"]
        )["classifier_id"]
    else:
        cid = wb.list_classifiers()["classifiers"][0]["classifier_id"]
        wb.update_classifier(cid, positive_examples={"beagle": zips[added]})
    wb.wait(cid, timeout=WAIT_S)
    seconds = time.perf_counter() - started
    metrics = wb.versions(cid)[-1]["metrics"]
    return {
        "seconds": seconds,
        "images": metrics["images"],
        "images_embedded": metrics["images_embedded"],
        "embed_seconds": metrics["embed_seconds"],
        "fit_seconds": metrics["fit_seconds"],
        "cv": metrics.get("cv", {}).get("scheme", "kfold"),
        "imports_seconds": imports,
        "peak_rss_mb": peak_rss_mb(),
        "load_average": os.getloadavg()[0],
    }


def run_phase(name: str, folder: Path, added: str = "added") -> dict:
    done = subprocess.run(
        [sys.executable, "-W", "ignore", "-m", "bench.training_scale", "--phase", name, str(folder), added],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SystemExit(f"training_scale {name} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def summary_keys(size: int, create: dict | None, retrain: dict) -> dict:
    numbers = {
        f"retrain_add_{ADDED}_to_{size}_s": retrain["seconds"],
        f"retrain_add_{ADDED}_to_{size}_peak_rss_mb": retrain["peak_rss_mb"],
        f"retrain_add_{ADDED}_to_{size}_load_average": retrain["load_average"],
    }
    if create is not None:
        numbers.update(
            {
                f"create_{size}_images_s": create["seconds"],
                f"create_{size}_images_peak_rss_mb": create["peak_rss_mb"],
                f"create_{size}_images_load_average": create["load_average"],
            }
        )
    return numbers


def print_header() -> None:
    print(f"load average before {os.getloadavg()}")
    print(
        f"{'images':>7} {'phase':<8} {'seconds':>8} {'embedded':>8} {'embed s':>8} {'fit s':>7} {'cv':<7} "
        f"{'peak RSS MB':>11} {'load':>5} {'imports s':>9}"
    )


def print_row(name: str, row: dict) -> None:
    print(
        f"{row['images']:>7} {name:<8} {row['seconds']:>8.2f} {row['images_embedded']:>8} "
        f"{row['embed_seconds']:>8.2f} {row['fit_seconds']:>7.2f} {row['cv']:<7} {row['peak_rss_mb']:>11.0f} "
        f"{row['load_average']:>5.1f} {row['imports_seconds']:>9.2f}",
        flush=True,
    )


def merge_into_results(numbers: dict) -> None:
    """Adds `numbers` to bench/results.json's summary, keeping what the other benches wrote there."""
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {"summary": {}}
    results.setdefault("summary", {}).update(numbers)
    results.setdefault("raw", {}).setdefault("training_scale_load_average", []).append(os.getloadavg())
    tmp = RESULTS.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=2) + "\n")
    os.replace(tmp, RESULTS)


def main(sizes: list[int]) -> None:
    print_header()
    for size in sizes:
        with tempfile.TemporaryDirectory(prefix=f"training-scale-{size}-") as tmp:
            started = time.perf_counter()
            make_zips(size, Path(tmp))
            print(f"  ({size} augmented images written in {time.perf_counter() - started:.0f} s)", flush=True)
            rows = {name: run_phase(name, Path(tmp)) for name in ("create", "retrain")}
        for name, row in rows.items():
            print_row(name, row)
        merge_into_results(summary_keys(size, rows["create"], rows["retrain"]))
    print(f"load average after {os.getloadavg()}; targets: retrain adding {ADDED} to 10,000 <= 5 s, RSS bounded")


def needs_refresh(folder: Path) -> bool:
    """Whether the folder's newest version predates the kept held-out logits (its metrics have no "cv")."""
    from workbench import Workbench

    wb = Workbench(folder / "home", tracking_uri=False)
    cid = wb.list_classifiers()["classifiers"][0]["classifier_id"]
    return "cv" not in wb.versions(cid)[-1]["metrics"]


def existing(folder: Path) -> None:
    """Retrains a folder built before with added.zip; first with 10 other copies when its home predates this release."""
    print_header()
    if needs_refresh(folder):
        refresh = write_zip(folder / "refresh.zip", sources(SETS["beagle"]), ADDED, random.Random(SEED * 7), "refresh")
        print_row("refresh", run_phase("retrain", folder, refresh.stem))
    row = run_phase("retrain", folder)
    print_row("retrain", row)
    size = max(s for s in SIZES if s <= row["images"])  # the images the folder was created with
    merge_into_results(summary_keys(size, None, row))
    print(f"load average after {os.getloadavg()}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--phase"]:
        print(json.dumps(phase(sys.argv[2], Path(sys.argv[3]), *sys.argv[4:5])))
    elif sys.argv[1:2] == ["--existing"]:
        existing(Path(sys.argv[2]))
    else:
        main([int(a) for a in sys.argv[1:]] or list(SIZES))
