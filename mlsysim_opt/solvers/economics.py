"""``EconomicsModel`` (Wall 17): total cost of ownership of a fleet over a run.

The equations are the ``economics`` sheet (models/economics.py), which takes its facility energy
from the sustainability sheet: one power model for both walls."""
from __future__ import annotations

import numbers
from functools import lru_cache
from typing import Any, Optional

import pint

from ..errors import InputError
from ..results import Result
from ..types import Fleet
from ..units import as_quantity, sheet_quantity
from .quantities import input_quantity
from .sustainability import (SECONDS_PER_YEAR, as_fleet, duration_seconds, power_notes, power_values, resolve_site,
                             resolve_utilization)

DEFAULT_MAINTENANCE_RATE = 0.05
"""Yearly maintenance as a fraction of the hardware price (the reference's and Barroso et al.'s
5 %/year convention)."""

ECONOMICS_OUTPUTS = ("capex_period", "opex_energy", "opex_maintenance", "tco")
ENERGY_OUTPUTS = ("fleet_power", "it_energy", "facility_energy", "operational_carbon")


@lru_cache(maxsize=None)
def economics_function(with_tokens: bool):
    from ..models import economics, sustainability
    names = ECONOMICS_OUTPUTS + (("cost_per_token",) if with_tokens else ())
    exprs = {n: economics.sheet[n] for n in names}
    exprs.update({n: sustainability.sheet[n] for n in ENERGY_OUTPUTS})
    from ..compile.numeric import compile_expressions
    return compile_expressions(exprs)


class EconomicsResult(Result):
    """TCO of a fleet over a run. Fields ending in a unit name are plain numbers in that unit (as
    the tutorials print them); the others are quantities."""

    fleet: str
    region_name: str
    duration: pint.Quantity
    utilization: float
    hardware_cost_usd: float
    capex_basis: str
    capex_usd: float
    opex_energy_usd: float
    opex_maintenance_usd: float
    total_opex_usd: float
    tco_usd: float
    cost_per_million_tokens: Optional[float] = None
    electricity_price: pint.Quantity
    it_energy_kwh: float
    total_energy_kwh: float
    carbon_footprint_kg: float
    pue: float
    fleet_power: pint.Quantity
    tco: pint.Quantity
    notes: list[str]


class EconomicsModel:
    """Wall 17: capital, energy and maintenance cost of a fleet over a run."""

    walls = (17,)

    def solve(self, fleet: Any, duration_days: Any, mfu: Optional[float] = None, datacenter: Any = None,
              infrastructure_multiplier: float = 1.0, amortization_years: float = 3.0,
              electricity_price: Any = None, throughput: Any = None,
              maintenance_rate: float = DEFAULT_MAINTENANCE_RATE, utilization: Optional[float] = None,
              node_price: Any = None, grid: Any = None, price_basis: str = "node") -> EconomicsResult:
        """TCO of ``fleet`` over ``duration_days``.

        * capex: the period's share (``duration / amortization_years``) of the hardware price times
          ``infrastructure_multiplier`` (deck: 2.0-2.5 for a whole datacenter). The hardware price is
          the node price times the node count; without a node price, the accelerators' price; with
          neither, an error (pass ``node_price``). ``price_basis="accelerator"`` counts the
          accelerators' price only for every fleet (the deck's "GPU hardware" line), which puts
          vendors with and without a server price on the same footing.
        * energy: whole-node power ``P_idle + (P_max - P_idle) * u`` (u = ``utilization``, else
          ``mfu``, else 0.4) times PUE, at the site's price (``electricity_price`` overrides).
        * maintenance: ``maintenance_rate`` per year of the hardware price only.
        * ``cost_per_million_tokens`` when ``throughput`` (fleet tokens/s) is given.
        """
        fl = as_fleet(fleet)
        seconds = duration_seconds(duration_days)
        notes: list[str] = []
        u = resolve_utilization(mfu, utilization, notes)
        site = resolve_site(fl, datacenter if datacenter is not None else grid)
        notes = [*site.notes, *notes, *power_notes(fl)]
        k = _number(infrastructure_multiplier, "infrastructure_multiplier", minimum=1.0,
                    fix="it multiplies the hardware price into a whole-facility cost: 1.0 = hardware only, "
                        "2.0-2.5 = full datacenter")
        years = _number(amortization_years, "amortization_years", minimum=1e-9, strict=True)
        rate = _number(maintenance_rate, "maintenance_rate", minimum=0.0, fix="a yearly fraction, e.g. 0.05")
        price = _price(electricity_price, site, notes)
        hw_cost, basis = hardware_cost(fl, node_price, price_basis)
        values = power_values(fl, u)
        values.update(duration=seconds, pue=site.pue, carbon_intensity=site.carbon_intensity,
                      hardware_cost=hw_cost, infrastructure_multiplier=k,
                      amortization_period=years * SECONDS_PER_YEAR, maintenance_rate=rate / SECONDS_PER_YEAR,
                      electricity_price=price)
        with_tokens = throughput is not None
        if with_tokens:
            tps = as_quantity(throughput, "1/s", "throughput", example="50000 token/s").m_as("1/s")
            if not tps > 0:
                raise InputError("throughput", throughput, "must be positive (tokens per second of the whole fleet)")
            values["token_throughput"] = tps
        out = economics_function(with_tokens)(**values)
        from ..models import economics, sustainability

        def q(sheet, name: str, unit: str) -> pint.Quantity:
            return sheet_quantity(sheet, name, out[name], unit)
        usd = {name: q(economics.sheet, name, "USD").m for name in ECONOMICS_OUTPUTS}
        return EconomicsResult(
            fleet=fl.name, region_name=site.name, duration=input_quantity(seconds, "duration", "day"),
            utilization=u, hardware_cost_usd=hw_cost, capex_basis=basis,
            capex_usd=usd["capex_period"], opex_energy_usd=usd["opex_energy"],
            opex_maintenance_usd=usd["opex_maintenance"],
            total_opex_usd=usd["opex_energy"] + usd["opex_maintenance"], tco_usd=usd["tco"],
            cost_per_million_tokens=q(economics.sheet, "cost_per_token", "USD/Mtoken").m if with_tokens else None,
            electricity_price=input_quantity(price, "electricity_price", "USD/kWh"),
            it_energy_kwh=q(sustainability.sheet, "it_energy", "kWh").m,
            total_energy_kwh=q(sustainability.sheet, "facility_energy", "kWh").m,
            carbon_footprint_kg=q(sustainability.sheet, "operational_carbon", "kgCO2e").m, pue=site.pue,
            fleet_power=q(sustainability.sheet, "fleet_power", "kW"), tco=q(economics.sheet, "tco", "USD"),
            notes=notes,
        )


