import os
import warnings

import pytest

from mlsysim_opt.catalog import isolated
from mlsysim_opt.precision import PrecisionFallbackWarning


@pytest.fixture(autouse=True)
def _registry_isolation():
    # Records a test adds to the registry must not leak into the next test.
    with isolated():
        yield


@pytest.fixture(autouse=True)
def _quiet_fallbacks():
    # Fallback warnings are asserted where they matter (test_precision); elsewhere they are noise.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PrecisionFallbackWarning)
        yield


@pytest.fixture(scope="session")
def postgres():
    """One real PostgreSQL server for the whole run (tests that share it use their own databases)."""
    from postgres_server import PostgresServer, why_not
    reason = why_not()
    if reason:
        pytest.skip(reason)
    server = PostgresServer().start()
    try:
        yield server
    finally:
        server.cleanup()


def _running_server(db, workers: int):
    from mlsysim_opt.service.local import LocalServer
    server = LocalServer(db, workers=workers, job_timeout=120.0, max_grid=30_000, max_queue=100).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def shared_server(tmp_path_factory):
    """One service (SQLite, two Dask workers) for the test modules that need an ordinary server
    and change nothing the others read: each start costs seconds of both cores. Modules that
    stop, kill or reconfigure a server start their own."""
    yield from _running_server(tmp_path_factory.mktemp("shared_service") / "jobs.sqlite3", workers=2)


@pytest.fixture(scope="session")
def shared_postgres_server(postgres):
    """The same on a PostgreSQL database of its own (one Dask worker)."""
    import uuid
    yield from _running_server(postgres.create_database("shared_" + uuid.uuid4().hex[:12]), workers=1)


def pytest_configure(config):
    # A pytest-xdist worker: its --basetemp is <the run's temporary folder>/popen-gwN, so the parent
    # is one folder all workers of this run share (and pytest cleans up).
    if hasattr(config, "workerinput") and config.option.basetemp:
        from pathlib import Path

        from example_runs import share_runs_in
        share_runs_in(Path(config.option.basetemp).parent / "example-runs")


def pytest_collection_modifyitems(config, items):
    # In one process the examples' own checks go last, so that the in-process tests before them run
    # while the examples run in the background (below) instead of waiting for them. Spread over
    # several processes (pytest-xdist, a module to a process) the examples and the slow modules go
    # first: long modules handed out late leave one process working while the other has nothing.
    in_workers = config.getoption("numprocesses", None) or os.environ.get("PYTEST_XDIST_WORKER")
    if in_workers:
        items.sort(key=lambda item: (item.originalname != "test_example_runs", item.get_closest_marker("slow") is None))
    else:
        items.sort(key=lambda item: item.originalname == "test_example_runs")


def pytest_collection_finish(session):
    # A whole run checks every example: start them in the background so that they use the second
    # core while the in-process tests use this one (each test still awaits its own script's run).
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return   # several test processes already keep every core busy; each runs what it is given
    from example_runs import prefetch
    scripts = [item.callspec.params["script"] for item in session.items if item.originalname == "test_example_runs"]
    if len(scripts) > 1:
        prefetch([getattr(script, "stem", str(script)) for script in scripts])
