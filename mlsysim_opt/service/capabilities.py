"""The remaining capabilities as job kinds and endpoints: serving, distributed training,
economics, sustainability, sensitivity, SLA synthesis, parallelism search, capstone, Pareto front,
grading and the vectorized DSE. Each request model is a thin pydantic form of the library call it
runs; the answer is the library's result as JSON."""
from __future__ import annotations

from typing import Any, Literal, Optional, Union

from pydantic import Field

from ..catalog import Clusters, Datacenters, Grids
from ..errors import InputError, renamed_owner
from .jobs import job_kind
from .records import resolve_hardware, resolve_workload
from .schemas import RequestModel

Precision = Literal["fp32", "tf32", "fp16", "bf16", "fp8", "int8", "fp4", "int4"]


def _fleet(name: str):
    return Clusters[name]


def problem_from(fields: dict):
    """A CapstoneProblem from request fields; invalid fields are the library's InputError(s), each
    named after the request field (``problem.qps``)."""
    from ..formulations.capstone import CapstoneProblem
    try:
        return CapstoneProblem(**fields)
    except InputError as exc:
        raise renamed_owner(exc, CapstoneProblem.__name__, "problem") from None


def _site(name: Optional[str]):
    if name is None:
        return None
    return Datacenters.get(name) or Grids[name]


# ------------------------------------------------------------------------------------------------


class ServingRequest(RequestModel):
    model: Any = Field(..., description="language model: registry name or inline record")
    hardware: Any = Field(..., description="accelerator: registry name or inline record")
    seq_len: int = Field(..., ge=1, description="KV tokens reserved per request")
    batch_size: int = Field(1, ge=1)
    precision: Precision = "fp16"
    efficiency: float = Field(0.5, gt=0, le=1)
    prompt_len: Optional[int] = Field(None, ge=1)
    output_len: Optional[int] = Field(None, ge=0)


@job_kind("serving", ServingRequest, "ServingModel.solve: TTFT, ITL and memory of LLM serving",
          refs={"model": "models", "hardware": "hardware"})
def run_serving(p, progress=None):
    from ..solvers.serving import ServingModel
    return ServingModel().solve(resolve_workload(p.model), resolve_hardware(p.hardware), seq_len=p.seq_len,
                                batch_size=p.batch_size, precision=p.precision, efficiency=p.efficiency,
                                prompt_len=p.prompt_len, output_len=p.output_len)


class DistributedRequest(RequestModel):
    model: Any = Field(..., description="registry name or inline record")
    fleet: str = Field(..., description="registry cluster, e.g. Research_256")
    batch_size: int = Field(..., ge=1)
    seq_len: int = Field(2048, ge=1)
    tp_size: int = Field(1, ge=1)
    pp_size: int = Field(1, ge=1)
    precision: Precision = "fp16"
    efficiency: float = Field(0.5, gt=0, le=1)
    zero_stage: int = Field(0, ge=0, le=3)


@job_kind("distributed", DistributedRequest, "DistributedModel.solve: one training step on a cluster",
          refs={"model": "models"})
def run_distributed(p, progress=None):
    from ..solvers.distributed import DistributedModel
    return DistributedModel().solve(resolve_workload(p.model), _fleet(p.fleet), batch_size=p.batch_size,
                                    seq_len=p.seq_len, tp_size=p.tp_size, pp_size=p.pp_size,
                                    precision=p.precision, efficiency=p.efficiency, zero_stage=p.zero_stage)


class FleetCostRequest(RequestModel):
    fleet: str = Field(..., description="registry cluster, e.g. Research_256")
    duration_days: float = Field(..., gt=0)
    datacenter: Optional[str] = Field(None, description="grid or datacenter registry name")
    mfu: Optional[float] = Field(None, gt=0, le=1)


class EconomicsRequest(FleetCostRequest):
    infrastructure_multiplier: float = Field(1.0, ge=1)
    amortization_years: float = Field(3.0, gt=0)


@job_kind("economics", EconomicsRequest, "EconomicsModel.solve: TCO of a fleet over a run")
def run_economics(p, progress=None):
    from ..solvers.economics import EconomicsModel
    return EconomicsModel().solve(_fleet(p.fleet), p.duration_days, mfu=p.mfu, datacenter=_site(p.datacenter),
                                  infrastructure_multiplier=p.infrastructure_multiplier,
                                  amortization_years=p.amortization_years)


@job_kind("sustainability", FleetCostRequest, "SustainabilityModel.solve: energy, carbon and water of a run")
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
    hardware: Optional[list[str]] = Field(None, max_length=64)
    precisions: list[Precision] = ["fp16", "fp8", "int8", "int4"]
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
          refs={"model": "models"})
