"""Queueing, continuous batching and the batching optimizer, against closed forms, simulation and
hand calculations."""
import heapq
import math
import re

import numpy as np
import pytest

from mlsysim_opt import Hardware, InputError, Models, Q_, UnitError, UnknownNameError
from mlsysim_opt.models.queueing import erlang_c
from mlsysim_opt.solvers.batching import BatchingOptimizer, ContinuousBatchingModel, TailLatencyModel
from mlsysim_opt.solvers.serving import ServingModel
from example_runs import example_output

LLAMA, H100 = Models.Llama3_8B, Hardware.H100


# --- TailLatencyModel -----------------------------------------------------------------------------

def test_mm1_matches_the_exponential_sojourn_time():
    r = TailLatencyModel().solve(80, "10 ms")
    mu_minus_lambda = 100 - 80                          # M/M/1: sojourn ~ Exp(mu - lambda)
    assert r.stable and r.utilization == pytest.approx(0.8)
    assert r.wait_probability == pytest.approx(0.8)
    assert r.mean_latency.m_as("s") == pytest.approx(1 / mu_minus_lambda)
    assert r.p50_latency.m_as("s") == pytest.approx(math.log(2) / mu_minus_lambda, rel=1e-6)
    assert r.p99_latency.m_as("s") == pytest.approx(math.log(100) / mu_minus_lambda, rel=1e-6)
    assert r.mean_wait.m_as("s") == pytest.approx(0.8 / mu_minus_lambda)
    assert r.p99_wait.m_as("s") == pytest.approx(math.log(0.8 / 0.01) / mu_minus_lambda)
    assert r.p50_wait.m_as("s") == pytest.approx(math.log(0.8 / 0.5) / mu_minus_lambda)


def _erlang_c_by_factorials(c, a):
    top = a ** c / math.factorial(c) / (1 - a / c)
    return top / (sum(a ** k / math.factorial(k) for k in range(c)) + top)


def _erlang_c_by_erlang_b(c, a):
    b = 1.0
    for k in range(1, c + 1):                           # Erlang B recursion
        b = a * b / (k + a * b)
    rho = a / c
    return b / (1 - rho * (1 - b))


@pytest.mark.parametrize("c, a", [(1, 0.5), (2, 1.0), (3, 2.0), (8, 6.5), (20, 15.0)])
def test_erlang_c_matches_the_textbook_formula(c, a):
    assert erlang_c(c, a) == pytest.approx(_erlang_c_by_factorials(c, a), rel=1e-10)


def test_erlang_c_is_stable_for_thousands_of_servers():
    c, a = 2000, 1950.0                                 # a^c / c! overflows a float
    p = erlang_c(c, a)
    assert 0 < p < 1 and p == pytest.approx(_erlang_c_by_erlang_b(c, a), rel=1e-9)
    assert erlang_c(4, [0.0, 4.0, 5.0]).tolist() == [0.0, 1.0, 1.0]


def test_mm2_mean_wait_and_simulated_p99():
    r = TailLatencyModel().solve(1.0, 1.0, servers=2)
    assert r.wait_probability == pytest.approx(1 / 3)
    assert r.mean_wait.m_as("s") == pytest.approx(1 / 3)    # P_W / (c mu - lambda)
    # FCFS two-server simulation of the same queue.
    rng = np.random.default_rng(1)
    n = 200_000
    arrivals = np.cumsum(rng.exponential(1.0, n))
    service = rng.exponential(1.0, n)
    free = [0.0, 0.0]
    sojourn = np.empty(n)
    for i in range(n):
        start = max(arrivals[i], heapq.heappop(free))
        heapq.heappush(free, start + service[i])
        sojourn[i] = start + service[i] - arrivals[i]
    assert r.p99_latency.m_as("s") == pytest.approx(np.quantile(sojourn[1000:], 0.99), rel=0.04)
    assert r.mean_latency.m_as("s") == pytest.approx(sojourn[1000:].mean(), rel=0.03)


def test_md1_mean_wait_is_pollaczek_khinchine():
    r = TailLatencyModel().solve(80, Q_(10, "ms"), service_distribution="deterministic")
    rho, t = 0.8, 0.010
    assert r.mean_wait.m_as("s") == pytest.approx(rho * t / (2 * (1 - rho)))
    assert r.p99_latency.m_as("s") == pytest.approx(r.p99_wait.m_as("s") + t)
    assert r.p99_latency < TailLatencyModel().solve(80, "10 ms").p99_latency
    assert "approximation" in r.method


