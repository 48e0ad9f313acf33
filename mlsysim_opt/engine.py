"""``Engine``: the roofline sheet evaluated for one configuration (``solve``), a list of them
(``sweep``) or a whole grid at once (``sweep_table``, vectorized)."""
from __future__ import annotations

import itertools
from functools import lru_cache
from typing import Iterable, Sequence

import numpy as np

from . import inputs as _in
from .compile.numeric import CompiledFunction, compile_expressions
from .precision import normalize_precision
from .results import PerformanceProfile
from .solvers.quantities import field_converters, quantities

FOOTPRINT_OUTPUTS = ("weights_bytes", "kv_cache_bytes", "memory_footprint")


@lru_cache(maxsize=None)
def roofline_function() -> CompiledFunction:
    """Roofline plus memory-footprint definitions, compiled once."""
    from .models import memory, roofline
    exprs = {name: d.expr for name, d in roofline.sheet.definitions.items()}
    exprs.update({name: memory.sheet[name] for name in FOOTPRINT_OUTPUTS})
    return compile_expressions(exprs)


def memory_tier(index: float) -> str:
    """Name of the tier the roofline sheet's ``memory_tier`` selected."""
    from .models.roofline import MEMORY_TIERS
    return MEMORY_TIERS[int(index)]


PROFILE_OUTPUTS = {
    # PerformanceProfile field: (roofline or memory output, or input symbol; unit of the field)
    "latency": ("latency", "ms"), "latency_compute": ("latency_compute", "ms"),
    "latency_memory": ("latency_memory", "ms"), "latency_overhead": ("latency_overhead", "ms"),
    "throughput": ("throughput", "1/s"), "arithmetic_intensity": ("arithmetic_intensity", "FLOP/byte"),
    "ridge_point": ("ridge_point", "FLOP/byte"), "energy": ("energy", "J"), "energy_per_unit": ("energy_per_unit", "J"),
    "memory_footprint": ("memory_footprint", "GB"), "weights_size": ("weights_bytes", "GB"),
    "kv_cache_size": ("kv_cache_bytes", "GB"), "memory_capacity": ("memory_capacity", "GB"),
    "peak_flops_actual": ("effective_flops", "FLOP/s"), "peak_bw_actual": ("effective_bandwidth", "byte/s"),
}


@lru_cache(maxsize=None)
def profile_factors() -> dict[str, tuple[float, float]]:
    """Per profile field, ``(mul, div)`` from the compiled float to the field's unit (see ``scale``)."""
    return {field: (mul, div) for field, _, _, mul, div in _converters()}


@lru_cache(maxsize=None)
def _converters() -> tuple:
    from .models import memory, roofline
    return field_converters(PROFILE_OUTPUTS, roofline.sheet, memory.sheet)


