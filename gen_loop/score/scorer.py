"""Scorers: fitted once on the target's embeddings, then scoring batch after generated batch."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from gen_loop.score.distances import (
    FloatArray,
    _validate,
)

if TYPE_CHECKING:
    from typing import Self

    from numpy.typing import ArrayLike

#: The smallest target for which a noise floor is defined (two halves of two samples each).
MIN_NOISE_FLOOR_TARGET = 4


@dataclass(frozen=True)
class NoiseFloor:
    """The distance a batch of real target samples has from the rest of the target.

    Attributes:
        mean: Mean distance over the splits; a generated batch of ``batch_size`` samples that
            scores near this is as close to the target as the target is to itself.
        std: Sample standard deviation (``ddof=1``) of the distances; 0.0 when ``n_splits == 1``.
        batch_size: Number of samples actually drawn per split (may be smaller than asked, see
            :meth:`Scorer.noise_floor`).
        n_splits: Number of random splits.
        values: The distance of each split.
    """

    mean: float
    std: float
    batch_size: int
    n_splits: int
    values: tuple[float, ...]


class Scorer(ABC):
    """Distance from batches of embeddings to a fixed target set of embeddings.

    Contract: call :meth:`fit` once with the target's embeddings ``(N, D)``; then call
    :meth:`score` (one number per batch, lower is closer) and :meth:`sample_distances` (one
    number per sample, in the same feature space and metric, for selecting samples) on as many
    batches ``(B, D)`` as needed. Scoring never changes the fitted state, so one scorer serves a
    whole loop. :meth:`noise_floor` gives the distance the target has from itself at a given
    batch size, the yardstick for convergence.

    Subclasses implement :meth:`_fit`, :meth:`_score`, :meth:`_sample_distances` (all given
    validated float64 arrays) and :meth:`_unfitted_copy`; this class does the input checks,
    keeps the target, and computes the noise floor. A scorer whose score is the L2 norm of a
    vector sets :attr:`has_residual` and implements :meth:`_residual`.
    """

    def __init__(self) -> None:
        self._target: FloatArray | None = None
        self._target_sample_distances: FloatArray | None = None

    @property
    def fitted(self) -> bool:
        """Whether :meth:`fit` has been called."""
        return self._target is not None

    @property
    def has_residual(self) -> bool:
        """Whether :meth:`residual` gives a vector whose L2 norm is :meth:`score`.

        What a least-squares search (``search.refine``) needs: it sees every component of the
        difference where :meth:`score` gives one number. False unless a subclass says so.
        """
        return False

    @property
    def dim(self) -> int:
        """Feature dimension ``D`` of the fitted target.

        Raises:
            RuntimeError: If the scorer is not fitted.
        """
        return self._require_target().shape[1]

    @property
    def target_sample_distances(self) -> FloatArray:
        """Per-sample distances of the target's own samples, shape ``(N,)`` (a read-only view).

        These are in-sample (each sample contributed to the reference it is measured against),
        which is what a quantile threshold for selecting generated samples should be taken from.

        Raises:
            RuntimeError: If the scorer is not fitted.
        """
        self._require_target()
        assert self._target_sample_distances is not None
        view = self._target_sample_distances.view()
        view.flags.writeable = False
        return view

    def fit(self, target: ArrayLike) -> Self:
        """Fit the scorer to the target's embeddings (replacing any previous fit).

        Args:
            target: Target embeddings, shape ``(N, D)`` with ``N >= 2``.

        Returns:
            ``self``, fitted.

        Raises:
            ValueError: If ``target`` is not 2-D, is empty or not finite, or has fewer than 2
                samples.
        """
        arr = np.array(_validate(target, "target", 2), dtype=np.float64, copy=True)
        if arr.shape[0] < 2:
            raise ValueError(
                f"target has {arr.shape[0]} sample; a scorer needs at least 2 target embeddings"
            )
        self._fit(arr)
        self._target = arr
        self._target_sample_distances = self._own_sample_distances(arr)
        return self

    def score(self, batch: ArrayLike) -> float:
        """Batch-level distance of ``batch`` to the fitted target (lower is closer).

        Args:
            batch: Embeddings, shape ``(B, D)``.

        Returns:
            A non-negative distance.

        Raises:
            RuntimeError: If the scorer is not fitted.
            ValueError: If ``batch`` is not 2-D, is empty or not finite, or ``D`` differs from
                the target's.
        """
        return float(self._score(self._check_batch(batch)))

    def sample_distances(self, batch: ArrayLike) -> FloatArray:
        """Distance of each sample of ``batch`` to the target, shape ``(B,)``.

        Same feature space and metric as :meth:`score`.

        Raises:
            RuntimeError: If the scorer is not fitted.
            ValueError: If ``batch`` is not 2-D, is empty or not finite, or ``D`` differs from
                the target's.
        """
        return self._sample_distances(self._check_batch(batch))

    def residual(self, batch: ArrayLike) -> FloatArray:
        """The difference of ``batch`` from the target as a vector whose L2 norm is :meth:`score`.

        Raises:
            ValueError: If the scorer has no residual vector (:attr:`has_residual` is false), or
                for a bad ``batch`` (as :meth:`score`).
            RuntimeError: If the scorer is not fitted.
        """
        if not self.has_residual:
            raise ValueError(
                f"{self!r} has no residual vector (its score is not the norm of a difference); "
                "use a centroid distance zscore_l2 or l2"
            )
        return self._residual(self._check_batch(batch))

    def noise_floor(self, batch_size: int, n_splits: int, rng: np.random.Generator) -> NoiseFloor:
        """How far a batch of real target samples scores from the rest of the target.

        This mirrors how a trial is scored (a generated batch of ``B`` samples against a
        reference fitted on the target): each split draws ``batch_size`` target samples without
        replacement, fits a fresh scorer of the same kind on the *other* target samples (so no
        sample contributes to its own reference, and the z-score statistics come from the
        reference only), and scores the drawn samples against it.

        The floor depends on the batch size. A batch mean carries sampling noise with a standard
        error ~ sigma/sqrt(B) (plus ~ sigma/sqrt(N - B) from the reference), so for the L2
        distances the floor shrinks roughly as 1/sqrt(B) (``zscore_l2``: about
        ``sqrt(1/B + 1/(N - B))``); the cosine distance is quadratic in a small angle, so its
        floor shrinks roughly as 1/B. Compare a trial's score only with a floor computed at the
        trial's batch size.

        If the target has fewer than ``batch_size + 2`` samples, the drawn batch is
        ``floor(N / 2)`` samples and the reference is the other ``ceil(N / 2)``; the size used
        is recorded in :attr:`NoiseFloor.batch_size`.

        Args:
            batch_size: Samples per drawn batch (the trial batch size); at least 1.
            n_splits: Number of random splits; at least 1.
            rng: Source of randomness for the splits.

        Returns:
            The floor: mean and std of the split distances, the batch size used, and the values.

        Raises:
            RuntimeError: If the scorer is not fitted.
            ValueError: If ``batch_size`` or ``n_splits`` is below 1, or the target has fewer
                than 4 samples.
            TypeError: If ``rng`` is not a ``numpy.random.Generator``.
        """
        target = self._require_target()
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if n_splits < 1:
            raise ValueError(f"n_splits must be at least 1, got {n_splits}")
        if not isinstance(rng, np.random.Generator):
            raise TypeError(
                f"rng must be a numpy.random.Generator (np.random.default_rng(seed)), got "
                f"{type(rng).__name__}"
            )
        n = target.shape[0]
        if n < MIN_NOISE_FLOOR_TARGET:
            raise ValueError(
                f"the noise floor needs at least {MIN_NOISE_FLOOR_TARGET} target samples (two "
                f"halves of 2), the target has {n}; embed more target images"
            )
        used = batch_size if n >= batch_size + 2 else n // 2
        values: list[float] = []
        for _ in range(n_splits):
            order = rng.permutation(n)
            reference = self._unfitted_copy().fit(target[order[used:]])
            values.append(reference.score(target[order[:used]]))
        arr = np.asarray(values)
        std = float(arr.std(ddof=1)) if n_splits > 1 else 0.0
        return NoiseFloor(
            mean=float(arr.mean()),
            std=std,
            batch_size=used,
            n_splits=n_splits,
            values=tuple(values),
        )

    def _require_target(self) -> FloatArray:
        if self._target is None:
            raise RuntimeError(
                f"{type(self).__name__} is not fitted: call fit(target_embeddings) before scoring"
            )
        return self._target

    def _check_batch(self, batch: ArrayLike) -> FloatArray:
        target = self._require_target()
        arr = _validate(batch, "batch", 2)
        if arr.shape[1] != target.shape[1]:
            raise ValueError(
                f"feature dimension mismatch: batch has D={arr.shape[1]}, the target the scorer "
                f"was fitted on has D={target.shape[1]}; embed both with the same layer"
            )
        return arr

    @abstractmethod
    def _fit(self, target: FloatArray) -> None:
        """Compute the reference from validated target embeddings ``(N, D)``, ``N >= 2``."""

    @abstractmethod
    def _score(self, batch: FloatArray) -> float:
        """Batch distance of a validated ``(B, D)`` batch to the reference."""

    @abstractmethod
    def _sample_distances(self, batch: FloatArray) -> FloatArray:
        """Per-sample distances ``(B,)`` of a validated ``(B, D)`` batch to the reference."""

    def _own_sample_distances(self, target: FloatArray) -> FloatArray:
        """Per-sample distances of the fitted target's own samples (in-sample by default).

        A scorer whose per-sample distance is 0 for every reference sample (a nearest-neighbour
        distance) overrides this with a leave-one-out version, so that a quantile of these
        values is still a usable selection threshold.
        """
        return self._sample_distances(target)

    def _residual(self, batch: FloatArray) -> FloatArray:
        """The residual vector of a validated ``(B, D)`` batch (when :attr:`has_residual`)."""
        raise NotImplementedError(f"{type(self).__name__} sets has_residual without _residual")

    @abstractmethod
    def _unfitted_copy(self) -> Self:
        """A new, unfitted scorer with the same settings (used for the noise floor)."""
