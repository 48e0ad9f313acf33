"""The table of job kinds: name -> parameters model, function, result schema.

A capability becomes available over HTTP by registering one kind here (its request model is
usually :func:`signature_model` of the library function) and, if it wants its own endpoint, one
line in ``app.CAPABILITIES``. The same function then serves ``POST /jobs {"kind": ...}`` (in a
worker process, persisted, cached) and the synchronous endpoint.

A kind's function takes the validated parameters and a ``progress(fraction)`` callback and returns
a library result (``Result``, pydantic model, DataFrame or plain dict); :func:`to_json_text` turns
it into the JSON that is stored and served.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional, Union

import pint
from pydantic import BaseModel, Field, PrivateAttr, create_model, model_validator

from ..engine import Engine
from ..results import PerformanceProfile, Result, finite_values
from .bounds import MEMORY_BUDGET_BYTES, check_points
from .errors import ApiError
from .records import portable, resolve_hardware, resolve_workload
from .schemas import (MAX_LIST, RequestModel, SweepTable, hardware_field, json_form, signature_model,
                      workload_field)

Progress = Callable[[float], None]


@dataclass(frozen=True)
class Limits:
    """Server limits a kind may need to admit a request."""

    max_grid: int
    job_timeout: float
    memory_budget: int = MEMORY_BUDGET_BYTES
    """Most memory one grid may be estimated to need (see bounds.py)."""


@dataclass(frozen=True)
class JobKind:
    name: str
    params: type[BaseModel]
    run: Callable[[Any, Progress], Any]
    description: str
    result_model: Optional[type[BaseModel]] = None
    refs: Mapping[str, str] = field(default_factory=dict)
    """Parameters that name registry records: field (a dotted path for a nested one, e.g.
    "problem.hardware") -> registry kind ("hardware" or "models")."""
    admit: Optional[Callable[[Any, Limits], None]] = None
    """Raises ApiError when a request exceeds the server's limits (checked before queueing)."""
    test_only: bool = False


JOB_KINDS: dict[str, JobKind] = {}


def job_kind(name: str, params: type[BaseModel], description: str, **options) -> Callable:
    """Decorator: register ``fn(params, progress)`` as job kind ``name``."""
    def register(fn):
        JOB_KINDS[name] = JobKind(name, params, fn, description, **options)
        return fn
    return register


def enabled_kinds(test_jobs: bool) -> dict[str, JobKind]:
    return {k: v for k, v in JOB_KINDS.items() if test_jobs or not v.test_only}


# ------------------------------------------------------------------------------------------------
# Canonical parameters and the cache key


def canonical_params(kind: JobKind, params: BaseModel) -> str:
    """Parameters as canonical JSON (sorted keys, defaults filled in), with references to records
    added to this server replaced by the records themselves, so the job runs anywhere and its
    cache key changes when the record does."""
    data = params.model_dump(mode="json")
    for path, registry_kind in kind.refs.items():
        holder, name = _holder(data, path)
        if holder is not None and holder.get(name) is not None:
            holder[name] = portable(registry_kind, holder[name], path)
    return json.dumps(data, sort_keys=True, separators=(",", ":"), allow_nan=False)


def _holder(data: dict, path: str) -> tuple[dict | None, str]:
    """The object holding the field at dotted ``path`` ("problem.hardware") and the field's name;
    (None, name) when the request has no object there."""
    *parents, name = path.split(".")
    for part in parents:
        data = data.get(part) if isinstance(data, dict) else None
    return (data if isinstance(data, dict) else None), name


def cache_key(kind: str, canonical: str) -> str:
    """Same kind, same canonical parameters, same library version: same answer."""
    from .. import __version__
    return hashlib.sha256(f"{__version__}\n{kind}\n{canonical}".encode()).hexdigest()


# ------------------------------------------------------------------------------------------------
# Results as JSON


_UNIT_TEXT: dict = {}
_PLAIN = (str, int, float, bool, type(None))


