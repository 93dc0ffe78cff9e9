"""Tests of the generator stage: determinism, labels, boxes after fisheye, sensor semantics in
RGB, parameter validation, the YOLO writer and the ``generate`` command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
import pytest
import yaml
from PIL import Image

from gen_loop.generator import (
    SENSOR_PARAMETERS,
    Batch,
    ProceduralGenerator,
    SensorModel,
    image_seeds,
)
from gen_loop.generator.scene import SceneSettings, boxes_from_masks, render_scene
from gen_loop.generator.yolo_io import read_yolo_labels, write_yolo_dataset

if TYPE_CHECKING:
    from collections.abc import Callable

    from gen_loop.generator import ParamValue

    Render = Callable[..., np.ndarray]

SIZE = 96
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def gen() -> ProceduralGenerator:
    return ProceduralGenerator(width=SIZE, height=SIZE)


def _sensor(**overrides: ParamValue) -> SensorModel:
    """A camera with every sensor parameter at its default except ``overrides``."""
    params: dict[str, ParamValue] = {s.name: s.default for s in SENSOR_PARAMETERS}
    params.update(overrides)
    return SensorModel(params)


def _extent(on: np.ndarray) -> tuple[int, int, int, int]:
    """``(x0, y0, x1, y1)`` of the True pixels, exclusive ends (the boxes_from_masks rule)."""
    ys, xs = np.flatnonzero(on.any(axis=1)), np.flatnonzero(on.any(axis=0))
    assert len(xs), "expected some pixels"
    return int(xs[0]), int(ys[0]), int(xs[-1]) + 1, int(ys[-1]) + 1


def _pixel_box(row: np.ndarray, w: int, h: int) -> np.ndarray:
    """A YOLO row ``cls cx cy bw bh`` as pixel edges ``(x0, y0, x1, y1)``."""
    _, cx, cy, bw, bh = row
    return np.array([(cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h])


# --- determinism -------------------------------------------------------------------------------


def test_same_params_and_seed_give_identical_batches(gen: ProceduralGenerator) -> None:
    params = {"fisheye": 0.4, "noise_std": 0.05, "color_temp_k": 5000.0}
    a, b = gen.generate(params, 4, seed=7), gen.generate(params, 4, seed=7)
    np.testing.assert_array_equal(a.images, b.images)
    assert len(a.labels) == len(b.labels) == 4
    for la, lb in zip(a.labels, b.labels, strict=True):
        np.testing.assert_array_equal(la, lb)
    assert a.seeds == b.seeds == image_seeds(7, 4)


def test_different_seed_gives_different_images(gen: ProceduralGenerator) -> None:
    a, b = gen.generate({}, 4, seed=1), gen.generate({}, 4, seed=2)
    for ia, ib in zip(a.images, b.images, strict=True):
        assert not np.array_equal(ia, ib)


@pytest.mark.parametrize("k", [1, 3, 5])
def test_first_k_images_do_not_depend_on_n(gen: ProceduralGenerator, k: int) -> None:
    params = {"noise_std": 0.05, "fisheye": 0.3}
    full, prefix = gen.generate(params, 8, seed=11), gen.generate(params, k, seed=11)
    np.testing.assert_array_equal(full.images[:k], prefix.images)
    for lf, lp in zip(full.labels[:k], prefix.labels, strict=True):
        np.testing.assert_array_equal(lf, lp)
    assert full.seeds[:k] == prefix.seeds


def test_image_seeds_contract() -> None:
    seeds = image_seeds(3, 16)
    assert len(set(seeds)) == 16  # every image gets its own scene
    assert image_seeds(3, 5) == seeds[:5]
    assert image_seeds(4, 16) != seeds
    assert all(isinstance(s, int) and s >= 0 for s in seeds)


def test_image_is_reproduced_from_its_seed_alone(gen: ProceduralGenerator) -> None:
    """Image i is ``render_scene`` + camera with seed ``seeds[i]``: nothing else feeds it."""
    params = {"fisheye": 0.7, "noise_std": 0.03, "vignetting": 0.4}
    batch = gen.generate(params, 3, seed=21)
    resolved = gen.resolve_params(params)
    settings = SceneSettings(width=SIZE, height=SIZE)
    sensor = SensorModel(resolved)
    for i, image_seed in enumerate(batch.seeds):
        scene = render_scene(settings, np.random.default_rng(image_seed))
        image, masks = sensor.apply(scene.image, scene.masks, image_seed)
        np.testing.assert_array_equal(batch.images[i], image)
        np.testing.assert_array_equal(batch.labels[i], boxes_from_masks(masks, scene.classes))


def test_scene_cache_changes_no_image(gen: ProceduralGenerator) -> None:
    """Cached scenes (a hit with another camera, a prefix, a repeat) give the uncached batch."""
    cameras = [
        {"fisheye": 0.6, "vignetting": 0.5, "noise_std": 0.05, "color_temp_k": 4300.0},
        {"exposure_ev": -1.0, "blur_sigma": 1.5, "red_std_scale": 0.6, "contrast": 1.3},
        {"fisheye": 0.6, "vignetting": 0.5, "noise_std": 0.05, "color_temp_k": 4300.0},
        {"sun_elevation": 10.0, "weather": "fog"},  # other scene settings: other scenes
    ]
    cached = ProceduralGenerator(SIZE, SIZE)
    for params in cameras:
        for n in (5, 3):
            got = cached.generate(params, n, seed=13)
            want = ProceduralGenerator(SIZE, SIZE, scene_cache_mb=0).generate(params, n, 13)
            np.testing.assert_array_equal(got.images, want.images)
            for lg, lw in zip(got.labels, want.labels, strict=True):
                np.testing.assert_array_equal(lg, lw)
    assert len(cached._scenes) == 10  # 5 scenes x 2 scene settings


def test_scene_cache_stays_within_its_budget() -> None:
    from gen_loop.generator._scene_cache import SceneCache

    scene_bytes = SIZE * SIZE * 3 * 4  # the float image alone is a lower bound
    gen = ProceduralGenerator(SIZE, SIZE, scene_cache_mb=3.5 * scene_bytes / 2**20)
    gen.generate({}, 8, seed=1)
    assert 1 <= len(gen._scenes) <= 3
    cache = gen._scenes
    assert isinstance(cache, SceneCache) and cache._bytes <= cache.max_bytes
    last = gen.generate({}, 8, seed=1).seeds[-1]  # the most recent scene is kept
    assert any(key[1] == last for key in cache._scenes)


def test_colour_parameters_keep_the_scene(gen: ProceduralGenerator) -> None:
    """Common random numbers: non-geometric camera changes give the same objects and boxes."""
    base = gen.generate({}, 6, seed=4)
    other = gen.generate(
        {"color_temp_k": 4000.0, "exposure_ev": 1.0, "noise_std": 0.1, "saturation": 0.2}, 6, 4
    )
    assert not np.array_equal(base.images, other.images)
    for lb, lo in zip(base.labels, other.labels, strict=True):
        np.testing.assert_array_equal(lb, lo)


# --- labels ------------------------------------------------------------------------------------


@pytest.mark.parametrize("fisheye", [0.0, 0.7])
def test_labels_are_valid_yolo_rows(gen: ProceduralGenerator, fisheye: float) -> None:
    batch = gen.generate({"fisheye": fisheye}, 32, seed=123)
    assert batch.images.shape == (32, SIZE, SIZE, 3)
    assert batch.images.dtype == np.uint8
    rows = np.concatenate(batch.labels)
    assert all(lab.ndim == 2 and lab.shape[1] == 5 for lab in batch.labels)
    assert rows.dtype == np.float32
    cls, cx, cy, w, h = rows.T
    assert set(np.unique(cls).tolist()) == {0.0, 1.0, 2.0}  # every class appears
    assert np.all(cls == np.round(cls))
    assert np.all((cx > 0) & (cx < 1) & (cy > 0) & (cy < 1))
    assert np.all((w > 0) & (w <= 1) & (h > 0) & (h <= 1))
    eps = 1e-6
    assert np.all(cx - w / 2 >= -eps) and np.all(cx + w / 2 <= 1 + eps)
    assert np.all(cy - h / 2 >= -eps) and np.all(cy + h / 2 <= 1 + eps)
    # Edges sit on pixel boundaries and boxes are at least 4 px across (tiny masks are dropped).
    edges = np.stack([_pixel_box(r, SIZE, SIZE) for r in rows])
    np.testing.assert_allclose(edges, np.round(edges), atol=1e-3)
    assert np.all(w * SIZE >= 4 - 1e-3) and np.all(h * SIZE >= 4 - 1e-3)
    assert batch.class_names == ("car", "truck", "pedestrian")


def test_boxes_from_masks_is_tight_on_known_masks() -> None:
    masks = np.zeros((3, 40, 50), np.uint8)
    masks[0, 5:15, 10:30] = 1  # 20 x 10 rectangle
    masks[1, 0:2, 0:2] = 1  # 2 x 2: too small, dropped
    masks[2, 30:40, 44:50] = 1  # touches the bottom-right border
    masks[2, 20, 40] = 1  # one stray pixel widens the box
    boxes = boxes_from_masks(masks, np.array([2, 0, 1]))
    assert boxes.shape == (2, 5)
    np.testing.assert_allclose(boxes[0], [2, 20 / 50, 10 / 40, 20 / 50, 10 / 40], atol=1e-6)
    np.testing.assert_allclose(boxes[1], [1, 45 / 50, 30 / 40, 10 / 50, 20 / 40], atol=1e-6)
    assert boxes_from_masks(np.zeros((0, 40, 50), np.uint8), np.zeros(0)).shape == (0, 5)


# --- boxes stay tight after fisheye -------------------------------------------------------------


def _fisheye_forward(
    x: np.ndarray, y: np.ndarray, k: float, w: int, h: int
) -> tuple[np.ndarray, np.ndarray]:
    """Where input pixel positions land under the fisheye model r_src = r (1 + k (r/R)^2).

    The documented albumentations model maps each output radius r to the source radius above
    (centre ``(w/2, h/2)``, R the centre-to-corner distance); this inverts it by Newton's method,
    independently of the library's maps.
    """
    cx, cy = w / 2, h / 2
    big_r = np.hypot(max(cx, w - cx), max(cy, h - cy))
    dx, dy = x - cx, y - cy
    r_src = np.hypot(dx, dy)
    r = r_src.copy()
    for _ in range(50):
        r -= (r + k * r**3 / big_r**2 - r_src) / (1 + 3 * k * r**2 / big_r**2)
    scale = np.divide(r, r_src, out=np.ones_like(r), where=r_src > 0)
    return cx + dx * scale, cy + dy * scale


def _rectangle_outline(x0: float, y0: float, x1: float, y1: float, n: int = 400) -> np.ndarray:
    t = np.linspace(0.0, 1.0, n)
    xs = np.concatenate([x0 + (x1 - x0) * t, np.full(n, x1), x1 - (x1 - x0) * t, np.full(n, x0)])
    ys = np.concatenate([np.full(n, y0), y0 + (y1 - y0) * t, np.full(n, y1), y1 - (y1 - y0) * t])
    return np.stack([xs, ys])


@pytest.mark.parametrize(
    ("rect", "far_edge"),
    [((90, 121, 10, 119), 2), ((10, 119, 90, 121), 3), ((7, 38, 10, 119), 0)],
    ids=["tall-right", "wide-bottom", "tall-left"],
)
def test_fisheye_box_matches_independent_model_not_corner_mapping(
    rect: tuple[int, int, int, int], far_edge: int
) -> None:
    """A long off-centre rectangle that straddles a centre line: its far edge bows outward under
    barrel distortion (the middle of the edge is nearer the centre, so it is pulled in less),
    so the tight box reaches past the box of the four mapped corners on that side."""
    w = h = 128
    k = 0.7
    x0, x1, y0, y1 = rect  # pixel indices [x0, x1), [y0, y1)
    masks = np.zeros((1, h, w), np.uint8)
    masks[0, y0:y1, x0:x1] = 1
    image = np.zeros((h, w, 3), np.float32)
    _, moved = _sensor(fisheye=k, noise_std=0.0).apply(image, masks, seed=0)
    box = _pixel_box(boxes_from_masks(moved, np.array([0]))[0], w, h)

    # Pixel centres sit at integer indices, so the region spans index - 0.5 .. index + 0.5;
    # the box convention makes the right/bottom edge the last index + 1.
    region = np.array([x0 - 0.5, y0 - 0.5, x1 - 0.5, y1 - 0.5])
    ox, oy = _fisheye_forward(*_rectangle_outline(*region), k, w, h)
    tight = np.array([ox.min(), oy.min(), ox.max(), oy.max()]) + 0.5
    cx, cy = _fisheye_forward(region[[0, 2, 2, 0]], region[[1, 1, 3, 3]], k, w, h)
    corners = np.array([cx.min(), cy.min(), cx.max(), cy.max()]) + 0.5

    np.testing.assert_allclose(box, tight, atol=1.5)
    assert np.all(np.abs(box - np.array([x0, y0, x1, y1])) > 3)  # the lens moved every edge
    outward = 1 if far_edge >= 2 else -1
    assert outward * (tight[far_edge] - corners[far_edge]) > 3
    assert outward * (box[far_edge] - corners[far_edge]) > 2.5


@pytest.mark.parametrize("scene_seed", [0, 1, 2, 3])
def test_scene_boxes_tight_after_fisheye(scene_seed: int) -> None:
    """Each object painted alone in a pure colour goes through the same camera as the scene;
    its box from the moved mask must match the painted pixels' extent."""
    w = h = 128
    scene = render_scene(SceneSettings(width=w, height=h), np.random.default_rng(scene_seed))
    assert len(scene.masks) >= 1
    plain = boxes_from_masks(scene.masks, scene.classes)
    camera = {"fisheye": 0.7, "vignetting": 0.5, "blur_sigma": 0.0, "noise_std": 0.0}
    image, moved = _sensor(**camera).apply(scene.image, scene.masks, scene_seed)
    assert image.shape == (h, w, 3) and moved.shape == scene.masks.shape
    boxes = boxes_from_masks(moved, scene.classes)
    assert len(boxes) == len(plain)  # objects are big enough to survive the lens at 128 px

    moved_any = False
    for k, mask in enumerate(scene.masks):
        painted = np.zeros((h, w, 3), np.float32)
        painted[mask > 0] = (0.0, 1.0, 0.0)  # pure green: the illuminant leaves green alone
        out, _ = _sensor(**camera).apply(painted, scene.masks[:0], scene_seed)
        assert out[..., 0].max() == 0 and out[..., 2].max() == 0  # no colour leaked in
        green = out[..., 1].astype(np.float32)
        # Half intensity: the image is resampled bilinearly, the mask by nearest neighbour.
        truth = np.array(_extent(green >= 0.5 * green.max()))
        got = _pixel_box(boxes[k], w, h)
        np.testing.assert_allclose(got, truth, atol=1.01, err_msg=f"object {k}")
        before = _pixel_box(plain[k], w, h)
        moved_any |= bool(np.abs(got - before).max() >= 2)
    assert moved_any  # the distortion changed the boxes


