"""The parts of a resume, on real Optuna SQLite studies: the study's identity record, the
re-queue of an interrupted trial, when a study is finished, what a resumed summary keeps, and
whether a noise floor is certain enough to stop on."""

from __future__ import annotations

import dataclasses
import io
import logging
import math
from collections.abc import Callable
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from gen_loop.errors import ConfigError
from gen_loop.finetune.verdict import gain_verdict
from gen_loop.loop.console import INTERRUPTED, ConsoleObserver, finalised_line
from gen_loop.loop.resume import is_finished
from gen_loop.loop.summary import FinalStage, RunSummary
from gen_loop.search.convergence import Convergence
from gen_loop.search.floor_quality import MAX_FLOOR_REL_STD, MIN_FLOOR_REFERENCE, floor_quality
from gen_loop.search.identity import IDENTITY_ATTR, Part, check_identity
from gen_loop.search.workers import (
    FINALISER_ATTR,
    StudyView,
    finalised,
    requeue,
    superseded,
    worker_id,
)

PARTS = {
    "target": Part("target", "folder a (10 images)", "aaaa" * 16),
    "score": Part("score", "CentroidScorer (metric=zscore_l2)", "cccc" * 16),
}


@pytest.fixture
def study(tmp_path: Path) -> optuna.Study:
    return optuna.create_study(
        study_name="s", storage=f"sqlite:///{tmp_path / 'o.db'}", direction="minimize"
    )


def _complete(study: optuna.Study, n: int) -> None:
    for i in range(n):
        trial = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
        study.tell(trial, float(i + 1))


def test_a_new_study_records_its_parts_and_a_resume_with_others_is_refused(
    study: optuna.Study,
) -> None:
    check_identity(study, PARTS, "runs/x")
    assert study.user_attrs[IDENTITY_ATTR]["target"]["fingerprint"] == "aaaa" * 16
    _complete(study, 2)
    check_identity(study, PARTS, "runs/x")  # the same parts: resumes
    other = {**PARTS, "target": Part("target", "folder b (4 images)", "bbbb" * 16)}
    with pytest.raises(ConfigError) as info:
        check_identity(study, other, "runs/x")
    message = str(info.value)
    assert info.value.key == "target"
    assert "runs/x was searched against folder a (10 images) (aaaaaaaaaaaa)" in message
    assert "not folder b (4 images) (bbbbbbbbbbbb)" in message
    assert "hydra.run.dir" in message
    assert study.user_attrs[IDENTITY_ATTR]["target"]["label"] == "folder a (10 images)"


def test_an_older_study_without_a_record_is_left_unchanged(
    study: optuna.Study, caplog: pytest.LogCaptureFixture
) -> None:
    _complete(study, 1)
    with caplog.at_level(logging.WARNING):
        check_identity(study, PARTS, "runs/old")
    assert IDENTITY_ATTR not in study.user_attrs
    assert "runs/old: the study records no target/embedder/scorer fingerprint" in caplog.text


def test_requeue_fails_the_trial_and_asks_its_point_again(study: optuna.Study) -> None:
    dist = {"x": optuna.distributions.FloatDistribution(0, 1)}
    trial = study.ask(dist)
    assert StudyView.of(study).asked == 1
    assert requeue(study, trial._trial_id)
    trials = study.trials
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.WAITING]
    assert trials[1].params == trials[0].params
    assert superseded(trials) == {0}
    assert StudyView.of(study).asked == 0  # the interrupted trial holds no budget slot
    again = study.ask(dist)
    assert again.number == 1 and again.params == trials[0].params
    study.tell(again, 0.5)
    assert not requeue(study, again._trial_id)  # finished: left alone


def _convergence(n_trials: int) -> Convergence:
    return Convergence(1.0, 1.5, 100, 0.01, n_trials)


def test_a_study_is_finished_when_finalised_and_the_stop_rule_says_stop(
    study: optuna.Study, make_summary: Callable[..., RunSummary]
) -> None:
    _complete(study, 3)
    earlier = make_summary(stop_reason="budget: 3 trials")
    assert not is_finished(study, _convergence(3), earlier)  # no final stage done yet
    study.set_user_attr(FINALISER_ATTR.format(3), {**worker_id(), "run_dir": "r", "done": True})
    assert finalised(study)
    assert is_finished(study, _convergence(3), earlier)
    assert not is_finished(study, _convergence(4), earlier)  # a larger budget continues
    assert not is_finished(study, _convergence(3), None)  # no summary to show
    interrupted = make_summary(stop_reason=INTERRUPTED)
    assert not is_finished(study, _convergence(3), interrupted)


