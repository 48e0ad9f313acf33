"""Numeric formats: storage width, and the compute path a device uses for each.

A precision the device cannot execute natively is never silent: the weights keep the requested
storage width (that is what weight-only quantization does) and the arithmetic runs on the next
wider format the device supports, as weight-only kernels (e.g. W4A16) dequantize before the
matrix multiply. The fallback is reported on the result and raised as a
:class:`PrecisionFallbackWarning`.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

from .errors import InputError, UnknownNameError
from .types import PRECISION_BYTES, HardwareNode

FALLBACK_CHAINS: dict[str, tuple[str, ...]] = {
    "int4": ("int4", "fp16", "bf16", "fp32"),
    "fp4": ("fp4", "fp16", "bf16", "fp32"),
    "int8": ("int8", "fp16", "bf16", "fp32"),
    "fp8": ("fp8", "fp16", "bf16", "fp32"),
    "fp16": ("fp16", "bf16", "fp32"),
    "bf16": ("bf16", "fp16", "fp32"),
    "tf32": ("tf32", "fp32"),
    "fp32": ("fp32", "tf32"),
}
# 4-bit weights fall back to the 16-bit path (W4A16, the common weight-only kernel), not to int8.


class PrecisionFallbackWarning(UserWarning):
    """A precision ran on a wider compute path because the device has no native support."""


@dataclass(frozen=True)
class PrecisionChoice:
    precision: str
    storage_bytes: float
    compute_precision: str
    peak_flops: float  # FLOP/s
    fallback: str | None


def normalize_precision(precision: str, field: str = "precision") -> str:
    if not isinstance(precision, str):
        raise InputError(field, precision, "must be a string such as 'fp16', 'int8' or 'int4'")
    p = precision.strip().lower()
    if p not in PRECISION_BYTES:
        raise UnknownNameError("precision", precision, PRECISION_BYTES)
    return p


def resolve_precision(hw: HardwareNode, precision: str, *, warn: bool = True) -> PrecisionChoice:
    p = normalize_precision(precision)
    rates = hw.compute.rates()
    for candidate in FALLBACK_CHAINS[p]:
        if candidate in rates:
            rate = float(rates[candidate].to("FLOP/s").magnitude)
            note = None
            if candidate != p:
                note = (f"{hw.name} has no native {p} compute; weights are stored in {p} "
                        f"({PRECISION_BYTES[p]:g} bytes) and the arithmetic runs on its {candidate} path "
                        f"({rate / 1e12:.4g} TFLOP/s)")
                if warn:
                    warnings.warn(note, PrecisionFallbackWarning, stacklevel=3)
            return PrecisionChoice(p, PRECISION_BYTES[p], candidate, rate, note)
    raise InputError("precision", p, f"has no compute path on {hw.name} (it supports {', '.join(rates)})",
                     f"choose one of {', '.join(rates)}")
