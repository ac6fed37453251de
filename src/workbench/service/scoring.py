"""Scoring for a Workbench: classify, classify_iter and explain over the engine's backbone and serving heads.

One backbone pass per image serves every classifier of a call (`default`, `food`, `explicit` and the custom ones).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Container, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from ..analysis.colors import ColorSample, color_sample
from ..analysis.food import food_classes
from ..analysis.general import general_classes
from ..analysis.languages import Names, names_in, negotiate, translate
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
from ..engine.backbone import Backbone, DensePass, single_threaded_blas
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
Decoded = tuple[list[np.ndarray], ColorSample | None, float | None]  # an image's view tensors, colours, explicit
Scored = tuple[list[tuple[int, dict]], list[int], list[list[dict]], dict[str, None]]


@dataclass(frozen=True)
class _Call:
    """What every batch of one classify call needs: the classifiers asked for, the threshold, the language's names."""

    ids: list[str]
    serving: dict[str, cls.ServingHeads]
    limit: float
    names: Names | None
    detector: ExplicitModel | None

    @property
    def built_in(self) -> list[str]:
        return [cid for cid in BUILT_IN_CLASSIFIER_IDS if cid in self.ids]

    @property
    def dense_ids(self) -> list[str]:
        """The built-in classifiers that read the backbone's ImageNet classes (all but `explicit`)."""
        return [cid for cid in self.built_in if cid != EXPLICIT_CLASSIFIER_ID]


def _built_in_classes(
    classes: dict[str, list[list[dict]]],
    dense: DensePass,
    fc: tuple[np.ndarray, np.ndarray],
    samples: Sequence[ColorSample | None],
    counts: list[int],
    limit: float,
) -> None:
    """Appends each image's `default` and `food` classes (those asked for in `classes`) from its rows of `dense`."""
    bounds = np.cumsum([0, *counts]).tolist()
    for i, (a, b) in enumerate(itertools.pairwise(bounds)):
        sample = samples[i]
        assert sample is not None, "built-in classifiers sample colours while decoding"
        if GENERAL_CLASSIFIER_ID in classes:
            classes[GENERAL_CLASSIFIER_ID].append(
                general_classes(
                    dense.probabilities[a:b], dense.window_probabilities[a:b], dense.features[a:b], sample, fc, limit
                )
            )
        if FOOD_CLASSIFIER_ID in classes:
            classes[FOOD_CLASSIFIER_ID].append(
                food_classes(dense.probabilities[a:b], dense.window_probabilities[a:b], sample.spread, limit)
            )


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
        names = names_in(language) if language != DEFAULT_LANGUAGE else None
        call = _Call(ids, serving, limit, names, explicit_model() if EXPLICIT_CLASSIFIER_ID in ids else None)
        answers: list[dict | None] = [None] * len(entries)
        missing: dict[str, None] = {} if untranslated is None else untranslated
        with single_threaded_blas():
            for errors, rows, results, found in self._scored_batches(entries, call):
                for index, error in errors:
                    answers[index] = error
                for i, per_image in zip(rows, results, strict=True):
                    answers[i] = {"classifiers": per_image, "image": entries[i].name}
                missing.update(found)  # in batch order, whichever lane finished first
        assert None not in answers, "every entry has its scores or its error"
        return [answer for answer in answers if answer is not None]

    def _scored_batches(self, entries: list[ImageInput | Skipped], call: _Call) -> Iterator[Scored]:
        """Each batch's (errors, rows, results, untranslated names), in input order.

        A call of one batch decodes in a pool running ahead of one pass on every core (the least latency); a call
        of more runs whole batches side by side, each decoded, passed (`Backbone.lanes`, one core each) and scored
        in its own thread, so no stage of one batch waits for another's.
        """
        backbone = self.engine.open().backbone
        size = backbone.batch_size
        lanes = backbone.lanes if len(entries) > size else 1
        if lanes <= 1:
            for batch in prepared_batches(range(len(entries)), lambda i: self._prepare(entries, i, call), size):
                yield self._scored(batch, call, lane=False)
            return
        pool = ThreadPoolExecutor(lanes, thread_name_prefix="classify-lane")
        try:
            futures = [
                pool.submit(lambda b: self._scored([self._prepare(entries, i, call) for i in b], call, lane=True), b)
                for b in backbone.lane_batches(len(entries))
            ]
            for future in futures:
                yield future.result()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _prepare(self, entries: list[ImageInput | Skipped], index: int, call: _Call) -> tuple[int, dict | Decoded]:
        """Entry `index` decoded once: (index, (view tensors, colour sample, explicit score)), or (index, its error)."""
        entry = entries[index]
        if isinstance(entry, Skipped):
            return index, cls.image_error(entry.name, entry.reason)
        spec, limits = self.engine.open().backbone.spec, self.engine.settings.limits
        try:
            tensors, image = backbone_views(entry.data, spec, limits, entry.name)
        except (ImageUnreadable, LimitExceeded) as exc:
            return index, cls.image_error(entry.name, exc.message, exc.code, exc.error_id)
        sample = color_sample(image, view_boxes(*image.size, spec)) if call.dense_ids else None
        return index, (tensors, sample, call.detector.score(image) if call.detector is not None else None)

    def _scored(self, batch: list[tuple[int, dict | Decoded]], call: _Call, lane: bool) -> Scored:
        """One decoded batch scored: (errors, rows, per-image results, untranslated names); one backbone run."""
        errors = [(index, result) for index, result in batch if isinstance(result, dict)]
        good = [(index, result) for index, result in batch if not isinstance(result, dict)]
        if not good:
            return errors, [], [], {}
        rows = [index for index, _ in good]
        views, samples, explicit_scores = zip(*(result for _, result in good), strict=True)
        counts = [len(v) for v in views]
        tensors = [tensor for v in views for tensor in v]  # every view of every image, one batched run
        backbone = self.engine.open().backbone
        missing: dict[str, None] = {}
        classes: dict[str, list[list[dict]]] = {cid: [] for cid in call.built_in}
        if call.detector is not None:
            classes[EXPLICIT_CLASSIFIER_ID] = [explicit_classes(score, call.limit) for score in explicit_scores]
        main_id = backbone.backbone_id  # read once: every row of this batch comes from one model
        if call.dense_ids:
            dense = backbone.run_dense(tensors, main_id, lane=lane)
            embeddings = dense.embeddings
            _built_in_classes(classes, dense, backbone.classifier_weights(), samples, counts, call.limit)
            if call.names is not None:
                names = call.names
                classes = {cid: [translate(c, names, missing) for c in per_image] for cid, per_image in classes.items()}
        else:
            embeddings, _ = backbone.run(tensors, main_id, lane=lane)
        others = self._other_embeddings(backbone, main_id, call.serving, tensors, lane)
        results = cls.image_results(classes, embeddings, call.ids, call.serving, call.limit, counts, others)
        return errors, rows, results, missing

    @staticmethod
    def _other_embeddings(
        backbone: Backbone,
        main_id: str,
        serving: dict[str, cls.ServingHeads],
        tensors: list[np.ndarray],
        lane: bool = False,
    ) -> dict[str, np.ndarray]:
        """Embeddings from each other backbone the served versions were trained on, which this one can run (FP32
        versions in an INT8 process keep their FP32 scores until retrained); an unknown id scores on `main_id`."""
        wanted = {s.backbone_id for s in serving.values() if s.backbone_id and s.backbone_id != main_id}
        runnable = [bid for bid in sorted(wanted) if backbone.can_run(bid)]
        return {bid: backbone.run(tensors, bid, lane=lane)[0] for bid in runnable}

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