def run_synthesize(p, progress=None):
    from ..formulations.sla_synthesis import synthesize
    return synthesize(resolve_workload(p.model), qps=p.qps, prompt_len=p.prompt_len, output_len=p.output_len, ttft=p.ttft, itl=p.itl,
                      e2e_latency=p.e2e_latency, hardware=p.hardware, precisions=p.precisions,
                      objective=p.objective, budget_usd=p.budget_usd, datacenter=_site(p.datacenter),
                      allow_mix=p.allow_mix, redundancy=p.redundancy, headroom=p.headroom, percentile=p.percentile,
                      chunk_sizes=p.chunk_sizes, disaggregated=p.disaggregated, ep_sizes=p.ep_sizes)


class ParallelismRequest(RequestModel):
    model: Any
    fleet: str
    batch_size: int = Field(..., ge=1)
    precision: Precision = "fp16"
    efficiency: float = Field(0.5, gt=0, le=1)
    seq_len: int = Field(2048, ge=1)
    zero_stage: int = Field(0, ge=0, le=3)
    max_ep: Optional[int] = Field(None, ge=1, le=1_000_000, description="largest expert-parallel degree tried")
    background_load: float = Field(0.0, ge=0, le=0.99, description="share of the oversubscribed tier other jobs use")
    backend: Literal["exhaustive", "highs"] = "highs"


@job_kind("parallelism", ParallelismRequest, "ParallelismOptimizer: the best TP x PP x DP x EP split",
          refs={"model": "models"})
def run_parallelism(p, progress=None):
    from ..solvers.parallelism import ParallelismOptimizer
    return ParallelismOptimizer(backend=p.backend).solve(
        resolve_workload(p.model), _fleet(p.fleet), batch_size=p.batch_size, precision=p.precision,
        efficiency=p.efficiency, seq_len=p.seq_len, zero_stage=p.zero_stage, max_ep=p.max_ep,
        background_load=p.background_load)


class CapstoneRequest(RequestModel):
    problem: dict = Field(default_factory=dict, description="CapstoneProblem fields; empty = the deck's capstone")


@job_kind("capstone", CapstoneRequest, "The two-region capstone MILP, solved to proven optimality")
def run_capstone(p, progress=None):
    from ..formulations.capstone import solve_capstone
    return solve_capstone(problem_from(p.problem))


class ParetoRequest(CapstoneRequest):
    points: int = Field(20, ge=2, le=100)
    axes: Literal["carbon", "ttft"] = "carbon"


@job_kind("pareto", ParetoRequest, "Exact Pareto front of the capstone (cost vs carbon or TTFT)")
def run_pareto(p, progress=None):
    from ..formulations.pareto import pareto_front
    front = pareto_front(problem_from(p.problem), points=p.points, axes=p.axes)
    return front.model_dump(mode="json", exclude={"points": {"__all__": {"design"}}})


class ParetoPlotRequest(ParetoRequest):
    format: Literal["png", "svg"] = "png"


class GradeRequest(CapstoneRequest):
    submission: dict = Field(..., description="{student, regions: {REGION: {hardware, precision, tp, pp, batch_size, replicas}}}")


@job_kind("grade", GradeRequest, "Grade a capstone submission: checks, gaps to the optimum, score, feedback")
def run_grade(p, progress=None):
    from ..grading import Grader
    return Grader(problem_from(p.problem)).grade(p.submission)


class DSEGridRequest(RequestModel):
    model: str
    hardware: list[str] = Field(..., min_length=1, max_length=64)
    batch_sizes: list[int] = Field([1], min_length=1, max_length=4096)
    precisions: list[Precision] = ["fp16"]
    efficiencies: list[float] = Field([0.5], min_length=1, max_length=64)
    objective: str = Field("maximize: throughput", max_length=200, description="parsed, never evaluated")
    constraints: list[str] = Field(default_factory=list, max_length=32)
    top_k: int = Field(5, ge=1, le=100)


@job_kind("dse_grid", DSEGridRequest, "Vectorized DSE over the roofline grid (safe objective/constraint strings)")
def run_dse_grid(p, progress=None):
    from ..dse import DSE
    r = DSE.roofline_grid(p.model, p.hardware, batch_sizes=p.batch_sizes, precisions=p.precisions,
                          efficiencies=p.efficiencies, objective=p.objective, constraints=p.constraints,
                          top_k=p.top_k)
    return {"best_params": r.best_params, "best_objective": r.best_objective, "objective_unit": r.objective_unit,
            "evaluated": r.evaluated, "satisfying": r.satisfying,
            "top_candidates": [{"params": c["params"], "objective_value": c["objective_value"]}
                               for c in r.top_candidates]}


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
