"""The one way a Pyomo model is solved: HiGHS through Pyomo's ``pyomo.contrib.solver`` interface.

HiGHS statuses are mapped to :class:`SolveStatus` here and nowhere else. A time-limited incumbent
is ``FEASIBLE`` with its gap, never ``OPTIMAL``. A starting solution (warm start) is checked
against every active constraint, bound and integrality before it is handed over; it is reported
only when it holds, and then as what it is (``solution_source="warm_start"``): when the solver
found nothing in time, or only something worse.
"""
from __future__ import annotations

import enum
import math
import threading
import time
from typing import Literal, Mapping, Optional

import pyomo.environ as pyo
from pydantic import BaseModel, ConfigDict

from .errors import SolverError

SOLVER_LOCK = threading.RLock()
"""One solve at a time per process: Pyomo's solver interface captures the process's stdout and
stderr around each call (``pyomo.common.tee.capture_output``), and two threads doing so at once
deadlock (seen with several dashboard sessions in one server). Processes solve in parallel."""


ANSWER_TOLERANCE = 1e-5
"""Relative violation of a row beyond which a solver's answer is not reported: looser than HiGHS's
own feasibility tolerance (1e-7 on its scaled rows), so only numerically unsound answers fail."""


class SolveStatus(str, enum.Enum):
    OPTIMAL = "optimal"              # proven optimal within the requested gap
    FEASIBLE = "feasible"            # an incumbent, optimality not proven (time or node limit)
    INFEASIBLE = "infeasible"        # proven infeasible
    UNBOUNDED = "unbounded"
    NO_SOLUTION = "no_solution"      # stopped before any incumbent was found
    ERROR = "error"                  # the solver failed, or its answer breaks a row (see termination)


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
    solution_source: Optional[Literal["solver", "warm_start"]] = None
    """Where the reported solution comes from (None when there is none)."""

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
        ``ComponentMap`` or a list of ``(variable, value)`` pairs. When it satisfies every active
        constraint it is handed to HiGHS as a starting incumbent, and it is the answer (status
        ``FEASIBLE``, ``solution_source="warm_start"``) when HiGHS stops with nothing better; a
        start that breaks a constraint is never reported.
        """
        from pyomo.common.collections import ComponentMap
        if warm_start is not None and not isinstance(warm_start, ComponentMap):
            warm_start = ComponentMap(warm_start.items() if hasattr(warm_start, "items") else warm_start)
        opt = self.opt
        n_vars, n_int, n_cons = _size(model)
        objective_data = next(model.component_data_objects(pyo.Objective, active=True))
        start_objective = None
        if warm_start and violations(model, warm_start, limit=1) == []:
            start_objective = _objective_at(objective_data, model, warm_start)
        with SOLVER_LOCK:
            used_start = _set_start(opt, model, warm_start) if start_objective is not None else False
            start = time.perf_counter()
            try:
                res = opt.solve(model, time_limit=time_limit, rel_gap=mip_gap, threads=threads,
                                load_solutions=False, raise_exception_on_nonoptimal_result=False)
            except Exception as exc:  # HiGHS or Pyomo failed outright: report, do not guess
                raise SolverError(f"HiGHS failed: {exc}") from exc
            elapsed = time.perf_counter() - start
        status = _status(res.termination_condition, res.solution_status)
        objective, bound = res.incumbent_objective, res.objective_bound
        source = "solver" if status in (SolveStatus.OPTIMAL, SolveStatus.FEASIBLE) else None
        termination = str(res.termination_condition.name)
        if source:
            res.solution_loader.load_vars()
            broken = violations(model, [], tolerance=ANSWER_TOLERANCE, limit=1)
            if broken:   # numerically unsound (e.g. coefficients near the solver's zero): not an answer
                status, objective, source = SolveStatus.ERROR, None, None
                termination = f"the solver's answer breaks {broken[0]}"
        if prefer_start(status, objective, start_objective, maximize=objective_data.sense == pyo.maximize):
            for var, val in warm_start.items():
                var.set_value(val, skip_validation=True)
            status, objective, source = SolveStatus.FEASIBLE, start_objective, "warm_start"
        gap = None
        if objective is not None and bound is not None and all(map(math.isfinite, (objective, bound))):
            gap = abs(objective - bound) / max(1e-9, abs(objective))
        return SolveResult(status=status, objective=objective, bound=bound, gap=gap, solve_time_s=elapsed,
                           n_variables=n_vars, n_integer_variables=n_int, n_constraints=n_cons,
                           termination=termination, warm_start_used=used_start,
                           solution_source=source)


def prefer_start(status: SolveStatus, objective: float | None, start_objective: float | None, *,
                 maximize: bool) -> bool:
    """Whether a checked starting solution (objective ``start_objective``; None when it broke a
    row) should be the answer: the solver stopped early with nothing, or with something worse."""
    if start_objective is None:
        return False
    if status is SolveStatus.NO_SOLUTION:
        return True
    if status is SolveStatus.FEASIBLE and objective is not None:
        return start_objective > objective if maximize else start_objective < objective
    return False


def violations(model: pyo.ConcreteModel, values, *, tolerance: float = 1e-6,
               limit: int | None = None) -> list[str]:
    """The constraints, bounds and integrality rules that ``values`` (a ``ComponentMap`` or
    ``(variable, value)`` pairs; other
    variables at their current values, fixed ones at theirs) break; empty when it is feasible.
    Tolerances are relative to the size of each side, as a solver's are."""
    pairs = values.items() if hasattr(values, "items") else values
    out: list[str] = []
    saved = []
    try:
        for var, val in pairs:
            if var.fixed:
                if abs(float(val) - float(var.value)) > tolerance * max(1.0, abs(float(var.value))):
                    out.append(f"{var.name} is fixed at {var.value}, start has {val}")
                continue
            saved.append((var, var.value))
            var.set_value(float(val), skip_validation=True)
        for var in model.component_data_objects(pyo.Var, active=True, descend_into=True):
            v = var.value
            if v is None:
                if not var.fixed:
                    out.append(f"{var.name} has no value")
                continue
            scale = tolerance * max(1.0, abs(v))
            if (var.lb is not None and v < var.lb - scale) or (var.ub is not None and v > var.ub + scale):
                out.append(f"{var.name} = {v} outside [{var.lb}, {var.ub}]")
            elif (var.is_integer() or var.is_binary()) and abs(v - round(v)) > 1e-6:
                out.append(f"{var.name} = {v} is not integral")
            if limit and len(out) >= limit:
                return out
        if out:
            return out
        for con in model.component_data_objects(pyo.Constraint, active=True, descend_into=True):
            try:
                body = float(pyo.value(con.body))
            except (ValueError, ZeroDivisionError):
                out.append(f"{con.name} cannot be evaluated")
                continue
            lo, hi = con.lower, con.upper
            lo = None if lo is None else float(pyo.value(lo))
            hi = None if hi is None else float(pyo.value(hi))
            size = max(1.0, abs(body), abs(lo or 0.0), abs(hi or 0.0))
            if (lo is not None and body < lo - tolerance * size) or (hi is not None and body > hi + tolerance * size):
                out.append(f"{con.name}: {body:.6g} outside [{lo}, {hi}]")
                if limit and len(out) >= limit:
                    return out
        return out
    finally:
        for var, val in reversed(saved):
            var.set_value(val, skip_validation=True)


