"""Wall 4 under load: the latency of one continuously batched replica at an offered load of lambda
requests per second, with B batch slots and prefill chunks of C tokens per iteration.

The replica runs iterations back to back (iteration-level scheduling: Orca, Yu et al. 2022; vLLM,
Kwon et al. 2023). Each iteration carries one decode step of every request in flight and at most
one prefill chunk of C tokens (chunked prefill: Sarathi-Serve, Agrawal et al. 2024). Its time is the
decode step of the n requests in flight plus the chunk's share of a single-request prefill:

    T_iter(n, c) = T_d(n) + c t_1 / p,      T_d(n) = max(a_c + b_c n, a_m + b_m n),  T_d(0) = 0

The replica's costs come from serving_tp (the ``replica_*`` definitions, by substitution and
differentiation): t_1 = ``cb_ttft``, T_d(n) = ``tp_itl`` at batch n (its compute and memory pieces,
with the overheads and the communication, are affine in the batch), mu_B = ``cb_capacity``. They
enter the load equations as inputs, as ``replica_capacity`` enters the fleet sheet.

ITL: the step a decoding request sees holds itself and the n others in flight (Poisson by Palm's
theorem on the M/G/inf occupancy), stretched by the prefill work, lambda t_1 per second:

    ITL   = T_d(min(1 + n, B)) / (1 - lambda t_1),   n = min(lambda o ITL, B)
          = max_i (a_i + b_i) / (1 - lambda t_1 - lambda o b_i),   at most T_d(B) / (1 - lambda t_1) = cb_itl
    ITL_q = T_d(1 + n) + (0 | last chunk | full chunk) t_1 / p,  in shares 1 - f, lambda ITL, f - lambda ITL,
            f = lambda k ITL  (the iterations that carry a chunk)

TTFT = wait for a slot, or else wait for the running iteration and the chunk budget; then its own
prefill, in the iterations that carry its chunks:

    k     = ceiling(p / C)
    D     = E T_d(N), N ~ Poisson(n)     = max_i ((1 - e^-n) a_i + b_i n)
    s     = t_1 + k D                    own prefill: its chunks and the decode steps alongside
    rho_p = lambda s;   W_p = rho_p s / (2 (1 - rho_p))         chunk budget: M/D/1 (Pollaczek-Khinchine)
    R     = a T_d(1 + n) / 2,  a = 1 - e^-n                    residual of a running decode-only step
    S     = W_p + R + s + o ITL                                 time a request holds its slot
    z     = 1 / (1 - lambda t_1)^2                              peakedness of the slot occupancy
    P_W   = ErlangC(B / z, lambda S / z)                        Hayward's approximation
    mu    = min(mu_B, 1 / s)                                    the slowest of the slots and the chunk budget
    W_s   = P_W / (2 (mu - lambda))                             M/D/c (Allen-Cunneen), draining at mu
    TTFT  = W_s + (1 - P_W)(W_p + R) + s                        = t_1 = cb_ttft at lambda = 0

Why z and mu_B: every prompt stalls every request in flight for its prefill, so holding times grow
with the arrivals that fill the slots. The occupancy is then a first-passage count of a random walk
(Cox 1962) whose variance is z times its mean; Hayward's approximation (Fredericks 1980) treats such
a load on B slots as a Poisson load lambda S / z on B / z slots. Once every slot is busy, prompts are
admitted only at departures, so the queue drains at the full-batch capacity mu_B, or at the chunk
budget's 1 / s when prompts are what holds the slots (then the slots fill with requests waiting for
their prefill, and the wait moves from the chunk budget to the slots). A request that
waited for a slot takes it at an iteration boundary, as the admissions are paced by departures: it
waits neither for a running iteration nor, as a rule, for another prompt.

Percentiles. The wait is a mixture: with probability P_W a slot wait, exponential of mean
m_s = 1 / (2 (mu - lambda)); otherwise R (0 with probability 1 - a, else uniform on [0, T_v],
T_v = T_d(1 + n)) plus, independent of it by the Fuhrmann-Cooper decomposition (M/G/1 with
vacations, 1985), the chunk-budget wait (0 with probability 1 - rho_p, else exponential of mean
m_p = s / (2 (1 - rho_p)), the exponential tail of the M/M/c wait with the Allen-Cunneen/Kingman
variability factor, as in queueing.py). Exactly for these laws, with x = T_v + u, y = T_v / m_p:

    P(wait > x) = A_s e^(-u/m_s) + A_p e^(-u/m_p)
    A_s = P_W e^(-T_v/m_s),   A_p = (1 - P_W) rho_p [(1 - a) e^-y + a (1 - e^-y) / y]

TTFT_q = s + T_v + u_q: u_q is the larger one-term root max(0, m_i log(A_i / (1 - q))) refined by
one Newton step on log P (log P is convex in u, so the step stays below the root). When
P(wait > T_v) < 1 - q (light load: the running iteration dominates) the tail is interpolated
linearly between P(wait > 0) = P_W + (1 - P_W)(1 - (1 - a)(1 - rho_p)) and P(wait > T_v).

| symbol | unit | meaning | source |
|---|---|---|---|
| lambda | 1/s | offered load: requests per second to this replica (Poisson) | input |
| B | request | batch slots: requests in flight at most (their KV is reserved) | input |
| C | token | prefill tokens per iteration (chunk size) | Agrawal et al. 2024 (Sarathi-Serve) |
| p, o | token | prompt and generated tokens per request | input (serving.py) |
| t_1 | s | one request's prefill alone | serving_tp ``cb_ttft`` |
| a_c, b_c, a_m, b_m | s, s/request | decode step: intercept and slope of its compute and memory pieces | serving_tp ``tp_itl`` |
| mu_B | 1/s | requests per second at full batch | serving_tp ``cb_capacity`` |
| P_W | - | probability of waiting for a slot (``slot_wait_probability``: Erlang C, Hayward) | Erlang 1917; Fredericks 1980 |
| q | - | quantile (p50, p90, p99 defined explicitly) | input |
| n, a | request, - | mean requests decoding; probability that one at least is | Palm 1943 (M/G/inf occupancy is Poisson) |
| z | - | peakedness (variance over mean) of the slot occupancy | Cox 1962 (renewal counting, first passage) |
| W_p | s | mean wait for the chunk budget | Pollaczek 1930, Khinchine 1932 |
| W_s | s | mean wait for a slot | Allen 1990 (Allen-Cunneen); Kingman 1961 |
| R | s | residual of the running iteration | Kleinrock 1975 (mean residual life) |

Limits (tests/test_serving_load.py checks the model against a discrete-event simulation):

* The iteration time is additive (decode step + chunk work), as serving_tp's ``cb_itl``: a fused
  iteration whose prefill is compute-bound and decode memory-bound takes less in practice.
* One prompt per iteration: the last chunk is not topped up with the next prompt's tokens.
* T_d at the mean batch (Jensen): T_d is convex in the batch, so near its kink the mean is low.
* Exponential waiting-time tails (Kingman): at a light load the M/D/1 tail decays faster than
  that, so p99 is high by up to about 20% there and p90 low by about 10%.
* Where the slots bind (small B), the requests that fill them arrived in a burst and leave late:
  the slot wait's tail is longer than the M/D/c draining gives; at 80% of the stable load the mean
  TTFT runs low by up to about 15% and p99 by up to about a third.
* Pipeline parallelism (q > 1 micro-batches in flight) is not modeled: B slots, one iteration loop
  (formulations/goodput.py takes a q-stage replica as q loops, each with 1/q of the arrivals).
* Stable while ``load_utilization`` < 1, lambda t_1 < 1 and lambda < mu_B; past any of them the
  waits mean nothing (``evaluate`` reports them, and the utilization, as infinite). The chunk budget can saturate before ``cb_capacity``, which assumes prefill at
  single-request speed alongside the decodes: a prompt needs k iterations of the budget, each as
  long as the decode step it rides along with.
"""
from __future__ import annotations

