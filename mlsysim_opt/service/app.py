"""The FastAPI application: registry browsing, forward solves, sweeps, audit, fleet sizing, generic
jobs and plots.

Two ways a capability runs:

* ``inline``: computed in the HTTP process (``Engine.solve`` takes tens of microseconds, a sweep of
  20,000 points about 0.1 s; larger sweeps go to a worker); nothing is queued or stored;
* ``job``: sent to a worker process through the job store (time limit, crash isolation, cache,
  persistence); the endpoint waits for the answer and returns it, or 202 with the job when it is
  still queued after the wait.

Adding a capability: register its job kind in ``jobs.py`` and add one line to ``CAPABILITIES``.
Every kind is also reachable as ``POST /jobs {"kind": ..., "params": ...}``.
"""
import asyncio
import base64
import json
import logging
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Callable, Literal, Optional

from fastapi import Body, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from ..databases import masked
from ..errors import MlsysimError
from ..types import CNNWorkload, HardwareNode, TransformerWorkload
from . import auth as _auth
from . import capabilities as _capabilities
from . import jobs as _jobs
from . import plots as _plots
from . import records as _records
from .auth import Caller
from .config import ServiceConfig
from .errors import ApiError, ErrorBody, from_library_error, validation_problems
from .schemas import (RECORD_REFS, AuditJSON, Health, JobInfo, JobKindInfo, JobRequest, RegistryEntry,
                      RegistryListing, record_schema)
from .store import TERMINAL, JobStore, QueueFull, SQLiteJobStore, StoreUnavailable, open_store
from .executor import JobExecutor

log = logging.getLogger("mlsysim_opt.service")


@dataclass(frozen=True)
class Capability:
    """One synchronous endpoint backed by a job kind."""

    path: str
    kind: str
    mode: Literal["inline", "job"]
    summary: str
    on_event_loop: bool = False
    """inline only: cheap enough to run on the event loop itself (no thread hop)."""
    as_job_when: Optional[Callable[[Any], bool]] = None
    """inline only: requests for which this returns True go to a worker process instead, so that a
    large one cannot hold the HTTP process (and every other request) for long."""


INLINE_SWEEP_POINTS = 20_000
"""Sweeps up to this many points are answered in the HTTP process (about 0.1 s); larger ones run
in a worker process."""

CAPABILITIES = [
    Capability("/solve", "solve", "inline", "Forward roofline solve (Engine.solve)", on_event_loop=True),
    Capability("/sweep", "sweep", "inline", "Vectorized sweep over a grid (Engine.sweep_table)",
               as_job_when=lambda p: _jobs.grid_points(p) > INLINE_SWEEP_POINTS),
    Capability("/fleet/size", "fleet_size", "job", "Fleet sizing over explicit candidates (MILP, HiGHS)"),
    Capability("/plan", "plan", "job", "Global fleet plan over time, or its cost-carbon front (MILP)"),
    *(Capability(path, kind, mode, summary) for path, kind, mode, summary in _capabilities.ENDPOINTS),
]

ERRORS = {status: {"model": ErrorBody, "description": text} for status, text in (
    (401, "no valid API key (see WWW-Authenticate)"), (403, "the API key lacks the scope this route needs"),
    (404, "unknown name (with suggestions) or job"), (413, "grid or body larger than the server's limit"),
    (422, "invalid input: each problem's field path, rule and bad value"))}


