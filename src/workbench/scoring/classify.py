"""Scoring images against classifiers and shaping the Watson ClassifiedImages answer."""

from __future__ import annotations

import io
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..analysis.training import Heads
from ..core.errors import InvalidRequest, InvalidThreshold, echo, echo_list
from ..core.limits import MAX_ZIP_MEMBERS
from ..core.sources import ImageURL
from ..core.vocabulary import (
    BUILT_IN_CLASSIFIER_IDS,
    GENERAL_CLASSIFIER_ID,
    OWNER_IBM,
    OWNER_ME,
    SCORE_DECIMALS,
    THRESHOLD,
)
from ..images import zip_directory
from ..images.entries import NON_IMAGE_REASONS, ZIP_MAGICS, BinaryFile, ImageInput, Skipped, Source, skip_reason


@dataclass(frozen=True)
class ServingHeads:
    """A custom classifier as classify sees it: id, name, and the heads of its serving version."""

    classifier_id: str
    name: str
    heads: Heads
    backbone_id: str | None = None  # what embedded its version (None: recorded before ids were): scored on that


def check_threshold(threshold: float | None) -> float:
    """The threshold to use: default 0.5; anything outside 0..1 is an error."""
    if threshold is None:
        return THRESHOLD
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.floating, np.integer)):
        raise InvalidThreshold(f"threshold must be a number between 0 and 1, got {echo(threshold)}")
    try:
        value = float(threshold)
    except (TypeError, ValueError):
        raise InvalidThreshold(f"threshold must be a number between 0 and 1, got {echo(threshold)}") from None
    if not 0.0 <= value <= 1.0 or np.isnan(value):
        raise InvalidThreshold(f"threshold must be between 0 and 1, got {echo(threshold)}")
    return value


def split_list(value: str | Iterable[str] | None) -> list[str]:
    """Accepts Watson lists as comma-separated strings or as repeated values."""
    if value is None:
        return []
    items = [value] if isinstance(value, str) else list(value)
    return [part.strip() for item in items for part in str(item).split(",") if part.strip()]


def requested_ids(classifier_ids: Sequence[str], owners: Sequence[str], my_ids: Sequence[str]) -> list[str]:
    """Which classifiers to run: classifier_ids win over owners; neither means `default`.

    `owners=IBM` is `default` alone, as in Watson ("the same result as no classifier_ids nor owners");
    `food` runs only when named in classifier_ids.
    """
    if classifier_ids:
        return list(dict.fromkeys(classifier_ids))
    if not owners:
        return [GENERAL_CLASSIFIER_ID]
    unknown = [o for o in owners if o not in (OWNER_IBM, OWNER_ME)]
    if unknown:
        raise InvalidRequest(f"owners may be {OWNER_IBM!r} and/or {OWNER_ME!r}, got {echo_list(unknown)}")
    ids = [GENERAL_CLASSIFIER_ID] if OWNER_IBM in owners else []
    return ids + (list(my_ids) if OWNER_ME in owners else [])


def custom_classes(heads: Heads, scores: np.ndarray, threshold: float) -> list[dict]:
    """One image's custom classes at or above the threshold, highest first."""
    order = np.argsort(-scores, kind="stable")
    return [
        {"class": heads.classes[i], "score": round(float(scores[i]), SCORE_DECIMALS)}
        for i in order
        if scores[i] >= threshold
    ]


def built_in_result(classifier_id: str, classes: list[dict]) -> dict:
    """A built-in classifier's answer for one image (`default`, `food`), from its classes, in order already
    (`general.general_classes`, `food.food_classes`): no second sort of 1,768 entries."""
    return {"classifier_id": classifier_id, "name": classifier_id, "classes": classes}


