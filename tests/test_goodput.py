"""Goodput and percentile SLAs: the load at which a configuration meets its SLA, checked against the
loaded-replica solver (a separate route through the serving_load sheet), and the synthesis built
on it: every design it returns names its percentile and reports latencies a loaded replica shows."""
import math

import numpy as np
import pytest

from mlsysim_opt import Hardware, InputError, LoadedReplicaModel, Models
from mlsysim_opt.formulations import goodput as gp
from mlsysim_opt.formulations.serving_grid import ServingConfig, performance_configs, serving_config
from mlsysim_opt.formulations.sla_synthesis import synthesize
from mlsysim_opt.models import queueing, serving_load

SMALL = dict(hardware=[Hardware.H100, Hardware.A100], precisions=["fp16", "fp8"], tp_sizes=[1, 2],
             batch_sizes=[8, 64, 256], chunk_sizes=[256, 2048])


@pytest.fixture(scope="module")
def grid():
    return performance_configs(Models.Llama3_8B, prompt_len=1024, output_len=256, **SMALL)


@pytest.mark.parametrize("value, label, level", [("p90", "p90", 0.9), ("P99", "p99", 0.99), (0.5, "p50", 0.5),
                                                 ("p95", "p95", 0.95), ("p99.9", "p99.9", 0.999),
                                                 ("mean", "mean", None)])
def test_percentiles_are_read_in_every_documented_form(value, label, level):
    got_label, got_level = gp.percentile_level(value)
    assert got_label == label and (got_level == pytest.approx(level) if level is not None else got_level is None)


@pytest.mark.parametrize("bad", ["fast", 1.5, 0, 95, "p100", True, None, "p"])
def test_a_bad_percentile_names_the_field(bad):
    with pytest.raises(InputError, match="percentile"):
        gp.percentile_level(bad)


def test_slot_wait_probability_is_erlang_c_at_whole_slots_and_monotone_between():
    for slots in (1, 3, 16, 128):
        load = np.array([0.05, 0.5, 0.9, 0.99]) * slots
        assert np.allclose(serving_load.slot_wait_probability(slots, load), queueing.erlang_c(slots, load),
                           rtol=1e-9, atol=1e-15)
    between = serving_load.slot_wait_probability(np.linspace(10, 11, 11), 8.0)
    assert np.all(np.diff(between) < 0)      # more slots, less waiting, also between whole numbers


def _loaded(c: ServingConfig, rate: float):
    return LoadedReplicaModel().solve(Models.Llama3_8B, Hardware[c.hardware], arrival_rate=rate,
                                      prompt_len=c.prompt_tokens, output_len=c.output_tokens,
                                      batch_size=c.batch_size, prefill_chunk_tokens=c.chunk_tokens,
                                      precision=c.precision, tp=c.tp, pp=c.pp)


