"""Tests for video targets: frames sampled from tiny videos written here with cv2.VideoWriter.

MJPG and mp4v are lossy, so pixel values are compared with a tolerance: a frame's index is
written as its brightness (frame i is 10*i) and read back within +-6.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from gen_loop.config import RunConfig
from gen_loop.config.schema import TargetConfig
from gen_loop.config.validate import check_run_config
from gen_loop.errors import ConfigError, InputDataError
from gen_loop.generator import ProceduralGenerator
from gen_loop.loop.target_data import load_target
from gen_loop.target import (
    VIDEO_EXTENSIONS,
    UnreadableVideoError,
    frame_path,
    iter_video_frames,
    load_image_folder,
    load_media,
    read_video_frames,
)

Compose = Callable[[list[str]], RunConfig]

WIDTH, HEIGHT = 64, 48
FOURCC = {".mp4": "mp4v", ".avi": "MJPG"}
TOLERANCE = 6


def _write_video(path: Path, frames: list[np.ndarray]) -> Path:
    """Write RGB frames to a video; skip the test when this OpenCV build lacks the codec."""
    height, width = frames[0].shape[:2]
    fourcc = cv2.VideoWriter.fourcc(*FOURCC[path.suffix.lower()])
    writer = cv2.VideoWriter(str(path), fourcc, 10.0, (width, height))
    if not writer.isOpened():
        pytest.skip(f"OpenCV here cannot write {FOURCC[path.suffix.lower()]} to {path.suffix}")
    for rgb in frames:
        writer.write(np.ascontiguousarray(rgb[:, :, ::-1]))  # the writer takes BGR
    writer.release()
    return path


def _counting_video(path: Path, n: int) -> Path:
    """A gray video whose frame i has every pixel at 10*i."""
    return _write_video(path, [np.full((HEIGHT, WIDTH, 3), 10 * i, np.uint8) for i in range(n)])


def _index_of(frame: np.ndarray) -> int:
    """The frame index a _counting_video frame encodes, checked to be unambiguous."""
    mean = float(frame.mean())
    index = round(mean / 10)
    assert abs(mean - 10 * index) <= TOLERANCE, mean
    return index


def _write_image(path: Path, value: int) -> Path:
    Image.fromarray(np.full((HEIGHT, WIDTH, 3), value, np.uint8)).save(path)
    return path


# --- read_video_frames ---------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".mp4", ".avi"])
def test_frames_are_read_in_rgb_order(tmp_path: Path, suffix: str) -> None:
    red = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    red[..., 0] = 255
    video = _write_video(tmp_path / f"red{suffix}", [red] * 3)
    frames = read_video_frames(video)
    assert len(frames) == 3
    frame = frames[0]
    assert frame.shape == (HEIGHT, WIDTH, 3) and frame.dtype == np.uint8
    assert frame.flags.c_contiguous
    r, g, b = (float(frame[..., c].mean()) for c in range(3))
    assert r > 200 and g < 60 and b < 60


@pytest.mark.parametrize(
    ("stride", "max_frames", "expected"),
    [
        (1, None, list(range(20))),
        (5, None, [0, 5, 10, 15]),
        (3, 4, [0, 3, 6, 9]),
        (7, 100, [0, 7, 14]),
        (25, None, [0]),  # a stride longer than the video still gives frame 0
    ],
)
def test_stride_and_max_frames_pick_the_right_frames(
    tmp_path: Path, stride: int, max_frames: int | None, expected: list[int]
) -> None:
    video = _counting_video(tmp_path / "count.avi", 20)
    sampled = list(iter_video_frames(video, stride, max_frames))
    assert [index for index, _ in sampled] == expected
    assert [_index_of(frame) for _, frame in sampled] == expected  # the content, not only names
    assert len(read_video_frames(video, stride, max_frames)) == len(expected)


def test_bad_sampling_settings_are_value_errors_at_the_call(tmp_path: Path) -> None:
    for stride, max_frames in [(0, None), (1, 0), (True, None), (2.0, None)]:
        with pytest.raises(ValueError):
            iter_video_frames(tmp_path / "never_opened.mp4", stride, max_frames)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("garbage.mp4", b"this is not a video" * 50, "cannot open video"),
        ("empty.avi", b"", "cannot open video"),
        ("missing.mp4", None, "no such file"),
    ],
)
def test_unreadable_video_names_the_file(
    tmp_path: Path, name: str, content: bytes | None, reason: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(UnreadableVideoError) as info:
        read_video_frames(path)
    assert isinstance(info.value, InputDataError)
    assert info.value.path == path and info.value.reason == reason
    assert name in str(info.value)


def test_video_extensions_are_matched_in_any_case(tmp_path: Path) -> None:
    assert {".mp4", ".avi", ".mkv", ".mov", ".m4v", ".webm"} == set(VIDEO_EXTENSIONS)
    _counting_video(tmp_path / "UPPER.AVI", 3)
    result = load_media(tmp_path, (WIDTH, HEIGHT), video_stride=1)
    assert [p.name for p in result.paths] == [f"UPPER.AVI#frame={i}" for i in range(3)]


# --- load_media: folders, single files, skips ----------------------------------------------


def test_mixed_folder_gives_images_and_frames_in_name_order(tmp_path: Path) -> None:
    _write_image(tmp_path / "a.png", 30)
    _counting_video(tmp_path / "b.mp4", 12)
    _write_image(tmp_path / "c.jpg", 200)
    result = load_media(tmp_path, (32, 24), video_stride=4, video_max_frames=None)
    names = [p.name for p in result.paths]
    assert names == ["a.png", "b.mp4#frame=0", "b.mp4#frame=4", "b.mp4#frame=8", "c.jpg"]
    assert result.paths[1] == frame_path(tmp_path / "b.mp4", 0)
    assert result.images.shape == (5, 24, 32, 3) and result.images.dtype == np.uint8
    means = [float(img.mean()) for img in result.images]
    assert means[0] == pytest.approx(30, abs=2) and means[4] == pytest.approx(200, abs=3)
    assert [_index_of(img) for img in result.images[1:4]] == [0, 4, 8]
    assert result.skipped == ()


def test_max_images_caps_the_total_and_max_frames_each_video(tmp_path: Path) -> None:
    _write_image(tmp_path / "a.png", 30)
    _counting_video(tmp_path / "b.avi", 10)
    _counting_video(tmp_path / "c.avi", 10)
    per_video = load_media(tmp_path, (WIDTH, HEIGHT), video_stride=1, video_max_frames=3)
    assert [p.name for p in per_video.paths] == [
        "a.png",
        *(f"b.avi#frame={i}" for i in range(3)),
        *(f"c.avi#frame={i}" for i in range(3)),
    ]
    capped = load_media(tmp_path, (WIDTH, HEIGHT), max_images=5, video_stride=2)
    assert [p.name for p in capped.paths] == [
        "a.png",
        *(f"b.avi#frame={i}" for i in (0, 2, 4, 6)),
    ]
    assert capped.images.shape[0] == 5


def test_single_video_file_as_target(tmp_path: Path) -> None:
    video = _counting_video(tmp_path / "dashcam.mp4", 15)
    _write_image(tmp_path / "ignored.png", 0)  # a single file target reads that file alone
    result = load_media(video, (WIDTH, HEIGHT), video_stride=5)
    assert [p.name for p in result.paths] == [f"dashcam.mp4#frame={i}" for i in (0, 5, 10)]
    assert all(p.parent == tmp_path for p in result.paths)
    assert [_index_of(img) for img in result.images] == [0, 5, 10]


def test_a_file_that_is_not_a_video_is_refused(tmp_path: Path) -> None:
    image = _write_image(tmp_path / "one.png", 0)
    with pytest.raises(InputDataError, match=r"one\.png.*not a video"):
        load_media(image, (WIDTH, HEIGHT))


def test_broken_video_is_a_counted_skip_named_in_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _write_image(tmp_path / "a.png", 10)
    _write_image(tmp_path / "b.png", 20)
    (tmp_path / "broken.mp4").write_bytes(b"\x00garbage" * 100)
    (tmp_path / "c.jpg").write_bytes(b"not a jpeg either")
    _counting_video(tmp_path / "good.avi", 5)
    with caplog.at_level(logging.WARNING):
        result = load_media(tmp_path, (WIDTH, HEIGHT), video_stride=1)
    assert [(p.name, reason) for p, reason in result.skipped] == [
        ("broken.mp4", "cannot open video"),
        ("c.jpg", "cannot decode"),
    ]
    assert len(result.paths) == 2 + 5
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    message = warnings[0].getMessage()
    assert "skipped 2 of 5 files" in message and str(tmp_path) in message
    assert "broken.mp4 (cannot open video)" in message and "c.jpg (cannot decode)" in message


def test_folder_whose_only_video_is_broken_stops_naming_the_folder(tmp_path: Path) -> None:
    folder = tmp_path / "client_cam"
    folder.mkdir()
    (folder / "broken.mp4").write_bytes(b"garbage" * 100)
    with pytest.raises(InputDataError) as info:
        load_media(folder, (WIDTH, HEIGHT))
    assert str(folder) in str(info.value) and "broken.mp4" in str(info.value)


def test_empty_or_missing_target_stops_naming_it(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("no media here")
    with pytest.raises(InputDataError, match="holds no image or video file"):
        load_media(tmp_path, (WIDTH, HEIGHT))
    with pytest.raises(InputDataError, match="does not exist"):
        load_media(tmp_path / "nope", (WIDTH, HEIGHT))


# --- fingerprints --------------------------------------------------------------------------


def test_fingerprint_follows_the_video_bytes_and_sampling(tmp_path: Path) -> None:
    video = _counting_video(tmp_path / "v.avi", 20)

    def fingerprint(stride: int = 2, max_frames: int | None = None) -> str:
        return load_media(tmp_path, (WIDTH, HEIGHT), None, stride, max_frames).fingerprint

    base = fingerprint()
    assert fingerprint() == base  # deterministic
    assert fingerprint(stride=3) != base
    assert fingerprint(max_frames=4) != base  # fewer frames taken
    assert fingerprint(max_frames=50) == base  # a cap above the frame count changes nothing
    _counting_video(video, 19)  # rewritten: other bytes
    assert fingerprint() != base


def test_image_only_folder_keeps_the_image_loader_fingerprint(tmp_path: Path) -> None:
    """So an embedding cache keyed by an image folder's fingerprint stays valid."""
    for i in range(3):
        _write_image(tmp_path / f"img_{i}.png", 40 * i)
    media = load_media(tmp_path, (16, 12), video_stride=7)
    images = load_image_folder(tmp_path, (16, 12))
    assert media.fingerprint == images.fingerprint
    assert media.paths == images.paths
    np.testing.assert_array_equal(media.images, images.images)