class Service:
    """The server's state: settings, job store and the executor running jobs on Dask."""

    def __init__(self, config: ServiceConfig):
        self.config = config.resolved()
        self.limits = _jobs.Limits(max_grid=self.config.max_grid, job_timeout=self.config.job_timeout)
        self.kinds = _jobs.enabled_kinds(self.config.enable_test_jobs)
        self.store: Optional[JobStore] = None
        self.reader: Optional[JobStore] = None
        """A second connection to the store for job lookups (GET /jobs/{id}, waits), so that they never
        queue behind the supervisor's writes (a sweep's result of megabytes takes tens of ms)."""
        self.pool: Optional[JobExecutor] = None
        self.problems: list[str] = []

    def start(self) -> None:
        _jobs.warm_up()
        self.store = open_store(self.config.db)
        self.reader = open_store(self.config.db)
        self.problems = _records.load_custom(self.store)
        self.pool = JobExecutor(self.store, self.config.workers, address=self.config.dask,
                                worker_memory=self.config.worker_memory, test_jobs=self.config.enable_test_jobs,
                                max_attempts=self.config.max_attempts, on_heartbeat=self._load_shared_records)
        self.pool.start()

    def _load_shared_records(self) -> None:
        """Records other servers sharing the store have added since this one started."""
        problems = _records.load_custom(self.store)
        if problems:
            log.warning("records added through another server could not be loaded: %s", "; ".join(problems))
            self.problems += problems

    def stop(self) -> None:
        if self.pool is not None:
            self.pool.stop()
        if self.reader is not None:
            self.reader.close()
        if self.store is not None:
            self.store.close()

    # -- capabilities ----------------------------------------------------------------------------
    def inline(self, kind: _jobs.JobKind, params) -> Response:
        if kind.admit:
            kind.admit(params, self.limits)
        try:
            result = kind.run(params, None)
        except Exception as exc:
            raise from_library_error(exc, _request_field(exc, params)) from None
        return Response(_jobs.to_json_text(result), media_type="application/json")

    def submit(self, kind: _jobs.JobKind, params, timeout_s: float | None = None, owner: str | None = None):
        if kind.admit:
            kind.admit(params, self.limits)
        try:
            canonical = _jobs.canonical_params(kind, params)
        except Exception as exc:
            raise from_library_error(exc) from None
        if timeout_s is not None and timeout_s > self.config.job_timeout:
            raise ApiError(422, "invalid_input", "timeout_s exceeds this server's job timeout",
                           [{"field": "timeout_s", "rule": f"must be <= {self.config.job_timeout:g} s",
                             "value": timeout_s}], limit=self.config.job_timeout)
        key = _jobs.cache_key(kind.name, canonical)
        try:
            job, cached = self.store.submit(kind.name, key, canonical, timeout_s or self.config.job_timeout,
                                            max_queue=self.config.max_queue, submitter=owner)
        except QueueFull:
            raise ApiError(503, "overloaded", f"{self.config.max_queue} jobs are already waiting; retry later",
                           limit=self.config.max_queue, headers={"Retry-After": "5"}) from None
        if not cached:
            self.pool.wake()
        return job, cached

    async def find(self, job_id: str):
        """The job, read on the reader connection: a SQLite lookup takes tens of microseconds and
        never waits for a writer (WAL), so it runs on the event loop; a database across the network
        is asked from a thread. A connection broken by a database outage fails once, then reconnects:
        that first failure is retried at once, as the main connection has usually met it already."""
        try:
            return await self._read_job(job_id)
        except StoreUnavailable:
            return await self._read_job(job_id)

    async def _read_job(self, job_id: str):
        if isinstance(self.reader, SQLiteJobStore):
            return self.reader.get(job_id)
        return await asyncio.to_thread(self.reader.get, job_id)

    async def run_and_wait(self, kind: _jobs.JobKind, params, owner: str | None = None) -> Response:
        job, cached = await asyncio.to_thread(self.submit, kind, params, None, owner)
        await self.pool.wait_for(job.id, job.timeout_s + 10.0, self.find)
        job = await self.find(job.id)
        headers = {"X-Job-Id": job.id, "X-Cache": "hit" if cached else "miss"}
        if job.status == "succeeded":
            result = await asyncio.to_thread(self.store.result, job.id)
            return Response(result, media_type="application/json", headers=headers)
        if job.status in ("failed", "cancelled"):
            error = dict(job.error or {})
            status = int(error.pop("status", 500))
            error.pop("type", None)
            return JSONResponse(error, status_code=status, headers=headers)
        return JSONResponse(job.info(cached), status_code=202, headers={**headers, "Location": f"/jobs/{job.id}"})


