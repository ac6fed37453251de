"""Exporting a classifier version as one file for devices: ONNX (onnxruntime anywhere) or Core ML (iOS, macOS).

A custom classifier is the backbone plus small linear heads, so it exports whole: one graph from
pixels to the per-class scores `Heads.scores` gives (L2-normalise the embedding, linear, sigmoid,
times the familiarity gate) and the 1280-d embedding. The `Exporter` builds each (classifier,
version, format) file once, in a thread of its own, and caches it in the store beside the version's
heads (an atomic write under the store's write lock, so a deleted classifier never gets a file
back). torch and coremltools are imported only when a file is built.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..analysis.training import Heads
from ..core.atomic import atomic_write_bytes
from ..core.errors import ClassifierNotFound, InvalidRequest, StoreUnavailable
from ..core.spec import BackboneSpec
from ..store.database import Store
from ..store.faults import full_disk, unavailable

if TYPE_CHECKING:
    import torch

FORMATS = {"onnx": ".onnx", "coreml": ".mlmodel"}  # format -> file suffix
ONNX_INPUT = "pixels"  # uint8 RGB, N x H x W x 3
ONNX_OUTPUTS = ("scores", "embedding")
ONNX_OPSET = 18
COREML_INPUT = "image"
COREML_LABEL = "classLabel"  # the top class (Core ML classifier convention)
COREML_PROBABILITIES = "classLabelProbs"  # class -> our independent score
COREML_EMBEDDING = "embedding"
CHECK_TOLERANCE = 1e-4  # ONNX vs torch, scores and embedding, on a seeded batch at build time
CHECK_BATCH_IMAGES = 2  # more than one image also checks the dynamic batch axis
CHECK_SEED = 0
MAX_BATCH_IMAGES = 4096
LOGIT_CLIP = 50.0  # as `Heads.scores`


class ExportMismatch(RuntimeError):
    """The exported graph's outputs differ from torch's by more than CHECK_TOLERANCE."""


@dataclass(frozen=True)
class ExportSource:
    """What one export is built from: a classifier version and its heads."""

    classifier_id: str
    name: str
    version: int
    created: str
    heads: Heads


@dataclass(frozen=True)
class ExportEvent:
    """A build's progress, for `Exporter.listeners`: stage is "building", "built" or "failed"."""

    classifier_id: str
    version: int
    format: str
    stage: str
    seconds: float = 0.0
    error: str | None = None


def check_format(format: str) -> str:
    """The format as given, or InvalidRequest naming the ones there are."""
    if format not in FORMATS:
        raise InvalidRequest(f"format must be one of {', '.join(repr(f) for f in FORMATS)}; got {format!r}")
    return format


def coreml_available() -> bool:
    """Whether Core ML files can be built here (coremltools installed)."""
    return find_spec("coremltools") is not None


def workbench_version() -> str:
    from importlib.metadata import PackageNotFoundError  # here: 20 ms `list` does not need
    from importlib.metadata import version as package_version

    try:
        return package_version("workbench")
    except PackageNotFoundError:  # running from a source tree
        return "unknown"


def preprocessing_text(spec: BackboneSpec) -> str:
    """The input transform in words, as the metadata states it (the same as `spec.crop_pixels`)."""
    size = spec.input_size_px
    return (
        f"RGB; resize the short side to {size} px (bicubic), centre crop {size}x{size}; "
        f"then (x - {spec.mean:g}) / {spec.std:g}, inside the model"
    )


def metadata(source: ExportSource, spec: BackboneSpec) -> dict[str, str]:
    """Key-value metadata carried by both formats: who the classifier is and what input it wants."""
    return {
        "classifier_id": source.classifier_id,
        "name": source.name,
        "version": str(source.version),
        "created": source.created,
        "classes": json.dumps(list(source.heads.classes)),
        "input_size": str(spec.input_size_px),
        "preprocessing": preprocessing_text(spec),
        "scores": "independent per-class scores in 0..1 (sigmoid of a linear head on the L2-normalised embedding)",
        "backbone": spec.name,
        "workbench_version": workbench_version(),
    }


