"""Two servers sharing one PostgreSQL database: one queue, one cache, and each other's safety net.
Real servers on free localhost ports, a real PostgreSQL server."""
import json
from concurrent.futures import ThreadPoolExecutor
import time
import uuid

import httpx
import pytest

from mlsysim_opt.cli import EXIT_OK, main
from mlsysim_opt.service.local import LocalServer
from mlsysim_opt.service.store import HEARTBEAT_S
from test_service import TOY_CHIP, wait_job

pytestmark = pytest.mark.slow   # starts servers and their worker processes


@pytest.fixture(scope="module")
def shared_db(postgres):
    return postgres.create_database("service_" + uuid.uuid4().hex[:12])


@pytest.fixture(scope="module")
def pair(shared_db):
    a, b = (LocalServer(db=shared_db, workers=1, test_jobs=True, job_timeout=60) for _ in range(2))
    with ThreadPoolExecutor(2) as pool:                        # start both at once
        list(pool.map(LocalServer.start, (a, b)))
    yield a, b
    a.stop()
    b.stop()


def test_one_cache_for_every_server(pair):
    a, b = (httpx.Client(base_url=s.url, timeout=30) for s in pair)
    first = a.post("/jobs", json={"kind": "sleep", "params": {"seconds": 0, "tag": "shared"}}).json()
    assert wait_job(a, first["id"])["status"] == "succeeded"
    again = b.post("/jobs", json={"kind": "sleep", "params": {"seconds": 0, "tag": "shared"}}).json()
    assert again["id"] == first["id"] and again["cached"] is True
    assert b.get(f"/jobs/{first['id']}/result").json()["tag"] == "shared"
    assert first["id"] in {j["id"] for j in b.get("/jobs").json()}


def test_records_added_through_one_server_reach_the_others(pair):
    a, b = (httpx.Client(base_url=s.url, timeout=30) for s in pair)
    assert a.post("/registry/hardware", json={**TOY_CHIP, "name": "Shared Chip"}).status_code == 201
    deadline = time.monotonic() + 2 * HEARTBEAT_S + 2
    while (found := b.get("/registry/hardware/Shared_Chip")).status_code == 404:
        assert time.monotonic() < deadline, found.text
        time.sleep(0.2)
    assert found.json()["custom"] is True
    assert b.post("/registry/hardware", json={**TOY_CHIP, "name": "Shared Chip"}).status_code == 409


def _sleep_job(api, seconds):
    # a tag that never reads as a number: a bare hex such as "70e435..." leads with 70e435 (infinite)
    tag = f"job-{uuid.uuid4().hex}"
    response = api.post("/jobs", json={"kind": "sleep", "params": {"seconds": seconds, "tag": tag}})
    assert response.status_code in (200, 202), response.text
    return wait_job(api, response.json()["id"], until=("running",))


def _occupy(target, other, seconds):
    """Keep ``target``'s only worker busy for ``seconds`` and leave ``other``'s free; returns the
    job that occupies it. Either server may take a queued job: if ``other`` takes the first, the
    second goes to ``target`` and the first is cancelled."""
    _wait_idle(target, other)
    first = _sleep_job(other, seconds)
    if target.get("/health").json()["workers"]["busy"] == 1:
        return first
    second = _sleep_job(other, seconds)
    assert target.get("/health").json()["workers"]["busy"] == 1
    other.delete(f"/jobs/{first['id']}")
    _wait_idle(other)
    return second


def _wait_idle(*servers, timeout=90.0):   # a replaced worker imports the package first: slow on a busy machine
    deadline = time.monotonic() + timeout
    for api in servers:
        while (workers := api.get("/health").json()["workers"])["busy"] or workers["ready"] < workers["size"]:
            assert time.monotonic() < deadline, workers
            time.sleep(0.05)


