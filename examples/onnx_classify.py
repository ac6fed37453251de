"""Classify images with a workbench ONNX export, using only onnxruntime, PIL and numpy.

    python examples/onnx_classify.py dogs.onnx dogs.jpg [more images...]

The file carries its classes and input size (metadata); the normalisation is inside the model.
Decode and crop as below to get the scores `wb.classify` gives (to about 1e-6): the model scores
one square, so a wide or tall image is scored on each of its views (the centre square, then
squares along the long side, as `workbench.core.spec.view_boxes`) and each class keeps its best view.
"""

import json
import math
import sys

import numpy as np
import onnxruntime as ort
from PIL import Image, ImageOps

MIN_CENTRE_COVERAGE, VIEW_STEP_FRACTION, MAX_VIEWS = 0.8, 0.5, 5  # workbench.core.spec's


def offsets(long_px: int, size: int) -> list[int]:
    """Where the views start along the long side: the centre first, then squares at most half a square apart."""
    centre = (long_px - size) // 2
    if size >= MIN_CENTRE_COVERAGE * long_px:
        return [centre]
    span = long_px - size
    count = min(math.ceil(span / (size * VIEW_STEP_FRACTION)) + 1, MAX_VIEWS)
    others = [round(span * k / (count - 1)) for k in range(count)]
    return [centre] + [o for o in others if abs(o - centre) > 1][: MAX_VIEWS - 1]


def views(path: str, size: int) -> np.ndarray:
    """uint8 views x size x size x 3: upright RGB, bicubic resize of the short side, then each view's square."""
    image = Image.open(path)
    image.draft("RGB", (size, size))  # JPEGs decode at a reduced scale, as workbench does
    image = ImageOps.exif_transpose(image).convert("RGB")
    w, h = image.size
    scale = size / min(w, h)
    new_w, new_h = max(size, round(w * scale)), max(size, round(h * scale))
    pixels = np.asarray(image.resize((new_w, new_h), Image.BICUBIC), dtype=np.uint8)
    if new_w >= new_h:
        top = (new_h - size) // 2
        return np.stack([pixels[top : top + size, x : x + size] for x in offsets(new_w, size)])
    left = (new_w - size) // 2
    return np.stack([pixels[y : y + size, left : left + size] for y in offsets(new_h, size)])


session = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
meta = session.get_modelmeta().custom_metadata_map
classes, size = json.loads(meta["classes"]), int(meta["input_size"])
for path in sys.argv[2:]:
    scores, embedding = session.run(["scores", "embedding"], {"pixels": views(path, size)})
    best = scores.max(axis=0)  # each class's best view
    print(json.dumps({"image": path, "scores": {name: float(s) for name, s in zip(classes, best)}}))
