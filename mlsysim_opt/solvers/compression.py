"""``CompressionModel`` (Wall 5): size, speed and accuracy of a quantized, pruned or distilled model.

Sizes and accuracy come from the ``compression`` sheet; the speed-up is the ``roofline`` sheet
evaluated at the baseline and at the compressed format, so it follows the regime: memory-bound
passes speed up with the bytes saved, compute-bound passes with the compute rate of the new format
on that hardware (falling back as ``mlsysim_opt.precision`` says when it has no native path)."""
from __future__ import annotations

import math
import numbers
from dataclasses import replace
from functools import lru_cache
from typing import Optional

import pint

from .. import inputs as _in
from ..errors import InputError, UnknownNameError
from ..precision import PrecisionChoice, normalize_precision
from ..results import Result
from ..types import HardwareNode
from ..units import sheet_quantity, unit_factor

METHODS = ("quantization", "pruning", "distillation")
SPARSITY_TYPES = ("unstructured", "structured", "n_m")
BITWIDTH_FORMATS = {32: "fp32", 16: "fp16", 8: "int8", 4: "int4", 3: None, 2: None}
"""Storage format of each supported bit width (3 and 2 bits: weight-only formats, no named precision)."""
SPARSE_TENSOR_CORES_SINCE = 2020
"""NVIDIA GPUs from Ampere (2020) on execute 2:4 sparse matrices at twice the dense rate
(NVIDIA A100 Tensor Core GPU Architecture whitepaper, 2020)."""
ROOFLINE_OUTPUTS = ("latency", "latency_compute", "latency_memory", "latency_overhead", "latency_roofline")


@lru_cache(maxsize=None)
def _compression_function():
    from ..models import compression
    return compression.sheet.compiled(tuple(compression.sheet.definitions))


@lru_cache(maxsize=None)
def _roofline_function():
    from ..models import roofline
    return roofline.sheet.compiled(ROOFLINE_OUTPUTS)


class CompressionResult(Result):
    """What a compression method saves (bytes), gains (speed) and costs (accuracy)."""

    model: str
    hardware: str
    method: str
    baseline: str
    target_format: str
    target_bitwidth: int
    sparsity: float
    sparsity_type: Optional[str]
    compression_ratio: float
    original_size_gb: pint.Quantity
    compressed_size_gb: pint.Quantity
    memory_savings_pct: float
    inference_speedup: float
    latency_speedup: float
    baseline_latency: pint.Quantity
    compressed_latency: pint.Quantity
    baseline_bottleneck: str
    compressed_bottleneck: str
    estimated_accuracy_delta: float
    batch_size: int
    seq_len: Optional[int]
    notes: list[str]

    @property
    def accuracy_delta(self) -> float:
        """Percentage points (negative = loss); same as ``estimated_accuracy_delta``."""
        return self.estimated_accuracy_delta


def has_sparse_tensor_cores(hw: HardwareNode) -> bool:
    """Whether ``hw`` runs 2:4 structured-sparse matrices at twice the dense rate."""
    return ("NVIDIA" in hw.name and hw.category in ("Cloud", "Edge")
            and (hw.release_year or 0) >= SPARSE_TENSOR_CORES_SINCE)


def _bitwidth(value) -> int:
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and float(value).is_integer()
    if not ok or int(value) not in BITWIDTH_FORMATS:
        raise InputError("target_bitwidth", value, "must be a supported storage width: 2, 3, 4, 8, 16 or 32 bits",
                         "e.g. target_bitwidth=4 (INT4) or 8 (INT8)")
    return int(value)


