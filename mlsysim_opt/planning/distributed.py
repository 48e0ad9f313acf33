"""Independent solves run side by side on Dask distributed: scenario studies, Pareto points and the
windows of a long horizon.

``cluster`` chooses where: ``None`` runs the solves one after another in this process, or, inside a
task running on a Dask worker (a service job), on that worker's cluster; ``"local"``
starts a local Dask cluster (one single-threaded worker process per core, since HiGHS is given one
thread each); a scheduler address (``"tcp://host:8786"``) uses a running cluster of many machines;
a ``distributed.Client`` is used as it is. Results come back in the order the tasks were given,
and a failed task raises its own error (an ``InputError`` keeps its field and fix).
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Sequence

from mlsysim_opt.errors import InputError

Cluster = Any
"""None, "local", a scheduler address, or a ``distributed.Client``."""

QUIET = {"distributed.worker.profile.enabled": False,
         "distributed.scheduler.work-stealing": False,
         "distributed.admin.tick.interval": "500ms",
         "distributed.admin.system-monitor.interval": "2s",
         "distributed.worker.memory.monitor-interval": "200ms"}
"""Dask settings of the clusters this package starts. Their tasks are whole solves or jobs, so
the machinery for graphs of many small tasks only costs CPU: the statistical profiler samples
every worker 100 times a second, work stealing moves nothing useful, and the event-loop watchdog
and system monitor need not run every 20 ms and 500 ms. Idle, a scheduler and two workers then use
0.5 s of CPU per 20 s between them instead of 2.8 s (measured on two cores)."""


@contextmanager
def client_for(cluster: Cluster, workers: int | None = None) -> Iterator[Any]:
    """A Dask client for ``cluster`` (None: no client, or the cluster of the Dask task this runs
    in), closed afterwards when made here."""
    if cluster is None:
        if not _inside_dask_task():
            yield None
            return
        from distributed import worker_client
        with worker_client() as client:   # leaves the worker's thread to the solves while it waits
            yield client
        return
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise InputError("cluster", cluster, "needs Dask distributed, which is not installed",
                         "pip install 'mlsysim_opt[dask]', or pass cluster=None to solve in this process") from None
    if isinstance(cluster, Client):
        yield cluster
        return
    if cluster == "local":
        n = workers or max(1, min(os.cpu_count() or 1, 8))
        import dask
        with dask.config.set(QUIET), \
                LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0") as local, \
                Client(local) as client:
            yield client
        return
    if isinstance(cluster, str) and "://" in cluster:
        with Client(cluster) as client:
            yield client
        return
    raise InputError("cluster", cluster, "must be None, 'local', a scheduler address or a distributed.Client",
                     "e.g. cluster='local' or cluster='tcp://scheduler:8786'")


def _inside_dask_task() -> bool:
    try:
        from distributed import get_worker
        get_worker()
    except (ImportError, ValueError):
        return False
    return True


def map_solves(function: Callable, tasks: Sequence, *, cluster: Cluster = None, workers: int | None = None,
               progress: Callable[[int, int], None] | None = None) -> list:
    """``[function(task) for task in tasks]``, on ``cluster`` when given. ``progress(done, total)``
    is called as results arrive."""
    tasks = list(tasks)
    with client_for(cluster, workers) as client:
        if client is None:
            out = []
            for task in tasks:
                out.append(function(task))
                if progress:
                    progress(len(out), len(tasks))
            return out
        from distributed import as_completed
        futures = client.map(function, tasks, pure=False)
        order = {f.key: i for i, f in enumerate(futures)}
        out = [None] * len(tasks)
        for done, future in enumerate(as_completed(futures), start=1):
            out[order[future.key]] = future.result()
            if progress:
                progress(done, len(tasks))
        return out
