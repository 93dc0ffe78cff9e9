"""The default search: the residual-vector GP sampler (vector_gp) and Gauss-Newton refinement.

The model and the sampler are tested on analytic residual functions whose minimum is known;
the loop itself on the real generator and embedder (a smoke run through the CLI).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState

from gen_loop.loop.summary import RunSummary
from gen_loop.search.refine import Box, StopRefinement, refine_gauss_newton
from gen_loop.search.residual_model import ResidualGP
from gen_loop.search.study import make_sampler, to_objective
from gen_loop.search.vector_sampler import (
    RESIDUAL_ATTR,
    VectorGPSampler,
    residual_of,
    stored_residual,
)
from tests.cli import one_difference, run_cli

optuna.logging.set_verbosity(optuna.logging.WARNING)

P = 3
TRUTH = np.array([0.83, 0.12, 0.55])
RNG = np.random.default_rng(7)
MIX = RNG.normal(size=(12, P))


def curved_residual(u: np.ndarray) -> np.ndarray:
    """A 12-component residual, zero at TRUTH, curved (not linear) over the cube."""
    d = np.asarray(u, dtype=np.float64) - TRUTH
    return MIX @ d + 0.8 * np.sin(3.0 * d).repeat(4) + 0.5 * (d @ d)


SPACE = {name: FloatDistribution(0.0, 1.0) for name in ("a", "b", "c")}


def _run_study(
    sampler: optuna.samplers.BaseSampler, n: int, residual: bool = True
) -> optuna.Study:
    """``n`` trials of ``curved_residual`` storing the residual as the loop's trials do."""
    study = optuna.create_study(sampler=sampler)
    study.enqueue_trial({"a": 0.1, "b": 0.9, "c": 0.1})  # the "default parameters", far off
    for _ in range(n):
        trial = study.ask(SPACE)
        u = np.array([trial.params[k] for k in ("a", "b", "c")])
        r = curved_residual(u)
        if residual:
            trial.set_user_attr(RESIDUAL_ATTR, stored_residual(r))
        study.tell(trial, to_objective(float(np.linalg.norm(r))))
    return study


def _best_distance(study: optuna.Study) -> float:
    return float(np.exp(study.best_value))


# --- the model -------------------------------------------------------------------------------


def test_the_model_predicts_held_out_residuals_and_its_norm_minimum() -> None:
    x = np.random.default_rng(0).random((30, P))
    r = np.array([curved_residual(u) for u in x])
    model = ResidualGP.fit(x, r)
    held = np.random.default_rng(1).random((50, P))
    truth = np.array([curved_residual(u) for u in held])
    mean, var = model.predict(held)
    assert mean.shape == truth.shape and var.shape == (50,)
    error = np.linalg.norm(mean - truth) / np.linalg.norm(truth - truth.mean(0))
    assert error < 0.2  # far better than the mean of the data (error 1.0)
    at_data, var_data = model.predict(x)
    np.testing.assert_allclose(at_data, r, atol=1e-2 * np.abs(r).max())
    assert var_data.max() < 0.1 * var.mean()  # the model knows where it has measured


def test_believed_points_keep_the_mean_and_lose_their_variance() -> None:
    x = np.random.default_rng(2).random((12, P))
    model = ResidualGP.fit(x, np.array([curved_residual(u) for u in x]))
    pending = np.array([[0.5, 0.5, 0.5]])
    believed = model.believe(pending)
    (mean0, var0), (mean1, var1) = model.predict(pending), believed.predict(pending)
    np.testing.assert_allclose(mean1, mean0, rtol=1e-6, atol=1e-9)
    assert var1[0] < 1e-3 < var0[0]


# --- the sampler -----------------------------------------------------------------------------


def test_vector_gp_finds_the_minimum_far_sooner_than_its_scalar_twin_and_random() -> None:
    vector = _best_distance(_run_study(VectorGPSampler(seed=0, n_startup_trials=6), 24))
    scalar = _best_distance(
        _run_study(VectorGPSampler(seed=0, n_startup_trials=6), 24, residual=False)
    )
    random = _best_distance(_run_study(optuna.samplers.RandomSampler(seed=0), 24))
    start = float(np.linalg.norm(curved_residual(np.array([0.1, 0.9, 0.1]))))
    assert vector < 0.02 * start
    assert vector < 0.5 * scalar and vector < 0.2 * random


