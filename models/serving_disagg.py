"""Wall 4, disaggregated: a prefill pool and a decode pool, each of replicas with their own
hardware, precision and tensor parallelism (DistServe, Zhong et al. 2024; Splitwise, Patel et al.
2024; Mooncake, Qin et al. 2024). A prefill replica computes each prompt's KV cache and sends it to
a decode replica, which generates the output tokens in a continuously batched loop of decode steps.
Every quantity below is per replica of one pool, as a function of that replica's arrival rate lambda
(requests per second; a pool of N replicas at a demand of Q gives lambda = Q / N).

When it helps. A replica that serves both phases stretches every decode step by the prefill chunks
it carries (serving_load: ITL = T_d / (1 - lambda t_1)), so a tight ITL forces a low load and a
tight TTFT forces small chunks. Split, the decode steps are never stretched by a prefill and the
prompts never wait behind decode iterations: a tight ITL and a tight TTFT can hold together, each
pool sized and parallelised for its own phase (DistServe, Fig. 1 and Section 2).

What it costs. Two pools, each rounded up to whole replicas; the KV transfer on every request (its
time enters the TTFT, its bytes the inter-node links); and no sharing of idle capacity: a prefill
replica cannot decode when the prompts pause, nor a decode replica prefill.

Prefill replica: one prompt at a time, FCFS, each taking t_1 (serving_tp ``cb_ttft``); then its KV
leaves on the replica's links, every one of the t tensor-parallel ranks sending its shard of the
heads on its own link (alpha-beta, collectives.py ``p2p_time``):

    M_kv   = 2 L H_kv d b_kv p                       KV bytes of one prompt (memory.py, per token x p)
    T_kv   = alpha_kv + M_kv / (t beta_kv)
    s      = max(t_1, T_kv)                          the slower stage: accelerators or links
    rho_p  = lambda s                                stable below 1; capacity 1 / s
    W_p    = rho_p s / (2 (1 - rho_p))               M/D/1 mean wait (Pollaczek-Khinchine)
    TTFT   = W_p + t_1 + T_kv
    TTFT_q = t_1 + T_kv + max(0, log(rho_p / (1 - q)) / theta),   theta = 2 (1/s - lambda)

The links send one prompt's KV while the accelerators prefill the next, so the replica is two
deterministic servers in tandem. For constant service times a request's total delay does not depend
on the order of the stations (Avi-Itzhak 1965; Friedman 1965): put the slower one first and the
other never queues, hence one M/D/1 queue at s plus both services. The quantile is the M/D/1 wait's
exponential (Kingman) tail, as queueing.py's ``wait_quantile`` gives it.

Decode replica: B slots, iterations back to back, each one decode step of the requests in flight,
never a prefill chunk (serving_load's fixed point without the prefill stretch):

    T_d(n) = max(a_c + b_c n, a_m + b_m n)           serving_tp ``tp_itl`` at batch n
    ITL    = T_d(min(1 + n, B)),  n = lambda o ITL   itself and the n others in flight (Little)
           = max_i (a_i + b_i) / (1 - lambda o b_i), at most T_d(B) = tp_itl at batch B
    rho_d  = n / B;   mu_d = B / (o T_d(B))          busy share of the slots; capacity
    z      = T_d(1 + n) / (a_i + b_i) = 1 / (1 - lambda o b_i),   i the binding piece
    ITL_q  = T_d(min(1 + max(0, n + z_q sqrt(z n)), B)),   z_q the standard normal q-quantile
    P_W    = ErlangC(B / z, n / z)                   Hayward's approximation
    W_s    = P_W / (2 (mu_d - lambda))               M/D/c mean wait, draining at the full batch
    W_s,q  = max(0, log(P_W / (1 - q)) / (2 (mu_d - lambda)))   = 0 exactly when P_W <= 1 - q

The steps of one request are about equally long: the batch drifts only as requests come and go
over o steps each. A token's step is T_d of its batch, the requests in flight being about normal with
mean n and variance z n; ITL_q is the step at the q-quantile of that batch. The variance: without
feedback the occupancy of an M/G/inf system is Poisson (Palm 1943, z = 1); here each request in
flight lengthens every step by b_i, so a burst of arrivals stays longer. Linearizing the balance of
arrivals lambda and departures N / (o T_d(1 + N)) around n (the linear noise approximation, van
Kampen 1981) gives the variance z n; Hayward's approximation (Fredericks 1980) then puts such a
peaked load on B / z slots. z_q is Abramowitz & Stegun 26.2.23 (Hastings 1955), within 4.5e-4.

The design rule a formulation uses: a decode replica runs where the q-quantile of its slot wait is
zero (P_W <= 1 - q, ``decode_rate_limit``), so at the q-quantile the user sees the prefill pool's
TTFT and the decode pool's ITL. ``disagg_decode_slot_wait`` (a wait for a slot delays the second
token; the KV waits in the prefill replica, from which DistServe's decode instances pull it) is
reported, not designed to.

| symbol | unit | meaning | source |
|---|---|---|---|
| lambda | 1/s | requests per second to this replica (Poisson) | input (queueing.py ``arrival_rate``) |
| q | - | quantile | input (queueing.py) |
| p, o | token | prompt and generated tokens per request | input (serving.py) |
| t_1 | s | one prompt's prefill on the prefill replica | serving_tp ``cb_ttft`` (serving_load input) |
| L, H_kv, d, b_kv | -, -, -, byte | layers, KV heads, head dimension, bytes per KV value | model card; memory.py |
| t | - | tensor-parallel degree of the prefill replica (its KV links) | input (serving_tp) |
| beta_kv | byte/s | one-way link bandwidth of one accelerator to the decode pool | registry: ``Fabrics.InfiniBand_NDR`` 50 GB/s |
| alpha_kv | s | latency of one KV transfer | registry: ``Fabrics.InfiniBand_NDR`` 2 us |
| B | request | decode slots (requests in flight at most) | input (memory.py) |
| a_c, b_c, a_m, b_m | s, s/request | decode step: intercept and slope of its compute and memory pieces | serving_tp ``tp_itl`` |
| n | request | mean requests decoding | Little 1961 |
| z | - | peakedness (variance over mean) of the requests in flight | van Kampen 1981 (linear noise) |
| z_q | - | standard normal q-quantile (``normal_quantile``) | Abramowitz & Stegun 1964, 26.2.23 |
| s, T_kv | s | time per prompt of the slower stage; KV transfer time | Avi-Itzhak 1965; Hockney 1994 |
| P_W | - | probability that a request waits for a slot (``slot_wait_probability``) | Erlang 1917; Fredericks 1980 |
| W_p, W_s | s | mean waits for the prefill replica and for a decode slot | Pollaczek 1930, Khinchine 1932; Allen 1990 |

Limits (tests/test_serving_disagg.py checks the model against a discrete-event simulation):

* One prompt at a time: a prefill replica that batches short prompts (DistServe does, up to a token
  budget) serves more of them; a long prompt is compute-bound alone and gains little.
* Every prompt is p tokens long (deterministic service). Varied lengths lengthen the prefill wait
  by about (1 + c_s^2) / 2 (Pollaczek-Khinchine) and are not modeled.
* The KV transfer starts when the prefill ends. Splitwise and Mooncake send each layer's KV while
  the later layers compute, and DistServe places the prefill and decode instances of each pipeline
  stage on one node so that the transfer rides NVLink: their transfer hides in the prefill, and this TTFT is high by up to T_kv.
  The TTFT also counts the transfer although the first token can be returned before it ends.
* The link rate is the prefill replica's t ranks x beta_kv. A decode replica with fewer ranks has
  fewer links to receive on (``kv_transfer_values(receiver_tp=...)`` scales beta_kv for it), and
  the load of many prefill replicas sending to one decode replica at once is not modeled.
* Decode arrivals are taken as Poisson, which the merged output of many prefill replicas nearly is.
  One M/D/1 prefill replica alone sends a smoother stream, which waits less for slots.
* The decode step is serving_tp's at the mean context p + o / 2: the last steps of a long generation
  are longer (serving ``itl_max``), which ITL_q does not resolve.
* Exponential (Kingman) tail of the M/D/1 wait: at a light load the true tail is shorter, so p99 is
  high by up to about 20% and p90 low by up to about 10%.
* Slots: P_W is high by up to about 20% where 1-15% of the requests wait. The mean slot wait is
  low, 0.64-0.85 x the simulated one there and less where fewer wait (slots free in bursts, which
  the M/D/c draining at mu_d smooths). The design rule keeps P_W small, where W_s hardly matters.
* Stable while ``disagg_prefill_utilization`` and ``disagg_decode_utilization`` are below 1;
  ``evaluate_prefill`` and ``evaluate_decode`` report the waits past that as infinite.
"""
from __future__ import annotations

