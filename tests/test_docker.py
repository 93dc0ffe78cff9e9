"""The GPU image's and the compose file's key properties (no Docker engine runs here)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

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


# --- docker/docker-compose.yml ---------------------------------------------------------------

COMPOSE = ROOT / "docker" / "docker-compose.yml"


def _compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def _services() -> dict[str, dict[str, Any]]:
    return _compose()["services"]


def _workers() -> dict[str, dict[str, Any]]:
    return {name: s for name, s in _services().items() if name.startswith("worker")}


def _docker_compose(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("docker-compose")
    if exe is None:
        pytest.skip("docker-compose is not installed (.ci/run installs Debian's docker-compose)")
    return subprocess.run(
        [exe, "-f", str(COMPOSE), "config", "-q"],
        env={"PATH": os.environ.get("PATH", ""), **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_compose_file_is_valid_for_docker_compose() -> None:
    proc = _docker_compose({"POSTGRES_PASSWORD": "only-for-this-test"})
    assert proc.returncode == 0, proc.stderr


def test_compose_refuses_to_start_without_a_password() -> None:
    proc = _docker_compose({})
    assert proc.returncode != 0
    assert "POSTGRES_PASSWORD" in proc.stderr


def test_compose_has_no_literal_password() -> None:
    text = COMPOSE.read_text()
    # Every credential in a URL, and every *PASSWORD* variable, comes from the environment.
    for secret in re.findall(r"://[^/\s:@]+:([^@\s]+)@", text):
        assert secret.startswith("${POSTGRES_PASSWORD:?"), secret
    for key, value in re.findall(r"^\s*(\w*PASSWORD\w*):\s*(\S+)", text, re.M):
        assert value.startswith("${POSTGRES_PASSWORD:?"), (key, value)
    env_example = (ROOT / "docker" / "env.example").read_text()
    assert re.search(r"^POSTGRES_PASSWORD=\s*$", env_example, re.MULTILINE)
    assert "docker/.env" in (ROOT / ".gitignore").read_text().split()


def test_compose_ports_are_bound_to_loopback() -> None:
    ports = [str(p) for s in _services().values() for p in s.get("ports", [])]
    assert ports, "postgres and mlflow publish a port"
    assert all(p.startswith("127.0.0.1:") for p in ports), ports


def test_compose_postgres_and_mlflow_are_health_checked_before_use() -> None:
    services = _services()
    for name in ("postgres", "mlflow"):
        assert services[name]["healthcheck"]["test"], name
    assert services["mlflow"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    command = " ".join(services["mlflow"]["command"])
    assert "--serve-artifacts" in command and "--artifacts-destination=" in command
    backend = services["mlflow"]["environment"]["MLFLOW_BACKEND_STORE_URI"]
    assert backend.startswith("postgresql://") and backend.endswith("/mlflow")
    assert "CREATE DATABASE mlflow" in (ROOT / "docker" / "postgres-init.sql").read_text()


def test_compose_workers_share_one_study_each_on_its_own_gpu() -> None:
    workers = _workers()
    assert len(workers) >= 2
    devices = []
    for name, worker in workers.items():
        assert worker["image"] == _services()["mlflow"]["image"]
        assert worker["build"]["dockerfile"] == "docker/Dockerfile"
        for dep in ("postgres", "mlflow"):
            assert worker["depends_on"][dep]["condition"] == "service_healthy", name
        (gpu,) = worker["deploy"]["resources"]["reservations"]["devices"]
        assert gpu["driver"] == "nvidia" and "gpu" in gpu["capabilities"], name
        devices += gpu["device_ids"]
        args = worker["command"]
        assert args[0] == "run"
        # The storage URL (with its password) is read from the environment by Hydra.
        assert "search.storage=$${oc.env:OPTUNA_STORAGE}" in args
        assert worker["environment"]["OPTUNA_STORAGE"].startswith("postgresql://")
        assert "tracking.uri=http://mlflow:5000" in args
    assert len(set(devices)) == len(devices), "two workers on one GPU"
    run_dirs = [a for w in workers.values() for a in w["command"] if a.startswith("hydra.run")]
    assert len(set(run_dirs)) == len(workers), "each worker writes its own run folder"
    studies = {a for w in workers.values() for a in w["command"] if "study_name" in a}
    assert len(studies) == 1
