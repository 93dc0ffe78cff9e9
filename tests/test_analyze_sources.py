"""``analyze`` reads videos as ``run`` does (frames by stride), and a run folder as its selected
samples (issue 15, item 2).

Videos are written here with cv2.VideoWriter (MJPG in .avi, as ``test_target_video.py``); a run
folder is written by the real selection writer and ``RunSummary``, and, in the slow test, by a
real smoke ``run``.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path

import cv2
import numpy as np
import pytest

from gen_loop.analysis.command import analyze
from gen_loop.analysis.origins import load_origin
from gen_loop.config.commands import AnalyzeConfig
from gen_loop.config.schema import SelectionConfig, TargetConfig
from gen_loop.errors import ConfigError, InputDataError
from gen_loop.generator import ProceduralGenerator
from gen_loop.loop.console import INTERRUPTED
from gen_loop.loop.summary import FinalStage, RunSummary
from gen_loop.loop.target_data import load_target
from gen_loop.selection import write_selection
from tests.cli import run_cli

ComposeAnalyze = Callable[[list[str]], AnalyzeConfig]

SIZE = 64
# A client camera unlike the generator's defaults (as in test_analysis_command.py).
_CLIENT = {"color_temp_k": 4300.0, "fisheye": 0.55, "vignetting": 0.45, "contrast": 1.15}


def _write_video(path: Path, frames: np.ndarray) -> Path:
    """RGB frames as an MJPG video; skip the test where OpenCV cannot write one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 10.0, (SIZE, SIZE))
    if not writer.isOpened():
        pytest.skip(f"OpenCV here cannot write MJPG to {path.suffix}")
    for rgb in frames:
        writer.write(np.ascontiguousarray(rgb[:, :, ::-1]))
    writer.release()
    return path


