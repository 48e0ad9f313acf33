"""Capstone grading: evaluate a student's design with the forward models, check every constraint,
compare with the proven optimum and the exact Pareto front, score, and explain in plain words.

Submission (YAML)::

    student: Ada Lovelace
    regions:
      US_East: {hardware: H100, precision: fp8, tp: 2, pp: 1, batch_size: 64, replicas: 24}
      EU_West: {hardware: MI300X, precision: fp8, tp: 1, batch_size: 128, replicas: 30}

Rubric (100 points)
    feasibility 50: memory, TTFT, ITL, demand, minimum shares, redundancy, budget, carbon cap; each
                    check group failed loses its share (50 / number of groups checked).
    cost 30:        30 * max(0, 1 - gap / 0.5), gap = cost / optimal cost - 1 (full marks at the
                    optimum, none at 50% above it).
    Pareto 20:      20 * max(0, 1 - d / 0.25), d = the design's cost over the cheapest front point
                    with no more carbon, minus 1 (full marks on the front).
    Cost and Pareto points are only awarded to designs that pass every check.
A malformed submission gets 0 and a message saying what is wrong; it never stops a batch.
"""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Optional

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from . import inputs as _in
from .catalog import Hardware, default_node_for
from .errors import InputError, MlsysimError
from .formulations.capstone import CapstoneProblem, CapstoneResult, resolve_region, solve_capstone
from .formulations.pareto import ParetoFront, pareto_front, plot_front
from .formulations.goodput import apply_sla
from .formulations.serving_grid import meets, price_configs, serving_config
from .formulations.sla_synthesis import design

FEASIBILITY_POINTS, COST_POINTS, PARETO_POINTS = 50.0, 30.0, 20.0
COST_GAP_AT_ZERO, PARETO_GAP_AT_ZERO = 0.5, 0.25


