"""Where a study lives, and a lock that all workers of one study share.

One study can be shared by several worker processes (on one machine or many). Optuna's storage
makes ``ask``/``tell`` safe, but two decisions need mutual exclusion on top of it: "is there
trial budget left? then ask" and "who finalises?". ``StudyMutex`` gives it through the same
place the study lives in: a PostgreSQL advisory lock for a database server, a file lock next
to a SQLite file or a journal file. Both are released by the operating system or the server
when the holder dies, so a ``kill -9`` never leaves the study locked.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import threading
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import optuna
from optuna.trial import FrozenTrial

from gen_loop.errors import ConfigError

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

log = logging.getLogger(__name__)

JOURNAL_PREFIX = "journal:"


def database_url(url: str) -> str:
    """``url`` with a PostgreSQL driver that is installed.

    SQLAlchemy 2.1 reads a bare ``postgresql://`` as psycopg 3; gen_loop depends on psycopg2,
    so a bare URL gets ``+psycopg2`` unless psycopg 3 is there.
    """
    for bare in ("postgresql://", "postgres://"):
        if url.startswith(bare):
            try:
                import psycopg  # noqa: F401
            except ImportError:
                return "postgresql+psycopg2://" + url[len(bare) :]
            return "postgresql://" + url[len(bare) :]
    return url


def make_storage(
    url: str, heartbeat_interval_s: int | None, grace_period_s: int | None
) -> optuna.storages.BaseStorage:
    """The Optuna storage for ``url``.

    ``journal:<path>`` is a JournalStorage on a shared file (no database server needed);
    anything else is an SQLAlchemy URL for RDBStorage. RDB storages get Optuna's heartbeat:
    a worker records a heartbeat while it runs a trial, and a trial whose heartbeat is older
    than ``grace_period_s`` (its worker died) is failed and re-enqueued with the same
    parameters by any other worker.
    """
    if url.startswith(JOURNAL_PREFIX):
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        return JournalStorage(JournalFileBackend(url[len(JOURNAL_PREFIX) :]))
    from sqlalchemy.exc import SQLAlchemyError

    try:
        return optuna.storages.RDBStorage(
            database_url(url),
            heartbeat_interval=heartbeat_interval_s,
            grace_period=grace_period_s,
            heartbeat_stale_trial_callback=retry_callback(),
        )
    except SQLAlchemyError as err:  # a server that is down or refuses the credentials
        raise storage_error(url, err) from err


def storage_error(url: str, err: Exception) -> ConfigError:
    """A one-line error naming ``search.storage``, the masked URL and the driver's reason."""
    from gen_loop._secrets import mask_text, mask_url

    reason = mask_text(str(getattr(err, "orig", None) or err)).strip().splitlines()
    return ConfigError(
        "search.storage",
        f"cannot open {mask_url(url)}: {reason[0] if reason else type(err).__name__}",
    )


def retry_callback() -> Callable[[optuna.Study, FrozenTrial], None]:
    """Optuna's callback that re-enqueues a failed trial with the same parameters."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        new = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None)  # optuna>=4.9
        return (new or optuna.storages.RetryFailedTrialCallback)()


def retried_trial_numbers(trial: FrozenTrial) -> list[int]:
    """The failed trials that ``trial`` retries (the attribute both callbacks write)."""
    return list(trial.system_attrs.get("retry_history", []))


class StudyMutex:
    """A lock shared by every worker of the study ``study_name`` in the storage at ``url``.

    Args:
        url: the storage URL (``postgresql://...``, ``sqlite:///...``, ``journal:<path>``).
        study_name: the study; other studies in the same storage are not blocked.
    """

    def __init__(self, url: str, study_name: str) -> None:
        self.url = url
        self._key = int.from_bytes(hashlib.sha1(study_name.encode()).digest()[:8], "big") >> 1
        self._engine: Engine | None = None
        self._path: Path | None = None
        self._local = threading.Lock()
        if url.startswith(("postgresql", "postgres")):
            import sqlalchemy
            from sqlalchemy.pool import NullPool

            self._engine = sqlalchemy.create_engine(database_url(url), poolclass=NullPool)
        elif url.startswith(JOURNAL_PREFIX):
            self._path = Path(url[len(JOURNAL_PREFIX) :])
        elif url.startswith("sqlite:///") and len(url) > len("sqlite:///"):
            self._path = Path(url[len("sqlite:///") :])
        else:
            log.warning(
                "search.storage %s: no cross-process lock for this kind of storage; "
                "run one worker per study",
                url.split("://")[0],
            )
        if self._path is not None:
            self._path = self._path.with_name(f"{self._path.name}.{self._key:x}.lock")

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        """Hold the lock for the ``with`` block (waits for other workers)."""
        with self._local:
            if self._engine is not None:
                from sqlalchemy import text
                from sqlalchemy.exc import SQLAlchemyError

                try:
                    conn = self._engine.connect()
                except SQLAlchemyError as err:
                    raise storage_error(self.url, err) from err
                with conn:
                    # Session-level advisory lock: the server drops it if the worker dies.
                    conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": self._key})
                    try:
                        yield
                    finally:
                        conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self._key})
            elif self._path is not None:
                self._path.parent.mkdir(parents=True, exist_ok=True)
                with self._path.open("a") as handle:
                    fcntl.flock(handle, fcntl.LOCK_EX)  # released by the kernel on exit
                    try:
                        yield
                    finally:
                        fcntl.flock(handle, fcntl.LOCK_UN)
            else:
                yield
