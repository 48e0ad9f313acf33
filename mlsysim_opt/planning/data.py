"""Public reference data for global fleet planning: metros, round-trip times, datacenter sites, hourly
grid carbon and cloud rental offers (``registry/planning/*.yaml``), plus a loader for a user's hourly
carbon-intensity CSV.

Every number in those files is a sourced leaf (``{value, unit, source, note}``), parsed by the same
``catalog._strip`` as the rest of the registry. Loading checks every leaf and every cross-reference
and raises one :class:`InputErrors` listing all problems. Results are cached after the first load.
"""
from __future__ import annotations

import csv
import math
from datetime import datetime
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pint
from pydantic import BaseModel, ConfigDict

from .. import catalog
from ..errors import MISSING, InputError, InputErrors, UnknownNameError
from .hourly import check_consecutive, utc_hour
from ..types import Datacenter
from ..units import ureg

PRICE_KINDS = ("on_demand", "reserved_1y", "reserved_3y", "spot")
CLOUDS = {"aws", "gcp", "azure", "own"}
PERIODS = (24, 168)  # a typical day or a typical week


# ----------------------------------------------------------------------------------------------
# Records


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Metro(_Frozen):
    """A place where users and datacenters are; round-trip times are between metros."""

    name: str
    continent: str
    utc_offset_hours: float


class Site(_Frozen):
    """A datacenter region where replicas can be placed (a cloud region or an owned facility)."""

    key: str
    title: str
    cloud: str
    region_code: str
    metro: str
    continent: str
    grid: str
    carbon_profile: str
    pue: float
    electricity_price_usd_per_kwh: Optional[float] = None

    def datacenter(self) -> Datacenter:
        """A Datacenter record on the site's grid; a site-level PUE override is applied."""
        grid = catalog.Grids[self.grid]
        pue = self.pue if self.pue != grid.pue else None
        return Datacenter(name=self.title, grid=grid, pue=pue)


class CarbonProfile(_Frozen):
    """Hourly grid carbon intensity (gCO2e/kWh): 24 values (a typical day), 168 (a typical week,
    starting Monday) or any whole number of hours (a user's series). Hour 0 is local midnight of a
    zone ``hour0_utc_offset_hours`` east of UTC."""

    key: str
    title: str
    grid: Optional[str] = None
    hourly_g_per_kwh: tuple[float, ...]
    hour0_utc_offset_hours: float
    reconstruction: bool
    basis: str
    sources: tuple[str, ...] = ()

    def utc_hours(self, hours: int, start_utc_hour: int = 0) -> np.ndarray:
        """Intensity for ``hours`` consecutive UTC hours starting at UTC hour ``start_utc_hour`` of
        day 0 (Monday 00:00 UTC for a 168-value profile), repeating the profile as needed. A
        half-hour zone offset (India) takes the mean of the two local hours it straddles."""
        if not (isinstance(hours, int) and hours >= 0):
            raise InputError("hours", hours, "must be a whole number >= 0")
        values = np.asarray(self.hourly_g_per_kwh, dtype=float)
        local = np.arange(hours, dtype=float) + start_utc_hour + self.hour0_utc_offset_hours
        below = np.floor(local)
        frac = local - below
        lo = values[below.astype(int) % len(values)]
        hi = values[(below.astype(int) + 1) % len(values)]
        return lo * (1.0 - frac) + hi * frac

    @property
    def mean_g_per_kwh(self) -> float:
        return float(np.mean(self.hourly_g_per_kwh))


class CloudOffer(_Frozen):
    """A rentable instance type at a site: prices per instance-hour by purchase kind."""

    key: str
    site: str
    accelerator: str
    instance_type: str
    accelerators_per_instance: int
    usd_per_instance_hour: dict[str, float]
    spot_interruption: Optional[tuple[float, float]] = None
    sources: tuple[str, ...] = ()
    date_seen: str = ""

    def usd_per_accelerator_hour(self, kind: str) -> float:
        """Price per accelerator-hour for ``kind`` (on_demand, reserved_1y, reserved_3y, spot)."""
        if kind not in self.usd_per_instance_hour:
            offered = ", ".join(self.usd_per_instance_hour) or "none"
            raise InputError(f"offer {self.key!r} price kind", kind, "is not offered",
                             f"use one of: {offered}")
        return self.usd_per_instance_hour[kind] / self.accelerators_per_instance


