"""The discrete design space of LLM serving, evaluated by the forward sheets: every (hardware,
precision, TP, PP, batch) replica configuration with its latency, capacity and memory (the
``serving_tp`` sheet), priced per site with the fleet sheet's shares of a node's yearly cost,
power and carbon (from the economics and sustainability sheets). The SLA synthesis, fleet sizing,
capstone and Pareto formulations take their columns from here.
"""
from __future__ import annotations

import warnings
from functools import lru_cache
from typing import Iterable, Optional, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from mlsysim_opt import inputs as _in
from mlsysim_opt.catalog import Hardware, default_node_for
from mlsysim_opt.errors import InputError
from mlsysim_opt.formulations.builder import Columns, check_table, in_symbol_unit, number, undominated_columns
from mlsysim_opt.precision import DEFAULT_KV_PRECISION, PrecisionFallbackWarning, normalize_precision
from mlsysim_opt.types import PRECISION_BYTES, HardwareNode
from mlsysim_opt.units import unit_factor

DEFAULT_PRECISIONS = ("fp16", "fp8", "int8", "int4")
DEFAULT_TP = (1, 2, 4, 8)
DEFAULT_BATCHES = (1, 2, 4, 8, 16, 32, 64, 128, 256)
DEFAULT_EP = (1, 2, 4)
"""Expert-parallel degrees a mixture of experts is tried at (a dense model: 1). A replica of TP t
and EP e spans t x e accelerators: with t = 8, EP 2 and 4 span 2 and 4 nodes (16 and 32 GPUs)."""
DEFAULT_CHUNKS = (256, 512, 2048)
"""Prefill tokens per iteration (Sarathi-Serve's chunk): small chunks keep ITL low, large ones TTFT."""
DEFAULT_UTILIZATION = 0.6
"""Average accelerator utilization of a serving fleet, for energy (planned headroom below capacity)."""
DEFAULT_HEADROOM = 0.8
"""Without a latency limit nothing bounds a replica's queue: it is planned at this fraction of its
stable load. With a limit the SLA sets the load (goodput) and the headroom is an explicit margin."""
PLANNING_DAYS = 365
"""The annual figures are one planning year of 365 days (the fleet sheet's ``planning_year``)."""

REPLICA_OUTPUTS = ("cb_ttft", "cb_itl", "cb_capacity", "tp_memory_utilization", "tp_request_latency")
LATENCY_OUTPUTS = {"ttft": "cb_ttft", "itl": "cb_itl", "e2e_latency": "tp_request_latency"}
"""Each latency limit a query may set, and the serving_tp definition it bounds."""


