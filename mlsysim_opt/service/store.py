"""Where jobs live: an embedded SQLite file by default, behind a small interface another database
could implement.

Every status change is one conditional UPDATE (``... WHERE status = 'running'``), so a job that is
cancelled while its worker finishes ends in exactly one state, whichever came first.

Life cycle::

    queued --claim--> running --finish--> succeeded | failed
       |                 |--requeue (worker died, attempts left; server restart)--> queued
       '--cancel--> cancelled <--cancel--'

Only the server process writes; worker processes never open the database.
"""
from __future__ import annotations

import abc
import json
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional

TERMINAL = ("succeeded", "failed", "cancelled")
LIVE = ("queued", "running")
SCHEMA_VERSION = "1"


class QueueFull(Exception):
    """A new job was refused: ``max_queue`` jobs are already waiting."""


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

    def info(self, cached: bool = False) -> dict:
        return {"id": self.id, "kind": self.kind, "status": self.status, "progress": self.progress,
                "attempts": self.attempts, "timeout_s": self.timeout_s, "created_at": self.created_at,
                "started_at": self.started_at, "finished_at": self.finished_at,
                "worker_pid": self.worker_pid if self.status == "running" else None, "note": self.note,
                "error": self.error, "cached": cached,
                "result_url": f"/jobs/{self.id}/result" if self.status == "succeeded" else None}


class JobStore(abc.ABC):
    """What the service needs from a database. Implementations must make each method atomic."""

    @abc.abstractmethod
    def submit(self, kind: str, cache_key: str, params: str, timeout_s: float,
               max_queue: int | None = None) -> tuple[Job, bool]:
        """The live or succeeded job with this key (``cached`` True), else a new queued job
        (QueueFull if ``max_queue`` jobs already wait)."""

    @abc.abstractmethod
    def get(self, job_id: str) -> Optional[Job]: ...

    @abc.abstractmethod
    def result(self, job_id: str) -> Optional[str]:
        """The result JSON text of a succeeded job."""

    @abc.abstractmethod
    def list(self, status: str | None = None, limit: int = 100) -> list[Job]: ...

    @abc.abstractmethod
    def counts(self) -> dict[str, int]: ...

    @abc.abstractmethod
    def queue_length(self) -> int:
        """Jobs waiting for a worker."""

    @abc.abstractmethod
    def claim(self, worker_pid: int) -> Optional[Job]:
        """Oldest queued job, now running on ``worker_pid`` (attempts + 1)."""

    @abc.abstractmethod
    def progress(self, job_id: str, fraction: float) -> None: ...

    @abc.abstractmethod
    def finish(self, job_id: str, status: str, result: str | None = None, error: dict | None = None,
               note: str | None = None) -> bool:
        """Running -> succeeded/failed; False if the job was no longer running (e.g. cancelled)."""

    @abc.abstractmethod
    def requeue(self, job_id: str, note: str, refund_attempt: bool = False) -> bool:
        """Running -> queued (its worker died, or the server is stopping)."""

    @abc.abstractmethod
    def cancel(self, job_id: str) -> Optional[str]:
        """Queued/running -> cancelled; returns the status it had (None if unknown id)."""

    @abc.abstractmethod
    def recover(self, max_attempts: int) -> list[str]:
        """At start-up: jobs a previous server left running are re-queued while attempts remain,
        else failed; returns their ids."""

    @abc.abstractmethod
    def save_record(self, kind: str, key: str, body: dict) -> None: ...

    @abc.abstractmethod
    def records(self) -> Iterable[tuple[str, str, dict]]: ...

    @abc.abstractmethod
    def close(self) -> None: ...


_COLUMNS = ("id, kind, cache_key, params, status, progress, attempts, timeout_s, created_at, started_at, "
            "finished_at, worker_pid, note, error")


