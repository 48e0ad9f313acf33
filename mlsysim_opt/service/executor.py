"""Jobs run on a Dask distributed cluster; the job store stays the record of every job.

The cluster is a local one the server starts in a child process (one single-threaded worker
process per ``--workers``, each watched by a Dask nanny that restarts it when it dies and stops it
past ``--worker-memory``), or a running scheduler (``--dask tcp://host:8786``) whose workers may be on
many machines. One supervisor thread in the server:

* claims the oldest queued job from the store whenever the cluster has an idle worker thread and
  submits it as a Dask task;
* records what the tasks report over Dask's event topics (workers on other machines cannot reach
  a SQLite file): the pid of the worker process that started a job, and its progress;
* stops a job past its time limit, or cancelled, by cancelling its task and restarting its worker
  (a Python thread cannot be interrupted; a process can);
* accounts for workers that died mid-job. Dask re-runs the task of a dead worker elsewhere
  (``allowed-failures``); each run is an attempt in the store (``attempts``, ``note`` with the exit
  code or signal a nanny reported), and after ``max_attempts`` deaths the job fails. No accepted
  job is lost;
* renews this server's heartbeat and recovers the jobs of servers sharing the store that are gone.

Workers never touch the database: a task takes ``(job id, kind, params JSON)`` and returns
``("done", result JSON)`` or ``("error", error dict)``.
"""
from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import queue
import signal
import threading
import time
from dataclasses import dataclass
from typing import Any, Optional

from distributed.diagnostics.plugin import NannyPlugin, WorkerPlugin

from .store import HEARTBEAT_S, JobStore, StoreUnavailable

log = logging.getLogger("mlsysim_opt.service")

POLL_S = 0.5
"""How often a request waiting for a job looks at the store (a job another server runs sends no
notification here)."""
PROGRESS_EVERY_S = 0.2
"""Least time between two progress reports of one job (each is one write to the store)."""
EXIT_REPORT_WAIT_S = 2.0
"""How long a death noticed by Dask waits for its nanny's report of how the worker ended."""
RESTART_WAIT_S = 30.0
"""Longest wait for the scheduler to drop a worker told to exit, before jobs are submitted again."""
WORKER_NICENESS = 10
"""CPU priority of local workers (0 is the HTTP process's, 19 the lowest)."""
EXITS_TOPIC = "mlsysim-opt-worker-exits"
PRELOAD = "mlsysim_opt.service._preload"


# ------------------------------------------------------------------------------------------------
# The worker side


def run_job(job_id: str, kind: str, params: str, test_jobs: bool, topic: str) -> tuple[str, Any]:
    """One attempt of a job, on a Dask worker; reports its start and progress on ``topic``."""
    from distributed import get_worker
    from distributed.utils import sync

    from . import jobs
    worker, pid = get_worker(), os.getpid()
    # sent and published before the job runs, so that even a worker that dies at once is known
    sync(worker.loop, worker.scheduler.log_event, topic=topic,
         msg={"event": "start", "job": job_id, "pid": pid, "worker": worker.address})
    last = [0.0]

    def progress(fraction: float) -> None:
        now = time.monotonic()
        if now - last[0] >= PROGRESS_EVERY_S:
            last[0] = now
            worker.log_event(topic, {"event": "progress", "job": job_id, "pid": pid, "fraction": float(fraction)})

    try:
        return "done", jobs.run(kind, params, progress, test_jobs)
    except Exception as exc:  # every failure goes back to the server as data
        from .errors import error_payload
        return "error", error_payload(exc)


def how_it_ended(exitcode: int) -> str:
    if exitcode < 0 and -exitcode in signal.Signals._value2member_map_:
        return f"killed by signal {signal.Signals(-exitcode).name}"
    return f"exit code {exitcode}"


class ExitReporter(NannyPlugin):
    """Publishes how each worker process ended (exit code or signal) before its nanny restarts it:
    Dask re-runs a dead worker's task but does not say why the worker died."""

    name = "mlsysim-opt-exit-reporter"

    def setup(self, nanny) -> None:
        restart = type(nanny)._on_worker_exit.__get__(nanny)   # the class's, so re-registering never stacks

        async def report_then_restart(exitcode: int) -> None:
            try:
                await nanny.scheduler.log_event(topic=EXITS_TOPIC, msg={"worker": nanny.worker_address,
                                                                         "how": how_it_ended(exitcode)})
            except Exception:  # the scheduler is gone too: nobody to tell
                pass
            await restart(exitcode)

        nanny._on_worker_exit = report_then_restart