class ServingConfig(BaseModel):
    """One point of the design space with its forward-evaluated metrics (per replica).

    ``ttft_ms`` is one request's TTFT alone (zero load), ``itl_ms`` the ITL of a full batch with
    prefill interleaved and ``capacity_qps`` what one replica serves at full load (serving_tp).
    The latencies a loaded replica shows are the ``serving_load`` sheet's (:mod:`goodput`);
    ``goodput_qps`` is the load at which they meet an SLA, once one is applied."""

    model_config = ConfigDict(frozen=True)

    hardware: str
    precision: str
    """The weights' format."""
    compute_precision: str
    """The arithmetic's format (solvers.serving.serving_case's default for the weights)."""
    kv_precision: str = DEFAULT_KV_PRECISION
    """The KV cache's format: 16-bit for every weight format unless asked otherwise."""
    tp: int
    pp: int = 1
    ep: int = 1
    """Expert-parallel groups (a mixture of experts): the replica is TP x PP x EP accelerators."""
    batch_size: int
    chunk_tokens: int = 512
    prompt_tokens: int = 512
    output_tokens: int = 256
    ttft_ms: float
    itl_ms: float
    itl_alone_ms: float = 0.0
    request_latency_ms: float
    capacity_qps: float
    memory_utilization: float
    annual_cost_usd: float
    power_kw: float
    annual_carbon_t: float
    goodput_qps: Optional[float] = None
    """Requests per second per replica at which the applied SLA holds (None: no SLA applied)."""
    percentile: Optional[str] = None
    replica_costs: dict[str, float] = Field(default_factory=dict, repr=False)
    """The serving_load sheet's replica inputs (serving_tp's prefill time, decode-step pieces, capacity)."""

    @classmethod
    def trusted(cls, values: dict) -> "ServingConfig":
        """A configuration from values this module computed (every field given, already typed),
        without validating each again: a query builds thousands. The same object pydantic's
        ``model_construct`` makes (tests/test_goodput.py compares it with a validated one)."""
        config = object.__new__(cls)
        _set(config, "__dict__", values)
        _set(config, "__pydantic_fields_set__", _FIELDS)
        _set(config, "__pydantic_extra__", None)
        _set(config, "__pydantic_private__", None)
        return config

    def replaced(self, **update) -> "ServingConfig":
        """A copy with ``update`` (values this package computed), as :meth:`trusted` builds one."""
        return type(self).trusted({**self.__dict__, **update})

    @property
    def accelerators(self) -> int:
        return self.tp * self.pp * self.ep

    @property
    def name(self) -> str:
        split = f"TP{self.tp}" + (f" PP{self.pp}" if self.pp > 1 else "") + (f" EP{self.ep}" if self.ep > 1 else "")
        return f"{self.hardware} {self.precision} {split} batch {self.batch_size} chunk {self.chunk_tokens}"

    @property
    def formats(self) -> str:
        """The weight, compute and KV-cache formats, as the CLI prints them with a design."""
        return f"weights {self.precision}, compute {self.compute_precision}, KV cache {self.kv_precision}"

    @property
    def planned_qps(self) -> float:
        """The load per replica the fleet sheet plans with: the goodput at the SLA, else full load."""
        return self.capacity_qps if self.goodput_qps is None else self.goodput_qps

    def latency_ms(self, limit: str) -> float:
        """The latency a limit named ``ttft``, ``itl`` or ``e2e_latency`` bounds, at zero load (a
        request alone): the least any load gives, so a limit below it rules the configuration out."""
        return {"ttft": self.ttft_ms, "itl": self.itl_alone_ms,
                "e2e_latency": self.ttft_ms + self.output_tokens * self.itl_alone_ms}[limit]


class Assumptions(BaseModel):
    """What a serving answer took for granted beyond the query: request shape, compute efficiency,
    planning margin, percentile and price basis, and the end-to-end latency of the chosen design
    (prompt and all output tokens) at the load it carries. Printed with every answer."""

    model_config = ConfigDict(frozen=True)

    prompt_tokens: int
    output_tokens: int
    efficiency: Optional[float]
    """Fraction of the datasheet peak compute the replicas attain; None: each hardware's calibrated
    serving profile (``efficiency_basis``)."""
    headroom: float
    """Fraction of each replica's planned load (goodput under an SLA, else its stable load) used."""
    sla_applied: bool
    percentile: str
    utilization: float
    """Average accelerator utilization the energy bill assumes."""
    price_basis: str
    end_to_end_latency_ms: Optional[float] = None
    end_to_end_of: str = "the chosen design"
    """Which design the end-to-end latency is of."""
    efficiency_basis: Optional[str] = None

    def _efficiency_text(self) -> str:
        if self.efficiency is not None:
            return f"efficiency {self.efficiency:g} of peak compute"
        return "efficiency and bandwidth from each hardware's calibrated serving profile"

    def lines(self) -> list[str]:
        load = "goodput at the SLA" if self.sla_applied else "stable load (no latency limit given)"
        lines = [f"assumes {self.prompt_tokens} prompt + {self.output_tokens} output tokens per request, "
                 f"{self._efficiency_text()}, replicas planned at {self.headroom:.0%} of "
                 f"their {load}, {self.percentile} latencies",
                 f"prices: {self.price_basis}"]
        if self.efficiency_basis:
            lines.append(f"efficiency of the chosen design: {self.efficiency_basis}")
        if self.end_to_end_latency_ms is not None:
            lines.append(f"end-to-end latency {self.percentile} {self.end_to_end_latency_ms / 1e3:.3g} s per request "
                         f"(prefill + {self.output_tokens} output tokens at the planned load; {self.end_to_end_of})")
        return lines

    def __str__(self) -> str:
        return "\n".join(self.lines())


