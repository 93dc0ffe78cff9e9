"""A local SQLite tracking store in write-ahead-log mode."""

from __future__ import annotations

import logging

_logger = logging.getLogger(__name__)


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
    if not uri.startswith("sqlite:///"):
        return False
    import sqlite3
    from contextlib import closing

    path = uri[len("sqlite:///") :].split("?", 1)[0]
    try:
        with closing(sqlite3.connect(path, timeout=10)) as con:
            mode = con.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    except sqlite3.Error as err:  # e.g. locked by another process: keep its mode
        _logger.info("SQLite store %s kept its journal mode: %s", path, err)
        return False
    return str(mode).lower() == "wal"
