"""Batching and queueing (Wall 4): ``TailLatencyModel`` (M/M/c and M/D/c), ``ContinuousBatchingModel``
(static vs paged KV allocation) and ``BatchingOptimizer`` (the batch size that meets a p99 SLA).

Equations: models/queueing.py, models/paged_kv.py and models/serving.py."""
from __future__ import annotations

import dataclasses
import math
import warnings
from functools import lru_cache
from statistics import NormalDist
from typing import Optional

import numpy as np
import pint

from .. import inputs as _in
from ..errors import InputError, UnknownNameError
from ..precision import PrecisionFallbackWarning
from ..results import Result
from ..units import as_quantity, quantity_factory, sheet_quantity, unit_factor, ureg
from .quantities import input_quantity
from .serving import DEFAULT_PREFILL_CHUNK_TOKENS, precision_fields, serving_case, serving_function
from .loaded import LoadedReplicaResult, arrival_rate_per_second, loaded_replica, text_with_load

_ms = quantity_factory("ms")
_per_s = quantity_factory("1/s")
_tok_s = quantity_factory("token/s")
_req_s = quantity_factory("request/s")

SERVICE_CV2 = {"exponential": 1.0, "deterministic": 0.0}
"""Squared coefficient of variation of the service time of each distribution."""
DEFAULT_MAX_BATCH_SIZE = 256
"""Scheduler limit on concurrent requests: vLLM's ``max_num_seqs`` default."""
DEFAULT_PAGE_SIZE = 16
"""KV block size in tokens: vLLM's default (Kwon et al. 2023)."""
QUEUE_OUTPUTS = ("utilization", "offered_load", "mean_wait", "wait_quantile", "mean_sojourn",
                 "sojourn_quantile_deterministic")
LOAD_OUTPUTS = ("offered_load", "utilization")


@lru_cache(maxsize=None)
def _queue_function():
    from ..models import queueing
    return queueing.sheet.compiled(QUEUE_OUTPUTS)


@lru_cache(maxsize=None)
def _load_function():
    """Offered load and utilisation alone: whether the queue is stable decides what else to evaluate."""
    from ..models import queueing
    return queueing.sheet.compiled(LOAD_OUTPUTS)


@lru_cache(maxsize=None)
def _tail_function():
    from ..models import queueing
    return queueing.sheet.compiled(("sojourn_tail_exponential",))


@lru_cache(maxsize=None)
def _formation_function():
    from ..models import queueing
    return queueing.sheet.compiled(("batch_formation_wait_quantile", "batch_formation_wait_mean"))


@lru_cache(maxsize=None)
def _paged_function():
    from ..models import paged_kv
    return paged_kv.sheet.compiled(tuple(paged_kv.sheet.definitions))


def _erlang_c(servers, offered_load):
    from ..models.queueing import erlang_c
    return erlang_c(servers, offered_load)


def _rate(value, field: str) -> float:
    rate = float(as_quantity(value, "1/s", field, example="10 / s").magnitude)
    if not rate >= 0 or math.isinf(rate):
        raise InputError(field, value, "must be a finite rate >= 0 requests per second", "e.g. 10 (per second)")
    return rate


def _duration(value, field: str, unit: str) -> float:
    seconds = float(as_quantity(value, unit, field, example=f"20 {unit}").to("s").magnitude)
    if not seconds > 0 or math.isinf(seconds):
        raise InputError(field, value, "must be a finite duration > 0", f"e.g. Q_('20 {unit}')")
    return seconds


def _seconds_in_ms(seconds: float) -> pint.Quantity:
    """A duration ``_duration`` returned (seconds), reported in ms."""
    return _ms(seconds * unit_factor("s", "ms"))


# ------------------------------------------------------------------------------------------------
# Tail latency


class TailLatencyResult(Result):
    """Waiting and response-time statistics of a c-server queue."""

    arrival_rate: pint.Quantity
    service_time: pint.Quantity
    servers: int
    service_distribution: str
    offered_load: float
    utilization: float
    wait_probability: float
    stable: bool
    mean_wait: pint.Quantity
    p50_wait: pint.Quantity
    p99_wait: pint.Quantity
    mean_latency: pint.Quantity
    p50_latency: pint.Quantity
    p99_latency: pint.Quantity
    method: str

    @property
    def rho(self) -> float:
        return self.utilization