def create_app(config: ServiceConfig | None = None) -> FastAPI:
    """The application for ``config`` (defaults: see ServiceConfig). Nothing starts until the ASGI
    server runs its lifespan: then the store opens and the workers start."""
    service = Service(config or ServiceConfig())

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await asyncio.to_thread(service.start)
        try:
            yield
        finally:
            await asyncio.to_thread(service.stop)

    app = FastAPI(title="mlsysim_opt", version=__version__, lifespan=lifespan,
                  description="First-principles analytical models of ML systems, over HTTP. Errors share one "
                              "format (ErrorBody). Long work runs as jobs in worker processes.")
    app.state.service = service
    _install_errors(app)
    app.add_middleware(BodyLimit, limit=service.config.max_body_bytes)
    _auth.install(app, service.config, lambda: service.store)   # Host allow-list, CORS, API keys

    # -- health and audit ------------------------------------------------------------------------
    @app.get("/health", response_model=Health, tags=["service"])
    async def health():
        counts = service.store.counts() if service.store else {}
        return {"status": "ok", "version": __version__, "workers": service.pool.status() if service.pool else {},
                "jobs": counts, "db": service.store.location if service.store else masked(service.config.db),
                "test_jobs": service.config.enable_test_jobs,
                "notes": service.problems,
                "limits": {"max_grid": service.config.max_grid, "job_timeout_s": service.config.job_timeout,
                           "max_queue": service.config.max_queue, "max_body_bytes": service.config.max_body_bytes}}

    @app.get("/audit", response_model=AuditJSON, tags=["registry"], dependencies=[_auth.READ],
             summary="Check every registry value has a unit of the right dimension and a source")
    def audit():
        from ..catalog import audit_provenance
        report = audit_provenance()
        return {"ok": report.ok, "records": report.records_checked, "values": report.values_checked,
                "sources": report.sources_used, "problems": report.problems}

    # -- registry --------------------------------------------------------------------------------
    @app.get("/registry", tags=["registry"], summary="Registry kinds and their record counts",
             dependencies=[_auth.READ])
    async def registry_kinds():
        return {"kinds": {kind: len(ns) for kind, ns in _records.KINDS.items()}}

    @app.get("/registry/{kind}", response_model=RegistryListing, tags=["registry"], responses=ERRORS,
             dependencies=[_auth.READ])
    async def registry_list(kind: str):
        items = _library(_records.entries, kind, field="kind")
        return {"kind": kind, "count": len(items), "records": items}

    @app.get("/registry/{kind}/{name}", response_model=RegistryEntry, tags=["registry"], responses=ERRORS,
             dependencies=[_auth.READ])
    async def registry_get(kind: str, name: str):
        _library(_records.namespace, kind, field="kind")
        return _library(_records.entry, kind, name, field="name")

    @app.delete("/registry/{kind}/{name}", status_code=204, response_class=Response, tags=["registry"],
                responses=ERRORS, summary="Delete a record this API key added (shipped records cannot be deleted)")
    def registry_delete(kind: str, name: str, caller: Caller = _auth.ADMIN):
        _library(_records.namespace, kind, field="kind")
        _records.delete_custom(kind, name, caller.owner, service.store)
        return Response(status_code=204)

    for kind, record_types in (("hardware", (HardwareNode,)), ("models", (TransformerWorkload, CNNWorkload))):
        _add_record_route(app, service, kind, record_types)

    # -- capabilities ----------------------------------------------------------------------------
    for capability in CAPABILITIES:
        if capability.kind in service.kinds:
            _add_capability(app, service, capability)

    # -- jobs ------------------------------------------------------------------------------------
    @app.post("/jobs", response_model=JobInfo, status_code=202, tags=["jobs"], responses=ERRORS,
              summary="Submit a job; identical requests are answered by the earlier job (status 200, cached)")
    def submit_job(request: JobRequest, caller: Caller = _auth.SUBMIT):
        kind = service.kinds.get(request.kind)
        if kind is None:
            from ..errors import UnknownNameError
            raise from_library_error(UnknownNameError("job kind", request.kind, service.kinds), "kind")
        try:
            params = kind.params.model_validate(request.params)
        except ValidationError as exc:
            problems = [{**p, "field": f"params.{p['field']}" if p["field"] not in ("", "body") else "params"}
                        for p in validation_problems(exc.errors(), drop_first=())]
            raise ApiError(422, "invalid_input", f"invalid params for job kind {kind.name!r}", problems) from None
        job, cached = service.submit(kind, params, request.timeout_s, caller.owner)
        return JSONResponse(job.info(cached), status_code=200 if cached else 202,
                            headers={"Location": f"/jobs/{job.id}"})

    @app.get("/jobs", response_model=list[JobInfo], tags=["jobs"], summary="Recent jobs, newest first")
    def list_jobs(status: Optional[Literal["queued", "running", "succeeded", "failed", "cancelled"]] = None,
                  limit: int = Query(100, ge=1, le=1000), caller: Caller = _auth.READ):
        return [j.info() for j in service.store.list(status, limit, submitter=caller.owner)]

    @app.get("/jobs/kinds", response_model=list[JobKindInfo], tags=["jobs"], summary="Job kinds and their parameters",
             dependencies=[_auth.READ])
    async def job_kinds():
        return [{"kind": k.name, "description": k.description, "params_schema": k.params.model_json_schema()}
                for k in service.kinds.values()]

    @app.get("/jobs/{job_id}", response_model=JobInfo, tags=["jobs"], responses=ERRORS)
    async def get_job(job_id: str, caller: Caller = _auth.READ):
        # polled by every waiting client: no thread hop, no wait behind the supervisor's writes
        return JSONResponse(_found(await service.find(job_id), job_id, caller).info())

    @app.get("/jobs/{job_id}/result", tags=["jobs"],
             responses={**ERRORS, 409: {"model": ErrorBody, "description": "the job has not succeeded"},
                        200: {"description": "the result's JSON (the kind's result schema, see GET /jobs/kinds)"}})
    def get_job_result(job_id: str, caller: Caller = _auth.READ):
        job = _job_or_404(service, job_id, caller)
        if job.status != "succeeded":
            detail = f"; {job.error.get('message')}" if job.error else ""
            raise ApiError(409, "not_ready" if job.status in ("queued", "running") else "job_failed",
                           f"job {job_id} is {job.status}{detail}")
        return Response(service.store.result(job_id), media_type="application/json")

    @app.delete("/jobs/{job_id}", response_model=JobInfo, tags=["jobs"],
                responses={**ERRORS, 409: {"model": ErrorBody, "description": "the job had already finished"}})
    def cancel_job(job_id: str, caller: Caller = _auth.SUBMIT):
        _job_or_404(service, job_id, caller)           # another key's job is as unknown as a wrong id
        before = service.store.cancel(job_id)
        if before is None:
            raise ApiError(404, "not_found", f"no job {job_id!r}",
                           [{"field": "job_id", "rule": "must be the id of a job", "value": job_id}])
        if before in TERMINAL:
            raise ApiError(409, "conflict", f"job {job_id} already {before}; nothing to cancel")
        service.pool.cancel(job_id, was_running=before == "running")
        return service.store.get(job_id).info()

    # -- plots -----------------------------------------------------------------------------------
    _add_plot_routes(app, service)

    app.openapi = lambda: _openapi(app)
    return app