@pytest.mark.parametrize("limits", [{"ttft": 150.0}, {"ttft": 400.0, "itl": 30.0}, {"itl": 20.0}])
def test_goodput_is_the_largest_load_meeting_the_sla(grid, limits):
    planned = gp.apply_sla(grid, limits, "p90")
    assert planned, "some configuration meets these limits"
    for c in planned[:: max(1, len(planned) // 6)]:
        at = _loaded(c, c.goodput_qps)
        assert at.stable
        for key, limit in limits.items():
            assert getattr(at, f"{key}_p90").m_as("ms") <= limit * (1 + 1e-9)
        beyond = _loaded(c, c.goodput_qps * (1 + 1e-4) + 1e-9)
        missed = [getattr(beyond, f"{k}_p90").m_as("ms") > v for k, v in limits.items()]
        assert not beyond.stable or any(missed)


def test_goodput_is_zero_exactly_when_a_request_alone_misses_the_limit(grid):
    limit = float(np.median([c.ttft_ms for c in grid]))
    planned = {c.name for c in gp.apply_sla(grid, {"ttft": limit}, "p90")}
    for c in grid:
        assert (c.name in planned) == (c.ttft_ms < limit)


def test_ttft_never_falls_as_the_load_rises(grid):
    # with a replica whose chunk budget saturates before its slots (small chunks, long decode steps)
    chunk_bound = serving_config(Models.Llama3_70B, Hardware["AMD Instinct MI300X"], precision="fp8", tp=1, pp=1,
                                 batch_size=256, prompt_len=512, output_len=256, chunk_tokens=256)
    inputs = gp.load_inputs([*grid, chunk_bound])
    edge = serving_load.largest_rate(lambda r: np.isfinite(gp.latencies(inputs, r, None)["ttft"]),
                                     gp.stable_bound(inputs), steps=50)     # where the replica turns unstable
    rates = np.outer(np.concatenate([np.linspace(0.02, 0.9, 30), 1 - np.geomspace(0.1, 1e-6, 60)]), edge)
    for level in (None, 0.9, 0.99):
        ttft = np.array([gp.latencies(inputs, r, level)["ttft"] for r in rates])
        finite = np.isfinite(ttft)
        # once infinite (unstable), it stays so; while finite, it never falls
        assert np.all(finite[:-1] | ~finite[1:])
        both = finite[:-1] & finite[1:]
        steps = np.diff(np.where(finite, ttft, 0.0), axis=0)
        assert np.all(steps[both] >= -1e-9 * ttft[1:][both])


def test_a_trusted_configuration_equals_a_validated_one(grid):
    c = grid[0].replaced(goodput_qps=3.5, percentile="p90")
    assert ServingConfig.model_validate(c.model_dump()) == c
    assert c.goodput_qps == 3.5 and grid[0].goodput_qps is None


def test_at_zero_load_every_percentile_is_one_request_alone():
    c = serving_config(Models.Llama3_8B, Hardware.H100, precision="fp16", tp=1, pp=1, batch_size=64,
                       prompt_len=1024, output_len=256, chunk_tokens=512)
    point = gp.operating_point(c.replaced(percentile="p99"), 1e-9)
    assert point.ttft_ms == pytest.approx(c.ttft_ms, rel=1e-6)
    assert point.itl_ms == pytest.approx(c.itl_alone_ms, rel=1e-6)


# --- synthesis at percentiles -----------------------------------------------------------------


@pytest.fixture(scope="module")
def answers():
    queries = [dict(qps=400, ttft="200 ms"), dict(qps=50, ttft="300 ms", itl="40 ms", percentile="p99"),
               dict(qps=1000, itl="25 ms", percentile="mean")]
    return [(q, synthesize(Models.Llama3_8B, prompt_len=1024, output_len=256, **SMALL, **q)) for q in queries]


def test_every_design_reports_latencies_under_load_and_names_its_percentile(answers):
    for query, r in answers:
        label = gp.percentile_level(query.get("percentile", "p90"))[0]
        assert r.percentile == label and f"at {label}" in str(r)
        for d in [r.best, *r.alternatives]:
            assert d.load is not None and d.load.percentile == label
            # The TTFT covers the iteration a request waits for and the one carrying its prefill:
            # it is never below the mean iteration time at that load.
            assert d.load.ttft_ms >= d.load.itl_mean_ms
            assert d.load.qps_per_replica <= d.config.goodput_qps * (1 + 1e-12)
            assert d.load.qps_per_replica == pytest.approx(query["qps"] / (d.replicas - d.spares))


def test_the_design_meets_its_sla_at_the_load_it_carries(answers):
    for query, r in answers:
        level = gp.percentile_level(query.get("percentile", "p90"))[1]
        c = r.best.config
        at = _loaded(c, r.best.load.qps_per_replica)
        for key in ("ttft", "itl"):
            if key in query:
                limit = float(query[key].split()[0])
                value = (at.ttft(level) if key == "ttft" else at.itl(level)) if level else \
                    getattr(at, f"{key}_mean")
                assert value.m_as("ms") <= limit * (1 + 1e-9)


def test_headroom_is_an_explicit_margin_below_goodput():
    plain = synthesize(Models.Llama3_8B, qps=400, ttft="200 ms", prompt_len=1024, output_len=256, **SMALL)
    margin = synthesize(Models.Llama3_8B, qps=400, ttft="200 ms", prompt_len=1024, output_len=256, headroom=0.7,
                        **SMALL)
    assert margin.best.annual_cost_usd >= plain.best.annual_cost_usd
    assert margin.best.load.qps_per_replica <= 0.7 * margin.best.config.goodput_qps * (1 + 1e-12)


def test_without_a_latency_limit_replicas_run_at_most_at_80_percent_of_their_stable_load():
    r = synthesize(Models.Llama3_8B, qps=400, prompt_len=1024, output_len=256, disaggregated="never", **SMALL)
    c = r.best.config
    assert r.best.load.qps_per_replica <= 0.8 * c.goodput_qps * (1 + 1e-12)
    assert _loaded(c, c.goodput_qps * 1.001).stable is False or c.goodput_qps < c.capacity_qps
    assert math.isfinite(r.best.load.ttft_ms)