import numpy as np
import sympy

from mlsysim_opt.symbolic import Piecewise, Sheet, log, max_of, min_of, sqrt, sym

from . import queueing, serving_load
from .collectives import M as message, alpha, beta, p2p
from .memory import B, kv_per_token
from .queueing import P_W, c as servers, ca2, cs2, lam, q, t_s
from .serving import o, p
from .serving_load import PIECES, a_c, a_m, b_c, b_m, decode_step, t1
from .serving_tp import t as tp

beta_kv = sym("kv_link_bandwidth", "byte/s", "one-way bandwidth of one accelerator's link to the decode pool",
              "registry: Fabrics.InfiniBand_NDR (50 GB/s); a node's NVLink when both replicas share it",
              lower=1e-30)
alpha_kv = sym("kv_link_latency", "s", "latency of one KV transfer message",
               "registry: Fabrics.InfiniBand_NDR (2 us); a node's NVLink when both replicas share it")


_max, _min = max_of, min_of   # written as is: no comparison or ordering of nested arguments


TINY = 1e-300   # keeps log(0) out of the normal quantile at q = 0 or 1

sheet = Sheet("serving_disagg", "Disaggregated prefill and decode pools: TTFT and ITL of one replica of each",
              walls=[4, 14], iron_law_term="Latency (queueing)",
              sources=["Zhong et al. 2024, DistServe: Disaggregating Prefill and Decoding (OSDI)",
                       "Patel et al. 2024, Splitwise: Efficient Generative LLM Inference Using Phase Splitting (ISCA)",
                       "Qin et al. 2024, Mooncake: A KVCache-centric Disaggregated Architecture for LLM Serving",
                       "Pollaczek 1930; Khinchine 1932 (M/G/1 mean wait); Kingman 1961 (exponential tail)",
                       "Avi-Itzhak 1965; Friedman 1965 (tandem queues with constant service times)",
                       "Hockney 1994 (alpha-beta cost of a message)",
                       "Allen 1990 (Allen-Cunneen M/G/c approximation)", "Little 1961 (L = lambda W)",
                       "Palm 1943 (M/G/inf occupancy is Poisson)",
                       "van Kampen 1981, Stochastic Processes in Physics and Chemistry (linear noise approximation)",
                       "Fredericks 1980, Congestion in blocking systems (Hayward's approximation)",
                       "Abramowitz & Stegun 1964, 26.2.23 (Hastings 1955: normal quantile)"])
