"""Bad and extreme numbers at every optimization entry point, and regression tests for known defects
of the formulations.

Every numeric argument of ``synthesize``, ``size_fleet`` (and ``Candidate``), ``CapstoneProblem``
(built directly or from YAML) with ``solve_capstone``, ``pareto_front`` and
``ParallelismOptimizer(backend="highs")`` is given 0, a negative number, NaN, +-inf, numbers HiGHS
reads as infinite (1e20, 1e30) and absurd but finite values. The only acceptable answers are an
``InputError`` whose ``field`` names the argument, a correct result, or, for a valid limit that
cannot be met, a result without a design that explains why. Nothing from Pyomo, HiGHS, pydantic or
NumPy, and no bare ``ValueError``, ``StopIteration``, ``OverflowError`` or ``ZeroDivisionError``,
may reach the caller.

These calls run in one worker process (spawned, reused across tests): a value that sends HiGHS
into an endless loop in native code costs that worker, which is stopped after a deadline and
replaced, instead of the whole test run.

The regression tests cover: dominance pruning that ignores the budget; a time-limited solve that
reports its heuristic start as feasible when it breaks the budget; explanation thresholds that,
fed back, still fail; relaxations asking for zero demand; idle replicas when maximizing
throughput; mixed fleets that minimize cost whatever the objective; unregistered hardware.

Cases use small candidate grids (one or two accelerator types, one precision, TP 1, two batch sizes),
so a call that behaves takes milliseconds; one that hangs costs the deadline.
"""
from __future__ import annotations

import contextlib
import math
import multiprocessing
import re
import signal

import numpy as np
import pytest
import yaml

import mlsysim_opt
from mlsysim_opt import Fabrics, Fleet, Hardware, HardwareNode, Models, Nodes, ParallelismOptimizer, Q_
from mlsysim_opt import inputs
from mlsysim_opt.errors import MISSING, InputError, UnitError
from mlsysim_opt.formulations.fleet_sizing import Candidate, size_fleet
from mlsysim_opt.highs import SolveStatus

NAN, INF = float("nan"), float("inf")
SOLVED = (SolveStatus.OPTIMAL, SolveStatus.FEASIBLE)
TOL = 1e-9
DEADLINE_S = 120.0
"""A guard against a call that never returns (HiGHS looping in native code), not a speed target:
a call that behaves takes milliseconds, a first call a few seconds (it compiles the sheets), and a
busy machine may stretch both many times over."""
STUCK_S = DEADLINE_S + 2.0
"""After this long without an answer the worker is taken to be stuck in native code and stopped."""

REJECT = "reject"            # an InputError naming the argument, nothing else
EITHER = "either"            # an InputError naming the argument, or a correct result
UNREACHABLE = "unreachable"  # a valid limit no design meets: a result without a design, explained

BAD = [("negative", -1.0), ("nan", NAN), ("inf", INF), ("-inf", -INF), ("1e20", 1e20), ("1e30", 1e30)]
"""Values no numeric argument accepts: negative, not a number, infinite, or read as infinite by HiGHS."""


def _cases(field, *, zero=EITHER, absurd=None, absurd_expect=EITHER, extra=(), bad=BAD, zero_value=0.0):
    """pytest parameters (field, value, expectation) for one argument."""
    out = [pytest.param(field, value, REJECT, id=f"{field}={label}") for label, value in bad]
    if zero is not None:
        out.append(pytest.param(field, zero_value, zero, id=f"{field}=0"))
    if absurd is not None:
        out.append(pytest.param(field, absurd, absurd_expect, id=f"{field}={absurd:g}"))
    out += [pytest.param(field, value, expect, id=f"{field}={label}") for label, value, expect in extra]
    return out


def _count_cases(field, *, zero=EITHER, absurd=None, absurd_expect=EITHER):
    """A whole-number argument also refuses a fraction."""
    return _cases(field, zero=zero, absurd=absurd, absurd_expect=absurd_expect, zero_value=0,
                  extra=[("2.5", 2.5, REJECT)])


LATENCY_STRINGS = [("'-5 ms'", "-5 ms", REJECT), ("'nan ms'", "nan ms", REJECT), ("'inf ms'", "inf ms", REJECT),
                   ("'1e20 ms'", "1e20 ms", REJECT), ("'1e30 s'", "1e30 s", REJECT), ("'0 ms'", "0 ms", EITHER),
                   ("'1 us'", "1 us", UNREACHABLE), ("'1e9 s'", "1e9 s", EITHER)]
"""Latency limits as text: the same rules once the unit is applied (1 us is valid but unreachable)."""


# ----------------------------------------------------------------------------------------------
# running a call and judging its outcome


class _TooSlow(BaseException):
    """Not an Exception: the code under test may wrap exceptions, never this one."""


@contextlib.contextmanager
def _deadline(seconds: float):
    def _stop(signum, frame):
        raise _TooSlow(f"no answer within {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, _stop)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _answer(call, field, expect, check, *, seconds=DEADLINE_S):
    """Run ``call``. An InputError must name ``field`` (and is refused for an unreachable but valid
    limit); any other exception fails; an answer to a value that must be refused fails; otherwise
    ``check(result)`` judges the answer."""
    try:
        with _deadline(seconds):
            result = call()
    except _TooSlow as exc:
        pytest.fail(f"{field}: {exc}")
    except InputError as err:
        assert expect != UNREACHABLE, (
            f"{field}: a valid limit that cannot be met must be answered with no design and an explanation, "
            f"not refused: {err}")
        assert field in (err.field or ""), f"the InputError names {err.field!r}, not {field!r}: {err}"
        for one in err.errors:   # lesson 10: the rule, the bad value and where
            assert one.rule and one.field in str(err), f"no rule or place in: {err}"
            assert one.value is not MISSING, f"the bad value is not shown: {err}"
        return
    except Exception as exc:  # noqa: BLE001 - anything but InputError is the failure under test
        pytest.fail(f"{field}: raw {type(exc).__module__}.{type(exc).__qualname__} escaped: {exc}")
    assert expect != REJECT, f"{field}: the bad value was accepted and answered:\n{str(result)[:800]}"
    check(result)


WORKER_NAME = "formulation_inputs_worker"
"""The module name this file runs under in the worker process (``runpy.run_path``)."""


def _serve(conn):
    """The worker: run (job name, args) requests; answer None (passed) or the failure's text."""
    import os
    import traceback
    import warnings
    warnings.simplefilter("ignore")
    quiet = os.open(os.devnull, os.O_WRONLY)   # solver logs would land in whichever test started us
    os.dup2(quiet, 1)
    os.dup2(quiet, 2)
    conn.send("ready")
    while True:
        try:
            name, args = conn.recv()
        except EOFError:
            return
        try:
            globals()[name](*args)
            verdict = None
        except AssertionError as exc:
            frame = traceback.extract_tb(exc.__traceback__)[-1]
            verdict = f"{exc or 'assertion failed'} (line {frame.lineno}: {frame.line})"
        except BaseException as exc:  # noqa: BLE001 - pytest.fail's exception included
            verdict = str(exc) or type(exc).__name__
        conn.send(verdict)


class _Worker:
    """One spawned process running this file's jobs (a fork would inherit HiGHS's thread pool
    half-dead). The parent waits at most STUCK_S for each answer, then stops and replaces it."""

    def __init__(self):
        self.process = None
        self.conn = None

    def _start(self):
        import runpy
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=runpy.run_path, args=(__file__,), daemon=True,
                                   kwargs={"init_globals": {"WORKER_CONN": child}, "run_name": WORKER_NAME})
        self.process.start()
        child.close()
        if not self.conn.poll(120):
            self.stop()
            pytest.fail("the worker process did not start within 120 s")
        self.conn.recv()

    def stop(self):
        if self.process is not None:
            self.process.kill()
            self.process.join(10)
            self.conn.close()
        self.process = self.conn = None

    def run(self, job, *args):
        if self.process is None or not self.process.is_alive():
            self._start()
        self.conn.send((job.__name__, args))
        try:
            if self.conn.poll(STUCK_S):
                return self.conn.recv()
            verdict = f"no answer within {STUCK_S:g} s: stuck in native code (the worker was stopped)"
        except EOFError:
            verdict = "the worker process died (crashed in native code?)"
        self.stop()
        return verdict


