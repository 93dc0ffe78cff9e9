"""A throw-away PostgreSQL server for the tests: initdb into a temporary folder, loopback only."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path


def find_bin_dir() -> Path | None:
    """The folder of ``initdb`` and ``pg_ctl``, or None when PostgreSQL is not installed."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(versions[-1]).parent if versions else None


@dataclass
class PgServer:
    """A running server; ``url`` is an SQLAlchemy URL of its ``postgres`` database."""

    bin_dir: Path
    base: Path
    port: int
    user: str | None  # the OS user it runs as when the tests run as root

    @property
    def url(self) -> str:
        return f"postgresql://gen_loop@127.0.0.1:{self.port}/postgres"

    def _cmd(self, *args: str) -> list[str]:
        return ["runuser", "-u", self.user, "--", *args] if self.user else list(args)

    def start(self) -> None:
        data, log = self.base / "data", self.base / "server.log"
        opts = f"-k {self.base} -h 127.0.0.1 -p {self.port} -c fsync=off"
        for args in (
            [str(self.bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "gen_loop"],
            [
                str(self.bin_dir / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(log),
                "-o",
                opts,
                "-w",
                "start",
            ],
        ):
            proc = subprocess.run(self._cmd(*args), capture_output=True, text=True, timeout=120)
            if proc.returncode != 0:
                tail = log.read_text()[-2000:] if log.exists() else ""
                raise RuntimeError(f"{args[0]} failed: {proc.stderr[-2000:]}{tail}")

    def stop(self) -> None:
        pg_ctl = str(self.bin_dir / "pg_ctl")
        subprocess.run(
            self._cmd(pg_ctl, "-D", str(self.base / "data"), "-m", "fast", "-w", "stop"),
            capture_output=True,
            timeout=120,
        )
        shutil.rmtree(self.base, ignore_errors=True)


def start_server() -> PgServer:
    """Start a server on a free loopback port (as user ``postgres`` when run as root).

    Raises:
        FileNotFoundError: no PostgreSQL binaries on this machine.
    """
    bin_dir = find_bin_dir()
    if bin_dir is None:
        raise FileNotFoundError("no initdb/pg_ctl: apt-get install -y postgresql")
    user = None
    base = Path(tempfile.mkdtemp(prefix="gen_loop_pg_"))
    if os.geteuid() == 0:  # postgres refuses to run as root
        user = "postgres"
        entry = pwd.getpwnam(user)
        os.chown(base, entry.pw_uid, entry.pw_gid)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = PgServer(bin_dir, base, port, user)
    server.start()
    return server