def test_no_fisheye_leaves_masks_alone() -> None:
    scene = render_scene(SceneSettings(width=96, height=96), np.random.default_rng(5))
    _, moved = _sensor(vignetting=0.6, blur_sigma=1.5, exposure_ev=1.0).apply(
        scene.image, scene.masks, 5
    )
    np.testing.assert_array_equal(moved, scene.masks)


def test_fisheye_pulls_boxes_towards_the_centre(gen: ProceduralGenerator) -> None:
    """Barrel distortion (k > 0) shrinks the scene towards the centre: boxes get smaller and
    their centres move inward, image by image, with the same scenes."""
    plain, bent = gen.generate({}, 12, seed=9), gen.generate({"fisheye": 0.7}, 12, seed=9)
    area_plain = sum(float((lab[:, 3] * lab[:, 4]).sum()) for lab in plain.labels)
    area_bent = sum(float((lab[:, 3] * lab[:, 4]).sum()) for lab in bent.labels)
    assert area_bent < 0.9 * area_plain
    spread_plain = np.concatenate([np.abs(lab[:, 1:3] - 0.5) for lab in plain.labels]).mean()
    spread_bent = np.concatenate([np.abs(lab[:, 1:3] - 0.5) for lab in bent.labels]).mean()
    assert spread_bent < spread_plain


