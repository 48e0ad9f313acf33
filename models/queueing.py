"""Wall 4 (Serving), tail latency: requests queueing for c servers.

    rho = lambda * t_s / c                    utilisation (stable iff rho < 1)
    P_W = Erlang C(c, a = lambda * t_s)       probability that a request waits
    P(W_q > x) = P_W * exp(-theta * x),       theta = (c / t_s - lambda) * 2 / (c_a^2 + c_s^2)

| symbol | unit | meaning | source |
|---|---|---|---|
| lambda | 1/s | arrival rate (Poisson unless c_a^2 says otherwise) | input |
| t_s | s | mean service time of one request (or one batch) | ServingModel |
| c | - | servers (replicas) | input |
| P_W | - | Erlang C probability of waiting (numeric helper ``erlang_c`` below) | Erlang 1917; Kleinrock 1975 |
| c_a^2, c_s^2 | - | squared coefficients of variation of inter-arrival and service times (exponential 1, deterministic 0, Erlang-k 1/k) | input |
| q | - | quantile (0.5, 0.99) | input |
| x | s | latency threshold of the sojourn-time tail | input |
| z | - | standard normal quantile of q | input |
| B | request | requests per batch (batch formation) | input |

Exactness:

* M/M/c (c_a^2 = c_s^2 = 1): the waiting time is exactly 0 with probability 1 - P_W and otherwise
  exponential with rate c/t_s - lambda; the sojourn time (wait + own exponential service) has the
  closed-form tail below (a mixture of an exponential and a hypoexponential), inverted numerically.
* Other service/arrival variability (M/D/c, batches as the service unit): the Allen-Cunneen
  approximation (Allen 1990), Kingman's heavy-traffic factor (c_a^2 + c_s^2) / 2 applied to the
  M/M/c mean wait, and the same factor applied to the decay rate of the conditional waiting-time
  tail, which stays exponential. It is exact for the M/D/1 mean wait (Pollaczek-Khinchine) and an
  approximation for every quantile. Deterministic service adds exactly t_s to each wait quantile.
* Batch formation: a request that opens a batch of B waits for B - 1 more Poisson arrivals, a
  Gamma(B - 1, lambda) time; its quantile uses the Wilson-Hilferty cube-root approximation of the
  chi-square quantile (Wilson & Hilferty 1931), accurate to about 1 % at B = 2 and better above.

Erlang C is a sum over the servers, which a closed-form SymPy expression over a symbolic c cannot
hold, so it is the numeric helper ``erlang_c`` (log-space, stable for thousands of servers); its
value enters the sheet as the input ``wait_probability``.
"""
from __future__ import annotations

import math

import numpy as np

from sympy import Abs  # allowed node (compile/rules.py); not re-exported by mlsysim_opt.symbolic

from mlsysim_opt.symbolic import Piecewise, Sheet, exp, log, sqrt, sym

from .memory import B

lam = sym("arrival_rate", "1/s", "request arrival rate", "input")
t_s = sym("service_time", "s", "mean service time of one unit of work", "input", lower=1e-30)
c = sym("servers", "dimensionless", "servers (replicas) working in parallel", "input", lower=1, integer=True)
P_W = sym("wait_probability", "dimensionless", "probability that an arrival waits (Erlang C)",
          "Erlang C (erlang_c helper)", upper=1.0)
ca2 = sym("arrival_cv2", "dimensionless", "squared coefficient of variation of inter-arrival times", "input")
cs2 = sym("service_cv2", "dimensionless", "squared coefficient of variation of service times", "input")
q = sym("quantile", "dimensionless", "quantile of a latency distribution", "input", upper=1.0)
x = sym("latency_threshold", "s", "latency at which a tail probability is evaluated", "input")
z = sym("normal_quantile", "dimensionless", "standard normal quantile of q", "input", lower=None)

sheet = Sheet("queueing", "Tail latency: M/M/c (Erlang C), M/D/c and batch formation (Allen-Cunneen)",
              walls=[4], iron_law_term="Latency (queueing)",
              sources=["Kleinrock 1975, Queueing Systems Vol. 1", "Allen 1990, Probability, Statistics and Queueing Theory",
                       "Kingman 1961, The single server queue in heavy traffic",
                       "Wilson & Hilferty 1931, The distribution of chi-square"])

