"""``DistributedModel``: one training step of a transformer on a fleet, split TP x PP x DP
(``models/distributed.py``, ``models/training_memory.py``, ``models/collectives.py``)."""
from __future__ import annotations

import math
import numbers
from functools import lru_cache
from typing import Any, Optional

import numpy as np
import pint
from pydantic import PrivateAttr

from .. import inputs as _in
from ..compile.numeric import CompiledFunction, compile_expressions
from ..errors import InputError, UnknownNameError
from ..profiles import factors as profile_factors
from ..results import Result
from ..types import Fleet, TransformerWorkload
from ..units import as_quantity, quantity_factory
from .quantities import field_converters, quantities, scale

RECOMPUTE_MODES = {"none": 0.0, "selective": 1.0, "full": 2.0}
"""Activation recomputation: keep everything, replay the attention core, replay the whole forward."""

MEMORY_OUTPUTS = ("weights_per_gpu", "gradients_per_gpu", "optimizer_per_gpu", "activations_per_gpu",
                  "pipeline_buffers_per_gpu", "training_memory_per_gpu", "layers_per_stage", "params_per_gpu")
STEP_OUTPUTS = ("compute_time", "tp_communication_time", "pp_communication_time", "ep_communication_time",
                "ep_all_to_all_time", "straggler_factor", "bubble_time", "bubble_fraction",
                "dp_communication_time", "dp_exposed_time", "optimizer_update_time", "step_time",
                "tokens_per_second", "samples_per_second", "model_flops", "mfu", "scaling_efficiency",
                "single_accelerator_time", "tp_allreduce_time", "microbatch_time")


PLACEMENT_OUTPUTS = ("tp_link", "pp_link", "dp_link", "ep_link", "dp_local_ranks")


@lru_cache(maxsize=None)
def step_function() -> CompiledFunction:
    """Step time and per-accelerator memory, compiled once (scalar and vectorized)."""
    from ..models import distributed, training_memory
    exprs = {name: distributed.sheet[name] for name in STEP_OUTPUTS}
    exprs.update({name: training_memory.sheet[name] for name in MEMORY_OUTPUTS})
    return compile_expressions(exprs)


@lru_cache(maxsize=None)
def placement_function() -> CompiledFunction:
    """Which link each group uses and the DP ranks per node, from the distributed sheet."""
    from ..models import distributed
    return distributed.sheet.compiled(PLACEMENT_OUTPUTS)


def link_labels(values: dict) -> dict[str, str]:
    """``{"tp", "pp", "dp", "ep"}: link label`` of one configuration's symbol values."""
    from ..models.distributed import LINKS
    out = placement_function()(**values)
    labels = {group: LINKS[int(out[f"{group}_link"])] for group in ("tp", "pp", "dp", "ep")}
    if labels["dp"] == "hierarchical":
        labels["dp"] = f"hierarchical ({int(out['dp_local_ranks'])} per node)"
    return labels


# --------------------------------------------------------------------------------------------------
# Result