def price_basis(datacenter=None, utilization: float = DEFAULT_UTILIZATION,
                infrastructure_multiplier: float = 1.0, amortization_years: float = 3.0) -> str:
    """One sentence on how :func:`node_rates` prices a replica (what the annual figures mean)."""
    from mlsysim_opt.solvers.sustainability import DEFAULT_GRID
    site = getattr(datacenter, "name", None) or (datacenter if isinstance(datacenter, str) else None)
    where = site or f"{DEFAULT_GRID} grid (no region given)"
    facility = "" if infrastructure_multiplier == 1.0 else f", infrastructure x{infrastructure_multiplier:g}"
    return (f"owned accelerators at list price over {amortization_years:g} years{facility}, plus energy "
            f"(PUE, electricity) and maintenance at {where}, {utilization:.0%} average utilization, "
            f"{PLANNING_DAYS}-day year")


_FIELDS = frozenset(ServingConfig.model_fields)
_set = object.__setattr__


# ----------------------------------------------------------------------------------------------
# performance


@lru_cache(maxsize=None)
def _load_sheet():
    from mlsysim_opt.models import serving_load
    return serving_load


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
                        chunk_sizes: Sequence[int] = DEFAULT_CHUNKS, efficiency: float | None = None,
                        ep_sizes: Sequence[int] | None = None) -> list[ServingConfig]:
    """Latency, capacity and memory of every memory-feasible (hardware, precision, TP, PP, EP, batch,
    chunk) point, evaluated at once per (hardware, precision); cost fields are zero until
    :func:`price_configs`. Grids are kept (``_GRIDS``): a repeated query skips the evaluation.
    ``ep_sizes`` (default ``DEFAULT_EP`` for a mixture of experts, 1 for a dense model): degrees
    that do not divide the experts are skipped."""
    from mlsysim_opt.solvers.serving import language_model
    wl = language_model(model)
    hws = hardware_list(hardware)
    precs = [normalize_precision(p, "precisions[]") for p in precisions]
    tps = sorted({_in.positive_int(t, "tp_sizes[]") for t in tp_sizes})
    pps = sorted({_in.positive_int(v, "pp_sizes[]") for v in pp_sizes})
    batches = sorted({_in.positive_int(b, "batch_sizes[]") for b in batch_sizes})
    chunks = sorted({_in.positive_int(c, "chunk_sizes[]") for c in chunk_sizes})
    eps = expert_degrees(wl, ep_sizes)
    if not chunks:
        raise InputError("chunk_sizes", list(chunk_sizes), "must list at least one chunk size", "e.g. [512]")
    eta = None if efficiency is None else _in.fraction(efficiency, "efficiency")   # None: calibrated profiles
    # The compiled sheets belong to the key: a sheet edited in place compiles anew, and so is its grid.
    sheets = (_replica_function(), _load_sheet().sheet.compiled(_load_sheet().REPLICA_COSTS))
    key = (id(wl), tuple(id(h) for h in hws), tuple(precs), tuple(tps), tuple(pps), tuple(eps), tuple(batches),
           tuple(chunks), eta, prompt_len, output_len, tuple(id(f) for f in sheets))
    cached = _GRIDS.get(key)
    if cached is not None and cached[0] is wl and all(a is b for a, b in zip(cached[1], (*hws, *sheets))):
        return list(cached[2])
    configs = _grid(wl, hws, precs, tps, pps, eps, batches, chunks, eta, prompt_len, output_len)
    if len(_GRIDS) >= 16:
        _GRIDS.clear()
    _GRIDS[key] = (wl, (*hws, *sheets), tuple(configs))
    return configs


_GRIDS: dict = {}
"""Evaluated grids by (workload, hardware, axes, shape): records are frozen and configurations
immutable, so a query that only changes the demand or the SLA reuses its grid."""


def expert_degrees(wl, ep_sizes) -> list[int]:
    """The EP degrees of a query: 1 for a dense model; for a mixture of experts ``ep_sizes``
    (default ``DEFAULT_EP``) that divide its experts."""
    if not getattr(wl, "is_moe", False):
        if ep_sizes is not None and any(_in.positive_int(e, "ep_sizes[]") > 1 for e in ep_sizes):
            raise InputError("ep_sizes", list(ep_sizes), f"needs a mixture of experts; {wl.name} is dense",
                             "leave ep_sizes out")
        return [1]
    given = DEFAULT_EP if ep_sizes is None else ep_sizes
    out = sorted({e for e in (_in.positive_int(x, "ep_sizes[]") for x in given) if wl.experts % e == 0})
    if not out:
        raise InputError("ep_sizes", list(given), f"has no degree dividing the {wl.experts} experts of {wl.name}",
                         "e.g. [1, 2, 4]")
    return out


