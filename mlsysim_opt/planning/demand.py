"""Hourly demand per user region: a built-in diurnal pattern, or a CSV.

The pattern follows each region's local clock: a smooth day that peaks in the evening and bottoms
out before dawn, with quieter weekends, the shape production LLM traces show (Azure LLM inference
traces: Patel et al. 2024, Splitwise, ISCA; Wang et al. 2024, BurstGPT). Hour 0 of a plan is
Monday 00:00 UTC.
"""
from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Mapping

import numpy as np
from pydantic import ConfigDict, field_validator

from mlsysim_opt.errors import InputError
from mlsysim_opt.planning.hourly import check_consecutive, hour_number, utc_hour
from mlsysim_opt.types import StrictModel

PEAK_LOCAL_HOUR = 20.0
"""Local hour of the daily peak: chat traffic peaks in the evening (BurstGPT, Fig. 3)."""
TROUGH_RATIO = 0.35
"""Lowest hour over the peak hour: Splitwise's Azure conversation trace swings about 3x a day."""
WEEKEND_FACTOR = 0.8
"""Saturday and Sunday over weekdays (BurstGPT: weekday peaks stand above weekend ones)."""


class Demand(StrictModel):
    """Requests per second, hour by hour, per request class and user region:
    ``series[class][region]`` holds one value per hour (the hour's average)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    series: dict[str, dict[str, tuple[float, ...]]]

    @field_validator("series")
    @classmethod
    def _check(cls, series):
        if not series:
            raise InputError("demand", series, "must give at least one request class")
        lengths = {}
        for k, regions in series.items():
            if not regions:
                raise InputError(f"demand[{k}]", regions, "must give at least one user region")
            for u, values in regions.items():
                for t, v in enumerate(values):
                    if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                        raise InputError(f"demand[{k}][{u}][hour {t}]", v, "must be a finite number of requests/s >= 0")
                lengths[(k, u)] = len(values)
        if len(set(lengths.values())) != 1 or 0 in lengths.values():
            first = next(iter(lengths.items()))
            odd = next(((key, n) for key, n in lengths.items() if n != first[1] or n == 0), first)
            raise InputError(f"demand[{odd[0][0]}][{odd[0][1]}]", f"{odd[1]} hours",
                             f"must have as many hours as demand[{first[0][0]}][{first[0][1]}] ({first[1]})",
                             "give every class and region the same horizon")
        return series

    @property
    def hours(self) -> int:
        return len(next(iter(next(iter(self.series.values())).values())))

    @property
    def classes(self) -> list[str]:
        return list(self.series)

    @property
    def regions(self) -> list[str]:
        return sorted({u for regions in self.series.values() for u in regions})

    def array(self, request_class: str, region: str) -> np.ndarray:
        return np.asarray(self.series.get(request_class, {}).get(region, (0.0,) * self.hours), dtype=float)

    def total(self) -> np.ndarray:
        """All classes and regions, hour by hour."""
        return sum(np.asarray(v, dtype=float) for regions in self.series.values() for v in regions.values())

    def window(self, start: int, hours: int) -> "Demand":
        """Hours ``start`` to ``start + hours`` of every series."""
        return Demand(series={k: {u: tuple(v[start:start + hours]) for u, v in regions.items()}
                              for k, regions in self.series.items()})

    def scaled(self, factor: float) -> "Demand":
        return Demand(series={k: {u: tuple(factor * x for x in v) for u, v in regions.items()}
                              for k, regions in self.series.items()})

    # -- constructors ------------------------------------------------------------------------------
    @classmethod
    def diurnal(cls, peaks: Mapping[str, float], *, days: int = 7, request_class: str = "default",
                utc_offsets: Mapping[str, float] | None = None, trough_ratio: float = TROUGH_RATIO,
                peak_hour: float = PEAK_LOCAL_HOUR, weekend_factor: float = WEEKEND_FACTOR) -> "Demand":
        """The built-in pattern: each region's ``peaks`` (requests/s at its weekday evening peak) on
        its local clock (``utc_offsets`` in hours; default: the shipped metros')."""
        if not peaks:
            raise InputError("peaks", peaks, "must give at least one user region's peak requests/s")
        if not (isinstance(days, int) and 1 <= days <= 366):
            raise InputError("days", days, "must be a whole number of days from 1 to 366")
        if not 0 <= trough_ratio <= 1:
            raise InputError("trough_ratio", trough_ratio, "must be between 0 and 1")
        offsets = dict(utc_offsets or {})
        series = {}
        for region, peak in peaks.items():
            if not (isinstance(peak, (int, float)) and math.isfinite(peak) and peak >= 0):
                raise InputError(f"peaks[{region}]", peak, "must be a finite number of requests/s >= 0")
            offset = offsets[region] if region in offsets else _metro_offset(region)
            series[region] = tuple(float(peak) * diurnal_shape(days * 24, offset, trough_ratio=trough_ratio,
                                                               peak_hour=peak_hour, weekend_factor=weekend_factor))
        return cls(series={request_class: series})

    @classmethod
    def from_csv(cls, path: str | Path, *, request_class: str = "default") -> "Demand":
        """A wide CSV: a ``timestamp`` column (ISO 8601 hours, consecutive, UTC or with an offset)
        or an ``hour`` column (0, 1, 2, ...), then one column of requests/s per user region. An
        optional ``class`` column splits the rows into request classes."""
        path = Path(path)
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        if not rows:
            raise InputError(str(path), "empty", "must hold a header and at least one hour of demand")
        header = list(rows[0])
        clock = next((c for c in header if c.strip().lower() in ("timestamp", "hour", "datetime")), None)
        if clock is None:
            raise InputError(f"{path.name} header", header, "needs a 'timestamp' or 'hour' column")
        regions = [c for c in header if c not in (clock, "class")]
        if not regions:
            raise InputError(f"{path.name} header", header, "needs at least one user-region column")
        grouped: dict[str, list[tuple[int, dict]]] = {}
        for line, row in enumerate(rows, start=2):
            grouped.setdefault(row.get("class") or request_class, []).append((line, row))
        series = {}
        for k, entries in grouped.items():
            read = hour_number if clock.strip().lower() == "hour" else utc_hour
            hours = [read(row[clock], f"{path.name} line {line} column {clock}") for line, row in entries]
            check_consecutive(hours, [line for line, _ in entries], path.name)
            series[k] = {u: tuple(_value(row[u], path.name, line, u) for line, row in entries) for u in regions}
        return cls(series=series)


def diurnal_shape(hours: int, utc_offset: float, *, trough_ratio: float = TROUGH_RATIO,
                  peak_hour: float = PEAK_LOCAL_HOUR, weekend_factor: float = WEEKEND_FACTOR) -> np.ndarray:
    """Load over its weekday peak, hour by hour from Monday 00:00 UTC: a cosine day between
    ``trough_ratio`` and 1 at ``peak_hour`` local time, times ``weekend_factor`` on weekends."""
    local = np.arange(hours) + utc_offset                # each hour's start, local time
    day = 0.5 * (1 + np.cos(2 * np.pi * (local - peak_hour) / 24))
    level = trough_ratio + (1 - trough_ratio) * day
    weekday = np.floor(local / 24).astype(int) % 7      # 0 = Monday
    return level * np.where(weekday >= 5, weekend_factor, 1.0)


def _metro_offset(region: str) -> float:
    from mlsysim_opt.planning import data
    known = data.metros()
    if region in known:
        return known[region].utc_offset_hours
    if region in data.sites():
        return known[data.sites()[region].metro].utc_offset_hours
    raise InputError(f"peaks[{region}]", region, "is not a known metro or site, so its clock is unknown",
                     f"pass utc_offsets={{'{region}': hours}} or use one of {sorted(known)}")


def _value(text: str, name: str, line: int, column: str) -> float:
    try:
        value = float((text or "").strip())
    except ValueError:
        raise InputError(f"{name} line {line} column {column}", text, "must be a number of requests/s") from None
    if not (math.isfinite(value) and value >= 0):
        raise InputError(f"{name} line {line} column {column}", value, "must be a finite number of requests/s >= 0")
    return value