def test_a_request_is_answered_when_another_server_runs_its_job(pair):
    a, b = (httpx.Client(base_url=s.url, timeout=60) for s in pair)
    occupier = _occupy(b, a, 60)
    answer = b.post("/parallelism", json={"model": "Llama3_70B", "fleet": "Lab_64_H100", "batch_size": 256})
    assert answer.status_code == 200, answer.text
    assert b.get(f"/jobs/{occupier['id']}").json()["status"] == "running"   # b's only worker is still busy: a ran it
    b.delete(f"/jobs/{occupier['id']}")
    assert answer.headers["X-Cache"] == "miss"
    again = a.post("/parallelism", json={"model": "Llama3_70B", "fleet": "Lab_64_H100", "batch_size": 256})
    assert again.json() == answer.json() and again.headers["X-Cache"] == "hit"
    assert again.headers["X-Job-Id"] == answer.headers["X-Job-Id"]


def test_a_cancel_sent_to_another_server_stops_the_worker(pair):
    a, b = (httpx.Client(base_url=s.url, timeout=30) for s in pair)
    _occupy(b, a, 8)
    job = _sleep_job(a, 60)                                        # on a: b's worker is busy
    restarts = a.get("/health").json()["workers"]["restarts"]
    assert b.delete(f"/jobs/{job['id']}").json()["status"] == "cancelled"
    deadline = time.monotonic() + 3 * HEARTBEAT_S
    while a.get("/health").json()["workers"]["restarts"] == restarts:   # a's worker was killed and replaced
        assert time.monotonic() < deadline, "the worker running a job cancelled elsewhere was not stopped"
        time.sleep(0.2)
    assert a.get(f"/jobs/{job['id']}").json()["status"] == "cancelled"


def test_the_jobs_of_a_crashed_server_are_finished_by_another(pair, capsys):
    a_server, b_server = pair
    a, b = (httpx.Client(base_url=s.url, timeout=30) for s in pair)
    _occupy(b, a, 4)                                           # so that a takes the job
    job = running = _sleep_job(a, 2)
    assert running["attempts"] == 1
    a_server.stop(kill=True)                                   # a crash: no clean-up
    finished = wait_job(b, job["id"], timeout=3 * HEARTBEAT_S + 10)
    assert finished["status"] == "succeeded" and finished["attempts"] == 2
    assert "interrupted" in finished["note"]
    assert b.get(f"/jobs/{job['id']}/result").json()["slept_s"] == 2
    assert main(["jobs", "show", job["id"], "--db", b_server.db]) == EXIT_OK      # the CLI reads PostgreSQL too
    assert json.loads(capsys.readouterr().out)["status"] == "succeeded"
    a_server.start()                                           # back, for the other tests' teardown


def test_the_shared_store_example_runs_on_postgresql(postgres):
    import subprocess
    import sys
    from pathlib import Path
    url = postgres.create_database("example_" + uuid.uuid4().hex[:12])
    script = Path(__file__).resolve().parents[1] / "examples" / "demo_shared_store.py"
    out = subprocess.run([sys.executable, str(script), "--db", url], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "X-Cache: hit" in out.stdout and "b knew a's new accelerator" in out.stdout
    assert "(attempt 2; note: interrupted" in out.stdout


def test_a_database_outage_is_answered_with_503_and_survived(pair, postgres):
    server = pair[1]
    api = httpx.Client(base_url=server.url, timeout=30)
    postgres.stop()
    try:
        down = api.get("/jobs")
        assert down.status_code == 503 and down.json()["error"] == "unavailable", down.text
        assert down.headers["Retry-After"] and "password" not in down.text
        refused = api.post("/jobs", json={"kind": "sleep", "params": {"seconds": 0, "tag": "during-outage"}})
        assert refused.status_code == 503
        time.sleep(2.5)                                           # the supervisor meets the outage too
    finally:
        postgres.start()
    deadline = time.monotonic() + 20
    while api.get("/jobs").status_code != 200:                  # the next operation reconnects
        assert time.monotonic() < deadline
        time.sleep(0.2)
    job = api.post("/jobs", json={"kind": "sleep", "params": {"seconds": 0, "tag": "after-outage"}}).json()
    assert wait_job(api, job["id"])["status"] == "succeeded"     # the supervisor claims again
    assert server.log().count("retrying every second") == 1      # one line for the outage, not one per retry
