"""The remaining capabilities as job kinds and endpoints: serving, distributed training,
economics, sustainability, sensitivity, SLA synthesis, parallelism search, capstone, Pareto front,
grading, the vectorized DSE and the plots. Each request model is a thin pydantic form of the
library call it runs; the answer is the library's result as JSON (a plot's is its image, base64).

Names of clusters and sites are looked up here so that an unknown one is a 404 on the request field
(``fleet``, ``datacenter``); hardware and model names go through records.py, which also knows the
records clients added; kinds with a grid check its point cap (bounds.py) before anything runs."""
from __future__ import annotations

import base64
from typing import Annotated, Any, Literal, Optional, Union

from pydantic import BaseModel, Field, model_validator

from ..catalog import Clusters, Datacenters, Grids
from ..errors import InputError, UnknownNameError, renamed_owner
from .bounds import PLOT_POINTS, check_cells, check_points
from .errors import ApiError, suggestions_for
from .jobs import SWEEP_GRID_FIELD, SWEEP_UNITS, SweepRequest, grid_points, job_kind, sweep_frame
from .records import resolve_hardware, resolve_workload
from .schemas import RequestModel, hardware_field, workload_field

PROFILE_NOTE = ("fraction of peak compute; null: the calibrated profile of the hardware and precision "
                "(registry/efficiency_profiles.yaml), or 0.5 with calibration 'flat'")

Precision = Literal["fp32", "tf32", "fp16", "bf16", "fp8", "int8", "fp4", "int4"]
PRECISIONS = len(Precision.__args__)
"""Precision lists hold each choice at most once in effect: longer lists only repeat work."""


def _named(namespaces, name: str, field: str, kinds: tuple[str, ...]):
    """The record ``name`` in the first of ``namespaces`` (registry ``kinds``) holding it; 404
    naming the request ``field`` (not the library's lookup) when none does."""
    for ns in namespaces[:-1]:
        record = ns.get(name)
        if record is not None:
            return record
    try:
        return namespaces[-1][name]
    except UnknownNameError as exc:
        known = sorted({k for ns in namespaces for k in ns.names()})
        listing = " or ".join(f"GET /registry/{kind}" for kind in kinds)
        raise ApiError(404, "unknown_name", f"{field}: unknown {' or '.join(kinds)} name {name!r}",
                       [{"field": field, "rule": f"must be a registry name ({listing})", "value": name}],
                       suggestions_for(UnknownNameError(exc.kind, name, known))) from None


def _fleet(name: str, field: str = "fleet"):
    return _named([Clusters], name, field, ("clusters",))


def problem_from(fields: dict):
    """A CapstoneProblem from request fields; invalid fields are the library's InputError(s), each
    named after the request field (``problem.qps``). Records sent inline (or added to the server and
    made portable on submission) are built first."""
    from ..formulations.capstone import CapstoneProblem
    fields = dict(fields)
    if isinstance(fields.get("model"), dict):
        fields["model"] = resolve_workload(fields["model"], "problem.model")
    if isinstance(fields.get("hardware"), list):
        fields["hardware"] = [resolve_hardware(h, f"problem.hardware[{i}]") if isinstance(h, dict) else h
                              for i, h in enumerate(fields["hardware"])]
    try:
        return CapstoneProblem(**fields)
    except InputError as exc:
        raise renamed_owner(exc, CapstoneProblem.__name__, "problem") from None
    except UnknownNameError as exc:
        raise ApiError(404, "unknown_name", f"problem: {exc}", [{"field": "problem", "rule": f"must name a known "
                       f"{exc.kind}", "value": exc.name}], suggestions_for(exc)) from None


def _site(name: Optional[str], field: str = "datacenter"):
    if name is None:
        return None
    return _named([Datacenters, Grids], name, field, ("datacenters", "grids"))


def _admit_fleet(p, limits) -> None:
    """Cluster and site names are checked before a job is queued: a 404 names the request field."""
    _fleet(p.fleet)
    if getattr(p, "datacenter", None) is not None:
        _site(p.datacenter)


def _admit_site(p, limits) -> None:
    _site(p.datacenter)


# ------------------------------------------------------------------------------------------------


