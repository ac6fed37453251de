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
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from functools import lru_cache, partial
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

    `precision="int8"` serves the INT8 model once it is built: on a machine where it is not cached yet, the
    same thread calibrates it (`quantize`, tens of seconds) after the FP32 export, and FP32 serves meanwhile.
    `backbone_id` names what serves *now*: a caller that caches or records embeddings reads it once and passes
    it to `run`, which then runs that model (waiting for INT8 if asked for it before it is ready), so one
    caller's embeddings never mix the two. `prepare(wait=True)` waits for the INT8 model.
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
        self.precision = precision  # the one asked for; `serving_precision` is the one that serves now
        self.spec = spec or lite0_spec()
        self.batch_size = batch_size
        self.cache_dir = Path(cache_dir) if cache_dir is not None else onnx_engine.default_cache_dir()
        self.engine_choice = engine
        self.export_error: Exception | None = None  # the FP32 export failed (torch serves, or nothing does)
        self.int8_error: Exception | None = None  # the INT8 calibration failed (FP32 keeps serving)
        self._lock = threading.Lock()  # one pass at a time: each engine already uses every CPU
        self._state_lock = threading.Lock()
        self._engines: dict[str, onnx_engine.OnnxEngine] = {}  # by precision
        self._lanes: dict[str, onnx_engine.OnnxEngine] = {}  # by precision: single-threaded, run by many threads
        self._torch: Any = None
        self._export: threading.Thread | None = None
        self._fp32_ready = threading.Event()  # set once FP32 serves (ONNX Runtime or, after a failed export, torch)
        self._fc: tuple[np.ndarray, np.ndarray] | None = None
        self._batchers = {
            p: BatchingRunner(partial(self._forward, precision=p), batch_size) for p in quantize.PRECISIONS
        }
        self.on_int8_ready: list[Callable[[], object]] = []  # called (in the calibration thread) once INT8 serves

    @property
    def serving_precision(self) -> str:
        """The precision serving now: "int8" once the INT8 model is loaded (and was asked for), else "fp32". An INT8
        backbone loads its cached model (or starts calibrating it) on this first question."""
        if self.precision == "int8" and "int8" not in self._engines and self.int8_error is None:
            self.prepare()
        return self._serving_now()

    def _serving_now(self) -> str:
        return "int8" if self.precision == "int8" and "int8" in self._engines else "fp32"

    @property
    def backbone_id(self) -> str:
        """The id of the model serving now: the weights' id plus the precision (INT8 only), so embedding caches
        and heads of the two never mix."""
        return self.id_for(self.serving_precision)

    def id_for(self, precision: str) -> str:
        return self.spec.backbone_id + quantize.id_suffix(precision)

    def precision_of(self, backbone_id: str | None) -> str:
        """The precision of a backbone id this backbone can run (None: the serving one); ValueError otherwise."""
        if backbone_id is None:
            return self.serving_precision
        for precision in quantize.PRECISIONS:
            if backbone_id == self.id_for(precision) and (precision == "fp32" or self.precision == "int8"):
                return precision
        raise ValueError(f"backbone {backbone_id!r} is not one this backbone runs ({self.backbone_id})")

    def can_run(self, backbone_id: str) -> bool:
        """Whether `run` takes this id: the FP32 model's, or the INT8 one's when INT8 was asked for."""
        try:
            self.precision_of(backbone_id)
        except ValueError:
            return False
        return True

    @property
    def engine(self) -> str:
        """The engine that serves the next pass: "onnxruntime" or "torch"."""
        return "onnxruntime" if self._serving_now() in self._engines else "torch"

    @property
    def provider(self) -> str:
        """Where the next pass runs: ONNX Runtime's execution provider ("CUDAExecutionProvider"...), or "torch-cpu"."""
        onnx = self._engines.get(self._serving_now())
        return onnx.provider if onnx is not None else "torch-cpu"

    @property
    def fp32_path(self) -> Path:
        return onnx_engine.onnx_path(self.spec, self.cache_dir)

    @property
    def onnx_path(self) -> Path:
        """The model asked for: the FP32 export, or its INT8 quantization."""
        fp32 = self.fp32_path
        return fp32 if self.precision == "fp32" else quantize.int8_path(fp32)

    @property
    def _must_use_onnx(self) -> bool:
        """ONNX Runtime or nothing: asked for, or INT8 (torch would give FP32 embeddings under the INT8 id)."""
        return self.engine_choice == "onnxruntime" or self.precision == "int8"

    def prepare(self, wait: bool = False) -> str:
        """Loads the cached ONNX model, or starts exporting (and for INT8, calibrating) it in the background;
        returns the serving engine. With `wait`, blocks until the export and any calibration have finished."""
        with self._state_lock:
            if self.engine_choice == "torch" or self.export_error is not None or self.precision in self._engines:
                return self.engine
            if self._export is None and self._load_cached():
                self._fp32_ready.set()
                return self.engine
            if self._export is None:
                self._export = threading.Thread(target=self._export_and_load, name="onnx-export")
                self._export.start()  # not a daemon: an export once begun finishes and is cached
            thread = self._export
        if wait:
            thread.join()
        elif self._must_use_onnx:
            self._fp32_ready.wait()
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
        """Loads the model asked for when it is cached (INT8: the FP32 one loads when a caller asks for it)."""
        self._scratch_if_read_only()
        path = self.onnx_path
        if not path.exists():
            return False
        try:
            self._engines[self.precision] = onnx_engine.OnnxEngine(path, available_cpus())
        except Exception as exc:  # unreadable despite the atomic write (disk damage): export it again
            warnings.warn(f"Cached ONNX model {path} does not load ({exc}); exporting it again", stacklevel=3)
            path.unlink(missing_ok=True)
            return False
        if self.precision == "int8":  # listeners ask this backbone questions: not under the caller's lock
            threading.Thread(target=self._announce_int8, name="int8-ready", daemon=True).start()
        return True

    def _export_and_load(self) -> None:
        try:
            onnx_engine.export_onnx(self.spec, self.fp32_path, available_cpus())
            if "fp32" not in self._engines:
                self._engines["fp32"] = onnx_engine.OnnxEngine(self.fp32_path, available_cpus())
        except Exception as exc:  # torch keeps serving; say why ONNX Runtime does not
            self.export_error = exc
            if not self._must_use_onnx:
                warnings.warn(f"ONNX export failed, the backbone stays on torch: {exc}", stacklevel=2)
            return
        finally:
            self._fp32_ready.set()
        if self.precision == "int8":
            self._calibrate_and_load()

    def _calibrate_and_load(self) -> None:
        """Builds the INT8 model (once per machine), then serves it; on failure FP32 keeps serving and says why."""
        try:
            quantize.export_int8(self.spec, self.fp32_path, self.onnx_path)
            self._engines["int8"] = onnx_engine.OnnxEngine(self.onnx_path, available_cpus())
        except Exception as exc:
            self.int8_error = exc
            warnings.warn(f"INT8 calibration failed, the backbone stays on FP32: {exc}", stacklevel=2)
            return
        self._announce_int8()

    def _announce_int8(self) -> None:
        """Calls each `on_int8_ready` listener once INT8 serves."""
        for callback in list(self.on_int8_ready):
            try:
                callback()
            except Exception as exc:  # a listener's failure is its own; the backbone serves INT8 anyway
                warnings.warn(f"INT8 listener failed: {exc}", stacklevel=2)

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

    def _passes(
        self, tensors: Sequence[np.ndarray], backbone_id: str | None, lane: bool = False
    ) -> list[tuple[np.ndarray, ...]]:
        """The engine's four outputs for each batch of `tensors`, from the model named `backbone_id` (None: the
        one serving now); with `lane`, on that model's single-threaded session (`lanes`).

        Waits for an FP32 export under way (about 1.5 s): torch serving beside it would compete for the
        same cores and finish later than ONNX Runtime does after the wait. INT8 asked for by id waits for its
        calibration; FP32 asked for by an INT8 backbone loads the cached FP32 model on first use.
        """
        precision = self.precision_of(backbone_id)
        self.prepare(wait=precision == "int8" and "int8" not in self._engines)
        if self.engine_choice != "torch":
            self._fp32_ready.wait()
        if precision == "int8" and "int8" not in self._engines:
            raise RuntimeError(f"the INT8 model is not available: {self.int8_error}")
        if precision == "fp32" and self.precision == "int8" and "fp32" not in self._engines:
            self._load_fp32()  # an FP32 version scored in an INT8 process
        engine = self._lane_engine(precision) if lane else None
        batcher = self._batchers[precision]
        return [
            engine.run(_batch(tensors[start : start + self.batch_size]))
            if engine is not None
            else batcher.run(tensors[start : start + self.batch_size])
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

    def lane_batches(self, count: int) -> list[range]:
        """The batches a call of `count` images runs in its lanes: full batches, then smaller ones at the end.

        Lanes take batches in order as they come free. A last full batch kept one core busy alone for up to a
        whole pass (7-347 ms of a 3 s, 250-image call on 2 cores); batches that shrink as the images left run out
        (at most a `2 * lanes`-th of them each) let the lanes finish within a pass of an image or two of each other.
        """
        batches, start, shares = [], 0, 2 * self.lanes
        while start < count:
            size = max(1, min(self.batch_size, -(-(count - start) // shares)))
            batches.append(range(start, start + size))
            start += size
        return batches

    def _lane_engine(self, precision: str) -> onnx_engine.OnnxEngine | None:
        """The single-threaded ONNX Runtime session of `precision` behind `lanes` (its `run` is thread-safe); None
        on torch."""
        shared = self._engines.get(precision)
        if shared is None:
            return None
        with self._state_lock:
            lane = self._lanes.get(precision)
            if lane is None or lane.path != shared.path:
                lane = self._lanes[precision] = onnx_engine.OnnxEngine(shared.path, 1)
            return lane

    def _load_fp32(self) -> None:
        """The FP32 model beside a served INT8 one, loaded when a version trained in FP32 is scored."""
        with self._state_lock:
            if "fp32" not in self._engines:
                onnx_engine.export_onnx(self.spec, self.fp32_path, available_cpus())
                self._engines["fp32"] = onnx_engine.OnnxEngine(self.fp32_path, available_cpus())

    def _forward(self, tensors: list[np.ndarray], precision: str | None = None) -> tuple[np.ndarray, ...]:
        """One pass over a batch (the batching runner's thread calls it, with other callers' images alongside) of
        the `precision` model (None: the one serving now)."""
        batch = _batch(tensors)
        with self._lock:
            onnx = self._engines.get(precision or self._serving_now())
            return onnx.run(batch) if onnx is not None else self._torch_pass(batch)

    def run(
        self, tensors: Sequence[np.ndarray], backbone_id: str | None = None, *, lane: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """Preprocessed CHW arrays -> (embeddings N x 1280, ImageNet probabilities N x 1000), in batches, from the
        model named `backbone_id` (None: the one serving now); with `lane`, on the single-threaded session (`lanes`)."""
        if not len(tensors):
            return np.zeros((0, self.spec.embedding_size), np.float32), np.zeros((0, IMAGENET_CLASSES), np.float32)
        outputs = self._passes(tensors, backbone_id, lane)
        return _joined([out[0] for out in outputs]), softmax(_joined([out[1] for out in outputs]))

    def run_dense(
        self, tensors: Sequence[np.ndarray], backbone_id: str | None = None, *, lane: bool = False
    ) -> DensePass:
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
        outputs = self._passes(tensors, backbone_id, lane)
        embeddings, logits, windows, features = (_joined([out[i] for out in outputs]) for i in range(4))
        return DensePass(embeddings, softmax(logits), softmax(windows), features)

    def classifier_weights(self) -> tuple[np.ndarray, np.ndarray]:
        """The ImageNet head (weights 1000 x 1280, bias 1000): class activation maps apply it to each feature cell."""
        if self._fc is None:
            self.prepare()
            onnx = self._engines.get(self._serving_now())
            if onnx is not None:
                self._fc = onnx.classifier_weights()
            else:
                head = self._torch_network()._fc
                self._fc = head.weight.detach().numpy().copy(), head.bias.detach().numpy().copy()
        return self._fc

    def embed_images(
        self, images: Iterable[Image.Image], backbone_id: str | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Decoded RGB images -> (embeddings, probabilities), from the model named `backbone_id` (as `run`)."""
        return self.run([preprocess(image, self.spec) for image in images], backbone_id)


def _batch(tensors: Sequence[np.ndarray]) -> np.ndarray:
    """CHW arrays -> one contiguous float32 N x C x H x W batch (one copy)."""
    return np.ascontiguousarray(np.stack(tensors), np.float32)


def _joined(parts: list[np.ndarray]) -> np.ndarray:
    """The batches' outputs as one array; a call of one batch (every lane's) keeps its own, uncopied."""
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis in float32, stable for large logits."""
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return (shifted / shifted.sum(axis=-1, keepdims=True)).astype(np.float32)
