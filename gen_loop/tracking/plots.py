"""Pictures for the MLflow dashboard: sample grids, trial history, parameter importances.

Every function returns an ``HxWx3`` uint8 RGB array. Figures are drawn on a
``matplotlib.figure.Figure`` with an Agg canvas, never through pyplot, so no global backend or
figure state is touched; cv2 and matplotlib are imported inside the functions.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "CLASS_COLORS",
    "history_figure",
    "image_grid",
    "importance_figure",
    "save_png",
    "side_by_side",
]

#: RGB box colour per class id: car, truck, pedestrian; other ids cycle through the extras.
CLASS_COLORS: tuple[tuple[int, int, int], ...] = ((40, 120, 255), (255, 170, 0), (255, 0, 0))
_EXTRA_COLORS: tuple[tuple[int, int, int], ...] = (
    (0, 200, 80),
    (200, 0, 200),
    (0, 200, 200),
    (255, 255, 0),
)


def _check_rgb(image: np.ndarray, name: str = "image") -> np.ndarray:
    array = np.asarray(image)
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(
            f"{name} must be an HxWx3 uint8 RGB array, got dtype {array.dtype} "
            f"and shape {array.shape}"
        )
    return array


def _class_color(cls: int) -> tuple[int, int, int]:
    if 0 <= cls < len(CLASS_COLORS):
        return CLASS_COLORS[cls]
    return _EXTRA_COLORS[cls % len(_EXTRA_COLORS)]


def _draw_boxes(image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    import cv2

    rows = np.asarray(boxes, dtype=np.float64).reshape(-1, 5)
    height, width = image.shape[:2]
    thickness = max(1, round(min(height, width) / 200))
    out = np.ascontiguousarray(image.copy())
    for cls, cx, cy, bw, bh in rows:
        x1 = int(np.clip(round((cx - bw / 2) * width), 0, width - 1))
        y1 = int(np.clip(round((cy - bh / 2) * height), 0, height - 1))
        x2 = int(np.clip(round((cx + bw / 2) * width) - 1, 0, width - 1))
        y2 = int(np.clip(round((cy + bh / 2) * height) - 1, 0, height - 1))
        cv2.rectangle(out, (x1, y1), (x2, y2), _class_color(int(cls)), thickness)
    return out


def image_grid(
    images: Sequence[np.ndarray] | np.ndarray,
    ncols: int = 8,
    pad: int = 2,
    boxes: Sequence[np.ndarray] | None = None,
) -> np.ndarray:
    """Tile images into one image, optionally drawing their YOLO boxes.

    Images of another size than the first are resized to it. The grid has
    ``min(ncols, n)`` columns and ``ceil(n / columns)`` rows, with ``pad`` black pixels between
    cells and around the border.

    Args:
        images: ``HxWx3`` uint8 RGB images, or one ``NxHxWx3`` array.
        ncols: Most columns in the grid.
        pad: Border width in pixels.
        boxes: Per image, an array of rows ``cls cx cy w h`` (normalised YOLO format), drawn
            as rectangles coloured by class (see ``CLASS_COLORS``).

    Returns:
        The grid, a uint8 RGB array.

    Raises:
        ValueError: No images, a bad image array, ``ncols < 1``, ``pad < 0``, or a ``boxes``
            list of another length than ``images``.
    """
    import cv2

    if len(images) == 0:
        raise ValueError("image_grid needs at least one image")
    if ncols < 1 or pad < 0:
        raise ValueError(f"image_grid needs ncols >= 1 and pad >= 0, got {ncols} and {pad}")
    if boxes is not None and len(boxes) != len(images):
        raise ValueError(f"got {len(boxes)} box arrays for {len(images)} images")
    cells = [_check_rgb(image, f"images[{i}]") for i, image in enumerate(images)]
    height, width = cells[0].shape[:2]
    cells = [
        c
        if c.shape[:2] == (height, width)
        else np.asarray(cv2.resize(c, (width, height), interpolation=cv2.INTER_AREA))
        for c in cells
    ]
    if boxes is not None:
        cells = [_draw_boxes(c, b) for c, b in zip(cells, boxes, strict=True)]
    cols = min(ncols, len(cells))
    rows = math.ceil(len(cells) / cols)
    grid = np.zeros(
        (rows * height + (rows + 1) * pad, cols * width + (cols + 1) * pad, 3), np.uint8
    )
    for index, cell in enumerate(cells):
        row, col = divmod(index, cols)
        top, left = pad + row * (height + pad), pad + col * (width + pad)
        grid[top : top + height, left : left + width] = cell
    return grid


def side_by_side(left: np.ndarray, right: np.ndarray, titles: tuple[str, str]) -> np.ndarray:
    """Put two images next to each other, each under a caption (e.g. "target", "best batch").

    Args:
        left: ``HxWx3`` uint8 RGB image.
        right: ``HxWx3`` uint8 RGB image.
        titles: Captions of the left and right image.

    Returns:
        A uint8 RGB image: a caption band of 28 pixels above the taller image's height,
        with a 8-pixel gap between the two.
    """
    import cv2

    panels = [_check_rgb(left, "left"), _check_rgb(right, "right")]
    band, gap = 28, 8
    height = max(p.shape[0] for p in panels) + band
    width = sum(p.shape[1] for p in panels) + gap
    out = np.full((height, width, 3), 255, np.uint8)
    x = 0
    for panel, title in zip(panels, titles, strict=True):
        out[band : band + panel.shape[0], x : x + panel.shape[1]] = panel
        origin = (x + 4, band - 9)
        font = cv2.FONT_HERSHEY_SIMPLEX
        cv2.putText(out, title, origin, font, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
        x += panel.shape[1] + gap
    return out


def _render(figure: Figure) -> np.ndarray:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def history_figure(
    numbers: Sequence[int],
    values: Sequence[float],
    noise_floor: float | None,
    default_value: float | None,
    stages: Sequence[str] | None = None,
) -> np.ndarray:
    """Plot the distance of each trial, the best so far, the noise floor and the default.

    Args:
        numbers: Trial numbers.
        values: Distance of each trial to the target; non-finite values (failed trials) are
            left out.
        noise_floor: The target's own noise floor, shown as a band from 0; none when None.
        default_value: Distance of the default parameters, a dashed line; none when None.
        stages: What proposed each trial (``search.refine``: ``refine`` trials, and the
            ``polish`` trial of ``search.polish``, are drawn in their own colour); None: all
            alike.

    Returns:
        The figure as a uint8 RGB array.

    Raises:
        ValueError: ``numbers`` and ``values`` differ in length.
    """
    from matplotlib.figure import Figure

    if len(numbers) != len(values):
        raise ValueError(f"got {len(numbers)} trial numbers for {len(values)} values")
    if stages is not None and len(stages) != len(values):
        raise ValueError(f"got {len(stages)} stages for {len(values)} values")
    x = np.asarray(numbers, dtype=np.float64)
    y = np.asarray(values, dtype=np.float64)
    least_squares = ("refine", "polish")
    refine = np.array([s in least_squares for s in stages or ["sampler"] * len(y)], dtype=np.bool_)
    keep = np.isfinite(y)
    x, y, refine = x[keep], y[keep], refine[keep]
    order = np.argsort(x, kind="stable")
    x, y, refine = x[order], y[order], refine[order]

    figure = Figure(figsize=(7.0, 4.0), dpi=100, layout="constrained")
    ax = figure.add_subplot()
    if noise_floor is not None:
        ax.axhspan(0.0, noise_floor, color="tab:green", alpha=0.15, label="target noise floor")
        ax.axhline(noise_floor, color="tab:green", linewidth=1.0)
    if default_value is not None:
        ax.axhline(default_value, color="tab:gray", linestyle="--", label="default params")
    ax.scatter(x[~refine], y[~refine], s=14, color="tab:blue", label="trial distance")
    if refine.any():
        ax.scatter(x[refine], y[refine], s=14, color="tab:orange", label="least-squares trial")
    if len(y):
        ax.step(x, np.minimum.accumulate(y), where="post", color="tab:red", label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel("distance to target")
    ax.set_title("search history")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right")
    return _render(figure)


def importance_figure(importances: Mapping[str, float]) -> np.ndarray:
    """Plot parameter importances as horizontal bars, the largest at the top.

    Args:
        importances: Parameter name to importance (e.g. from ``optuna.importance``).

    Returns:
        The figure as a uint8 RGB array.
    """
    from matplotlib.figure import Figure

    items = sorted(importances.items(), key=lambda kv: kv[1])
    figure = Figure(figsize=(6.0, 1.2 + 0.35 * max(len(items), 1)), dpi=100, layout="constrained")
    ax = figure.add_subplot()
    if items:
        ax.barh([k for k, _ in items], [v for _, v in items], color="tab:blue")
    else:
        ax.text(0.5, 0.5, "no importances", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("importance")
    ax.set_title("parameter importance")
    return _render(figure)


def save_png(image: np.ndarray, path: Path) -> Path:
    """Write an RGB image to a PNG file, creating the parent folders.

    Args:
        image: ``HxWx3`` uint8 RGB array.
        path: Where to write.

    Returns:
        ``path``.

    Raises:
        OSError: The file could not be written.
    """
    import cv2

    array = _check_rgb(image)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), cv2.cvtColor(array, cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write PNG {path}")
    return path
