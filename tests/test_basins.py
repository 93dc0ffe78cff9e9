"""Leaving a wrong basin (``search.refine.restart``, gen_loop/search/basins.py).

The record and the rules on real Optuna studies; the sampler's restriction on the analytic
residual of tests/test_vector_search.py; the whole rule in a smoke run through the CLI, on a
target that differs in two unsearched parameters (so every refinement stalls above the floor).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

from gen_loop.loop.summary import RunSummary
from gen_loop.search.basins import BASINS_ATTR, Basins, leave, outside, own_best, stalled_for
from gen_loop.search.refine import Box
from gen_loop.search.refine_claim import REFINE_ID_ATTR
from gen_loop.search.study import to_objective
from gen_loop.search.vector_sampler import RESIDUAL_ATTR, VectorGPSampler, stored_residual
from tests.cli import run_cli
from tests.test_vector_search import SPACE, TRUTH, _run_study, curved_residual

optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_a_refinement_stalls_from_its_own_last_gain() -> None:
    assert stalled_for(10.0, [9.0, 8.95, 8.94], 0.01) == 2  # 9.0 gained, the two after not
    assert stalled_for(10.0, [], 0.01) == 0
    assert stalled_for(10.0, [float("nan"), 9.99, 9.0], 0.01) == 0
    assert stalled_for(10.0, [float("nan"), 9.95], 0.01) == 2  # a failed trial is no gain
    assert own_best(10.0, [11.0, float("nan"), 9.5]) == 9.5
    assert own_best(10.0, [11.0]) == 10.0


def test_a_real_gain_after_a_trial_is_one_the_plateau_rule_counts(tmp_path: Path) -> None:
    from gen_loop.search.basins import gained_after

    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'o.db'}")
    for value in (5.0, 4.0, 3.99, float("nan"), 3.9):
        trial = study.ask()
        trial.set_user_attr("distance", value)
        if np.isfinite(value):
            study.tell(trial, value)
        else:
            study.tell(trial, state=TrialState.FAIL)
    trials = study.get_trials()
    assert gained_after(trials, 1, 0.01) is True  # 3.9 < 4.0 * 0.99
    assert gained_after(trials, 1, 0.05) is False
    assert gained_after(trials, 4, 0.01) is False  # nothing after the last
    assert gained_after(trials, -1, 0.01) is True


def test_outside_is_the_distance_from_every_basin_point() -> None:
    basin = np.array([[0.0, 0.0], [1.0, 1.0]])
    points = np.array([[0.1, 0.0], [0.3, 0.0], [0.9, 0.95], [0.5, 0.5]])
    assert outside(points, basin, 0.25).tolist() == [False, True, False, True]
    assert outside(points, np.empty((0, 2)), 0.25).all()


def test_the_record_adds_basins_and_keeps_the_longest_hold(tmp_path: Path) -> None:
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'o.db'}")
    assert Basins.of(study) == Basins()
    leave(study, {"start": 3, "best_trial": 7, "distance": 2.5}, {3, 5, 7}, 0.25, 20, 9)
    leave(study, {"start": 12, "best_trial": 12, "distance": 3.0}, {13}, 0.25, 18, 14)
    again = optuna.load_study(study_name=study.study_name, storage=study._storage)
    basins = Basins.of(again)
    assert basins.trials == {3, 5, 7, 12, 13}
    assert [b["start"] for b in basins.left] == [3, 12]
    assert basins.held_until == 20 and basins.left_at == 14 and basins.radius == 0.25
    assert again.user_attrs[BASINS_ATTR]["left"][0]["best_trial"] == 7


def test_after_leaving_a_basin_the_sampler_proposes_outside_it() -> None:
    study = _run_study(VectorGPSampler(seed=0, n_startup_trials=6), 10)
    box = Box.of(SPACE, conditional=set())
    units = {t.number: box.to_unit(t.params) for t in study.trials}
    near = {n for n, u in units.items() if np.linalg.norm(u - TRUTH) < 0.15}
    assert near, "the model's proposals should have come near the minimum"
    # Without a left basin the next proposal goes to the minimum, into that neighbourhood.
    probe = study.ask(SPACE)
    assert np.linalg.norm(box.to_unit(probe.params) - TRUTH) < 0.25
    study.tell(probe, state=TrialState.FAIL)
    leave(study, {"start": min(near), "best_trial": min(near), "distance": 0.0}, near, 0.25, 0, 10)
    basin = np.array([units[n] for n in sorted(near)])
    for _ in range(3):
        trial = study.ask(SPACE)
        point = box.to_unit(trial.params)
        assert outside(point[np.newaxis], basin, 0.25)[0], (trial.number, point)
        study.tell(trial, 1.0)


def test_the_trials_after_leaving_a_basin_look_in_different_places() -> None:
    # experiments/recovery/BASINS.md: the four trials after a left basin went along one edge
    # of it (vignetting alone), and the next refinement rolled back into the same basin.
    study = _run_study(VectorGPSampler(seed=0, n_startup_trials=6), 10)
    box = Box.of(SPACE, conditional=set())
    units = {t.number: box.to_unit(t.params) for t in study.trials}
    near = {n for n, u in units.items() if np.linalg.norm(u - TRUTH) < 0.15}
    last = max(units)
    entry = {"start": min(near), "best_trial": min(near), "distance": 0.0}
    leave(study, entry, near, 0.25, 0, last)
    basin = np.array([units[n] for n in sorted(near)])
    found = []
    for _ in range(4):
        trial = study.ask(SPACE)
        point = box.to_unit(trial.params)
        assert outside(point[np.newaxis], basin, 0.25)[0], (trial.number, point)
        if found:
            assert outside(point[np.newaxis], np.array(found), 0.25)[0], (trial.number, point)
        found.append(point)
        r = curved_residual(point)
        trial.set_user_attr(RESIDUAL_ATTR, stored_residual(r))
        study.tell(trial, to_objective(float(np.linalg.norm(r))))


def test_a_refinement_stuck_above_the_floor_leaves_its_basin(tmp_path: Path) -> None:
    # gamma and saturation differ and are not searched: no searched camera reaches the
    # floor, so each refinement stalls far above it and is left.
    proc = run_cli(
        tmp_path,
        "run",
        "debug=smoke",
        "+target.demo.params.gamma=1.9",
        "+target.demo.params.saturation=0.2",
        "search.n_trials=30",
        "search.refine.after=5",
        "search.refine.restart.above=1.01",
        "search.refine.restart.samples=2",
        "search.refine.restart.window=5",
        "finetune.enabled=false",
        "analysis.enabled=false",
        "hydra.run.dir=runs/r",
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    run_dir = tmp_path / "runs" / "r"
    summary = RunSummary.load(run_dir / "summary.json")
    assert summary.left_basins, proc.stdout[-3000:]
    first = summary.left_basins[0]
    assert "left the basin of trial" in proc.stdout and "a wrong basin:" in proc.stdout
    assert re.search(rf"left basins +: trial {first['best_trial']} \(", proc.stdout)
    study = optuna.load_study(study_name="gen_loop", storage=f"sqlite:///{run_dir / 'optuna.db'}")
    trials = sorted(study.trials, key=lambda t: t.number)
    box = Box.of(trials[0].distributions, conditional=set())
    # The first left basin: the refinement from its start, and that start.
    token = next(
        t.user_attrs[REFINE_ID_ATTR]
        for t in trials
        if t.number > first["start"] and REFINE_ID_ATTR in t.user_attrs
    )
    basin = {t.number for t in trials if t.user_attrs.get(REFINE_ID_ATTR) == token}
    basin.add(first["start"])
    assert first["best_trial"] in basin
    assert first["distance"] == pytest.approx(min(trials[n].user_attrs["distance"] for n in basin))
    assert len(basin) >= len(box.names) + 3  # a Jacobian and two steps at least
    points = np.array([box.to_unit(trials[n].params) for n in sorted(basin)])
    after = [t for t in trials if t.number > max(basin)]
    sampled = after[:2]
    assert [t.user_attrs["stage"] for t in sampled] == ["sampler", "sampler"]
    for t in sampled:
        assert outside(box.to_unit(t.params)[np.newaxis], points, 0.25)[0], t.number
    # The next refinement starts outside it, from the best trial there.
    starts = [int(n) for n in re.findall(r"refining trial (\d+)", proc.stdout)]
    assert len(starts) >= 2, proc.stdout[-3000:]
    second = trials[starts[1]]
    assert outside(box.to_unit(second.params)[np.newaxis], points, 0.25)[0]
    open_ = [
        t
        for t in trials[: sampled[-1].number + 1]
        if t.state == TrialState.COMPLETE
        and outside(box.to_unit(t.params)[np.newaxis], points, 0.25)[0]
    ]
    assert second.number == min(open_, key=lambda t: t.user_attrs["distance"]).number
    from mlflow.tracking import MlflowClient

    run = MlflowClient(summary.mlflow.tracking_uri).get_run(summary.mlflow.run_id)
    assert f"trial {first['best_trial']}" in run.data.tags["gen_loop.left_basins"]


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("search.refine.restart.above=0.5", "search.refine.restart.above"),
        ("search.refine.restart.stall=0", "search.refine.restart.stall"),
        ("search.refine.restart.samples=0", "search.refine.restart.samples"),
        ("search.refine.restart.radius=0", "search.refine.restart.radius"),
        ("search.refine.restart.window=0", "search.refine.restart.window"),
    ],
)
def test_bad_restart_settings_name_their_key(assert_config_error, override: str, key: str) -> None:
    assert_config_error([override], key)
