"""``ReliabilityModel`` (Wall 15) and ``CheckpointModel`` (Wall 19): failures, checkpoint
intervals, goodput and checkpoint cost. The equations are the ``reliability`` sheet
(models/reliability.py).

Training on spot capacity: a preemption stops a synchronous job just as a failure does. Each node
(one cloud instance) is taken back at the rental sheet's ``spot_interruption_rate``,
``lambda_spot = -ln(1 - f) / month`` (Poisson per instance, f the advisory's monthly share), so
preemptions are one more series component and the rates add:

    lambda = lambda_hw + n_nodes lambda_spot,   M = 1 / lambda

and the MTBF, Young's and Daly's intervals (Young 1974; Daly 2006) and goodput follow from that M
as from any other. Shorter M means more frequent checkpoints: tau ~ sqrt(2 delta M)."""
from __future__ import annotations

import math
import numbers
from functools import lru_cache
from typing import Any, Optional

import pint

from .. import inputs as _in
from ..errors import InputError, UnknownNameError
from ..results import Result
from ..types import Fleet, HardwareNode, Node
from ..units import as_quantity, sheet_quantity, unit_factor
from .quantities import input_quantity
from .sustainability import as_fleet

# ------------------------------------------------------------------------------------------------
# Component failure rates

LLAMA3_EXPOSURE = {"gpus": 16384, "nodes": 2048, "hours": 54 * 24}
"""The Llama 3 405B pre-training snapshot: 16,384 H100 in 2,048 servers for 54 days (Dubey et al.
2024, section 3.3.4)."""

LLAMA3_INTERRUPTIONS = {
    # category: (unexpected interruptions in the snapshot, root causes of Table 5 grouped here)
    "gpu": (148 + 72 + 19 + 17 + 6 + 6,
            "faulty GPU 148, HBM3 72, GPU SRAM 19, GPU system processor 17, silent data corruption 6, "
            "thermal interface and sensor 6"),
    "nic": (7, "NIC 7"),
    "psu": (3, "power supply 3"),
    "host": (32 + 3 + 2 + 2 + 2 + 2,
             "host maintenance 32, SSD 3, server chassis 2, IO expansion board 2, CPU 2, system memory 2"),
    "network": (35, "network switch and cable 35"),
    "software": (54 + 7 + 2, "software bug 54, NCCL watchdog timeout 7, dependency 2"),
}
"""Table 5 of Dubey et al. 2024 (419 unexpected interruptions), grouped by component kind."""

PER_GPU = {"gpu"}
PER_NIC = {"nic"}


def _llama3_mtbf_hours() -> dict[str, float]:
    """Component MTBFs implied by the Llama 3 snapshot: exposure (component-hours) / failures.
    GPUs and NICs are counted per device (8 per server); the rest per server."""
    out = {}
    for kind, (failures, _) in LLAMA3_INTERRUPTIONS.items():
        per = LLAMA3_EXPOSURE["gpus"] if kind in PER_GPU | PER_NIC else LLAMA3_EXPOSURE["nodes"]
        out[kind] = per * LLAMA3_EXPOSURE["hours"] / failures
    return out


DEFAULT_MTBF_HOURS = _llama3_mtbf_hours()
"""gpu ~79,000 h per GPU, nic ~3.0 M h per NIC, psu ~885,000 h, host ~62,000 h, network ~76,000 h and
software ~42,000 h per server. For comparison the reference library assumed 50,000 h per GPU."""

COMPONENT_SYMBOLS = {"gpu": "gpu_mtbf", "nic": "nic_mtbf", "psu": "psu_mtbf", "host": "host_mtbf",
                     "network": "network_mtbf", "software": "software_mtbf"}

RELIABILITY_OUTPUTS = ("failure_rate", "fleet_mtbf", "young_interval", "daly_interval", "daly_fallback")
GOODPUT_OUTPUTS = ("goodput", "expected_wall_time", "expected_failures", "failure_probability",
                   "checkpoint_overhead_share", "rework_share", "restart_share")
CHECKPOINT_OUTPUTS = ("checkpoint_bytes_per_param", "checkpoint_bytes", "checkpoint_write_bandwidth",
                      "checkpoint_write_bound", "checkpoint_write_time")

