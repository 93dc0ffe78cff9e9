"""Left basins: minima a refinement found far above the noise floor, which the search leaves.

A Gauss-Newton refinement converges to the minimum of the basin it starts in. When that
minimum is far above the noise floor, either it is a wrong basin or no searched camera
reproduces the target. experiments/recovery/UNCERTAINTY.md (seed 3, camera 8) has the first:
a refinement that settled at 9.4 x the floor with the lens distortion traded for vignetting
and contrast, and the plateau rule then ended the run there. For the second, looking
elsewhere costs little: the plateau rule is held once per real gain, so such a search still
stops on a plateau. ``search.refine.restart`` (:class:`~gen_loop.config.schema.
RestartConfig`) ends such a refinement (:func:`stalled_for`), records its trials here as a
left basin, and the search goes on elsewhere: the sampler proposes only points at least
``radius`` from every left basin's trials (:func:`outside`) and from its other trials since
the latest basin was left, and the next refinement starts from the best trial outside them.

The record is a study user attribute, so every worker of the study (and a resumed run) sees
the same basins. Write it under :meth:`gen_loop.search.storage.StudyMutex.hold`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial

from gen_loop.search.refine import REFINE_STAGE, STAGE_ATTR, Box

#: The study's user attribute holding the left basins (absent: none).
BASINS_ATTR = "left_basins"


@dataclass(frozen=True)
class Basins:
    """The study's left basins.

    Attributes:
        left: each left basin, in the order they were left: the trial its refinement started
            from (``start``), its best trial (``best_trial``) and distance (``distance``).
        trials: the numbers of the trials in them (each refinement's start and its trials).
        radius: how far (unit cube, Euclidean) from each of those trials a point is outside.
        held_until: the plateau rule is held while the study has fewer finished trials.
        left_at: the number of the study's latest trial when the latest basin was left (the
            sampler's trials after it are the next basin's search).
    """

    left: tuple[dict[str, Any], ...] = ()
    trials: frozenset[int] = frozenset()
    radius: float = 0.0
    held_until: int = 0
    left_at: int = -1

    @classmethod
    def of(cls, study: optuna.Study) -> Basins:
        attr = study.user_attrs.get(BASINS_ATTR)
        if not attr:
            return cls()
        return cls(
            tuple(dict(entry) for entry in attr["left"]),
            frozenset(int(n) for n in attr["trials"]),
            float(attr["radius"]),
            int(attr["held_until"]),
            int(attr["left_at"]),
        )

    def searched_after(self, trial: FrozenTrial) -> bool:
        """Whether ``trial`` is one of the sampler's trials (not a refinement's) since the
        latest basin was left; False when none was."""
        return (
            bool(self.trials)
            and trial.number > self.left_at
            and trial.user_attrs.get(STAGE_ATTR) != REFINE_STAGE
        )

    def points(self, trials: Sequence[FrozenTrial], box: Box) -> np.ndarray:
        """The left basins' trials in ``box``'s unit cube, ``(k, P)``."""
        rows = [
            box.to_unit(t.params)
            for t in trials
            if t.number in self.trials and set(box.names) <= set(t.params)
        ]
        return np.array(rows).reshape(-1, len(box.names))


def leave(
    study: optuna.Study,
    entry: dict[str, Any],
    trials: set[int],
    radius: float,
    held_until: int,
    left_at: int,
) -> Basins:
    """Add a left basin (``entry``: ``start``, ``best_trial``, ``distance``; its ``trials``)
    to the study's record; hold the plateau rule until the study has ``held_until`` finished
    trials."""
    now = Basins.of(study)
    start = int(entry["start"])
    basins = Basins(
        (*now.left, entry),
        now.trials | trials | {start},
        radius,
        max(now.held_until, held_until),
        left_at,
    )
    study.set_user_attr(
        BASINS_ATTR,
        {
            "left": list(basins.left),
            "trials": sorted(basins.trials),
            "radius": basins.radius,
            "held_until": basins.held_until,
            "left_at": basins.left_at,
        },
    )
    return basins


def outside(points: np.ndarray, basin_points: np.ndarray, radius: float) -> np.ndarray:
    """Which ``points`` (unit cube) lie at least ``radius`` from every left basin's point."""
    if len(basin_points) == 0 or len(points) == 0:
        return np.ones(len(points), dtype=np.bool_)
    gaps = np.linalg.norm(points[:, np.newaxis, :] - basin_points[np.newaxis, :, :], axis=2)
    return np.asarray(gaps.min(axis=1) >= radius)


def stalled_for(start: float, distances: Sequence[float], min_rel_improvement: float) -> int:
    """How many of a refinement's trials (``distances`` in order, from a start at ``start``)
    have passed since its own best last fell by ``min_rel_improvement``; failed ones (NaN)
    count as no gain."""
    best, since = start, 0
    for value in distances:
        if np.isfinite(value) and value < best * (1.0 - min_rel_improvement):
            since = 0
        else:
            since += 1
        if np.isfinite(value):
            best = min(best, value)
    return since


def own_best(start: float, distances: Sequence[float]) -> float:
    """A refinement's best distance: its start's or its trials' (NaN: failed)."""
    finite = [v for v in distances if np.isfinite(v)]
    return min([start, *finite])


def gained_after(trials: Sequence[FrozenTrial], number: int, min_rel_improvement: float) -> bool:
    """Whether a trial after trial ``number`` beat every trial up to it by
    ``min_rel_improvement`` (a real gain, as the plateau rule counts one)."""
    upto = [_distance(t) for t in trials if t.number <= number]
    later = [_distance(t) for t in trials if t.number > number]
    upto, later = [v for v in upto if np.isfinite(v)], [v for v in later if np.isfinite(v)]
    if not later:
        return False
    if not upto:
        return True
    return min(later) < min(upto) * (1.0 - min_rel_improvement)


def _distance(trial: FrozenTrial) -> float:
    return float(trial.user_attrs.get("distance", float("nan")))
