"""``SustainabilityModel`` (Wall 18): energy, carbon and water of a fleet over a run.

Also the lowering shared by the fleet solvers (economics, reliability): which site a fleet runs
at, how busy it is, and the SI floats of its power model. The equations are the
``sustainability`` sheet (models/sustainability.py)."""
from __future__ import annotations

import numbers
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Optional

import pint

from .. import inputs as _in
from ..errors import InputError
from ..results import Result
from ..types import Datacenter, Fleet, GridProfile, HardwareNode, Node
from ..units import as_quantity, sheet_quantity, ureg
from .quantities import input_quantity

DEFAULT_UTILIZATION = 1.0
"""Busy fraction of the binding engine when ``utilization`` is not given: a training step keeps the
tensor cores or HBM busy for nearly all of the step, so its accelerators draw about TDP even at
40 % MFU (MFU counts useful FLOP, not busy time). Pass ``utilization=`` for serving below full
load (0 is an idle replica)."""

IDLE_OVER_TDP = 80.0 / 700.0
"""Idle over TDP for accelerators with no idle power on record: the H100/H200 ratio (80 W measured
idle, 700 W TDP; registry ``gpu-idle-power-measured-2026``)."""

LOAD_OVER_RATING = 8.4 / 10.2
"""Node power under training over the node's rated power: the DGX H100 measurement (8.4 kW against
the 10.2 kW rating, Latif et al. 2024). Sets the host power of rated nodes with no host power on record."""

HOST_OVER_ACCELERATORS = 2.8 / 5.6
"""Host power under load over the accelerators' summed TDP for nodes with neither a host power nor a
rating on record: the DGX H100 ratio (8.4 kW measured minus 8 x 700 W, over 8 x 700 W)."""

HOST_IDLE_FRACTION = _in.IDLE_POWER_FRACTION
"""Host idle power over host power under load: 0.3, the project's energy-proportionality
convention (Barroso & Holzle 2007). No published DGX idle split was found."""

DEFAULT_SERVICE_LIFE_YEARS = 4.0
"""Years an accelerator serves before retirement, over which its manufacturing carbon is spread:
the middle of the 3-5 year depreciation schedules the tutorial deck quotes."""

DEFAULT_GRID = "US_Avg"
"""Grid used when neither the call nor the fleet names a site (the registry's US average)."""

SECONDS_PER_DAY = float(ureg.Quantity(1, "day").m_as("s"))
SECONDS_PER_YEAR = float(ureg.Quantity(1, "year").m_as("s"))  # 365.25 days

SUSTAINABILITY_OUTPUTS = ("node_power", "fleet_power", "it_energy", "facility_energy", "operational_carbon",
                          "water_usage", "embodied_carbon", "total_carbon")


@lru_cache(maxsize=None)
def sustainability_function():
    from ..models import sustainability
    return sustainability.sheet.compiled(SUSTAINABILITY_OUTPUTS)


# ------------------------------------------------------------------------------------------------
# Lowering shared by the fleet solvers


@dataclass(frozen=True)
class Site:
    """Where a fleet runs, lowered to SI floats: carbon in gCO2e/J, water in L/J, price in USD/J."""

    name: str
    grid: GridProfile
    pue: float
    carbon_intensity: float
    wue: float
    electricity_price: Optional[float]
    notes: tuple[str, ...] = field(default_factory=tuple)


def as_fleet(value: Any, field_name: str = "fleet") -> Fleet:
    """A Fleet record, or the registry name of a cluster."""
    if isinstance(value, Fleet):
        return value
    if isinstance(value, str):
        from ..catalog import Clusters
        record = Clusters[value]
        if isinstance(record, Fleet):
            return record
    raise InputError(field_name, value, "must be a Fleet (e.g. Systems.Clusters.Research_256) or a cluster name",
                     "build one with Fleet(name=..., node=Systems.Nodes.DGX_H100, count=32)")


def duration_seconds(value: Any, field_name: str = "duration_days") -> float:
    """A run length: a number of days, or a time quantity ("720 hour")."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        seconds = float(value) * SECONDS_PER_DAY
    else:
        seconds = as_quantity(value, "s", field_name, example="30 day").m_as("s")
    if not seconds > 0:
        raise InputError(field_name, value, "must be a positive length of time", "e.g. duration_days=30")
    return seconds


def _site_record(value: Any, field_name: str):
    if isinstance(value, (Datacenter, GridProfile)):
        return value
    if isinstance(value, str):
        from ..catalog import Datacenters, Grids
        found = Datacenters.get(value) or Grids.get(value)
        if found is not None:
            return found
        from ..errors import UnknownNameError
        raise UnknownNameError("grid or datacenter", value, [*Grids.names(), *Datacenters.names()])
    raise InputError(field_name, value, "must be a Datacenter or a GridProfile (e.g. Infra.Grids.Quebec) or its name")


def resolve_site(fl: Fleet, datacenter: Any = None, field_name: str = "datacenter") -> Site:
    """The site of a run: the ``datacenter`` argument, else the fleet's datacenter or region, else
    the registry's US average grid (said in the notes)."""
    notes: list[str] = []
    if datacenter is not None:
        record = _site_record(datacenter, field_name)
    elif fl.datacenter is not None:
        record = fl.datacenter
    elif fl.region is not None:
        record = fl.region
    else:
        from ..catalog import Grids
        record = Grids[DEFAULT_GRID]
        default = _lowered_site(record)
        intensity = input_quantity(default.carbon_intensity, "carbon_intensity", "gCO2e/kWh")
        notes.append(f"no site given (datacenter=, fleet.datacenter or fleet.region): assumed the "
                     f"{record.name} grid ({intensity.m:g} gCO2e/kWh, PUE {default.pue:g})")
    site = _lowered_site(record)
    return Site(**{**site.__dict__, "notes": tuple(notes)}) if notes else site


