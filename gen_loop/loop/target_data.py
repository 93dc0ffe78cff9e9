"""The target as the loop sees it: the user's folder, or the embedded demo target."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gen_loop.config.schema import TargetConfig
from gen_loop.errors import ConfigError
from gen_loop.generator.base import Generator
from gen_loop.generator.params import ParamValue
from gen_loop.score.scorer import MIN_NOISE_FLOOR_TARGET
from gen_loop.target.demo import demo_target
from gen_loop.target.images import ImageSet, load_image_folder
from gen_loop.target.media import load_media


@dataclass(frozen=True)
class TargetData:
    """Target images and what is known about them.

    Attributes:
        images: the loaded images (resized to the generator's size) and their fingerprint.
        labels_yaml: a labeled YOLO data.yaml for evaluation, if any.
        hidden_params: the demo target's hidden parameters (None for a user target).
        description: one line for the console.
    """

    images: ImageSet
    labels_yaml: Path | None
    hidden_params: dict[str, ParamValue] | None
    description: str


def load_target(cfg: TargetConfig, generator: Generator, cache_dir: Path) -> TargetData:
    """Load ``target.path`` (images and/or videos), or make/load the demo target when null.

    Raises:
        InputDataError: the target is missing or holds nothing readable.
        ConfigError: it holds fewer than 4 readable pictures (the noise floor's minimum),
            naming ``target.path`` (or ``target.max_images`` when that cap is the cause).
    """
    size = (int(getattr(generator, "width", 256)), int(getattr(generator, "height", 256)))
    labels = Path(cfg.labels) if cfg.labels else None
    if cfg.path is not None:
        path = Path(cfg.path)
        images = load_media(path, size, cfg.max_images, cfg.video_stride, cfg.video_max_frames)
        _require_floor_size(cfg, images)
        kind = "video" if path.is_file() else "folder"
        return TargetData(images, labels, None, f"{kind} {cfg.path}")
    demo = demo_target(generator, cfg.demo.params, cfg.demo.n, cfg.demo.seed, cache_dir)
    images = load_image_folder(demo.images_dir, size, cfg.max_images)
    return TargetData(
        images,
        labels or demo.data_yaml,
        demo.params,
        f"embedded demo client camera {demo.images_dir}",
    )


def _require_floor_size(cfg: TargetConfig, images: ImageSet) -> None:
    """At least MIN_NOISE_FLOOR_TARGET pictures: the floor compares two halves of >= 2."""
    n = len(images.paths)
    if n >= MIN_NOISE_FLOOR_TARGET:
        return
    capped = cfg.max_images is not None and cfg.max_images < MIN_NOISE_FLOOR_TARGET
    skipped = f" ({len(images.skipped)} more skipped as unreadable)" if images.skipped else ""
    raise ConfigError(
        "target.max_images" if capped else "target.path",
        f"{cfg.path} gives {n} readable picture{'s' if n != 1 else ''}{skipped}; the noise "
        f"floor needs at least {MIN_NOISE_FLOOR_TARGET} (two halves of 2): "
        + ("raise target.max_images" if capped else "add images to the folder"),
    )
