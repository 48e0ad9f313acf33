"""The job store's contract, on SQLite and on a real PostgreSQL server with each driver: life cycle,
cache, cancellation, recovery of jobs whose server is gone (and only those), several processes
claiming from one queue, schema upgrade, and the PostgreSQL failure modes."""
import json
import multiprocessing
import os
import sqlite3
import time
import uuid

import pytest

from mlsysim_opt.errors import InputError
from mlsysim_opt.service import store as store_module
from mlsysim_opt.service.store import LEASE_S, SQLiteJobStore, StoreUnavailable, open_store, read_only

BACKENDS = ["sqlite", "postgresql+psycopg", "postgresql+psycopg2"]


@pytest.fixture(params=BACKENDS)
def location(request, tmp_path):
    """Where a fresh, empty store lives, for each backend."""
    if request.param == "sqlite":
        return str(tmp_path / "jobs.sqlite3")
    pytest.importorskip(request.param.partition("+")[2])
    server = request.getfixturevalue("postgres")
    url = server.create_database("jobs_" + uuid.uuid4().hex[:12])
    return url.replace("postgresql://", request.param + "://", 1)


@pytest.fixture
def stores(location):
    """``open()`` a store on the shared location; all are closed afterwards."""
    opened = []

    def open_():
        s = open_store(location)
        opened.append(s)
        return s

    yield open_
    for s in opened:
        s.close()


def test_life_cycle_and_cache(stores):
    store = stores()
    job, cached = store.submit("sleep", "k1", '{"seconds":1}', 10)
    assert not cached and job.status == "queued" and store.queue_length() == 1
    same, cached = store.submit("sleep", "k1", '{"seconds":1}', 10)
    assert cached and same.id == job.id
    running = store.claim(worker_pid=123)
    assert running.id == job.id and running.status == "running" and running.attempts == 1 and running.worker_pid == 123
    assert store.claim(worker_pid=124) is None
    store.progress(job.id, 0.5)
    assert store.get(job.id).progress == 0.5
    assert store.finish(job.id, "succeeded", result='{"ok":true}')
    assert not store.finish(job.id, "failed", error={"message": "late"})   # a job ends once
    assert store.result(job.id) == '{"ok":true}' and store.get(job.id).progress == 1.0
    assert store.submit("sleep", "k1", "{}", 10)[1] is True                  # succeeded jobs answer again
    assert store.counts()["succeeded"] == 1 and [j.id for j in store.list("succeeded")] == [job.id]
    assert store.list("failed") == [] and store.get("nope") is None and store.result("nope") is None


def test_failures_and_the_queue_limit(stores):
    store = stores()
    a = store.submit("sleep", "a", "{}", 10)[0]
    store.submit("sleep", "b", "{}", 10)
    with pytest.raises(store_module.QueueFull):
        store.submit("sleep", "c", "{}", 10, max_queue=2)
    assert store.submit("sleep", "a", "{}", 10, max_queue=2) == (store.get(a.id), True)   # the cache still answers
    assert store.claim(1).id == a.id                                          # oldest first
    assert store.finish(a.id, "failed", error={"message": "boom"}, note="went wrong")
    failed = store.get(a.id)
    assert failed.error == {"message": "boom"} and failed.note == "went wrong" and store.result(a.id) is None
    assert store.submit("sleep", "a", "{}", 10)[1] is False                   # failed jobs are not a cache


def test_cancel_and_requeue(stores):
    store = stores()
    a = store.submit("sleep", "a", "{}", 10)[0]
    assert store.cancel(a.id) == "queued" and store.get(a.id).status == "cancelled"
    assert store.cancel(a.id) == "cancelled" and store.cancel("nope") is None
    assert store.submit("sleep", "a", "{}", 10)[1] is False                   # cancelled jobs are not a cache
    b = store.claim(1)
    assert store.requeue(b.id, "worker died")
    assert store.get(b.id).status == "queued" and store.get(b.id).attempts == 1
    c = store.claim(2)
    assert c.id == b.id and c.attempts == 2
    assert store.requeue(c.id, "stopping", refund_attempt=True) and store.get(c.id).attempts == 1
    running = store.claim(3)
    assert store.cancel(running.id) == "running"
    assert not store.finish(running.id, "succeeded", result="{}")            # cancelled first: stays cancelled
    assert store.get(running.id).status == "cancelled"


def _claim_then_crash(location: str, register: bool) -> None:
    """A server that takes a job and dies without a word."""
    s = open_store(location)
    if register:
        s.register()
    s.claim(worker_pid=os.getpid())
    os._exit(0)


def _context():
    """Fork where there is one (children start in milliseconds, and so really race); spawn elsewhere.
    Children open their own connections."""
    return multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")


def _in_child(target, *args) -> None:
    process = _context().Process(target=target, args=args)
    process.start()
    process.join(60)
    assert process.exitcode == 0


