"""The discrete design space of LLM serving, evaluated by the forward sheets: every (hardware,
precision, TP, PP, batch) replica configuration with its latency, capacity and memory (the
``serving_tp`` sheet), priced per site with the fleet sheet's shares of a node's yearly cost,
power and carbon (from the economics and sustainability sheets). The SLA synthesis, fleet sizing,
capstone and Pareto formulations take their columns from here.
"""
from __future__ import annotations

import warnings
from functools import lru_cache
from typing import Iterable, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict

from mlsysim_opt import inputs as _in
from mlsysim_opt.catalog import Hardware, default_node_for
from mlsysim_opt.errors import InputError
from mlsysim_opt.formulations.builder import Columns, check_table, in_symbol_unit, number, undominated_columns
from mlsysim_opt.precision import PrecisionFallbackWarning, normalize_precision
from mlsysim_opt.types import PRECISION_BYTES, HardwareNode
from mlsysim_opt.units import unit_factor

DEFAULT_PRECISIONS = ("fp16", "fp8", "int8", "int4")
DEFAULT_TP = (1, 2, 4, 8)
DEFAULT_BATCHES = (1, 2, 4, 8, 16, 32, 64, 128, 256)
DEFAULT_UTILIZATION = 0.6
"""Average accelerator utilization of a serving fleet, for energy (planned headroom below capacity)."""
DEFAULT_HEADROOM = 0.8
"""Replicas are planned to run at most at this fraction of their capacity (queueing headroom)."""
PLANNING_DAYS = 365
"""The annual figures are one planning year of 365 days (the fleet sheet's ``planning_year``)."""

REPLICA_OUTPUTS = ("cb_ttft", "cb_itl", "cb_capacity", "tp_memory_utilization", "tp_request_latency")
LATENCY_OUTPUTS = {"ttft": "cb_ttft", "itl": "cb_itl", "e2e_latency": "tp_request_latency"}
"""Each latency limit a query may set, and the serving_tp definition it bounds."""


class ServingConfig(BaseModel):
    """One point of the design space with its forward-evaluated metrics (per replica).
    ``capacity_qps`` is what one replica serves at full load; the fleet plans it at a headroom."""

    model_config = ConfigDict(frozen=True)

    hardware: str
    precision: str
    compute_precision: str
    tp: int
    pp: int = 1
    batch_size: int
    ttft_ms: float
    itl_ms: float
    request_latency_ms: float
    capacity_qps: float
    memory_utilization: float
    annual_cost_usd: float
    power_kw: float
    annual_carbon_t: float

    @property
    def accelerators(self) -> int:
        return self.tp * self.pp

    @property
    def name(self) -> str:
        split = f"TP{self.tp}" + (f" PP{self.pp}" if self.pp > 1 else "")
        return f"{self.hardware} {self.precision} {split} batch {self.batch_size}"

    def latency_ms(self, limit: str) -> float:
        """The latency a limit named ``ttft``, ``itl`` or ``e2e_latency`` bounds."""
        return {"ttft": self.ttft_ms, "itl": self.itl_ms, "e2e_latency": self.request_latency_ms}[limit]


# ----------------------------------------------------------------------------------------------
# performance


@lru_cache(maxsize=None)
def _tp_sheet():
    from mlsysim_opt.models import serving_tp
    return serving_tp.sheet


def _replica_function():
    return _tp_sheet().compiled(REPLICA_OUTPUTS)


def hardware_list(hardware) -> list[HardwareNode]:
    """The candidate accelerators: records or registry names (default: every priced cloud record)."""
    if hardware is None:
        return [h for h in Hardware.Cloud if h.unit_cost is not None]
    if isinstance(hardware, (str, HardwareNode)):
        hardware = [hardware]
    out = [_in.hardware(h, "hardware[]") for h in hardware]
    if not out:
        raise InputError("hardware", [], "must list at least one accelerator")
    for h in out:
        if h.unit_cost is None:
            raise InputError(f"hardware[{h.name}].unit_cost", None, "is unknown",
                             "give the record a unit_cost: a missing price is never taken as $0")
    return out