# ------------------------------------------------------------------------------------------------


def _library(fn, *args, field: str):
    try:
        return fn(*args)
    except (ApiError, MlsysimError) as exc:
        raise from_library_error(exc, field) from None


def _request_field(exc: Exception, params) -> str:
    """The request field an unknown-name error is about ('precision' is asked for as 'precisions' in
    a sweep), or '' to keep the library's own field name."""
    from ..errors import UnknownNameError
    if isinstance(exc, UnknownNameError):
        fields = type(params).model_fields
        for candidate in (exc.kind, exc.kind + "s"):
            if candidate in fields:
                return candidate
    return ""


def _job_or_404(service: Service, job_id: str, caller: Caller):
    return _found(service.store.get(job_id), job_id, caller)


def _found(job, job_id: str, caller: Caller):
    if job is None or not _auth.owns(caller, job.submitter):
        raise ApiError(404, "not_found", f"no job {job_id!r}",
                       [{"field": "job_id", "rule": "must be the id of a job", "value": job_id}])
    return job


def _add_capability(app: FastAPI, service: Service, capability: Capability) -> None:
    kind = service.kinds[capability.kind]
    Params = kind.params
    responses = dict(ERRORS)
    if kind.result_model is not None:
        responses[200] = {"model": kind.result_model, "description": "the result"}
    if capability.mode == "inline" and capability.on_event_loop:
        async def endpoint(params: Params, caller: Caller = _auth.READ):
            return service.inline(kind, params)
    elif capability.mode == "inline":
        async def endpoint(params: Params, caller: Caller = _auth.READ):
            if capability.as_job_when is not None and capability.as_job_when(params):
                _auth.demand(caller, "submit")           # a large request becomes a job
                return await service.run_and_wait(kind, params, caller.owner)
            return await asyncio.to_thread(service.inline, kind, params)
    else:
        responses[202] = {"model": JobInfo, "description": "still queued after the wait: poll the job"}
        responses[504] = {"model": ErrorBody, "description": "the job exceeded its time limit"}

        async def endpoint(params: Params, caller: Caller = _auth.SUBMIT):
            return await service.run_and_wait(kind, params, caller.owner)
    app.add_api_route(capability.path, endpoint, methods=["POST"], summary=capability.summary, tags=["compute"],
                      responses=responses, name=capability.kind, description=kind.params.__doc__)


