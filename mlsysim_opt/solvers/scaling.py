"""``ScalingModel`` (Wall 11): Chinchilla compute-optimal model size, data and loss.

The equations are the ``scaling`` sheet (models/scaling.py)."""
from __future__ import annotations

import numbers
from functools import lru_cache
from typing import Any, Optional

import pint

from .. import inputs as _in
from ..errors import InputError
from ..results import Result
from ..types import Fleet, HardwareNode, Workload
from ..units import as_quantity, quantity_factory, sheet_quantity, unit_factor, ureg

REFERENCE_HARDWARE = "H100"
"""Accelerator that converts GPU-time budgets to FLOP when no fleet or hardware is given."""

_flop = quantity_factory("FLOP")


@lru_cache(maxsize=None)
def _functions():
    from ..models import scaling
    sheet = scaling.sheet
    return {
        "optimal": sheet.compiled(("optimal_params", "optimal_tokens")),
        "fixed": sheet.compiled(("tokens_for_size",)),
        "loss": sheet.compiled(("loss", "training_flops")),
        "from_time": sheet.compiled(("budget_from_accelerator_time",)),
        "to_time": sheet.compiled(("accelerator_time_for_budget",)),
        "shape": sheet.compiled(("shape_layers", "shape_width")),
    }


class ScalingResult(Result):
    """Compute-optimal (or fixed-size) allocation of a training budget."""

    compute_budget: pint.Quantity
    compute_budget_flops: float
    optimal_parameters: float
    optimal_tokens: float
    tokens_per_parameter: float
    loss: float
    fixed_size: bool
    reference_accelerator: str
    precision: str
    mfu: float
    accelerator_days: pint.Quantity
    wall_clock: Optional[pint.Quantity] = None
    accelerators: Optional[int] = None
    notes: list[str]

    def workload(self, name: Optional[str] = None):
        """A dense decoder of ``optimal_parameters`` parameters (d_model/layers = 128, head width 128)
        to hand to the next stage (Pipeline: Scaling -> Distributed -> Economics)."""
        from ..types import TransformerWorkload
        shape = _functions()["shape"](params=self.optimal_parameters)
        layers = max(1, round(shape["shape_layers"]))
        width = max(128, 128 * round(shape["shape_width"] / 128))
        billions = self.optimal_parameters * unit_factor("param", "Gparam")
        return TransformerWorkload(
            name=name or f"Chinchilla-optimal {billions:.3g}B", parameters=self.optimal_parameters,
            layers=layers, hidden_size=width, heads=width // 128, head_dim=128, training_tokens=self.optimal_tokens)

    def pipeline_outputs(self) -> dict:
        return {"model": self.workload()}


class ScalingModel:
    """Wall 11: Chinchilla scaling (Hoffmann et al. 2022)."""

    walls = (11,)
    outputs = (*ScalingResult.model_fields, "model")   # "model": the decoder pipeline_outputs() hands on

    def solve(self, compute_budget: Any, target_model_size: Any = None, fleet: Any = None, mfu: float = 0.4,
              precision: str = "bf16") -> ScalingResult:
        """Split ``compute_budget`` between parameters and tokens.

        ``compute_budget`` is FLOP in any unit (``Q_("1e21 FLOP")``, ``Q_(1e9, "TFLOP")``, ``"5.76e23
        FLOP"``, a plain number = FLOP) or accelerator-time (``Q_(1000, "day")`` = 1,000 GPU-days),
        converted at the peak of ``fleet``'s accelerator (a Fleet or a HardwareNode; default H100)
        at ``precision`` times ``mfu``. Without ``target_model_size`` the compute-optimal N* =
        sqrt(C/120), D* = 20 N*; with it, D = C / (6 N). The result also gives the budget in
        accelerator-days and, for a fleet, in wall-clock days.
        """
        eta = _in.fraction(mfu, "mfu")
        notes: list[str] = []
        hw, n_acc = _hardware_of(fleet, notes)
        choice = _in.precision_for(hw, precision)
        peak = choice.peak_flops
        budget = _budget_flops(compute_budget, peak, eta, hw.name)
        f = _functions()
        if target_model_size is None:
            out = f["optimal"](compute_budget=budget)
            params, tokens = out["optimal_params"], out["optimal_tokens"]
        else:
            params = _param_count(target_model_size)
            tokens = f["fixed"](compute_budget=budget, params=params)["tokens_for_size"]
        loss = f["loss"](params=params, training_token_count=tokens)["loss"]
        gpu_seconds = f["to_time"](compute_budget=budget, peak_flops=peak, efficiency=eta)["accelerator_time_for_budget"]
        from ..models.scaling import sheet
        return ScalingResult(
            compute_budget=_flop(budget), compute_budget_flops=budget, optimal_parameters=params,
            optimal_tokens=tokens, tokens_per_parameter=tokens / params, loss=loss,
            fixed_size=target_model_size is not None, reference_accelerator=hw.name, precision=choice.precision, mfu=eta,
            accelerator_days=sheet_quantity(sheet, "accelerator_time_for_budget", gpu_seconds, "day"),
            # the accelerator-time shared by the fleet's accelerators
            wall_clock=None if not n_acc else sheet_quantity(sheet, "accelerator_time_for_budget", gpu_seconds / n_acc,
                                                             "day"),
            accelerators=n_acc, notes=notes,
        )


def _hardware_of(fleet: Any, notes: list[str]) -> tuple[HardwareNode, Optional[int]]:
    if fleet is None:
        from ..catalog import Hardware
        hw = Hardware[REFERENCE_HARDWARE]
        notes.append(f"no fleet given: accelerator-days are {hw.name} days")
        return hw, None
    if isinstance(fleet, Fleet):
        return fleet.accelerator, fleet.total_accelerators
    if isinstance(fleet, HardwareNode):
        return fleet, None
    if isinstance(fleet, str):
        from .sustainability import as_fleet
        fl = as_fleet(fleet)
        return fl.accelerator, fl.total_accelerators
    raise InputError("fleet", fleet, "must be a Fleet, a HardwareNode or a cluster name",
                     "e.g. fleet=Systems.Clusters.Research_256 or fleet=Hardware.H100")


def _budget_flops(value: Any, peak: float, eta: float, hw_name: str) -> float:
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        flops = float(value)
    else:
        q = value if isinstance(value, pint.Quantity) else as_quantity(value, "FLOP", "compute_budget",
                                                                      example="1e21 FLOP")
        if q.dimensionality == ureg.Unit("s").dimensionality:
            seconds = q.m_as("s")
            if not seconds > 0:
                raise InputError("compute_budget", f"{q:~P}", "must be a positive accelerator-time")
            return _functions()["from_time"](accelerator_time=seconds, peak_flops=peak,
                                             efficiency=eta)["budget_from_accelerator_time"]
        flops = as_quantity(q, "FLOP", "compute_budget", example="1e21 FLOP").m_as("FLOP")
    if not flops > 0:
        raise InputError("compute_budget", value, "must be positive",
                         "give FLOP (Q_('1e21 FLOP')) or accelerator-time (Q_(1000, 'day') = 1,000 GPU-days)")
    return flops


def _param_count(value: Any) -> float:
    if isinstance(value, Workload):
        return value.parameters
    if isinstance(value, pint.Quantity):
        value = value.m_as("")
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value > 0:
        raise InputError("target_model_size", value, "must be a positive parameter count",
                         "e.g. target_model_size=70e9 or a workload such as Models.Llama3_70B")
    return float(value)
