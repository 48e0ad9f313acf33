"""``EconomicsModel`` (Wall 17): total cost of ownership of a fleet over a run, or its rental bill.

The equations are the ``economics`` sheet (models/economics.py), which takes its facility energy
from the sustainability sheet: one power model for both walls. Renting by the hour (on-demand,
reserved, spot) is the ``rental`` sheet's ``rental_cost`` (models/rental.py): the cloud price
already holds the electricity, the facility and the maintenance, so a rental has no CapEx or OpEx
lines; its energy and carbon are computed as for ownership (physics, not price)."""
from __future__ import annotations

import math
import numbers
import statistics
from functools import lru_cache
from typing import Any, Optional

import pint

from ..errors import InputError
from ..results import Result
from ..types import Fleet, PriceCovers
from ..units import as_quantity, sheet_quantity
from .quantities import input_quantity
from .sustainability import (SECONDS_PER_YEAR, as_fleet, duration_seconds, power_notes, power_values, resolve_site,
                             resolve_utilization)

DEFAULT_MAINTENANCE_RATE = 0.05
"""Yearly maintenance as a fraction of the hardware price (the reference's and Barroso et al.'s
5 %/year convention)."""

ECONOMICS_OUTPUTS = ("capex_period", "opex_energy", "opex_maintenance", "tco")
ENERGY_OUTPUTS = ("fleet_power", "it_energy", "facility_energy", "operational_carbon")

RENTAL_KINDS = ("on_demand", "reserved_1y", "reserved_3y", "spot")
PRICING = ("own",) + RENTAL_KINDS
"""How the accelerators are paid for: bought ("own", the TCO) or rented by the hour at one of the
cloud's price kinds (the names of ``CloudOffer.usd_per_accelerator_hour``)."""


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
    price_basis: PriceCovers
    """What the prices behind the cost cover: "node" (whole servers), "accelerator" (accelerators
    only, host servers left to the infrastructure multiplier) or "cloud_hour" (rented capacity)."""
    capex_basis: str
    """The prices used, in words, starting with the basis ("node prices: 32 x NVIDIA DGX H100 ...")."""
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
    pricing: str = "own"
    rental_rate_usd_per_hour: Optional[float] = None
    """USD per accelerator-hour when rented (``pricing`` other than "own")."""
    accelerator_hours: float = 0.0
    cost_per_accelerator_hour_usd: float = 0.0


class PricingRow(Result):
    """One way of paying for the fleet over the run (a row of ``EconomicsModel.compare``)."""

    pricing: str
    total_cost_usd: float
    cost_per_accelerator_hour_usd: float
    ratio_to_own: Optional[float]
    source: str


class PricingComparison(Result):
    """The same fleet and run owned and rented at each price kind available."""

    fleet: str
    accelerators: int
    duration: pint.Quantity
    accelerator_hours: float
    rows: list[PricingRow]
    notes: list[str]

    def row(self, pricing: str) -> PricingRow:
        for r in self.rows:
            if r.pricing == pricing:
                return r
        raise KeyError(pricing)

    def __str__(self) -> str:
        lines = [f"{self.fleet}: {self.accelerators} accelerators for {self.duration:.4g~P} "
                 f"({self.accelerator_hours:,.0f} accelerator-hours)",
                 f"  {'pricing':<12} {'total USD':>14} {'USD/acc-h':>10} {'x own':>7}  source"]
        for r in self.rows:
            ratio = "-" if r.ratio_to_own is None else f"{r.ratio_to_own:.2f}"
            lines.append(f"  {r.pricing:<12} {r.total_cost_usd:>14,.0f} {r.cost_per_accelerator_hour_usd:>10.3f} "
                         f"{ratio:>7}  {r.source}")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


