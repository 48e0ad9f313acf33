"""The inputs of a global fleet plan, typed and checked: request classes, hourly demand per user
region, datacenter sites with their grids, prices and limits, and the objective.

A site given by name is resolved from the shipped planning data (:mod:`mlsysim_opt.planning.data`):
its metro, PUE, hourly carbon profile, cloud offers and interruption bands. A :class:`SiteSpec`
states all of it directly, for a facility or a price list the registry does not hold.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Optional, Union

import numpy as np
import yaml
from pydantic import ConfigDict, Field, field_validator, model_validator

from mlsysim_opt import inputs as _in
from mlsysim_opt.errors import InputError, renamed_owner
from mlsysim_opt.formulations.goodput import DEFAULT_PERCENTILE, percentile_level
from mlsysim_opt.formulations.serving_grid import DEFAULT_BATCHES, DEFAULT_CHUNKS, DEFAULT_TP
from mlsysim_opt.planning.demand import Demand
from mlsysim_opt.types import StrictModel, TransformerWorkload

Kind = Literal["owned", "reserved_1y", "reserved_3y", "on_demand", "spot"]
KINDS: tuple[str, ...] = ("owned", "reserved_1y", "reserved_3y", "on_demand", "spot")
FIXED_KINDS = ("owned", "reserved_1y", "reserved_3y")
"""Bought or committed for the whole horizon: one count per site and configuration."""
HOURLY_KINDS = ("on_demand", "spot")
"""Rented hour by hour: one count per site, configuration and hour."""
RENTED_KINDS = ("reserved_1y", "reserved_3y", "on_demand", "spot")

Price = Annotated[float, Field(ge=0, lt=1e9, allow_inf_nan=False)]
Positive = Annotated[float, Field(gt=0, lt=1e15, allow_inf_nan=False)]
DEFAULT_TIERS_MS = (5.0, 20.0, 50.0, 100.0, 150.0, 200.0, 300.0)
"""Network round-trip tiers: a user-site pair is planned at the smallest tier at or above its RTT,
so the serving TTFT budget is the class's limit minus that tier (conservative by at most a tier)."""


class RequestClass(StrictModel):
    """A kind of request: its lengths and the latency limits (TTFT includes the network round trip)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = "default"
    prompt_len: int = Field(default=512, ge=1, le=10_000_000)
    output_len: int = Field(default=256, ge=1, le=10_000_000)
    ttft_ms: Optional[Positive] = None
    itl_ms: Optional[Positive] = None


class Offer(StrictModel):
    """Rental prices of one accelerator at one site, per accelerator-hour, and its spot
    interruption band (monthly share of instances interrupted; the upper edge is planned for)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    accelerator: str
    usd_per_accelerator_hour: dict[Literal["reserved_1y", "reserved_3y", "on_demand", "spot"], Price]
    spot_interruption: Optional[float] = Field(default=None, ge=0, lt=1)
    source: Optional[str] = None


