"""Where jobs live: an embedded SQLite file by default, or a PostgreSQL database by URL, behind one
small interface.

Every status change is one conditional UPDATE (``... WHERE status = 'running' AND owner = me``), so
a job that is cancelled while its worker finishes ends in exactly one state, whichever came first.

Life cycle::

    queued --claim--> running --finish--> succeeded | failed
       |                 |--requeue (worker died, attempts left; server restart)--> queued
       '--cancel--> cancelled <--cancel--'

Several servers may share one database (PostgreSQL, or one SQLite file on one machine). Each
server registers itself in ``servers`` and renews a heartbeat; a claimed job records its ``owner``.
A running job is only ever recovered (re-queued, or failed once its attempts are used up) when its
owner is gone: it never registered, its heartbeat is older than :data:`LEASE_S`, or it ran on this
host and its process no longer exists (so a crashed server's jobs come back at once on restart).

Only server processes write; worker processes never open the database.
"""
from __future__ import annotations

import abc
import json
import os
import socket
import sqlite3
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional

TERMINAL = ("succeeded", "failed", "cancelled")
LIVE = ("queued", "running")
SCHEMA_VERSION = "3"
HEARTBEAT_S = 5.0
"""How often a server renews its heartbeat (and looks for jobs orphaned by other servers)."""
LEASE_S = 30.0
"""A server silent for this long is presumed dead and its running jobs are recovered. Servers that
share a database need clocks that agree to well within this (NTP does)."""
LOCAL_OWNER = "local"
"""The client owner of jobs and records made without an API key (local use, and rows written before
the store knew client owners, whose ``submitter`` is NULL)."""


class QueueFull(Exception):
    """A new job was refused: ``max_queue`` jobs are already waiting."""


class StoreUnavailable(Exception):
    """The database cannot be reached (a PostgreSQL server restarting, a network failure); the
    operation did not happen and may be retried."""


@dataclass(frozen=True)
class Job:
    """A job row without its (possibly large) result."""

    id: str
    kind: str
    cache_key: str
    params: str
    status: str
    progress: float
    attempts: int
    timeout_s: float
    created_at: float
    started_at: Optional[float]
    finished_at: Optional[float]
    worker_pid: Optional[int]
    note: Optional[str]
    error: Optional[dict]
    submitter: Optional[str] = None
    """The client (API key name, or LOCAL_OWNER) that submitted it; ``owner`` is the claiming server."""

    def info(self, cached: bool = False) -> dict:
        return {"id": self.id, "kind": self.kind, "status": self.status, "progress": self.progress,
                "attempts": self.attempts, "timeout_s": self.timeout_s, "created_at": self.created_at,
                "started_at": self.started_at, "finished_at": self.finished_at,
                "worker_pid": self.worker_pid if self.status == "running" else None, "note": self.note,
                "error": self.error, "cached": cached,
                "result_url": f"/jobs/{self.id}/result" if self.status == "succeeded" else None}