mu = 1 / t_s
sheet.define("service_rate", mu, "1/s", "completions per second of one server")
sheet.define("offered_load", lam * t_s, "dimensionless", "offered load a in erlangs")
sheet.define("utilization", lam * t_s / c, "dimensionless", "fraction of time each server is busy")

variability = (ca2 + cs2) / 2                     # Kingman / Allen-Cunneen factor; 1 for M/M/c
theta = (c * mu - lam) / variability
sheet.define("wait_decay_rate", theta, "1/s", "rate of the exponential tail of the wait, given a wait")
mean_wait = sheet.define("mean_wait", P_W / theta, "s", "mean time in queue")
wait_quantile = sheet.define("wait_quantile", Piecewise((0, P_W <= 1 - q), (log(P_W / (1 - q)) / theta, True)),
                             "s", "q-quantile of the time in queue")
sheet.define("mean_sojourn", mean_wait + t_s, "s", "mean time in the system (wait + service)")
sheet.define("sojourn_quantile_deterministic", wait_quantile + t_s, "s",
             "q-quantile of the time in the system when every service takes exactly t_s")

# P(T > x) for exponential service: no wait (prob 1 - P_W) -> Exp(mu); a wait -> Exp(theta) + Exp(mu).
_hypo = Piecewise(((theta * exp(-mu * x) - mu * exp(-theta * x)) / (theta - mu), Abs(theta - mu) > 1e-9 * mu),
                  (exp(-mu * x) * (1 + mu * x), True))
sheet.define("sojourn_tail_exponential", (1 - P_W) * exp(-mu * x) + P_W * _hypo, "dimensionless",
             "probability that the time in the system exceeds x (M/M/c: exact)")

# A request opening a batch of B waits for B - 1 more arrivals: Gamma(B - 1, lambda).
nu = 2 * (B - 1)
_wilson_hilferty = nu * (1 - 2 / (9 * nu) + z * sqrt(2 / (9 * nu))) ** 3 / (2 * lam)
sheet.define("batch_formation_wait_quantile", Piecewise((0, B <= 1), (_wilson_hilferty, True)), "s",
             "q-quantile of the wait of the first request of a batch for the batch to fill")
sheet.define("batch_formation_wait_mean", (B - 1) / (2 * lam), "s",
             "mean wait for the batch to fill, averaged over the positions in the batch")


def erlang_c(servers: int, offered_load, utilization=None):
    """Probability of waiting in M/M/c (Erlang C), in log space; broadcasts over ``offered_load``.

    ``P_W = T_c / (sum_{k<c} a^k/k! + T_c)`` with ``T_c = a^c / (c! (1 - rho))``. Unstable loads
    (rho >= 1) give 1, an idle system (a = 0) gives 0."""
    a = np.asarray(offered_load, dtype=float)
    rho = a / servers if utilization is None else np.asarray(utilization, dtype=float)
    out = np.ones(np.broadcast_shapes(a.shape, rho.shape))
    ok = (rho < 1) & (a > 0)
    out = np.where(a <= 0, 0.0, out)
    if np.any(ok):
        a_ok, rho_ok = np.broadcast_to(a, out.shape)[ok], np.broadcast_to(rho, out.shape)[ok]
        k = np.arange(servers, dtype=float)
        log_fact = np.array([math.lgamma(i + 1.0) for i in range(servers + 1)])
        log_a = np.log(a_ok)[:, None]
        terms = k[None, :] * log_a - log_fact[None, :servers]
        log_tc = servers * np.log(a_ok) - log_fact[servers] - np.log1p(-rho_ok)
        every = np.concatenate([terms, log_tc[:, None]], axis=1)
        peak = every.max(axis=1)
        log_total = peak + np.log(np.exp(every - peak[:, None]).sum(axis=1))
        out[ok] = np.exp(log_tc - log_total)
    return out if out.shape else float(out)