class ServingRequest(RequestModel):
    model: Any = Field(..., description="language model: registry name or inline record")
    hardware: Any = Field(..., description="accelerator: registry name or inline record")
    seq_len: int = Field(..., ge=1, description="KV tokens reserved per request")
    batch_size: int = Field(1, ge=1)
    precision: Precision = Field("fp16", description="weights' format")
    compute_precision: Optional[Precision] = Field(
        None, description="arithmetic format (default: the weights' format where the device has it; int4 weights "
                          "run on the 16-bit path, W4A16)")
    kv_precision: Optional[Precision] = Field(
        None, description="KV-cache format (default fp16 for every weight format and device)")
    efficiency: Optional[float] = Field(None, gt=0, le=1, description=PROFILE_NOTE)
    calibration: Literal["profile", "flat"] = "profile"
    prompt_len: Optional[int] = Field(None, ge=1)
    output_len: Optional[int] = Field(None, ge=0)


@job_kind("serving", ServingRequest, "ServingModel.solve: TTFT, ITL and memory of LLM serving",
          refs={"model": "models", "hardware": "hardware"})
def run_serving(p, progress=None):
    from ..solvers.serving import ServingModel
    return ServingModel().solve(resolve_workload(p.model), resolve_hardware(p.hardware), seq_len=p.seq_len,
                                batch_size=p.batch_size, precision=p.precision, efficiency=p.efficiency,
                                calibration=p.calibration,
                                prompt_len=p.prompt_len, output_len=p.output_len, kv_precision=p.kv_precision,
                                compute_precision=p.compute_precision)


class DistributedRequest(RequestModel):
    model: Any = Field(..., description="registry name or inline record")
    fleet: str = Field(..., description="registry cluster, e.g. Research_256")
    batch_size: int = Field(..., ge=1)
    seq_len: int = Field(2048, ge=1)
    tp_size: int = Field(1, ge=1)
    pp_size: int = Field(1, ge=1)
    precision: Precision = "fp16"
    efficiency: Optional[float] = Field(None, gt=0, le=1, description=PROFILE_NOTE)
    calibration: Literal["profile", "flat"] = "profile"
    zero_stage: int = Field(0, ge=0, le=3)


@job_kind("distributed", DistributedRequest, "DistributedModel.solve: one training step on a cluster",
          refs={"model": "models"}, admit=_admit_fleet)
def run_distributed(p, progress=None):
    from ..solvers.distributed import DistributedModel
    return DistributedModel().solve(resolve_workload(p.model), _fleet(p.fleet), batch_size=p.batch_size,
                                    seq_len=p.seq_len, tp_size=p.tp_size, pp_size=p.pp_size,
                                    precision=p.precision, efficiency=p.efficiency, zero_stage=p.zero_stage,
                                    calibration=p.calibration)


class FleetCostRequest(RequestModel):
    fleet: str = Field(..., description="registry cluster, e.g. Research_256")
    duration_days: float = Field(..., gt=0)
    datacenter: Optional[str] = Field(None, description="grid or datacenter registry name")
    mfu: Optional[float] = Field(None, gt=0, le=1)


class EconomicsRequest(FleetCostRequest):
    infrastructure_multiplier: float = Field(1.0, ge=1)
    amortization_years: float = Field(3.0, gt=0)
    price_basis: Literal["node", "accelerator"] = Field(
        "node", description="price whole servers (default, every vendor) or the accelerators only; "
                            "the answer's price_basis and capex_basis say which prices were used")


@job_kind("economics", EconomicsRequest, "EconomicsModel.solve: TCO of a fleet over a run", admit=_admit_fleet)
def run_economics(p, progress=None):
    from ..solvers.economics import EconomicsModel
    return EconomicsModel().solve(_fleet(p.fleet), p.duration_days, mfu=p.mfu, datacenter=_site(p.datacenter),
                                  infrastructure_multiplier=p.infrastructure_multiplier,
                                  amortization_years=p.amortization_years, price_basis=p.price_basis)


@job_kind("sustainability", FleetCostRequest, "SustainabilityModel.solve: energy, carbon and water of a run",
          admit=_admit_fleet)
def run_sustainability(p, progress=None):
    from ..solvers.sustainability import SustainabilityModel
    return SustainabilityModel().solve(_fleet(p.fleet), p.duration_days, datacenter=_site(p.datacenter), mfu=p.mfu)


