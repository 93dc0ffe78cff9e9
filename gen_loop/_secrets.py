"""Keep credentials out of what gen_loop writes: MLflow params, config files, logs, consoles.

Database and tracking URLs may carry a password (``postgresql://user:pw@host/db``). Every
place that shows such a URL goes through :func:`mask_url` (one URL) or :func:`mask_text`
(free text, e.g. a log line or a YAML file). The Hydra callback :class:`MaskSecretsCallback`
rewrites the files Hydra itself saves (``.hydra/config.yaml``, ``hydra.yaml``,
``overrides.yaml``, ``multirun.yaml``), and :func:`install_log_filter` masks log records.

Keeping the password out of the config altogether is better still: write it as
``${oc.env:GEN_LOOP_DB_PASSWORD}`` inside the URL; Hydra saves the interpolation, not its value.
"""

from __future__ import annotations

import logging
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from omegaconf import DictConfig

__all__ = [
    "MASK",
    "MaskSecretsCallback",
    "install_log_filter",
    "mask_console",
    "mask_text",
    "mask_url",
]

MASK = "***"

# scheme://user:password@ in free text. The password runs to the last "@" of the
# whitespace-free token, so an unescaped "@" or ":" inside it is masked too (over-masking a
# host is harmless; leaking part of a password is not).
_USERINFO = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/@'\"]*:)(?P<pw>\S*)@")
# A password given as an OmegaConf interpolation is no secret (and says where it comes from).
_INTERPOLATION = re.compile(r"\$\{[^{}]*\}")
# password=... in a query string or a libpq key/value string.
_QUERY_PASSWORD = re.compile(r"(?P<head>\b(?:password|passwd|pwd)=)[^&\s'\"]+", re.IGNORECASE)


def mask_url(url: str) -> str:
    """Return ``url`` with its password replaced by ``***``.

    ``postgresql://user:pw@host:5432/db`` becomes ``postgresql://user:***@host:5432/db``;
    a ``password=`` query parameter is masked too. URLs without a password, or whose password
    is an unresolved interpolation such as ``${oc.env:GEN_LOOP_DB_PASSWORD}``, come back as
    they were.

    Args:
        url: A database, storage or tracking URL.

    Returns:
        The URL with every password masked.
    """
    return mask_text(url)


def mask_text(text: str) -> str:
    """Mask the password of every URL (and ``password=`` pair) inside ``text``.

    Args:
        text: Any text: a log message, a YAML document, a command's output.

    Returns:
        ``text`` with each ``scheme://user:password@`` written ``scheme://user:***@`` and
        each ``password=value`` written ``password=***``.
    """
    if "://" not in text and "=" not in text:
        return text
    text = _USERINFO.sub(_mask_userinfo, text)
    return _QUERY_PASSWORD.sub(lambda m: f"{m.group('head')}{MASK}", text)


def _mask_userinfo(match: re.Match[str]) -> str:
    if _INTERPOLATION.fullmatch(match.group("pw")):
        return match.group(0)
    return f"{match.group('head')}{MASK}@"


class _MaskFilter(logging.Filter):
    """Rewrites each record's message with :func:`mask_text` (arguments merged first)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_text(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


_FILTER = _MaskFilter()


def install_log_filter(logger: logging.Logger | None = None) -> None:
    """Mask URL passwords in every record that reaches the handlers of ``logger``.

    A filter on a handler sees records propagated from every logger below it (a filter on the
    logger would not), so it goes on the handlers: Hydra's console and ``<job>.log`` file.

    Args:
        logger: The logger whose handlers get the filter; the root logger when not given.
    """
    for handler in (logger or logging.getLogger()).handlers:
        if _FILTER not in handler.filters:
            handler.addFilter(_FILTER)


class _MaskingStream:
    """A text stream that masks URL passwords in what is written, then passes it on."""

    def __init__(self, inner: TextIO) -> None:
        self._inner = inner

    def write(self, text: str) -> int:
        self._inner.write(mask_text(text))
        return len(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def mask_console() -> None:
    """Mask URL passwords in everything later written to ``sys.stdout`` and ``sys.stderr``.

    Catches what no log filter sees: Hydra's own "Error executing job with overrides: [...]"
    line (which quotes the command line), tracebacks and third-party prints.
    """
    if not isinstance(sys.stdout, _MaskingStream):
        sys.stdout = _MaskingStream(sys.stdout)
    if not isinstance(sys.stderr, _MaskingStream):
        sys.stderr = _MaskingStream(sys.stderr)


def mask_file(path: Path) -> bool:
    """Rewrite a text file with its URL passwords masked.

    Args:
        path: The file; a missing file is left alone.

    Returns:
        True when the file held a password and was rewritten.
    """
    if not path.is_file():
        return False
    text = path.read_text()
    masked = mask_text(text)
    if masked == text:
        return False
    path.write_text(masked)
    return True


try:  # hydra is a dependency; the guard keeps this module importable on its own
    from hydra.experimental.callback import Callback as _HydraCallback
except ImportError:  # pragma: no cover
    _HydraCallback = object  # type: ignore[assignment,misc]


class MaskSecretsCallback(_HydraCallback):
    """Hydra callback: mask URL passwords in the config files Hydra saved for the job.

    Hydra writes ``<output_dir>/.hydra/{config,hydra,overrides}.yaml`` (and ``multirun.yaml``
    in the sweep folder) just before ``on_job_start``; this rewrites them in place, puts the
    log filter on the handlers Hydra configured and masks the console streams. Wired in
    ``conf/run.yaml`` under ``hydra.callbacks``.
    """

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Mask the saved files of the starting job, its logs and its console output."""
        from hydra.core.hydra_config import HydraConfig

        install_log_filter()
        mask_console()
        hydra_cfg = HydraConfig.get()
        output_dir = Path(hydra_cfg.runtime.output_dir)
        if hydra_cfg.output_subdir is not None:
            for name in ("config.yaml", "hydra.yaml", "overrides.yaml"):
                mask_file(output_dir / str(hydra_cfg.output_subdir) / name)
        if hydra_cfg.sweep.dir:
            mask_file(Path(str(hydra_cfg.sweep.dir)) / "multirun.yaml")
