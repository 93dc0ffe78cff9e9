"""A labeled YOLO dataset re-rendered through the camera model: the cheapest "simulator".

The search then tunes the camera look (colour, exposure, lens) of real source images. Each
label box becomes a rectangle mask that goes through the lens distortion with the image, and
the box is recomputed from the moved mask, so boxes follow fisheye geometry.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from gen_loop.generator._yolo_read import LabelIssue, locate_yolo_dataset, read_labels
from gen_loop.generator.base import Batch, Generator, image_seeds
from gen_loop.generator.params import ParamSpec, ParamValue
from gen_loop.generator.scene import boxes_from_masks
from gen_loop.generator.sensor import SENSOR_PARAMETERS, SensorModel
from gen_loop.target.images import load_image_folder

log = logging.getLogger(__name__)


class FolderGenerator(Generator):
    """Images of a labeled YOLO dataset seen through :class:`SensorModel`.

    Image ``i`` of ``generate(params, n, seed)`` is the source image that a generator seeded
    with ``image_seeds(seed, n)[i]`` picks (uniformly, with replacement), so trials with the
    same seed re-render the same source images (common random numbers). The source images are
    read once, resized to ``width x height`` (plain resize, like the target images) and kept
    in memory: ``N * width * height * 3`` bytes (1000 images at 256x256 take 197 MB); cap
    them with ``max_images``.

    Class names come from the dataset's data.yaml ``names``; without them, from
    ``class_names``; without either, ``class0 .. classK`` up to the largest id in the labels.

    Bad input: a missing dataset, no readable image or an unusable data.yaml raise
    :class:`~gen_loop.errors.InputDataError` naming the path. A bad label line (wrong column
    count, a class id not below the number of names, coordinates outside 0-1) is skipped with
    one warning naming ``file:line``; they are counted in :attr:`label_issues`. An image with
    no label file has no objects. Unreadable images are skipped with one warning.

    Boxes are recomputed from pixel masks, so a box narrower than 3 px after resizing and
    distortion is dropped (as in the procedural generator).

    Args:
        root: a YOLO dataset folder (``images/`` + ``labels/``, optional ``data.yaml``) or a
            ``data.yaml`` (its ``train`` folders).
        width: output width in pixels.
        height: output height in pixels.
        class_names: names of the class ids when the dataset has no data.yaml names.
        max_images: read at most this many images (in sorted path order); None reads all.
    """

    def __init__(
        self,
        root: str,
        width: int = 256,
        height: int = 256,
        class_names: Sequence[str] | None = None,
        max_images: int | None = None,
    ) -> None:
        if width < 32 or height < 32:
            raise ValueError(f"image size must be at least 32x32, got {width}x{height}")
        if max_images is not None and max_images < 1:
            raise ValueError(f"max_images must be None or at least 1, got {max_images}")
        self.width = width
        self.height = height
        self._specs = {s.name: s for s in SENSOR_PARAMETERS}
        layout = locate_yolo_dataset(Path(root))
        paths: list[Path] = []
        images: list[np.ndarray] = []
        for folder in layout.image_dirs:
            left = None if max_images is None else max_images - len(paths)
            if left == 0:
                break
            loaded = load_image_folder(folder, (width, height), left)
            paths.extend(loaded.paths)
            images.append(loaded.images)
        names = _choose_names(layout.class_names, class_names, layout.data_yaml)
        labels, issues = read_labels(paths, len(names) if names else None)
        for issue in issues:
            log.warning("bad label line skipped: %s", issue)
        if issues:
            log.warning("%d bad label line(s) skipped in %s", len(issues), root)
        if names is None:
            top = max((int(lab[:, 0].max()) for lab in labels if len(lab)), default=0)
            names = tuple(f"class{i}" for i in range(top + 1))
        self.class_names = names
        self.sources: tuple[Path, ...] = tuple(paths)
        self.label_issues: tuple[LabelIssue, ...] = tuple(issues)
        self._images = np.concatenate(images)
        self._labels = labels

    @property
    def parameters(self) -> Mapping[str, ParamSpec]:
        return self._specs

    def source_indices(self, seed: int, n: int) -> list[int]:
        """The index in :attr:`sources` of each image of a batch ``(seed, n)``."""
        return [
            int(np.random.default_rng(s).integers(len(self.sources))) for s in image_seeds(seed, n)
        ]

    def generate(self, params: Mapping[str, ParamValue], n: int, seed: int) -> Batch:
        resolved = self.resolve_request(params, n)
        sensor = SensorModel(resolved)
        seeds = image_seeds(seed, n)
        images = np.empty((n, self.height, self.width, 3), np.uint8)
        labels = []
        for i, (source, image_seed) in enumerate(
            zip(self.source_indices(seed, n), seeds, strict=True)
        ):
            boxes = self._labels[source]
            masks = box_masks(boxes, self.height, self.width)
            image = self._images[source].astype(np.float32) / 255.0
            images[i], moved = sensor.apply(image, masks, image_seed)
            labels.append(boxes_from_masks(moved, boxes[:, 0]))
        return Batch(images, tuple(labels), self.class_names, resolved, seeds)


def box_masks(boxes: np.ndarray, height: int, width: int) -> np.ndarray:
    """One filled rectangle mask ``(K, H, W)`` uint8 per YOLO box row (class cx cy w h)."""
    masks = np.zeros((len(boxes), height, width), np.uint8)
    for mask, (_, cx, cy, w, h) in zip(masks, boxes, strict=True):
        x0, x1 = _span(cx, w, width)
        y0, y1 = _span(cy, h, height)
        mask[y0:y1, x0:x1] = 1
    return masks


def _span(centre: float, size: float, pixels: int) -> tuple[int, int]:
    """Pixel range ``[a, b)`` of a normalised interval, at least one pixel wide."""
    a = min(max(round((centre - size / 2) * pixels), 0), pixels - 1)
    b = min(max(round((centre + size / 2) * pixels), a + 1), pixels)
    return a, b


def _choose_names(
    from_yaml: tuple[str, ...] | None, given: Sequence[str] | None, data_yaml: Path | None
) -> tuple[str, ...] | None:
    if from_yaml is not None:
        if given and tuple(given) != from_yaml:
            log.warning(
                "class_names %s ignored: %s names the classes %s",
                list(given),
                data_yaml,
                from_yaml,
            )
        return from_yaml
    return tuple(given) if given else None