class EconomicsModel:
    """Wall 17: capital, energy and maintenance cost of a fleet over a run."""

    walls = (17,)

    def solve(self, fleet: Any, duration_days: Any, mfu: Optional[float] = None, datacenter: Any = None,
              infrastructure_multiplier: float = 1.0, amortization_years: float = 3.0,
              electricity_price: Any = None, throughput: Any = None,
              maintenance_rate: float = DEFAULT_MAINTENANCE_RATE, utilization: Optional[float] = None,
              node_price: Any = None, grid: Any = None, price_basis: Optional[str] = None, pricing: str = "own",
              rental_rate: Any = None, site: Optional[str] = None) -> EconomicsResult:
        """TCO of ``fleet`` over ``duration_days``.

        * capex: the period's share (``duration / amortization_years``) of the hardware price times
          ``infrastructure_multiplier`` (deck: 2.0-2.5 for a whole datacenter). By default
          (``price_basis="node"``) the hardware price is whole servers for every vendor: ``node_price``,
          else the node's price on record, else its accelerators' price plus a host server share
          derived from the registry's servers (``host_share_per_accelerator``); an edge board or MCU
          module is its own host. ``price_basis="accelerator"`` counts the accelerators only (the
          deck's "GPU hardware" line). With no price at all, an error (pass ``node_price``). The
          result's ``price_basis`` and ``capex_basis`` say which prices were used.
        * energy: whole-node power from activity (the sustainability sheet: each accelerator's idle
          draw plus its dynamic share at the busy fraction ``utilization``, default 1.0 as in
          training, plus the host's), times PUE, at the site's price (``electricity_price``
          overrides); ``mfu`` no longer sets the power, since MFU measures useful FLOP, not how
          busy the silicon is.
        * maintenance: ``maintenance_rate`` per year of the hardware price only.
        * ``cost_per_million_tokens`` when ``throughput`` (fleet tokens/s) is given.

        ``pricing`` other than "own" rents the accelerators instead (on_demand, reserved_1y,
        reserved_3y, spot): the TCO is the rental sheet's bill ``n a_replica c_acc t`` (nodes x
        accelerators per node x ``rental_rate`` per accelerator-hour x the run), and the CapEx and
        OpEx lines are zero, since the cloud price holds power, facility and maintenance. The rate
        is ``rental_rate`` (a number in USD per accelerator-hour, or a quantity such as
        "2.5 USD/hour"), else the planning ``site``'s offer for the fleet's accelerator. Energy and
        carbon are computed as for ownership. Spot capacity can be taken back: price its lost work
        with ``ReliabilityModel.solve(..., spot_interruption=)``.
        """
        fl = as_fleet(fleet)
        seconds = duration_seconds(duration_days)
        notes: list[str] = []
        u = resolve_utilization(mfu, utilization, notes)
        place = resolve_site(fl, datacenter if datacenter is not None else grid)
        notes = [*place.notes, *notes, *power_notes(fl)]
        k = _number(infrastructure_multiplier, "infrastructure_multiplier", minimum=1.0,
                    fix="it multiplies the hardware price into a whole-facility cost: 1.0 = hardware only, "
                        "2.0-2.5 = full datacenter")
        years = _number(amortization_years, "amortization_years", minimum=1e-9, strict=True)
        rate = _number(maintenance_rate, "maintenance_rate", minimum=0.0, fix="a yearly fraction, e.g. 0.05")
        kind = pricing_kind(pricing, rental_rate, site)
        resolve_price_basis(price_basis, node_price)   # checked even when renting, where it has no effect
        tps = _throughput(throughput)
        if kind != "own":
            return _rent(fl, seconds, u, place, notes, kind, rental_rate, site, tps, electricity_price)
        price = _price(electricity_price, place, notes)
        hw_cost, basis, basis_text = hardware_cost(fl, node_price, price_basis)
        values = power_values(fl, u)
        values.update(duration=seconds, pue=place.pue, carbon_intensity=place.carbon_intensity,
                      hardware_cost=hw_cost, infrastructure_multiplier=k,
                      amortization_period=years * SECONDS_PER_YEAR, maintenance_rate=rate / SECONDS_PER_YEAR,
                      electricity_price=price)
        with_tokens = tps is not None
        if with_tokens:
            values["token_throughput"] = tps
        out = economics_function(with_tokens)(**values)
        from ..models import economics, sustainability

        def q(sheet, name: str, unit: str) -> pint.Quantity:
            return sheet_quantity(sheet, name, out[name], unit)
        usd = {name: q(economics.sheet, name, "USD").m for name in ECONOMICS_OUTPUTS}
        acc_hours = _accelerator_hours(fl, seconds)
        return EconomicsResult(
            fleet=fl.name, region_name=place.name, duration=input_quantity(seconds, "duration", "day"),
            utilization=u, hardware_cost_usd=hw_cost, price_basis=basis, capex_basis=basis_text,
            capex_usd=usd["capex_period"], opex_energy_usd=usd["opex_energy"],
            opex_maintenance_usd=usd["opex_maintenance"],
            total_opex_usd=usd["opex_energy"] + usd["opex_maintenance"], tco_usd=usd["tco"],
            cost_per_million_tokens=q(economics.sheet, "cost_per_token", "USD/Mtoken").m if with_tokens else None,
            electricity_price=input_quantity(price, "electricity_price", "USD/kWh"),
            it_energy_kwh=q(sustainability.sheet, "it_energy", "kWh").m,
            total_energy_kwh=q(sustainability.sheet, "facility_energy", "kWh").m,
            carbon_footprint_kg=q(sustainability.sheet, "operational_carbon", "kgCO2e").m, pue=place.pue,
            fleet_power=q(sustainability.sheet, "fleet_power", "kW"), tco=q(economics.sheet, "tco", "USD"),
            notes=notes, accelerator_hours=acc_hours, cost_per_accelerator_hour_usd=usd["tco"] / acc_hours,
        )

    def compare(self, fleet: Any, duration_days: Any, site: Optional[str] = None, rates: Optional[dict] = None,
                **same_kwargs) -> PricingComparison:
        """The run owned and rented at each price kind available, side by side.

        ``rates`` maps rental kinds to USD per accelerator-hour (numbers or quantities); kinds it
        leaves out are looked up in the planning ``site``'s offer, and skipped (with a note) when
        the site has no price for them. Ownership is priced by ``solve`` with ``same_kwargs``
        (node_price, infrastructure_multiplier, ...), which every row shares; without a hardware
        price on record the "own" row is left out and the ratios are None."""
        for name in ("pricing", "rental_rate"):
            if name in same_kwargs:
                raise InputError(name, same_kwargs[name], "is set by compare() for each row",
                                 "pass rates={'spot': 1.2, ...} or site=, or call solve() for one kind")
        if rates is not None and not isinstance(rates, dict):
            raise InputError("rates", rates, "must be a dict {pricing kind: USD per accelerator-hour}",
                             f"kinds: {', '.join(RENTAL_KINDS)}; e.g. {{'spot': 1.2}}")
        rates = dict(rates or {})
        for kind in rates:
            if kind not in RENTAL_KINDS:
                raise InputError("rates", kind, "has a key that is not a rental pricing kind",
                                 f"use keys among {', '.join(RENTAL_KINDS)}")
        if not rates and site is None:
            raise InputError("rates", None, "or site= is needed to price the rental kinds",
                             "pass rates={'on_demand': 4.0, 'spot': 1.2} (USD per accelerator-hour) or site=")
        fl = as_fleet(fleet)
        notes: list[str] = []
        offer = _offer(site, fl) if site is not None else None
        results = {}
        try:
            owned = self.solve(fl, duration_days, **same_kwargs)
            results["own"] = (owned, f"ownership (TCO), {owned.capex_basis}")
        except InputError as exc:
            if exc.field != "unit_cost":
                raise
            notes.append(f"ownership not priced: {exc}")
        for kind in RENTAL_KINDS:
            if kind in rates:
                value, source = rates[kind], "rates"
            elif offer is not None:
                value, source = _offered(offer, kind), f"site {site!r}"
                if value is None:
                    notes.append(f"site {site!r} has no {kind} price for {fl.accelerator.name}")
                    continue
            else:
                continue
            r = self.solve(fl, duration_days, pricing=kind, rental_rate=value, **same_kwargs)
            results[kind] = (r, f"{r.rental_rate_usd_per_hour:.4g} USD/acc-h from {source}")
        if offer is not None and getattr(offer, "spot_interruption", None) and "spot" in results:
            lo, hi = offer.spot_interruption
            notes.append(f"spot at {site!r} is interrupted {lo:.0%}-{hi:.0%} a month: its lost work is priced by "
                         f"ReliabilityModel.solve(..., spot_interruption=({lo}, {hi}))")
        own = results["own"][0].tco_usd if "own" in results else None
        rows = [PricingRow(pricing=kind, total_cost_usd=r.tco_usd,
                           cost_per_accelerator_hour_usd=r.cost_per_accelerator_hour_usd,
                           ratio_to_own=None if not own else r.tco_usd / own, source=source)
                for kind, (r, source) in results.items()]
        first = next(iter(results.values()))[0]
        return PricingComparison(fleet=fl.name, accelerators=fl.total_accelerators, duration=first.duration,
                                 accelerator_hours=first.accelerator_hours, rows=rows, notes=notes)


