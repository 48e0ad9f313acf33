"""A small discrete-event simulator of disaggregated serving, written to check the ``serving_disagg``
sheet (tests/test_serving_disagg.py). It shares only the per-request costs with the sheet (the
prefill time, the KV transfer time, the decode step of n requests), which the caller takes from the
serving_tp sheet and an independent alpha-beta computation; none of the sheet's queueing formulas.

What it simulates, and nothing more:

* Poisson arrivals at ``arrival_rate`` (seeded).
* A prefill replica: one FCFS server with a deterministic service (one prompt at a time), then its
  link: a second FCFS server with a deterministic service (the KV transfer). The link works while
  the replica prefills the next prompt. A request's first token is reported when its KV has
  arrived at the decode replica (conservative: the sheet's TTFT includes the transfer).
* A decode replica: ``slots`` batch slots. Iterations run back to back while any request decodes;
  each is one decode step of every request in flight and lasts ``decode_step[n]`` for n of them.
  A request whose KV has arrived takes a free slot at the next iteration boundary or waits FCFS for
  one; it then takes part in ``output_tokens`` iterations, whose lengths are its inter-token gaps.

Runs of identical iterations (no admission, no completion in between) are advanced in one step.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from replica_simulator import weighted_quantile


def deterministic_fifo(arrivals: np.ndarray, service: float) -> np.ndarray:
    """Departure times of one FCFS server with a constant service time, exactly (Lindley):
    d_i = max(a_i, d_(i-1)) + s, which unrolls to d_i = (i + 1) s + max_(j <= i) (a_j - j s)."""
    index = np.arange(len(arrivals), dtype=float)
    return (index + 1) * service + np.maximum.accumulate(arrivals - index * service)


def poisson_arrivals(rate: float, requests: int, seed: int) -> np.ndarray:
    if rate <= 0 or requests < 1:
        raise ValueError("the arrival rate and the number of requests must be positive")
    return np.cumsum(np.random.default_rng(seed).exponential(1.0 / rate, requests))


def prefill_replica(arrivals: np.ndarray, prefill_time: float, transfer_time: float) -> np.ndarray:
    """Times at which each request's KV has reached the decode replica."""
    return deterministic_fifo(deterministic_fifo(arrivals, prefill_time), transfer_time)


@dataclass(frozen=True)
class DecodeResult:
    slot_wait: np.ndarray         # s, from the first iteration boundary after the KV arrived to taking a slot
    boundary_wait: np.ndarray     # s, from the KV's arrival to that boundary (0 when the replica was idle)
    found_full: np.ndarray        # every slot was taken when the KV arrived
    itl_values: np.ndarray        # distinct iteration lengths seen by decoding requests (s)
    itl_weights: np.ndarray       # tokens generated in iterations of each length
    mean_decoding: float          # time-average of the requests decoding

    @property
    def mean_itl(self) -> float:
        return float(np.average(self.itl_values, weights=self.itl_weights))

    def itl_quantile(self, q: float) -> float:
        return weighted_quantile(self.itl_values, self.itl_weights, q)