@pytest.mark.parametrize("register", [True, False])
def test_jobs_of_a_crashed_server_come_back_at_once(stores, location, register):
    survivor = stores()
    survivor.register()
    job = survivor.submit("sleep", "x", "{}", 10)[0]
    _in_child(_claim_then_crash, location, register)
    assert survivor.get(job.id).status == "running" and survivor.get(job.id).attempts == 1
    assert survivor.recover(max_attempts=2) == [job.id]
    back = survivor.get(job.id)
    assert back.status == "queued" and "interrupted" in back.note and back.worker_pid is None
    assert survivor.recover(max_attempts=2) == []                            # once only
    _in_child(_claim_then_crash, location, register)
    assert survivor.recover(max_attempts=2) == [job.id]                      # second death: out of attempts
    failed = survivor.get(job.id)
    assert failed.status == "failed" and failed.error["type"] == "Interrupted"
    assert "2 attempts" in failed.error["message"]


def test_live_servers_keep_their_jobs_until_their_lease_runs_out(stores):
    a, b = stores(), stores()
    a.register()
    b.register()
    mine = a.submit("sleep", "a", "{}", 10)[0]
    a.claim(1)
    assert b.recover(2) == [] and a.recover(2) == []                         # alive, and never one's own
    with a._lock, a._tx() as run:                                             # a on another machine, silent
        run("UPDATE servers SET host = ?, heartbeat_at = ? WHERE id = ?",
            ("elsewhere", time.time() - LEASE_S / 2, a.server_id))
    assert b.recover(2) == []                                                 # lease not over yet
    with a._lock, a._tx() as run:
        run("UPDATE servers SET heartbeat_at = ? WHERE id = ?", (time.time() - 2 * LEASE_S, a.server_id))
    assert b.recover(2) == [mine.id]
    again = b.claim(2)
    assert again.id == mine.id and again.attempts == 2
    # a was only slow, not dead: what it reports late is ignored, b's answer counts
    assert not a.finish(mine.id, "succeeded", result='{"from":"a"}')
    assert not a.requeue(mine.id, "late") and b.finish(mine.id, "succeeded", result='{"from":"b"}')
    assert json.loads(b.result(mine.id)) == {"from": "b"}
    # its next heartbeat registers a again, and what it claims from then on is its own
    a.heartbeat()
    later = a.submit("sleep", "later", "{}", 10)[0]
    assert a.claim(3).id == later.id and b.recover(2) == []


def test_a_graceful_stop_leaves_no_registration(stores):
    a, b = stores(), stores()
    a.register()
    a.heartbeat()
    with a._lock, a._tx(write=False) as run:
        assert run("SELECT COUNT(*) FROM servers WHERE id = ?", (a.server_id,)).fetchone()[0] == 1
    a.unregister()
    with b._lock, b._tx(write=False) as run:
        assert run("SELECT COUNT(*) FROM servers").fetchone()[0] == 0


def _claim_all(location: str, out) -> None:
    s = open_store(location)
    s.register()
    taken = []
    while (job := s.claim(worker_pid=os.getpid())) is not None:
        taken.append(job.id)
    s.unregister()
    s.close()
    out.put(taken)


def _submit_all(location: str, keys: list, out) -> None:
    s = open_store(location)
    out.put([s.submit("sleep", key, "{}", 10)[0].id for key in keys])
    s.close()


def _race(target, location, extra, n=4):
    ctx = _context()
    out = ctx.Queue()
    procs = [ctx.Process(target=target, args=(location, *extra, out)) for _ in range(n)]
    for p in procs:
        p.start()
    results = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    return results


def test_several_servers_claim_each_job_exactly_once(stores, location):
    store = stores()
    ids = {store.submit("sleep", f"k{i}", "{}", 10)[0].id for i in range(60)}
    taken = [job for batch in _race(_claim_all, location, ()) for job in batch]
    assert len(taken) == len(set(taken)) == 60 and set(taken) == ids
    assert store.counts()["running"] == 60 and store.queue_length() == 0


def test_identical_requests_sent_to_several_servers_make_one_job_each(stores, location):
    keys = [f"same-{i}" for i in range(25)]
    answers = _race(_submit_all, location, (keys,))
    assert all(a == answers[0] for a in answers)                             # every server got the same job ids
    assert stores().counts()["queued"] == 25


def test_added_records_are_kept_and_replaced(stores):
    s = stores()
    s.save_record("hardware", "Chip", {"name": "Chip", "v": 1})
    s.save_record("models", "Net", {"name": "Net"})
    s.save_record("hardware", "Chip", {"name": "Chip", "v": 2})
    assert stores().records() == [("models", "Net", {"name": "Net"}), ("hardware", "Chip", {"name": "Chip", "v": 2})]


# ------------------------------------------------------------------------------------------------
# SQLite specifics


