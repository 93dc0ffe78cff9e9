"""2-D projections of the embeddings for the population-exploration plots.

PCA (the default) is fitted once on the centred embeddings of every origin and saved as
``projection.npz``; giving that file back (``projection_file=...``) projects another analysis'
embeddings into the same plane, so plots of several runs are comparable. t-SNE (scikit-learn)
and UMAP (the optional ``umap-learn`` package) are non-linear and only fit-transform: their
axes mean nothing across runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gen_loop.errors import ConfigError, InputDataError

__all__ = ["METHODS", "PcaProjection", "project"]

METHODS = ("pca", "tsne", "umap")


@dataclass(frozen=True)
class PcaProjection:
    """A fitted 2-D PCA: ``((x - mean) / scale) @ components.T``.

    Attributes:
        mean: per-dimension mean ``(D,)``.
        scale: the divisor of each dimension ``(D,)``: one global RMS for all (see
            :func:`gen_loop.analysis._features.pca_features` for why not a z-score).
        components: the two principal axes ``(2, D)``.
        explained: fraction of the (scaled) variance each axis explains.
    """

    mean: np.ndarray
    scale: np.ndarray
    components: np.ndarray
    explained: np.ndarray

    @classmethod
    def fit(cls, x: np.ndarray) -> PcaProjection:
        """Fit on ``(n, D)`` embeddings (n >= 2)."""
        arr = np.asarray(x, dtype=np.float64)
        mean = arr.mean(axis=0)
        rms = float(np.sqrt(np.mean((arr - mean) ** 2)))
        scale = np.full(arr.shape[1], rms if rms > 0 else 1.0)
        z = (arr - mean) / scale
        _, s, vt = np.linalg.svd(z, full_matrices=False)
        components = np.zeros((2, arr.shape[1]))
        k = min(2, vt.shape[0])
        components[:k] = vt[:k]
        total = float(np.sum(s**2)) or 1.0
        explained = np.zeros(2)
        explained[:k] = s[:k] ** 2 / total
        return cls(mean, scale, components, explained)

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Project ``(n, D)`` embeddings to ``(n, 2)``.

        Raises:
            InputDataError: If ``D`` differs from the fitted one (another embedder or layer).
        """
        arr = np.asarray(x, dtype=np.float64)
        if arr.shape[1] != self.mean.shape[0]:
            raise InputDataError(
                f"the saved projection is for {self.mean.shape[0]}-D embeddings, these are "
                f"{arr.shape[1]}-D: use the same embedder.model and embedder.layers, or drop "
                "projection_file"
            )
        return ((arr - self.mean) / self.scale) @ self.components.T

    def save(self, path: Path) -> Path:
        """Write the projection as an ``.npz`` file."""
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as handle:
            np.savez(
                handle,
                mean=self.mean,
                scale=self.scale,
                components=self.components,
                explained=self.explained,
            )
        return path

    @classmethod
    def load(cls, path: Path) -> PcaProjection:
        """Read a projection written by :meth:`save`.

        Raises:
            InputDataError: If the file is missing or not a saved projection.
        """
        try:
            with np.load(path) as data:
                return cls(data["mean"], data["scale"], data["components"], data["explained"])
        except (OSError, KeyError, ValueError) as err:
            raise InputDataError(
                f"cannot read the projection file {path}: {err}; give a projection.npz "
                "written by an earlier analysis"
            ) from err


def project(
    x: np.ndarray, method: str, seed: int, saved: Path | None = None
) -> tuple[np.ndarray, PcaProjection | None]:
    """Project embeddings to 2-D.

    Args:
        x: ``(n, D)`` embeddings of every origin.
        method: ``pca``, ``tsne`` or ``umap``.
        seed: seed of t-SNE / UMAP.
        saved: a saved PCA projection to reuse (``pca`` only).

    Returns:
        ``(coordinates (n, 2), the PCA projection or None)``.

    Raises:
        ConfigError: On an unknown method, ``saved`` with a non-PCA method, or UMAP missing.
    """
    if method not in METHODS:
        raise ConfigError("projection", f"{method!r}: use one of {', '.join(METHODS)}")
    if saved is not None and method != "pca":
        raise ConfigError("projection_file", f"only a PCA projection can be reused, not {method}")
    if method == "pca":
        pca = PcaProjection.load(saved) if saved is not None else PcaProjection.fit(x)
        return pca.transform(x), pca
    z = np.asarray(x, dtype=np.float64)
    z = (z - z.mean(axis=0)) / np.maximum(z.std(axis=0), 1e-12)
    if method == "tsne":
        from sklearn.manifold import TSNE

        perplexity = float(max(2.0, min(30.0, (len(z) - 1) / 3.0)))
        coords = TSNE(2, perplexity=perplexity, random_state=seed, init="pca").fit_transform(z)
        return np.asarray(coords, dtype=np.float64), None
    try:
        import umap
    except ImportError as err:
        raise ConfigError(
            "projection", "umap needs the umap-learn package: pip install umap-learn"
        ) from err
    coords = umap.UMAP(n_components=2, random_state=seed).fit_transform(z)
    return np.asarray(coords, dtype=np.float64), None