# --- sensor semantics in RGB (channel 0 is red) ------------------------------------------------


@pytest.fixture(scope="module")
def images_for(gen: ProceduralGenerator) -> Render:
    """``images_for(**params)``: the same 6 scenes as float arrays, cached per parameter set."""
    cache: dict[tuple, np.ndarray] = {}

    def render(**params: ParamValue) -> np.ndarray:
        key = tuple(sorted(params.items()))
        if key not in cache:
            cache[key] = gen.generate(params, 6, seed=31).images.astype(np.float64)
        return cache[key]

    return render


def _channel_means(images: np.ndarray) -> np.ndarray:
    return images.mean(axis=(0, 1, 2))


def _channel_stds(images: np.ndarray) -> np.ndarray:
    return images.std(axis=(1, 2)).mean(axis=0)  # per image, then averaged


def test_low_colour_temperature_is_red_high_is_blue(images_for: Render) -> None:
    ratios = {}
    for kelvin in (3500.0, 4000.0, 6500.0, 10000.0):
        r, g, b = _channel_means(images_for(color_temp_k=kelvin))
        ratios[kelvin] = (r / b, r / g, b / g)
    assert ratios[3500.0][0] > ratios[4000.0][0] > ratios[6500.0][0] > ratios[10000.0][0]
    assert ratios[3500.0][1] > ratios[10000.0][1]  # red up against green when warm
    assert ratios[3500.0][2] < ratios[10000.0][2]  # blue up against green when cold
    assert ratios[10000.0][0] < 1.0 < ratios[4000.0][0]


