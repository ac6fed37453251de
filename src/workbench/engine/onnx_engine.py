"""The ONNX Runtime engine: the backbone exported once from the torch module, checked, cached on disk.

The export (about 1 s: `onnx_graph` writes the graph from the weights) happens once per machine
and user: the `.onnx` file lives in a cache directory shared by every workbench home, named by the
weights' hash and the torch and onnxruntime versions. It is written to a temporary file, checked
against torch, and renamed into place, under a file lock, so a crash or two processes exporting at
once never leave a half-written or unchecked model behind.
"""

from __future__ import annotations

import fcntl
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .onnx_graph import FC_BIAS, FC_WEIGHT, INPUT_NAME, OUTPUT_NAMES
from .providers import open_session

if TYPE_CHECKING:
    from ..core.spec import BackboneSpec

CACHE_DIR_ENV = "WORKBENCH_CACHE_DIR"  # overrides the per-user cache directory
CHECK_TOLERANCE = 1e-4  # max abs difference from torch, on every output, at export
CHECK_BATCH_IMAGES = 2  # a batch of more than one image also checks the dynamic batch axis
CHECK_SEED = 0
# the exported graph's outputs, in the file name: a cache written before an output was added is never reused
EXPORT_FORMAT = "f3"  # f3: built from the weights by onnx_graph (f2 was traced by torch.onnx)


class ExportMismatch(RuntimeError):
    """The exported model's outputs differ from torch's by more than CHECK_TOLERANCE."""


def default_cache_dir() -> Path:
    """`$WORKBENCH_CACHE_DIR`, else `$XDG_CACHE_HOME/workbench`, else `~/.cache/workbench`."""
    if os.environ.get(CACHE_DIR_ENV):
        return Path(os.environ[CACHE_DIR_ENV])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "workbench"


def runtime_version() -> str:
    """The installed ONNX Runtime's version, whichever build provides it (`onnxruntime` or `onnxruntime-gpu`)."""
    from importlib.metadata import PackageNotFoundError, version  # here: 20 ms that `workbench list` does not need

    for distribution in ("onnxruntime", "onnxruntime-gpu"):
        try:
            return version(distribution)
        except PackageNotFoundError:
            continue
    import onnxruntime  # installed some other way (a source build): it still knows its version

    return str(onnxruntime.__version__)


def onnx_path(spec: BackboneSpec, cache_dir: Path) -> Path:
    """Where the exported model lives: keyed by weights' hash, outputs' format, exporter and runtime versions."""
    from importlib.metadata import version

    stamp = f"{EXPORT_FORMAT}-torch{version('torch')}-ort{runtime_version()}".replace("+", "_")
    return cache_dir / "onnx" / f"{spec.backbone_id}-{stamp}.onnx"


@contextmanager
def export_lock(path: Path) -> Iterator[None]:
    """An exclusive lock for exporting `path` (other processes wait; released if this one dies)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _remove_leftovers(path: Path) -> None:
    """Deletes temporary files of exports that died (only called while holding the lock)."""
    for stale in path.parent.glob(f"{path.name}.tmp-*"):
        stale.unlink(missing_ok=True)


def export_onnx(spec: BackboneSpec, path: Path, threads: int) -> bool:
    """Exports the torch module to `path`, checked against torch to 1e-4; False when it was there already."""
    with export_lock(path):
        if path.exists():
            return False
        _remove_leftovers(path)
        tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
        try:
            _export_to(spec, tmp)
            check_against_torch(spec, tmp, threads)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    return True


def _export_to(spec: BackboneSpec, target: Path) -> None:
    """Writes the graph built from the weights (`onnx_graph`; under a second, where tracing took about 5 s)."""
    import onnx

    from .onnx_graph import build_model, load_state  # onnx itself loads only here

    onnx.save(build_model(load_state(spec), spec), str(target))
    with open(target, "rb") as handle:
        os.fsync(handle.fileno())


def check_against_torch(spec: BackboneSpec, path: Path, threads: int) -> float:
    """Runs a seeded batch through torch and the ONNX file; raises ExportMismatch beyond CHECK_TOLERANCE."""
    import torch

    from .network import load_network

    size = spec.input_size_px
    images = np.random.default_rng(CHECK_SEED).uniform(-1, 1, (CHECK_BATCH_IMAGES, 3, size, size)).astype(np.float32)
    with torch.inference_mode():
        expected = [t.numpy() for t in load_network(spec)(torch.from_numpy(images))]
    got = OnnxEngine(path, threads).run(images)
    worst = max(float(np.abs(e - g).max()) for e, g in zip(expected, got, strict=True))
    if not worst <= CHECK_TOLERANCE:
        raise ExportMismatch(f"ONNX export differs from torch by {worst:.2e} (> {CHECK_TOLERANCE:.0e})")
    return worst


class OnnxEngine:
    """An ONNX Runtime session on the exported file: a CHW float32 batch -> the network's four outputs.

    It runs on the best execution provider this ONNX Runtime has (`providers`: TensorRT, CUDA, else the
    CPU); `provider` names the one that runs.
    """

    def __init__(self, path: Path, threads: int, *, spinning: bool = False) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        # spinning off by default: busy-waiting threads between ops take the cores the decode threads
        # need while a batch runs; on, it is the engine's fastest setting (the bench's limit)
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
        # no memory pattern: with it, every batch size seen (a server's batcher hands 1 to 8 images) plans and
        # keeps a block of its own in the arena, and RSS climbs; off, RSS stays where it was after loading and a
        # pass costs no more CPU (bench/onnx_memory.py: 18.9 against 19.9 ms an image FP32, 8.5 against 9.8 INT8)
        options.enable_mem_pattern = False
        self.spinning = spinning
        self.path = path
        self._session = open_session(path, options)
        self.provider: str = self._session.get_providers()[0]

    def run(self, batch: np.ndarray) -> tuple[np.ndarray, ...]:
        """(embeddings, logits, window logits, features), as `EfficientNetLite.forward`."""
        return tuple(self._session.run(list(OUTPUT_NAMES), {INPUT_NAME: batch}))

    def classifier_weights(self) -> tuple[np.ndarray, np.ndarray]:
        """The ImageNet head's (weights 1000 x 1280, bias 1000), read from the file's initializers."""
        import onnx
        from onnx import numpy_helper

        tensors = {t.name: t for t in onnx.load(str(self.path)).graph.initializer}
        return numpy_helper.to_array(tensors[FC_WEIGHT]), numpy_helper.to_array(tensors[FC_BIAS])
