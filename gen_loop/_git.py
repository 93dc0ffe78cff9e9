"""The git commit of the code that runs (recorded with each run)."""

from __future__ import annotations

import subprocess
from pathlib import Path


def git_commit(path: Path) -> str | None:
    """Return the commit checked out in the git repository containing ``path``.

    Args:
        path: A file or directory inside the repository.

    Returns:
        The ``git rev-parse HEAD`` hash, or None when ``path`` is not in a git repository with a
        commit, or git is missing or does not answer within 5 s.
    """
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    try:
        done = subprocess.run(
            ["git", "-C", str(folder), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    commit = done.stdout.strip()
    return commit if done.returncode == 0 and commit else None
