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


# ----------------------------------------------------------------------------------------------
# Serving: weights, compute and KV cache are three separate formats.

DEFAULT_KV_PRECISION = "fp16"
"""The KV-cache format when none is given, for every weight format and every device: 16 bits per
element. vLLM's ``kv_cache_dtype="auto"`` stores the cache in the model's activation dtype (fp16 or
bf16) whatever the weight quantization, and TensorRT-LLM keeps a 16-bit cache unless an fp8 or int8
KV cache is enabled at build time. An fp8, int8 or int4 cache is modelled only when asked for
(``kv_precision="fp8"``). fp16 and bf16 have the same width, so the name only labels the result.
The one exception is arithmetic wider than 16 bits (an fp32 or tf32 model), whose activations,
and so its cache, stay fp32: see :func:`default_kv_precision`."""

WEIGHT_ONLY_COMPUTE = {"int4": "fp16"}
"""Weight formats served weight-only by default, and the arithmetic they run on. 4-bit integer
checkpoints (AWQ, GPTQ) are dequantized to 16 bits before the matrix multiply (W4A16) on every
device, including those with int4 tensor cores (A100, T4): serving stacks ship W4A16 kernels, not
W4A4. Native int4 arithmetic is modelled only when asked for (``compute_precision="int4"``). The
other formats compute in their own format where the device has it (fp8 and int8: W8A8)."""


def default_compute_precision(weights: str) -> str:
    """The arithmetic format of ``weights`` when no compute precision is given (see WEIGHT_ONLY_COMPUTE)."""
    p = normalize_precision(weights)
    return WEIGHT_ONLY_COMPUTE.get(p, p)


def default_kv_precision(compute_precision: str) -> str:
    """DEFAULT_KV_PRECISION, or fp32 when the arithmetic itself is wider (fp32, tf32): the cache is
    never narrower than 16 bits by default and never narrower than a wide model's activations."""
    if PRECISION_BYTES[compute_precision] > PRECISION_BYTES[DEFAULT_KV_PRECISION]:
        return "fp32"
    return DEFAULT_KV_PRECISION


def kv_precision_or_default(kv_precision: str | None, compute_precision: str) -> str:
    """The KV-cache format asked for, or :func:`default_kv_precision` (independent of the weight
    format and of which formats the device runs natively)."""
    if kv_precision is None:
        return default_kv_precision(compute_precision)
    return normalize_precision(kv_precision, "kv_precision")


def serving_precision(hw: HardwareNode, precision: str, compute_precision: str | None = None, *,
                      warn: bool = True) -> PrecisionChoice:
    """Weights stored in ``precision``, arithmetic in ``compute_precision`` (default: see
    :func:`default_compute_precision`). A compute format the device lacks runs on the next wider one
    it has, reported in ``fallback`` (and warned), as :func:`resolve_precision` does."""
    weights = normalize_precision(precision)
    asked = compute_precision is not None
    compute = (normalize_precision(compute_precision, "compute_precision") if asked
               else default_compute_precision(weights))
    if PRECISION_BYTES[compute] < PRECISION_BYTES[weights]:
        raise InputError("compute_precision", compute,
                         f"is narrower than the weights ({weights}, {PRECISION_BYTES[weights]:g} bytes): weights "
                         "are widened for the arithmetic, never narrowed",
                         f"leave compute_precision out or give one at least as wide as {weights}")
    path = resolve_precision(hw, compute, warn=False)
    note = None
    if path.compute_precision != compute and (asked or compute == weights):
        note = (f"{hw.name} has no native {compute} compute; weights are stored in {weights} "
                f"({PRECISION_BYTES[weights]:g} bytes) and the arithmetic runs on its {path.compute_precision} "
                f"path ({path.peak_flops / 1e12:.4g} TFLOP/s)")
        if warn:
            warnings.warn(note, PrecisionFallbackWarning, stacklevel=3)
    return PrecisionChoice(weights, PRECISION_BYTES[weights], path.compute_precision, path.peak_flops, note)