SCHEMA_1 = """
    CREATE TABLE jobs (id TEXT PRIMARY KEY, kind TEXT NOT NULL, cache_key TEXT NOT NULL, params TEXT NOT NULL,
        status TEXT NOT NULL, progress REAL NOT NULL DEFAULT 0, attempts INTEGER NOT NULL DEFAULT 0,
        timeout_s REAL NOT NULL, created_at REAL NOT NULL, started_at REAL, finished_at REAL,
        worker_pid INTEGER, note TEXT, error TEXT, result TEXT);
    CREATE TABLE records (kind TEXT NOT NULL, key TEXT NOT NULL, body TEXT NOT NULL, created_at REAL NOT NULL,
        PRIMARY KEY (kind, key));
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    INSERT INTO meta VALUES ('schema_version', '1');
    INSERT INTO jobs (id, kind, cache_key, params, status, attempts, timeout_s, created_at, result)
        VALUES ('old-running', 'sleep', 'k', '{}', 'running', 1, 10, 1.0, NULL),
               ('old-done', 'sleep', 'd', '{}', 'succeeded', 1, 10, 2.0, '{"kept": true}');
"""


def test_a_file_from_the_first_schema_is_upgraded_in_place(tmp_path):
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as db:
        db.executescript(SCHEMA_1)
    store = SQLiteJobStore(path)
    try:
        assert store.result("old-done") == '{"kept": true}'
        assert store.recover(max_attempts=2) == ["old-running"]               # no owner recorded: recovered
        assert store.get("old-running").status == "queued"
        with store._lock, store._tx(write=False) as run:
            version = run("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0]
        assert version == store_module.SCHEMA_VERSION
    finally:
        store.close()


def test_reading_a_store_that_does_not_exist_says_so(tmp_path):
    with pytest.raises(InputError) as info:
        read_only(str(tmp_path / "missing.sqlite3"))
    assert info.value.field == "db" and "does not exist" in str(info.value)


def test_other_database_urls_are_refused_and_file_names_are_files(tmp_path):
    with pytest.raises(InputError) as info:
        open_store("mysql://me:pw@db/jobs")
    assert info.value.field == "db" and "'mysql'" in str(info.value) and "pw@" not in str(info.value)
    store = open_store(str(tmp_path / "postgres.sqlite3"))                  # a file, whatever its name
    assert isinstance(store, SQLiteJobStore)
    store.close()


# ------------------------------------------------------------------------------------------------
# PostgreSQL specifics


def test_postgres_urls_hide_the_password_and_name_a_usable_driver():
    from mlsysim_opt.databases import masked
    from mlsysim_opt.service.store_postgres import driver_for
    assert masked("postgresql://me:s3cret@db:5432/jobs") == "postgresql://me:***@db:5432/jobs"
    assert masked("postgresql://me@db/jobs") == "postgresql://me@db/jobs" and masked("jobs.sqlite3") == "jobs.sqlite3"
    with pytest.raises(InputError) as info:
        driver_for("postgresql+asyncpg://me:s3cret@db/jobs")
    assert info.value.field == "db" and "asyncpg" in str(info.value) and "s3cret" not in str(info.value)
    assert driver_for("postgres://db/jobs")[1] == "postgresql://db/jobs"


def test_a_missing_driver_is_explained(monkeypatch):
    import importlib
    from mlsysim_opt.service import store_postgres
    real = importlib.import_module

    def without_drivers(name, *args):
        if name in store_postgres.POSTGRES_DRIVERS:
            raise ImportError(name)
        return real(name, *args)

    monkeypatch.setattr(store_postgres.importlib, "import_module", without_drivers)
    with pytest.raises(InputError) as info:
        open_store("postgresql://db/jobs")
    assert info.value.field == "db" and "pip install" in str(info.value)


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
def test_an_unreachable_database_is_reported_as_unavailable(driver):
    pytest.importorskip(driver)
    from postgres_server import free_port_for_nothing
    with pytest.raises(StoreUnavailable) as info:
        open_store(f"postgresql+{driver}://nobody:pw@127.0.0.1:{free_port_for_nothing()}/jobs")
    assert "cannot connect" in str(info.value) and "127.0.0.1" in str(info.value) and "pw@" not in str(info.value)


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
def test_a_lost_connection_fails_one_operation_and_the_next_reconnects(postgres, driver):
    pytest.importorskip(driver)
    url = postgres.create_database("lost_" + uuid.uuid4().hex[:12]).replace("postgresql://", f"postgresql+{driver}://")
    store = open_store(url)
    try:
        job = store.submit("sleep", "k", "{}", 10)[0]
        with store._lock, store._tx(write=False) as run:
            backend = run("SELECT pg_backend_pid()").fetchone()[0]
        admin = open_store(url)
        with admin._lock, admin._tx() as run:
            run("SELECT pg_terminate_backend(?)", (backend,))
        admin.close()
        with pytest.raises(StoreUnavailable) as info:
            store.get(job.id)
        assert "stopped answering" in str(info.value)
        assert store.get(job.id).status == "queued"                          # reconnected
    finally:
        store.close()