def _add_record_route(app: FastAPI, service: Service, kind: str, record_types: tuple) -> None:
    refs = [{"$ref": f"#/components/schemas/{t.__name__}"} for t in record_types]
    schema = refs[0] if len(refs) == 1 else {"oneOf": refs}
    RECORD_BODIES[f"/registry/{kind}"] = schema

    def add_record(body: dict[str, Any] = Body(...), caller: Caller = _auth.ADMIN):
        entry = _records.add_custom(kind, body, service.config.max_custom_records, service.store, owner=caller.owner)
        return JSONResponse(entry, status_code=201)

    app.add_api_route(f"/registry/{kind}", add_record, methods=["POST"], status_code=201, tags=["registry"],
                      response_model=RegistryEntry, name=f"add_{kind}",
                      responses={**ERRORS, 409: {"model": ErrorBody, "description": "the name is taken, or the "
                                                                                    "server holds its most records"}},
                      summary=f"Add a {kind} record to this server (kept across restarts)")


RECORD_BODIES: dict[str, dict] = {}
"""Request-body schema of the routes that take a record (the record classes' own schemas)."""


RooflinePlotRequest = _capabilities.RooflinePlotRequest
SweepPlotRequest = _capabilities.SweepPlotRequest
PLOT_POINTS = _capabilities.PLOT_POINTS
"""Most markers in one roofline plot (see bounds.py)."""

PLOT_KINDS = {"roofline": "roofline_plot", "sweep": "sweep_plot", "pareto": "pareto_plot"}
"""Plot route -> the job kind that draws it in a worker process."""