class SQLiteJobStore(JobStore):
    """One connection shared by the server's threads under a lock; WAL journal so readers (e.g.
    ``mlsysim-opt jobs``) never block the server, synchronous=NORMAL so a commit survives a crash of
    the process (an OS crash may lose the last commits)."""

    def __init__(self, path: str | Path):
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript("""
                CREATE TABLE IF NOT EXISTS jobs (
                    id TEXT PRIMARY KEY, kind TEXT NOT NULL, cache_key TEXT NOT NULL, params TEXT NOT NULL,
                    status TEXT NOT NULL, progress REAL NOT NULL DEFAULT 0, attempts INTEGER NOT NULL DEFAULT 0,
                    timeout_s REAL NOT NULL, created_at REAL NOT NULL, started_at REAL, finished_at REAL,
                    worker_pid INTEGER, note TEXT, error TEXT, result TEXT);
                CREATE INDEX IF NOT EXISTS jobs_by_key ON jobs (cache_key, status);
                CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs (status, created_at);
                CREATE TABLE IF NOT EXISTS records (
                    kind TEXT NOT NULL, key TEXT NOT NULL, body TEXT NOT NULL, created_at REAL NOT NULL,
                    PRIMARY KEY (kind, key));
                CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
            """)
            self._db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (SCHEMA_VERSION,))

    # -- helpers ---------------------------------------------------------------------------------
    def _one(self, sql: str, args: tuple = ()) -> Optional[Job]:
        row = self._db.execute(sql, args).fetchone()
        return _job(row) if row else None

    # -- reads -----------------------------------------------------------------------------------
    def get(self, job_id: str) -> Optional[Job]:
        with self._lock:
            return self._one(f"SELECT {_COLUMNS} FROM jobs WHERE id = ?", (job_id,))

    def result(self, job_id: str) -> Optional[str]:
        with self._lock:
            row = self._db.execute("SELECT result FROM jobs WHERE id = ? AND status = 'succeeded'",
                                   (job_id,)).fetchone()
        return row[0] if row else None

    def list(self, status: str | None = None, limit: int = 100) -> list[Job]:
        with self._lock:
            if status:
                rows = self._db.execute(f"SELECT {_COLUMNS} FROM jobs WHERE status = ? ORDER BY created_at DESC "
                                        "LIMIT ?", (status, limit)).fetchall()
            else:
                rows = self._db.execute(f"SELECT {_COLUMNS} FROM jobs ORDER BY created_at DESC LIMIT ?",
                                        (limit,)).fetchall()
        return [_job(r) for r in rows]

    def counts(self) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute("SELECT status, COUNT(*) FROM jobs GROUP BY status").fetchall()
        out = {s: 0 for s in (*LIVE, *TERMINAL)}
        out.update({s: n for s, n in rows})
        return out

    def queue_length(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM jobs WHERE status = 'queued'").fetchone()[0]

    # -- writes ----------------------------------------------------------------------------------
    def submit(self, kind: str, cache_key: str, params: str, timeout_s: float,
               max_queue: int | None = None) -> tuple[Job, bool]:
        with self._lock:
            found = self._one(f"SELECT {_COLUMNS} FROM jobs WHERE cache_key = ? AND status IN "
                              "('queued', 'running', 'succeeded') ORDER BY created_at DESC LIMIT 1", (cache_key,))
            if found is not None:
                return found, True
            if max_queue is not None and self._db.execute(
                    "SELECT COUNT(*) FROM jobs WHERE status = 'queued'").fetchone()[0] >= max_queue:
                raise QueueFull(max_queue)
            job_id = uuid.uuid4().hex
            self._db.execute("INSERT INTO jobs (id, kind, cache_key, params, status, timeout_s, created_at) "
                             "VALUES (?, ?, ?, ?, 'queued', ?, ?)",
                             (job_id, kind, cache_key, params, float(timeout_s), time.time()))
            return self._one(f"SELECT {_COLUMNS} FROM jobs WHERE id = ?", (job_id,)), False

    def claim(self, worker_pid: int) -> Optional[Job]:
        with self._lock:
            row = self._db.execute("SELECT id FROM jobs WHERE status = 'queued' ORDER BY created_at LIMIT 1").fetchone()
            if row is None:
                return None
            self._db.execute("UPDATE jobs SET status = 'running', attempts = attempts + 1, started_at = ?, "
                             "worker_pid = ?, progress = 0 WHERE id = ? AND status = 'queued'",
                             (time.time(), worker_pid, row[0]))
            return self._one(f"SELECT {_COLUMNS} FROM jobs WHERE id = ?", (row[0],))

    def progress(self, job_id: str, fraction: float) -> None:
        with self._lock:
            self._db.execute("UPDATE jobs SET progress = ? WHERE id = ? AND status = 'running'",
                             (min(1.0, max(0.0, float(fraction))), job_id))

    def finish(self, job_id: str, status: str, result: str | None = None, error: dict | None = None,
               note: str | None = None) -> bool:
        assert status in ("succeeded", "failed")
        with self._lock:
            cur = self._db.execute(
                "UPDATE jobs SET status = ?, result = ?, error = ?, finished_at = ?, worker_pid = NULL, "
                "progress = CASE WHEN ? = 'succeeded' THEN 1.0 ELSE progress END, note = COALESCE(?, note) "
                "WHERE id = ? AND status = 'running'",
                (status, result, json.dumps(error) if error else None, time.time(), status, note, job_id))
            return cur.rowcount == 1

    def requeue(self, job_id: str, note: str, refund_attempt: bool = False) -> bool:
        with self._lock:
            cur = self._db.execute(
                "UPDATE jobs SET status = 'queued', worker_pid = NULL, started_at = NULL, progress = 0, note = ?, "
                "attempts = attempts - ? WHERE id = ? AND status = 'running'",
                (note, 1 if refund_attempt else 0, job_id))
            return cur.rowcount == 1

    def cancel(self, job_id: str) -> Optional[str]:
        with self._lock:
            row = self._db.execute("SELECT status FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                return None
            if row[0] in LIVE:
                self._db.execute(
                    "UPDATE jobs SET status = 'cancelled', finished_at = ?, worker_pid = NULL, error = ? "
                    "WHERE id = ? AND status IN ('queued', 'running')",
                    (time.time(), json.dumps({"type": "Cancelled", "status": 409, "error": "cancelled",
                                              "message": f"cancelled by a client while {row[0]}", "problems": []}),
                     job_id))
            return row[0]

    def recover(self, max_attempts: int) -> list[str]:
        with self._lock:
            rows = self._db.execute("SELECT id, attempts FROM jobs WHERE status = 'running'").fetchall()
            for job_id, attempts in rows:
                if attempts < max_attempts:
                    self._db.execute(
                        "UPDATE jobs SET status = 'queued', worker_pid = NULL, started_at = NULL, progress = 0, "
                        "note = ? WHERE id = ?",
                        (f"interrupted: the server stopped while it ran (attempt {attempts} of {max_attempts}); "
                         "re-queued", job_id))
                else:
                    error = {"type": "Interrupted", "status": 500, "error": "job_failed", "problems": [],
                             "message": f"the server stopped while it ran, on each of its {attempts} attempts"}
                    self._db.execute(
                        "UPDATE jobs SET status = 'failed', worker_pid = NULL, finished_at = ?, error = ?, note = ? "
                        "WHERE id = ?", (time.time(), json.dumps(error), "interrupted by a server restart", job_id))
        return [r[0] for r in rows]

    def save_record(self, kind: str, key: str, body: dict) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO records VALUES (?, ?, ?, ?)",
                             (kind, key, json.dumps(body, sort_keys=True), time.time()))

    def records(self) -> list[tuple[str, str, dict]]:
        with self._lock:
            rows = self._db.execute("SELECT kind, key, body FROM records ORDER BY created_at").fetchall()
        return [(k, key, json.loads(body)) for k, key, body in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _job(row: tuple) -> Job:
    values = list(row)
    values[13] = json.loads(values[13]) if values[13] else None
    return Job(*values)


def open_store(location: str) -> JobStore:
    """A store for ``location``: a file path (SQLite) or a ``postgresql://`` URL."""
    if location.startswith(("postgres://", "postgresql://")):
        from ..errors import InputError
        raise InputError("db", location, "needs a PostgreSQL adapter, which this installation does not have",
                         "use a SQLite file path; a PostgreSQL adapter needs the psycopg package "
                         "(see docs/service.md)")
    return SQLiteJobStore(location)


def read_only(location: str) -> SQLiteJobStore:
    """The store of a (possibly running) server, for ``mlsysim-opt jobs``."""
    if not Path(location).exists():
        from ..errors import InputError
        raise InputError("db", location, "does not exist", "pass the --db the server was started with")
    return SQLiteJobStore(location)
