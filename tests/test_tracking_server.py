"""`tracking.uri=http://...` against a real `mlflow server` on loopback: logging, outages, secrets.

The server runs with a SQLite backend, one worker and its artifacts in a temporary folder; it
is started by the tests and stopped (SIGTERM to its process group) at the end.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient

from tests.cli import cli_env, run_cli
from tests.pg_server import PgServer

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TRACK_PW = "Tr4ck-pw_9f1c"  # in tracking.uri: must never be written or printed
DB_PW = "dB:p%40ss/w0rd!"  # in search.storage: likewise


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """A `mlflow server` subprocess in its own process group."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.port = _free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.artifacts = root / "art"
        command = [
            *(sys.executable, "-m", "mlflow", "server"),
            *("--backend-store-uri", f"sqlite:///{root / 'db'}"),
            *("--artifacts-destination", str(self.artifacts)),
            *("--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"),
        ]
        self.log = (root / "server.log").open("w")
        self.proc = subprocess.Popen(
            command,
            cwd=root,
            env=cli_env(root / "cache"),
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60  # about 8 s alone; more on a busy 2-core machine
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                with urllib.request.urlopen(f"{self.uri}/health", timeout=2) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"mlflow server did not start: {(root / 'server.log').read_text()}")

    def kill(self) -> None:
        """SIGKILL the whole tree (the server and its worker), as a crash would."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=20)
        self.log.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server(tmp_path_factory.mktemp("mlflow_server"))
    yield running
    running.stop()


def _run(cwd: Path, *overrides: str, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    return run_cli(cwd, "run", "debug=smoke", *overrides, timeout=timeout)


def _written_text(folder: Path) -> str:
    return "\n".join(
        p.read_text(errors="replace")
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.suffix in {".yaml", ".json", ".log", ".txt", ""}
    )


def test_a_run_logs_through_the_server_and_its_password_stays_hidden(
    server: Server, tmp_path: Path
) -> None:
    uri = server.uri.replace("http://", f"http://gl_user:{TRACK_PW}@")
    proc = _run(tmp_path, f"tracking.uri={uri}", "hydra.run.dir=runs/served")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    run_dir = tmp_path / "runs" / "served"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["mlflow"]["tracking_uri"] == server.uri.replace(
        "http://", "http://gl_user:***@"
    )
    assert summary["mlflow"]["lost_logs"]["n_trials"] == 0

    client = MlflowClient(server.uri)
    parent = client.get_run(summary["mlflow"]["run_id"])
    assert parent.info.status == "FINISHED"
    assert parent.info.artifact_uri.startswith("mlflow-artifacts:")  # proxied by the server
    children = client.search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    )
    assert len(children) == 6 and all(c.info.status == "FINISHED" for c in children)
    assert all("distance" in c.data.metrics for c in children)
    plots = {a.path for a in client.list_artifacts(parent.info.run_id, "plots")}
    assert {"plots/optimization_history.png", "plots/target_vs_best.png"} <= plots
    weights = [a.path for a in client.list_artifacts(parent.info.run_id, "finetuned")]
    assert weights and all(w.endswith(".pt") for w in weights)
    stored = {p.name for p in server.artifacts.rglob("*") if p.is_file()}
    assert {"optimization_history.png", "summary.json", Path(weights[0]).name} <= stored

    # The password is in no param, tag, file, log or console line.
    assert parent.data.params["tracking.uri"] == summary["mlflow"]["tracking_uri"]
    logged = json.dumps([parent.data.params, parent.data.tags])
    assert TRACK_PW not in logged
    assert TRACK_PW not in _written_text(run_dir)
    assert (run_dir / ".hydra" / "overrides.yaml").is_file()
    assert TRACK_PW not in proc.stdout + proc.stderr
    assert "View run" not in proc.stdout  # MLflow's per-run URL lines are off


def test_a_server_that_is_down_at_start_stops_the_run_before_any_trial(tmp_path: Path) -> None:
    clock = time.monotonic()
    proc = _run(tmp_path, f"tracking.uri=http://127.0.0.1:{_free_port()}", timeout=120)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert time.monotonic() - clock < 60
    assert "tracking.uri" in proc.stderr and "unreachable" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert "| floor " not in proc.stdout and "noise floor" not in proc.stdout


def test_a_server_that_dies_mid_study_loses_logs_not_trials(tmp_path: Path) -> None:
    doomed = Server(tmp_path / "server")
    try:
        proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "gen_loop", "run", "debug=smoke"),
                *(f"tracking.uri={doomed.uri}", "search.n_trials=10", "hydra.run.dir=runs/drop"),
            ],
            cwd=tmp_path,
            env=cli_env(tmp_path / "cache"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        lines = []
        deadline = time.monotonic() + 400
        for line in proc.stdout:
            lines.append(line)
            if sum("| floor " in x for x in lines) >= 3 or time.monotonic() > deadline:
                break
        doomed.kill()
        rest, stderr = proc.communicate(timeout=500)
    finally:
        doomed.stop()
    stdout = "".join(lines) + rest
    assert proc.returncode == 0, stdout[-3000:] + stderr[-3000:]
    assert "Traceback" not in stderr
    assert stdout.count("| floor ") == 10  # every trial ran
    run_dir = tmp_path / "runs" / "drop"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["n_trials"] == 10 and summary["n_failed"] == 0
    study = optuna.load_study(study_name="gen_loop", storage=f"sqlite:///{run_dir / 'optuna.db'}")
    assert len(study.trials) == 10
    lost = summary["mlflow"]["lost_logs"]
    assert lost["n_trials"] >= 1 and lost["outages"] == 1 and lost["store_down_at_end"]
    assert set(lost["trials"]) <= set(range(10))
    # Trial logs are written by a background thread, so those queued when the server died are
    # lost too; but every trial not counted as lost is complete in the server's own database.
    client = MlflowClient(f"sqlite:///{doomed.root / 'db'}")
    parent = client.get_run(summary["mlflow"]["run_id"])
    children = client.search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    )
    complete = {
        int(c.data.tags["gen_loop.trial"])
        for c in children
        if c.info.status == "FINISHED" and "distance" in c.data.metrics
    }
    assert set(range(10)) - set(lost["trials"]) <= complete
    assert "was unreachable during the run" in stdout
    assert "after" in summary["evaluation"]  # the run finished its fine-tune without MLflow


@pytest.mark.parametrize("given", ["inline", "env"])
def test_a_storage_password_never_reaches_files_params_or_consoles(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, postgres: PgServer, given: str
) -> None:
    # The server trusts loopback connections, so any password opens it: the run goes all the
    # way (the study is opened and checked before anything of the run folder is written).
    password = DB_PW
    if given == "env":  # the documented way: the config holds an interpolation, not the value
        monkeypatch.setenv("GEN_LOOP_DB_PASSWORD", DB_PW)
        password = "${oc.env:GEN_LOOP_DB_PASSWORD}"
    storage = postgres.url.replace("gen_loop@", f"gen_loop:{password}@")
    proc = _run(
        tmp_path,
        f"search.storage='{storage}'",
        f"search.study_name=pw_{given}",
        "search.n_trials=2",
        "finetune.enabled=false",
        "hydra.run.dir=runs/pg",
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    run_dir = tmp_path / "runs" / "pg"
    if given == "env":
        assert password in (run_dir / ".hydra" / "config.yaml").read_text()
    assert (run_dir / "config.yaml").is_file() and (run_dir / ".hydra" / "config.yaml").is_file()
    assert "postgresql://gen_loop:***@127.0.0.1" in (run_dir / "config.yaml").read_text()
    assert json.loads((run_dir / "summary.json").read_text())["study"]["storage"].startswith(
        "postgresql://gen_loop:***@127.0.0.1"
    )
    assert DB_PW not in _written_text(run_dir)
    assert DB_PW not in proc.stdout + proc.stderr
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    run = client.get_run((run_dir / "mlflow_run_id").read_text().strip())
    assert run.data.params["search.storage"].startswith("postgresql://gen_loop:***@127.0.0.1")
    assert DB_PW not in json.dumps([run.data.params, run.data.tags])
