"""SLA synthesis: the MILP's choice equals the enumeration's, re-evaluated designs meet the SLA
under the load they carry, infeasible queries are explained with numbers.

Latency limits bound a percentile (p90 by default) of the latencies a loaded replica shows; each
configuration's goodput is the most load per replica at which they hold, and replicas are planned
at it (times a headroom: none under a latency limit unless given)."""
import math
import random

import pytest

from mlsysim_opt import Hardware, InputError, Models
from mlsysim_opt.formulations.goodput import apply_sla
from mlsysim_opt.formulations.serving_grid import DEFAULT_CHUNKS, DEFAULT_HEADROOM
from mlsysim_opt.formulations.sla_synthesis import evaluate_replica, serving_configs, synthesize
from mlsysim_opt.highs import SolveStatus
from mlsysim_opt.solvers.loaded import LoadedReplicaModel

SMALL = dict(hardware=[Hardware.H100, Hardware.A100, Hardware.L4], precisions=["fp16", "int8"],
             tp_sizes=[1, 2, 4], batch_sizes=[1, 8, 32, 128])
METRIC = {"tco": "annual_cost_usd", "power": "power_kw", "carbon": "annual_carbon_t"}


def _meeting(model, limits, *, prompt_len=512, output_len=256, percentile="p90", **grid):
    """The configurations of the grid meeting ``limits`` (ms) at some load, each with its goodput."""
    configs = serving_configs(model, prompt_len=prompt_len, output_len=output_len, **{**SMALL, **grid})
    return apply_sla(configs, limits, percentile)


def _enumerate(configs, qps, limits, objective="tco", headroom=None):
    """The cheapest homogeneous fleet (by ``objective``) over SLA-applied ``configs``: for each
    configuration meeting the limits, ceil(qps / (goodput x headroom)) replicas."""
    head = headroom if headroom is not None else (1.0 if limits else DEFAULT_HEADROOM)
    best = math.inf
    for c in configs:
        if c.goodput_qps is None or c.goodput_qps <= 0:
            continue
        if any(c.latency_ms(k) > v for k, v in limits.items()):
            continue
        n = max(1, math.ceil(qps / (c.goodput_qps * head) - 1e-9))
        best = min(best, n * getattr(c, METRIC[objective]))
    return best


def _loaded(model, c, rate, prompt_len=512, output_len=256):
    """One replica of ``c`` carrying ``rate`` requests/s, evaluated by LoadedReplicaModel."""
    return LoadedReplicaModel().solve(model, Hardware[c.hardware], arrival_rate=rate, prompt_len=prompt_len,
                                      output_len=output_len, batch_size=c.batch_size,
                                      prefill_chunk_tokens=c.chunk_tokens, precision=c.precision, tp=c.tp, pp=c.pp,
                                      ep=c.ep)


@pytest.mark.parametrize("seed", range(50))
def test_milp_optimum_equals_enumeration(seed):
    rng = random.Random(seed)
    model = rng.choice([Models.Llama3_8B, Models.Mixtral_8x7B])
    qps = rng.choice([1, 5, 20, 80, 300])
    limits = {"ttft": rng.choice([50, 150, 400, 2000])}
    if rng.random() < 0.5:
        limits["itl"] = rng.choice([15, 30, 60])
    objective = rng.choice(["tco", "power", "carbon"])
    percentile = rng.choice(["p90", "p90", "p50", "p99"])
    headroom = rng.choice([None, None, 0.9])
    configs = _meeting(model, limits, prompt_len=256, output_len=128, percentile=percentile)
    expected = _enumerate(configs, qps, limits, objective, headroom)
    r = synthesize(model, qps=qps, prompt_len=256, output_len=128, objective=objective, percentile=percentile,
                   headroom=headroom, ttft=f"{limits['ttft']} ms",
                   itl=f"{limits['itl']} ms" if "itl" in limits else None, **SMALL)
    assert r.percentile == percentile
    if math.isinf(expected):
        assert r.best is None and r.explanation is not None
    else:
        assert r.solve.status is SolveStatus.OPTIMAL
        assert getattr(r.best, METRIC[objective]) == pytest.approx(expected, rel=1e-9)
        assert r.best.total_qps >= qps - 1e-9
        assert r.best.config.goodput_qps > 0