# the graph ---------------------------------------------------------------------
def classifier_graph(spec: BackboneSpec, heads: Heads, uint8_input: bool) -> torch.nn.Module:
    """The backbone and heads as one torch module: input -> (scores, embedding).

    `uint8_input`: the input is uint8 N x H x W x 3 and the normalisation is inside (ONNX);
    otherwise it is the normalised float N x 3 x H x W (Core ML folds the normalisation into its
    image input as scale and bias).
    """
    import torch

    from ..engine.network import load_network

    class ClassifierGraph(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.backbone = load_network(spec)
            self.register_buffer("weights", torch.from_numpy(np.asarray(heads.weights, np.float32).T.copy()))
            self.register_buffer("bias", torch.from_numpy(np.asarray(heads.bias, np.float32).copy()))
            gate = heads.familiarity  # None for heads saved before the familiarity gate: scores ungated
            self.gated = gate is not None
            if gate is not None:
                self.register_buffer("centres", torch.from_numpy(np.asarray(gate.centres, np.float32).T.copy()))
                self.register_buffer("midpoint", torch.from_numpy(np.asarray(gate.midpoint, np.float32).copy()))
                self.register_buffer("inverse_width", torch.from_numpy(1.0 / np.asarray(gate.width, np.float32)))

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            if uint8_input:
                x = (x.permute(0, 3, 1, 2).to(torch.float32) - spec.mean) / spec.std
            embedding = self.backbone(x)[0]
            unit = embedding / torch.linalg.vector_norm(embedding, dim=1, keepdim=True).clamp_min(1e-12)
            logits = torch.clamp(unit @ self.weights + self.bias, -LOGIT_CLIP, LOGIT_CLIP)
            scores = torch.sigmoid(logits)
            if self.gated:  # as `familiarity.Familiarity.gate`
                z = torch.clamp((unit @ self.centres - self.midpoint) * self.inverse_width, -LOGIT_CLIP, LOGIT_CLIP)
                scores = scores * torch.sigmoid(z)
            return scores, embedding

    return ClassifierGraph().eval()


# ONNX --------------------------------------------------------------------------
def build_onnx(source: ExportSource, spec: BackboneSpec) -> bytes:
    """One self-contained .onnx file: uint8 pixels -> (scores, embedding), metadata in `metadata_props`.

    Checked against torch on a seeded batch before it is returned (ExportMismatch beyond 1e-4).
    """
    import onnx
    import torch

    graph = classifier_graph(spec, source.heads, uint8_input=True)
    size = spec.input_size_px
    example = torch.zeros(CHECK_BATCH_IMAGES, size, size, 3, dtype=torch.uint8)
    batch = torch.export.Dim("batch", min=1, max=MAX_BATCH_IMAGES)
    with warnings.catch_warnings(), _without_torchvision_notices():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            graph,
            (example,),
            dynamo=True,
            input_names=[ONNX_INPUT],
            output_names=list(ONNX_OUTPUTS),
            dynamic_shapes=({0: batch},),
            opset_version=ONNX_OPSET,
            verbose=False,
        )
    if program is None:  # only the legacy exporter (dynamo=False) returns nothing
        raise RuntimeError("torch.onnx.export returned no ONNX program")
    model = program.model_proto
    onnx.helper.set_model_props(model, metadata(source, spec))
    model.doc_string = f"workbench classifier {source.name} ({source.classifier_id}) v{source.version}"
    data = model.SerializeToString()
    check_onnx(data, graph, size)
    return data


def check_onnx(data: bytes, graph: torch.nn.Module, size: int) -> float:
    """Runs a seeded uint8 batch through torch and onnxruntime; raises ExportMismatch beyond CHECK_TOLERANCE."""
    import onnxruntime as ort
    import torch

    pixels = np.random.default_rng(CHECK_SEED).integers(0, 256, (CHECK_BATCH_IMAGES, size, size, 3), dtype=np.uint8)
    with torch.inference_mode():
        expected = [t.numpy() for t in graph(torch.from_numpy(pixels))]
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    got = session.run(list(ONNX_OUTPUTS), {ONNX_INPUT: pixels})
    worst = max(float(np.abs(e - g).max()) for e, g in zip(expected, got, strict=True))
    if not worst <= CHECK_TOLERANCE:
        raise ExportMismatch(f"ONNX export differs from torch by {worst:.2e} (> {CHECK_TOLERANCE:.0e})")
    return worst


# torch's exporter logs, at WARNING and to stderr, "torchvision is not installed. Skipping
# torchvision::nms" (and roi_align, roi_pool, deform_conv2d) every time it builds its operator table:
# it looks for torchvision's detection ops, which a classifier graph never uses, and workbench does
# not install torchvision. Only these lines are dropped; every other record of that logger still shows.
TORCH_REGISTRY_LOGGER = "torch.onnx._internal.exporter._registration"
TORCHVISION_NOTICE = "torchvision is not installed"
_exports_lock = threading.Lock()
_exports_running = 0


