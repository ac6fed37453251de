"""Scoring for a Workbench: classify, classify_iter and explain over the engine's backbone and serving heads.

One backbone pass per image serves every classifier of a call (`default`, `food`, `explicit` and the custom ones).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Container, Iterable, Iterator

import numpy as np

from ..analysis.colors import ColorSample, color_sample
from ..analysis.food import food_classes
from ..analysis.general import general_classes
from ..analysis.languages import names_in, negotiate, translate
from ..analysis.training import Heads
from ..core.errors import (
    ClassifierNotFound,
    ImageUnreadable,
    InvalidRequest,
    LimitExceeded,
    NoImages,
    echo,
    echo_list,
)
from ..core.records import ClassifierRecord
from ..core.sources import Fetcher, ImageURL
from ..core.spec import view_boxes
from ..core.vocabulary import (
    BUILT_IN_CLASSIFIER_IDS,
    DEFAULT_LANGUAGE,
    EXPLICIT_CLASSIFIER_ID,
    FOOD_CLASSIFIER_ID,
    GENERAL_CLASSIFIER_ID,
)
from ..engine.backbone import Backbone, single_threaded_blas
from ..engine.explicit import ExplicitModel, explicit_classes, explicit_model
from ..images import streaming
from ..images.classify_inputs import read_images
from ..images.decode import backbone_views, prepared_batches
from ..images.entries import ImageInput, Skipped, Source
from ..scoring import classify as cls
from ..scoring import explain
from .engine import Engine

UNTRANSLATED_SHOWN = 10  # an untranslated_classes warning names at most this many

Images = Source | ImageURL | list[Source | ImageURL] | tuple[Source | ImageURL, ...]
Decoded = tuple[int, list[np.ndarray], ColorSample | None, float | None]


def untranslated_warning(language: str, names: list[str]) -> dict:
    """The Watson WarningInfo that says which built-in class names are answered in English, having no translation."""
    shown = ", ".join(names[:UNTRANSLATED_SHOWN]) + (", ..." if len(names) > UNTRANSLATED_SHOWN else "")
    return {
        "warning_id": "untranslated_classes",
        "description": f"No {language} name for {len(names)} built-in class names; they are in English: {shown}",
    }


class Scoring:
    """Scores images for one owner with the engine's backbone (see `Workbench.classify` for the arguments)."""

    def __init__(self, engine: Engine, owner: str) -> None:
        self.engine = engine
        self.owner = owner

    def serving(self, record: ClassifierRecord) -> cls.ServingHeads:
        """The heads of the record's serving version, read once per engine."""
        classifier_id = record.classifier_id
        if record.serving_version is None:
            raise InvalidRequest(
                f"Classifier {classifier_id!r} is {record.status} and has no trained version to classify with yet"
            )
        key = (classifier_id, record.serving_version)
        if key not in self.engine.heads:
            store = self.engine.open().store
            heads = Heads.from_bytes(store.head_path(classifier_id, record.serving_version).read_bytes())
            self.engine.heads[key] = (heads, store.version(*key).metrics.get("backbone_id"))
        heads, backbone_id = self.engine.heads[key]
        return cls.ServingHeads(classifier_id, record.name, heads, backbone_id)

    def classify(
        self,
        images: Images,
        classifier_ids: str | Iterable[str] | None,
        owners: str | Iterable[str] | None,
        threshold: float | None,
        max_images: int | None,
        fetch_url: Fetcher | None,
        accept_language: str | None,
    ) -> dict:
        """Watson ClassifiedImages for every image of the call, built-in names in the negotiated language."""
        language = negotiate(accept_language)
        limit = cls.check_threshold(threshold)
        ids, serving = self._classifiers_for(classifier_ids, owners)
        entries, warnings, urls = self._classify_inputs(images, max_images, fetch_url)
        untranslated: dict[str, None] = {}
        answers = self._answers(entries, ids, serving, limit, language, untranslated)
        for index, (source_url, resolved_url) in urls.items():  # Watson names a URL's image by its URLs
            del answers[index]["image"]
            answers[index].update(source_url=source_url, resolved_url=resolved_url)
        if untranslated:
            warnings = [*warnings, untranslated_warning(language, list(untranslated))]
        return cls.classified_images(answers, warnings)

    def classify_iter(
        self,
        images: str | os.PathLike | Iterable[str | os.PathLike | bytes | tuple[str, bytes] | tuple[str, os.PathLike]],
        classifier_ids: str | Iterable[str] | None,
        owners: str | Iterable[str] | None,
        threshold: float | None,
        skip: Container[str],
        on_skip: Callable[[str], None] | None,
        chunk_images: int,
    ) -> Iterator[dict]:
        """Per-image answers (with `sha256`), in input order, at most `chunk_images` images in memory at once."""
        limit = cls.check_threshold(threshold)
        ids, serving = self._classifiers_for(classifier_ids, owners)
        limits = self.engine.settings.limits
        for chunk in streaming.chunks(streaming.image_entries(images, limits, skip, on_skip), chunk_images):
            for entry, answer in zip(chunk, self._answers(chunk, ids, serving, limit), strict=True):
                answer["sha256"] = entry.sha256 if isinstance(entry, ImageInput) else None
                yield answer

    def explain(self, image: Source, classifier_id: str, class_name: str | None, top: int) -> list[explain.Explanation]:
        """Where the scores of one image looked: a map per class, upsampled onto the image."""
        limits = self.engine.settings.limits
        entries = [e for e in read_images(image, limits=limits) if not isinstance(e, Skipped)]
        if len(entries) != 1:
            raise InvalidRequest(f"explain takes exactly one image; got {len(entries)}")
        backbone = self.engine.open().backbone
        spec = backbone.spec
        tensors, decoded = backbone_views(entries[0].data, spec, limits, entries[0].name)
        boxes = view_boxes(*decoded.size, spec)
        with single_threaded_blas():
            if classifier_id == GENERAL_CLASSIFIER_ID:
                dense = backbone.run_dense(tensors)
                sample = color_sample(decoded, boxes)
                return explain.general_explanations(
                    dense, backbone.classifier_weights(), sample, decoded, boxes, class_name, top
                )
            served = self.serving(self.engine.owned(classifier_id, self.owner))
            dense = backbone.run_dense(tensors)
            return explain.custom_explanations(classifier_id, served.heads, dense, decoded, boxes, class_name, top)

    def _classifiers_for(
        self, classifier_ids: str | Iterable[str] | None, owners: str | Iterable[str] | None
    ) -> tuple[list[str], dict[str, cls.ServingHeads]]:
        """The classifier ids a classify call runs, in order, and the serving heads of the custom ones."""
        mine = {r.classifier_id: r for r in self.engine.open().store.classifiers(owner=self.owner)}
        my_ids = [cid for cid, r in mine.items() if r.serving_version is not None]
        ids = cls.requested_ids(cls.split_list(classifier_ids), cls.split_list(owners), my_ids)
        unknown = [cid for cid in ids if cid not in BUILT_IN_CLASSIFIER_IDS and cid not in mine]
        if unknown:
            raise ClassifierNotFound(f"Did not find any classifier with the ids {echo_list(unknown)}")
        if EXPLICIT_CLASSIFIER_ID in ids:
            explicit_model()  # ModelNotInstalled, before any image is read, when the optional extra is missing
        return ids, {cid: self.serving(mine[cid]) for cid in ids if cid not in BUILT_IN_CLASSIFIER_IDS}

    def _answers(
        self,
        entries: list[ImageInput | Skipped],
        ids: list[str],
        serving: dict[str, cls.ServingHeads],
        limit: float,
        language: str = DEFAULT_LANGUAGE,
        untranslated: dict[str, None] | None = None,
    ) -> list[dict]:
        """One ClassifiedImage per entry, in order: one backbone pass per image (an error object when unreadable).

        That pass serves `default`, `food` and every custom classifier of the call together. Built-in names are
        in `language`; those with no translation are added to `untranslated`.
        """
        backbone = self.engine.open().backbone
        answers: list[dict | None] = [None] * len(entries)
        built_in = [cid for cid in BUILT_IN_CLASSIFIER_IDS if cid in ids]
        dense_ids = [cid for cid in built_in if cid != EXPLICIT_CLASSIFIER_ID]  # those read the backbone's classes
        detector = explicit_model() if EXPLICIT_CLASSIFIER_ID in ids else None
        names = names_in(language) if language != DEFAULT_LANGUAGE else None
        missing: dict[str, None] = {} if untranslated is None else untranslated
        with single_threaded_blas():
            for batch in self._decode_all(entries, answers, bool(dense_ids), detector):
                rows, views, samples, explicit_scores = zip(*batch, strict=True)
                counts = [len(v) for v in views]
                tensors = [tensor for v in views for tensor in v]  # every view of every image, one batched run
                classes: dict[str, list[list[dict]]] = {cid: [] for cid in built_in}
                if detector is not None:
                    classes[EXPLICIT_CLASSIFIER_ID] = [explicit_classes(score, limit) for score in explicit_scores]
                main_id = backbone.backbone_id  # read once: every row of this batch comes from one model
                if dense_ids:
                    dense = backbone.run_dense(tensors, main_id)
                    embeddings, fc = dense.embeddings, backbone.classifier_weights()
                    bounds = np.cumsum([0, *counts]).tolist()
                    for i, (a, b) in enumerate(itertools.pairwise(bounds)):
                        sample = samples[i]
                        assert sample is not None, "built-in classifiers sample colours while decoding"
                        if GENERAL_CLASSIFIER_ID in classes:
                            classes[GENERAL_CLASSIFIER_ID].append(
                                general_classes(
                                    dense.probabilities[a:b],
                                    dense.window_probabilities[a:b],
                                    dense.features[a:b],
                                    sample,
                                    fc,
                                    limit,
                                )
                            )
                        if FOOD_CLASSIFIER_ID in classes:
                            classes[FOOD_CLASSIFIER_ID].append(
                                food_classes(
                                    dense.probabilities[a:b], dense.window_probabilities[a:b], sample.spread, limit
                                )
                            )
                    if names is not None:
                        classes = {
                            cid: [translate(c, names, missing) for c in per_image] for cid, per_image in classes.items()
                        }
                else:
                    embeddings, _ = backbone.run(tensors, main_id)
                others = self._other_embeddings(backbone, main_id, serving, tensors)
                results = cls.image_results(classes, embeddings, ids, serving, limit, counts, others)
                for i, per_image in zip(rows, results, strict=True):
                    answers[i] = {"classifiers": per_image, "image": entries[i].name}
        assert None not in answers, "every entry has its scores or its error"
        return [answer for answer in answers if answer is not None]

    @staticmethod
    def _other_embeddings(
        backbone: Backbone, main_id: str, serving: dict[str, cls.ServingHeads], tensors: list[np.ndarray]
    ) -> dict[str, np.ndarray]:
        """Embeddings from each other backbone the served versions were trained on, which this one can run (FP32
        versions in an INT8 process keep their FP32 scores until retrained); an unknown id scores on `main_id`."""
        wanted = {s.backbone_id for s in serving.values() if s.backbone_id and s.backbone_id != main_id}
        runnable = [bid for bid in sorted(wanted) if backbone.can_run(bid)]
        return {bid: backbone.run(tensors, bid)[0] for bid in runnable}

    def _classify_inputs(
        self, images: Images, max_images: int | None, fetch_url: Fetcher | None
    ) -> tuple[list[ImageInput | Skipped], list[dict], dict[int, tuple[str, str]]]:
        """A classify call's entries in input order, its warnings, and {entry index: (source_url, resolved_url)}."""
        limits = self.engine.settings.limits
        items = list(images) if isinstance(images, (list, tuple)) else [images]
        if max_images is not None:
            count = sum(cls.source_image_count(item, limits.max_zip_members) for item in items)
            if count > max_images:  # counted from zip directories, before any upload is read into memory
                raise LimitExceeded(f"A classify call may hold at most {max_images} images; got {count}")
        entries: list[ImageInput | Skipped] = []
        url_of: dict[int, tuple[str, str]] = {}  # id(entry) -> (source_url, resolved_url)
        for position, item in enumerate(items, start=1):
            try:
                if isinstance(item, ImageURL):
                    found, resolved = self._fetched(item, fetch_url)
                    url_of.update({id(entry): (item.url, resolved) for entry in found})
                else:
                    found = read_images([item], limits=limits, first_position=position)
            except NoImages:  # nothing in this source; the call fails only if no source holds an image
                continue
            entries.extend(found)
        entries, warnings = cls.split_non_images(entries)
        if not entries:
            raise NoImages("No images were given to classify")
        if max_images is not None and len(entries) > max_images:
            raise LimitExceeded(f"A classify call may hold at most {max_images} images; got {len(entries)}")
        urls = {index: url_of[id(entry)] for index, entry in enumerate(entries) if id(entry) in url_of}
        return entries, warnings, urls

    def _fetched(self, source: ImageURL, fetch_url: Fetcher | None) -> tuple[list[ImageInput | Skipped], str]:
        """One URL's entries (its image, or why it could not be fetched) and the URL it resolved to."""
        if fetch_url is None:
            raise InvalidRequest(f"Image URLs need a fetcher: pass fetch_url to classify {echo(source.url)}")
        try:
            data, resolved = fetch_url(source.url)
        except ImageUnreadable as exc:
            return [Skipped("", exc.message)], source.url
        return read_images([data], limits=self.engine.settings.limits), resolved

    def _decode_all(
        self,
        entries: list[ImageInput | Skipped],
        answers: list[dict | None],
        colors: bool,
        detector: ExplicitModel | None = None,
    ) -> Iterator[list[Decoded]]:
        """Decodes each image once, in a pool running ahead of the backbone.

        Batches of (index, view tensors, colour sample, explicit score from `detector`); an unreadable image
        becomes its own error object in `answers`.
        """
        backbone = self.engine.open().backbone
        limits = self.engine.settings.limits

        def prepare(index: int) -> tuple[int, dict | tuple[list[np.ndarray], ColorSample | None, float | None]]:
            entry = entries[index]
            if isinstance(entry, Skipped):
                return index, cls.image_error(entry.name, entry.reason)
            spec = backbone.spec
            try:
                tensors, image = backbone_views(entry.data, spec, limits, entry.name)
            except (ImageUnreadable, LimitExceeded) as exc:
                return index, cls.image_error(entry.name, exc.message, exc.code, exc.error_id)
            sample = color_sample(image, view_boxes(*image.size, spec)) if colors else None
            return index, (tensors, sample, detector.score(image) if detector is not None else None)

        for batch in prepared_batches(range(len(entries)), prepare, backbone.batch_size):
            for index, result in batch:
                if isinstance(result, dict):
                    answers[index] = result
            good = [(index, *result) for index, result in batch if not isinstance(result, dict)]
            if good:
                yield good