def test_load_target_passes_the_video_settings(tmp_path: Path) -> None:
    video = _counting_video(tmp_path / "cam.avi", 20)
    cfg = TargetConfig(path=str(video), max_images=4, video_stride=6, video_max_frames=None)
    target = load_target(cfg, ProceduralGenerator(64, 32), tmp_path / "cache")
    assert [p.name for p in target.images.paths] == [f"cam.avi#frame={i}" for i in (0, 6, 12, 18)]
    assert target.images.images.shape == (4, 32, 64, 3)
    assert target.description == f"video {video}"


# --- config --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("target.video_stride=0", "target.video_stride"),
        ("target.video_stride=-3", "target.video_stride"),
        ("target.video_max_frames=0", "target.video_max_frames"),
    ],
)
def test_bad_video_settings_are_config_errors_naming_the_key(
    assert_config_error: Callable[[str, str], ConfigError], override: str, key: str
) -> None:
    assert_config_error(override, key)


def test_video_settings_compose_and_a_video_file_is_a_valid_target_path(
    compose_run: Compose, config_error: Callable[..., ConfigError], tmp_path: Path
) -> None:
    default = compose_run(["debug=smoke"])
    assert (default.target.video_stride, default.target.video_max_frames) == (10, 300)
    video = _counting_video(tmp_path / "cam.mp4", 2)
    overrides = ["target.video_stride=2", "target.video_max_frames=null"]
    cfg = compose_run(["debug=smoke", "target=folder", f"target.path={video}", *overrides])
    assert (cfg.target.video_stride, cfg.target.video_max_frames) == (2, None)
    check_run_config(cfg)
    text = tmp_path / "notes.txt"
    text.write_text("x")
    bad = compose_run(["debug=smoke", "target=folder", f"target.path={text}"])
    config_error("target.path", check_run_config, bad)
