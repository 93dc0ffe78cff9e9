"""Original YOLOv7 checkpoints (made by the original code) as embedder weights."""

from __future__ import annotations

import json
import os
import pickle
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from gen_loop.embedder import YoloEmbedder
from gen_loop.embedder.original import match_layout, read_original_checkpoint
from gen_loop.embedder.original.layout import LayoutMismatch
from gen_loop.embedder.original.unpickle import RefusedGlobal, _Unpickler
from gen_loop.errors import ConfigError
from tests.cli import run_cli

TINY_DIR = Path(__file__).parent / "fixtures" / "yolov7"
SHARED_DIR = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "yolov7"
FIXTURES = {
    "yolov7-tiny": (TINY_DIR, 77),
    "yolov7": (SHARED_DIR, 105),
}


def _fixture(name: str) -> tuple[Path, int]:
    folder, n_layers = FIXTURES[name]
    if not (folder / f"{name}-original.pt").is_file():
        pytest.skip(f"{folder} is absent (the 75 MB YOLOv7 fixture lives in ../shared)")
    return folder, n_layers


@pytest.mark.parametrize("name", list(FIXTURES))
def test_every_layer_reproduces_the_original_features(name: str) -> None:
    folder, n_layers = _fixture(name)
    embedder = YoloEmbedder(
        "yolov7-tiny", folder / f"{name}-original.pt", list(range(n_layers)), 256, "cpu"
    )
    x = torch.from_numpy(np.load(TINY_DIR / "input.npy"))
    with torch.inference_mode():  # the embedder's own forward: fused, channels-last
        features = embedder._forward(x.contiguous(memory_format=torch.channels_last))
    reference = np.load(folder / f"{name}-reference.npz")
    assert len(features) == n_layers
    for k, feature in enumerate(features):
        ref = reference[f"pooled{k}"]
        ours = feature.float().mean(dim=(2, 3)).numpy()
        scale = float(np.abs(ref).max())
        np.testing.assert_allclose(ours, ref, rtol=1e-3, atol=1e-3 * scale, err_msg=f"layer {k}")


def test_classes_and_identity_come_from_the_checkpoint() -> None:
    folder, _ = _fixture("yolov7-tiny")
    embedder = YoloEmbedder("yolov7-tiny", folder / "yolov7-tiny-original.pt", [14], 96, "cpu")
    net = embedder._net
    assert net.yaml["yaml_file"] == "yolov7-tiny-original.yaml"
    assert net.names[0] == "class0" and len(net.names) == 80
    base = YoloEmbedder("yolov7-tiny", None, [14], 96, "cpu")
    assert embedder.fingerprint != base.fingerprint


def test_an_edited_cfg_is_named_not_mapped() -> None:
    cfg = read_original_checkpoint(TINY_DIR / "yolov7-tiny-original.pt")["model"].yaml
    assert match_layout(cfg) == "yolov7-tiny-original"
    cfg["head"][5] = [-1, 1, "Conv", [99, 1, 1, "None", 1, "nn.LeakyReLU(0.1)"]]
    with pytest.raises(LayoutMismatch, match="row 34"):
        match_layout(cfg)


class _Evil:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.system, (f"touch {self.marker}",)  # type: ignore[attr-defined]


def _crafted_checkpoint(path: Path, marker: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A checkpoint naming ``models.yolo.Model`` (so it reads as an original one) whose
    pickle also calls ``os.system`` when unpickled by plain pickle."""
    module = types.ModuleType("models.yolo")
    model_cls = type("Model", (nn.Module,), {"__module__": "models.yolo"})
    module.Model = model_cls  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "models", types.ModuleType("models"))
    monkeypatch.setitem(sys.modules, "models.yolo", module)
    evil = _Evil()
    evil.marker = marker  # type: ignore[attr-defined]
    model = model_cls()
    model.payload = evil
    torch.save({"model": model}, path)


def test_a_pickle_naming_other_globals_is_refused_and_runs_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ckpt, marker = tmp_path / "evil.pt", tmp_path / "ran"
    _crafted_checkpoint(ckpt, marker, monkeypatch)
    with pytest.raises(ConfigError) as info:
        read_original_checkpoint(ckpt)
    assert info.value.key == "embedder.weights"
    assert str(ckpt) in str(info.value) and "system" in str(info.value)
    assert "\n" not in str(info.value)
    assert not marker.exists()
    with pytest.raises(RefusedGlobal):  # the unpickler itself, not only the pre-scan
        _Unpickler(__import__("io").BytesIO(pickle.dumps(os.system))).load()
    monkeypatch.undo()
    done = run_cli(tmp_path, "run", "debug=smoke", f"embedder.weights={ckpt}")
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert len(errors) == 1 and "system" in errors[0] and str(ckpt) in errors[0]
    assert not marker.exists()


@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.parametrize("name", list(FIXTURES))
def test_smoke_run_fine_tunes_from_an_original_checkpoint(tmp_path: Path, name: str) -> None:
    folder, n_layers = _fixture(name)
    done = run_cli(
        tmp_path,
        "run",
        "debug=smoke",
        f"embedder.weights={folder / f'{name}-original.pt'}",
        f"run_dir={tmp_path / 'run'}",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert Path(summary["finetuned_weights"]).is_file()
    assert {"before", "after"} <= set(summary["evaluation"])
    converted = tmp_path / "run" / "finetune" / f"{name}-original-ultralytics.pt"
    assert converted.is_file()
    assert f"layers 0-{n_layers - 1} carried over" in done.stdout + done.stderr
