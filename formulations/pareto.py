"""Exact Pareto fronts of the capstone MILP by the epsilon-constraint method.

TCO vs carbon: minimize annual TCO subject to annual carbon <= eps for eps evenly spaced between
the lowest achievable carbon and the carbon of the cheapest design. The objective carries a
tie-breaking sliver of carbon (the augmented epsilon-constraint method, Mavrotas 2009), so each
point is Pareto-optimal and not merely weakly so, with one MILP per point; the sliver is sized to
move the cost by at most 1e-6 of the front's cost range. Latency vs cost: the TTFT limit (a
percentile under load) as epsilon, swept geometrically; a tighter limit lowers every
configuration's goodput, so each point is a capstone of its own (``_ttft_front``).

The knee is the front point farthest from the chord joining the two extremes, in objectives
normalized to [0, 1].
"""
from __future__ import annotations

from typing import Literal, Optional

import numpy as np
import pyomo.environ as pyo
from pydantic import BaseModel, ConfigDict

from mlsysim_opt.errors import InputError
from mlsysim_opt.formulations.builder import number
from mlsysim_opt.formulations.capstone import CapstoneProblem, CapstoneResult, build_model, region_candidates
from mlsysim_opt.highs import Session
from mlsysim_opt.milp import set_limit


class ParetoPoint(BaseModel):
    model_config = ConfigDict(frozen=True)

    annual_cost_usd: float
    secondary: float            # annual carbon (t) or TTFT (ms)
    epsilon: float
    design: CapstoneResult


class ParetoFront(BaseModel):
    model_config = ConfigDict(frozen=True)

    axes: tuple[str, str]
    points: list[ParetoPoint]
    knee: Optional[int]
    solve_time_s: float
    solves: int

    def values(self) -> np.ndarray:
        return np.array([(p.annual_cost_usd, p.secondary) for p in self.points])

    def __str__(self) -> str:
        unit = "tCO2e/yr" if self.axes[1] == "carbon" else "ms TTFT"
        lines = [f"Pareto front, annual cost vs {self.axes[1]} ({len(self.points)} points, {self.solves} MILP "
                 f"solves, {self.solve_time_s:.2f} s):"]
        for i, p in enumerate(self.points):
            mark = "  <- knee" if i == self.knee else ""
            lines.append(f"  ${p.annual_cost_usd:>12,.0f}/yr  {p.secondary:>10,.1f} {unit}{mark}")
        return "\n".join(lines)


def _knee(values: np.ndarray) -> Optional[int]:
    if len(values) < 3:
        return None
    lo, hi = values.min(0), values.max(0)
    span = np.where(hi > lo, hi - lo, 1.0)
    v = (values - lo) / span
    a, b = v[0], v[-1]
    d = b - a
    dist = np.abs(d[0] * (v[:, 1] - a[1]) - d[1] * (v[:, 0] - a[0])) / max(np.hypot(*d), 1e-12)
    return int(np.argmax(dist))


def _non_dominated(points: list[ParetoPoint]) -> list[ParetoPoint]:
    out = []
    for p in sorted(points, key=lambda p: (p.annual_cost_usd, p.secondary)):
        if out and p.secondary >= out[-1].secondary - 1e-9 * max(1.0, abs(out[-1].secondary)):
            continue  # same or worse secondary at a higher cost: dominated (or a duplicate)
        out.append(p)
    return out


