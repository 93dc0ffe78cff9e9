"""Per-image properties: RGB channel order, colour temperature, noise, sharpness, vignetting."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from gen_loop.analysis.explain import property_effects, suggestions
from gen_loop.analysis.metadata import (
    PROPERTIES,
    image_properties,
    mccamy_cct,
    srgb_to_linear,
    srgb_to_xyz,
)
from gen_loop.generator import ProceduralGenerator


def _solid(rgb: tuple[int, int, int], size: int = 32) -> np.ndarray:
    return np.broadcast_to(np.array(rgb, np.uint8), (1, size, size, 3)).copy()


def test_pure_red_is_red() -> None:
    """An RGB image whose only non-zero channel is channel 0 is red, not blue."""
    props = image_properties(_solid((255, 0, 0)))
    assert props["r_mean"][0] == 255.0
    assert props["g_mean"][0] == 0.0
    assert props["b_mean"][0] == 0.0
    # A red channel that varies (left half red, right half black) has the red std.
    half = np.zeros((1, 32, 32, 3), np.uint8)
    half[0, :, :16, 0] = 255
    std = image_properties(half)
    assert std["r_std"][0] == pytest.approx(127.5)
    assert std["g_std"][0] == 0.0 and std["b_std"][0] == 0.0
    # The same pixels read as BGR would be blue: the properties must tell them apart.
    swapped = image_properties(half[..., ::-1].copy())
    assert swapped["r_std"][0] == 0.0 and swapped["b_std"][0] == pytest.approx(127.5)


def test_pure_red_read_from_a_file_is_red(tmp_path) -> None:
    """Through the real loader: OpenCV writes BGR, load_image_folder returns RGB."""
    from gen_loop.target import load_image_folder

    bgr = np.zeros((16, 16, 3), np.uint8)
    bgr[..., 2] = 255  # red in OpenCV's BGR order
    cv2.imwrite(str(tmp_path / "red.png"), bgr)
    images = load_image_folder(tmp_path, (16, 16)).images
    props = image_properties(images)
    assert props["r_mean"][0] == 255.0 and props["b_mean"][0] == 0.0
    assert props["color_temp_k"][0] < 3000  # red light is warm


@pytest.mark.parametrize(
    ("xy", "expected"),
    [
        ((0.31271, 0.32902), 6504.0),  # CIE D65
        ((0.44757, 0.40745), 2856.0),  # CIE illuminant A
        ((0.34567, 0.35850), 5003.0),  # CIE D50
    ],
)
def test_mccamy_matches_cie_reference_illuminants(
    xy: tuple[float, float], expected: float
) -> None:
    x, y = xy
    xyz = np.array([x / y, 1.0, (1 - x - y) / y])
    assert float(mccamy_cct(xyz)) == pytest.approx(expected, abs=6.0)


def test_srgb_white_is_d65_and_black_is_undefined() -> None:
    white = image_properties(_solid((255, 255, 255)))
    assert white["color_temp_k"][0] == pytest.approx(6504, abs=10)
    assert white["saturation"][0] == 0.0
    black = image_properties(_solid((0, 0, 0)))
    assert math.isnan(black["color_temp_k"][0])
    assert math.isnan(black["r_mean_rel"][0])


def test_srgb_transfer_function() -> None:
    assert srgb_to_linear(np.array([0.0, 1.0])).tolist() == [0.0, 1.0]
    assert float(srgb_to_linear(np.array(0.5))) == pytest.approx(0.21404, abs=1e-5)
    # linear white -> XYZ of D65 with Y = 1
    np.testing.assert_allclose(srgb_to_xyz(np.ones(3)), [0.9505, 1.0, 1.089], atol=1e-3)


def test_colour_temperature_follows_the_generator() -> None:
    generator = ProceduralGenerator(64, 64)
    batches = [generator.generate({"color_temp_k": k}, 8, 0) for k in (4000.0, 6500.0, 9000.0)]
    medians = [float(np.median(image_properties(b.images)["color_temp_k"])) for b in batches]
    assert medians[0] < medians[1] < medians[2]


def test_red_std_relative_follows_red_std_scale_only() -> None:
    generator = ProceduralGenerator(64, 64)

    def median(params: dict[str, float], name: str) -> float:
        return float(np.median(image_properties(generator.generate(params, 8, 0).images)[name]))

    base = median({}, "r_std_rel")
    assert median({"red_std_scale": 0.6}, "r_std_rel") < 0.9 * base
    assert median({"contrast": 1.4}, "r_std_rel") == pytest.approx(base, rel=0.05)


def test_noise_estimate_recovers_added_gaussian_noise() -> None:
    rng = np.random.default_rng(0)
    flat = np.full((1, 128, 128, 3), 128.0)
    noisy = np.clip(flat + rng.normal(scale=8.0, size=(1, 128, 128, 1)), 0, 255).astype(np.uint8)
    assert image_properties(noisy)["noise"][0] == pytest.approx(8.0, rel=0.15)
    assert image_properties(flat.astype(np.uint8))["noise"][0] == 0.0


def test_sharpness_edges_and_vignetting_react_as_named() -> None:
    generator = ProceduralGenerator(96, 96)
    sharp = image_properties(generator.generate({}, 6, 0).images)
    blurred = image_properties(generator.generate({"blur_sigma": 2.0}, 6, 0).images)
    vignetted = image_properties(generator.generate({"vignetting": 0.8}, 6, 0).images)
    assert np.all(blurred["sharpness"] < sharp["sharpness"])
    assert np.all(blurred["edge_density"] <= sharp["edge_density"])
    assert np.all(vignetted["vignetting"] > sharp["vignetting"] + 0.2)
    flat = image_properties(_solid((90, 90, 90)))
    assert flat["vignetting"][0] == 0.0 and flat["rms_contrast"][0] == 0.0


def test_every_property_is_computed_for_every_image() -> None:
    images = np.random.default_rng(1).integers(0, 256, size=(3, 20, 24, 3), dtype=np.uint8)
    props = image_properties(images)
    assert list(props) == [p.name for p in PROPERTIES]
    assert all(v.shape == (3,) for v in props.values())
    with pytest.raises(ValueError, match="uint8 RGB"):
        image_properties(images[..., :2])


def test_ranking_and_suggested_direction() -> None:
    generator = ProceduralGenerator(64, 64)
    origin = image_properties(generator.generate({}, 24, 0).images)
    target = image_properties(generator.generate({"color_temp_k": 4300.0}, 24, 100).images)
    rng = np.random.default_rng(0)
    effects = property_effects(origin, target, rng.random(24), rng.random(24), ("gen", "target"))
    assert [e.rank for e in effects] == list(range(1, len(effects) + 1))
    assert effects[0].ks >= effects[-1].ks
    names = [e.name for e in effects]
    assert names.index("color_temp_k") < 4
    hints = {h.parameter: h for h in suggestions(effects)}
    assert hints["color_temp_k"].direction == "lower"
    assert "lower `color_temp_k`" in hints["color_temp_k"].text


def test_no_suggestion_between_samples_of_one_camera() -> None:
    generator = ProceduralGenerator(64, 64)
    a = image_properties(generator.generate({}, 24, 0).images)
    b = image_properties(generator.generate({}, 24, 500).images)
    rng = np.random.default_rng(0)
    effects = property_effects(a, b, rng.random(24), rng.random(24), ("a", "b"))
    assert suggestions(effects) == []
