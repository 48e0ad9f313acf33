"""Validation of API arguments and lowering of records to symbol values (SI floats).

This is the one place units are stripped: records hold pint quantities, compiled sheets take floats
in each symbol's declared unit.
"""
from __future__ import annotations

import numbers
from typing import Any

from .catalog import Hardware, Models
from .errors import InputError
from .precision import PrecisionChoice, resolve_precision
from .types import PRECISION_BYTES, CNNWorkload, HardwareNode, TransformerWorkload, Workload

DEFAULT_SEQ_LEN = 2048
"""Context length (tokens) when none is given: GPT-3's context and the usual training length."""
LAYER_TAX_S = 10e-6
"""Per-layer kernel-launch cost: about two launches of ~5 us each (estimate, CUDA launch latency)."""
IDLE_POWER_FRACTION = 0.30
"""Idle power over TDP (Barroso & Holzle 2007, 'The case for energy-proportional computing')."""
ADAM_BYTES_PER_PARAM = 12.0
"""fp32 master weights + two Adam moments (Rajbhandari et al. 2020, ZeRO)."""
ACTIVATION_ELEMENTS_PER_TOKEN_PER_HIDDEN = 17.0
"""Korthikanti et al. 2022: 34 bytes per token per hidden unit per layer at 2-byte activations
(selective recomputation) = 17 elements; also used as the decode activation traffic estimate."""


def workload(value: Any, field: str = "model") -> Workload:
    if isinstance(value, Workload):
        return value
    if isinstance(value, str):
        return Models[value]
    raise InputError(field, value, "must be a workload (e.g. Models.Llama3_8B) or its registry name")


def hardware(value: Any, field: str = "hardware") -> HardwareNode:
    if isinstance(value, HardwareNode):
        return value
    if isinstance(value, str):
        return Hardware[value]
    raise InputError(field, value, "must be a HardwareNode (e.g. Hardware.H100) or its registry name")


def positive_int(value: Any, field: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        if isinstance(value, numbers.Real) and float(value).is_integer() and not isinstance(value, bool):
            value = int(value)
        else:
            raise InputError(field, value, "must be a whole number", f"pass an integer >= {minimum}")
    if value < minimum:
        raise InputError(field, value, f"must be >= {minimum}")
    return int(value)


def fraction(value: Any, field: str, *, allow_zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InputError(field, value, "must be a number in (0, 1]")
    v = float(value)
    lo_ok = v >= 0 if allow_zero else v > 0
    if not (lo_ok and v <= 1.0):
        raise InputError(field, value, f"must be in {'[0' if allow_zero else '(0'}, 1]",
                         "it is a fraction of peak, e.g. 0.5")
    return v


_HW_CACHE: dict[int, tuple[HardwareNode, dict[str, float]]] = {}


def hardware_values(hw: HardwareNode, choice: PrecisionChoice) -> dict[str, float]:
    """SI floats of a (frozen) hardware record, converted once per record."""
    entry = _HW_CACHE.get(id(hw))
    if entry is None or entry[0] is not hw:
        if len(_HW_CACHE) > 4096:
            _HW_CACHE.clear()
        entry = (hw, _hardware_floats(hw))
        _HW_CACHE[id(hw)] = entry
    return {**entry[1], "peak_flops": choice.peak_flops}


def _hardware_floats(hw: HardwareNode) -> dict[str, float]:
    m = hw.memory

    def f(q, unit):
        return 0.0 if q is None else float(q.to(unit).magnitude)

    return {
        "memory_bandwidth": f(m.bandwidth, "byte/s"),
        "sram_bandwidth": f(m.sram_bandwidth, "byte/s"),
        "flash_bandwidth": f(m.flash_bandwidth, "byte/s"),
        "sram_capacity": f(m.sram_capacity, "byte"),
        "flash_capacity": f(m.flash_capacity, "byte"),
        "dispatch_tax": f(hw.dispatch_tax, "s"),
        "layer_tax": LAYER_TAX_S,
        "idle_power_fraction": IDLE_POWER_FRACTION,
        "tdp": f(hw.tdp, "W"),
        "memory_capacity": f(m.capacity, "byte"),
    }


def workload_values(wl: Workload, choice: PrecisionChoice, *, batch_size: int, seq_len: int,
                    is_training: bool, kv_bytes: float | None = None) -> dict[str, float]:
    """Symbol values for one pass of ``wl``. Language models: inference is one decode step (one new
    token per request, attending ``seq_len`` tokens of context); training is one step over
    sequences of ``seq_len`` tokens. Other networks: one forward (and backward) pass per input."""
    values = {
        "params": wl.parameters,
        "bytes_per_value": choice.storage_bytes,
        # The KV cache is written by the attention kernels at the compute precision: weight-only
        # int4 (W4A16) keeps a 16-bit cache unless a KV precision is given.
        "kv_bytes_per_value": PRECISION_BYTES[choice.compute_precision] if kv_bytes is None else kv_bytes,
        "optimizer_bytes_per_param": ADAM_BYTES_PER_PARAM if is_training else 0.0,
        "layers": float(wl.layers or 1),
        "batch_size": float(batch_size),
        "training": 1.0 if is_training else 0.0,
        "flops_per_token": wl.flops_per_unit(),
    }
    if isinstance(wl, TransformerWorkload):
        values.update(
            kv_heads=float(wl.n_kv_heads), head_dim=float(wl.d_head), heads=float(wl.heads),
            activation_elements=ACTIVATION_ELEMENTS_PER_TOKEN_PER_HIDDEN * wl.hidden_size * (wl.layers or 1),
        )
        if is_training:  # whole sequences, causal attention over (S+1)/2 tokens on average, no KV cache
            values.update(tokens_per_request=float(seq_len), context_tokens=0.0,
                          attended_context=(seq_len + 1) / 2.0)
        else:            # one decode step against a KV cache of seq_len tokens
            values.update(tokens_per_request=1.0, context_tokens=float(seq_len), attended_context=float(seq_len))
    else:
        act = wl.activation_elements if isinstance(wl, CNNWorkload) and wl.activation_elements else 0.0
        values.update(kv_heads=0.0, head_dim=0.0, heads=0.0, activation_elements=float(act),
                      tokens_per_request=1.0, context_tokens=0.0, attended_context=0.0)
    return values


_PRECISION_CACHE: dict[tuple[int, str], tuple[HardwareNode, PrecisionChoice]] = {}


def precision_for(hw: HardwareNode, precision: str, warn: bool = True) -> PrecisionChoice:
    """Resolve once per (record, precision); the fallback warning is still raised on every call."""
    key = (id(hw), precision)
    entry = _PRECISION_CACHE.get(key)
    if entry is None or entry[0] is not hw:
        if len(_PRECISION_CACHE) > 4096:
            _PRECISION_CACHE.clear()
        entry = (hw, resolve_precision(hw, precision, warn=False))
        _PRECISION_CACHE[key] = entry
    choice = entry[1]
    if warn and choice.fallback:
        import warnings
        from .precision import PrecisionFallbackWarning
        warnings.warn(choice.fallback, PrecisionFallbackWarning, stacklevel=3)
    return choice