import numpy as np
import sympy

from mlsysim_opt.errors import ModelDefinitionError
from mlsysim_opt.symbolic import Max, Piecewise, Sheet, ceiling, exp, log, max_of, min_of, sym

from . import queueing, serving, serving_tp
from .memory import B
from .queueing import P_W, c as servers, ca2, cs2, lam, q, t_s
from .serving import C_chunk as C, o, p

t1 = sym("replica_prefill_time", "s", "prefill time of one request alone on the replica", "serving_tp cb_ttft",
         lower=1e-30)
a_c = sym("replica_step_base_compute", "s", "decode step, compute piece, at zero batch (overheads, link latency)",
          "serving_tp tp_itl")
b_c = sym("replica_step_slope_compute", "s/request", "decode step, compute piece, per request in the batch",
          "serving_tp tp_itl")
a_m = sym("replica_step_base_memory", "s", "decode step, memory piece, at zero batch (weights, overheads)",
          "serving_tp tp_itl")
b_m = sym("replica_step_slope_memory", "s/request", "decode step, memory piece, per request in the batch",
          "serving_tp tp_itl")
PIECES = ((a_c, b_c), (a_m, b_m))
mu_B = sym("replica_capacity", "1/s", "requests per second one replica sustains at full load",
           "serving_tp cb_capacity")


