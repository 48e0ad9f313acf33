"""The capstone MILP and its Pareto fronts: proven optimal, verified by the forward models (the
latencies at the load each replica carries by LoadedReplicaModel), exact against enumeration on a
reduced instance, explained when infeasible."""
import itertools
import math

import numpy as np
import pytest

from mlsysim_opt import Hardware, InputError, Models
from mlsysim_opt.formulations.capstone import (CapstoneProblem, precision_effect, region_candidates,
                                               resolve_region, solve_capstone)
from mlsysim_opt.formulations.goodput import apply_sla
from mlsysim_opt.formulations.pareto import pareto_front, plot_front
from mlsysim_opt.formulations.serving_grid import DEFAULT_HEADROOM
from mlsysim_opt.formulations.sla_synthesis import accelerator_year, evaluate_replica
from mlsysim_opt.highs import SolveStatus
from mlsysim_opt.solvers.loaded import LoadedReplicaModel

REDUCED = dict(model="Llama3_8B", qps=60.0, hardware=["H100", "L4"], precisions=["fp16"], tp_sizes=[1],
               pp_sizes=[1], batch_sizes=[8, 32], regions=["Iowa", "France"], min_share=0.25, redundancy=1,
               ttft_ms=200.0, annual_budget_usd=None, carbon_cap_t=None)
COVER = 1 - 1e-12


@pytest.fixture(scope="module")
def default_solution():
    return solve_capstone(CapstoneProblem())


def _limits(problem):
    return {k: v for k, v in (("ttft", problem.ttft_ms), ("itl", problem.itl_ms)) if v is not None}


def _headroom(problem):
    """The margin below the goodput: as given, else none under a latency limit, DEFAULT_HEADROOM
    of the stable load without one."""
    if problem.headroom is not None:
        return problem.headroom
    return 1.0 if _limits(problem) else DEFAULT_HEADROOM


def _forward(problem, design):
    """Re-evaluate one region's design through the serving and economics models."""
    c = design.config
    hw = Hardware[c.hardware]
    out = evaluate_replica(Models[problem.model], hw, precision=c.precision, tp=c.tp, pp=c.pp,
                           batch_size=c.batch_size, prompt_len=problem.prompt_len, output_len=problem.output_len,
                           efficiency=problem.efficiency)
    cost, _, carbon = accelerator_year(hw, datacenter=resolve_region(design.region),
                                       utilization=problem.utilization)
    return out, cost * c.accelerators * design.replicas, carbon * c.accelerators * design.replicas


def _loaded(problem, c, rate):
    return LoadedReplicaModel().solve(Models[problem.model], Hardware[c.hardware], arrival_rate=rate,
                                      prompt_len=problem.prompt_len, output_len=problem.output_len,
                                      batch_size=c.batch_size, prefill_chunk_tokens=c.chunk_tokens,
                                      precision=c.precision, tp=c.tp, pp=c.pp, efficiency=problem.efficiency)


def _within_sla(problem, c, rate) -> bool:
    r = _loaded(problem, c, rate)
    return r.stable and all(getattr(r, key)(problem.percentile).m_as("ms") <= limit * (1 + 1e-6)
                            for key, limit in _limits(problem).items())


def _goodput(problem, c, steps=40):
    """The most load per replica within the SLA, bisected on LoadedReplicaModel up to full load."""
    lo, hi = 0.0, c.capacity_qps
    for _ in range(steps):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if _within_sla(problem, c, mid) else (lo, mid)
    return lo


