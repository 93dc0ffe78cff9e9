"""Target stage: the folder of real images (and/or videos) the generated images should resemble."""

from __future__ import annotations

from gen_loop._imageio import IMAGE_EXTENSIONS, UnreadableImageError, read_image_rgb
from gen_loop.target.images import ImageSet, file_fingerprint, list_images, load_image_folder
from gen_loop.target.media import MEDIA_EXTENSIONS, list_media, load_media
from gen_loop.target.video import (
    VIDEO_EXTENSIONS,
    UnreadableVideoError,
    frame_path,
    is_video,
    iter_video_frames,
    read_video_frames,
)

__all__ = [
    "IMAGE_EXTENSIONS",
    "MEDIA_EXTENSIONS",
    "VIDEO_EXTENSIONS",
    "ImageSet",
    "UnreadableImageError",
    "UnreadableVideoError",
    "file_fingerprint",
    "frame_path",
    "is_video",
    "iter_video_frames",
    "list_images",
    "list_media",
    "load_image_folder",
    "load_media",
    "read_image_rgb",
    "read_video_frames",
]