def decode_replica(arrivals: np.ndarray, *, slots: int, output_tokens: int, decode_step, warmup: float = 0.1,
                   max_loop_turns: int = 5_000_000) -> DecodeResult:
    """Serve requests whose KV arrives at the (sorted) ``arrivals``; ``decode_step[n]`` is the
    iteration time with n requests decoding, n = 0..slots. Statistics skip the first ``warmup``
    fraction of the requests (and the iterations before the first counted arrival)."""
    decode_step = np.asarray(decode_step, dtype=float)
    if decode_step.shape != (slots + 1,) or slots < 1 or output_tokens < 1:
        raise ValueError("decode_step must hold slots + 1 values; slots and output_tokens must be positive")
    requests = len(arrivals)
    first_counted = int(warmup * requests)
    t_warm = arrivals[first_counted]
    boundary = np.full(requests, np.nan)
    admitted = np.full(requests, np.nan)
    found_full = np.zeros(requests, dtype=bool)
    itl: dict[float, float] = {}
    slot_queue: deque = deque()
    finishing: deque = deque()    # [index of a request's last iteration, requests], increasing
    t, k, nxt, decoding = 0.0, 0, 0, 0
    run_start, run_length = 0.0, math.inf     # the last run of iterations, to place arrivals within it
    decoding_time, turns, done = 0.0, 0, 0
    while done < requests:
        turns += 1
        if turns > max_loop_turns:
            raise RuntimeError(f"simulation exceeded {max_loop_turns} loop turns")
        while nxt < requests and arrivals[nxt] <= t:
            a = arrivals[nxt]
            # The first boundary at or after the arrival, inside the run that just ended.
            boundary[nxt] = t if run_length == math.inf else min(
                t, run_start + math.ceil((a - run_start) / run_length) * run_length)
            slot_queue.append(nxt)
            nxt += 1
        while slot_queue and decoding < slots:
            rid = slot_queue.popleft()
            admitted[rid] = t
            decoding += 1
            done += 1
            last = k + output_tokens - 1
            if finishing and finishing[-1][0] == last:
                finishing[-1][1] += 1
            else:
                finishing.append([last, 1])
        if decoding == 0:         # idle: the next arrival starts an iteration at once
            t, run_length = arrivals[nxt], math.inf
            continue
        length = decode_step[decoding]
        count = finishing[0][0] - k + 1
        if decoding < slots and nxt < requests:   # an arrival joins at the boundary after it
            count = min(count, max(1, math.ceil((arrivals[nxt] - t) / length)))
        else:                     # full: arrivals in this run find every slot taken
            stop = np.searchsorted(arrivals, t + length * count, side="right")
            found_full[nxt:stop] = decoding == slots
        if t >= t_warm:
            itl[length] = itl.get(length, 0.0) + decoding * count
            decoding_time += decoding * length * count
        run_start, run_length = t, length
        t += length * count
        k += count
        while finishing and finishing[0][0] == k - 1:
            decoding -= finishing.popleft()[1]
    # Let the last admitted requests finish (their tokens count).
    while finishing:
        length = decode_step[decoding]
        count = finishing[0][0] - k + 1
        itl[length] = itl.get(length, 0.0) + decoding * count
        decoding_time += decoding * length * count
        t += length * count
        k += count
        while finishing and finishing[0][0] == k - 1:
            decoding -= finishing.popleft()[1]
    values = np.array(sorted(itl))
    counted = slice(first_counted, None)
    return DecodeResult(slot_wait=(admitted - boundary)[counted], boundary_wait=(boundary - arrivals)[counted],
                        found_full=found_full[counted], itl_values=values,
                        itl_weights=np.array([itl[v] for v in values]), mean_decoding=decoding_time / (t - t_warm))


@dataclass(frozen=True)
class PoolResult:
    ttft: np.ndarray              # s, arrival to the KV at the decode replica, per counted request
    decode: DecodeResult

    def ttft_quantile(self, q: float) -> float:
        return float(np.quantile(self.ttft, q))


def simulate(*, arrival_rate: float, prefill_time: float, transfer_time: float, slots: int, output_tokens: int,
             decode_step, requests: int = 20000, warmup: float = 0.1, seed: int = 0) -> PoolResult:
    """One prefill replica feeding one decode replica, ``requests`` Poisson arrivals."""
    arrivals = poisson_arrivals(arrival_rate, requests, seed)
    kv_ready = prefill_replica(arrivals, prefill_time, transfer_time)
    decode = decode_replica(kv_ready, slots=slots, output_tokens=output_tokens, decode_step=decode_step, warmup=warmup)
    return PoolResult(ttft=(kv_ready - arrivals)[int(warmup * requests):], decode=decode)
