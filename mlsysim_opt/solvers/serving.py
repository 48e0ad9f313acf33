"""``ServingModel``: TTFT, ITL and KV-cache capacity of a language model on one accelerator
(Wall 4). The equations are the ``serving`` sheet (models/serving.py), itself the roofline sheet
evaluated at the prefill and decode phases."""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Optional

import pint

from .. import inputs as _in
from ..errors import InputError
from ..precision import PrecisionChoice, kv_precision_or_default, serving_precision
from ..profiles import factors as profile_factors
from ..results import Result
from ..types import PRECISION_BYTES, HardwareNode, TransformerWorkload
from .quantities import field_converters, quantities

if TYPE_CHECKING:   # loaded.py builds on this module and completes ServingResult's ``load`` field
    from .loaded import LoadedReplicaResult

DEFAULT_PREFILL_CHUNK_TOKENS = 512
"""Tokens per chunked-prefill iteration (Sarathi-Serve, Agrawal et al. 2024, evaluates 512-2048;
512 keeps the chunk above the H100's fp16 ridge point, so each chunk stays compute-bound)."""

SERVING_OUTPUTS = (
    "ttft", "prefill_compute", "prefill_memory", "prefill_overhead",
    "itl", "itl_max", "decode_compute", "decode_memory", "decode_overhead", "decode_context",
    "request_latency", "decode_throughput",
    "memory_required", "kv_cache_reserved", "weights_resident", "activation_working_set", "memory_utilization",
    "max_concurrent_requests", "kv_budget",
)

RESULT_FIELDS = {
    # ServingResult field: (serving output, or input symbol; unit of the field)
    "ttft": ("ttft", "ms"), "itl": ("itl", "ms"), "itl_max": ("itl_max", "ms"),
    "request_latency": ("request_latency", "ms"), "throughput": ("decode_throughput", "token/s"),
    "prefill_compute": ("prefill_compute", "ms"), "prefill_memory": ("prefill_memory", "ms"),
    "prefill_overhead": ("prefill_overhead", "ms"), "decode_compute": ("decode_compute", "ms"),
    "decode_memory": ("decode_memory", "ms"), "decode_overhead": ("decode_overhead", "ms"),
    "weights_size": ("weights_resident", "GB"), "kv_cache_size": ("kv_cache_reserved", "GB"),
    "activation_memory": ("activation_working_set", "GB"), "total_memory_required": ("memory_required", "GB"),
    "memory_capacity": ("memory_capacity", "GB"),
}


@lru_cache(maxsize=None)
def serving_function():
    """The serving sheet's definitions, compiled once (scalar and vectorized)."""
    from ..models import serving
    return serving.sheet.compiled(SERVING_OUTPUTS)


@lru_cache(maxsize=None)
def _converters() -> tuple:
    from ..models import serving
    return field_converters(RESULT_FIELDS, serving.sheet)


@dataclass(frozen=True)
class ServingCase:
    """Validated, lowered inputs of one serving query (shared by the batching solvers)."""

    model: TransformerWorkload
    hardware: HardwareNode
    choice: PrecisionChoice
    kv_precision: str
    seq_len: int
    prompt_len: int
    output_len: int
    values: dict
    factors_basis: str = ""    # where efficiency and bandwidth_efficiency come from (profiles.factors)


def language_model(value, field: str = "model") -> TransformerWorkload:
    wl = _in.workload(value, field)
    if not isinstance(wl, TransformerWorkload):
        raise InputError(field, wl.name, "must be a language model (TransformerWorkload) to be served token by token",
                         "pick a model from Models.Language, e.g. Models.Llama3_8B")
    return wl


def split_context(seq_len: int, prompt_len, output_len) -> tuple[int, int]:
    """Prompt and output tokens of a request whose KV reservation is ``seq_len`` tokens.

    Defaults: the output takes half the reservation and the prompt the rest; given one, the other
    fills the reservation. Their sum may not exceed ``seq_len``."""
    if output_len is not None:
        output_len = _in.positive_int(output_len, "output_len", minimum=0)
    if prompt_len is not None:
        prompt_len = _in.positive_int(prompt_len, "prompt_len")
    if prompt_len is None and output_len is None:
        output_len = seq_len // 2
    if prompt_len is None:
        prompt_len = seq_len - output_len
        if prompt_len < 1:
            raise InputError("output_len", output_len, f"must leave at least one prompt token in seq_len={seq_len}",
                             "lower output_len or raise seq_len")
    if output_len is None:
        output_len = seq_len - prompt_len
    if prompt_len + output_len > seq_len:
        raise InputError("prompt_len", prompt_len,
                         f"plus output_len ({output_len}) must fit the KV reservation seq_len={seq_len}",
                         "raise seq_len to at least prompt_len + output_len")
    return prompt_len, output_len


