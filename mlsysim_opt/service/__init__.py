"""The HTTP service (``mlsysim-opt serve``): the library's registry, solvers and jobs over JSON,
with worker processes for long work, a job store (SQLite, or PostgreSQL shared by several
servers), and plots. See docs/service.md.

Names are imported on first use, so ``mlsysim_opt.service.plots`` or a worker process does not
pay for the web framework."""
from importlib import import_module

_WHERE = {"create_app": "app", "Capability": "app", "CAPABILITIES": "app", "ServiceConfig": "config",
          "JobKind": "jobs", "JOB_KINDS": "jobs", "job_kind": "jobs", "serve": "server"}

__all__ = list(_WHERE)


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