def _sojourn_quantiles_exponential(values: dict, quantiles, upper: np.ndarray) -> np.ndarray:
    """Invert the exact M/M/c sojourn tail P(T > x) = 1 - q by bisection (the tail is decreasing)."""
    f = _tail_function()
    target = 1.0 - np.asarray(quantiles, dtype=float)
    lo, hi = np.zeros_like(target), np.asarray(upper, dtype=float).copy()
    for _ in range(200):  # grow the bracket until the tail is below the target
        tail = f.vector(**values, latency_threshold=hi)["sojourn_tail_exponential"]
        if np.all(tail <= target):
            break
        hi = np.where(tail > target, hi * 2, hi)
    for _ in range(100):
        mid = (lo + hi) / 2
        tail = f.vector(**values, latency_threshold=mid)["sojourn_tail_exponential"]
        lo, hi = np.where(tail > target, mid, lo), np.where(tail > target, hi, mid)
    return (lo + hi) / 2


class TailLatencyModel:
    """c servers fed by Poisson arrivals: M/M/c (exact, Erlang C) or M/D/c (Allen-Cunneen).

    ``service_time`` is the mean service time (a quantity, a string such as ``"10 ms"`` or a number of
    seconds); ``arrival_rate_qps`` is in requests per second. An unstable queue (utilisation >= 1)
    returns ``stable=False`` with infinite waits."""

    def solve(self, arrival_rate_qps, service_time, servers=1,
              service_distribution: str = "exponential") -> TailLatencyResult:
        lam = _rate(arrival_rate_qps, "arrival_rate_qps")
        t_s = _duration(service_time, "service_time", "s")
        c = _in.positive_int(servers, "servers")
        dist = service_distribution.lower() if isinstance(service_distribution, str) else service_distribution
        if dist not in SERVICE_CV2:
            raise UnknownNameError("service_distribution", str(service_distribution), SERVICE_CV2)
        load = _load_function()(arrival_rate=lam, service_time=t_s, servers=float(c))
        rho = float(load["utilization"])
        stable = rho < 1.0
        method = ("M/M/c: Erlang C, exact waiting and response-time distributions" if dist == "exponential" else
                  "M/D/c: Allen-Cunneen approximation (Erlang C wait scaled by (1 + 0)/2; exact mean for M/D/1), "
                  "exponential wait tail; deterministic service added to each quantile")
        if not stable:
            inf = _ms(math.inf)
            return TailLatencyResult(
                arrival_rate=_per_s(lam), service_time=input_quantity(t_s, "service_time", "ms"), servers=c,
                service_distribution=dist, offered_load=float(load["offered_load"]), utilization=rho,
                wait_probability=1.0, stable=False,
                mean_wait=inf, p50_wait=inf, p99_wait=inf, mean_latency=inf, p50_latency=inf, p99_latency=inf,
                method=method + f"; unstable: arrivals ({lam:g}/s) reach the capacity ({c / t_s:g}/s)")
        quantiles = np.array([0.5, 0.99])
        values = dict(arrival_rate=lam, service_time=t_s, servers=float(c),
                      wait_probability=float(_erlang_c(c, load["offered_load"])), arrival_cv2=1.0,
                      service_cv2=SERVICE_CV2[dist])
        out = _queue_function().vector(**values, quantile=quantiles)
        waits = out["wait_quantile"]
        from ..models.queueing import sheet as queueing
        if dist == "deterministic":
            sojourn = [sheet_quantity(queueing, "sojourn_quantile_deterministic", x, "ms")
                       for x in out["sojourn_quantile_deterministic"]]
        else:   # the exact tail inverted: the quantiles are values of its latency_threshold input
            upper = waits + t_s * (1 + np.log(1 / (1 - quantiles)))
            sojourn = [input_quantity(x, "latency_threshold", "ms")
                       for x in _sojourn_quantiles_exponential(values, quantiles, upper)]
        return TailLatencyResult(
            arrival_rate=_per_s(lam), service_time=input_quantity(t_s, "service_time", "ms"), servers=c,
            service_distribution=dist, offered_load=float(out["offered_load"][0]),
            utilization=float(out["utilization"][0]),
            wait_probability=values["wait_probability"], stable=True,
            mean_wait=sheet_quantity(queueing, "mean_wait", out["mean_wait"][0], "ms"),
            p50_wait=sheet_quantity(queueing, "wait_quantile", waits[0], "ms"),
            p99_wait=sheet_quantity(queueing, "wait_quantile", waits[1], "ms"),
            mean_latency=sheet_quantity(queueing, "mean_sojourn", out["mean_sojourn"][0], "ms"),
            p50_latency=sojourn[0], p99_latency=sojourn[1], method=method)


