#!/usr/bin/env python3
"""Example simulator adapter for ``generator=command``: JSON parameters in, YOLO folder out.

It stands in for a real simulator (Cognata, CARLA, Isaac Sim, an in-house renderer) by running
``python -m gen_loop generate`` with the requested parameters. Copy it and replace
:func:`render` with a call to your simulator; keep the contract (README.md next to this file):

    adapter.py PARAMS_JSON

    PARAMS_JSON  {"params": {NAME: VALUE, ...}, "seed": INT, "n": INT, "out_dir": PATH,
                  "width": INT, "height": INT}

    writes       OUT_DIR/images/*.png   exactly n images; image i is the i-th in sorted order
                 OUT_DIR/labels/*.txt   one per image: "class cx cy w h" lines, normalised 0..1
                 OUT_DIR/data.yaml      names: {0: car, 1: truck, ...}
    exit code    0 done; 2 bad request; 3 the simulator failed (reason on stderr)

The same params and seed must give the same images (every trial renders the same scenes).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

EXIT_BAD_REQUEST = 2
EXIT_SIMULATOR_FAILED = 3
REPO = Path(__file__).resolve().parents[2]
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class BadRequest(Exception):
    """The JSON file does not follow the contract."""


def read_request(path: Path) -> dict[str, Any]:
    """The request in ``path``, checked against the contract."""
    try:
        request = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise BadRequest(f"cannot read {path}: {err}") from err
    if not isinstance(request, dict):
        raise BadRequest(f"{path}: expected a JSON object")
    missing = sorted({"params", "seed", "n", "out_dir"} - set(request))
    if missing:
        raise BadRequest(f"{path}: missing field(s) {missing}")
    if not isinstance(request["params"], dict):
        raise BadRequest(f"{path}: 'params' must be an object")
    bad = [k for k in request["params"] if not _NAME.fullmatch(str(k))]
    if bad:
        raise BadRequest(f"{path}: parameter names must be identifiers, got {bad}")
    for key in ("seed", "n", "width", "height"):
        if key in request and not (isinstance(request[key], int) and request[key] >= 0):
            raise BadRequest(f"{path}: '{key}' must be a non-negative integer")
    if request["n"] < 1:
        raise BadRequest(f"{path}: 'n' must be at least 1")
    return request


def _hydra_value(value: Any) -> str:
    """A parameter value as a Hydra override value (strings quoted, so nothing is parsed)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    text = str(value).replace("\\", "\\\\").replace("'", "\\'")
    return f"'{text}'"


def render(request: dict[str, Any]) -> int:
    """Run the stand-in simulator; its stdout and stderr pass through to gen_loop."""
    overrides = [
        f"out={request['out_dir']}",
        f"n={request['n']}",
        f"seed={request['seed']}",
        *(f"generator.{k}={request[k]}" for k in ("width", "height") if k in request),
        *(f"generator.params.{k}={_hydra_value(v)}" for k, v in request["params"].items()),
    ]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    argv = [sys.executable, "-m", "gen_loop", "generate", *overrides]
    return subprocess.run(argv, env=env, check=False).returncode


def main(argv: list[str]) -> int:
    """Entry point: ``adapter.py PARAMS_JSON``; returns the exit code."""
    if len(argv) != 2:
        print(f"usage: {Path(argv[0]).name} PARAMS_JSON", file=sys.stderr)
        return EXIT_BAD_REQUEST
    try:
        request = read_request(Path(argv[1]))
    except BadRequest as err:
        print(f"adapter: bad request: {err}", file=sys.stderr)
        return EXIT_BAD_REQUEST
    code = render(request)
    if code != 0:
        print(f"adapter: the simulator exited with code {code}", file=sys.stderr)
        return EXIT_SIMULATOR_FAILED
    if not (Path(request["out_dir"]) / "data.yaml").is_file():
        print(
            f"adapter: the simulator wrote no data.yaml in {request['out_dir']}", file=sys.stderr
        )
        return EXIT_SIMULATOR_FAILED
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
