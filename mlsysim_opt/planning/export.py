"""A plan and a cost-carbon front as JSON (the CLI's ``--json`` and the service's ``plan`` job kind)."""
from __future__ import annotations

TABLES = {"fixed": "fixed", "replicas": "replicas", "routing": "routing", "by_hour": "hours"}
"""Published table name (CSV file, JSON key, PlanResult method) -> key in ``PlanResult.tables``."""


def plan_json(result) -> dict:
    """A :class:`PlanResult` as JSON: the answer's numbers, the solve, and the four tables as columns
    (``tables[name][column]``). The problem itself is left out (the caller sent it)."""
    solve = result.solve
    return {"name": result.problem.name, "feasible": result.feasible, "status": solve.status.value,
            "method": result.method, "objective": result.problem.objective,
            "objective_value": result.objective_value, "bound": result.bound, "gap": result.gap,
            "cost_usd": result.cost_usd, "carbon_t": result.carbon_t, "energy_mwh": result.energy_mwh,
            "solve_time_s": solve.solve_time_s, "termination": solve.termination,
            "explanation": None if result.explanation is None else result.explanation.model_dump(mode="json"),
            "candidates": result.candidates,
            "tables": {name: result.tables.get(key, {}) for name, key in TABLES.items()}}


def pareto_json(front) -> dict:
    """A :class:`PlanPareto` as JSON: each point's cap, cost, carbon and gap, and its plan."""
    return {"points": [{"carbon_cap_t": p.carbon_cap_t, "cost_usd": p.cost_usd, "carbon_t": p.carbon_t,
                        "gap": p.gap, "plan": plan_json(p.plan)} for p in front.points]}
