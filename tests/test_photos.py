"""The photograph sanity case (issue 14, part 4): the independent camera re-shooting a photo,
and the crops that make the source and target sets."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"


def _module(folder: str, name: str) -> ModuleType:
    sys.path.insert(0, str(EXPERIMENTS / folder))
    spec = importlib.util.spec_from_file_location(
        f"{folder}_{name}", EXPERIMENTS / folder / f"{name}.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def camera() -> ModuleType:
    return _module("mismatch", "camera")


@pytest.fixture(scope="module")
def photos() -> ModuleType:
    return _module("photos", "make_photos")


def test_a_grey_photo_comes_out_warm_and_barrel_distorted(camera: ModuleType) -> None:
    grey = np.full((64, 80, 3), 128, np.uint8)
    dashcam = camera.CAMERAS["dashcam_dusk"]  # white balance (1.25, 1, 0.7), k1 0.32
    frame = dashcam.film_image(grey, np.random.default_rng(0))
    assert frame.shape == grey.shape and frame.dtype == np.uint8
    centre = frame[24:40, 30:50].reshape(-1, 3).mean(axis=0)
    assert centre[0] > centre[1] + 10 > centre[2] + 20  # warm: red > green > blue
    for corner in (frame[:3, :3], frame[-3:, -3:]):  # sampled off the lens: black + noise
        assert corner.mean() < 0.2 * centre.mean()
    # the same photo and seed give the same frame; another seed other noise
    again = dashcam.film_image(grey, np.random.default_rng(0))
    np.testing.assert_array_equal(frame, again)
    assert not np.array_equal(frame, dashcam.film_image(grey, np.random.default_rng(1)))


def test_the_photo_path_is_the_scene_path_on_the_decoded_photo(camera: ModuleType) -> None:
    # film_image decodes sRGB to linear light and films it as film() films a scene's radiance
    rng = np.random.default_rng(3)
    photo = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    cctv = camera.CAMERAS["cctv_fog"]
    linear = camera._linear(photo.astype(np.float32) / 255.0)
    assert np.allclose(camera._srgb(linear), photo / 255.0, atol=1e-5)  # sRGB round trip
    np.testing.assert_array_equal(
        cctv.film_image(photo, np.random.default_rng(4)),
        cctv._film_linear(linear, np.random.default_rng(4)),
    )


def test_a_photo_that_is_not_uint8_rgb_is_refused(camera: ModuleType) -> None:
    dashcam = camera.CAMERAS["dashcam_dusk"]
    with pytest.raises(ValueError, match=r"uint8 \(H, W, 3\).*\(8, 8\)"):
        dashcam.film_image(np.zeros((8, 8), np.uint8), np.random.default_rng(0))
    with pytest.raises(ValueError, match="float32"):
        dashcam.film_image(np.zeros((8, 8, 3), np.float32), np.random.default_rng(0))


def test_crops_are_square_resized_and_differ(photos: ModuleType) -> None:
    photo = np.random.default_rng(0).integers(0, 256, (120, 200, 3), dtype=np.uint8)
    crops = photos.crops(photo, 5, 48, np.random.default_rng(1))
    assert [c.shape for c in crops] == [(48, 48, 3)] * 5
    assert len({c.tobytes() for c in crops}) == 5


def test_the_shipped_photographs_are_found(photos: ModuleType) -> None:
    found = photos.find_photos()
    # ultralytics and matplotlib are dependencies: their photographs are always there
    assert {
        "ultralytics:assets/bus.jpg",
        "matplotlib:mpl-data/sample_data/grace_hopper.jpg",
    } <= set(found)
    assert all(path.is_file() for path in found.values())