# ----------------------------------------------------------------------------------------------
# Leaf parsing: one problem list per load, so every problem is reported at once


class _Problems:
    def __init__(self) -> None:
        self.errors: list[InputError] = []
        self.sources: list[str] = []   # source ids met while parsing the current record

    def add(self, where: str, value: Any, rule: str, fix: str | None = None) -> None:
        self.errors.append(InputError(where, value, rule, fix))

    def raise_if_any(self) -> None:
        if self.errors:
            raise InputErrors(self.errors)


def _leaf(node: Any, where: str, unit: str | None, problems: _Problems) -> Any:
    """The value of a sourced leaf in ``unit`` (a number, a list of numbers or a bool); None when
    broken (the problem is recorded). ``unit=None`` means a pure count or flag."""
    raw: list[str] = []
    prov: dict[str, str] = {}
    parsed = catalog._strip(node, where, prov, raw, [0])
    for text in raw:  # _strip's messages start with the path: keep only the rule
        problems.add(where, MISSING, text.split(": ", 1)[-1])
    problems.sources.extend(prov.values())
    if raw:
        return None
    if not (isinstance(node, dict) and "value" in node):
        problems.add(where, node, "must be a sourced value",
                     "write {value: ..., unit: ..., source: <id in sources.yaml>}")
        return None
    if isinstance(parsed, list):  # one unit for the whole list: check it once, then convert
        if not parsed or _magnitude(parsed[0], where, unit, problems) is None:
            return None
        return [_magnitude(v, where, unit, problems) for v in parsed]
    return _magnitude(parsed, where, unit, problems)


def _magnitude(value: Any, where: str, unit: str | None, problems: _Problems) -> Any:
    if isinstance(value, bool) or unit is None:
        if isinstance(value, pint.Quantity):
            problems.add(where, f"{value:~P}", "takes no unit")
            return None
        return value
    quantity = value if isinstance(value, pint.Quantity) else ureg.Quantity(value, "dimensionless")
    try:
        return float(quantity.to(unit).magnitude)
    except pint.DimensionalityError:
        problems.add(where, f"{quantity:~P}", f"must have units of {unit}")
        return None


def _text(body: dict, field: str, where: str, problems: _Problems) -> str | None:
    value = body.get(field)
    if not isinstance(value, str) or not value:
        problems.add(f"{where}.{field}", value, "must be a non-empty text", f"add '{field}: ...'")
        return None
    return value


def _read(name: str) -> dict:
    return catalog._read_yaml(resources.files("mlsysim_opt.registry") / "planning" / name)


def _date_of(source_id: str) -> str:
    date = catalog.Sources.get(source_id, {}).get("date", "")
    return date.isoformat() if hasattr(date, "isoformat") else str(date)


# ----------------------------------------------------------------------------------------------
# Building the records


def _build_metros(data: dict, problems: _Problems) -> dict[str, Metro]:
    out = {}
    for name, body in data.items():
        where = f"metros.yaml:{name}"
        if not isinstance(body, dict):
            problems.add(where, body, "must be a mapping with continent and utc_offset")
            continue
        unknown = set(body) - {"continent", "utc_offset", "azure_region", "note"}
        if unknown:
            problems.add(where, sorted(unknown), "has unknown fields", "allowed: continent, utc_offset, azure_region, note")
        continent = _text(body, "continent", where, problems)
        offset = _leaf(body.get("utc_offset"), f"{where}.utc_offset", "hour", problems)
        if offset is not None and not -12 <= offset <= 14:
            problems.add(f"{where}.utc_offset", offset, "must be between -12 and +14 hours")
        if continent and offset is not None:
            out[name] = Metro(name=name, continent=continent, utc_offset_hours=offset)
    return out