def _objective_at(objective, model, values: Mapping) -> float:
    saved = [(var, var.value) for var in values if not var.fixed]
    try:
        for var, _ in saved:
            var.set_value(float(values[var]), skip_validation=True)
        return float(pyo.value(objective.expr))
    finally:
        for var, val in reversed(saved):
            var.set_value(val, skip_validation=True)


def solve(model: pyo.ConcreteModel, **options) -> SolveResult:
    """Solve ``model`` once with a fresh HiGHS instance (see :meth:`Session.solve`)."""
    return Session().solve(model, **options)


def solve_lp(model: pyo.ConcreteModel, *, time_limit: float = 30.0):
    """Solve ``model``, a linear program (no integer variables), and return its
    :class:`SolveResult` with the reduced cost of every variable (a ``ComponentMap``; empty when
    there is no optimum). Reduced costs certify bounds: at an LP optimum, any feasible point x has
    objective >= optimum + sum_j d_j (x_j - x*_j), every term of which is >= 0."""
    from pyomo.common.collections import ComponentMap
    from pyomo.contrib.solver.common.factory import SolverFactory
    if any(v.is_integer() or v.is_binary() for v in model.component_data_objects(pyo.Var, active=True)):
        raise SolverError("solve_lp takes a linear program: relax the integer variables first")
    opt = SolverFactory("highs")
    n_vars, _, n_cons = _size(model)
    start = time.perf_counter()
    try:
        with SOLVER_LOCK:
            res = opt.solve(model, time_limit=time_limit, load_solutions=False,
                            raise_exception_on_nonoptimal_result=False)
    except Exception as exc:
        raise SolverError(f"HiGHS failed: {exc}") from exc
    status = _status(res.termination_condition, res.solution_status)
    reduced = ComponentMap()
    if status is SolveStatus.OPTIMAL:
        res.solution_loader.load_vars()
        reduced = res.solution_loader.get_reduced_costs()
    objective = res.incumbent_objective if status is SolveStatus.OPTIMAL else None
    result = SolveResult(status=status, objective=objective, bound=objective, gap=0.0 if objective is not None else None,
                         solve_time_s=time.perf_counter() - start, n_variables=n_vars, n_integer_variables=0,
                         n_constraints=n_cons, termination=str(res.termination_condition.name),
                         solution_source="solver" if objective is not None else None)
    return result, reduced


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
