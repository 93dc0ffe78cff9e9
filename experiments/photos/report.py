"""The photograph sanity case's numbers and grids, from the loop's run folders.

Usage (after make_photos.py and one ``gen_loop run`` per camera, see make_photos.py)::

    .venv/bin/python experiments/photos/report.py [--runs dashcam_dusk cctv_fog ...]

Per run folder of ``runs/`` (its camera read from the run's target folder): one markdown
table row (distance of the generator's current camera, best distance, floor, trials, stop, the
found camera, what the run's analysis says), printed, and ``grid_<run>.jpg``: for one crop of
each photograph, the untouched source crop, the same crop through the camera the loop found
(the generator's own sensor model), and a target crop of the same photograph, re-shot
through the independent camera.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

from gen_loop._imageio import read_image_rgb
from gen_loop.generator.folder import box_masks
from gen_loop.generator.sensor import SENSOR_PARAMETERS, SensorModel

HERE = Path(__file__).resolve().parent
DATA, RUNS = HERE / "data", HERE / "runs"


def grid(camera: str, params: dict[str, float], crops: int, n_photos: int) -> np.ndarray:
    """Rows: source crop, source crop through ``params``, target crop; one column a photo."""
    sensor = SensorModel({s.name: params.get(s.name, s.default) for s in SENSOR_PARAMETERS})
    sources = sorted((DATA / "source" / "images").glob("*"))
    targets = sorted((DATA / camera / "target" / "images").glob("*"))
    rows: list[list[np.ndarray]] = [[], [], []]
    for k in range(n_photos):
        source = read_image_rgb(sources[k * crops])
        h, w = source.shape[:2]
        found, _ = sensor.apply(
            source.astype(np.float32) / 255.0, box_masks(np.zeros((0, 5)), h, w), k
        )
        target = read_image_rgb(targets[k * crops])
        for row, tile in zip(rows, (source, found, target), strict=True):
            row.append(tile)
    return np.concatenate([np.concatenate(r, 1) for r in rows], 0)


def row(camera: str, summary: dict) -> str:
    """One markdown table row of the run."""
    floor = summary["noise_floor"]["mean"]
    found = ", ".join(f"{k} {v:.3g}" for k, v in summary["best_params"].items())
    lines = (summary.get("analysis") or {}).get("lines") or ["-"]
    return (
        f"| {camera} | {summary['default_distance']:.3f} | {summary['best_distance']:.3f} | "
        f"{floor:.3f} | {summary['best_distance'] / floor:.2f}x | {summary['n_trials']} | "
        f"{summary['stop_reason'].split(':')[0]} | {found} | {'; '.join(lines)} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--runs", nargs="+", default=["dashcam_dusk", "cctv_fog", "cctv_fog_advised"]
    )
    args = parser.parse_args()
    print(
        "| run | distance, generator's camera | best distance | floor | best / floor | "
        "trials | stop | found camera | analysis |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for run in args.runs:
        summary_path = RUNS / run / "summary.json"
        if not summary_path.is_file():
            print(f"| {run} | no run: {summary_path} missing |")
            continue
        summary = json.loads(summary_path.read_text())
        # the target folder is data/<camera>/target/images
        camera = Path(summary["target"]["description"].split(" ", 1)[1]).parents[1].name
        listing_path = DATA / camera / "photos.json"
        if not listing_path.is_file():
            raise SystemExit(f"{listing_path} missing: run make_photos.py --camera {camera} first")
        listing = json.loads(listing_path.read_text())
        print(row(run, summary))
        tiles = grid(
            camera, summary["all_params"], listing["crops_per_photo"], len(listing["photos"])
        )
        small = cv2.resize(
            tiles, (tiles.shape[1] // 2, tiles.shape[0] // 2), interpolation=cv2.INTER_AREA
        )
        cv2.imwrite(
            str(HERE / f"grid_{run}.jpg"), small[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 85]
        )


if __name__ == "__main__":
    main()