@pytest.fixture(scope="module")
def worker():
    w = _Worker()
    yield w
    w.stop()


def _judge(worker, job, *args):
    verdict = worker.run(job, *args)
    if verdict is not None:
        pytest.fail(verdict, pytrace=False)


def _finite(*values):
    return all(isinstance(v, (int, float)) and math.isfinite(v) for v in values)


def _check_explanation(explanation):
    assert explanation is not None, "no design and no explanation"
    assert str(explanation).strip()
    for rel in [*explanation.relaxations, *explanation.joint]:
        assert rel.required is None or math.isfinite(rel.required), f"relaxation to a non-finite value: {rel}"


def _ms(value) -> float:
    if isinstance(value, str):
        return Q_(value).m_as("ms")
    if hasattr(value, "m_as"):
        return value.m_as("ms")
    return float(value)


# ----------------------------------------------------------------------------------------------
# synthesize


SYN = dict(qps=20.0, prompt_len=256, output_len=128, hardware=["H100", "L4"], precisions=["fp16"], tp_sizes=[1],
           batch_sizes=[8, 32], ttft="1000 ms")


def _check_synthesis(kw, expect):
    def check(r):
        if expect == UNREACHABLE or r.best is None:
            assert r.best is None, f"a design for a limit no design meets:\n{r}"
            assert r.solve.status not in SOLVED, f"no design, yet status {r.solve.status.value}"
            _check_explanation(r.explanation)
            return
        b = r.best
        assert r.solve.status in SOLVED
        assert _finite(b.total_qps, b.annual_cost_usd, b.power_kw, b.annual_carbon_t), str(r)
        assert min(b.total_qps, b.annual_cost_usd, b.power_kw, b.annual_carbon_t) >= 0, str(r)
        assert b.total_qps >= kw["qps"] * (1 - TOL), f"serves {b.total_qps} of {kw['qps']} QPS"
        if kw.get("budget_usd") is not None:
            assert b.annual_cost_usd <= kw["budget_usd"] * (1 + TOL), f"over budget:\n{r}"
        for key in ("ttft", "itl", "e2e_latency"):
            if kw.get(key) is not None:
                # the limit bounds a percentile under load: alone, and at the load each replica carries
                limit = _ms(kw[key])
                assert b.config.latency_ms(key) <= limit * (1 + TOL), f"{key} broken alone:\n{r}"
                assert b.load is not None, f"no latencies under load:\n{r}"
                assert b.load.latency_ms(key) <= limit * (1 + TOL), f"{key} broken under load:\n{r}"
        if r.mix is not None:
            if r.mix.feasible:
                assert r.mix.total_qps >= kw["qps"] * (1 - 1e-7), f"the mix serves too little:\n{r.mix}"
                if kw.get("budget_usd") is not None:
                    assert r.mix.total_cost_usd <= kw["budget_usd"] * (1 + TOL), f"the mix is over budget:\n{r.mix}"
            else:
                _check_explanation(r.mix.explanation)
    return check


def _job_synthesize(kw, field, expect):
    _answer(lambda: mlsysim_opt.synthesize("Llama3_8B", **kw), field, expect, _check_synthesis(kw, expect))


def _job_synthesize_quantity(value):
    kw = dict(SYN, ttft=Q_(value, "ms"))
    _answer(lambda: mlsysim_opt.synthesize("Llama3_8B", **kw), "ttft", REJECT, _check_synthesis(kw, REJECT))


def _latency_cases(field):
    return _cases(field, absurd=1e12, extra=[("1us", 0.001, UNREACHABLE)] + LATENCY_STRINGS)


SYNTHESIS_CASES = [
    *_cases("qps", absurd=1e12),
    *_latency_cases("ttft"), *_latency_cases("itl"), *_latency_cases("e2e_latency"),
    *_cases("budget_usd", absurd=1e18, extra=[("$1", 1.0, UNREACHABLE)]),
    *_cases("efficiency", absurd=1e6, absurd_expect=REJECT),
    *_cases("utilization", absurd=1e6, absurd_expect=REJECT),
    *_cases("headroom", absurd=1e6, absurd_expect=REJECT),
    *_cases("infrastructure_multiplier", absurd=1e6),
    *_cases("time_limit", absurd=1e9),
    *_count_cases("prompt_len"), *_count_cases("output_len"), *_count_cases("top_k"),
]


@pytest.mark.parametrize("field, value, expect", SYNTHESIS_CASES)
def test_synthesize_numeric_arguments(worker, field, value, expect):
    _judge(worker, _job_synthesize, dict(SYN, **{field: value}), field, expect)


@pytest.mark.parametrize("field, value, expect", [
    *_cases("budget_usd", absurd=1e18, extra=[("$1", 1.0, UNREACHABLE)]),
    *_cases("qps", absurd=1e12),
])
def test_synthesize_mixed_fleet_numeric_arguments(worker, field, value, expect):
    kw = {**SYN, "budget_usd": 1e6, "allow_mix": True, "objective": "carbon", field: value}
    _judge(worker, _job_synthesize, kw, field, expect)


@pytest.mark.parametrize("value", [NAN, INF, -1.0, 1e20])
def test_synthesize_latency_quantities(worker, value):
    _judge(worker, _job_synthesize_quantity, value)


# ----------------------------------------------------------------------------------------------
# size_fleet and Candidate


CANDIDATE_A = dict(name="A", hardware="A", throughput_qps={"default": 10.0}, annual_cost_usd=10.0, power_kw=1.0,
                   rack_units=1.0, annual_carbon_t=2.0)
CANDIDATE_B = dict(name="B", hardware="B", throughput_qps={"default": 3.0}, annual_cost_usd=3.3, power_kw=0.5,
                   rack_units=0.5, annual_carbon_t=0.5)


def _candidates(**change_a):
    return [Candidate(**{**CANDIDATE_A, **change_a}), Candidate(**CANDIDATE_B)]


