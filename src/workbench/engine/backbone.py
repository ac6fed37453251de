"""The backbone: the engines (ONNX Runtime, torch) behind one `run`.

One pass per image gives the 1280-d embedding and the ImageNet probabilities, and on request
(`run_dense`) the windowed ImageNet probabilities and the last feature map. ONNX Runtime
serves once the model is exported (`onnx_engine`, about 1.5 s on a first run); torch (`network`)
serves only when the export is impossible. torch is imported only when it is needed.
"""

from __future__ import annotations

import os
import tempfile
import threading
import warnings
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from threadpoolctl import ThreadpoolController

from ..core.limits import THREADS_ENV
from ..core.spec import IMAGENET_CLASSES, BackboneSpec, lite0_spec, preprocess
from . import onnx_engine, quantize
from .batching import BatchingRunner

BATCH_SIZE = 8  # images per forward pass
ENGINES = ("auto", "onnxruntime", "torch")  # auto: ONNX Runtime once exported, torch only if the export fails
PRECISION_ENV = "WORKBENCH_PRECISION"  # "fp32" or "int8": the default precision of every Backbone in the process
DEFAULT_PRECISION = "fp32"  # INT8 is opt-in: see `quantize` and the bench for why


@dataclass(frozen=True)
class DensePass:
    """Everything one backbone pass gives for a batch of N images.

    `window_probabilities` is the ImageNet softmax of each pooled window of the last feature map
    (N x windows x 1000); `features` is that map (N x 1280 x 7 x 7), whose mean is the embedding.
    """

    embeddings: np.ndarray
    probabilities: np.ndarray
    window_probabilities: np.ndarray
    features: np.ndarray


@lru_cache(maxsize=1)
def _blas_controller() -> ThreadpoolController:
    return ThreadpoolController()


def single_threaded_blas() -> AbstractContextManager:
    """BLAS on one thread for the small products around the backbone.

    Idle BLAS threads spin after each product and take the cores the backbone needs: on 2 cores
    a single-image classify went from about 22 ms to 39 ms without this.
    """
    return _blas_controller().limit(limits=1, user_api="blas")


def available_cpus() -> int:
    """CPUs this process may use (respects affinity and cgroup-limited cpusets), at most $WORKBENCH_THREADS
    (a Spark worker sets it to `spark.task.cpus`, so workers on one executor do not oversubscribe it)."""
    try:
        cpus = max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        cpus = os.cpu_count() or 1
    limit = os.environ.get(THREADS_ENV, "")
    return min(cpus, int(limit)) if limit.isdigit() and int(limit) > 0 else cpus


