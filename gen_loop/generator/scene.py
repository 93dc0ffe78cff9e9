"""Procedural driving scenes: sky, buildings, road, lanes, cars, trucks and pedestrians.

The renderer draws in linear float RGB in ``[0, 1]`` with OpenCV primitives. Every object is
also drawn into its own binary mask (amodal: the whole object, whatever covers it), so boxes
can be recomputed exactly after geometric camera effects such as lens distortion.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

CAR, TRUCK, PEDESTRIAN = 0, 1, 2

# Real-world sizes in metres (width, height): perspective scales them to pixels.
_SIZES_M = {CAR: (1.8, 1.5), TRUCK: (2.5, 3.4), PEDESTRIAN: (0.55, 1.75)}
_CLASS_SHARE = np.array([0.5, 0.15, 0.35])  # car, truck, pedestrian
_CAR_COLOURS = np.array(
    [
        [0.8, 0.1, 0.1],
        [0.1, 0.2, 0.6],
        [0.85, 0.85, 0.85],
        [0.1, 0.1, 0.1],
        [0.5, 0.5, 0.55],
        [0.9, 0.75, 0.1],
        [0.2, 0.45, 0.25],
        [0.6, 0.3, 0.1],
    ],
    dtype=np.float32,
)
_SKIN = np.array(
    [[0.95, 0.8, 0.65], [0.8, 0.6, 0.45], [0.55, 0.38, 0.25], [0.35, 0.22, 0.15]], dtype=np.float32
)
_MIN_BOX_PX = 4
_MIN_VISIBLE = 0.35


@dataclass(frozen=True)
class SceneSettings:
    """Scene parameters of one render.

    Attributes:
        width: image width in pixels.
        height: image height in pixels.
        sun_elevation: sun elevation in degrees (5 = dusk, 90 = noon): light level and sky colour.
        fog: fog density in ``[0, 1]``; fog grows with distance.
        object_density: multiplier on the mean number of objects per image (8 at 1.0).
    """

    width: int
    height: int
    sun_elevation: float = 45.0
    fog: float = 0.0
    object_density: float = 1.0


@dataclass(frozen=True)
class Scene:
    """A rendered scene before the camera model.

    Attributes:
        image: ``(H, W, 3)`` float32 linear RGB in ``[0, 1]``.
        masks: ``(K, H, W)`` uint8 amodal object masks (1 inside the object).
        classes: ``(K,)`` class ids.
    """

    image: np.ndarray
    masks: np.ndarray
    classes: np.ndarray


def render_scene(settings: SceneSettings, rng: np.random.Generator) -> Scene:
    """Render one driving scene; objects that end up mostly hidden or tiny are dropped."""
    w, h = settings.width, settings.height
    light = 0.25 + 0.75 * math.sin(math.radians(max(settings.sun_elevation, 0.0)))
    horizon = int(h * rng.uniform(0.36, 0.5))
    vanish_x = w * rng.uniform(0.35, 0.65)
    image = np.empty((h, w, 3), np.float32)

    _draw_sky(image, horizon, settings.sun_elevation)
    _draw_ground(image, horizon, rng)
    road = _draw_road(image, horizon, vanish_x, rng)
    _draw_buildings(image, horizon, rng)

    n_objects = rng.poisson(8.0 * settings.object_density)
    grounds = np.sort(rng.uniform(0.0, 1.0, n_objects))  # far to near: painter's order
    masks: list[np.ndarray] = []
    classes: list[int] = []
    owner = np.full((h, w), -1, np.int16)
    for depth01 in grounds:
        cls = int(rng.choice(3, p=_CLASS_SHARE))
        mask = _draw_object(image, cls, depth01, horizon, road, rng)
        if mask is None:
            continue
        owner[mask > 0] = len(masks)
        masks.append(mask)
        classes.append(cls)

    kept = [k for k, m in enumerate(masks) if _visible_fraction(owner, m, k) >= _MIN_VISIBLE]
    image *= light
    if settings.fog > 0:
        _apply_fog(image, horizon, settings.fog, light)
    stack = np.stack([masks[k] for k in kept]) if kept else np.zeros((0, h, w), np.uint8)
    return Scene(
        image=np.clip(image, 0.0, 1.0), masks=stack, classes=np.array([classes[k] for k in kept])
    )


def boxes_from_masks(masks: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Tight YOLO boxes ``(k, 5)`` (class cx cy w h, normalised) of non-empty masks.

    Masks smaller than a few pixels across (after distortion or cropping) are dropped.
    """
    if len(masks) == 0:
        return np.zeros((0, 5), np.float32)
    h, w = masks.shape[1:]
    rows = []
    for mask, cls in zip(masks, classes, strict=True):
        ys = np.flatnonzero(mask.any(axis=1))
        xs = np.flatnonzero(mask.any(axis=0))
        if len(ys) == 0:
            continue
        x0, x1, y0, y1 = xs[0], xs[-1] + 1, ys[0], ys[-1] + 1
        if x1 - x0 < _MIN_BOX_PX or y1 - y0 < _MIN_BOX_PX:
            continue
        rows.append([cls, (x0 + x1) / 2 / w, (y0 + y1) / 2 / h, (x1 - x0) / w, (y1 - y0) / h])
    return np.array(rows, np.float32).reshape(-1, 5)


