"""The one solve path (mlsysim_opt.highs) used from several threads at once."""
import threading

import pyomo.environ as pyo

from mlsysim_opt.highs import solve


def knapsack(capacity: int) -> pyo.ConcreteModel:
    """Items of weight 1..6 worth their weight plus one: the best pick is any three items filling the
    capacity (7, 8 or 9), worth capacity + 3."""
    m = pyo.ConcreteModel()
    m.x = pyo.Var(range(6), domain=pyo.Binary)
    m.c = pyo.Constraint(expr=sum((i + 1) * m.x[i] for i in range(6)) <= capacity)
    m.o = pyo.Objective(expr=sum((i + 2) * m.x[i] for i in range(6)), sense=pyo.maximize)
    return m


def test_solves_from_several_threads_at_once_all_finish():
    # Pyomo captures stdout/stderr around each solve; unserialized, threads solving together
    # deadlocked (dashboard sessions share one server process).
    answers, errors = [], []

    def work(t):
        try:
            for k in range(8):
                capacity = 7 + (t + k) % 3
                answers.append((capacity, round(solve(knapsack(capacity), time_limit=10).objective)))
        except Exception as e:   # noqa: BLE001 - reported by the assertion below
            errors.append(repr(e))

    threads = [threading.Thread(target=work, args=(t,), daemon=True) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=120)
    assert not any(th.is_alive() for th in threads), "a solve never finished (deadlock)"
    assert errors == [] and len(answers) == 32
    assert all(value == capacity + 3 for capacity, value in answers), answers
