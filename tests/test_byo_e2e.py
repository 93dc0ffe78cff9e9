"""Bring your own data, model and simulator, end to end: a video target, the external-command
generator running the example adapter, and a base detector trained by `train-base` on a small
labeled folder."""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest

from gen_loop.generator import ProceduralGenerator
from gen_loop.generator.yolo_io import write_yolo_dataset
from gen_loop.loop.summary import RunSummary
from tests.cli import run_cli

pytestmark = [pytest.mark.integration, pytest.mark.slow]
SIZE = 96


def _client_video(path: Path) -> None:
    """A short dashcam clip from the client camera (fisheye, warm), written with OpenCV."""
    frames = (
        ProceduralGenerator(SIZE, SIZE)
        .generate({"fisheye": 0.5, "color_temp_k": 4500.0, "exposure_ev": 0.3}, 24, seed=321)
        .images
    )
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (SIZE, SIZE))
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()


def test_video_target_command_simulator_and_own_base_model(tmp_path: Path) -> None:
    # The user's labeled source data (their camera, their classes) and a base model on it.
    gen = ProceduralGenerator(SIZE, SIZE)
    source = write_yolo_dataset(
        gen.generate({}, 24, 1), tmp_path / "source", val=gen.generate({}, 8, 2)
    )
    base = run_cli(
        tmp_path,
        "train-base",
        f"data={source}",
        "epochs=2",
        "batch=8",
        "device=cpu",
        f"embedder.imgsz={SIZE}",
        f"out={tmp_path / 'base'}",
    )
    assert base.returncode == 0, base.stderr[-3000:]
    weights = tmp_path / "base" / "train" / "best.pt"
    assert weights.is_file()

    video = tmp_path / "client.avi"
    _client_video(video)
    proc = run_cli(
        tmp_path,
        "run",
        "debug=smoke",
        "generator=command",
        f"generator.width={SIZE}",
        f"generator.height={SIZE}",
        "target=folder",
        f"target.path={video}",
        "target.video_stride=2",
        f"embedder.weights={weights}",
        f"finetune.replay_data={source}",
        "finetune.replay_fraction=0.25",
        "search.n_trials=4",
        "search.floor_factor=1000",
        # 12 frames: the floor is measured against 4 of them, too few to stop on by default
        "search.stop_at_uncertain_floor=true",
        "hydra.run.dir=runs/byo",
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = RunSummary.load(tmp_path / "runs" / "byo" / "summary.json")
    assert summary.target.n_images == 12  # 24 frames, every 2nd
    assert summary.stop_reason.startswith("converged")
    assert summary.n_failed == 0 and summary.best_distance <= summary.default_distance
    assert summary.selected_count > 0 and summary.replay_count > 0
    assert Path(summary.finetuned_weights).is_file()
    assert "no labeled target data" in summary.evaluation["skipped"]
    replayed = (tmp_path / "runs" / "byo" / "selected" / "replay.txt").read_text().split()
    assert all(str(tmp_path / "source") in p for p in replayed)