def test_red_std_scale_acts_on_channel_zero_only(images_for: Render) -> None:
    base = _channel_stds(images_for(red_std_scale=1.0))
    half = _channel_stds(images_for(red_std_scale=0.5))
    assert half[0] / base[0] == pytest.approx(0.5, abs=0.06)
    np.testing.assert_allclose(half[1:], base[1:], rtol=0.01)
    # the red mean stays where it was (the scale acts around the mean)
    assert _channel_means(images_for(red_std_scale=0.5))[0] == pytest.approx(
        _channel_means(images_for(red_std_scale=1.0))[0], abs=2.0
    )


def test_red_gain_raises_channel_zero_mean_only(images_for: Render) -> None:
    base = _channel_means(images_for())
    gained = _channel_means(images_for(red_gain=1.3))
    assert 1.2 < gained[0] / base[0] <= 1.31
    np.testing.assert_allclose(gained[1:], base[1:], atol=0.5)


def test_exposure_raises_brightness(images_for: Render) -> None:
    dark = images_for(exposure_ev=-1.0).mean()
    base = images_for().mean()
    bright = images_for(exposure_ev=1.0).mean()
    assert bright > 1.5 * base
    assert dark < 0.6 * base


def test_zero_saturation_is_grey(images_for: Render) -> None:
    colour = images_for()
    assert np.abs(colour[..., 0] - colour[..., 2]).max() > 20  # not grey to start with
    grey = images_for(saturation=0.0)
    assert np.abs(grey[..., 0] - grey[..., 1]).max() <= 1
    assert np.abs(grey[..., 2] - grey[..., 1]).max() <= 1