def _visible_fraction(owner: np.ndarray, mask: np.ndarray, k: int) -> float:
    area = int(mask.sum())
    return float((owner == k).sum()) / area if area else 0.0


def _draw_sky(image: np.ndarray, horizon: int, sun_elevation: float) -> None:
    low_sun = float(np.clip(1.0 - sun_elevation / 40.0, 0.0, 1.0))
    top = np.array([0.25, 0.45, 0.85]) * (1 - low_sun) + np.array([0.25, 0.2, 0.45]) * low_sun
    bottom = np.array([0.7, 0.8, 0.95]) * (1 - low_sun) + np.array([0.95, 0.6, 0.35]) * low_sun
    t = np.linspace(0.0, 1.0, max(horizon, 1), dtype=np.float32)[:, None]
    image[:horizon] = (top * (1 - t) + bottom * t)[:, None, :]


def _draw_ground(image: np.ndarray, horizon: int, rng: np.random.Generator) -> None:
    grass = np.array([0.25, 0.4, 0.18]) * rng.uniform(0.8, 1.2)
    image[horizon:] = grass
    # Texture so the ground is not a flat colour: low-frequency brightness variation.
    h, w = image.shape[:2]
    noise = rng.normal(1.0, 0.06, (max((h - horizon) // 8, 1), max(w // 8, 1)))
    image[horizon:] *= cv2.resize(noise.astype(np.float32), (w, h - horizon))[..., None]


def _draw_road(
    image: np.ndarray, horizon: int, vanish_x: float, rng: np.random.Generator
) -> tuple[float, float, float]:
    """Draw road, sidewalks and lanes; return (vanish_x, left_bottom_x, right_bottom_x)."""
    h, w = image.shape[:2]
    left, right = w * rng.uniform(-0.35, 0.1), w * rng.uniform(0.9, 1.35)
    top_half = w * 0.015
    walk = w * 0.18
    sidewalk = np.array([0.55, 0.53, 0.5]) * rng.uniform(0.85, 1.1)
    for lo, hi in ((left - walk, left), (right, right + walk)):
        poly = [(lo, h), (hi, h), (vanish_x + np.sign(hi - vanish_x) * top_half, horizon)]
        cv2.fillPoly(image, [np.array(poly, np.int32)], sidewalk.tolist())
    asphalt = np.array([0.3, 0.3, 0.32]) * rng.uniform(0.7, 1.2)
    road = np.array(
        [(left, h), (right, h), (vanish_x + top_half, horizon), (vanish_x - top_half, horizon)],
        np.int32,
    )
    cv2.fillPoly(image, [road], asphalt.tolist())
    n_lanes = int(rng.integers(2, 5))
    for k in range(1, n_lanes):
        frac = k / n_lanes
        x_bottom = left + (right - left) * frac
        x_top = vanish_x - top_half + 2 * top_half * frac
        _dashed_line(image, (x_bottom, h), (x_top, horizon), rng.uniform(0, 1))
    return vanish_x, left, right


def _dashed_line(
    image: np.ndarray, start: tuple[float, float], end: tuple[float, float], phase: float
) -> None:
    h = image.shape[0]
    (x0, y0), (x1, y1) = start, end
    n_dashes = 9
    for i in range(n_dashes):
        # Dash spacing shrinks towards the horizon (perspective): interpolate in 1/depth.
        a = ((i + phase) / n_dashes) ** 1.8
        b = ((i + phase + 0.45) / n_dashes) ** 1.8
        pa = (x0 + (x1 - x0) * a, y0 + (y1 - y0) * a)
        pb = (x0 + (x1 - x0) * b, y0 + (y1 - y0) * b)
        thickness = max(1, int(3 * (1 - a) * h / 256))
        cv2.line(image, _pt(pa), _pt(pb), (0.9, 0.9, 0.85), thickness)


def _draw_buildings(image: np.ndarray, horizon: int, rng: np.random.Generator) -> None:
    h, w = image.shape[:2]
    x = -rng.uniform(0, 20)
    while x < w:
        bw = w * rng.uniform(0.06, 0.18)
        bh = h * rng.uniform(0.05, 0.25)
        colour = np.array([0.55, 0.5, 0.45]) * rng.uniform(0.5, 1.3) + rng.normal(0, 0.05, 3)
        top = int(horizon - bh)
        cv2.rectangle(
            image, _pt((x, top)), _pt((x + bw, horizon)), np.clip(colour, 0, 1).tolist(), -1
        )
        win = max(2, int(bw / 6))
        for wy in range(top + win, horizon - win, 2 * win):
            for wx in np.arange(x + win, x + bw - win, 2 * win):
                shade = (0.2, 0.25, 0.3) if rng.uniform() < 0.7 else (0.9, 0.85, 0.6)
                cv2.rectangle(image, _pt((wx, wy)), _pt((wx + win - 1, wy + win - 1)), shade, -1)
        x += bw + rng.uniform(0, w * 0.05)


def _draw_object(
    image: np.ndarray,
    cls: int,
    depth01: float,
    horizon: int,
    road: tuple[float, float, float],
    rng: np.random.Generator,
) -> np.ndarray | None:
    """Draw one object standing on the ground; return its mask, or None when it is too small."""
    h, w = image.shape[:2]
    # Ground contact row from just below the horizon (far) to slightly below the image (near).
    y_ground = horizon + (h * 1.05 - horizon) * (0.05 + 0.95 * depth01**2)
    scale = (y_ground - horizon) / (h - horizon) * h * 0.2  # pixels per metre
    width_m, height_m = _SIZES_M[cls]
    bw, bh = width_m * scale * rng.uniform(0.9, 1.15), height_m * scale * rng.uniform(0.9, 1.1)
    if cls == CAR and rng.uniform() < 0.5:  # seen from the side: longer
        bw *= 2.3
    if bw < _MIN_BOX_PX or bh < _MIN_BOX_PX:
        return None
    vanish_x, left, right = road
    t = (y_ground - horizon) / (h - horizon)
    road_l, road_r = vanish_x + (left - vanish_x) * t, vanish_x + (right - vanish_x) * t
    if cls == PEDESTRIAN and rng.uniform() < 0.7:  # on a sidewalk
        side = (
            road_l - rng.uniform(0.1, 0.9) * 0.18 * w * t
            if rng.uniform() < 0.5
            else (road_r + rng.uniform(0.1, 0.9) * 0.18 * w * t)
        )
        cx = side
    else:
        cx = rng.uniform(road_l + bw / 2, max(road_r - bw / 2, road_l + bw / 2 + 1))
    x0, y1 = cx - bw / 2, y_ground
    x1, y0 = cx + bw / 2, y_ground - bh
    mask = np.zeros((h, w), np.uint8)
    draw = {CAR: _draw_car, TRUCK: _draw_truck, PEDESTRIAN: _draw_pedestrian}[cls]
    draw(image, mask, (x0, y0, x1, y1), rng)
    return mask if mask.any() else None


def _draw_car(image: np.ndarray, mask: np.ndarray, box: tuple[float, ...], rng) -> None:
    x0, y0, x1, y1 = box
    bw, bh = x1 - x0, y1 - y0
    colour = _CAR_COLOURS[rng.integers(len(_CAR_COLOURS))].tolist()
    body = (x0, y0 + 0.4 * bh, x1, y1 - 0.12 * bh)
    cabin = [
        (x0 + 0.18 * bw, y0 + 0.4 * bh),
        (x0 + 0.3 * bw, y0),
        (x1 - 0.3 * bw, y0),
        (x1 - 0.15 * bw, y0 + 0.4 * bh),
    ]
    for target, value in ((image, colour), (mask, 1)):
        cv2.rectangle(target, _pt(body[:2]), _pt(body[2:]), value, -1)
        cv2.fillPoly(target, [np.array(cabin, np.int32)], value)
        r = max(1, int(0.14 * bh))
        for wx in (x0 + 0.2 * bw, x1 - 0.2 * bw):
            cv2.circle(target, _pt((wx, y1 - r)), r, value if target is mask else (0.05,) * 3, -1)
    glass = [
        (x0 + 0.24 * bw, y0 + 0.38 * bh),
        (x0 + 0.33 * bw, y0 + 0.08 * bh),
        (x1 - 0.33 * bw, y0 + 0.08 * bh),
        (x1 - 0.2 * bw, y0 + 0.38 * bh),
    ]
    cv2.fillPoly(image, [np.array(glass, np.int32)], (0.15, 0.2, 0.25))


def _draw_truck(image: np.ndarray, mask: np.ndarray, box: tuple[float, ...], rng) -> None:
    x0, y0, x1, y1 = box
    bw, bh = x1 - x0, y1 - y0
    cargo = (np.array([0.9, 0.9, 0.88]) * rng.uniform(0.5, 1.0)).tolist()
    cab = _CAR_COLOURS[rng.integers(len(_CAR_COLOURS))].tolist()
    cab_left = rng.uniform() < 0.5
    split = x0 + 0.3 * bw if cab_left else x1 - 0.3 * bw
    r = max(1, int(0.1 * bh))
    for target, v_cargo, v_cab in ((image, cargo, cab), (mask, 1, 1)):
        if cab_left:
            cv2.rectangle(target, _pt((x0, y0 + 0.3 * bh)), _pt((split, y1 - r)), v_cab, -1)
            cv2.rectangle(target, _pt((split, y0)), _pt((x1, y1 - r)), v_cargo, -1)
        else:
            cv2.rectangle(target, _pt((x0, y0)), _pt((split, y1 - r)), v_cargo, -1)
            cv2.rectangle(target, _pt((split, y0 + 0.3 * bh)), _pt((x1, y1 - r)), v_cab, -1)
        for wx in (x0 + 0.15 * bw, x0 + 0.5 * bw, x1 - 0.15 * bw):
            cv2.circle(target, _pt((wx, y1 - r)), r, 1 if target is mask else (0.05,) * 3, -1)


def _draw_pedestrian(image: np.ndarray, mask: np.ndarray, box: tuple[float, ...], rng) -> None:
    x0, y0, x1, y1 = box
    bw, bh = x1 - x0, y1 - y0
    cx = (x0 + x1) / 2
    skin = _SKIN[rng.integers(len(_SKIN))].tolist()
    shirt = rng.uniform(0.05, 0.95, 3).tolist()
    trousers = (rng.uniform(0.05, 0.5, 3)).tolist()
    head_r = max(1, int(0.09 * bh))
    stride = rng.uniform(0.0, 0.35) * bw
    limb = max(1, int(0.22 * bw))
    for target, v_skin, v_shirt, v_trousers in ((image, skin, shirt, trousers), (mask, 1, 1, 1)):
        cv2.circle(target, _pt((cx, y0 + head_r)), head_r, v_skin, -1)
        cv2.rectangle(
            target,
            _pt((x0 + 0.1 * bw, y0 + 2 * head_r)),
            _pt((x1 - 0.1 * bw, y0 + 0.55 * bh)),
            v_shirt,
            -1,
        )
        hip = (cx, y0 + 0.55 * bh)
        for dx in (-stride, stride):
            cv2.line(target, _pt(hip), _pt((cx + dx, y1 - limb / 2)), v_trousers, limb)


def _apply_fog(image: np.ndarray, horizon: int, density: float, light: float) -> None:
    """Blend towards a grey fog colour, more with distance (rows close to the horizon)."""
    h = image.shape[0]
    rows = np.arange(h, dtype=np.float32)
    distance = np.where(
        rows < horizon, 8.0, 1.0 / np.maximum((rows - horizon) / (h - horizon), 0.125)
    )
    amount = 1.0 - np.exp(-density * 0.45 * distance)
    fog_colour = np.array([0.75, 0.75, 0.78], np.float32) * light
    image[:] = image * (1 - amount)[:, None, None] + fog_colour * amount[:, None, None]


def _pt(p: tuple[float, float] | np.ndarray) -> tuple[int, int]:
    return round(float(p[0])), round(float(p[1]))
