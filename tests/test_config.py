"""Tests of the configuration: the real YAML composes, and bad values stop early by name."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from collections.abc import Callable
from enum import Enum
from pathlib import Path

import pytest
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf
from omegaconf.errors import MissingMandatoryValue

from gen_loop.config import (
    CentroidMetric,
    RefineMethod,
    RunConfig,
    Sampler,
    SceneSeeds,
    SelectionMethod,
)
from gen_loop.config.validate import check_run_config
from gen_loop.errors import ConfigError
from gen_loop.loop.components import build_generator
from tests.cli import cli_env, run_cli

Compose = Callable[[list[str]], RunConfig]

SEARCHED = {"color_temp_k", "red_std_scale", "exposure_ev", "contrast", "vignetting", "fisheye"}


def test_default_run_config_composes(compose_run: Compose, tmp_path: Path) -> None:
    cfg = compose_run([])
    assert isinstance(cfg, RunConfig)
    assert cfg.run_dir == str(tmp_path)
    assert set(cfg.search.space) == SEARCHED
    assert cfg.search.sampler == "vector_gp"
    assert cfg.target.path is None  # the embedded demo target
    check_run_config(cfg)


def test_demo_target_differs_from_the_generator_defaults_in_every_searched_parameter(
    compose_run: Compose,
) -> None:
    cfg = compose_run([])
    generator, current = build_generator(cfg.generator)
    hidden = cfg.target.demo.params
    assert set(hidden) == SEARCHED
    for name, entry in cfg.search.space.items():
        assert hidden[name] != current[name], name
        assert hidden[name] != generator.parameters[name].default, name
        # recoverable: inside the search range, which is inside the generator's range
        assert entry.low is not None and entry.high is not None
        assert entry.low < hidden[name] < entry.high, name
        assert entry.low <= current[name] <= entry.high, name  # trial 0 is a legal point


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("search.n_trials=0", "search.n_trials"),
        ("search.batch_size=1", "search.batch_size"),
        ("embedder.device=gpu7", "embedder.device"),
        ("finetune.device=cuda:x", "finetune.device"),
        ("selection.quantile=0", "selection.quantile"),
        ("finetune.val_fraction=1", "finetune.val_fraction"),
        ("embedder.imgsz=100", "embedder.imgsz"),
    ],
)
def test_bad_value_is_a_config_error_naming_its_key(
    assert_config_error: Callable[[str, str], ConfigError], override: str, key: str
) -> None:
    assert_config_error(override, key)


@pytest.mark.parametrize(
    ("override", "key", "choices"),
    [
        ("score.metric=bogus", "score.metric", CentroidMetric),
        ("search.sampler=bogus", "search.sampler", Sampler),
        ("search.scene_seeds=bogus", "search.scene_seeds", SceneSeeds),
        ("search.refine.method=newton", "search.refine.method", RefineMethod),
        ("selection.method=bogus", "selection.method", SelectionMethod),
    ],
)
def test_bad_choice_fails_at_composition_naming_its_key_and_the_choices(
    compose_run: Compose, override: str, key: str, choices: type[Enum]
) -> None:
    with pytest.raises(ConfigCompositionException) as info:
        compose_run(["debug=smoke", override])
    message = str(info.value.__cause__)
    assert f"full_key: {key}" in message
    assert f"expected one of [{', '.join(m.value for m in choices)}]" in message


@pytest.mark.parametrize(
    ("section", "field", "key"),
    [
        ("search", "sampler", "search.sampler"),
        ("search", "scene_seeds", "search.scene_seeds"),
        ("selection", "method", "selection.method"),
    ],
)
def test_bad_choice_in_a_config_built_in_python_is_a_config_error(
    compose_run: Compose, section: str, field: str, key: str
) -> None:
    cfg = compose_run(["debug=smoke"])
    setattr(cfg, section, dataclasses.replace(getattr(cfg, section), **{field: "bogus"}))
    with pytest.raises(ConfigError) as info:
        check_run_config(cfg)
    assert info.value.key == key


def test_choices_read_as_plain_strings(compose_run: Compose) -> None:
    """Enum choices compare, print, dump (config.yaml) and log (MLflow params) as "tpe"."""
    cfg = compose_run(["debug=smoke", "search=gp"])
    assert cfg.search.sampler == "gp" and cfg.search.sampler is Sampler.gp
    assert (f"{cfg.search.sampler}", str(cfg.selection.method)) == ("gp", "jitter")
    dumped = OmegaConf.to_yaml(OmegaConf.structured(cfg))
    assert "sampler: gp\n" in dumped and "method: jitter\n" in dumped
    assert "metric: zscore_l2\n" in dumped
    params = OmegaConf.to_container(OmegaConf.structured(cfg), resolve=True, enum_to_str=True)
    assert isinstance(params, dict)
    assert params["search"]["sampler"] == "gp" and type(params["search"]["sampler"]) is str
    assert params["search"]["refine"]["method"] == "lsq"  # search=gp is search=tpe + sampler


def test_every_choice_enum_is_what_the_code_implements() -> None:
    from gen_loop.loop.trial import SCENE_SEED_MODES
    from gen_loop.search.refine import REFINE_METHODS
    from gen_loop.search.study import REGISTRY
    from gen_loop.selection.select import SELECTION_METHODS

    assert set(REGISTRY) == set(Sampler)
    assert tuple(m.value for m in SceneSeeds) == SCENE_SEED_MODES
    assert tuple(m.value for m in RefineMethod) == REFINE_METHODS
    assert tuple(m.value for m in SelectionMethod) == SELECTION_METHODS


def test_missing_paths_are_config_errors(compose_run: Compose, tmp_path: Path) -> None:
    cases = {
        "target.path": f"target.path={tmp_path / 'no_such_folder'}",
        "embedder.weights": f"embedder.weights={tmp_path / 'no_such.pt'}",
        "target.labels": f"target.labels={tmp_path / 'no_data.yaml'}",
    }
    for key, override in cases.items():
        with pytest.raises(ConfigError) as info:
            check_run_config(compose_run(["debug=smoke", override]))
        assert info.value.key == key
        assert "no_such" in str(info.value) or "no_data" in str(info.value)


def test_cuda_without_a_gpu_is_a_config_error(compose_run: Compose) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.raises(ConfigError) as info:
        check_run_config(compose_run(["embedder.device=cuda"]))
    assert info.value.key == "embedder.device"
    assert "CUDA" in str(info.value)


def test_unknown_generator_parameter_is_a_config_error(compose_run: Compose) -> None:
    cfg = compose_run(["+generator.params.nope=1"])
    with pytest.raises(ConfigError) as info:
        build_generator(cfg.generator)
    assert info.value.key == "generator.params.nope"
    assert "fisheye" in str(info.value)  # it lists the known ones


def test_out_of_range_generator_parameter_is_a_config_error(compose_run: Compose) -> None:
    with pytest.raises(ConfigError) as info:
        build_generator(compose_run(["generator.params.fisheye=3"]).generator)
    assert info.value.key == "generator.params.fisheye"
    _, params = build_generator(compose_run(["generator.params.fisheye=0.25"]).generator)
    assert params["fisheye"] == 0.25


def test_debug_smoke_overlay(compose_run: Compose) -> None:
    cfg = compose_run(["debug=smoke"])
    assert cfg.search.n_trials == 6
    assert (cfg.embedder.device, cfg.finetune.device) == ("cpu", "cpu")
    assert cfg.generator.width == cfg.embedder.imgsz == 96
    assert set(cfg.search.space) == SEARCHED  # the overlay keeps the search space
    check_run_config(cfg)


@pytest.mark.parametrize(("choice", "sampler"), [("random", "random"), ("qmc", "qmc")])
def test_search_overlays_keep_the_space(compose_run: Compose, choice: str, sampler: str) -> None:
    cfg = compose_run(["debug=smoke", f"search={choice}"])
    assert cfg.search.sampler == sampler
    assert set(cfg.search.space) == SEARCHED
    assert cfg.search.n_trials == 6  # debug still applies on top
    check_run_config(cfg)


def test_selection_topk_overlay(compose_run: Compose) -> None:
    cfg = compose_run(["selection=topk"])
    assert cfg.selection.method == "topk"
    assert cfg.selection.top_k == 128
    check_run_config(cfg)


def test_folder_target_overlay(compose_run: Compose, tmp_path: Path) -> None:
    folder = tmp_path / "client_cam"
    folder.mkdir()
    cfg = compose_run(["debug=smoke", "target=folder", f"target.path={folder}"])
    assert cfg.target.path == str(folder)
    assert cfg.target.demo.params == {}  # no demo hidden params on a user's target
    check_run_config(cfg)


def test_folder_target_without_a_path_is_not_the_demo(compose_run: Compose) -> None:
    with pytest.raises(MissingMandatoryValue, match=r"target\.path"):
        compose_run(["target=folder"])


# --- the command line --------------------------------------------------------------------

CLI_CONFIG_ERRORS = {
    "search.n_trials=0": "search.n_trials",
    "search.space.fisheye.low=2": "search.space.fisheye",
    "target=folder": "target.path",
}


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(tmp_path, *args, timeout=120)


@pytest.fixture(scope="module")
def cli_config_errors(
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, tuple[Path, subprocess.CompletedProcess[str]]]:
    """``run`` with each bad override, the processes started together (each is seconds)."""
    started = {}
    for i, override in enumerate(CLI_CONFIG_ERRORS):
        tmp = tmp_path_factory.mktemp(f"cli{i}")
        args = [sys.executable, "-m", "gen_loop", "run", override, f"run_dir={tmp / 'run'}"]
        started[override] = (
            tmp,
            args,
            subprocess.Popen(
                args,
                cwd=tmp,
                env=cli_env(tmp / "cache"),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            ),
        )
    results = {}
    for override, (tmp, args, proc) in started.items():
        out, err = proc.communicate(timeout=120)
        results[override] = (tmp, subprocess.CompletedProcess(args, proc.returncode, out, err))
    return results


@pytest.mark.integration
@pytest.mark.parametrize("override", CLI_CONFIG_ERRORS)
def test_cli_bad_config_exits_2_before_any_work(
    cli_config_errors: dict[str, tuple[Path, subprocess.CompletedProcess[str]]], override: str
) -> None:
    tmp_path, result = cli_config_errors[override]
    assert result.returncode == 2, result.stderr
    assert CLI_CONFIG_ERRORS[override] in result.stderr
    assert "Traceback" not in result.stderr
    # stopped before the target or the model: nothing rendered, nothing embedded
    assert not (tmp_path / "cache" / "gen_loop" / "demo_target").exists()
    assert not (tmp_path / "run" / "config.yaml").exists()
    assert "noise floor" not in result.stdout


@pytest.mark.integration
def test_cli_unknown_command_exits_2_with_usage(tmp_path: Path) -> None:
    result = _cli(tmp_path, "bogus")
    assert result.returncode == 2
    assert "bogus" in result.stderr
    assert "usage:" in result.stderr


@pytest.mark.integration
def test_cli_help_lists_the_commands(tmp_path: Path) -> None:
    result = _cli(tmp_path, "--help")
    assert result.returncode == 0
    for command in ("run", "generate", "train-base"):
        assert f"\n  {command} " in result.stdout, command
