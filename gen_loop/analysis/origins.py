"""Named image sets ("origins") for the analysis: folders, videos, YOLO datasets, run folders,
generated batches.

A set is given as a path:

- a folder of images and/or videos (searched recursively), or one video file;
- a YOLO dataset folder with ``images/`` and ``labels/`` (``data.yaml`` optional): the images
  are read from ``images/`` and each ``labels/<same relative path>.txt`` gives its boxes;
- a YOLO ``data.yaml``: its ``val`` split (else ``train``) under its ``path``;
- a ``run`` output folder (known by its ``summary.json``): the samples its final stage
  selected, ``selected/``, with their labels (:mod:`gen_loop.analysis._run_folder`).

Pictures are read by :func:`gen_loop.target.load_media`, as ``run`` reads its target: RGB,
resized to one size, every ``video_stride``-th frame of a video (at most ``video_max_frames``
per video) named ``<video>#frame=<index>``, unreadable files skipped and counted. Frames are
kept in memory like images (``Origin.images``); their names are no files on disk. Labels are
optional; a set without them is unlabeled, and video frames have none.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import yaml

from gen_loop.analysis._run_folder import run_folder_of, run_selection
from gen_loop.errors import ConfigError, InputDataError
from gen_loop.generator.yolo_io import read_yolo_labels
from gen_loop.target.media import list_media, load_media
from gen_loop.target.video import FRAME_MARK, is_video

if TYPE_CHECKING:
    from gen_loop.analysis.detections import Detections
    from gen_loop.generator.base import Batch

__all__ = ["Origin", "check_set_name", "load_origin", "origin_from_batch", "resolve_set_path"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True, eq=False)
class Origin:
    """One named image set and what the analysis knows about it.

    Attributes:
        name: the set's name (a key of ``sets``).
        images: ``(N, H, W, 3)`` uint8 RGB.
        paths: where each image came from (a file, ``<video>#frame=<index>``, or
            ``generated:<seed>``).
        description: one line: the path (with its frames and videos, or the run's selection)
            or how the set was made.
        fingerprint: identifies the content (for the embedding cache).
        labels: per image, ``(k, 5)`` YOLO rows, or None when unlabeled.
        skipped: unreadable files with the reason.
        embeddings: ``(N, D)`` features, filled in before the analysis.
        detections: the detector's output per image, if it was run.
        losses: the real per-image detection loss (labeled sets with a detector run).
    """

    name: str
    images: np.ndarray
    paths: tuple[str, ...]
    description: str
    fingerprint: str
    labels: tuple[np.ndarray, ...] | None = None
    skipped: tuple[tuple[str, str], ...] = ()
    embeddings: np.ndarray | None = None
    detections: tuple[Detections, ...] | None = None
    losses: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.images)

    @classmethod
    def from_arrays(
        cls,
        name: str,
        images: np.ndarray,
        embeddings: np.ndarray,
        labels: tuple[np.ndarray, ...] | None = None,
        description: str = "",
    ) -> Origin:
        """An origin from arrays a caller already holds (e.g. ``run``'s target and batches)."""
        return cls(
            name=name,
            images=images,
            paths=tuple(f"{name}:{i}" for i in range(len(images))),
            description=description or name,
            fingerprint="",
            labels=labels,
            embeddings=embeddings,
        )


def check_set_name(name: str) -> str:
    """Return ``name`` if it can name a set (letters, digits, ``_ . -``), else raise."""
    if not _NAME.match(name):
        raise ConfigError(
            f"sets.{name}", "a set name may hold letters, digits, '_', '.' and '-' only"
        )
    return name


def resolve_set_path(path: Path) -> tuple[Path, Path | None]:
    """The images folder (or video file) of a set and its labels folder, if it has one.

    A run folder is not resolved here: :func:`load_origin` reads its ``selected/`` dataset.

    Raises:
        InputDataError: If the path does not exist, is a file that is neither a video nor a
            ``data.yaml``, or a ``data.yaml`` cannot be used.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise InputDataError(
            f"{path} does not exist; give a folder of images/videos, a video file, a run "
            "folder or a data.yaml"
        )
    if path.is_file():
        if is_video(path):
            return path, None
        if path.suffix.lower() not in (".yaml", ".yml"):
            raise InputDataError(
                f"{path} is a file but not a video or a data.yaml; give a folder of "
                "images/videos, a video file, a run folder or a data.yaml"
            )
        return _from_data_yaml(path)
    if (path / "images").is_dir():
        labels = path / "labels"
        return path / "images", labels if labels.is_dir() else None
    if path.name == "images" and (path.parent / "labels").is_dir():
        return path, path.parent / "labels"
    return path, None


def _from_data_yaml(path: Path) -> tuple[Path, Path | None]:
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise InputDataError(f"cannot read {path}: {err}") from err
    if not isinstance(data, dict):
        raise InputDataError(f"{path} is not a YOLO data.yaml (no mapping)")
    split = data.get("val") or data.get("train")
    if isinstance(split, list):
        split = split[0] if split else None
    if not isinstance(split, str):
        raise InputDataError(f"{path} names no 'val' or 'train' image folder")
    root = Path(str(data.get("path") or path.parent))
    root = root if root.is_absolute() else path.parent / root
    images = Path(split) if Path(split).is_absolute() else root / split
    parts = list(images.parts)
    if "images" in parts:
        i = len(parts) - 1 - parts[::-1].index("images")
        labels = Path(*parts[:i], "labels", *parts[i + 1 :])
        return images, labels if labels.is_dir() else None
    return images, None


def load_origin(
    name: str,
    path: Path,
    size: tuple[int, int],
    max_images: int | None = None,
    video_stride: int = 10,
    video_max_frames: int | None = 300,
) -> Origin:
    """Read one set from disk.

    Args:
        name: the set's name.
        path: a folder of images and/or videos, a video file, a YOLO dataset folder, a
            data.yaml, or a run folder (its selected samples).
        size: ``(width, height)`` every image is resized to.
        max_images: keep at most this many pictures, images and frames (sorted by path).
        video_stride: keep every this-many-th frame of each video (``target.video_stride``).
        video_max_frames: keep at most this many frames of each video; None keeps all.

    Returns:
        The :class:`Origin` (labels when the set is a YOLO dataset or a run folder).

    Raises:
        InputDataError: Missing path, no image or video file, nothing readable, videos in a
            labeled dataset, or a run folder without a selection.
    """
    path = Path(path).expanduser()
    run_dir = run_folder_of(path)
    if run_dir is not None:
        return _load_run_folder(name, run_dir, size, max_images)
    images_dir, labels_dir = resolve_set_path(path)
    if labels_dir is not None:
        videos = [f for f in list_media(images_dir, what="set")[1] if is_video(f)]
        if videos:
            raise InputDataError(
                f"set {name!r}: {images_dir} is a labeled YOLO dataset but holds "
                f"{len(videos)} video(s) ({videos[0].name}), whose frames have no labels; give "
                "the videos as a set of their own"
            )
    loaded = load_media(images_dir, size, max_images, video_stride, video_max_frames, what="set")
    labels = None
    if labels_dir is not None:
        files = [labels_dir / p.relative_to(images_dir).with_suffix(".txt") for p in loaded.paths]
        try:
            labels = tuple(read_yolo_labels(files))
        except ValueError as err:
            raise InputDataError(
                f"set {name!r}: a label file under {labels_dir} is not YOLO format "
                f"(class cx cy w h per line): {err}; fix it or give the images folder alone"
            ) from err
    paths = tuple(str(p) for p in loaded.paths)
    return Origin(
        name=name,
        images=loaded.images,
        paths=paths,
        description=f"{path}"
        + _frames_note(paths, video_stride)
        + (" (labeled)" if labels is not None else ""),
        fingerprint=loaded.fingerprint,
        labels=labels,
        skipped=tuple((str(p), reason) for p, reason in loaded.skipped),
    )


def _frames_note(paths: tuple[str, ...], stride: int) -> str:
    """``" (12 frames of 2 video(s), one in 10)"``, or ``""`` when no frame was read."""
    videos = {p.rsplit(FRAME_MARK, 1)[0] for p in paths if FRAME_MARK in p}
    if not videos:
        return ""
    n_frames = sum(FRAME_MARK in p for p in paths)
    n_images = len(paths) - n_frames
    images = f"{n_images} images and " if n_images else ""
    every = "every frame" if stride == 1 else f"one in {stride}"
    return f" ({images}{n_frames} frames of {len(videos)} video(s), {every})"


def _load_run_folder(
    name: str, run_dir: Path, size: tuple[int, int], max_images: int | None
) -> Origin:
    """The selected samples of a run folder, labeled, described as such."""
    selection = run_selection(run_dir)
    origin = load_origin(name, selection.dataset, size, max_images)
    if origin.labels is None:
        raise InputDataError(
            f"run folder {run_dir}: {selection.dataset} has no labels/ folder; the selection "
            "is incomplete, run the run again to make it"
        )
    n = len(origin)
    count = f"{n} selected samples" + (
        f" (of {selection.n_manifest} in its manifest)" if n != selection.n_manifest else ""
    )
    return replace(origin, description=f"run folder {run_dir}: {count} {selection.what}")


def origin_from_batch(name: str, batch: Batch, description: str) -> Origin:
    """A generated batch as a labeled set."""
    digest = hashlib.sha256(json.dumps([batch.params, list(batch.seeds)], sort_keys=True).encode())
    digest.update(str(batch.images.shape).encode())
    digest.update(np.ascontiguousarray(batch.images).tobytes())
    return Origin(
        name=name,
        images=batch.images,
        paths=tuple(f"generated:{seed}" for seed in batch.seeds)
        or tuple(f"generated:{i}" for i in range(len(batch))),
        description=description,
        fingerprint=digest.hexdigest(),
        labels=tuple(batch.labels),
    )