class YieldToRequests(WorkerPlugin):
    """Local workers run at a lower CPU priority than the HTTP process that shares their machine,
    so that requests stay fast while jobs run (a job only takes a little longer)."""

    name = "mlsysim-opt-yield-to-requests"

    def setup(self, worker) -> None:
        if hasattr(os, "setpriority"):
            os.setpriority(os.PRIO_PROCESS, 0, WORKER_NICENESS)


# ------------------------------------------------------------------------------------------------
# The cluster


def prestart(workers: int, worker_memory: str, max_attempts: int) -> None:
    """Start the local cluster's process now, so that it starts its workers while the HTTP process
    imports the web stack (two cores instead of one); :func:`connect` takes it over."""
    _started_early.append(LocalClusterProcess(workers, worker_memory, max_attempts))


_started_early: list["LocalClusterProcess"] = []


def connect(address: Optional[str], workers: int, worker_memory: str, max_attempts: int):
    """A client of the cluster at ``address``, or of the local cluster; and the local cluster's
    process (None for a remote cluster, which this server must not stop)."""
    from distributed import Client
    if address:
        return Client(address, timeout=30), None
    local = _started_early.pop() if _started_early else LocalClusterProcess(workers, worker_memory, max_attempts)
    return Client(local.address(), timeout=30), local


def cluster_settings(max_attempts: int) -> dict:
    """Dask settings of a local cluster: a worker death re-runs its task until ``max_attempts``
    runs died; workers hold no data, so nothing is spilled to disk, and a worker above 95 % of its
    memory limit is restarted by its nanny (its job counts as a crash); and the settings of any
    cluster whose tasks are whole jobs (:data:`~mlsysim_opt.planning.distributed.QUIET`)."""
    from ..planning.distributed import QUIET
    return {**QUIET,
            "distributed.scheduler.allowed-failures": max(0, max_attempts - 1),
            "distributed.scheduler.worker-saturation": 1.0,
            "distributed.worker.memory.target": False, "distributed.worker.memory.spill": False,
            "distributed.worker.memory.pause": 0.9, "distributed.worker.memory.terminate": 0.95}


class LocalClusterProcess:
    """A local Dask cluster (scheduler, and a nanny per worker) in a process of its own: in the
    HTTP process their event loop would compete with the requests for the interpreter lock."""

    def __init__(self, workers: int, worker_memory: str, max_attempts: int):
        context = multiprocessing.get_context("spawn")    # a clean process: no copy of the server's threads
        self._conn, child = context.Pipe()
        self.process = context.Process(target=_host_cluster, args=(child, workers, worker_memory, max_attempts),
                                       name="mlsysim-opt-cluster")
        self.process.start()
        child.close()
        self._address: Optional[str] = None

    def address(self, timeout: float = 300.0) -> str:
        """The scheduler's address, once the workers are up."""
        if self._address is None:
            try:
                if not self._conn.poll(timeout):
                    raise RuntimeError(f"the local Dask cluster did not start in {timeout:g} s")
                self._address = self._conn.recv()
            except EOFError:
                raise RuntimeError("the local Dask cluster failed to start (see the log above)") from None
        return self._address

    def close(self, timeout: float = 15.0) -> None:
        self._conn.close()                  # the cluster process stops its workers and exits
        self.process.join(timeout)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5)


def _host_cluster(conn, workers: int, worker_memory: str, max_attempts: int) -> None:
    """Body of the cluster process: run a LocalCluster until the server closes its end of ``conn``
    (or dies: the pipe closes all the same, and the workers go with the cluster)."""
    import dask
    from distributed import LocalCluster
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # Ctrl-C reaches the process group; the server decides
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # parallelism comes from processes
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    _warm_fork_server()
    dask.config.set(cluster_settings(max_attempts))
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, memory_limit=worker_memory,
                      host="127.0.0.1", dashboard_address=":0", preload=[PRELOAD]) as cluster:
        conn.send(cluster.scheduler_address)
        try:
            conn.recv()
        except (EOFError, OSError):
            pass


