"""``LoadedReplicaModel``: the latency of one continuously batched serving replica at an offered
load (Wall 4 under load). TTFT and ITL, mean and percentiles, as functions of the arrival rate.

The equations are the ``serving_load`` sheet (models/serving_load.py), fed with the replica's costs
from the ``serving_tp`` sheet; this module validates the arguments, maps them to the two sheets'
inputs and puts units back on what the sheets return. docs/walls/serving-under-load.md describes
the model and its limits.

Pipeline parallelism. The load sheet describes one iteration loop with B batch slots. A replica of
``pp`` stages keeps ``pp`` micro-batches in flight (serving_tp), so it is taken here as ``pp``
independent loops: each receives ``arrival_rate / pp``, has B slots, runs the replica's decode step
and prefill (serving_tp at ``pp_size = pp``: a token's pass through every stage), and drains a
full batch at ``cb_capacity / pp`` (its ``replica_capacity`` input). The latencies of the replica
are those of one loop. serving_tp's ``cb_capacity`` charges every prompt's whole prefill to the
replica while each loop overlaps its prefill with the other loops' work, so for ``pp > 1`` the
replica becomes unstable at ``cb_capacity`` (the arrival rate its loops drain at), usually before
the loops' own chunk budgets saturate; the latencies just below that rate are optimistic.
"""
from __future__ import annotations

import math
import numbers
from decimal import Decimal
from functools import lru_cache
from textwrap import fill, indent
from typing import Optional, Union

import numpy as np
import pint
from pydantic import PrivateAttr

from .. import inputs as _in
from ..catalog import default_node_for
from ..errors import InputError
from ..results import Result
from ..types import PRECISION_BYTES
from ..units import as_quantity, sheet_quantity
from .quantities import input_quantity
from .serving import (DEFAULT_PREFILL_CHUNK_TOKENS, ServingCase, ServingResult, language_model, precision_fields,
                      precision_line, serving_case)

NAMED_PERCENTILES = ("p50", "p90", "p99")
"""Percentiles the load sheet defines explicitly (``load_ttft_p50`` ...); others go through
``load_ttft_quantile`` / ``load_itl_quantile`` at the ``quantile`` input."""

LOAD_FIELDS = {
    # LoadedReplicaResult field: (serving_load definition, unit of the field)
    "ttft_mean": ("load_ttft", "ms"), "ttft_p50": ("load_ttft_p50", "ms"), "ttft_p90": ("load_ttft_p90", "ms"),
    "ttft_p99": ("load_ttft_p99", "ms"),
    "itl_mean": ("load_itl", "ms"), "itl_p50": ("load_itl_p50", "ms"), "itl_p90": ("load_itl_p90", "ms"),
    "itl_p99": ("load_itl_p99", "ms"),
    "slot_wait": ("load_slot_wait", "ms"), "prefill_wait": ("load_prefill_wait", "ms"),
}
UTILIZATIONS = ("load_slot_utilization", "load_prefill_utilization")
SLOT_WAIT_INPUTS = ("load_slot_offered_load", "load_peakedness")
"""The definitions ``serving_load.slot_wait_probability`` (Erlang C, Hayward) is evaluated at."""
LOOP_OUTPUTS = tuple(dict.fromkeys([name for name, _ in LOAD_FIELDS.values()] + list(UTILIZATIONS)
                                   + list(SLOT_WAIT_INPUTS) + ["load_decoding_requests"]))
WIDTH = 110
"""Line width of the text summary."""
BOTTLENECKS = ("slots", "prefill chunk budget", "full-batch capacity")
REPLICA_OUTPUTS = ("cb_ttft", "cb_capacity", "tp_memory_utilization")


@lru_cache(maxsize=None)
def _replica_function():
    from ..models import serving_tp
    return serving_tp.sheet.compiled(REPLICA_OUTPUTS)


def _load_sheet():
    from ..models import serving_load
    return serving_load


