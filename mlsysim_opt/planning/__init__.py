"""Global fleet planning over time: hourly demand per user region, hourly grid carbon per site,
owned, reserved, on-demand and spot capacity, planned as one MILP (formulations/global_plan.py)."""
import importlib

# Imported on first use (PEP 562): the planner needs Pyomo, and a light submodule such as
# ``planning.export`` (the CLI's JSON form of a plan) should not pay for it.
_HOMES = {"Demand": "demand", "KINDS": "problem", "Offer": "problem", "PlanProblem": "problem",
          "RequestClass": "problem", "SiteLimit": "problem", "SiteSpec": "problem", "PlanResult": "plan",
          "plan_fleet": "plan", "PlanPareto": "studies", "Scenario": "studies", "pareto_front": "studies",
          "run_scenarios": "studies"}

__all__ = ["Demand", "KINDS", "Offer", "PlanProblem", "PlanResult", "RequestClass", "SiteLimit", "SiteSpec",
           "plan_fleet", "PlanPareto", "Scenario", "pareto_front", "run_scenarios"]


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_HOMES))
