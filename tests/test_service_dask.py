"""The service on a Dask cluster of its own machines: a scheduler and two workers started as separate
processes (each worker in its own process group, standing in for a machine), a server started with
``--dask tcp://...``; jobs spread over both workers, a worker process killed mid-job, then a whole
machine lost mid-job. And plan jobs use the cluster they run on."""
import os
import signal
import subprocess
import sys

import httpx
import pytest

from mlsysim_opt.service.local import LocalServer, free_port
from test_service import wait_job, wait_started

pytestmark = pytest.mark.slow   # starts servers and their worker processes

PYTHON = [sys.executable, "-m"]


def _spawn(args: list[str]) -> subprocess.Popen:
    # a process group per "machine", so that killing one takes its nanny and worker together
    return subprocess.Popen(PYTHON + args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(10)


@pytest.fixture(scope="module")
def cluster():
    from distributed import Client
    address = f"tcp://127.0.0.1:{free_port()}"
    processes = [_spawn(["distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", address.rsplit(":", 1)[1],
                         "--no-dashboard"])]
    processes += [_spawn(["distributed.cli.dask_worker", address, "--nthreads", "1", "--nworkers", "1",
                          "--memory-limit", "1GiB", "--no-dashboard", "--name", name,
                          "--preload", "mlsysim_opt.service._preload"]) for name in ("machine-a", "machine-b")]
    try:
        with Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=120)
            yield address, client, processes[1:]
    finally:
        for process in processes:
            _kill_group(process)


def _worker_pids(client) -> dict[int, str]:
    """pid -> name (the machine) of each worker process."""
    names = {address: w["name"] for address, w in client.scheduler_info(n_workers=-1)["workers"].items()}
    return {pid: names[address] for address, pid in client.run(os.getpid).items()}


def _sleep(api, seconds: float, tag: str) -> dict:
    submitted = api.post("/jobs", json={"kind": "sleep", "params": {"seconds": seconds, "tag": tag}})
    assert submitted.status_code == 202, submitted.text
    return submitted.json()


def test_jobs_spread_over_the_machines_and_survive_a_killed_worker_and_a_lost_machine(cluster):
    address, client, machines = cluster
    with LocalServer(workers=2, test_jobs=True, job_timeout=60, extra_args=("--dask", address)) as server:
        api = httpx.Client(base_url=server.url, timeout=30)
        assert "Dask cluster at tcp://" in server.log()

        # two jobs at once run on the two machines' workers
        first, second = (_sleep(api, 3, f"spread-{i}") for i in range(2))
        running = [wait_started(api, job["id"]) for job in (first, second)]
        pids = _worker_pids(client)
        assert {job["worker_pid"] for job in running} == set(pids), (running, pids)

        # a worker process killed mid-job: its nanny restarts it and says how it died; the job runs again
        os.kill(running[0]["worker_pid"], signal.SIGKILL)
        retried = wait_job(api, first["id"], timeout=60)
        assert retried["status"] == "succeeded" and retried["attempts"] == 2, retried
        assert "SIGKILL" in retried["note"]
        assert wait_job(api, second["id"], timeout=60)["status"] == "succeeded"
        client.wait_for_workers(2, timeout=60)

        # a whole machine lost mid-job (nanny and worker): the other machine finishes the job
        job = _sleep(api, 4, "machine-lost")     # long enough to be killed mid-job on a busy machine
        victim_pid = wait_started(api, job["id"])["worker_pid"]
        victim = _worker_pids(client)[victim_pid]
        _kill_group(machines[0 if victim == "machine-a" else 1])
        done = wait_job(api, job["id"], timeout=60)
        assert done["status"] == "succeeded" and done["attempts"] == 2, done
        assert "lost" in done["note"]
        survivor_pid = api.get(done["result_url"]).json()["pid"]
        assert _worker_pids(client)[survivor_pid] != victim


def test_a_plan_job_solves_its_windows_on_the_cluster_it_runs_on():
    from distributed import Client, LocalCluster, get_worker

    from mlsysim_opt.planning.distributed import map_solves

    def where(_):
        return get_worker().get_current_task()

    def job():   # what a plan job does with cluster=None: map its windows
        return get_worker().get_current_task(), map_solves(where, range(3))

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0") as local, \
            Client(local) as client:
        parent, keys = client.submit(job, pure=False).result(timeout=60)
    assert len(set(keys)) == 3 and parent not in keys    # three tasks of their own, not run inside the job
    assert map_solves(abs, [-1, -2]) == [1, 2]           # outside a task: in this process, as before


def test_the_quiet_cluster_settings_are_settings_dask_knows():
    """A misspelt Dask setting is silently ignored, so each one must name a setting Dask has, of the
    same type as its default."""
    import dask
    import distributed  # noqa: F401  (loads the distributed.* defaults)

    from mlsysim_opt.planning.distributed import QUIET
    from mlsysim_opt.service.executor import cluster_settings

    for key, value in QUIET.items():
        default = dask.config.get(key)          # KeyError when Dask has no such setting
        assert type(default) is type(value), (key, default, value)
    settings = cluster_settings(max_attempts=2)
    assert QUIET.items() <= settings.items()
    assert settings["distributed.scheduler.allowed-failures"] == 1