# ------------------------------------------------------------------------------------------------
# Continuous batching: static vs paged KV allocation


class ContinuousBatchingResult(Result):
    """How many requests fit with static and with paged KV allocation, and what each decodes."""

    model: str
    hardware: str
    precision: str
    weight_precision: str
    compute_precision: str
    kv_precision: str
    max_seq_len: int
    mean_request_tokens: int
    page_size: int
    max_batch_size: int
    kv_budget: pint.Quantity
    kv_bytes_per_token: pint.Quantity
    static_max_requests: int
    paged_max_requests: int
    static_fragmentation: float
    paged_fragmentation: float
    static_wasted_memory: pint.Quantity
    paged_wasted_memory: pint.Quantity
    static_itl: pint.Quantity
    paged_itl: pint.Quantity
    static_throughput: pint.Quantity
    paged_throughput: pint.Quantity
    speedup: float
    feasible: bool
    infeasibility_reason: Optional[str] = None
    load: Optional[LoadedReplicaResult] = None
    """The paged replica under an offered load (``solve(..., arrival_rate=...)``), else None."""

    @property
    def throughput_speedup(self) -> float:
        return self.speedup

    def __str__(self) -> str:
        return text_with_load(self)


class ContinuousBatchingModel:
    """Static KV reservation (``max_seq_len`` tokens per request) vs paged allocation (PagedAttention,
    Kwon et al. 2023): concurrency, fragmentation and the decode throughput of each.

    ``mean_request_tokens`` is the mean number of tokens a request holds (default ``max_seq_len // 2``);
    throughput is the decode step of all admitted requests at that mean context.

    ``arrival_rate`` (requests per second; a number, a quantity or a string such as ``"5 /s"``) adds
    ``load``: the paged replica (``paged_max_requests`` batch slots, each reserving the paged
    allocation of a mean request) under that Poisson load, for requests of ``prompt_len`` prompt and
    ``output_len`` generated tokens (default: ``mean_request_tokens`` split in two, the output
    ``mean_request_tokens // 2``). ``load`` is None when no request fits."""

    def solve(self, model, hardware, max_seq_len, mean_request_tokens=None,
              max_batch_size=DEFAULT_MAX_BATCH_SIZE, page_size=DEFAULT_PAGE_SIZE, precision="fp16",
              efficiency=None, kv_precision=None,
              prefill_chunk_tokens=DEFAULT_PREFILL_CHUNK_TOKENS, arrival_rate=None, prompt_len=None,
              output_len=None, compute_precision=None) -> ContinuousBatchingResult:
        s_max = _in.positive_int(max_seq_len, "max_seq_len")
        s_mean = s_max // 2 if mean_request_tokens is None else _in.positive_int(mean_request_tokens,
                                                                                  "mean_request_tokens")
        if s_mean > s_max:
            raise InputError("mean_request_tokens", s_mean, f"must be <= max_seq_len ({s_max})",
                             "a request cannot hold more tokens than its longest context")
        b_max = _in.positive_int(max_batch_size, "max_batch_size")
        page = _in.positive_int(page_size, "page_size")
        under_load = arrival_rate is not None
        if under_load:
            arrival_rate_per_second(arrival_rate)
            prompt, output = _request_split(s_mean, s_max, prompt_len, output_len)
        # Decode at the mean context: prompt = mean tokens held, no further growth.
        case = serving_case(model, hardware, s_max, b_max, precision, efficiency, kv_precision,
                            prompt_len=s_mean, output_len=0, prefill_chunk_tokens=prefill_chunk_tokens,
                            compute_precision=compute_precision)
        v = dict(case.values, max_context=float(s_max), mean_request_tokens=float(s_mean),
                 page_size=float(page), max_batch_size=float(b_max))
        alloc = _paged_function()(**v)
        n_static = max(0, int(alloc["static_requests"]))
        n_paged = max(0, int(alloc["paged_requests"]))
        from ..models.memory import sheet as memory
        from ..models.serving import sheet as serving
        # the case's batch is the scheduler limit, so this is the budget the allocators divide
        budget = sheet_quantity(serving, "kv_budget", serving_function()(**v)["kv_budget"], "GB")
        per_token = sheet_quantity(memory, "kv_bytes_per_token", _kv_bytes_per_token(v))

        def kv_of(tokens) -> pint.Quantity:   # the KV cache of ``tokens`` tokens, in GB
            return (per_token * ureg.Quantity(tokens, "token")).to("GB")
        itl_static, thr_static = self._decode(v, n_static)
        itl_paged, thr_paged = self._decode(v, n_paged)
        if thr_static > 0:
            speedup = thr_paged / thr_static
        else:
            speedup = math.inf if thr_paged > 0 else 1.0
        feasible = n_paged >= 1
        reason = None
        if not feasible:
            reason = (f"{case.hardware.name} has {budget.m:.2f} GB left for the KV cache after weights and "
                      f"activations; one request of {s_mean} tokens needs {kv_of(s_mean).m:.3f} GB")
        tokens_alloc = alloc["paged_tokens_per_request"]
        load = None
        if under_load and feasible:
            # the replica it describes: paged_max_requests slots, each reserving a paged request's blocks
            with warnings.catch_warnings():   # a precision fallback was reported for ``case`` above
                warnings.simplefilter("ignore", PrecisionFallbackWarning)
                replica = serving_case(model, hardware, s_max, n_paged, precision, efficiency, kv_precision,
                                       prompt_len=prompt, output_len=output,
                                       prefill_chunk_tokens=prefill_chunk_tokens,
                                       compute_precision=compute_precision)
            replica = dataclasses.replace(replica, values=dict(replica.values, reserved_context=float(tokens_alloc)))
            load = loaded_replica(replica, arrival_rate)
        return ContinuousBatchingResult(
            model=case.model.name, hardware=case.hardware.name, **precision_fields(case),
            max_seq_len=s_max, mean_request_tokens=s_mean, page_size=page, max_batch_size=b_max,
            kv_budget=budget, kv_bytes_per_token=per_token.to("byte"),
            static_max_requests=n_static, paged_max_requests=n_paged,
            static_fragmentation=float(alloc["static_fragmentation"]),
            paged_fragmentation=float(alloc["paged_fragmentation"]),
            static_wasted_memory=kv_of(n_static * (s_max - s_mean)),
            paged_wasted_memory=kv_of(n_paged * (tokens_alloc - s_mean)),
            static_itl=sheet_quantity(serving, "itl", itl_static, "ms"),
            paged_itl=sheet_quantity(serving, "itl", itl_paged, "ms"),
            static_throughput=_tok_s(thr_static), paged_throughput=_tok_s(thr_paged),
            speedup=float(speedup), feasible=feasible, infeasibility_reason=reason, load=load)

    @staticmethod
    def _decode(values: dict, requests: int) -> tuple[float, float]:
        if requests < 1:
            return math.inf, 0.0
        out = serving_function()(**dict(values, batch_size=float(requests)))
        return out["itl"], out["decode_throughput"]