class Engine:
    """Single-accelerator roofline (Walls 1-3)."""

    walls = (1, 2, 3)

    @staticmethod
    def solve(model, hardware, batch_size: int = 1, precision: str = "fp16", efficiency: float = 0.5,
              seq_len: int | None = None, is_training: bool = False, bandwidth_efficiency: float = 1.0,
              raise_errors: bool = False) -> PerformanceProfile:
        """One pass of ``model`` on ``hardware``.

        Language models: inference is one decode step of ``batch_size`` requests, each with a KV
        cache of ``seq_len`` tokens (default 2048); training is one step over ``batch_size``
        sequences of ``seq_len`` tokens. Other networks: one pass over ``batch_size`` inputs.
        ``efficiency`` derates peak compute; ``bandwidth_efficiency`` derates memory bandwidth.
        With ``raise_errors=True`` an infeasible configuration raises instead of returning
        ``feasible=False``.
        """
        wl = _in.workload(model)
        hw = _in.hardware(hardware)
        batch = _in.positive_int(batch_size, "batch_size")
        eta = _in.fraction(efficiency, "efficiency")
        eta_bw = _in.fraction(bandwidth_efficiency, "bandwidth_efficiency")
        seq = _in.DEFAULT_SEQ_LEN if seq_len is None else _in.positive_int(seq_len, "seq_len")
        choice = _in.precision_for(hw, precision)
        values = _in.workload_values(wl, choice, batch_size=batch, seq_len=seq, is_training=bool(is_training))
        values.update(_in.hardware_values(hw, choice), efficiency=eta, bandwidth_efficiency=eta_bw)
        out = roofline_function()(**values)
        out["memory_capacity"] = values["memory_capacity"]
        return _profile(wl, hw, choice, batch, seq, bool(is_training), out, raise_errors)

    @staticmethod
    def sweep(model, hardware_list: Sequence, batch_sizes: Iterable[int] = (1,),
              precisions: Iterable[str] = ("fp16",), efficiency: float = 0.5, seq_len: int | None = None,
              feasible_only: bool = False) -> list[dict]:
        """Rows ``{hardware, batch_size, precision, feasible, profile}`` for every combination.
        Infeasible configurations are kept (``feasible`` False) unless ``feasible_only``."""
        rows = []
        for hw, bs, prec in itertools.product(list(hardware_list), list(batch_sizes), list(precisions)):
            hw = _in.hardware(hw)
            p = Engine.solve(model, hw, batch_size=bs, precision=prec, efficiency=efficiency, seq_len=seq_len)
            if feasible_only and not p.feasible:
                continue
            rows.append({"hardware": hw.name, "batch_size": bs, "precision": prec, "feasible": p.feasible,
                         "profile": p})
        return rows

    @staticmethod
    def sweep_table(model, hardware_list: Sequence, batch_sizes: Iterable[int] = (1,),
                    precisions: Iterable[str] = ("fp16",), efficiencies: Iterable[float] = (0.5,),
                    seq_lens: Iterable[int] = (_in.DEFAULT_SEQ_LEN,), is_training: bool = False):
        """The whole grid in one vectorized evaluation; returns a pandas DataFrame (SI units in the
        column names)."""
        import pandas as pd
        wl = _in.workload(model)
        hws = [_in.hardware(h) for h in hardware_list]
        batches = [_in.positive_int(b, "batch_sizes[]") for b in batch_sizes]
        precs = [normalize_precision(p, "precisions[]") for p in precisions]
        etas = [_in.fraction(e, "efficiencies[]") for e in efficiencies]
        seqs = [_in.positive_int(s, "seq_lens[]") for s in seq_lens]
        grid = grid_values(wl, hws, precs, batches, etas, seqs, is_training)
        out = roofline_function().vector(**grid.values)
        capacity = grid.values["memory_capacity"]
        frame = pd.DataFrame({
            "hardware": grid.labels["hardware"], "precision": grid.labels["precision"],
            "batch_size": grid.values["batch_size"].astype(int), "efficiency": grid.values["efficiency"],
            "seq_len": grid.labels["seq_len"],
            "latency_s": out["latency"], "latency_compute_s": out["latency_compute"],
            "latency_memory_s": out["latency_memory"], "throughput_per_s": out["throughput"],
            "arithmetic_intensity": out["arithmetic_intensity"], "mfu": out["mfu"], "energy_J": out["energy"],
            "memory_footprint_B": out["memory_footprint"],
        })
        frame["bottleneck"] = np.where(out["latency_compute"] >= out["latency_memory"], "Compute", "Memory")
        frame["feasible"] = out["memory_footprint"] <= capacity
        return frame


class Grid:
    """Flat arrays of symbol values for every point of a product grid, plus row labels."""

    def __init__(self, values: dict[str, np.ndarray], labels: dict[str, np.ndarray]):
        self.values, self.labels = values, labels

    def __len__(self) -> int:
        return len(next(iter(self.values.values())))