_max, _min = max_of, min_of   # written as is: no comparison or ordering of nested arguments


TINY = 1e-12   # a probability too small to change a result: keeps 0/0 out of the compiled code at zero load

sheet = Sheet("serving_load", "A continuously batched replica under load: TTFT and ITL, mean and percentiles",
              walls=[4], iron_law_term="Latency (queueing)",
              sources=["Yu et al. 2022, Orca (iteration-level scheduling)", "Kwon et al. 2023, vLLM (PagedAttention)",
                       "Agrawal et al. 2024, Sarathi-Serve (chunked prefill)",
                       "Allen 1990 (Allen-Cunneen M/G/c approximation); Kingman 1961",
                       "Pollaczek 1930; Khinchine 1932 (M/G/1 mean wait)",
                       "Fuhrmann & Cooper 1985, Stochastic decompositions in the M/G/1 queue with generalized vacations",
                       "Palm 1943 (M/G/inf occupancy is Poisson)", "Cox 1962, Renewal Theory (first-passage counts)",
                       "Fredericks 1980, Congestion in blocking systems (Hayward's approximation)",
                       "Jagerman 1974, Some properties of the Erlang loss function (real number of servers)"])

# --- the replica's costs, from serving_tp ------------------------------------------------------------
# tp_itl = max(compute, memory) + overheads + communication. It is rebuilt from serving's own pieces
# and must equal tp_itl, each piece affine in the batch, or this sheet refuses to load.
_fixed = serving.sheet["decode_overhead"].xreplace(serving_tp.SHARDED) + serving_tp.decode_comm
_pieces = [serving.sheet[name].xreplace(serving_tp.SHARDED) + _fixed for name in ("decode_compute", "decode_memory")]
if Max(_pieces[0] - _fixed, _pieces[1] - _fixed) + _fixed != serving_tp.itl:
    raise ModelDefinitionError("serving_load reads tp_itl as max(decode_compute, decode_memory) + overheads + "
                               "communication; tp_itl has changed shape: update the decomposition")
# Each piece is read as the chord through one request and the full batch B: exact for a dense
# model, whose pieces are affine in the batch; for a mixture of experts the weights read grow
# concavely with the batch (moe.py), and the chord lies above the piece in between (conservative).
for _piece, (_a, _b), _kind in zip(_pieces, PIECES, ("compute", "memory")):
    _one = _piece.xreplace({B: 1})
    _slope = Piecewise((sympy.diff(_piece, B).xreplace({B: 1}), B <= 1), ((_piece - _one) / (B - 1), True))
    sheet.define(_b.name, _slope, "s/request", f"tp_itl's {_kind} piece per request (serving_tp; chord)")
    sheet.define(_a.name, _one - _slope, "s", f"tp_itl's {_kind} piece extended to zero batch (serving_tp)")
sheet.define(t1.name, serving_tp.sheet["cb_ttft"], "s", "cb_ttft: one request's prefill alone (serving_tp)")
sheet.define(mu_B.name, serving_tp.capacity, "1/s", "cb_capacity: requests per second at full batch (serving_tp)")
REPLICA_COSTS = (t1.name, a_c.name, b_c.name, a_m.name, b_m.name, mu_B.name)
"""Definitions taken from serving_tp; each value is the load model's input of the same name."""


def decode_step(batch):
    """T_d(batch): the decode step of ``batch`` requests, as tp_itl (for batch >= 1)."""
    return _max(*(a + b * batch for a, b in PIECES))


sheet.define("load_decode_step_alone", decode_step(1), "s",
             "decode step of one request alone: the ITL at zero load, every percentile")