def pareto_front(problem: CapstoneProblem | None = None, *, points: int = 20,
                 axes: Literal["carbon", "ttft"] = "carbon", candidates=None,
                 time_limit: float = 60.0) -> ParetoFront:
    """The exact front of annual TCO against annual carbon (``axes="carbon"``) or TTFT."""
    import time
    p = problem or CapstoneProblem()
    if isinstance(points, bool) or not isinstance(points, int) or points < 2 or points > 1000:
        raise InputError("points", points, "must be a whole number from 2 to 1000")
    if axes not in ("carbon", "ttft"):
        raise InputError("axes", axes, "must be 'carbon' or 'ttft'")
    number(time_limit, "time_limit", maximum=1e7)
    start = time.perf_counter()
    candidates = candidates if candidates is not None else region_candidates(p)
    if axes == "ttft":
        return _ttft_front(p, candidates, points, time_limit, start)
    # Sweep from low to high carbon so each point's design is feasible for the next epsilon. The
    # front is the trade-off itself: no carbon cap of its own, but the budget still binds.
    base = p.with_(carbon_cap_t=None)
    built = build_model(base, candidates, carbon_cap_t=1e12)
    eps_con = next(s for s in built.formulation.soft if s.name == "carbon")
    m, pools = built.model, built.pools
    if not all(len(cols) for cols in pools.values()):
        raise InputError("problem", p.name, "has a region where no configuration meets the latency limits",
                         "solve_capstone(problem) explains which limits conflict")
    solves = 0
    session = Session()   # one HiGHS instance for the whole sweep: only the changes are passed on

    decisions = [v for v in m.component_data_objects(pyo.Var) if not v.fixed]

    def run(objective_expr, sense=pyo.minimize, warm=False):
        nonlocal solves
        m.objective.deactivate()
        if hasattr(m, "_stage"):
            m.del_component("_stage")
        m.add_component("_stage", pyo.Objective(expr=objective_expr, sense=sense))
        solves += 1
        # The previous point stays feasible (epsilon only loosens; stage two keeps stage one's
        # cost), so it is handed to HiGHS as the starting incumbent.
        start = [(v, v.value) for v in decisions if v.value is not None] if warm else None
        return session.solve(m, time_limit=time_limit, warm_start=start)

    cheapest = run(m.cost)
    if not cheapest.has_solution:
        raise InputError("problem", p.name, f"has no feasible design ({cheapest.status.value})",
                         "solve_capstone(problem) explains which limits conflict")
    carbon_hi, cost_lo = float(pyo.value(m.carbon)), float(pyo.value(m.cost))
    run(m.carbon)
    carbon_lo, cost_hi = float(pyo.value(m.carbon)), float(pyo.value(m.cost))
    grid = np.linspace(carbon_lo, carbon_hi, points)
    # weight small enough that it never buys carbon with more than 1e-6 of the cost range
    augment = 1e-6 * max(cost_hi - cost_lo, 1.0) / max(carbon_hi - carbon_lo, 1e-9)
    front: list[ParetoPoint] = []
    for eps in grid:
        set_limit(eps_con, float(eps) * (1 + 1e-9) + 1e-9)
        # Augmented epsilon-constraint (Mavrotas 2009): cost plus a tie-breaking sliver of the
        # secondary objective, so the optimum is Pareto-optimal, not merely weakly so, in one solve.
        status = run(m.cost + augment * m.carbon, warm=bool(front))
        if not status.has_solution:
            continue
        design = built.result(base, status)
        # from the design, whose replica counts are whole numbers (the solver's are within 1e-9)
        front.append(ParetoPoint(annual_cost_usd=design.annual_cost_usd, secondary=design.annual_carbon_t,
                                 epsilon=float(eps),
                                 design=design))
    front = _non_dominated(front)
    knee = _knee(np.array([(q.annual_cost_usd, q.secondary) for q in front])) if front else None
    return ParetoFront(axes=("tco", "carbon"), points=front, knee=knee, solve_time_s=time.perf_counter() - start,
                       solves=solves)