def _check_fleet(kw, expect):
    def check(r):
        if expect == UNREACHABLE or not r.feasible:
            assert not (expect == UNREACHABLE and r.feasible), f"a fleet for a limit no fleet meets:\n{r}"
            assert not r.allocations, f"allocations without a solution:\n{r}"
            _check_explanation(r.explanation)
            return
        assert r.solve.status in SOLVED
        assert _finite(r.total_qps, r.total_cost_usd, r.total_power_kw, r.total_carbon_t), str(r)
        served: dict[str, float] = {}
        for a in r.allocations:
            c = a.candidate
            assert a.replicas >= 1
            assert all(_finite(v) and v >= -1e-9 for v in a.served_qps.values()), str(r)
            load = sum(v / c.qps(k) for k, v in a.served_qps.items() if v > 0)
            assert load <= a.replicas * (1 + 1e-7), f"{c.name}: {a.replicas} replicas carry a load of {load}"
            if kw.get("max_replicas") is not None:
                assert a.replicas <= kw["max_replicas"]
            for k, v in a.served_qps.items():
                served[k] = served.get(k, 0.0) + v
        assert r.total_cost_usd == pytest.approx(sum(a.replicas * a.candidate.annual_cost_usd for a in r.allocations),
                                                 rel=1e-9, abs=1e-9)
        if kw.get("objective", "min_cost") == "min_cost":
            demand = kw["demand_qps"] if isinstance(kw["demand_qps"], dict) else {"default": kw["demand_qps"]}
            for k, d in demand.items():
                assert served.get(k, 0.0) >= d * (1 - 1e-7) - 1e-6, f"class {k}: {served.get(k, 0.0)} of {d} QPS:\n{r}"
        for key, total in (("budget_usd", r.total_cost_usd), ("power_cap_kw", r.total_power_kw),
                           ("carbon_cap_t", r.total_carbon_t),
                           ("rack_units", sum(a.replicas * a.candidate.rack_units for a in r.allocations))):
            if kw.get(key) is not None:
                assert total <= kw[key] * (1 + 1e-7) + 1e-9, f"{key} {kw[key]} broken: {total}\n{r}"
        for hw, limit in (kw.get("availability") or {}).items():
            used = sum(a.replicas * a.candidate.accelerators for a in r.allocations if a.candidate.hardware == hw)
            assert used <= limit, f"{used} {hw} accelerators used, {limit} available"
    return check


def _job_fleet(kw, field, expect, change_a=None):
    _answer(lambda: size_fleet(_candidates(**(change_a or {})), **kw), field, expect, _check_fleet(kw, expect))


FLEET_CASES = [
    *_cases("demand_qps", absurd=1e12),
    *_cases("budget_usd", absurd=1e18, extra=[("$1", 1.0, UNREACHABLE)]),
    *_cases("power_cap_kw", absurd=1e18, extra=[("1W", 0.001, UNREACHABLE)]),
    *_cases("rack_units", absurd=1e18, extra=[("0.01U", 0.01, UNREACHABLE)]),
    *_cases("carbon_cap_t", absurd=1e18, extra=[("1kg", 0.001, UNREACHABLE)]),
    *_count_cases("max_replicas", absurd=10 ** 15),
    *_cases("time_limit", absurd=1e9),
    *_cases("mip_gap", absurd=10.0),
]


@pytest.mark.parametrize("field, value, expect", FLEET_CASES)
def test_size_fleet_numeric_arguments(worker, field, value, expect):
    _judge(worker, _job_fleet, {"demand_qps": 31.0, field: value}, field, expect)


@pytest.mark.parametrize("field, value, expect", _cases("demand_qps", absurd=1e12))
def test_size_fleet_demand_per_class(worker, field, value, expect):
    _judge(worker, _job_fleet, dict(demand_qps={"default": value}), field, expect)


@pytest.mark.parametrize("field, value, expect", _count_cases("availability", absurd=10 ** 15))
def test_size_fleet_availability(worker, field, value, expect):
    _judge(worker, _job_fleet, dict(demand_qps=31.0, availability={"A": value, "B": 2}), field, expect)


def test_size_fleet_no_accelerator_available_is_explained(worker):
    _judge(worker, _job_fleet, dict(demand_qps=31.0, availability={"A": 0, "B": 0}), "availability", UNREACHABLE)


@pytest.mark.parametrize("field, value, expect", [
    *_cases("budget_usd", absurd=1e18),
    *_cases("class_shares", absurd=1e12),
])
def test_size_fleet_max_throughput_numeric_arguments(worker, field, value, expect):
    kw = dict(objective="max_throughput", budget_usd=100.0)
    kw[field] = {"default": value} if field == "class_shares" else value
    _judge(worker, _job_fleet, kw, field, expect)


CANDIDATE_CASES = [
    *_cases("throughput_qps", absurd=1e12),
    *_cases("annual_cost_usd", absurd=1e18),
    *_cases("power_kw", absurd=1e18),
    *_cases("rack_units", absurd=1e18),
    *_cases("annual_carbon_t", absurd=1e18),
    *_count_cases("accelerators", absurd=10 ** 15),
]


@pytest.mark.parametrize("field, value, expect", CANDIDATE_CASES)
def test_candidate_numbers(worker, field, value, expect):
    change = {field: {"default": value} if field == "throughput_qps" else value}
    kw = dict(demand_qps=31.0, budget_usd=1e6, power_cap_kw=1e6, rack_units=1e6, carbon_cap_t=1e6,
              availability={"A": 10 ** 6, "B": 10 ** 6})
    _judge(worker, _job_fleet, kw, field, expect, change)


# ----------------------------------------------------------------------------------------------
# the capstone: CapstoneProblem (directly and from YAML), solve_capstone, pareto_front


CAP = dict(model="Llama3_8B", qps=60.0, hardware=["H100", "L4"], precisions=["fp16"], tp_sizes=[1], pp_sizes=[1],
           batch_sizes=[8, 32], regions=["Iowa", "France"], min_share=0.25, redundancy=1, ttft_ms=200.0,
           annual_budget_usd=None, carbon_cap_t=None)


def _check_capstone(expect, *, carbon_cap=None, ttft_ms=None):
    def check(r):
        p = r.problem
        if expect == UNREACHABLE or not r.regions:
            assert not r.regions, f"a design for a limit no design meets:\n{r}"
            assert r.solve.status not in SOLVED, f"no design, yet status {r.solve.status.value}"
            _check_explanation(r.explanation)
            return
        assert r.solve.status in SOLVED
        assert _finite(r.annual_cost_usd, r.annual_carbon_t, r.power_kw), str(r)
        assert {d.region for d in r.regions} == set(p.regions)
        assert sum(d.served_qps for d in r.regions) >= p.qps * (1 - 1e-7), str(r)
        limits = {k: v for k, v in (("ttft", ttft_ms if ttft_ms is not None else p.ttft_ms), ("itl", p.itl_ms))
                  if v is not None}
        for d in r.regions:
            assert _finite(d.served_qps, d.annual_cost_usd, d.annual_carbon_t), str(r)
            assert d.served_qps >= p.min_share * p.qps * (1 - 1e-7) - 1e-6, f"{d.region} below its share:\n{r}"
            goodput = d.config.goodput_qps
            assert goodput is not None and 0 < goodput <= d.config.capacity_qps * (1 + TOL), str(r)
            usable = (d.replicas - p.redundancy) * goodput * p.planned_headroom
            assert d.served_qps <= usable * (1 + 1e-7) + 1e-6, f"{d.region} serves more than N+k allows:\n{r}"
            for key, limit in limits.items():
                # the limit bounds a percentile under load: alone, and at the load each replica carries
                assert d.config.latency_ms(key) <= limit * (1 + TOL), f"{d.region} breaks {key} alone:\n{r}"
                if d.served_qps > 0:
                    assert d.load is not None, f"{d.region}: no latencies under load:\n{r}"
                    assert d.load.latency_ms(key) <= limit * (1 + TOL), f"{d.region} breaks {key} under load:\n{r}"
        if p.annual_budget_usd is not None:
            assert r.annual_cost_usd <= p.annual_budget_usd * (1 + TOL), f"over budget:\n{r}"
        cap = carbon_cap if carbon_cap is not None else p.carbon_cap_t
        if cap is not None:
            assert r.annual_carbon_t <= cap * (1 + TOL), f"over the carbon cap:\n{r}"
    return check