def _request_split(mean_tokens: int, max_tokens: int, prompt_len, output_len) -> tuple[int, int]:
    """Prompt and output tokens of the requests of a loaded replica: given, or ``mean_tokens`` split in
    two (the output ``mean_tokens // 2``); together at most ``max_tokens``."""
    output = mean_tokens // 2 if output_len is None else _in.positive_int(output_len, "output_len")
    prompt = mean_tokens - mean_tokens // 2 if prompt_len is None else _in.positive_int(prompt_len, "prompt_len")
    if output < 1:
        raise InputError("output_len", output, "must be >= 1 generated token for the latency under load",
                         "pass output_len, or raise mean_request_tokens to 2 or more")
    if prompt + output > max_tokens:
        raise InputError("prompt_len", prompt, f"plus output_len ({output}) must fit max_seq_len ({max_tokens})",
                         "lower prompt_len or output_len, or raise max_seq_len")
    return prompt, output


def _kv_bytes_per_token(values: dict) -> float:
    from ..models import memory
    return float(memory.sheet.compiled(("kv_bytes_per_token",))(**values)["kv_bytes_per_token"])


# ------------------------------------------------------------------------------------------------
# Batching optimizer


class BatchingResult(Result):
    """The batch size that meets a p99 latency SLA at an offered load, and the latency/throughput front."""

    model: str
    hardware: str
    precision: str
    weight_precision: str
    compute_precision: str
    kv_precision: str
    seq_len: int
    prompt_len: int
    output_len: int
    arrival_rate: pint.Quantity
    sla_latency: pint.Quantity
    replicas: int
    best_batch_size: Optional[int]
    p99_latency: pint.Quantity
    batch_service_time: pint.Quantity
    utilization: float
    max_throughput: pint.Quantity
    max_request_rate: pint.Quantity
    slo_headroom_ratio: float
    is_feasible: bool
    infeasibility_reason: Optional[str] = None
    total_searched: int
    pareto_front: list[dict]
    queueing_model: str


