"""Worker processes and the supervisor thread that feeds them.

Each worker is a separate process (forked from a warm fork server where the platform has one, so a
replacement starts in milliseconds; spawned otherwise) talking to the server over its own pipe.
One supervisor thread in the server:

* hands the oldest queued job to each idle worker (the store's ``claim``);
* records progress and results the workers send back;
* kills a worker whose job passed its time limit (the job fails with the limit in its error) or
  was cancelled, and starts a replacement;
* notices a worker that died (killed, out of memory, a crash in native code): its job is re-queued
  while it has attempts left (``max_attempts``, default 2: retried once), then failed with the
  exit code or signal in its error. No accepted job is ever lost;
* renews this server's heartbeat in the store every few seconds and recovers the jobs of other
  servers sharing the database that have gone (see :mod:`.store`).

Workers never touch the database; they receive ``(job id, kind, params JSON)`` and send back
``("progress", id, f)``, ``("done", id, result JSON)`` or ``("error", id, error dict)``.
"""
from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Optional

from .store import HEARTBEAT_S, JobStore, StoreUnavailable

log = logging.getLogger("mlsysim_opt.service")

READY, DONE, ERROR, PROGRESS = "ready", "done", "error", "progress"
POLL_S = 0.5
"""How often a request waiting for a job looks at the store (a job another server runs sends no
notification here)."""


# ------------------------------------------------------------------------------------------------
# The worker side


def worker_main(conn: Connection, test_jobs: bool) -> None:
    """Loop of one worker process: receive a job, run it, send the answer."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group; the server decides
    _exit_with_parent()
    from . import jobs
    from ..engine import roofline_function
    roofline_function()  # compile before the first job (a no-op when forked from a warm fork server)
    conn.send((READY, os.getpid()))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        job_id, kind, params = message
        last = [0.0]

        def progress(fraction: float, job_id=job_id) -> None:
            now = time.monotonic()
            if now - last[0] >= 0.1:
                last[0] = now
                conn.send((PROGRESS, job_id, float(fraction)))

        try:
            text = jobs.run(kind, params, progress, test_jobs)
        except Exception as exc:  # every failure goes back to the server as data
            from .errors import error_payload
            conn.send((ERROR, job_id, error_payload(exc)))
        else:
            conn.send((DONE, job_id, text))


def _exit_with_parent() -> None:
    """A worker whose server is gone (killed with SIGKILL, say) exits within a second instead of
    finishing a job nobody will collect."""
    parent = os.getppid()

    def watch():
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                os._exit(0)

    threading.Thread(target=watch, daemon=True, name="parent-watch").start()


# ------------------------------------------------------------------------------------------------
# The server side


@dataclass
class _Worker:
    process: multiprocessing.process.BaseProcess
    conn: Connection
    ready: bool = False
    job_id: Optional[str] = None
    deadline: float = 0.0
    kill_reason: Optional[str] = None
    pid: int = 0
    started: float = field(default_factory=time.monotonic)


def _context():
    """Fork server where available (warm, fast replacements), spawn elsewhere; never plain fork,
    which would copy the server's threads and locks."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["mlsysim_opt.service._preload"])
        return ctx
    return multiprocessing.get_context("spawn")


def prestart() -> None:
    """Start the fork server now, so it imports and warms up while the HTTP process does the same
    (two cores instead of one, a few seconds off every server start)."""
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # parallelism comes from processes
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if "forkserver" in multiprocessing.get_all_start_methods():
        from multiprocessing import forkserver
        _context()
        forkserver.ensure_running()