def serving_case(model, hardware, seq_len, batch_size=1, precision="fp16", efficiency=None, kv_precision=None,
                 prompt_len=None, output_len=None, bandwidth_efficiency=None,
                 prefill_chunk_tokens=DEFAULT_PREFILL_CHUNK_TOKENS, compute_precision=None,
                 calibration="profile") -> ServingCase:
    """Validate the arguments of a serving query and lower them to symbol values (SI floats).

    Three formats, each its own input: ``precision`` stores the weights, ``compute_precision`` is
    the arithmetic (default: the weights' format, except int4 weights, which run W4A16; see
    ``precision.default_compute_precision``) and ``kv_precision`` stores the KV cache (default
    ``precision.DEFAULT_KV_PRECISION``, 16-bit, whatever the weights or the device; fp32 for fp32
    arithmetic).

    ``efficiency`` and ``bandwidth_efficiency`` left at None come from the calibrated serving profile
    of the hardware at the compute precision (``profiles.factors``), or are the tutorial's flat
    0.5 and 1.0 where none exists or with ``calibration="flat"``."""
    wl = language_model(model)
    hw = _in.hardware(hardware)
    seq = _in.positive_int(seq_len, "seq_len")
    batch = _in.positive_int(batch_size, "batch_size")
    chunk = _in.positive_int(prefill_chunk_tokens, "prefill_chunk_tokens")
    choice = serving_precision(hw, precision, compute_precision)
    factors = profile_factors(hw, choice.compute_precision, "serving", efficiency=efficiency,
                              bandwidth_efficiency=bandwidth_efficiency, calibration=calibration)
    eta = _in.fraction(factors.efficiency, "efficiency")
    eta_bw = _in.fraction(factors.bandwidth_efficiency, "bandwidth_efficiency")
    kv_name = kv_precision_or_default(kv_precision, choice.compute_precision)
    prompt, output = split_context(seq, prompt_len, output_len)
    values = _in.workload_values(wl, choice, batch_size=batch, seq_len=seq, is_training=False,
                                 kv_bytes=PRECISION_BYTES[kv_name])
    values.update(_in.hardware_values(hw, choice), efficiency=eta, bandwidth_efficiency=eta_bw,
                  reserved_context=float(seq), prompt_tokens=float(prompt), output_tokens=float(output),
                  prefill_chunk_tokens=float(chunk))
    return ServingCase(wl, hw, choice, kv_name, seq, prompt, output, values, factors.basis)


def precision_fields(case: ServingCase) -> dict:
    """The three formats of a case, as every serving result names them (``precision`` is the
    weights' format, kept under its historical name)."""
    return dict(precision=case.choice.precision, weight_precision=case.choice.precision,
                compute_precision=case.choice.compute_precision, kv_precision=case.kv_precision)


def precision_line(result) -> str:
    """One line naming the weight, compute and KV-cache formats of a serving result."""
    return (f"weights {result.weight_precision}, compute {result.compute_precision}, "
            f"KV cache {result.kv_precision}")


class ServingResult(Result):
    """One serving configuration: latencies of both phases, memory and feasibility.

    ``weight_precision`` (also ``precision``), ``compute_precision`` and ``kv_precision`` name the
    formats of the weights, the arithmetic and the KV cache."""

    model: str
    hardware: str
    precision: str
    weight_precision: str
    compute_precision: str
    kv_precision: str
    seq_len: int
    prompt_len: int
    output_len: int
    batch_size: int
    ttft: pint.Quantity
    itl: pint.Quantity
    itl_max: pint.Quantity
    request_latency: pint.Quantity
    throughput: pint.Quantity
    ttft_bottleneck: str
    itl_bottleneck: str
    prefill_compute: pint.Quantity
    prefill_memory: pint.Quantity
    prefill_overhead: pint.Quantity
    decode_compute: pint.Quantity
    decode_memory: pint.Quantity
    decode_overhead: pint.Quantity
    decode_context: float
    weights_size: pint.Quantity
    kv_cache_size: pint.Quantity
    activation_memory: pint.Quantity
    total_memory_required: pint.Quantity
    memory_capacity: pint.Quantity
    memory_utilization: float
    max_batch_size: int
    feasible: bool
    infeasibility_reason: Optional[str] = None
    precision_fallback: Optional[str] = None
    efficiency: Optional[float] = None
    """Achieved fraction of peak FLOP/s used (``efficiency_basis`` says where it comes from)."""
    bandwidth_efficiency: Optional[float] = None
    efficiency_basis: Optional[str] = None
    load: Optional["LoadedReplicaResult"] = None
    """The replica under an offered load (``solve(..., arrival_rate=...)``), else None."""

    @property
    def model_weights_size(self) -> pint.Quantity:
        return self.weights_size

    @property
    def tpot(self) -> pint.Quantity:
        """Time per output token (the usual name for ITL in serving benchmarks)."""
        return self.itl

    def __str__(self) -> str:
        from .loaded import text_with_load
        return text_with_load(self)