# --- ITL: the fixed point ITL (1 - lambda t_1) = T_d(1 + lambda o ITL), capped at B in flight ------
# Each piece alone gives (a_i + b_i) / (1 - lambda t_1 - lambda o b_i); the fixed point of the max is
# the max of these. A denominator at most (a_i + b_i) / ITL_full puts the fixed point at or beyond
# the cap: every slot is decoding and ITL is the cap, serving_tp's cb_itl at this load.
share_free = 1 - lam * t1                       # share of the replica's time not spent prefilling
full = decode_step(B) / share_free
roots = [(a + b) / _max(share_free - lam * o * b, (a + b) / full) for a, b in PIECES]
itl = sheet.define("load_itl", _max(*roots), "s",
                   "mean inter-token latency (TPOT) at the offered load, prefill chunks interleaved")
n = sheet.define("load_decoding_requests", _min(lam * o * itl, B), "request",
                 "mean requests decoding (Little's law: o iterations each)")
a = sheet.define("load_decode_probability", 1 - exp(-n), "dimensionless",
                 "probability that one request at least is decoding (Poisson occupancy)")
T_v = sheet.define("load_decode_iteration", decode_step(_min(1 + n, B)), "s",
                   "decode step a decoding request or an arrival sees: itself and the others in flight")
D = sheet.define("load_decode_work", _max(*((1 - exp(-n)) * a_ + b_ * n for a_, b_ in PIECES)), "s",
                 "mean decode work alongside a prefill chunk (no step when nothing decodes)")

# --- TTFT ----------------------------------------------------------------------------------------
w = t1 / p                                      # prefill time of one prompt token
k = sheet.define("load_prefill_iterations", ceiling(p / C), "dimensionless",
                 "iterations that carry one prompt's chunks")
s = sheet.define("load_prefill_service", t1 + k * D, "s",
                 "the iterations that carry the request's chunks: its prefill plus the decode steps alongside")
rho_p = sheet.define("load_prefill_utilization", lam * s, "dimensionless",
                     "busy share of the chunk budget (one prefill server)")
MD1 = {P_W: rho_p, servers: 1, t_s: s, ca2: 1, cs2: 0}   # Erlang C of one server is its load
W_p = sheet.define("load_prefill_wait", queueing.mean_wait.xreplace(MD1), "s",
                   "mean wait for the chunk budget behind earlier prompts (M/D/1, Pollaczek-Khinchine)")
R = sheet.define("load_iteration_residual", a * T_v / 2, "s",
                 "mean wait for the running decode-only iteration to end")
S = sheet.define("load_slot_time", W_p + R + s + o * itl, "s", "time a request holds its batch slot")
sheet.define("load_slot_offered_load", queueing.sheet["offered_load"].xreplace({t_s: S}), "dimensionless",
             "slots busy on average (erlangs): the Erlang C argument of wait_probability")
rho_s = sheet.define("load_slot_utilization", queueing.sheet["utilization"].xreplace({t_s: S, servers: B}),
                     "dimensionless", "busy share of the B slots")
sheet.define("load_utilization", _max(rho_s, rho_p), "dimensionless",
             "the binding utilisation (slots or chunk budget); stable below 1")
# Prefill stalls couple the requests in flight: the occupancy is peaked (docstring), and P_W is
# Erlang C of B / z slots at lambda S / z erlangs (``slot_wait_probability``).
z = sheet.define("load_peakedness", 1 / share_free ** 2, "dimensionless",
                 "variance-to-mean ratio of the slot occupancy (prefill stalls couple the requests)")
# With every slot busy, prompts are admitted at departures only: the queue for slots drains as an
# M/D/c queue at the slower of the full-batch capacity and the chunk budget. Without the second, a
# replica whose chunk budget saturates first would show its wait shrinking as the load grows.
drain = sheet.define("load_drain_rate", _min(mu_B, 1 / s), "1/s",
                     "departures per second with every slot busy: full-batch capacity or chunk budget")
SATURATED = {servers: B, t_s: B / drain, ca2: 1, cs2: 0}
W_s = sheet.define("load_slot_wait", queueing.mean_wait.xreplace(SATURATED), "s",
                   "mean wait for a batch slot (M/D/c, Allen-Cunneen, draining at load_drain_rate)")
