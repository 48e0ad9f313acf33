"""Live dashboards: the tutorial's explorations as marimo apps, served in app mode on loopback.

Each app is a marimo notebook file in this folder that calls the public Python API only; open one in
an editor to read the story it tells. ``mlsysim-opt dashboard NAME`` serves one
(:func:`start`), ``mlsysim-opt dashboard --list`` lists them (:data:`APPS`).

marimo is an optional dependency: ``pip install "mlsysim_opt[dashboards]"``.
"""
from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
INSTALL_HINT = 'pip install "mlsysim_opt[dashboards]"'


@dataclass(frozen=True)
class Dashboard:
    name: str
    file: str
    summary: str

    @property
    def path(self) -> Path:
        return HERE / self.file


APPS: dict[str, Dashboard] = {d.name: d for d in (
    Dashboard("roofline", "roofline.py",
              "roofline explorer: model, hardware, precision, batch and efficiency; bottleneck, latency and memory fit"),
    Dashboard("serving", "serving.py",
              "serving and SLA: the cheapest fleet meeting TTFT/ITL limits at a QPS, its proof and alternatives"),
    Dashboard("capstone", "capstone.py",
              "capstone designer: a two-region design graded live, the proven optimum, the Pareto front, YAML export"),
    Dashboard("carbon", "carbon.py",
              "carbon and geography: one training fleet across grids, with energy, carbon and water"),
    Dashboard("planning", "planning.py",
              "global planning: capacity and routing across regions hour by hour, at least cost or carbon"),
)}
"""The apps by name, in the order the tutorial meets them."""


class DashboardError(RuntimeError):
    """A dashboard cannot be started (unknown name, marimo missing, the server did not come up)."""


def marimo_installed() -> bool:
    return importlib.util.find_spec("marimo") is not None


def app(name: str) -> Dashboard:
    """The dashboard called ``name``; an unknown name lists the known ones."""
    found = APPS.get(name) or APPS.get(name.lower().replace("-", "_"))
    if found is None:
        raise DashboardError(f"no dashboard {name!r}; choose from {', '.join(APPS)}")
    return found


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on at ``host`` now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def command(name: str | None, *, host: str = "127.0.0.1", port: int) -> list[str]:
    """The marimo command that serves dashboard ``name`` in app mode (read-only, no browser); with
    no name, a gallery of every dashboard."""
    target = HERE if name is None else app(name).path
    # marimo's own command line, behind a launcher that imports what its kernel threads would race on
    return [sys.executable, "-m", "mlsysim_opt.dashboards._serve", "run", str(target), "--host", host, "--port", str(port),
            "--headless", "--no-token", "--no-sandbox"]


@dataclass
class Server:
    """A running dashboard server (a marimo process in its own process group)."""

    name: str
    host: str
    port: int
    process: subprocess.Popen
    log: Path | None = None
    _closed: bool = field(default=False, repr=False)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    def wait_ready(self, timeout: float = 60.0) -> "Server":
        """Blocks until the server answers HTTP; raises DashboardError if it exits or times out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise DashboardError(f"the {self.name} dashboard server exited with status "
                                     f"{self.process.returncode}{self._log_tail()}")
            try:
                with urllib.request.urlopen(self.url + "health", timeout=2) as response:
                    if response.status == 200:
                        return self
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        raise DashboardError(f"the {self.name} dashboard server did not answer at {self.url} "
                             f"within {timeout:g} s{self._log_tail()}")

    def _log_tail(self) -> str:
        if self.log is None or not self.log.exists():
            return ""
        lines = self.log.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-15:]
        return ("; its output ends:\n" + "\n".join(lines)) if lines else ""

    def stop(self, timeout: float = 10.0) -> None:
        """Stops the server and everything it started (its process group)."""
        if self._closed:
            return
        self._closed = True
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.process.wait(timeout)

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()


def start(name: str | None, *, host: str = "127.0.0.1", port: int | None = None, log: str | Path | None = None,
          wait: bool = True, timeout: float = 60.0) -> Server:
    """Serves dashboard ``name`` (None: the gallery of all of them) with marimo in app mode at
    ``host`` (loopback by default) on ``port`` (a free one by default). The server's output goes to
    ``log``, else to this process's stderr (its stdout carries only what the caller prints). Returns
    once it answers HTTP unless ``wait`` is False. Stop it with :meth:`Server.stop`."""
    label = "gallery" if name is None else app(name).name
    if not marimo_installed():
        raise DashboardError(f"the dashboards need marimo, which is not installed: {INSTALL_HINT}")
    port = port or free_port(host)
    out = open(log, "wb") if log is not None else None
    try:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        process = subprocess.Popen(command(None if name is None else label, host=host, port=port),
                                   stdout=out if out is not None else sys.__stderr__.fileno(),
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=str(HERE), env=env,
                                   start_new_session=True)   # its own group: stop() ends it and its children
    finally:
        if out is not None:
            out.close()
    server = Server(label, host, port, process, Path(log) if log is not None else None)
    if wait:
        try:
            server.wait_ready(timeout)
        except BaseException:
            server.stop()
            raise
    return server


__all__ = ["APPS", "Dashboard", "DashboardError", "INSTALL_HINT", "Server", "app", "command", "free_port",
           "marimo_installed", "start"]
