"""Read frames of a video file as RGB uint8 arrays, sampled with a stride.

Client footage often comes as dashcam or CCTV video rather than stills. Frames are decoded with
OpenCV (FFmpeg backend where the build has one) and every ``stride``-th frame is kept, so
near-duplicate neighbouring frames do not dominate the target. A sampled frame is named
``<video>#frame=<index>`` (:func:`frame_path`), with ``index`` counted from 0 in decode order.
"""

from __future__ import annotations

from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from gen_loop._imageio import UnreadableFileError, bgr_to_rgb, link_problem

if TYPE_CHECKING:
    from collections.abc import Generator, Iterator

__all__ = [
    "VIDEO_EXTENSIONS",
    "UnreadableVideoError",
    "frame_path",
    "is_video",
    "iter_video_frames",
    "read_video_frames",
]

VIDEO_EXTENSIONS: tuple[str, ...] = (".mp4", ".avi", ".mkv", ".mov", ".m4v", ".webm")
"""File suffixes taken as videos, compared case-insensitively."""

FRAME_MARK = "#frame="
"""What separates a video's file name from a frame index in :func:`frame_path`."""


class UnreadableVideoError(UnreadableFileError):
    """A video file cannot be opened or yields no frame.

    Attributes:
        path: The file.
        reason: Why it cannot be read, without the path (for example "cannot open video").
    """

    kind = "video"


def is_video(path: Path) -> bool:
    """True when the suffix of ``path`` is in :data:`VIDEO_EXTENSIONS` (any letter case)."""
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def frame_path(video: Path, index: int) -> Path:
    """The identity of one frame: ``video.mp4`` and 120 give ``video.mp4#frame=120``.

    A ``Path`` so that it sits next to image paths in :class:`~gen_loop.target.ImageSet`; it
    names no file on disk.
    """
    video = Path(video)
    return video.with_name(f"{video.name}{FRAME_MARK}{index}")


def iter_video_frames(
    path: Path, stride: int = 1, max_frames: int | None = None
) -> Iterator[tuple[int, np.ndarray]]:
    """Decode a video and yield every ``stride``-th frame with its index.

    Frames between samples are grabbed without conversion; they must still be decoded, since
    inter-coded frames depend on their predecessors. A read failure after the first frame
    (a truncated file, say) ends the video early: the frames before it are kept. The video is
    opened on the first ``next()`` and released when the iterator is exhausted or closed.

    Args:
        path: The video file.
        stride: Keep frames 0, stride, 2*stride, ...
        max_frames: Stop after this many sampled frames; None reads to the end.

    Returns:
        An iterator of (index, frame): the frame's 0-based index in the video and a
        C-contiguous array of shape (H, W, 3), dtype uint8, RGB channel order.

    Raises:
        ValueError: If ``stride`` or ``max_frames`` is not a positive integer (at the call).
        UnreadableVideoError: If the file cannot be opened or no frame can be decoded (on the
            first ``next()``).
    """
    if not _is_positive_int(stride):
        raise ValueError(f"stride must be an integer >= 1, got {stride!r}")
    if max_frames is not None and not _is_positive_int(max_frames):
        raise ValueError(f"max_frames must be None or an integer >= 1, got {max_frames!r}")
    return _frames(Path(path), int(stride), None if max_frames is None else int(max_frames))


def _frames(
    path: Path, stride: int, max_frames: int | None
) -> Generator[tuple[int, np.ndarray], None, None]:
    """The generator behind :func:`iter_video_frames`."""
    if not path.is_file():
        raise UnreadableVideoError(path, link_problem(path) or "no such file")
    # VideoCapture takes a file name, not bytes, so some backends may read a '%' in it as an
    # image-sequence pattern; such names are rare in camera exports.
    with closing(_Capture(cv2.VideoCapture(str(path)))) as capture:
        if not capture.video.isOpened():
            raise UnreadableVideoError(path, "cannot open video")
        taken = 0
        index = 0
        while max_frames is None or taken < max_frames:
            if index % stride:
                if not capture.video.grab():
                    break
            else:
                ok, frame = capture.video.read()
                if not ok or frame is None or frame.size == 0:
                    break
                try:
                    rgb = _to_rgb(frame)
                except ValueError as err:
                    raise UnreadableVideoError(path, str(err)) from err
                yield index, rgb
                taken += 1
            index += 1
        if taken == 0:
            raise UnreadableVideoError(path, "no frame decoded")


def read_video_frames(
    path: Path, stride: int = 1, max_frames: int | None = None
) -> list[np.ndarray]:
    """Read every ``stride``-th frame of a video, at most ``max_frames`` of them.

    Frames keep the video's resolution; for long or large videos prefer
    :func:`iter_video_frames` and shrink each frame as it comes.

    Args:
        path: The video file.
        stride: Keep frames 0, stride, 2*stride, ...
        max_frames: Stop after this many sampled frames; None reads to the end.

    Returns:
        The sampled frames, each of shape (H, W, 3), dtype uint8, RGB channel order.

    Raises:
        ValueError: If ``stride`` or ``max_frames`` is not a positive integer.
        UnreadableVideoError: If the file cannot be opened or no frame can be decoded.
    """
    return [frame for _, frame in iter_video_frames(path, stride, max_frames)]


class _Capture:
    """Holds a ``cv2.VideoCapture`` so that ``contextlib.closing`` releases it."""

    def __init__(self, video: cv2.VideoCapture) -> None:
        self.video = video

    def close(self) -> None:
        self.video.release()


def _is_positive_int(value: object) -> bool:
    """True for Python and NumPy integers of at least 1, False for bool."""
    return isinstance(value, int | np.integer) and not isinstance(value, bool) and bool(value >= 1)


def _to_rgb(frame: np.ndarray) -> np.ndarray:
    """A decoded frame (BGR, or gray from some backends) as contiguous HxWx3 RGB uint8."""
    if frame.dtype != np.uint8:
        # CAP_PROP_CONVERT_RGB is on by default, so backends hand out 8-bit frames; anything
        # else means a setting this reader does not use.
        raise ValueError(f"unexpected frame type {frame.dtype}")
    return np.ascontiguousarray(bgr_to_rgb(frame))