def _write_images(folder: Path, images: np.ndarray, prefix: str = "im") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(images):
        cv2.imwrite(str(folder / f"{prefix}{i:03d}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))


def _clip(path: Path, n: int, seed: int) -> Path:
    """A video of ``n`` client-camera scenes, one per frame."""
    return _write_video(path, ProceduralGenerator(SIZE, SIZE).generate(_CLIENT, n, seed).images)


def _run_folder(
    root: Path, make_summary: Callable[..., RunSummary], n_pool: int = 10, n_keep: int = 8
) -> tuple[Path, np.ndarray, tuple[np.ndarray, ...]]:
    """A run folder as ``run``'s final stage leaves it: ``summary.json`` and ``selected/``
    written by the selection writer. Returns it with the selected images and labels."""
    gen = ProceduralGenerator(SIZE, SIZE)
    pool = gen.generate({"fisheye": 0.4}, n_pool, 11)
    distances = np.linspace(1.0, 2.0, n_pool)[::-1].copy()  # the last samples are closest
    chosen = np.argsort(distances)[:n_keep]
    cfg = SelectionConfig(pool_size=n_pool)
    write_selection(pool, chosen, distances, 1.9, cfg, 0.25, root / "selected")
    summary = make_summary(
        selected_count=n_keep,
        pool_size=n_pool,
        best_trial=3,
        final_stage=FinalStage(4, 4, 3),
        run_dir=str(root),
    )
    summary.write(root / "summary.json")
    return root, pool.images[chosen], tuple(pool.labels[i] for i in chosen)


# --- videos and mixed folders ----------------------------------------------------------------


def test_a_video_set_is_sampled_exactly_as_runs_target(tmp_path: Path) -> None:
    video = _clip(tmp_path / "dashcam.avi", 23, 700)
    origin = load_origin("cam", video, (SIZE, SIZE), video_stride=5)
    assert [Path(p).name for p in origin.paths] == [
        f"dashcam.avi#frame={i}" for i in range(0, 23, 5)
    ]
    assert origin.labels is None and origin.skipped == ()
    assert "5 frames of 1 video(s), one in 5" in origin.description
    # The same pictures, names and fingerprint as `run` with target.path=<video>.
    cfg = TargetConfig(path=str(video), video_stride=5)
    target = load_target(cfg, ProceduralGenerator(SIZE, SIZE), tmp_path / "cache").images
    np.testing.assert_array_equal(origin.images, target.images)
    assert origin.paths == tuple(str(p) for p in target.paths)
    assert origin.fingerprint == target.fingerprint
    # video_max_frames caps each video, max_images the set.
    assert len(load_origin("cam", video, (SIZE, SIZE), None, 2, 3)) == 3
    assert len(load_origin("cam", video, (SIZE, SIZE), 4, 1, None)) == 4


def test_a_mixed_folder_gives_images_and_frames_and_counts_an_unreadable_video(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "client"
    _write_images(folder, ProceduralGenerator(SIZE, SIZE).generate(_CLIENT, 3, 1).images)
    _clip(folder / "clips" / "a.avi", 12, 2)
    (folder / "clips" / "broken.mp4").write_bytes(b"\x00not a video" * 50)
    origin = load_origin("client", folder, (SIZE, SIZE), video_stride=4)
    names = [Path(p).relative_to(folder).as_posix() for p in origin.paths]
    assert names == [
        "clips/a.avi#frame=0",
        "clips/a.avi#frame=4",
        "clips/a.avi#frame=8",
        "im000.png",
        "im001.png",
        "im002.png",
    ]
    assert origin.images.shape == (6, SIZE, SIZE, 3)
    assert [(Path(p).name, why) for p, why in origin.skipped] == [
        ("broken.mp4", "cannot open video")
    ]
    assert "3 images and 3 frames of 1 video(s), one in 4" in origin.description


def test_a_set_with_nothing_readable_names_the_path(tmp_path: Path) -> None:
    (tmp_path / "cam").mkdir()
    (tmp_path / "cam" / "broken.avi").write_bytes(b"garbage" * 100)
    with pytest.raises(InputDataError) as info:
        load_origin("cam", tmp_path / "cam", (SIZE, SIZE))
    assert "nothing readable in" in str(info.value) and str(tmp_path / "cam") in str(info.value)
    assert "broken.avi" in str(info.value)
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(InputDataError, match=r"not a video or a data\.yaml"):
        load_origin("cam", tmp_path / "notes.txt", (SIZE, SIZE))


def test_videos_in_a_labeled_dataset_are_refused(tmp_path: Path) -> None:
    _write_images(tmp_path / "ds" / "images", np.zeros((2, SIZE, SIZE, 3), np.uint8))
    (tmp_path / "ds" / "labels").mkdir()
    _clip(tmp_path / "ds" / "images" / "v.avi", 3, 0)
    with pytest.raises(InputDataError, match=r"set 'ds': .* labeled YOLO dataset .*v\.avi"):
        load_origin("ds", tmp_path / "ds", (SIZE, SIZE))


def test_video_settings_default_to_runs_and_are_checked(
    compose_analyze: ComposeAnalyze, config_error: Callable[..., ConfigError]
) -> None:
    from gen_loop.analysis.command import check_analyze_config

    cfg, target = compose_analyze([]), TargetConfig()
    assert (cfg.video_stride, cfg.video_max_frames) == (
        target.video_stride,
        target.video_max_frames,
    )
    assert {"video_stride", "video_max_frames"} <= {f.name for f in fields(AnalyzeConfig)}
    config_error("video_stride", check_analyze_config, compose_analyze(["video_stride=0"]))
    config_error("video_max_frames", check_analyze_config, compose_analyze(["video_max_frames=0"]))
    assert compose_analyze(["video_max_frames=null"]).video_max_frames is None


# --- run folders -----------------------------------------------------------------------------


def test_a_run_folder_is_its_selected_samples_labeled(
    tmp_path: Path, make_summary: Callable[..., RunSummary]
) -> None:
    run_dir, images, labels = _run_folder(tmp_path / "run", make_summary)
    for given in (run_dir, run_dir / "summary.json"):
        origin = load_origin("best", given, (SIZE, SIZE))
        assert len(origin) == 8 and origin.labels is not None
        assert origin.description.startswith(f"run folder {run_dir}: 8 selected samples")
        assert "of the best camera, trial 3" in origin.description
        assert all("/selected/images/" in p for p in origin.paths)
        # Each image is a selected sample (PNG: exact), with that sample's boxes.
        for image, got in zip(origin.images, origin.labels, strict=True):
            (match,) = [j for j in range(len(images)) if np.array_equal(images[j], image)]
            np.testing.assert_allclose(got, labels[match], atol=1e-5)
    # Replay images beside the selection are not selected samples.
    _write_images(run_dir / "selected" / "replay" / "images", images[:2], "src")
    assert len(load_origin("best", run_dir, (SIZE, SIZE))) == 8


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"stop_reason": INTERRUPTED}, "interrupted before its final stage"),
        ({"stop_reason": "budget: 4 trials"}, "stopped before its final stage"),
        ({"finalised_by": {"run_dir": "/elsewhere/w1"}}, "another worker"),
        ({"selected_count": 8, "final_stage": FinalStage(4, 4, 3)}, "moved or deleted"),
    ],
)
def test_a_run_folder_without_a_selection_says_what_is_missing(
    tmp_path: Path, make_summary: Callable[..., RunSummary], changes: dict, why: str
) -> None:
    run_dir = tmp_path / "runs" / "r"
    run_dir.mkdir(parents=True)
    make_summary(run_dir=str(run_dir), **changes).write(run_dir / "summary.json")
    with pytest.raises(InputDataError) as info:
        load_origin("best", run_dir, (SIZE, SIZE))
    message = str(info.value)
    assert message.startswith(f"run folder {run_dir} has no selected samples")
    assert "selected/manifest.json" in message and why in message
    if "/elsewhere/w1" in str(changes):
        assert "/elsewhere/w1" in message


