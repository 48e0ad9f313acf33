"""The capstone with split prefill/decode pools allowed: never worse than colocated replicas only,
each split region serves its share with both pools within the limits, and the answer says which
architecture won and by how much."""
import pytest

from mlsysim_opt.formulations.capstone import CapstoneProblem, solve_capstone

SMALL = dict(hardware=["H100", "AMD Instinct MI300X"], precisions=["fp8"], tp_sizes=[1, 2, 4], pp_sizes=[1],
             batch_sizes=[64, 256], chunk_sizes=[256, 2048])


@pytest.fixture(scope="module")
def both():
    problem = CapstoneProblem(**SMALL)
    return solve_capstone(problem), solve_capstone(problem.with_(disaggregated="auto"))


def test_split_pools_are_never_worse_and_the_comparison_is_stated(both):
    colocated, auto = both
    assert colocated.feasible and auto.feasible
    assert auto.annual_cost_usd <= colocated.annual_cost_usd * (1 + 1e-9)
    assert auto.colocated_objective == pytest.approx(colocated.annual_cost_usd, rel=1e-9)
    assert colocated.comparison is None and auto.comparison in str(auto)


def test_each_split_region_serves_its_share_within_the_limits(both):
    _, auto = both
    p = auto.problem
    split = [d for d in auto.regions if d.disaggregated is not None]
    assert split, "with these prices and a 100 ms p90 TTFT, split pools win somewhere"
    for d in split:
        pools = d.disaggregated
        assert pools.prefill.config.precision == pools.decode.config.precision
        assert pools.prefill.latency_ms <= p.ttft_ms * (1 + 1e-9)
        for pool in (pools.prefill, pools.decode):
            assert pool.replicas >= p.redundancy + 1
            working = pool.replicas - pool.spares
            assert working * pool.goodput_qps >= d.served_qps * (1 - 1e-9)
        assert d.accelerators == pools.accelerators and d.architecture == "disaggregated"
    assert sum(d.served_qps for d in auto.regions) >= p.qps * (1 - 1e-9)
    assert all(d.share >= p.min_share - 1e-9 for d in auto.regions)


def test_the_totals_add_up_over_both_pools(both):
    _, auto = both
    assert auto.annual_cost_usd == pytest.approx(sum(d.annual_cost_usd for d in auto.regions), rel=1e-9)
    for d in auto.regions:
        if d.disaggregated is not None:
            assert d.annual_cost_usd == pytest.approx(d.disaggregated.prefill.annual_cost_usd
                                                      + d.disaggregated.decode.annual_cost_usd, rel=1e-9)