def result_dict(result: Result) -> dict:
    """``result.to_dict()``, faster: each unit's text is formatted once per process, not once per
    value (the formatting is most of the cost of answering a solve)."""
    out = {}
    for name in type(result).model_fields:
        value = getattr(result, name)
        if isinstance(value, pint.Quantity):
            text = _UNIT_TEXT.get(value._units)
            if text is None:
                text = _UNIT_TEXT[value._units] = f"{value.units:~P}"
            out[name] = {"value": float(value.magnitude), "unit": text}
        elif isinstance(value, _PLAIN) or (isinstance(value, list) and all(isinstance(v, _PLAIN) for v in value)):
            out[name] = value
        else:  # nested results, dicts, quantities in lists: the library's own conversion
            return result.to_dict()
    return out


def to_jsonable(result: Any) -> Any:
    if isinstance(result, Result):
        return result_dict(result)
    if isinstance(result, BaseModel):
        return result.model_dump(mode="json")
    return result


def to_json_text(result: Any) -> str:
    """The stored/served JSON of a result; non-finite numbers (which JSON cannot carry) become null."""
    data = to_jsonable(result)
    try:
        return json.dumps(data, allow_nan=False, separators=(",", ":"))
    except ValueError:
        return json.dumps(finite_values(data), allow_nan=False, separators=(",", ":"))


# ------------------------------------------------------------------------------------------------
# solve: Engine.solve


SolveRequest = signature_model(
    Engine.solve, "SolveRequest", exclude=("raise_errors",),
    overrides={"model": (Any, workload_field()), "hardware": (Any, hardware_field())},
    constraints={"batch_size": dict(ge=1), "efficiency": dict(gt=0, le=1), "seq_len": dict(ge=1),
                 "bandwidth_efficiency": dict(gt=0, le=1)},
    doc="One pass of a workload on one accelerator (Engine.solve). Numbers are in the units the "
        "library documents: efficiency fractions in (0, 1], seq_len in tokens.")


@job_kind("solve", SolveRequest, "Engine.solve: one pass of a workload on one accelerator",
          result_model=json_form(PerformanceProfile), refs={"model": "models", "hardware": "hardware"})
def run_solve(p, progress: Progress | None = None) -> PerformanceProfile:
    return Engine.solve(resolve_workload(p.model), resolve_hardware(p.hardware), batch_size=p.batch_size,
                        precision=p.precision, efficiency=p.efficiency, seq_len=p.seq_len,
                        is_training=p.is_training, bandwidth_efficiency=p.bandwidth_efficiency)


# ------------------------------------------------------------------------------------------------
# sweep: Engine.sweep_table


SweepRequest = signature_model(
    Engine.sweep_table, "SweepRequest",
    overrides={"model": (Any, workload_field()),
               "hardware_list": (list[Any], hardware_field(min_length=1, max_length=MAX_LIST))},
    constraints={"batch_sizes": dict(min_length=1, items=dict(ge=1)), "precisions": dict(min_length=1),
                 "efficiencies": dict(min_length=1, items=dict(gt=0, le=1)),
                 "seq_lens": dict(min_length=1, items=dict(ge=1))},
    doc="The roofline over hardware x precision x batch x efficiency x seq_len, vectorized "
        "(Engine.sweep_table). The grid may hold at most the server's --max-grid points.")

SWEEP_UNITS = {"batch_size": "request", "efficiency": "dimensionless", "seq_len": "token", "latency_s": "s",
               "latency_compute_s": "s", "latency_memory_s": "s", "throughput_per_s": "1/s",
               "arithmetic_intensity": "FLOP/B", "mfu": "dimensionless", "energy_J": "J", "memory_footprint_B": "B"}


def grid_points(p) -> int:
    return (len(p.hardware_list) * len(p.precisions) * len(p.batch_sizes) * len(p.efficiencies)
            * len(p.seq_lens))


SWEEP_GRID_FIELD = "hardware_list x precisions x batch_sizes x efficiencies x seq_lens"


def admit_sweep(p, limits: Limits) -> None:
    check_points("sweep", grid_points(p), SWEEP_GRID_FIELD, limits)


