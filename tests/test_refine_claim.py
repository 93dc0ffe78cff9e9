"""One refinement shared by the workers of a study (gen_loop/search/refine_claim.py).

The claim's record on real Optuna storages, a helping worker's decisions on the real trial
setup, and two real worker processes on one SQLite study.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState

from gen_loop.search import refine_claim
from gen_loop.search.workers import WORKER_ATTR, worker_id

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _study(tmp_path: Path) -> optuna.Study:
    return optuna.create_study(storage=f"sqlite:///{tmp_path / 'o.db'}", study_name="c")


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_one_worker_owns_the_refinement_and_its_points_become_trials_when_taken(
    tmp_path: Path,
) -> None:
    study = _study(tmp_path)
    claim = refine_claim.take_over(study, start=3)
    assert claim is not None and claim.owner == worker_id()
    assert refine_claim.take_over(study, start=3) is None  # live: no second refinement
    claim = refine_claim.post(study, claim, [{"x": 0.1}, {"x": 0.2}], n_finished=0)
    assert not study.get_trials(states=(TrialState.WAITING,))  # posted, not queued
    keys = [key for key, _ in claim.pending]
    assert refine_claim.enqueue_next(study, refine_claim.current(study)) == keys[0]  # type: ignore[arg-type]
    fresh = refine_claim.current(study)
    assert fresh is not None and [key for key, _ in fresh.pending] == keys[1:]
    trial = study.ask({"x": FloatDistribution(0, 1)})
    assert trial.params == {"x": 0.1} and trial.user_attrs["stage"] == "refine"
    study.tell(trial, 1.0)
    assert list(refine_claim.results(study, claim.token)) == [keys[0]]

    # The owner's copy still lists the taken point: posting the next one must not repeat it.
    stale = refine_claim.post(study, claim, [{"x": 0.3}], n_finished=1)
    assert stale.pending[0][0] == keys[1] and len(stale.pending) == 2

    refine_claim.release(study, claim, spent=True)
    assert refine_claim.current(study) is None
    assert refine_claim.spent_trials(study) == {3, trial.number}
    other = refine_claim.take_over(study, start=5)
    assert other is not None
    refine_claim.release(study, other, spent=False)  # cut by the stop rule: not spent
    assert refine_claim.spent_trials(study) == {3, trial.number}


def test_the_first_jacobian_holds_the_plateau_rule_back_until_its_step(tmp_path: Path) -> None:
    from gen_loop.search import Convergence
    from gen_loop.search.workers import decide

    study = _study(tmp_path)
    dist = {"x": FloatDistribution(0, 1)}
    for value in (1.0, 2.0, 2.0):  # a stalled sampler: the plateau rule says stop
        study.tell(study.ask(dist), value)
    conv = Convergence(
        noise_floor=1e-9, floor_factor=1.0, patience=2, min_rel_improvement=0.01, n_trials=50
    )
    held = refine_claim.plateau_held(study)
    assert decide(study, conv, 0.0, held).stop_reason.startswith("plateau")  # type: ignore[union-attr]
    claim = refine_claim.take_over(study, start=0)
    assert claim is not None
    claim = refine_claim.post(study, claim, [{"x": 0.5}], n_finished=3)  # the start's residual
    assert claim.held_until == 0
    claim = refine_claim.post(study, claim, [{"x": 0.1}, {"x": 0.2}], n_finished=3)
    assert claim.held_until == 3 + 2 + 1  # the Jacobian's two points and the step
    for _ in range(2):
        assert decide(study, conv, 0.0, held).stop_reason is None
        study.tell(study.ask(dist), 3.0)
    assert decide(study, conv, 0.0, held).stop_reason is None  # the step is still owed
    study.tell(study.ask(dist), 3.0)
    assert decide(study, conv, 0.0, held).stop_reason.startswith("plateau")  # type: ignore[union-attr]
    later = refine_claim.post(study, claim, [{"x": 0.3}, {"x": 0.4}], n_finished=6)
    assert later.held_until == 6  # a later Jacobian is not held
    assert decide(study, conv, 0.0).stop_reason.startswith("plateau")  # type: ignore[union-attr]


def test_a_dead_or_silent_owners_claim_is_given_up(tmp_path: Path) -> None:
    study = _study(tmp_path)
    dead = {**worker_id(), "pid": _dead_pid()}
    study.set_user_attr(
        refine_claim.CLAIM_ATTR,
        refine_claim.Claim("t1", dead, 0, (), time.time()).as_attr(),
    )
    assert refine_claim.current(study) is None  # its process is gone
    assert refine_claim.take_over(study, start=1) is not None

    # On another host the process cannot be checked: the beat and its running trial decide.
    remote = {"host": "elsewhere", "pid": 1, "start": "0"}
    old = time.time() - refine_claim.STALE_S - 1
    study.set_user_attr(
        refine_claim.CLAIM_ATTR, refine_claim.Claim("t2", remote, 0, (), old).as_attr()
    )
    running = study.ask()
    running.set_user_attr(WORKER_ATTR, remote)
    assert refine_claim.current(study) is not None  # silent, but it runs a trial
    study.tell(running, state=TrialState.FAIL)  # what the heartbeat does to a dead one
    assert refine_claim.current(study) is None


def test_a_helping_worker_runs_the_posted_points_and_waits_during_steps(
    trial_setup, tmp_path: Path
) -> None:
    from gen_loop.config.schema import RefineConfig
    from gen_loop.generator import ProceduralGenerator
    from gen_loop.loop.observer import LoopObserver
    from gen_loop.loop.refine_stage import Refiner
    from gen_loop.score import CentroidScorer
    from gen_loop.search import Convergence, StudyMutex
    from gen_loop.search.space import SearchSpace

    gen = ProceduralGenerator(64, 64)
    space = SearchSpace({"fisheye": FloatDistribution(0.0, 1.0)})
    scorer = CentroidScorer("zscore_l2")
    setup = trial_setup(gen, scorer, space, 4, refine=RefineConfig(method="gn", after=1))
    study = _study(tmp_path)
    conv = Convergence(
        noise_floor=1e-9, floor_factor=1.0, patience=100, min_rel_improvement=0.01, n_trials=9
    )
    messages: list[str] = []

    class Said(LoopObserver):
        def on_refine(self, message: str) -> None:
            messages.append(message)

    mutex = StudyMutex(f"sqlite:///{tmp_path / 'o.db'}", "c")
    helper = Refiner(study, setup, conv, Said(), mutex, time.monotonic())
    assert helper.help() == (None, False)  # nobody refines

    remote = {"host": "elsewhere", "pid": 1, "start": "0"}
    owner = refine_claim.Claim("t", remote, 4, (), time.time())
    study.set_user_attr(refine_claim.CLAIM_ATTR, owner.as_attr())
    assert helper.help() == (None, True)  # a one-trial step of the owner: wait
    assert messages == ["helping the refinement of trial 4 (worker elsewhere:1)"]
    refine_claim.post(study, owner, [{"fisheye": 0.25}], n_finished=0)
    trial, wait = helper.help()
    assert trial is not None and not wait
    assert space.suggest(trial) == {"fisheye": 0.25} and trial.user_attrs["refine_id"] == "t"
    # The helper's own best is not refined while another worker's refinement is live.
    study.tell(trial, 0.5)
    assert helper.start_point(_view(study)) == (None, False)
    assert len(messages) == 1  # said once per refinement

    study.set_user_attr(refine_claim.CLAIM_ATTR, None)  # the other worker's refinement ended
    running = study.ask()
    assert helper.start_point(_view(study)) == (None, True)  # it may be the better start
    study.tell(running, 0.4)
    best, wait = helper.start_point(_view(study))
    assert best is not None and best.number == running.number and not wait
    assert helper.claim is not None and helper.claim.start == running.number


def test_no_sampler_trial_is_asked_past_refine_after_while_the_last_ones_run(
    trial_setup, tmp_path: Path
) -> None:
    """Two workers switch to the refinement after refine.after sampler trials, as one does:
    with after - 1 finished and one running, the next worker waits instead of sampling."""
    from gen_loop.config.schema import RefineConfig
    from gen_loop.generator import ProceduralGenerator
    from gen_loop.loop.observer import LoopObserver
    from gen_loop.loop.refine_stage import Refiner
    from gen_loop.score import CentroidScorer
    from gen_loop.search import Convergence, StudyMutex
    from gen_loop.search.space import SearchSpace

    space = SearchSpace({"fisheye": FloatDistribution(0.0, 1.0)})
    setup = trial_setup(
        ProceduralGenerator(64, 64),
        CentroidScorer("zscore_l2"),
        space,
        4,
        refine=RefineConfig(method="gn", after=3),
    )
    study = _study(tmp_path)
    conv = Convergence(
        noise_floor=1e-9, floor_factor=1.0, patience=100, min_rel_improvement=0.01, n_trials=9
    )
    mutex = StudyMutex(f"sqlite:///{tmp_path / 'o.db'}", "c")
    worker = Refiner(study, setup, conv, LoopObserver(), mutex, time.monotonic())
    first = study.ask(space.distributions)
    study.tell(first, 0.9)
    second = study.ask(space.distributions)  # another worker's, running
    assert worker.start_point(_view(study)) == (None, False)  # 1 + 1 < 3: sample on
    study.tell(second, 0.7)
    third = study.ask(space.distributions)
    assert worker.start_point(_view(study)) == (None, True)  # 2 + 1 = 3: wait, do not sample
    study.tell(third, 0.8)
    best, wait = worker.start_point(_view(study))
    assert best is not None and best.number == second.number and not wait
    assert len(study.trials) == 3  # no fourth sampler trial before the refinement


def _view(study: optuna.Study):  # type: ignore[no-untyped-def]
    from gen_loop.search.workers import StudyView

    return StudyView.of(study)


@pytest.mark.slow
def test_two_workers_share_one_refinement_without_repeating_a_point(
    tmp_path: Path, run_workers: Callable[..., list[tuple[str, str]]]
) -> None:
    """Two real workers on one SQLite study: one refines, the other runs Jacobian points."""
    n_trials = 18

    def args(db: Path) -> list[str]:
        return [
            *("run", "debug=smoke", f"search.n_trials={n_trials}", "search.refine.after=4"),
            "search.floor_factor=1e-6",  # run the whole budget: no early convergence
            f"search.storage=sqlite:///{db}",
            "search.study_name=shared",
            *("finetune.enabled=false", "analysis.enabled=false", "hydra.run.dir=run"),
        ]

    outputs = run_workers(tmp_path, 2, args(tmp_path / "optuna.db"))

    study = optuna.load_study(study_name="shared", storage=f"sqlite:///{tmp_path / 'optuna.db'}")
    done = [t for t in study.trials if t.state == TrialState.COMPLETE]
    points = [tuple(sorted(t.params.items())) for t in done]
    assert len(set(points)) == len(points)  # no point rendered twice
    refined = [t for t in done if t.user_attrs.get("stage") == "refine"]
    assert refined
    keys = [t.user_attrs[refine_claim.REFINE_KEY_ATTR] for t in refined]
    assert len(set(keys)) == len(keys)  # each posted point ran once
    assert len({t.user_attrs[refine_claim.REFINE_ID_ATTR] for t in refined}) >= 1
    runners = {t.user_attrs[WORKER_ATTR]["pid"] for t in refined}
    assert len(runners) == 2  # the Jacobian's points were shared
    said = "".join(out for out, _ in outputs)
    starts = {t.user_attrs[refine_claim.REFINE_ID_ATTR] for t in refined}
    assert said.count("refining trial") == len(starts)  # one owner per refinement
    assert "helping the refinement of trial" in said
    assert refine_claim.current(study) is None  # released at the end
    summaries = [json.loads((tmp_path / f"w{i}/run/summary.json").read_text()) for i in range(2)]
    assert {s["n_trials"] for s in summaries} == {n_trials}

    # One worker alone runs the same study, trial for trial: the model-based proposals waited
    # for every result, drew from the trial number and started from the previous fit.
    (tmp_path / "one").mkdir()
    run_workers(tmp_path / "one", 1, args(tmp_path / "one.db"))
    alone = optuna.load_study(study_name="shared", storage=f"sqlite:///{tmp_path / 'one.db'}")
    assert {t.number: t.params for t in alone.trials} == {t.number: t.params for t in study.trials}
