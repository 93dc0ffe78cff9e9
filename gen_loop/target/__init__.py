"""Target stage: the folder of real images the generated images should resemble."""

from __future__ import annotations

from gen_loop.target.images import (
    IMAGE_EXTENSIONS,
    ImageSet,
    UnreadableImageError,
    file_fingerprint,
    list_images,
    load_image_folder,
    read_image_rgb,
)

__all__ = [
    "IMAGE_EXTENSIONS",
    "ImageSet",
    "UnreadableImageError",
    "file_fingerprint",
    "list_images",
    "load_image_folder",
    "read_image_rgb",
]
