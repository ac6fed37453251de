"""Which ONNX Runtime execution provider runs the backbone: TensorRT, else CUDA, else the CPU.

With `onnxruntime-gpu` installed in place of `onnxruntime` and a CUDA device, the same code runs the
backbone on the GPU; with the CPU build (`get_available_providers()` lists no GPU provider) nothing
changes. A GPU provider that is listed but does not start (no device, no driver, a CUDA or cuDNN
library missing) falls back to the CPU, with one warning per provider saying why: a server keeps
serving, slower, rather than failing to start.
"""

from __future__ import annotations

import io
import threading
import warnings
from collections.abc import Iterable
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

TENSORRT = "TensorrtExecutionProvider"
CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
PREFERENCE = (TENSORRT, CUDA, CPU)  # best first; TensorRT hands the nodes it cannot run to CUDA, CUDA to the CPU
TENSORRT_CACHE = "tensorrt"  # beside the exported model: TensorRT builds its engine once (minutes), not per start

_warned: set[str] = set()
_warned_lock = threading.Lock()


def choose_providers(available: Iterable[str]) -> list[str]:
    """The providers of PREFERENCE that `available` lists, best first; the CPU always, and last."""
    present = set(available)
    return [name for name in PREFERENCE if name in present or name == CPU]


def provider_options(name: str, model: Path) -> dict[str, str]:
    """Options for one provider: TensorRT caches the engine it builds beside the model; the others need none."""
    if name != TENSORRT:
        return {}
    return {"trt_engine_cache_enable": "True", "trt_engine_cache_path": str(model.parent / TENSORRT_CACHE)}


def warn_once(provider: str, reason: str, instead: str = CPU) -> None:
    """Warns that `provider` did not start, why, and which one runs `instead`, once per provider and process."""
    with _warned_lock:
        if provider in _warned:
            return
        _warned.add(provider)
    warnings.warn(f"ONNX Runtime's {provider} did not start ({reason}); the backbone runs on {instead}", stacklevel=3)


def _attempt(model: Path, options: Any, providers: list[str]) -> tuple[Any, str]:
    """A session on `providers`, and what ONNX Runtime said while making it (it prints its own fallback)."""
    import onnxruntime as ort

    said = io.StringIO()
    with warnings.catch_warnings(record=True) as caught, redirect_stdout(said):
        warnings.simplefilter("always")
        session = ort.InferenceSession(
            str(model), options, providers=[(name, provider_options(name, model)) for name in providers]
        )
    notes = [" ".join(said.getvalue().split())] + [str(w.message) for w in caught]
    return session, "; ".join(note for note in notes if note)


def open_session(model: Path, options: Any, available: Iterable[str] | None = None) -> Any:
    """An InferenceSession on the best provider of `available` (default: this ONNX Runtime's), else the CPU.

    A GPU provider that raises, or that ONNX Runtime quietly drops, leaves a CPU session and one warning.
    """
    import onnxruntime as ort

    providers = choose_providers(ort.get_available_providers() if available is None else available)
    if providers == [CPU]:
        return ort.InferenceSession(str(model), options, providers=[CPU])
    try:
        session, said = _attempt(model, options, providers)
    except Exception as exc:  # a provider that cannot start: the CPU still can
        warn_once(providers[0], f"{type(exc).__name__}: {exc}")
        return ort.InferenceSession(str(model), options, providers=[CPU])
    if session.get_providers()[0] != providers[0]:
        running = session.get_providers()
        warn_once(providers[0], said or f"ONNX Runtime enabled {running} instead", running[0])
    return session
