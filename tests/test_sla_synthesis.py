"""SLA synthesis: the MILP's choice equals the enumeration's, re-evaluated designs meet the SLA,
infeasible queries are explained with numbers."""
import math
import random

import pytest

from mlsysim_opt import Hardware, InputError, Models
from mlsysim_opt.formulations.sla_synthesis import evaluate_replica, serving_configs, synthesize
from mlsysim_opt.highs import SolveStatus

SMALL = dict(hardware=[Hardware.H100, Hardware.A100, Hardware.L4], precisions=["fp16", "int8"],
             tp_sizes=[1, 2, 4], batch_sizes=[1, 8, 32, 128])


def _enumerate(configs, qps, limits, objective="tco", headroom=0.8):
    attr = {"tco": "annual_cost_usd", "power": "power_kw", "carbon": "annual_carbon_t"}[objective]
    best = math.inf
    for c in configs:
        if c.ttft_ms > limits.get("ttft", math.inf) or c.itl_ms > limits.get("itl", math.inf):
            continue
        n = max(1, math.ceil(qps / (c.capacity_qps * headroom) - 1e-9))
        best = min(best, n * getattr(c, attr))
    return best


@pytest.mark.parametrize("seed", range(50))
def test_milp_optimum_equals_enumeration(seed):
    rng = random.Random(seed)
    model = rng.choice([Models.Llama3_8B, Models.Mixtral_8x7B])
    qps = rng.choice([1, 5, 20, 80, 300])
    limits = {"ttft": rng.choice([50, 150, 400, 2000])}
    if rng.random() < 0.5:
        limits["itl"] = rng.choice([15, 30, 60])
    objective = rng.choice(["tco", "power", "carbon"])
    configs = serving_configs(model, prompt_len=256, output_len=128, **SMALL)
    expected = _enumerate(configs, qps, limits, objective)
    r = synthesize(model, qps=qps, prompt_len=256, output_len=128, objective=objective,
                   ttft=f"{limits['ttft']} ms", itl=f"{limits['itl']} ms" if "itl" in limits else None, **SMALL)
    if math.isinf(expected):
        assert r.best is None and r.explanation is not None
    else:
        assert r.solve.status is SolveStatus.OPTIMAL
        got = {"tco": r.best.annual_cost_usd, "power": r.best.power_kw, "carbon": r.best.annual_carbon_t}[objective]
        assert got == pytest.approx(expected, rel=1e-9)
        assert r.best.total_qps >= qps - 1e-9


def test_the_chosen_design_re_evaluated_by_the_forward_model_meets_the_sla():
    r = synthesize(Models.Llama3_70B, qps=1000, ttft="100 ms", itl="50 ms", prompt_len=512, output_len=256)
    c = r.best.config
    out = evaluate_replica(Models.Llama3_70B, Hardware[c.hardware], precision=c.precision, tp=c.tp, pp=c.pp,
                           batch_size=c.batch_size, prompt_len=512, output_len=256)
    assert out["cb_ttft"] * 1e3 <= 100 and out["cb_itl"] * 1e3 <= 50
    assert out["tp_memory_utilization"] <= 1.0
    assert r.best.replicas * out["cb_capacity"] * 0.8 >= 1000 - 1e-6
    assert r.solve.status is SolveStatus.OPTIMAL and r.solve.gap == pytest.approx(0, abs=1e-6)
    assert r.alternatives and all(a.annual_cost_usd >= r.best.annual_cost_usd for a in r.alternatives)


def test_infeasible_ttft_is_explained_with_the_best_achievable_number():
    r = synthesize(Models.Llama3_70B, qps=100, ttft="5 ms", **SMALL)
    assert r.best is None
    ttft = next(x for x in r.explanation.relaxations if x.constraint == "ttft")
    configs = serving_configs(Models.Llama3_70B, prompt_len=512, output_len=256, **SMALL)
    assert ttft.required == pytest.approx(min(c.ttft_ms for c in configs), rel=1e-9)
    assert "TTFT must rise to" in str(r.explanation)


def test_budget_conflict_names_the_budget_needed():
    r = synthesize(Models.Llama3_8B, qps=500, ttft="200 ms", budget_usd=1000, **SMALL)
    assert r.best is None
    budget = next(x for x in r.explanation.relaxations if x.constraint == "budget")
    cheapest = _enumerate(serving_configs(Models.Llama3_8B, prompt_len=512, output_len=256, **SMALL),
                          500, {"ttft": 200})
    assert budget.required == pytest.approx(cheapest, rel=1e-6)


def test_mix_is_never_worse_than_the_homogeneous_optimum():
    r = synthesize(Models.Llama3_8B, qps=200, ttft="150 ms", allow_mix=True, **SMALL)
    assert r.mix is not None and r.mix.total_cost_usd <= r.best.annual_cost_usd + 1e-6


def test_bad_inputs():
    with pytest.raises(InputError, match="qps"):
        synthesize(Models.Llama3_8B, qps=0)
    with pytest.raises(InputError, match="objective"):
        synthesize(Models.Llama3_8B, qps=1, objective="speed")
    with pytest.raises(InputError, match="ttft"):
        synthesize(Models.Llama3_8B, qps=1, ttft="-3 ms")
    with pytest.raises(InputError, match="language model"):
        synthesize(Models.ResNet50, qps=1)


def test_pipeline_stages_multiply_capacity_not_speed():
    from mlsysim_opt.formulations.sla_synthesis import performance_configs
    grid = performance_configs(Models.Llama3_70B, prompt_len=512, output_len=256, hardware=[Hardware.H100],
                               precisions=["fp8"], tp_sizes=[2], pp_sizes=[1, 2], batch_sizes=[32])
    one, two = sorted(grid, key=lambda c: c.pp)
    assert (one.pp, two.pp) == (1, 2) and two.accelerators == 4
    assert two.itl_ms >= one.itl_ms                        # a token still crosses every stage
    assert two.memory_utilization < one.memory_utilization  # twice the memory for the same batch
    assert two.capacity_qps > 1.5 * one.capacity_qps        # two micro-batches in flight