def _grid(wl, hws, precs, tps, pps, eps, batches, chunks, eta, prompt_len, output_len) -> list[ServingConfig]:
    from mlsysim_opt.solvers.serving import serving_case
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
            # TP and PP stay inside one node; EP groups may span nodes
            splits = [(t, v, e) for t in tps for v in pps for e in eps if t * v <= node.accelerators_per_node
                      and wl.shards_over(t) and v <= wl.layers]
            if not splits:
                continue
            grid = np.array([(t, v, e, b, c) for t, v, e in splits for b in batches for c in chunks], dtype=float).T
            values = dict(_replica_values(case, wl, hw, node), tp_size=grid[0], pp_size=grid[1], ep_size=grid[2],
                          batch_size=grid[3], prefill_chunk_tokens=grid[4])
            out = f.vector(**values)
            fits = np.flatnonzero(out["tp_memory_utilization"] <= 1.0)
            configs.extend(_configs(hw.name, prec, case, grid[:, fits], prompt_len,
                                    output_len, {k: np.asarray(v)[fits] for k, v in out.items()},
                                    _load_costs({k: v[fits] if np.ndim(v) else v for k, v in values.items()})))
    return configs


REPORTED_UNITS = {"ttft_ms": ("cb_ttft", "ms"), "itl_ms": ("cb_itl", "ms"),
                  "request_latency_ms": ("tp_request_latency", "ms"), "capacity_qps": ("cb_capacity", "1/s"),
                  "memory_utilization": ("tp_memory_utilization", "dimensionless")}
"""Each reported field of a configuration: the serving_tp definition and the unit it is reported in."""


KV_SHAPE = ("kv_bytes_per_value", "layers", "kv_heads", "head_dim", "latent_kv_dim")
"""Kept with a configuration's replica costs: the KV cache a disaggregated prefill replica sends."""


def _load_costs(values: dict) -> dict[str, np.ndarray]:
    """The serving_load sheet's replica inputs (SI), the KV shape and the decode step of one
    request alone."""
    from mlsysim_opt.models import serving_load
    costs = serving_load.replica_costs(**values)
    step = serving_load.decode_step_alone(costs)
    return dict(costs, **{k: values[k] for k in KV_SHAPE}, itl_alone=step)


def _configs(hardware: str, precision: str, case, grid, prompt_len: int, output_len: int,
             out: dict, load: dict) -> list[ServingConfig]:
    """Configurations from the serving_tp sheet's outputs (arrays), each field in its reported unit;
    ``case`` (a solvers.serving.ServingCase) gives the compute and KV formats, ``grid`` the TP, PP,
    EP, batch and chunk of each, ``load`` its serving_load replica inputs."""
    sheet = _tp_sheet()
    fields = {f: np.asarray(out[name], dtype=float) * unit_factor(sheet.unit(name), unit)
              for f, (name, unit) in REPORTED_UNITS.items()}
    alone = np.atleast_1d(np.asarray(load.pop("itl_alone"), dtype=float)) * unit_factor("s", "ms")
    names = list(load)
    costs = zip(*(np.broadcast_to(np.asarray(load[k], dtype=float), alone.shape).tolist() for k in names))
    rows = zip(*(np.broadcast_to(v, alone.shape).tolist() for v in fields.values()))
    tp, pp, ep, batch, chunk = (np.atleast_1d(row).astype(int).tolist() for row in grid)
    # Every field is computed here from validated inputs: construct without re-validating each one
    # (thousands per query).
    return [ServingConfig.trusted(dict(
        hardware=hardware, precision=precision, compute_precision=case.choice.compute_precision,
        kv_precision=case.kv_precision, tp=tp[i], pp=pp[i], ep=ep[i],
        batch_size=batch[i], chunk_tokens=chunk[i], prompt_tokens=int(prompt_len), output_tokens=int(output_len),
        itl_alone_ms=step, annual_cost_usd=0.0, power_kw=0.0, annual_carbon_t=0.0, goodput_qps=None,
        percentile=None, replica_costs=dict(zip(names, cost)), **dict(zip(fields, row))))
        for i, (step, cost, row) in enumerate(zip(alone.tolist(), costs, rows))]