class SiteSpec(StrictModel):
    """A datacenter region of the plan, every number stated. ``carbon_g_per_kwh`` holds the hourly
    grid intensity from hour 0 of the plan (UTC), tiled when shorter than the horizon."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    metro: str
    pue: float = Field(ge=1.0, le=5.0, allow_inf_nan=False)
    carbon_g_per_kwh: tuple[Annotated[float, Field(ge=0, lt=1e5, allow_inf_nan=False)], ...]
    grid: Optional[str] = None
    """A registry grid: the electricity price and water figures owned capacity is costed with."""
    offers: list[Offer] = Field(default_factory=list)
    owned: list[str] = Field(default_factory=list)
    """Accelerators that may be bought and run here (priced by the economics sheet at ``grid``)."""
    max_accelerators: Optional[int] = Field(default=None, ge=0, le=1_000_000_000)
    max_power_kw: Optional[Positive] = None
    """Facility power limit (IT power x PUE)."""
    max_spot_accelerators: Optional[int] = Field(default=None, ge=0, le=1_000_000_000)
    """Spot accelerators the provider can be expected to grant here in any hour (spot capacity is
    whatever is idle; None: no limit)."""
    carbon_reconstruction: bool = False
    carbon_source: Optional[str] = None

    @field_validator("carbon_g_per_kwh")
    @classmethod
    def _profile(cls, values):
        if not values:
            raise InputError("carbon_g_per_kwh", values, "must give at least one hourly intensity")
        return values

    def intensity(self, hours: int) -> np.ndarray:
        """gCO2e/kWh for each hour of a plan of ``hours``, the profile tiled."""
        profile = np.asarray(self.carbon_g_per_kwh, dtype=float)
        return np.resize(profile, hours)

    def offer(self, accelerator: str) -> Optional[Offer]:
        return next((o for o in self.offers if o.accelerator == accelerator), None)


class SiteLimit(StrictModel):
    """A shipped site by name, with the plan's own limits on it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    site: str
    max_accelerators: Optional[int] = Field(default=None, ge=0, le=1_000_000_000)
    max_power_kw: Optional[Positive] = None
    max_spot_accelerators: Optional[int] = Field(default=None, ge=0, le=1_000_000_000)
    owned: list[str] = Field(default_factory=list)
    carbon_profile: Optional[str] = None
    """Another shipped hourly carbon profile for this site (default: the site's own)."""
    carbon_csv: Optional[str] = None
    """An hourly carbon CSV (``planning.data.load_carbon_csv``'s layouts) whose first row is the
    plan's hour 0; shorter files repeat."""