_SITE_CACHE: dict[int, tuple[Any, Site]] = {}


def _lowered_site(record) -> Site:
    """SI floats of a (frozen) grid or datacenter record, converted once per record."""
    entry = _SITE_CACHE.get(id(record))
    if entry is None or entry[0] is not record:
        if isinstance(record, Datacenter):
            grid, pue, wue, price = record.grid, record.effective_pue, record.effective_wue, record.effective_price
        else:
            grid, pue, wue, price = record, record.pue, record.wue, record.electricity_price
        site = Site(name=record.name, grid=grid, pue=float(pue),
                    carbon_intensity=float(grid.carbon_intensity.m_as("gCO2e/J")), wue=float(wue.m_as("L/J")),
                    electricity_price=None if price is None else float(price.m_as("USD/J")))
        if len(_SITE_CACHE) > 1024:
            _SITE_CACHE.clear()
        entry = (record, site)
        _SITE_CACHE[id(record)] = entry
    return entry[1]


def resolve_utilization(mfu: Any, utilization: Any, notes: list[str]) -> float:
    """Busy fraction of the binding engine: ``utilization`` if given, else the training default.

    ``mfu`` is still accepted (and checked) but no longer sets the power: MFU measures useful FLOP,
    not how long the silicon is busy, so a 40 % MFU training run draws near TDP."""
    if utilization is not None:
        return _in.fraction(utilization, "utilization", allow_zero=True)
    if mfu is not None:
        value = _in.fraction(mfu, "mfu", allow_zero=True)
        notes.append(f"mfu={value:g} does not set the power (MFU counts useful FLOP, not busy time): busy fraction "
                     f"{DEFAULT_UTILIZATION:g} assumed, as in training; pass utilization= for a lighter load")
    else:
        notes.append(f"utilization not given: busy fraction {DEFAULT_UTILIZATION:g} assumed (training keeps the "
                     "binding engine busy)")
    return DEFAULT_UTILIZATION


def accelerator_tdp_watts(node: Node) -> float:
    """Board power of the node's accelerator; from the node's power when the accelerator has none."""
    if node.accelerator.tdp is not None:
        return float(node.accelerator.tdp.m_as("W"))
    if node.node_power is not None:
        from ..types import NODE_POWER_OVER_ACCELERATORS
        return float(node.node_power.m_as("W")) / node.accelerators_per_node / NODE_POWER_OVER_ACCELERATORS
    raise InputError(f"{node.accelerator.name}.tdp", None, "is unknown and the node has no power on record",
                     "set tdp on the HardwareNode or node_power on the Node")


def accelerator_idle_watts(hw: HardwareNode, tdp_watts: float) -> float:
    """Measured idle power of ``hw``, else its TDP times the H100's idle ratio."""
    if hw.idle_power is not None:
        return min(float(hw.idle_power.m_as("W")), tdp_watts)
    return IDLE_OVER_TDP * tdp_watts


def host_load_watts(node: Node, tdp_watts: float) -> float:
    """Power of the node's host under load: on record; else what the rated node draws under load
    (LOAD_OVER_RATING) beyond its accelerators at TDP; else a share of the accelerators' TDP."""
    if node.host_load_power is not None:
        return float(node.host_load_power.m_as("W"))
    accelerators = node.accelerators_per_node * tdp_watts
    if node.node_power is not None:
        return max(LOAD_OVER_RATING * float(node.node_power.m_as("W")) - accelerators, 0.0)
    return HOST_OVER_ACCELERATORS * accelerators


def power_values(fl: Fleet, utilization: float) -> dict[str, float]:
    """SI floats of the fleet's power model: accelerators and host, each between idle and load."""
    node = fl.node
    tdp = accelerator_tdp_watts(node)
    host = host_load_watts(node, tdp)
    return {
        "tdp": tdp,
        "accelerator_idle_power": accelerator_idle_watts(node.accelerator, tdp),
        "accelerators_in_node": float(node.accelerators_per_node),
        "host_load_power": host,
        "host_idle_power": HOST_IDLE_FRACTION * host,
        "utilization": utilization,
        "node_count": float(fl.count),
        "accelerator_count": float(fl.total_accelerators),
    }