DEFAULT_WRITER_BANDWIDTH = "20 GB/s"
"""Checkpoint write bandwidth of one node to shared storage (estimate): half the >40 GB/s per-node
GPUDirect Storage read rate of NVIDIA's DGX SuperPOD (H100) reference architecture, since parallel
filesystems write more slowly than they read."""
DEFAULT_FILESYSTEM_BANDWIDTH = "2 TB/s"
"""Sustained throughput of the filesystem behind the Llama 3 run (Tectonic, 7,500 SSD servers;
Dubey et al. 2024). Small clusters have less; pass filesystem_bandwidth=."""

OPTIMIZER_STATE = {"adam": "adam_state_bytes", "adamw": "adam_state_bytes", "sgd": "momentum_state_bytes",
                   "none": None}
"""Optimizer name -> the memory sheet's constant for its state per parameter in a mixed-precision
checkpoint (models/memory.py: Adam an fp32 master copy and two fp32 moments, SGD with momentum an
fp32 master and one moment); "none" saves the weights only. The 16-bit weights add bytes_per_value
(2 for bf16): 14 B/param for Adam."""


def optimizer_bytes(name: str) -> float:
    """Optimizer-state bytes per parameter of ``name`` (a key of ``OPTIMIZER_STATE``)."""
    constant = OPTIMIZER_STATE[name]
    if constant is None:
        return 0.0
    from ..models import memory  # noqa: F401  (declares the constants)
    from ..symbolic import constants, declared_symbols
    return constants()[declared_symbols()[constant].sym]


@lru_cache(maxsize=None)
def _compiled(names: tuple[str, ...]):
    from ..models import reliability
    return reliability.sheet.compiled(names)


def _sheet():
    from ..models import reliability
    return reliability.sheet


def component_mtbf_seconds(overrides: Any) -> dict[str, float]:
    """Symbol values of the component MTBFs (defaults, with ``overrides`` in hours or as times)."""
    hours = dict(DEFAULT_MTBF_HOURS)
    if overrides is not None:
        if not isinstance(overrides, dict):
            raise InputError("component_mtbf", overrides, "must be a dict {component: MTBF}",
                             f"components: {', '.join(COMPONENT_SYMBOLS)}; e.g. {{'gpu': 50000}} (hours)")
        for kind, value in overrides.items():
            if kind not in COMPONENT_SYMBOLS:
                raise UnknownNameError("component in component_mtbf", str(kind), COMPONENT_SYMBOLS)
            if isinstance(value, numbers.Real) and not isinstance(value, bool):
                h = float(value)
            else:
                h = as_quantity(value, "hour", f"component_mtbf[{kind!r}]", example="50000 hour").m_as("hour")
            if not h > 0:
                raise InputError(f"component_mtbf[{kind!r}]", value, "must be a positive time (hours)")
            hours[kind] = h
    _sheet()   # declares the MTBF symbols
    from ..symbolic.sheet import symbol_info
    return {sym: hours[k] * unit_factor("hour", symbol_info(sym).unit) for k, sym in COMPONENT_SYMBOLS.items()}


def fleet_values(fl: Fleet) -> dict[str, float]:
    node = fl.node
    return {"node_count": float(fl.count), "accelerators_per_node": float(node.accelerators_per_node),
            "nics_per_node": float(node.nics if node.nics is not None else node.accelerators_per_node)}


def _seconds(value: Any, field: str, unit: str = "s", *, allow_zero: bool = False) -> float:
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        v = float(value) * unit_factor(unit, "s")
    else:
        v = as_quantity(value, "s", field, example=f"60 {unit}").m_as("s")
    if not (v >= 0 if allow_zero else v > 0):
        raise InputError(field, value, f"must be a {'non-negative' if allow_zero else 'positive'} time "
                                       f"(a number in {unit}, or a quantity)")
    return v