def test_default_capstone_is_proven_optimal_and_meets_every_constraint(default_solution):
    r, p = default_solution, CapstoneProblem()
    assert r.solve.status is SolveStatus.OPTIMAL and r.solve.gap < 1e-6
    assert {d.region for d in r.regions} == set(p.regions)
    assert p.planned_headroom == _headroom(p) == 1.0     # a TTFT limit: the goodput sets the load
    total_capacity, total_cost, total_carbon = 0.0, 0.0, 0.0
    for d in r.regions:
        c = d.config
        out, cost, carbon = _forward(p, d)
        assert out["tp_memory_utilization"] <= 1.0
        assert out["cb_ttft"] * 1e3 <= p.ttft_ms                 # alone, a request meets the limit
        working = d.replicas - p.redundancy                       # N+k: k replicas down
        assert working >= 1
        # At the load each working replica carries, the p90 TTFT holds (LoadedReplicaModel).
        assert d.served_qps >= p.min_share * p.qps - 1e-6
        at_load = _loaded(p, c, d.served_qps / working)
        assert at_load.stable and at_load.feasible
        assert at_load.ttft("p90").m_as("ms") <= p.ttft_ms * (1 + 1e-6)
        assert d.load is not None and d.load.ttft_ms == pytest.approx(at_load.ttft("p90").m_as("ms"), rel=1e-6)
        # The goodput the fleet is planned at is the load at which the SLA still holds.
        goodput = _goodput(p, c)
        assert goodput * (1 - 1e-5) - 1e-9 <= c.goodput_qps <= goodput * (1 + 1e-6) + 1e-9
        usable = goodput * p.planned_headroom * working
        assert usable >= p.min_share * p.qps - 1e-6
        total_capacity += usable
        total_cost += cost
        total_carbon += carbon
    assert total_capacity >= p.qps - 1e-6
    assert sum(d.served_qps for d in r.regions) >= p.qps * (1 - 1e-7)
    assert total_cost == pytest.approx(r.annual_cost_usd, rel=1e-9) and total_cost <= p.annual_budget_usd
    assert total_carbon == pytest.approx(r.annual_carbon_t, rel=1e-9) and total_carbon <= p.carbon_cap_t


def test_int4_effect_is_reported():
    effect = precision_effect(CapstoneProblem.exercise8())
    assert effect["with"].feasible and effect["without"].feasible
    assert effect["with"].annual_cost_usd <= effect["without"].annual_cost_usd + 1e-6
    assert isinstance(effect["changes_answer"], bool)


def _cover(demand, capacity):
    """Smallest whole n >= 0 with n * capacity covering ``demand`` (elementwise)."""
    n = np.maximum(np.ceil(demand / capacity), 0)
    n = np.where((n - 1) * capacity >= COVER * demand, n - 1, n)
    return np.where(n * capacity < COVER * demand, n + 1, n).astype(int)


def _enumerate_front(problem, eps_list):
    """Brute force on the reduced instance: every pair of configurations meeting the SLA at some load
    and every replica count of the first region; the second region takes the fewest replicas that
    cover what is left of the demand and its minimum share (more only add cost and carbon)."""
    limits = _limits(problem)
    cands = region_candidates(problem)
    r1, r2 = problem.regions
    k, q, h = problem.redundancy, problem.qps, _headroom(problem)
    lo = problem.min_share * q
    best = {eps: math.inf for eps in eps_list}
    # The SLA applied afresh: region_candidates keeps the configurations that miss it at their stable load.
    pool = {r: apply_sla(cands[r], limits, problem.percentile) for r in (r1, r2)}
    assert pool[r1] and pool[r2]
    for c1, c2 in itertools.product(pool[r1], pool[r2]):
        u1_one, u2_one = h * c1.goodput_qps, h * c2.goodput_qps
        n1 = np.arange(k + 1, int(_cover(q, u1_one)) + k + 2)
        u1 = u1_one * (n1 - k)
        n2 = k + np.maximum(_cover(np.maximum(lo, q - u1), u2_one), 1)
        ok = u1 >= COVER * lo
        cost = n1 * c1.annual_cost_usd + n2 * c2.annual_cost_usd
        carbon = n1 * c1.annual_carbon_t + n2 * c2.annual_carbon_t
        for eps in eps_list:
            fits = ok & (carbon <= eps * (1 + 1e-9) + 1e-9)
            if fits.any():
                best[eps] = min(best[eps], float(cost[fits].min()))
    return best


def test_pareto_points_are_non_dominated_and_optimal_for_their_epsilon():
    problem = CapstoneProblem(**REDUCED)
    front = pareto_front(problem, points=8)
    values = front.values()
    assert len(values) >= 2
    for i, a in enumerate(values):
        for j, b in enumerate(values):
            if i != j:
                assert not (b[0] <= a[0] and b[1] <= a[1] and (b[0] < a[0] or b[1] < a[1]))
    expected = _enumerate_front(problem, [p.epsilon for p in front.points])
    for p in front.points:
        assert p.annual_cost_usd == pytest.approx(expected[p.epsilon], rel=1e-9)


