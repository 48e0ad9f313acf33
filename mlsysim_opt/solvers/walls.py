"""Solvers for the remaining walls: data ingestion (8), transformation (9), locality (10),
streaming (6), reasoning (12), multi-tenancy (16) and privacy (20).

Each validates its arguments, lowers them to SI floats, evaluates its equation sheet (models/) and
returns a typed result."""
from __future__ import annotations

import math
import numbers
from functools import lru_cache
from typing import Any, Optional, Sequence

import numpy as np
import pint

from .. import inputs as _in
from ..compile.numeric import compile_expressions
from ..errors import InputError, UnknownNameError
from ..results import Result
from ..types import Fleet, HardwareNode, TransformerWorkload
from ..units import as_quantity, quantity_factory, sheet_quantity
from .quantities import input_quantity

_per_s = quantity_factory("1/s")


def _quantity(value: Any, unit: str, field: str, example: str, *, allow_zero: bool = False) -> float:
    v = as_quantity(value, unit, field, example=example).m_as(unit)
    if not (v >= 0 if allow_zero else v > 0):
        raise InputError(field, value, "must be positive" if not allow_zero else "must be >= 0", f"e.g. {example!r}")
    return float(v)


def _count(value: Any, field: str, *, minimum: float = 0.0, strict: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InputError(field, value, "must be a number")
    v = float(value)
    if v < minimum or (strict and v <= minimum):
        raise InputError(field, value, f"must be {'>' if strict else '>='} {minimum:g}")
    return v


def _compiled(sheet_name: str, names: Sequence[str]):
    return _compiled_cached(sheet_name, tuple(names))


def _sheet(sheet_name: str):
    import importlib
    return importlib.import_module(f"mlsysim_opt.models.{sheet_name}").sheet


@lru_cache(maxsize=None)
def _compiled_cached(sheet_name: str, names: tuple[str, ...]):
    return _sheet(sheet_name).compiled(names)


def _fleet_or_hardware(value: Any, field: str = "hardware") -> tuple[HardwareNode, int, str]:
    """(accelerator, how many, label) of a Fleet, a HardwareNode or a registry name."""
    if isinstance(value, Fleet):
        return value.accelerator, value.total_accelerators, value.name
    if isinstance(value, HardwareNode):
        return value, 1, value.name
    if isinstance(value, str):
        from ..catalog import Clusters, Hardware
        if value in Clusters:
            fl = Clusters[value]
            return fl.accelerator, fl.total_accelerators, fl.name
        hw = Hardware[value]
        return hw, 1, hw.name
    raise InputError(field, value, "must be a Fleet or a HardwareNode (or a registry name)",
                     "e.g. Systems.Clusters.Research_256 or Hardware.H100")


# ------------------------------------------------------------------------------------------------
# Wall 8: ingestion


class IngestionResult(Result):
    """Can storage and the host links feed the accelerators?"""

    system: str
    accelerators: int
    demand: pint.Quantity
    supply: pint.Quantity
    storage_bandwidth: pint.Quantity
    host_link_total: pint.Quantity
    bottleneck: str
    utilization: float
    stall_fraction: float
    demand_rate: pint.Quantity
    delivered_rate: pint.Quantity
    feasible: bool


INGEST_OUTPUTS = ("ingest_demand", "ingest_supply", "ingest_utilization", "ingest_stall_fraction",
                  "ingest_delivered_rate")


class IngestionModel:
    """Wall 8: data ingestion bandwidth against the accelerators' sample demand."""

    walls = (8,)

    def solve(self, hardware: Any, sample_rate: Any, bytes_per_sample: Any, storage_bandwidth: Any,
              host_link_bandwidth: Any = None) -> IngestionResult:
        """``sample_rate`` samples/s (the whole fleet's training or inference throughput) of
        ``bytes_per_sample`` each must arrive from storage (``storage_bandwidth``) through each
        accelerator's host link (default: the accelerator's record, e.g. PCIe Gen5 x16 64 GB/s)."""
        hw, n, label = _fleet_or_hardware(hardware)
        rate = _quantity(sample_rate, "1/s", "sample_rate", "3000 1/s")
        size = _quantity(bytes_per_sample, "byte", "bytes_per_sample", "110 kB")
        storage = _quantity(storage_bandwidth, "byte/s", "storage_bandwidth", "10 GB/s")
        if host_link_bandwidth is None:
            if hw.host_link_bandwidth is None:
                raise InputError("host_link_bandwidth", None, f"is unknown for {hw.name}",
                                 "pass host_link_bandwidth=Q_('64 GB/s')")
            link = float(hw.host_link_bandwidth.m_as("byte/s"))
        else:
            link = _quantity(host_link_bandwidth, "byte/s", "host_link_bandwidth", "64 GB/s")
        out = _compiled("data_pipeline", INGEST_OUTPUTS)(
            sample_demand_rate=rate, bytes_per_sample=size, storage_bandwidth=storage, host_link_bandwidth=link,
            accelerator_count=float(n))
        stalled = out["ingest_stall_fraction"] > 0
        bottleneck = ("none" if not stalled else ("storage" if storage <= n * link else "host link"))
        sheet = _sheet("data_pipeline")
        return IngestionResult(
            system=label, accelerators=n, demand=sheet_quantity(sheet, "ingest_demand", out["ingest_demand"], "GB/s"),
            supply=sheet_quantity(sheet, "ingest_supply", out["ingest_supply"], "GB/s"),
            storage_bandwidth=input_quantity(storage, "storage_bandwidth", "GB/s"),
            host_link_total=input_quantity(n * link, "host_link_bandwidth", "GB/s"), bottleneck=bottleneck,
            utilization=out["ingest_utilization"], stall_fraction=out["ingest_stall_fraction"],
            demand_rate=_per_s(rate),
            delivered_rate=sheet_quantity(sheet, "ingest_delivered_rate", out["ingest_delivered_rate"], "1/s"),
            feasible=not stalled)


# ------------------------------------------------------------------------------------------------
# Wall 9: transformation


class TransformationResult(Result):
    """Can the CPU workers preprocess samples as fast as the accelerators consume them?"""

    cpu_cores: float
    capacity: pint.Quantity
    demand_rate: pint.Quantity
    utilization: float
    stall_fraction: float
    cores_required: int
    delivered_rate: pint.Quantity
    feasible: bool


TRANSFORM_OUTPUTS = ("transform_capacity", "transform_utilization", "transform_stall_fraction", "cores_required",
                     "transform_delivered_rate")


class TransformationModel:
    """Wall 9: CPU preprocessing (decode, augment, tokenize) against the sample demand."""

    walls = (9,)

    def solve(self, sample_rate: Any, transform_time_per_sample: Any, cpu_cores: Any) -> TransformationResult:
        """``cpu_cores`` workers each spend ``transform_time_per_sample`` of CPU time per sample
        while the accelerators consume ``sample_rate`` samples/s."""
        rate = _quantity(sample_rate, "1/s", "sample_rate", "3000 1/s")
        cost = _quantity(transform_time_per_sample, "s", "transform_time_per_sample", "5 ms")
        cores = _count(cpu_cores, "cpu_cores")
        out = _compiled("data_pipeline", TRANSFORM_OUTPUTS)(
            sample_demand_rate=rate, transform_time_per_sample=cost, cpu_cores=cores)
        sheet = _sheet("data_pipeline")
        return TransformationResult(
            cpu_cores=cores, capacity=sheet_quantity(sheet, "transform_capacity", out["transform_capacity"], "1/s"),
            demand_rate=_per_s(rate),
            utilization=out["transform_utilization"], stall_fraction=out["transform_stall_fraction"],
            cores_required=int(out["cores_required"]),
            delivered_rate=sheet_quantity(sheet, "transform_delivered_rate", out["transform_delivered_rate"], "1/s"),
            feasible=out["transform_stall_fraction"] == 0)


# ------------------------------------------------------------------------------------------------
# Wall 10: locality


class TopologyResult(Result):
    """Usable bandwidth and path length of a network topology."""

    topology: str
    endpoints: int
    link_bandwidth: pint.Quantity
    bisection_fraction: float
    effective_bandwidth: pint.Quantity
    max_hops: float
    mean_hops: Optional[float] = None
    path_latency: Optional[pint.Quantity] = None
    structure: dict[str, float]


TOPOLOGIES = ("fat_tree", "dragonfly", "torus", "ring")
DEFAULT_SWITCH_RADIX = 64
"""Ports of an NDR InfiniBand switch (NVIDIA Quantum-2 QM9700: 64 x 400 Gb/s)."""


class TopologyModel:
    """Wall 10: bisection bandwidth and hop counts of fat-tree, dragonfly, torus and ring networks."""

    walls = (10,)

    def solve(self, topology: str, fleet: Any = None, endpoints: Optional[int] = None, link_bandwidth: Any = None,
              switch_radix: int = DEFAULT_SWITCH_RADIX, oversubscription: Optional[float] = None,
              torus_dimensions: int = 3, dragonfly_global_links: Optional[int] = None,
              hop_latency: Any = None) -> TopologyResult:
        """Per-endpoint bandwidth under uniform all-to-all traffic, ``link_bandwidth * min(1, f)``
        with ``f`` the topology's bisection over N/2 links, and its hop count.

        Endpoints and link bandwidth default to ``fleet`` (one port per accelerator, the fabric's
        per-port bandwidth and oversubscription). Dragonfly is balanced (a = 2p = 2h) with h =
        ``dragonfly_global_links`` or (radix + 1) // 4. ``hop_latency`` (per switch) gives a path
        latency."""
        name = str(topology).lower().replace("-", "_").replace(" ", "_")
        if name not in TOPOLOGIES:
            raise UnknownNameError("topology", str(topology), TOPOLOGIES)
        if fleet is not None:
            from .sustainability import as_fleet
            fl = as_fleet(fleet)
            n_default, bw_default, o_default = fl.total_accelerators, fl.fabric.bandwidth, fl.fabric.oversubscription
        else:
            n_default, bw_default, o_default = None, None, 1.0
        n = endpoints if endpoints is not None else n_default
        if n is None:
            raise InputError("endpoints", None, "is required without a fleet", "pass endpoints=256 or fleet=...")
        n = _in.positive_int(n, "endpoints", minimum=2)
        bw_value = link_bandwidth if link_bandwidth is not None else bw_default
        if bw_value is None:
            raise InputError("link_bandwidth", None, "is required without a fleet", "pass link_bandwidth='50 GB/s'")
        bw = _quantity(bw_value, "byte/s", "link_bandwidth", "50 GB/s")
        values = {"endpoint_count": float(n), "link_bandwidth": bw}
        if hop_latency is not None:
            values["hop_latency"] = _quantity(hop_latency, "s", "hop_latency", "300 ns", allow_zero=True)
        latency_name = None
        if name == "fat_tree":
            radix = _in.positive_int(switch_radix, "switch_radix", minimum=4)
            o = _count(oversubscription if oversubscription is not None else o_default, "oversubscription",
                       minimum=1.0, strict=False)
            values.update(switch_radix=float(radix), oversubscription=o)
            names = ["fat_tree_tiers", "fat_tree_bisection_fraction", "fat_tree_effective_bandwidth",
                     "fat_tree_max_hops"]
            latency_name = "fat_tree_latency"
        elif name == "dragonfly":
            radix = _in.positive_int(switch_radix, "switch_radix", minimum=4)
            h = (dragonfly_global_links if dragonfly_global_links is not None else max(1, (radix + 1) // 4))
            h = _in.positive_int(h, "dragonfly_global_links")
            values.update(dragonfly_endpoints_per_router=float(h), dragonfly_routers_per_group=float(2 * h),
                          dragonfly_global_links=float(h))
            names = ["dragonfly_groups", "dragonfly_bisection_fraction", "dragonfly_effective_bandwidth",
                     "dragonfly_max_hops"]
            latency_name = "dragonfly_latency"
        else:
            dims = 1 if name == "ring" else _in.positive_int(torus_dimensions, "torus_dimensions")
            values["torus_dimensions"] = float(dims)
            names = ["torus_radix", "torus_bisection_fraction", "torus_effective_bandwidth", "torus_max_hops",
                     "torus_mean_hops"]
            latency_name = "torus_latency"
        if hop_latency is not None:
            names.append(latency_name)
        out = _compiled("locality", names)(**values)
        prefix = "torus" if name == "ring" else name
        structure = {k: out[k] for k in names if k in ("fat_tree_tiers", "dragonfly_groups", "torus_radix")}
        if name == "dragonfly":
            structure.update(endpoints_per_router=values["dragonfly_endpoints_per_router"],
                             routers_per_group=values["dragonfly_routers_per_group"], global_links_per_router=h)
            if out["dragonfly_groups"] > 2 * h * h + 1:
                raise InputError("endpoints", n, f"exceed a balanced dragonfly of radix {radix} "
                                                 f"({(2 * h * h + 1) * 2 * h * h:,} endpoints)",
                                 "raise switch_radix or dragonfly_global_links")
        sheet = _sheet("locality")
        bandwidth = f"{prefix}_effective_bandwidth"
        return TopologyResult(
            topology=name, endpoints=n, link_bandwidth=input_quantity(bw, "link_bandwidth", "GB/s"),
            bisection_fraction=out[f"{prefix}_bisection_fraction"],
            effective_bandwidth=sheet_quantity(sheet, bandwidth, out[bandwidth], "GB/s"),
            max_hops=out[f"{prefix}_max_hops"], mean_hops=out.get("torus_mean_hops"),
            path_latency=None if hop_latency is None else sheet_quantity(sheet, latency_name, out[latency_name], "us"),
            structure=structure)


# ------------------------------------------------------------------------------------------------
# Wall 6: weight streaming


class WeightStreamingResult(Result):
    """A pass with weights streamed in layer by layer."""

    model: str
    hardware: str
    batch_size: int
    stream_bandwidth: pint.Quantity
    latency: pint.Quantity
    compute_time: pint.Quantity
    transfer_time: pint.Quantity
    layer_time: pint.Quantity
    bottleneck: str
    streamed_bytes: pint.Quantity
    on_chip_required: pint.Quantity
    on_chip_capacity: pint.Quantity
    feasible: bool
    batch_to_hide_streaming: int
    notes: list[str]


STREAM_OUTPUTS = ("streamed_bytes", "stream_compute_time", "stream_transfer_time", "stream_layer_time",
                  "stream_latency", "stream_resident_bytes", "stream_on_chip_headroom", "batch_to_hide_streaming")


class WeightStreamingModel:
    """Wall 6: per-layer max(compute, weight transfer) when weights live off chip."""

    walls = (6,)

    def solve(self, model: Any, hardware: Any, stream_bandwidth: Any = None, batch_size: int = 1,
              seq_len: Optional[int] = None, precision: str = "fp16", efficiency: float = 0.5,
              is_training: bool = False) -> WeightStreamingResult:
        """One pass of ``model`` on ``hardware`` with weights streamed in at ``stream_bandwidth``
        (default: the device's host link). Activations and the KV cache must fit in on-chip memory
        (``memory.sram_capacity``, else ``memory.capacity``)."""
        wl = _in.workload(model)
        hw = _in.hardware(hardware)
        batch = _in.positive_int(batch_size, "batch_size")
        seq = _in.DEFAULT_SEQ_LEN if seq_len is None else _in.positive_int(seq_len, "seq_len")
        eta = _in.fraction(efficiency, "efficiency")
        notes: list[str] = []
        if stream_bandwidth is None:
            if hw.host_link_bandwidth is None:
                raise InputError("stream_bandwidth", None, f"is unknown for {hw.name}",
                                 "pass stream_bandwidth=Q_('1.2 TB/s') (the weight store's bandwidth into the chip)")
            bw = float(hw.host_link_bandwidth.m_as("byte/s"))
            notes.append(f"weights streamed over the host link ({hw.host_link_bandwidth.m_as('GB/s'):g} GB/s)")
        else:
            bw = _quantity(stream_bandwidth, "byte/s", "stream_bandwidth", "1.2 TB/s")
        choice = _in.precision_for(hw, precision)
        values = _in.workload_values(wl, choice, batch_size=batch, seq_len=seq, is_training=bool(is_training))
        values.update(_in.hardware_values(hw, choice), efficiency=eta, stream_bandwidth=bw)
        if values["sram_capacity"] == 0:
            values["sram_capacity"] = values["memory_capacity"]
            notes.append("no on-chip SRAM on record: device memory holds the activations and KV cache")
        out = _compiled("streaming", STREAM_OUTPUTS)(**values)
        compute, transfer = out["stream_compute_time"], out["stream_transfer_time"]
        sheet = _sheet("streaming")

        def q(name, unit):
            return sheet_quantity(sheet, name, out[name], unit)
        return WeightStreamingResult(
            model=wl.name, hardware=hw.name, batch_size=batch,
            stream_bandwidth=input_quantity(bw, "stream_bandwidth", "GB/s"),
            latency=q("stream_latency", "ms"), compute_time=q("stream_compute_time", "ms"),
            transfer_time=q("stream_transfer_time", "ms"), layer_time=q("stream_layer_time", "ms"),
            bottleneck="Compute" if compute >= transfer else "Weight streaming",
            streamed_bytes=q("streamed_bytes", "GB"), on_chip_required=q("stream_resident_bytes", "GB"),
            on_chip_capacity=input_quantity(values["sram_capacity"], "sram_capacity", "GB"),
            feasible=out["stream_on_chip_headroom"] >= 0,
            batch_to_hide_streaming=int(out["batch_to_hide_streaming"]), notes=notes)


# ------------------------------------------------------------------------------------------------
# Wall 12: reasoning (inference-time compute)


class InferenceScalingResult(Result):
    """Latency and energy of a request that reasons before it answers."""

    model: str
    hardware: str
    reasoning_steps: float
    tokens_per_step: float
    generated_tokens: float
    ttft: pint.Quantity
    itl: pint.Quantity
    latency: pint.Quantity
    slowdown_vs_direct: float
    power: pint.Quantity
    energy: pint.Quantity
    energy_per_token: pint.Quantity
    energy_per_request: pint.Quantity
    utilization: float
    notes: list[str]


DEFAULT_TOKENS_PER_STEP = 50
"""Tokens in one reasoning step: one or two sentences of chain-of-thought (illustrative; pass your own)."""
DEFAULT_ANSWER_TOKENS = 100
DEFAULT_PROMPT_TOKENS = 512

REASONING_OUTPUTS = ("generated_tokens", "reasoning_latency", "reasoning_energy", "reasoning_energy_per_token",
                     "reasoning_energy_per_request", "reasoning_slowdown")


@lru_cache(maxsize=None)
def _reasoning_function():
    """The reasoning sheet plus the Wall 18 device power it charges."""
    from ..models import reasoning, sustainability
    exprs = {n: reasoning.sheet[n] for n in REASONING_OUTPUTS}
    exprs["node_power"] = sustainability.sheet["accelerator_draw"]
    return compile_expressions(exprs)


@lru_cache(maxsize=None)
def _decode_function():
    """Roofline latency of a pass plus the decode busy fraction (one compiled function)."""
    from ..models import reasoning, roofline
    return compile_expressions({"latency": roofline.sheet["latency"],
                                "decode_utilization": reasoning.sheet["decode_utilization"]})


class InferenceScalingModel:
    """Wall 12: reasoning steps x tokens per step x ITL + TTFT, and the energy they cost."""

    walls = (12,)

    def solve(self, model: Any, hardware: Any, reasoning_steps: Any, tokens_per_step: Any = DEFAULT_TOKENS_PER_STEP,
              answer_tokens: Any = DEFAULT_ANSWER_TOKENS, prompt_tokens: int = DEFAULT_PROMPT_TOKENS,
              batch_size: int = 1, precision: str = "fp16", efficiency: float = 0.5, ttft: Any = None,
              itl: Any = None) -> InferenceScalingResult:
        """One request (or a batch of ``batch_size``) of ``model`` on ``hardware``: a prefill of
        ``prompt_tokens``, then ``reasoning_steps * tokens_per_step + answer_tokens`` decode steps.

        TTFT is the roofline prefill pass and ITL the roofline decode step at the mean context the
        chain attends to, unless ``ttft``/``itl`` are given. Energy uses the Wall 18 power of one
        accelerator, between its idle power and TDP by the decode step's busy fraction."""
        wl = _in.workload(model)
        if not isinstance(wl, TransformerWorkload):
            raise InputError("model", wl.name, "must be a language model (TransformerWorkload)",
                             "pick a model from Models.Language")
        hw = _in.hardware(hardware)
        if hw.tdp is None:
            raise InputError("hardware.tdp", None, f"is unknown for {hw.name}", "set tdp on the HardwareNode")
        steps = _count(reasoning_steps, "reasoning_steps", strict=False)
        per_step = _count(tokens_per_step, "tokens_per_step", strict=False)
        answer = _count(answer_tokens, "answer_tokens")
        prompt = _in.positive_int(prompt_tokens, "prompt_tokens")
        batch = _in.positive_int(batch_size, "batch_size")
        eta = _in.fraction(efficiency, "efficiency")
        choice = _in.precision_for(hw, precision)
        generated = _compiled("reasoning", ("generated_tokens",))(
            reasoning_steps=steps, tokens_per_step=per_step, answer_tokens=answer)["generated_tokens"]
        # the serving sheet's mean decode context, rounded to whole tokens
        context = _compiled("serving", ("decode_context",))(prompt_tokens=float(prompt), output_tokens=generated)
        mean_context = max(1, round(context["decode_context"]))
        decode = _in.workload_values(wl, choice, batch_size=batch, seq_len=mean_context, is_training=False)
        decode.update(_in.hardware_values(hw, choice), efficiency=eta, bandwidth_efficiency=1.0)
        f = _decode_function()
        d = f(**decode)
        prefill = {**decode, **_in.workload_values(wl, choice, batch_size=batch, seq_len=prompt, is_training=False,
                                                   phase="prefill")}
        notes = []
        t_first = f(**prefill)["latency"] if ttft is None else _quantity(ttft, "s", "ttft", "150 ms")
        t_step = d["latency"] if itl is None else _quantity(itl, "s", "itl", "10 ms")
        if ttft is not None or itl is not None:
            notes.append("given ttft/itl used; power uses the roofline busy fraction of a decode step")
        u = d["decode_utilization"]
        from .sustainability import accelerator_idle_watts
        out = _reasoning_function()(
            first_token_latency=t_first, inter_token_latency=t_step, reasoning_steps=steps, tokens_per_step=per_step,
            answer_tokens=answer, tdp=decode["tdp"],
            accelerator_idle_power=accelerator_idle_watts(hw, decode["tdp"]), utilization=u, batch_size=float(batch))
        from ..models import reasoning, sustainability

        def q(name, unit):
            return sheet_quantity(reasoning.sheet, name, out[name], unit)
        return InferenceScalingResult(
            model=wl.name, hardware=hw.name, reasoning_steps=steps, tokens_per_step=per_step,
            generated_tokens=out["generated_tokens"], ttft=input_quantity(t_first, "first_token_latency", "ms"),
            itl=input_quantity(t_step, "inter_token_latency", "ms"),
            latency=q("reasoning_latency", "s"), slowdown_vs_direct=out["reasoning_slowdown"],
            power=sheet_quantity(sustainability.sheet, "accelerator_draw", out["node_power"], "W"),
            energy=q("reasoning_energy", "J"), energy_per_token=q("reasoning_energy_per_token", "J"),
            energy_per_request=q("reasoning_energy_per_request", "J"), utilization=u, notes=notes)


# ------------------------------------------------------------------------------------------------
# Wall 16: multi-tenancy


class TenantWait(Result):
    """One tenant's share of the accelerators and its mean wait."""

    name: str
    arrival_rate: pint.Quantity
    service_time: pint.Quantity
    load: float
    wait: pint.Quantity
    response_time: pint.Quantity
    slowdown: float


class MultiTenantResult(Result):
    """Tenants sharing accelerators (an M/G/1 queue)."""

    discipline: str
    total_load: float
    stable: bool
    residual_work: pint.Quantity
    tenants: list[TenantWait]
    notes: list[str]

    def tenant(self, name: str) -> TenantWait:
        for t in self.tenants:
            if t.name == name:
                return t
        raise UnknownNameError("tenant", name, [t.name for t in self.tenants])


DISCIPLINES = ("fcfs", "priority")


class MultiTenantModel:
    """Wall 16: per-tenant mean waits when tenants share accelerators."""

    walls = (16,)

    def solve(self, tenants: Sequence[Any], discipline: str = "fcfs") -> MultiTenantResult:
        """``tenants``: dicts ``{"name", "arrival_rate" (1/s), "service_time" (s), "service_scv"
        (default 1, exponential)}``. ``discipline="fcfs"`` gives every tenant the
        Pollaczek-Khinchine wait; ``"priority"`` serves tenants in list order (non-preemptive,
        Cobham), so earlier tenants wait less."""
        disc = str(discipline).lower()
        if disc not in DISCIPLINES:
            raise UnknownNameError("discipline", str(discipline), DISCIPLINES)
        if isinstance(tenants, (str, bytes)) or not isinstance(tenants, Sequence) or not tenants:
            raise InputError("tenants", tenants, "must be a non-empty list of tenants",
                             "e.g. [{'name': 'chat', 'arrival_rate': 20, 'service_time': '25 ms'}]")
        names, lam, svc, scv = [], [], [], []
        for i, t in enumerate(tenants):
            if not isinstance(t, dict):
                raise InputError(f"tenants[{i}]", t, "must be a dict with arrival_rate and service_time")
            unknown = set(t) - {"name", "arrival_rate", "service_time", "service_scv"}
            if unknown:
                raise InputError(f"tenants[{i}]", sorted(unknown), "has unknown keys",
                                 "use name, arrival_rate, service_time, service_scv")
            for key in ("arrival_rate", "service_time"):
                if key not in t:
                    raise InputError(f"tenants[{i}].{key}", None, "is required")
            names.append(str(t.get("name", f"tenant{i}")))
            lam.append(_quantity(t["arrival_rate"], "1/s", f"tenants[{i}].arrival_rate", "20 1/s", allow_zero=True))
            svc.append(_quantity(t["service_time"], "s", f"tenants[{i}].service_time", "25 ms"))
            scv.append(_count(t.get("service_scv", 1.0), f"tenants[{i}].service_scv", strict=False))
        lam_a, svc_a, scv_a = np.array(lam), np.array(svc), np.array(scv)
        per = _compiled("multitenant", ("tenant_load", "tenant_residual_work")).vector(
            arrival_rate=lam_a, service_time=svc_a, service_cv2=scv_a)
        loads = per["tenant_load"]
        w0 = float(per["tenant_residual_work"].sum())      # reductions over tenants
        total = float(loads.sum())
        if disc == "fcfs":
            before, through = np.zeros_like(loads), np.full_like(loads, total)
        else:
            through = np.cumsum(loads)
            before = through - loads
        notes = []
        stable = total < 1.0
        waits = _compiled("multitenant", ("tenant_wait", "tenant_response_time", "tenant_slowdown")).vector(
            residual_work=w0, load_before=before, load_through=through, service_time=svc_a)
        unstable = through >= 1.0
        if unstable.any():
            notes.append(f"total load {total:.3f} >= 1: the queue grows without bound"
                         + (" for the lower-priority tenants" if disc == "priority" and not unstable.all() else ""))
        result_tenants = []
        sheet = _sheet("multitenant")
        for i, name in enumerate(names):
            bad = bool(unstable[i])
            w = math.inf if bad else float(waits["tenant_wait"][i])
            resp = math.inf if bad else float(waits["tenant_response_time"][i])
            result_tenants.append(TenantWait(
                name=name, arrival_rate=_per_s(lam[i]), service_time=input_quantity(svc[i], "service_time", "ms"),
                load=float(loads[i]), wait=sheet_quantity(sheet, "tenant_wait", w, "ms"),
                response_time=sheet_quantity(sheet, "tenant_response_time", resp, "ms"),
                slowdown=math.inf if bad else float(waits["tenant_slowdown"][i])))
        # W0 is the sum over tenants of their tenant_residual_work
        residual = sheet_quantity(sheet, "tenant_residual_work", w0, "ms")
        return MultiTenantResult(discipline=disc, total_load=total, stable=stable, residual_work=residual,
                                 tenants=result_tenants, notes=notes)


# ------------------------------------------------------------------------------------------------
# Wall 20: privacy (DP-SGD)


class PrivacyResult(Result):
    """Cost of one differentially private training step."""

    model: str
    hardware: str
    method: str
    batch_size: int
    seq_len: int
    step_latency: pint.Quantity
    baseline_step_latency: pint.Quantity
    slowdown: float
    compute_multiplier: float
    per_sample_gradient_memory: pint.Quantity
    memory_footprint: pint.Quantity
    baseline_memory_footprint: pint.Quantity
    memory_capacity: pint.Quantity
    feasible: bool
    notes: list[str]


DP_METHODS = {"per_sample": (1.0, 1.0), "ghost": (2.0, 0.0), "none": (1.0, 0.0)}
"""method -> (backward passes, per-example gradients stored)."""


@lru_cache(maxsize=None)
def _privacy_function():
    from ..models import memory, roofline, safety
    exprs = {n: safety.sheet[n] for n in ("dp_compute_multiplier", "dp_step_latency", "dp_slowdown",
                                           "per_sample_gradient_bytes", "dp_memory_footprint")}
    exprs.update(latency=roofline.sheet["latency"], memory_footprint=memory.sheet["memory_footprint"])
    return compile_expressions(exprs)


class PrivacyModel:
    """Wall 20: DP-SGD per-example clipping, with per-sample gradients or ghost clipping."""

    walls = (20,)

    def solve(self, model: Any, hardware: Any, batch_size: int = 8, seq_len: int = _in.DEFAULT_SEQ_LEN,
              method: str = "ghost", precision: str = "bf16", efficiency: float = 0.5) -> PrivacyResult:
        """One training step of ``batch_size`` sequences of ``seq_len`` tokens, private by
        ``method``: ``"per_sample"`` (Opacus: materialize B per-example gradients), ``"ghost"``
        (Li et al. 2022: a second backward pass, no per-example buffer) or ``"none"``."""
        wl = _in.workload(model)
        hw = _in.hardware(hardware)
        key = str(method).lower().replace("-", "_")
        if key not in DP_METHODS:
            raise UnknownNameError("method", str(method), DP_METHODS)
        batch = _in.positive_int(batch_size, "batch_size")
        seq = _in.positive_int(seq_len, "seq_len")
        eta = _in.fraction(efficiency, "efficiency")
        choice = _in.precision_for(hw, precision)
        passes, stored = DP_METHODS[key]
        values = _in.workload_values(wl, choice, batch_size=batch, seq_len=seq, is_training=True)
        values.update(_in.hardware_values(hw, choice), efficiency=eta, bandwidth_efficiency=1.0,
                      dp_backward_passes=passes, per_sample_gradients_stored=stored)
        out = _privacy_function()(**values)
        capacity = values["memory_capacity"]
        notes = []
        if key == "ghost":
            notes.append("ghost-norm work (about 2 T^2 (d_in + d_out) per linear layer per example) is not "
                         "counted; it matters when seq_len^2 exceeds d_in x d_out")
        feasible = out["dp_memory_footprint"] <= capacity
        from ..models import memory, roofline, safety
        footprint = sheet_quantity(safety.sheet, "dp_memory_footprint", out["dp_memory_footprint"], "GB")
        capacity_gb = input_quantity(capacity, "memory_capacity", "GB")
        if not feasible:
            notes.append(f"needs {footprint.m:.1f} GB of {capacity_gb.m:.1f} GB: lower the batch, "
                         "use ghost clipping, or shard the model")
        return PrivacyResult(
            model=wl.name, hardware=hw.name, method=key, batch_size=batch, seq_len=seq,
            step_latency=sheet_quantity(safety.sheet, "dp_step_latency", out["dp_step_latency"], "ms"),
            baseline_step_latency=sheet_quantity(roofline.sheet, "latency", out["latency"], "ms"),
            slowdown=out["dp_slowdown"], compute_multiplier=out["dp_compute_multiplier"],
            per_sample_gradient_memory=sheet_quantity(safety.sheet, "per_sample_gradient_bytes",
                                                      out["per_sample_gradient_bytes"], "GB"),
            memory_footprint=footprint,
            baseline_memory_footprint=sheet_quantity(memory.sheet, "memory_footprint", out["memory_footprint"], "GB"),
            memory_capacity=capacity_gb, feasible=bool(feasible), notes=notes)