def _evaluate(names, loop: dict) -> dict:
    """The load sheet's ``names`` for one loop. At the full-batch capacity the slot wait divides by
    zero: numpy's infinity, reported as such (no warning)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return _load_sheet().evaluate(names, **loop)


# ------------------------------------------------------------------------------------------------
# inputs


def arrival_rate_per_second(value, field: str = "arrival_rate") -> float:
    """An offered load as requests per second: a number (per second), a quantity or a string such as
    ``"5 /s"`` or ``"300 /min"``; finite and >= 0."""
    rate = float(as_quantity(value, "1/s", field, example="5 /s").magnitude)
    if math.isnan(rate) or math.isinf(rate) or rate < 0:
        raise InputError(field, value, "must be a finite rate >= 0 requests per second",
                         "pass e.g. 5 (per second), '5 /s' or '300 /min'")
    return rate


def percentile_level(value, field: str = "percentile") -> Union[str, float]:
    """``"mean"``, one of ``NAMED_PERCENTILES``, or a quantile in (0, 1) as a float (``"p95"`` is 0.95)."""
    rule = "must be 'mean', 'p50', 'p90', 'p99' (or 'pNN') or a quantile strictly between 0 and 1"
    fix = "e.g. 'p99' or 0.95 for the 95th percentile"
    if isinstance(value, str):
        key = value.strip().lower()
        if key == "mean" or key in NAMED_PERCENTILES:
            return key
        try:
            level = float(Decimal(key[1:]).scaleb(-2)) if key.startswith("p") else math.nan   # p95 -> 0.95
        except (ArithmeticError, ValueError):
            level = math.nan
        if 0 < level < 1:
            return level
        raise InputError(field, value, rule, fix)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InputError(field, value, rule, fix)
    level = float(value)
    if not 0 < level < 1:   # NaN fails too
        raise InputError(field, value, rule, fix)
    return level


def replica_values(case: ServingCase, *, tp: int, pp: int, ep: int = 1) -> dict:
    """serving_tp's inputs for one replica of ``case`` (as formulations.serving_grid maps them, with
    the case's prefill chunk size and KV reservation): the case's values plus the model's hidden size,
    the node's intra-node link, the activation bytes of the compute precision and the memory capacity."""
    from .distributed import replica_link_values
    return dict(case.values, **replica_link_values(default_node_for(case.hardware)),
                hidden_size=float(case.model.hidden_size),
                activation_bytes_per_value=PRECISION_BYTES[case.choice.compute_precision],
                memory_capacity=case.hardware.memory.capacity.m_as("B"), tp_size=float(tp), pp_size=float(pp),
                ep_size=float(ep))


def check_split(case: ServingCase, tp: int, pp: int, ep: int = 1) -> None:
    """A replica's TP x PP split must shard the heads evenly, have a layer per stage and fit in one node
    (its links are the node's intra-node links)."""
    wl = case.model
    if ep > 1 and (not wl.is_moe or wl.experts % ep):
        why = f"{wl.name} is dense" if not wl.is_moe else f"it must divide the {wl.experts} experts of {wl.name}"
        raise InputError("ep", ep, f"is not an expert-parallel degree here: {why}",
                         "leave ep at 1" if not wl.is_moe else "pick a divisor of the experts")
    if not wl.shards_over(tp):
        divisors = [d for d in range(1, wl.heads + 1) if wl.shards_over(d)]
        raise InputError("tp", tp, f"must divide the {wl.heads} attention heads and {wl.n_kv_heads} KV heads "
                         f"of {wl.name}", f"pick one of {divisors}")
    if pp > wl.layers:
        raise InputError("pp", pp, f"must be at most the {wl.layers} layers of {wl.name}", "lower pp")
    node = default_node_for(case.hardware)
    if tp * pp > node.accelerators_per_node:
        raise InputError("tp", tp, f"x pp ({pp}) must fit in one {node.name} ({node.accelerators_per_node} "
                         "accelerators): TP and PP links are intra-node (EP groups may span nodes)",
                         "lower tp or pp")


# ------------------------------------------------------------------------------------------------
# result


