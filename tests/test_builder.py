"""The shared formulation builder: rows compiled from sheets agree with the forward sheets, pruning
is exact, starts are checked before they are trusted, bad numbers are input errors."""
import math

import numpy as np
import pyomo.environ as pyo
import pytest

from mlsysim_opt.errors import InputError
from mlsysim_opt.formulations.builder import Columns, Formulation, number, undominated_columns
from mlsysim_opt.highs import SolveStatus, prefer_start, solve, violations
from mlsysim_opt.milp import undominated
from mlsysim_opt.models import fleet


def _pairwise(keys):
    """The definition of non-dominance, row against row (the oracle)."""
    keys = np.asarray(keys, dtype=float)
    index = np.arange(len(keys))
    no_worse = (keys[None, :, :] <= keys[:, None, :]).all(-1)
    better = (keys[None, :, :] < keys[:, None, :]).any(-1)
    tie = no_worse & ~better & (index[None, :] < index[:, None])
    return np.flatnonzero(~((no_worse & better).any(1) | tie.any(1)))


@pytest.mark.parametrize("seed", range(40))
def test_undominated_equals_the_pairwise_definition(seed):
    rng = np.random.default_rng(seed)
    keys = rng.integers(0, 4, size=(rng.integers(1, 120), rng.integers(1, 5))).astype(float)
    assert undominated(keys).tolist() == _pairwise(keys).tolist()


def test_undominated_columns_respects_the_sense_of_each_metric():
    capacity = np.array([10.0, 20.0, 20.0])
    cost = np.array([1.0, 1.0, 3.0])
    kept = undominated_columns({"capacity": (capacity, -1), "cost": (cost, +1)})
    assert kept.tolist() == [1]          # more capacity at the same cost beats both others


def _columns(rng, size):
    return Columns(list(range(size)), headroom=rng.uniform(0.5, 1.0, size), replica_capacity=rng.uniform(1, 50, size),
                   cost_per_replica=rng.uniform(1e3, 1e5, size), power_per_replica=rng.uniform(1e2, 1e4, size),
                   carbon_per_replica=rng.uniform(1e5, 1e7, size), accelerators_per_replica=rng.integers(1, 9, size),
                   rack_units_per_replica=rng.uniform(1, 8, size))


@pytest.mark.parametrize("seed", range(5))
def test_rows_compiled_from_the_sheet_equal_the_forward_sheet_at_the_solution(seed):
    rng = np.random.default_rng(seed)
    columns = _columns(rng, 6)
    f = Formulation("rows")
    n = f.counts("n", range(6), [50] * 6)
    spares = 1
    y = f.choose_one("y", range(6))
    for i in range(6):
        f.constraint("link", n[i] <= 50 * y[i])
    served = f.total(fleet.sheet, "fleet_capacity", columns, {"replicas": n, "spares": [spares * y[i] for i in range(6)]})
    f.limit("demand", "demand", served, ">=", 40.0, "QPS", requirement=True)
    cost = f.total(fleet.sheet, "fleet_annual_cost", columns, {"replicas": n}, unit="USD")
    f.objective(cost)
    result = f.solve(time_limit=10)
    assert result.status is SolveStatus.OPTIMAL
    counts = np.array([round(pyo.value(n[i])) for i in range(6)], dtype=float)
    chosen = int(np.argmax(counts))
    forward_cost = columns.evaluate(fleet.sheet, "fleet_annual_cost", "USD", replicas=counts).sum()
    forward_served = columns.take([chosen]).evaluate(fleet.sheet, "fleet_capacity", replicas=counts[chosen],
                                                     spares=spares)[0]
    assert pyo.value(cost) == pytest.approx(forward_cost, rel=1e-12)
    assert pyo.value(served) == pytest.approx(forward_served, rel=1e-12) and forward_served >= 40.0 - 1e-6
    # and the optimum is the forward enumeration's: the needed replicas of each column, priced
    needed = columns.evaluate(fleet.sheet, "replicas_needed", demand=40.0, spares=spares)
    best = (needed * columns.values["cost_per_replica"]).min()
    assert result.objective == pytest.approx(best, rel=1e-9)


def test_a_definition_that_is_not_linear_in_the_decisions_goes_through_the_exact_pyomo_rules():
    columns = Columns([0], headroom=1.0, replica_capacity=10.0)
    f = Formulation("ceiling")
    demand = f.variables("demand", [0], bounds=(95.0, 1000.0))
    replicas = f.rows(fleet.sheet, "replicas_needed", columns, {"demand": [demand[0]], "spares": [0.0]})[0]
    f.objective(replicas)
    result = f.solve(time_limit=10)
    assert result.status is SolveStatus.OPTIMAL and result.objective == pytest.approx(10.0)   # ceil(95 / 10)


def test_a_start_that_breaks_a_row_is_never_reported():
    m = pyo.ConcreteModel()
    m.x = pyo.Var(domain=pyo.NonNegativeIntegers, bounds=(0, 10))
    m.budget = pyo.Constraint(expr=3 * m.x <= 10)
    m.objective = pyo.Objective(expr=-m.x)
    assert violations(m, [(m.x, 4)]) and not violations(m, [(m.x, 3)])
    result = solve(m, time_limit=10, warm_start=[(m.x, 4.0)])
    assert result.warm_start_used is False and result.solution_source == "solver" and pyo.value(m.x) == 3


def test_a_start_is_preferred_only_when_the_solver_has_nothing_better():
    assert prefer_start(SolveStatus.NO_SOLUTION, None, 5.0, maximize=False)
    assert prefer_start(SolveStatus.FEASIBLE, 9.0, 5.0, maximize=False)
    assert not prefer_start(SolveStatus.FEASIBLE, 4.0, 5.0, maximize=False)
    assert prefer_start(SolveStatus.FEASIBLE, 4.0, 5.0, maximize=True)
    assert not prefer_start(SolveStatus.OPTIMAL, 9.0, 5.0, maximize=False)
    assert not prefer_start(SolveStatus.NO_SOLUTION, None, None, maximize=False)    # the start broke a row


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, 1e15, 1e20, -1.0, 0.0, True, "10"])
def test_number_names_the_field_for_every_bad_value(bad):
    with pytest.raises(InputError) as err:
        number(bad, "budget_usd")
    assert err.value.field == "budget_usd"


def test_counts_beyond_what_a_milp_can_tell_apart_are_an_input_error():
    f = Formulation("big")
    with pytest.raises(InputError) as err:
        f.counts("n", range(2), [2e9, 5e9], field="qps")
    assert err.value.field == "qps"
