"""The execution provider: TensorRT, else CUDA, else the CPU; a GPU provider that does not start falls back."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from workbench.engine import providers
from workbench.engine.backbone import Backbone, available_cpus
from workbench.engine.onnx_engine import OnnxEngine
from workbench.engine.providers import CPU, CUDA, TENSORRT, choose_providers, open_session

# what `get_available_providers()` lists with each build (onnxruntime 1.32 CPU; onnxruntime-gpu with and
# without TensorRT's libraries)
CPU_BUILD = ["AzureExecutionProvider", "CPUExecutionProvider"]
GPU_BUILD = ["CUDAExecutionProvider", "CPUExecutionProvider"]
TENSORRT_BUILD = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]


def test_the_cpu_build_runs_on_the_cpu() -> None:
    assert choose_providers(CPU_BUILD) == [CPU]
    assert choose_providers(ort.get_available_providers()) == [CPU]  # this machine: no GPU build installed


def test_a_gpu_build_prefers_tensorrt_then_cuda_and_keeps_the_cpu_last() -> None:
    assert choose_providers(GPU_BUILD) == [CUDA, CPU]
    assert choose_providers(TENSORRT_BUILD) == [TENSORRT, CUDA, CPU]
    assert choose_providers(reversed(TENSORRT_BUILD)) == [TENSORRT, CUDA, CPU]  # our order, not the listing's
    assert choose_providers([]) == [CPU]


@pytest.fixture(scope="module")
def fp32_model() -> Path:
    backbone = Backbone(engine="onnxruntime")
    backbone.prepare(wait=True)
    return backbone.onnx_path


def test_a_gpu_provider_that_does_not_start_falls_back_to_the_cpu_with_one_warning(fp32_model: Path) -> None:
    """This machine's onnxruntime has no CUDA provider: asked for it, ONNX Runtime cannot start it."""
    providers._warned.discard(CUDA)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    with pytest.warns(UserWarning, match="CUDAExecutionProvider did not start .*runs on CPUExecutionProvider"):
        session = open_session(fp32_model, options, available=GPU_BUILD)
    assert session.get_providers() == [CPU]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the second session on the same provider says nothing
        again = open_session(fp32_model, options, available=GPU_BUILD)
    ones = np.ones((1, 3, 224, 224), np.float32)
    assert again.run(None, {again.get_inputs()[0].name: ones})[0].shape == (1, 1280)


def test_the_engine_and_the_backbone_say_which_provider_runs(fp32_model: Path) -> None:
    assert OnnxEngine(fp32_model, available_cpus()).provider == CPU
    backbone = Backbone(engine="onnxruntime")
    backbone.prepare(wait=True)
    assert backbone.provider == CPU
    assert Backbone(engine="torch").provider == "torch-cpu"