def sweep_frame(p, progress: Progress | None = None):
    """The sweep's DataFrame (Engine.sweep_table), evaluated one hardware at a time for progress."""
    import pandas as pd
    from ..errors import InputError
    model = resolve_workload(p.model)
    hws = [resolve_hardware(h, f"hardware_list[{i}]") for i, h in enumerate(p.hardware_list)]
    frames = []
    for i, hw in enumerate(hws):  # the grid is hardware-major, so per-hardware pieces concatenate in order
        try:
            frames.append(Engine.sweep_table(model, [hw], batch_sizes=p.batch_sizes, precisions=p.precisions,
                                             efficiencies=p.efficiencies, seq_lens=p.seq_lens,
                                             is_training=p.is_training))
        except InputError as exc:  # no compute path for these precisions here: not grid points
            if exc.field != "precisions" or len(hws) == 1:
                raise
        if progress:
            progress((i + 1) / len(hws))
    if not frames:  # no hardware has any of the precisions: the whole grid's own error
        Engine.sweep_table(model, hws, batch_sizes=p.batch_sizes, precisions=p.precisions,
                           efficiencies=p.efficiencies, seq_lens=p.seq_lens, is_training=p.is_training)
    return model.name, (pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0])


@job_kind("sweep", SweepRequest, "Engine.sweep_table over a grid (at most --max-grid points)",
          result_model=SweepTable, refs={"model": "models", "hardware_list": "hardware"}, admit=admit_sweep)
def run_sweep(p, progress: Progress | None = None) -> dict:
    return table_json(*sweep_frame(p, progress))


def table_json(model_name: str, frame) -> dict:
    """Rows of the frame as lists of plain Python values (floats keep every digit)."""
    columns = [str(c) for c in frame.columns]
    data = list(map(list, zip(*(frame[c].tolist() for c in frame.columns))))
    return {"model": model_name, "points": len(frame), "columns": columns,
            "units": {c: u for c, u in SWEEP_UNITS.items() if c in columns}, "data": data}


# ------------------------------------------------------------------------------------------------
# fleet_size: formulations.fleet_sizing.size_fleet


def _fleet_request():
    from ..formulations.fleet_sizing import size_fleet
    return signature_model(size_fleet, "FleetSizeRequest",
                           doc="Size a fleet over an explicit list of candidate replica configurations "
                               "(formulations.fleet_sizing.size_fleet): minimum cost for a demand, or most "
                               "throughput within caps. time_limit (s) bounds the MILP and must fit the "
                               "server's job timeout.")


def _fleet_result():
    from ..formulations.fleet_sizing import FleetSizingResult
    return FleetSizingResult


FleetSizeRequest = _fleet_request()


def admit_fleet(p, limits: Limits) -> None:
    if p.time_limit > limits.job_timeout:
        raise ApiError(422, "invalid_input", f"time_limit {p.time_limit} s exceeds this server's job timeout",
                       [{"field": "time_limit", "rule": f"must be <= {limits.job_timeout} s (the job timeout)",
                         "value": p.time_limit}], limit=limits.job_timeout)
    if not p.time_limit > 0:
        raise ApiError(422, "invalid_input", "time_limit must be > 0",
                       [{"field": "time_limit", "rule": "must be > 0", "value": p.time_limit}])


@job_kind("fleet_size", FleetSizeRequest, "Fleet-sizing MILP over explicit candidates (HiGHS)",
          result_model=_fleet_result(), admit=admit_fleet)
def run_fleet_size(p, progress: Progress | None = None):
    from ..formulations.fleet_sizing import size_fleet
    args = {name: getattr(p, name) for name in type(p).model_fields}
    return size_fleet(args.pop("candidates"), **args)


# ------------------------------------------------------------------------------------------------
# plan: planning.plan_fleet (or planning.pareto_front), a global fleet plan over time