def _choice(hw: HardwareNode, bits: int, baseline: PrecisionChoice, target_precision) -> PrecisionChoice:
    """Storage width and compute path of the compressed weights."""
    if target_precision is not None:
        return _in.precision_for(hw, normalize_precision(target_precision, "target_precision"))
    name = BITWIDTH_FORMATS[bits]
    if bits == 16 and baseline.precision in ("bf16", "fp16"):
        name = baseline.precision
    if name is not None:
        return _in.precision_for(hw, name)
    # 2- and 3-bit weights: weight-only kernels dequantize to 16 bits, like INT4 without native support.
    path = _in.precision_for(hw, "int4", warn=False)
    return replace(path, precision=f"int{bits}", storage_bytes=bits * unit_factor("bit", "byte"),
                   fallback=f"{hw.name}: {bits}-bit weights are dequantized and run on its "
                            f"{path.compute_precision} path")


class CompressionModel:
    """Quantization (``target_bitwidth``), pruning (``sparsity``, ``sparsity_type``) or distillation
    (``student_params``) of ``model``, against a ``baseline`` format (default fp16, the format LLMs
    are served in; pass ``baseline="fp32"`` to compare with full-precision training weights).

    ``inference_speedup`` is the ratio of the roofline time (max of compute and memory time) of one
    inference pass (a decode step for language models: ``batch_size`` requests at ``seq_len`` tokens
    of context) before and after; ``latency_speedup`` also counts the fixed launch overheads, which
    compression does not shrink. ``estimated_accuracy_delta`` is in percentage points.
    """

    def solve(self, model, hardware, method="quantization", target_bitwidth=8, sparsity=0.0,
              sparsity_type="unstructured", baseline="fp16", student_params=None, batch_size=1,
              seq_len=None, efficiency=0.5, target_precision=None) -> CompressionResult:
        wl = _in.workload(model)
        hw = _in.hardware(hardware)
        if not isinstance(method, str) or method.lower() not in METHODS:
            raise UnknownNameError("compression method", str(method), METHODS)
        method = method.lower()
        batch = _in.positive_int(batch_size, "batch_size")
        seq = _in.DEFAULT_SEQ_LEN if seq_len is None else _in.positive_int(seq_len, "seq_len")
        eta = _in.fraction(efficiency, "efficiency")
        base = _in.precision_for(hw, normalize_precision(baseline, "baseline"))
        base_bits = int(round(base.storage_bytes * unit_factor("byte", "bit")))
        s = _sparsity(sparsity, method)
        kind = _sparsity_type(sparsity_type, s) if method == "pruning" else None
        notes: list[str] = []

        target, kept = base, wl.parameters
        if method == "quantization":
            bits = _bitwidth(target_bitwidth)
            target = _choice(hw, bits, base, target_precision)
            bits = int(round(target.storage_bytes * unit_factor("byte", "bit")))
            if bits > base_bits:
                raise InputError("target_bitwidth", bits, f"must not be wider than the baseline ({base.precision}, "
                                 f"{base_bits} bits)", "choose a narrower format or a wider baseline")
        elif method == "distillation":
            kept = _student(student_params, wl.parameters)
        if target.fallback:
            notes.append(target.fallback)
        bits = int(round(target.storage_bytes * unit_factor("byte", "bit")))
        sparse_compute = 0.0
        if kind == "structured":
            sparse_compute = 1.0
        elif kind == "n_m":
            sparse_compute = 1.0 if has_sparse_tensor_cores(hw) else 0.0
            if not sparse_compute:
                notes.append(f"{hw.name} has no 2:4 sparse tensor cores: the zeros are stored compactly but "
                             "still computed")
        from ..models.compression import PRUNING_SENSITIVITY, SPARSE_INDEX_BYTES
        m_nz, m_p = SPARSE_INDEX_BYTES[kind] if kind else (0.0, 0.0)
        comp = _compression_function()(
            params=wl.parameters, kept_params=kept, baseline_bits=float(base_bits), target_bits=float(bits),
            sparsity=s, index_bytes_per_nonzero=m_nz, index_bytes_per_param=m_p, sparse_compute=sparse_compute,
            pruning_sensitivity=PRUNING_SENSITIVITY[kind] if kind else 0.0)

        before = self._roofline(wl, hw, base, batch, seq, eta, wl.parameters, 1.0)
        after = self._roofline(wl, hw, target, batch, seq, eta, comp["equivalent_params"], comp["compute_fraction"])
        from ..models import compression, roofline
        return CompressionResult(
            model=wl.name, hardware=hw.name, method=method, baseline=base.precision,
            target_format=_format_name(method, target, kind, kept, wl.parameters), target_bitwidth=bits,
            sparsity=s, sparsity_type=kind, compression_ratio=float(comp["compression_ratio"]),
            original_size_gb=sheet_quantity(compression.sheet, "original_weight_bytes", comp["original_weight_bytes"],
                                            "GB"),
            compressed_size_gb=sheet_quantity(compression.sheet, "compressed_weight_bytes",
                                              comp["compressed_weight_bytes"], "GB"),
            memory_savings_pct=float(comp["memory_savings_pct"]),
            inference_speedup=before["latency_roofline"] / after["latency_roofline"],
            latency_speedup=before["latency"] / after["latency"],
            baseline_latency=sheet_quantity(roofline.sheet, "latency", before["latency"], "ms"),
            compressed_latency=sheet_quantity(roofline.sheet, "latency", after["latency"], "ms"),
            baseline_bottleneck=_label(before), compressed_bottleneck=_label(after),
            estimated_accuracy_delta=float(comp["accuracy_delta"]), batch_size=batch,
            seq_len=seq if hasattr(wl, "n_kv_heads") else None, notes=notes)

    @staticmethod
    def _roofline(wl, hw, choice: PrecisionChoice, batch: int, seq: int, eta: float, params: float,
                  compute_fraction: float) -> dict:
        values = _in.workload_values(wl, choice, batch_size=batch, seq_len=seq, is_training=False)
        values.update(_in.hardware_values(hw, choice), efficiency=eta, bandwidth_efficiency=1.0,
                      params=params, flops_per_token=values["flops_per_token"] * compute_fraction)
        return _roofline_function()(**values)