class SensitivityRequest(RequestModel):
    model: Any
    hardware: Any
    precision: Precision = "fp16"
    efficiency: float = Field(0.5, gt=0, le=1)
    batch_size: int = Field(1, ge=1)
    seq_len: Optional[int] = Field(None, ge=1)


@job_kind("sensitivity", SensitivityRequest, "SensitivitySolver.solve: exact elasticities and the binding constraint",
          refs={"model": "models", "hardware": "hardware"})
def run_sensitivity(p, progress=None):
    from ..solvers.sensitivity import SensitivitySolver
    return SensitivitySolver().solve(resolve_workload(p.model), resolve_hardware(p.hardware), precision=p.precision,
                                     efficiency=p.efficiency, batch_size=p.batch_size, seq_len=p.seq_len)


class SynthesizeRequest(RequestModel):
    model: Any = Field(..., description="language model: a registry name, an inline record, or {\"hf_config\": "
                                        "config.json object}")
    qps: float = Field(..., gt=0)
    prompt_len: int = Field(512, ge=1)
    output_len: int = Field(256, ge=1)
    ttft: Optional[str] = Field(None, description="limit such as '100 ms'")
    itl: Optional[str] = None
    e2e_latency: Optional[str] = None
    hardware: Optional[list[Any]] = hardware_field(None, max_length=64)
    precisions: list[Precision] = Field(["fp16", "fp8", "int8", "int4"], min_length=1, max_length=PRECISIONS)
    objective: Literal["tco", "power", "carbon"] = "tco"
    budget_usd: Optional[float] = Field(None, gt=0)
    datacenter: Optional[str] = None
    allow_mix: bool = False
    redundancy: int = Field(0, ge=0, le=1000, description="spare replicas kept for failures (N+k)")
    headroom: Optional[float] = Field(None, gt=0, le=1, description="extra margin below each replica's goodput "
                                      "(default: none with a latency limit, 0.8 of the stable load without)")
    percentile: Union[Literal["mean", "p50", "p90", "p99"], float] = Field(
        "p90", description="the percentile every latency limit bounds, under load")
    chunk_sizes: list[int] = Field([256, 512, 2048], min_length=1, max_length=16,
                                   description="prefill tokens per iteration to choose from")
    disaggregated: Literal["auto", "never"] = Field(
        "auto", description="weigh separate prefill and decode pools too (auto), or not (never)")
    ep_sizes: Optional[list[int]] = Field(None, min_length=1, max_length=16,
                                          description="expert-parallel degrees (mixtures of experts; default 1, 2, 4)")


@job_kind("synthesize", SynthesizeRequest, "SLA synthesis: the cheapest fleet meeting latency targets (MILP)",
          refs={"model": "models", "hardware": "hardware"}, admit=_admit_site)
def run_synthesize(p, progress=None):
    from ..formulations.sla_synthesis import synthesize
    hardware = None if p.hardware is None else [resolve_hardware(h, f"hardware[{i}]") for i, h in enumerate(p.hardware)]
    return synthesize(resolve_workload(p.model), qps=p.qps, prompt_len=p.prompt_len, output_len=p.output_len, ttft=p.ttft, itl=p.itl,
                      e2e_latency=p.e2e_latency, hardware=hardware, precisions=p.precisions,
                      objective=p.objective, budget_usd=p.budget_usd, datacenter=_site(p.datacenter),
                      allow_mix=p.allow_mix, redundancy=p.redundancy, headroom=p.headroom, percentile=p.percentile,
                      chunk_sizes=p.chunk_sizes, disaggregated=p.disaggregated, ep_sizes=p.ep_sizes)


class ParallelismRequest(RequestModel):
    model: Any
    fleet: str
    batch_size: int = Field(..., ge=1)
    precision: Precision = "fp16"
    efficiency: Optional[float] = Field(None, gt=0, le=1, description=PROFILE_NOTE)
    calibration: Literal["profile", "flat"] = "profile"
    seq_len: int = Field(2048, ge=1)
    zero_stage: int = Field(0, ge=0, le=3)
    max_ep: Optional[int] = Field(None, ge=1, le=1_000_000, description="largest expert-parallel degree tried")
    background_load: float = Field(0.0, ge=0, le=0.99, description="share of the oversubscribed tier other jobs use")
    backend: Literal["exhaustive", "highs"] = "highs"


