"""The embedded demo target: a "client camera" rendered by the generator with hidden
parameters, cached on disk. Its labels serve evaluation only; the loop reads the images."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from gen_loop.generator.base import Generator
from gen_loop.generator.params import ParamValue
from gen_loop.generator.yolo_io import write_yolo_dataset

log = logging.getLogger(__name__)

_DEMO_VERSION = "1"  # bump when the renderer changes, so stale caches are not reused


@dataclass(frozen=True)
class DemoTarget:
    """Where the demo target lives.

    Attributes:
        images_dir: the unlabeled images the loop sees.
        data_yaml: a YOLO data.yaml over the same images with their labels (evaluation only).
        params: the hidden camera parameters (for reporting recovery error, never for search).
    """

    images_dir: Path
    data_yaml: Path
    params: dict[str, ParamValue]


def demo_target(
    generator: Generator,
    hidden_params: Mapping[str, ParamValue],
    n: int,
    seed: int,
    cache_dir: Path,
) -> DemoTarget:
    """Render the demo target once and reuse it while generator, parameters, n and seed match.

    Args:
        generator: renders the scenes.
        hidden_params: the client camera's parameters (the rest take the generator defaults).
        n: number of images.
        seed: scene seed; keep it apart from the search's and the selection pool's seeds.
        cache_dir: the cache root; the set goes under ``demo_target/<key>``.
    """
    params = generator.resolve_params(hidden_params)
    size = (getattr(generator, "width", None), getattr(generator, "height", None))
    key_text = json.dumps(
        [type(generator).__name__, size, params, n, seed, _DEMO_VERSION], sort_keys=True
    )
    key = hashlib.sha256(key_text.encode()).hexdigest()[:12]
    root = cache_dir / "demo_target" / key
    data_yaml = root / "data.yaml"
    if not data_yaml.exists():
        log.info("rendering the demo target (%d images) into %s", n, root)
        batch = generator.generate(params, n, seed)
        # A name of its own per process: parallel sweep jobs may render the same target at once.
        tmp = root.with_name(f"{key}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
        write_yolo_dataset(batch, tmp, prefix="client")
        # data.yaml records its folder; point it at the final location before it is visible.
        text = (tmp / "data.yaml").read_text().replace(str(tmp.resolve()), str(root.resolve()))
        (tmp / "data.yaml").write_text(text)
        try:
            tmp.rename(root)
        except OSError:
            if not data_yaml.exists():
                raise
            shutil.rmtree(tmp)  # another process finished first
    return DemoTarget(images_dir=root / "images", data_yaml=data_yaml, params=params)
