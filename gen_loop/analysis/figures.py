"""The analysis report's figures, each an ``HxWx3`` uint8 RGB array.

Drawn on a ``matplotlib.figure.Figure`` with an Agg canvas (never pyplot), like
:mod:`gen_loop.tracking.plots`; matplotlib is imported inside the functions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Literal

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "cluster_mix_figure",
    "loss_figure",
    "origin_colors",
    "projection_figure",
    "property_figure",
    "route_figure",
]

_PALETTE = (
    "#d62728",  # the reference is drawn first, in red
    "#1f77b4",
    "#2ca02c",
    "#ff7f0e",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)


def origin_colors(names: Sequence[str], reference: str) -> dict[str, str]:
    """A colour per origin: the reference red, the others from a fixed palette in order."""
    others = [n for n in names if n != reference]
    colors = {reference: _PALETTE[0]}
    for i, name in enumerate(others):
        colors[name] = _PALETTE[1 + i % (len(_PALETTE) - 1)]
    return colors


def _figure(
    width: float, height: float, layout: Literal["constrained"] | None = "constrained"
) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout=layout)


def _render(figure: Figure) -> np.ndarray:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[:, :, :3].copy()


def projection_figure(
    coords: np.ndarray,
    origin_of: np.ndarray,
    colors: Mapping[str, str],
    title: str,
    axis_labels: tuple[str, str] = ("axis 1", "axis 2"),
    sizes: np.ndarray | None = None,
) -> np.ndarray:
    """Scatter of the 2-D projection, one colour per origin, point size optional.

    Args:
        coords: ``(n, 2)`` coordinates.
        origin_of: origin name of each point.
        colors: colour of each origin (legend order).
        title: the title.
        axis_labels: x and y labels.
        sizes: per-point values mapped to marker area (e.g. predicted loss); None = equal.
    """
    fig = _figure(7.0, 5.5)
    ax = fig.add_subplot()
    if sizes is not None:
        s = np.asarray(sizes, dtype=np.float64)
        lo, hi = np.nanmin(s), np.nanmax(s)
        area = 8.0 + 150.0 * (s - lo) / (hi - lo) if hi > lo else np.full(len(s), 30.0)
    else:
        area = np.full(len(coords), 18.0)
    for name, color in colors.items():
        m = origin_of == name
        if m.any():
            ax.scatter(
                coords[m, 0],
                coords[m, 1],
                s=area[m],
                c=color,
                alpha=0.6,
                edgecolors="none",
                label=f"{name} ({int(m.sum())})",
            )
    ax.set_xlabel(axis_labels[0])
    ax.set_ylabel(axis_labels[1])
    ax.set_title(title)
    ax.legend(loc="best", fontsize=8, markerscale=1.0)
    return _render(fig)


def cluster_mix_figure(
    counts: Sequence[Mapping[str, int]], colors: Mapping[str, str]
) -> np.ndarray:
    """Horizontal stacked bars: each cluster's members by origin (counts)."""
    fig = _figure(7.0, 0.9 + 0.45 * len(counts))
    ax = fig.add_subplot()
    left = np.zeros(len(counts))
    ys = np.arange(len(counts))
    for name, color in colors.items():
        values = np.array([row.get(name, 0) for row in counts], dtype=float)
        ax.barh(ys, values, left=left, color=color, label=name)
        left += values
    ax.set_yticks(ys, [f"cluster {c}" for c in range(len(counts))])
    ax.invert_yaxis()
    ax.set_xlabel("images")
    ax.set_title("cluster membership by origin")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return _render(fig)