PERCENTILES = {"p50": sympy.Rational(1, 2), "p90": sympy.Rational(9, 10), "p99": sympy.Rational(99, 100)}

# --- prefill replica -----------------------------------------------------------------------------
kv_bytes = sheet.define("disagg_kv_transfer_bytes", kv_per_token * p, "byte",
                        "KV cache of one prompt, sent from the prefill to the decode replica")
# The t ranks each hold 1/t of the KV heads and send their shard on their own link at once.
T_kv = sheet.define("disagg_kv_transfer_time",
                    p2p.xreplace({message: kv_bytes, beta: tp * beta_kv, alpha: alpha_kv}), "s",
                    "KV transfer of one prompt, every TP rank sending its shard on its own link")
s_p = sheet.define("disagg_prefill_service", _max(t1, T_kv), "s",
                   "time per prompt of the replica's slower stage (its accelerators or its links)")
rho_p = sheet.define("disagg_prefill_utilization", lam * s_p, "dimensionless",
                     "busy share of the prefill replica's slower stage; stable below 1")
sheet.define("disagg_prefill_capacity", 1 / s_p, "1/s", "prompts per second one prefill replica sustains")
# The tandem (accelerators, then links) delays a prompt as one M/D/1 queue at the slower stage.
MD1 = {P_W: rho_p, servers: 1, t_s: s_p, ca2: 1, cs2: 0}      # Erlang C of one server is its load
W_p = sheet.define("disagg_prefill_wait", queueing.mean_wait.xreplace(MD1), "s",
                   "mean wait for the prefill replica (M/D/1, Pollaczek-Khinchine)")
