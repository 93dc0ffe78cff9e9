"""BASINS.md's "Trials that look in different places": the runs that left a basin, before and
after the sampler's trials since a left basin were kept ``radius`` from each other.

Usage (after the runs of BASINS.md's commands for it):

    .venv/bin/python experiments/recovery/spread_report.py

Pairs (the same arm, camera and seed; before -> after): ``basins/restart`` -> ``basins/spread``
(the default), ``basins/ct_log`` -> ``basins/spread_ct_log`` and ``basins/regrow`` ->
``basins/spread_regrow``. Only the runs that left a basin before were run again: until a basin
is left the rule changes nothing.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from any_camera import MISMATCH_OFFSET  # noqa: E402
from basins_report import _fmt, _load, _reached, largest_error, mismatch_table  # noqa: E402

#: arm -> (the records before, the records after)
FOLDERS = {
    "default": ("restart", "spread"),
    "ct_log": ("ct_log", "spread_ct_log"),
    "regrow": ("regrow", "spread_regrow"),
}


def main() -> None:
    lines = [
        "| arm | camera | seed | trials to 1.5x: before -> after | basins left: before -> after "
        "| largest identifiable error: before -> after |",
        "|---|---|---|---|---|---|",
    ]
    mismatch = []
    for arm, (before_dir, after_dir) in FOLDERS.items():
        before, after = _load(HERE / "basins" / before_dir), _load(HERE / "basins" / after_dir)
        for key in sorted(after, key=lambda k: (k[1], k[0])):
            b, a = before[key], after[key]
            if key[0] >= MISMATCH_OFFSET:
                mismatch.append((b, a))
                continue
            lines.append(
                f"| {arm} | {key[0]} | {key[1]} | {_fmt(_reached(b))} -> {_fmt(_reached(a))} "
                f"| {len(b['left_basins'] or [])} -> {len(a['left_basins'] or [])} "
                f"| {largest_error(b):.1%} -> {largest_error(a):.1%} |"
            )
    print("\n".join(lines).replace("%", " %"))
    print()
    print("\n".join(mismatch_table(mismatch, "before", "after")))


if __name__ == "__main__":
    main()