def performance_configs(model, *, prompt_len: int, output_len: int, hardware: Iterable | None = None,
                        precisions: Sequence[str] = DEFAULT_PRECISIONS, tp_sizes: Sequence[int] = DEFAULT_TP,
                        batch_sizes: Sequence[int] = DEFAULT_BATCHES, pp_sizes: Sequence[int] = (1,),
                        efficiency: float = 0.5) -> list[ServingConfig]:
    """Latency, capacity and memory of every memory-feasible point, evaluated at once per
    (hardware, precision); cost fields are zero until :func:`price_configs`."""
    from mlsysim_opt.solvers.serving import language_model, serving_case
    wl = language_model(model)
    hws = hardware_list(hardware)
    precs = [normalize_precision(p, "precisions[]") for p in precisions]
    tps = sorted({_in.positive_int(t, "tp_sizes[]") for t in tp_sizes})
    pps = sorted({_in.positive_int(v, "pp_sizes[]") for v in pp_sizes})
    batches = np.array(sorted({_in.positive_int(b, "batch_sizes[]") for b in batch_sizes}), dtype=float)
    eta = _in.fraction(efficiency, "efficiency")
    seq = prompt_len + output_len
    f = _replica_function()
    configs: list[ServingConfig] = []
    for hw in hws:
        node = default_node_for(hw)
        for prec in precs:
            try:
                with warnings.catch_warnings():  # fallbacks are part of the space: see compute_precision
                    warnings.simplefilter("ignore", PrecisionFallbackWarning)
                    case = serving_case(wl, hw, seq, 1, prec, eta, None, prompt_len, output_len)
            except InputError:
                continue  # no compute path for this precision on this device
            splits = [(t, v) for t in tps for v in pps if t * v <= node.accelerators_per_node
                      and wl.heads % t == 0 and wl.n_kv_heads % t == 0 and v <= wl.layers]
            if not splits:
                continue
            split_idx, b_idx = (a.ravel() for a in np.meshgrid(np.arange(len(splits)), np.arange(len(batches)),
                                                                indexing="ij"))
            tp_grid = np.array([splits[i][0] for i in split_idx], dtype=float)
            pp_grid = np.array([splits[i][1] for i in split_idx], dtype=float)
            b_grid = batches[b_idx]
            values = dict(_replica_values(case, wl, hw, node), tp_size=tp_grid, pp_size=pp_grid, batch_size=b_grid)
            out = f.vector(**values)
            fits = np.flatnonzero(out["tp_memory_utilization"] <= 1.0)
            configs.extend(_configs(hw.name, prec, case.choice.compute_precision, tp_grid[fits], pp_grid[fits],
                                    b_grid[fits], {k: np.asarray(v)[fits] for k, v in out.items()}))
    return configs


REPORTED_UNITS = {"ttft_ms": ("cb_ttft", "ms"), "itl_ms": ("cb_itl", "ms"),
                  "request_latency_ms": ("tp_request_latency", "ms"), "capacity_qps": ("cb_capacity", "1/s"),
                  "memory_utilization": ("tp_memory_utilization", "dimensionless")}
"""Each reported field of a configuration: the serving_tp definition and the unit it is reported in."""


def _configs(hardware: str, precision: str, compute_precision: str, tp, pp, batch, out: dict) -> list[ServingConfig]:
    """Configurations from the serving_tp sheet's outputs (arrays), each field in its reported unit."""
    sheet = _tp_sheet()
    fields = {f: np.asarray(out[name], dtype=float) * unit_factor(sheet.unit(name), unit)
              for f, (name, unit) in REPORTED_UNITS.items()}
    return [ServingConfig(
        hardware=hardware, precision=precision, compute_precision=compute_precision, tp=int(tp[i]), pp=int(pp[i]),
        batch_size=int(batch[i]), annual_cost_usd=0.0, power_kw=0.0, annual_carbon_t=0.0,
        **{f: float(v[i]) for f, v in fields.items()}) for i in range(len(tp))]


def _replica_values(case, wl, hw: HardwareNode, node) -> dict:
    """The serving_tp sheet's inputs for one (model, hardware, precision) case; tp_size, pp_size and
    batch_size are filled in by the caller (numbers or arrays)."""
    return dict(case.values, hidden_size=float(wl.hidden_size),
                intra_node_bandwidth=node.intra_node_bandwidth.m_as("B/s"),
                intra_node_latency=node.intra_node_latency.m_as("s"),
                activation_bytes_per_value=PRECISION_BYTES[case.choice.compute_precision],
                memory_capacity=hw.memory.capacity.m_as("B"))


def _replica_inputs(model, hardware, *, precision: str, tp: int, pp: int, batch_size: int, prompt_len: int,
                    output_len: int, efficiency: float):
    from mlsysim_opt.solvers.serving import language_model, serving_case
    wl, hw = language_model(model), _in.hardware(hardware)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PrecisionFallbackWarning)
        case = serving_case(wl, hw, prompt_len + output_len, batch_size, precision, efficiency, None, prompt_len,
                            output_len)
    values = dict(_replica_values(case, wl, hw, default_node_for(hw)), tp_size=tp, pp_size=pp, batch_size=batch_size)
    return hw, case, values


def evaluate_replica(model, hardware, *, precision: str, tp: int, pp: int, batch_size: int, prompt_len: int,
                     output_len: int, efficiency: float = 0.5) -> dict:
    """One replica configuration through the serving_tp sheet (scalar): cb_ttft, cb_itl (s),
    cb_capacity (requests/s, before headroom), tp_memory_utilization, tp_request_latency."""
    _, _, values = _replica_inputs(model, hardware, precision=precision, tp=tp, pp=pp, batch_size=batch_size,
                                   prompt_len=prompt_len, output_len=output_len, efficiency=efficiency)
    return _replica_function()(**values)


