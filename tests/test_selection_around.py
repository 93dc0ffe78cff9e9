"""Cameras around the found one (selection=jitter) and drawn uniformly (the randomised
control): their draws, the block rendering and the selections they make."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from gen_loop.config.schema import ParamRangeConfig, SelectionConfig
from gen_loop.embedder.weights import shipped_base_weights
from gen_loop.embedder.yolo import YoloEmbedder
from gen_loop.generator.procedural import ProceduralGenerator
from gen_loop.score import CentroidScorer
from gen_loop.search.refine import Box
from gen_loop.search.space import build_space
from gen_loop.selection import randomised_selection, select_pool
from gen_loop.selection.around import (
    camera_spread,
    jittered_cameras,
    render_blocks,
    uniform_point,
)

SPACE = {
    "color_temp_k": ParamRangeConfig(low=3500, high=10000),
    "exposure_ev": ParamRangeConfig(low=-1.5, high=1.5),
    "fisheye": ParamRangeConfig(low=0.0, high=0.9),
}
LOW = np.array([3500, -1.5, 0.0])
HIGH = np.array([10000, 1.5, 0.9])


@pytest.fixture(scope="module")
def generator() -> ProceduralGenerator:
    return ProceduralGenerator(64, 64)


def test_uniform_points_cover_the_space_and_repeat(generator: ProceduralGenerator) -> None:
    space = build_space(SPACE, generator.parameters)
    draws = [uniform_point(space, np.random.default_rng([3, 14])) for _ in range(2)]
    assert draws[0] == draws[1]
    rng = np.random.default_rng(0)
    values = np.array([list(uniform_point(space, rng).values()) for _ in range(400)])
    assert (values >= LOW).all() and (values <= HIGH).all()
    centre = (values.mean(axis=0) - LOW) / (HIGH - LOW)
    assert np.allclose(centre, 0.5, atol=0.06)


def test_spread_is_the_larger_of_jitter_and_the_best_trials_spread(
    generator: ProceduralGenerator,
) -> None:
    box = Box.of(build_space(SPACE, generator.parameters).distributions, set())
    # The best trials agree on colour temperature and exposure, disagree on fisheye.
    best = [{"color_temp_k": 5000.0, "exposure_ev": 0.0, "fisheye": f} for f in (0.0, 0.45, 0.9)]
    spread = camera_spread(best, box, 0.05)
    assert spread[:2].tolist() == [0.05, 0.05]
    assert spread[2] == pytest.approx(np.std([0.0, 0.5, 1.0]))
    assert camera_spread([], box, 0.1).tolist() == [0.1, 0.1, 0.1]


def test_jittered_cameras_stay_in_range_about_the_best(generator: ProceduralGenerator) -> None:
    box = Box.of(build_space(SPACE, generator.parameters).distributions, set())
    best = {"color_temp_k": 4000.0, "exposure_ev": 1.4, "fisheye": 0.45, "red_std_scale": 0.7}
    spread = np.array([0.05, 0.05, 0.0])
    cameras = jittered_cameras(best, spread, box, 500, np.random.default_rng(1))
    values = np.array([[c[n] for n in box.names] for c in cameras])
    assert (values >= LOW).all() and (values <= HIGH).all()
    assert all(c["red_std_scale"] == 0.7 for c in cameras)  # not searched: as in the best
    assert np.all(values[:, 2] == pytest.approx(0.45))  # no spread: no jitter
    unit = (values - LOW) / (HIGH - LOW)
    # Colour temperature: away from its bounds, a plain normal of 5 % of the range.
    assert np.mean(unit[:, 0]) == pytest.approx((4000 - 3500) / 6500, abs=0.01)
    assert np.std(unit[:, 0]) == pytest.approx(0.05, rel=0.15)
    # Exposure 1.4 EV sits 1.7 % below its bound: reflected, not piled up on it.
    assert np.mean(values[:, 1] == 1.5) < 0.01
    assert np.mean(values[:, 1] > 1.4) > 0.25


def test_render_blocks_renders_each_scene_under_its_blocks_camera() -> None:
    generator = ProceduralGenerator(48, 48, scene_cache_mb=0)
    cameras = [{"color_temp_k": 4000.0}, {"color_temp_k": 9000.0}, {"exposure_ev": 1.0}]
    batch, camera = render_blocks(generator, cameras, 7, 5)
    assert camera.tolist() == [0, 0, 1, 1, 1, 2, 2]
    for j in range(7):
        alone = generator.generate(cameras[camera[j]], 7, 5)
        np.testing.assert_array_equal(batch.images[j], alone.images[j])
        np.testing.assert_array_equal(batch.labels[j], alone.labels[j])
        assert batch.seeds[j] == alone.seeds[j]
    with pytest.raises(ValueError, match="1 to 2 cameras"):
        render_blocks(generator, cameras, 2, 5)


@pytest.mark.slow
def test_jitter_and_randomised_selections_keep_every_scene(tmp_path: Path) -> None:
    generator = ProceduralGenerator(96, 96)
    space = build_space(SPACE, generator.parameters)
    best = generator.resolve_params({"color_temp_k": 4300.0, "fisheye": 0.55})
    embedder = YoloEmbedder("yolov7-tiny", shipped_base_weights(), [14], 96, device="cpu")
    target = generator.generate(best, 16, seed=777)
    scorer = CentroidScorer("zscore_l2").fit(embedder.embed(target.images))
    cfg = SelectionConfig(pool_size=12, pool_seed=1, method="jitter", n_cameras=4, pool_trials=2)
    near = {**best, "color_temp_k": 4400.0}
    jitter = select_pool(
        generator, embedder, scorer, best, cfg, 0.25, tmp_path / "j", [near], space
    )
    control = randomised_selection(
        generator,
        embedder,
        scorer,
        space,
        generator.default_params(),
        cfg,
        8,
        0.25,
        tmp_path / "r",
    )
    for selection, n in ((jitter, 12), (control, 8)):
        manifest = json.loads(selection.manifest.read_text())
        assert sorted(row["pool_index"] for row in manifest["samples"]) == list(range(n))
        assert len(manifest["cameras"]) == 4
        assert np.all(np.diff(selection.distances) >= 0)
    jittered = json.loads(jitter.manifest.read_text())["cameras"]
    assert all(abs(c["color_temp_k"] - 4300) < 0.3 * 6500 for c in jittered)
    assert all(c["red_std_scale"] == best["red_std_scale"] for c in jittered)
    # The randomised cameras do not depend on the best camera; the jittered ones sit about it.
    assert jitter.distances.mean() < control.distances.mean()
    with pytest.raises(ValueError, match="search space"):
        select_pool(generator, embedder, scorer, best, cfg, 0.25, tmp_path / "x", [near])


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("selection.n_cameras=0", "selection.n_cameras"),
        ("selection.n_cameras=65", "selection.n_cameras"),
        ("selection.jitter=-0.1", "selection.jitter"),
        ("selection.jitter=0.7", "selection.jitter"),
    ],
)
def test_bad_jitter_settings_name_their_key(compose_run, override: str, key: str) -> None:  # type: ignore[no-untyped-def]
    from gen_loop.config.validate import check_run_config
    from gen_loop.errors import ConfigError

    cfg = compose_run(["selection=jitter", override])
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        check_run_config(cfg)
