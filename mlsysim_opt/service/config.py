"""Settings of one server: where jobs are kept, how many worker processes, and the limits that keep
one request from starving the others."""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

TEST_JOBS_ENV = "MLSYSIM_OPT_TEST_JOBS"
"""Set to 1 to enable the test-only job kinds ("sleep", "crash"); ``--enable-test-jobs`` does the same."""


def default_workers() -> int:
    """One worker per core, leaving one core to the HTTP process; at least one, at most four."""
    return max(1, min(4, (os.cpu_count() or 2) - 1))


def default_db_path() -> Path:
    """``<user data dir>/mlsysim_opt/jobs.sqlite3`` (XDG on Linux, Application Support on macOS,
    LOCALAPPDATA on Windows); ``./mlsysim_opt_jobs.sqlite3`` when no such directory can be made."""
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    folder = base / "mlsysim_opt"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        return folder / "jobs.sqlite3"
    except OSError:
        return Path("mlsysim_opt_jobs.sqlite3")


@dataclass(frozen=True)
class ServiceConfig:
    """Everything ``mlsysim-opt serve`` can be told on its command line."""

    host: str = "127.0.0.1"
    port: int = 8000
    db: str | None = None
    """SQLite file path or ``postgresql://user:password@host:port/database``; default: default_db_path()."""
    workers: int = 0
    """Worker processes for jobs; 0 means default_workers()."""
    job_timeout: float = 300.0
    """Wall-clock limit of one job, seconds; a job may ask for less, never more."""
    max_grid: int = 100_000
    """Most points one sweep (synchronous or job) may evaluate."""
    max_queue: int = 1_000
    """Most jobs waiting for a worker; further submissions get 503 with Retry-After."""
    max_body_bytes: int = 1_048_576
    """Largest request body accepted."""
    max_custom_records: int = 1_000
    """Most hardware/model records clients may add to one server."""
    max_attempts: int = 2
    """A job whose worker process dies is run at most this many times (retried once by default)."""
    dask: str | None = None
    """Scheduler address of a running Dask cluster (``tcp://host:8786``) to run jobs on; None starts
    a local cluster of ``workers`` processes."""
    worker_memory: str = "2GiB"
    """Memory limit of each local worker process; its nanny restarts a worker that goes past it."""
    enable_test_jobs: bool = False
    """Enable the test-only job kinds (sleep, crash)."""
    http: str = "auto"
    """HTTP/1.1 parser: ``httptools`` (C, installed with the package), ``h11`` (pure Python) or
    ``auto`` (httptools when importable)."""
    loop: str = "auto"
    """Event loop: ``uvloop`` (installed with the package except on Windows), ``asyncio`` or ``auto``."""
    allowed_hosts: tuple[str, ...] = ()
    """``Host`` names answered besides localhost, 127.0.0.1, ::1 and ``host``; ``*`` answers any."""
    cors_origins: tuple[str, ...] = ()
    """Browser origins allowed to call the API (CORS); none by default."""
    allow_unauthenticated: bool = False
    """Serve beyond loopback without API keys (every request then has every scope)."""
    require_keys: bool = False
    """Refuse requests without a valid API key even while no key exists."""

    def resolved(self) -> "ServiceConfig":
        """The same settings with defaults filled in and the test-jobs environment switch applied."""
        from dataclasses import replace
        return replace(
            self,
            db=self.db or str(default_db_path()),
            workers=self.workers or default_workers(),
            enable_test_jobs=self.enable_test_jobs or os.environ.get(TEST_JOBS_ENV, "") == "1",
        )