def _label(compute: float, memory: float) -> str:
    return "Compute" if compute >= memory else "Memory"


class ServingModel:
    """LLM serving on one accelerator (Wall 4): prefill, decode and KV-cache capacity.

    ``seq_len`` is the KV reservation of each request (prompt + generated tokens <= seq_len).
    ``prompt_len`` defaults to ``seq_len - output_len`` and ``output_len`` to ``seq_len // 2``.
    TTFT is the prefill of the whole batch (static batching); ITL is the decode step at the mean
    context ``prompt_len + output_len / 2`` and ``itl_max`` the last step.

    Formats: ``precision`` stores the weights; ``compute_precision`` is the arithmetic (default:
    the weights' format where the device has it, the next wider one where it does not, and 16-bit
    for int4 weights, the W4A16 kernels serving stacks run); ``kv_precision`` stores the KV cache
    (default fp16 for every weight format and device, as vLLM and TensorRT-LLM do unless told
    otherwise, fp32 only under fp32 arithmetic; ask for ``"fp8"`` to halve it).

    ``arrival_rate`` (requests per second; a number, a quantity or a string such as ``"5 /s"``)
    adds ``load``: the same accelerator run as a continuously batched replica with ``batch_size``
    slots under that Poisson load (``LoadedReplicaModel``: TTFT and ITL, mean and p50/p90/p99).
    """

    def solve(self, model, hardware, seq_len, batch_size=1, precision="fp16", efficiency=None, kv_precision=None,
              prompt_len=None, output_len=None, bandwidth_efficiency=None,
              prefill_chunk_tokens=DEFAULT_PREFILL_CHUNK_TOKENS, arrival_rate=None,
              compute_precision=None, calibration="profile") -> ServingResult:
        case = serving_case(model, hardware, seq_len, batch_size, precision, efficiency, kv_precision,
                            prompt_len, output_len, bandwidth_efficiency, prefill_chunk_tokens, compute_precision,
                            calibration)
        out = serving_function()(**case.values)
        load = None
        if arrival_rate is not None:
            from .loaded import loaded_replica
            load = loaded_replica(case, arrival_rate)
        return serving_result(case, out, load)


def serving_result(case: ServingCase, out: dict, load=None) -> ServingResult:
    v = case.values
    fields = quantities(_converters(), out, v)
    fits = max(0, int(out["max_concurrent_requests"]))
    feasible = out["memory_required"] <= v["memory_capacity"]
    reason = None
    if not feasible:
        gb = {k: fields[k].m for k in ("total_memory_required", "weights_size", "kv_cache_size", "activation_memory",
                                       "memory_capacity")}
        reason = (f"needs {gb['total_memory_required']:.2f} GB (weights {gb['weights_size']:.2f} GB, KV cache "
                  f"{gb['kv_cache_size']:.2f} GB for {int(v['batch_size'])} x {case.seq_len} tokens, activations "
                  f"{gb['activation_memory']:.2f} GB) but {case.hardware.name} holds "
                  f"{gb['memory_capacity']:.2f} GB; at most {fits} requests of {case.seq_len} tokens fit")
    return ServingResult.model_construct(
        model=case.model.name, hardware=case.hardware.name, **precision_fields(case), seq_len=case.seq_len,
        prompt_len=case.prompt_len, output_len=case.output_len, batch_size=int(v["batch_size"]),
        ttft_bottleneck=_label(out["prefill_compute"], out["prefill_memory"]),
        itl_bottleneck=_label(out["decode_compute"], out["decode_memory"]),
        decode_context=float(out["decode_context"]), efficiency=float(v["efficiency"]),
        bandwidth_efficiency=float(v["bandwidth_efficiency"]), efficiency_basis=case.factors_basis or None,
        memory_utilization=float(out["memory_utilization"]), max_batch_size=fits,
        feasible=bool(feasible), infeasibility_reason=reason, precision_fallback=case.choice.fallback, load=load,
        **fields,
    )
