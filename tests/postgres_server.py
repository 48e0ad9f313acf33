"""A throw-away PostgreSQL server on a free local port, for the tests that need a real one."""
from __future__ import annotations

import importlib.util
import os
import pathlib
import shutil
import socket
import subprocess
import tempfile


def binaries() -> tuple[str, str] | None:
    found = shutil.which("initdb"), shutil.which("pg_ctl")
    if all(found):
        return found
    for bin_dir in sorted(pathlib.Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (bin_dir / "initdb").exists() and (bin_dir / "pg_ctl").exists():
            return str(bin_dir / "initdb"), str(bin_dir / "pg_ctl")
    return None


def why_not() -> str | None:
    """Why a server cannot be started here (None: it can)."""
    if binaries() is None:
        return "PostgreSQL server binaries (initdb, pg_ctl) are not installed"
    if not any(importlib.util.find_spec(m) for m in ("psycopg2", "psycopg")):
        return "no PostgreSQL driver is installed (pip install psycopg2-binary)"
    if os.geteuid() == 0:                       # the server refuses to run as root
        if shutil.which("runuser") is None:
            return "running as root without runuser to start PostgreSQL as another user"
        try:
            import pwd
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no 'postgres' user to start the server as"
    return None


class PostgresServer:
    """``initdb`` into a temporary folder, ``pg_ctl start`` on 127.0.0.1; trust authentication for the
    user ``mlsysim``. ``url(database)`` gives a connection URL; ``create_database`` a fresh database."""

    def __init__(self):
        self.initdb, self.pg_ctl = binaries()
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.work = tempfile.mkdtemp(prefix="mlsysim-opt-pg-")
        if self.as_user:
            shutil.chown(self.work, user="postgres")
        self.data = os.path.join(self.work, "data")
        self.running = False

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://mlsysim@127.0.0.1:{self.port}/{database}"

    def start(self) -> "PostgresServer":
        if not os.path.exists(self.data):
            subprocess.run(self.as_user + [self.initdb, "-D", self.data, "-A", "trust", "-U", "mlsysim"], check=True,
                           capture_output=True, timeout=120)
        subprocess.run(self.as_user + [self.pg_ctl, "-D", self.data, "-l", os.path.join(self.work, "log"), "-w",
                                       "-t", "60", "-o", f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.work}",
                                       "start"], check=True, capture_output=True, timeout=120)
        self.running = True
        return self

    def stop(self) -> None:
        if self.running:
            subprocess.run(self.as_user + [self.pg_ctl, "-D", self.data, "-m", "fast", "-w", "stop"],
                           capture_output=True, timeout=60)
            self.running = False

    def create_database(self, name: str) -> str:
        """A new empty database; its URL."""
        from mlsysim_opt.service.store_postgres import driver_for
        driver, dsn = driver_for(self.url())
        conn = driver.connect(dsn)
        conn.autocommit = True
        cur = conn.cursor()
        cur.execute(f'CREATE DATABASE "{name}"')
        conn.close()
        return self.url(name)

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.work, ignore_errors=True)


def free_port_for_nothing() -> int:
    """A local port nothing listens on (for connection-refused tests)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
