"""Which image properties explain the gap between an origin and the reference.

For each property of :data:`gen_loop.analysis.metadata.PROPERTIES` and each origin:

- the two-sample Kolmogorov-Smirnov statistic and p-value (scale-free, 0 = same distribution,
  1 = no overlap) and the Wasserstein-1 distance, also divided by the pooled std so that
  properties in different units compare;
- the Spearman correlation between the property and each sample's distance to the reference
  centroid, over the origin's and the reference's samples together (a property that carries
  the gap rises or falls with the distance);
- a rank: by KS statistic, ties broken by the standardised Wasserstein distance.

For properties that map onto a generator parameter (``PropertySpec.parameter``) and differ
significantly (KS p-value at most ``alpha`` divided by the number of properties), a suggested
direction: the parameter moves the property in the direction of ``PropertySpec.sign``, so if the
reference's median is higher, raise it (``sign=+1``) or lower it (``sign=-1``). These are
one-property-at-a-time hints; the search in ``run`` resolves how parameters trade off.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import ks_2samp, spearmanr, wasserstein_distance

from gen_loop.analysis.metadata import PROPERTIES, PropertySpec

__all__ = ["PropertyEffect", "Suggestion", "property_effects", "suggestions"]

_SPECS = {spec.name: spec for spec in PROPERTIES}


@dataclass(frozen=True)
class PropertyEffect:
    """How one property differs between an origin and the reference.

    Attributes:
        name: property name.
        label: readable name with unit.
        origin: the origin compared.
        reference: the reference origin.
        rank: 1 = explains the gap best.
        ks: two-sample Kolmogorov-Smirnov statistic.
        ks_p: its p-value.
        wasserstein: Wasserstein-1 distance, in the property's unit.
        wasserstein_std: the same divided by the pooled std.
        median_origin: the origin's median.
        median_reference: the reference's median.
        spearman_rho: Spearman correlation with the distance to the reference centroid.
        spearman_p: its p-value.
    """

    name: str
    label: str
    origin: str
    reference: str
    rank: int
    ks: float
    ks_p: float
    wasserstein: float
    wasserstein_std: float
    median_origin: float
    median_reference: float
    spearman_rho: float
    spearman_p: float


@dataclass(frozen=True)
class Suggestion:
    """A direction to move a generator parameter so that an origin looks more like the reference.

    Attributes:
        origin: the origin (a generated set) the suggestion is for.
        property: the property that differs.
        parameter: the generator parameter that moves it.
        direction: "raise" or "lower".
        relative_difference: ``(median_reference - median_origin) / |median_origin|`` (NaN if
            the origin's median is 0).
        text: one sentence for the report.
    """

    origin: str
    property: str
    parameter: str
    direction: str
    relative_difference: float
    text: str


def _finite(values: np.ndarray) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    return arr[np.isfinite(arr)]


def property_effects(
    origin: Mapping[str, np.ndarray],
    reference: Mapping[str, np.ndarray],
    origin_distances: np.ndarray,
    reference_distances: np.ndarray,
    names: tuple[str, str],
) -> list[PropertyEffect]:
    """Effect sizes of every property, ranked.

    Args:
        origin: property name to per-image values of the origin.
        reference: the same for the reference.
        origin_distances: each origin image's distance to the reference centroid.
        reference_distances: each reference image's distance to the reference centroid.
        names: ``(origin name, reference name)``.

    Returns:
        One :class:`PropertyEffect` per property present in both, best-explaining first.
        Non-finite values (e.g. the colour temperature of a black image) are left out.
    """
    rows: list[dict[str, Any]] = []
    distances = np.r_[origin_distances, reference_distances]
    for name in origin:
        if name not in reference:
            continue
        a, b = _finite(origin[name]), _finite(reference[name])
        if len(a) == 0 or len(b) == 0:
            continue
        ks = ks_2samp(a, b)
        w = float(wasserstein_distance(a, b))
        pooled_std = float(np.std(np.r_[a, b]))
        values = np.r_[origin[name], reference[name]]
        ok = np.isfinite(values)
        if ok.sum() >= 3 and np.ptp(values[ok]) > 0 and np.ptp(distances[ok]) > 0:
            corr = spearmanr(values[ok], distances[ok])
            rho, rho_p = float(corr.statistic), float(corr.pvalue)
        else:
            rho, rho_p = math.nan, math.nan
        spec = _SPECS.get(name, PropertySpec(name, name))
        rows.append(
            {
                "name": name,
                "label": spec.label,
                "ks": float(ks.statistic),
                "ks_p": float(ks.pvalue),
                "wasserstein": w,
                "wasserstein_std": w / pooled_std if pooled_std > 0 else 0.0,
                "median_origin": float(np.median(a)),
                "median_reference": float(np.median(b)),
                "spearman_rho": rho,
                "spearman_p": rho_p,
            }
        )
    rows.sort(key=lambda r: (-r["ks"], -r["wasserstein_std"]))
    return [
        PropertyEffect(origin=names[0], reference=names[1], rank=i + 1, **row)
        for i, row in enumerate(rows)
    ]


def suggestions(
    effects: list[PropertyEffect], alpha: float = 0.05, top: int | None = None
) -> list[Suggestion]:
    """Suggested parameter directions from ranked effects (one per parameter, best rank wins).

    Args:
        effects: the ranked effects of one origin (from :func:`property_effects`).
        alpha: family-wise level; a property must have ``ks_p <= alpha / len(effects)``.
        top: consider only the ``top`` best-ranked properties (None = all).

    Returns:
        Suggestions in rank order.
    """
    out: list[Suggestion] = []
    used: set[str] = set()
    threshold = alpha / max(1, len(effects))
    for effect in effects[:top]:
        spec = _SPECS.get(effect.name)
        if spec is None or spec.parameter is None or spec.parameter in used:
            continue
        if effect.ks_p > threshold:
            continue
        diff = effect.median_reference - effect.median_origin
        if diff == 0:
            continue
        direction = "raise" if diff * spec.sign > 0 else "lower"
        rel = diff / abs(effect.median_origin) if effect.median_origin != 0 else math.nan
        change = f"{'higher' if diff > 0 else 'lower'}"
        if math.isfinite(rel) and abs(rel) <= 3:  # a percentage of a value near 0 says little
            change += f" by {abs(rel):.0%}"
        text = (
            f"{effect.reference} {spec.label} is {change} than {effect.origin}'s "
            f"({effect.median_reference:.4g} vs {effect.median_origin:.4g}): "
            f"{direction} `{spec.parameter}`"
        )
        out.append(Suggestion(effect.origin, effect.name, spec.parameter, direction, rel, text))
        used.add(spec.parameter)
    return out
