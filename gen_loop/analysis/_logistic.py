"""L2-penalised logistic regression fitted for many label/weight vectors at once.

The domain classifier's permutation test refits the same model on hundreds of label
permutations and cross-validation folds. Each fit is small (tens of features), so they are
solved together: one damped Newton iteration updates every problem with batched linear algebra.
The objective is scikit-learn's ``LogisticRegression(C=C)`` (lbfgs, L2, unpenalised intercept)
with sample weights, so the solution is the same; the tests check it against scikit-learn.
"""

from __future__ import annotations

import numpy as np

__all__ = ["fit_logistic_batch", "logistic_decision"]

_MAX_HALVINGS = 30


def _objective(
    theta: np.ndarray, xt: np.ndarray, y: np.ndarray, w: np.ndarray, c: float
) -> np.ndarray:
    """``C * sum_i w_i * logloss_i + ||coef||^2 / 2`` for each problem, shape ``(B,)``."""
    z = theta @ xt.T  # (B, n)
    loss = np.logaddexp(0.0, z) - y * z
    return c * np.sum(w * loss, axis=1) + 0.5 * np.sum(theta[:, :-1] ** 2, axis=1)


def fit_logistic_batch(
    x: np.ndarray,
    y: np.ndarray,
    weights: np.ndarray,
    c: float = 1.0,
    max_iter: int = 50,
    tol: float = 1e-10,
) -> np.ndarray:
    """Fit ``B`` logistic regressions sharing the design matrix ``x``.

    Problem ``b`` minimises ``C * sum_i weights[b, i] * logloss(y[b, i], x_i . coef + b0)
    + ||coef||^2 / 2`` (intercept not penalised), by Newton's method with step halving. A
    weight of 0 leaves a row out (a cross-validation fold's test rows).

    Args:
        x: Features, shape ``(n, d)``.
        y: Labels in {0, 1}, shape ``(B, n)``.
        weights: Non-negative sample weights, shape ``(B, n)``.
        c: Inverse regularisation strength (scikit-learn's ``C``); positive.
        max_iter: Most Newton iterations.
        tol: Stop when the largest Newton decrement ``g' H^-1 g / 2`` is below this.

    Returns:
        ``(B, d + 1)``: coefficients, then the intercept in the last column.

    Raises:
        ValueError: On mismatched shapes or a non-positive ``c``.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2 or y.shape != w.shape or y.shape[1] != x.shape[0]:
        raise ValueError(f"shapes do not fit: x {x.shape}, y {y.shape}, weights {w.shape}")
    if not c > 0:
        raise ValueError(f"c must be positive, got {c}")
    n_problems, d = y.shape[0], x.shape[1]
    xt = np.hstack([x, np.ones((x.shape[0], 1))])
    penalty = np.ones(d + 1)
    penalty[-1] = 0.0
    theta = np.zeros((n_problems, d + 1))
    current = _objective(theta, xt, y, w, c)
    for _ in range(max_iter):
        z = theta @ xt.T
        p = 1.0 / (1.0 + np.exp(-z))
        grad = c * ((w * (p - y)) @ xt) + penalty * theta
        curvature = c * w * p * (1.0 - p)  # (B, n)
        hess = np.einsum("bn,ni,nj->bij", curvature, xt, xt)
        hess += np.diag(penalty + 1e-12)
        step = np.linalg.solve(hess, grad[..., None])[..., 0]
        decrement = 0.5 * np.sum(grad * step, axis=1)
        if float(decrement.max()) < tol:
            break
        scale = np.ones(n_problems)
        candidate = theta - step
        value = _objective(candidate, xt, y, w, c)
        for _ in range(_MAX_HALVINGS):
            worse = value > current + 1e-12 * np.abs(current)
            if not worse.any():
                break
            scale[worse] *= 0.5
            candidate = theta - scale[:, None] * step
            value = _objective(candidate, xt, y, w, c)
        theta, current = candidate, value
    return theta


def logistic_decision(theta: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Decision values ``x . coef + intercept`` of each fitted problem: ``(B, n)``."""
    return theta[:, :-1] @ np.asarray(x, dtype=np.float64).T + theta[:, -1:]
