"""Wall 22 (Synthesis): the inverse roofline. Which hardware meets a latency target?

The forward model is ``T = max(T_compute, T_memory) + T_overhead``. A device meets ``T*`` exactly
when both roofline terms fit in the budget ``T* - T_overhead``, so the requirements come from
solving the roofline sheet's own expressions (SymPy ``solve``):

    latency_memory(memory_bandwidth)  = T* - latency_overhead   ->  required_bw
    latency_compute(peak_flops)       = T* - latency_overhead   ->  required_flops

with the weights served from main memory (no SRAM or flash tier). The solutions are compiled once.
A device built with exactly these specs and the same dispatch tax has latency ``T*`` when fed back
through ``Engine.solve`` (tested). A target at or below the fixed overhead is impossible.
"""
from __future__ import annotations

import math
import warnings
from functools import lru_cache
from typing import Optional

import pint
import sympy

from .. import inputs as _in
from ..engine import Engine
from ..errors import InputError
from ..precision import PrecisionChoice, normalize_precision
from ..results import PerformanceProfile, Result
from ..types import PRECISION_BYTES, ComputeCore, HardwareNode, MemoryHierarchy
from ..units import as_quantity, quantity_factory, sheet_quantity, ureg
from .quantities import input_quantity, scale

TARGET = sympy.Symbol("target_latency", positive=True)
"""T*, seconds. A solver-local unknown: it is not a model input, so it is not declared package-wide."""

_GB = quantity_factory("GB")


@lru_cache(maxsize=None)
def inverse_roofline():
    """``(forward, inverse)`` compiled functions: the forward quantities the requirements are reported
    with (overhead, arithmetic intensity, footprint), and the budget ``T* - overhead`` with
    ``required_bw``/``required_flops`` as derived by SymPy from the roofline sheet. The inverse is
    only evaluated once the budget is known positive."""
    from ..compile.numeric import compile_expressions
    from ..models import memory, roofline
    from ..symbolic import constants, declared_symbols
    s = {name: info.sym for name, info in declared_symbols().items()}
    main_memory_only = {s["sram_capacity"]: 0, s["flash_capacity"]: 0}
    budget = TARGET - roofline.sheet["latency_overhead"]
    inverse = {
        "latency_budget": budget,
        "required_bw": _solve_for(roofline.sheet["latency_memory"].subs(main_memory_only), budget,
                                  s["memory_bandwidth"]),
        "required_flops": _solve_for(roofline.sheet["latency_compute"], budget, s["peak_flops"]),
    }
    # peak over bandwidth of the device that meets the target exactly
    inverse["required_intensity"] = inverse["required_flops"] / inverse["required_bw"]
    forward = {name: roofline.sheet[name] for name in ("latency_overhead", "arithmetic_intensity")}
    forward["memory_footprint"] = memory.sheet["memory_footprint"]
    order = list(declared_symbols())
    free = set().union(*(e.free_symbols for e in inverse.values())) - {TARGET} - set(constants())
    inputs = sorted(free, key=lambda x: order.index(x.name)) + [TARGET]
    return compile_expressions(forward), compile_expressions(inverse, inputs)


@lru_cache(maxsize=None)
def inverse_units() -> dict[str, str]:
    """Units the inverse returns its outputs in: those of the roofline symbols solved for (the budget:
    the overhead's)."""
    from ..models import roofline
    from ..symbolic.sheet import symbol_info
    flops, bandwidth = symbol_info("peak_flops").unit, symbol_info("memory_bandwidth").unit
    return {"latency_budget": roofline.sheet.unit("latency_overhead"), "required_bw": bandwidth,
            "required_flops": flops, "required_intensity": f"({flops}) / ({bandwidth})"}


def _solve_for(expr, budget, unknown):
    solutions = sympy.solve(sympy.Eq(expr, budget), unknown, dict=False)
    if len(solutions) != 1:  # the roofline terms are monotone in each resource: one root
        raise RuntimeError(f"expected one solution for {unknown}, got {solutions}")
    return solutions[0]


class SynthesisCandidate(Result):
    """One device evaluated against the target by ``Engine.solve``."""

    hardware: str
    unit_cost: Optional[pint.Quantity] = None
    price_listed: bool
    meets_target: bool
    latency: Optional[pint.Quantity] = None
    slack: Optional[pint.Quantity] = None
    bottleneck: Optional[str] = None
    feasible: bool
    reason: Optional[str] = None
    profile: Optional[PerformanceProfile] = None


