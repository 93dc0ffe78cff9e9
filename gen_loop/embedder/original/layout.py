"""Which shipped model layout an original-YOLOv7 checkpoint's cfg is, row by row."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import yaml

#: Shipped layouts an original cfg can map to (gen_loop/embedder/models/), by model name.
ORIGINAL_LAYOUTS = {"yolov7-tiny-original": "yolov7-tiny-original.yaml", "yolov7": "yolov7.yaml"}

_HEADS = ("IDetect", "Detect")


class LayoutMismatch(ValueError):
    """The cfg is no shipped layout; the message says where it first differs."""


def translate_row(row: list[Any]) -> tuple[list[Any], str | None]:
    """One row of an original cfg as the row of an ultralytics model YAML, and the activation
    the original passes to that row's ``Conv`` (None: the default SiLU).

    ``MP`` is a stride-2 ``nn.MaxPool2d(2, 2)``, ``SP(k)`` a stride-1 ``nn.MaxPool2d(k, 1,
    k//2)``; a ``Conv``'s padding must be automatic and its groups 1; ``IDetect``/``Detect``
    become ultralytics' ``Detect(nc)``.
    """
    source, repeats, module, args = row
    args = list(args)
    act = None
    if module == "Conv":
        c2, k, s = [*args, 1, 1][:3]  # the original's defaults: k=1, s=1
        rest = args[3:]
        pad = rest[0] if rest else "None"
        groups = rest[1] if len(rest) > 1 else 1
        act = rest[2] if len(rest) > 2 else None
        if pad not in ("None", None) or groups != 1:
            raise LayoutMismatch(f"Conv {args}: only automatic padding and groups=1 are mapped")
        return [source, repeats, "Conv", [c2, k, s]], act
    if module == "MP":
        return [source, repeats, "nn.MaxPool2d", [2, 2]], None
    if module == "SP":
        size = args[0] if args else 3
        return [source, repeats, "nn.MaxPool2d", [size, 1, size // 2]], None
    if module in _HEADS:
        return [source, repeats, "Detect", ["nc"]], None
    return [source, repeats, module, args], None


@cache
def shipped_layout(name: str) -> dict[str, Any]:
    """A shipped layout's model YAML as a dict."""
    path = resources.files("gen_loop.embedder") / "models" / ORIGINAL_LAYOUTS[name]
    return dict(yaml.safe_load(path.read_text()))


def match_layout(cfg: dict[str, Any]) -> str:
    """The name of the shipped layout an original cfg (``Model.yaml``) is, up to ``nc``.

    Raises:
        LayoutMismatch: naming the closest layout and the first row that differs.
    """
    rows = [*cfg.get("backbone", []), *cfg.get("head", [])]
    translated = [translate_row(row) for row in rows]
    acts = {act for _, act in translated[:-1] if _[2] == "Conv"}
    if len(acts) > 1:
        raise LayoutMismatch(f"its Convs use several activations {sorted(map(str, acts))}")
    scales = (cfg.get("depth_multiple", 1.0), cfg.get("width_multiple", 1.0))
    if scales != (1.0, 1.0):
        raise LayoutMismatch(f"depth/width multiples {scales}: only 1.0 is mapped")
    ours = [row for row, _ in translated]
    best, first_diff = "", -1
    for name in ORIGINAL_LAYOUTS:
        layout = shipped_layout(name)
        theirs = [*layout["backbone"], *layout["head"]]
        if ours == theirs and acts == {layout.get("activation")}:
            return name
        pairs = zip(ours, theirs, strict=False)
        diff = next((i for i, (a, b) in enumerate(pairs) if a != b), None)
        diff = min(len(ours), len(theirs)) if diff is None else diff
        if diff > first_diff:
            best, first_diff = name, diff
    where = (
        f"row {first_diff} is {rows[first_diff]}"
        if first_diff < len(rows)
        else f"it has {len(rows)} rows"
    )
    raise LayoutMismatch(
        f"its cfg is none of the mapped layouts {sorted(ORIGINAL_LAYOUTS)} (closest: {best}; "
        f"{where})"
    )
