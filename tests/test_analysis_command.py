"""The ``analyze`` command: config, bad input, the report folder, MLflow, and the demo target."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path

import cv2
import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from gen_loop.analysis.command import DEFAULT_SETS, analyze, check_analyze_config
from gen_loop.config import CONF_DIR, register_configs
from gen_loop.config.commands import AnalyzeConfig
from gen_loop.embedder.weights import shipped_base_weights
from gen_loop.errors import ConfigError
from gen_loop.generator import ProceduralGenerator
from gen_loop.generator.yolo_io import write_yolo_dataset

ComposeAnalyze = Callable[[list[str]], AnalyzeConfig]

# The demo camera's look without the cost of the demo target: for the small end-to-end test.
_CLIENT = {"color_temp_k": 4300.0, "fisheye": 0.55, "vignetting": 0.45, "contrast": 1.15}


def test_sets_take_new_names_without_plus(compose_analyze: ComposeAnalyze) -> None:
    cfg = compose_analyze(["sets.source=/a", "sets.target=/b", "sets.cognata_a=/c"])
    assert cfg.sets == {"source": "/a", "target": "/b", "cognata_a": "/c"}
    assert check_analyze_config(cfg) == cfg.sets
    assert check_analyze_config(compose_analyze([])) == DEFAULT_SETS


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        (["sets.a=/x", "sets.b=/y"], "reference"),
        (["sets.target=/x"], "sets"),
        (["shift.alpha=1.5"], "shift.alpha"),
        (["shift.metric=manhattan"], "shift.metric"),
        (["clusters.dominance=0.3"], "clusters.dominance"),
        (["loss.estimator=oracle"], "loss.estimator"),
        (["loss.train=[nowhere]"], "loss.train"),
        (["projection=mds"], "projection"),
    ],
)
def test_bad_values_name_their_key(
    compose_analyze: ComposeAnalyze,
    config_error: Callable[..., ConfigError],
    overrides: list[str],
    key: str,
) -> None:
    config_error(key, check_analyze_config, compose_analyze(overrides))


@pytest.mark.integration
def test_cli_reports_a_bad_value_in_one_line(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "gen_loop", "analyze", "shift.n_permutations=0", "mlflow=false"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    assert "config key 'shift.n_permutations'" in done.stderr
    assert "Traceback" not in done.stderr


class _Sources(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.sources: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.sources += [v for k, v in attrs if k == "src" and v]


def _write_images(folder: Path, images: np.ndarray) -> None:
    folder.mkdir(parents=True)
    for i, image in enumerate(images):
        cv2.imwrite(str(folder / f"im{i:03d}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))


@pytest.mark.integration
def test_report_with_bad_input_completes(tmp_path: Path, compose_analyze: ComposeAnalyze) -> None:
    """A set with no readable image, a single image, other sizes and a corrupt file: the other
    sets are still analysed, and every problem is named in the report."""
    gen = ProceduralGenerator(64, 64)
    _write_images(tmp_path / "client", gen.generate(_CLIENT, 24, 900).images)
    (tmp_path / "client" / "corrupt.png").write_bytes(b"\x89PNG broken")
    write_yolo_dataset(gen.generate({}, 24, 0), tmp_path / "synthetic")
    _write_images(tmp_path / "single", gen.generate(_CLIENT, 1, 901).images)
    big = ProceduralGenerator(200, 120).generate(_CLIENT, 6, 902).images  # another size
    _write_images(tmp_path / "big", big)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "x.jpg").write_bytes(b"")
    cfg = compose_analyze(
        [
            f"sets.target={tmp_path / 'client'}",
            f"sets.synthetic={tmp_path / 'synthetic'}",
            f"sets.single={tmp_path / 'single'}",
            f"sets.big={tmp_path / 'big'}",
            f"sets.empty={tmp_path / 'empty'}",
            "generator.width=64",
            "generator.height=64",
            "embedder.weights=random",
            "embedder.imgsz=64",
            "embedder.device=cpu",
            "shift.n_permutations=49",
            "shift.noise_floor_splits=4",
            "clusters.k_max=4",
        ]
    )
    report = analyze(cfg)
    out = report.parent
    data = json.loads((out / "analysis.json").read_text())
    assert [o["name"] for o in data["origins"]] == ["target", "synthetic", "single", "big"]
    assert data["failed_sets"][0]["name"] == "empty"
    assert "nothing readable in" in data["failed_sets"][0]["reason"]
    target = data["origins"][0]
    assert target["n_skipped"] == 1 and target["skipped"][0]["path"].endswith("corrupt.png")
    shifts = {s["origin"]: s for s in data["shift"]}
    assert "at least 2 images" in shifts["single"]["note"]
    assert shifts["synthetic"]["shifted"]  # a colour and lens shift, even to a random network
    assert shifts["big"]["n_origin"] == 6
    assert data["predicted_loss"]["train_sets"] == ["synthetic"]
    assert len(data["images"]) == 24 + 24 + 1 + 6
    # The page is self-contained and shows the numbers of analysis.json.
    page = report.read_text()
    parser = _Sources()
    parser.feed(page)
    assert parser.sources and all((out / src).is_file() for src in parser.sources)
    assert not any(re.match(r"(https?:|/)", src) for src in parser.sources)
    assert f"{shifts['synthetic']['auc']:.3f}" in page
    assert "set empty not analysed" in page and "corrupt.png" in page
    # One MLflow run with the numbers and the report as artifacts.
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=cfg.tracking.uri)
    runs = client.search_runs([client.get_experiment_by_name("gen_loop").experiment_id])
    assert len(runs) == 1
    run = runs[0]
    assert run.data.metrics["synthetic.auc"] == pytest.approx(shifts["synthetic"]["auc"])
    assert run.data.tags["gen_loop.command"] == "analyze"
    listed = {a.path for a in client.list_artifacts(run.info.run_id, "report")}
    assert {"report/report.html", "report/analysis.json", "report/projection.png"} <= listed


# --- the demo target (issue 3, "done means") ------------------------------------------------


@pytest.fixture(scope="module")
def demo_analysis(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    """The demo target vs default-parameter synthetic data, 96 images each at 256 px, analysed
    once with the shipped base detector (random weights when it is missing)."""
    tmp = tmp_path_factory.mktemp("demo")
    register_configs()
    weights = "base" if shipped_base_weights().is_file() else "random"
    overrides = [
        f"out_dir={tmp / 'out'}",
        f"cache_dir={tmp / 'cache'}",
        "mlflow=false",
        "target.demo.n=96",
        "generated.n=96",
        f"embedder.weights={weights}",
        "embedder.device=cpu",
        "shift.n_permutations=99",
    ]
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg: AnalyzeConfig = OmegaConf.to_object(compose("analyze", overrides=overrides))  # type: ignore[assignment]
    report = analyze(cfg)
    return json.loads((report.parent / "analysis.json").read_text()), tmp / "cache"


@pytest.mark.slow
@pytest.mark.integration
def test_demo_target_shift_is_found_and_explained(demo_analysis: tuple[dict, Path]) -> None:
    data, _ = demo_analysis
    (shift,) = data["shift"]
    assert shift["origin"] == "source" and shift["shifted"]
    assert shift["auc"] > 0.95 and shift["floor_ratio"] > 5
    # The target sits in a cluster of its own.
    counts = data["clusters"]["counts"]
    main = max(counts, key=lambda c: c["target"])
    assert main["target"] / sum(main.values()) >= 0.9
    assert any(
        f["dominant"] == "target" and f["missing"] == "source" for f in data["clusters"]["flags"]
    )
    # The properties the hidden parameters move rank at the top, with the right directions.
    ranked = [e["name"] for e in data["properties"]["source"]]
    assert {"color_temp_k", "vignetting", "rms_contrast"} <= set(ranked[:7])
    assert ranked.index("sharpness") > 7  # neither blur nor noise was changed
    hints = {h["parameter"]: h["direction"] for h in data["suggestions"]["source"]}
    assert hints["color_temp_k"] == "lower"  # hidden 4300 K < 6500 K
    assert hints["vignetting"] == "raise"  # hidden 0.45 > 0
    assert hints["contrast"] == "raise"  # hidden 1.15 > 1
    assert hints["red_std_scale"] == "lower"  # hidden 0.7 < 1


@pytest.mark.slow
@pytest.mark.integration
def test_predicted_loss_ranks_the_real_loss_of_the_demo_target(
    demo_analysis: tuple[dict, Path],
) -> None:
    if not shipped_base_weights().is_file():
        pytest.skip(f"needs the shipped base detector {shipped_base_weights()} (absent)")
    data, _ = demo_analysis
    evals = {e["origin"]: e for e in data["predicted_loss"]["evaluation"]}
    target = evals["target"]  # never trained on: its labels are used only here
    print(
        f"\nSpearman rho, predicted vs real loss on the demo target: {target['spearman_rho']:.3f}"
        f" (p={target['spearman_p']:.2g}, n={target['n']})"
    )
    assert not target["out_of_fold"]
    assert target["spearman_rho"] > 0.15 and target["spearman_p"] < 0.05
    # The unlabeled target is predicted to be harder than the labeled source, as it is.
    assert target["mean_predicted"] > evals["source"]["mean_predicted"]
    assert target["mean_real"] > evals["source"]["mean_real"]


@pytest.mark.slow
@pytest.mark.integration
def test_two_halves_of_the_demo_target_show_no_shift(
    demo_analysis: tuple[dict, Path], compose_analyze: ComposeAnalyze, tmp_path: Path
) -> None:
    _, cache = demo_analysis
    (demo_root,) = (cache / "demo_target").iterdir()
    files = sorted((demo_root / "images").glob("*.png"))
    for half, part in (("half_a", files[0::2]), ("half_b", files[1::2])):
        (tmp_path / half).mkdir()
        for f in part:
            shutil.copy(f, tmp_path / half / f.name)
    weights = "base" if shipped_base_weights().is_file() else "random"
    cfg = compose_analyze(
        [
            f"sets.half_a={tmp_path / 'half_a'}",
            f"sets.half_b={tmp_path / 'half_b'}",
            "reference=half_a",
            f"embedder.weights={weights}",
            "embedder.device=cpu",
            "loss.enabled=false",
            "mlflow=false",
            "shift.n_permutations=99",
        ]
    )
    data = json.loads((analyze(cfg).parent / "analysis.json").read_text())
    (shift,) = data["shift"]
    assert not shift["shifted"], shift["verdict"]
    assert data["clusters"]["flags"] == []