class LoadedReplicaResult(Result):
    """One continuously batched replica at an offered load: TTFT and ITL (mean, p50, p90, p99), the
    zero-load TTFT and full-load capacity it departs from, and whether the load is sustainable.

    ``utilization`` is the binding one of three (named in ``bottleneck``): the slots' and the prefill
    chunk budget's (the sheet's ``load_utilization`` is the larger of the two) and the arrival rate
    over the full-batch capacity, at which the queue for slots drains; stable below 1.
    Past stability the waits grow without bound: ``stable`` is False, every TTFT and mean wait is
    infinite and ``slot_wait_probability`` is 1; ITL and ``mean_batch`` are those of the requests
    admitted, at the arrival rate or, past the full-batch capacity, at that capacity (departures
    pace the admissions). ``ttft(level)`` and ``itl(level)`` take ``"mean"``, ``"p50"``,
    ``"p90"``, ``"p99"`` or a quantile in (0, 1)."""

    model: str
    hardware: str
    precision: str
    weight_precision: str
    compute_precision: str
    kv_precision: str
    prompt_len: int
    output_len: int
    batch_size: int
    prefill_chunk_tokens: int
    tp: int
    pp: int
    efficiency: float
    arrival_rate: pint.Quantity
    ep: int = 1
    ttft_mean: pint.Quantity
    ttft_p50: pint.Quantity
    ttft_p90: pint.Quantity
    ttft_p99: pint.Quantity
    itl_mean: pint.Quantity
    itl_p50: pint.Quantity
    itl_p90: pint.Quantity
    itl_p99: pint.Quantity
    zero_load_ttft: pint.Quantity
    full_load_capacity: pint.Quantity
    utilization: float
    bottleneck: str
    slot_wait_probability: float
    slot_wait: pint.Quantity
    prefill_wait: pint.Quantity
    mean_batch: float
    stable: bool
    unstable_reason: Optional[str] = None
    memory_utilization: float
    feasible: bool
    infeasibility_reason: Optional[str] = None
    precision_fallback: Optional[str] = None

    _loop: dict = PrivateAttr(default_factory=dict)
    """The load sheet's inputs of one iteration loop (for quantiles other than the named ones)."""

    def ttft(self, percentile="mean") -> pint.Quantity:
        """Time to first token: ``"mean"``, ``"p50"``, ``"p90"``, ``"p99"`` or a quantile in (0, 1)."""
        return self._latency("ttft", percentile)

    def itl(self, percentile="mean") -> pint.Quantity:
        """Inter-token latency: ``"mean"``, ``"p50"``, ``"p90"``, ``"p99"`` or a quantile in (0, 1)."""
        return self._latency("itl", percentile)

    def _latency(self, kind: str, percentile) -> pint.Quantity:
        level = percentile_level(percentile)
        if isinstance(level, str):
            return getattr(self, f"{kind}_{level}")
        name = f"load_{kind}_quantile"
        if kind == "ttft" and not self.stable:
            value = math.inf
        else:
            value = _evaluate((name,), dict(self._loop, quantile=level))[name]
        return sheet_quantity(_load_sheet().sheet, name, value, "ms")

    def __str__(self) -> str:
        split = f"TP{self.tp}" + (f" x PP{self.pp}" if self.pp > 1 else "") + (f" x EP{self.ep}" if self.ep > 1 else "")
        rate, cap = self.arrival_rate.m_as("1/s"), self.full_load_capacity.m_as("1/s")
        lines = [
            f"LoadedReplicaResult: {self.model} on {self.hardware} ({self.precision}, {split}), "
            f"{self.batch_size} batch slots, prefill chunks of {self.prefill_chunk_tokens} tokens",
            f"  formats: {precision_line(self)}",
            f"  requests: {self.prompt_len} prompt + {self.output_len} output tokens, "
            f"arrivals {rate:.4g} /s ({rate / cap:.0%} of the full-load capacity {cap:.4g} /s)",
        ]
        if self.stable:
            lines.append(f"  stable: utilisation {self.utilization:.3f} ({self.bottleneck} binds); "
                         f"P(wait for a slot) {_shown(self.slot_wait_probability, '.3g')}; "
                         f"{self.mean_batch:.1f} requests decoding on average")
        else:
            lines.append(fill(f"UNSTABLE: {self.unstable_reason}", WIDTH, initial_indent="  ",
                              subsequent_indent="    "))
        lines.append(f"  {'':<10}{'mean':>12}{'p50':>12}{'p90':>12}{'p99':>12}")
        for kind in ("ttft", "itl"):
            cells = "".join(f"{getattr(self, f'{kind}_{k}').m_as('ms'):>12.4g}" for k in ("mean", *NAMED_PERCENTILES))
            lines.append(f"  {kind.upper() + ' (ms)':<10}{cells}")
        lines.append(f"  zero-load TTFT {self.zero_load_ttft.m_as('ms'):.4g} ms (one request alone); mean waits: "
                     f"slot {_shown(self.slot_wait.m_as('ms'))} ms, prefill chunk budget "
                     f"{_shown(self.prefill_wait.m_as('ms'))} ms")
        loops = self.pp * self.ep
        if loops > 1:
            lines.append(f"  {loops} iteration loops (pipeline micro-batches x expert-parallel groups), each "
                         f"{rate / loops:.4g} /s with {self.batch_size} slots")
        if not self.feasible:
            lines.append(f"  DOES NOT FIT: {self.infeasibility_reason}")
        if self.precision_fallback:
            lines.append(f"  precision: {self.precision_fallback}")
        return "\n".join(lines)