class SynthesisResult(Result):
    """Hardware requirements for a latency target and the devices that meet it."""

    model: str
    target_latency: pint.Quantity
    batch_size: int
    precision: str
    efficiency: float
    seq_len: Optional[int]
    latency_overhead: pint.Quantity
    latency_budget: pint.Quantity
    dispatch_tax: pint.Quantity
    required_bw: pint.Quantity
    required_flops: pint.Quantity
    required_capacity: pint.Quantity
    required_intensity: pint.Quantity
    arithmetic_intensity: pint.Quantity
    candidates: list[SynthesisCandidate]
    rejected: list[SynthesisCandidate]
    notes: list[str]

    def as_hardware(self, name: str = "Synthesized accelerator") -> HardwareNode:
        """A device with exactly the required specs (and the dispatch tax the requirements assumed)."""
        return HardwareNode(
            name=name,
            compute=ComputeCore(peak_flops=self.required_flops, peak_precision=self.precision),
            memory=MemoryHierarchy(capacity=self.required_capacity, bandwidth=self.required_bw),
            dispatch_tax=self.dispatch_tax)


class SynthesisSolver:
    """Inverse roofline (Wall 22): requirements from a latency SLA, then matching registry devices."""

    walls = (22,)

    def solve(self, model, target_latency, batch_size: int = 1, precision: str = "fp16",
              efficiency: float = 0.5, seq_len: int | None = None, hardware=None,
              is_training: bool = False, dispatch_tax=None) -> SynthesisResult:
        """Requirements for one pass of ``model`` to finish within ``target_latency`` (a quantity, a
        string such as ``"30 ms"`` or a number of seconds).

        ``required_bw``, ``required_flops`` (peak, before ``efficiency``) and ``required_capacity``
        describe a device that meets the target exactly, assuming ``dispatch_tax`` (default: the
        HardwareNode default, 10 us) and the package's per-layer tax. ``candidates`` are the devices
        of ``hardware`` (default: the whole registry) that meet the target in ``Engine.solve``,
        cheapest first; devices without a listed price follow, flagged ``price_listed=False``.
        """
        wl = _in.workload(model)
        batch = _in.positive_int(batch_size, "batch_size")
        eta = _in.fraction(efficiency, "efficiency")
        prec = normalize_precision(precision)
        seq = _in.DEFAULT_SEQ_LEN if seq_len is None else _in.positive_int(seq_len, "seq_len")
        target = as_quantity(target_latency, "s", "target_latency", example="30 ms")
        t_star = float(target.magnitude)
        if not t_star > 0:
            raise InputError("target_latency", f"{target.to('ms'):~P}", "must be positive", "e.g. Q_('30 ms')")
        if dispatch_tax is None:
            tax = HardwareNode.model_fields["dispatch_tax"].default_factory()
        else:
            tax = as_quantity(dispatch_tax, "s", "dispatch_tax", example="10 us")
            if tax.magnitude < 0:
                raise InputError("dispatch_tax", f"{tax:~P}", "must be >= 0")

        native = PrecisionChoice(prec, PRECISION_BYTES[prec], prec, float("nan"), None)
        values = _in.workload_values(wl, native, batch_size=batch, seq_len=seq, is_training=bool(is_training))
        values.update(efficiency=eta, bandwidth_efficiency=1.0, dispatch_tax=float(tax.magnitude),
                      layer_tax=_in.LAYER_TAX_S, target_latency=t_star)
        forward, inverse = inverse_roofline()
        out = forward(**values)
        from ..models import memory, roofline
        overhead = sheet_quantity(roofline.sheet, "latency_overhead", out["latency_overhead"], "ms")
        layer_tax = input_quantity(_in.LAYER_TAX_S, "layer_tax", "ms")
        if t_star <= out["latency_overhead"]:
            raise InputError(
                "target_latency", f"{target.to('ms'):~P}",
                f"is below the minimum achievable latency of {overhead.m:.4g} ms: the dispatch tax "
                f"({tax.to('ms').magnitude:.4g} ms) plus {wl.layers or 1} layer launches x {layer_tax.m:g} ms "
                "are paid whatever the hardware",
                f"ask for more than {overhead.m:.4g} ms, or fewer layers / a smaller dispatch tax")
        required = inverse(**values)
        units = inverse_units()

        def requirement(name: str, unit: str) -> pint.Quantity:
            mul, div = scale(units[name], unit)
            return ureg.Quantity(float(required[name]) * mul / div, unit)
        is_lm = hasattr(wl, "n_kv_heads")
        result_seq = seq if is_lm else None
        candidates, rejected = self._match(wl, hardware, batch, prec, eta, result_seq, bool(is_training), target)
        notes = [f"requirements assume weights served from main memory, a dispatch tax of {tax.to('us').magnitude:.4g} us "
                 f"and {layer_tax.to('us').m:g} us per layer launch"]
        if any(not c.price_listed for c in candidates):
            notes.append("devices without a listed unit_cost are ranked after the priced ones")
        return SynthesisResult(
            model=wl.name, target_latency=target.to("ms"), batch_size=batch, precision=prec, efficiency=eta,
            seq_len=result_seq, latency_overhead=overhead, latency_budget=requirement("latency_budget", "ms"),
            dispatch_tax=tax.to("us"), required_bw=requirement("required_bw", "GB/s"),
            required_flops=requirement("required_flops", "TFLOP/s"),
            required_capacity=_capacity_at_least(out["memory_footprint"], memory.sheet.unit("memory_footprint")),
            required_intensity=requirement("required_intensity", "FLOP/byte"),
            arithmetic_intensity=sheet_quantity(roofline.sheet, "arithmetic_intensity", out["arithmetic_intensity"],
                                                "FLOP/byte"),
            candidates=candidates, rejected=rejected, notes=notes)

    @staticmethod
    def _match(wl, hardware, batch, prec, eta, seq, is_training, target) -> tuple[list, list]:
        devices = _device_list(hardware)
        met, missed = [], []
        for hw in devices:
            cost = hw.unit_cost
            base = dict(hardware=hw.name, unit_cost=cost, price_listed=cost is not None)
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    p = Engine.solve(wl, hw, batch_size=batch, precision=prec, efficiency=eta, seq_len=seq,
                                     is_training=is_training)
            except InputError as exc:
                missed.append(SynthesisCandidate(**base, meets_target=False, feasible=False, reason=str(exc)))
                continue
            meets = bool(p.feasible and p.latency <= target)
            reason = None
            if not p.feasible:
                reason = f"does not fit: {p.infeasibility_reason}"
            elif not meets:
                reason = f"too slow: {p.latency.to('ms'):.4g~P} > {target.to('ms'):.4g~P} ({p.bottleneck}-bound)"
            entry = SynthesisCandidate(**base, meets_target=meets, latency=p.latency,
                                       slack=(target - p.latency).to("ms"), bottleneck=p.bottleneck,
                                       feasible=p.feasible, reason=reason, profile=p)
            (met if meets else missed).append(entry)
        met.sort(key=lambda c: (not c.price_listed,
                                c.unit_cost.to("USD").magnitude if c.price_listed else 0.0,
                                c.latency.to("s").magnitude))
        return met, missed


def _device_list(hardware) -> list[HardwareNode]:
    if hardware is None:
        from ..catalog import Hardware
        return list(Hardware)
    if isinstance(hardware, (HardwareNode, str)):
        hardware = [hardware]
    try:
        items = list(hardware)
    except TypeError:
        raise InputError("hardware", hardware, "must be a list of HardwareNode records (or registry names)",
                         "e.g. [Hardware.H100, Hardware.A100], or leave it out for the whole registry") from None
    if not items:
        raise InputError("hardware", hardware, "is empty", "list at least one device or leave it out")
    return [_in.hardware(h, "hardware[]") for h in items]


def _capacity_at_least(footprint: float, unit: str) -> pint.Quantity:
    """GB that convert back to at least ``footprint`` (in ``unit``), so the round trip never misses by
    a rounding error."""
    mul, div = scale(unit, "GB")
    gb = footprint * mul / div
    back_mul, back_div = scale("GB", unit)
    while gb * back_mul / back_div < footprint:
        gb = math.nextafter(gb, math.inf)
    return _GB(gb)
