"""The embedded demo target: rendered once, cached, labels kept apart for evaluation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from gen_loop.config.schema import TargetConfig
from gen_loop.generator import ProceduralGenerator
from gen_loop.loop.target_data import load_target
from gen_loop.target.demo import demo_target

HIDDEN = {"fisheye": 0.5, "color_temp_k": 4300.0, "red_std_scale": 0.7}


def test_demo_target_is_rendered_once_and_cached(tmp_path: Path) -> None:
    gen = ProceduralGenerator(64, 64)
    first = demo_target(gen, HIDDEN, 6, 777, tmp_path)
    stamp = [p.stat().st_mtime_ns for p in sorted(first.images_dir.iterdir())]
    again = demo_target(gen, HIDDEN, 6, 777, tmp_path)
    assert again.images_dir == first.images_dir
    assert [p.stat().st_mtime_ns for p in sorted(again.images_dir.iterdir())] == stamp
    other = demo_target(gen, {**HIDDEN, "fisheye": 0.2}, 6, 777, tmp_path)
    assert other.images_dir != first.images_dir  # other hidden params, other cache entry
    assert first.params["fisheye"] == 0.5 and first.params["gamma"] == 1.0  # defaults filled


def test_demo_target_matches_the_generator_and_has_labels_for_evaluation(tmp_path: Path) -> None:
    gen = ProceduralGenerator(64, 64)
    demo = demo_target(gen, HIDDEN, 4, 777, tmp_path)
    data = yaml.safe_load(demo.data_yaml.read_text())
    assert Path(data["path"]) == demo.images_dir.parent.resolve()
    assert data["names"] == {0: "car", 1: "truck", 2: "pedestrian"}
    labels = sorted((demo.images_dir.parent / "labels").glob("*.txt"))
    assert len(labels) == 4
    target = load_target(TargetConfig(), gen, tmp_path)  # path=None -> the demo target
    assert target.labels_yaml is not None and target.hidden_params is not None
    expected = gen.generate(gen.resolve_params(TargetConfig().demo.params), 1, 777).images[0]
    assert target.images.images.shape[1:] == (64, 64, 3)
    # The cached PNG is exactly what the generator renders (lossless, RGB order kept).
    direct = load_target(TargetConfig(), gen, tmp_path).images.images[0]
    np.testing.assert_array_equal(direct, expected)
