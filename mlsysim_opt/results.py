"""Typed, frozen results. Physical fields are pint quantities; ``to_dict()`` gives JSON-ready
values with units as strings."""
from __future__ import annotations

import math
from typing import Any, Optional

import pint
from pydantic import BaseModel, ConfigDict, Field


def finite_values(value: Any) -> Any:
    """``value`` with every NaN or infinite float replaced by None: JSON cannot carry them."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite_values(v) for k, v in value.items()}
    if isinstance(value, list):
        return [finite_values(v) for v in value]
    return value


def _jsonable(value: Any) -> Any:
    if isinstance(value, pint.Quantity):
        return {"value": float(value.magnitude), "unit": f"{value.units:~P}"}
    if isinstance(value, BaseModel):
        return _jsonable(dict(value))
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


class Result(BaseModel):
    """Base of every result: frozen, typed, printable, JSON-ready."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    def to_dict(self) -> dict:
        return _jsonable({k: getattr(self, k) for k in type(self).model_fields})

    def __getitem__(self, key: str):  # results read like the tutorials' dicts too
        try:
            return getattr(self, key)
        except AttributeError:
            raise KeyError(key) from None

    def __str__(self) -> str:
        lines = [type(self).__name__]
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, pint.Quantity):
                text = f"{value:.4g~P}"
            elif isinstance(value, float):
                text = f"{value:.4g}"
            elif isinstance(value, (list, dict)) and len(str(value)) > 100:
                text = f"<{len(value)} items>"
            else:
                text = str(value)
            lines.append(f"  {name:<26} {text}")
        return "\n".join(lines)


class PerformanceProfile(Result):
    """One pass of a workload on one accelerator (``Engine.solve``)."""

    model: str
    hardware: str
    batch_size: int
    precision: str
    compute_precision: str
    seq_len: Optional[int]
    is_training: bool
    latency: pint.Quantity
    latency_compute: pint.Quantity
    latency_memory: pint.Quantity
    latency_overhead: pint.Quantity
    bottleneck: str
    throughput: pint.Quantity
    arithmetic_intensity: pint.Quantity
    ridge_point: pint.Quantity
    mfu: float
    energy: pint.Quantity
    energy_per_unit: pint.Quantity
    memory_footprint: pint.Quantity
    weights_size: pint.Quantity
    kv_cache_size: pint.Quantity
    memory_capacity: pint.Quantity
    memory_tier: str
    peak_flops_actual: pint.Quantity
    peak_bw_actual: pint.Quantity
    feasible: bool
    infeasibility_reason: Optional[str] = None
    overhead_dominated: bool
    precision_fallback: Optional[str] = None
    notes: list[str] = Field(default_factory=list)

    @property
    def hfu(self) -> float:
        return self.mfu