def pricing_kind(pricing: Any, rental_rate: Any = None, site: Any = None) -> str:
    """``pricing`` checked against ``PRICING``; a rental kind needs a rate or a site, ownership neither."""
    if pricing not in PRICING:
        raise InputError("pricing", pricing, "is not a pricing kind", f"use one of {', '.join(PRICING)}")
    if pricing == "own" and (rental_rate is not None or site is not None):
        name, value = ("rental_rate", rental_rate) if rental_rate is not None else ("site", site)
        raise InputError(name, value, "prices a rental, but pricing is 'own'",
                         f"pass pricing= one of {', '.join(RENTAL_KINDS)}, or compare() to see them all")
    if pricing != "own" and rental_rate is None and site is None:
        raise InputError("rental_rate", None, f"is needed to rent at pricing={pricing!r}",
                         "pass rental_rate=2.5 (USD per accelerator-hour, or '2.5 USD/hour') or site= "
                         "(a planning site whose offer has the price)")
    return pricing


def rental_rate_per_second(value: Any, field_name: str = "rental_rate") -> float:
    """USD per accelerator-second (the rental sheet's unit) from a number in USD per accelerator-hour
    or a quantity such as "2.5 USD/hour"."""
    q = as_quantity(value, "USD/hour", field_name, example="2.5 USD/hour")
    usd_s = float(q.m_as("USD/s"))
    if not (math.isfinite(usd_s) and usd_s >= 0):
        raise InputError(field_name, value, "must be a finite price >= 0 per accelerator-hour",
                         "e.g. 2.5 (USD per accelerator-hour) or '2.5 USD/hour'")
    return usd_s