def serving_config(model, hardware, *, precision: str, tp: int, pp: int, batch_size: int, prompt_len: int,
                   output_len: int, efficiency: float = 0.5) -> ServingConfig:
    """One configuration evaluated forward, unpriced, and kept even when it does not fit in memory
    (see ``memory_utilization``)."""
    hw, case, values = _replica_inputs(model, hardware, precision=precision, tp=tp, pp=pp, batch_size=batch_size,
                                       prompt_len=prompt_len, output_len=output_len, efficiency=efficiency)
    out = _replica_function()(**values)
    [config] = _configs(hw.name, normalize_precision(precision, "precision"), case.choice.compute_precision, [tp], [pp],
                        [batch_size], {k: [v] for k, v in out.items()})
    return config


# ----------------------------------------------------------------------------------------------
# prices: a node's year, shared per accelerator and per replica by the fleet sheet


_RATES: dict = {}


def node_rates(hw: HardwareNode, *, datacenter=None, utilization: float = DEFAULT_UTILIZATION,
               infrastructure_multiplier: float = 1.0, amortization_years: float = 3.0) -> dict[str, float]:
    """The fleet sheet's node symbols for one node of ``hw`` at ``datacenter``: its TCO rate, average
    IT power and carbon rate (economics and sustainability sheets over one planning year), and its
    accelerator count. Records are frozen, so the answer is kept per (record, site, settings)."""
    key = (id(hw), id(datacenter), utilization, infrastructure_multiplier, amortization_years)
    entry = _RATES.get(key)
    if entry is not None and entry[0] is hw and entry[1] is datacenter:
        return dict(entry[2])
    if len(_RATES) > 4096:
        _RATES.clear()
    rates = _node_rates(hw, datacenter, utilization, infrastructure_multiplier, amortization_years)
    _RATES[key] = (hw, datacenter, rates)
    return dict(rates)


def _node_rates(hw, datacenter, utilization, infrastructure_multiplier, amortization_years) -> dict[str, float]:
    from mlsysim_opt.solvers.economics import EconomicsModel
    from mlsysim_opt.solvers.sustainability import SECONDS_PER_DAY, SustainabilityModel
    from mlsysim_opt.types import Fleet
    fleet = Fleet(name=f"one {hw.name} node", hardware=hw, count=1)
    econ = EconomicsModel().solve(fleet, duration_days=PLANNING_DAYS, utilization=utilization, datacenter=datacenter,
                                  infrastructure_multiplier=infrastructure_multiplier,
                                  amortization_years=amortization_years, price_basis="accelerator")
    carbon = SustainabilityModel().solve(fleet, duration_days=PLANNING_DAYS, datacenter=datacenter, mfu=utilization)
    seconds = PLANNING_DAYS * SECONDS_PER_DAY
    return {"node_cost_rate": econ.tco.m_as("USD") / seconds,
            "node_average_power": econ.fleet_power.m_as("W"),
            "node_carbon_rate": carbon.carbon_footprint_kg * unit_factor("kgCO2e", "gCO2e") / seconds,
            "accelerators_per_node": float(fleet.node.accelerators_per_node)}


def accelerator_year(hw: HardwareNode, **site) -> tuple[float, float, float]:
    """(annual cost in USD, power in kW, annual carbon in t) of one accelerator of ``hw``: the fleet
    sheet's per-accelerator shares of a node (``site``: the keywords of :func:`node_rates`)."""
    from mlsysim_opt.formulations.builder import evaluate
    from mlsysim_opt.models import fleet
    rates = node_rates(hw, **site)
    return (evaluate(fleet.sheet, "accelerator_annual_cost", "USD", **rates),
            evaluate(fleet.sheet, "accelerator_power", "kW", **rates),
            evaluate(fleet.sheet, "accelerator_annual_carbon", "tCO2e", **rates))


