"""Goodput: how many requests per second one serving replica takes while its latencies meet the SLA.

A latency SLA is a limit on a percentile of TTFT, ITL or end-to-end latency (default p90, as
DistServe, Zhong et al. 2024, and Vidur, Agrawal et al. 2024, state SLOs). Under continuous
batching every one of them grows with the load: the ``serving_load`` sheet gives them as functions
of the arrival rate. A replica's goodput is the largest arrival rate at which every limited
percentile holds and the replica is stable; DistServe calls it per-GPU goodput when divided by
the accelerators. Fleets are then sized at their goodput, so the SLA holds at the load each
replica actually carries, instead of at zero load with a fixed utilization margin.

    goodput = sup { lambda < stable :  TTFT_q(lambda) <= TTFT_max,  ITL_q(lambda) <= ITL_max,
                                       TTFT_q(lambda) + o ITL(lambda) <= E2E_max }

Each latency rises with lambda, so the set is an interval from zero load; the supremum is found by
bisection on every configuration at once (NumPy), and the reported value is the lower end, which
was checked to meet the SLA. A configuration whose latencies at zero load already miss a limit has
goodput zero.

Pipeline parallelism: the load sheet models one iteration loop. A replica of q stages runs q
micro-batches of B slots; it is taken as q loops, each with 1/q of the arrivals and draining at
1/q of the replica's full-batch capacity (serving_tp's ``cb_capacity``, which already counts the q
micro-batches). Expert parallelism likewise: e groups, each with its own B slots and iteration
loop, share the experts; the replica is q e loops.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict

from mlsysim_opt.errors import InputError
from mlsysim_opt.units import unit_factor

PERCENTILES = {"mean": None, "p50": 0.5, "p90": 0.9, "p99": 0.99}
"""The percentile names a query may use; a number in (0, 1) names any other quantile."""
DEFAULT_PERCENTILE = "p90"


def percentile_level(value) -> tuple[str, Optional[float]]:
    """(label, quantile) of a percentile given as "p90", "p99.9", "mean" or a quantile such as 0.9;
    the quantile is None for the mean."""
    if isinstance(value, str):
        key = value.strip().lower()
        if key in PERCENTILES:
            return key, PERCENTILES[key]
        if key.startswith("p"):
            try:
                return percentile_level(float(key[1:]) / 100)
            except (InputError, ValueError):
                pass
        raise InputError("percentile", value, "must be 'mean', 'p50', 'p90', 'p99' or a quantile in (0, 1)",
                         "e.g. percentile='p99' or percentile=0.95")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError("percentile", value, "must be 'mean', 'p50', 'p90', 'p99' or a quantile in (0, 1)")
    level = float(value)
    if not 0 < level < 1:
        raise InputError("percentile", value, "must be a quantile in (0, 1), or a name such as 'p95'",
                         "e.g. 0.9 or 'p90'")
    for label, known in PERCENTILES.items():
        if known is not None and abs(known - level) < 1e-12:
            return label, known
    return f"p{100 * level:g}", level


def _load_sheet():
    from mlsysim_opt.models import serving_load
    return serving_load


def load_inputs(configs: Sequence) -> dict[str, np.ndarray]:
    """The ``serving_load`` sheet's inputs of each configuration (arrays): its replica costs (from
    serving_tp), batch slots, chunk, prompt and output tokens, and its iteration loops ``loops``:
    pipeline stages x expert-parallel groups, each with its own slots and its share of the arrivals."""
    sl = _load_sheet()
    values = {name: np.array([c.replica_costs[name] for c in configs], dtype=float) for name in sl.REPLICA_COSTS}
    values.update(batch_size=np.array([c.batch_size for c in configs], dtype=float),
                  prefill_chunk_tokens=np.array([c.chunk_tokens for c in configs], dtype=float),
                  prompt_tokens=np.array([c.prompt_tokens for c in configs], dtype=float),
                  output_tokens=np.array([c.output_tokens for c in configs], dtype=float),
                  loops=np.array([c.pp * c.ep for c in configs], dtype=float))
    return values


def _per_loop(inputs: dict, rate) -> dict:
    """One iteration loop's inputs at a replica arrival rate (module docstring: pipeline stages and
    expert-parallel groups)."""
    loop = {k: v for k, v in inputs.items() if k != "loops"}
    loop["arrival_rate"] = np.asarray(rate, dtype=float) / inputs["loops"]
    loop["replica_capacity"] = inputs["replica_capacity"] / inputs["loops"]
    return loop


def latencies(inputs: dict, rate, level: Optional[float]) -> dict[str, np.ndarray]:
    """TTFT, ITL and end-to-end latency (s) at ``level`` (None: the mean) and each replica's arrival
    rate ``rate``, with the means and the binding utilization (stable below 1)."""
    values = _per_loop(inputs, rate)
    names = ["load_ttft", "load_itl", "load_utilization"]
    if level is not None:
        names += ["load_ttft_quantile", "load_itl_quantile"]
        values["quantile"] = np.full_like(values["arrival_rate"], level)
    out = _load_sheet().evaluate(tuple(names), **values)
    ttft = out["load_ttft_quantile"] if level is not None else out["load_ttft"]
    itl = out["load_itl_quantile"] if level is not None else out["load_itl"]
    return {"ttft": ttft, "itl": itl, "e2e_latency": ttft + inputs["output_tokens"] * out["load_itl"],
            "ttft_mean": out["load_ttft"], "itl_mean": out["load_itl"], "utilization": out["load_utilization"]}


def floors(inputs: dict) -> dict[str, np.ndarray]:
    """Each latency at zero load (s): one request alone; every percentile equals it there."""
    step = _load_sheet().decode_step_alone({k: inputs[k] for k in _load_sheet().REPLICA_COSTS})
    ttft = inputs["replica_prefill_time"]
    return {"ttft": ttft, "itl": np.broadcast_to(step, ttft.shape), "e2e_latency": ttft + inputs["output_tokens"] * step}


def stable_bound(inputs: dict) -> np.ndarray:
    """An arrival rate per replica at or past the stable load: the chunk budget saturates before
    1 / t_1 per loop, the slots before the full-batch capacity."""
    return inputs["loops"] * np.minimum(1.0 / inputs["replica_prefill_time"],
                                        inputs["replica_capacity"] / inputs["loops"])


def goodput(inputs: dict, limits_s: dict[str, float], level: Optional[float]) -> np.ndarray:
    """Requests per second per replica at which every limit in ``limits_s`` (``ttft``, ``itl``,
    ``e2e_latency``; seconds, at ``level``) holds and the replica is stable; zero where even zero
    load misses a limit. Without limits: just below the stable load."""
    rates = np.zeros_like(inputs["replica_prefill_time"])
    alone = floors(inputs)
    ok0 = np.ones(rates.shape, dtype=bool)
    for key, limit in limits_s.items():
        ok0 &= alone[key] <= limit
    live = np.flatnonzero(ok0)
    if not len(live):
        return rates
    sub = {k: v[live] for k, v in inputs.items()}

    def holds(rate):
        out = latencies(sub, rate, level)
        ok = out["utilization"] < 1
        for key, limit in limits_s.items():
            ok &= out[key] <= limit
        return ok
    rates[live] = _load_sheet().largest_rate(holds, stable_bound(sub))
    return rates


# ----------------------------------------------------------------------------------------------
# configurations at an SLA, and the latencies a planned replica shows


class LoadPoint(BaseModel):
    """A replica at the load it is planned to carry: its latencies at the SLA's percentile (ms)."""

    model_config = ConfigDict(frozen=True)

    percentile: str
    qps_per_replica: float
    ttft_ms: float
    itl_ms: float
    e2e_latency_ms: float
    ttft_mean_ms: float
    itl_mean_ms: float
    utilization: float
    goodput_qps: float
    """The load per replica at which the SLA still holds (the fleet's replicas carry at most this)."""

    def latency_ms(self, limit: str) -> float:
        return {"ttft": self.ttft_ms, "itl": self.itl_ms, "e2e_latency": self.e2e_latency_ms}[limit]

    def __str__(self) -> str:
        return (f"at {self.qps_per_replica:,.2f} QPS per replica: TTFT {self.percentile} {self.ttft_ms:.1f} ms "
                f"(mean {self.ttft_mean_ms:.1f}), ITL {self.percentile} {self.itl_ms:.2f} ms "
                f"(mean {self.itl_mean_ms:.2f}); goodput {self.goodput_qps:,.2f} QPS per replica")


