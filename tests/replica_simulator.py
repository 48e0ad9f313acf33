"""A small discrete-event simulator of one continuously batched serving replica, written to check
the ``serving_load`` sheet (tests/test_serving_load.py). It is independent of the sheet's queueing
approximations: it only shares the per-iteration costs (a decode step with n requests, the prefill
time of one prompt token), which the caller takes from the ``serving_tp`` sheet.

What it simulates, and nothing more:

* Poisson arrivals at ``arrival_rate`` (seeded), ``requests`` of them.
* ``slots`` batch slots (the KV reservation of a request). An arrival takes a free slot at the next
  iteration boundary, or waits FCFS for one; it keeps the slot until its last token.
* Iteration-level scheduling (Orca, Yu et al. 2022; vLLM, Kwon et al. 2023): iterations run back to
  back while any request holds a slot. Each carries one decode step of every request that has
  finished its prefill and, Sarathi-style (Agrawal et al. 2024), at most ``chunk_tokens`` tokens of
  the prefill of the oldest admitted request whose prompt is not done (one prompt per iteration:
  the last chunk is not topped up with the next prompt).
* Deterministic iteration time: ``decode_step[n] + prefill_tokens * prefill_time_per_token`` for n
  decoding requests (``decode_step[0]`` must be 0: an iteration with no decode pays only its chunk).
* A request's first token ends the iteration that carries its last prefill chunk; its ``output_tokens``
  decode steps follow, one per iteration; its inter-token latencies are the lengths of those iterations.

Runs of identical decode-only iterations (no arrival, no completion in between) are advanced in one
step, so the work is a few loop turns per request, not per iteration.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np


def weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    """The q-quantile of ``values`` each counted ``weights`` times (the tokens that saw each
    iteration length)."""
    order = np.argsort(values)
    ordered, cum = values[order], np.cumsum(weights[order])
    return float(ordered[np.searchsorted(cum, q * cum[-1])])


@dataclass(frozen=True)
class SimulationResult:
    ttft: np.ndarray              # seconds, one per request that arrived after the warm-up
    slot_wait: np.ndarray         # seconds from arrival to taking a slot, the same requests
    itl_values: np.ndarray        # distinct iteration lengths seen by decoding requests (s)
    itl_weights: np.ndarray       # decode tokens that saw each of them
    iterations: int
    loop_turns: int
    mean_decoding: float          # time-average of requests in decode (after the warm-up)

    def ttft_quantile(self, q: float) -> float:
        return float(np.quantile(self.ttft, q))

    @property
    def mean_itl(self) -> float:
        return float(np.average(self.itl_values, weights=self.itl_weights))

    def itl_quantile(self, q: float) -> float:
        return weighted_quantile(self.itl_values, self.itl_weights, q)


def simulate(*, arrival_rate: float, slots: int, prompt_tokens: int, chunk_tokens: int, output_tokens: int,
             decode_step, prefill_time_per_token: float, requests: int = 20000, warmup: float = 0.1,
             seed: int = 0, max_loop_turns: int = 2_000_000) -> SimulationResult:
    """Simulate ``requests`` Poisson arrivals; statistics skip the first ``warmup`` fraction of them.
    ``decode_step[n]`` (seconds) for n = 0..slots. Stops after ``max_loop_turns`` (an error)."""
    decode_step = np.asarray(decode_step, dtype=float)
    if decode_step.shape != (slots + 1,) or decode_step[0] != 0.0:
        raise ValueError("decode_step must hold slots + 1 values with decode_step[0] == 0")
    if min(slots, prompt_tokens, chunk_tokens, output_tokens) < 1 or arrival_rate <= 0:
        raise ValueError("slots, tokens and the arrival rate must be positive")
    rng = np.random.default_rng(seed)
    arrivals = np.cumsum(rng.exponential(1.0 / arrival_rate, requests))
    first_counted = int(warmup * requests)
    t_warm = arrivals[first_counted]

    t = 0.0                       # start of the next iteration (or now, when idle)
    k = 0                         # index of the next iteration
    nxt = 0                       # next arrival not yet seen by the scheduler
    slot_queue: deque = deque()   # request ids waiting for a slot
    prefill_queue: deque = deque()  # [request id, prompt tokens left], admitted, FCFS
    finishing: deque = deque()    # [iteration index of the last token, requests], increasing
    used = decoding = 0
    ttft = np.full(requests, np.nan)
    admitted = np.full(requests, np.nan)
    itl: dict[float, int] = {}
    decoding_time = 0.0
    turns = iterations = 0

    def run(length: float, count: int) -> None:
        nonlocal t, k, iterations, decoding_time
        if t >= t_warm and decoding:
            itl[length] = itl.get(length, 0) + decoding * count
            decoding_time += decoding * length * count
        t += length * count
        k += count
        iterations += count

    done = 0
    while done < requests:
        turns += 1
        if turns > max_loop_turns:
            raise RuntimeError(f"simulation exceeded {max_loop_turns} loop turns")
        while nxt < requests and arrivals[nxt] <= t:
            slot_queue.append(nxt)
            nxt += 1
        while slot_queue and used < slots:
            rid = slot_queue.popleft()
            admitted[rid] = t
            prefill_queue.append([rid, prompt_tokens])
            used += 1
        if used == 0:             # idle: the next arrival starts an iteration at once
            t = arrivals[nxt]
            continue
        if prefill_queue:
            head = prefill_queue[0]
            chunk = min(chunk_tokens, head[1])
            run(decode_step[decoding] + chunk * prefill_time_per_token, 1)
            head[1] -= chunk
        else:                     # only decodes: advance to the next completion or arrival
            length = decode_step[decoding]
            count = finishing[0][0] - k + 1
            if used < slots and nxt < requests:
                count = min(count, max(1, math.ceil((arrivals[nxt] - t) / length)))
            run(length, count)
        while finishing and finishing[0][0] == k - 1:
            _, n = finishing.popleft()
            decoding -= n
            used -= n
        if prefill_queue and prefill_queue[0][1] == 0:
            rid, _ = prefill_queue.popleft()
            ttft[rid] = t - arrivals[rid]
            done += 1
            decoding += 1
            last = k - 1 + output_tokens
            if finishing and finishing[-1][0] == last:
                finishing[-1][1] += 1
            else:
                finishing.append([last, 1])

    values = np.array(sorted(itl))
    span = t - t_warm
    return SimulationResult(ttft=ttft[first_counted:], slot_wait=(admitted - arrivals)[first_counted:], itl_values=values,
                            itl_weights=np.array([itl[v] for v in values], dtype=float), iterations=iterations,
                            loop_turns=turns, mean_decoding=decoding_time / span if span > 0 else 0.0)
