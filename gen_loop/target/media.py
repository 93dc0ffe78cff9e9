"""Load a target given as a folder of images and/or videos, or as one video file.

Video frames are sampled (every ``video_stride``-th frame, at most ``video_max_frames`` per
video) and then treated exactly like images: resized the same way and stacked into one
:class:`~gen_loop.target.ImageSet`, where a frame is named ``<video>#frame=<index>``. A file that
cannot be read, image or video, is skipped and named in one warning; a target with nothing
readable stops the run.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from gen_loop._imageio import IMAGE_EXTENSIONS, UnreadableImageError, find_files, read_image_rgb
from gen_loop.errors import InputDataError
from gen_loop.target.images import (
    ImageSet,
    _check_max_images,
    _check_size,
    _fingerprint_extra,
    _report_skipped,
    _resize,
    file_fingerprint,
)
from gen_loop.target.video import (
    VIDEO_EXTENSIONS,
    UnreadableVideoError,
    frame_path,
    is_video,
    iter_video_frames,
)

__all__ = ["MEDIA_EXTENSIONS", "list_media", "load_media"]

MEDIA_EXTENSIONS: tuple[str, ...] = IMAGE_EXTENSIONS + VIDEO_EXTENSIONS
"""File suffixes a target folder is searched for, compared case-insensitively."""


def list_media(
    path: Path, recursive: bool = True, what: str = "target"
) -> tuple[Path, list[Path]]:
    """List the image and video files of a target.

    Args:
        path: A folder of images and/or videos, or one video file.
        recursive: Also search sub-folders of a folder.
        what: What the path is, for the messages (``target``; ``analyze`` says ``set``).

    Returns:
        (root, files): the folder that names are taken relative to (the video's folder for a
        single video) and the files, sorted by path.

    Raises:
        InputDataError: If ``path`` does not exist, is a file but not a video, or is a folder
            with no image or video file.
    """
    path = Path(path)
    if not path.exists():
        raise InputDataError(
            f"{what} {path} does not exist; give a folder of images/videos or a video file"
        )
    if path.is_file():
        if not is_video(path):
            raise InputDataError(
                f"{what} {path} is a file but not a video ({', '.join(VIDEO_EXTENSIONS)}); "
                "give a video file or a folder of images/videos"
            )
        return path.parent, [path]
    return path, find_files(path, MEDIA_EXTENSIONS, recursive, f"{what} folder", "image or video")


def load_media(
    path: Path,
    size: tuple[int, int],
    max_images: int | None = None,
    video_stride: int = 10,
    video_max_frames: int | None = 300,
    what: str = "target",
) -> ImageSet:
    """Read the images and sampled video frames of a target, resized to ``size``.

    Files are taken in sorted path order; a video contributes its frames 0, stride,
    2*stride, ... in place. Resizing is that of :func:`~gen_loop.target.load_image_folder`, and
    for a folder of images alone the result, fingerprint included, is the same.

    The fingerprint hashes the relative names and bytes of the files that gave at least one
    picture, the size, and, when a video was read, the stride and the number of frames taken
    from each video (which, with the stride, says exactly which frames; ``video_max_frames``
    and ``max_images`` enter through it).

    Args:
        path: A folder of images and/or videos (searched recursively), or one video file.
        size: Output size as (width, height).
        max_images: Keep at most this many pictures (images and frames) in all; None keeps all.
        video_stride: Keep every this-many-th frame of each video.
        video_max_frames: Keep at most this many frames of each video; None keeps all.
        what: What the path is, for the messages (``target``; ``analyze`` says ``set``).

    Returns:
        The pictures, their names, the skipped files and a fingerprint of the inputs.

    Raises:
        ValueError: If a size, count or stride is not a positive integer (a programming error;
            the config is validated by the caller).
        InputDataError: If the target is missing, holds no image or video file, or nothing in
            it is readable.
    """
    width, height = _check_size(size)
    _check_max_images(max_images)
    root, files = list_media(path, what=what)
    pictures: list[np.ndarray] = []
    names: list[Path] = []
    used: list[Path] = []
    frames_per_video: list[tuple[str, int]] = []
    skipped: list[tuple[Path, str]] = []
    for file in files:
        room = None if max_images is None else max_images - len(names)
        if room == 0:
            break
        if is_video(file):
            limit = _min_or_none(video_max_frames, room)
            try:
                # A video is all or nothing: frames reach `pictures` only once it has decoded.
                frames = [
                    (index, _resize(rgb, width, height))
                    for index, rgb in iter_video_frames(file, video_stride, limit)
                ]
            except UnreadableVideoError as err:
                skipped.append((file, err.reason))
                continue
            pictures.extend(frame for _, frame in frames)
            names.extend(frame_path(file, index) for index, _ in frames)
            frames_per_video.append((file.relative_to(root).as_posix(), len(frames)))
        else:
            try:
                img = read_image_rgb(file)
            except UnreadableImageError as err:
                skipped.append((file, err.reason))
                continue
            pictures.append(_resize(img, width, height))
            names.append(file)
        used.append(file)
    _report_skipped(root, skipped, len(used) + len(skipped), noun="files")
    if not names:
        raise InputDataError(
            f"nothing readable in {path}: all {len(skipped)} image/video files failed "
            f"(first: {skipped[0][0].name}, {skipped[0][1]}); replace or remove them"
        )
    extra = _fingerprint_extra(width, height)
    if frames_per_video:
        extra += f";video_stride={video_stride};frames={json.dumps(frames_per_video)}"
    fingerprint = file_fingerprint(used, root=root, extra=extra)
    return ImageSet(tuple(names), np.stack(pictures), tuple(skipped), fingerprint)


def _min_or_none(*limits: int | None) -> int | None:
    """The smallest limit that is not None; None when all are None."""
    given = [limit for limit in limits if limit is not None]
    return min(given) if given else None