def _limits_s(limits_ms: dict[str, float]) -> dict[str, float]:
    factor = unit_factor("ms", "s")
    return {k: v * factor for k, v in limits_ms.items()}


def apply_sla(configs: Sequence, limits_ms: dict[str, float], percentile=DEFAULT_PERCENTILE, *,
              keep_unmet: bool = False) -> list:
    """The configurations that meet the SLA at some load, each with its goodput and percentile set
    (``limits_ms``: ``{"ttft": ms, "itl": ms, "e2e_latency": ms}``). With ``keep_unmet`` the others
    follow, planned at their stable load: for explaining which limit rules them out."""
    label, level = percentile_level(percentile)
    if not configs:
        return []
    inputs = load_inputs(configs)
    rates = goodput(inputs, _limits_s(limits_ms), level)
    if keep_unmet and not np.all(rates > 0):
        unmet = np.flatnonzero(rates <= 0)
        rates[unmet] = goodput({k: v[unmet] for k, v in inputs.items()}, {}, level)
    return [c.replaced(goodput_qps=r, percentile=label) for c, r in zip(configs, rates.tolist()) if r > 0]


def operating_point(config, qps_per_replica: float) -> LoadPoint:
    """The latencies of ``config`` at ``qps_per_replica``, at its SLA's percentile (p90 if none)."""
    label, level = percentile_level(config.percentile or DEFAULT_PERCENTILE)
    out = latencies(load_inputs([config]), np.array([qps_per_replica], dtype=float), level)
    ms = unit_factor("s", "ms")
    return LoadPoint(percentile=label, qps_per_replica=float(qps_per_replica),
                     ttft_ms=float(out["ttft"][0]) * ms, itl_ms=float(out["itl"][0]) * ms,
                     e2e_latency_ms=float(out["e2e_latency"][0]) * ms, ttft_mean_ms=float(out["ttft_mean"][0]) * ms,
                     itl_mean_ms=float(out["itl_mean"][0]) * ms, utilization=float(out["utilization"][0]),
                     goodput_qps=float(config.planned_qps))