PRICE_BASES = ("node", "accelerator")


def hardware_cost(fl: Fleet, node_price: Any = None, price_basis: str = "node") -> tuple[float, str]:
    """Purchase price of the fleet's hardware, and what it counts. Never silently zero."""
    if price_basis not in PRICE_BASES:
        from ..errors import UnknownNameError
        raise UnknownNameError("price_basis", str(price_basis), PRICE_BASES)
    acc = fl.accelerator
    if price_basis == "accelerator":
        if acc.unit_cost is None:
            raise InputError("unit_cost", None, f"is unknown for {acc.name}, so price_basis='accelerator' has no price",
                             "set unit_cost on the HardwareNode, or use price_basis='node' with node_price=")
        each = float(acc.unit_cost.m_as("USD"))
        return each * fl.total_accelerators, f"{fl.total_accelerators} x {acc.name} at {each:,.0f} USD"
    if node_price is not None:
        each = as_quantity(node_price, "USD", "node_price", example="350000 USD").m_as("USD")
        if not each > 0:
            raise InputError("node_price", node_price, "must be a positive price of one node")
        return each * fl.count, f"{fl.count} x node_price {each:,.0f} USD"
    if fl.node.unit_cost is not None:
        each = float(fl.node.unit_cost.m_as("USD"))
        return each * fl.count, f"{fl.count} x {fl.node.name} at {each:,.0f} USD"
    if acc.unit_cost is not None:
        each = float(acc.unit_cost.m_as("USD"))
        return (each * fl.total_accelerators,
                f"{fl.total_accelerators} x {acc.name} at {each:,.0f} USD (no node price on record: host "
                f"servers are left to the infrastructure multiplier)")
    raise InputError("unit_cost", None,
                     f"is unknown for {acc.name} (and for its node {fl.node.name}), so the fleet's capital cost "
                     f"cannot be computed",
                     "pass node_price=Q_('350000 USD') (one node) to EconomicsModel.solve, or set unit_cost on the "
                     "HardwareNode or Node record")


def _price(explicit: Any, site, notes: list[str]) -> float:
    if explicit is not None:
        p = as_quantity(explicit, "USD/kWh", "electricity_price", example="0.08 USD/kWh").m_as("USD/J")
        if not p >= 0:
            raise InputError("electricity_price", explicit, "must be >= 0")
        return p
    if site.electricity_price is not None:
        return site.electricity_price
    from ..catalog import Grids
    from .sustainability import DEFAULT_GRID
    default = Grids[DEFAULT_GRID]
    notes.append(f"{site.name} has no electricity price: the {default.name} price "
                 f"{default.electricity_price.m_as('USD/kWh'):g} USD/kWh was used (pass electricity_price=)")
    return float(default.electricity_price.m_as("USD/J"))


def _number(value: Any, field_name: str, *, minimum: float, strict: bool = False, fix: str | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InputError(field_name, value, "must be a number", fix)
    v = float(value)
    if v < minimum or (strict and v <= minimum):
        raise InputError(field_name, value, f"must be {'>' if strict else '>='} {minimum:g}", fix)
    return v
