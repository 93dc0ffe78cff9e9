"""The generator contract: parameters in, a labeled batch of images out."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from gen_loop.generator.params import ParamSpec, ParamValue

DEFAULT_CLASS_NAMES: tuple[str, ...] = ("car", "truck", "pedestrian")


@dataclass(frozen=True)
class Batch:
    """A labeled batch of generated images.

    Attributes:
        images: ``(N, H, W, 3)`` uint8 RGB images.
        labels: one ``(k, 5)`` float32 array per image, rows ``class cx cy w h`` in YOLO format
            (box centre and size normalised by the image width and height).
        class_names: the name of each class id.
        params: the generation parameters that made the batch (all of them, defaults filled in).
        seeds: the seed of each image; the same seed and parameters give the same image.
    """

    images: np.ndarray
    labels: tuple[np.ndarray, ...]
    class_names: tuple[str, ...]
    params: dict[str, ParamValue]
    seeds: tuple[int, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if self.images.ndim != 4 or self.images.shape[-1] != 3 or self.images.dtype != np.uint8:
            raise ValueError(f"images must be (N, H, W, 3) uint8, got {self.images.shape}")
        if len(self.labels) != len(self.images):
            raise ValueError(f"{len(self.images)} images but {len(self.labels)} label arrays")

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, indices: np.ndarray | list[int]) -> Batch:
        """The batch restricted to ``indices`` (in that order)."""
        idx = [int(i) for i in indices]
        return Batch(
            images=self.images[idx],
            labels=tuple(self.labels[i] for i in idx),
            class_names=self.class_names,
            params=dict(self.params),
            seeds=tuple(self.seeds[i] for i in idx) if self.seeds else (),
        )


def image_seeds(seed: int, n: int) -> tuple[int, ...]:
    """Per-image seeds derived from one batch seed.

    Image ``i`` depends only on ``(seed, i)``, so the first ``k`` images of a batch of ``n``
    are the same as a batch of ``k`` with the same seed, and every trial that uses the same
    batch seed renders the same scenes (common random numbers).
    """
    return tuple(int(np.random.SeedSequence([seed, i]).generate_state(1)[0]) for i in range(n))


class Generator(ABC):
    """Renders labeled images from named parameters.

    Contract: ``generate(params, n, seed)`` returns a :class:`Batch` of ``n`` images with
    YOLO boxes; it is deterministic for a given ``(params, seed)``, and image ``i`` depends
    only on ``(params, seed, i)``. ``params`` may name any subset of :attr:`parameters`; the
    rest take their defaults. Unknown names raise ``KeyError``; out-of-range values raise
    ``ValueError``.
    """

    class_names: tuple[str, ...] = DEFAULT_CLASS_NAMES

    @property
    @abstractmethod
    def parameters(self) -> Mapping[str, ParamSpec]:
        """Every parameter the generator understands, with its unit, range and default."""

    @abstractmethod
    def generate(self, params: Mapping[str, ParamValue], n: int, seed: int) -> Batch:
        """Render ``n`` labeled images with ``params`` from the batch seed ``seed``."""

    def default_params(self) -> dict[str, ParamValue]:
        """The default value of every parameter."""
        return {name: spec.default for name, spec in self.parameters.items()}

    def resolve_request(self, params: Mapping[str, ParamValue], n: int) -> dict[str, ParamValue]:
        """The checks every ``generate`` starts with: ``n >= 1`` and :meth:`resolve_params`."""
        if n < 1:
            raise ValueError(f"n must be at least 1, got {n}")
        return self.resolve_params(params)

    def resolve_params(self, params: Mapping[str, ParamValue]) -> dict[str, ParamValue]:
        """Defaults overlaid with ``params``, each checked against its spec."""
        specs = self.parameters
        unknown = sorted(set(params) - set(specs))
        if unknown:
            raise KeyError(f"unknown generator parameter(s) {unknown}; known: {sorted(specs)}")
        resolved = self.default_params()
        for name, value in params.items():
            resolved[name] = specs[name].validate(value)
        return resolved
