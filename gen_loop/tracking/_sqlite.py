"""A local SQLite tracking store: write-ahead-log mode, a check that it can be written, and
MLflow's logged tracebacks of its database errors kept off the console."""

from __future__ import annotations

import logging
import sqlite3
from contextlib import closing
from pathlib import Path

from gen_loop.errors import GenLoopError

_logger = logging.getLogger(__name__)


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI; None for any other store."""
    if not uri.startswith("sqlite:///"):
        return None
    return Path(uri[len("sqlite:///") :].split("?", 1)[0])


def check_writable(uri: str, timeout_s: float = 5.0) -> None:
    """An existing local SQLite store can take a write now: not read-only, not locked by
    another process for more than ``timeout_s``. Any other store, or a file MLflow has yet to
    create, passes. The probe writes nothing: its transaction is rolled back.

    Raises:
        GenLoopError: naming ``tracking.uri``, the file and SQLite's reason, in one line.
    """
    path = sqlite_path(uri)
    if path is None or not path.is_file():
        return
    try:
        with closing(sqlite3.connect(path, timeout=timeout_s, isolation_level=None)) as con:
            con.execute("BEGIN IMMEDIATE")  # waits up to timeout_s for another writer
            con.execute("CREATE TABLE _gen_loop_write_probe (x)")  # fails on a read-only file
            con.execute("ROLLBACK")
    except sqlite3.Error as err:
        raise GenLoopError(
            f"config key 'tracking.uri': the MLflow store {path} cannot be written ({err}); "
            "make it writable, stop the process that holds it, or give another tracking.uri"
        ) from None


class _QuietDatabaseErrors(logging.Filter):
    """Drops MLflow's ``SQLAlchemy database error`` records: MLflow logs the traceback and
    then raises the error, which gen_loop reports in one line (at start) or counts (later)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("SQLAlchemy database error")


_QUIET = _QuietDatabaseErrors()


def quiet_database_errors() -> None:
    """Install the filter on MLflow's database logger; safe to call more than once."""
    logging.getLogger("mlflow.store.db.utils").addFilter(_QUIET)


def use_wal(uri: str) -> bool:
    """Put a local SQLite tracking store in write-ahead-log mode; True when it is.

    A trial makes about five small MLflow writes; in SQLite's default rollback-journal mode
    each commit costs several fsyncs, in WAL mode one (as durable: ``synchronous`` is left as
    it is), which took about 2.3x less time a write on this project's machines
    (experiments/throughput/RESULTS.md). The mode is stored in the database file, so
    ``mlflow ui`` and other workers use it too; it needs a local disk (as SQLite does for
    several writers anyway). Any other store, or a database that is busy, is left alone.

    Args:
        uri: The tracking URI.
    """
    path = sqlite_path(uri)
    if path is None:
        return False
    try:
        with closing(sqlite3.connect(path, timeout=10)) as con:
            mode = con.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    except sqlite3.Error as err:  # e.g. locked by another process: keep its mode
        _logger.info("SQLite store %s kept its journal mode: %s", path, err)
        return False
    return str(mode).lower() == "wal"
