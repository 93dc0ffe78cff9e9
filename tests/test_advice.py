"""The run following its own advice (``search.advice_rounds``): the next round's space, and a
real two-round run through the CLI."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import optuna
import pytest

from gen_loop.config.schema import ParamRangeConfig, SearchConfig
from gen_loop.loop.summary import RunSummary
from gen_loop.search.advice import ADVISED_DIR, advised_space, follows_advice, next_round
from gen_loop.search.attribution import MIN_SHARE, Suspect, named
from gen_loop.search.bounds import BoundHit
from tests.cli import one_difference, run_cli

SPACE = {
    "color_temp_k": ParamRangeConfig(low=3500, high=10000),
    "gamma": ParamRangeConfig(low=0.8, high=1.2),
}


def _suspects(*suspects: Suspect) -> list[dict[str, Any]]:
    return [s.to_dict() for s in suspects]


NOISE = Suspect("noise_std", 0.6, 1, 0.0, 0.2)
FOG = Suspect("weather", 0.3, 1, 0.0, 0.0, choice="fog", choices=("clear", "fog"))
SMALL = Suspect("saturation", MIN_SHARE / 2, 1, 0.0, 2.0)


def test_named_suspects_are_added_over_the_generator_range() -> None:
    advice = advised_space(SPACE, _suspects(NOISE, FOG, SMALL), None)
    assert advice is not None
    assert advice.space["noise_std"] == ParamRangeConfig(low=0.0, high=0.2)
    fog = ParamRangeConfig(type="categorical", choices=["clear", "fog"])
    assert advice.space["weather"] == fog
    assert "saturation" not in advice.space  # below the naming share: not advised
    assert advice.overrides == [NOISE.override, FOG.override]
    assert advice.space["color_temp_k"] == SPACE["color_temp_k"]  # the rest as it was
    assert SPACE["color_temp_k"] is not advice.space["color_temp_k"]  # ... copied


def test_a_range_at_a_bound_is_widened_and_one_at_the_generator_limit_is_left() -> None:
    widen = BoundHit("color_temp_k", 10000, "high", 10000, 12000, 11625).to_dict()
    limit = BoundHit("gamma", 0.8, "low", 0.8, 0.8, None).to_dict()
    advice = advised_space(SPACE, None, [widen, limit])
    assert advice is not None
    assert advice.space["color_temp_k"] == ParamRangeConfig(low=3500, high=11625)
    assert advice.space["gamma"] == SPACE["gamma"]
    assert advice.overrides == ["search.space.color_temp_k.high=11625"]


def test_advice_that_changes_nothing_is_none() -> None:
    already = Suspect("gamma", 0.5, 1, 0.5, 2.0)  # a categorical's second choice, say
    assert advised_space(SPACE, _suspects(SMALL), []) is None
    assert advised_space(SPACE, None, None) is None
    limit = BoundHit("gamma", 0.8, "low", 0.8, 0.8, None).to_dict()
    assert advised_space(SPACE, _suspects(already), [limit]) is None


def test_only_a_plateau_or_the_trial_budget_lead_to_another_round() -> None:
    assert follows_advice("plateau: no 1% improvement in 20 trials")
    assert follows_advice("budget: 100 trials")
    assert not follows_advice("time budget: 3600 s")  # the user's clock: stop as it is
    assert not follows_advice("aborted: 5 consecutive failed trials (last: boom)")
    assert not follows_advice("converged: best distance 0.5 <= 1.5 x noise floor 0.4")


def test_the_next_round_starts_from_the_best_camera_with_a_study_of_its_own(
    make_summary: Any,
) -> None:
    search = SearchConfig(space=dict(SPACE), advice_rounds=2, study_name="s")
    summary = make_summary(
        all_params={"color_temp_k": 9000.0, "gamma": 1.0, "noise_std": 0.01, "fisheye": 0.1},
        unsearched_suspects=_suspects(NOISE),
        at_range_bounds=[],
    )
    nxt = next_round(search, summary)
    assert set(nxt.space) == {"color_temp_k", "gamma", "noise_std"}
    assert nxt.enqueue == [{"color_temp_k": 9000.0, "gamma": 1.0, "noise_std": 0.01}]
    assert nxt.advice_rounds == 1 and nxt.study_name == "s-advised"
    resumed = SearchConfig(space=dict(SPACE), advice_rounds=0)  # run again with the default
    assert next_round(resumed, summary).advice_rounds == 0
    with pytest.raises(ValueError, match="changes nothing"):
        next_round(search, make_summary(unsearched_suspects=None, at_range_bounds=None))
    # search.advice_from_best=false: a fresh round, with only the user's own priors
    prior = {"color_temp_k": 5000.0}
    fresh = dataclasses.replace(search, advice_from_best=False, enqueue=[prior])
    assert next_round(fresh, summary).enqueue == [prior]
    assert next_round(fresh, summary).space == nxt.space


def test_a_foggy_target_is_searched_again_with_the_weather(tmp_path: Path) -> None:
    # Only exposure is searched; the target differs in its weather (fog). The first round
    # names the weather; with search.advice_rounds=1 the run searches again, weather added,
    # from the first round's best camera, and only that round selects.
    args = (
        "run",
        "debug=smoke",
        "search=tpe",
        *one_difference("exposure_ev", weather="fog", fog=0.6),
        "search.advice_rounds=1",
        "finetune.enabled=false",
        "analysis.enabled=false",
        "hydra.run.dir=runs/x",
    )
    proc = run_cli(tmp_path, *args)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    first_dir = tmp_path / "runs" / "x"
    first = RunSummary.load(first_dir / "summary.json")
    assert first.advised is not None, first.unsearched_suspects
    assert first.advised["run_dir"] == str(first_dir / ADVISED_DIR)
    assert any("search.space.weather" in o for o in first.advised["overrides"])
    assert first.final_stage is None and first.selected_count == 0
    assert "following that advice (search.advice_rounds)" in proc.stdout

    second = RunSummary.load(first_dir / ADVISED_DIR / "summary.json")
    added = {s["name"] for s in named(first.unsearched_suspects or [])}
    assert "weather" in added
    assert set(second.best_params) == {"exposure_ev", *added}
    assert second.final_stage is not None and second.selected_count > 0
    assert second.advised is None  # no rounds left to follow
    assert (first_dir / ADVISED_DIR / "selected").is_dir()
    assert not (first_dir / "selected").exists()
    storage = f"sqlite:///{first_dir / ADVISED_DIR / 'optuna.db'}"
    study = optuna.load_study(study_name="gen_loop-advised", storage=storage)
    # trial 0 is the generator's camera, then the first round's best
    assert study.trials[1].params == pytest.approx(
        {k: first.all_params[k] for k in second.best_params}
    )
    assert second.best_distance is not None and first.best_distance is not None
    assert second.best_distance <= first.best_distance + 1e-9  # it retried the best camera

    # The same command again finds both rounds finished and runs no trial.
    n_trials = (first.n_trials, second.n_trials)
    again = run_cli(tmp_path, *args)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-3000:]
    assert again.stdout.count("this run is finished") == 2
    latest = (
        RunSummary.load(first_dir / "summary.json").n_trials,
        RunSummary.load(first_dir / ADVISED_DIR / "summary.json").n_trials,
    )
    assert latest == n_trials