def _job_capstone(field, value, expect, yaml_path=None):
    def call():
        if yaml_path is not None:
            problem = mlsysim_opt.CapstoneProblem.from_yaml(yaml_path)
        else:
            problem = mlsysim_opt.CapstoneProblem(**{**CAP, field: value})
        return mlsysim_opt.solve_capstone(problem)
    _answer(call, field, expect, _check_capstone(expect))


def _problem_cases():
    return [
        *_cases("qps", absurd=1e12),
        *_cases("ttft_ms", absurd=1e12, extra=[("1us", 0.001, UNREACHABLE)]),
        *_cases("itl_ms", absurd=1e12, extra=[("1us", 0.001, UNREACHABLE)]),
        *_cases("annual_budget_usd", absurd=1e18, extra=[("$1", 1.0, UNREACHABLE)]),
        *_cases("carbon_cap_t", absurd=1e18, extra=[("1g", 1e-6, UNREACHABLE)]),
        *_cases("min_share", absurd=5.0, absurd_expect=REJECT),
        *_count_cases("redundancy", absurd=10 ** 6),
        *_cases("efficiency", absurd=1e6, absurd_expect=REJECT),
        *_cases("utilization", absurd=1e6, absurd_expect=REJECT),
        *_cases("headroom", absurd=1e6, absurd_expect=REJECT),
        *_cases("infrastructure_multiplier", absurd=1e6),
        *_count_cases("prompt_len"), *_count_cases("output_len"),
    ]


@pytest.mark.parametrize("field, value, expect", _problem_cases())
def test_capstone_problem_fields(worker, field, value, expect):
    _judge(worker, _job_capstone, field, value, expect)


@pytest.mark.parametrize("field, value, expect", _problem_cases())
def test_capstone_problem_fields_from_yaml(worker, tmp_path, field, value, expect):
    path = tmp_path / "variant.yaml"
    path.write_text(yaml.safe_dump({**CAP, field: value}), encoding="utf-8")
    _judge(worker, _job_capstone, field, value, expect, str(path))


def _job_capstone_text(text, expect):
    limit = Q_(text).m_as("ms")
    unreachable = 0 < limit < 1

    def call():
        return mlsysim_opt.solve_capstone(mlsysim_opt.CapstoneProblem(**{**CAP, "ttft_ms": text}))

    def check(r):
        assert r.problem.ttft_ms == pytest.approx(limit, rel=1e-12), f"{text!r} read as {r.problem.ttft_ms} ms"
        _check_capstone(UNREACHABLE if unreachable else EITHER, ttft_ms=limit)(r)
    _answer(call, "ttft", REJECT if expect == REJECT else EITHER, check)


@pytest.mark.parametrize("text, expect", [pytest.param(text, expect, id=label) for label, text, expect in
                                          [*LATENCY_STRINGS, ("'100 ms'", "100 ms", EITHER)]])
def test_capstone_latency_as_text(worker, text, expect):
    """Text is either refused with an InputError naming the limit, or read with its unit."""
    _judge(worker, _job_capstone_text, text, expect)


def _job_solve_capstone(field, value, expect):
    problem = mlsysim_opt.CapstoneProblem(**CAP)
    cap = value if field == "carbon_cap_t" and isinstance(value, float) and math.isfinite(value) else None
    _answer(lambda: mlsysim_opt.solve_capstone(problem, **{field: value}), field, expect,
            _check_capstone(expect, carbon_cap=cap))


@pytest.mark.parametrize("field, value, expect", [
    *_cases("time_limit", absurd=1e9),
    *_cases("carbon_cap_t", absurd=1e18, extra=[("1g", 1e-6, UNREACHABLE)]),
])
def test_solve_capstone_arguments(worker, field, value, expect):
    _judge(worker, _job_solve_capstone, field, value, expect)


def _check_front(expect):
    def check(front):
        if expect == UNREACHABLE:
            assert not front.points, f"a front for a problem no design solves:\n{front}"
            return
        assert front.points, f"an empty front for a solvable problem:\n{front}"
        for point in front.points:
            assert _finite(point.annual_cost_usd, point.secondary, point.epsilon), str(front)
            _check_capstone(EITHER)(point.design)
            assert point.design.annual_cost_usd == pytest.approx(point.annual_cost_usd, rel=1e-9)
        costs = [p.annual_cost_usd for p in front.points]
        assert costs == sorted(costs)
    return check


def _job_front(axes, field, value, expect, options):
    """pareto_front refuses a problem without any design with an InputError (on the problem or the
    limit), or answers with an empty front; bad numbers are refused naming the argument."""
    def call():
        problem = mlsysim_opt.CapstoneProblem(**{**CAP, **({field: value} if field in CAP else {})})
        extra = {} if field in CAP else {field: value}
        return mlsysim_opt.pareto_front(problem, axes=axes, **extra, **options)
    if expect != UNREACHABLE:
        _answer(call, field, expect, _check_front(expect))
        return
    try:
        with _deadline(DEADLINE_S):
            front = call()
    except _TooSlow as exc:
        pytest.fail(f"{field}: {exc}")
    except InputError as err:
        assert err.field == "problem" or field in err.field, f"the InputError names {err.field!r}: {err}"
        return
    except Exception as exc:  # noqa: BLE001
        pytest.fail(f"{field}: raw {type(exc).__module__}.{type(exc).__qualname__} escaped: {exc}")
    _check_front(UNREACHABLE)(front)


PARETO_CASES = [
    *_cases("points", zero=REJECT, absurd=10 ** 7, extra=[("2.5", 2.5, REJECT)]),
    *_cases("time_limit", absurd=1e9),
    *_cases("qps", absurd=1e12),
    *_cases("ttft_ms", zero=UNREACHABLE, absurd=1e12, extra=[("1us", 0.001, UNREACHABLE)]),
    *_cases("annual_budget_usd", zero=UNREACHABLE, absurd=1e18, extra=[("$1", 1.0, UNREACHABLE)]),
]