def test_without_stored_residuals_the_distance_is_the_one_component_residual() -> None:
    study = _run_study(optuna.samplers.RandomSampler(seed=0), 3, residual=False)
    trial = study.trials[1]
    assert residual_of(trial) == pytest.approx([float(np.exp(trial.value))])


def test_the_first_trials_are_a_sobol_design_then_the_model_proposes() -> None:
    study = _run_study(VectorGPSampler(seed=3, n_startup_trials=5), 8)
    qmc = _run_study(optuna.samplers.QMCSampler(qmc_type="sobol", scramble=True, seed=3), 5)
    startup = [t.params for t in sorted(study.trials, key=lambda t: t.number)[1:5]]
    assert startup == [t.params for t in sorted(qmc.trials, key=lambda t: t.number)[1:5]]


def test_a_trial_another_worker_runs_moves_the_next_proposal() -> None:
    sampler = VectorGPSampler(seed=0, n_startup_trials=6, sequential=False)
    study = _run_study(sampler, 10)
    first = study.ask(SPACE)  # a worker's trial, still running
    second = study.ask(SPACE)
    a = np.array([first.params[k] for k in ("a", "b", "c")])
    b = np.array([second.params[k] for k in ("a", "b", "c")])
    assert np.linalg.norm(a - b) > 1e-3  # not both workers on one point


def test_a_worker_asking_while_the_first_trial_runs_continues_the_design() -> None:
    """The design's second point is the same whether the start point has finished (one
    worker) or is still running (another worker asks meanwhile)."""
    one = optuna.create_study(sampler=VectorGPSampler(seed=3, n_startup_trials=5))
    two = optuna.create_study(sampler=VectorGPSampler(seed=3, n_startup_trials=5))
    for study in (one, two):
        study.enqueue_trial({"a": 0.1, "b": 0.9, "c": 0.1})
        start = study.ask(SPACE)
        if study is one:
            study.tell(start, 1.0)
    assert one.ask(SPACE).params == two.ask(SPACE).params


def test_a_model_based_proposal_waits_for_the_running_trials() -> None:
    from gen_loop.search.vector_sampler import proposal_waits

    design = _run_study(VectorGPSampler(seed=0, n_startup_trials=6), 3)
    design.ask(SPACE)  # running, 4 of the 6 design points asked
    assert not proposal_waits(design)  # the next one is a design point: ask it now
    modelled = _run_study(VectorGPSampler(seed=0, n_startup_trials=6), 8)
    assert not proposal_waits(modelled)  # nothing running
    modelled.ask(SPACE)
    assert proposal_waits(modelled)  # model-based: wait for that result
    parallel = _run_study(VectorGPSampler(seed=0, n_startup_trials=6, sequential=False), 8)
    parallel.ask(SPACE)
    assert not proposal_waits(parallel)  # search.parallel_proposals=true


def test_proposals_are_keyed_by_the_trial_number_not_the_worker() -> None:
    """Two worker sessions (other seeds, one design seed) propose the same point for the
    same trial of the same study: the draws come from (design seed, trial number)."""
    a = _run_study(VectorGPSampler(seed=0, n_startup_trials=6, design_seed=0), 9)
    b = _run_study(VectorGPSampler(seed=5, n_startup_trials=6, design_seed=0), 9)
    assert [t.params for t in a.trials] == [t.params for t in b.trials]


def test_proposals_keep_their_distance_from_every_measured_point() -> None:
    from gen_loop.search.vector_sampler import MIN_SEPARATION, separated

    study = _run_study(VectorGPSampler(seed=1, n_startup_trials=6), 20)
    done = sorted(study.trials, key=lambda t: t.number)
    x = np.array([[t.params[k] for k in ("a", "b", "c")] for t in done])
    for i in range(7, len(x)):  # the model's proposals, each against the points before it
        assert separated(x[i : i + 1], x[:i])[0], f"trial {i} repeats a measured point"
    taken = np.zeros((1, P))
    near = np.array([[MIN_SEPARATION / 2, 0, 0], [MIN_SEPARATION, 0, 0]])
    assert separated(near, taken).tolist() == [False, True]
    assert separated(near, np.empty((0, P))).all()