def test_a_resumed_summary_keeps_the_earlier_final_stage_until_it_has_its_own(
    make_summary: Callable[..., RunSummary],
) -> None:
    evaluation = {
        "before": {"map50": 0.1, "map50_95": 0.05},
        "after": {"map50": 0.3, "map50_95": 0.1},
    }
    earlier = make_summary(
        selected_count=24,
        pool_size=24,
        evaluation=evaluation,
        verdict=gain_verdict(evaluation, 0.01, True),
        param_importances={"fisheye": 1.0},
        result_weights="/r/best.pt",
        final_stage=FinalStage(4, 4, 3),
    )
    resumed = make_summary(n_trials=7, stop_reason=INTERRUPTED)
    kept = resumed.keeping(earlier)
    assert kept.verdict.status == "improved" and kept.selected_count == 24
    assert kept.result_weights == "/r/best.pt" and kept.param_importances == {"fisheye": 1.0}
    assert (kept.n_trials, kept.stop_reason) == (7, INTERRUPTED)  # this search's own numbers
    assert resumed.keeping(None) is resumed
    own = make_summary(selected_count=5, final_stage=FinalStage(7, 7, 6))
    assert own.keeping(earlier) is own
    back = RunSummary.from_dict(kept.to_dict())
    assert back.final_stage == FinalStage(4, 4, 3)
    out = io.StringIO()
    ConsoleObserver(out).on_end(kept)
    assert "from the earlier finish at 4 trials (best trial 3)" in out.getvalue()


def test_finalised_line_does_not_call_a_finished_worker_running() -> None:
    done = finalised_line({"host": "h", "pid": 7, "run_dir": "/r", "done": True})
    assert "finished" in done and "/r" in done and "finalises" not in done
    live = finalised_line({"host": "h", "pid": 7, "run_dir": "/r", "done": False})
    assert live == "another worker finalises the study: h:7 (/r)"


def test_the_floor_of_a_four_image_target_is_uncertain_unless_opted_in() -> None:
    # The 4-image demo target of the issue: floor 37.4 +- 17.6, batches of 2 against 2.
    small = floor_quality(37.4, 17.6, 2, 4, 8)
    assert small.small_target and small.uncertain and not small.stop_at_floor
    assert small.rel_std < MAX_FLOOR_REL_STD  # the spread alone would have passed it
    assert small.reference == 2 < MIN_FLOOR_REFERENCE
    notes = small.notes()
    assert "only 4 images" in notes[0] and "batches of 2 against the other 2" in notes[0]
    assert "search.stop_at_uncertain_floor=true" in notes[1]
    assert floor_quality(37.4, 17.6, 2, 4, 8, stop_at_uncertain_floor=True).stop_at_floor
    wide = floor_quality(1.0, 0.8, 8, 160, 8)
    assert wide.uncertain and not wide.small_target and not wide.stop_at_floor
    good = floor_quality(0.39, 0.10, 8, 24, 8)
    assert not good.uncertain and not good.small_target and good.stop_at_floor
    assert good.notes() == []
    assert floor_quality(0.0, 0.0, 8, 24, 8).uncertain  # no spread to judge by
    cut = floor_quality(0.5, 0.15, 12, 24, 32)  # batch cut, but 12 reference images
    assert cut.small_target and not cut.uncertain and cut.stop_at_floor
    assert math.isclose(cut.rel_std, 0.3)


def test_the_stop_rule_does_not_stop_at_an_uncertain_floor() -> None:
    rule = dataclasses.replace(_convergence(3), stop_at_floor=False)
    rule.update(0, 0.1)  # far below 1.5 x the floor of 1.0
    assert rule.stop_reason(0.0) is None
    rule.update(1, 0.1)
    rule.update(2, 0.1)
    assert rule.stop_reason(0.0) == "budget: 3 trials"
    trusted = _convergence(3)
    trusted.update(0, 0.1)
    assert (trusted.stop_reason(0.0) or "").startswith("converged")