class DemandSeries(RequestModel):
    """Requests/s hour by hour: ``series[class][user region]`` holds one value per hour, every
    series equally long; hour 0 is Monday 00:00 UTC."""

    series: dict[str, dict[str, list[float]]]


def _diurnal_request():
    from ..planning import Demand
    return signature_model(Demand.diurnal, "DiurnalDemand", constraints={"days": dict(ge=1, le=366)},
                           doc="The built-in diurnal pattern (Demand.diurnal): each user region's requests/s "
                               "at its weekday evening peak, on its local clock.")


class DemandDiurnal(RequestModel):
    diurnal: _diurnal_request()


class _PlanRequest(RequestModel):
    """PlanProblem's fields, checked together when the request is read, so that a bad problem is a
    422 naming its field before anything is queued."""

    _problem: Any = PrivateAttr(None)

    @model_validator(mode="after")
    def _build(self):
        if self.pareto_points is not None and self.window_hours is not None:
            from ..errors import InputError
            raise InputError("window_hours", self.window_hours, "cannot be combined with pareto_points",
                             "each Pareto point caps carbon over the whole horizon, which couples the windows")
        self._problem = plan_problem(self)
        return self

    def problem(self):
        return self._problem


def plan_problem(p):
    """The PlanProblem of a request; its errors name the request's fields (``sites[1]``,
    ``demand[chat][Tokyo]``, ``classes.0.ttft_ms``)."""
    from ..errors import InputError
    from ..planning import Demand, PlanProblem
    fields = {name: getattr(p, name) for name in PlanProblem.model_fields}
    if isinstance(p.demand, DemandDiurnal):
        try:
            fields["demand"] = Demand.diurnal(**p.demand.diurnal.model_dump())
        except InputError as exc:
            raise InputError(f"demand.diurnal.{exc.field}", exc.value, exc.rule, exc.fix) from None
    else:
        fields["demand"] = Demand(series=p.demand.series)
    if not isinstance(p.model, str):  # an inline record or {"hf_config": ...}; names resolve on submission
        fields["model"] = resolve_workload(p.model)
    try:
        return PlanProblem(**fields)
    except InputError as exc:
        raise _without_owner(exc, PlanProblem.__name__) from None


def _without_owner(exc, owner: str):
    """``PlanProblem.sites.0`` -> ``sites.0``: the request is the problem, not a field holding it."""
    for err in exc.errors:
        if err.field.startswith(f"{owner}."):
            err.field = err.field[len(owner) + 1:]
    return exc


def _plan_request():
    """PlanProblem's fields (so a field added to it appears here), demand as series or the diurnal
    pattern, plus the solve options."""
    from copy import copy

    from ..planning import PlanProblem
    fields = {name: (info.annotation, copy(info)) for name, info in PlanProblem.model_fields.items()}
    fields["model"] = (Any, workload_field("Llama3_8B"))
    fields["demand"] = (Union[DemandSeries, DemandDiurnal],
                        Field(..., description='{"series": {class: {user region: [requests/s per hour]}}} or '
                                               '{"diurnal": {"peaks": {region: requests/s}, "days": 7}}'))
    fields.update(
        time_limit=(float, Field(60.0, gt=0, description="seconds per MILP (each window, each Pareto point); at "
                                                         "most the server's job timeout")),
        mip_gap=(Optional[float], Field(None, ge=0, lt=1, description="relative MIP gap (default 1e-6 for one "
                                                                      "plan, 1e-4 for windows or a front)")),
        window_hours=(Optional[int], Field(None, ge=1, le=8784, description="plan a long horizon in windows of "
                                                                            "this many hours (e.g. 168)")),
        pareto_points=(Optional[int], Field(None, ge=2, le=50, description="answer with the cost-carbon front of "
                                                                           "this many points instead of one plan")))
    return create_model("PlanRequest", __base__=_PlanRequest, **fields,
                        __doc__="A global fleet plan over time (planning.plan_fleet): hourly demand per user region "
                                "served from sites with their own prices, limits and hourly grid carbon. Sites are "
                                "shipped names, {site, max_accelerators, max_power_kw, owned} limits on one, or "
                                "SiteSpec objects. With pareto_points: the cost-carbon front (pareto_front).")


