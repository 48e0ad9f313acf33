"""Fleet sizing MILP: exact against brute force, Mélange's toy instance, infeasibility explained."""
import itertools
import math
import random

import pytest

from mlsysim_opt.errors import InputError
from mlsysim_opt.formulations.fleet_sizing import Candidate, prune_dominated, size_fleet
from mlsysim_opt.highs import SolveStatus


def test_melange_toy_instance_matches_exhaustive_assignment():
    # Mélange's example (anchors.md): 4 request buckets at 16 req/s total, A10G $1.01/h, A100 $3.67/h.
    rates = [0.25 * 16, 0.125 * 16, 0.375 * 16, 0.25 * 16]
    tput = {"A10G": [5, 1, 10, 5], "A100": [20, 2, 50, 20]}
    price = {"A10G": 1.01, "A100": 3.67}
    best = math.inf
    for assign in itertools.product(["A10G", "A100"], repeat=4):
        load = {g: sum(rates[b] / tput[g][b] for b in range(4) if assign[b] == g) for g in tput}
        best = min(best, sum(price[g] * math.ceil(load[g] - 1e-9) for g in tput))
    cands = [Candidate(name=g, hardware=g, throughput_qps={f"b{b}": tput[g][b] for b in range(4)},
                       annual_cost_usd=price[g]) for g in tput]
    res = size_fleet(cands, demand_qps={f"b{b}": rates[b] for b in range(4)}, split_classes=False)
    assert res.solve.status is SolveStatus.OPTIMAL
    assert res.total_cost_usd == pytest.approx(best)
    split = size_fleet(cands, demand_qps={f"b{b}": rates[b] for b in range(4)})
    assert split.total_cost_usd <= best + 1e-9  # splitting buckets can only help


def _brute_force(cands, demand, budget=None, power=None):
    bounds = [math.ceil(demand / c.qps("default")) for c in cands]
    best = None
    for counts in itertools.product(*(range(b + 1) for b in bounds)):
        qps = sum(n * c.qps("default") for n, c in zip(counts, cands))
        cost = sum(n * c.annual_cost_usd for n, c in zip(counts, cands))
        pw = sum(n * c.power_kw for n, c in zip(counts, cands))
        if qps + 1e-9 < demand or (budget is not None and cost > budget + 1e-6) or (power is not None and pw > power + 1e-9):
            continue
        best = cost if best is None else min(best, cost)
    return best


@pytest.mark.parametrize("seed", range(60))
def test_min_cost_equals_brute_force_on_random_instances(seed):
    rng = random.Random(seed)
    cands = [Candidate(name=f"c{i}", hardware=rng.choice(["A", "B", "C"]),
                       throughput_qps={"default": rng.uniform(1, 10)}, annual_cost_usd=rng.uniform(1, 10),
                       power_kw=rng.uniform(0.5, 2)) for i in range(rng.randint(2, 4))]
    demand = rng.uniform(5, 25)
    power = rng.choice([None, rng.uniform(5, 30)])
    expected = _brute_force(cands, demand, power=power)
    res = size_fleet(cands, demand_qps=demand, power_cap_kw=power)
    if expected is None:
        assert res.solve.status is SolveStatus.INFEASIBLE and res.explanation is not None
    else:
        assert res.solve.status is SolveStatus.OPTIMAL
        assert res.total_cost_usd == pytest.approx(expected, rel=1e-6)
        assert res.total_qps >= demand - 1e-6


def test_max_throughput_under_budget_against_brute_force():
    cands = [Candidate(name="small", hardware="L4", throughput_qps={"default": 3.0}, annual_cost_usd=2.0),
             Candidate(name="big", hardware="H100", throughput_qps={"default": 10.0}, annual_cost_usd=7.0)]
    res = size_fleet(cands, objective="max_throughput", budget_usd=20.0)
    best = max(3 * a + 10 * b for a in range(11) for b in range(3) if 2 * a + 7 * b <= 20)
    assert res.total_qps == pytest.approx(best)
    assert res.total_cost_usd <= 20.0


def test_availability_forces_a_heterogeneous_mix():
    cands = [Candidate(name="H100 x1", hardware="H100", throughput_qps={"default": 10}, annual_cost_usd=5),
             Candidate(name="A100 x1", hardware="A100", throughput_qps={"default": 4}, annual_cost_usd=3)]
    res = size_fleet(cands, demand_qps=60, availability={"H100": 4})
    used = {a.candidate.hardware: a.replicas for a in res.allocations}
    assert used["H100"] == 4 and used["A100"] == 5


def test_infeasible_budget_is_explained_with_the_required_number():
    cands = [Candidate(name="H100", hardware="H100", throughput_qps={"default": 10}, annual_cost_usd=100_000)]
    res = size_fleet(cands, demand_qps=95, budget_usd=500_000)
    assert not res.feasible and res.solve.status is SolveStatus.INFEASIBLE
    by = {r.constraint: r for r in res.explanation.relaxations}
    assert by["budget"].required == pytest.approx(1_000_000)
    assert by["demand"].required == pytest.approx(50)
    assert "$1.00M" in str(res.explanation)


def test_dominated_candidates_are_pruned_and_the_optimum_is_unchanged():
    good = Candidate(name="good", hardware="H100", throughput_qps={"default": 10}, annual_cost_usd=5, power_kw=1)
    worse = Candidate(name="worse", hardware="H100", throughput_qps={"default": 9}, annual_cost_usd=6, power_kw=1)
    other = Candidate(name="other", hardware="A100", throughput_qps={"default": 2}, annual_cost_usd=1, power_kw=0.5)
    assert [c.name for c in prune_dominated([good, worse, other], ["default"])] == ["good", "other"]
    a = size_fleet([good, worse, other], demand_qps=33, prune=True)
    b = size_fleet([good, worse, other], demand_qps=33, prune=False)
    assert a.total_cost_usd == pytest.approx(b.total_cost_usd)


def test_bad_inputs():
    c = Candidate(name="x", hardware="x", throughput_qps={"default": 1}, annual_cost_usd=1)
    with pytest.raises(InputError, match="candidates"):
        size_fleet([], demand_qps=1)
    with pytest.raises(InputError, match="demand_qps"):
        size_fleet([c])
    with pytest.raises(InputError, match="budget_usd"):
        size_fleet([c], objective="max_throughput")
    with pytest.raises(InputError, match="objective"):
        size_fleet([c], demand_qps=1, objective="cheapest")
