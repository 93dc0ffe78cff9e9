"""Image files in and out, for the target readers and the generators' dataset writers.

Inside gen_loop an image is an HxWx3 uint8 array in RGB order. OpenCV decodes to and encodes
from BGR, so the channel swap happens here, at the OpenCV boundary, and nowhere else.
"""

from __future__ import annotations

import errno
from pathlib import Path
from typing import ClassVar

import cv2
import numpy as np

from gen_loop.errors import InputDataError

__all__ = [
    "IMAGE_EXTENSIONS",
    "UnreadableFileError",
    "UnreadableImageError",
    "bgr_to_rgb",
    "files_with_suffix",
    "find_files",
    "link_problem",
    "read_image_rgb",
    "write_image_rgb",
]

IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
"""File suffixes taken as images, compared case-insensitively."""


class UnreadableFileError(InputDataError):
    """A media file cannot be decoded; subclasses say which kind of file.

    Attributes:
        path: The file.
        reason: Why it cannot be read, without the path (for example "cannot decode").
    """

    kind: ClassVar[str] = "file"

    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"cannot read {self.kind} {path}: {reason}")


class UnreadableImageError(UnreadableFileError):
    """An image file cannot be decoded into an RGB picture."""

    kind = "image"


def files_with_suffix(folder: Path, suffixes: tuple[str, ...], recursive: bool) -> list[Path]:
    """The files under ``folder`` whose suffix is in ``suffixes`` (any letter case), sorted.

    A broken or looping symbolic link with such a suffix is listed too: the readers then skip
    it and name it (:func:`link_problem`), rather than it vanishing without a word.
    """
    entries = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(
        p
        for p in entries
        if p.suffix.lower() in suffixes and (p.is_file() or link_problem(p) is not None)
    )


def link_problem(path: Path) -> str | None:
    """Why a symbolic link leads to no file ("symlink loop", "broken symlink"); None for a
    path that is no link or whose link resolves."""
    if not path.is_symlink():
        return None
    try:
        path.stat()
    except OSError as err:
        return "symlink loop" if err.errno == errno.ELOOP else "broken symlink"
    return None


def find_files(
    folder: Path, suffixes: tuple[str, ...], recursive: bool, folder_noun: str, file_noun: str
) -> list[Path]:
    """:func:`files_with_suffix`, with an error when there is none.

    Args:
        folder: An existing folder.
        suffixes: The accepted suffixes, lower case.
        recursive: Also search sub-folders.
        folder_noun: What the folder is, for the message (``image folder``).
        file_noun: What the files are, for the message (``image``).

    Raises:
        InputDataError: If no file matches; the message names the folder and the suffixes.
    """
    paths = files_with_suffix(folder, suffixes, recursive)
    if not paths:
        where = "or its sub-folders " if recursive else ""
        raise InputDataError(
            f"{folder_noun} {folder} {where}holds no {file_noun} file; accepted extensions are "
            f"{', '.join(suffixes)} (any letter case)"
        )
    return paths


def read_image_rgb(path: Path) -> np.ndarray:
    """Read one image file as an RGB uint8 array.

    Grayscale becomes three equal channels. An alpha channel is dropped, not composited over a
    background: the stored colour of each pixel is kept, because any background colour would be
    an invented colour the generator does not render. 16-bit images are scaled by
    ``round(value / 257)`` so that 65535 maps to 255; float images are clipped to [0, 1] and
    scaled by 255. EXIF orientation is not applied, and a multi-page TIFF gives its first page.

    Args:
        path: The image file.

    Returns:
        A C-contiguous array of shape (H, W, 3), dtype uint8, RGB channel order.

    Raises:
        UnreadableImageError: If the file cannot be decoded, is empty, or has an unsupported
            pixel type or channel count.
    """
    path = Path(path)
    raw = _decode(path)
    if raw.size == 0:
        raise UnreadableImageError(path, "zero size")
    try:
        rgb = bgr_to_rgb(_to_uint8(raw))
    except ValueError as err:
        raise UnreadableImageError(path, str(err)) from err
    return np.ascontiguousarray(rgb)


def write_image_rgb(path: Path, rgb: np.ndarray) -> bool:
    """Write an RGB uint8 array as an image file, its format chosen by the suffix of ``path``.

    Returns:
        Whether OpenCV wrote the file (it returns False, without raising, on some failures).
    """
    return bool(cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)))


def bgr_to_rgb(img: np.ndarray) -> np.ndarray:
    """Turn a decoded OpenCV array (gray, BGR or BGRA) into HxWx3 RGB, a view where it can.

    Raises:
        ValueError: If the array is neither gray nor 3 or 4 channels.
    """
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if img.ndim == 2:
        return np.repeat(img[:, :, None], 3, axis=2)
    if img.ndim == 3 and img.shape[2] in (3, 4):
        return img[:, :, 2::-1]  # BGR(A) -> RGB; the slice stops before alpha
    raise ValueError(f"unexpected array shape {img.shape}")


def _decode(path: Path) -> np.ndarray:
    """Decode a file with OpenCV, keeping bit depth and channels."""
    problem = link_problem(path)
    if problem is not None:
        raise UnreadableImageError(path, problem)
    try:
        if str(path).isascii():
            raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        else:
            # cv2.imread fails on non-ASCII paths on Windows; decoding the bytes works everywhere.
            raw = cv2.imdecode(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    except (OSError, cv2.error) as err:
        raise UnreadableImageError(path, f"cannot open ({err})") from err
    if raw is None:
        raise UnreadableImageError(path, "cannot decode")
    return raw


def _to_uint8(raw: np.ndarray) -> np.ndarray:
    """Convert pixel values of any supported depth to uint8."""
    if raw.dtype == np.uint8:
        return raw
    if raw.dtype == np.uint16:
        # (v + 128) // 257 is round(v / 257) exactly: v / 257 never has a fractional part of .5.
        return ((raw.astype(np.uint32) + 128) // 257).astype(np.uint8)
    if np.issubdtype(raw.dtype, np.floating):
        scaled = np.clip(np.nan_to_num(raw, nan=0.0), 0.0, 1.0) * 255.0
        return np.rint(scaled).astype(np.uint8)
    raise ValueError(f"unsupported pixel type {raw.dtype}")