class JobStore(abc.ABC):
    """What the service needs from a database. Implementations must make each method atomic."""

    location: str
    """Where the store is, for messages (a path, or a URL without its password)."""
    server_id: str
    """This store's identity as a job owner."""

    @abc.abstractmethod
    def submit(self, kind: str, cache_key: str, params: str, timeout_s: float,
               max_queue: int | None = None, submitter: str | None = None) -> tuple[Job, bool]:
        """The live or succeeded job with this key submitted by the same client (``cached`` True),
        else a new queued job of ``submitter`` (QueueFull if ``max_queue`` jobs already wait)."""

    @abc.abstractmethod
    def get(self, job_id: str) -> Optional[Job]: ...

    @abc.abstractmethod
    def result(self, job_id: str) -> Optional[str]:
        """The result JSON text of a succeeded job."""

    @abc.abstractmethod
    def list(self, status: str | None = None, limit: int = 100, submitter: str | None = None) -> list[Job]:
        """Newest first; only ``submitter``'s jobs when given."""

    @abc.abstractmethod
    def counts(self) -> dict[str, int]: ...

    @abc.abstractmethod
    def queue_length(self) -> int:
        """Jobs waiting for a worker."""

    @abc.abstractmethod
    def claim(self, worker_pid: int | None = None) -> Optional[Job]:
        """Oldest queued job, now running and owned by this store (attempts + 1); ``worker_pid``
        may be given later with :meth:`started` (a cluster picks the worker after the claim)."""

    @abc.abstractmethod
    def started(self, job_id: str, worker_pid: int) -> bool:
        """A worker process (this pid) began a job running here."""

    @abc.abstractmethod
    def rerun(self, job_id: str, note: str) -> bool:
        """Its worker died and the job runs again without leaving this server: attempts + 1, no
        worker yet, progress 0."""

    @abc.abstractmethod
    def progress(self, job_id: str, fraction: float) -> None: ...

    @abc.abstractmethod
    def finish(self, job_id: str, status: str, result: str | None = None, error: dict | None = None,
               note: str | None = None) -> bool:
        """Running (here) -> succeeded/failed; False if it no longer was (e.g. cancelled)."""

    @abc.abstractmethod
    def requeue(self, job_id: str, note: str, refund_attempt: bool = False) -> bool:
        """Running (here) -> queued (its worker died, or the server is stopping)."""

    @abc.abstractmethod
    def cancel(self, job_id: str) -> Optional[str]:
        """Queued/running -> cancelled; returns the status it had (None if unknown id)."""

    @abc.abstractmethod
    def register(self) -> None:
        """Announce this store as a live server (before claiming, when others share the database)."""

    @abc.abstractmethod
    def heartbeat(self) -> None:
        """Renew this server's lease."""

    @abc.abstractmethod
    def unregister(self) -> None:
        """Leave cleanly (after re-queueing the jobs still running here)."""

    @abc.abstractmethod
    def recover(self, max_attempts: int) -> list[str]:
        """Jobs left running by servers that are gone are re-queued while attempts remain, else
        failed; returns their ids. Never touches this server's own jobs."""

    @abc.abstractmethod
    def save_record(self, kind: str, key: str, body: dict, submitter: str | None = None) -> None: ...

    @abc.abstractmethod
    def records(self) -> Iterable[tuple[str, str, dict]]: ...

    @abc.abstractmethod
    def delete_record(self, kind: str, key: str, submitter: str) -> Optional[bool]:
        """Delete a record ``submitter`` added: True if deleted, False if another client added it,
        None if there is no such record."""

    # -- API keys (only their SHA-256 is stored; see auth.py) ------------------------------------
    @abc.abstractmethod
    def add_key(self, name: str, key_hash: str, scopes: str) -> bool:
        """Store a new key; False if the name was ever used (revoked names are not reused, so a
        new key never inherits an old key's jobs)."""

    @abc.abstractmethod
    def key_by_hash(self, key_hash: str) -> Optional[tuple[str, str]]:
        """(name, scopes) of the live key with this hash."""

    @abc.abstractmethod
    def keys(self) -> list[dict]:
        """Every key: name, scopes, created_at, revoked_at (never the hash)."""

    @abc.abstractmethod
    def revoke_key(self, name: str) -> bool:
        """False if there is no live key of that name."""

    @abc.abstractmethod
    def live_keys(self) -> int: ...

    @abc.abstractmethod
    def close(self) -> None: ...


_COLUMNS = ("id, kind, cache_key, params, status, progress, attempts, timeout_s, created_at, started_at, "
            "finished_at, worker_pid, note, error, submitter")
_SUBMITTED_BY = "COALESCE(submitter, ?) = ?"
"""A row's client is the given one (args: LOCAL_OWNER, client); rows from before clients were
recorded belong to LOCAL_OWNER."""