def _ttft_front(p: CapstoneProblem, candidates: dict, points: int, time_limit: float, start: float) -> ParetoFront:
    """Annual TCO against the TTFT limit under load. A tighter limit lowers every configuration's
    goodput, so each epsilon is its own capstone: the limit swept geometrically from just above
    the least TTFT of a request alone to the problem's limit (or four times that least TTFT), each
    point's TTFT the highest its regions' replicas show at the load they carry."""
    import time
    from mlsysim_opt.formulations.capstone import solve_capstone
    from mlsysim_opt.formulations.goodput import apply_sla
    alone = min(c.ttft_ms for cs in candidates.values() for c in cs)
    high = p.ttft_ms if p.ttft_ms is not None else 4 * alone
    if not high > alone:
        raise InputError("problem.ttft_ms", p.ttft_ms, f"is below the least TTFT any design shows ({alone:.4g} ms "
                         "for a request alone): there is no front to sweep", "raise it, or sweep axes='carbon'")
    front: list[ParetoPoint] = []
    solves = 0
    for eps in np.geomspace(alone * (1 + 1e-3), high, points):
        variant = p.with_(ttft_ms=float(eps))
        limits = {k: v for k, v in (("ttft", variant.ttft_ms), ("itl", variant.itl_ms)) if v is not None}
        planned = {r: apply_sla(cs, limits, p.percentile, keep_unmet=True) for r, cs in candidates.items()}
        design = solve_capstone(variant, candidates=planned, time_limit=time_limit, explain=False)
        solves += 1
        if not design.feasible:
            continue
        value = max(d.load.ttft_ms if d.load is not None else d.config.ttft_ms for d in design.regions)
        front.append(ParetoPoint(annual_cost_usd=design.annual_cost_usd, secondary=value, epsilon=float(eps),
                                 design=design))
    front = _non_dominated(front)
    knee = _knee(np.array([(q.annual_cost_usd, q.secondary) for q in front])) if front else None
    return ParetoFront(axes=("tco", "ttft"), points=front, knee=knee, solve_time_s=time.perf_counter() - start,
                       solves=solves)


def plot_front(front: ParetoFront, path: str, *, chosen: Optional[CapstoneResult] = None,
               others: Optional[list[tuple[str, float, float]]] = None) -> str:
    """Save the front (PNG or SVG by extension) with the knee, the chosen design and optional
    labelled points (e.g. graded submissions) marked. Returns the path."""
    plot_format(path)          # before drawing: a wrong suffix should not cost a figure
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    v = front.values()
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    if len(v):
        ax.plot(v[:, 1], v[:, 0] / 1e6, "o-", color="#1f77b4", label="Pareto front (exact)")
    if front.knee is not None:
        k = v[front.knee]
        ax.plot(k[1], k[0] / 1e6, "*", ms=16, color="#d62728", label="knee")
    if chosen is not None and chosen.feasible:
        y = chosen.annual_carbon_t if front.axes[1] == "carbon" else max(
            d.load.ttft_ms if d.load is not None else d.config.ttft_ms for d in chosen.regions)
        ax.plot(y, chosen.annual_cost_usd / 1e6, "s", ms=10, mfc="none", mec="black", label="chosen design")
    for label, sec, cost in others or []:
        ax.plot(sec, cost / 1e6, "x", ms=8)
        ax.annotate(label, (sec, cost / 1e6), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.set_xlabel("annual carbon (tCO2e/year)" if front.axes[1] == "carbon" else "TTFT (ms)")
    ax.set_ylabel("annual TCO (million USD/year)")
    ax.set_title(f"Cost against {'carbon' if front.axes[1] == 'carbon' else 'TTFT'}: exact Pareto front", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    # The suffix names the format (never PNG bytes in a .jpg); "tight" keeps labels near the edge whole.
    fig.savefig(path, format=plot_format(path), bbox_inches="tight")
    plt.close(fig)
    return path


PLOT_FORMATS = ("png", "svg", "pdf")


def plot_format(path: str) -> str:
    """The image format a file name asks for by its suffix; an unknown suffix is refused."""
    from pathlib import Path
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix not in PLOT_FORMATS:
        raise InputError("plot path", str(path), f"must end in {', '.join('.' + f for f in PLOT_FORMATS)} "
                         "(the suffix sets the format)", f"e.g. {Path(path).with_suffix('.png').name}")
    return suffix