class PlanProblem(StrictModel):
    """A global fleet plan: serve ``demand`` from ``sites`` hour by hour at least cost, carbon, or
    cost plus a carbon price, within the latency limits of each request class."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = "plan"
    model: Union[str, TransformerWorkload] = "Llama3_8B"
    classes: list[RequestClass] = Field(default_factory=lambda: [RequestClass(ttft_ms=500.0)])
    demand: Demand
    sites: list[Union[str, SiteLimit, SiteSpec]]
    hardware: Optional[list[str]] = None
    """Accelerators to consider (None: every one offered or ownable at some site)."""
    precisions: list[str] = Field(default_factory=lambda: ["fp16", "fp8", "int8"])
    tp_sizes: list[int] = Field(default_factory=lambda: list(DEFAULT_TP))
    batch_sizes: list[int] = Field(default_factory=lambda: list(DEFAULT_BATCHES))
    chunk_sizes: list[int] = Field(default_factory=lambda: list(DEFAULT_CHUNKS))
    percentile: Union[str, float] = DEFAULT_PERCENTILE
    efficiency: float = Field(default=0.5, gt=0, le=1)
    headroom: Optional[float] = Field(default=None, gt=0, le=1)
    kinds: list[Kind] = Field(default_factory=lambda: list(KINDS))
    spot_confidence: float = Field(default=0.999, ge=0, lt=1)
    """Probability with which the spot replicas a plan counts on are there in each hour: 0.999 by
    default, capacity short in at most one hour in a thousand (three nines, a common service target)."""
    objective: Literal["cost", "carbon", "cost+carbon"] = "cost"
    carbon_price_usd_per_t: float = Field(default=0.0, ge=0, lt=1e7, allow_inf_nan=False)
    carbon_cap_t: Optional[float] = Field(default=None, ge=0, lt=1e12, allow_inf_nan=False)
    budget_usd: Optional[float] = Field(default=None, ge=0, lt=1e15, allow_inf_nan=False)
    rtt_ms: dict[str, Annotated[float, Field(ge=0, lt=1e5, allow_inf_nan=False)]] = Field(default_factory=dict)
    """Round trips that override the shipped measurements: ``{"user~site": ms}`` (metros or sites)."""
    rtt_tiers_ms: tuple[float, ...] = DEFAULT_TIERS_MS

    @field_validator("percentile")
    @classmethod
    def _percentile(cls, value):
        percentile_level(value)
        return value

    @field_validator("classes")
    @classmethod
    def _classes(cls, classes):
        names = [c.name for c in classes]
        if not classes or len(set(names)) != len(names):
            raise InputError("classes", names, "must list at least one request class, each name once")
        return classes

    @field_validator("kinds")
    @classmethod
    def _kinds(cls, kinds):
        if not kinds or len(set(kinds)) != len(kinds):
            raise InputError("kinds", kinds, "must list at least one capacity kind, each once", f"from {KINDS}")
        return kinds

    @field_validator("rtt_tiers_ms")
    @classmethod
    def _tiers(cls, tiers):
        if not tiers or any(b <= a for a, b in zip(tiers, tiers[1:])) or tiers[0] < 0:
            raise InputError("rtt_tiers_ms", tiers, "must be increasing round trips >= 0 ms")
        return tiers

    @model_validator(mode="after")
    def _demand_classes(self):
        known = {c.name for c in self.classes}
        unknown = [k for k in self.demand.classes if k not in known]
        if unknown:
            raise InputError("demand", unknown[0], "names a request class that is not in classes",
                             f"classes are {sorted(known)}")
        names = [s if isinstance(s, str) else (s.site if isinstance(s, SiteLimit) else s.name) for s in self.sites]
        if not names or len(set(names)) != len(names):
            raise InputError("sites", names, "must list at least one site, each once")
        _check_shipped(self.sites)
        return self

    @property
    def hours(self) -> int:
        return self.demand.hours

    @property
    def model_name(self) -> str:
        return self.model if isinstance(self.model, str) else self.model.name

    def workload(self) -> TransformerWorkload:
        return _in.workload(self.model, "model")

    def with_(self, **changes) -> "PlanProblem":
        return type(self)(**{**dict(self), **changes})

    @classmethod
    def from_yaml(cls, path: str | Path) -> "PlanProblem":
        """A plan from YAML: the fields above; ``demand`` either a mapping of series, ``{csv: file}``
        (relative to the YAML file) or ``{diurnal: {peaks: {...}, days: 7}}``."""
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise InputError(str(path), "not YAML", f"could not be read: {exc}") from None
        if not isinstance(data, dict):
            raise InputError(str(path), type(data).__name__, "must hold a mapping of plan fields")
        demand = data.get("demand")
        if isinstance(demand, dict) and "csv" in demand:
            data["demand"] = Demand.from_csv(path.parent / demand["csv"],
                                             **{k: v for k, v in demand.items() if k != "csv"})
        elif isinstance(demand, dict) and "diurnal" in demand:
            data["demand"] = Demand.diurnal(**demand["diurnal"])
        elif isinstance(demand, dict) and "series" not in demand:
            data["demand"] = {"series": demand}
        try:
            return cls(**data)
        except InputError as exc:
            raise renamed_owner(exc, cls.__name__, path.name) from None


def _check_shipped(sites) -> None:
    """Sites given by name must be shipped ones (a SiteSpec states a site of its own): the error names
    the entry (``sites[1]``) before anything is solved."""
    import difflib

    from mlsysim_opt.planning import data
    known = data.sites()
    for i, site in enumerate(sites):
        name = site if isinstance(site, str) else site.site if isinstance(site, SiteLimit) else None
        if name is not None and name not in known:
            close = difflib.get_close_matches(name, list(known), n=3, cutoff=0.5)
            raise InputError(f"sites[{i}]" + ("" if isinstance(site, str) else ".site"), name,
                             "is not a shipped site", (f"did you mean {', '.join(close)}? " if close else "")
                             + "Or give the site's own numbers as a SiteSpec {name, metro, pue, carbon_g_per_kwh, "
                             "offers}")