def test_noise_raises_high_frequency_variance(images_for: Render) -> None:
    def high_freq(images: np.ndarray) -> float:
        return float(np.var(np.diff(images, axis=2)))

    clean = high_freq(images_for(noise_std=0.0))
    assert high_freq(images_for(noise_std=0.05)) > 1.3 * clean
    assert high_freq(images_for(noise_std=0.1)) > high_freq(images_for(noise_std=0.05))


def test_sensor_noise_follows_the_seed_it_is_given() -> None:
    """Same seed, same noise (even after other calls); another seed, other noise."""
    scene = render_scene(SceneSettings(width=SIZE, height=SIZE), np.random.default_rng(0))
    sensor = _sensor(noise_std=0.1)
    a, _ = sensor.apply(scene.image, scene.masks, 1)
    b, _ = sensor.apply(scene.image, scene.masks, 2)
    assert not np.array_equal(a, b)
    np.testing.assert_array_equal(a, sensor.apply(scene.image, scene.masks, 1)[0])


def test_vignetting_darkens_corners_not_centre(images_for: Render) -> None:
    def corners(x: np.ndarray) -> float:
        c = 8
        return float(
            np.concatenate(
                [x[:, :c, :c], x[:, :c, -c:], x[:, -c:, :c], x[:, -c:, -c:]], axis=1
            ).mean()
        )

    def centre(x: np.ndarray) -> float:
        m = SIZE // 2
        return float(x[:, m - 4 : m + 4, m - 4 : m + 4].mean())

    plain, dark = images_for(vignetting=0.0), images_for(vignetting=0.8)
    assert corners(dark) < 0.5 * corners(plain)
    assert centre(dark) == pytest.approx(centre(plain), rel=0.03)


