"""A Gaussian-process model of the residual vector over the unit cube.

Every trial of the centroid distance yields the whole D-dimensional residual (the z-scored
centroid shift whose norm is the distance), not one number. This module models each of its
components as a function of the searched parameters: a linear trend per component, plus a
zero-mean Gaussian process on what the trend leaves, all components sharing one Matérn-5/2
kernel with a length scale per parameter (ARD) and a per-component signal variance. The
length scales are fitted by maximising the marginal likelihood summed over the components
(the per-component variance concentrated out), so D components inform one small set of
hyperparameters.

Far from the data the prediction falls back on the linear trend (a Gauss-Newton model of the
whole range); near the data the GP interpolates the measured residuals, so the minimiser of the
predicted norm sharpens as trials accumulate near it. :mod:`gen_loop.search.vector_sampler`
turns the model into proposals.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
from scipy.linalg import cho_factor, cho_solve
from scipy.optimize import minimize

FloatArray = np.ndarray

#: Length-scale bounds, in units of each parameter's range (the unit cube).
LENGTH_BOUNDS = (0.03, 30.0)
#: Nugget bounds, relative to each component's signal variance. The renders are deterministic
#: under common scene seeds; the nugget keeps the kernel matrix well conditioned.
NUGGET_BOUNDS = (1e-6, 1e-1)
_SQRT5 = math.sqrt(5.0)


def matern52(a: FloatArray, b: FloatArray, lengths: FloatArray) -> FloatArray:
    """The Matérn-5/2 correlation between the rows of ``a`` (m, P) and ``b`` (n, P)."""
    diff = (a[:, np.newaxis, :] - b[np.newaxis, :, :]) / lengths
    r = np.sqrt(np.maximum(np.sum(diff * diff, axis=-1), 0.0))
    return (1.0 + _SQRT5 * r + (5.0 / 3.0) * r * r) * np.exp(-_SQRT5 * r)


def _design(x: FloatArray, linear: bool) -> FloatArray:
    """The trend's design matrix: a constant, and the parameters themselves when ``linear``."""
    ones = np.ones((x.shape[0], 1))
    return np.hstack([ones, x]) if linear else ones


@dataclass(frozen=True)
class ResidualGP:
    """The fitted model; build it with :meth:`fit`.

    Attributes:
        x: the conditioning points, (n, P) in the unit cube.
        lengths: the kernel's length scale per parameter.
        nugget: the kernel's diagonal term (relative).
        linear: whether the trend is linear in the parameters (else a constant).
        coef: the trend's coefficients, (1 + P, D) or (1, D).
        alpha: ``C^-1 (R - trend)``, (n, D).
        scale2: each component's signal variance, (D,).
    """

    x: FloatArray
    lengths: FloatArray
    nugget: float
    linear: bool
    coef: FloatArray
    alpha: FloatArray
    scale2: FloatArray
    _chol: tuple[FloatArray, bool]

    @classmethod
    def fit(
        cls, x: FloatArray, r: FloatArray, start: tuple[FloatArray, float] | None = None
    ) -> ResidualGP:
        """Fit the trend and the kernel to residuals ``r`` (n, D) measured at ``x`` (n, P).

        Args:
            x: the trials' points in the unit cube.
            r: their residual vectors.
            start: length scales and nugget to start the likelihood search from (the last
                fit's), besides the default start.
        """
        x = np.asarray(x, dtype=np.float64)
        r = np.asarray(r, dtype=np.float64)
        n, p = x.shape
        linear = n >= p + 3  # a linear trend once it is over-determined by a margin
        design = _design(x, linear)
        coef = np.linalg.lstsq(design, r, rcond=None)[0]
        rest = r - design @ coef
        starts = [np.append(np.full(p, math.log(0.5)), math.log(1e-4))]
        if start is not None:
            starts.append(np.append(np.log(start[0]), math.log(start[1])))
        bounds = [tuple(map(math.log, LENGTH_BOUNDS))] * p + [tuple(map(math.log, NUGGET_BOUNDS))]
        best = min(
            (
                minimize(
                    _neg_log_likelihood,
                    s,
                    args=(x, rest),
                    method="L-BFGS-B",
                    bounds=bounds,
                    options={"maxiter": 60},
                )
                for s in starts
            ),
            key=lambda res: res.fun,
        )
        lengths, nugget = np.exp(best.x[:p]), float(math.exp(best.x[p]))
        return cls._condition(x, rest, coef, lengths, nugget, linear)

    @classmethod
    def _condition(
        cls,
        x: FloatArray,
        rest: FloatArray,
        coef: FloatArray,
        lengths: FloatArray,
        nugget: float,
        linear: bool,
    ) -> ResidualGP:
        corr = matern52(x, x, lengths) + nugget * np.eye(x.shape[0])
        chol = cho_factor(corr, lower=True)
        alpha = cho_solve(chol, rest)
        scale2 = np.maximum(np.sum(rest * alpha, axis=0) / x.shape[0], 1e-18)
        return cls(x, lengths, nugget, linear, coef, alpha, scale2, chol)

    def predict(self, xc: FloatArray) -> tuple[FloatArray, FloatArray]:
        """The predicted residual (m, D) at points ``xc`` (m, P) and the posterior variance of
        the correlation, (m,): component d's variance is ``var * scale2[d]``."""
        xc = np.atleast_2d(np.asarray(xc, dtype=np.float64))
        k = matern52(xc, self.x, self.lengths)
        mean = _design(xc, self.linear) @ self.coef + k @ self.alpha
        solved = cho_solve(self._chol, k.T)
        var = np.maximum(1.0 + self.nugget - np.sum(k * solved.T, axis=1), 0.0)
        return mean, var

    def believe(self, xc: FloatArray) -> ResidualGP:
        """The model with points ``xc`` added at their predicted residuals ("kriging
        believer"): the variance there drops to the nugget, the mean is unchanged. For trials
        another worker is running, so this worker proposes somewhere else."""
        xc = np.atleast_2d(np.asarray(xc, dtype=np.float64))
        if xc.shape[0] == 0:
            return self
        mean, _ = self.predict(xc)
        x = np.vstack([self.x, xc])
        rest = np.vstack([self._rest(), mean - _design(xc, self.linear) @ self.coef])
        model = self._condition(x, rest, self.coef, self.lengths, self.nugget, self.linear)
        return replace(model, scale2=self.scale2)

    def _rest(self) -> FloatArray:
        """The residual minus the trend at the conditioning points (``C @ alpha``)."""
        corr = matern52(self.x, self.x, self.lengths) + self.nugget * np.eye(self.x.shape[0])
        return corr @ self.alpha


def _neg_log_likelihood(theta: FloatArray, x: FloatArray, rest: FloatArray) -> float:
    """Minus the log marginal likelihood, summed over the components, each component's signal
    variance at its maximum-likelihood value (constants dropped)."""
    n, d = rest.shape
    lengths, nugget = np.exp(theta[:-1]), math.exp(theta[-1])
    corr = matern52(x, x, lengths) + nugget * np.eye(n)
    try:
        chol = cho_factor(corr, lower=True)
    except np.linalg.LinAlgError:
        return 1e30
    alpha = cho_solve(chol, rest)
    scale2 = np.maximum(np.sum(rest * alpha, axis=0) / n, 1e-18)
    log_det = 2.0 * float(np.sum(np.log(np.diag(chol[0]))))
    return 0.5 * (n * float(np.sum(np.log(scale2))) + d * log_det)
