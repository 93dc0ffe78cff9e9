"""Camera selection: each pool scene keeps its rendering closest to the target."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from gen_loop.config.schema import SelectionConfig
from gen_loop.embedder.weights import shipped_base_weights
from gen_loop.embedder.yolo import YoloEmbedder
from gen_loop.generator import ProceduralGenerator
from gen_loop.score import CentroidScorer
from gen_loop.selection import closest_camera, select_closest, select_pool


def test_closest_camera_picks_the_minimum_per_scene_first_on_ties() -> None:
    distances = np.array([[3.0, 1.0, 2.0], [1.0, 1.0, 5.0], [2.0, 0.5, 2.0]])
    camera, best = closest_camera(distances)
    assert camera.tolist() == [1, 2, 0]
    assert best.tolist() == [1.0, 0.5, 2.0]


@settings(max_examples=60, deadline=None)
@given(
    hnp.arrays(
        np.float64,
        st.tuples(st.integers(1, 6), st.integers(1, 30)),
        elements=st.floats(0, 1e3, allow_nan=False),
    )
)
def test_closest_camera_properties(distances: np.ndarray) -> None:
    camera, best = closest_camera(distances)
    assert best.tolist() == distances.min(axis=0).tolist()
    assert np.all(distances[camera, np.arange(distances.shape[1])] == best)
    assert np.all((camera >= 0) & (camera < distances.shape[0]))


@pytest.mark.parametrize("shape", [(0, 3), (3, 0), (3,)])
def test_closest_camera_needs_a_non_empty_matrix(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="n_cameras, n_scenes"):
        closest_camera(np.zeros(shape))


def test_camera_is_not_a_threshold_method() -> None:
    with pytest.raises(ValueError, match="closest_camera"):
        select_closest(np.array([1.0]), "camera")


@pytest.mark.slow
def test_camera_selection_keeps_every_scene_under_the_target_camera(tmp_path: Path) -> None:
    generator = ProceduralGenerator(96, 96)
    target_params = generator.resolve_params({"color_temp_k": 4300.0, "fisheye": 0.55})
    far = [
        generator.resolve_params({"color_temp_k": 9000.0, "fisheye": 0.0}),
        generator.resolve_params({"color_temp_k": 11000.0, "exposure_ev": -1.0}),
    ]
    embedder = YoloEmbedder("yolov7-tiny", shipped_base_weights(), [14], 96, device="cpu")
    target = generator.generate(target_params, 32, seed=777)
    scorer = CentroidScorer("zscore_l2").fit(embedder.embed(target.images))
    cfg = SelectionConfig(pool_size=12, pool_seed=1, method="camera", pool_trials=3)
    # The best trial is a far camera; the target's own camera is only the second candidate.
    selection = select_pool(
        generator, embedder, scorer, far[0], cfg, 0.25, tmp_path, [target_params, far[1]]
    )
    manifest = json.loads(selection.manifest.read_text())
    cameras = [row["camera"] for row in manifest["samples"]]
    assert len(selection.batch) == 12 and selection.n_val == 3
    assert sorted(row["pool_index"] for row in manifest["samples"]) == list(range(12))
    assert cameras.count(1) >= 10  # the target's camera wins (almost) every scene
    assert np.all(np.diff(selection.distances) >= 0)
    # Each kept image is exactly its scene rendered with the camera it was kept for.
    renders = [generator.generate(p, 12, 1) for p in (far[0], target_params, far[1])]
    for row, image in zip(manifest["samples"], selection.batch.images, strict=True):
        assert np.array_equal(image, renders[row["camera"]].images[row["pool_index"]])
    assert len(manifest["cameras"]) == 3


def test_pool_trials_must_be_positive(compose_run) -> None:  # type: ignore[no-untyped-def]
    from gen_loop.config.validate import check_run_config
    from gen_loop.errors import ConfigError

    cfg = compose_run(["selection=camera", "selection.pool_trials=0"])
    with pytest.raises(ConfigError, match=r"selection\.pool_trials"):
        check_run_config(cfg)