def test_the_chosen_design_re_evaluated_by_the_forward_model_meets_the_sla():
    model = Models.Llama3_70B
    r = synthesize(model, qps=1000, ttft="100 ms", itl="50 ms", prompt_len=512, output_len=256)
    c, n = r.best.config, r.best.replicas
    assert r.percentile == "p90"
    out = evaluate_replica(model, Hardware[c.hardware], precision=c.precision, tp=c.tp, pp=c.pp,
                           batch_size=c.batch_size, prompt_len=512, output_len=256)
    assert out["tp_memory_utilization"] <= 1.0
    # Each replica carries 1000 / n requests/s: there its p90 latencies meet the SLA and it is stable.
    at_load = _loaded(model, c, 1000 / n)
    assert at_load.stable and at_load.feasible
    assert at_load.ttft("p90").m_as("ms") <= 100 * (1 + 1e-6)
    assert at_load.itl("p90").m_as("ms") <= 50 * (1 + 1e-6)
    assert r.best.load is not None and r.best.load.qps_per_replica == pytest.approx(1000 / n, rel=1e-12)
    assert r.best.load.ttft_ms == pytest.approx(at_load.ttft("p90").m_as("ms"), rel=1e-6)
    assert r.best.load.itl_ms == pytest.approx(at_load.itl("p90").m_as("ms"), rel=1e-6)
    # The count is the fewest of this configuration: one replica fewer breaks the SLA or the queue.
    assert n > 1
    fewer = _loaded(model, c, 1000 / (n - 1))
    assert (not fewer.stable or fewer.ttft("p90").m_as("ms") > 100 or fewer.itl("p90").m_as("ms") > 50)
    assert r.solve.status is SolveStatus.OPTIMAL and r.solve.gap == pytest.approx(0, abs=1e-6)
    assert r.alternatives and all(a.annual_cost_usd >= r.best.annual_cost_usd for a in r.alternatives)


def test_infeasible_ttft_is_explained_with_the_best_achievable_number():
    r = synthesize(Models.Llama3_70B, qps=100, ttft="5 ms", **SMALL)
    assert r.best is None
    ttft = next(x for x in r.explanation.relaxations if x.constraint == "ttft")
    configs = serving_configs(Models.Llama3_70B, prompt_len=512, output_len=256, **SMALL)
    # No load gives a TTFT below a request's TTFT alone: the least of those is what the limit needs.
    assert ttft.required == pytest.approx(min(c.latency_ms("ttft") for c in configs), rel=1e-9)
    assert ttft.required > 5
    assert "TTFT must rise to" in str(r.explanation)


def test_budget_conflict_names_the_budget_needed():
    r = synthesize(Models.Llama3_8B, qps=500, ttft="200 ms", budget_usd=1000, **SMALL)
    assert r.best is None
    assert r.explanation is not None, "a budget no design meets must be explained"
    budget = next(x for x in r.explanation.relaxations if x.constraint == "budget")
    # The cheapest fleet that meets the TTFT limit under the load each replica carries (its goodput).
    cheapest = _enumerate(_meeting(Models.Llama3_8B, {"ttft": 200}), 500, {"ttft": 200})
    assert budget.required == pytest.approx(cheapest, rel=1e-6)


def test_mix_is_never_worse_than_the_homogeneous_optimum():
    r = synthesize(Models.Llama3_8B, qps=200, ttft="150 ms", allow_mix=True, **SMALL)
    assert r.mix is not None and r.mix.total_cost_usd <= r.best.annual_cost_usd + 1e-6
    assert r.mix.total_qps >= 200 * (1 - 1e-7)


def test_bad_inputs():
    with pytest.raises(InputError, match="qps"):
        synthesize(Models.Llama3_8B, qps=0)
    with pytest.raises(InputError, match="objective"):
        synthesize(Models.Llama3_8B, qps=1, objective="speed")
    with pytest.raises(InputError, match="ttft"):
        synthesize(Models.Llama3_8B, qps=1, ttft="-3 ms")
    with pytest.raises(InputError, match="language model"):
        synthesize(Models.ResNet50, qps=1)
    with pytest.raises(InputError, match="percentile"):
        synthesize(Models.Llama3_8B, qps=1, ttft="100 ms", percentile="p100")
    with pytest.raises(InputError, match="chunk_sizes"):
        synthesize(Models.Llama3_8B, qps=1, ttft="100 ms", chunk_sizes=[])


def test_pipeline_stages_multiply_capacity_not_speed():
    from mlsysim_opt.formulations.sla_synthesis import performance_configs
    grid = performance_configs(Models.Llama3_70B, prompt_len=512, output_len=256, hardware=[Hardware.H100],
                               precisions=["fp8"], tp_sizes=[2], pp_sizes=[1, 2], batch_sizes=[32])
    chunks = sorted({c.chunk_tokens for c in grid})
    assert chunks == sorted(DEFAULT_CHUNKS)                 # the default prefill chunks, each a point
    for chunk in chunks:
        one, two = sorted((c for c in grid if c.chunk_tokens == chunk), key=lambda c: c.pp)
        assert (one.pp, two.pp) == (1, 2) and two.accelerators == 4
        assert two.itl_ms >= one.itl_ms                        # a token still crosses every stage
        assert two.itl_alone_ms >= one.itl_alone_ms
        assert two.memory_utilization < one.memory_utilization  # twice the memory for the same batch
        assert two.capacity_qps > 1.5 * one.capacity_qps        # two micro-batches in flight