def _one_component(mtbf: float) -> dict[str, float]:
    """Sheet inputs of a fleet that is one series component of MTBF ``mtbf`` (seconds): the same
    sheet, nothing else failing."""
    components = {s: float("inf") for s in COMPONENT_SYMBOLS.values()}
    components["gpu_mtbf"] = mtbf
    return {"node_count": 1.0, "accelerators_per_node": 1.0, "nics_per_node": 0.0, **components}


# ------------------------------------------------------------------------------------------------
# Spot preemptions


SPOT_FIX = "a monthly interruption share as a fraction below 1 (0.15 for 15 %), or a band (0.10, 0.15)"


def spot_share(value: Any) -> Optional[float]:
    """The monthly interruption share ``f`` to use: a fraction, or the upper edge of a (lo, hi)
    band (conservative: the advisories publish bands); None for on-demand or owned capacity."""
    if value is None:
        return None
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise InputError("spot_interruption", value, "must be one share or a (lo, hi) band", SPOT_FIX)
        lo, hi = (_share(v) for v in value)
        if lo > hi:
            raise InputError("spot_interruption", value, "is a band whose lower edge exceeds its upper edge",
                             "give (lo, hi) with lo <= hi, e.g. (0.10, 0.15)")
        return hi
    return _share(value)


def _share(value: Any) -> float:
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        f = float(value)
    else:
        f = float(as_quantity(value, "dimensionless", "spot_interruption", example="15 percent").m)
    if not 0 <= f < 1:
        raise InputError("spot_interruption", value, "must be a share in [0, 1) of instances per month", SPOT_FIX)
    return f


def spot_rate(share: float) -> float:
    """Preemptions per second of one spot instance: the rental sheet's ``spot_interruption_rate``."""
    from ..models import rental
    f = rental.sheet.compiled(("spot_interruption_rate",))
    return f(spot_interruption_frequency=share)["spot_interruption_rate"]


def _with_spot(values: dict, share: float, nodes: int) -> tuple[dict, float, float]:
    """Sheet inputs with preemptions folded in, and the hardware and preemption rates of the fleet
    (1/s). Preemptions are one more series component, so the rates add; the sheet then sees one
    component of MTBF 1 / (lambda_hw + n_nodes lambda_spot)."""
    hw = _compiled(("failure_rate",))(**values)["failure_rate"]
    spot = nodes * spot_rate(share)
    return _one_component(1 / (hw + spot)), hw, spot


def _spot_mtbf(spot: float) -> pint.Quantity:
    return sheet_quantity(_sheet(), "fleet_mtbf", math.inf if spot == 0 else 1 / spot, "hour")


# ------------------------------------------------------------------------------------------------
# ReliabilityModel


class ReliabilityResult(Result):
    """Fleet MTBF, optimal checkpoint intervals and goodput of a synchronous job."""

    fleet: str
    accelerators: int
    fleet_mtbf: pint.Quantity
    failure_rate_per_day: float
    job_duration: pint.Quantity
    expected_wall_time: pint.Quantity
    expected_failures: float
    failure_probability: float
    young_interval: pint.Quantity
    daly_interval: pint.Quantity
    checkpoint_interval: pint.Quantity
    checkpoint_time: pint.Quantity
    recovery_time: pint.Quantity
    goodput: float
    checkpoint_overhead_share: float
    rework_share: float
    restart_share: float
    component_mtbf: dict[str, pint.Quantity]
    failures_by_component: dict[str, float]
    notes: list[str]
    spot_interruption: Optional[float] = None
    """Monthly interruption share used for spot nodes (a band's upper edge); None: not on spot."""
    spot_mtbf: Optional[pint.Quantity] = None
    """MTBF of the fleet from preemptions alone, 1 / (n_nodes lambda_spot)."""
    hardware_mtbf: Optional[pint.Quantity] = None
    """MTBF of the fleet from failures alone (set with spot_interruption)."""
    preemption_share: float = 0.0
    """Share of the job-stopping events that are preemptions."""