def _build_rtt(data: dict, metros: dict[str, Metro], problems: _Problems) -> dict[frozenset, float]:
    out: dict[frozenset, float] = {}
    for key, leaf in data.items():
        where = f"rtt.yaml:{key}"
        parts = str(key).split("~")
        if len(parts) != 2:
            problems.add(where, key, "must name two metros as 'A~B'")
            continue
        for metro in parts:
            if metro not in metros:
                problems.add(where, metro, "is not a metro of metros.yaml", "add the metro or fix the spelling")
        ms = _leaf(leaf, where, "ms", problems)
        if ms is None:
            continue
        if not ms >= 0:
            problems.add(where, ms, "must be >= 0 ms")
        pair = frozenset(parts)
        if pair in out:
            problems.add(where, key, "repeats a pair already given (the matrix is symmetric: give A~B once)")
        out[pair] = ms
    return out


def _build_profiles(data: dict, problems: _Problems) -> dict[str, CarbonProfile]:
    out = {}
    for key, body in data.items():
        where = f"carbon_profiles.yaml:{key}"
        if not isinstance(body, dict):
            problems.add(where, body, "must be a mapping with title, grid, hourly, hour0_utc_offset")
            continue
        problems.sources = []
        title = _text(body, "title", where, problems)
        grid = body.get("grid")
        if grid is not None and grid not in catalog.Grids.names():
            problems.add(f"{where}.grid", grid, "is not a grid of grids.yaml")
        hourly = _leaf(body.get("hourly"), f"{where}.hourly", "gCO2e/kWh", problems)
        offset = _leaf(body.get("hour0_utc_offset"), f"{where}.hour0_utc_offset", "hour", problems)
        recon = _leaf(body.get("reconstruction"), f"{where}.reconstruction", None, problems)
        basis = _text(body, "basis", where, problems)
        if hourly is not None:
            _check_hourly(hourly, f"{where}.hourly", problems)
        if basis is not None and basis != "lifecycle":
            problems.add(f"{where}.basis", basis, "must be 'lifecycle' (the basis of grids.yaml)",
                         "rescale direct (combustion) values to the grid's lifecycle mean")
        if recon is not None and not isinstance(recon, bool):
            problems.add(f"{where}.reconstruction", recon, "must be true or false")
        if None in (title, hourly, offset, recon, basis):
            continue
        out[key] = CarbonProfile(key=key, title=title, grid=grid, hourly_g_per_kwh=tuple(hourly),
                                 hour0_utc_offset_hours=offset, reconstruction=recon, basis=basis,
                                 sources=tuple(dict.fromkeys(problems.sources)))
    return out


def _check_hourly(values: list[float], where: str, problems: _Problems) -> None:
    if len(values) not in PERIODS:
        problems.add(where, f"{len(values)} values", "must hold 24 (a day) or 168 (a week) values")
    bad = [i for i, v in enumerate(values) if not (math.isfinite(v) and v > 0)]
    if bad:
        problems.add(where, [values[i] for i in bad[:3]], f"must be positive at every hour (hours {bad[:3]})")


def _build_sites(data: dict, metros: dict[str, Metro], profiles: dict[str, CarbonProfile],
                 problems: _Problems, written: set[str] = frozenset()) -> dict[str, Site]:
    """Sites on ``metros`` and ``profiles``; ``written`` holds the metro and profile keys in their
    files (one that failed to load is already reported, so it is not reported again here)."""
    out = {}
    for key, body in data.items():
        where = f"sites.yaml:{key}"
        if not isinstance(body, dict):
            problems.add(where, body, "must be a mapping")
            continue
        fields = {f: _text(body, f, where, problems)
                  for f in ("title", "cloud", "region_code", "metro", "grid", "carbon_profile")}
        if fields["cloud"] and fields["cloud"] not in CLOUDS:
            problems.add(f"{where}.cloud", fields["cloud"], f"must be one of {sorted(CLOUDS)}")
        if fields["metro"] and fields["metro"] not in metros and fields["metro"] not in written:
            problems.add(f"{where}.metro", fields["metro"], "is not a metro of metros.yaml")
        if fields["carbon_profile"] and fields["carbon_profile"] not in profiles \
                and fields["carbon_profile"] not in written:
            problems.add(f"{where}.carbon_profile", fields["carbon_profile"], "is not a profile of carbon_profiles.yaml")
        grid = catalog.Grids.get(fields["grid"]) if fields["grid"] else None
        if fields["grid"] and grid is None:
            problems.add(f"{where}.grid", fields["grid"], "is not a grid of grids.yaml")
        pue = grid.pue if grid is not None else None
        if "pue" in body:
            pue = _leaf(body["pue"], f"{where}.pue", None, problems)
            if pue is not None and not pue >= 1.0:
                problems.add(f"{where}.pue", pue, "must be >= 1.0")
        if None in fields.values() or grid is None or pue is None or fields["metro"] not in metros \
                or fields["carbon_profile"] not in profiles:
            continue
        price = grid.electricity_price
        out[key] = Site(key=key, **fields, continent=metros[fields["metro"]].continent, pue=pue,
                        electricity_price_usd_per_kwh=None if price is None else float(price.to("USD/kWh").magnitude))
    return out


