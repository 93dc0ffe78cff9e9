"""Per-image properties ("metadata") computed from RGB pixels, the way a person reads a camera.

Every function takes ``(N, H, W, 3)`` uint8 images in **RGB** order (what
:func:`gen_loop.target.load_image_folder` and the generators return) and channel 0 is red. The
original study read RGB images as if they were BGR, so its "red std" was the blue channel; the
tests pin the channel order with a pure-red image.

Definitions (intensities on the 0-255 scale unless stated):

- ``r_mean``, ``g_mean``, ``b_mean``, ``r_std``, ``g_std``, ``b_std``: mean and population std of
  each channel over the image.
- ``r_mean_rel``: ``r_mean / brightness``; ``r_std_rel``: ``r_std / (255 * rms_contrast)``, the
  red channel's mean and spread relative to the whole image's, so that exposure, contrast and a
  fisheye's black border (which move every channel) cancel and the red response is left. NaN
  where the denominator is 0.
- ``brightness``: mean luma ``Y' = 0.299 R + 0.587 G + 0.114 B`` (ITU-R BT.601, what OpenCV's
  RGB-to-gray uses).
- ``rms_contrast``: std of the luma scaled to [0, 1] (RMS contrast).
- ``saturation``: mean HSV saturation ``(max - min) / max`` per pixel, in [0, 1] (0 where max=0).
- ``color_temp_k``: correlated colour temperature in kelvin by McCamy's (1992) cubic, from the
  chromaticity ``xy`` of the image's mean colour: pixels are linearised with the sRGB transfer
  function, averaged in linear light, and converted to CIE XYZ with the sRGB (D65) matrix.
  NaN for an all-black image. McCamy's formula is accurate to a few kelvin between 2000 K and
  12500 K near the Planckian locus; far from it (a saturated colour) the number is only a label.
- ``sharpness``: variance of the 3x3 Laplacian of the luma.
- ``noise``: Immerkaer's (1996) fast estimate of the std of additive Gaussian noise in the luma,
  from the absolute response to the 3x3 mask ``[[1,-2,1],[-2,4,-2],[1,-2,1]]``.
- ``edge_density``: fraction of pixels marked by the Canny detector (thresholds 100, 200) on the
  8-bit luma.
- ``vignetting``: ``1 - corners / centre``: 1 minus the mean luma of the four corner squares
  (side 1/6 of the shorter image side) over the mean luma of the central square of the same
  size; 0 for an evenly lit flat image, positive when the corners are darker.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

__all__ = [
    "PROPERTIES",
    "PropertySpec",
    "image_properties",
    "mccamy_cct",
    "srgb_to_linear",
    "srgb_to_xyz",
]

# sRGB (IEC 61966-2-1) linear RGB -> CIE XYZ for the D65 white point.
_SRGB_TO_XYZ = np.array(
    [
        [0.4124, 0.3576, 0.1805],
        [0.2126, 0.7152, 0.0722],
        [0.0193, 0.1192, 0.9505],
    ]
)
_LUMA = np.array([0.299, 0.587, 0.114])
_IMMERKAER = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float64)


@dataclass(frozen=True)
class PropertySpec:
    """One per-image property and how it maps onto a generator parameter.

    Attributes:
        name: key in :func:`image_properties`' result and in ``analysis.json``.
        label: human-readable name with unit.
        parameter: the generator parameter that moves this property most directly, if any.
        sign: +1 when raising ``parameter`` raises the property, -1 when it lowers it.
    """

    name: str
    label: str
    parameter: str | None = None
    sign: int = 1


PROPERTIES: tuple[PropertySpec, ...] = (
    PropertySpec("r_mean", "red mean (0-255)"),
    PropertySpec("g_mean", "green mean (0-255)"),
    PropertySpec("b_mean", "blue mean (0-255)"),
    PropertySpec("r_std", "red std (0-255)"),
    PropertySpec("g_std", "green std (0-255)"),
    PropertySpec("b_std", "blue std (0-255)"),
    PropertySpec("r_mean_rel", "red mean / brightness", "red_gain", 1),
    PropertySpec("r_std_rel", "red std / luma std", "red_std_scale", 1),
    PropertySpec("brightness", "brightness, mean luma (0-255)", "exposure_ev", 1),
    PropertySpec("rms_contrast", "RMS contrast (luma std, 0-1)", "contrast", 1),
    PropertySpec("saturation", "mean HSV saturation (0-1)", "saturation", 1),
    PropertySpec("color_temp_k", "colour temperature (K, McCamy)", "color_temp_k", 1),
    PropertySpec("sharpness", "sharpness, Laplacian variance", "blur_sigma", -1),
    PropertySpec("noise", "noise std (0-255, Immerkaer)", "noise_std", 1),
    PropertySpec("edge_density", "edge density (Canny fraction)"),
    PropertySpec("vignetting", "vignetting, 1 - corners/centre", "vignetting", 1),
)
"""The properties in report order; ``parameter``/``sign`` feed the suggested directions."""


def srgb_to_linear(values: np.ndarray) -> np.ndarray:
    """The sRGB transfer function inverted: encoded values in [0, 1] to linear light.

    Args:
        values: sRGB-encoded values in [0, 1], any shape.

    Returns:
        Linear values in [0, 1], float64, same shape.
    """
    v = np.asarray(values, dtype=np.float64)
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)


def srgb_to_xyz(rgb_linear: np.ndarray) -> np.ndarray:
    """Linear sRGB ``(..., 3)`` (R, G, B order) to CIE XYZ ``(..., 3)`` under D65."""
    return np.asarray(rgb_linear, dtype=np.float64) @ _SRGB_TO_XYZ.T


def mccamy_cct(xyz: np.ndarray) -> np.ndarray:
    """Correlated colour temperature (K) from XYZ by McCamy's (1992) approximation.

    ``n = (x - 0.3320) / (0.1858 - y)``, ``CCT = 449 n^3 + 3525 n^2 + 6823.3 n + 5520.33``,
    with ``x, y`` the chromaticity of ``xyz``.

    Args:
        xyz: CIE XYZ values, shape ``(..., 3)``.

    Returns:
        CCT in kelvin, shape ``(...)``; NaN where ``X + Y + Z = 0``.
    """
    arr = np.asarray(xyz, dtype=np.float64)
    total = arr.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        x = arr[..., 0] / total
        y = arr[..., 1] / total
        n = (x - 0.3320) / (0.1858 - y)
        cct = 449.0 * n**3 + 3525.0 * n**2 + 6823.3 * n + 5520.33
    return np.where(total > 0, cct, np.nan)


def _check_images(images: np.ndarray) -> np.ndarray:
    arr = np.asarray(images)
    if arr.ndim != 4 or arr.shape[-1] != 3 or arr.dtype != np.uint8:
        raise ValueError(f"images must be (N, H, W, 3) uint8 RGB, got {arr.shape} {arr.dtype}")
    return arr


def _one_image(image: np.ndarray, linear_lut: np.ndarray) -> dict[str, float]:
    """All properties of one ``(H, W, 3)`` uint8 RGB image."""
    pixels = image.reshape(-1, 3).astype(np.float64)
    means = pixels.mean(axis=0)
    stds = pixels.std(axis=0)
    luma = image.astype(np.float64) @ _LUMA
    luma8 = np.clip(np.rint(luma), 0, 255).astype(np.uint8)
    maxc = image.max(axis=2).astype(np.float64)
    minc = image.min(axis=2).astype(np.float64)
    sat = np.divide(maxc - minc, maxc, out=np.zeros_like(maxc), where=maxc > 0)
    linear_mean = linear_lut[image.reshape(-1, 3)].mean(axis=0)
    height, width = luma.shape
    if height >= 3 and width >= 3:
        lap = cv2.Laplacian(luma, cv2.CV_64F, ksize=1)
        sharpness = float(lap.var())
        response = cv2.filter2D(luma, cv2.CV_64F, _IMMERKAER)[1:-1, 1:-1]
        noise = float(
            np.sqrt(np.pi / 2.0) * np.abs(response).sum() / (6.0 * (width - 2) * (height - 2))
        )
    else:
        sharpness, noise = 0.0, 0.0
    edges = cv2.Canny(luma8, 100, 200)
    brightness = float(luma.mean())
    luma_std = float(luma.std())
    return {
        "r_mean": float(means[0]),
        "g_mean": float(means[1]),
        "b_mean": float(means[2]),
        "r_std": float(stds[0]),
        "g_std": float(stds[1]),
        "b_std": float(stds[2]),
        "r_mean_rel": float(means[0]) / brightness if brightness > 0 else float("nan"),
        "r_std_rel": float(stds[0]) / luma_std if luma_std > 0 else float("nan"),
        "brightness": brightness,
        "rms_contrast": luma_std / 255.0,
        "saturation": float(sat.mean()),
        "color_temp_k": float(mccamy_cct(srgb_to_xyz(linear_mean))),
        "sharpness": sharpness,
        "noise": noise,
        "edge_density": float(np.count_nonzero(edges)) / edges.size,
        "vignetting": _vignetting(luma),
    }


def _vignetting(luma: np.ndarray) -> float:
    """``1 - mean(corner squares) / mean(centre square)``; 0 when the centre is black."""
    height, width = luma.shape
    side = max(1, min(height, width) // 6)
    corners = np.concatenate(
        [
            luma[:side, :side].ravel(),
            luma[:side, -side:].ravel(),
            luma[-side:, :side].ravel(),
            luma[-side:, -side:].ravel(),
        ]
    )
    top, left = (height - side) // 2, (width - side) // 2
    centre = float(luma[top : top + side, left : left + side].mean())
    return 1.0 - float(corners.mean()) / centre if centre > 0 else 0.0


def image_properties(images: np.ndarray) -> dict[str, np.ndarray]:
    """Compute every property of :data:`PROPERTIES` for each image.

    Args:
        images: ``(N, H, W, 3)`` uint8 images in RGB order.

    Returns:
        Property name to a float64 array of shape ``(N,)``, in :data:`PROPERTIES` order.

    Raises:
        ValueError: If ``images`` is not ``(N, H, W, 3)`` uint8.
    """
    arr = _check_images(images)
    lut = srgb_to_linear(np.arange(256) / 255.0)
    rows = [_one_image(image, lut) for image in arr]
    return {
        spec.name: np.array([row[spec.name] for row in rows], dtype=np.float64)
        for spec in PROPERTIES
    }