sheet.define("disagg_ttft", W_p + t1 + T_kv, "s", "mean time to first token: wait, prefill, KV transfer")
ttft_q = queueing.wait_quantile.xreplace(MD1) + t1 + T_kv
sheet.define("disagg_ttft_quantile", ttft_q, "s", "q-quantile of the time to first token")
for _pct, _q in PERCENTILES.items():
    sheet.define(f"disagg_ttft_{_pct}", ttft_q.xreplace({q: _q}), "s", f"{_pct} time to first token")
PREFILL_OUTPUTS = tuple(sheet.definitions)


# --- decode replica ------------------------------------------------------------------------------
def normal_quantile(level):
    """The standard normal ``level``-quantile: Abramowitz & Stegun 26.2.23, |error| < 4.5e-4."""
    tail = _max(_min(level, 1 - level), TINY)
    u = sqrt(-2 * log(tail))
    upper = u - (2.515517 + 0.802853 * u + 0.010328 * u ** 2) / (1 + 1.432788 * u + 0.189269 * u ** 2
                                                                  + 0.001308 * u ** 3)
    return Piecewise((upper, level >= sympy.Rational(1, 2)), (-upper, True))


# ITL = T_d(1 + lambda o ITL) piece by piece; a denominator at most (a_i + b_i) / T_d(B) puts the
# fixed point at or beyond B in flight, where the step is T_d(B).
full = decode_step(B)
roots = [(a + b) / _max(1 - lam * o * b, (a + b) / full) for a, b in PIECES]
itl = sheet.define("disagg_itl", _max(*roots), "s",
                   "mean inter-token latency: the decode step of the mean batch, no prefill in it")
n = sheet.define("disagg_decoding_requests", lam * o * itl, "request", "mean requests decoding (Little's law)")
rho_d = sheet.define("disagg_decode_utilization", n / B, "dimensionless", "busy share of the B slots; stable below 1")
sheet.define("disagg_decode_offered_load", lam * o * itl, "dimensionless",
             "slots busy on average (erlangs): the Erlang C argument of wait_probability")
mu_d = sheet.define("disagg_decode_capacity", B / (o * full), "1/s", "requests per second at a full batch")
batch = _min(1 + n, B)
compute_binds = a_c + b_c * batch >= a_m + b_m * batch
z = sheet.define("disagg_decode_peakedness",
                 decode_step(batch) / Piecewise((a_c + b_c, compute_binds), (a_m + b_m, True)), "dimensionless",
                 "variance-to-mean ratio of the requests in flight (each one lengthens every step)")


def itl_quantile(level):
    """The step of the batch at the ``level``-quantile of the requests in flight (about normal)."""
    return decode_step(_min(1 + _max(0, n + normal_quantile(level) * sqrt(z * n)), B))


