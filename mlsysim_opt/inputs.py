"""Validation of API arguments and lowering of records to symbol values (SI floats).

This is the one place units are stripped: records hold pint quantities, compiled sheets take floats
in each symbol's declared unit.
"""
from __future__ import annotations

import numbers
from typing import Any

from .catalog import Hardware, Models
from .errors import InputError
from .precision import PrecisionChoice, default_kv_precision, resolve_precision
from .types import PRECISION_BYTES, CNNWorkload, HardwareNode, TransformerWorkload, Workload

DEFAULT_SEQ_LEN = 2048
"""Context length (tokens) when none is given: GPT-3's context and the usual training length."""
LAYER_TAX_S = 10e-6
"""Per-layer kernel-launch cost: about two launches of ~5 us each (estimate, CUDA launch latency)."""
IDLE_POWER_FRACTION = 0.30
"""Idle power over TDP (Barroso & Holzle 2007, 'The case for energy-proportional computing')."""
CAPACITY_FACTOR = 1.25
"""Tokens of the busiest expert group over the mean under expert parallelism (models/moe.py): the
capacity factor Switch Transformer trains with (Fedus et al. 2022, 1.0-1.25). 1.0 turns it off."""
STEP_TIME_CV = 0.0
"""Coefficient of variation of one rank's compute time per training step (models/distributed.py,
stragglers). Off by default: no published per-rank figure exists, and the calibrated training
efficiency (0.6, fitted to Korthikanti et al. 2022, Table 5) already absorbs the jitter of the runs
it was fitted on; turning it on without refitting counts that jitter twice. Set it for a what-if
(0.01 adds 3.7% at 1,024 ranks); docs/walls/congestion.md gives the measurements it rests on."""
ROUTING_SKEW = 0.0
"""Share of tokens routed to one hot set of experts (models/moe.py): 0, uniform routing, as the
load-balancing losses of current MoE models aim for (Fedus et al. 2022; DeepSeek-V3's bias term)."""


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
                    is_training: bool, kv_bytes: float | None = None, phase: str | None = None) -> dict[str, float]:
    """Symbol values for one pass of ``wl``. Language models: inference is one decode step (one new
    token per request, attending ``seq_len`` tokens of context); training is one step over
    sequences of ``seq_len`` tokens; ``phase="prefill"`` is the prompt pass of ``seq_len`` tokens.
    Other networks: one forward (and backward) pass per input. The tokens of each phase come from
    ``models/phases.py``; Adam's optimizer state and the activation elements from ``models/memory.py``."""
    from .models import memory, phases
    from .symbolic import constants
    attention = isinstance(wl, TransformerWorkload)
    if phase is None:
        phase = phases.phase_of(attention=attention, training=is_training)
    rules = phases.PHASES.get(phase)
    if rules is None or (phase == "input") == attention or rules.get(phases.t, is_training) != is_training:
        raise ValueError(f"phase {phase!r} does not apply to {wl.name} with is_training={is_training}")
    layers = float(wl.layers or 1)
    values = {
        "params": wl.parameters,
        "bytes_per_value": choice.storage_bytes,
        # The KV cache has its own format, 16-bit unless one is given, whatever the weights and
        # whatever the device runs natively (precision.DEFAULT_KV_PRECISION says why).
        "kv_bytes_per_value": (PRECISION_BYTES[default_kv_precision(choice.compute_precision)]
                               if kv_bytes is None else kv_bytes),
        "optimizer_bytes_per_param": constants()[memory.ADAM_STATE] if is_training else 0.0,
        "layers": layers,
        "batch_size": float(batch_size),
        "training": 1.0 if is_training else 0.0,
        "flops_per_token": wl.flops_per_unit(),
    }
    values.update(moe_values(wl))
    if attention:
        hidden = float(wl.hidden_size)
        latent = float(wl.latent_kv_dim())
        values.update(
            # MLA caches one latent per token and layer instead of K and V per KV head
            kv_heads=0.0 if latent else float(wl.n_kv_heads), latent_kv_dim=latent,
            head_dim=float(wl.d_head), heads=float(wl.heads),
            activation_elements=memory.sheet.compiled(("transformer_activation_elements",))(
                hidden_size=hidden, layers=layers)["transformer_activation_elements"],
        )
    else:
        act = wl.activation_elements if isinstance(wl, CNNWorkload) and wl.activation_elements else 0.0
        values.update(kv_heads=0.0, head_dim=0.0, heads=0.0, latent_kv_dim=0.0, activation_elements=float(act))
    names = phases.definitions(phase)
    tokens = phases.sheet.compiled(tuple(names))(sequence_length=float(seq_len))
    values.update({names[k]: v for k, v in tokens.items()})
    return values