def test_fog_brightens_the_far_region_and_lowers_contrast(images_for: Render) -> None:
    clear, foggy = images_for(weather="clear", fog=0.8), images_for(weather="fog", fog=0.8)
    # The horizon lies between 36 % and 50 % of the height: rows just below it are far ground.
    far = slice(SIZE // 2, int(SIZE * 0.6))
    near = slice(int(SIZE * 0.9), SIZE)
    far_gain = foggy[:, far].mean() / clear[:, far].mean()
    near_gain = foggy[:, near].mean() / clear[:, near].mean()
    assert far_gain > 1.3
    assert far_gain > near_gain
    band = slice(int(SIZE * 0.3), int(SIZE * 0.6))
    assert foggy[:, band].mean(-1).std(axis=(1, 2)).mean() < (
        0.6 * clear[:, band].mean(-1).std(axis=(1, 2)).mean()
    )


# --- parameter validation ---------------------------------------------------------------------


def test_unknown_parameter_is_a_key_error_naming_it(gen: ProceduralGenerator) -> None:
    with pytest.raises(KeyError, match="fishey"):
        gen.generate({"fishey": 0.5}, 1, 0)


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("fisheye", 1.5, r"fisheye=1.5 is outside its range \[0, 1\]"),
        ("color_temp_k", 2000.0, r"color_temp_k=2000 is outside its range \[3500, 12000\] K"),
        ("noise_std", -0.01, r"noise_std.*\[0, 0.15\]"),
        ("fog", "thick", r"fog='thick' must be a number"),
        ("exposure_ev", True, r"exposure_ev=True must be a number"),
    ],
)
def test_bad_parameter_value_is_a_value_error_naming_the_range(
    gen: ProceduralGenerator, name: str, value: ParamValue, fragment: str
) -> None:
    with pytest.raises(ValueError, match=fragment):
        gen.generate({name: value}, 1, 0)