def test_unstable_queue_reports_infinite_waits_without_raising():
    r = TailLatencyModel().solve(120, 0.010)
    assert not r.stable and r.utilization == pytest.approx(1.2)
    assert math.isinf(r.p99_latency.m_as("ms")) and math.isinf(r.mean_wait.m_as("ms"))


def test_idle_queue_has_no_wait():
    r = TailLatencyModel().solve(0, 0.010)
    assert r.mean_wait.m_as("s") == 0 and r.p99_latency.m_as("s") == pytest.approx(math.log(100) * 0.010)


@pytest.mark.parametrize("kwargs, error, field", [
    (dict(arrival_rate_qps=-1, service_time=0.01), InputError, "arrival_rate_qps"),
    (dict(arrival_rate_qps=10, service_time=0), InputError, "service_time"),
    (dict(arrival_rate_qps=10, service_time="5 GB"), UnitError, "service_time"),
    (dict(arrival_rate_qps=10, service_time=0.01, servers=0), InputError, "servers"),
    (dict(arrival_rate_qps=10, service_time=0.01, service_distribution="pareto"), UnknownNameError,
     "service_distribution"),
])
def test_tail_latency_bad_inputs(kwargs, error, field):
    with pytest.raises(error, match=field):
        TailLatencyModel().solve(**kwargs)


# --- ContinuousBatchingModel ---------------------------------------------------------------------

KV_PER_TOKEN = 2 * 32 * 8 * 128 * 2
ACT_PER_TOKEN_LAYER = 17 * 4096 * 2


def test_static_vs_paged_by_hand():
    r = ContinuousBatchingModel().solve(LLAMA, H100, max_seq_len=4096, mean_request_tokens=1024,
                                        max_batch_size=256, page_size=16)
    budget = 80 * 2**30 - 8.03e9 * 2 - (256 + 512) * ACT_PER_TOKEN_LAYER
    tokens = budget / KV_PER_TOKEN
    assert r.kv_budget.m_as("B") == pytest.approx(budget)
    assert r.static_max_requests == min(math.floor(tokens / 4096), 256) == 129
    assert r.paged_max_requests == min(math.floor(math.floor(tokens / 16) * 16 / (1024 + 7.5)), 256) == 256
    assert r.static_fragmentation == pytest.approx(0.75)
    assert r.paged_fragmentation == pytest.approx(1 - 1024 / 1031.5)
    assert r.static_wasted_memory.m_as("B") == pytest.approx(129 * 3072 * KV_PER_TOKEN)
    serve = ServingModel()
    static = serve.solve(LLAMA, H100, seq_len=4096, batch_size=129, prompt_len=1024, output_len=0)
    paged = serve.solve(LLAMA, H100, seq_len=4096, batch_size=256, prompt_len=1024, output_len=0)
    assert r.static_throughput.m_as("1/s") == pytest.approx(static.throughput.m_as("1/s"))
    assert r.speedup == pytest.approx(paged.throughput.m_as("1/s") / static.throughput.m_as("1/s"))
    assert r.speedup > 1


def test_paging_gains_nothing_when_every_request_uses_its_whole_context():
    r = ContinuousBatchingModel().solve(LLAMA, H100, max_seq_len=4096, mean_request_tokens=4096)
    assert r.paged_max_requests == r.static_max_requests
    assert r.speedup == pytest.approx(1.0)


def test_nothing_fits_is_reported_not_raised():
    r = ContinuousBatchingModel().solve(Models.Llama3_70B, H100, max_seq_len=4096)
    assert not r.feasible and r.paged_max_requests == 0 and "KV cache" in r.infeasibility_reason


@pytest.mark.parametrize("kwargs, field", [
    (dict(max_seq_len=0), "max_seq_len"),
    (dict(max_seq_len=1024, mean_request_tokens=2048), "mean_request_tokens"),
    (dict(max_seq_len=1024, page_size=0), "page_size"),
    (dict(max_seq_len=1024, max_batch_size=0), "max_batch_size"),
])
def test_continuous_batching_bad_inputs(kwargs, field):
    with pytest.raises(InputError, match=field):
        ContinuousBatchingModel().solve(LLAMA, H100, **kwargs)


# --- BatchingOptimizer -----------------------------------------------------------------------------