def _build_offers(data: dict, sites: dict[str, Site], problems: _Problems,
                  written: set[str] = frozenset()) -> dict[str, CloudOffer]:
    """Offers of ``sites``; ``written`` are the site keys in sites.yaml (a site that failed to load
    is already reported, so offers naming it are skipped without a second message)."""
    out = {}
    hardware = set(catalog.Hardware.names())
    for key, body in data.items():
        where = f"cloud_offers.yaml:{key}"
        if not isinstance(body, dict):
            problems.add(where, body, "must be a mapping")
            continue
        problems.sources = []
        site = _text(body, "site", where, problems)
        accel = _text(body, "accelerator", where, problems)
        itype = _text(body, "instance_type", where, problems)
        if site and site not in sites and site not in written:
            problems.add(f"{where}.site", site, "is not a site of sites.yaml")
        if site in sites and sites[site].cloud == "own":
            problems.add(f"{where}.site", site, "is an owned facility (cloud: own), which has no cloud offers")
        if accel and accel not in hardware:
            problems.add(f"{where}.accelerator", accel, "is not an accelerator of hardware.yaml")
        count = _leaf(body.get("accelerators_per_instance"), f"{where}.accelerators_per_instance", None, problems)
        if count is not None and not (isinstance(count, int) and count >= 1):
            problems.add(f"{where}.accelerators_per_instance", count, "must be a whole number >= 1")
        prices = _offer_prices(body, where, problems)
        band = _offer_band(body, where, prices, problems)
        if None in (site, accel, itype, count, prices) or site not in sites or accel not in hardware:
            continue
        out[key] = CloudOffer(key=key, site=site, accelerator=accel, instance_type=itype,
                              accelerators_per_instance=count, usd_per_instance_hour=prices,
                              spot_interruption=band, sources=tuple(dict.fromkeys(problems.sources)),
                              date_seen=_date_of(body.get("on_demand", {}).get("source", "")))
    return out


def _offer_prices(body: dict, where: str, problems: _Problems) -> dict[str, float] | None:
    """Prices by kind; checks the order a buyer expects: spot and commitments cost less than on-demand,
    and a 3-year commitment less than a 1-year one."""
    if "on_demand" not in body:
        problems.add(where, "no on_demand", "must give an on-demand price", "add on_demand: {value: ..., unit: USD/hour, ...}")
        return None
    prices = {}
    for kind in PRICE_KINDS:
        if kind in body:
            value = _leaf(body[kind], f"{where}.{kind}", "USD/hour", problems)
            if value is not None and not value > 0:
                problems.add(f"{where}.{kind}", value, "must be > 0 USD/hour")
            prices[kind] = value
    if any(v is None for v in prices.values()):
        return None
    od = prices["on_demand"]
    for kind in ("reserved_1y", "reserved_3y", "spot"):
        if kind in prices and not prices[kind] < od:
            problems.add(f"{where}.{kind}", prices[kind], f"must be below the on-demand price {od}")
    if "reserved_1y" in prices and "reserved_3y" in prices and not prices["reserved_3y"] < prices["reserved_1y"]:
        problems.add(f"{where}.reserved_3y", prices["reserved_3y"], f"must be below reserved_1y {prices['reserved_1y']}")
    unknown = set(body) - {"site", "accelerator", "instance_type", "accelerators_per_instance",
                           "spot_interruption", "note", *PRICE_KINDS}
    if unknown:
        problems.add(where, sorted(unknown), "has unknown fields", f"price kinds are {', '.join(PRICE_KINDS)}")
    return prices