def _add_plot_routes(app: FastAPI, service: Service) -> None:
    media = {"content": {m: {} for m in _plots.FORMATS.values()}, "description": "the image"}
    responses = {200: media, **ERRORS, 202: {"model": JobInfo, "description": "still queued after the wait"},
                 504: {"model": ErrorBody, "description": "the plot exceeded the job time limit"}}

    async def draw(plot: str, req, caller: Caller) -> Response:
        """The plot's job, waited for; its image (decoded from the job result), or the job's answer
        as it is (an error, or 202 while still queued)."""
        answer = await service.run_and_wait(service.kinds[PLOT_KINDS[plot]], req, caller.owner)
        if answer.status_code != 200:
            return answer
        result = json.loads(answer.body)
        headers = {k: v for k, v in answer.headers.items() if k.lower().startswith("x-")}
        return Response(base64.b64decode(result["image_base64"]), media_type=result["media_type"], headers=headers)

    @app.get("/plots/roofline", tags=["plots"], responses=responses,
             summary="Roofline plot; repeat model= and hardware= for several")
    async def roofline_get(model: list[str] = Query(..., max_length=20), hardware: list[str] = Query(..., max_length=20),
                           batch_sizes: list[int] = Query([1, 8, 64, 512], max_length=20), precision: str = "fp16",
                           efficiency: float = 0.5, seq_len: Optional[int] = None, is_training: bool = False,
                           format: Literal["png", "svg"] = "png", caller: Caller = _auth.READ):
        try:
            req = RooflinePlotRequest(models=model, hardware=hardware, batch_sizes=batch_sizes, precision=precision,
                                      efficiency=efficiency, seq_len=seq_len, is_training=is_training, format=format)
        except ValidationError as exc:
            raise ApiError(422, "invalid_input", "invalid plot request",
                           [{**p, "field": f"query.{p['field']}"} for p in validation_problems(exc.errors(), ())])
        return await draw("roofline", req, caller)

    @app.post("/plots/roofline", tags=["plots"], responses=responses, summary="Roofline plot")
    async def roofline_post(req: RooflinePlotRequest, caller: Caller = _auth.READ):
        return await draw("roofline", req, caller)

    @app.post("/plots/pareto", tags=["plots"], responses=responses,
              summary="The capstone's exact Pareto front with its knee and optimum marked")
    async def pareto_post(req: _capabilities.ParetoPlotRequest, caller: Caller = _auth.READ):
        return await draw("pareto", req, caller)

    @app.post("/plots/sweep", tags=["plots"], responses=responses,
              summary="Heat map of a sweep (e.g. hardware x batch -> throughput)")
    async def sweep_post(req: SweepPlotRequest, caller: Caller = _auth.READ):
        return await draw("sweep", req, caller)


# ------------------------------------------------------------------------------------------------
# Errors


class ErrorResponse(JSONResponse):
    """An error body as ASCII JSON: it may echo a client's bad value, which need not be encodable
    as UTF-8 (an unpaired surrogate sent as a \\u escape)."""

    def render(self, content) -> bytes:
        return json.dumps(content, separators=(",", ":")).encode("ascii")


