"""The convergence floor is the floor of a trial: batch_size samples against the whole target."""

from __future__ import annotations

import numpy as np
import pytest

from gen_loop.score import CentroidScorer
from gen_loop.search import trial_noise_floor

DIM = 64


def _trial_scores(metric: str, n_target: int, batch: int) -> tuple[float, float, float]:
    """(raw floor, rescaled floor, mean score of same-distribution batches) on Gaussian data."""
    rng = np.random.default_rng(0)
    mean = np.full(DIM, 3.0)  # away from the origin, so cosine is defined and small
    target = rng.normal(mean, 1.0, (n_target, DIM))
    scorer = CentroidScorer(metric).fit(target)  # type: ignore[arg-type]
    floor = scorer.noise_floor(batch, 400, rng)
    fresh = [scorer.score(rng.normal(mean, 1.0, (batch, DIM))) for _ in range(400)]
    rescaled = trial_noise_floor(floor.mean, floor.batch_size, n_target, batch, metric)
    return floor.mean, rescaled, float(np.mean(fresh))


@pytest.mark.parametrize("metric", ["zscore_l2", "l2", "cosine"])
def test_small_target_floor_is_rescaled_to_what_a_same_distribution_batch_scores(
    metric: str,
) -> None:
    raw, rescaled, fresh = _trial_scores(metric, n_target=40, batch=32)  # reference of 8
    assert raw > 1.4 * fresh  # the split floor is far too high here
    assert rescaled == pytest.approx(fresh, rel=0.1)


def test_target_under_batch_plus_two_uses_half_splits_and_is_rescaled() -> None:
    raw, rescaled, fresh = _trial_scores("zscore_l2", n_target=24, batch=32)  # floor batch 12
    assert raw > 1.3 * fresh
    assert rescaled == pytest.approx(fresh, rel=0.1)


def test_large_target_floor_barely_changes() -> None:
    raw, rescaled, fresh = _trial_scores("zscore_l2", n_target=640, batch=32)
    assert rescaled == pytest.approx(raw, rel=0.03)
    assert rescaled == pytest.approx(fresh, rel=0.1)


def test_other_metrics_are_not_rescaled() -> None:
    assert trial_noise_floor(0.5, 12, 24, 32, "mmd") == 0.5