def _label(out: dict) -> str:
    return "Compute" if out["latency_compute"] >= out["latency_memory"] else "Memory"


def _sparsity(value, method: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 <= float(value) < 1.0:
        raise InputError("sparsity", value, "must be a fraction in [0, 1)", "e.g. sparsity=0.5 prunes half the weights")
    if float(value) and method != "pruning":
        raise InputError("sparsity", value, f"only applies to method='pruning' (method is {method!r})",
                         "use method='pruning' or leave sparsity at 0")
    return float(value)


def _sparsity_type(value, s: float) -> str:
    if not isinstance(value, str) or value.lower() not in SPARSITY_TYPES:
        raise UnknownNameError("sparsity_type", str(value), SPARSITY_TYPES)
    kind = value.lower()
    if kind == "n_m" and not math.isclose(s, 0.5):
        raise InputError("sparsity", s, "must be 0.5 for sparsity_type='n_m' (the 2:4 pattern sparse tensor cores run)",
                         "pass sparsity=0.5, or use 'unstructured'/'structured' for other levels")
    return kind


def _student(value, teacher: float) -> float:
    if value is None:
        raise InputError("student_params", None, "is required for method='distillation'",
                         f"give the student's parameter count, e.g. student_params={teacher / 4:.3g}")
    if isinstance(value, pint.Quantity):
        value = value.to("").magnitude
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 < float(value) <= teacher:
        raise InputError("student_params", value, f"must be a parameter count in (0, {teacher:.4g}] (the teacher's size)",
                         "the student is smaller than the teacher")
    return float(value)


def _format_name(method: str, choice: PrecisionChoice, kind, kept: float, params: float) -> str:
    if method == "quantization":
        return choice.precision
    if method == "pruning":
        return f"{choice.precision}, {'2:4' if kind == 'n_m' else kind} sparse"
    return f"{choice.precision}, student of {kept * unit_factor('param', 'Gparam'):.3g}B parameters"
