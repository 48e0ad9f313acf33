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


def pytest_collection_modifyitems(config, items):
    # In one process the examples' own checks go last, so that the in-process tests before them run
    # while the examples run in the background (below) instead of waiting for them. Spread over
    # several processes (pytest-xdist) they go first: long items early keep the workers' loads even.
    in_workers = config.getoption("numprocesses", None) or os.environ.get("PYTEST_XDIST_WORKER")
    items.sort(key=lambda item: (item.originalname == "test_example_runs") != bool(in_workers))


def pytest_collection_finish(session):
    # A whole run checks every example: start them in the background so that they use the second
    # core while the in-process tests use this one (each test still awaits its own script's run).
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return   # several test processes already keep every core busy; each runs what it is given
    from example_runs import prefetch
    scripts = [item.callspec.params["script"] for item in session.items if item.originalname == "test_example_runs"]
    if len(scripts) > 1:
        prefetch([getattr(script, "stem", str(script)) for script in scripts])
