"""The ONNX export: checked against torch, cached by key, atomic, and done once when two processes race."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from workbench.core.spec import lite0_spec
from workbench.engine.backbone import Backbone
from workbench.engine.onnx_engine import CACHE_DIR_ENV, OnnxEngine, default_cache_dir, onnx_path

RACE = """
import sys
from pathlib import Path
from workbench.engine.backbone import available_cpus
from workbench.core.spec import lite0_spec
from workbench.engine.onnx_engine import export_onnx, onnx_path
spec = lite0_spec()
print(export_onnx(spec, onnx_path(spec, Path(sys.argv[1])), available_cpus()))
"""


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c"
    path = onnx_path(lite0_spec(), default_cache_dir())
    assert path.parent == tmp_path / "c" / "onnx"
    assert path.name.startswith(lite0_spec().backbone_id) and path.suffix == ".onnx"


@pytest.mark.slow
def test_two_processes_exporting_at_once_export_once(tmp_path: Path) -> None:
    spec = lite0_spec()
    path = onnx_path(spec, tmp_path)
    path.parent.mkdir(parents=True)
    leftover = path.with_name(path.name + ".tmp-1-dead")  # what a crashed export leaves behind
    leftover.write_bytes(b"half an onnx file")
    racers = [
        subprocess.Popen([sys.executable, "-c", RACE, str(tmp_path)], stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    answers = sorted(p.communicate(timeout=300)[0].strip() for p in racers)
    assert all(p.returncode == 0 for p in racers)
    assert answers == ["False", "True"]  # one exported, the other waited and found the file
    assert not leftover.exists() and sorted(f.suffix for f in path.parent.iterdir()) == [".lock", ".onnx"]

    backbone = Backbone(spec, cache_dir=tmp_path)
    assert backbone.prepare() == "onnxruntime"  # loads the cached file without exporting or waiting
    ones = np.ones((2, 3, 224, 224), np.float32)
    embeddings, logits, windows, features = OnnxEngine(path, threads=1).run(ones)
    assert embeddings.shape == (2, 1280) and logits.shape == (2, 1000)
    assert windows.shape == (2, 16, 1000) and features.shape == (2, 1280, 7, 7)
    assert "-f3-" in path.name  # a cache traced by torch.onnx (f2) or without the window outputs is never loaded
    np.testing.assert_allclose(backbone.run(list(ones))[0], embeddings, atol=1e-5)