def writable(folder: Path) -> bool:
    """Whether files can be created in `folder` (made if missing); False on a read-only file system, even as root."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(folder, os.W_OK)


def scratch_dir() -> Path:
    """A per-user folder under the system temp dir for caches whose usual place is read-only."""
    folder = Path(tempfile.gettempdir()) / f"workbench-cache-{os.getuid()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    return folder


class Backbone:
    """One forward pass per image gives the embedding and the ImageNet probabilities; `run` is thread-safe.

    `engine="auto"` serves with ONNX Runtime, exporting the model first when it is not cached
    (about 1.5 s, in a thread `prepare` starts) and staying on torch only if that export fails;
    `"onnxruntime"` raises if the export fails; `"torch"` never uses ONNX Runtime.
    """

    def __init__(
        self,
        spec: BackboneSpec | None = None,
        batch_size: int = BATCH_SIZE,
        *,
        cache_dir: Path | None = None,
        engine: str = "auto",
        precision: str | None = None,
    ) -> None:
        if engine not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
        precision = precision or os.environ.get(PRECISION_ENV) or DEFAULT_PRECISION
        if precision not in quantize.PRECISIONS:
            raise ValueError(f"precision must be one of {quantize.PRECISIONS}, got {precision!r}")
        if precision == "int8" and engine == "torch":
            raise ValueError("precision='int8' needs ONNX Runtime; the torch engine is FP32 only")
        self.precision = precision
        self.spec = spec or lite0_spec()
        self.batch_size = batch_size
        self.cache_dir = Path(cache_dir) if cache_dir is not None else onnx_engine.default_cache_dir()
        self.engine_choice = engine
        self.export_error: Exception | None = None
        self._lock = threading.Lock()  # one pass at a time: each engine already uses every CPU
        self._state_lock = threading.Lock()
        self._onnx: onnx_engine.OnnxEngine | None = None
        self._lane: onnx_engine.OnnxEngine | None = None  # single-threaded, called by many threads at once
        self._torch: Any = None
        self._export: threading.Thread | None = None
        self._fc: tuple[np.ndarray, np.ndarray] | None = None
        self._batcher = BatchingRunner(self._forward, batch_size)  # concurrent callers share passes

    @property
    def backbone_id(self) -> str:
        """The weights' id plus the precision (INT8 only): embedding caches and heads of the two never mix."""
        return self.spec.backbone_id + quantize.id_suffix(self.precision)

    @property
    def engine(self) -> str:
        """The engine that serves the next pass: "onnxruntime" or "torch"."""
        return "onnxruntime" if self._onnx is not None else "torch"

    @property
    def fp32_path(self) -> Path:
        return onnx_engine.onnx_path(self.spec, self.cache_dir)

    @property
    def onnx_path(self) -> Path:
        """The model this backbone serves: the FP32 export, or its INT8 quantization."""
        fp32 = self.fp32_path
        return fp32 if self.precision == "fp32" else quantize.int8_path(fp32)

    @property
    def _must_use_onnx(self) -> bool:
        """ONNX Runtime or nothing: asked for, or INT8 (torch would give FP32 embeddings under the INT8 id)."""
        return self.engine_choice == "onnxruntime" or self.precision == "int8"

    def prepare(self, wait: bool = False) -> str:
        """Loads the cached ONNX model, or starts exporting it in the background; returns the serving engine.

        With `wait`, blocks until the export has finished (or failed).
        """
        with self._state_lock:
            if self.engine_choice == "torch" or self._onnx is not None or self.export_error is not None:
                return self.engine
            if self._export is None and self._load_cached():
                return self.engine
            if self._export is None:
                self._export = threading.Thread(target=self._export_and_load, name="onnx-export")
                self._export.start()  # not a daemon: an export once begun finishes and is cached
            thread = self._export
        if wait or self._must_use_onnx:
            thread.join()
        if self._must_use_onnx and self.export_error is not None:
            raise self.export_error
        return self.engine

    def _scratch_if_read_only(self) -> None:
        """Moves the ONNX cache to a per-user scratch folder when the usual one cannot be written (a read-only
        home, as Spark executors may have): exporting there beats falling back to torch, 5.9x slower."""
        if self.onnx_path.exists() or writable(self.cache_dir):
            return
        try:
            scratch = scratch_dir()
        except OSError:
            return  # nowhere to write: the export fails and says why ("auto" stays on torch)
        warnings.warn(f"ONNX cache {self.cache_dir} is read-only; exporting the backbone to {scratch}", stacklevel=3)
        self.cache_dir = scratch

    def _load_cached(self) -> bool:
        self._scratch_if_read_only()
        path = self.onnx_path
        if not path.exists():
            return False
        try:
            self._onnx = onnx_engine.OnnxEngine(path, available_cpus())
        except Exception as exc:  # unreadable despite the atomic write (disk damage): export it again
            warnings.warn(f"Cached ONNX model {path} does not load ({exc}); exporting it again", stacklevel=3)
            path.unlink(missing_ok=True)
            return False
        return True

    def _export_and_load(self) -> None:
        try:
            onnx_engine.export_onnx(self.spec, self.fp32_path, available_cpus())
            if self.precision == "int8":
                quantize.export_int8(self.spec, self.fp32_path, self.onnx_path)  # about 15 s, once per machine
            self._onnx = onnx_engine.OnnxEngine(self.onnx_path, available_cpus())
        except Exception as exc:  # torch keeps serving; say why ONNX Runtime does not
            self.export_error = exc
            if not self._must_use_onnx:
                warnings.warn(f"ONNX export failed, the backbone stays on torch: {exc}", stacklevel=2)

    def _torch_network(self) -> Any:
        import torch

        from .network import load_network

        if self._torch is None:
            torch.set_num_threads(available_cpus())
            self._torch = load_network(self.spec)
        return self._torch

    def _torch_pass(self, batch: np.ndarray) -> tuple[np.ndarray, ...]:
        import torch

        network = self._torch_network()
        with torch.inference_mode():
            return tuple(output.numpy() for output in network(torch.from_numpy(batch)))

    def _passes(self, tensors: Sequence[np.ndarray], lane: bool = False) -> list[tuple[np.ndarray, ...]]:
        """The engine's four outputs for each batch of `tensors`; with `lane`, on the single-threaded session (`lanes`).

        Waits for an export under way (about 1.5 s): torch serving beside it would compete for the
        same cores and finish later than ONNX Runtime does after the wait.
        """
        self.prepare(wait=True)
        engine = self._lane_engine() if lane else None
        return [
            engine.run(_batch(tensors[start : start + self.batch_size]))
            if engine is not None
            else self._batcher.run(tensors[start : start + self.batch_size])
            for start in range(0, len(tensors), self.batch_size)
        ]

    @property
    def lanes(self) -> int:
        """How many batches a call of many images should run at once with `run_dense(lane=True)`: one per CPU on ONNX
        Runtime, each on one thread; 1 on torch (its passes take every core).

        One session on every core makes its threads meet after each of the network's ops, so a thread that waits for
        the CPU (a decode thread, another process) stalls the other: on 2 shared cores a 250-image classify ran at
        0.62-0.74 of the decode + inference ceiling that way. Whole batches side by side on single-threaded runs
        never wait for each other, and decode, backbone and heads of different batches fill the cores together.
        """
        return available_cpus() if self.prepare() == "onnxruntime" else 1

    def _lane_engine(self) -> onnx_engine.OnnxEngine | None:
        """The single-threaded ONNX Runtime session behind `lanes` (its `run` is thread-safe); None on torch."""
        if self._onnx is None:
            return None
        with self._state_lock:
            if self._lane is None or self._lane.path != self._onnx.path:
                self._lane = onnx_engine.OnnxEngine(self._onnx.path, 1)
            return self._lane

    def _forward(self, tensors: list[np.ndarray]) -> tuple[np.ndarray, ...]:
        """One pass over a batch (the batching runner's thread calls it, with other callers' images alongside)."""
        batch = _batch(tensors)
        with self._lock:
            onnx = self._onnx
            return onnx.run(batch) if onnx is not None else self._torch_pass(batch)

    def run(self, tensors: Sequence[np.ndarray], *, lane: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Preprocessed CHW arrays -> (embeddings N x 1280, ImageNet probabilities N x 1000), in batches
        (with `lane`, on the single-threaded session: `lanes`)."""
        if not len(tensors):
            return np.zeros((0, self.spec.embedding_size), np.float32), np.zeros((0, IMAGENET_CLASSES), np.float32)
        outputs = self._passes(tensors, lane)
        embeddings = np.concatenate([out[0] for out in outputs])
        return embeddings, softmax(np.concatenate([out[1] for out in outputs]))

    def run_dense(self, tensors: Sequence[np.ndarray], *, lane: bool = False) -> DensePass:
        """Like `run`, plus each image's windowed ImageNet probabilities and last feature map (same one pass).

        The feature map is 250 kB an image: call it per batch, not on a whole folder at once. With `lane`, the pass
        runs on the single-threaded session, beside other threads' (`lanes`); the outputs are bit-identical.
        """
        spec, grid = self.spec, self.spec.feature_grid
        if not len(tensors):
            return DensePass(
                np.zeros((0, spec.embedding_size), np.float32),
                np.zeros((0, IMAGENET_CLASSES), np.float32),
                np.zeros((0, spec.window_count, IMAGENET_CLASSES), np.float32),
                np.zeros((0, spec.embedding_size, grid, grid), np.float32),
            )
        outputs = self._passes(tensors, lane)
        embeddings, logits, windows, features = (np.concatenate([out[i] for out in outputs]) for i in range(4))
        return DensePass(embeddings, softmax(logits), softmax(windows), features)

    def classifier_weights(self) -> tuple[np.ndarray, np.ndarray]:
        """The ImageNet head (weights 1000 x 1280, bias 1000): class activation maps apply it to each feature cell."""
        if self._fc is None:
            self.prepare()
            onnx = self._onnx
            if onnx is not None:
                self._fc = onnx.classifier_weights()
            else:
                head = self._torch_network()._fc
                self._fc = head.weight.detach().numpy().copy(), head.bias.detach().numpy().copy()
        return self._fc

    def embed_images(self, images: Iterable[Image.Image]) -> tuple[np.ndarray, np.ndarray]:
        """Decoded RGB images -> (embeddings, probabilities)."""
        return self.run([preprocess(image, self.spec) for image in images])


def _batch(tensors: Sequence[np.ndarray]) -> np.ndarray:
    """CHW arrays -> one contiguous float32 N x C x H x W batch (one copy)."""
    return np.ascontiguousarray(np.stack(tensors), np.float32)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis in float32, stable for large logits."""
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return (shifted / shifted.sum(axis=-1, keepdims=True)).astype(np.float32)
