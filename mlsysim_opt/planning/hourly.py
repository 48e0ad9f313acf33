"""Hourly time series read from CSV files: one reading of timestamps and one rule for their order,
shared by demand (``Demand.from_csv``) and grid carbon (``load_carbon_csv``)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from mlsysim_opt.errors import InputError


def utc_hour(text: str, where: str) -> datetime:
    """An ISO 8601 timestamp on a whole hour, in UTC (a stamp without an offset is taken as UTC)."""
    text = (text or "").strip()
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(where, text, "is not an ISO 8601 timestamp", "write e.g. 2024-07-01T00:00:00Z") from None
    when = when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when.astimezone(timezone.utc)
    if when.minute or when.second or when.microsecond:
        raise InputError(where, text, "must fall on a whole hour", "aggregate sub-hourly data to hourly means first")
    return when


def hour_number(text: str, where: str) -> int:
    """A plain hour index (0, 1, 2, ...)."""
    text = (text or "").strip()
    try:
        value = float(text)
    except ValueError:
        raise InputError(where, text, "must be a whole hour number") from None
    if value != int(value):
        raise InputError(where, text, "must be a whole hour number")
    return int(value)


def check_consecutive(hours: list[datetime] | list[int], lines: list[int], name: str) -> None:
    """Each row one hour after the previous: a gap names the first missing hour, a repeat or a step
    back names its line."""
    for i in range(1, len(hours)):
        expected = hours[i - 1] + (timedelta(hours=1) if isinstance(hours[i - 1], datetime) else 1)
        if hours[i] == expected:
            continue
        where = f"{name} line {lines[i]}"
        shown = _shown(hours[i])
        if hours[i] < expected:
            raise InputError(where, shown, f"repeats or goes back in time (expected {_shown(expected)})",
                             "give one row per hour, in order, each hour once")
        raise InputError(where, shown, f"skips hours: {_shown(expected)} is missing",
                         "fill the missing hour (one row per hour, with no gaps)")


def _shown(hour: datetime | int) -> str:
    return hour.isoformat() if isinstance(hour, datetime) else f"hour {hour}"