def test_registered_as_the_default_sampler(compose_run) -> None:
    assert isinstance(make_sampler("vector_gp", 0, 5, True), VectorGPSampler)
    cfg = compose_run([])
    assert cfg.search.sampler == "vector_gp" and cfg.search.refine.method == "auto"
    old = compose_run(["search=tpe"])
    assert old.search.sampler == "tpe" and old.search.refine.method == "lsq"
    assert old.search.refine.after == 50 and old.search.space == cfg.search.space


# --- Gauss-Newton ----------------------------------------------------------------------------


def _counted(fun: Callable[[np.ndarray], np.ndarray], box: Box) -> tuple[list[float], Callable]:
    distances: list[float] = []

    def evaluate(params: dict[str, float]) -> np.ndarray:
        r = fun(box.to_unit(params))
        distances.append(float(np.linalg.norm(r)))
        if distances[-1] < 1e-3:
            raise StopRefinement("converged")
        return r

    return distances, evaluate


def test_gauss_newton_reaches_the_minimum_in_a_few_steps_after_one_jacobian() -> None:
    box = Box.of(SPACE, conditional=set())
    start = box.from_unit(np.array([0.6, 0.3, 0.35]))
    distances, evaluate = _counted(curved_residual, box)
    r0 = curved_residual(box.to_unit(start))
    why = refine_gauss_newton(start, r0, box, 0.02, evaluate)
    assert why == "converged"
    assert len(distances) <= P + 8  # one Jacobian (P trials), then one trial a step
    assert distances[-1] < 1e-3 * np.linalg.norm(r0)


def test_gauss_newton_measures_the_start_when_its_residual_is_not_given() -> None:
    box = Box.of(SPACE, conditional=set())
    start = box.from_unit(np.array([0.6, 0.3, 0.35]))
    distances, evaluate = _counted(curved_residual, box)
    refine_gauss_newton(start, None, box, 0.02, evaluate)
    assert distances[0] == pytest.approx(np.linalg.norm(curved_residual(box.to_unit(start))))


def test_gauss_newton_ends_at_a_minimum_it_cannot_leave() -> None:
    # A residual with a floor of 1 at the minimum: the trust region shrinks and it stops.
    box = Box.of(SPACE, conditional=set())
    distances: list[float] = []

    def evaluate(params: dict[str, float]) -> np.ndarray:
        r = np.append(curved_residual(box.to_unit(params)), 1.0)
        distances.append(float(np.linalg.norm(r)))
        return r

    why = refine_gauss_newton(box.from_unit(np.full(P, 0.5)), None, box, 0.02, evaluate)
    assert "minimum" in why and len(distances) < 60
    assert min(distances) == pytest.approx(1.0, abs=1e-2)


def _first_step_after_a_fresh_jacobian(regrow: bool) -> float:
    """The longest component of the step after two worse points made Gauss-Newton measure its
    Jacobian afresh (a linear residual whose first two steps come back 10 x worse)."""
    box = Box.of(SPACE, conditional=set())
    mix = np.random.default_rng(3).normal(size=(6, P))
    truth, start = np.array([0.1, 0.15, 0.2]), np.full(P, 0.9)
    points: list[np.ndarray] = []

    def evaluate(params: dict[str, float]) -> np.ndarray:
        points.append(box.to_unit(params))
        if len(points) == 2 * P + 3:  # the Jacobian, two worse steps, the Jacobian, one step
            raise StopRefinement("enough")
        r = mix @ (points[-1] - truth)
        return 10.0 * r if len(points) in (P + 1, P + 2) else r

    refine_gauss_newton(
        box.from_unit(start), mix @ (start - truth), box, 0.02, evaluate, regrow=regrow
    )
    return float(np.max(np.abs(points[-1] - start)))