ServingResult.model_rebuild(_types_namespace={"LoadedReplicaResult": LoadedReplicaResult})


def _shown(value: float, spec: str = ".4g") -> str:
    """A number for the text summary: values below one part in a million (Erlang C tails such as
    1e-40) shown as below that."""
    return "< 1e-6" if 0 < value < 1e-6 else format(value, spec)


def text_with_load(result: Result) -> str:
    """A result's text with its ``load`` field (a :class:`LoadedReplicaResult` or None, the last field)
    as an indented section, or left out when it is None."""
    head = Result.__str__(result.model_copy(update={"load": None})).rsplit("\n", 1)[0]
    if result.load is None:
        return head
    return head + "\n  load (at the offered arrival rate):\n" + indent(str(result.load), "    ")


# ------------------------------------------------------------------------------------------------
# solver


def loaded_replica(case: ServingCase, arrival_rate, *, tp: int = 1, pp: int = 1, ep: int = 1) -> LoadedReplicaResult:
    """The load sheet evaluated for the replica ``case`` describes (its batch size is the number of
    slots), with ``tp`` x ``pp`` x ``ep`` accelerators, at ``arrival_rate`` requests per second."""
    lam = arrival_rate_per_second(arrival_rate)
    tp, pp, ep = _in.positive_int(tp, "tp"), _in.positive_int(pp, "pp"), _in.positive_int(ep, "ep")
    if case.output_len < 1:
        raise InputError("output_len", case.output_len, "must be >= 1 generated token for the latency under load",
                         "raise output_len (or seq_len)")
    check_split(case, tp, pp, ep)
    load = _load_sheet()
    values = replica_values(case, tp=tp, pp=pp, ep=ep)
    replica = _replica_function()(**values)
    cap = float(replica["cb_capacity"])
    costs = {name: float(v) for name, v in load.replica_costs(**values).items()}
    # pp x ep loops, each with B slots, a share of the arrivals and of the full-batch drain rate. Past
    # the full-batch capacity, departures pace the admissions: the requests in flight see that rate.
    beyond = not lam < cap
    admitted = np.float64(min(lam, cap))
    loops = pp * ep
    loop = dict(values, **dict(costs, replica_capacity=cap / loops), arrival_rate=admitted / loops)
    out = _evaluate(LOOP_OUTPUTS, loop)
    rho_slots, rho_prefill = (float(out[name]) for name in UTILIZATIONS)
    rate_q = input_quantity(lam, "arrival_rate", "1/s")
    capacity_q = sheet_quantity(_tp_sheet(), "cb_capacity", cap, "1/s")
    # The binding utilisation: the slots' and the chunk budget's (the sheet's load_utilization is the
    # larger), and the arrivals over the full-batch capacity the slot queue drains at. The slots'
    # counts only while the chunk budget keeps up (its wait enters their holding time); past the
    # capacity the sheet is evaluated at the admitted rate, and the capacity alone binds.
    candidates = {BOTTLENECKS[2]: (rate_q / capacity_q).m_as("")}
    if not beyond:
        candidates[BOTTLENECKS[1]] = rho_prefill
        if rho_prefill < 1:
            candidates[BOTTLENECKS[0]] = rho_slots
    bottleneck = max(candidates, key=candidates.get)
    utilization = candidates[bottleneck]
    stable = utilization < 1
    reason = None
    if stable:
        p_wait = float(load.slot_wait_probability(values["batch_size"], out["load_slot_offered_load"],
                                                  out["load_peakedness"]))
    else:
        out.update({name: math.inf for name in load.UNBOUNDED_BEYOND_CAPACITY if name in out})
        p_wait = 1.0
        if bottleneck == BOTTLENECKS[2]:
            reason = f"the arrivals reach the full-batch capacity ({cap:.4g} requests/s, serving_tp's cb_capacity)"
        else:
            reason = f"the {bottleneck} saturate (utilisation {utilization:.3g} >= 1)"
        reason += "; the queue grows without bound, so TTFT is infinite: lower the load or add replicas"
    memory = float(replica["tp_memory_utilization"])
    feasible = memory <= 1.0
    why_not = None if feasible else (
        f"the replica needs {memory:.2f}x the memory of its {tp * pp * ep} x {case.hardware.name} for "
        f"{int(values['batch_size'])} slots of {int(values['reserved_context'])} KV tokens: lower batch_size or "
        "raise tp or pp")
    result = LoadedReplicaResult(
        model=case.model.name, hardware=case.hardware.name, **precision_fields(case),
        prompt_len=case.prompt_len, output_len=case.output_len, batch_size=int(values["batch_size"]),
        prefill_chunk_tokens=int(values["prefill_chunk_tokens"]), tp=tp, pp=pp, ep=ep, efficiency=values["efficiency"],
        arrival_rate=rate_q,
        **{field: sheet_quantity(load.sheet, name, out[name], unit) for field, (name, unit) in LOAD_FIELDS.items()},
        zero_load_ttft=sheet_quantity(_tp_sheet(), "cb_ttft", replica["cb_ttft"], "ms"),
        full_load_capacity=capacity_q, utilization=float(utilization), bottleneck=bottleneck,
        mean_batch=float(out["load_decoding_requests"]), slot_wait_probability=p_wait, stable=bool(stable),
        unstable_reason=reason,
        memory_utilization=memory, feasible=feasible, infeasibility_reason=why_not,
        precision_fallback=case.choice.fallback)
    result._loop = loop
    return result


