"""``generator=folder``: a labeled YOLO dataset re-rendered through the camera model."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
import pytest
import yaml
from omegaconf.errors import MissingMandatoryValue

from gen_loop.config import FolderGeneratorConfig
from gen_loop.errors import InputDataError
from gen_loop.generator import SENSOR_PARAMETERS, FolderGenerator
from gen_loop.loop.components import build_generator
from gen_loop.search.space import build_space

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from gen_loop.config import RunConfig

SIZE = 64
NAMES = ["car", "truck", "pedestrian"]
GOOD = "0 0.500000 0.500000 0.400000 0.300000"
# A camera that changes nothing but geometry: no noise, no vignetting.
CLEAN = {"noise_std": 0.0}


def _dataset(
    root: Path,
    labels: Sequence[str | None],
    names: list[str] | dict[int, str] | None = NAMES,
    size: int = 80,
    seed: int = 0,
) -> Path:
    """A YOLO folder with one random image per entry of ``labels`` (None: no label file)."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    for i, text in enumerate(labels):
        image = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        cv2.imwrite(str(root / "images" / f"im{i}.png"), image)
        if text is not None:
            (root / "labels" / f"im{i}.txt").write_text(text + "\n")
    if names is not None:
        (root / "data.yaml").write_text(yaml.safe_dump({"train": "images", "names": names}))
    return root


def test_deterministic_per_seed_and_image_index(tmp_path: Path) -> None:
    gen = FolderGenerator(str(_dataset(tmp_path / "ds", [GOOD] * 5)), SIZE, SIZE)
    a = gen.generate({"fisheye": 0.3}, 8, seed=1)  # more images than the dataset has
    b = gen.generate({"fisheye": 0.3}, 8, seed=1)
    head = gen.generate({"fisheye": 0.3}, 3, seed=1)
    other = gen.generate({"fisheye": 0.3}, 8, seed=2)
    assert a.images.shape == (8, SIZE, SIZE, 3)
    assert np.array_equal(a.images, b.images)
    assert all(np.array_equal(x, y) for x, y in zip(a.labels, b.labels, strict=True))
    assert np.array_equal(head.images, a.images[:3])
    assert not np.array_equal(a.images, other.images)
    assert len(set(gen.source_indices(1, 8))) > 1  # not always the same source image
    assert a.seeds == b.seeds and len(a.seeds) == 8


def test_image_i_is_its_chosen_source_image(tmp_path: Path) -> None:
    gen = FolderGenerator(str(_dataset(tmp_path / "ds", [None] * 4)), SIZE, SIZE)
    batch = gen.generate(CLEAN, 6, seed=3)
    sources = [cv2.resize(cv2.imread(str(p))[..., ::-1], (SIZE, SIZE)) for p in gen.sources]
    for image, chosen in zip(batch.images, gen.source_indices(3, 6), strict=True):
        errors = [np.abs(image.astype(int) - s.astype(int)).mean() for s in sources]
        assert int(np.argmin(errors)) == chosen
    assert all(len(lab) == 0 for lab in batch.labels)  # no label files: no objects


def _white_box_dataset(root: Path) -> Path:
    """One black image with a white rectangle off-centre, labeled by its exact box."""
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    image = np.zeros((SIZE, SIZE, 3), np.uint8)
    x0, x1, y0, y1 = 6, 26, 8, 30
    image[y0:y1, x0:x1] = 255
    cv2.imwrite(str(root / "images" / "box.png"), image)
    cx, cy, w, h = (x0 + x1) / 2 / SIZE, (y0 + y1) / 2 / SIZE, (x1 - x0) / SIZE, (y1 - y0) / SIZE
    (root / "labels" / "box.txt").write_text(f"1 {cx} {cy} {w} {h}\n")
    return root