def power_notes(fl: Fleet) -> list[str]:
    node, notes = fl.node, []
    if node.accelerator.idle_power is None:
        notes.append(f"{node.accelerator.name} has no idle power on record: estimated as TDP x {IDLE_OVER_TDP:.3f} "
                     "(the H100's measured 80 W over 700 W)")
    if node.host_load_power is None and node.node_power is not None:
        notes.append(f"{node.name} has no host power on record: the node is taken to draw {LOAD_OVER_RATING:.2f} "
                     "of its rated power under load (the DGX H100's measured 8.4 of 10.2 kW)")
    elif node.host_load_power is None:
        notes.append(f"{node.name} has no host power on record: estimated as {HOST_OVER_ACCELERATORS:.2f} x the "
                     "accelerators' TDP (the DGX H100's measured ratio)")
    return notes


# ------------------------------------------------------------------------------------------------
# Result and solver


class SustainabilityResult(Result):
    """Energy, carbon and water of a fleet over a run. Fields ending in a unit name are plain
    numbers in that unit (as the tutorials print them); the others are quantities."""

    fleet: str
    region_name: str
    duration: pint.Quantity
    utilization: float
    pue: float
    carbon_intensity: pint.Quantity
    node_power: pint.Quantity
    fleet_power: pint.Quantity
    it_energy_kwh: float
    total_energy_kwh: float
    carbon_footprint_kg: float
    water_usage_liters: float
    embodied_carbon_kg: float
    total_carbon_kg: float
    it_energy: pint.Quantity
    total_energy: pint.Quantity
    carbon_footprint: pint.Quantity
    overhead_energy_fraction: float
    notes: list[str]


class SustainabilityModel:
    """Wall 18: energy, carbon and water of a fleet over a run."""

    walls = (18,)

    def solve(self, fleet: Any, duration_days: Any, datacenter: Any = None, mfu: Optional[float] = None,
              include_embodied: bool = True, utilization: Optional[float] = None,
              service_life_years: float = DEFAULT_SERVICE_LIFE_YEARS) -> SustainabilityResult:
        """Energy of ``fleet`` running ``duration_days`` at ``datacenter`` (a Datacenter or a grid).

        Power is the whole node's: each accelerator at ``P_idle + (TDP - P_idle) * b`` plus the host
        (CPUs, NICs, switches, fans) between its idle and load power, with b = ``utilization``, the
        busy fraction of the binding engine (default 1.0, training). ``mfu`` is accepted but does
        not set the power: MFU is not busy time. Water uses WUE on IT energy. Embodied
        carbon is the run's share of the accelerators' manufacturing carbon over
        ``service_life_years``; the host, network and building are not included."""
        fl = as_fleet(fleet)
        seconds = duration_seconds(duration_days)
        notes: list[str] = []
        u = resolve_utilization(mfu, utilization, notes)
        site = resolve_site(fl, datacenter)
        notes = [*site.notes, *notes, *power_notes(fl)]
        life = _positive(service_life_years, "service_life_years") * SECONDS_PER_YEAR
        embodied = 0.0
        if include_embodied:
            if fl.accelerator.embodied_carbon is None:
                notes.append(f"{fl.accelerator.name} has no embodied carbon on record: embodied carbon counted as 0")
            else:
                embodied = float(fl.accelerator.embodied_carbon.m_as("gCO2e"))
        values = power_values(fl, u)
        values.update(duration=seconds, pue=site.pue, carbon_intensity=site.carbon_intensity, wue=site.wue,
                      embodied_carbon_per_accelerator=embodied, service_life=life)
        out = sustainability_function()(**values)
        return _result(fl, site, seconds, u, out, notes)


def _positive(value: Any, field_name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value > 0:
        raise InputError(field_name, value, "must be a positive number")
    return float(value)


def _result(fl: Fleet, site: Site, seconds: float, u: float, out: dict, notes: list[str]) -> SustainabilityResult:
    from ..models.sustainability import sheet

    def q(name: str, unit: str) -> pint.Quantity:
        return sheet_quantity(sheet, name, out[name], unit)
    return SustainabilityResult(
        fleet=fl.name, region_name=site.name, duration=input_quantity(seconds, "duration", "day"), utilization=u,
        pue=site.pue, carbon_intensity=input_quantity(site.carbon_intensity, "carbon_intensity", "gCO2e/kWh"),
        node_power=q("node_power", "kW"), fleet_power=q("fleet_power", "kW"),
        it_energy_kwh=q("it_energy", "kWh").m, total_energy_kwh=q("facility_energy", "kWh").m,
        carbon_footprint_kg=q("operational_carbon", "kgCO2e").m, water_usage_liters=q("water_usage", "L").m,
        embodied_carbon_kg=q("embodied_carbon", "kgCO2e").m, total_carbon_kg=q("total_carbon", "kgCO2e").m,
        it_energy=q("it_energy", "MWh"), total_energy=q("facility_energy", "MWh"),
        carbon_footprint=q("operational_carbon", "tCO2e"),
        overhead_energy_fraction=1.0 - 1.0 / site.pue, notes=notes,
    )