def _offer(site: Any, fl: Fleet):
    """The planning site's cloud offer for the fleet's accelerator (loaded lazily). Offers name
    accelerators by registry key ("H100"), so each key of the fleet's accelerator is tried, then
    its display name; the first failure is raised when none is offered."""
    from importlib import import_module
    try:
        data = import_module("mlsysim_opt.planning.data")
    except ImportError as exc:
        raise InputError("site", site, "needs the planning data (mlsysim_opt.planning.data), which is missing",
                         "pass rental_rate= (solve) or rates= (compare) instead") from exc
    from ..catalog import Hardware
    from ..errors import UnknownNameError
    acc = fl.accelerator
    keys = [k for k in Hardware.names() if Hardware.get(k).name == acc.name] + [acc.name]
    first = None
    for key in keys:
        try:
            return data.offer(site, key)
        except UnknownNameError as exc:
            first = first or exc
    raise first


def _offered(offer, kind: str):
    """The offer's price of ``kind``, or None when it has none."""
    try:
        return offer.usd_per_accelerator_hour(kind)
    except (LookupError, ValueError):
        return None


def _rent(fl: Fleet, seconds: float, u: float, place, notes: list[str], kind: str, rental_rate: Any,
          site: Any, tps: Optional[float], electricity_price: Any) -> EconomicsResult:
    """The run rented at ``kind``: the rental sheet's bill, the sustainability sheet's energy."""
    if rental_rate is not None:
        usd_s, source = rental_rate_per_second(rental_rate), "rental_rate"
    else:
        value = _offered(_offer(site, fl), kind)
        if value is None:
            raise InputError("site", site, f"has no {kind} price for {fl.accelerator.name}",
                             "pass rental_rate= (USD per accelerator-hour), or another pricing or site")
        usd_s, source = rental_rate_per_second(value, f"{kind} price of site {site!r}"), f"site {site!r}"
    price = _price(electricity_price, place, [])    # shown, not charged: it is in the cloud price
    values = power_values(fl, u)
    values.update(duration=seconds, pue=place.pue, carbon_intensity=place.carbon_intensity,
                  replicas=float(fl.count), accelerators_per_replica=float(fl.node.accelerators_per_node),
                  accelerator_rental_rate=usd_s, period_length=seconds)
    from ..models import economics, rental, sustainability
    # The bill from the rental sheet, the energy from the sustainability sheet (compiled per definition).
    out = {**rental.sheet.compiled(("rental_cost",))(**values),
           **sustainability.sheet.compiled(ENERGY_OUTPUTS)(**values)}

    def q(sheet, name: str, unit: str) -> pint.Quantity:
        return sheet_quantity(sheet, name, out[name], unit)
    bill = q(rental.sheet, "rental_cost", "USD")
    per_hour = input_quantity(usd_s, "accelerator_rental_rate", "USD/hour").m
    acc_hours = _accelerator_hours(fl, seconds)
    notes.append(f"rented at {kind} ({per_hour:.4g} USD per accelerator-hour, from {source}): electricity, "
                 f"facility and maintenance are in the price, so CapEx and OpEx are 0; energy and carbon are "
                 f"the fleet's own")
    per_token = None
    if tps is not None:   # the economics sheet's cost_per_token, TCO / (throughput t), with the bill as TCO
        per_token = sheet_quantity(economics.sheet, "cost_per_token", bill.m / (tps * seconds), "USD/Mtoken").m
    return EconomicsResult(
        fleet=fl.name, region_name=place.name, duration=input_quantity(seconds, "duration", "day"),
        utilization=u, hardware_cost_usd=0.0,
        price_basis="cloud_hour",
        capex_basis=f"cloud-hour prices ({kind}): {fl.total_accelerators} x {fl.accelerator.name} at "
                    f"{per_hour:.4g} USD per accelerator-hour",
        capex_usd=0.0, opex_energy_usd=0.0, opex_maintenance_usd=0.0, total_opex_usd=0.0, tco_usd=bill.m,
        cost_per_million_tokens=per_token, electricity_price=input_quantity(price, "electricity_price", "USD/kWh"),
        it_energy_kwh=q(sustainability.sheet, "it_energy", "kWh").m,
        total_energy_kwh=q(sustainability.sheet, "facility_energy", "kWh").m,
        carbon_footprint_kg=q(sustainability.sheet, "operational_carbon", "kgCO2e").m, pue=place.pue,
        fleet_power=q(sustainability.sheet, "fleet_power", "kW"), tco=bill, notes=notes, pricing=kind,
        rental_rate_usd_per_hour=per_hour, accelerator_hours=acc_hours,
        cost_per_accelerator_hour_usd=bill.m / acc_hours,
    )