@job_kind("parallelism", ParallelismRequest, "ParallelismOptimizer: the best TP x PP x DP x EP split",
          refs={"model": "models"}, admit=_admit_fleet)
def run_parallelism(p, progress=None):
    from ..solvers.parallelism import ParallelismOptimizer
    return ParallelismOptimizer(backend=p.backend).solve(
        resolve_workload(p.model), _fleet(p.fleet), batch_size=p.batch_size, precision=p.precision,
        efficiency=p.efficiency, seq_len=p.seq_len, zero_stage=p.zero_stage, max_ep=p.max_ep,
        background_load=p.background_load, calibration=p.calibration)


class CapstoneRequest(RequestModel):
    problem: dict = Field(default_factory=dict, description="CapstoneProblem fields; empty = the deck's capstone")


PROBLEM_REFS = {"problem.model": "models", "problem.hardware": "hardware"}
"""Records a capstone problem may name (made portable on submission, built in the worker)."""

PROBLEM_GRID = ("hardware", "precisions", "tp_sizes", "pp_sizes", "batch_sizes", "chunk_sizes", "regions")
PROBLEM_FIELD = " x ".join(f"problem.{name}" for name in PROBLEM_GRID)


def problem_points(problem: dict) -> int:
    """Candidate configurations of a capstone problem: the product of its candidate lists (the
    problem's defaults where it gives none; every priced accelerator when hardware is not given)."""
    from ..catalog import Hardware
    from ..formulations.capstone import CapstoneProblem
    points = 1
    for name in PROBLEM_GRID:
        value = problem.get(name, CapstoneProblem.model_fields[name].get_default(call_default_factory=True))
        if name == "hardware" and value is None:
            value = {id(hw) for _, hw in Hardware.items() if hw.unit_cost is not None}
        points *= len(value) if isinstance(value, (list, set)) else 1
    return points


def _admit_problem(p, limits) -> None:
    check_points("capstone", problem_points(p.problem), PROBLEM_FIELD, limits,
                 fix="give fewer candidates (hardware, precisions, tp_sizes, pp_sizes, batch_sizes, chunk_sizes)")


@job_kind("capstone", CapstoneRequest, "The two-region capstone MILP, solved to proven optimality",
          refs=PROBLEM_REFS, admit=_admit_problem)
def run_capstone(p, progress=None):
    from ..formulations.capstone import solve_capstone
    return solve_capstone(problem_from(p.problem))


class ParetoRequest(CapstoneRequest):
    points: int = Field(20, ge=2, le=100)
    axes: Literal["carbon", "ttft"] = "carbon"


@job_kind("pareto", ParetoRequest, "Exact Pareto front of the capstone (cost vs carbon or TTFT)", refs=PROBLEM_REFS,
          admit=_admit_problem)
def run_pareto(p, progress=None):
    from ..formulations.pareto import pareto_front
    front = pareto_front(problem_from(p.problem), points=p.points, axes=p.axes)
    return front.model_dump(mode="json", exclude={"points": {"__all__": {"design"}}})


class GradeRequest(CapstoneRequest):
    submission: dict = Field(..., description="{student, regions: {REGION: {hardware, precision, tp, pp, batch_size, replicas}}}")


@job_kind("grade", GradeRequest, "Grade a capstone submission: checks, gaps to the optimum, score, feedback",
          refs=PROBLEM_REFS, admit=_admit_problem)
def run_grade(p, progress=None):
    from ..grading import Grader
    return Grader(problem_from(p.problem)).grade(p.submission)


class DSEGridRequest(RequestModel):
    """The roofline over hardware x batch_sizes x precisions x efficiencies, one vectorized
    evaluation (DSE.roofline_grid); the grid may hold at most the server's --max-grid points."""

    model: Any = workload_field()
    hardware: list[Any] = hardware_field(min_length=1, max_length=64)
    batch_sizes: list[Annotated[int, Field(ge=1)]] = Field([1], min_length=1, max_length=4096)
    precisions: list[Precision] = Field(["fp16"], min_length=1, max_length=PRECISIONS)
    efficiencies: list[Annotated[float, Field(gt=0, le=1)]] = Field([0.5], min_length=1, max_length=64)
    objective: str = Field("maximize: throughput", max_length=200, description="parsed, never evaluated")
    constraints: list[str] = Field(default_factory=list, max_length=32)
    top_k: int = Field(5, ge=1, le=100)


