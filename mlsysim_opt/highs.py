"""The one way a Pyomo model is solved: HiGHS through Pyomo's ``pyomo.contrib.solver`` interface.

HiGHS statuses are mapped to :class:`SolveStatus` here and nowhere else. A time-limited incumbent
is ``FEASIBLE`` with its gap, never ``OPTIMAL``.
"""
from __future__ import annotations

import enum
import math
import time
from typing import Mapping, Optional

import pyomo.environ as pyo
from pydantic import BaseModel, ConfigDict

from .errors import SolverError


class SolveStatus(str, enum.Enum):
    OPTIMAL = "optimal"              # proven optimal within the requested gap
    FEASIBLE = "feasible"            # an incumbent, optimality not proven (time or node limit)
    INFEASIBLE = "infeasible"        # proven infeasible
    UNBOUNDED = "unbounded"
    NO_SOLUTION = "no_solution"      # stopped before any incumbent was found
    ERROR = "error"


class SolveResult(BaseModel):
    """What the solver proved: status, objective, bound, gap, time and problem size."""

    model_config = ConfigDict(frozen=True)

    status: SolveStatus
    objective: Optional[float]
    bound: Optional[float]
    gap: Optional[float]
    solve_time_s: float
    n_variables: int
    n_integer_variables: int
    n_constraints: int
    termination: str
    warm_start_used: bool = False

    @property
    def proven_optimal(self) -> bool:
        return self.status is SolveStatus.OPTIMAL

    @property
    def has_solution(self) -> bool:
        return self.status in (SolveStatus.OPTIMAL, SolveStatus.FEASIBLE)


def _status(termination, solution_status) -> SolveStatus:
    from pyomo.contrib.solver.common.results import SolutionStatus, TerminationCondition as T
    if termination == T.convergenceCriteriaSatisfied and solution_status == SolutionStatus.optimal:
        return SolveStatus.OPTIMAL
    if termination in (T.provenInfeasible, T.locallyInfeasible):
        return SolveStatus.INFEASIBLE
    if termination == T.unbounded:
        return SolveStatus.UNBOUNDED
    if termination == T.infeasibleOrUnbounded:
        return SolveStatus.INFEASIBLE
    if solution_status in (SolutionStatus.feasible, SolutionStatus.optimal):
        return SolveStatus.FEASIBLE
    if termination == T.error:
        return SolveStatus.ERROR
    return SolveStatus.NO_SOLUTION


def _size(model: pyo.ConcreteModel) -> tuple[int, int, int]:
    variables = list(model.component_data_objects(pyo.Var, active=True, descend_into=True))
    integers = sum(1 for v in variables if v.is_integer() or v.is_binary())
    constraints = sum(1 for _ in model.component_data_objects(pyo.Constraint, active=True, descend_into=True))
    return len(variables), integers, constraints


class Session:
    """One HiGHS instance kept across solves of the same model (epsilon-constraint sweeps, elastic
    explanations): Pyomo's persistent interface then passes only what changed (mutable limits,
    objectives, added or removed rows) instead of rebuilding the problem."""

    def __init__(self):
        from pyomo.contrib.solver.common.factory import SolverFactory
        self.opt = SolverFactory("highs")
        if not self.opt.available():
            raise SolverError("HiGHS is not available: install highspy (a required dependency)")

    def solve(self, model: pyo.ConcreteModel, *, time_limit: float = 30.0, mip_gap: float = 1e-6,
              threads: int | None = None, warm_start: Mapping | None = None) -> SolveResult:
        """Solve ``model``; load the solution into its variables when there is one.

        ``warm_start`` gives values of a known feasible solution (e.g. a heuristic) as a
        ``ComponentMap`` or a list of ``(variable, value)`` pairs; it is handed to HiGHS as a starting
        incumbent, and kept as the answer if HiGHS finds none in time.
        """
        from pyomo.common.collections import ComponentMap
        if warm_start is not None and not isinstance(warm_start, ComponentMap):
            warm_start = ComponentMap(warm_start.items() if hasattr(warm_start, "items") else warm_start)
        opt = self.opt
        n_vars, n_int, n_cons = _size(model)
        used_start = False
        if warm_start:
            used_start = _set_start(opt, model, warm_start)
        start = time.perf_counter()
        try:
            res = opt.solve(model, time_limit=time_limit, rel_gap=mip_gap, threads=threads,
                            load_solutions=False, raise_exception_on_nonoptimal_result=False)
        except Exception as exc:  # HiGHS or Pyomo failed outright: report, do not guess
            raise SolverError(f"HiGHS failed: {exc}") from exc
        elapsed = time.perf_counter() - start
        status = _status(res.termination_condition, res.solution_status)
        objective, bound = res.incumbent_objective, res.objective_bound
        if status in (SolveStatus.OPTIMAL, SolveStatus.FEASIBLE):
            res.solution_loader.load_vars()
        elif warm_start and status == SolveStatus.NO_SOLUTION:
            for var, val in warm_start.items():
                var.set_value(val)
            status = SolveStatus.FEASIBLE
            objective = pyo.value(next(model.component_data_objects(pyo.Objective, active=True)))
        gap = None
        if objective is not None and bound is not None and all(map(math.isfinite, (objective, bound))):
            gap = abs(objective - bound) / max(1e-9, abs(objective))
        return SolveResult(status=status, objective=objective, bound=bound, gap=gap, solve_time_s=elapsed,
                           n_variables=n_vars, n_integer_variables=n_int, n_constraints=n_cons,
                           termination=str(res.termination_condition.name), warm_start_used=used_start)


def solve(model: pyo.ConcreteModel, **options) -> SolveResult:
    """Solve ``model`` once with a fresh HiGHS instance (see :meth:`Session.solve`)."""
    return Session().solve(model, **options)


def _set_start(opt, model, warm_start: Mapping) -> bool:
    """Give HiGHS a starting solution (column values in its own order). Returns whether it took."""
    try:
        import highspy
        if getattr(opt, "_model", None) is model:
            opt.update()          # the persistent instance already holds this model
        else:
            opt.set_instance(model)
        h = opt._solver_model                              # the highspy.Highs instance
        col_of = opt._pyomo_var_to_solver_var_map          # id(var) -> column index
        values = [0.0] * h.getNumCol()
        for var in model.component_data_objects(pyo.Var, active=True, descend_into=True):
            col = col_of.get(id(var))
            if col is None:
                continue
            if var in warm_start:
                values[col] = float(warm_start[var])
            elif var.value is not None:
                values[col] = float(var.value)
        sol = highspy.HighsSolution()
        sol.col_value = values
        sol.value_valid = True
        return h.setSolution(sol) == highspy.HighsStatus.kOk
    except Exception:  # an interface change must not break solving: the start is only a hint
        return False
