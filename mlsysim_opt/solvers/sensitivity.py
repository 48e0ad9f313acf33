"""Wall 21 (Sensitivity): which knob moves latency, computed exactly from the roofline sheet.

The sensitivity of latency to a parameter ``p`` is its elasticity

    s_p = d ln T / d ln p = (dT/dp) * p / T

(``-1`` means "1 % more p gives 1 % less latency"). The partial derivatives come from
``roofline.sheet.gradient("latency")``, i.e. SymPy's derivative of the same expression the forward
model evaluates. ``max(compute, memory)`` differentiates to Heaviside weights, so a parameter that
only feeds the term that is not binding has a sensitivity of exactly 0.0.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional

import pint

from .. import inputs as _in
from ..engine import Engine
from ..errors import InputError
from ..results import PerformanceProfile, Result
from ..types import HardwareNode, TransformerWorkload, Workload
from ..units import ureg


@dataclass
class Lowered:
    """One roofline configuration, validated and lowered to symbol values (SI floats)."""

    workload: Workload
    hardware: HardwareNode
    precision: str
    batch_size: int
    seq_len: int
    efficiency: float
    is_training: bool
    values: dict[str, float]


def lower(model, hardware, *, batch_size=1, precision="fp16", efficiency=0.5, seq_len=None,
          is_training=False) -> Lowered:
    """Validate the arguments exactly as ``Engine.solve`` does and lower them to symbol values."""
    wl = _in.workload(model)
    hw = _in.hardware(hardware)
    batch = _in.positive_int(batch_size, "batch_size")
    eta = _in.fraction(efficiency, "efficiency")
    seq = _in.DEFAULT_SEQ_LEN if seq_len is None else _in.positive_int(seq_len, "seq_len")
    choice = _in.precision_for(hw, precision, warn=False)
    values = _in.workload_values(wl, choice, batch_size=batch, seq_len=seq, is_training=bool(is_training))
    values.update(_in.hardware_values(hw, choice), efficiency=eta, bandwidth_efficiency=1.0)
    return Lowered(wl, hw, choice.precision, batch, seq, eta, bool(is_training), values)


# Each reported parameter is a group of sheet symbols scaled together; ``weights`` gives
# d(symbol)/d(ln p) for each, so the elasticity is sum(dT/dx * weight) / T.
Weights = Callable[[Lowered], dict[str, float]]


def _proportional(*names: str) -> Weights:
    return lambda low: {n: low.values[n] for n in names}


def _seq_weights(low: Lowered) -> dict[str, float]:
    """s * d(x)/ds for each roofline symbol x the phase sets from the sequence length s: the exact
    derivatives of the phases sheet (training: n = s, c = (s + 1)/2; decode: S = c = s)."""
    from ..models import phases
    s = float(low.seq_len)
    phase = phases.phase_of(attention=True, training=low.is_training)
    weights = {}
    for definition, symbol in phases.definitions(phase).items():
        if phases.s in phases.sheet[definition].free_symbols:   # decode's one new token has no slope
            slope = phases.sheet.gradient(definition, [phases.s.name])(sequence_length=s)[phases.s.name]
            weights[symbol] = s * slope
    return weights


PARAMETERS: dict[str, Weights] = {
    "peak_flops": _proportional("peak_flops"),
    # the bandwidth of whichever tier serves the weights: only that tier's derivative is non-zero
    "memory_bandwidth": _proportional("memory_bandwidth", "sram_bandwidth", "flash_bandwidth"),
    "memory_capacity": lambda low: {},   # latency does not read capacity; it decides feasibility
    "efficiency": _proportional("efficiency"),
    "overhead": _proportional("dispatch_tax", "layer_tax"),
    "batch_size": _proportional("batch_size"),
}
LANGUAGE_PARAMETERS: dict[str, Weights] = {"seq_len": _seq_weights}

BINDING_CANDIDATES = ("peak_flops", "memory_bandwidth", "overhead", "memory_capacity")
"""Resources a purchase or a runtime change can move. ``efficiency`` always equals ``peak_flops``
(they enter as a product) and ``batch_size``/``seq_len`` describe the workload, so they are reported
but never named binding."""


def _latency_fn():
    from ..models import roofline
    return roofline.sheet.compiled(["latency"])


def _gradient_fn():
    from ..models import roofline
    return roofline.sheet.gradient("latency")


class SensitivityResult(Result):
    """Elasticities of latency to each parameter and the binding constraint."""

    model: str
    hardware: str
    precision: str
    batch_size: int
    seq_len: Optional[int]
    efficiency: float
    latency: pint.Quantity
    bottleneck: str
    feasible: bool
    binding_constraint: str
    sensitivities: dict[str, float]
    finite_difference: Optional[dict[str, float]] = None
    perturbation_pct: Optional[float] = None
    arithmetic_intensity: pint.Quantity
    ridge_point: pint.Quantity
    profile: PerformanceProfile
    notes: list[str]


class SensitivitySolver:
    """Exact elasticities of single-pass latency (Wall 21)."""

    walls = (21,)

    def solve(self, model, hardware, precision: str = "fp16", efficiency: float = 0.5, batch_size: int = 1,
              seq_len: int | None = None, perturbation_pct: float | None = None,
              is_training: bool = False) -> SensitivityResult:
        """Elasticity ``d ln(latency) / d ln(p)`` for peak_flops, memory_bandwidth (the tier the weights
        are served from), memory_capacity, efficiency, overhead (dispatch + layer tax), batch_size and,
        for language models, seq_len. Exact, from the sheet's symbolic derivatives.

        With ``perturbation_pct`` the finite-difference arc elasticity
        ``ln(T(p * (1 + pct/100)) / T(p)) / ln(1 + pct/100)`` is returned as well, in
        ``finite_difference``, for comparison.
        """
        low = lower(model, hardware, batch_size=batch_size, precision=precision, efficiency=efficiency,
                    seq_len=seq_len, is_training=is_training)
        pct = None
        if perturbation_pct is not None:
            if isinstance(perturbation_pct, bool) or not isinstance(perturbation_pct, (int, float)) \
                    or not 0 < float(perturbation_pct) <= 100:
                raise InputError("perturbation_pct", perturbation_pct, "must be a percentage in (0, 100]",
                                 "e.g. 10.0 for a 10 % step; leave it out for the exact derivative")
            pct = float(perturbation_pct)
        profile = Engine.solve(low.workload, low.hardware, batch_size=low.batch_size, precision=precision,
                               efficiency=low.efficiency, seq_len=seq_len, is_training=low.is_training)
        params = self._parameters(low)
        latency = _latency_fn()(**low.values)["latency"]
        grad = _gradient_fn()(**low.values)
        exact = {}
        for name, weights in params.items():
            total = sum(grad[sym] * w for sym, w in weights(low).items() if sym in grad)
            exact[name] = float(total / latency) + 0.0   # + 0.0 turns -0.0 into 0.0
        fd = self._finite_differences(low, params, latency, pct) if pct is not None else None
        binding = self._binding(exact, profile.feasible)
        notes = []
        if not profile.feasible:
            notes.append(f"does not fit: {profile.infeasibility_reason}; memory_capacity is binding")
        if profile.overhead_dominated:
            notes.append("latency is dominated by launch overheads (dispatch + per-layer tax)")
        return SensitivityResult(
            model=low.workload.name, hardware=low.hardware.name, precision=low.precision,
            batch_size=low.batch_size, seq_len=profile.seq_len, efficiency=low.efficiency,
            latency=profile.latency, bottleneck=profile.bottleneck, feasible=profile.feasible,
            binding_constraint=binding, sensitivities=exact, finite_difference=fd, perturbation_pct=pct,
            arithmetic_intensity=profile.arithmetic_intensity, ridge_point=profile.ridge_point,
            profile=profile, notes=notes)

    @staticmethod
    def _parameters(low: Lowered) -> dict[str, Weights]:
        params = dict(PARAMETERS)
        if isinstance(low.workload, TransformerWorkload):
            params.update(LANGUAGE_PARAMETERS)
        return params

    @staticmethod
    def _binding(exact: dict[str, float], feasible: bool) -> str:
        if not feasible:
            return "memory_capacity"
        # max() keeps the first of equal values: the order of BINDING_CANDIDATES breaks ties
        return max(BINDING_CANDIDATES, key=lambda n: abs(exact[n]))

    @staticmethod
    def _finite_differences(low: Lowered, params: dict[str, Weights], latency: float, pct: float) -> dict[str, float]:
        f = 1.0 + ureg.Quantity(pct, "percent").m_as("dimensionless")
        evaluate = _latency_fn()
        out = {}
        for name, weights in params.items():
            if name == "seq_len":   # re-lower: the phase sets several symbols from the length
                values = dict(low.values)
                choice = _in.precision_for(low.hardware, low.precision, warn=False)
                values.update(_in.workload_values(low.workload, choice, batch_size=low.batch_size,
                                                  seq_len=low.seq_len * f, is_training=low.is_training))
            else:
                values = {**low.values, **{sym: low.values[sym] * f for sym in weights(low)}}
            perturbed = evaluate(**values)["latency"]
            out[name] = math.log(perturbed / latency) / math.log(f) + 0.0
        return out
