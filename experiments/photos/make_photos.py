"""Real photographs as source and target: the sanity case of issue 14 (part 4).

Usage::

    .venv/bin/python experiments/photos/make_photos.py [--camera dashcam_dusk] [--crops 12]

The photographs are the real ones that installed packages ship (ultralytics' assets,
matplotlib's sample data, scikit-learn's sample images, scikit-image's data when it is
installed: ``pip install scikit-image`` adds seven); nothing is downloaded. Every colour photo
gives ``--crops`` random square crops (half to nine tenths of its short side, resized to
``--size``) for the source and as many other crops for the target:

- ``data/source/``: the untouched crops as a YOLO dataset without labels, the source of
  ``generator=folder`` (the search re-renders them through the generator's camera model);
- ``data/<camera>/target/images/``: the target crops re-shot through the independent camera of
  ``experiments/mismatch/camera.py`` (``IndependentCamera.film_image``: its own lens, white
  balance, shot noise, tone curve, sRGB and JPEG), the client's unlabeled images;
- ``data/<camera>/photos.json``: which photographs were found, and ``grid.png``.

Then the loop (no fine-tune: there are no labels)::

    python -m gen_loop run generator=folder generator.root=experiments/photos/data/source \\
        target=folder target.path=experiments/photos/data/dashcam_dusk/target/images \\
        finetune.enabled=false hydra.run.dir=experiments/photos/runs/dashcam_dusk

and ``experiments/photos/report.py`` for the distance fall, the found camera and the grids.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path

import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "mismatch"))  # camera.py
from camera import CAMERAS  # noqa: E402

from gen_loop._imageio import read_image_rgb, write_image_rgb  # noqa: E402
from gen_loop.generator.base import DEFAULT_CLASS_NAMES, Batch  # noqa: E402
from gen_loop.generator.yolo_io import write_yolo_dataset  # noqa: E402

DATA = HERE / "data"  # ignored by git: made in seconds
SOURCE_SEED, TARGET_SEED, FILM_SEED = 0, 1, 2

#: (package, file inside it): colour photographs of the real world that packages ship.
PHOTOS: tuple[tuple[str, str], ...] = (
    ("ultralytics", "assets/bus.jpg"),
    ("ultralytics", "assets/zidane.jpg"),
    ("matplotlib", "mpl-data/sample_data/grace_hopper.jpg"),
    ("sklearn", "datasets/images/china.jpg"),
    ("sklearn", "datasets/images/flower.jpg"),
    ("skimage", "data/astronaut.png"),
    ("skimage", "data/chelsea.png"),
    ("skimage", "data/coffee.png"),
    ("skimage", "data/rocket.jpg"),
    ("skimage", "data/motorcycle_left.png"),
)


def find_photos() -> dict[str, Path]:
    """The files of :data:`PHOTOS` that the installed packages hold, by ``package:file``
    (others are skipped)."""
    found = {}
    for package, rel in PHOTOS:
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            continue
        path = Path(next(iter(spec.submodule_search_locations))) / rel
        if path.is_file():
            found[f"{package}:{rel}"] = path
    return found


def crops(photo: np.ndarray, n: int, size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """``n`` random square crops of ``photo`` (side 0.5-0.9 of its short side, random place,
    random horizontal flip), each resized to ``size`` x ``size``."""
    h, w = photo.shape[:2]
    out = []
    for _ in range(n):
        side = int(rng.uniform(0.5, 0.9) * min(h, w))
        y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        crop = photo[y : y + side, x : x + side]
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        out.append(cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA))
    return out


def as_batch(images: list[np.ndarray], params: dict[str, object]) -> Batch:
    """Unlabeled images as a :class:`Batch` (for ``write_yolo_dataset``)."""
    empty = tuple(np.zeros((0, 5), np.float32) for _ in images)
    seeds = tuple(range(len(images)))
    return Batch(np.stack(images), empty, DEFAULT_CLASS_NAMES, params, seeds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--camera", default="dashcam_dusk", choices=sorted(CAMERAS))
    parser.add_argument("--crops", type=int, default=12, help="crops per photo and set")
    parser.add_argument("--size", type=int, default=256)
    args = parser.parse_args()
    paths = find_photos()
    if len(paths) < 2:
        raise SystemExit("fewer than two photographs found in the installed packages")
    photos = [read_image_rgb(p) for p in paths.values()]
    source_rng, target_rng = np.random.default_rng(SOURCE_SEED), np.random.default_rng(TARGET_SEED)
    source = [c for p in photos for c in crops(p, args.crops, args.size, source_rng)]
    target_crops = [c for p in photos for c in crops(p, args.crops, args.size, target_rng)]
    camera = CAMERAS[args.camera]
    film_rng = np.random.default_rng(FILM_SEED)
    target = [camera.film_image(c, film_rng) for c in target_crops]

    write_yolo_dataset(as_batch(source, {}), DATA / "source", prefix="photo")
    root = DATA / args.camera
    write_yolo_dataset(as_batch(target, {"camera": args.camera}), root / "target", prefix="photo")
    listing = {"camera": args.camera, "crops_per_photo": args.crops, "size": args.size}
    listing["photos"] = list(paths)
    (root / "photos.json").write_text(json.dumps(listing, indent=1))
    # One crop per photo: the untouched source crop above its re-shot target crop.
    pick = [i * args.crops for i in range(len(photos))]
    rows = [
        np.concatenate([source[i] for i in pick], 1),
        np.concatenate([target[i] for i in pick], 1),
    ]
    write_image_rgb(root / "grid.png", np.concatenate(rows, 0))
    print(
        f"{len(paths)} photographs: {len(source)} source crops -> {DATA / 'source'}, "
        f"{len(target)} target crops through {args.camera} -> {root / 'target'}"
    )


if __name__ == "__main__":
    main()