@pytest.mark.parametrize("axes", ["carbon", "ttft"])
@pytest.mark.parametrize("field, value, expect", PARETO_CASES)
def test_pareto_front_arguments(worker, axes, field, value, expect):
    if field == "ttft_ms" and axes == "ttft" and expect == UNREACHABLE:
        expect = EITHER   # the TTFT axis sweeps the limit itself
    _judge(worker, _job_front, axes, field, value, expect, {} if field == "points" else {"points": 3})


# ----------------------------------------------------------------------------------------------
# ParallelismOptimizer(backend="highs")


def _one_node():
    return Fleet(name="one node", node=Nodes.DGX_H100, count=1, fabric=Fabrics.InfiniBand_NDR)


def _check_parallelism(fleet):
    def check(r):
        if r.best_config is None:
            assert r.status == "infeasible", f"status {r.status!r} without a configuration"
            assert r.infeasibility_reason
            return
        assert r.status in ("optimal", "feasible")
        c = r.best_config
        assert c["tp"] * c["pp"] * c["dp"] == fleet.total_accelerators
        assert _finite(r.best_step_time.m_as("s"), r.best_mfu) and r.best_step_time.m_as("s") > 0
    return check


def _job_parallelism(field, value, expect):
    fleet = _one_node()
    kw = {"batch_size": 16, field: value}
    limit = kw.pop("time_limit", None)

    def call():
        optimizer = ParallelismOptimizer(backend="highs") if limit is None else \
            ParallelismOptimizer(backend="highs", time_limit=limit)
        return optimizer.solve(Models.Llama3_8B, fleet, **kw)
    _answer(call, field, expect, _check_parallelism(fleet))


PARALLELISM_CASES = [
    *_count_cases("batch_size", absurd=10 ** 6),
    *_cases("efficiency", absurd=1e6, absurd_expect=REJECT),
    *_count_cases("seq_len", absurd=10 ** 9),
    *_count_cases("max_tp", absurd=10 ** 9),
    *_count_cases("max_pp", absurd=10 ** 9),
    *_cases("gradient_bytes", absurd=1e6),
    *_cases("memory_reserve", absurd=1e15,
            extra=[("'nan GB'", "nan GB", REJECT), ("'-4 GB'", "-4 GB", REJECT), ("'inf GB'", "inf GB", REJECT),
                   ("'1e30 GB'", "1e30 GB", REJECT)]),
    *_cases("time_limit", absurd=1e9),
]


@pytest.mark.parametrize("field, value, expect", PARALLELISM_CASES)
def test_parallelism_highs_arguments(worker, field, value, expect):
    _judge(worker, _job_parallelism, field, value, expect)


# ----------------------------------------------------------------------------------------------
# validators in mlsysim_opt.inputs


def _refused(call, field, *, rule_has=(), value_shown=None):
    with pytest.raises(InputError) as info:
        call()
    err = info.value
    assert err.field == field
    text = str(err)
    assert field in text and err.rule and err.fix, f"rule, place and fix expected: {text}"
    for part in rule_has:
        assert part in err.rule, f"{part!r} not in {err.rule!r}"
    if value_shown is not None:
        assert value_shown in text, f"{value_shown!r} not shown in {text!r}"
    return err


@pytest.mark.parametrize("value, options, expected", [
    (5, {}, 5.0), (0, {}, 0.0), (-3.5, {}, -3.5), (np.float64(2.5), {}, 2.5), (np.int64(7), {}, 7.0),
    (1e300, {}, 1e300), (0.0, {"minimum": 0.0}, 0.0), (1.0, {"minimum": 0.0, "maximum": 1.0}, 1.0),
    (0.5, {"minimum": 0.0, "maximum": 1.0, "allow_zero": False}, 0.5),
])
def test_finite_number_accepts(value, options, expected):
    got = inputs.finite_number(value, "x", **options)
    assert got == expected and type(got) is float


@pytest.mark.parametrize("value, options, rule_has", [
    (NAN, {}, ["NaN"]), (INF, {}, ["finite"]), (-INF, {}, ["finite"]), (np.float64("nan"), {}, ["NaN"]),
    ("5", {}, ["number"]), (None, {}, ["number"]), (True, {}, ["number"]), ([1.0], {}, ["number"]),
    (-1, {"minimum": 0}, [">= 0"]), (0, {"minimum": 0, "allow_zero": False}, ["> 0"]),
    (0.0, {"allow_zero": False}, ["0"]), (2, {"maximum": 1}, ["<= 1"]), (-0.5, {"minimum": 0, "unit": "USD"}, ["USD"]),
])
def test_finite_number_refuses(value, options, rule_has):
    _refused(lambda: inputs.finite_number(value, "x", **options), "x", rule_has=rule_has)


def test_finite_number_uses_the_given_fix():
    err = _refused(lambda: inputs.finite_number(NAN, "budget_usd", fix="pass the annual budget in USD"),
                   "budget_usd")
    assert err.fix == "pass the annual budget in USD"


@pytest.mark.parametrize("value, options, expected", [
    (0, {}, 0.0), (1e6, {}, 1e6), (9.99e19, {}, 9.99e19), (-5.0, {"minimum": None}, -5.0),
    (3, {"allow_zero": False}, 3.0),
])
def test_finite_limit_accepts(value, options, expected):
    assert inputs.finite_limit(value, "budget_usd", **options) == expected


@pytest.mark.parametrize("value, options, rule_has", [
    (1e20, {}, ["infinite"]), (1e30, {}, ["infinite"]), (-1e20, {"minimum": None}, ["infinite"]),
    (10 ** 21, {}, ["infinite"]), (-1.0, {}, [">= 0"]), (NAN, {}, ["NaN"]), (INF, {}, ["finite"]),
    (0, {"allow_zero": False}, ["> 0"]), ("100", {}, ["number"]),
])
def test_finite_limit_refuses(value, options, rule_has):
    _refused(lambda: inputs.finite_limit(value, "budget_usd", **options), "budget_usd", rule_has=rule_has)


def test_finite_limit_says_how_to_leave_a_limit_out():
    err = _refused(lambda: inputs.finite_limit(1e20, "carbon_cap_t", unit="t"), "carbon_cap_t",
                   value_shown="1e+20")
    assert "None" in err.fix
    assert inputs.SOLVER_INFINITY == 1e20


@pytest.mark.parametrize("value, options, expected", [
    (3, {}, 3), (3.0, {}, 3), (np.int64(4), {}, 4), (0, {}, 0), (1, {"minimum": 1}, 1), (5, {"maximum": 5}, 5),
])
def test_whole_number_accepts(value, options, expected):
    got = inputs.whole_number(value, "redundancy", **options)
    assert got == expected and type(got) is int


@pytest.mark.parametrize("value, options, rule_has", [
    (2.5, {}, ["whole"]), (NAN, {}, ["NaN"]), (INF, {}, ["finite"]), (True, {}, ["whole"]), ("3", {}, ["whole"]),
    (-1, {}, [">= 0"]), (0, {"minimum": 1}, [">= 1"]), (6, {"maximum": 5}, ["<= 5"]), (10 ** 20, {}, ["infinite"]),
    (1e30, {}, ["infinite"]),
])
def test_whole_number_refuses(value, options, rule_has):
    _refused(lambda: inputs.whole_number(value, "redundancy", **options), "redundancy", rule_has=rule_has)