def _offer_band(body: dict, where: str, prices: dict | None, problems: _Problems) -> tuple[float, float] | None:
    if "spot_interruption" not in body:
        return None
    band = _leaf(body["spot_interruption"], f"{where}.spot_interruption", "dimensionless", problems)
    if band is None:
        return None
    if not (len(band) == 2 and 0.0 <= band[0] <= band[1] <= 1.0):
        problems.add(f"{where}.spot_interruption", band, "must be [lo, hi] with 0 <= lo <= hi <= 1 (monthly share)")
        return None
    if prices is not None and "spot" not in prices:
        problems.add(f"{where}.spot_interruption", band, "is given without a spot price")
    return (band[0], band[1])


@lru_cache(maxsize=1)
def _load() -> tuple[dict, dict, dict, dict, dict]:
    catalog._ensure_loaded()  # grids, hardware and sources come from the main registry
    problems = _Problems()
    metro_data, profile_data, site_data = _read("metros.yaml"), _read("carbon_profiles.yaml"), _read("sites.yaml")
    metros_ = _build_metros(metro_data, problems)
    rtt = _build_rtt(_read("rtt.yaml"), metros_, problems)
    profiles = _build_profiles(profile_data, problems)
    sites_ = _build_sites(site_data, metros_, profiles, problems, written={*metro_data, *profile_data})
    offers_ = _build_offers(_read("cloud_offers.yaml"), sites_, problems, written=set(site_data))
    problems.raise_if_any()
    return metros_, rtt, sites_, profiles, offers_


# ----------------------------------------------------------------------------------------------
# Public API


def metros() -> dict[str, Metro]:
    return dict(_load()[0])


def sites() -> dict[str, Site]:
    return dict(_load()[2])


def carbon_profiles() -> dict[str, CarbonProfile]:
    return dict(_load()[3])


def offers() -> dict[str, CloudOffer]:
    return dict(_load()[4])


def site(key: str) -> Site:
    return _site(key)


def _site(key: str) -> Site:
    known = _load()[2]
    if key not in known:
        raise UnknownNameError("site", key, known)
    return known[key]


def carbon_profile(key: str) -> CarbonProfile:
    known = _load()[3]
    if key not in known:
        raise UnknownNameError("carbon profile", key, known)
    return known[key]


def offer(site: str, accelerator: str) -> CloudOffer:
    """The offer of ``accelerator`` at ``site``; the error lists what that site does offer."""
    at_site = [o for o in _load()[4].values() if o.site == _site(site).key]
    for candidate in at_site:
        if candidate.accelerator == accelerator:
            return candidate
    offered = sorted(o.accelerator for o in at_site)
    raise UnknownNameError(f"accelerator at site {site} (offered there: {', '.join(offered) or 'none'})",
                           accelerator, offered)


def rtt_ms(a: str, b: str) -> float:
    """Round-trip time between two metros or sites (a site stands for its metro); symmetric."""
    metros_, rtt, sites_ = _load()[0], _load()[1], _load()[2]
    ma, mb = _metro_of(a, metros_, sites_), _metro_of(b, metros_, sites_)
    pair = frozenset((ma, mb))
    if pair not in rtt:
        raise InputError(f"round-trip time {ma}~{mb}", MISSING, "is not in registry/planning/rtt.yaml",
                         f"add '{ma}~{mb}: {{value: ..., unit: ms, source: <id in sources.yaml>}}'")
    return rtt[pair]


def _metro_of(name: str, metros_: dict, sites_: dict) -> str:
    if name in metros_:
        return name
    if name in sites_:
        return sites_[name].metro
    raise UnknownNameError("metro or site", name, [*metros_, *sites_])


# ----------------------------------------------------------------------------------------------
# A user's hourly CSV (Electricity Maps export or a plain timestamp,value file)

_LIFECYCLE_MARKS = ("(lca)", "(life cycle)", "(lifecycle)")