def test_resolve_params_fills_defaults_and_keeps_range_ends(gen: ProceduralGenerator) -> None:
    resolved = gen.resolve_params({"fisheye": 1, "vignetting": 0.0})
    assert set(resolved) == set(gen.parameters)
    assert resolved["fisheye"] == 1.0 and isinstance(resolved["fisheye"], float)
    assert resolved["color_temp_k"] == gen.parameters["color_temp_k"].default
    assert gen.generate({"fisheye": 0.25}, 1, 0).params == gen.resolve_params({"fisheye": 0.25})


@pytest.mark.parametrize("n", [0, -3])
def test_n_below_one_is_rejected(gen: ProceduralGenerator, n: int) -> None:
    with pytest.raises(ValueError, match="n must be at least 1"):
        gen.generate({}, n, 0)


def test_tiny_image_size_is_rejected() -> None:
    with pytest.raises(ValueError, match="at least 32x32"):
        ProceduralGenerator(width=16, height=64)


@pytest.mark.parametrize(
    "images",
    [
        np.zeros((2, 8, 8, 3), np.float32),  # wrong dtype
        np.zeros((2, 8, 8), np.uint8),  # no channel axis
        np.zeros((2, 8, 8, 4), np.uint8),  # RGBA
        np.zeros((8, 8, 3), np.uint8),  # no batch axis
    ],
)
def test_batch_rejects_bad_images(images: np.ndarray) -> None:
    with pytest.raises(ValueError, match="uint8"):
        Batch(images, (np.zeros((0, 5), np.float32),) * 2, ("car",), {})


def test_batch_rejects_label_count_mismatch() -> None:
    with pytest.raises(ValueError, match="2 images but 1 label arrays"):
        Batch(np.zeros((2, 8, 8, 3), np.uint8), (np.zeros((0, 5), np.float32),), ("car",), {})


def test_batch_subset_keeps_order(gen: ProceduralGenerator) -> None:
    batch = gen.generate({}, 4, seed=3)
    sub = batch.subset([2, 0])
    np.testing.assert_array_equal(sub.images, batch.images[[2, 0]])
    assert sub.seeds == (batch.seeds[2], batch.seeds[0])
    np.testing.assert_array_equal(sub.labels[0], batch.labels[2])
    assert len(sub) == 2


# --- YOLO dataset writer ----------------------------------------------------------------------


def _read_rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def test_write_yolo_dataset_round_trip(gen: ProceduralGenerator, tmp_path: Path) -> None:
    batch = gen.generate({"fisheye": 0.5, "noise_std": 0.05}, 5, seed=2)
    data_yaml = write_yolo_dataset(batch, tmp_path / "ds")
    assert data_yaml == tmp_path / "ds" / "data.yaml"

    image_files = sorted((tmp_path / "ds" / "images").glob("*.png"))
    assert [p.stem for p in image_files] == [f"img_{i:04d}" for i in range(5)]
    for i, path in enumerate(image_files):
        np.testing.assert_array_equal(_read_rgb(path), batch.images[i])  # PNG is lossless
    label_files = [tmp_path / "ds" / "labels" / f"{p.stem}.txt" for p in image_files]
    assert all(p.is_file() for p in label_files)
    for got, want in zip(read_yolo_labels(label_files), batch.labels, strict=True):
        assert got.shape == want.shape
        np.testing.assert_array_equal(got[:, 0], want[:, 0])
        np.testing.assert_allclose(got, want, atol=1e-5)

    data = yaml.safe_load(data_yaml.read_text())
    assert data["names"] == {0: "car", 1: "truck", 2: "pedestrian"}
    root = Path(data["path"])
    assert root.is_absolute() and root == (tmp_path / "ds").resolve()
    assert (root / data["train"]).is_dir() and (root / data["val"]).is_dir()
    assert len(list((root / data["train"]).glob("*.png"))) == 5

    recorded = json.loads((tmp_path / "ds" / "params.json").read_text())
    assert recorded["params"] == batch.params
    assert recorded["params"]["fisheye"] == 0.5
    assert recorded["seeds"] == list(batch.seeds)


