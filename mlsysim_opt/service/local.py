"""A real server on a free localhost port, in a child process: for examples, benchmarks and tests.

    with LocalServer(db="jobs.sqlite3") as server:
        httpx.post(server.url + "/solve", json={...})
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalServer:
    """``mlsysim-opt serve`` on 127.0.0.1 and a port nobody uses, stopped on exit."""

    def __init__(self, db: str | Path | None = None, *, workers: int = 2, job_timeout: float = 60.0,
                 max_grid: int = 100_000, max_queue: int = 1_000, test_jobs: bool = False, port: int | None = None,
                 extra_args: tuple[str, ...] = ()):
        self._tmp = None
        if db is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="mlsysim-opt-")
            db = Path(self._tmp.name) / "jobs.sqlite3"
        self.db = str(db)
        self.workers, self.job_timeout, self.max_grid, self.max_queue = workers, job_timeout, max_grid, max_queue
        self.test_jobs = test_jobs
        self.extra_args = tuple(extra_args)
        """More ``mlsysim-opt serve`` options, e.g. ("--http", "h11")."""
        self.port = port
        self.process: subprocess.Popen | None = None
        self.log_path = Path(tempfile.mkstemp(prefix="mlsysim-opt-server-", suffix=".log")[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 180.0, wait_workers: bool = True) -> "LocalServer":
        import httpx
        for attempt in range(3):
            self.port = self.port if (self.port and attempt == 0) else free_port()
            args = [sys.executable, "-m", "mlsysim_opt.cli", "serve", "--host", "127.0.0.1", "--port", str(self.port),
                    "--db", self.db, "--workers", str(self.workers), "--job-timeout", str(self.job_timeout),
                    "--max-grid", str(self.max_grid), "--max-queue", str(self.max_queue)]
            if self.test_jobs:
                args.append("--enable-test-jobs")
            args += self.extra_args
            log = open(self.log_path, "ab")
            self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env={**os.environ})
            log.close()
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    break  # did not start (e.g. the port was taken meanwhile): try another port
                try:
                    health = httpx.get(self.url + "/health", timeout=2.0).json()
                    # _listening: another process may take the port between free_port() and our bind
                    if self._listening() and (not wait_workers or health["workers"].get("ready", 0) >= self.workers):
                        return self
                except (httpx.HTTPError, ValueError, KeyError):
                    pass
                time.sleep(0.1)
            else:
                self.stop(kill=True)
                raise RuntimeError(f"the server did not become ready in {timeout} s:\n{self.log()}")
        raise RuntimeError(f"the server did not start:\n{self.log()}")

    def _listening(self) -> bool:
        """Whether the process this object started is the one listening on the port: a free port can be
        taken by another process (another test worker's server) before ours binds it, and that
        server would answer the health check."""
        import psutil
        try:
            sockets = psutil.Process(self.process.pid).net_connections(kind="tcp")
        except psutil.Error:
            return False
        return any(c.status == psutil.CONN_LISTEN and c.laddr.port == self.port for c in sockets)

    def stop(self, kill: bool = False, timeout: float = 20.0) -> int | None:
        """SIGTERM (graceful: running jobs are re-queued) or SIGKILL (a crash)."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else None
        self.process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(timeout)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def __enter__(self) -> "LocalServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
        if self._tmp is not None:
            self._tmp.cleanup()
        try:
            self.log_path.unlink()
        except OSError:
            pass
