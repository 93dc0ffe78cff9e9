"""A camera the generator cannot reproduce: its own lens, colour, sensor and codec code.

Nothing here calls ``gen_loop/generator/sensor.py``: it takes the procedural *scene* (linear
RGB and amodal object masks from ``gen_loop.generator.scene``, the "world") and films it
with numpy/OpenCV models of a different kind than the generator's albumentations chain:

- **lens**: Brown-Conrady radial (k1, k2) and tangential (p1, p2) distortion, with lateral
  chromatic aberration (red and blue sampled at a slightly different radius than green);
- **colour**: exposure and white-balance gains applied in linear RGB (the generator colours
  with a blackbody illuminant table and a red-channel gain);
- **sensor**: Poisson-Gaussian noise (shot noise of a finite full well plus read noise; the
  generator's noise is signal-independent Gaussian);
- **processing**: a tone curve with highlight roll-off (extended Reinhard) and the sRGB
  transfer function (the generator has a pure power law), then JPEG compression.

Object masks go through the same lens remap (nearest neighbour), so boxes are exact: the
tight box of each distorted mask (``boxes_from_masks``), as the generator computes its own.
Scene content shifts too (sun elevation, fog, object density): a client's world is not the
simulator's default world either.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from gen_loop.generator.scene import Scene, SceneSettings, boxes_from_masks, render_scene


@dataclass(frozen=True)
class IndependentCamera:
    """One camera and the world it films.

    Attributes:
        name: short name (folder and table label).
        k1, k2: radial distortion; positive values sample from further out (barrel look).
        p1, p2: tangential (decentring) distortion.
        ca: lateral chromatic aberration: red is sampled at radius ``r * (1 + ca)``, blue at
            ``r * (1 - ca)``.
        exposure: linear gain on the scene radiance.
        wb_gains: white-balance gains of (R, G, B), linear.
        full_well: signal units at full scale for shot noise (smaller: noisier).
        read_noise: std of the additive read noise (fraction of full scale).
        white: extended-Reinhard white point: radiance mapped to 1.0 (highlight roll-off).
        jpeg_quality: JPEG quality of the stored frames (0-100).
        sun_elevation, fog, object_density: the scene content of this camera's world.
    """

    name: str
    k1: float = 0.0
    k2: float = 0.0
    p1: float = 0.0
    p2: float = 0.0
    ca: float = 0.0
    exposure: float = 1.0
    wb_gains: tuple[float, float, float] = (1.0, 1.0, 1.0)
    full_well: float = 1000.0
    read_noise: float = 0.005
    white: float = 2.0
    jpeg_quality: int = 90
    sun_elevation: float = 45.0
    fog: float = 0.0
    object_density: float = 1.0
    _maps: dict[tuple[int, int], tuple[np.ndarray, ...]] = field(
        default_factory=dict, compare=False, repr=False
    )

    def scene_settings(self, width: int, height: int) -> SceneSettings:
        return SceneSettings(
            width=width,
            height=height,
            sun_elevation=self.sun_elevation,
            fog=self.fog,
            object_density=self.object_density,
        )

    def film(self, scene: Scene, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """The stored frame (uint8 RGB) and the YOLO boxes ``(k, 5)`` of ``scene``."""
        h, w = scene.image.shape[:2]
        mx, my = self._lens_maps(h, w)[1]
        masks = (
            np.stack([cv2.remap(m, mx, my, cv2.INTER_NEAREST, borderValue=0) for m in scene.masks])
            if len(scene.masks)
            else scene.masks
        )
        return self._film_linear(scene.image, rng), boxes_from_masks(masks, scene.classes)

    def film_image(self, photo: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Re-shoot a photograph (uint8 sRGB ``(H, W, 3)``) through this camera: its pixels,
        decoded to linear light, are the scene radiance (the world's content is the photo's, so
        ``sun_elevation``, ``fog`` and ``object_density`` do not apply)."""
        if photo.dtype != np.uint8 or photo.ndim != 3 or photo.shape[2] != 3:
            raise ValueError(
                f"expected a uint8 (H, W, 3) RGB photo, got {photo.dtype} {photo.shape}"
            )
        return self._film_linear(_linear(photo.astype(np.float32) / 255.0), rng)

    def _film_linear(self, radiance: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Lens, colour, sensor noise, tone curve, sRGB and JPEG on linear RGB ``radiance``."""
        h, w = radiance.shape[:2]
        image = np.empty_like(radiance)
        for channel, (mx, my) in enumerate(self._lens_maps(h, w)):
            image[..., channel] = cv2.remap(
                radiance[..., channel], mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
            )
        linear = image * self.exposure * np.asarray(self.wb_gains, np.float32)
        linear = np.clip(linear, 0.0, None)
        shot = rng.poisson(linear * self.full_well) / self.full_well
        linear = shot + rng.normal(0.0, self.read_noise, linear.shape)
        linear = np.clip(linear, 0.0, None)
        toned = linear * (1.0 + linear / self.white**2) / (1.0 + linear)
        encoded = _srgb(np.clip(toned, 0.0, 1.0))
        pixels = (encoded * 255.0 + 0.5).astype(np.uint8)
        ok, jpeg = cv2.imencode(
            ".jpg", pixels[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality]
        )
        assert ok
        frame = cv2.imdecode(jpeg, cv2.IMREAD_COLOR)[..., ::-1]
        return np.ascontiguousarray(frame)

    def render(self, width: int, height: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Render scene ``seed`` of this camera's world and film it."""
        rng = np.random.default_rng(seed)
        scene = render_scene(self.scene_settings(width, height), rng)
        return self.film(scene, np.random.default_rng([seed, 1]))

    def _lens_maps(self, h: int, w: int) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
        """Source coordinates of every output pixel for red, green and blue (cached)."""
        cached = self._maps.get((h, w))
        if cached is not None:
            return cached  # type: ignore[return-value]
        f = 0.5 * float(np.hypot(w, h))  # normalised radius 1 at the corners
        cx, cy = (w - 1) / 2.0, (h - 1) / 2.0
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
        x, y = (xs - cx) / f, (ys - cy) / f
        r2 = x**2 + y**2
        radial = 1.0 + self.k1 * r2 + self.k2 * r2**2
        xd = x * radial + 2 * self.p1 * x * y + self.p2 * (r2 + 2 * x**2)
        yd = y * radial + self.p1 * (r2 + 2 * y**2) + 2 * self.p2 * x * y
        maps = []
        for scale in (1.0 + self.ca, 1.0, 1.0 - self.ca):
            mx = (xd * scale * f + cx).astype(np.float32)
            maps.append((mx, (yd * scale * f + cy).astype(np.float32)))
        out = tuple(maps)
        self._maps[(h, w)] = out  # type: ignore[assignment]
        return out


def _linear(encoded: np.ndarray) -> np.ndarray:
    """The inverse sRGB transfer function: encoded values in [0, 1] to linear light."""
    return np.where(
        encoded <= 0.04045, encoded / 12.92, np.power((encoded + 0.055) / 1.055, 2.4)
    ).astype(np.float32)


def _srgb(linear: np.ndarray) -> np.ndarray:
    """The sRGB transfer function (IEC 61966-2-1)."""
    return np.where(
        linear <= 0.0031308, 12.92 * linear, 1.055 * np.power(linear, 1 / 2.4) - 0.055
    ).astype(np.float32)


#: The mismatch cameras of issue 14. Neither is a parameter set of the default search space:
#: distortion of another family, shot noise, a tone curve and sRGB, JPEG, white balance in
#: linear RGB, and another world (low sun; fog and crowds).
CAMERAS: dict[str, IndependentCamera] = {
    # A warm, bright dash camera at dusk: strong barrel distortion, visible colour fringes,
    # highlight roll-off, moderate JPEG.
    "dashcam_dusk": IndependentCamera(
        name="dashcam_dusk",
        k1=0.32,
        k2=0.10,
        p1=0.01,
        ca=0.006,
        exposure=1.6,
        wb_gains=(1.25, 1.0, 0.7),
        full_well=400.0,
        read_noise=0.008,
        white=1.6,
        jpeg_quality=60,
        sun_elevation=15.0,
        object_density=1.0,
    ),
    # A cool, dim, noisy street camera in fog with crowded scenes: mild distortion with a
    # decentred lens, hard JPEG.
    "cctv_fog": IndependentCamera(
        name="cctv_fog",
        k1=0.12,
        p2=-0.015,
        ca=0.003,
        exposure=0.8,
        wb_gains=(0.8, 1.0, 1.3),
        full_well=120.0,
        read_noise=0.02,
        white=1.2,
        jpeg_quality=35,
        sun_elevation=40.0,
        fog=0.35,
        object_density=1.6,
    ),
}