def _replica_values(case, wl, hw: HardwareNode, node) -> dict:
    """The serving_tp sheet's inputs for one (model, hardware, precision) case; tp_size, pp_size and
    batch_size are filled in by the caller (numbers or arrays)."""
    from mlsysim_opt.solvers.distributed import replica_link_values
    return dict(case.values, **replica_link_values(node), hidden_size=float(wl.hidden_size),
                activation_bytes_per_value=PRECISION_BYTES[case.choice.compute_precision],
                memory_capacity=hw.memory.capacity.m_as("B"))


def _replica_inputs(model, hardware, *, precision: str, tp: int, pp: int, batch_size: int, prompt_len: int,
                    output_len: int, efficiency: float | None, chunk_tokens: int = 512, ep: int = 1,
                    bandwidth_efficiency: float | None = None):
    from mlsysim_opt.solvers.serving import language_model, serving_case
    wl, hw = language_model(model), _in.hardware(hardware)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PrecisionFallbackWarning)
        case = serving_case(wl, hw, prompt_len + output_len, batch_size, precision, efficiency, None, prompt_len,
                            output_len, bandwidth_efficiency=bandwidth_efficiency, prefill_chunk_tokens=chunk_tokens)
    values = dict(_replica_values(case, wl, hw, default_node_for(hw)), tp_size=tp, pp_size=pp,
                  ep_size=expert_degrees(wl, [ep])[0], batch_size=batch_size)
    return hw, case, values


def evaluate_replica(model, hardware, *, precision: str, tp: int, pp: int, batch_size: int, prompt_len: int,
                     output_len: int, efficiency: float | None = None,
                     bandwidth_efficiency: float | None = None) -> dict:
    """One replica configuration through the serving_tp sheet (scalar): cb_ttft, cb_itl (s),
    cb_capacity (requests/s, before headroom), tp_memory_utilization, tp_request_latency. Factors
    left at None come from the hardware's calibrated serving profile."""
    _, _, values = _replica_inputs(model, hardware, precision=precision, tp=tp, pp=pp, batch_size=batch_size,
                                   prompt_len=prompt_len, output_len=output_len, efficiency=efficiency,
                                   bandwidth_efficiency=bandwidth_efficiency)
    return _replica_function()(**values)


def serving_config(model, hardware, *, precision: str, tp: int, pp: int, batch_size: int, prompt_len: int,
                   output_len: int, efficiency: float | None = None, chunk_tokens: int = 512,
                   ep: int = 1) -> ServingConfig:
    """One configuration evaluated forward, unpriced, and kept even when it does not fit in memory
    (see ``memory_utilization``)."""
    hw, case, values = _replica_inputs(model, hardware, precision=precision, tp=tp, pp=pp, batch_size=batch_size,
                                       prompt_len=prompt_len, output_len=output_len, efficiency=efficiency,
                                       chunk_tokens=chunk_tokens, ep=ep)
    out = _replica_function()(**values)
    [config] = _configs(hw.name, normalize_precision(precision, "precision"), case,
                        [[tp], [pp], [values["ep_size"]], [batch_size], [chunk_tokens]], prompt_len, output_len,
                        {k: [v] for k, v in out.items()}, _load_costs(values))
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
    carbon = SustainabilityModel().solve(fleet, duration_days=PLANNING_DAYS, datacenter=datacenter,
                                        utilization=utilization)
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
    return [c.replaced(annual_cost_usd=a, power_kw=b, annual_carbon_t=d)
            for c, a, b, d in zip(configs, cost.tolist(), power.tolist(), carbon.tolist())]


def serving_configs(model, *, prompt_len: int, output_len: int, hardware: Iterable | None = None,
                    precisions: Sequence[str] = DEFAULT_PRECISIONS, tp_sizes: Sequence[int] = DEFAULT_TP,
                    batch_sizes: Sequence[int] = DEFAULT_BATCHES, pp_sizes: Sequence[int] = (1,),
                    chunk_sizes: Sequence[int] = DEFAULT_CHUNKS, efficiency: float | None = None, datacenter=None,
                    utilization: float = DEFAULT_UTILIZATION,
                    infrastructure_multiplier: float = 1.0, ep_sizes: Sequence[int] | None = None) -> list[ServingConfig]:
    """Every memory-feasible (hardware, precision, TP, PP, EP, batch, chunk) point with its per-replica
    metrics, priced at ``datacenter`` (a replica's TP x PP accelerators stay within one node; its EP
    groups may span nodes)."""
    perf = performance_configs(model, prompt_len=prompt_len, output_len=output_len, hardware=hardware,
                               precisions=precisions, tp_sizes=tp_sizes, batch_sizes=batch_sizes,
                               pp_sizes=pp_sizes, chunk_sizes=chunk_sizes, efficiency=efficiency, ep_sizes=ep_sizes)
    return price_configs(perf, datacenter=datacenter, utilization=utilization,
                         infrastructure_multiplier=infrastructure_multiplier, hardware=hardware)


