"""Run the service under uvicorn (``mlsysim-opt serve``)."""
from __future__ import annotations

import importlib.util
import logging

from ..databases import masked
from ..errors import InputError
from .config import ServiceConfig


def serve(config: ServiceConfig) -> None:
    """Serve until interrupted (Ctrl-C or SIGTERM): running jobs go back to the queue and resume at
    the next start."""
    for option, module in (("http", "httptools"), ("loop", "uvloop")):
        if getattr(config, option) == module and importlib.util.find_spec(module) is None:
            raise InputError(option, module, "is not installed", f"pip install {module}, or pass --{option} auto")
    if config.dask is None:
        from .executor import prestart
        settings = config.resolved()   # the local cluster starts while this process imports the web stack
        prestart(settings.workers, settings.worker_memory, settings.max_attempts)
    import uvicorn

    from .app import create_app
    app = create_app(config)
    settings = app.state.service.config
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    print(f"mlsysim-opt service on http://{settings.host}:{settings.port}  (jobs: {masked(settings.db)}, "
          f"{_cluster(settings)}, job timeout {settings.job_timeout:g} s, "
          f"max grid {settings.max_grid:,}{', test jobs enabled' if settings.enable_test_jobs else ''})", flush=True)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning", access_log=False,
                timeout_graceful_shutdown=5, http=settings.http, loop=settings.loop)


def _cluster(settings: ServiceConfig) -> str:
    if settings.dask:
        return f"jobs on the Dask cluster at {settings.dask}"
    return f"a local Dask cluster of {settings.workers} worker process(es) of {settings.worker_memory}"