def test_gauss_newton_gives_the_trust_region_back_with_a_fresh_jacobian() -> None:
    # Two worse points in a row halve the trust region twice and blame the Broyden Jacobian;
    # with search.refine.regrow the fresh Jacobian gets the region back.
    assert _first_step_after_a_fresh_jacobian(regrow=True) == pytest.approx(0.25)
    assert _first_step_after_a_fresh_jacobian(regrow=False) == pytest.approx(0.0625)


def _banana(u: np.ndarray) -> np.ndarray:
    """A curved valley: its floor is the parabola b = 0.2 + 2 (a - 0.2)^2, steep across it,
    zero at a = 0.8 (b = 0.92), c = 0.5."""
    a, b, c = u
    return np.array([30.0 * (b - 0.2 - 2.0 * (a - 0.2) ** 2), a - 0.8, c - 0.5])


def _refine_the_valley(correct: bool) -> tuple[str, list[float]]:
    box = Box.of(SPACE, conditional=set())
    distances, evaluate = _counted(_banana, box)
    start = np.array([0.2, 0.2, 0.5])  # on the floor of the valley, far from its zero
    why = refine_gauss_newton(
        box.from_unit(start), _banana(start), box, 0.02, evaluate, correct=correct
    )
    return why, distances


def test_the_second_order_correction_follows_a_curved_valley() -> None:
    # Straight steps leave a curved valley: each worse point halves the trust region, and
    # Gauss-Newton creeps along the floor until the region is below its end, far from the zero.
    why, distances = _refine_the_valley(correct=False)
    assert "minimum" in why and min(distances) > 0.1
    # search.refine.correct bends a worse step back into the valley and gets to the zero.
    why, distances = _refine_the_valley(correct=True)
    assert why == "converged" and len(distances) < 30


# --- the loop --------------------------------------------------------------------------------


