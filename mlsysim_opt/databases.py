"""Database URLs, shared by Optuna studies (:mod:`.dse_optuna`) and the service's job store."""
from __future__ import annotations

import importlib.util
from typing import Optional
from urllib.parse import urlsplit, urlunsplit

POSTGRES_DRIVERS = ("psycopg", "psycopg2")
"""Supported PostgreSQL drivers, preferred first (psycopg 3 is also SQLAlchemy's default)."""


def installed_postgres_driver() -> Optional[str]:
    """The first of :data:`POSTGRES_DRIVERS` that is installed, if any."""
    return next((name for name in POSTGRES_DRIVERS if importlib.util.find_spec(name) is not None), None)


def masked(url: Optional[str]) -> Optional[str]:
    """The URL with any password hidden, for results, listings and messages."""
    if url is None or "://" not in url:
        return url
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return url.split("://", 1)[0] + "://***"
    if password is None:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.replace(f":{password}@", ":***@", 1)))