sheet.define("disagg_itl_quantile", itl_quantile(q), "s", "q-quantile of the inter-token latency")
for _pct, _q in PERCENTILES.items():
    sheet.define(f"disagg_itl_{_pct}", itl_quantile(_q), "s", f"{_pct} inter-token latency")
sheet.define("disagg_decode_slot_wait_probability", P_W, "dimensionless",
             "probability that a request waits for a slot (wait_probability: Erlang C, Hayward)")
# With every slot taken, a request gets one at a departure: the queue drains at the full-batch rate.
SATURATED = {servers: B, t_s: o * full, ca2: 1, cs2: 0}
sheet.define("disagg_decode_slot_wait", queueing.mean_wait.xreplace(SATURATED), "s",
             "mean wait for a decode slot (M/D/c, Allen-Cunneen): delays the second token")
sheet.define("disagg_decode_slot_wait_quantile", queueing.wait_quantile.xreplace(SATURATED), "s",
             "q-quantile of the wait for a decode slot; zero when wait_probability <= 1 - q")
DECODE_OUTPUTS = tuple(name for name in sheet.definitions if name not in PREFILL_OUTPUTS)


# --- evaluation ----------------------------------------------------------------------------------
PREFILL_INPUTS = tuple(s.name for s in sheet.inputs(PREFILL_OUTPUTS))
"""What :func:`evaluate_prefill` needs (``replica_prefill_time`` may come from serving_tp's inputs)."""
DECODE_INPUTS = tuple(s.name for s in sheet.inputs(DECODE_OUTPUTS) if s is not P_W)
"""What :func:`evaluate_decode` needs (the ``replica_step_*`` may come from serving_tp's inputs);
``wait_probability`` it computes."""
UNBOUNDED_BEYOND_CAPACITY = ("disagg_prefill_wait", "disagg_ttft", "disagg_ttft_quantile",
                             *(f"disagg_ttft_{pct}" for pct in PERCENTILES),
                             "disagg_decode_slot_wait", "disagg_decode_slot_wait_quantile")
"""Waits that grow without bound as their replica's utilization reaches 1; past it the evaluators
report them as infinite."""
_STEP_COSTS = tuple(s.name for pair in PIECES for s in pair)


def _with_costs(values: dict, needed) -> dict:
    """``values`` with the serving_load replica inputs in ``needed`` taken from serving_tp's inputs
    when they are not given."""
    missing = tuple(name for name in needed if name not in values)
    return dict(values, **serving_load.sheet.compiled(missing).vector(**values)) if missing else values


def _evaluate(outputs, utilization, names, values, extra=None):
    names = tuple(names or (n for n in outputs if "quantile" in values or "quantile" not in n))
    scalar = all(np.ndim(v) == 0 for v in values.values())
    out = sheet.compiled(tuple(dict.fromkeys(names + (utilization,)))).vector(**dict(values, **(extra or {})))
    overloaded = out[utilization] >= 1
    result = {name: np.where(overloaded, np.inf, out[name]) if name in UNBOUNDED_BEYOND_CAPACITY else out[name]
              for name in names}
    return {name: float(v) for name, v in result.items()} if scalar else result


def evaluate_prefill(names=None, **values):
    """The named prefill definitions (default: every one, the ``*quantile*`` ones when ``quantile``
    is given) at ``values`` (``PREFILL_INPUTS``, or serving_tp's inputs instead of
    ``replica_prefill_time``). Waits are infinite where ``disagg_prefill_utilization`` >= 1.
    Floats when every value is a scalar, else arrays."""
    return _evaluate(PREFILL_OUTPUTS, "disagg_prefill_utilization", names, _with_costs(values, (t1.name,)))


