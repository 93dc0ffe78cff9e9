"""The built-in generator: procedural driving scenes seen through a configurable camera."""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial

import numpy as np

from gen_loop.generator._scene_cache import SceneCache
from gen_loop.generator.base import DEFAULT_CLASS_NAMES, Batch, Generator, image_seeds
from gen_loop.generator.params import ParamSpec, ParamValue
from gen_loop.generator.scene import Scene, SceneSettings, boxes_from_masks, render_scene
from gen_loop.generator.sensor import SENSOR_PARAMETERS, SensorModel

SCENE_PARAMETERS: tuple[ParamSpec, ...] = (
    ParamSpec(
        "sun_elevation",
        45.0,
        5.0,
        90.0,
        "deg",
        "sun elevation: light level and sky colour (5 = dusk, 90 = noon)",
    ),
    ParamSpec(
        "weather",
        "clear",
        doc="clear or fog (fog density applies only with fog)",
        choices=("clear", "fog"),
    ),
    ParamSpec("fog", 0.3, 0.0, 1.0, "", "fog density when weather=fog; thickens with distance"),
    ParamSpec(
        "object_density",
        1.0,
        0.3,
        3.0,
        "",
        "multiplier on the mean number of objects per image (8 at 1.0)",
    ),
)


class ProceduralGenerator(Generator):
    """Procedural driving scenes (road, lanes, sky, buildings, cars, trucks, pedestrians) with
    exact YOLO boxes, rendered through :class:`~gen_loop.generator.sensor.SensorModel`.

    Scenes are kept in a bounded cache (see :class:`SceneCache`): the search renders the same
    scene seeds with a new camera in every trial, so only the camera model runs again.

    Args:
        width: image width in pixels.
        height: image height in pixels.
        scene_cache_mb: memory budget of the scene cache in MiB (0: no cache); a 32-image
            trial batch at 256 px takes about 40 MiB.
    """

    def __init__(self, width: int = 256, height: int = 256, scene_cache_mb: float = 128.0) -> None:
        if width < 32 or height < 32:
            raise ValueError(f"image size must be at least 32x32, got {width}x{height}")
        self.width = width
        self.height = height
        self.class_names = DEFAULT_CLASS_NAMES
        self._specs = {s.name: s for s in (*SCENE_PARAMETERS, *SENSOR_PARAMETERS)}
        self._scenes = SceneCache(int(scene_cache_mb * 2**20))

    @property
    def parameters(self) -> Mapping[str, ParamSpec]:
        return self._specs

    def generate(self, params: Mapping[str, ParamValue], n: int, seed: int) -> Batch:
        resolved = self.resolve_request(params, n)
        settings = SceneSettings(
            width=self.width,
            height=self.height,
            sun_elevation=float(resolved["sun_elevation"]),
            fog=float(resolved["fog"]) if resolved["weather"] == "fog" else 0.0,
            object_density=float(resolved["object_density"]),
        )
        sensor = SensorModel(resolved)
        seeds = image_seeds(seed, n)
        images = np.empty((n, self.height, self.width, 3), np.uint8)
        labels = []
        for i, image_seed in enumerate(seeds):
            render = partial(_render, settings, image_seed)
            scene = self._scenes.get((settings, image_seed), render)
            # Copies: the camera must not touch the cached scene.
            images[i], masks = sensor.apply(scene.image.copy(), scene.masks.copy(), image_seed)
            labels.append(boxes_from_masks(masks, scene.classes))
        return Batch(images, tuple(labels), self.class_names, resolved, seeds)


def _render(settings: SceneSettings, image_seed: int) -> Scene:
    return render_scene(settings, np.random.default_rng(image_seed))
