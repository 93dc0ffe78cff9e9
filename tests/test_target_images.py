"""Tests for gen_loop.target.images on real image files written to tmp_path."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import cv2
import numpy as np
import pytest
from PIL import Image

from gen_loop.errors import InputDataError
from gen_loop.target import (
    IMAGE_EXTENSIONS,
    ImageSet,
    UnreadableImageError,
    file_fingerprint,
    list_images,
    load_image_folder,
    read_image_rgb,
)
from gen_loop.target import images as images_module

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

LOGGER = "gen_loop.target.images"


def _write_rgb(path: Path, rgb: np.ndarray) -> Path:
    """Write an RGB uint8 array with PIL (independent of the cv2 reader under test)."""
    Image.fromarray(rgb, mode="RGB").save(path)
    return path


def _solid(height: int, width: int, rgb: tuple[int, int, int]) -> np.ndarray:
    return np.broadcast_to(np.array(rgb, dtype=np.uint8), (height, width, 3)).copy()


def _noise(height: int, width: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def _garbage(path: Path) -> Path:
    path.write_bytes(b"this is not an image" * 10)
    return path


def _truncated_jpeg(path: Path) -> Path:
    """A JPEG cut inside its header, which no decoder can read."""
    ok, encoded = cv2.imencode(".jpg", _noise(64, 64, seed=7))
    assert ok
    path.write_bytes(encoded.tobytes()[:200])
    return path


# --- read_image_rgb -------------------------------------------------------------------------


def test_red_png_reads_in_rgb_order(tmp_path: Path) -> None:
    path = _write_rgb(tmp_path / "red.png", _solid(4, 5, (255, 0, 0)))
    img = read_image_rgb(path)
    assert img.shape == (4, 5, 3)
    assert img.dtype == np.uint8
    assert img.flags.c_contiguous
    assert (img[..., 0] == 255).all()
    assert (img[..., 1:] == 0).all()


def test_cv2_written_bgr_file_reads_as_rgb(tmp_path: Path) -> None:
    rgb = _noise(6, 7, seed=1)
    path = tmp_path / "noise.png"
    assert cv2.imwrite(str(path), rgb[:, :, ::-1])
    np.testing.assert_array_equal(read_image_rgb(path), rgb)


def test_grayscale_png_gives_three_equal_channels(tmp_path: Path) -> None:
    gray = np.arange(0, 240, dtype=np.uint8).reshape(12, 20)
    path = tmp_path / "gray.png"
    Image.fromarray(gray, mode="L").save(path)
    img = read_image_rgb(path)
    assert img.shape == (12, 20, 3)
    for channel in range(3):
        np.testing.assert_array_equal(img[..., channel], gray)


def test_rgba_png_drops_alpha_and_keeps_colour(tmp_path: Path) -> None:
    rgba = np.zeros((4, 4, 4), dtype=np.uint8)
    rgba[..., :3] = (10, 200, 30)
    rgba[:2, :, 3] = 0  # fully transparent: compositing over black would give (0, 0, 0)
    rgba[2:, :, 3] = 128
    path = tmp_path / "alpha.png"
    Image.fromarray(rgba, mode="RGBA").save(path)
    img = read_image_rgb(path)
    assert img.shape == (4, 4, 3)
    np.testing.assert_array_equal(img, _solid(4, 4, (10, 200, 30)))


def test_16_bit_png_is_rounded_not_truncated(tmp_path: Path) -> None:
    # 25829 / 257 = 100.5..., rounds to 101; truncation (>> 8) would give 100.
    values = np.array([[65535, 32896, 0, 25829]], dtype=np.uint16)
    path = tmp_path / "deep.png"
    assert cv2.imwrite(str(path), values)
    assert cv2.imread(str(path), cv2.IMREAD_UNCHANGED).dtype == np.uint16
    img = read_image_rgb(path)
    np.testing.assert_array_equal(img[0, :, 0], [255, 128, 0, 101])
    np.testing.assert_array_equal(img[..., 0], img[..., 2])


def test_16_bit_colour_png_keeps_channel_order(tmp_path: Path) -> None:
    bgr = np.zeros((2, 2, 3), dtype=np.uint16)
    bgr[..., 2] = 65535  # red in OpenCV's BGR order
    bgr[..., 1] = 32896
    path = tmp_path / "deep_colour.png"
    assert cv2.imwrite(str(path), bgr)
    np.testing.assert_array_equal(read_image_rgb(path), _solid(2, 2, (255, 128, 0)))


def test_float_tiff_is_clipped_to_unit_range(tmp_path: Path) -> None:
    bgr = np.array([[[2.0, 0.5, -0.5]]], dtype=np.float32)  # B, G, R
    path = tmp_path / "float.tiff"
    assert cv2.imwrite(str(path), bgr)
    np.testing.assert_array_equal(read_image_rgb(path)[0, 0], [0, 128, 255])


@pytest.mark.parametrize("suffix", [".bmp", ".webp", ".tif"])
def test_lossless_formats_read_exactly(tmp_path: Path, suffix: str) -> None:
    rgb = _noise(9, 11, seed=2)
    path = tmp_path / f"img{suffix}"
    params = [cv2.IMWRITE_WEBP_QUALITY, 101] if suffix == ".webp" else []  # 101 = lossless
    assert cv2.imwrite(str(path), rgb[:, :, ::-1], params)
    np.testing.assert_array_equal(read_image_rgb(path), rgb)


def test_jpeg_reads_approximately(tmp_path: Path) -> None:
    path = tmp_path / "photo.jpg"
    Image.fromarray(_solid(16, 16, (200, 40, 90))).save(path, quality=95)
    img = read_image_rgb(path)
    assert img.shape == (16, 16, 3)
    assert np.abs(img.astype(int) - [200, 40, 90]).max() <= 4


def test_non_ascii_path_reads(tmp_path: Path) -> None:
    folder = tmp_path / "Bilder_ü"
    folder.mkdir()
    path = _write_rgb(folder / "grün_é.png", _solid(3, 3, (0, 255, 0)))
    np.testing.assert_array_equal(read_image_rgb(path), _solid(3, 3, (0, 255, 0)))


@pytest.mark.parametrize("make", [_garbage, _truncated_jpeg])
def test_undecodable_file_raises_naming_it(tmp_path: Path, make: Callable[[Path], Path]) -> None:
    path = make(tmp_path / "bad.jpg")
    with pytest.raises(UnreadableImageError, match=r"bad\.jpg") as info:
        read_image_rgb(path)
    assert isinstance(info.value, InputDataError)
    assert info.value.path == path


def test_empty_file_raises(tmp_path: Path) -> None:
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    with pytest.raises(UnreadableImageError, match=r"empty\.png"):
        read_image_rgb(path)


def test_single_channel_3d_array_becomes_gray_rgb(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    decoded = np.arange(6, dtype=np.uint8).reshape(2, 3, 1)
    monkeypatch.setattr(images_module.cv2, "imread", lambda *_: decoded)
    img = read_image_rgb(tmp_path / "one_channel.png")
    assert img.shape == (2, 3, 3)
    for channel in range(3):
        np.testing.assert_array_equal(img[..., channel], decoded[..., 0])


@pytest.mark.parametrize(
    "decoded",
    [
        np.zeros((0, 4, 3), dtype=np.uint8),
        np.zeros((2, 2, 2), dtype=np.uint8),
        np.zeros((2, 2, 3, 1), dtype=np.uint8),
        np.zeros((2, 2, 3), dtype=np.int32),
    ],
    ids=["zero-size", "two-channels", "4-d", "int32"],
)
def test_unexpected_decoded_array_raises(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, decoded: np.ndarray
) -> None:
    monkeypatch.setattr(images_module.cv2, "imread", lambda *_: decoded)
    with pytest.raises(UnreadableImageError, match=r"odd\.png"):
        read_image_rgb(tmp_path / "odd.png")


# --- list_images ----------------------------------------------------------------------------


def test_list_images_matches_extensions_case_insensitively(tmp_path: Path) -> None:
    for name in ["b.JPG", "a.png", "c.TiFf", "notes.txt", "d.jpeg.bak"]:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "dir.png").mkdir()
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "e.Webp").write_bytes(b"x")
    found = list_images(tmp_path)
    assert found == [tmp_path / "a.png", tmp_path / "b.JPG", tmp_path / "c.TiFf", sub / "e.Webp"]
    assert list_images(tmp_path, recursive=False) == found[:3]
    assert ".jpg" in IMAGE_EXTENSIONS
    assert ".tiff" in IMAGE_EXTENSIONS


def test_missing_folder_raises_naming_it(tmp_path: Path) -> None:
    folder = tmp_path / "nowhere"
    with pytest.raises(InputDataError, match="does not exist") as info:
        load_image_folder(folder, (8, 8))
    assert str(folder) in str(info.value)


def test_file_instead_of_folder_raises(tmp_path: Path) -> None:
    path = _write_rgb(tmp_path / "one.png", _solid(2, 2, (1, 2, 3)))
    with pytest.raises(InputDataError, match="not a directory") as info:
        list_images(path)
    assert str(path) in str(info.value)


def test_folder_without_images_raises_listing_extensions(tmp_path: Path) -> None:
    (tmp_path / "readme.txt").write_text("no pictures here")
    with pytest.raises(InputDataError) as info:
        load_image_folder(tmp_path, (8, 8))
    message = str(info.value)
    assert str(tmp_path) in message
    assert ".png" in message
    assert ".webp" in message


def test_folder_with_only_garbage_raises(tmp_path: Path) -> None:
    _garbage(tmp_path / "a.jpg")
    _truncated_jpeg(tmp_path / "b.jpg")
    with pytest.raises(InputDataError, match="no readable image") as info:
        load_image_folder(tmp_path, (8, 8))
    assert str(tmp_path) in str(info.value)
    assert not isinstance(info.value, UnreadableImageError)


# --- load_image_folder ----------------------------------------------------------------------


def test_unreadable_files_are_skipped_with_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _write_rgb(tmp_path / "a.png", _solid(8, 8, (255, 0, 0)))
    _garbage(tmp_path / "b_garbage.jpg")
    _truncated_jpeg(tmp_path / "c_truncated.jpg")
    _write_rgb(tmp_path / "d.png", _solid(8, 8, (0, 0, 255)))
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        result = load_image_folder(tmp_path, (8, 8))
    assert result.paths == (tmp_path / "a.png", tmp_path / "d.png")
    assert result.images.shape == (2, 8, 8, 3)
    assert [path.name for path, _ in result.skipped] == ["b_garbage.jpg", "c_truncated.jpg"]
    assert all(reason for _, reason in result.skipped)
    warnings = [r for r in caplog.records if r.name == LOGGER and r.levelno == logging.WARNING]
    assert len(warnings) == 1
    message = warnings[0].getMessage()
    assert "skipped 2 of 4" in message
    assert str(tmp_path) in message
    assert "b_garbage.jpg" in message
    assert "c_truncated.jpg" in message
    assert (result.images[1][..., 2] == 255).all()  # d.png is the second row, blue


def test_no_warning_when_everything_reads(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _write_rgb(tmp_path / "a.png", _solid(4, 4, (1, 2, 3)))
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        result = load_image_folder(tmp_path, (4, 4))
    assert result.skipped == ()
    assert not [r for r in caplog.records if r.name == LOGGER]


def test_images_of_different_sizes_come_out_at_width_height(tmp_path: Path) -> None:
    # Left half red, right half blue: a transposed resize would mix the colours by rows.
    for name, (height, width) in {"a.png": (20, 40), "b.png": (100, 30), "c.png": (7, 9)}.items():
        img = _solid(height, width, (0, 0, 255))
        img[:, : width // 2] = (255, 0, 0)
        _write_rgb(tmp_path / name, img)
    result = load_image_folder(tmp_path, (64, 32))
    assert isinstance(result, ImageSet)
    assert result.images.shape == (3, 32, 64, 3)
    assert result.images.dtype == np.uint8
    np.testing.assert_array_equal(result.images[:, :, 0], np.full((3, 32, 3), [255, 0, 0]))
    np.testing.assert_array_equal(result.images[:, :, -1], np.full((3, 32, 3), [0, 0, 255]))


def test_shrinking_averages_pixels(tmp_path: Path) -> None:
    # A one-pixel checkerboard shrunk by 2 must average to grey (area), not pick one colour.
    board = ((np.indices((16, 16)).sum(axis=0) % 2) * 255).astype(np.uint8)
    Image.fromarray(board, mode="L").save(tmp_path / "board.png")
    result = load_image_folder(tmp_path, (8, 8))
    assert np.abs(result.images.astype(int) - 128).max() <= 1


def test_max_images_takes_first_readable_in_sorted_order(tmp_path: Path) -> None:
    _garbage(tmp_path / "a_bad.jpg")
    for index in range(5):
        _write_rgb(tmp_path / f"img_{4 - index}.png", _solid(4, 4, (index * 50, 0, 0)))
    first = load_image_folder(tmp_path, (4, 4), max_images=3)
    again = load_image_folder(tmp_path, (4, 4), max_images=3)
    assert [p.name for p in first.paths] == ["img_0.png", "img_1.png", "img_2.png"]
    assert first.images.shape == (3, 4, 4, 3)
    np.testing.assert_array_equal(first.images[:, 0, 0, 0], [200, 150, 100])
    assert again.paths == first.paths
    assert again.fingerprint == first.fingerprint
    np.testing.assert_array_equal(again.images, first.images)
    assert len(load_image_folder(tmp_path, (4, 4), max_images=50).paths) == 5


@pytest.mark.parametrize(
    ("size", "max_images"),
    [((0, 8), None), ((8, -1), None), ((8,), None), ((8.0, 8), None), ((8, 8), 0), ((8, 8), 1.5)],
)
def test_bad_arguments_raise_value_error(
    tmp_path: Path, size: tuple[int, int], max_images: int | None
) -> None:
    _write_rgb(tmp_path / "a.png", _solid(4, 4, (1, 2, 3)))
    with pytest.raises(ValueError):
        load_image_folder(tmp_path, size, max_images=max_images)


# --- fingerprints ---------------------------------------------------------------------------


def _folder_of_noise(folder: Path) -> Path:
    folder.mkdir()
    for index in range(3):
        _write_rgb(folder / f"n{index}.bmp", _noise(5, 5, seed=index))
    return folder


def test_fingerprint_depends_on_contents_not_location(tmp_path: Path) -> None:
    first = load_image_folder(_folder_of_noise(tmp_path / "one"), (5, 5))
    second = load_image_folder(_folder_of_noise(tmp_path / "two"), (5, 5))
    assert len(first.fingerprint) == 64
    assert first.fingerprint == second.fingerprint

    path = tmp_path / "two" / "n1.bmp"
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x01  # one pixel byte of uncompressed BMP data: still decodes
    path.write_bytes(bytes(data))
    changed = load_image_folder(tmp_path / "two", (5, 5))
    assert changed.paths == tuple(tmp_path / "two" / p.name for p in first.paths)
    assert changed.fingerprint != first.fingerprint


def test_fingerprint_depends_on_size_and_names(tmp_path: Path) -> None:
    folder = _folder_of_noise(tmp_path / "one")
    base = load_image_folder(folder, (5, 5)).fingerprint
    assert load_image_folder(folder, (6, 5)).fingerprint != base
    (folder / "n2.bmp").rename(folder / "renamed.bmp")
    assert load_image_folder(folder, (5, 5)).fingerprint != base


def test_file_fingerprint_ignores_argument_order_and_uses_extra(tmp_path: Path) -> None:
    paths = [_write_rgb(tmp_path / f"f{i}.png", _noise(3, 3, seed=i)) for i in range(3)]
    forward = file_fingerprint(paths, root=tmp_path)
    assert file_fingerprint(paths[::-1], root=tmp_path) == forward
    assert file_fingerprint(paths, root=tmp_path, extra="x") != forward
    assert file_fingerprint(paths[:2], root=tmp_path) != forward
    assert file_fingerprint(paths) != forward  # absolute names differ from relative ones


def test_file_fingerprint_reads_large_files_in_chunks(tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    payload = np.random.default_rng(3).integers(0, 256, 3 * (1 << 20) + 17, dtype=np.uint8)
    big.write_bytes(payload.tobytes())
    before = file_fingerprint([big], root=tmp_path)
    payload[(1 << 20) + 5] ^= 0xFF  # a byte in the second chunk
    big.write_bytes(payload.tobytes())
    assert file_fingerprint([big], root=tmp_path) != before
