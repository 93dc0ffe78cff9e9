"""One refinement for all the workers of a study: who runs it, and the points it shares.

The Gauss-Newton refinement (:mod:`gen_loop.search.refine`) is a sequence: each step needs the
residual of the step before. Two workers that each refine the study's best run the same
sequence twice and, in lockstep, render the very same points (experiments/workers/
TRIALS_TO_FLOOR.md: 14 identical pairs in one run). So one worker *owns* the refinement and
records it in the study (the user attribute ``refinement``); the others help where the method
has independent points (the P points of a finite-difference Jacobian, posted as ``pending``)
and wait while it takes its one-point steps, instead of spending trials the refinement would
not use. A pending point becomes a trial of the study only when a worker takes it, under the
study mutex and within the budget, so a stopped refinement leaves no queued trials behind.

Every function here reads or writes the study's attributes and must be called under
:meth:`gen_loop.search.storage.StudyMutex.hold`.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from gen_loop.generator.params import ParamValue
from gen_loop.search.basins import Basins
from gen_loop.search.refine import REFINE_STAGE, STAGE_ATTR
from gen_loop.search.workers import WORKER_ATTR, StudyView, is_dead, superseded, worker_id

#: The study's user attribute holding the refinement in progress (absent: none).
CLAIM_ATTR = "refinement"
#: The study's user attribute listing trials that ended a refinement by itself: its start and
#: its trials. A later refinement starts only from a best trial that is not among them.
SPENT_ATTR = "refined_trials"
#: Trial user attributes tying a trial to its refinement and to one of its points.
REFINE_ID_ATTR = "refine_id"
REFINE_KEY_ATTR = "refine_key"
#: A claim whose owner has neither beaten for this long nor a trial running is given up.
STALE_S = 120.0
#: How often the owner refreshes its beat while it waits (seconds).
BEAT_S = 10.0


@dataclass(frozen=True)
class Claim:
    """The refinement in progress, as the study records it.

    Attributes:
        token: this refinement's id (the ``refine_id`` of its trials).
        owner: the worker that runs it (:func:`~gen_loop.search.workers.worker_id`).
        start: the trial it refines from.
        pending: points posted for any worker to run, not yet trials: ``(key, params)``.
        beat: ``time.time()`` of the owner's last write.
        held_until: while the study has fewer finished trials than this, the plateau rule
            does not stop the search: the refinement's first Jacobian and the step it is
            measured for (0: not posted yet).
    """

    token: str
    owner: dict[str, Any]
    start: int
    pending: tuple[tuple[str, dict[str, ParamValue]], ...]
    beat: float
    held_until: int = 0

    def as_attr(self) -> dict[str, Any]:
        return {
            "token": self.token,
            "owner": self.owner,
            "start": self.start,
            "pending": [[key, params] for key, params in self.pending],
            "beat": self.beat,
            "held_until": self.held_until,
        }

    @classmethod
    def of(cls, attr: Mapping[str, Any]) -> Claim:
        pending = tuple((str(key), dict(params)) for key, params in attr.get("pending", []))
        return cls(
            str(attr["token"]),
            dict(attr["owner"]),
            int(attr["start"]),
            pending,
            float(attr["beat"]),
            int(attr.get("held_until", 0)),
        )


def _write(study: optuna.Study, claim: Claim | None) -> None:
    if claim is None:
        study.set_user_attr(CLAIM_ATTR, None)
    else:
        study.set_user_attr(CLAIM_ATTR, claim.as_attr())


def current(study: optuna.Study, now: float | None = None) -> Claim | None:
    """The live refinement of the study, or None (none, or its owner is gone).

    A claim is live while its owner's process exists (checked on the owner's host) and either
    beat within :data:`STALE_S` or runs a trial (whose own liveness the storage's heartbeat
    keeps: a trial of a silent worker is failed, and then the claim goes stale). A dead
    owner's claim is removed here, so the next worker can refine.
    """
    attr = study.user_attrs.get(CLAIM_ATTR)
    if not attr:
        return None
    claim = Claim.of(attr)
    now = time.time() if now is None else now
    alive = now - claim.beat < STALE_S or _runs_a_trial(study, claim.owner)
    if alive and not is_dead(claim.owner):
        return claim
    _write(study, None)
    return None


def _runs_a_trial(study: optuna.Study, owner: Mapping[str, Any]) -> bool:
    trials = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    return any(t.user_attrs.get(WORKER_ATTR) == owner for t in trials)


def take_over(study: optuna.Study, start: int) -> Claim | None:
    """Claim the refinement from trial ``start`` for this worker; None when another worker's
    refinement is live."""
    if current(study) is not None:
        return None
    claim = Claim(uuid.uuid4().hex, worker_id(), start, (), time.time())
    _write(study, claim)
    return claim


def post(
    study: optuna.Study, claim: Claim, points: Sequence[dict[str, ParamValue]], n_finished: int
) -> Claim:
    """Add ``points`` to the claim for any worker to run; return the claim with their keys.

    The first points posted (the refinement's first Jacobian, when it has several) hold the
    plateau rule back until they and one more trial (the step) have finished: a sampler stage
    that stalled must not end the search halfway through the Jacobian that would end the
    stall. Later Jacobians (after failed steps, at a minimum) are not held.
    """
    fresh = current(study)  # the owner's copy may list points another worker took since
    if fresh is not None and fresh.token == claim.token:
        claim = fresh
    keys = [f"{claim.token[:8]}-{uuid.uuid4().hex[:8]}" for _ in points]
    pending = claim.pending + tuple(zip(keys, (dict(p) for p in points), strict=True))
    held = claim.held_until
    if held == 0 and len(points) > 1:  # not a single point (the start's own residual)
        held = n_finished + len(points) + 1
    updated = Claim(claim.token, claim.owner, claim.start, pending, time.time(), held)
    _write(study, updated)
    return updated


def plateau_held(study: optuna.Study) -> Callable[[StudyView], bool]:
    """For :func:`~gen_loop.search.workers.decide`: whether a live refinement's first
    Jacobian holds the plateau rule back (see :func:`post`), or the search has just left a
    wrong basin (:mod:`gen_loop.search.basins`)."""

    def held(view: StudyView) -> bool:
        if len(view.finished) < Basins.of(study).held_until:
            return True
        claim = current(study)
        return claim is not None and len(view.finished) < claim.held_until

    return held


def beat(study: optuna.Study, claim: Claim) -> Claim:
    """The owner is alive: refresh the claim's beat (at most every :data:`BEAT_S`)."""
    fresh = current(study)
    if fresh is None or fresh.token != claim.token:
        return claim
    if time.time() - fresh.beat < BEAT_S:
        return fresh
    updated = dataclasses.replace(fresh, beat=time.time())
    _write(study, updated)
    return updated


def enqueue_next(study: optuna.Study, claim: Claim) -> str | None:
    """Turn the claim's first pending point into a waiting trial of the study (the next
    ``ask`` of any worker runs it); return its key, None when nothing is pending."""
    if not claim.pending:
        return None
    (key, params), rest = claim.pending[0], claim.pending[1:]
    attrs = {STAGE_ATTR: REFINE_STAGE, REFINE_ID_ATTR: claim.token, REFINE_KEY_ATTR: key}
    study.enqueue_trial(params, user_attrs=attrs, skip_if_exists=False)
    _write(study, dataclasses.replace(claim, pending=rest))
    return key


def results(study: optuna.Study, token: str) -> dict[str, FrozenTrial]:
    """The finished trials of refinement ``token`` by point key (retried failures left out)."""
    trials = study.get_trials(deepcopy=False)
    gone = superseded(trials)
    return {
        str(t.user_attrs[REFINE_KEY_ATTR]): t
        for t in trials
        if t.state.is_finished()
        and t.number not in gone
        and t.user_attrs.get(REFINE_ID_ATTR) == token
        and REFINE_KEY_ATTR in t.user_attrs
    }


def release(study: optuna.Study, claim: Claim, spent: bool) -> None:
    """End the refinement ``claim``; with ``spent``, its start and its trials are not refined
    from again (it ended at a minimum or on a failure, not cut by the stop rule or the
    budget)."""
    fresh = study.user_attrs.get(CLAIM_ATTR)
    if fresh and fresh.get("token") == claim.token:
        _write(study, None)
    if spent:
        ran = trials_of(study.get_trials(deepcopy=False), claim.token)
        study.set_user_attr(SPENT_ATTR, sorted(spent_trials(study) | ran | {claim.start}))


def trials_of(trials: Sequence[FrozenTrial], token: str) -> set[int]:
    """The numbers of refinement ``token``'s trials among ``trials``."""
    return {t.number for t in trials if t.user_attrs.get(REFINE_ID_ATTR) == token}


def spent_trials(study: optuna.Study) -> set[int]:
    """Trials that a finished refinement started from or ran."""
    return {int(n) for n in study.user_attrs.get(SPENT_ATTR, [])}