def _install_errors(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError):
        return ErrorResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        problems = validation_problems(exc.errors())
        summary = "; ".join(f"{p['field']} {p['rule']}" for p in problems[:5])
        return ErrorResponse({"error": "invalid_input", "message": f"{len(problems)} problem(s): {summary}",
                             "problems": problems}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        if exc.status_code == 400:  # the framework could not parse the body (e.g. nested too deeply)
            return ErrorResponse({"error": "invalid_input", "message": f"unreadable request body: {exc.detail}",
                                 "problems": [{"field": "body", "rule": "must be a JSON document nested at most "
                                                                         "20 levels deep"}]}, status_code=422)
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return ErrorResponse({"error": code, "message": f"{request.method} {request.url.path}: {exc.detail}",
                             "problems": []}, status_code=exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(MlsysimError)
    async def library_error(request: Request, exc: MlsysimError):
        api = from_library_error(exc)
        return ErrorResponse(api.body(), status_code=api.status)

    @app.exception_handler(StoreUnavailable)
    async def store_unavailable(request: Request, exc: StoreUnavailable):
        log.error("job store unavailable on %s %s: %s", request.method, request.url.path, exc)
        return ErrorResponse({"error": "unavailable", "problems": [], "message": f"{exc}; retry shortly"},
                            status_code=503, headers={"Retry-After": "2"})

    @app.exception_handler(RecursionError)
    async def too_deep(request: Request, exc: RecursionError):
        return ErrorResponse({"error": "invalid_input", "message": "the request body is nested too deeply",
                             "problems": [{"field": "body", "rule": "must be nested at most 20 levels"}]},
                            status_code=422)

    app.add_middleware(AnswerUnexpected)


class AnswerUnexpected:
    """A bug is answered with 500 and an ErrorBody, and the connection stays usable. (The framework's
    last-resort handler re-raises after answering, and the HTTP server then resets the keep-alive
    connection, failing the client's next request too.)"""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = False

        async def tracked(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception as exc:
            if started:  # half an answer is out: only closing the connection can end it
                raise
            log.exception("unexpected error on %s %s", scope.get("method"), scope.get("path"))
            body = {"error": "internal_error", "problems": [],
                    "message": f"{type(exc).__name__}: the server could not answer this request"}
            await ErrorResponse(body, status_code=500)(scope, receive, send)


class BodyLimit:
    """Refuse request bodies above ``limit`` bytes with 413, whether announced by Content-Length or
    streamed in chunks, before any of it is parsed."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None:
            if not length.isdigit() or int(length) > self.limit:
                return await self._refuse(scope, send)
            return await self.app(scope, receive, send)
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                return await self._refuse(scope, send)
            chunks.append(chunk)
            if not message.get("more_body"):
                break
        replay = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]

        async def replayed():
            return replay.pop() if replay else await receive()

        return await self.app(scope, replayed, send)

    async def _refuse(self, scope, send):
        body = ApiError(413, "payload_too_large", f"request bodies are limited to {self.limit} bytes",
                        limit=self.limit).body()
        response = JSONResponse(body, status_code=413)
        await response(scope, _no_body, send)


async def _no_body():
    return {"type": "http.disconnect"}


# ------------------------------------------------------------------------------------------------
# OpenAPI: record schemas linked where a request takes a registry name or an inline record


def _openapi(app: FastAPI) -> dict:
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for cls in (HardwareNode, TransformerWorkload, CNNWorkload):
        record = record_schema(cls)
        components.update(record.pop("$defs", {}))
        components[cls.__name__] = record

    def link(node):
        if isinstance(node, dict):
            kind = node.pop("x-record-kind", None)
            if kind is not None:
                choice = {"anyOf": [{"type": "string"}] +
                                   [{"$ref": f"#/components/schemas/{n}"} for n in RECORD_REFS[kind]]}
                if node.get("type") == "array":
                    node["items"] = choice
                else:
                    node.update(choice)
            for value in node.values():
                link(value)
        elif isinstance(node, list):
            for value in node:
                link(value)

    link(schema)
    for path, body in RECORD_BODIES.items():
        schema["paths"][path]["post"]["requestBody"] = {"required": True,
                                                       "content": {"application/json": {"schema": body}}}
    # every error answer is an ErrorBody, including request validation (the framework's default
    # validation-error model is never sent)
    for path in schema["paths"].values():
        for operation in path.values():
            answer = operation.get("responses", {}).get("422")
            if answer is not None:
                answer.update({"description": ERRORS[422]["description"], "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}})
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    app.openapi_schema = schema
    return schema
