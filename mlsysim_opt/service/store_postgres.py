"""The job store in a PostgreSQL database, so that several servers (on one machine or many) share one
queue, one cache and one set of client-added records.

    mlsysim-opt serve --db postgresql://user:password@db.example.org:5432/mlsysim

The SQL is the one :class:`~mlsysim_opt.service.store.SQLJobStore` shares with SQLite; what differs
is here:

* claiming picks the oldest queued job with ``FOR UPDATE SKIP LOCKED``: two servers never take the
  same job and never wait for each other;
* submitting takes a transaction-scoped advisory lock on the request's cache key, so identical
  requests sent to two servers at once still make one job;
* the driver is psycopg 3 or psycopg2, whichever is installed (``postgresql+psycopg://`` or
  ``postgresql+psycopg2://`` chooses); ``pip install "mlsysim_opt[postgres]"`` installs one;
* a lost connection fails the operation with :class:`StoreUnavailable` (HTTP 503) and the next one
  reconnects.
"""
from __future__ import annotations

import importlib
from contextlib import contextmanager

from ..databases import POSTGRES_DRIVERS, installed_postgres_driver, masked
from ..errors import InputError
from .store import _DDL, ADDED_COLUMNS, SCHEMA_VERSION, SQLJobStore, StoreUnavailable

SCHEMA_LOCK = 0x6D6C_7379_6D6F  # advisory-lock id held while a server creates the tables


def driver_for(url: str) -> tuple[object, str]:
    """The DB-API module for ``url`` and the URL libpq understands (``postgresql://...``)."""
    scheme, _, rest = url.partition("://")
    wanted = scheme.partition("+")[2]
    if wanted and wanted not in POSTGRES_DRIVERS:
        raise InputError("db", masked(url), f"names the driver {wanted!r}, which is not a PostgreSQL driver this "
                         "store supports", "use postgresql://, postgresql+psycopg:// or postgresql+psycopg2://")
    name = wanted or installed_postgres_driver()
    try:
        return importlib.import_module(name or POSTGRES_DRIVERS[0]), "postgresql://" + rest
    except ImportError:
        raise InputError("db", masked(url), f"needs the {name or 'psycopg (or psycopg2)'} package, which is not "
                         "installed", 'pip install "mlsysim_opt[postgres]", or give a SQLite file path') from None


class PostgresJobStore(SQLJobStore):
    """One connection per server, shared by its threads under the store's lock."""

    LOCK_QUEUED = " FOR UPDATE SKIP LOCKED"

    def __init__(self, url: str):
        self._driver, self._dsn = driver_for(url)
        self._conn = None
        self._sql: dict[str, str] = {}
        super().__init__(masked(url))

    # -- connection ------------------------------------------------------------------------------
    def _connection(self):
        if self._conn is None or self._conn.closed:
            try:
                self._conn = self._driver.connect(self._dsn, connect_timeout=10)
            except self._driver.OperationalError as exc:
                raise StoreUnavailable(f"cannot connect to the job database {self.location}: "
                                       f"{_first_line(exc)}") from None
        return self._conn

    def _pg(self, sql: str) -> str:
        """``?`` placeholders become ``%s`` (the shared SQL contains no other ``?`` or ``%``)."""
        text = self._sql.get(sql)
        if text is None:
            text = self._sql[sql] = sql.replace("?", "%s")
        return text

    @contextmanager
    def _tx(self, write: bool = True):
        conn = self._connection()

        def run(sql: str, args: tuple = ()):
            cursor = conn.cursor()
            cursor.execute(self._pg(sql), args)
            return cursor

        try:
            yield run
            conn.commit()
        except (self._driver.OperationalError, self._driver.InterfaceError) as exc:
            self._drop()
            raise StoreUnavailable(f"the job database {self.location} stopped answering: {_first_line(exc)}") from None
        except BaseException:
            try:
                conn.rollback()
            except Exception:   # the rollback of a broken connection: the next call reconnects
                self._drop()
            raise

    def _drop(self) -> None:
        try:
            self._conn.close()
        except Exception:
            pass
        self._conn = None

    # -- dialect ---------------------------------------------------------------------------------
    def _create_schema(self, run) -> None:
        run("SELECT pg_advisory_xact_lock(?)", (SCHEMA_LOCK,))    # servers starting together take turns
        for statement in _DDL.format(real="DOUBLE PRECISION").split(";"):
            if statement.strip():
                run(statement)
        # a database from an earlier schema; ALTER only when needed, because it locks the table
        # against servers already working in it (and can deadlock with their claims)
        present = set(run("SELECT table_name, column_name FROM information_schema.columns "
                          "WHERE table_schema = current_schema()").fetchall())
        for table, column in ADDED_COLUMNS:
            if (table, column) not in present:
                run(f"ALTER TABLE {table} ADD COLUMN {column} TEXT")
        run("INSERT INTO meta (key, value) VALUES ('schema_version', ?) ON CONFLICT (key) "
            "DO UPDATE SET value = excluded.value", (SCHEMA_VERSION,))

    def _serialize_key(self, run, key: str) -> None:
        run("SELECT pg_advisory_xact_lock(hashtext(?))", (key,))

    def _disconnect(self) -> None:
        if self._conn is not None:
            self._drop()


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
