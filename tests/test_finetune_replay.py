"""Replay of source-camera images in the fine-tuning set."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gen_loop.errors import ConfigError
from gen_loop.finetune.replay import (
    add_training_images,
    replay_count,
    sample_replay,
    source_train_images,
)
from gen_loop.generator import ProceduralGenerator
from gen_loop.generator.yolo_io import write_yolo_dataset


def test_replay_count_makes_the_requested_share() -> None:
    assert replay_count(60, 0.0) == 0
    assert replay_count(60, 0.25) == 20  # 20 / (60 + 20) = 25%
    assert replay_count(30, 0.5) == 30
    with pytest.raises(ValueError):
        replay_count(10, 1.0)


def test_sample_replay_is_seeded_and_without_replacement(tmp_path: Path) -> None:
    paths = [tmp_path / f"{i}.png" for i in range(10)]
    a, b = sample_replay(paths, 4, seed=3), sample_replay(paths, 4, seed=3)
    assert a == b and len(set(a)) == 4
    assert sample_replay(paths, 4, seed=4) != a
    assert sample_replay(paths, 20, seed=3) == paths  # fewer than asked: all of them


def test_source_images_are_added_to_the_train_split(tmp_path: Path) -> None:
    gen = ProceduralGenerator(48, 48)
    source = write_yolo_dataset(
        gen.generate({}, 5, 1), tmp_path / "source", val=gen.generate({}, 2, 2)
    )
    images, names = source_train_images(source)
    assert len(images) == 5 and names == ["car", "truck", "pedestrian"]
    selected = write_yolo_dataset(gen.generate({"fisheye": 0.5}, 4, 3), tmp_path / "sel")
    add_training_images(selected, images[:3], "replay")
    data = yaml.safe_load(selected.read_text())
    assert data["train"] == ["images", "replay.txt"]
    listed = (tmp_path / "sel" / "replay.txt").read_text().split()
    assert [Path(p) for p in listed] == [p.resolve() for p in images[:3]]
    # Ultralytics finds every listed image's label by its images/ -> labels/ rule.
    for p in listed:
        label = Path(p.replace("/images/", "/labels/")).with_suffix(".txt")
        assert label.is_file()


def test_a_data_yaml_without_names_is_a_config_error(tmp_path: Path) -> None:
    bad = tmp_path / "data.yaml"
    bad.write_text("train: images\n")
    with pytest.raises(ConfigError, match=r"finetune\.replay_data"):
        source_train_images(bad)
