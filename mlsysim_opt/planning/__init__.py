"""Global fleet planning over time: hourly demand per user region, hourly grid carbon per site,
owned, reserved, on-demand and spot capacity, planned as one MILP (formulations/global_plan.py)."""
from mlsysim_opt.planning.demand import Demand
from mlsysim_opt.planning.problem import KINDS, Offer, PlanProblem, RequestClass, SiteLimit, SiteSpec
from mlsysim_opt.planning.plan import PlanResult, plan_fleet
from mlsysim_opt.planning.studies import PlanPareto, Scenario, pareto_front, run_scenarios

__all__ = ["Demand", "KINDS", "Offer", "PlanProblem", "PlanResult", "RequestClass", "SiteLimit", "SiteSpec",
           "plan_fleet", "PlanPareto", "Scenario", "pareto_front", "run_scenarios"]
