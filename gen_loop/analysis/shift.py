"""Is there a shift between two sets of embeddings, and how big: three measures and a verdict.

1. **Domain classifier**: an L2 logistic regression (``C = 1``) tells the sets apart; its
   stratified k-fold cross-validated ROC AUC (pooled out-of-fold scores) is 0.5 when they are
   alike and 1 when they are separable. p-value: the whole cross-validation repeated on label
   permutations, ``p = (1 + #{AUC_perm >= AUC}) / (1 + n_perm)``.
2. **MMD²**: the unbiased estimate of the squared maximum mean discrepancy with a Gaussian kernel
   ``exp(-|x - y|^2 / (2 sigma^2))``, ``sigma`` = the median pairwise distance of the pooled
   sample (the median heuristic). p-value by permutation with the same ``+1`` correction.
3. **Centroid distance vs noise floor**: the loop's own yardstick
   (:class:`gen_loop.score.CentroidScorer`): the set's centroid distance to the reference
   divided by the distance a batch of as many real reference samples has from the rest.

Both tests run on shared, label-free features: the pooled sample centred and projected on its
first ``max_dim`` principal components (whitened for the classifier); the tests themselves are
in :mod:`gen_loop.analysis.two_sample`.
Being label-free, this preprocessing is the same under every permutation, so the permutation
p-values are exact. The verdict calls a shift when either p-value is at most ``alpha / 2``
(Bonferroni over the two tests) **and** the centroid is farther than the noise floor (ratio > 1,
when the floor can be computed): two samples of one distribution are called shifted with
probability at most ``alpha``, and a set the loop would call converged (within the floor) is
not called shifted; a significant difference inside the floor is reported as such.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from gen_loop.analysis.two_sample import (
    MIN_PER_SET,
    auc_permutation_test,
    mmd_permutation_test,
    shared_features,
)
from gen_loop.score import CentroidScorer, Metric

__all__ = ["ShiftResult", "headline", "shift_size", "two_sample_shift"]


@dataclass(frozen=True)
class ShiftResult:
    """The shift between one origin and the reference.

    Attributes:
        origin: the origin's name.
        reference: the reference origin's name.
        n_origin: images in the origin.
        n_reference: images in the reference.
        auc: cross-validated ROC AUC of the domain classifier (None if not computable).
        auc_p: its permutation p-value.
        mmd2: unbiased MMD² estimate.
        mmd_p: its permutation p-value.
        bandwidth: the Gaussian kernel's sigma (median heuristic).
        centroid_distance: the scorer's distance between the origin and the reference.
        noise_floor: the reference's own distance at the same batch size (mean over splits).
        noise_floor_std: std of the floor over the splits.
        floor_batch_size: batch size the floor was computed at.
        floor_ratio: ``centroid_distance / noise_floor``.
        shifted: the verdict: a test rejects at ``alpha / 2`` and ``floor_ratio > 1``.
        size: "none", "slight", "moderate", "large" or "separable" (from the AUC).
        verdict: one line with the numbers.
        note: why a measure is missing, if one is.
    """

    origin: str
    reference: str
    n_origin: int
    n_reference: int
    auc: float | None
    auc_p: float | None
    mmd2: float | None
    mmd_p: float | None
    bandwidth: float | None
    centroid_distance: float | None
    noise_floor: float | None
    noise_floor_std: float | None
    floor_batch_size: int | None
    floor_ratio: float | None
    shifted: bool
    size: str
    verdict: str
    note: str = ""


def shift_size(auc: float | None, shifted: bool) -> str:
    """A word for the size of a shift, from the classifier's AUC."""
    if not shifted or auc is None:
        return "none"
    if auc < 0.6:
        return "slight"
    if auc < 0.8:
        return "moderate"
    return "large" if auc < 0.95 else "separable"


def headline(result: ShiftResult, alpha: float = 0.05) -> str:
    """One line for the report's top and the run's table, e.g.
    ``target vs source: separable (AUC 1.00, p 0.005; MMD p 0.005; 58x the floor)``; when one
    test alone rejects (at ``alpha / 2``) the line says which."""
    auc_hit = result.auc_p is not None and result.auc_p <= alpha / 2
    mmd_hit = result.mmd_p is not None and result.mmd_p <= alpha / 2
    if result.shifted:
        word = "separable" if result.size == "separable" else f"{result.size} shift"
        if auc_hit and not mmd_hit:
            word += " to the classifier, not to MMD"
        elif mmd_hit and not auc_hit:
            word = "shifted to MMD, not to the classifier"
    elif result.auc_p is None and result.mmd_p is None:
        word = "not tested"
    elif auc_hit or mmd_hit:
        word = "a difference the tests detect, within the noise floor"
    else:
        word = "not distinguishable"
    parts = []
    if result.auc is not None and result.auc_p is not None:
        parts.append(f"AUC {result.auc:.2f}, p {result.auc_p:.2g}")
    if result.mmd_p is not None:
        parts.append(f"MMD p {result.mmd_p:.2g}")
    ratio = result.floor_ratio
    if ratio is not None and math.isfinite(ratio):
        parts.append(f"{ratio:.0f}x the floor" if ratio >= 10 else f"{ratio:.2f}x the floor")
    numbers = f" ({'; '.join(parts)})" if parts else ""
    return f"{result.reference} vs {result.origin}: {word}{numbers}"


