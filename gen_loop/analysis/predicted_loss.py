"""Predicted detection loss of unlabeled images, learned from labeled ones.

The labeled images (a source set, generated batches) have a real per-image loss
(:mod:`gen_loop.analysis.detections`). Two estimators carry it over to unlabeled images:

- ``knn``: the mean loss of the ``k`` nearest labeled images in embedding space (the
  PCA features the clustering uses). It says "images that the model sees like
  these had this loss"; far from every labeled image it extrapolates poorly.
- ``confidence``: a ridge regression from the detector's own confidence statistics
  (:data:`gen_loop.analysis.detections.CONFIDENCE_FEATURES`) to the loss. It reads how the
  detector hesitates on the image itself, which transfers to a new camera better.
- ``ensemble`` (default): the mean of the two.

Labeled images get out-of-fold predictions (leave-one-out for ``knn``, 5-fold for
``confidence``), so their predictions can be checked against their real loss like any other.
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import Ridge
from sklearn.model_selection import KFold

__all__ = ["ESTIMATORS", "predict_loss"]

ESTIMATORS = ("knn", "confidence", "ensemble")


def _standardise(train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    mean = train.mean(axis=0)
    std = np.maximum(train.std(axis=0), 1e-9)
    return [(a - mean) / std for a in (train, *others)]


def knn_loss(
    train_x: np.ndarray, train_loss: np.ndarray, query_x: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """k-NN regression: predictions for ``query_x`` and leave-one-out ones for ``train_x``."""
    tr, q = _standardise(train_x, query_x)
    k_eff = max(1, min(k, len(tr) - 1))
    d_q = _sq_dist(q, tr)
    nearest = np.argsort(d_q, axis=1, kind="stable")[:, :k_eff]
    pred_q = train_loss[nearest].mean(axis=1)
    d_t = _sq_dist(tr, tr)
    np.fill_diagonal(d_t, np.inf)
    nearest_t = np.argsort(d_t, axis=1, kind="stable")[:, :k_eff]
    return pred_q, train_loss[nearest_t].mean(axis=1)


def _sq_dist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.maximum(
        np.sum(a * a, axis=1)[:, None] + np.sum(b * b, axis=1)[None, :] - 2.0 * a @ b.T, 0.0
    )


def confidence_loss(
    train_f: np.ndarray,
    train_loss: np.ndarray,
    query_f: np.ndarray,
    seed: int,
    ridge: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Ridge regression on confidence statistics: query predictions and 5-fold out-of-fold
    predictions for the training images."""
    tr, q = _standardise(train_f, query_f)
    pred_q = Ridge(alpha=ridge).fit(tr, train_loss).predict(q)
    oof = np.empty(len(tr))
    folds = KFold(n_splits=min(5, len(tr)), shuffle=True, random_state=seed)
    for fit_idx, held in folds.split(tr):
        model = Ridge(alpha=ridge).fit(tr[fit_idx], train_loss[fit_idx])
        oof[held] = model.predict(tr[held])
    return pred_q, oof


def predict_loss(
    estimator: str,
    train_embed: np.ndarray,
    train_conf: np.ndarray,
    train_loss: np.ndarray,
    query_embed: np.ndarray,
    query_conf: np.ndarray,
    k: int = 10,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Predicted loss of query images and out-of-fold predictions of the training images.

    Args:
        estimator: ``knn``, ``confidence`` or ``ensemble``.
        train_embed: ``(n, d)`` features of the labeled images.
        train_conf: ``(n, c)`` confidence statistics of the labeled images.
        train_loss: ``(n,)`` their real loss.
        query_embed: ``(m, d)`` features of the images to predict.
        query_conf: ``(m, c)`` their confidence statistics.
        k: neighbours of ``knn``.
        seed: fold seed of ``confidence``.

    Returns:
        ``(query predictions (m,), training out-of-fold predictions (n,))``.

    Raises:
        ValueError: On an unknown estimator or fewer than 2 labeled images.
    """
    if estimator not in ESTIMATORS:
        raise ValueError(f"unknown estimator {estimator!r}; use one of {', '.join(ESTIMATORS)}")
    if len(train_loss) < 2:
        raise ValueError("predicting the loss needs at least 2 labeled images")
    y = np.asarray(train_loss, dtype=np.float64)
    parts = []
    if estimator in ("knn", "ensemble"):
        parts.append(knn_loss(train_embed, y, query_embed, k))
    if estimator in ("confidence", "ensemble"):
        parts.append(confidence_loss(train_conf, y, query_conf, seed))
    query = np.mean([p[0] for p in parts], axis=0)
    train = np.mean([p[1] for p in parts], axis=0)
    return query, train