class DistributedResult(Result):
    """One training step of ``model`` on ``fleet`` with a TP x PP x DP split (``DistributedModel.solve``).

    Times are per step, except ``tp_allreduce_time``: one TP all-reduce (of one layer, one
    micro-batch; a step runs 4 per layer per micro-batch), and ``ep_all_to_all_time``: one dispatch
    (or combine) all-to-all of one MoE layer and micro-batch. ``straggler_factor`` is the expected
    slowest rank over the mean, already in the step time. ``effective_throughput`` is TOKENS per
    second of the real global batch; ``samples_per_second`` counts sequences. Memory fields are per
    accelerator of the fullest stage.
    """

    model: str
    fleet: str
    hardware: str
    precision: str
    parallelism: dict
    global_batch_size: int
    seq_len: int
    local_batch_size: int
    active_dp_ranks: int
    feasible: bool
    infeasibility_reason: Optional[str] = None
    efficiency: Optional[float] = None
    """Achieved fraction of peak FLOP/s used; ``efficiency_basis`` says where it comes from."""
    efficiency_basis: Optional[str] = None
    memory_per_gpu: pint.Quantity
    memory_capacity: pint.Quantity
    memory_reserve: pint.Quantity
    memory_breakdown: dict
    compute_time: pint.Quantity
    tp_communication_time: pint.Quantity
    tp_allreduce_time: pint.Quantity
    pp_communication_time: pint.Quantity
    ep_communication_time: pint.Quantity
    ep_all_to_all_time: pint.Quantity
    straggler_factor: float
    pp_bubble_fraction: float
    pp_bubble_time: pint.Quantity
    dp_communication_time: pint.Quantity
    dp_exposed_time: pint.Quantity
    optimizer_update_time: pint.Quantity
    step_latency_total: pint.Quantity
    effective_throughput: pint.Quantity
    samples_per_second: pint.Quantity
    mfu: float
    scaling_efficiency: float
    single_accelerator_time: pint.Quantity
    links: dict
    notes: list[str]
    _records: tuple = PrivateAttr(default=())

    def pipeline_outputs(self) -> dict:
        """Later pipeline stages receive the workload and fleet records, not their names."""
        return dict(zip(("model", "fleet"), self._records))

    @property
    def step_time(self) -> pint.Quantity:
        return self.step_latency_total

    @property
    def communication_time(self) -> pint.Quantity:
        """Communication on the critical path: TP + PP + EP + the exposed part of DP."""
        return self.tp_communication_time + self.pp_communication_time + self.ep_communication_time \
            + self.dp_exposed_time


RESULT_FIELDS = {
    # DistributedResult field: (distributed or training-memory output, or input symbol; unit of the field)
    "memory_per_gpu": ("training_memory_per_gpu", "GB"), "memory_capacity": ("memory_capacity", "GB"),
    "compute_time": ("compute_time", "s"), "tp_communication_time": ("tp_communication_time", "s"),
    "tp_allreduce_time": ("tp_allreduce_time", "s"), "pp_communication_time": ("pp_communication_time", "s"),
    "ep_communication_time": ("ep_communication_time", "s"), "ep_all_to_all_time": ("ep_all_to_all_time", "s"),
    "pp_bubble_time": ("bubble_time", "s"), "dp_communication_time": ("dp_communication_time", "s"),
    "dp_exposed_time": ("dp_exposed_time", "s"), "optimizer_update_time": ("optimizer_update_time", "s"),
    "step_latency_total": ("step_time", "s"), "effective_throughput": ("tokens_per_second", "token/s"),
    "samples_per_second": ("samples_per_second", "1/s"), "single_accelerator_time": ("single_accelerator_time", "s"),
}
BREAKDOWN_FIELDS = {name.replace("_per_gpu", ""): (name, "GB") for name in MEMORY_OUTPUTS[:5]}


@lru_cache(maxsize=None)
def _converters() -> tuple[tuple, tuple, tuple]:
    """Result fields, memory breakdown and the reserve (bytes) in the units the result reports."""
    from ..models import distributed, training_memory
    sheets = (distributed.sheet, training_memory.sheet)
    reserve = (quantity_factory("GB"), *scale("byte", "GB"))
    return field_converters(RESULT_FIELDS, *sheets), field_converters(BREAKDOWN_FIELDS, *sheets), reserve


# --------------------------------------------------------------------------------------------------
# Validation helpers (shared with the parallelism optimizer)


def fleet_arg(value: Any, field: str = "fleet") -> Fleet:
    if isinstance(value, Fleet):
        return value
    if isinstance(value, str):
        from ..catalog import Clusters
        return Clusters[value]
    raise InputError(field, value, "must be a Fleet (e.g. Systems.Clusters.Research_256) or its registry name",
                     "build one with Fleet(name=..., node=Nodes.DGX_H100, count=8, fabric=Fabrics.InfiniBand_NDR)")