def two_sample_shift(
    origin: np.ndarray,
    reference: np.ndarray,
    names: tuple[str, str],
    alpha: float = 0.05,
    n_permutations: int = 200,
    folds: int = 5,
    max_dim: int = 32,
    metric: Metric = "zscore_l2",
    floor_splits: int = 20,
    seed: int = 0,
) -> ShiftResult:
    """All three shift measures and the verdict for one origin against the reference.

    Args:
        origin: the origin's embeddings ``(n_o, D)``.
        reference: the reference's embeddings ``(n_r, D)``.
        names: ``(origin name, reference name)``.
        alpha: family-wise level of the verdict (each test at ``alpha / 2``).
        n_permutations: permutations per test.
        folds: cross-validation folds of the classifier.
        max_dim: principal components kept for the tests.
        metric: the centroid scorer's metric.
        floor_splits: random splits for the reference's noise floor.
        seed: seed of every random choice here.

    Returns:
        The :class:`ShiftResult`; with fewer than 2 images on a side the tests are skipped and
        ``note`` says so.
    """
    rng = np.random.default_rng(seed)
    n_o, n_r = len(origin), len(reference)
    auc = auc_p = mmd2 = mmd_p = bandwidth = None
    notes = []
    if n_o >= MIN_PER_SET and n_r >= MIN_PER_SET:
        feats = shared_features(origin, reference, max_dim)
        labels = np.r_[np.ones(n_o), np.zeros(n_r)]
        auc, auc_p = auc_permutation_test(feats, labels, n_permutations, folds, rng)
        mmd2, mmd_p, bandwidth = mmd_permutation_test(feats, labels, n_permutations, rng)
    else:
        notes.append(f"tests need at least {MIN_PER_SET} images per set")
    distance = floor = floor_std = ratio = None
    floor_batch: int | None = None
    if n_r >= 4:
        scorer = CentroidScorer(metric).fit(reference)
        distance = scorer.score(origin)
        nf = scorer.noise_floor(n_o, floor_splits, rng)
        floor, floor_std, floor_batch = nf.mean, nf.std, nf.batch_size
        ratio = distance / floor if floor > 0 else math.inf
    else:
        notes.append("the noise floor needs at least 4 reference images")
    p_values = [p for p in (auc_p, mmd_p) if p is not None]
    significant = bool(p_values) and min(p_values) <= alpha / 2
    beyond_floor = ratio is None or ratio > 1.0
    shifted = significant and beyond_floor
    if significant and not beyond_floor:
        notes.append("significant, but within the reference's noise floor")
    size = shift_size(auc, shifted)
    return ShiftResult(
        origin=names[0],
        reference=names[1],
        n_origin=n_o,
        n_reference=n_r,
        auc=auc,
        auc_p=auc_p,
        mmd2=mmd2,
        mmd_p=mmd_p,
        bandwidth=bandwidth,
        centroid_distance=distance,
        noise_floor=floor,
        noise_floor_std=floor_std,
        floor_batch_size=floor_batch,
        floor_ratio=ratio,
        shifted=shifted,
        size=size,
        verdict=_verdict(shifted, significant, size, (auc, auc_p, mmd2, mmd_p, ratio), alpha),
        note="; ".join(notes),
    )


def _verdict(
    shifted: bool,
    significant: bool,
    size: str,
    numbers: tuple[float | None, ...],
    alpha: float,
) -> str:
    auc, auc_p, mmd2, mmd_p, ratio = numbers
    parts = []
    if auc is not None and auc_p is not None:
        parts.append(f"classifier AUC {auc:.3f} (p={auc_p:.3g})")
    if mmd2 is not None and mmd_p is not None:
        parts.append(f"MMD² {mmd2:.4f} (p={mmd_p:.3g})")
    if ratio is not None:
        parts.append(f"centroid {ratio:.2f}x the noise floor")
    numbers_text = ", ".join(parts)
    if auc_p is None and mmd_p is None:
        return f"not tested: {numbers_text}" if numbers_text else "not tested"
    if shifted:
        head = f"SHIFT ({size})"
    elif significant:
        head = "a detectable difference, but within the noise floor"
    else:
        head = f"no shift detected at {alpha:g}"
    return f"{head}: {numbers_text}"
