"""What every widget draws with: thumbnails, figures as PNG, error and file-name HTML, tile sizes."""

from __future__ import annotations

import html
import io

from matplotlib.figure import Figure
from PIL import Image

THUMBNAIL_PX = 128
TILE_PX = 176  # a gallery / results tile: the thumbnail plus room for a caption line
GALLERY_COLUMNS = 6
MAX_GALLERY_IMAGES = 24
IMAGE_WIDTH_PX = 320


def figure_png(figure: Figure, dpi: int = 80) -> bytes:
    """A matplotlib figure as PNG bytes (for Image widgets; no pyplot involved)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def thumbnail(data: bytes, side_px: int = THUMBNAIL_PX) -> bytes:
    """A small JPEG of an image, so galleries stay light in the notebook."""
    with Image.open(io.BytesIO(data)) as image:
        picture = image.convert("RGB")
        picture.thumbnail((side_px, side_px))
        buffer = io.BytesIO()
        picture.save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


def error_html(exc: Exception) -> str:
    """An error as one red line: what a widget shows instead of raising into the notebook."""
    return f"<span style='color:#b00'>{html.escape(type(exc).__name__)}: {html.escape(str(exc))}</span>"


def file_name_html(name: str) -> str:
    """A file name on one line of a tile: cut with an ellipsis when long, the full name in its tooltip."""
    return (
        f"<div title='{html.escape(name, quote=True)}' style='width:{TILE_PX - 8}px; overflow:hidden; "
        f"text-overflow:ellipsis; white-space:nowrap'>{html.escape(name)}</div>"
    )


def top_score_text(name: str, score: float, threshold: float) -> str:
    """`husky 0.93`, or `husky 0.48 (below 0.5)` when the best class does not reach the threshold."""
    below = f" (below {threshold:g})" if score < threshold else ""
    return f"{name} {score:.2f}{below}"