def load_carbon_csv(path, *, key: str | None = None, title: str | None = None, grid: str | None = None,
                    column: str | None = None) -> CarbonProfile:
    """Read hourly carbon intensity from a CSV: an Electricity Maps export ("Datetime (UTC)" and
    "Carbon Intensity gCO₂eq/kWh (LCA)" / "(Life cycle)" / "(direct)") or a plain file with a
    timestamp column (ISO 8601, UTC when no offset is given) and a gCO2e/kWh (or g/kWh) column.
    ``column`` picks the value column when several fit (the lifecycle one is preferred otherwise).
    Hours must be whole and consecutive. Hour 0 of the result is the first row; when that row is
    not at 00:00 UTC, ``hour0_utc_offset_hours`` is set so that ``utc_hours`` stays aligned to UTC."""
    path = Path(path)
    with path.open(newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.reader(handle))
    rows = [(n, r) for n, r in enumerate(rows, start=1) if any(cell.strip() for cell in r)]
    if len(rows) < 2:
        raise InputError(f"{path}", "no data rows", "must hold a header line and at least one hour")
    (_, header), body = rows[0], rows[1:]
    t_col = _time_column(header, path)
    v_col = _value_column(header, column, path)
    values = _hourly_series(body, t_col, v_col, header[v_col], path)
    first_hour = values[0][0]
    label = header[v_col].lower()
    basis = "direct" if "(direct)" in label else "lifecycle" if any(m in label for m in _LIFECYCLE_MARKS) else "unspecified"
    return CarbonProfile(key=key or path.stem, title=title or f"hourly carbon intensity from {path.name}",
                         grid=grid, hourly_g_per_kwh=tuple(v for _, v in values),
                         hour0_utc_offset_hours=-float(first_hour.hour) if first_hour.hour else 0.0,
                         reconstruction=False,
                         basis=basis, sources=(str(path),))


def _time_column(header: list[str], path: Path) -> int:
    for i, name in enumerate(header):
        lowered = name.strip().lower()
        if "date" in lowered or "time" in lowered:
            return i
    raise InputError(f"{path} header", header, "has no timestamp column",
                     "name it e.g. 'Datetime (UTC)' or 'timestamp'")


def _value_column(header: list[str], column: str | None, path: Path) -> int:
    if column is not None:
        for i, name in enumerate(header):
            if name.strip().lower() == column.strip().lower():
                return i
        raise InputError(f"{path} column", column, "is not a column of the header", f"columns: {header}")
    fits = [i for i, name in enumerate(header) if _is_intensity(name)]
    if len(fits) > 1:
        lifecycle = [i for i in fits if any(m in header[i].lower() for m in _LIFECYCLE_MARKS)]
        fits = lifecycle if len(lifecycle) == 1 else fits
    if len(fits) != 1:
        found = [header[i] for i in fits] or header
        raise InputError(f"{path} header", found, "must have exactly one carbon-intensity column (gCO2e/kWh)"
                         if not fits else "has several carbon-intensity columns",
                         "pass column='...' to pick one" if fits else "label it e.g. 'gCO2e/kWh'")
    return fits[0]


def _is_intensity(name: str) -> bool:
    lowered = name.lower().replace("₂", "2").replace(" ", "")
    return any(mark in lowered for mark in ("gco2eq/kwh", "gco2e/kwh", "gco2/kwh", "g/kwh"))


def _hourly_series(body: list, t_col: int, v_col: int, v_name: str, path: Path) -> list[tuple[datetime, float]]:
    stamps = [utc_hour(row[t_col] if t_col < len(row) else "", f"{path} line {line} timestamp") for line, row in body]
    check_consecutive(stamps, [line for line, _ in body], str(path))
    return [(when, _intensity(row[v_col] if v_col < len(row) else "", line, v_name, path))
            for when, (line, row) in zip(stamps, body)]


def _intensity(text: str, line: int, column: str, path: Path) -> float:
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"{path} line {line} column {column!r}", text, "is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise InputError(f"{path} line {line} column {column!r}", value, "must be a finite value >= 0 gCO2e/kWh")
    return value
