"""Classify images with a workbench ONNX export, using only onnxruntime, PIL and numpy.

    python examples/onnx_classify.py dogs.onnx dogs.jpg [more images...]

The file carries its classes and input size (metadata); the normalisation is inside the model.
Decode and crop as below to get the scores `wb.classify` gives (to about 1e-6).
"""

import json
import sys

import numpy as np
import onnxruntime as ort
from PIL import Image, ImageOps


def pixels(path: str, size: int) -> np.ndarray:
    """uint8 size x size x 3: upright RGB, bicubic resize of the short side, centre crop."""
    image = Image.open(path)
    image.draft("RGB", (size, size))  # JPEGs decode at a reduced scale, as workbench does
    image = ImageOps.exif_transpose(image).convert("RGB")
    w, h = image.size
    scale = size / min(w, h)
    new_w, new_h = max(size, round(w * scale)), max(size, round(h * scale))
    image = image.resize((new_w, new_h), Image.BICUBIC)
    left, top = (new_w - size) // 2, (new_h - size) // 2
    return np.asarray(image.crop((left, top, left + size, top + size)), dtype=np.uint8)


session = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
meta = session.get_modelmeta().custom_metadata_map
classes, size = json.loads(meta["classes"]), int(meta["input_size"])
batch = np.stack([pixels(path, size) for path in sys.argv[2:]])
scores, embedding = session.run(["scores", "embedding"], {"pixels": batch})
for path, row in zip(sys.argv[2:], scores):
    print(json.dumps({"image": path, "scores": {name: float(s) for name, s in zip(classes, row)}}))
