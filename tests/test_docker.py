"""The GPU image's key properties (no Docker engine runs here to build it)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _instructions() -> list[tuple[str, str]]:
    text = (ROOT / "docker" / "Dockerfile").read_text().replace("\\\n", " ")
    rows = [line.strip() for line in text.splitlines()]
    return [
        (r.split(None, 1)[0].upper(), r.split(None, 1)[1])
        for r in rows
        if r and not r.startswith("#")
    ]


def test_image_runs_as_a_non_root_user() -> None:
    users = [arg for op, arg in _instructions() if op == "USER"]
    assert users and users[-1] not in ("root", "0")


def test_image_is_offline_ready() -> None:
    env = " ".join(arg for op, arg in _instructions() if op == "ENV")
    for setting in (
        "YOLO_OFFLINE=1",
        "NO_ALBUMENTATIONS_UPDATE=1",
        "MLFLOW_DISABLE_TELEMETRY=true",
    ):
        assert setting in env
    assert any("configure_ultralytics" in arg for op, arg in _instructions() if op == "RUN")


def test_image_has_cuda_and_the_package_and_its_config() -> None:
    ops = _instructions()
    base = next(arg for op, arg in ops if op == "FROM")
    assert "cuda" in base
    copied = " ".join(arg for op, arg in ops if op == "COPY")
    assert "gen_loop" in copied and "conf" in copied and "pyproject.toml" in copied
    entry = next(arg for op, arg in ops if op == "ENTRYPOINT")
    assert '"gen_loop"' in entry