def transformer_arg(value: Any, field: str = "model") -> TransformerWorkload:
    wl = _in.workload(value, field)
    if not isinstance(wl, TransformerWorkload):
        raise InputError(field, wl.name, "must be a transformer: tensor and pipeline parallelism split "
                         "attention heads and layers", "pass a language model such as Models.Llama3_70B")
    return wl


def recompute_arg(value: Any) -> str:
    if value is True:
        return "full"
    if value is False or value is None:
        return "none"
    if isinstance(value, str) and value.strip().lower() in RECOMPUTE_MODES:
        return value.strip().lower()
    raise UnknownNameError("activation_recomputation", str(value), RECOMPUTE_MODES)


def zero_arg(value: Any) -> int:
    stage = _in.positive_int(value, "zero_stage", minimum=0)
    if stage > 3:
        raise InputError("zero_stage", value, "must be 0, 1, 2 or 3",
                         "1 shards optimizer states, 2 also gradients, 3 also weights")
    return stage


def bool_arg(value: Any, field: str) -> bool:
    if isinstance(value, (bool, np.bool_)) or (isinstance(value, numbers.Integral) and value in (0, 1)):
        return bool(value)
    raise InputError(field, value, "must be True or False")


def divisors(n: int) -> list[int]:
    small = [d for d in range(1, int(math.isqrt(n)) + 1) if n % d == 0]
    return sorted(set(small + [n // d for d in small]))


def fleet_values(fleet: Fleet, background_load: float = 0.0) -> dict[str, float]:
    """SI floats of the fleet's links (one-way per accelerator), node size and the fabric's tiers
    (collectives.py: contention above ``leaf_nodes`` nodes, shared with ``background_load``)."""
    return link_values(fleet.node, fleet.fabric, background_load)


def replica_link_values(node) -> dict[str, float]:
    """The links a serving replica uses: the node's NVLink inside, and between nodes (expert
    parallelism across nodes) the default inter-node fabric, InfiniBand NDR, one port per accelerator."""
    from ..catalog import default_fabric
    return link_values(node, default_fabric())


def link_values(node, fabric, background_load: float = 0.0) -> dict[str, float]:
    """:func:`fleet_values` of any node and fabric (a serving replica that may span nodes)."""
    return {
        "intra_node_bandwidth": float(node.intra_node_bandwidth.to("byte/s").magnitude),
        "intra_node_latency": float(node.intra_node_latency.to("s").magnitude),
        "fabric_bandwidth": float(fabric.bandwidth.to("byte/s").magnitude),
        "fabric_latency": float(fabric.latency.to("s").magnitude),
        "accelerators_per_node": float(node.accelerators_per_node),
        "oversubscription": float(fabric.oversubscription),
        "leaf_nodes": float(fabric.leaf_domain_nodes),
        "background_load": _in.finite_number(background_load, "background_load", minimum=0.0, maximum=0.99,
                                             fix="the share of the oversubscribed tier other jobs use, "
                                                 "0 (a dedicated fabric) to 0.99"),
    }


MAX_GLOBAL_BATCH = 10_000_000
"""Largest global batch, in sequences (Llama 3's 405B run used about 2,000 of 8,192 tokens)."""
MAX_SEQ_LEN = 10_000_000
"""Longest training sequence, in tokens: beyond any published context window."""
MAX_MEMORY_RESERVE = 1e15
"""Largest memory reserve per accelerator, in bytes (1 PB: no accelerator has as much memory)."""


class Setting:
    """Validated, lowered inputs shared by one solve and a grid of configurations."""

    def __init__(self, model, fleet, batch_size, seq_len, precision, efficiency, overlap_comm, zero_stage,
                 activation_recomputation, virtual_stages=1, sequence_parallel=True, gradient_bytes=None,
                 memory_reserve=0, *, capacity_factor=None, step_time_cv=None, background_load=0.0,
                 calibration="profile"):
        self.wl = transformer_arg(model)
        self.fleet = fleet_arg(fleet)
        self.hw = self.fleet.node.accelerator
        # None: one sequence per data-parallel replica, fixed once the split is known (set_batch).
        self.batch = None if batch_size is None else _in.whole_number(batch_size, "batch_size", minimum=1,
                                                                      maximum=MAX_GLOBAL_BATCH)
        self.seq = _in.DEFAULT_SEQ_LEN if seq_len is None else _in.whole_number(seq_len, "seq_len", minimum=1,
                                                                                maximum=MAX_SEQ_LEN)
        self.overlap = bool_arg(overlap_comm, "overlap_comm")
        self.zero = zero_arg(zero_stage)
        self.recompute = recompute_arg(activation_recomputation)
        self.v = _in.whole_number(virtual_stages, "virtual_stages", minimum=1, maximum=1024)
        self.sp = bool_arg(sequence_parallel, "sequence_parallel")
        self.choice = _in.precision_for(self.hw, precision)
        # None: the calibrated training profile of the accelerator at this precision (else flat 0.5)
        self.factors = profile_factors(self.hw, self.choice.precision, "training", efficiency=efficiency,
                                       calibration=calibration)
        self.eta = _in.fraction(self.factors.efficiency, "efficiency")
        if gradient_bytes is None:
            # Gradients live in the training precision, never below 16 bits (fp8 recipes keep bf16 grads).
            self.grad_bytes = max(2.0, self.choice.storage_bytes)
        else:
            self.grad_bytes = _in.finite_number(gradient_bytes, "gradient_bytes", minimum=0.0, maximum=64.0,
                                                allow_zero=False, unit="bytes",
                                                fix="2 for fp16/bf16 gradients, 4 for fp32 main gradients")
        reserve = as_quantity(memory_reserve, "byte", "memory_reserve", example="4 GB").magnitude
        self.reserve = _in.finite_number(reserve, "memory_reserve", minimum=0.0, maximum=MAX_MEMORY_RESERVE,
                                         unit="bytes", fix="memory kept back for the runtime, e.g. '4 GB'")
        self.n = self.fleet.total_accelerators
        self.per_node = self.fleet.node.accelerators_per_node
        values = _in.workload_values(self.wl, self.choice, batch_size=self.batch or 1, seq_len=self.seq,
                                     is_training=True)
        values.update(_in.hardware_values(self.hw, self.choice))
        values.update(fleet_values(self.fleet, background_load))
        values.update(_in.moe_values(
            self.wl, capacity_factor=_in.CAPACITY_FACTOR if capacity_factor is None else _in.finite_number(
                capacity_factor, "capacity_factor", minimum=1.0, maximum=64.0,
                fix="tokens of the busiest expert group over the mean: 1.0 (balanced) to about 2")))
        self.experts = int(values["experts"])
        values["step_time_cv"] = _in.STEP_TIME_CV if step_time_cv is None else _in.finite_number(
            step_time_cv, "step_time_cv", minimum=0.0, maximum=1.0,
            fix="the coefficient of variation of one rank's step time, e.g. 0.01; 0 turns stragglers off")
        values.update(efficiency=self.eta, hidden_size=float(self.wl.hidden_size),
                      vocab_size=float(self.wl.vocab_size or 0),
                      gradient_bytes_per_param=self.grad_bytes, zero_stage=float(self.zero),
                      recompute_mode=RECOMPUTE_MODES[self.recompute], sequence_parallel=float(self.sp),
                      overlap_comm=float(self.overlap), virtual_stages=float(self.v))
        self.values = values

    def set_batch(self, batch: int) -> None:
        self.batch = batch
        self.values["batch_size"] = float(batch)

    # -- the split --------------------------------------------------------------------------------
    def expert_split(self, ep_size, dp: int) -> int:
        """The EP degree: 1 for a dense model; else it divides both the DP group (EP ranks are DP
        ranks that share one copy of the routed experts) and the experts."""
        ep = _in.positive_int(ep_size, "ep_size")
        if ep == 1:
            return ep
        if not self.experts:
            raise InputError("ep_size", ep, f"needs a mixture of experts; {self.wl.name} is dense",
                             "leave ep_size at 1")
        valid = [d for d in divisors(dp) if self.experts % d == 0]
        if dp % ep or self.experts % ep:
            raise InputError("ep_size", ep, f"must divide the DP group ({dp}) and the {self.experts} experts of "
                             f"{self.wl.name}", f"valid ep_size values here: {', '.join(map(str, valid))}")
        return ep

    def split(self, tp_size, pp_size, dp_size) -> tuple[int, int, int]:
        n, layers, heads = self.n, self.wl.layers, self.wl.heads
        tp = _in.positive_int(tp_size, "tp_size")
        pp = _in.positive_int(pp_size, "pp_size")
        if n % tp:
            valid = [d for d in divisors(n) if heads % d == 0]
            raise InputError("tp_size", tp, f"must divide the fleet's {n} accelerators",
                             f"valid tp_size values here: {', '.join(map(str, valid))}")
        if heads % tp:
            valid = [d for d in divisors(n) if heads % d == 0]
            raise InputError("tp_size", tp, f"must divide the {heads} attention heads of {self.wl.name}",
                             f"valid tp_size values here: {', '.join(map(str, valid))}")
        if (n // tp) % pp:
            valid = [d for d in divisors(n // tp) if d <= layers]
            raise InputError("pp_size", pp, f"must divide the {n // tp} accelerators left after tp_size={tp}",
                             f"valid pp_size values with tp_size={tp}: {', '.join(map(str, valid))}")
        if pp > layers:
            raise InputError("pp_size", pp, f"must be <= the {layers} layers of {self.wl.name} (a stage needs a layer)")
        dp = n // (tp * pp)
        if dp_size is not None:
            given = _in.positive_int(dp_size, "dp_size")
            if given != dp:
                raise InputError("dp_size", given, f"makes tp*pp*dp = {tp * pp * given}, but the fleet has {n} "
                                 "accelerators", f"use dp_size={dp} (or leave it out)")
        if self.v > 1:
            if pp == 1:
                raise InputError("virtual_stages", self.v, "needs pp_size > 1 (interleaving splits pipeline stages)")
            if math.ceil(layers / pp) < self.v:
                raise InputError("virtual_stages", self.v, f"exceeds the {math.ceil(layers / pp)} layers per stage",
                                 "each virtual stage needs at least one layer")
        return tp, pp, dp

    def local_batch(self, dp: int) -> int:
        """Sequences of the busiest DP rank (ranks beyond the batch stay idle)."""
        return -(-self.batch // dp)

    def microbatching(self, dp: int, microbatches, microbatch_size) -> tuple[int, int]:
        """(micro-batches, micro-batch size) of one pipeline. Default: micro-batches of one sequence."""
        local = self.local_batch(dp)
        if microbatches is None and microbatch_size is None:
            return local, 1
        if microbatch_size is not None:
            mu = _in.positive_int(microbatch_size, "microbatch_size")
            if mu > local:
                raise InputError("microbatch_size", mu, f"exceeds the {local} sequences each DP rank processes",
                                 f"use microbatch_size <= {local}")
            m = -(-local // mu)
            if microbatches is not None and _in.positive_int(microbatches, "microbatches") != m:
                raise InputError("microbatches", microbatches,
                                 f"does not match microbatch_size={mu}: {local} sequences per DP rank make {m}",
                                 "give only one of microbatches and microbatch_size")
            return m, mu
        m = _in.positive_int(microbatches, "microbatches")
        if m > local:
            raise InputError("microbatches", m, f"exceeds the {local} sequences each DP rank processes",
                             f"use microbatches <= {local}")
        return m, -(-local // m)

    def point(self, tp, pp, dp, m, mu, ep=1) -> dict[str, float]:
        return {**self.values, "tp_size": float(tp), "pp_size": float(pp), "dp_size": float(dp),
                "microbatches": float(m), "microbatch_size": float(mu), "ep_size": float(ep)}

    def grid(self, tp, pp, dp, m, mu, ep=1) -> dict:
        """Symbol values with the split as arrays (any broadcastable shapes)."""
        return {**self.values, "tp_size": np.asarray(tp, dtype=float), "pp_size": np.asarray(pp, dtype=float),
                "dp_size": np.asarray(dp, dtype=float), "microbatches": np.asarray(m, dtype=float),
                "microbatch_size": np.asarray(mu, dtype=float), "ep_size": np.asarray(ep, dtype=float)}

    @property
    def capacity(self) -> float:
        """Bytes a job may use: the device's capacity less the reserve."""
        return self.values["memory_capacity"] - self.reserve


# --------------------------------------------------------------------------------------------------
# The solver


class DistributedModel:
    """3D-parallel training step (Wall 14): compute from the roofline sheet, alpha-beta collectives,
    1F1B pipeline bubble, per-accelerator memory (Korthikanti et al. 2022)."""

    walls = (14,)

    @staticmethod
    def solve(model, fleet, batch_size: int | None = None, seq_len: int = 2048, tp_size: int = 1, pp_size: int = 1,
              dp_size: int | None = None, microbatches: int | None = None, microbatch_size: int | None = None,
              precision: str = "fp16", efficiency: float | None = None, overlap_comm: bool = True, zero_stage: int = 0,
              activation_recomputation: str = "selective", virtual_stages: int = 1,
              sequence_parallel: bool = True, gradient_bytes: float | None = None,
              memory_reserve=0, ep_size: int = 1, capacity_factor: float | None = None,
              step_time_cv: float | None = None, background_load: float = 0.0,
              calibration: str = "profile") -> DistributedResult:
        """One step of ``batch_size`` sequences of ``seq_len`` tokens on ``fleet``.

        ``batch_size`` defaults to one sequence per data-parallel replica. ``dp_size`` defaults to
        accelerators / (tp_size * pp_size). Each DP rank processes
        ceil(batch_size / dp) sequences (ranks beyond the batch idle); by default in micro-batches of one
        sequence, so ``microbatches`` = sequences per DP rank. ``virtual_stages`` > 1 selects the
        interleaved 1F1B schedule. ``gradient_bytes`` defaults to the precision's width (>= 2);
        pass 4 for fp32 main gradients as Megatron-LM keeps them. ``memory_reserve`` (e.g. "4 GB") is
        kept back from each accelerator's capacity for the runtime (CUDA context, communication
        buffers, allocator fragmentation); the default 0 compares against the full capacity.

        Mixtures of experts: ``ep_size`` shards the routed experts over that many DP ranks (it divides
        the DP group and the experts); tokens reach their experts by all-to-alls, and the busiest
        expert group carries ``capacity_factor`` times its mean share (default 1.25; 1 turns it off).
        Stragglers: the step waits for the slowest rank, with per-rank jitter ``step_time_cv``
        (default 0, off: the calibrated efficiency absorbs ordinary jitter; 0.01 is a what-if). ``background_load`` is the share of the fabric's
        oversubscribed tier other jobs use (default 0, a dedicated fabric).
        """
        s = Setting(model, fleet, batch_size, seq_len, precision, efficiency, overlap_comm, zero_stage,
                    activation_recomputation, virtual_stages, sequence_parallel, gradient_bytes, memory_reserve,
                    capacity_factor=capacity_factor, step_time_cv=step_time_cv, background_load=background_load,
                    calibration=calibration)
        tp, pp, dp = s.split(tp_size, pp_size, dp_size)
        ep = s.expert_split(ep_size, dp)
        if s.batch is None:
            s.set_batch(dp)
        m, mu = s.microbatching(dp, microbatches, microbatch_size)
        out = step_function()(**s.point(tp, pp, dp, m, mu, ep))
        return build_result(s, tp, pp, dp, m, mu, out, ep)

    @staticmethod
    def evaluate_grid(setting: Setting, tp, pp, dp, microbatches, microbatch_size, ep=1) -> dict[str, np.ndarray]:
        """Every output (SI floats) for arrays of configurations at once, through the compiled sheets'
        vectorized form; ``feasible`` is added. Inputs are not validated here (see ``Setting.split``)."""
        out = step_function().vector(**setting.grid(tp, pp, dp, microbatches, microbatch_size, ep))
        out = dict(out)
        out["feasible"] = out["training_memory_per_gpu"] <= setting.capacity
        return out


def build_result(s: Setting, tp, pp, dp, m, mu, out: dict, ep=1) -> DistributedResult:
    converters, breakdown_converters, (gb, mul, div) = _converters()
    fields = quantities(converters, out, s.values)
    breakdown = quantities(breakdown_converters, out)
    reserve = gb(s.reserve * mul / div)
    feasible = bool(out["training_memory_per_gpu"] <= s.capacity)
    reason = None
    if not feasible:
        parts = ", ".join(f"{k} {v.magnitude:.1f}" for k, v in breakdown.items())
        capacity = fields["memory_capacity"].m - reserve.m
        usable = f"{capacity:.1f} GB" + (f" after a {reserve.m:.1f} GB reserve" if s.reserve else "")
        reason = (f"needs {fields['memory_per_gpu'].m:.1f} GB per accelerator ({parts} GB) but {s.hw.name} holds "
                  f"{usable}: raise pp_size or tp_size, use zero_stage >= 1 or full recomputation")
    layers = s.wl.layers
    notes = []
    if s.choice.fallback:
        notes.append(s.choice.fallback)
    active = min(s.batch, dp)
    if s.batch < dp:
        notes.append(f"global batch {s.batch} < DP {dp}: {dp - s.batch} data-parallel replicas idle; "
                     "throughput counts only the sequences that exist")
    elif s.batch % dp:
        notes.append(f"batch {s.batch} does not split evenly over DP {dp}: the busiest rank runs "
                     f"{s.local_batch(dp)} sequences")
    if m * mu > s.local_batch(dp):
        notes.append(f"{m} micro-batches of {mu} pad the {s.local_batch(dp)} sequences per DP rank")
    if layers % pp:
        notes.append(f"{layers} layers over {pp} stages: the fullest stage holds {math.ceil(layers / pp)} layers "
                     "and sets the pace")
    placement = link_labels(s.point(tp, pp, dp, m, mu, ep))
    if placement["tp"] == "fabric":
        notes.append(f"TP group of {tp} does not fit in one {s.per_node}-accelerator node: TP collectives run "
                     "over the inter-node fabric")
    parallelism = {"tp": tp, "pp": pp, "dp": dp, "ep": int(ep), "microbatches": m, "microbatch_size": mu,
                   "virtual_stages": s.v, "zero_stage": s.zero, "activation_recomputation": s.recompute,
                   "sequence_parallel": s.sp, "layers_per_stage": int(out["layers_per_stage"])}
    result = DistributedResult.model_construct(
        model=s.wl.name, fleet=s.fleet.name, hardware=s.hw.name, precision=s.choice.precision,
        parallelism=parallelism, global_batch_size=s.batch, seq_len=s.seq, local_batch_size=s.local_batch(dp),
        active_dp_ranks=active, feasible=feasible, infeasibility_reason=reason,
        memory_reserve=reserve, memory_breakdown=breakdown, pp_bubble_fraction=float(out["bubble_fraction"]),
        mfu=float(out["mfu"]), scaling_efficiency=float(out["scaling_efficiency"]), links=placement, notes=notes,
        straggler_factor=float(out["straggler_factor"]), efficiency=s.eta,
        efficiency_basis=s.factors.basis,
        **fields,
    )
    result._records = (s.wl, s.fleet)
    return result