def _erlang_quantile(k, rate, q):
    """Exact q-quantile of a Gamma(k, rate) time (integer k): bisection on the Erlang CDF."""
    def cdf(x):
        if x <= 0:
            return 0.0
        y = rate * x
        return 1 - sum(math.exp(-y + i * math.log(y) - math.lgamma(i + 1)) for i in range(k))
    lo, hi = 0.0, 10 * (k + 10) / rate
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if cdf(mid) < q else (lo, mid)
    return lo


def test_deck_demo_picks_the_largest_batch_that_meets_the_sla():
    r = BatchingOptimizer().solve(model=LLAMA, hardware=H100, seq_len=128, arrival_rate_qps=10.0,
                                  sla_latency_ms=20000.0, precision="fp16")
    assert r.is_feasible and r.total_searched == 256
    b = r.best_batch_size
    serve = ServingModel().solve(LLAMA, H100, seq_len=128, batch_size=b)
    t_b = serve.request_latency.m_as("s")
    assert r.batch_service_time.m_as("s") == pytest.approx(t_b)
    # Hand p99: the first request waits for b-1 arrivals, then the batch runs (queueing is negligible
    # at this load: utilisation ~ 5 %).
    assert r.utilization == pytest.approx(10 * t_b / b)
    hand = _erlang_quantile(b - 1, 10.0, 0.99) + t_b
    assert r.p99_latency.m_as("s") == pytest.approx(hand, rel=0.01)
    assert r.p99_latency.m_as("s") <= 20.0
    nxt = _erlang_quantile(b, 10.0, 0.99) + ServingModel().solve(LLAMA, H100, seq_len=128,
                                                                 batch_size=b + 1).request_latency.m_as("s")
    assert nxt > 20.0 * 0.99                            # one more request per batch breaks the SLA
    # Capacity at that batch, not the offered load (10 req/s x 128 tokens).
    assert r.max_request_rate.m_as("1/s") == pytest.approx(b / t_b)
    assert r.max_throughput.m_as("1/s") == pytest.approx(b / t_b * serve.output_len)
    assert r.max_throughput.m_as("1/s") != pytest.approx(10 * 128)


def test_pareto_front_is_mutually_non_dominated_and_sorted():
    r = BatchingOptimizer().solve(LLAMA, H100, seq_len=128, arrival_rate_qps=10, sla_latency_ms=20000)
    front = r.pareto_front
    assert front and [p["batch_size"] for p in front] == sorted(p["batch_size"] for p in front)
    for p in front:
        assert set(p) >= {"batch_size", "p99_latency", "throughput"}
        p["p99_latency"].m_as("ms")
        for other in front:
            if other is p:
                continue
            dominated = (other["p99_latency"] <= p["p99_latency"] and other["throughput"] >= p["throughput"])
            assert not dominated
    assert any(p["batch_size"] == r.best_batch_size for p in front)


def test_tight_sla_is_infeasible_with_a_reason():
    r = BatchingOptimizer().solve(LLAMA, H100, seq_len=128, arrival_rate_qps=10, sla_latency_ms=5)
    assert not r.is_feasible and r.best_batch_size is None
    assert "SLA" in r.infeasibility_reason and r.max_throughput.m_as("1/s") == 0


def test_overload_asks_for_replicas():
    r = BatchingOptimizer().solve(LLAMA, H100, seq_len=128, arrival_rate_qps=1e5, sla_latency_ms=60000)
    assert not r.is_feasible and "replicas" in r.infeasibility_reason


def test_more_replicas_lower_utilisation():
    kw = dict(model=LLAMA, hardware=H100, seq_len=512, sla_latency_ms=10000, max_batch_size=64)
    one = BatchingOptimizer().solve(arrival_rate_qps=15, **kw)
    two = BatchingOptimizer().solve(arrival_rate_qps=15, replicas=2, **kw)
    assert one.is_feasible and two.is_feasible and one.best_batch_size == two.best_batch_size
    assert two.utilization == pytest.approx(one.utilization / 2)
    assert two.max_request_rate.m_as("1/s") == pytest.approx(
        2 * two.best_batch_size / two.batch_service_time.m_as("s"))
    assert two.p99_latency < one.p99_latency
    overloaded = BatchingOptimizer().solve(arrival_rate_qps=50, **kw)
    assert not overloaded.is_feasible
    capacity = float(re.search(r"at most ([\d.]+) requests/s", overloaded.infeasibility_reason).group(1))
    assert f"about {math.ceil(50 / capacity)} replicas" in overloaded.infeasibility_reason