QUEUEING_MODEL = (
    "static batching: requests wait for a full batch of b (Poisson arrivals, so the first request of a "
    "batch waits a Gamma(b-1, lambda) time), batches queue for the replicas as a GI/D/c queue (Erlang-b "
    "inter-batch times, c_a^2 = 1/b; deterministic service t_b = TTFT + output_len x ITL) with the "
    "Allen-Cunneen wait; p99 = p99 formation wait + p99 queue wait + t_b, an upper bound (sum of quantiles)")


class BatchingOptimizer:
    """Exhaustive search over batch sizes 1..``max_batch_size`` for the batch that meets a p99 SLA.

    ``best_batch_size`` is the batch that meets the SLA (and fits in memory, and keeps the queue
    stable) with the most capacity headroom, i.e. the lowest utilisation at the offered load; ties go
    to the smaller batch. ``max_throughput`` is the capacity at that batch (tokens/s; requests/s in
    ``max_request_rate``), not the offered load. ``pareto_front`` lists the batch sizes that are not
    dominated in (lower p99, higher throughput), each with ``meets_sla``."""

    def solve(self, model, hardware, seq_len, arrival_rate_qps, sla_latency_ms, precision="fp16", efficiency=None,
              output_len=None, max_batch_size=DEFAULT_MAX_BATCH_SIZE, replicas=1, prompt_len=None,
              kv_precision=None, compute_precision=None) -> BatchingResult:
        lam = _rate(arrival_rate_qps, "arrival_rate_qps")
        if lam <= 0:
            raise InputError("arrival_rate_qps", arrival_rate_qps, "must be > 0 requests per second",
                             "batches only form when requests arrive")
        sla = _duration(sla_latency_ms, "sla_latency_ms", "ms")
        b_max = _in.positive_int(max_batch_size, "max_batch_size")
        c = _in.positive_int(replicas, "replicas")
        case = serving_case(model, hardware, seq_len, 1, precision, efficiency, kv_precision,
                            prompt_len=prompt_len, output_len=output_len, compute_precision=compute_precision)
        if case.output_len < 1:
            raise InputError("output_len", case.output_len, "must be >= 1 generated token",
                             "lower prompt_len or raise seq_len")
        batches = np.arange(1, b_max + 1, dtype=float)
        serve = serving_function().vector(**dict(case.values, batch_size=batches))
        t_b = serve["request_latency"]
        fits = serve["memory_required"] <= case.values["memory_capacity"]
        # Batches as the service unit: arrival rate lambda / b, deterministic service t_b.
        batch_rate = lam / batches
        load = _load_function().vector(arrival_rate=batch_rate, service_time=t_b, servers=float(c))
        stable = load["utilization"] < 1
        p_wait = _erlang_c(c, load["offered_load"])
        queue = _queue_function().vector(arrival_rate=batch_rate, service_time=t_b, servers=float(c),
                                         wait_probability=p_wait, arrival_cv2=1 / batches, service_cv2=0.0,
                                         quantile=0.99)
        formation = _formation_function().vector(batch_size=batches, arrival_rate=lam,
                                                 normal_quantile=NormalDist().inv_cdf(0.99))
        p99 = np.where(stable, formation["batch_formation_wait_quantile"] + queue["sojourn_quantile_deterministic"],
                       np.inf)
        utilization = queue["utilization"]
        capacity_rps = c * batches / t_b
        tokens_s = capacity_rps * case.output_len
        usable = fits & stable
        meets = usable & (p99 <= sla)
        front = _pareto(batches, p99, tokens_s, usable, meets)
        common = dict(model=case.model.name, hardware=case.hardware.name, **precision_fields(case),
                      seq_len=case.seq_len,
                      prompt_len=case.prompt_len, output_len=case.output_len, arrival_rate=_per_s(lam),
                      sla_latency=_seconds_in_ms(sla), replicas=c, total_searched=b_max, pareto_front=front,
                      queueing_model=QUEUEING_MODEL)
        if np.any(meets):
            pick = int(np.flatnonzero(meets)[np.argmin(utilization[meets])])  # first minimum = smaller batch
            return BatchingResult(
                **common, best_batch_size=pick + 1, p99_latency=_p99_ms(p99[pick]),
                batch_service_time=_service_ms(t_b[pick]), utilization=float(utilization[pick]),
                max_throughput=_tok_s(tokens_s[pick]), max_request_rate=_req_s(capacity_rps[pick]),
                slo_headroom_ratio=float(p99[pick] / sla), is_feasible=True)
        reason = _why_infeasible(lam, sla, fits, stable, usable, p99, capacity_rps, c)
        best = int(np.argmin(np.where(usable, p99, np.inf))) if np.any(usable) else None
        return BatchingResult(
            **common, best_batch_size=None,
            p99_latency=_p99_ms(p99[best] if best is not None else math.inf),
            batch_service_time=_service_ms(t_b[best] if best is not None else math.inf),
            utilization=float(utilization[best]) if best is not None else math.inf,
            max_throughput=_tok_s(0.0), max_request_rate=_req_s(0.0),
            slo_headroom_ratio=float(p99[best] / sla) if best is not None else math.inf,
            is_feasible=False, infeasibility_reason=reason)