class RegionChoice(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    hardware: str
    precision: str = "fp16"
    tp: int = 1
    pp: int = 1
    batch_size: int
    chunk_tokens: int = 512
    """Prefill tokens per iteration (chunked prefill)."""
    replicas: int


class Submission(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    student: str = "anonymous"
    regions: dict[str, RegionChoice]


class Check(BaseModel):
    model_config = ConfigDict(frozen=True)

    group: str
    name: str
    passed: bool
    value: float
    limit: float
    unit: str
    margin: float          # limit - value for upper limits, value - limit for lower ones (>= 0 passes)

    def sentence(self) -> str:
        verb = "meets" if self.passed else "violates"
        return (f"{self.name} {verb} its limit: {_amount(self.value, self.unit)} vs {_amount(self.limit, self.unit)} "
                f"(margin {'+' if self.margin >= 0 else '-'}{_amount(abs(self.margin), self.unit)})")


def _amount(value: float, unit: str) -> str:
    if unit == "USD":
        return f"${value / 1e6:,.2f}M" if abs(value) >= 1e6 else f"${value:,.0f}"
    return f"{value:,.1f} {unit}" if abs(value) < 1e5 else f"{value:,.0f} {unit}"


class GradeReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    source: str
    student: str
    status: str                          # "graded" or "malformed"
    score: float
    checks: list[Check] = []
    annual_cost_usd: Optional[float] = None
    annual_carbon_t: Optional[float] = None
    optimal_cost_usd: Optional[float] = None
    optimal_carbon_t: Optional[float] = None
    cost_gap: Optional[float] = None
    carbon_gap: Optional[float] = None
    pareto_distance: Optional[float] = None
    feedback: list[str] = []

    @property
    def feasible(self) -> bool:
        return self.status == "graded" and all(c.passed for c in self.checks)

    def __str__(self) -> str:
        lines = [f"{self.student} ({self.source}): {self.score:.1f}/100 [{self.status}]"]
        lines += [f"  - {f}" for f in self.feedback]
        return "\n".join(lines)


class Grader:
    """Grades submissions against one problem; the optimum and the front are computed once."""

    def __init__(self, problem: CapstoneProblem | None = None, *, pareto_points: int = 12):
        self.problem = problem or CapstoneProblem.from_scenario()   # Scenarios.Capstone
        self._pareto_points = pareto_points
        self._optimum: Optional[CapstoneResult] = None
        self._front: Optional[ParetoFront] = None

    @property
    def optimum(self) -> CapstoneResult:
        if self._optimum is None:
            self._optimum = solve_capstone(self.problem)
        return self._optimum

    @property
    def front(self) -> ParetoFront:
        if self._front is None:
            self._front = pareto_front(self.problem, points=self._pareto_points)
        return self._front

    # -- one submission --------------------------------------------------------------------------
    def grade(self, source: str | Path | dict) -> GradeReport:
        """Grade a YAML path, YAML text or mapping; malformed input yields a report, not an error."""
        name = str(source) if _is_path(source) else "<submission>"
        try:
            submission = _parse(source)
        except (MlsysimError, ValidationError, yaml.YAMLError, OSError, ValueError, TypeError) as exc:
            student = Path(name).stem if name != "<submission>" else "?"
            return GradeReport(source=name, student=student, status="malformed", score=0.0,
                               feedback=[f"malformed submission: {_explain(exc)}"])
        try:
            return self._grade(name, submission)
        except MlsysimError as exc:
            return GradeReport(source=name, student=submission.student, status="malformed", score=0.0,
                               feedback=[f"cannot evaluate the design: {exc}"])

    def _grade(self, source: str, sub: Submission) -> GradeReport:
        p = self.problem
        unknown = set(sub.regions) - set(p.regions)
        missing = set(p.regions) - set(sub.regions)
        if unknown or missing:
            raise InputError("regions", sorted(sub.regions),
                             f"must be exactly the problem's regions {p.regions}"
                             + (f"; unknown: {sorted(unknown)}" if unknown else "")
                             + (f"; missing: {sorted(missing)}" if missing else ""))
        checks: list[Check] = []
        usable, cost, carbon = {}, 0.0, 0.0
        for region, choice in sub.regions.items():
            fleet = _evaluate(p, region, choice)
            c = fleet.config
            usable[region] = max(0.0, fleet.total_qps)     # capacity with the spares down
            cost += fleet.annual_cost_usd
            carbon += fleet.annual_carbon_t
            checks.append(_upper("memory", f"{region} memory per replica", c.memory_utilization * 100, 100, "%"))
            # At the load each replica is planned to carry (its goodput); a design that misses a
            # limit even alone is shown its latencies alone.
            where = f"at {fleet.load.qps_per_replica:,.2f} QPS per replica" if fleet.load else "alone"
            for key, limit in (("ttft", p.ttft_ms), ("itl", p.itl_ms)):
                if limit is not None:
                    value = fleet.load.latency_ms(key) if fleet.load else c.latency_ms(key)
                    checks.append(_upper("latency", f"{region} {key.upper()} {p.percentile_label} {where}", value,
                                         limit, "ms"))
            checks.append(_lower("redundancy", f"{region} replicas (N+{p.redundancy})", choice.replicas,
                                 p.redundancy + 1, "replicas"))
            checks.append(_lower("share", f"{region} capacity with {p.redundancy} replica(s) down", usable[region],
                                 p.min_share * p.qps, "QPS"))
        checks.append(_lower("demand", "total capacity with spares down", sum(usable.values()), p.qps, "QPS"))
        if p.annual_budget_usd is not None:
            checks.append(_upper("budget", "annual cost", cost, p.annual_budget_usd, "USD"))
        if p.carbon_cap_t is not None:
            checks.append(_upper("carbon", "annual carbon", carbon, p.carbon_cap_t, "tCO2e"))
        return self._score(source, sub.student, checks, cost, carbon)

    def _score(self, source, student, checks, cost, carbon) -> GradeReport:
        groups = sorted({c.group for c in checks})
        failed = sorted({c.group for c in checks if not c.passed})
        score = FEASIBILITY_POINTS * (len(groups) - len(failed)) / len(groups)
        feedback = [c.sentence() for c in checks if not c.passed]
        opt = self.optimum
        cost_gap = carbon_gap = distance = None
        if opt.feasible:
            cost_gap = cost / opt.annual_cost_usd - 1
            carbon_gap = carbon / opt.annual_carbon_t - 1 if opt.annual_carbon_t > 0 else None
            distance = self._pareto_distance(cost, carbon)
        if not failed and opt.feasible:
            score += COST_POINTS * max(0.0, 1 - max(cost_gap, 0.0) / COST_GAP_AT_ZERO)
            score += PARETO_POINTS * max(0.0, 1 - max(distance, 0.0) / PARETO_GAP_AT_ZERO)
            if cost_gap <= 1e-6:
                feedback.append("Your design is as cheap as the proven optimum.")
            else:
                feedback.append(f"Your design costs {100 * cost_gap:.1f}% more than the optimum "
                                f"(${opt.annual_cost_usd:,.0f}/yr: {_describe(opt)}).")
            if distance <= 1e-6:
                feedback.append("It lies on the cost/carbon Pareto front: no design is both cheaper and cleaner.")
            else:
                feedback.append(f"A design on the Pareto front is {100 * distance / (1 + distance):.1f}% cheaper "
                                "for no more carbon.")
        elif failed:
            feedback.insert(0, f"The design fails {', '.join(failed)}; cost and Pareto points need every "
                               "constraint met.")
        return GradeReport(source=source, student=student, status="graded", score=round(score, 2), checks=checks,
                           annual_cost_usd=cost, annual_carbon_t=carbon,
                           optimal_cost_usd=opt.annual_cost_usd if opt.feasible else None,
                           optimal_carbon_t=opt.annual_carbon_t if opt.feasible else None,
                           cost_gap=cost_gap, carbon_gap=carbon_gap, pareto_distance=distance, feedback=feedback)

    def _pareto_distance(self, cost: float, carbon: float) -> float:
        """Cost over the cheapest front point with no more carbon, minus 1 (0 on or below the front).
        A design cleaner than every front point is compared with the cleanest one."""
        points = self.front.points
        if not points:
            return 0.0
        eligible = [q.annual_cost_usd for q in points if q.secondary <= carbon * (1 + 1e-9) + 1e-9]
        reference = min(eligible) if eligible else min(points, key=lambda q: q.secondary).annual_cost_usd
        return max(0.0, cost / reference - 1)

    # -- a folder ----------------------------------------------------------------------------------
    def grade_folder(self, folder: str | Path, *, csv_path: str | Path | None = None,
                     plot_path: str | Path | None = None, progress: bool = False) -> list[GradeReport]:
        paths = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in (".yaml", ".yml"))
        if not paths:
            raise InputError("folder", str(folder), "holds no .yaml or .yml submissions")
        reports = []
        iterator = paths
        if progress:
            from rich.progress import track
            iterator = track(paths, description="grading")
        for path in iterator:
            reports.append(self.grade(path))
        if csv_path is not None:
            write_csv(reports, csv_path)
        if plot_path is not None:
            others = [(r.student, r.annual_carbon_t, r.annual_cost_usd) for r in reports
                      if r.annual_cost_usd is not None]
            plot_front(self.front, str(plot_path), chosen=self.optimum, others=others)
        return reports


def _parse(source) -> Submission:
    if isinstance(source, dict):
        data = source
    else:
        text = Path(source).read_text(encoding="utf-8") if _is_path(source) else source
        data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise InputError("submission", type(data).__name__, "must be a mapping with 'student' and 'regions'")
    return Submission(**data)


def _is_path(source) -> bool:
    """A Path, or a one-line string naming a file (anything else is YAML text)."""
    if isinstance(source, Path):
        return True
    return isinstance(source, str) and "\n" not in source and (Path(source).suffix.lower() in (".yaml", ".yml")
                                                                or Path(source).is_file())


def _explain(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        parts = []
        for e in exc.errors():
            where = ".".join(str(x) for x in e.get("loc", ()))
            parts.append(f"{where}: {e.get('msg')}")
        return "; ".join(parts)
    return str(exc)


def _evaluate(p: CapstoneProblem, region: str, choice: RegionChoice):
    """Forward evaluation of one region's design: its serving metrics, and its capacity, annual cost
    and carbon from the fleet sheet."""
    hw = p.accelerator(choice.hardware)
    wl = p.workload()
    for field in ("tp", "pp", "batch_size", "chunk_tokens"):
        _in.positive_int(getattr(choice, field), f"regions.{region}.{field}")
    _in.positive_int(choice.replicas, f"regions.{region}.replicas", minimum=0)
    node = default_node_for(hw)
    if choice.tp * choice.pp > node.accelerators_per_node:
        raise InputError(f"regions.{region}.tp x pp", choice.tp * choice.pp,
                         f"must fit in one node of {node.accelerators_per_node} {hw.name}")
    if not wl.shards_over(choice.tp):
        raise InputError(f"regions.{region}.tp", choice.tp,
                         f"must divide the model's {wl.heads} heads and {wl.n_kv_heads} KV heads")
    config = serving_config(wl, hw, precision=choice.precision, tp=choice.tp, pp=choice.pp,
                            batch_size=choice.batch_size, prompt_len=p.prompt_len, output_len=p.output_len,
                            efficiency=p.efficiency, chunk_tokens=choice.chunk_tokens)
    [priced] = price_configs([config], datacenter=resolve_region(region), utilization=p.utilization,
                             infrastructure_multiplier=p.infrastructure_multiplier, hardware=[hw])
    limits = {k: v for k, v in (("ttft", p.ttft_ms), ("itl", p.itl_ms)) if v is not None}
    [planned] = apply_sla([priced], limits, p.percentile, keep_unmet=True) or [priced]
    fleet = design(planned, choice.replicas, headroom=p.planned_headroom, spares=p.redundancy)
    if not meets(planned, limits):
        return fleet
    # Each working replica at its goodput: the most load the design may carry within the SLA.
    working = max(choice.replicas - p.redundancy, 0)
    return design(planned, choice.replicas, headroom=p.planned_headroom, spares=p.redundancy,
                  demand=fleet.total_qps if working else None)


def _upper(group, name, value, limit, unit) -> Check:
    return Check(group=group, name=name, passed=value <= limit * (1 + 1e-9), value=float(value), limit=float(limit),
                 unit=unit, margin=float(limit - value))


def _lower(group, name, value, limit, unit) -> Check:
    return Check(group=group, name=name, passed=value >= limit * (1 - 1e-9), value=float(value), limit=float(limit),
                 unit=unit, margin=float(value - limit))


def _describe(result: CapstoneResult) -> str:
    return "; ".join(f"{d.region} {d.replicas} x {d.config.name}" for d in result.regions)


def write_csv(reports: list[GradeReport], path: str | Path) -> None:
    fields = ["source", "student", "status", "score", "annual_cost_usd", "annual_carbon_t", "cost_gap",
              "pareto_distance", "failed_checks", "feedback"]
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=fields)
        w.writeheader()
        for r in reports:
            w.writerow({"source": r.source, "student": r.student, "status": r.status, "score": r.score,
                        "annual_cost_usd": r.annual_cost_usd, "annual_carbon_t": r.annual_carbon_t,
                        "cost_gap": r.cost_gap, "pareto_distance": r.pareto_distance,
                        "failed_checks": "; ".join(c.name for c in r.checks if not c.passed),
                        "feedback": " | ".join(r.feedback)})


def submission_from_result(result: CapstoneResult, student: str = "optimal") -> dict:
    """A submission mapping equal to a solved design (for demos and tests)."""
    return {"student": student, "regions": {
        d.region: {"hardware": _registry_key(d.config.hardware), "precision": d.config.precision, "tp": d.config.tp,
                   "pp": d.config.pp, "batch_size": d.config.batch_size, "replicas": d.replicas}
        for d in result.regions}}


def _registry_key(name: str) -> str:
    for key, record in Hardware.items():
        if record.name == name:
            return key
    return name