def _warm_fork_server() -> None:
    """Workers are forked from a fork server that has the library imported and the roofline
    compiled, so a replaced worker is ready in a fraction of a second."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return
    import dask
    from distributed.utils import get_mp_context
    dask.config.set({"distributed.worker.multiprocessing-method": "forkserver"})
    context = get_mp_context()          # sets Dask's own preload list first
    from multiprocessing import forkserver
    preload = list(getattr(forkserver._forkserver, "_preload_modules", []))
    context.set_forkserver_preload([*preload, PRELOAD])
    forkserver.ensure_running()


# ------------------------------------------------------------------------------------------------
# The server side


@dataclass
class _Run:
    """A job this server runs on the cluster."""

    job_id: str
    kind: str
    params: str
    timeout_s: float
    attempts: int
    deadline: float
    future: Any = None
    worker: Optional[str] = None
    """Address of the worker running the current attempt (None until it starts)."""
    pid: Optional[int] = None
    suspected_at: Optional[float] = None
    """When Dask showed that the current attempt's worker is gone, before its nanny said how."""
    next_start: Optional[tuple[str, int]] = None
    """The re-run that revealed the death, applied once the death is accounted for."""
    resubmit: bool = False
    """Dask gave up on the task (allowed-failures): the server submits the next attempt itself."""