def test_a_bad_summary_names_the_run_folder(tmp_path: Path) -> None:
    (tmp_path / "summary.json").write_text("{not json")
    with pytest.raises(InputDataError, match=rf"run folder {tmp_path}: .*not a gen_loop summary"):
        load_origin("best", tmp_path, (SIZE, SIZE))


# --- through the analyze command -------------------------------------------------------------


def _small(compose_analyze: ComposeAnalyze, *overrides: str) -> AnalyzeConfig:
    return compose_analyze(
        [
            *overrides,
            f"generator.width={SIZE}",
            f"generator.height={SIZE}",
            "embedder.weights=random",
            f"embedder.imgsz={SIZE}",
            "embedder.device=cpu",
            "shift.n_permutations=19",
            "shift.noise_floor_splits=3",
            "clusters.k_max=3",
            "mlflow=false",
        ]
    )


@pytest.mark.integration
def test_analyze_reads_a_video_a_mixed_folder_and_a_run_folder(
    tmp_path: Path, compose_analyze: ComposeAnalyze, make_summary: Callable[..., RunSummary]
) -> None:
    video = _clip(tmp_path / "dashcam.avi", 40, 3)
    mixed = tmp_path / "mixed"
    _write_images(mixed, ProceduralGenerator(SIZE, SIZE).generate({}, 6, 4).images)
    _clip(mixed / "b.avi", 20, 5)
    (mixed / "c.mp4").write_bytes(b"\x00not a video" * 50)
    run_dir, _, _ = _run_folder(tmp_path / "run", make_summary)
    cfg = _small(
        compose_analyze,
        f"sets.target={video}",
        f"sets.mixed={mixed}",
        f"sets.best={run_dir}",
        "video_stride=4",
    )
    report = analyze(cfg)
    data = json.loads((report.parent / "analysis.json").read_text())
    origins = {o["name"]: o for o in data["origins"]}
    assert origins["target"]["n_images"] == 10  # frames 0, 4, ..., 36
    assert origins["mixed"]["n_images"] == 6 + 5 and origins["mixed"]["n_skipped"] == 1
    assert origins["mixed"]["skipped"][0]["path"].endswith("c.mp4")
    assert origins["best"]["n_images"] == 8 and origins["best"]["labeled"]
    assert origins["best"]["description"].startswith(f"run folder {run_dir}: 8 selected")
    rows = [r for r in data["images"] if r["origin"] == "target"]
    assert [r["path"] for r in rows] == [f"{video}#frame={i}" for i in range(0, 40, 4)]
    # The run folder's labels give its real loss; frames have none.
    assert all(r["real_loss"] is not None for r in data["images"] if r["origin"] == "best")
    assert all(r["real_loss"] is None for r in rows)
    assert "best" in data["predicted_loss"]["train_sets"]
    # Thumbnails of frames are drawn from the pictures in memory (a frame is no file).
    gallery = [it for items in data["cluster_galleries"].values() for it in items]
    frames = [it for it in [*gallery, *data["error_gallery"]] if "#frame=" in it["path"]]
    assert frames and all((report.parent / it["file"]).is_file() for it in frames)
    page = report.read_text()
    assert all(Path(it["path"]).name in page for it in frames)