def moe_values(wl: Workload, *, capacity_factor: float = CAPACITY_FACTOR,
               routing_skew: float = ROUTING_SKEW) -> dict[str, float]:
    """The mixture-of-experts symbols of ``wl`` (models/moe.py) at EP 1; a dense model (or a network
    without experts) has no routed experts."""
    from .models.roofline import FLOP_PER_PARAM
    from .symbolic import constants
    values = {"ep_size": 1.0, "capacity_factor": float(capacity_factor), "routing_skew": float(routing_skew)}
    if not getattr(wl, "is_moe", False):
        return dict(values, expert_params=0.0, experts=0.0, experts_per_token=0.0, moe_layers=0.0,
                    routed_flop_share=0.0)
    routed, experts, top_k = float(wl.expert_parameters()), float(wl.experts), float(wl.experts_per_token or 0)
    share = constants()[FLOP_PER_PARAM] * routed * top_k / experts / wl.flops_per_unit()
    return dict(values, expert_params=routed, experts=experts, experts_per_token=top_k,
                moe_layers=float(wl.moe_layer_count), routed_flop_share=min(share, 1.0))


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


# ----------------------------------------------------------------------------------------------
# Numbers on their way to a solver: finite, in range, and below what HiGHS reads as infinite.

import math  # noqa: E402

SOLVER_INFINITY = 1e20
"""HiGHS reads a bound or cost of this magnitude or more as infinite (its ``infinite_bound`` and
``infinite_cost`` options, 1e20 by default)."""


def _with_unit(number: float, unit: str) -> str:
    return f"{number:g} {unit}" if unit else f"{number:g}"


def _range_text(minimum: float | None, maximum: float | None, allow_zero: bool, unit: str) -> str:
    if minimum is not None and minimum == 0 and not allow_zero:
        low = f"> {_with_unit(0, unit)}"
    elif minimum is not None:
        low = f">= {_with_unit(minimum, unit)}"
    else:
        low = ""
    high = f"<= {_with_unit(maximum, unit)}" if maximum is not None else ""
    if low and high:
        return f"a number {low} and {high}"
    if low or high:
        return f"a number {low or high}"
    return "a finite number" if allow_zero else "a finite nonzero number"


def finite_number(value: Any, field: str, *, minimum: float | None = None, maximum: float | None = None,
                  allow_zero: bool = True, unit: str = "", fix: str | None = None) -> float:
    """``value`` as a float, or an :class:`InputError` naming ``field`` when it is not a real number
    (text and booleans included), is NaN or infinite, lies below ``minimum`` or above ``maximum``
    (both inclusive), or is zero while ``allow_zero`` is false. ``unit`` only labels the messages."""
    wanted = _range_text(minimum, maximum, allow_zero, unit)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InputError(field, value, "must be a number", fix or f"pass {wanted}")
    v = float(value)
    if math.isnan(v):
        raise InputError(field, value, "must be a number, not NaN",
                         fix or f"pass {wanted}")
    if math.isinf(v):
        raise InputError(field, value, "must be finite", fix or f"pass {wanted}")
    if minimum is not None and v < minimum:
        raise InputError(field, value, f"must be >= {_with_unit(minimum, unit)}", fix or f"pass {wanted}")
    if v == 0 and not allow_zero:
        raise InputError(field, value, "must not be 0" if minimum is None or minimum < 0
                         else f"must be > {_with_unit(0, unit)}",
                         fix or f"pass {wanted}")
    if maximum is not None and v > maximum:
        raise InputError(field, value, f"must be <= {_with_unit(maximum, unit)}", fix or f"pass {wanted}")
    return v