PlanRequest = _plan_request()


def _fraction(progress: Progress | None):
    """The planning callbacks as one fraction: windows report ``(stage, done, total)`` over two
    passes (bound, then plan), a Pareto front ``(done, total)``."""
    if progress is None:
        return None

    def report(*args):
        done, total = args[-2:]
        passed = 1 if len(args) == 3 and args[0] == "plan" else 0
        share = 2 if len(args) == 3 else 1
        progress((passed + done / max(total, 1)) / share)
    return report


@job_kind("plan", PlanRequest, "Global fleet plan over time: capacity and routing hour by hour (MILP), or its "
          "cost-carbon Pareto front", refs={"model": "models"}, admit=admit_fleet)
def run_plan(p, progress: Progress | None = None) -> dict:
    from ..planning.export import pareto_json, plan_json
    from ..planning import pareto_front, plan_fleet
    options = {"time_limit": p.time_limit, **({} if p.mip_gap is None else {"mip_gap": p.mip_gap})}
    if p.pareto_points is not None:
        return pareto_json(pareto_front(p.problem(), points=p.pareto_points, progress=_fraction(progress), **options))
    return plan_json(plan_fleet(p.problem(), window_hours=p.window_hours, progress=_fraction(progress), **options))


# ------------------------------------------------------------------------------------------------
# Test-only kinds (enabled by --enable-test-jobs or MLSYSIM_OPT_TEST_JOBS=1)


class SleepParams(RequestModel):
    seconds: float = Field(1.0, ge=0, le=3600, description="how long to sleep")
    fail: bool = Field(False, description="raise an error at the end instead of succeeding")
    tag: str = Field("", max_length=64, description="makes otherwise identical requests distinct (no caching)")


@job_kind("sleep", SleepParams, "test only: sleep, reporting progress; for slow-job and cancellation tests",
          test_only=True)
def run_sleep(p, progress: Progress | None = None) -> dict:
    start = time.monotonic()
    while (elapsed := time.monotonic() - start) < p.seconds:
        if progress:
            progress(elapsed / p.seconds)
        time.sleep(min(0.05, p.seconds - elapsed))
    if p.fail:
        from ..errors import MlsysimError
        raise MlsysimError("the sleep job was asked to fail")
    return {"slept_s": p.seconds, "pid": os.getpid(), "tag": p.tag}


class CrashParams(RequestModel):
    exit_code: int = Field(3, ge=1, le=255)
    tag: str = Field("", max_length=64)


@job_kind("crash", CrashParams, "test only: the worker process exits at once (a crash)", test_only=True)
def run_crash(p, progress: Progress | None = None) -> None:
    os._exit(p.exit_code)


# ------------------------------------------------------------------------------------------------


def warm_up() -> None:
    """Compile the roofline sheet and touch the sweep path (pandas) before the first request."""
    from ..errors import MlsysimError
    try:
        Engine.solve("Llama3_8B", "H100")
        Engine.sweep_table("Llama3_8B", ["H100"])
    except MlsysimError:  # a registry without these records: the first request pays instead
        from ..engine import roofline_function
        roofline_function()


def run(kind_name: str, params_json: str, progress: Progress | None, test_jobs: bool) -> str:
    """Run one job in this process and return its result JSON (what a worker does)."""
    kinds = enabled_kinds(test_jobs)
    if kind_name not in kinds:  # e.g. queued by a server started with test jobs, run by one without
        from ..errors import MlsysimError
        raise MlsysimError(f"job kind {kind_name!r} is not enabled on this server")
    kind = kinds[kind_name]
    params = kind.params.model_validate_json(params_json)
    return to_json_text(kind.run(params, progress))


# The remaining capabilities register their kinds on import (serving, distributed, economics,
# sustainability, sensitivity, synthesize, parallelism, capstone, pareto, grade, dse_grid).
from . import capabilities as _capabilities  # noqa: E402,F401