def test_written_png_is_rgb_on_disk(tmp_path: Path) -> None:
    """Read back with PIL (RGB by definition), not the cv2 reader the writer mirrors."""
    images = np.zeros((1, 8, 8, 3), np.uint8)
    images[0, ..., 0] = 200  # pure red
    images[0, :4, :, 2] = 50
    batch = Batch(images, (np.zeros((0, 5), np.float32),), ("car",), {})
    write_yolo_dataset(batch, tmp_path)
    on_disk = np.asarray(Image.open(tmp_path / "images" / "img_0000.png").convert("RGB"))
    np.testing.assert_array_equal(on_disk, images[0])
    # An image without objects has an empty label file, read back as zero rows.
    assert (tmp_path / "labels" / "img_0000.txt").read_text() == ""
    assert read_yolo_labels([tmp_path / "labels" / "img_0000.txt"])[0].shape == (0, 5)
    assert read_yolo_labels([tmp_path / "labels" / "missing.txt"])[0].shape == (0, 5)


def test_write_yolo_dataset_with_val_split(gen: ProceduralGenerator, tmp_path: Path) -> None:
    train, val = gen.generate({}, 3, seed=0), gen.generate({}, 2, seed=1)
    data = yaml.safe_load(write_yolo_dataset(train, tmp_path, val=val, prefix="syn").read_text())
    assert (data["train"], data["val"]) == ("images/train", "images/val")
    for split, part in (("train", train), ("val", val)):
        images = sorted((tmp_path / "images" / split).glob("syn_*.png"))
        assert len(images) == len(part)
        labels = sorted((tmp_path / "labels" / split).glob("syn_*.txt"))
        assert [p.stem for p in labels] == [p.stem for p in images]
        for path, want in zip(images, part.images, strict=True):
            np.testing.assert_array_equal(_read_rgb(path), want)
        for got, want in zip(read_yolo_labels(labels), part.labels, strict=True):
            np.testing.assert_allclose(got, want, atol=1e-5)
    assert not list((tmp_path / "images").glob("*.png"))  # nothing outside the split folders


# --- the generate command ---------------------------------------------------------------------


def _run_generate(*overrides: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "NO_ALBUMENTATIONS_UPDATE": "1",
        "YOLO_OFFLINE": "1",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "PYTHONPATH": str(REPO),
    }
    return subprocess.run(
        [sys.executable, "-m", "gen_loop", "generate", *overrides],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.integration
def test_generate_command_writes_a_dataset(tmp_path: Path) -> None:
    out = tmp_path / "out"
    done = _run_generate(
        f"out={out}",
        "n=4",
        "generator.params.fisheye=0.5",
        "generator.width=64",
        "generator.height=64",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    images = sorted((out / "images").glob("*.png"))
    assert len(images) == 4
    assert all(cv2.imread(str(p)).shape == (64, 64, 3) for p in images)
    assert len(list((out / "labels").glob("*.txt"))) == 4
    params = json.loads((out / "params.json").read_text())["params"]
    assert params["fisheye"] == 0.5
    assert params["vignetting"] == 0.0  # defaults are recorded too
    assert yaml.safe_load((out / "data.yaml").read_text())["names"][2] == "pedestrian"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no stray Hydra folders


@pytest.mark.integration
def test_generate_command_rejects_out_of_range_param(tmp_path: Path) -> None:
    done = _run_generate(
        f"out={tmp_path / 'out'}", "n=2", "generator.params.fisheye=5", cwd=tmp_path
    )
    assert done.returncode == 2
    assert "generator.params.fisheye" in done.stderr
    assert "[0, 1]" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "out" / "images").exists()
