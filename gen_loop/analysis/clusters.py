"""k-means clusters of all origins' embeddings, their origin mix, and under-represented clusters.

Clustering runs on the pooled embeddings reduced to their first ``max_dim`` principal components
(:func:`~gen_loop.analysis._features.pca_features`; k-means in hundreds of raw dimensions mostly
clusters noise).
``k`` is given, or chosen from 2..``k_max`` by the best silhouette score.

An **under-represented cluster** is a cluster dominated by one origin (``dominance`` of its
members or more) that another origin barely covers: that origin's fraction of its own images in
the cluster is at most ``max_coverage_ratio`` times the dominant origin's fraction, and a
one-sided Fisher exact test on the 2x2 table (in/out of the cluster x the two origins) rejects
equal coverage at ``alpha`` divided by the number of pairs tested (Bonferroni). Only pairs that
involve the reference are tested: "the reference has images here that X lacks" (X must cover
this region) and "X has images here that the reference lacks" (X's samples off the reference).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import fisher_exact
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score

from gen_loop.analysis._features import pca_features

__all__ = ["ClusterResult", "CoverageFlag", "cluster_embeddings", "representatives"]


@dataclass(frozen=True)
class CoverageFlag:
    """One under-represented cluster.

    Attributes:
        cluster: the cluster id.
        dominant: the origin that dominates it.
        dominant_share: fraction of the cluster's members from ``dominant``.
        missing: the origin that barely covers it.
        dominant_fraction: fraction of ``dominant``'s images in the cluster.
        missing_fraction: fraction of ``missing``'s images in the cluster.
        p_value: one-sided Fisher exact p-value.
        text: one sentence for the report.
    """

    cluster: int
    dominant: str
    dominant_share: float
    missing: str
    dominant_fraction: float
    missing_fraction: float
    p_value: float
    text: str


@dataclass(frozen=True)
class ClusterResult:
    """The clustering of all images.

    Attributes:
        k: number of clusters.
        labels: cluster id of each image, in the order of the pooled input.
        counts: ``counts[c][origin]``: images of each origin in cluster ``c``.
        silhouette: silhouette score of each ``k`` tried (only the chosen one when ``k`` given).
        flags: the under-represented clusters.
        features: the PCA features clustered, ``(n, d)``.
        centers: cluster centres in that space, ``(k, d)``.
    """

    k: int
    labels: np.ndarray
    counts: list[dict[str, int]]
    silhouette: dict[int, float]
    flags: list[CoverageFlag]
    features: np.ndarray
    centers: np.ndarray


def _kmeans(x: np.ndarray, k: int, seed: int) -> KMeans:
    return KMeans(n_clusters=k, n_init=10, random_state=seed).fit(x)


def cluster_embeddings(
    embeddings: np.ndarray,
    origin_of: Sequence[str] | np.ndarray,
    reference: str,
    k: int | None = None,
    k_max: int = 8,
    max_dim: int = 32,
    dominance: float = 0.6,
    max_coverage_ratio: float = 0.25,
    alpha: float = 0.05,
    seed: int = 0,
) -> ClusterResult:
    """Cluster pooled embeddings and flag clusters that an origin barely covers.

    Args:
        embeddings: ``(n, D)`` embeddings of every image of every origin.
        origin_of: the origin name of each row.
        reference: the reference origin's name.
        k: number of clusters; None chooses it by silhouette in ``2..k_max``.
        k_max: largest ``k`` tried.
        max_dim: principal components clustered.
        dominance: share of a cluster one origin must have to dominate it.
        max_coverage_ratio: "barely covers": the other origin's in-cluster fraction at most
            this times the dominant origin's.
        alpha: family-wise level of the Fisher tests.
        seed: k-means seed.

    Returns:
        The :class:`ClusterResult`.

    Raises:
        ValueError: If there are fewer than 3 images or ``k`` is not in ``[1, n - 1]``.
    """
    x = np.asarray(embeddings, dtype=np.float64)
    origins = np.asarray(origin_of)
    n = len(x)
    if n < 3:
        raise ValueError(f"clustering needs at least 3 images, got {n}")
    feats = pca_features(x, max_dim)
    silhouettes: dict[int, float] = {}
    if k is None:
        best: KMeans | None = None
        for kk in range(2, min(k_max, n - 1) + 1):
            model = _kmeans(feats, kk, seed)
            if len(set(model.labels_)) < 2:
                continue
            silhouettes[kk] = float(silhouette_score(feats, model.labels_))
            if best is None or silhouettes[kk] > silhouettes[best.n_clusters]:
                best = model
        model = best if best is not None else _kmeans(feats, 2, seed)
    else:
        if not 1 <= k <= n - 1:
            raise ValueError(f"k={k} must be in [1, {n - 1}] for {n} images")
        model = _kmeans(feats, k, seed)
        if k >= 2 and len(set(model.labels_)) >= 2:
            silhouettes[k] = float(silhouette_score(feats, model.labels_))
    labels = np.asarray(model.labels_, dtype=int)
    names = list(dict.fromkeys(origins.tolist()))
    n_clusters = int(model.n_clusters)
    counts = [
        {name: int(np.sum((labels == c) & (origins == name))) for name in names}
        for c in range(n_clusters)
    ]
    totals = {name: int(np.sum(origins == name)) for name in names}
    flags = _coverage_flags(counts, totals, reference, dominance, max_coverage_ratio, alpha)
    return ClusterResult(
        k=n_clusters,
        labels=labels,
        counts=counts,
        silhouette=silhouettes,
        flags=flags,
        features=feats,
        centers=np.asarray(model.cluster_centers_),
    )


def _coverage_flags(
    counts: list[dict[str, int]],
    totals: dict[str, int],
    reference: str,
    dominance: float,
    max_ratio: float,
    alpha: float,
) -> list[CoverageFlag]:
    candidates = []
    for c, row in enumerate(counts):
        size = sum(row.values())
        if size == 0:
            continue
        dominant = max(row, key=lambda name: row[name])
        share = row[dominant] / size
        if share < dominance:
            continue
        for other in totals:
            if other == dominant or reference not in (dominant, other):
                continue
            candidates.append((c, dominant, share, other))
    flags = []
    threshold = alpha / max(1, len(candidates))
    for c, dominant, share, other in candidates:
        d_in, o_in = counts[c][dominant], counts[c][other]
        d_frac, o_frac = d_in / totals[dominant], o_in / totals[other]
        table = [[d_in, totals[dominant] - d_in], [o_in, totals[other] - o_in]]
        p = float(fisher_exact(table, alternative="greater").pvalue)
        if o_frac <= max_ratio * d_frac and p <= threshold:
            text = (
                f"cluster {c} is {share:.0%} {dominant}: it holds {d_frac:.0%} of {dominant}'s "
                f"images but {o_frac:.0%} of {other}'s (Fisher p={p:.2g}); "
                + (
                    f"{other} does not cover this part of {dominant}"
                    if dominant == reference
                    else f"these {dominant} images are unlike the {reference}"
                )
            )
            flags.append(CoverageFlag(c, dominant, share, other, d_frac, o_frac, p, text))
    return flags


def representatives(
    result: ClusterResult, cluster: int, n: int, origin_of: np.ndarray | None = None
) -> np.ndarray:
    """Indices of ``n`` images of ``cluster`` for its gallery: nearest the centre first, taken
    from each origin in turn when ``origin_of`` is given (so a mixed cluster shows its mix)."""
    members = np.flatnonzero(result.labels == cluster)
    dist = np.linalg.norm(result.features[members] - result.centers[cluster], axis=1)
    ordered = members[np.argsort(dist, kind="stable")]
    if origin_of is None:
        return ordered[:n]
    queues = [
        list(ordered[origin_of[ordered] == name]) for name in dict.fromkeys(origin_of[ordered])
    ]
    picked: list[int] = []
    while len(picked) < min(n, len(ordered)):
        for queue in queues:
            if queue and len(picked) < n:
                picked.append(int(queue.pop(0)))
    return np.asarray(picked, dtype=int)