def property_figure(
    values: Mapping[str, Mapping[str, np.ndarray]],
    properties: Sequence[tuple[str, str]],
    colors: Mapping[str, str],
    ncols: int = 4,
) -> np.ndarray:
    """Box plots of per-image properties, one panel per property, one box per origin.

    Args:
        values: origin -> property -> per-image values.
        properties: ``(name, label)`` of each panel, in order.
        colors: colour of each origin (box order).
        ncols: panels per row.
    """
    n = max(1, len(properties))
    cols = min(ncols, n)
    rows = -(-n // cols)
    # A fixed grid, not the constrained layout: it took ~2/3 of this figure's time with
    # 20 panels, and the panels' labels are alike.
    fig = _figure(3.2 * cols, 2.6 * rows, layout=None)
    fig.subplots_adjust(
        left=0.22 / cols,
        right=0.99,
        bottom=0.5 / rows,
        top=1 - 0.28 / rows,
        wspace=0.35,
        hspace=0.75,
    )
    names = list(colors)
    for i, (prop, label) in enumerate(properties):
        ax = fig.add_subplot(rows, cols, i + 1)
        data = []
        for name in names:
            v = np.asarray(values[name][prop], dtype=np.float64)
            data.append(v[np.isfinite(v)])
        box = ax.boxplot(data, patch_artist=True, widths=0.6, showfliers=True)
        for patch, name in zip(box["boxes"], names, strict=True):
            patch.set_facecolor(colors[name])
            patch.set_alpha(0.6)
        ax.set_xticks(range(1, len(names) + 1), names, rotation=30, fontsize=7)
        ax.set_title(label, fontsize=9)
        ax.tick_params(axis="y", labelsize=7)
    return _render(fig)


def loss_figure(
    predicted: np.ndarray,
    real: np.ndarray,
    origin_of: np.ndarray,
    colors: Mapping[str, str],
) -> np.ndarray:
    """Left: predicted loss by origin (box plots). Right: predicted vs real loss where known."""
    fig = _figure(10.0, 4.0)
    ax = fig.add_subplot(1, 2, 1)
    names = list(colors)
    data = [predicted[origin_of == name] for name in names]
    box = ax.boxplot(data, patch_artist=True, widths=0.6)
    for patch, name in zip(box["boxes"], names, strict=True):
        patch.set_facecolor(colors[name])
        patch.set_alpha(0.6)
    ax.set_xticks(range(1, len(names) + 1), names, rotation=30, fontsize=8)
    ax.set_ylabel("predicted loss")
    ax.set_title("predicted detection loss per origin")
    ax2 = fig.add_subplot(1, 2, 2)
    known = np.isfinite(real)
    for name in names:
        m = known & (origin_of == name)
        if m.any():
            ax2.scatter(real[m], predicted[m], s=14, c=colors[name], alpha=0.6, label=name)
    ax2.set_xlabel("real loss (labels)")
    ax2.set_ylabel("predicted loss")
    ax2.set_title("predicted vs real, where labels exist")
    if known.any():
        ax2.legend(fontsize=8)
    return _render(fig)


def route_figure(
    coords: np.ndarray,
    origin_of: np.ndarray,
    colors: Mapping[str, str],
    route: np.ndarray,
    numbers: np.ndarray,
    best: int | None,
    axis_labels: tuple[str, str] = ("axis 1", "axis 2"),
) -> np.ndarray:
    """The search's route over the population plot: trial centroids joined in trial order.

    Args:
        coords: ``(n, 2)`` coordinates of every image (drawn faint).
        origin_of: origin name of each image.
        colors: colour of each origin.
        route: ``(t, 2)`` projected batch centroid of each trial, in trial order.
        numbers: the trials' numbers ``(t,)`` (the colour scale).
        best: the best trial's number, marked with a star (None: no mark).
        axis_labels: x and y labels.
    """
    fig = _figure(7.5, 5.5)
    ax = fig.add_subplot()
    for name, color in colors.items():
        m = origin_of == name
        if m.any():
            ax.scatter(
                coords[m, 0],
                coords[m, 1],
                s=10,
                c=color,
                alpha=0.25,
                edgecolors="none",
                label=f"{name} ({int(m.sum())})",
            )
    if len(route):
        ax.plot(route[:, 0], route[:, 1], color="#555555", lw=0.8, alpha=0.7, zorder=2)
        dots = ax.scatter(
            route[:, 0],
            route[:, 1],
            c=numbers,
            cmap="viridis",
            s=28,
            edgecolors="black",
            linewidths=0.4,
            zorder=3,
        )
        fig.colorbar(dots, ax=ax, label="trial")
        ax.scatter(
            route[:1, 0],
            route[:1, 1],
            marker="s",
            s=90,
            facecolors="none",
            edgecolors="black",
            linewidths=1.5,
            zorder=4,
            label=f"trial {int(numbers[0])} (start)",
        )
        at = np.flatnonzero(numbers == best)
        if best is not None and len(at):
            ax.scatter(
                route[at, 0],
                route[at, 1],
                marker="*",
                s=260,
                c="gold",
                edgecolors="black",
                linewidths=0.8,
                zorder=5,
                label=f"trial {best} (best)",
            )
    ax.set_xlabel(axis_labels[0])
    ax.set_ylabel(axis_labels[1])
    ax.set_title("the search's route: each trial's batch centroid")
    ax.legend(loc="best", fontsize=8)
    return _render(fig)
