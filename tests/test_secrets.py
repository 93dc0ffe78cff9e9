"""Credentials stay out of what gen_loop shows: URL masking, the log filter, the Hydra files."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gen_loop._secrets import MASK, install_log_filter, mask_file, mask_text, mask_url
from gen_loop.errors import GenLoopError
from gen_loop.tracking import Tracker, check_server
from gen_loop.tracking._server import StoreHealth, probe


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("postgresql://user:pw@host/db", "postgresql://user:***@host/db"),
        (
            "postgresql+psycopg2://optuna:s3cr%40t%2Fx@db.example:5432/studies?sslmode=require",
            "postgresql+psycopg2://optuna:***@db.example:5432/studies?sslmode=require",
        ),
        # unescaped specials: everything up to the last "@" is the password
        (
            "mysql+pymysql://root:p@ss:w/rd#!@10.0.0.5:3306/x",
            "mysql+pymysql://root:***@10.0.0.5:3306/x",
        ),
        ("postgresql://:onlypw@host/db", "postgresql://:***@host/db"),
        ("http://gl:tok-en_1@127.0.0.1:5000", "http://gl:***@127.0.0.1:5000"),
        ("postgresql://h/db?user=u&password=xyz&x=1", "postgresql://h/db?user=u&password=***&x=1"),
        ("host=h port=5432 PASSWORD=sec dbname=d", "host=h port=5432 PASSWORD=*** dbname=d"),
        # nothing secret: unchanged
        ("sqlite:////tmp/runs/optuna.db", "sqlite:////tmp/runs/optuna.db"),
        ("postgresql://user@host:5432/db", "postgresql://user@host:5432/db"),
        ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
        ("journal:/shared/study.log", "journal:/shared/study.log"),
        (
            "postgresql://u:${oc.env:GEN_LOOP_DB_PASSWORD}@h/db",
            "postgresql://u:${oc.env:GEN_LOOP_DB_PASSWORD}@h/db",
        ),
    ],
)
def test_mask_url(url: str, masked: str) -> None:
    assert mask_url(url) == masked


_NAME = st.text(st.characters(min_codepoint=33, max_codepoint=126, exclude_characters=":/@'\""))
_HOST = st.from_regex(r"[a-z0-9.\-]{1,20}(:[0-9]{1,5})?", fullmatch=True)


@settings(max_examples=300, deadline=None)
@given(
    scheme=st.sampled_from(
        ["postgresql", "postgresql+psycopg2", "mysql", "mysql+pymysql", "https"]
    ),
    user=_NAME,
    password=st.text(
        st.characters(min_codepoint=33, max_codepoint=126, exclude_characters="'\"{"), min_size=1
    ),
    host=_HOST,
    db=st.from_regex(r"[A-Za-z0-9_]{0,12}", fullmatch=True),
)
def test_any_password_is_masked_exactly(
    scheme: str, user: str, password: str, host: str, db: str
) -> None:
    url = f"{scheme}://{user}:{password}@{host}/{db}"
    assert mask_url(url) == f"{scheme}://{user}:{MASK}@{host}/{db}"
    # inside free text too (a log line, a YAML value)
    assert mask_text(f"storage: '{url}' (x)") == f"storage: '{mask_url(url)}' (x)"


def test_mask_file_rewrites_only_files_with_a_password(tmp_path: Path) -> None:
    secret = tmp_path / "overrides.yaml"
    secret.write_text("- search.storage=postgresql://u:hunter2@db/s\n- search.n_trials=3\n")
    clean = tmp_path / "clean.yaml"
    clean.write_text("- search.n_trials=3\n")
    assert mask_file(secret) and not mask_file(clean) and not mask_file(tmp_path / "missing")
    assert secret.read_text() == "- search.storage=postgresql://u:***@db/s\n- search.n_trials=3\n"


@pytest.fixture
def handler() -> Iterator[logging.Handler]:
    root = logging.getLogger()
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(self.format(record))

    keep = Keep()
    keep.records = records  # type: ignore[attr-defined]
    root.addHandler(keep)
    yield keep
    root.removeHandler(keep)


def test_log_filter_masks_records_of_every_logger(handler: logging.Handler) -> None:
    install_log_filter()
    install_log_filter()  # idempotent
    logger = logging.getLogger("some.library")
    logger.warning("connecting to %s", "postgresql://u:hunter2@db/s")
    logger.warning("plain message %d", 3)
    records = handler.records  # type: ignore[attr-defined]
    assert records == ["connecting to postgresql://u:***@db/s", "plain message 3"]


def test_console_streams_are_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    import io
    import sys

    from gen_loop._secrets import mask_console

    out, err = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    mask_console()
    mask_console()  # wraps once
    print("overrides: ['search.storage=mysql://root:t0p$ecret@db/x']")
    print("Traceback: http://u:t0p$ecret@h:5000 refused", file=sys.stderr)
    assert out.getvalue() == "overrides: ['search.storage=mysql://root:***@db/x']\n"
    assert err.getvalue() == "Traceback: http://u:***@h:5000 refused\n"
    assert sys.stdout.getvalue() == out.getvalue()  # other attributes pass through


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_dead_server_is_a_config_error_naming_tracking_uri() -> None:
    uri = f"http://user:hunter2@127.0.0.1:{_free_port()}"
    assert probe(uri, timeout_s=2) is not None
    with pytest.raises(GenLoopError) as info:
        check_server(uri)
    message = str(info.value)
    assert "tracking.uri" in message and "unreachable" in message
    assert "hunter2" not in message and "user:***@" in message
    check_server("sqlite:///not/probed.db")  # only servers are probed
    with pytest.raises(GenLoopError, match=r"tracking\.uri"):
        Tracker(uri, "e", "r").__enter__()


def test_logging_failures_are_counted_not_raised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    store = f"sqlite:///{tmp_path}/mlflow.db"
    with Tracker(store, "e", "loop") as tracker:
        with tracker.trial(0, {"a": 1}) as trial:
            trial.log_metrics({"distance": 1.0})
        tracker.flush()  # trial 0's queued logs are in before the store breaks

        def broken(*args: object, **kwargs: object) -> None:
            raise MlflowException("store went away")

        with monkeypatch.context() as patch:
            patch.setattr(MlflowClient, "log_batch", broken)
            patch.setattr(MlflowClient, "create_run", broken)
            with tracker.trial(1, {"a": 2}) as lost:
                lost.log_metrics({"distance": 2.0})  # no run: counted, not raised
            assert lost.run_id is None
            tracker.log_metrics({"best_distance": 1.0}, step=1)
            assert tracker.lost_logs["store_down_at_end"] is True
            with pytest.raises(FileNotFoundError):  # bad arguments still raise
                tracker.log_artifact(tmp_path / "missing")
        with tracker.trial(2, {"a": 3}) as back:  # a file store is simply tried again
            back.log_metrics({"distance": 3.0})
    report = tracker.lost_logs
    assert report["trials"] == [1] and report["run_logs"] == 1 and report["outages"] == 1
    assert report["store_down_at_end"] is False
    runs = MlflowClient(store).search_runs([tracker.experiment_id])
    assert sorted(r.info.run_name for r in runs) == ["loop", "trial-0000", "trial-0002"]


def test_store_health_skips_calls_while_a_server_is_down() -> None:
    health = StoreHealth(f"http://127.0.0.1:{_free_port()}")
    assert health.available()
    health.lost(3, "log_metrics", ConnectionError("refused"))
    assert health.down and not health.available()  # no re-probe within REPROBE_S
    health.lost(4, "create_run")
    assert health.report()["trials"] == [3, 4] and health.report()["outages"] == 1