def test_finite_mapping():
    assert inputs.finite_mapping({"a": 1, "b": 2.5}, "demand_qps") == {"a": 1.0, "b": 2.5}
    assert inputs.finite_mapping({}, "availability", allow_empty=True) == {}
    _refused(lambda: inputs.finite_mapping({"a": 1.0, "b": NAN}, "demand_qps"), "demand_qps['b']",
             rule_has=["NaN"])
    _refused(lambda: inputs.finite_mapping({"a": 1e20}, "demand_qps"), "demand_qps['a']", rule_has=["infinite"])
    _refused(lambda: inputs.finite_mapping({"a": 0}, "class_shares", allow_zero=False), "class_shares['a']")
    _refused(lambda: inputs.finite_mapping(5.0, "demand_qps"), "demand_qps", rule_has=["mapping"])
    _refused(lambda: inputs.finite_mapping({}, "demand_qps"), "demand_qps", rule_has=["empty"])
    with pytest.raises(InputError) as info:
        inputs.finite_mapping({3: 1.0}, "demand_qps")
    assert info.value.field == "demand_qps"


@pytest.mark.parametrize("value, expected", [
    (None, None), ("100 ms", 100.0), ("1 s", 1000.0), (Q_(2, "s"), 2000.0), (5, 5.0), (0.25, 0.25),
])
def test_quantity_limit_accepts(value, expected):
    assert inputs.quantity_limit(value, "ttft", "ms") == expected


@pytest.mark.parametrize("value, rule_has", [
    ("nan ms", ["NaN"]), ("inf ms", ["finite"]), ("-5 ms", [">= 0"]), ("0 ms", ["> 0"]), ("1e30 s", ["infinite"]),
    ("1e20 ms", ["infinite"]), (Q_(NAN, "ms"), ["NaN"]), (NAN, ["NaN"]), (-1, [">= 0"]),
])
def test_quantity_limit_refuses(value, rule_has):
    shown = value if isinstance(value, str) else None
    _refused(lambda: inputs.quantity_limit(value, "ttft", "ms"), "ttft", rule_has=rule_has, value_shown=shown)


def test_quantity_limit_zero_when_allowed_and_wrong_units():
    assert inputs.quantity_limit("0 ms", "ttft", "ms", allow_zero=True) == 0.0
    with pytest.raises(UnitError) as info:
        inputs.quantity_limit("100 GB", "ttft", "ms")
    assert info.value.field == "ttft"


# ----------------------------------------------------------------------------------------------
# B1: a budget with objective "power" or "carbon" keeps the designs within budget


B1 = dict(qps=5.0, prompt_len=256, output_len=128, precisions=["fp16"], tp_sizes=[1], batch_sizes=[8, 32],
          ttft="1000 ms")
OBJECTIVE_ATTR = {"tco": "annual_cost_usd", "power": "power_kw", "carbon": "annual_carbon_t"}


@pytest.fixture(scope="module")
def h100_h200():
    """H100 is the cheapest design, H200 the lowest-power (and lowest-carbon) one."""
    kw = dict(B1, hardware=["H100", "H200"])
    return kw, {objective: mlsysim_opt.synthesize("Llama3_8B", objective=objective, **kw)
                for objective in ("tco", "power", "carbon")}


@pytest.mark.parametrize("where", [1e-4, 0.5])
@pytest.mark.parametrize("objective", ["power", "carbon"])
def test_budget_between_cheapest_and_greenest_is_feasible(h100_h200, objective, where):
    kw, best = h100_h200
    cheapest, greenest = best["tco"].best, best[objective].best
    low, high = cheapest.annual_cost_usd, greenest.annual_cost_usd
    assert high > low * (1 + 1e-6), "the instance must have a greener design that costs more"
    budget = low + where * (high - low)
    r = mlsysim_opt.synthesize("Llama3_8B", objective=objective, budget_usd=budget, **kw)
    assert r.best is not None, (f"the cheapest design (${low:,.2f}) is within the ${budget:,.2f} budget, "
                                f"yet: {r.explanation}")
    assert r.best.annual_cost_usd <= budget * (1 + TOL)
    attr = OBJECTIVE_ATTR[objective]
    assert getattr(r.best, attr) <= getattr(cheapest, attr) * (1 + TOL)


@pytest.mark.parametrize("objective", ["power", "carbon"])
def test_adding_an_accelerator_type_never_makes_a_query_infeasible(h100_h200, objective):
    kw, best = h100_h200
    low, high = best["tco"].best.annual_cost_usd, best[objective].best.annual_cost_usd
    budget = low + 1e-4 * (high - low)
    alone = mlsysim_opt.synthesize("Llama3_8B", objective=objective, budget_usd=budget, **dict(kw, hardware=["H100"]))
    assert alone.best is not None, f"H100 alone fits the budget: {alone.explanation}"
    more = mlsysim_opt.synthesize("Llama3_8B", objective=objective, budget_usd=budget, **kw)
    assert more.best is not None, f"adding H200 to the choices turned a feasible query infeasible: {more.explanation}"
    attr = OBJECTIVE_ATTR[objective]
    assert getattr(more.best, attr) <= getattr(alone.best, attr) * (1 + TOL)
    assert more.best.annual_cost_usd <= budget * (1 + TOL)


# ----------------------------------------------------------------------------------------------
# B2: a time-limited solve never reports a start that breaks the budget


TIME_LIMITS = [1e-6, 1e-4, 1e-3]


@pytest.mark.parametrize("time_limit", TIME_LIMITS)
def test_time_limited_fleet_sizing_respects_the_budget(time_limit):
    """Greedy start: 4 x A ($40); the optimum 1 x A + 7 x B ($33.10) is within the $35 budget."""
    cands = [Candidate(name="A", hardware="A", throughput_qps={"default": 10.0}, annual_cost_usd=10.0),
             Candidate(name="B", hardware="B", throughput_qps={"default": 3.0}, annual_cost_usd=3.3)]
    r = size_fleet(cands, demand_qps=31.0, budget_usd=35.0, time_limit=time_limit)
    assert r.solve.status is not SolveStatus.INFEASIBLE, "a time limit proves nothing infeasible"
    if r.solve.status in SOLVED:
        assert r.total_cost_usd <= 35.0 * (1 + TOL), f"reported {r.solve.status.value} over budget:\n{r}"
        assert r.total_qps >= 31.0 * (1 - 1e-7)


def _greedy_start_cost(problem) -> float:
    """What the capstone's starting solution costs: every region on its cheapest configuration per
    request (at its goodput), serving its minimum share, and the cheapest region the rest."""
    from mlsysim_opt.formulations.capstone import region_candidates
    from mlsysim_opt.formulations.goodput import apply_sla
    limits = {k: v for k, v in (("ttft", problem.ttft_ms), ("itl", problem.itl_ms)) if v is not None}
    head, k = problem.planned_headroom, problem.redundancy

    def per_request(c):
        return c.annual_cost_usd / (c.goodput_qps * head)
    choice = {r: min(apply_sla(cs, limits, problem.percentile), key=per_request)
              for r, cs in region_candidates(problem).items()}
    cheapest = min(choice, key=lambda r: per_request(choice[r]))
    total = 0.0
    for r, c in choice.items():
        share = 1 - problem.min_share * (len(choice) - 1) if r == cheapest else problem.min_share
        total += (k + math.ceil(share * problem.qps / (c.goodput_qps * head) - 1e-9)) * c.annual_cost_usd
    return total


