"""Read a folder of target images into one RGB uint8 array, with a content fingerprint.

Every image is read with OpenCV (:mod:`gen_loop._imageio`), converted to HxWx3 uint8 RGB and
resized to the size the generator renders at. Files that cannot be decoded are skipped with one
warning, so a stray thumbnail or a half-copied file does not stop a run, but a folder with no
usable image does.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from gen_loop._imageio import IMAGE_EXTENSIONS, UnreadableImageError, find_files, read_image_rgb
from gen_loop.errors import InputDataError

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "ImageSet",
    "file_fingerprint",
    "file_sha256",
    "list_images",
    "load_image_folder",
]

logger = logging.getLogger(__name__)

_CHUNK_BYTES = 1 << 20
_WARN_NAMES = 5
# Bumped when reading or resizing changes, so fingerprints of old pixel arrays stop matching.
_PIPELINE_VERSION = "1"


@dataclass(frozen=True, eq=False)
class ImageSet:
    """The readable images of a folder, resized to one size.

    ``eq=False`` because element-wise array comparison has no single truth value; compare
    ``fingerprint`` instead.

    Attributes:
        paths: The files that were read, in sorted order; row ``i`` of ``images`` is ``paths[i]``.
            A video frame is named ``<video>#frame=<index>`` (see
            :func:`gen_loop.target.video.frame_path`), which is no file on disk.
        images: Array of shape (N, H, W, 3), dtype uint8, RGB channel order.
        skipped: Each unreadable file with the reason it was skipped.
        fingerprint: SHA-256 hex digest over the relative paths and bytes of ``paths`` and the
            size, as computed by :func:`file_fingerprint`.
    """

    paths: tuple[Path, ...]
    images: np.ndarray
    skipped: tuple[tuple[Path, str], ...]
    fingerprint: str


def list_images(folder: Path, recursive: bool = True) -> list[Path]:
    """List the image files of a folder.

    Args:
        folder: The folder to search.
        recursive: Also search sub-folders.

    Returns:
        The image files, sorted by path.

    Raises:
        InputDataError: If ``folder`` does not exist, is not a directory, or holds no file whose
            suffix is in :data:`IMAGE_EXTENSIONS`.
    """
    folder = Path(folder)
    if not folder.exists():
        raise InputDataError(f"image folder {folder} does not exist; give an existing folder")
    if not folder.is_dir():
        raise InputDataError(f"image folder {folder} is not a directory; give a folder of images")
    return find_files(folder, IMAGE_EXTENSIONS, recursive, "image folder", "image")


def load_image_folder(
    folder: Path, size: tuple[int, int], max_images: int | None = None
) -> ImageSet:
    """Read every image of a folder (recursively), resized to ``size``.

    The resize is plain, without letterboxing, because the generator renders at the same size:
    the aspect ratio of ``size`` should match the target images, or they come out stretched.
    Shrinking uses ``cv2.INTER_AREA`` and enlarging (either side) ``cv2.INTER_LINEAR``.

    Args:
        folder: The folder of images.
        size: Output size as (width, height).
        max_images: Keep the first this many readable images in sorted path order; None keeps
            all.

    Returns:
        The images, their paths, the skipped files and a fingerprint of the inputs.

    Raises:
        ValueError: If ``size`` or ``max_images`` is not a positive integer (a programming error;
            the config is validated by the caller).
        InputDataError: If the folder is missing, holds no image file, or no image is readable.
    """
    width, height = _check_size(size)
    _check_max_images(max_images)
    folder = Path(folder)
    candidates = list_images(folder)
    limit = len(candidates) if max_images is None else min(max_images, len(candidates))
    images = np.empty((limit, height, width, 3), dtype=np.uint8)
    paths: list[Path] = []
    skipped: list[tuple[Path, str]] = []
    for path in candidates:
        if len(paths) == limit:
            break
        try:
            img = read_image_rgb(path)
        except UnreadableImageError as err:
            skipped.append((path, err.reason))
            continue
        images[len(paths)] = _resize(img, width, height)
        paths.append(path)
    _report_skipped(folder, skipped, len(paths) + len(skipped))
    if not paths:
        raise InputDataError(
            f"no readable image in {folder}: all {len(skipped)} image files failed to decode "
            f"(first: {skipped[0][0].name}, {skipped[0][1]}); replace or remove them"
        )
    if len(paths) < limit:
        images = images[: len(paths)].copy()
    fingerprint = file_fingerprint(paths, root=folder, extra=_fingerprint_extra(width, height))
    return ImageSet(tuple(paths), images, tuple(skipped), fingerprint)


def _check_size(size: tuple[int, int]) -> tuple[int, int]:
    """Validate a (width, height) pair and return it."""
    if len(size) != 2 or not all(_is_int(v) and v > 0 for v in size):
        raise ValueError(f"size must be (width, height) with positive integers, got {size!r}")
    return int(size[0]), int(size[1])


def _check_max_images(max_images: int | None) -> None:
    """Validate ``max_images``: None or an integer of at least 1."""
    if max_images is not None and not (_is_int(max_images) and max_images >= 1):
        raise ValueError(f"max_images must be None or an integer >= 1, got {max_images!r}")


def _is_int(value: object) -> bool:
    """True for Python and NumPy integers, False for bool."""
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _resize(img: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize to (width, height): area averaging when shrinking, bilinear otherwise."""
    src_height, src_width = img.shape[:2]
    if (src_width, src_height) == (width, height):
        return img
    shrinking = width <= src_width and height <= src_height
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return cv2.resize(img, (width, height), interpolation=interpolation)


