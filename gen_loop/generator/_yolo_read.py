"""Read a YOLO-format dataset from disk: where its images are, its class names, and every label
line checked.

Shared by the folder generator (a bad line is warned about and skipped) and the command
generator (a bad line fails the call). Label files follow the ultralytics layout: the label of
``.../images/a/b.jpg`` is ``.../labels/a/b.txt``; a missing label file means no objects.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from gen_loop.errors import InputDataError

_TOL = 1e-6  # label writers round to 6 decimals; 1.0000001 is not an error


@dataclass(frozen=True)
class LabelIssue:
    """One unusable label line.

    Attributes:
        path: the label file.
        line: the line number (from 1).
        reason: what is wrong with it.
    """

    path: Path
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}"


@dataclass(frozen=True)
class YoloLayout:
    """Where a YOLO dataset's images are and the class names it declares.

    Attributes:
        image_dirs: folders holding the images (searched recursively).
        class_names: the ``names`` of its data.yaml; None without a data.yaml or names.
        data_yaml: the data.yaml that was read, if any.
    """

    image_dirs: tuple[Path, ...]
    class_names: tuple[str, ...] | None
    data_yaml: Path | None


def locate_yolo_dataset(root: Path, split: str = "train") -> YoloLayout:
    """Find the images and class names of a YOLO dataset.

    Args:
        root: a ``data.yaml`` (its ``split`` entry, else ``val``, names the image folders), or a
            folder with ``images/`` (and ``labels/``; a ``data.yaml`` there gives the class
            names), or a folder with only a ``data.yaml``.
        split: the data.yaml entry to read.

    Raises:
        InputDataError: the path does not exist, is not a dataset, or its data.yaml is unusable;
            the message names the path.
    """
    root = Path(root).expanduser()
    if not root.exists():
        raise InputDataError(
            f"YOLO dataset {root} does not exist; give a folder with images/ and labels/ "
            "or a data.yaml"
        )
    if root.is_file():
        if root.suffix.lower() not in (".yaml", ".yml"):
            raise InputDataError(
                f"{root} is a file but not a data.yaml; give a YOLO dataset folder or data.yaml"
            )
        return _from_data_yaml(root, split)
    data_yaml = next((p for p in (root / "data.yaml", root / "data.yml") if p.is_file()), None)
    if (root / "images").is_dir():
        names = read_class_names(data_yaml) if data_yaml is not None else None
        return YoloLayout((root / "images",), names, data_yaml)
    if data_yaml is not None:
        return _from_data_yaml(data_yaml, split)
    raise InputDataError(
        f"{root} has neither an images/ folder nor a data.yaml; a YOLO dataset is images/ "
        "with labels/ beside it (one .txt per image), or a data.yaml naming the image folders"
    )


def _load_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise InputDataError(f"cannot read {path}: {err}") from err
    if not isinstance(data, dict):
        raise InputDataError(f"{path} is not a YOLO data.yaml (it holds no mapping)")
    return data


def read_class_names(data_yaml: Path) -> tuple[str, ...] | None:
    """The ``names`` of a data.yaml (a list, or a mapping ``0: car``), None if it has none."""
    names = _load_yaml(data_yaml).get("names")
    if names is None:
        return None
    if isinstance(names, dict):
        ids = sorted(names)
        if ids != list(range(len(ids))):
            raise InputDataError(f"{data_yaml}: 'names' ids must be 0..{len(ids) - 1}, got {ids}")
        return tuple(str(names[i]) for i in ids)
    if isinstance(names, list) and names:
        return tuple(str(n) for n in names)
    raise InputDataError(f"{data_yaml}: 'names' must be a list or a mapping id -> name")


def _from_data_yaml(path: Path, split: str) -> YoloLayout:
    data = _load_yaml(path)
    entry = data.get(split) or data.get("val")
    listed = entry if isinstance(entry, list) else [entry]
    if not listed or not all(isinstance(e, str) and e for e in listed):
        raise InputDataError(f"{path} names no '{split}' (or 'val') image folder")
    entries = [str(e) for e in listed]
    base = Path(str(data.get("path") or path.parent)).expanduser()
    base = base if base.is_absolute() else path.parent / base
    if not base.is_dir():  # a moved dataset keeps its old absolute `path`
        base = path.parent
    dirs = []
    for item in entries:
        folder = Path(item) if Path(item).is_absolute() else base / item
        if not folder.is_dir():
            raise InputDataError(
                f"{path}: '{split}' entry {item!r} is not a folder ({folder}); image list "
                "files are not supported, give image folders"
            )
        dirs.append(folder)
    return YoloLayout(tuple(dirs), read_class_names(path), path)


def label_file_for(image: Path) -> Path:
    """The label file of an image: the last ``images`` folder replaced by ``labels``, ``.txt``."""
    parts = list(image.parts)
    if "images" in parts[:-1]:
        i = len(parts) - 2 - parts[-2::-1].index("images")
        return Path(*parts[:i], "labels", *parts[i + 1 :]).with_suffix(".txt")
    return image.with_suffix(".txt")


def parse_label_file(path: Path, n_classes: int | None) -> tuple[np.ndarray, list[LabelIssue]]:
    """The good rows of a label file and an issue for each bad line.

    A line is bad when it does not have 5 columns (``class cx cy w h``), a value is not a
    number, the class id is not an integer in ``0..n_classes-1`` (any non-negative integer
    when ``n_classes`` is None), a coordinate is outside 0-1, or the box has no area.

    Returns:
        ``(k, 5)`` float32 rows of the good lines, and the issues. A missing file is no objects.
    """
    if not path.exists():
        return np.zeros((0, 5), np.float32), []
    rows: list[list[float]] = []
    issues: list[LabelIssue] = []
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        row, reason = _parse_line(line.split(), n_classes)
        if reason is None:
            rows.append(row)
        else:
            issues.append(LabelIssue(path, number, reason))
    return np.array(rows, np.float32).reshape(-1, 5), issues


def _parse_line(parts: list[str], n_classes: int | None) -> tuple[list[float], str | None]:
    if len(parts) != 5:
        return [], f"{len(parts)} columns, expected 5 (class cx cy w h)"
    try:
        values = [float(p) for p in parts]
    except ValueError:
        bad = next(p for p in parts if not _is_float(p))
        return [], f"{bad[:40]!r} is not a number"
    cls, coords = values[0], values[1:]
    if not (math.isfinite(cls) and cls >= 0 and cls.is_integer()):
        return [], f"class id {parts[0]} is not a non-negative integer"
    if n_classes is not None and cls >= n_classes:
        return [], f"class id {int(cls)} is not below the number of classes ({n_classes})"
    if not all(math.isfinite(v) and -_TOL <= v <= 1 + _TOL for v in coords):
        return [], f"coordinates {' '.join(parts[1:])} are not all in 0..1"
    if coords[2] <= 0 or coords[3] <= 0:
        return [], "the box has zero width or height"
    return [cls, *(min(max(v, 0.0), 1.0) for v in coords)], None


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_labels(
    images: Sequence[Path], n_classes: int | None
) -> tuple[list[np.ndarray], list[LabelIssue]]:
    """The labels of each image (see :func:`parse_label_file`) and every issue, in order."""
    labels, issues = [], []
    for image in images:
        rows, found = parse_label_file(label_file_for(image), n_classes)
        labels.append(rows)
        issues.extend(found)
    return labels, issues