# A request that waited for a slot takes it at an iteration boundary, when a departure paces the
# admissions: it waits neither for the running iteration nor, as a rule, for another prompt.
sheet.define("load_ttft", W_s + (1 - P_W) * (W_p + R) + s, "s", "mean time to first token at the offered load")

# Percentiles: the wait is a mixture of a slot wait and R + a chunk-budget wait (docstring).
m_s = 1 / queueing.sheet["wait_decay_rate"].xreplace(SATURATED)
m_p = 1 / queueing.sheet["wait_decay_rate"].xreplace(MD1)
y = T_v / m_p
A_s = P_W * exp(-T_v / m_s)
A_p = (1 - P_W) * rho_p * ((1 - a) * exp(-y) + a * (1 - exp(-y)) / y)
at_T = A_s + A_p                                                         # P(wait > T_v)
at_0 = P_W + (1 - P_W) * (1 - (1 - a) * (1 - rho_p))                     # P(wait > 0)


def wait_quantile(level):
    """The ``level``-quantile of the wait: beyond T_v the larger one-term root and one Newton step
    on log P; below T_v the tail interpolated linearly."""
    u0 = _max(0, m_s * log((A_s + TINY) / (1 - level)), m_p * log((A_p + TINY) / (1 - level)))
    e_s, e_p = A_s * exp(-u0 / m_s), A_p * exp(-u0 / m_p)
    u = u0 + log((e_s + e_p + TINY) / (1 - level)) * (e_s + e_p + TINY) / (e_s / m_s + e_p / m_p + TINY / m_p)
    within = T_v * _max(0, at_0 - (1 - level)) / (at_0 - at_T + TINY)
    return Piecewise((T_v + u, at_T >= 1 - level), (within, True))


ttft_q = sheet.define("load_ttft_quantile", s + wait_quantile(q), "s",
                      "q-quantile of the time to first token at the offered load")

# ITL: an iteration a decoding request sees carries a full chunk, the last (partial) chunk of a
# prompt, or none, in the shares (chunk iterations per second) x ITL.
chunk_full = _min(C, p) * w
chunk_last = (p - (k - 1) * C) * w
share_chunk = sheet.define("load_chunk_share", lam * k * itl, "dimensionless",
                           "share of the iterations a decoding request sees that carry a prefill chunk")
share_none = 1 - share_chunk
share_last = lam * itl
itl_q = sheet.define("load_itl_quantile",
                     T_v + Piecewise((0, q <= share_none), (chunk_last, q <= share_none + share_last),
                                     (chunk_full, True)),
                     "s", "q-quantile of the inter-token latency at the offered load")

PERCENTILES = {"p50": sympy.Rational(1, 2), "p90": sympy.Rational(9, 10), "p99": sympy.Rational(99, 100)}
for _pct, _q in PERCENTILES.items():
    sheet.define(f"load_ttft_{_pct}", s + wait_quantile(_q), "s", f"{_pct} time to first token at the offered load")
    sheet.define(f"load_itl_{_pct}", itl_q.xreplace({q: _q}), "s", f"{_pct} inter-token latency at the offered load")


# --- evaluation ----------------------------------------------------------------------------------
LOAD_OUTPUTS = tuple(name for name in sheet.definitions if name.startswith("load_"))
UNBOUNDED_BEYOND_CAPACITY = ("load_prefill_wait", "load_slot_wait", "load_slot_time", "load_ttft",
                             "load_ttft_quantile", *(f"load_ttft_{pct}" for pct in PERCENTILES))
"""Definitions that grow without bound as ``load_utilization`` reaches 1; past it their formulas
mean nothing, and :func:`evaluate` reports them as infinite."""