class WorkerPool:
    """``size`` worker processes fed from ``store`` by one supervisor thread."""

    def __init__(self, store: JobStore, size: int, *, test_jobs: bool = False, max_attempts: int = 2,
                 on_heartbeat=None):
        self.store, self.size, self.test_jobs, self.max_attempts = store, size, test_jobs, max_attempts
        self.on_heartbeat = on_heartbeat
        """Called with each heartbeat, in the supervisor thread (the server re-reads shared records)."""
        self._ctx = _context()
        self._workers: list[_Worker] = []
        self._wake_r, self._wake_w = multiprocessing.Pipe(duplex=False)
        self._wake_lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._cancelled: set[str] = set()
        self._waiters: dict[str, list[tuple[asyncio.AbstractEventLoop, asyncio.Future]]] = {}
        self._waiters_lock = threading.Lock()
        self._start_failures = 0
        self._next_start = 0.0
        self.recovered: list[str] = []
        self.restarts = 0
        self._next_beat = 0.0

    # -- life cycle ------------------------------------------------------------------------------
    def start(self) -> None:
        self.store.register()
        self.recovered = self.store.recover(self.max_attempts)
        self._next_beat = time.monotonic() + HEARTBEAT_S
        prestart()
        self._thread = threading.Thread(target=self._loop, name="job-supervisor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the workers; jobs they were running go back to the queue for the next start."""
        self._stopping.set()
        self.wake()
        if self._thread is not None:
            self._thread.join(timeout=10)
        for w in self._workers:
            if w.job_id is not None:
                self.store.requeue(w.job_id, "re-queued: the server stopped while it ran", refund_attempt=True)
                self._notify(w.job_id)
            self._kill(w)
        self._workers.clear()
        self.store.unregister()

    # -- requests from the HTTP side ---------------------------------------------------------------
    def wake(self) -> None:
        with self._wake_lock:
            try:
                self._wake_w.send_bytes(b"x")
            except OSError:
                pass

    def cancel(self, job_id: str, was_running: bool) -> None:
        """Called after the store marked the job cancelled: stop its worker if one runs it."""
        if was_running:
            self._cancelled.add(job_id)
        self._notify(job_id)
        self.wake()

    def status(self) -> dict[str, int]:
        alive = sum(1 for w in self._workers if w.process.is_alive())
        return {"size": self.size, "alive": alive, "ready": sum(1 for w in self._workers if w.ready),
                "busy": sum(1 for w in self._workers if w.job_id is not None), "restarts": self.restarts}

    async def wait_for(self, job_id: str, timeout: float) -> None:
        """Return when the job reaches a final state (or after ``timeout`` seconds)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            future = loop.create_future()
            with self._waiters_lock:
                self._waiters.setdefault(job_id, []).append((loop, future))
            try:
                job = self.store.get(job_id)
                if job is None or job.status in ("succeeded", "failed", "cancelled"):
                    return
                left = deadline - loop.time()
                if left <= 0:
                    return
                # woken by this server's supervisor, or by polling: another server may run the job
                await asyncio.wait_for(future, min(left, POLL_S))
            except asyncio.TimeoutError:
                pass
            finally:
                with self._waiters_lock:
                    entries = self._waiters.get(job_id, [])
                    if (loop, future) in entries:
                        entries.remove((loop, future))
                    if not entries:
                        self._waiters.pop(job_id, None)
            # woken: final, or re-queued after its worker died (then wait again)

    def _notify(self, job_id: str) -> None:
        with self._waiters_lock:
            entries = list(self._waiters.get(job_id, []))
        for loop, future in entries:
            try:
                loop.call_soon_threadsafe(_resolve, future)
            except RuntimeError:  # that request's event loop is already closed
                pass

    # -- the supervisor loop ---------------------------------------------------------------------
    def _spawn(self) -> _Worker:
        parent, child = self._ctx.Pipe(duplex=True)
        process = self._ctx.Process(target=worker_main, args=(child, self.test_jobs), daemon=True,
                                    name="mlsysim-opt-worker")
        process.start()
        child.close()
        return _Worker(process=process, conn=parent, pid=process.pid or 0)

    def _kill(self, w: _Worker) -> None:
        try:
            if w.process.is_alive():
                w.process.kill()
            w.process.join(timeout=2)
        except Exception:  # pragma: no cover
            pass
        try:
            w.conn.close()
        except OSError:
            pass

    def _loop(self) -> None:
        for _ in range(self.size):  # here, not in start(): the first start waits for the warm-up
            if not self._stopping.is_set():
                self._workers.append(self._spawn())
        outage = False
        while not self._stopping.is_set():
            try:
                self._step()
                if outage:
                    log.warning("job store reachable again")
                outage = False
            except StoreUnavailable as exc:  # one line per outage, not one per retry
                if not outage:
                    log.error("%s; retrying every second", exc)
                outage = True
                time.sleep(1.0)
            except Exception:  # the supervisor must outlive any single surprise
                log.exception("job supervisor step failed")
                time.sleep(0.2)

    def _step(self) -> None:
        if time.monotonic() >= self._next_beat:
            self._housekeeping()
        self._dispatch()
        now = time.monotonic()
        deadlines = [w.deadline for w in self._workers if w.job_id is not None]
        timeout = max(0.0, min([1.0, *(d - now for d in deadlines)]))
        handles = [self._wake_r]
        for w in self._workers:
            handles += [w.conn, w.process.sentinel]
        ready = wait(handles, timeout=timeout)
        if self._wake_r in ready:
            while self._wake_r.poll():
                self._wake_r.recv_bytes()
        for w in list(self._workers):
            if w.conn in ready:
                self._drain(w)
        for w in list(self._workers):
            if w.process.sentinel in ready or not w.process.is_alive():
                self._drain(w)
                self._died(w)
        self._enforce_limits()

    def _housekeeping(self) -> None:
        """Renew this server's lease; take back the jobs of servers sharing the store that are gone."""
        self._next_beat = time.monotonic() + HEARTBEAT_S
        self.store.heartbeat()
        for w in self._workers:             # cancelled through another server sharing the store
            if w.job_id is not None and w.job_id not in self._cancelled:
                job = self.store.get(w.job_id)
                if job is not None and job.status == "cancelled":
                    self._cancelled.add(w.job_id)
        if self.on_heartbeat is not None:
            self.on_heartbeat()
        orphans = self.store.recover(self.max_attempts)
        if orphans:
            log.warning("recovered %d job(s) left running by a server that is gone: %s", len(orphans),
                        ", ".join(orphans))
            for job_id in orphans:
                self._notify(job_id)

    def _dispatch(self) -> None:
        for w in self._workers:
            if w.ready and w.job_id is None and not self._stopping.is_set():
                job = self.store.claim(w.pid)
                if job is None:
                    return
                w.job_id, w.deadline = job.id, time.monotonic() + job.timeout_s
                try:
                    w.conn.send((job.id, job.kind, job.params))
                except OSError:
                    pass  # the worker is dying; _died() deals with its job

    def _drain(self, w: _Worker) -> None:
        while True:
            try:
                if w.conn.closed or not w.conn.poll():
                    return
                message = w.conn.recv()
            except (EOFError, OSError):
                return
            kind = message[0]
            if kind == READY:
                w.ready, self._start_failures = True, 0
            elif kind == PROGRESS and message[1] == w.job_id:
                self.store.progress(w.job_id, message[2])
            elif kind in (DONE, ERROR) and message[1] == w.job_id:
                job_id = w.job_id
                if kind == DONE:
                    self.store.finish(job_id, "succeeded", result=message[2])
                else:
                    self.store.finish(job_id, "failed", error=message[2])
                w.job_id = None
                self._cancelled.discard(job_id)
                self._notify(job_id)

    def _died(self, w: _Worker) -> None:
        self._workers.remove(w)
        self._kill(w)
        code = w.process.exitcode
        how = (f"killed by signal {signal.Signals(-code).name}" if code is not None and code < 0
               and -code in signal.Signals._value2member_map_ else f"exit code {code}")
        if w.job_id is not None:
            job_id, reason = w.job_id, w.kill_reason
            if reason is not None:  # we killed it: time limit or cancellation
                if reason != "cancelled":
                    self.store.finish(job_id, "failed", error=_timeout_error(reason))
            else:
                job = self.store.get(job_id)
                attempts = job.attempts if job else self.max_attempts
                if attempts < self.max_attempts:
                    self.store.requeue(job_id, f"its worker process died ({how}) on attempt {attempts} of "
                                               f"{self.max_attempts}; re-queued")
                else:
                    self.store.finish(job_id, "failed", note=f"worker died on each of {attempts} attempts", error={
                        "type": "WorkerCrashed", "status": 500, "error": "job_failed", "problems": [],
                        "message": f"its worker process died ({how}) on each of its {attempts} attempts"})
            self._cancelled.discard(job_id)
            self._notify(job_id)
        elif not w.ready:
            self._start_failures += 1  # a worker that cannot even start: back off instead of spinning
            self._next_start = time.monotonic() + min(30.0, 0.5 * 2 ** self._start_failures)
            log.error("a worker process failed to start (%s)", how)
        if not self._stopping.is_set():
            self.restarts += 1
            delay = self._next_start - time.monotonic()
            if delay > 0:
                time.sleep(min(delay, 1.0))
            self._workers.append(self._spawn())

    def _enforce_limits(self) -> None:
        now = time.monotonic()
        for w in list(self._workers):
            if w.job_id is None or w.kill_reason is not None:
                continue
            if w.job_id in self._cancelled:
                w.kill_reason = "cancelled"
            elif now >= w.deadline:
                job = self.store.get(w.job_id)
                limit = job.timeout_s if job else 0
                w.kill_reason = f"exceeded its time limit of {limit:g} s"
            else:
                continue
            try:
                w.process.kill()
            except Exception:  # pragma: no cover
                pass


def _timeout_error(reason: str) -> dict:
    return {"type": "TimeLimitExceeded", "status": 504, "error": "timeout", "problems": [],
            "message": f"the job {reason} and was stopped"}


def _resolve(future: asyncio.Future) -> None:
    if not future.done():
        future.set_result(None)