def finite_limit(value: Any, field: str, *, minimum: float | None = 0.0, maximum: float | None = None,
                 allow_zero: bool = True, unit: str = "", fix: str | None = None) -> float:
    """A limit, count or coefficient that enters a MILP: :func:`finite_number` (non-negative by
    default), and of magnitude below :data:`SOLVER_INFINITY`, which HiGHS would silently read as
    "no limit" (or as an infinite demand)."""
    v = finite_number(value, field, minimum=minimum, maximum=maximum, allow_zero=allow_zero, unit=unit, fix=fix)
    if abs(v) >= SOLVER_INFINITY:
        raise InputError(field, value, f"must be below {_with_unit(SOLVER_INFINITY, unit)} in magnitude: "
                         "the solver reads a number this large as infinite",
                         fix or "pass a realistic value (a limit that should not bind can be left out: None)")
    return v


def whole_number(value: Any, field: str, *, minimum: int = 0, maximum: int | None = None,
                 fix: str | None = None) -> int:
    """A count (replicas, points, accelerators available): an integer, or a float with no
    fractional part, at least ``minimum`` and below :data:`SOLVER_INFINITY`."""
    wanted = f"a whole number >= {minimum}" + (f" and <= {maximum}" if maximum is not None else "")
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InputError(field, value, "must be a whole number", fix or f"pass {wanted}")
    if isinstance(value, numbers.Integral):
        n = int(value)
    else:
        v = float(value)
        if math.isnan(v):
            raise InputError(field, value, "must be a whole number, not NaN", fix or f"pass {wanted}")
        if math.isinf(v):
            raise InputError(field, value, "must be finite", fix or f"pass {wanted}")
        if not v.is_integer():
            raise InputError(field, value, "must be a whole number", fix or f"pass {wanted}, e.g. {math.floor(v)}")
        n = int(v)
    if n < minimum:
        raise InputError(field, value, f"must be >= {minimum}", fix or f"pass {wanted}")
    if maximum is not None and n > maximum:
        raise InputError(field, value, f"must be <= {maximum}", fix or f"pass {wanted}")
    if abs(n) >= SOLVER_INFINITY:
        raise InputError(field, value, f"must be below {SOLVER_INFINITY:g}: the solver reads a number this "
                         "large as infinite", fix or f"pass {wanted} of realistic size")
    return n


def finite_mapping(values: Any, field: str, *, minimum: float | None = 0.0, maximum: float | None = None,
                   allow_zero: bool = True, unit: str = "", allow_empty: bool = False,
                   fix: str | None = None) -> dict[str, float]:
    """A mapping of names to limits (demand per request class, accelerators available per type,
    throughput per class): every key a non-empty string, every value checked by
    :func:`finite_limit` under the field ``field[key]``."""
    from collections.abc import Mapping
    if not isinstance(values, Mapping):
        raise InputError(field, values, "must be a mapping of names to numbers",
                         fix or "pass e.g. {'default': 10.0}")
    if not values and not allow_empty:
        raise InputError(field, dict(values), "must not be empty", fix or "pass e.g. {'default': 10.0}")
    out = {}
    for key, v in values.items():
        if not isinstance(key, str) or not key:
            raise InputError(field, key, "keys must be non-empty names (strings)", fix)
        out[key] = finite_limit(v, f"{field}[{key!r}]", minimum=minimum, maximum=maximum,
                                allow_zero=allow_zero, unit=unit, fix=fix)
    return out


def quantity_limit(value: Any, field: str, unit: str, *, allow_zero: bool = False,
                   maximum: float | None = None, example: str | None = None) -> float | None:
    """A physical limit given as a quantity, a string such as ``"100 ms"`` or a number in ``unit``:
    its magnitude in ``unit``, checked by :func:`finite_limit` (positive unless ``allow_zero``).
    ``None`` (no limit) is returned as is. Errors show the value as given."""
    if value is None:
        return None
    from .units import as_quantity
    example = example or f"100 {unit}"
    magnitude = as_quantity(value, unit, field, example=example).magnitude
    try:
        return finite_limit(magnitude, field, minimum=0.0, maximum=maximum, allow_zero=allow_zero, unit=unit)
    except InputError as err:
        fix = err.fix if abs(float(magnitude)) >= SOLVER_INFINITY else f"pass a quantity such as {example!r}"
        raise InputError(field, value, err.rule, fix) from None