def _not_torchvision_notice(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith(TORCHVISION_NOTICE)


@contextmanager
def _without_torchvision_notices() -> Iterator[None]:
    """Drops torch's "torchvision is not installed" lines while an export runs (see TORCHVISION_NOTICE)."""
    global _exports_running
    logger = logging.getLogger(TORCH_REGISTRY_LOGGER)
    with _exports_lock:  # builds run in threads of their own: the filter stays until the last one ends
        _exports_running += 1
        logger.addFilter(_not_torchvision_notice)
    try:
        yield
    finally:
        with _exports_lock:
            _exports_running -= 1
            if _exports_running == 0:
                logger.removeFilter(_not_torchvision_notice)


# Core ML -----------------------------------------------------------------------
def build_coreml(source: ExportSource, spec: BackboneSpec) -> bytes:
    """A Core ML neural-network classifier (.mlmodel, one file): 224x224 RGB image -> class label, scores, embedding.

    The normalisation is the image input's scale and bias; the classifier's probabilities are our
    independent sigmoid scores (not a softmax). Converted through `torch.export` (coremltools'
    `jit.trace` path fails on the same-padding arithmetic).
    """
    import torch

    graph = classifier_graph(spec, source.heads, uint8_input=False)
    size = spec.input_size_px
    with _quiet_coremltools():
        import coremltools as ct

        program = torch.export.export(graph, (torch.zeros(1, 3, size, size),)).run_decompositions({})
        image = ct.ImageType(
            name=COREML_INPUT,
            shape=(1, 3, size, size),
            scale=1.0 / spec.std,
            bias=[-spec.mean / spec.std] * 3,
            color_layout=ct.colorlayout.RGB,
        )
        config = ct.ClassifierConfig(list(source.heads.classes), predicted_feature_name=COREML_LABEL)
        model = ct.convert(program, convert_to="neuralnetwork", inputs=[image], classifier_config=config)
        proto = model.get_spec()
        _rename_outputs(ct, proto)
        _describe(proto, source, spec)
    return proto.SerializeToString()


def _rename_outputs(ct, proto) -> None:
    """Gives the converter's op-named outputs stable names: classLabelProbs and embedding."""
    description = proto.description
    probabilities = description.predictedProbabilitiesName
    embedding = next(o.name for o in description.output if o.type.WhichOneof("Type") == "multiArrayType")
    ct.utils.rename_feature(proto, probabilities, COREML_PROBABILITIES)
    ct.utils.rename_feature(proto, embedding, COREML_EMBEDDING)


def _describe(proto, source: ExportSource, spec: BackboneSpec) -> None:
    """Descriptions Xcode shows, and our metadata as the model's user-defined metadata."""
    description = proto.description
    description.metadata.author = "workbench"
    description.metadata.versionString = str(source.version)
    description.metadata.shortDescription = (
        f"Watson classifier {source.name} ({source.classifier_id}), version {source.version}: "
        f"classes {', '.join(source.heads.classes)}. Scores are independent per class (0..1)."
    )
    texts = {
        COREML_INPUT: f"RGB image, {spec.input_size_px}x{spec.input_size_px} (resize the short side, centre crop)",
        COREML_LABEL: "the class with the highest score",
        COREML_PROBABILITIES: "each class's independent score in 0..1",
        COREML_EMBEDDING: f"the backbone's {spec.embedding_size}-d embedding",
    }
    for feature in [*description.input, *description.output]:
        feature.shortDescription = texts.get(feature.name, "")
    description.metadata.userDefined.update(metadata(source, spec))


@contextmanager
def _quiet_coremltools() -> Iterator[None]:
    """Silences coremltools' import notices (untested torch / scikit-learn versions, no macOS runtime).

    Its conversion progress bars (tqdm, on stderr) have no switch and stay.
    """
    logger = logging.getLogger("coremltools")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


BUILDERS: dict[str, Callable[[ExportSource, BackboneSpec], bytes]] = {"onnx": build_onnx, "coreml": build_coreml}


# building once, caching --------------------------------------------------------
class Exporter:
    """Builds each (classifier, version, format) file once, in its own thread, and caches it in the store.

    Callers asking for a file that is being built wait for that build (not for each other);
    `after_build` hooks (MLflow) run on a thread of their own and never delay the answer.
    """

    def __init__(self, store: Store, spec: Callable[[], BackboneSpec]) -> None:
        self.store = store
        self.spec = spec
        self.listeners: list[Callable[[ExportEvent], None]] = []
        self.after_build: list[Callable[[str, int, Path], object]] = []  # what a hook returns is not used
        self._lock = threading.Lock()
        self._builds: dict[tuple[str, int, str], threading.Thread] = {}
        self._errors: dict[tuple[str, int, str], Exception] = {}
        self._hooks: list[threading.Thread] = []

    def path(self, classifier_id: str, version: int, format: str) -> Path:
        """Where the cached file lives: beside the version's heads, so it goes with the classifier."""
        return self.store.head_path(classifier_id, version).with_suffix(FORMATS[format])

    def get(self, source: ExportSource, format: str) -> Path:
        """The cached file, building it first if needed (waits for a build already under way)."""
        key = (source.classifier_id, source.version, check_format(format))
        path = self.path(*key)
        if path.exists():
            return path
        self.start(source, format).join()
        if path.exists():
            return path
        error = self._errors.get(key)
        if isinstance(error, ClassifierNotFound):
            raise error
        refused = _unavailable(error, self.store.files)
        if refused is not None:  # a full disk (or a held lock) stopped it: 503, try again later
            raise refused from error
        raise InvalidRequest(f"Exporting {source.classifier_id!r} v{source.version} as {format} failed: {error}")

    def start(self, source: ExportSource, format: str) -> threading.Thread:
        """Starts building the file in the background unless it is cached or being built; the build's thread."""
        key = (source.classifier_id, source.version, format)
        with self._lock:
            thread = self._builds.get(key)
            if thread is None or not thread.is_alive():
                thread = threading.Thread(target=self._build, args=(source, format), name=f"export-{key}", daemon=True)
                self._builds[key] = thread
                thread.start()
            return thread

    def _build(self, source: ExportSource, format: str) -> None:
        key = (source.classifier_id, source.version, format)
        path = self.path(*key)
        if path.exists():
            return
        self._tell(ExportEvent(*key, "building"))
        started = time.perf_counter()
        try:
            data = BUILDERS[format](source, self.spec())
            with self.store.transaction() as db:  # a classifier deleted meanwhile gets no file back
                self.store.classifier(source.classifier_id, db)
                atomic_write_bytes(path, data, private=True)
        except Exception as exc:
            self._errors[key] = exc
            self._tell(ExportEvent(*key, "failed", time.perf_counter() - started, str(exc)))
            return
        self._errors.pop(key, None)
        for hook in list(self.after_build):  # started before "built" is told, so `join` after it waits for them
            thread = threading.Thread(target=hook, args=(*key[:2], path), name="export-hook", daemon=True)
            self._hooks.append(thread)
            thread.start()
        self._tell(ExportEvent(*key, "built", time.perf_counter() - started))

    def _tell(self, event: ExportEvent) -> None:
        for listener in list(self.listeners):
            try:
                listener(event)
            except Exception:
                logging.getLogger(__name__).exception("export listener %r failed on %s", listener, event)

    def join(self, timeout: float | None = None) -> None:
        """Waits for the builds and their hooks (MLflow) under way (tests, notebooks, exit)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in [*list(self._builds.values()), *list(self._hooks)]:
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        self._hooks = [t for t in self._hooks if t.is_alive()]


def _unavailable(error: BaseException | None, home: Path) -> StoreUnavailable | None:
    """The StoreUnavailable a build's error (or one it was raised from) stands for: a full disk, a held lock.

    A builder's own OSError may hide the cause (no usable temporary folder, say): the home's disk is asked then.
    """
    chain: list[BaseException] = []
    while error is not None and len(chain) < 10:  # a builder may wrap the OSError (coremltools, torch.onnx)
        chain.append(error)
        error = error.__cause__ or error.__context__
    for link in chain:
        mapped = unavailable(link, home)
        if mapped is not None:
            return mapped
    if any(isinstance(link, OSError) for link in chain):
        return full_disk(home)
    return None


def write_copy(source: Path, target: Path) -> Path:
    """Copies a cached export to where the user asked, atomically."""
    atomic_write_bytes(target, source.read_bytes())
    return target


def default_file_name(classifier_id: str, version: int, format: str) -> str:
    return f"{classifier_id}-v{version}{FORMATS[format]}"


__all__ = ["FORMATS", "ExportEvent", "ExportSource", "Exporter", "build_coreml", "build_onnx"]
