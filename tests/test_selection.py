"""Tests of selection: which generated samples are kept for fine-tuning."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from gen_loop.selection import SELECTION_METHODS, select_closest

DISTANCE = st.floats(min_value=0.0, max_value=1e3, allow_nan=False, allow_subnormal=False)


def test_quantile_keeps_exactly_the_samples_within_the_target_quantile_closest_first() -> None:
    target = np.arange(1.0, 11.0)  # 1..10: the 0.5 quantile is 5.5
    distances = np.array([7.0, 5.5, 0.2, 9.0, 5.6, 3.0, 5.4])
    chosen, threshold = select_closest(distances, "quantile", target, quantile=0.5)
    assert threshold == pytest.approx(5.5)
    assert chosen.tolist() == [2, 5, 6, 1]  # 0.2, 3.0, 5.4, 5.5 (equal to the threshold)


def test_quantile_one_keeps_up_to_the_farthest_target_sample() -> None:
    target = np.array([1.0, 2.0, 4.0])
    distances = np.array([4.0, 4.0001, 0.5])
    chosen, threshold = select_closest(distances, "quantile", target, quantile=1.0)
    assert threshold == 4.0
    assert chosen.tolist() == [2, 0]


def test_quantile_can_select_nothing() -> None:
    chosen, _ = select_closest(np.array([5.0, 6.0]), "quantile", np.array([1.0, 2.0]), 0.9)
    assert chosen.size == 0


def test_topk_returns_the_k_closest_in_order() -> None:
    distances = np.array([0.9, 0.1, 0.5, 0.3, 0.7])
    chosen, threshold = select_closest(distances, "topk", top_k=3)
    assert chosen.tolist() == [1, 3, 2]
    assert threshold == 0.5
    everything, last = select_closest(distances, "topk", top_k=50)
    assert everything.tolist() == [1, 3, 2, 4, 0]
    assert last == 0.9


def test_topk_ties_keep_pool_order() -> None:
    chosen, _ = select_closest(np.array([0.2, 0.1, 0.2, 0.2]), "topk", top_k=3)
    assert chosen.tolist() == [1, 0, 2]


def test_bad_method_is_a_value_error() -> None:
    assert set(SELECTION_METHODS) == {"quantile", "topk", "camera", "jitter"}
    with pytest.raises(ValueError, match="select_pool"):
        select_closest(np.array([1.0]), "jitter")
    with pytest.raises(ValueError, match="bogus"):
        select_closest(np.array([1.0]), "bogus", np.array([1.0]))


@pytest.mark.parametrize("target", [None, np.array([])])
def test_quantile_without_target_distances_is_a_value_error(target: np.ndarray | None) -> None:
    with pytest.raises(ValueError, match="target"):
        select_closest(np.array([1.0, 2.0]), "quantile", target)


@settings(max_examples=60, deadline=None)
@given(
    distances=hnp.arrays(np.float64, st.integers(1, 40), elements=DISTANCE),
    target=hnp.arrays(np.float64, st.integers(1, 40), elements=DISTANCE),
    quantile=st.floats(min_value=0.01, max_value=1.0),
)
def test_quantile_selection_properties(
    distances: np.ndarray, target: np.ndarray, quantile: float
) -> None:
    chosen, threshold = select_closest(distances, "quantile", target, quantile=quantile)
    assert threshold == pytest.approx(float(np.quantile(target, quantile)))
    assert len(set(chosen.tolist())) == len(chosen)
    assert all(0 <= i < len(distances) for i in chosen)
    assert np.all(np.diff(distances[chosen]) >= 0)
    kept = np.zeros(len(distances), bool)
    kept[chosen] = True
    assert np.all(distances[kept] <= threshold)
    assert np.all(distances[~kept] > threshold)


@settings(max_examples=60, deadline=None)
@given(
    distances=hnp.arrays(np.float64, st.integers(1, 40), elements=DISTANCE),
    top_k=st.integers(1, 50),
)
def test_topk_selection_properties(distances: np.ndarray, top_k: int) -> None:
    chosen, threshold = select_closest(distances, "topk", top_k=top_k)
    assert len(chosen) == min(top_k, len(distances))
    assert len(set(chosen.tolist())) == len(chosen)
    assert all(0 <= i < len(distances) for i in chosen)
    assert np.all(np.diff(distances[chosen]) >= 0)
    assert threshold == distances[chosen[-1]]
    rest = np.setdiff1d(np.arange(len(distances)), chosen)
    assert np.all(distances[rest] >= threshold)