@pytest.fixture(scope="module")
def capstone_budget_between_optimum_and_start():
    """A budget the greedy start breaks and the optimum meets (halfway between their costs)."""
    optimum = mlsysim_opt.solve_capstone(mlsysim_opt.CapstoneProblem(**CAP))
    assert optimum.solve.status is SolveStatus.OPTIMAL
    start = _greedy_start_cost(mlsysim_opt.CapstoneProblem(**CAP))
    assert start > optimum.annual_cost_usd * (1 + 1e-3), "the instance needs a start dearer than the optimum"
    return (optimum.annual_cost_usd + start) / 2


@pytest.mark.parametrize("time_limit", TIME_LIMITS)
def test_time_limited_capstone_respects_the_budget(capstone_budget_between_optimum_and_start, time_limit):
    """The greedy start breaks the budget; the optimum is within it."""
    budget = capstone_budget_between_optimum_and_start
    problem = mlsysim_opt.CapstoneProblem(**{**CAP, "annual_budget_usd": budget})
    r = mlsysim_opt.solve_capstone(problem, time_limit=time_limit, explain=False)
    assert r.solve.status is not SolveStatus.INFEASIBLE, "a time limit proves nothing infeasible"
    if r.solve.status in SOLVED:
        assert r.regions
        assert r.annual_cost_usd <= budget * (1 + TOL), f"reported {r.solve.status.value} over budget:\n{r}"


@pytest.mark.parametrize("time_limit", TIME_LIMITS)
def test_time_limited_synthesis_respects_the_budget(h100_h200, time_limit):
    kw, best = h100_h200
    low, high = best["tco"].best.annual_cost_usd, best["power"].best.annual_cost_usd
    budget = low + 0.5 * (high - low)
    r = mlsysim_opt.synthesize("Llama3_8B", objective="power", budget_usd=budget, time_limit=time_limit, **kw)
    if r.solve.status in SOLVED and r.best is not None:
        assert r.best.annual_cost_usd <= budget * (1 + TOL), f"reported {r.solve.status.value} over budget:\n{r}"


# ----------------------------------------------------------------------------------------------
# B3: thresholds in explanations are exact numbers; fed back, they make the query feasible


_SHOWN = re.compile(r"(?:rise|fall) to \$?(-?\d[\d,]*(?:\.\d+)?(?:[eE][-+]?\d+)?)([kMB](?![A-Za-z]))?")


def _shown(message: str) -> float:
    """The threshold a message shows ("must rise to $6.20M", "to 423 GB", "to 8.68 ms")."""
    match = _SHOWN.search(message)
    assert match, f"no threshold in {message!r}"
    value = float(match.group(1).replace(",", ""))
    return value * {"k": 1e3, "M": 1e6, "B": 1e9, None: 1.0}[match.group(2)]


def _fleet_with_memory(capacity, nodes=2):
    acc = Nodes.DGX_H100.accelerator
    acc = acc.model_copy(update={"memory": acc.memory.model_copy(update={"capacity": capacity.to("byte")})})
    node = Nodes.DGX_H100.model_copy(update={"accelerator": acc})
    return Fleet(name=f"{nodes} nodes, {capacity:~P} each", node=node, count=nodes, fabric=Fabrics.InfiniBand_NDR)


PARALLEL_B3 = dict(model=Models.Llama3_405B, batch_size=64)
"""On two DGX H100 nodes the smallest split needs about 423.1 GB per accelerator."""


def _parallel(capacity=None):
    fleet = _fleet_with_memory(capacity) if capacity is not None else \
        Fleet(name="2 nodes", node=Nodes.DGX_H100, count=2, fabric=Fabrics.InfiniBand_NDR)
    return ParallelismOptimizer(backend="highs").solve(PARALLEL_B3["model"], fleet,
                                                       batch_size=PARALLEL_B3["batch_size"])


SYN_B3 = dict(qps=20.0, prompt_len=256, output_len=128, hardware=["H100", "L4"], precisions=["fp16"], tp_sizes=[1],
              batch_sizes=[8, 32])
FLEET_B3 = [Candidate(name="A", hardware="A", throughput_qps={"default": 10.0}, annual_cost_usd=10.0),
            Candidate(name="B", hardware="B", throughput_qps={"default": 3.0}, annual_cost_usd=3.3)]


def _synth(**kw):
    return mlsysim_opt.synthesize("Llama3_8B", **{**SYN_B3, **kw})


def _capstone(**kw):
    return mlsysim_opt.solve_capstone(mlsysim_opt.CapstoneProblem(**{**CAP, **kw}))


B3_CASES = {
    # name: (infeasible query, constraint, feed the threshold back -> feasible?)
    "synthesize-ttft": (lambda: _synth(ttft="5 ms"), "ttft",
                        lambda x, unit: _synth(ttft=Q_(x, unit)).best is not None),
    "synthesize-budget": (lambda: _synth(ttft="1000 ms", budget_usd=1.0), "budget",
                          lambda x, unit: _synth(ttft="1000 ms", budget_usd=x).best is not None),
    "fleet-budget": (lambda: size_fleet(FLEET_B3, demand_qps=31.0, budget_usd=1.0), "budget",
                     lambda x, unit: size_fleet(FLEET_B3, demand_qps=31.0, budget_usd=x).feasible),
    "capstone-budget": (lambda: _capstone(annual_budget_usd=1000.0), "budget",
                        lambda x, unit: _capstone(annual_budget_usd=x).feasible),
    "capstone-carbon": (lambda: _capstone(carbon_cap_t=1.0), "carbon",
                        lambda x, unit: _capstone(carbon_cap_t=x).feasible),
    "capstone-ttft": (lambda: _capstone(ttft_ms=5.0), "ttft",
                      lambda x, unit: _capstone(ttft_ms=Q_(x, unit).m_as("ms")).feasible),
}


def _relaxation(result, constraint):
    explanation = result.explanation
    assert explanation is not None, f"an infeasible query without an explanation:\n{result}"
    found = [r for r in explanation.relaxations if r.constraint == constraint and r.required is not None]
    assert found, f"no numeric relaxation of {constraint!r} in: {explanation}"
    return found[0]


def _b3_relaxation(case):
    query, constraint, _ = B3_CASES[case]
    with _deadline(DEADLINE_S):
        return _relaxation(query(), constraint)


INFIMA = {"synthesize-ttft"}
"""A latency limit under load whose threshold is an infimum: it is a request's own TTFT, at which no
replica carries any load, so every limit above it is feasible and the threshold itself is not."""


@pytest.mark.parametrize("case", list(B3_CASES))
def test_required_threshold_fed_back_is_feasible(case):
    _, _, feasible = B3_CASES[case]
    rel = _b3_relaxation(case)
    assert isinstance(rel.required, float) and math.isfinite(rel.required)
    if case in INFIMA:
        assert feasible(rel.required * (1 + 1e-3), rel.unit), f"{rel.label} just above {rel.required!r} still fails"
        assert not feasible(rel.required * (1 - 1e-3), rel.unit), f"{rel.label} below {rel.required!r} is feasible"
        return
    assert feasible(rel.required, rel.unit), f"{rel.label} set to the required {rel.required!r} {rel.unit} still fails"