def slot_wait_probability(batch_size, offered_load, peakedness=1.0):
    """Erlang C of ``c = batch_size / peakedness`` slots at ``a = offered_load / peakedness`` erlangs
    (Hayward), at a real number of slots; NumPy-vectorized.

    Erlang B continued to real c by the incomplete gamma function (Jagerman 1974): the Poisson(a)
    probability of c over that of at most c, ``E = e^-a a^c / Gamma(c + 1) / Q(c + 1, a)``; then
    ``C = E / (1 - rho (1 - E))`` with rho = a / c. At whole c it is queueing.erlang_c."""
    shape = np.broadcast_shapes(*(np.shape(v) for v in (batch_size, offered_load, peakedness)))
    slots, load, z = (np.broadcast_to(np.asarray(v, dtype=float), shape).ravel()
                      for v in (batch_size, offered_load, peakedness))
    if np.any(slots < 1):
        raise ModelDefinitionError("slot_wait_probability needs batch_size >= 1")
    z = np.maximum(z, 1.0)        # below 1 only past lambda t_1 = 1, where nothing is stable anyway
    c, a = slots / z, np.maximum(load / z, 0.0)
    rho = a / c
    out = np.where(a > 0, 1.0, 0.0)
    live = (a > 0) & (rho < 1)
    if np.any(live):
        from scipy.special import gammaincc, gammaln   # here: importing it costs every sheet import 0.2 s
        cl, al = c[live], a[live]
        log_pmf = cl * np.log(al) - al - gammaln(cl + 1)
        blocking = np.minimum(1.0, np.exp(log_pmf) / np.maximum(gammaincc(cl + 1, al), 1e-300))
        out[live] = blocking / (1 - rho[live] * (1 - blocking))
    return out.reshape(shape) if shape else float(out[0])


RATE_STEPS = 20
"""Halvings of a rate bracket: the largest rate to 1e-6 of the bracket, from below (conservative)."""


def largest_rate(holds, upper, steps=RATE_STEPS):
    """The largest rate in [0, upper] at which ``holds(rate)`` (monotone: true, then false) is
    true, by bisection, elementwise: the lower end, where it was seen to hold; 0 where it fails at
    every positive rate. A float for scalar inputs."""
    lo, hi = np.zeros(np.shape(upper)), np.asarray(upper, dtype=float)
    for _ in range(steps):
        mid = (lo + hi) / 2
        ok = holds(mid)
        lo, hi = np.where(ok, mid, lo), np.where(ok, hi, mid)
    return float(lo) if np.ndim(lo) == 0 else lo


def decode_step_alone(costs: dict):
    """T_d(1) of replica inputs ``costs`` (``REPLICA_COSTS`` values, numbers or arrays)."""
    return sheet.compiled(("load_decode_step_alone",)).vector(**costs)["load_decode_step_alone"]


def replica_costs(**values) -> dict:
    """The load model's replica inputs (``REPLICA_COSTS``) from serving_tp's inputs."""
    return sheet.compiled(REPLICA_COSTS).vector(**values)


def evaluate(names=None, **values):
    """The named load definitions (default: all) at ``values``: serving_tp's inputs, or the
    ``REPLICA_COSTS`` directly, plus ``arrival_rate`` (and ``quantile`` for the ``*_quantile``
    definitions). ``wait_probability`` is Erlang C of the slots; the waits are infinite where
    ``load_utilization`` >= 1. Floats when every value is a scalar, else arrays."""
    names = tuple(names or (n for n in LOAD_OUTPUTS if "quantile" in values or not n.endswith("_quantile")))
    scalar = all(np.ndim(v) == 0 for v in values.values())
    if not all(name in values for name in REPLICA_COSTS):
        values = dict(values, **replica_costs(**values))
    first = sheet.compiled(("load_slot_offered_load", "load_peakedness")).vector(**values)
    values = dict(values, wait_probability=slot_wait_probability(values["batch_size"], first["load_slot_offered_load"],
                                                                 first["load_peakedness"]))
    out = sheet.compiled(tuple(dict.fromkeys(names + ("load_utilization",)))).vector(**values)
    # Past lambda t_1 = 1 (prefill alone fills the replica) or the full-batch capacity the formulas
    # leave their domain (negative stretch factors) before load_utilization need reach 1.
    rate = np.asarray(values["arrival_rate"], dtype=float)
    overloaded = ((out["load_utilization"] >= 1) | ~(out["load_utilization"] >= 0)
                  | (rate * values[t1.name] >= 1) | (rate >= values[mu_B.name]))
    result = {name: np.where(overloaded, np.inf, out[name]) if name in UNBOUNDED_BEYOND_CAPACITY else out[name]
              for name in names}
    if "load_utilization" in result:   # at least 1 wherever the replica is overloaded
        util = out["load_utilization"]
        result["load_utilization"] = np.where(overloaded, np.where(util >= 1, util, np.inf), util)
    return {name: float(v) for name, v in result.items()} if scalar else result