@pytest.mark.integration
def test_analyze_stops_in_one_line_on_a_reference_run_folder_without_selection(
    tmp_path: Path, make_summary: Callable[..., RunSummary]
) -> None:
    run_dir = tmp_path / "runs" / "x"
    run_dir.mkdir(parents=True)
    make_summary(run_dir=str(run_dir), stop_reason=INTERRUPTED).write(run_dir / "summary.json")
    _write_images(tmp_path / "other", np.zeros((4, SIZE, SIZE, 3), np.uint8))
    done = run_cli(
        tmp_path,
        "analyze",
        f"sets.best={run_dir}",
        f"sets.other={tmp_path / 'other'}",
        "reference=best",
        "mlflow=false",
        timeout=300,
    )
    assert done.returncode == 2, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    (line,) = [x for x in done.stderr.splitlines() if x.startswith("error: ")]
    assert f"run folder {run_dir} has no selected samples" in line and "'best'" in line


# --- a real run folder -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The run folder of one smoke ``run`` without fine-tuning (about a minute on a CPU)."""
    cwd = tmp_path_factory.mktemp("smoke")
    done = run_cli(cwd, "run", "debug=smoke", "finetune.enabled=false", "hydra.run.dir=runs/r")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return cwd / "runs" / "r"


@pytest.mark.slow
@pytest.mark.integration
def test_the_selection_of_a_real_run_is_analysed_against_its_target(
    smoke_run: Path, compose_analyze: ComposeAnalyze, tmp_path: Path
) -> None:
    summary = RunSummary.load(smoke_run / "summary.json")
    manifest = json.loads((smoke_run / "selected" / "manifest.json").read_text())
    cfg = _small(compose_analyze, f"sets.best={smoke_run}", "sets.target=demo", "target.demo.n=24")
    data = json.loads((analyze(cfg).parent / "analysis.json").read_text())
    best = next(o for o in data["origins"] if o["name"] == "best")
    assert best["n_images"] == summary.selected_count == len(manifest["samples"])
    assert best["labeled"]
    assert best["description"].startswith(
        f"run folder {smoke_run}: {summary.selected_count} selected samples of the best camera, "
        f"trial {summary.best_trial}"
    )
    assert all(r["real_loss"] is not None for r in data["images"] if r["origin"] == "best")
    # Without selected/ the folder is refused, naming it and what is missing.
    copy = tmp_path / "copy"
    shutil.copytree(smoke_run, copy, ignore=shutil.ignore_patterns("selected"))
    with pytest.raises(InputDataError, match=rf"run folder {copy} has no selected samples"):
        load_origin("best", copy, (SIZE, SIZE))
