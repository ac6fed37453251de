"""ResultsGrid: images with their top classes in a grid, labelled ones marked right or wrong."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from pathlib import Path

import ipywidgets as widgets
import pandas as pd

from .. import Interpretation, folder_images, image_paths, label_from_name, parse_labels
from ..core.vocabulary import GENERAL_CLASSIFIER_ID, THRESHOLD
from ..service.workbench import Workbench
from .classify import score_rows
from .display import GALLERY_COLUMNS, THUMBNAIL_PX, TILE_PX, file_name_html, thumbnail, top_score_text

RESULTS_BATCH = 16  # images per classify call of a ResultsGrid
TOP_CLASSES = 3  # classes per classifier under a ResultsGrid thumbnail
LABELS_FILE = "LABELS.txt"  # a folder's ground truth for ResultsGrid: one `file<TAB>label` a line


class ResultsGrid(widgets.VBox):
    """Images with their top classes and scores, in a grid (fastai's `show_results` for a classifier).

    Scores come from one `wb.classify` call per `batch_size` images at threshold 0 and are filtered
    here, so moving the threshold only rewrites captions. `scores` holds every (image, classifier, class) score.
    A folder is walked like `classify_iter` walks it (sub-folders too).

    Labelled images are marked right or wrong: a folder with a `LABELS.txt` (`file<TAB>label` lines), a folder of
    per-class sub-folders (or `{class}_positive_examples` folders; `negatives/` for none of the classes), or
    `labels` given as {file name: label}. `labels=False` turns it off. An image is right when its top class at
    the threshold is its label, or when no class reaches the threshold and its label is none of the classes.
    """

    def __init__(
        self,
        wb: Workbench,
        images: str | Path | Sequence[str | Path],
        classifier_ids: str | Sequence[str] | None = None,
        threshold: float = THRESHOLD,
        top: int = TOP_CLASSES,
        batch_size: int = RESULTS_BATCH,
        columns: int = GALLERY_COLUMNS,
        labels: Mapping[str, str] | bool | None = None,
    ) -> None:
        self.wb = wb
        folder = Path(images) if isinstance(images, (str, Path)) and Path(images).is_dir() else None
        if folder is not None:
            found = list(folder_images(folder))
            self.paths, self.names = [p for _, p in found], {p: name for name, p in found}
        else:
            self.paths = image_paths(images)
            self.names = {p: p.as_posix() for p in self.paths}
        self.classifier_ids = [classifier_ids] if isinstance(classifier_ids, str) else classifier_ids
        self.top = top
        self.threshold = widgets.FloatSlider(value=threshold, min=0.0, max=1.0, step=0.01, description="threshold")
        self.summary = widgets.HTML()
        self.errors: dict[Path, str] = {}
        self.scores = self._classify(batch_size)
        self.labels = self._labels(labels, folder)
        self.truth = self._truth()  # classifier id -> image path -> its true class, or `(none)`
        self.captions = [widgets.HTML() for _ in self.paths]
        tiles = [
            widgets.VBox(
                [widgets.Image(value=thumbnail(p.read_bytes()), format="jpeg", width=THUMBNAIL_PX), caption],
                layout=widgets.Layout(width=f"{TILE_PX}px"),
            )
            for p, caption in zip(self.paths, self.captions, strict=True)
        ]
        self.grid = widgets.GridBox(
            tiles, layout=widgets.Layout(grid_template_columns=f"repeat({columns}, {TILE_PX}px)")
        )
        self.threshold.observe(lambda _: self.refresh(), names="value")
        super().__init__([widgets.HBox([self.threshold, self.summary]), self.grid])
        self.add_class("workbench-results-grid")
        self.refresh()

    def _classify(self, batch_size: int) -> pd.DataFrame:
        """Scores every image, `batch_size` per classify call; unnamed bytes come back as image_<position>."""
        frames = []
        for start in range(0, len(self.paths), batch_size):
            batch = self.paths[start : start + batch_size]
            answer = self.wb.classify(
                [p.read_bytes() for p in batch], classifier_ids=self.classifier_ids, threshold=0.0
            )
            by_name = {image.get("image"): image for image in answer["images"]}
            for position, path in enumerate(batch, start=1):
                image = by_name.get(f"image_{position}", {"error": {"description": "not classified"}})
                if "error" in image:
                    self.errors[path] = image["error"].get("description", "error")
                    continue
                frame = score_rows({"images": [image]})
                frames.append(frame.assign(image=str(path)))
        columns = ["image", "classifier_id", "class", "score", "type_hierarchy"]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)

    def _labels(self, labels: Mapping[str, str] | bool | None, folder: Path | None) -> dict[str, str] | None:
        """{name: label} from caller, the folder's LABELS.txt, or {}: labels from folder names; None: unlabelled."""
        if labels is False:
            return None
        if isinstance(labels, Mapping):
            return dict(labels)
        if folder is not None and (folder / LABELS_FILE).is_file():
            return parse_labels((folder / LABELS_FILE).read_text(encoding="utf-8", errors="replace"))
        in_sub_folders = folder is not None and any("/" in name for name in self.names.values())
        return {} if labels is True or in_sub_folders else None

    def _truth(self) -> dict[str, dict[Path, str]]:
        if self.labels is None:
            return {}
        custom = [cid for cid in dict.fromkeys(self.scores["classifier_id"]) if cid != GENERAL_CLASSIFIER_ID]
        truth = {}
        for cid in custom:
            classes = [c["class"] for c in self.wb.get_classifier(cid)["classes"]]
            truth[cid] = {p: label_from_name(self.names[p], classes, self.labels) for p in self.paths}
        return truth

    @property
    def labelled(self) -> bool:
        """Whether the images have ground truth (so each result is marked right or wrong)."""
        return bool(self.truth)

    def top_classes(self, path: str | Path) -> pd.DataFrame:
        """An image's best `top` classes per classifier (whatever the threshold), highest first."""
        mine = self.scores[self.scores["image"] == str(path)]
        return (
            mine.sort_values("score", ascending=False, kind="stable")
            .groupby("classifier_id", sort=False)
            .head(self.top)
        )

    def predictions(self) -> pd.DataFrame:
        """One row per image and classifier, in image order: its best class and score, and whether it
        reaches the threshold; for labelled images also `truth` (the true class, or `(none)`) and
        `correct` (None for `default`)."""
        order = {str(p): i for i, p in enumerate(self.paths)}
        best = (
            self.scores.sort_values("score", ascending=False, kind="stable")
            .groupby(["image", "classifier_id"], sort=False)
            .head(1)
            .sort_values("image", key=lambda images: images.map(order), kind="stable")
        )
        best = best.assign(reached=best["score"] >= self.threshold.value)
        columns = ["image", "classifier_id", "class", "score", "reached"]
        if self.labelled:
            truth = [
                self.truth[cid][Path(image)] if cid in self.truth else None
                for image, cid in zip(best["image"], best["classifier_id"], strict=True)
            ]
            correct = [
                None if expected is None else self._right(cid, name, score, expected)
                for cid, name, score, expected in zip(
                    best["classifier_id"], best["class"], best["score"], truth, strict=True
                )
            ]
            best = best.assign(truth=truth, correct=correct)
            columns += ["truth", "correct"]
        return best[columns].reset_index(drop=True)

    def _right(self, classifier_id: str, top_class: str, top_score: float, truth: str) -> bool:
        """The top class at the threshold is the truth, or nothing reached the threshold and the truth is none."""
        return top_class == truth if top_score >= self.threshold.value else truth not in self._classes(classifier_id)

    def _classes(self, classifier_id: str) -> set[str]:
        return set(self.scores.loc[self.scores["classifier_id"] == classifier_id, "class"])

    def caption(self, path: Path) -> str:
        """File name, then per classifier the classes at the threshold with scores, or the best one marked below it;
        a labelled image says whether the top class is right, or what it is."""
        lines = [file_name_html(path.name)]
        if path in self.errors:
            return "<small>" + lines[0] + f"<span style='color:#b00'>{html.escape(self.errors[path])}</span></small>"
        t = self.threshold.value
        for cid, classes in self.top_classes(path).groupby("classifier_id", sort=False):
            reached = classes[classes["score"] >= t]
            shown = reached if len(reached) else classes.head(1)
            text = html.escape(
                ", ".join(top_score_text(c, s, t) for c, s in zip(shown["class"], shown["score"], strict=True))
            )
            prefix = html.escape(f"{cid}: ") if len(self.classifier_ids or []) != 1 else ""
            line = prefix + (f"<b>{text}</b>" if len(reached) else text)
            if cid in self.truth:
                truth = self.truth[cid][path]
                right = self._right(str(cid), classes["class"].iloc[0], float(classes["score"].iloc[0]), truth)
                line += (
                    " <span style='color:#070'>&#10003; right</span>"
                    if right
                    else f" <span style='color:#b00'>&#10007; true: {html.escape(truth)}</span>"
                )
            lines.append(line)
        return "<small>" + lines[0] + "<br>".join(lines[1:]) + "</small>"

    def refresh(self) -> None:
        """Rewrites the captions for the slider's threshold (no classify call)."""
        for path, caption in zip(self.paths, self.captions, strict=True):
            caption.value = self.caption(path)
        called = self.scores[self.scores["score"] >= self.threshold.value]["image"].nunique()
        text = f"{len(self.paths)} images, {called} with a class at threshold {self.threshold.value:.2f}"
        if self.labelled:
            marks = self.predictions()["correct"].dropna()
            text += f"; {int(marks.sum())} of {len(marks)} right"
        self.summary.value = text

    def interpretation(self, classifier_id: str | None = None) -> Interpretation:
        """The labelled images' `Interpretation` for one custom classifier (the only one by default): the confusion
        matrix, most confused pairs and highest losses of these images, as for a version's training images."""
        if not self.labelled:
            raise ValueError(
                "these images have no labels: give labels= or a folder with LABELS.txt or class sub-folders"
            )
        cid = classifier_id if classifier_id is not None else next(iter(self.truth))
        if cid not in self.truth:
            raise ValueError(f"{cid!r} is not a custom classifier of this grid: {sorted(self.truth)}")
        classes = [c["class"] for c in self.wb.get_classifier(cid)["classes"]]
        mine = self.scores[self.scores["classifier_id"] == cid]
        table = mine.pivot_table(index="image", columns="class", values="score", aggfunc="max").reindex(columns=classes)
        scored = [p for p in self.paths if str(p) in table.index]
        scores = table.loc[[str(p) for p in scored]].fillna(0.0).to_numpy(dtype=float)
        return Interpretation(classes, scores, [self.truth[cid][p] for p in scored], [self.names[p] for p in scored])