def _accelerator_hours(fl: Fleet, seconds: float) -> float:
    return input_quantity(fl.total_accelerators * seconds, "duration", "hour").m


def _throughput(throughput: Any) -> Optional[float]:
    if throughput is None:
        return None
    tps = as_quantity(throughput, "1/s", "throughput", example="50000 token/s").m_as("1/s")
    if not tps > 0:
        raise InputError("throughput", throughput, "must be positive (tokens per second of the whole fleet)")
    return tps


PRICE_BASES = ("node", "accelerator")
DEFAULT_PRICE_BASIS = "node"
"""Owned hardware is priced as whole nodes (servers with their host CPUs, memory and NICs) for every
vendor; a node with no price on record is estimated as its accelerators plus a host share derived
from the registry's servers (``host_share_per_accelerator``). docs/differences.md, "One price basis"."""


def host_share_per_accelerator() -> float:
    """USD of host server (chassis, CPUs, memory, NICs, integration) per accelerator slot: the median,
    over the registry's servers whose own price and accelerator price are both on record, of
    (server price - accelerators x accelerator price) / accelerators. Computed from the registry, so
    a re-priced record moves it; the median keeps one premium-priced server from setting it."""
    shares = _host_shares()
    if not shares:
        raise InputError("unit_cost", None, "is on record for no server together with its accelerator, so the "
                         "host server share of a node without a price cannot be derived",
                         "pass node_price= (one node), or price_basis='accelerator'")
    return statistics.median(shares)