@pytest.mark.parametrize("kwargs, field", [
    (dict(arrival_rate_qps=0, sla_latency_ms=1000), "arrival_rate_qps"),
    (dict(arrival_rate_qps=10, sla_latency_ms=-1), "sla_latency_ms"),
    (dict(arrival_rate_qps=10, sla_latency_ms=1000, max_batch_size=0), "max_batch_size"),
    (dict(arrival_rate_qps=10, sla_latency_ms=1000, replicas=0), "replicas"),
    (dict(arrival_rate_qps=10, sla_latency_ms=1000, prompt_len=128), "output_len"),
])
def test_batching_optimizer_bad_inputs(kwargs, field):
    with pytest.raises(InputError, match=field):
        BatchingOptimizer().solve(LLAMA, H100, seq_len=128, **kwargs)


def test_demo_example_runs():
    out = example_output("demo_batching_optimizer.py")
    r = BatchingOptimizer().solve(LLAMA, H100, seq_len=128, arrival_rate_qps=10, sla_latency_ms=20000)
    assert f"Optimal bs: {r.best_batch_size}" in out
    assert f"lat={r.p99_latency.m_as('ms'):.0f} ms" in out


# --- rules read from the sheets, not restated (edit the definition: the result follows) -----------

def _edit(monkeypatch, sheet, name, factor):
    from mlsysim_opt.symbolic.sheet import Definition
    d = sheet.definitions[name]
    monkeypatch.setitem(sheet.definitions, name, Definition(d.name, factor * d.expr, d.unit, d.meaning))


def _fresh_queueing(monkeypatch):
    from mlsysim_opt.solvers import batching
    for name in ("_load_function", "_queue_function"):
        monkeypatch.setattr(batching, name, getattr(batching, name).__wrapped__)


def test_tail_latency_load_and_stability_are_the_sheets(monkeypatch):
    from mlsysim_opt.models import queueing
    before = TailLatencyModel().solve(60, "10 ms")
    assert before.stable and before.utilization == pytest.approx(0.6) and before.offered_load == pytest.approx(0.6)
    _fresh_queueing(monkeypatch)
    _edit(monkeypatch, queueing.sheet, "offered_load", 3)
    assert TailLatencyModel().solve(60, "10 ms").offered_load == pytest.approx(1.8)
    _edit(monkeypatch, queueing.sheet, "utilization", 2)
    after = TailLatencyModel().solve(60, "10 ms")
    assert not after.stable and after.utilization == pytest.approx(1.2)


def test_batching_p99_uses_the_sheets_sojourn_quantile(monkeypatch):
    from mlsysim_opt.models import queueing
    solve = lambda: BatchingOptimizer().solve(LLAMA, H100, seq_len=1024, arrival_rate_qps=2,  # noqa: E731
                                              sla_latency_ms=1e6, max_batch_size=16)
    before = solve()
    assert before.is_feasible
    _fresh_queueing(monkeypatch)
    _edit(monkeypatch, queueing.sheet, "sojourn_quantile_deterministic", 2)
    after = solve()
    assert after.best_batch_size == before.best_batch_size
    assert after.batch_service_time == before.batch_service_time
    added = after.p99_latency - before.p99_latency   # one more sojourn quantile, at least one service time
    assert added >= before.batch_service_time and after.p99_latency < 2 * before.p99_latency


def test_continuous_batching_kv_budget_is_the_serving_sheets(monkeypatch):
    from mlsysim_opt.models import serving
    from mlsysim_opt.solvers import batching
    solve = lambda: ContinuousBatchingModel().solve(LLAMA, H100, max_seq_len=4096, mean_request_tokens=1024)  # noqa
    before = solve()
    _edit(monkeypatch, serving.sheet, "kv_budget", 2)
    monkeypatch.setattr(batching, "serving_function", batching.serving_function.__wrapped__)
    after = solve()
    assert after.kv_budget.m_as("GB") == pytest.approx(2 * before.kv_budget.m_as("GB"))


def test_an_overloaded_replica_is_told_the_fleet_sheet_replica_count():
    import re
    r = BatchingOptimizer().solve(Models.Llama3_8B, Hardware.H100, seq_len=2048, arrival_rate_qps=1e5,
                                  sla_latency_ms=1000, replicas=2)
    assert not r.is_feasible
    top = float(re.search(r"at most ([0-9.e+]+) requests/s", r.infeasibility_reason).group(1))
    need = int(re.search(r"about (\d+) replicas", r.infeasibility_reason).group(1))
    assert need == pytest.approx(math.ceil(1e5 / (top / 2)), rel=5e-3)    # top is printed to 3 digits
