"""A Cognata-style camera model: lens, sensor and image-processing effects on a rendered scene.

Each effect is an albumentations transform with its range pinned to one value (so a parameter
set is one camera), applied in the physical order: optics (lens distortion, vignetting, blur),
then sensor (exposure, illuminant colour, red channel response, noise), then processing (gamma,
contrast, saturation). Geometric effects move the object masks with the image, so boxes can be
recomputed tightly afterwards.
"""

from __future__ import annotations

from collections.abc import Mapping

import albumentations as A
import numpy as np
from albumentations.augmentations.pixel.functional import planckian_jitter

from gen_loop.generator.params import ParamSpec, ParamValue

SENSOR_PARAMETERS: tuple[ParamSpec, ...] = (
    ParamSpec(
        "color_temp_k",
        6500.0,
        3500.0,
        12000.0,
        "K",
        "colour temperature of the light as the camera records it, without white balance: "
        "low is warm/orange, high is blue (from 3500 K: albumentations' blackbody table has "
        "a near-zero blue entry at 3000 K)",
    ),
    ParamSpec("red_gain", 1.0, 0.5, 1.5, "", "gain of the red channel"),
    ParamSpec(
        "red_std_scale",
        1.0,
        0.4,
        1.6,
        "",
        "scales the red channel's deviations from its image mean (its std)",
    ),
    ParamSpec("exposure_ev", 0.0, -2.0, 2.0, "EV", "exposure: intensities times 2**EV"),
    ParamSpec("contrast", 1.0, 0.5, 1.5, "", "contrast factor around the mean grey"),
    ParamSpec("saturation", 1.0, 0.0, 2.0, "", "saturation factor (0 = grey)"),
    ParamSpec("gamma", 1.0, 0.5, 2.0, "", "tone curve: output = input**gamma"),
    ParamSpec(
        "noise_std",
        0.01,
        0.0,
        0.15,
        "full scale",
        "std of Gaussian sensor noise as a fraction of full scale",
    ),
    ParamSpec("blur_sigma", 0.0, 0.0, 3.0, "px", "std of Gaussian lens blur"),
    ParamSpec("vignetting", 0.0, 0.0, 0.9, "", "light fall-off at the corners (0 = none)"),
    ParamSpec(
        "fisheye",
        0.0,
        0.0,
        1.0,
        "",
        "fisheye lens distortion strength (albumentations OpticalDistortion, fisheye mode)",
    ),
)

_EPS = 1e-3


class SensorModel:
    """The camera effects of one parameter set, applied image by image.

    Args:
        params: values for the names in :data:`SENSOR_PARAMETERS` (all of them).
    """

    def __init__(self, params: Mapping[str, ParamValue]) -> None:
        p = {spec.name: float(params[spec.name]) for spec in SENSOR_PARAMETERS}
        self.params = p
        steps: list[A.BasicTransform] = []
        if p["fisheye"] > _EPS:
            steps.append(
                A.OpticalDistortion(
                    distort_limit=(p["fisheye"], p["fisheye"]), mode="fisheye", p=1.0
                )
            )
        if p["vignetting"] > _EPS:
            steps.append(A.Lambda(image=_vignette(p["vignetting"]), name="vignetting", p=1.0))
        if p["blur_sigma"] > 0.05:
            steps.append(A.GaussianBlur(sigma_limit=(p["blur_sigma"],) * 2, blur_limit=0, p=1.0))
        if abs(p["exposure_ev"]) > _EPS:
            gain = 2.0 ** p["exposure_ev"]
            steps.append(A.MultiplicativeNoise(multiplier=(gain, gain), per_channel=False, p=1.0))
        # PlanckianJitter refuses a range that excludes its 6000 K white point, so its function
        # (the same blackbody table) is applied with the temperature pinned.
        steps.append(A.Lambda(image=_illuminant(p["color_temp_k"]), name="color_temp", p=1.0))
        if abs(p["red_gain"] - 1) > _EPS or abs(p["red_std_scale"] - 1) > _EPS:
            steps.append(
                A.Lambda(
                    image=_red_response(p["red_gain"], p["red_std_scale"]),
                    name="red_response",
                    p=1.0,
                )
            )
        if p["noise_std"] > _EPS:
            steps.append(A.GaussNoise(std_range=(p["noise_std"],) * 2, per_channel=True, p=1.0))
        if abs(p["gamma"] - 1) > _EPS:
            steps.append(A.RandomGamma(gamma_limit=(100 * p["gamma"],) * 2, p=1.0))
        if abs(p["contrast"] - 1) > _EPS:
            steps.append(
                A.ColorJitter(
                    brightness=(1, 1),
                    contrast=(p["contrast"],) * 2,
                    saturation=(1, 1),
                    hue=(0, 0),
                    p=1.0,
                )
            )
        if abs(p["saturation"] - 1) > _EPS:
            steps.append(
                A.ColorJitter(
                    brightness=(1, 1),
                    contrast=(1, 1),
                    saturation=(p["saturation"],) * 2,
                    hue=(0, 0),
                    p=1.0,
                )
            )
        self._compose = A.Compose(steps, seed=0)

    def apply(
        self, image: np.ndarray, masks: np.ndarray, seed: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Apply the camera to a float image in ``[0, 1]`` and its object masks.

        Args:
            image: ``(H, W, 3)`` float32 linear RGB.
            masks: ``(K, H, W)`` uint8 object masks; they follow geometric effects.
            seed: seeds the random parts (sensor noise), so a seed gives the same image.

        Returns:
            The uint8 RGB image and the moved masks.
        """
        self._compose.set_random_seed(seed)
        out = (
            self._compose(image=image, masks=list(masks))
            if len(masks)
            else self._compose(image=image)
        )
        moved = np.stack(out["masks"]) if len(masks) else masks
        pixels = np.clip(out["image"], 0.0, 1.0) * 255.0
        return (pixels + 0.5).astype(np.uint8), moved


def _illuminant(kelvin: float):
    def apply(image: np.ndarray, **_: object) -> np.ndarray:
        return planckian_jitter(image, round(kelvin), mode="blackbody")

    return apply


def _vignette(strength: float):
    falloffs: dict[tuple[int, int, np.dtype], np.ndarray] = {}  # one map per image shape

    def apply(image: np.ndarray, **_: object) -> np.ndarray:
        h, w = image.shape[:2]
        falloff = falloffs.get((h, w, image.dtype))
        if falloff is None:
            y, x = np.ogrid[-1.0 : 1.0 : complex(0, h), -1.0 : 1.0 : complex(0, w)]
            r2 = (x**2 + y**2) / 2.0  # 1.0 in the corners
            falloff = (1.0 - strength * r2**1.5)[..., None].astype(image.dtype)
            falloffs[(h, w, image.dtype)] = falloff
        return image * falloff

    return apply


def _red_response(gain: float, std_scale: float):
    def apply(image: np.ndarray, **_: object) -> np.ndarray:
        out = image.copy()
        red = out[..., 0]
        mean = float(red.mean())
        out[..., 0] = (mean + (red - mean) * std_scale) * gain
        return out

    return apply