def grid_values(wl, hws, precs, batches, etas, seqs, is_training: bool = False) -> Grid:
    """Symbol values for hardware x precision x batch x efficiency x seq_len, as flat arrays.

    Per (hardware, precision) pair the scalar values are computed once; the grid is then gathered
    with index arrays, so building 10^6 points costs a few array operations."""
    pairs, per_pair = [], []
    for hw in hws:
        for p in precs:
            try:
                choice = _in.precision_for(hw, p, warn=False)
            except Exception:
                continue  # a precision with no compute path on this device is not a grid point
            v = _in.workload_values(wl, choice, batch_size=1, seq_len=seqs[0], is_training=is_training)
            v.update(_in.hardware_values(hw, choice))
            pairs.append((hw.name, p))
            per_pair.append(v)
    if not pairs:
        from .errors import InputError
        raise InputError("precisions", precs, "have no compute path on any of the given hardware")
    keys = list(per_pair[0])
    table = {k: np.array([v[k] for v in per_pair], dtype=float) for k in keys}
    idx_pair, idx_b, idx_e, idx_s = (a.ravel() for a in np.meshgrid(
        np.arange(len(pairs)), np.arange(len(batches)), np.arange(len(etas)), np.arange(len(seqs)),
        indexing="ij"))
    values = {k: table[k][idx_pair] for k in keys}
    values["batch_size"] = np.asarray(batches, dtype=float)[idx_b]
    values["efficiency"] = np.asarray(etas, dtype=float)[idx_e]
    values["bandwidth_efficiency"] = np.ones(len(idx_pair))
    seq_arr = np.asarray(seqs, dtype=float)[idx_s]
    # the phase's tokens along the seq_len axis (models/phases.py), as workload_values sets them per point
    from .models import phases
    names = phases.definitions(phases.phase_of(attention=isinstance(wl, _in.TransformerWorkload),
                                               training=is_training))
    tokens = phases.sheet.compiled(tuple(names)).vector(sequence_length=seq_arr)
    values.update({names[k]: np.broadcast_to(v, seq_arr.shape) for k, v in tokens.items()})
    labels = {"hardware": _categorical([p[0] for p in pairs], idx_pair),
              "precision": _categorical([p[1] for p in pairs], idx_pair), "seq_len": seq_arr.astype(int)}
    return Grid(values, labels)


def _categorical(per_pair: list[str], idx_pair: np.ndarray):
    """Row labels as a pandas Categorical: building 10^6 string objects would dominate the sweep."""
    import pandas as pd
    categories = list(dict.fromkeys(per_pair))
    code_of_pair = np.array([categories.index(v) for v in per_pair])
    return pd.Categorical.from_codes(code_of_pair[idx_pair], categories=categories)


def _profile(wl, hw, choice, batch, seq, is_training, out, raise_errors) -> PerformanceProfile:
    fields = quantities(_converters(), out)
    feasible = out["memory_footprint"] <= out["memory_capacity"]
    reason = None
    if not feasible:
        footprint, weights, kv = (fields[k].m for k in ("memory_footprint", "weights_size", "kv_cache_size"))
        reason = (f"needs {footprint:.2f} GB (weights {weights:.2f} GB, KV cache {kv:.2f} GB, other "
                  f"{footprint - weights - kv:.2f} GB) but {hw.name} holds {fields['memory_capacity'].m:.2f} GB")
        if raise_errors:
            from .errors import InputError
            raise InputError("memory", f"{footprint:.2f} GB", f"does not fit: {reason}",
                             "use a lower precision, a smaller batch, or shard the model (DistributedModel)")
    compute, memory = out["latency_compute"], out["latency_memory"]
    notes = []
    if choice.fallback:
        notes.append(choice.fallback)
    is_lm = isinstance(wl, _in.TransformerWorkload)
    return PerformanceProfile.model_construct(  # fields are built here, already typed
        model=wl.name, hardware=hw.name, batch_size=batch, precision=choice.precision,
        compute_precision=choice.compute_precision, seq_len=seq if is_lm else None, is_training=is_training,
        bottleneck="Compute" if compute >= memory else "Memory", mfu=float(out["mfu"]),
        memory_tier=memory_tier(out["memory_tier"]), feasible=bool(feasible), infeasibility_reason=reason,
        overhead_dominated=bool(out["latency_overhead"] > out["latency_roofline"]),
        precision_fallback=choice.fallback, notes=notes, **fields,
    )