def price_configs(configs: list[ServingConfig], *, datacenter=None, utilization: float = DEFAULT_UTILIZATION,
                  infrastructure_multiplier: float = 1.0, hardware: Iterable | None = None) -> list[ServingConfig]:
    """The same configurations with one replica's annual cost, power and carbon at ``datacenter``.
    ``hardware``: records to price by (for records not in the registry)."""
    from mlsysim_opt.models import fleet
    if not configs:
        return []
    records = {h.name: h for h in (hardware_list(hardware) if hardware is not None else [])}
    rates: dict[str, dict] = {}
    for c in configs:
        if c.hardware not in rates:
            hw = records.get(c.hardware) or Hardware[c.hardware]
            rates[c.hardware] = node_rates(hw, datacenter=datacenter, utilization=utilization,
                                           infrastructure_multiplier=infrastructure_multiplier)
    columns = Columns(configs, accelerators_per_replica=[c.accelerators for c in configs],
                      **{k: [rates[c.hardware][k] for c in configs] for k in next(iter(rates.values()))})
    cost = columns.evaluate(fleet.sheet, "replica_annual_cost", "USD")
    power = columns.evaluate(fleet.sheet, "replica_power", "kW")
    carbon = columns.evaluate(fleet.sheet, "replica_annual_carbon", "tCO2e")
    check_table({"annual_cost_usd": cost, "power_kw": power, "annual_carbon_t": carbon},
                [c.name for c in configs], "configurations")
    return [c.model_copy(update={"annual_cost_usd": float(cost[i]), "power_kw": float(power[i]),
                                 "annual_carbon_t": float(carbon[i])}) for i, c in enumerate(configs)]


def serving_configs(model, *, prompt_len: int, output_len: int, hardware: Iterable | None = None,
                    precisions: Sequence[str] = DEFAULT_PRECISIONS, tp_sizes: Sequence[int] = DEFAULT_TP,
                    batch_sizes: Sequence[int] = DEFAULT_BATCHES, pp_sizes: Sequence[int] = (1,),
                    efficiency: float = 0.5, datacenter=None, utilization: float = DEFAULT_UTILIZATION,
                    infrastructure_multiplier: float = 1.0) -> list[ServingConfig]:
    """Every memory-feasible (hardware, precision, TP, PP, batch) point with its per-replica metrics,
    priced at ``datacenter`` (a replica's TP x PP accelerators stay within one node)."""
    perf = performance_configs(model, prompt_len=prompt_len, output_len=output_len, hardware=hardware,
                               precisions=precisions, tp_sizes=tp_sizes, batch_sizes=batch_sizes,
                               pp_sizes=pp_sizes, efficiency=efficiency)
    return price_configs(perf, datacenter=datacenter, utilization=utilization,
                         infrastructure_multiplier=infrastructure_multiplier, hardware=hardware)


# ----------------------------------------------------------------------------------------------
# as columns of a formulation


def meets(c: ServingConfig, limits: dict[str, float]) -> bool:
    """Whether ``c`` meets every latency limit (``{"ttft": ms, ...}``)."""
    return all(c.latency_ms(k) <= v for k, v in limits.items())


OBJECTIVE_METRICS = {"tco": "cost_per_replica", "power": "power_per_replica", "carbon": "carbon_per_replica"}


def serving_columns(configs: Sequence[ServingConfig], *, headroom: float) -> Columns:
    """The fleet sheet's per-replica symbols of each configuration (SI), plus its latencies (s)."""
    return Columns(
        configs, headroom=headroom,
        replica_capacity=in_symbol_unit("replica_capacity", [c.capacity_qps for c in configs], "1/s"),
        accelerators_per_replica=[c.accelerators for c in configs],
        cost_per_replica=in_symbol_unit("cost_per_replica", [c.annual_cost_usd for c in configs], "USD"),
        power_per_replica=in_symbol_unit("power_per_replica", [c.power_kw for c in configs], "kW"),
        carbon_per_replica=in_symbol_unit("carbon_per_replica", [c.annual_carbon_t for c in configs], "tCO2e"),
        **{f"latency_{k}": [c.latency_ms(k) for c in configs] for k in LATENCY_OUTPUTS})


def prune(columns: Columns, *, objectives: Iterable[str], limits: Iterable[str]) -> Columns:
    """Drop the configurations another beats in capacity, in every latency that is limited and in
    the per-replica value of every metric in ``objectives`` (objective and capped metrics alike).
    Exact: see :func:`mlsysim_opt.formulations.builder.undominated_columns`."""
    if not len(columns):
        return columns
    metrics = {"capacity": (columns.values["replica_capacity"], -1)}
    for name in limits:
        metrics[f"latency_{name}"] = (columns.values[f"latency_{name}"], +1)
    for name in objectives:
        key = OBJECTIVE_METRICS[name]
        metrics[key] = (columns.values[key], +1)
    return columns.take(undominated_columns(metrics))


def latency_limits(**limits) -> dict[str, float]:
    """Latency limits in ms from quantities, strings ("100 ms") or seconds; None means no limit."""
    from mlsysim_opt.units import as_quantity
    out = {}
    for name, value in limits.items():
        if value is None:
            continue
        try:
            ms = as_quantity(value, "ms", name, example="100 ms").m_as("ms")
        except InputError:
            raise
        except Exception:
            raise InputError(name, value, "must be a latency such as '100 ms' or a number of seconds") from None
        out[name] = number(ms, name, fix="a positive latency such as '100 ms'")
    return out