DSE_GRID_FIELD = "hardware x batch_sizes x precisions x efficiencies"


def dse_points(p) -> int:
    return len(p.hardware) * len(p.batch_sizes) * len(p.precisions) * len(p.efficiencies)


def _admit_dse(p, limits) -> None:
    check_points("dse_grid", dse_points(p), DSE_GRID_FIELD, limits)


@job_kind("dse_grid", DSEGridRequest, "Vectorized DSE over the roofline grid (safe objective/constraint strings)",
          refs={"model": "models", "hardware": "hardware"}, admit=_admit_dse)
def run_dse_grid(p, progress=None):
    from ..dse import DSE
    hardware = [resolve_hardware(h, f"hardware[{i}]") for i, h in enumerate(p.hardware)]
    r = DSE.roofline_grid(resolve_workload(p.model), hardware, batch_sizes=p.batch_sizes, precisions=p.precisions,
                          efficiencies=p.efficiencies, objective=p.objective, constraints=p.constraints,
                          top_k=p.top_k)
    return {"best_params": r.best_params, "best_objective": r.best_objective, "objective_unit": r.objective_unit,
            "evaluated": r.evaluated, "satisfying": r.satisfying,
            "top_candidates": [{"params": c["params"], "objective_value": c["objective_value"]}
                               for c in r.top_candidates]}


# ------------------------------------------------------------------------------------------------
# Plots: drawn in worker processes (time and memory limits of jobs); the result carries the image


class ImageResult(BaseModel):
    """A plot as a job result: the image bytes base64-encoded, and their media type."""

    media_type: str
    image_base64: str


def image_result(image: bytes, fmt: str) -> dict:
    from .plots import FORMATS
    return {"media_type": FORMATS[fmt], "image_base64": base64.b64encode(image).decode("ascii")}


class RooflinePlotRequest(RequestModel):
    """Roofline of one or more workloads on one or more accelerators, as PNG or SVG."""

    models: list[Any] = Field(..., min_length=1, max_length=20, json_schema_extra={"x-record-kind": "models"})
    hardware: list[Any] = Field(..., min_length=1, max_length=20, json_schema_extra={"x-record-kind": "hardware"})
    batch_sizes: list[Annotated[int, Field(ge=1)]] = Field([1, 8, 64, 512], min_length=1, max_length=20)
    precision: Precision = "fp16"
    efficiency: float = Field(0.5, gt=0, le=1)
    seq_len: Optional[int] = Field(None, ge=1)
    is_training: bool = False
    format: Literal["png", "svg"] = "png"


ROOFLINE_FIELD = "models x hardware x batch_sizes"


def _admit_roofline(p, limits) -> None:
    check_points("roofline_plot", len(p.models) * len(p.hardware) * len(p.batch_sizes), ROOFLINE_FIELD, limits,
                 cap=PLOT_POINTS, fix="plot fewer models, accelerators or batch sizes at once")


@job_kind("roofline_plot", RooflinePlotRequest, "Roofline plot (the image, base64-encoded)", result_model=ImageResult,
          refs={"models": "models", "hardware": "hardware"}, admit=_admit_roofline)
def run_roofline_plot(p, progress=None) -> dict:
    from .plots import roofline_plot
    models = [resolve_workload(m, f"models[{i}]") for i, m in enumerate(p.models)]
    hardware = [resolve_hardware(h, f"hardware[{i}]") for i, h in enumerate(p.hardware)]
    image = roofline_plot(models, hardware, batch_sizes=p.batch_sizes, precision=p.precision, efficiency=p.efficiency,
                          seq_len=p.seq_len, is_training=p.is_training, fmt=p.format)
    return image_result(image, p.format)


SWEEP_AXES = ("hardware", "precision", "batch_size", "efficiency", "seq_len")
"""Grid axes of a sweep (its list fields, singular); a heat map puts two of them on its axes."""
SweepAxis = Literal[SWEEP_AXES]
SweepValue = Literal[tuple(c for c in SWEEP_UNITS if c not in SWEEP_AXES)]


