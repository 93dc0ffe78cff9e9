"""External commands (``generator=command``, ``finetune=command``): the argument-list check and
killing a command's whole process group."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Sequence

from gen_loop.errors import ConfigError


def check_argv(command: Sequence[str], key: str) -> None:
    """Raise a ConfigError naming ``key`` unless ``command`` is a non-empty list of strings."""
    if isinstance(command, str) or not command or not all(isinstance(a, str) for a in command):
        raise ConfigError(
            key, "must be a non-empty list of strings (an argument list; no shell is used)"
        )


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process group of ``proc`` (started with ``start_new_session=True``), so that
    its children die with it; a group already gone is fine."""
    with contextlib.suppress(ProcessLookupError):
        if hasattr(os, "killpg"):
            os.killpg(proc.pid, signal.SIGKILL)
        else:  # pragma: no cover - Windows has no process groups here
            proc.kill()