class ReliabilityModel:
    """Walls 15 and 19: how often a synchronous job stops, when to checkpoint, what is lost."""

    walls = (15, 19)

    def solve(self, fleet: Any, job_duration_hours: Any, checkpoint_time_s: Any = 60, recovery_time_s: Any = 300,
              component_mtbf: Optional[dict] = None, checkpoint_interval_s: Any = None,
              fleet_mtbf_hours: Any = None, spot_interruption: Any = None) -> ReliabilityResult:
        """Failures of ``fleet`` over a job of ``job_duration_hours`` of failure-free compute.

        Component MTBFs default to the rates of the Llama 3 405B run (Dubey et al. 2024, Table 5);
        ``component_mtbf`` overrides any of gpu, nic (per device), psu, host, network, software
        (per node), in hours. The checkpoint interval is Daly's optimum unless
        ``checkpoint_interval_s`` is given; goodput counts checkpoint writes, the work lost since
        the last checkpoint and the restart (``recovery_time_s``). ``fleet_mtbf_hours`` replaces the
        component model with one measured fleet MTBF.

        ``spot_interruption`` (a monthly share f, or a (lo, hi) advisory band whose upper edge is
        used) puts every node on spot: each is preempted at -ln(1 - f) per month (Poisson per
        instance), preemptions add ``n_nodes`` times that rate to the failure rate, and the MTBF,
        intervals and goodput follow. ``preemption_share``, ``spot_mtbf`` and ``hardware_mtbf`` say
        how much of the loss is the price discount's. None (default): owned or on-demand nodes."""
        fl = as_fleet(fleet)
        job = _seconds(job_duration_hours, "job_duration_hours", "hour")
        delta = _seconds(checkpoint_time_s, "checkpoint_time_s")
        restart = _seconds(recovery_time_s, "recovery_time_s", allow_zero=True)
        if fleet_mtbf_hours is not None:
            if component_mtbf is not None:
                raise InputError("fleet_mtbf_hours", fleet_mtbf_hours, "cannot be combined with component_mtbf",
                                 "give either a measured fleet MTBF or component MTBFs")
            # One series component with the measured MTBF: the same sheet, nothing else failing.
            measured = _seconds(fleet_mtbf_hours, "fleet_mtbf_hours", "hour")
            values = _one_component(measured)
        else:
            values = {**fleet_values(fl), **component_mtbf_seconds(component_mtbf)}
        hardware = values          # failures alone, before preemptions fold in
        share = spot_share(spot_interruption)
        if share is not None:
            values, hw_rate, spot = _with_spot(hardware, share, fl.count)
        values.update(checkpoint_time=delta, restart_time=restart, job_time=job)
        base = _compiled(RELIABILITY_OUTPUTS)(**values)
        notes = []
        if base["daly_fallback"]:
            notes.append("checkpoint time exceeds twice the MTBF: the job rarely completes an interval; "
                         "Daly's interval falls back to the MTBF")
        tau = base["daly_interval"] if checkpoint_interval_s is None else _seconds(checkpoint_interval_s,
                                                                                 "checkpoint_interval_s")
        out = _compiled(GOODPUT_OUTPUTS)(**values, checkpoint_interval=tau)
        if out["goodput"] < 0.5:
            notes.append(f"goodput {out['goodput']:.2f}: the fleet fails faster than it can make progress; "
                         "checkpoint faster or use fewer, more reliable components")
        total_rate = base["failure_rate"]
        if fleet_mtbf_hours is None:
            rates = _per_component_rates(hardware)
        else:
            rates = {"measured": hw_rate} if share is not None else {}
        sheet = _sheet()
        if share is not None:
            rates["spot_preemption"] = spot
            before, after = (sheet_quantity(sheet, "fleet_mtbf", 1 / r, "hour").m for r in (hw_rate, total_rate))
            notes.append(f"spot at {share:.1%} of instances a month: {spot / total_rate:.0%} of the stops are "
                         f"preemptions, and the fleet MTBF falls from {before:.3g} h to {after:.3g} h")
        return ReliabilityResult(
            fleet=fl.name, accelerators=fl.total_accelerators,
            fleet_mtbf=sheet_quantity(sheet, "fleet_mtbf", base["fleet_mtbf"], "hour"),
            failure_rate_per_day=sheet_quantity(sheet, "failure_rate", total_rate, "1/day").m,
            job_duration=input_quantity(job, "job_time", "hour"),
            expected_wall_time=sheet_quantity(sheet, "expected_wall_time", out["expected_wall_time"], "hour"),
            expected_failures=out["expected_failures"], failure_probability=out["failure_probability"],
            young_interval=sheet_quantity(sheet, "young_interval", base["young_interval"], "minute"),
            daly_interval=sheet_quantity(sheet, "daly_interval", base["daly_interval"], "minute"),
            checkpoint_interval=input_quantity(tau, "checkpoint_interval", "minute"),
            checkpoint_time=input_quantity(delta, "checkpoint_time", "s"),
            recovery_time=input_quantity(restart, "restart_time", "s"),
            goodput=out["goodput"], checkpoint_overhead_share=out["checkpoint_overhead_share"],
            rework_share=out["rework_share"], restart_share=out["restart_share"],
            component_mtbf={} if fleet_mtbf_hours is not None else
            {k: input_quantity(hardware[sym], sym, "hour") for k, sym in COMPONENT_SYMBOLS.items()},
            failures_by_component={k: out["expected_failures"] * r / total_rate for k, r in rates.items()},
            notes=notes,
            **({} if share is None else dict(
                spot_interruption=share, spot_mtbf=_spot_mtbf(spot), preemption_share=spot / total_rate,
                hardware_mtbf=sheet_quantity(sheet, "fleet_mtbf", 1 / hw_rate, "hour"))),
        )


