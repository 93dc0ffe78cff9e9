"""The no-search controls of experiments/downstream/run.py (issue 14): domain randomisation's
cameras and scenes, the augmentation condition's trainer settings, and the report's names."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace

import numpy as np
import pytest

from gen_loop.generator.procedural import ProceduralGenerator

DOWNSTREAM = Path(__file__).resolve().parents[1] / "experiments" / "downstream"


def _module(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"downstream_{name}", DOWNSTREAM / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through it
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def run() -> ModuleType:
    return _module("run")


@pytest.fixture(scope="module")
def report() -> ModuleType:
    sys.path.insert(0, str(DOWNSTREAM))
    return _module("report")


def test_per_scene_renders_scene_j_with_camera_j(run: ModuleType) -> None:
    generator = ProceduralGenerator(64, 64, scene_cache_mb=0)
    cameras = [{"color_temp_k": 4000.0}, {"color_temp_k": 9000.0}, {"exposure_ev": 1.0}]
    cfg = SimpleNamespace(selection=SimpleNamespace(pool_seed=5))
    pool = run.Pool(generator, None, None, cfg, 0, Path("."))
    batch = pool.per_scene(cameras)
    for j, params in enumerate(cameras):
        alone = generator.generate(params, len(cameras), 5)
        np.testing.assert_array_equal(batch.images[j], alone.images[j])
        np.testing.assert_array_equal(batch.labels[j], alone.labels[j])
        assert batch.seeds[j] == alone.seeds[j]


def test_augmentation_check(run: ModuleType) -> None:
    from ultralytics.utils import DEFAULT_CFG_DICT

    defaults = {k: DEFAULT_CFG_DICT[k] for k in run.TRAIN_ARGS} | {"epochs": 8}
    run.check_augmentation("aug", defaults | {"close_mosaic": 0})
    with pytest.raises(SystemExit, match="close_mosaic"):
        run.check_augmentation("aug", defaults)  # mosaic closed before the first of 8 epochs
    run.check_augmentation("augnm", defaults)
    with pytest.raises(SystemExit, match="close_mosaic"):
        run.check_augmentation("augnm", defaults | {"close_mosaic": 0})
    off = dict.fromkeys(("mosaic", "hsv_h", "hsv_s", "hsv_v", "scale", "translate"), 0.0)
    run.check_augmentation("b", defaults | off)
    with pytest.raises(SystemExit, match="hsv_s"):
        run.check_augmentation("b", defaults | off | {"hsv_s": 0.7})


def test_ultralytics_defaults_are_restored(run: ModuleType) -> None:
    from ultralytics.utils import DEFAULT_CFG

    before = DEFAULT_CFG.close_mosaic
    with run.ultralytics_defaults({"close_mosaic": 0}):
        assert DEFAULT_CFG.close_mosaic == 0
    assert before == DEFAULT_CFG.close_mosaic


def test_report_basin_ignores_vignetting(report: ModuleType) -> None:
    errors = {"color_temp_k": 0.01, "fisheye": 0.02, "vignetting": 0.15}
    assert report.basin(errors) == ("2% (fisheye)", "15%", "right")
    assert report.basin(errors | {"contrast": 0.3})[2] == "**wrong**"
    assert report.group_name({"tag": "v2", "target": "cctv_fog"}) == "v2 / cctv_fog"
    assert report.group_name({"tag": "camera"}) == "camera"