def decode_wait_probability(**values):
    """``wait_probability`` of a decode replica: Erlang C of B / z slots at n / z erlangs
    (serving_load's ``slot_wait_probability``, Hayward)."""
    first = sheet.compiled(("disagg_decode_offered_load", "disagg_decode_peakedness")).vector(**values)
    return serving_load.slot_wait_probability(values["batch_size"], first["disagg_decode_offered_load"],
                                              first["disagg_decode_peakedness"])


def evaluate_decode(names=None, **values):
    """The named decode definitions (default: every one, the ``*quantile*`` ones when ``quantile``
    is given) at ``values`` (``DECODE_INPUTS``, or serving_tp's inputs instead of the
    ``replica_step_*``). Slot waits are infinite where ``disagg_decode_utilization`` >= 1.
    Floats when every value is a scalar, else arrays."""
    values = _with_costs(values, _STEP_COSTS)
    return _evaluate(DECODE_OUTPUTS, "disagg_decode_utilization", names, values,
                     {P_W.name: decode_wait_probability(**values)})


def decode_rate_limit(quantile, **values):
    """The largest arrival rate per decode replica at which the ``quantile`` of its slot wait is
    zero (wait_probability <= 1 - quantile): the decode pool's design rule. ``values`` as
    :func:`evaluate_decode`, without ``arrival_rate``."""
    values = _with_costs(values, _STEP_COSTS)
    capacity = sheet.compiled(("disagg_decode_capacity",)).vector(**values)["disagg_decode_capacity"]

    def holds(rate):
        return decode_wait_probability(**dict(values, arrival_rate=rate)) <= 1 - np.asarray(quantile, dtype=float)
    return serving_load.largest_rate(holds, capacity)


def prefill_rate_limit(ttft_limit, quantile, **values):
    """The largest arrival rate per prefill replica at which the ``quantile`` of the TTFT is at most
    ``ttft_limit`` (s); 0 where a prompt alone misses it. ``values`` as :func:`evaluate_prefill`,
    without ``arrival_rate``."""
    values = dict(_with_costs(values, (t1.name,)), quantile=quantile)
    capacity = sheet.compiled(("disagg_prefill_capacity",)).vector(**values)["disagg_prefill_capacity"]
    f = sheet.compiled(("disagg_ttft_quantile",))

    def holds(rate):
        return f.vector(**dict(values, arrival_rate=rate))["disagg_ttft_quantile"] <= ttft_limit
    return serving_load.largest_rate(holds, capacity)


def kv_transfer_values(case_values: dict, link=None, *, tp=None, receiver_tp=None) -> dict:
    """``case_values`` (serving_tp's inputs of the prefill configuration, as
    ``formulations.serving_grid`` builds them; they hold the KV shape and precision) with the KV
    link inputs added, and ``tp_size`` when ``tp`` is given.

    ``link``: a NetworkFabric (default ``Fabrics.InfiniBand_NDR``), its per-port rate after
    oversubscription and its latency; or a Node, whose intra-node link (NVLink) carries the KV when
    both replicas share the node. ``receiver_tp``: the decode replica's TP; when it has fewer ranks
    than the prefill replica, fewer links receive at once, and ``kv_link_bandwidth`` is scaled so
    that tp x bandwidth is receiver_tp x the port rate."""
    from mlsysim_opt.catalog import default_fabric
    from mlsysim_opt.types import Node

    link = default_fabric() if link is None else link
    if isinstance(link, Node):
        bandwidth, latency = link.intra_node_bandwidth.m_as("B/s"), link.intra_node_latency.m_as("s")
    else:
        bandwidth, latency = link.effective_bandwidth.m_as("B/s"), link.latency.m_as("s")
    values = dict(case_values) if tp is None else dict(case_values, tp_size=tp)
    if receiver_tp is not None:
        senders = np.asarray(values["tp_size"], dtype=float)
        bandwidth = bandwidth * np.minimum(senders, receiver_tp) / senders
    return dict(values, kv_link_bandwidth=bandwidth, kv_link_latency=latency)