def _host_shares() -> list[float]:
    """Host share per accelerator slot of each registry server whose price and accelerator price are known."""
    from ..catalog import Nodes
    out = []
    for node in Nodes:
        acc = node.accelerator
        if node.unit_cost is None or acc.unit_cost is None or acc.unit_cost_covers != "accelerator":
            continue
        n = node.accelerators_per_node
        out.append((_usd(node.unit_cost) - n * _usd(acc.unit_cost)) / n)
    return out


def resolve_price_basis(price_basis: Optional[str], node_price: Any) -> str:
    """``price_basis`` checked, defaulting to whole nodes; an explicit node price implies nodes."""
    if price_basis is None:
        return DEFAULT_PRICE_BASIS
    if price_basis not in PRICE_BASES:
        from ..errors import UnknownNameError
        raise UnknownNameError("price_basis", str(price_basis), PRICE_BASES)
    if price_basis == "accelerator" and node_price is not None:
        raise InputError("node_price", node_price, "prices nodes, but price_basis is 'accelerator'",
                         "drop node_price=, or use price_basis='node'")
    return price_basis


def hardware_cost(fl: Fleet, node_price: Any = None, price_basis: Optional[str] = None) -> tuple[float, str, str]:
    """Purchase price of the fleet's hardware, its basis ("node" or "accelerator") and a sentence
    saying what it counts (starting with the basis). Never silently zero, never a mix of bases."""
    basis = resolve_price_basis(price_basis, node_price)
    if basis == "accelerator":
        return _accelerator_cost(fl)
    return _node_cost(fl, node_price)


def _accelerator_cost(fl: Fleet) -> tuple[float, str, str]:
    acc = fl.accelerator
    if acc.unit_cost is None:
        raise InputError("unit_cost", None, f"is unknown for {acc.name}, so price_basis='accelerator' has no price",
                         "set unit_cost on the HardwareNode, or use price_basis='node' with node_price=")
    each = _usd(acc.unit_cost)
    own_host = " (each is its own host)" if acc.unit_cost_covers == "node" else " (no host servers)"
    return (each * fl.total_accelerators, "accelerator",
            f"accelerator prices: {fl.total_accelerators} x {acc.name} at {each:,.0f} USD{own_host}")


def _node_cost(fl: Fleet, node_price: Any) -> tuple[float, str, str]:
    acc, n = fl.accelerator, fl.node.accelerators_per_node
    if node_price is not None:
        each = as_quantity(node_price, "USD", "node_price", example="350000 USD").m_as("USD")
        if not each > 0:
            raise InputError("node_price", node_price, "must be a positive price of one node")
        return each * fl.count, "node", f"node prices: {fl.count} x node_price {each:,.0f} USD"
    if fl.node.unit_cost is not None:
        each = _usd(fl.node.unit_cost)
        return each * fl.count, "node", f"node prices: {fl.count} x {fl.node.name} at {each:,.0f} USD"
    if acc.unit_cost is None:
        raise InputError("unit_cost", None,
                         f"is unknown for {acc.name} (and for its node {fl.node.name}), so the fleet's capital cost "
                         f"cannot be computed",
                         "pass node_price=Q_('350000 USD') (one node) to EconomicsModel.solve, or set unit_cost on "
                         "the HardwareNode or Node record")
    chip = _usd(acc.unit_cost)
    if acc.unit_cost_covers == "node":      # an edge board or MCU module: no server to add
        return (chip * fl.total_accelerators, "node",
                f"node prices: {fl.total_accelerators} x {acc.name} at {chip:,.0f} USD (each is its own host)")
    host = host_share_per_accelerator()
    each = n * (chip + host)
    return (each * fl.count, "node",
            f"node prices: {fl.count} x {fl.node.name} at {each:,.0f} USD, estimated (no node price on record) as "
            f"{n} x {chip:,.0f} USD accelerators + a {n * host:,.0f} USD host server ({n} x {host:,.0f} USD, the "
            f"median host share per accelerator of the {len(_host_shares())} registry servers with both prices)")


def _usd(quantity: pint.Quantity) -> float:
    return float(quantity.m_as("USD"))


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