def test_latency_cost_front_and_plot(tmp_path):
    problem = CapstoneProblem(**REDUCED)
    front = pareto_front(problem, axes="ttft", points=6)
    costs = [p.annual_cost_usd for p in front.points]
    assert costs == sorted(costs) and len(front.points) >= 1
    path = plot_front(pareto_front(problem, points=5), str(tmp_path / "front.png"),
                      chosen=solve_capstone(problem))
    assert (tmp_path / "front.png").stat().st_size > 10_000 and path.endswith(".png")


def test_conflicting_limits_are_explained_jointly():
    r = solve_capstone(CapstoneProblem(**{**REDUCED, "annual_budget_usd": 1000.0, "carbon_cap_t": 0.01}))
    assert not r.feasible and r.explanation is not None
    labels = {x.label for x in r.explanation.joint} | {x.label for x in r.explanation.relaxations
                                                      if x.required is not None}
    assert "annual budget" in labels


def test_yaml_variant(tmp_path):
    path = tmp_path / "variant.yaml"
    path.write_text("name: small variant\nmodel: Llama3_8B\nqps: 40\nregions: [Quebec, Poland]\n"
                    "hardware: [H100]\nprecisions: [fp8]\ncarbon_cap_t: 50\n")
    p = CapstoneProblem.from_yaml(path)
    assert p.regions == ["Quebec", "Poland"] and p.qps == 40
    r = solve_capstone(p)
    assert r.solve.status is SolveStatus.OPTIMAL
    bad = tmp_path / "bad.yaml"
    bad.write_text("qps: -5\n")
    with pytest.raises(InputError, match="qps"):
        CapstoneProblem.from_yaml(bad)
    typo = tmp_path / "typo.yaml"
    typo.write_text("qpss: 5\n")
    with pytest.raises(InputError, match="qpss"):
        CapstoneProblem.from_yaml(typo)


def test_bad_problems():
    with pytest.raises(InputError, match="min_share"):
        region_candidates(CapstoneProblem(**{**REDUCED, "min_share": 0.6}))
    with pytest.raises(Exception, match="Atlantis"):
        solve_capstone(CapstoneProblem(**{**REDUCED, "regions": ["Atlantis", "Quebec"]}))


def test_unregistered_records_work_in_the_capstone_and_its_grading():
    """A modified, unregistered accelerator and model are priced and evaluated from their own records."""
    from mlsysim_opt import Grader
    pricier = Hardware.L4.model_copy(update={"name": "PricierL4", "unit_cost": Hardware.L4.unit_cost * 3})
    small = Models.Llama3_8B.model_copy(update={"name": "MyLlama"})
    base = CapstoneProblem(**{**REDUCED, "hardware": ["H100", "L4"]})
    mine = CapstoneProblem(**{**REDUCED, "model": small, "hardware": ["H100", pricier]})
    a, b = solve_capstone(base), solve_capstone(mine)
    assert a.feasible and b.feasible and "MyLlama" in str(b)
    l4 = [c for c in region_candidates(base)["Iowa"] if c.hardware == Hardware.L4.name]
    mine_l4 = [c for c in region_candidates(mine)["Iowa"] if c.hardware == "PricierL4"]
    assert l4 and len(mine_l4) == len(l4) and all(m.annual_cost_usd > c.annual_cost_usd for m, c in zip(mine_l4, l4))
    d = b.regions[0]
    report = Grader(mine).grade({"student": "s", "regions": {
        r.region: {"hardware": r.config.hardware, "precision": r.config.precision, "tp": r.config.tp,
                   "pp": r.config.pp, "batch_size": r.config.batch_size, "replicas": r.replicas}
        for r in b.regions}})
    assert report.status != "malformed", report.feedback
    assert report.annual_cost_usd == pytest.approx(b.annual_cost_usd, rel=1e-9) and d.replicas > 0