def test_smoke_run_with_the_default_search_stores_residuals_and_refines(tmp_path: Path) -> None:
    proc = run_cli(
        tmp_path,
        "run",
        "debug=smoke",
        "search.n_startup_trials=3",
        "search.refine.after=5",
        "search.n_trials=14",
        "search.floor_factor=1e-9",  # no convergence stop
        "finetune.enabled=false",
        "hydra.run.dir=runs/r",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    run_dir = tmp_path / "runs" / "r"
    summary = RunSummary.load(run_dir / "summary.json")
    study = optuna.load_study(study_name="gen_loop", storage=f"sqlite:///{run_dir / 'optuna.db'}")
    trials = sorted(study.trials, key=lambda t: t.number)
    assert all(t.state == TrialState.COMPLETE for t in trials)
    sizes = {len(t.user_attrs[RESIDUAL_ATTR]) for t in trials}
    assert len(sizes) == 1 and sizes.pop() > 8  # one component per embedding dimension
    for t in trials:
        norm = float(np.linalg.norm(t.user_attrs[RESIDUAL_ATTR]))
        assert norm == pytest.approx(t.user_attrs["distance"], rel=1e-4)
    stages = [t.user_attrs["stage"] for t in trials]
    assert stages[0] == "start" and stages[1:5] == ["sampler"] * 4 and "refine" in stages[5:]
    assert summary.n_refine_trials == stages.count("refine")
    assert summary.best_distance <= min(t.user_attrs["distance"] for t in trials[:5])
    assert "refining trial" in proc.stdout and "Gauss-Newton" in proc.stdout


# --- what the search could not fix -----------------------------------------------------------


def test_attribution_names_the_unsearched_parameter_the_searched_ones_cannot_mimic() -> None:
    from gen_loop.generator.params import ParamSpec
    from gen_loop.loop.console import suspects_line
    from gen_loop.search.attribution import attribute, named

    mix = np.random.default_rng(3).normal(size=(20, 5))  # columns: a, b (searched), g, s, m

    def evaluate(p: dict[str, float]) -> np.ndarray:
        x = np.array([p["a"], p["b"], p["g"] - 1.2, p["s"] - 0.4, p["m"]])
        mimic = mix[:, 0] + mix[:, 1]  # m's effect is what a + b do together
        return mix[:, :4] @ x[:4] + p["m"] * mimic

    specs = {
        "g": ParamSpec("g", 1.0, 0.5, 2.0),  # the target's g is 1.2: the search left it at 1
        "s": ParamSpec("s", 1.0, 0.0, 2.0),  # the target's s is 0.4
        "m": ParamSpec("m", 0.0, 0.0, 1.0),  # mimicked by the searched parameters
        "z": ParamSpec("z", 0.0, 0.0, 1.0),  # no effect at all
    }
    params = {"a": 0.0, "b": 0.0, "g": 1.0, "s": 1.0, "m": 0.0, "z": 0.0}
    suspects = attribute(
        evaluate(params), params, specs, {"a": (-1.0, 1.0), "b": (-1.0, 1.0)}, evaluate
    )
    assert {s.name for s in suspects[:2]} == {"g", "s"}
    by = {s.name: s for s in suspects}
    assert by["g"].direction == 1 and by["s"].direction == -1  # target: larger g, smaller s
    assert by["m"].share < 0.01 and by["z"].share == 0.0
    assert by["g"].share > 0.3 and by["s"].share > 0.3  # each beyond the searched fit
    chosen = named([s.to_dict() for s in suspects])
    line = suspects_line([s.to_dict() for s in suspects])
    assert len(chosen) == 2 and '"+search.space.g={low: 0.5, high: 2}"' in line
    assert suspects_line([{**by["z"].to_dict()}]).startswith("no unsearched generator parameter")


def test_attribution_switches_an_unsearched_categorical_to_its_other_choices() -> None:
    from gen_loop.generator.params import ParamSpec
    from gen_loop.loop.console import suspects_line
    from gen_loop.search.attribution import attribute, named

    mix = np.random.default_rng(4).normal(size=(20, 3))  # columns: a (searched), fog, rain

    def evaluate(p: dict[str, object]) -> np.ndarray:
        weather = str(p["weather"])
        # the target is foggy: a clear render is off by the fog column, a rainy one more so
        return (
            float(p["a"]) * mix[:, 0]
            + {"clear": 1.0, "fog": 0.0, "rain": 1.5}[weather] * mix[:, 1]
            + (weather == "rain") * mix[:, 2]
        )

    specs = {"weather": ParamSpec("weather", "clear", choices=("clear", "fog", "rain"))}
    params: dict[str, object] = {"a": 0.0, "weather": "clear"}
    suspects = attribute(
        evaluate(params),
        params,
        {},
        {"a": (-1.0, 1.0)},
        evaluate,
        choices=specs,  # type: ignore[arg-type]
    )
    by = {s.choice: s for s in suspects}
    assert set(by) == {"fog", "rain"}  # one render per other choice, none for the current one
    # fog explains all that the searched a cannot: the share is what is left beyond a's fit
    assert suspects[0].choice == "fog" and suspects[0].share > 0.5 > by["rain"].share
    fog = suspects[0].to_dict()
    assert fog["label"] == "weather (fog)"
    assert (
        fog["override"] == "+search.space.weather={type: categorical, choices: [clear, fog, rain]}"
    )
    line = suspects_line([s.to_dict() for s in suspects])
    assert line.startswith("the target also differs in weather (fog)")
    assert named([fog]) == [fog]


@pytest.mark.integration
@pytest.mark.slow
def test_a_foggy_target_is_told_to_search_the_weather(tmp_path: Path) -> None:
    # The target differs from the generator's defaults in its weather alone (fog, a
    # categorical parameter, with the fog density it gates); only exposure is searched.
    proc = run_cli(
        tmp_path,
        "run",
        "debug=smoke",
        "search=tpe",
        *one_difference("exposure_ev", weather="fog", fog=0.6),
        "finetune.enabled=false",
        "analysis.enabled=false",
        "hydra.run.dir=runs/x",
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    summary = RunSummary.load(tmp_path / "runs" / "x" / "summary.json")
    from gen_loop.search.attribution import named

    chosen = [(s["name"], s.get("choice")) for s in named(summary.unsearched_suspects or [])]
    assert ("weather", "fog") in chosen, summary.unsearched_suspects  # one of the two named
    assert "weather (fog)" in proc.stdout
    assert '"+search.space.weather={type: categorical, choices: [clear, fog]}"' in proc.stdout