def _p99_ms(value) -> pint.Quantity:
    """A p99 bound: formation wait plus queue sojourn, both in the unit of the sheet's sojourn quantile."""
    from ..models.queueing import sheet
    return sheet_quantity(sheet, "sojourn_quantile_deterministic", value, "ms")


def _service_ms(value) -> pint.Quantity:
    """A batch's service time: the serving sheet's request latency."""
    from ..models.serving import sheet
    return sheet_quantity(sheet, "request_latency", value, "ms")


def _pareto(batches, p99, throughput, usable, meets) -> list[dict]:
    """Points not dominated in (lower p99, higher throughput), sorted by batch size."""
    idx = np.flatnonzero(usable)
    order = idx[np.lexsort((-throughput[idx], p99[idx]))]  # by p99, then by throughput descending
    keep, best = [], -math.inf
    for i in order:
        if throughput[i] > best:
            keep.append(i)
            best = throughput[i]
    return [{"batch_size": int(batches[i]), "p99_latency": _p99_ms(p99[i]),
             "throughput": _tok_s(float(throughput[i])), "meets_sla": bool(meets[i])} for i in sorted(keep)]


def _replicas_needed(demand: float, per_replica: float) -> int:
    """The fleet sheet's replica count for ``demand`` at full load (no headroom, no spares)."""
    from ..models import fleet
    out = fleet.sheet.compiled(["replicas_needed"])(demand=demand, replica_capacity=per_replica, headroom=1.0,
                                                     spares=0.0)
    return int(out["replicas_needed"])


def _why_infeasible(lam, sla, fits, stable, usable, p99, capacity_rps, c) -> str:
    if not np.any(fits):
        return "not even a batch of 1 fits in memory at this seq_len and precision"
    if not np.any(fits & stable):
        top = float(np.max(np.where(fits, capacity_rps, 0.0)))
        need = _replicas_needed(lam, top / c) if top > 0 else math.inf
        return (f"the offered load ({lam:g} requests/s) exceeds the capacity of every batch size that fits "
                f"(at most {top:.3g} requests/s with {c} replica(s)); about {need} replicas are needed")
    best = int(np.argmin(np.where(usable, p99, np.inf)))
    return (f"no batch size meets the p99 SLA of {_seconds_in_ms(sla).m:g} ms; the lowest p99 is "
            f"{_p99_ms(p99[best]).m:.4g} ms at batch {best + 1}")