class SweepPlotRequest(SweepRequest):
    """Heat map of one sweep column over two grid axes (best value over the other axes), PNG or SVG."""

    value: SweepValue = Field("throughput_per_s", description="the column shown, e.g. throughput_per_s, latency_s, mfu")
    rows: SweepAxis = Field("hardware", description="grid axis down the side")
    cols: SweepAxis = Field("batch_size", description="grid axis across")
    log: bool = Field(True, description="logarithmic colour scale")
    format: Literal["png", "svg"] = "png"

    @model_validator(mode="after")
    def _two_axes(self):
        if self.rows == self.cols:
            raise InputError("cols", self.cols, "must be another grid axis than rows",
                             f"e.g. rows={self.rows!r}, cols={next(a for a in SWEEP_AXES if a != self.rows)!r}")
        return self


def axis_length(p, axis: str) -> int:
    """Distinct values along one grid axis of a sweep request."""
    values = {"hardware": p.hardware_list, "precision": p.precisions, "batch_size": p.batch_sizes,
              "efficiency": p.efficiencies, "seq_len": p.seq_lens}[axis]
    return len(values) if axis == "hardware" else len(set(values))


def _admit_sweep_plot(p, limits) -> None:
    check_points("sweep_plot", grid_points(p), SWEEP_GRID_FIELD, limits)
    check_cells(axis_length(p, p.rows) * axis_length(p, p.cols), f"{p.rows} x {p.cols}", limits)


@job_kind("sweep_plot", SweepPlotRequest, "Heat map of a sweep (the image, base64-encoded)", result_model=ImageResult,
          refs={"model": "models", "hardware_list": "hardware"}, admit=_admit_sweep_plot)
def run_sweep_plot(p, progress=None) -> dict:
    from .plots import sweep_heatmap
    name, frame = sweep_frame(p, progress)
    image = sweep_heatmap(frame, value=p.value, rows=p.rows, cols=p.cols, fmt=p.format, log=p.log,
                          title=f"{name}: {p.value}")
    return image_result(image, p.format)


class ParetoPlotRequest(ParetoRequest):
    format: Literal["png", "svg"] = "png"


@job_kind("pareto_plot", ParetoPlotRequest, "The capstone's Pareto front as a plot (the image, base64-encoded)",
          result_model=ImageResult, refs=PROBLEM_REFS, admit=_admit_problem)
def run_pareto_plot(p, progress=None) -> dict:
    import tempfile
    from pathlib import Path
    from ..formulations.capstone import solve_capstone
    from ..formulations.pareto import pareto_front, plot_front
    problem = problem_from(p.problem)
    front = pareto_front(problem, points=p.points, axes=p.axes)
    with tempfile.TemporaryDirectory() as tmp:  # the library's plot writes a file
        path = Path(tmp) / f"front.{p.format}"
        plot_front(front, str(path), chosen=solve_capstone(problem))
        return image_result(path.read_bytes(), p.format)


ENDPOINTS = [  # (path, kind, mode, summary)
    ("/serving", "serving", "inline", "LLM serving: TTFT, ITL, KV cache, feasibility (ServingModel)"),
    ("/distributed", "distributed", "inline", "One distributed training step (DistributedModel)"),
    ("/economics", "economics", "inline", "TCO of a fleet (EconomicsModel)"),
    ("/sustainability", "sustainability", "inline", "Energy, carbon and water of a fleet (SustainabilityModel)"),
    ("/sensitivity", "sensitivity", "inline", "Exact elasticities and the binding constraint (SensitivitySolver)"),
    ("/synthesize", "synthesize", "job", "SLA synthesis MILP: the cheapest fleet meeting latency targets"),
    ("/parallelism", "parallelism", "job", "Best TP x PP x DP split (enumeration or MILP)"),
    ("/capstone", "capstone", "job", "Two-region capstone MILP"),
    ("/pareto", "pareto", "job", "Exact Pareto front of the capstone"),
    ("/grade", "grade", "job", "Grade a capstone submission"),
    ("/dse", "dse_grid", "job", "Vectorized design-space exploration over the roofline grid"),
]