class SQLJobStore(JobStore):
    """The store written once in the SQL that SQLite and PostgreSQL share (``?`` placeholders, upserts
    with ``ON CONFLICT``); a dialect supplies the connection, its transactions and the DDL.

    One connection per store, shared by the server's threads under a lock."""

    LOCK_QUEUED = ""
    """What a dialect appends to the SELECT that picks a queued job, so that two servers never claim
    the same one."""

    def __init__(self, location: str):
        self.location = location
        self.server_id = uuid.uuid4().hex
        self._lock = threading.RLock()
        with self._lock, self._tx() as run:
            self._create_schema(run)

    # -- what a dialect provides -----------------------------------------------------------------
    @abc.abstractmethod
    def _tx(self, write: bool = True) -> Iterator["_Run"]:
        """A context manager: one transaction, committed on success, rolled back on error; yields a
        function ``run(sql, args) -> cursor``. ``write=False`` promises that it only reads."""

    @abc.abstractmethod
    def _create_schema(self, run: "_Run") -> None: ...

    @abc.abstractmethod
    def _disconnect(self) -> None: ...

    def close(self) -> None:
        """Closed without unregistering (as in a crash): a graceful stop calls unregister() first."""
        _REGISTERED_HERE.discard(self.server_id)
        with self._lock:
            self._disconnect()

    def _serialize_key(self, run: "_Run", key: str) -> None:
        """Hold, until the transaction ends, a lock that other servers submitting ``key`` wait for."""

    # -- helpers ---------------------------------------------------------------------------------
    @staticmethod
    def _one(run, sql: str, args: tuple = ()) -> Optional[Job]:
        row = run(sql, args).fetchone()
        return _job(row) if row else None

    # -- reads -----------------------------------------------------------------------------------
    def get(self, job_id: str) -> Optional[Job]:
        with self._lock, self._tx(write=False) as run:
            return self._one(run, f"SELECT {_COLUMNS} FROM jobs WHERE id = ?", (job_id,))

    def result(self, job_id: str) -> Optional[str]:
        with self._lock, self._tx(write=False) as run:
            row = run("SELECT COALESCE(r.body, j.result) FROM jobs j LEFT JOIN results r ON r.id = j.id "
                      "WHERE j.id = ? AND j.status = 'succeeded'", (job_id,)).fetchone()
        return row[0] if row else None

    def list(self, status: str | None = None, limit: int = 100, submitter: str | None = None) -> list[Job]:
        where, args = [], []
        if status:
            where.append("status = ?")
            args.append(status)
        if submitter is not None:
            where.append(_SUBMITTED_BY)
            args += [LOCAL_OWNER, submitter]
        condition = f"WHERE {' AND '.join(where)} " if where else ""
        with self._lock, self._tx(write=False) as run:
            rows = run(f"SELECT {_COLUMNS} FROM jobs {condition}ORDER BY created_at DESC LIMIT ?",
                       (*args, limit)).fetchall()
        return [_job(r) for r in rows]

    def counts(self) -> dict[str, int]:
        with self._lock, self._tx(write=False) as run:
            rows = run("SELECT status, COUNT(*) FROM jobs GROUP BY status").fetchall()
        out = {s: 0 for s in (*LIVE, *TERMINAL)}
        out.update({s: int(n) for s, n in rows})
        return out

    def queue_length(self) -> int:
        with self._lock, self._tx(write=False) as run:
            return int(run("SELECT COUNT(*) FROM jobs WHERE status = 'queued'").fetchone()[0])

    # -- writes ----------------------------------------------------------------------------------
    def submit(self, kind: str, cache_key: str, params: str, timeout_s: float,
               max_queue: int | None = None, submitter: str | None = None) -> tuple[Job, bool]:
        submitter = submitter or LOCAL_OWNER
        with self._lock, self._tx() as run:
            self._serialize_key(run, cache_key)
            # the cache is per client: a hit never hands one client a job (or result) of another's
            found = self._one(run, f"SELECT {_COLUMNS} FROM jobs WHERE cache_key = ? AND {_SUBMITTED_BY} AND status IN "
                                   "('queued', 'running', 'succeeded') ORDER BY created_at DESC LIMIT 1",
                              (cache_key, LOCAL_OWNER, submitter))
            if found is not None:
                return found, True
            if max_queue is not None and run("SELECT COUNT(*) FROM jobs WHERE status = 'queued'").fetchone()[0] \
                    >= max_queue:
                raise QueueFull(max_queue)
            job_id = uuid.uuid4().hex
            run("INSERT INTO jobs (id, kind, cache_key, params, status, timeout_s, created_at, submitter) "
                "VALUES (?, ?, ?, ?, 'queued', ?, ?, ?)",
                (job_id, kind, cache_key, params, float(timeout_s), time.time(), submitter))
            return self._one(run, f"SELECT {_COLUMNS} FROM jobs WHERE id = ?", (job_id,)), False

    def claim(self, worker_pid: int | None = None) -> Optional[Job]:
        with self._lock, self._tx() as run:
            row = run("SELECT id FROM jobs WHERE status = 'queued' ORDER BY created_at LIMIT 1" + self.LOCK_QUEUED
                      ).fetchone()
            if row is None:
                return None
            taken = run("UPDATE jobs SET status = 'running', attempts = attempts + 1, started_at = ?, worker_pid = ?, "
                        "owner = ?, progress = 0 WHERE id = ? AND status = 'queued'",
                        (time.time(), worker_pid, self.server_id, row[0])).rowcount
            return self._one(run, f"SELECT {_COLUMNS} FROM jobs WHERE id = ?", (row[0],)) if taken == 1 else None

    def started(self, job_id: str, worker_pid: int) -> bool:
        with self._lock, self._tx() as run:
            return run("UPDATE jobs SET worker_pid = ?, started_at = ? WHERE id = ? AND status = 'running' AND owner = ?",
                       (worker_pid, time.time(), job_id, self.server_id)).rowcount == 1

    def rerun(self, job_id: str, note: str) -> bool:
        with self._lock, self._tx() as run:
            return run("UPDATE jobs SET attempts = attempts + 1, worker_pid = NULL, progress = 0, note = ? "
                       "WHERE id = ? AND status = 'running' AND owner = ?", (note, job_id, self.server_id)).rowcount == 1

    def progress(self, job_id: str, fraction: float) -> None:
        with self._lock, self._tx() as run:
            run("UPDATE jobs SET progress = ? WHERE id = ? AND status = 'running' AND owner = ?",
                (min(1.0, max(0.0, float(fraction))), job_id, self.server_id))

    def finish(self, job_id: str, status: str, result: str | None = None, error: dict | None = None,
               note: str | None = None) -> bool:
        assert status in ("succeeded", "failed")
        with self._lock, self._tx() as run:
            done = run(
                "UPDATE jobs SET status = ?, error = ?, finished_at = ?, worker_pid = NULL, "
                "progress = CASE WHEN ? = 'succeeded' THEN 1.0 ELSE progress END, "
                "note = COALESCE(?, note) WHERE id = ? AND status = 'running' AND owner = ?",
                (status, json.dumps(error) if error else None, time.time(), status, note, job_id,
                 self.server_id)).rowcount == 1
            if done and result is not None:
                run("INSERT INTO results (id, body) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET body = excluded.body",
                    (job_id, result))
            return done

    def requeue(self, job_id: str, note: str, refund_attempt: bool = False) -> bool:
        with self._lock, self._tx() as run:
            return run(
                "UPDATE jobs SET status = 'queued', worker_pid = NULL, owner = NULL, started_at = NULL, progress = 0, "
                "note = ?, attempts = attempts - ? WHERE id = ? AND status = 'running' AND owner = ?",
                (note, 1 if refund_attempt else 0, job_id, self.server_id)).rowcount == 1

    def cancel(self, job_id: str) -> Optional[str]:
        with self._lock, self._tx() as run:
            row = run("SELECT status FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                return None
            if row[0] in LIVE:
                run("UPDATE jobs SET status = 'cancelled', finished_at = ?, worker_pid = NULL, error = ? "
                    "WHERE id = ? AND status IN ('queued', 'running')",
                    (time.time(), json.dumps({"type": "Cancelled", "status": 409, "error": "cancelled",
                                              "message": f"cancelled by a client while {row[0]}", "problems": []}),
                     job_id))
            return row[0]

    # -- servers ---------------------------------------------------------------------------------
    def register(self) -> None:
        now = time.time()
        with self._lock, self._tx() as run:
            run("INSERT INTO servers (id, host, pid, started_at, heartbeat_at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at",
                (self.server_id, socket.gethostname(), os.getpid(), now, now))
        _REGISTERED_HERE.add(self.server_id)

    def heartbeat(self) -> None:
        self.register()   # an upsert: a server the others took for dead (too slow) is registered again

    def unregister(self) -> None:
        with self._lock, self._tx() as run:
            run("DELETE FROM servers WHERE id = ?", (self.server_id,))
        _REGISTERED_HERE.discard(self.server_id)

    def recover(self, max_attempts: int) -> list[str]:
        recovered = []
        with self._lock, self._tx() as run:
            servers = {sid: (host, pid, beat) for sid, host, pid, beat in
                       run("SELECT id, host, pid, heartbeat_at FROM servers WHERE id <> ?", (self.server_id,))}
            gone = {sid for sid, server in servers.items() if not _alive(sid, *server)}
            rows = run("SELECT id, attempts, owner FROM jobs WHERE status = 'running' AND "
                       "(owner IS NULL OR owner <> ?)", (self.server_id,)).fetchall()
            for job_id, attempts, owner in rows:
                if owner in servers and owner not in gone:
                    continue
                unchanged = "WHERE id = ? AND status = 'running' AND COALESCE(owner, '') = ?"
                if attempts < max_attempts:
                    note = (f"interrupted: its server stopped while it ran (attempt {attempts} of {max_attempts}); "
                            "re-queued")
                    done = run("UPDATE jobs SET status = 'queued', worker_pid = NULL, owner = NULL, started_at = NULL, "
                               "progress = 0, note = ? " + unchanged, (note, job_id, owner or "")).rowcount
                else:
                    error = {"type": "Interrupted", "status": 500, "error": "job_failed", "problems": [],
                             "message": f"its server stopped while it ran, on each of its {attempts} attempts"}
                    done = run("UPDATE jobs SET status = 'failed', worker_pid = NULL, finished_at = ?, error = ?, "
                               "note = 'interrupted: its server stopped' " + unchanged,
                               (time.time(), json.dumps(error), job_id, owner or "")).rowcount
                if done:
                    recovered.append(job_id)
            for sid in gone:
                run("DELETE FROM servers WHERE id = ?", (sid,))
        return recovered

    # -- records added by clients ----------------------------------------------------------------
    def save_record(self, kind: str, key: str, body: dict, submitter: str | None = None) -> None:
        with self._lock, self._tx() as run:
            run("INSERT INTO records (kind, key, body, created_at, submitter) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (kind, key) DO UPDATE SET body = excluded.body, created_at = excluded.created_at, "
                "submitter = excluded.submitter",
                (kind, key, json.dumps(body, sort_keys=True), time.time(), submitter or LOCAL_OWNER))

    def records(self) -> list[tuple[str, str, dict]]:
        with self._lock, self._tx(write=False) as run:
            rows = run("SELECT kind, key, body FROM records ORDER BY created_at").fetchall()
        return [(k, key, json.loads(body)) for k, key, body in rows]

    def delete_record(self, kind: str, key: str, submitter: str) -> Optional[bool]:
        with self._lock, self._tx() as run:
            if run("SELECT 1 FROM records WHERE kind = ? AND key = ?", (kind, key)).fetchone() is None:
                return None
            return run(f"DELETE FROM records WHERE kind = ? AND key = ? AND {_SUBMITTED_BY}",
                       (kind, key, LOCAL_OWNER, submitter)).rowcount == 1

    # -- API keys --------------------------------------------------------------------------------
    def add_key(self, name: str, key_hash: str, scopes: str) -> bool:
        with self._lock, self._tx() as run:
            return run("INSERT INTO api_keys (name, key_hash, scopes, created_at) VALUES (?, ?, ?, ?) "
                       "ON CONFLICT (name) DO NOTHING", (name, key_hash, scopes, time.time())).rowcount == 1

    def key_by_hash(self, key_hash: str) -> Optional[tuple[str, str]]:
        with self._lock, self._tx(write=False) as run:
            row = run("SELECT name, scopes FROM api_keys WHERE key_hash = ? AND revoked_at IS NULL",
                      (key_hash,)).fetchone()
        return (row[0], row[1]) if row else None

    def keys(self) -> list[dict]:
        with self._lock, self._tx(write=False) as run:
            rows = run("SELECT name, scopes, created_at, revoked_at FROM api_keys ORDER BY created_at").fetchall()
        return [{"name": n, "scopes": s, "created_at": c, "revoked_at": r} for n, s, c, r in rows]

    def revoke_key(self, name: str) -> bool:
        with self._lock, self._tx() as run:
            return run("UPDATE api_keys SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL",
                       (time.time(), name)).rowcount == 1

    def live_keys(self) -> int:
        with self._lock, self._tx(write=False) as run:
            return int(run("SELECT COUNT(*) FROM api_keys WHERE revoked_at IS NULL").fetchone()[0])


_Run = Any  # run(sql: str, args: tuple = ()) -> a DB-API cursor


_REGISTERED_HERE: set[str] = set()
"""Server ids registered by stores of this process (a dead server's process id may be reused by a
new one, ours)."""


def _alive(server_id: str, host: str, pid: int, heartbeat_at: float) -> bool:
    """Whether the server with this registration still runs, as far as can be told from here."""
    if time.time() - float(heartbeat_at) > LEASE_S:
        return False
    if host != socket.gethostname() or os.name == "nt":
        return True                            # another machine (or no signal 0 to ask with): trust the lease
    if pid == os.getpid():                     # this process: alive only if it is one of its own stores
        return server_id in _REGISTERED_HERE
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:                    # a process of another user: alive
        return True
    return True


def _job(row: tuple) -> Job:
    values = list(row)
    values[13] = json.loads(values[13]) if values[13] else None
    return Job(*values)


# ------------------------------------------------------------------------------------------------
# SQLite


class SQLiteJobStore(SQLJobStore):
    """One file. WAL journal, so readers (e.g. ``mlsysim-opt jobs``) never block the server;
    synchronous=NORMAL, so a commit survives a crash of the process (an operating-system crash may
    lose the last commits). Writes take the file's write lock at once (BEGIN IMMEDIATE), which is
    what keeps two servers on one file from claiming the same job."""

    def __init__(self, path: str | Path):
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        super().__init__(self.path)

    @contextmanager
    def _tx(self, write: bool = True):
        if not write:                          # one SELECT at a time reads a consistent snapshot
            yield self._db.execute
            return
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db.execute
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _create_schema(self, run) -> None:
        for statement in _DDL.format(real="REAL").split(";"):
            if statement.strip():
                run(statement)
        for table, column in ADDED_COLUMNS:                                   # a file from an earlier schema
            if column not in {row[1] for row in run(f"PRAGMA table_info({table})")}:
                run(f"ALTER TABLE {table} ADD COLUMN {column} TEXT")
        run("INSERT INTO meta (key, value) VALUES ('schema_version', ?) ON CONFLICT (key) "
            "DO UPDATE SET value = excluded.value", (SCHEMA_VERSION,))

    def _disconnect(self) -> None:
        self._db.close()


_DDL = """
    CREATE TABLE IF NOT EXISTS jobs (
        id TEXT PRIMARY KEY, kind TEXT NOT NULL, cache_key TEXT NOT NULL, params TEXT NOT NULL,
        status TEXT NOT NULL, progress {real} NOT NULL DEFAULT 0, attempts INTEGER NOT NULL DEFAULT 0,
        timeout_s {real} NOT NULL, created_at {real} NOT NULL, started_at {real}, finished_at {real},
        worker_pid INTEGER, note TEXT, error TEXT, result TEXT, owner TEXT, submitter TEXT);
    CREATE INDEX IF NOT EXISTS jobs_by_key ON jobs (cache_key, status);
    CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs (status, created_at);
    CREATE TABLE IF NOT EXISTS records (
        kind TEXT NOT NULL, key TEXT NOT NULL, body TEXT NOT NULL, created_at {real} NOT NULL, submitter TEXT,
        PRIMARY KEY (kind, key));
    CREATE TABLE IF NOT EXISTS servers (
        id TEXT PRIMARY KEY, host TEXT NOT NULL, pid INTEGER NOT NULL, started_at {real} NOT NULL,
        heartbeat_at {real} NOT NULL);
    CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS results (id TEXT PRIMARY KEY, body TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS api_keys (
        name TEXT PRIMARY KEY, key_hash TEXT NOT NULL UNIQUE, scopes TEXT NOT NULL, created_at {real} NOT NULL,
        revoked_at {real})
"""
"""The tables, in SQL both dialects accept; ``{real}`` is the dialect's double-precision type.
``submitter`` is the client (API key name) a job or record belongs to; ``owner`` the server running
a job. Results live in ``results``: a column after a megabyte-long result in a ``jobs`` row (as the
added ``owner`` and ``submitter`` are) is only reached through the result's overflow pages, which
made reading such a job 100x slower (2 ms instead of 20 us). ``jobs.result`` holds the results of
files from before."""
ADDED_COLUMNS = (("jobs", "owner"), ("jobs", "submitter"), ("records", "submitter"))
"""Columns added after schema 1 (all TEXT), added in place to a database from an earlier version."""


# ------------------------------------------------------------------------------------------------
# choosing a store


def open_store(location: str) -> JobStore:
    """A store for ``location``: a file path (SQLite) or a ``postgresql://`` URL."""
    if "://" in location:
        scheme = location.split("://", 1)[0].split("+", 1)[0].lower()
        if scheme not in ("postgres", "postgresql"):
            from ..databases import masked
            from ..errors import InputError
            raise InputError("db", masked(location), f"is a {scheme!r} URL; the job store is a SQLite file or "
                             "PostgreSQL", "give a file path or postgresql://user:password@host:port/database")
        from .store_postgres import PostgresJobStore
        return PostgresJobStore(location)
    return SQLiteJobStore(location)


def read_only(location: str) -> JobStore:
    """The store of a (possibly running) server, for ``mlsysim-opt jobs``."""
    if "://" not in location and not Path(location).exists():
        from ..errors import InputError
        raise InputError("db", location, "does not exist", "pass the --db the server was started with")
    return open_store(location)