# ----------------------------------------------------------------------------------------------
# as columns of a formulation


def meets(c: ServingConfig, limits: dict[str, float]) -> bool:
    """Whether ``c`` meets every latency limit (``{"ttft": ms, ...}``) at some load: alone, and at
    its goodput when an SLA has been applied."""
    return all(c.latency_ms(k) <= v for k, v in limits.items()) and (c.goodput_qps is None or c.goodput_qps > 0)


OBJECTIVE_METRICS = {"tco": "cost_per_replica", "power": "power_per_replica", "carbon": "carbon_per_replica"}


def serving_columns(configs: Sequence[ServingConfig], *, headroom: float) -> Columns:
    """The fleet sheet's per-replica symbols of each configuration (SI; its planned load is the
    goodput at the applied SLA, else full load), plus its zero-load latencies (ms)."""
    return Columns(
        configs, headroom=headroom,
        replica_capacity=in_symbol_unit("replica_capacity", [c.planned_qps for c in configs], "1/s"),
        accelerators_per_replica=[c.accelerators for c in configs],
        cost_per_replica=in_symbol_unit("cost_per_replica", [c.annual_cost_usd for c in configs], "USD"),
        power_per_replica=in_symbol_unit("power_per_replica", [c.power_kw for c in configs], "kW"),
        carbon_per_replica=in_symbol_unit("carbon_per_replica", [c.annual_carbon_t for c in configs], "tCO2e"),
        **{f"latency_{k}": [c.latency_ms(k) for c in configs] for k in LATENCY_OUTPUTS})


def prune(columns: Columns, *, objectives: Iterable[str], limits: Iterable[str]) -> Columns:
    """Drop the configurations another beats in capacity, in every latency that is limited and in
    the per-replica value of every metric in ``objectives`` (objective and capped metrics alike).
    Exact: see :func:`mlsysim_opt.formulations.builder.undominated_columns`."""
    return columns.take(undominated(columns, objectives=objectives, limits=limits))


def undominated(columns: Columns, *, objectives: Iterable[str], limits: Iterable[str]) -> list[int]:
    """The indices :func:`prune` keeps."""
    if not len(columns):
        return []
    metrics = {"capacity": (columns.values["replica_capacity"], -1)}
    for name in limits:
        metrics[f"latency_{name}"] = (columns.values[f"latency_{name}"], +1)
    for name in objectives:
        key = OBJECTIVE_METRICS[name]
        metrics[key] = (columns.values[key], +1)
    return list(undominated_columns(metrics))


def latency_limits(**limits) -> dict[str, float]:
    """Latency limits in ms from quantities, strings ("100 ms") or plain numbers, which are seconds
    (SI, as everywhere in the API: ``ttft=0.1`` is 100 ms); None means no limit."""
    from mlsysim_opt.units import as_quantity
    out = {}
    for name, value in limits.items():
        if value is None:
            continue
        try:
            ms = as_quantity(plain_seconds(value), "ms", name, example="100 ms").m_as("ms")
        except InputError:
            raise
        except Exception:
            raise InputError(name, value, "must be a latency such as '100 ms' or a number of seconds") from None
        if not ms > 0:
            raise InputError(name, value, "must be a positive latency", "e.g. '100 ms' or 0.1 (seconds)")
        out[name] = number(ms, name, fix="a positive latency such as '100 ms' or 0.1 (seconds)")
    return out


def plain_seconds(value):
    """A plain number (or a string holding only one, as the command line gives) as a quantity in
    seconds; anything else unchanged, for the unit check to read."""
    from mlsysim_opt.units import Q_
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return value
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        return Q_(float(value), "s")
    return value