def _report_skipped(
    folder: Path, skipped: list[tuple[Path, str]], attempted: int, noun: str = "images"
) -> None:
    """Log one warning naming how many files were skipped and the first few."""
    if not skipped:
        return
    names = ", ".join(
        f"{_relative_name(path, folder)} ({reason})" for path, reason in skipped[:_WARN_NAMES]
    )
    more = ", ..." if len(skipped) > _WARN_NAMES else ""
    logger.warning(
        "skipped %d of %d %s in %s: %s%s", len(skipped), attempted, noun, folder, names, more
    )


def _fingerprint_extra(width: int, height: int) -> str:
    """The non-file part of an image set's fingerprint."""
    return f"size={width}x{height};pipeline={_PIPELINE_VERSION}"


def file_fingerprint(paths: Sequence[Path], root: Path | None = None, extra: str = "") -> str:
    """Hash file names and contents into one SHA-256 hex digest.

    Files are hashed in order of their names (relative to ``root`` when given, else as given),
    so the order of ``paths`` does not matter. Each name and each file's own digest enter the
    hash with fixed framing, so different splits of the same bytes cannot collide.

    Args:
        paths: The files to hash.
        root: Folder the names are taken relative to, so that moving the folder keeps the
            fingerprint; every path must lie under it.
        extra: Further text to hash, such as the output size.

    Returns:
        The hex digest.

    Raises:
        ValueError: If a path does not lie under ``root``.
        OSError: If a file cannot be read.
    """
    named = sorted((_relative_name(Path(p), root), Path(p)) for p in paths)
    digest = hashlib.sha256()
    for name, path in named:
        encoded = name.encode("utf-8", "surrogateescape")
        digest.update(len(encoded).to_bytes(8, "little"))
        digest.update(encoded)
        digest.update(file_sha256(path))
    digest.update(b"extra:" + extra.encode("utf-8"))
    return digest.hexdigest()


def _relative_name(path: Path, root: Path | None) -> str:
    """The path as a POSIX string, relative to ``root`` when given."""
    return (path.relative_to(root) if root is not None else path).as_posix()


def file_sha256(path: Path) -> bytes:
    """SHA-256 of one file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK_BYTES):
            digest.update(chunk)
    return digest.digest()