def _pixel_box(image: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(image.min(axis=2) > 128)
    return np.array([xs.min(), xs.max() + 1, ys.min(), ys.max() + 1], float)


def _label_box(row: np.ndarray) -> np.ndarray:
    _, cx, cy, w, h = row * np.array([1, SIZE, SIZE, SIZE, SIZE])
    return np.array([cx - w / 2, cx + w / 2, cy - h / 2, cy + h / 2])


def test_boxes_follow_the_fisheye_distortion(tmp_path: Path) -> None:
    gen = FolderGenerator(str(_white_box_dataset(tmp_path / "ds")), SIZE, SIZE)
    straight = gen.generate(CLEAN, 1, seed=0)
    bent = gen.generate({**CLEAN, "fisheye": 0.9}, 1, seed=0)
    original = np.array([6, 26, 8, 30], float)
    assert np.abs(_label_box(straight.labels[0][0]) - original).max() <= 1.0
    moved = _pixel_box(bent.images[0])
    assert np.abs(moved - original).max() >= 3  # the lens really moved the object
    (row,) = bent.labels[0]
    assert row[0] == 1  # class kept
    assert np.abs(_label_box(row) - moved).max() <= 1.5  # the box follows the pixels


def test_class_names_from_data_yaml_argument_or_numbered(tmp_path: Path, caplog) -> None:
    as_dict = _dataset(tmp_path / "a", [GOOD], names={0: "person", 1: "bike"})
    assert FolderGenerator(str(as_dict), SIZE, SIZE).class_names == ("person", "bike")
    with caplog.at_level(logging.WARNING):
        gen = FolderGenerator(str(as_dict), SIZE, SIZE, class_names=["x", "y"])
    assert gen.class_names == ("person", "bike")  # data.yaml wins, with a warning
    assert "class_names ['x', 'y'] ignored" in caplog.text
    bare = _dataset(tmp_path / "b", [GOOD, "2 0.5 0.5 0.2 0.2"], names=None)
    assert FolderGenerator(str(bare), SIZE, SIZE, class_names=NAMES).class_names == tuple(NAMES)
    assert FolderGenerator(str(bare), SIZE, SIZE).class_names == ("class0", "class1", "class2")


def test_data_yaml_as_root_uses_its_train_folders(tmp_path: Path) -> None:
    root = _dataset(tmp_path / "ds", [GOOD, None], names=["car"])
    gen = FolderGenerator(str(root / "data.yaml"), SIZE, SIZE)
    assert len(gen.sources) == 2 and gen.class_names == ("car",)


BAD_LINES = {
    "class id": ("3 0.5 0.5 0.1 0.1", "class id 3 is not below the number of classes (3)"),
    "negative class": ("-1 0.5 0.5 0.1 0.1", "not a non-negative integer"),
    "outside 0-1": ("0 1.5 0.5 0.1 0.1", "are not all in 0..1"),
    "negative coord": ("0 0.5 -0.2 0.1 0.1", "are not all in 0..1"),
    "4 columns": ("0 0.5 0.5 0.1", "4 columns, expected 5"),
    "6 columns": ("0 0.5 0.5 0.1 0.1 0.2", "6 columns, expected 5"),
    "not a number": ("car 0.5 0.5 0.1 0.1", "'car' is not a number"),
    "empty box": ("0 0.5 0.5 0.0 0.1", "zero width or height"),
}


@pytest.mark.parametrize("case", BAD_LINES)
def test_a_bad_label_line_is_warned_with_file_and_line_then_skipped(
    case: str, tmp_path: Path, caplog
) -> None:
    line, reason = BAD_LINES[case]
    root = _dataset(tmp_path / "ds", [f"{GOOD}\n\n{line}\n1 0.3 0.3 0.2 0.2"])
    with caplog.at_level(logging.WARNING):
        gen = FolderGenerator(str(root), SIZE, SIZE)
    where = f"{root / 'labels' / 'im0.txt'}:3"
    naming = [r for r in caplog.records if where in r.getMessage()]
    assert len(naming) == 1 and reason in naming[0].getMessage()
    assert len(gen.label_issues) == 1 and gen.label_issues[0].line == 3
    batch = gen.generate(CLEAN, 2, seed=0)
    assert all(sorted(lab[:, 0].tolist()) == [0.0, 1.0] for lab in batch.labels)


def test_every_bad_line_counted_once(tmp_path: Path, caplog) -> None:
    text = "\n".join([GOOD, *(line for line, _ in BAD_LINES.values())])
    root = _dataset(tmp_path / "ds", [text, GOOD])
    with caplog.at_level(logging.WARNING):
        gen = FolderGenerator(str(root), SIZE, SIZE)
    assert [i.line for i in gen.label_issues] == list(range(2, 2 + len(BAD_LINES)))
    for issue in gen.label_issues:
        assert sum(f"{issue.path}:{issue.line}:" in r.getMessage() for r in caplog.records) == 1


def test_missing_or_empty_dataset_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(InputDataError, match=re.escape(str(missing))):
        FolderGenerator(str(missing), SIZE, SIZE)
    with pytest.raises(InputDataError, match="does not exist"):
        FolderGenerator(str(tmp_path / "nowhere.yaml"), SIZE, SIZE)
    (tmp_path / "plain").mkdir()
    with pytest.raises(InputDataError, match=r"neither an images/ folder nor a data\.yaml"):
        FolderGenerator(str(tmp_path / "plain"), SIZE, SIZE)
    (tmp_path / "empty" / "images").mkdir(parents=True)
    with pytest.raises(InputDataError, match="holds no image file"):
        FolderGenerator(str(tmp_path / "empty"), SIZE, SIZE)
    broken = tmp_path / "broken"
    (broken / "images").mkdir(parents=True)
    (broken / "images" / "a.png").write_bytes(b"not an image")
    with pytest.raises(InputDataError, match="no readable image"):
        FolderGenerator(str(broken), SIZE, SIZE)
    (tmp_path / "bad.yaml").write_text("train: [unclosed")
    with pytest.raises(InputDataError, match=r"bad\.yaml"):
        FolderGenerator(str(tmp_path / "bad.yaml"), SIZE, SIZE)


def test_config_builds_the_folder_generator(
    tmp_path: Path, compose_run: Callable[[list[str]], RunConfig]
) -> None:
    root = _dataset(tmp_path / "ds", [GOOD])
    cfg = compose_run(["debug=smoke", "generator=folder", f"generator.root={root}"])
    assert isinstance(cfg.generator, FolderGeneratorConfig)
    gen, params = build_generator(cfg.generator)
    assert isinstance(gen, FolderGenerator) and gen.width == 96
    assert set(gen.parameters) == {s.name for s in SENSOR_PARAMETERS}
    assert params["noise_std"] == 0.0  # folder.yaml: real images carry their own noise
    space = build_space(cfg.search.space, gen.parameters, cfg.search.fixed, cfg.search.enqueue)
    assert set(space.distributions) <= set(gen.parameters)
    with pytest.raises(MissingMandatoryValue, match="root"):
        compose_run(["generator=folder"])
    cfg = compose_run(["generator=folder", f"generator.root={tmp_path / 'gone'}"])
    with pytest.raises(InputDataError, match="gone"):  # the generator's own message, unwrapped
        build_generator(cfg.generator)
