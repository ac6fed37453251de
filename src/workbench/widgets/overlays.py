"""Where a classifier looked: heatmap overlays of one image (ExplainView) and of misclassified training images."""

from __future__ import annotations

import html
import io
from collections.abc import Sequence
from pathlib import Path

import ipywidgets as widgets
from PIL import Image

from .. import plots
from ..analysis.review import review_items
from ..core.vocabulary import THRESHOLD
from ..service.workbench import Workbench
from .display import GALLERY_COLUMNS, IMAGE_WIDTH_PX, MAX_GALLERY_IMAGES, THUMBNAIL_PX


def overlay_jpeg(image: Image.Image, heatmap, side_px: int = THUMBNAIL_PX) -> bytes:
    """A small JPEG of an image with a class's heatmap over it (`plots.overlay_image`)."""
    picture = plots.overlay_image(image, heatmap)
    picture.thumbnail((side_px, side_px))
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


class ExplainView(widgets.VBox):
    """Where each classifier looked on one image: per classifier, its top classes as overlays with their scores."""

    def __init__(self, wb: Workbench, image: str | Path | bytes, classifier_ids: Sequence[str], top: int = 3) -> None:
        self.explanations = {cid: wb.explain(image, cid, top=top) for cid in classifier_ids}
        rows = []
        for cid, found in self.explanations.items():
            tiles = [
                widgets.VBox(
                    [
                        widgets.Image(
                            value=overlay_jpeg(e.image, e.heatmap, IMAGE_WIDTH_PX),
                            format="jpeg",
                            width=IMAGE_WIDTH_PX * 2 // 3,
                        ),
                        widgets.HTML(f"<small>{html.escape(e.class_name)} {e.score:.3f}</small>"),
                    ]
                )
                for e in found
            ]
            rows.append(widgets.VBox([widgets.HTML(f"<b>{html.escape(cid)}</b>"), widgets.HBox(tiles)]))
        super().__init__(rows)


class OverlayGallery(widgets.VBox):
    """The misclassified training images of a version (`review_items`), each with where its true class's head looked."""

    def __init__(
        self,
        wb: Workbench,
        classifier_id: str,
        version: int | None = None,
        threshold: float = THRESHOLD,
        max_images: int = MAX_GALLERY_IMAGES,
    ) -> None:
        oof = wb.out_of_fold(classifier_id, version=version)
        items = review_items(oof, threshold)
        self.items = items[items["kind"] == "misclassified"].head(max_images)
        tiles = [self._tile(wb, classifier_id, row, oof.classes) for row in self.items.itertuples()]
        grid = widgets.GridBox(
            tiles, layout=widgets.Layout(grid_template_columns=f"repeat({GALLERY_COLUMNS}, {THUMBNAIL_PX + 16}px)")
        )
        if tiles:
            self.note = widgets.HTML(
                f"version {oof.version}: {len(self.items)} misclassified, with where their class looked"
            )
            super().__init__([self.note, grid])
        else:  # a caption over nothing reads like a drawing that failed
            self.note = widgets.HTML(
                f"<i>version {oof.version}: no training image is misclassified at threshold "
                f"{threshold:.2f}, so there is no map to show</i>"
            )
            super().__init__([self.note])

    @staticmethod
    def _tile(wb: Workbench, classifier_id: str, row, classes: Sequence[str]) -> widgets.VBox:
        """A negative example shows where the class it was mistaken for looked; a positive, its own class."""
        data = wb.example_image(classifier_id, row.sha256)
        [looked] = wb.explain(data, classifier_id, class_name=row.label if row.label in classes else None, top=1)
        caption = (
            f"<small>{html.escape(Path(row.source).name)}<br>true: {html.escape(row.label)}"
            f"<br>map: {html.escape(looked.class_name)} {looked.score:.2f}</small>"
        )
        picture = widgets.Image(value=overlay_jpeg(looked.image, looked.heatmap), format="jpeg", width=THUMBNAIL_PX)
        return widgets.VBox([picture, widgets.HTML(caption)])