def view_maxima(scores: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Per image, each class's best score over its views: rows starts[i] up to starts[i + 1] are image i's."""
    if len(starts) == len(scores) or not len(scores):  # one view each, or no image
        return scores
    return np.maximum.reduceat(scores, starts, axis=0)


def image_results(
    built_in: Mapping[str, Sequence[list[dict]]],
    embeddings: np.ndarray,
    ids: Sequence[str],
    serving: dict[str, ServingHeads],
    threshold: float,
    view_counts: Sequence[int] | None = None,
    by_backbone: Mapping[str, np.ndarray] | None = None,
) -> list[list[dict]]:
    """Per image, the ClassifierResult list for the requested ids, in the order requested.

    `built_in` holds, for each built-in classifier asked for (`default`, `food`), each image's classes.
    `embeddings` holds `view_counts[i]` rows for image i (its views, `spec.view_boxes`; one each without
    counts): a custom class scores its best view, so a subject anywhere in the image counts. A classifier whose
    version another backbone embedded (FP32 heads in an INT8 process) scores that backbone's rows in `by_backbone`.
    """
    counts = [1] * len(embeddings) if view_counts is None else list(view_counts)
    starts = np.cumsum([0, *counts[:-1]]).astype(np.intp)
    others = by_backbone or {}
    custom_scores = {
        cid: view_maxima(serving[cid].heads.scores(others.get(serving[cid].backbone_id or "", embeddings)), starts)
        for cid in ids
        if cid in serving
    }
    results = []
    for row in range(len(counts)):
        per_image = []
        for cid in ids:
            if cid in BUILT_IN_CLASSIFIER_IDS:
                per_image.append(built_in_result(cid, built_in[cid][row]))
            else:
                served = serving[cid]
                classes = custom_classes(served.heads, custom_scores[cid][row], threshold)
                per_image.append({"classifier_id": cid, "name": served.name, "classes": classes})
        results.append(per_image)
    return results


def image_error(name: str, description: str, code: int = 400, error_id: str = "input_error") -> dict:
    """A ClassifiedImage whose image could not be read: the other images still answer."""
    return {
        "image": name,
        "classifiers": [],
        "error": {"code": code, "description": description, "error_id": error_id},
    }


def count_images(uploads: Iterable[BinaryFile], max_members: int = MAX_ZIP_MEMBERS) -> int:
    """How many images seekable uploads hold, from zip central directories alone: no member is read or decoded.

    It counts what `read_images` then `split_non_images` keep, with the same rule: a file that is not a zip
    is one image, a zip member one unless it is a directory or a file `examples` skips as no image (a .txt,
    __MACOSX). A zip whose directory cannot be read counts 0, so the engine's reader names what is wrong with it.
    So a call over the cap is refused before its uploads are read into memory. The directory is walked with
    struct (`zip_directory`): a zip of more than `max_members` members is refused (LimitExceeded) at the
    first member past it, not after building an object per member. Each upload is left at its start.
    """
    total = 0
    for upload in uploads:
        upload.seek(0)
        head = upload.read(4)
        upload.seek(0)
        if head not in ZIP_MAGICS:
            total += 1
            continue
        name = getattr(upload, "name", None)
        where = os.path.basename(name) if isinstance(name, str) and name else "a zip"
        try:
            found = zip_directory.members(upload, max_members, where)
        except OSError:
            found = None
        total += sum(skip_reason(member.name) is None for member in found or ())
        upload.seek(0)
    return total


def split_non_images(entries: list[ImageInput | Skipped]) -> tuple[list[ImageInput | Skipped], list[dict]]:
    """Files that are not images (a zip's .txt, __MACOSX) become one warning, not per-image errors."""
    kept = [e for e in entries if not (isinstance(e, Skipped) and e.reason in NON_IMAGE_REASONS)]
    skipped = [e.name for e in entries if isinstance(e, Skipped) and e.reason in NON_IMAGE_REASONS]
    if not skipped:
        return kept, []
    shown = ", ".join(skipped[:5]) + (", ..." if len(skipped) > 5 else "")
    warning = {
        "warning_id": "files_skipped",
        "description": f"Skipped {len(skipped)} files that are not images: {shown}",
    }
    return kept, [warning]


def classified_images(images: list[dict], warnings: list[dict]) -> dict:
    """The ClassifiedImages envelope: images, images_processed, custom_classes, warnings when any."""
    custom = sum(
        len(result["classes"])
        for image in images
        for result in image.get("classifiers", [])
        if result["classifier_id"] not in BUILT_IN_CLASSIFIER_IDS
    )
    answer = {
        "images": images,
        "images_processed": sum(1 for image in images if "error" not in image),
        "custom_classes": custom,
    }
    if warnings:
        answer["warnings"] = warnings
    return answer


def source_image_count(item: Source | ImageURL, max_members: int = MAX_ZIP_MEMBERS) -> int:
    """How many images a classify source holds, from zip directories alone (0 for a folder: counted once read)."""
    if isinstance(item, ImageURL):
        return 1
    if isinstance(item, (bytes, bytearray, memoryview)):
        return count_images([io.BytesIO(item)], max_members)
    if not isinstance(item, (str, os.PathLike)):  # a file object
        return count_images([item], max_members)
    path = Path(item)
    if not path.is_file():
        return 0
    with open(path, "rb") as file:
        return count_images([file], max_members)