def _tp_sheet():
    from ..models import serving_tp
    return serving_tp.sheet


class LoadedReplicaModel:
    """One continuously batched replica (iteration-level scheduling, chunked prefill) under a Poisson
    offered load: TTFT and ITL, mean and p50/p90/p99, from the ``serving_load`` sheet.

    ``arrival_rate``: requests per second to this replica (a number, a quantity or a string such as
    ``"5 /s"`` or ``"300 /min"``). ``batch_size``: batch slots (requests in flight at most, their KV
    reserved for ``prompt_len + output_len`` tokens). ``prefill_chunk_tokens``: prompt tokens per
    iteration. ``tp`` x ``pp`` accelerators of one node per replica; ``pp > 1`` is modelled as ``pp``
    independent micro-batch loops (see the module docstring). A mixture of experts may add ``ep``
    expert-parallel groups sharing one copy of the experts (a replica of tp x pp x ep accelerators,
    across nodes when larger than one; each group is one more loop with its own slots).
    ``precision`` (weights), ``compute_precision`` and ``kv_precision`` are separate formats with
    the defaults of :class:`~mlsysim_opt.solvers.serving.ServingModel` (KV cache fp16)."""

    def solve(self, model, hardware, *, arrival_rate, prompt_len=512, output_len=256, batch_size=64,
              prefill_chunk_tokens=DEFAULT_PREFILL_CHUNK_TOKENS, precision="fp16", tp=1, pp=1,
              efficiency=None, ep=1, kv_precision=None, compute_precision=None) -> LoadedReplicaResult:
        arrival_rate_per_second(arrival_rate)          # the rate's error first: it is the question asked
        wl = language_model(model)
        prompt = _in.positive_int(prompt_len, "prompt_len")
        output = _in.positive_int(output_len, "output_len")
        case = serving_case(wl, hardware, prompt + output, batch_size, precision, efficiency, kv_precision, prompt,
                            output, prefill_chunk_tokens=prefill_chunk_tokens, compute_precision=compute_precision)
        return loaded_replica(case, arrival_rate, tp=tp, pp=pp, ep=ep)