def _per_component_rates(values: dict) -> dict[str, float]:
    """Each kind's share of the fleet failure rate, from the same sheet with the others removed."""
    f = _compiled(("failure_rate",))
    rates = {}
    for kind, sym in COMPONENT_SYMBOLS.items():
        only = {**values, **{s: float("inf") for s in COMPONENT_SYMBOLS.values() if s != sym}}
        rates[kind] = f(**only)["failure_rate"]
    return rates


# ------------------------------------------------------------------------------------------------
# CheckpointModel


class CheckpointResult(Result):
    """Size and cost of one checkpoint of a training job."""

    model: str
    optimizer: str
    bytes_per_param: float
    checkpoint_size: pint.Quantity
    writers: int
    write_bandwidth: pint.Quantity
    write_time: pint.Quantity
    checkpoint_interval: pint.Quantity
    interval_source: str
    checkpoint_overhead_fraction: float
    storage_bound: str
    notes: list[str]
    spot_interruption: Optional[float] = None
    """Monthly interruption share used for spot nodes (a band's upper edge); None: not on spot."""
    spot_mtbf: Optional[pint.Quantity] = None
    """MTBF of the fleet from preemptions alone."""
    preemption_share: float = 0.0
    """Share of the job-stopping events that are preemptions."""


class CheckpointModel:
    """Wall 19: what one checkpoint costs."""

    walls = (19,)

    def solve(self, model: Any, hardware: Any, optimizer: str = "adam", storage_bandwidth: Any = None,
              interval_hours: Any = None, filesystem_bandwidth: Any = None, writers: Optional[int] = None,
              precision: str = "bf16", spot_interruption: Any = None) -> CheckpointResult:
        """Checkpoint of ``model`` trained on ``hardware`` (a Fleet, a Node or one accelerator).

        Size: weights at ``precision`` plus optimizer state (Adam: 2 + 12 = 14 B/param in bf16).
        Write bandwidth: ``storage_bandwidth`` per writer (default 20 GB/s per node) times the
        writers (default: every node writes its shard), capped by ``filesystem_bandwidth``
        (default 2 TB/s). Overhead: the fraction of wall time spent writing, delta / (tau + delta),
        at ``interval_hours`` or else Daly's optimal interval for the fleet's MTBF.
        ``spot_interruption`` (a monthly share, or a (lo, hi) band: its upper edge) adds spot
        preemptions to that MTBF as in ``ReliabilityModel.solve``."""
        wl = _in.workload(model)
        opt = str(optimizer).lower()
        if opt not in OPTIMIZER_STATE:
            raise UnknownNameError("optimizer", str(optimizer), OPTIMIZER_STATE)
        fl, notes = _as_checkpoint_fleet(hardware)
        n_writers = fl.count if writers is None else _in.positive_int(writers, "writers")
        per_writer = as_quantity(storage_bandwidth if storage_bandwidth is not None else DEFAULT_WRITER_BANDWIDTH,
                                 "byte/s", "storage_bandwidth", example="20 GB/s").m_as("byte/s")
        cap = as_quantity(filesystem_bandwidth if filesystem_bandwidth is not None else DEFAULT_FILESYSTEM_BANDWIDTH,
                          "byte/s", "filesystem_bandwidth", example="2 TB/s").m_as("byte/s")
        for name, v, given in (("storage_bandwidth", per_writer, storage_bandwidth),
                               ("filesystem_bandwidth", cap, filesystem_bandwidth)):
            if not v > 0:
                raise InputError(name, given, "must be a positive bandwidth")
        from ..types import PRECISION_BYTES
        from ..precision import normalize_precision
        b = PRECISION_BYTES[normalize_precision(precision)]
        b_opt = optimizer_bytes(opt)
        values = {"params": wl.parameters, "bytes_per_value": b, "optimizer_bytes_per_param": b_opt,
                  "checkpoint_writers": float(n_writers), "writer_bandwidth": per_writer,
                  "filesystem_bandwidth": cap}
        out = _compiled(CHECKPOINT_OUTPUTS)(**values)
        delta = out["checkpoint_write_time"]
        rel, source = {**fleet_values(fl), **component_mtbf_seconds(None)}, "Daly optimum for the fleet MTBF"
        share_f = spot_share(spot_interruption)
        spot_fields = {}
        if share_f is not None:
            rel, hw_rate, spot = _with_spot(rel, share_f, fl.count)
            source += f" with spot preemptions ({share_f:.1%} a month)"
            spot_fields = dict(spot_interruption=share_f, spot_mtbf=_spot_mtbf(spot),
                               preemption_share=spot / (hw_rate + spot))
        if interval_hours is not None:
            tau, source = _seconds(interval_hours, "interval_hours", "hour"), "given"
        else:
            rel["checkpoint_time"] = delta
            tau = _compiled(("daly_interval",))(**rel)["daly_interval"]
        share = _compiled(("checkpoint_overhead_share",))(checkpoint_time=delta, checkpoint_interval=tau)
        from ..models.reliability import CHECKPOINT_BOUNDS
        sheet = _sheet()
        return CheckpointResult(
            model=wl.name, optimizer=opt,
            bytes_per_param=sheet_quantity(sheet, "checkpoint_bytes_per_param", out["checkpoint_bytes_per_param"],
                                           "byte").m,
            checkpoint_size=sheet_quantity(sheet, "checkpoint_bytes", out["checkpoint_bytes"], "GB"),
            writers=n_writers,
            write_bandwidth=sheet_quantity(sheet, "checkpoint_write_bandwidth", out["checkpoint_write_bandwidth"],
                                           "GB/s"),
            write_time=sheet_quantity(sheet, "checkpoint_write_time", delta, "s"),
            checkpoint_interval=input_quantity(tau, "checkpoint_interval", "minute"), interval_source=source,
            checkpoint_overhead_fraction=share["checkpoint_overhead_share"],
            storage_bound=CHECKPOINT_BOUNDS[int(out["checkpoint_write_bound"])], notes=notes, **spot_fields,
        )


def _as_checkpoint_fleet(value: Any) -> tuple[Fleet, list[str]]:
    if isinstance(value, (Fleet, str)):
        return as_fleet(value, "hardware"), []
    if isinstance(value, Node):
        return Fleet(name=f"1 x {value.name}", node=value, count=1), []
    if isinstance(value, HardwareNode):
        node = Node(name=f"1 x {value.name}", accelerator=value, accelerators_per_node=1,
                    intra_node_bandwidth=value.host_link_bandwidth or "64 GB/s", nics=1)
        return Fleet(name=node.name, node=node, count=1), [
            f"one {value.name} treated as a one-accelerator node with one writer"]
    raise InputError("hardware", value, "must be a Fleet, a Node or a HardwareNode",
                     "e.g. Systems.Clusters.Research_256 or Hardware.H100")