class JobExecutor:
    """Jobs from ``store`` run on a Dask cluster, fed by one supervisor thread."""

    def __init__(self, store: JobStore, size: int, *, address: Optional[str] = None, worker_memory: str = "2GiB",
                 test_jobs: bool = False, max_attempts: int = 2, on_heartbeat=None):
        self.store, self.size, self.address, self.worker_memory = store, size, address, worker_memory
        self.test_jobs, self.max_attempts = test_jobs, max_attempts
        self.on_heartbeat = on_heartbeat
        """Called with each heartbeat, in the supervisor thread (the server re-reads shared records)."""
        self.client = self.cluster = None
        self.topic = f"mlsysim-opt-jobs-{store.server_id}"
        self._events: queue.Queue = queue.Queue()
        self._runs: dict[str, _Run] = {}
        self._stopping = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._waiters: dict[str, list[tuple[asyncio.AbstractEventLoop, asyncio.Future]]] = {}
        self._waiters_lock = threading.Lock()
        self._workers: dict[str, dict] = {}
        self._restarting: dict[str, float] = {}
        """Workers told to exit -> when to stop waiting for the scheduler to let them go."""
        self._retired: set[str] = set()
        """Workers this server restarted (an address is never reused by the next process)."""
        self._next_beat = self._next_census = 0.0
        self.restarts = 0

    # -- life cycle ------------------------------------------------------------------------------
    def start(self) -> None:
        self.store.register()
        self.store.recover(self.max_attempts)
        self._next_beat = time.monotonic() + HEARTBEAT_S
        self.client, self.cluster = connect(self.address, self.size, self.worker_memory, self.max_attempts)
        self.client.register_plugin(ExitReporter())
        if self.cluster is not None:
            self.client.register_plugin(YieldToRequests())
        self.client.subscribe_topic(self.topic, lambda event: self._events.put(("task", event[1])))
        self.client.subscribe_topic(EXITS_TOPIC, lambda event: self._events.put(("exit", event[1])))
        self._census()
        self._thread = threading.Thread(target=self._loop, name="job-supervisor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop feeding the cluster; jobs still running go back to the queue for the next start."""
        self._stopping.set()
        self.wake()
        if self._thread is not None:
            self._thread.join(timeout=10)
        for run in list(self._runs.values()):
            self.store.requeue(run.job_id, "re-queued: the server stopped while it ran", refund_attempt=True)
            self._notify(run.job_id)
        futures = [run.future for run in self._runs.values() if run.future is not None]
        self._runs.clear()
        try:
            if futures:
                self.client.cancel(futures)
            self.client.close(timeout=5)
        except Exception:  # pragma: no cover - shutting down anyway
            log.warning("the Dask client did not close cleanly", exc_info=True)
        if self.cluster is not None:
            self.cluster.close()
        self.store.unregister()

    # -- requests from the HTTP side ---------------------------------------------------------------
    def wake(self) -> None:
        self._events.put(("wake", None))

    def cancel(self, job_id: str, was_running: bool) -> None:
        """Called after the store marked the job cancelled: stop its task if it runs here."""
        if was_running:
            self._events.put(("cancelled", job_id))
        self._notify(job_id)

    def status(self) -> dict[str, int]:
        ready = sum(1 for address, w in self._workers.items()
                    if w.get("status", "running") == "running" and address not in self._restarting)
        return {"size": self.size if self.cluster is not None else len(self._workers), "alive": len(self._workers),
                "ready": ready, "busy": len(self._runs), "restarts": self.restarts}

    async def wait_for(self, job_id: str, timeout: float, find) -> None:
        """Return when the job reaches a final state (or after ``timeout`` seconds); ``find(job_id)``
        reads the job (a coroutine)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            future = loop.create_future()
            with self._waiters_lock:
                self._waiters.setdefault(job_id, []).append((loop, future))
            try:
                job = await find(job_id)
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

    def _notify(self, job_id: str) -> None:
        with self._waiters_lock:
            entries = list(self._waiters.get(job_id, []))
        for loop, future in entries:
            try:
                loop.call_soon_threadsafe(_resolve, future)
            except RuntimeError:  # that request's event loop is already closed
                pass

    # -- the supervisor loop ---------------------------------------------------------------------
    def _loop(self) -> None:
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
        now = time.monotonic()
        if now >= self._next_beat:
            self._housekeeping()
        if now >= self._next_census:
            self._census()
        self._dispatch()
        waits = [r.deadline - now for r in self._runs.values()]
        waits += [r.suspected_at + EXIT_REPORT_WAIT_S - now for r in self._runs.values() if r.suspected_at]
        try:
            event = self._events.get(timeout=max(0.0, min([1.0, *waits])))
            while True:
                try:
                    self._handle(*event)
                except StoreUnavailable:
                    self._events.put(event)   # handled again once the store is back: no result is lost
                    raise
                event = self._events.get_nowait()
        except queue.Empty:
            pass
        self._enforce_limits()

    def _census(self) -> None:
        """The cluster's workers as the scheduler sees them (for capacity and /health)."""
        now = time.monotonic()
        self._next_census = now + (0.2 if self._restarting else 1.0)
        try:
            self._workers = dict(self.client.scheduler_info(n_workers=-1)["workers"])
        except Exception:  # the scheduler is unreachable for now: no capacity
            log.warning("the Dask scheduler did not answer", exc_info=True)
            self._workers = {}
        self._restarting = {w: until for w, until in self._restarting.items() if w in self._workers and now < until}

    def _housekeeping(self) -> None:
        """Renew this server's lease; take back the jobs of servers sharing the store that are gone;
        stop jobs cancelled through another server."""
        self._next_beat = time.monotonic() + HEARTBEAT_S
        self.store.heartbeat()
        for run in list(self._runs.values()):
            job = self.store.get(run.job_id)
            if job is not None and job.status == "cancelled":
                self._stop(run)
        if self.on_heartbeat is not None:
            self.on_heartbeat()
        orphans = self.store.recover(self.max_attempts)
        if orphans:
            log.warning("recovered %d job(s) left running by a server that is gone: %s", len(orphans),
                        ", ".join(orphans))
            for job_id in orphans:
                self._notify(job_id)

    def _capacity(self) -> int:
        return sum(int(w.get("nthreads", 1)) for addr, w in self._workers.items() if addr not in self._restarting)

    def _dispatch(self) -> None:
        while not self._stopping.is_set() and not self._restarting and len(self._runs) < self._capacity():
            job = self.store.claim()
            if job is None:
                return
            run = _Run(job.id, job.kind, job.params, job.timeout_s, job.attempts,
                       deadline=time.monotonic() + job.timeout_s)
            self._runs[job.id] = run
            self._submit(run)

    def _submit(self, run: _Run) -> None:
        run.resubmit = False
        run.future = self.client.submit(run_job, run.job_id, run.kind, run.params, self.test_jobs, self.topic,
                                        key=f"mlsysim-opt-job-{run.job_id}-{run.attempts}", pure=False)
        run.future.add_done_callback(lambda future, job_id=run.job_id: self._events.put(("finished", (job_id, future))))

    # -- events ----------------------------------------------------------------------------------
    def _handle(self, what: str, event: Any) -> None:
        if what == "task":
            run = self._runs.get(event["job"])
            if event["event"] == "start":
                self._started(run, event["worker"], event["pid"], event["job"])
            elif run is not None and event["pid"] == run.pid:
                self.store.progress(run.job_id, event["fraction"])
        elif what == "exit":
            self._worker_exited(event["worker"], event["how"])
        elif what == "finished":
            self._finished(*event)
        elif what == "cancelled" and event in self._runs:
            self._stop(self._runs[event])

    def _started(self, run: Optional[_Run], worker: str, pid: int, job_id: str) -> None:
        if run is None:       # stopped (time limit, cancel) before its worker began: stop that worker
            self._restart_worker(worker)
        elif run.pid is not None and pid != run.pid:
            # a re-run by Dask: the previous worker is gone; wait for its nanny to say how it ended
            run.next_start, run.suspected_at = (worker, pid), run.suspected_at or time.monotonic()
        else:
            run.worker, run.pid = worker, pid
            run.deadline = time.monotonic() + run.timeout_s
            self.store.started(run.job_id, pid)
            self._notify(run.job_id)

    def _worker_exited(self, worker: str, how: str) -> None:
        if worker in self._retired:   # restarted by this server: its job was already stopped
            return
        self.restarts += 1
        self._next_census = 0.0
        for run in list(self._runs.values()):
            if run.worker == worker:
                self._died(run, how)

    def _finished(self, job_id: str, future) -> None:
        run = self._runs.get(job_id)
        if run is None or run.future is not future:
            return
        if future.status == "finished":
            outcome, payload = future.result()
            if outcome == "done":
                self.store.finish(job_id, "succeeded", result=payload)
            else:
                self.store.finish(job_id, "failed", error=payload)
            del self._runs[job_id]     # only once stored: during an outage the event is handled again
            self._notify(job_id)
            return
        # Dask gave up: too many of its workers died (KilledWorker), or the task could not be run
        run.resubmit = True
        if run.worker is None:        # the death is already accounted for: next attempt now
            self._submit(run)
        elif future.status == "error" and type(future.exception()).__name__ != "KilledWorker":
            from .errors import error_payload
            self._forget(run)
            self.store.finish(job_id, "failed", error=error_payload(future.exception()))
            self._notify(job_id)
        else:
            run.suspected_at = run.suspected_at or time.monotonic()

    def _died(self, run: _Run, how: str) -> None:
        """The worker running the current attempt died: the job runs again while attempts remain."""
        attempt, next_start, resubmit = run.attempts, run.next_start, run.resubmit
        run.worker = run.pid = run.suspected_at = run.next_start = None
        if attempt < self.max_attempts:
            self.store.rerun(run.job_id, f"its worker process died ({how}) on attempt {attempt} of "
                                         f"{self.max_attempts}; re-run")
            run.attempts += 1
            run.deadline = time.monotonic() + run.timeout_s
            if next_start is not None:
                self._started(run, *next_start, run.job_id)
            elif resubmit:
                self._submit(run)
            self._notify(run.job_id)
            return
        self._forget(run)
        if next_start is not None:    # a run beyond the last attempt already began (a remote scheduler allows more)
            self._restart_worker(next_start[0])
        self.store.finish(run.job_id, "failed", note=f"worker died on each of {attempt} attempts", error={
            "type": "WorkerCrashed", "status": 500, "error": "job_failed", "problems": [],
            "message": f"its worker process died ({how}) on each of its {attempt} attempts"})
        self._notify(run.job_id)

    # -- limits ----------------------------------------------------------------------------------
    def _enforce_limits(self) -> None:
        now = time.monotonic()
        for run in list(self._runs.values()):
            if run.suspected_at is not None and now >= run.suspected_at + EXIT_REPORT_WAIT_S:
                self._died(run, "its worker was lost without a report: its machine or nanny is gone")
            elif now >= run.deadline:
                self._stop(run)
                self.store.finish(run.job_id, "failed", error=_timeout_error(run.timeout_s))
                self._notify(run.job_id)

    def _stop(self, run: _Run) -> None:
        """Stop a job's task: cancelled in Dask, and its worker restarted if it began (a thread
        cannot be interrupted; the nanny replaces the process)."""
        self._forget(run)
        if run.worker is not None:
            self._restart_worker(run.worker)
        self._notify(run.job_id)

    def _forget(self, run: _Run) -> None:
        self._runs.pop(run.job_id, None)
        if run.future is not None:
            run.future.cancel()

    def _restart_worker(self, worker: str) -> None:
        """Make one worker process exit at once (a graceful restart would wait for the thread it
        is to stop); its nanny starts a fresh one. No job is submitted until the scheduler has let
        the old worker go, so none can land on it."""
        if worker in self._retired:
            return
        self._retired.add(worker)
        self._restarting[worker] = time.monotonic() + RESTART_WAIT_S
        self.restarts += 1
        self._next_census = 0.0
        try:
            self.client.run(_exit_worker_process, workers=[worker], wait=False)
        except Exception:  # the worker is gone already
            pass


async def _exit_worker_process() -> None:
    """Run on a worker (in its event loop, beside the busy task thread) to end its process; a
    coroutine, because Dask runs only those without waiting for an answer."""
    os._exit(1)


def _timeout_error(limit: float) -> dict:
    return {"type": "TimeLimitExceeded", "status": 504, "error": "timeout", "problems": [],
            "message": f"the job exceeded its time limit of {limit:g} s and was stopped"}


def _resolve(future: asyncio.Future) -> None:
    if not future.done():
        future.set_result(None)
