"""Talking to an MLflow tracking server: a bounded health probe and the outage bookkeeping.

Policy when the server drops mid-study: **the Optuna study is the source of truth; lost trial
logs are counted, not re-synced.** A logging call that fails marks the store down; later calls
are skipped (and counted) without touching the network until a ``/health`` probe answers
again, at most every :data:`REPROBE_S` seconds, after which logging resumes. The counts end
up in ``summary.json`` under ``mlflow.lost_logs``.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import urllib.error
import urllib.request
from urllib.parse import urlsplit, urlunsplit

from gen_loop._secrets import mask_url
from gen_loop.errors import GenLoopError

__all__ = [
    "REPROBE_S",
    "StoreHealth",
    "check_server",
    "configure_http_client",
    "is_remote",
    "probe",
]

_logger = logging.getLogger(__name__)

PROBE_TIMEOUT_S = 3.0
REPROBE_S = 10.0

# MLflow retries a failed HTTP request 7 times with a doubling back-off (minutes in all);
# a run should notice a dead server in seconds. Values the user set are kept.
_HTTP_ENV_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
    # Two "View run at <url>" lines per trial on stdout, credentials of the URL included.
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
}


def is_remote(uri: str) -> bool:
    """True for an ``http(s)://`` tracking server URI."""
    return uri.lower().startswith(("http://", "https://"))


def configure_http_client(uri: str) -> None:
    """Lower MLflow's HTTP retry budget and silence its run URLs (environment).

    Values the user set are kept, except that run URLs are never printed when ``uri`` holds a
    password.

    Args:
        uri: The tracking server URI.
    """
    for key, value in _HTTP_ENV_DEFAULTS.items():
        os.environ.setdefault(key, value)
    if mask_url(uri) != uri:
        os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"


def _health_url(uri: str) -> str:
    parts = urlsplit(uri)
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host  # IPv6 literal
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/") + "/health", "", ""))


def probe(uri: str, timeout_s: float = PROBE_TIMEOUT_S) -> str | None:
    """Check that the tracking server at ``uri`` answers, within ``timeout_s``.

    Any HTTP answer below 500 counts as reachable (an auth error is MLflow's to report).

    Args:
        uri: An ``http(s)://`` tracking URI (credentials in it are not sent to ``/health``).
        timeout_s: Connect and read timeout.

    Returns:
        None when the server answers, else why it is unreachable.
    """
    url = _health_url(uri)
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            response.read(64)
    except urllib.error.HTTPError as err:
        return None if err.code < 500 else f"GET {url} answered HTTP {err.code}"
    except (OSError, ValueError) as err:  # URLError, refused, timeout, bad port
        reason = getattr(err, "reason", err)
        return f"GET {url} failed: {reason}"
    return None


def check_server(uri: str) -> None:
    """Fail early, naming ``tracking.uri``, when the MLflow server at ``uri`` does not answer.

    Only ``http(s)://`` URIs are probed (``GET /health``, a few seconds at most); file and
    database stores pass.

    Args:
        uri: The tracking URI.

    Raises:
        GenLoopError: The server is unreachable.
    """
    if not is_remote(uri):
        return
    problem = probe(uri)
    if problem is not None:
        raise GenLoopError(
            f"config key 'tracking.uri': the MLflow tracking server {mask_url(uri)} is "
            f"unreachable ({mask_url(problem)}). Start it (e.g. `mlflow server --host "
            "127.0.0.1 --port 5000`), fix tracking.uri, or leave tracking.uri unset for a "
            "local SQLite store."
        )


class StoreHealth:
    """Whether the tracking store answers, and what was lost while it did not.

    Shared by a :class:`~gen_loop.tracking.Tracker` and its trial runs.

    Args:
        uri: The tracking URI (only ``http(s)`` stores are re-probed; others are retried).
    """

    def __init__(self, uri: str) -> None:
        self._uri = uri
        # The tracker's thread (parent run) and its background writer (trial runs) share it.
        self._lock = threading.Lock()
        self._down_since: float | None = None
        self._last_probe = 0.0
        self.lost_trials: set[int] = set()
        self.lost_run_logs = 0
        self.outages = 0

    def __getstate__(self) -> dict[str, object]:  # e.g. in a Hydra callback sent to a job
        state = self.__dict__.copy()
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    @property
    def down(self) -> bool:
        """True while the store is considered unreachable."""
        return self._down_since is not None

    def available(self) -> bool:
        """True when a logging call should be attempted (re-probes a down server)."""
        if self._down_since is None:
            return True
        if not is_remote(self._uri):
            return True  # a file store: just try again
        now = time.monotonic()
        if now - self._last_probe < REPROBE_S:
            return False
        self._last_probe = now
        if probe(self._uri) is not None:
            return False
        _logger.warning(
            "MLflow tracking server %s is back after %.0f s; logging resumes.",
            mask_url(self._uri),
            now - self._down_since,
        )
        self._down_since = None
        return True

    def recovered(self) -> None:
        """Record that a logging call went through (ends an outage of a file store)."""
        with self._lock:
            self._down_since = None

    def lost(self, trial: int | None, what: str, error: BaseException | None = None) -> None:
        """Record a logging call that did not reach the store.

        Args:
            trial: The trial number the call belonged to; None for the parent run.
            what: The call, for the warning.
            error: The failure; None when the call was skipped because the store is down.
        """
        with self._lock:
            if trial is None:
                self.lost_run_logs += 1
            else:
                self.lost_trials.add(trial)
            if error is None or self._down_since is not None:
                return
            self._down_since = self._last_probe = time.monotonic()
            self.outages += 1
        _logger.warning(
            "MLflow logging failed (%s%s): %s. The run goes on; the Optuna study keeps "
            "every trial, and logs lost while %s is unreachable are counted in "
            "summary.json (mlflow.lost_logs).",
            what,
            "" if trial is None else f", trial {trial}",
            mask_url(f"{type(error).__name__}: {error}")[:500],
            mask_url(self._uri),
        )

    def report(self) -> dict[str, object]:
        """The losses, for ``summary.json``."""
        with self._lock:
            return {
                "trials": sorted(self.lost_trials),
                "n_trials": len(self.lost_trials),
                "run_logs": self.lost_run_logs,
                "outages": self.outages,
                "store_down_at_end": self.down,
            }