@pytest.mark.parametrize("case", list(B3_CASES))
def test_shown_threshold_fed_back_is_feasible(case):
    _, _, feasible = B3_CASES[case]
    rel = _b3_relaxation(case)
    shown = _shown(rel.message)
    assert feasible(shown, rel.unit), (f"{rel.message!r}: the limit shown ({shown:g} {rel.unit}) still fails; "
                                       f"{rel.required!r} is needed")


def test_parallelism_explanation_gives_the_memory_as_a_number():
    r = _parallel()
    assert r.best_config is None and r.status == "infeasible"
    explanation = getattr(r, "explanation", None)
    assert explanation is not None, f"only text explains it: {r.infeasibility_reason!r}"
    rel = next((x for x in explanation.relaxations if x.required is not None), None)
    assert rel is not None, str(explanation)
    again = _parallel(Q_(rel.required, rel.unit))
    assert again.best_config is not None, f"memory {rel.required!r} {rel.unit} per accelerator still fails"


def test_parallelism_memory_shown_fed_back_fits():
    r = _parallel()
    assert r.best_config is None and r.infeasibility_reason
    shown = _shown(r.infeasibility_reason)
    unit = re.search(r"(?:rise|fall) to \S+ (\w+)", r.infeasibility_reason).group(1)
    again = _parallel(Q_(shown, unit))
    assert again.best_config is not None, (f"{r.infeasibility_reason!r}: {shown:g} {unit} per accelerator "
                                           "still does not fit")


# ----------------------------------------------------------------------------------------------
# B4: no relaxation asks for zero demand


B4_CASES = {
    "synthesize-ttft-and-budget": lambda: _synth(ttft="1 ms", budget_usd=1.0),
    "synthesize-budget": lambda: _synth(ttft="1000 ms", budget_usd=1.0),
    "fleet-budget": lambda: size_fleet(FLEET_B3, demand_qps=31.0, budget_usd=1.0),
    "fleet-budget-and-power": lambda: size_fleet(
        [Candidate(name="A", hardware="A", throughput_qps={"default": 10.0}, annual_cost_usd=10.0, power_kw=1.0),
         Candidate(name="B", hardware="B", throughput_qps={"default": 3.0}, annual_cost_usd=3.3, power_kw=0.5)],
        demand_qps=31.0, budget_usd=1.0, power_cap_kw=0.1),
    "capstone-budget-and-carbon": lambda: _capstone(annual_budget_usd=1.0, carbon_cap_t=0.001),
}


@pytest.mark.parametrize("case", list(B4_CASES))
def test_no_relaxation_asks_for_zero_demand(case):
    with _deadline(DEADLINE_S):
        result = B4_CASES[case]()
    explanation = result.explanation
    assert explanation is not None
    for rel in [*explanation.relaxations, *explanation.joint]:
        if "demand" in rel.constraint and rel.required is not None:
            assert rel.required > 1e-6 * rel.limit, f"asks to serve nothing: {rel.message}"


# ----------------------------------------------------------------------------------------------
# B5: maximizing throughput buys no idle replicas


def _two_class_candidates(**extra_a):
    return [Candidate(name="A", hardware="A", throughput_qps={"a": 10.0}, annual_cost_usd=1.0, power_kw=0.1,
                      **extra_a),
            Candidate(name="B", hardware="B", throughput_qps={"b": 1.0}, annual_cost_usd=2.0, power_kw=1.0)]


B5_CASES = {
    "availability": dict(availability={"A": 100, "B": 4}),
    "power-cap": dict(power_cap_kw=4.95),
    "budget": dict(budget_usd=9.5),
}


@pytest.mark.parametrize("case", list(B5_CASES))
def test_max_throughput_buys_no_idle_replicas(case):
    r = size_fleet(_two_class_candidates(), objective="max_throughput", class_shares={"a": 1.0, "b": 1.0},
                   **B5_CASES[case])
    assert r.solve.status is SolveStatus.OPTIMAL
    assert r.total_qps == pytest.approx(8.0, rel=1e-6)
    for a in r.allocations:
        load = sum(v / a.candidate.qps(k) for k, v in a.served_qps.items())
        assert load <= a.replicas * (1 + 1e-7)
        assert a.replicas <= math.ceil(load - 1e-7), (f"{a.replicas} x {a.candidate.name} bought for a load of "
                                                      f"{load:g} replicas:\n{r}")


# ----------------------------------------------------------------------------------------------
# B6: a mixed fleet minimizes the objective asked for


@pytest.mark.parametrize("objective", ["carbon", "power"])
def test_mixed_fleet_minimizes_the_objective(objective):
    r = mlsysim_opt.synthesize("Llama3_8B", objective=objective, allow_mix=True, **dict(B1, hardware=["H100", "MI300X"]))
    assert r.best is not None and r.mix is not None and r.mix.feasible
    total = {"carbon": r.mix.total_carbon_t, "power": r.mix.total_power_kw}[objective]
    homogeneous = getattr(r.best, OBJECTIVE_ATTR[objective])
    assert total <= homogeneous * (1 + TOL), (f"the mix has {total:g} {objective}, more than the best single-type "
                                              f"design ({homogeneous:g}), which is itself a mix:\n{r.mix}")
    assert r.mix.total_qps >= B1["qps"] * (1 - 1e-7)


# ----------------------------------------------------------------------------------------------
# B7: hardware records that are not registered


B7 = dict(B1, hardware=None)


def _synth_on(hw):
    return mlsysim_opt.synthesize("Llama3_8B", **{**B7, "hardware": [hw]})


@pytest.fixture(scope="module")
def h100_answer():
    return _synth_on(Hardware.H100)


@pytest.mark.parametrize("build", ["model_copy", "constructor"])
def test_unregistered_accelerator_synthesizes(h100_answer, build):
    if build == "model_copy":
        mine = Hardware.H100.model_copy(update={"name": "MyGPU"})
    else:
        mine = HardwareNode(**{**dict(Hardware.H100), "name": "MyGPU"})
    r = _synth_on(mine)
    assert r.best is not None, str(r)
    assert r.best.config.hardware == "MyGPU"
    assert r.best.annual_cost_usd == pytest.approx(h100_answer.best.annual_cost_usd, rel=1e-9)
    assert r.best.replicas == h100_answer.best.replicas


@pytest.mark.parametrize("name", ["PricierH100", None])
def test_accelerator_is_priced_from_its_record(h100_answer, name):
    update = {"unit_cost": Hardware.H100.unit_cost * 2}
    if name is not None:
        update["name"] = name
    pricier = Hardware.H100.model_copy(update=update)
    r = _synth_on(pricier)
    assert r.best is not None, str(r)
    assert r.best.annual_cost_usd > h100_answer.best.annual_cost_usd * 1.05, (
        "doubling the purchase price left the annual cost unchanged: the record was looked up by name")


if __name__ == WORKER_NAME:
    _serve(globals()["WORKER_CONN"])
