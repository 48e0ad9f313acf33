"""The on-disk cache of work that is the same from one process to the next: the generated source of
compiled sheets (:mod:`.numeric`) and pint's parsed unit definitions (:mod:`mlsysim_opt.units`).

Where it lives: ``$MLSYSIM_OPT_CACHE_DIR`` when set (``off``, ``0`` or an empty value turn the cache
off), else ``$XDG_CACHE_HOME/mlsysim_opt``, else ``~/.cache/mlsysim_opt``. A folder that cannot be
created or written turns the cache off for the process; nothing fails because of it.

Entries are JSON files named by a SHA-256 key of everything they depend on (the caller's inputs,
the package and Python versions, the source of the code that produced them). They are written to
a temporary file and renamed into place, so a concurrent reader sees a whole file or none; an
unreadable or malformed entry counts as a miss and is overwritten.
"""
from __future__ import annotations

import hashlib
import json
import os
import pathlib
import sys
import tempfile
from functools import lru_cache
from typing import Iterable

ENV_VAR = "MLSYSIM_OPT_CACHE_DIR"
FORMAT = 1
"""Bumped when the layout of an entry changes."""

_OFF = ("", "0", "off", "none", "false")


def cache_dir() -> pathlib.Path | None:
    """The cache folder (created), or None when the cache is off or the folder is unusable."""
    configured = os.environ.get(ENV_VAR)
    if configured is not None and configured.strip().lower() in _OFF:
        return None
    return _usable(_location(configured))


def _location(configured: str | None) -> pathlib.Path:
    if configured:
        return pathlib.Path(configured).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return pathlib.Path(base) / "mlsysim_opt"


@lru_cache(maxsize=None)
def _usable(folder: pathlib.Path) -> pathlib.Path | None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return folder if os.access(folder, os.W_OK | os.X_OK) else None


@lru_cache(maxsize=None)
def file_digest(path: str) -> str:
    """SHA-256 of a file's bytes (read once per process)."""
    return hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()


def environment() -> tuple[str, ...]:
    """What every key includes: the package and Python versions and the cache format."""
    from mlsysim_opt import __version__
    return (f"mlsysim_opt {__version__}", f"python {sys.version}", f"format {FORMAT}")


def make_key(parts: Iterable[str]) -> str:
    """A file name safe key for ``parts`` (with :func:`environment` added)."""
    digest = hashlib.sha256()
    for part in (*environment(), *parts):
        digest.update(part.encode("utf-8"))
        digest.update(b"\0")   # ("ab", "c") and ("a", "bc") differ
    return digest.hexdigest()


def entry_path(kind: str, key: str) -> pathlib.Path | None:
    folder = cache_dir()
    return None if folder is None else folder / kind / f"{key}.json"


def load(kind: str, key: str) -> dict | None:
    """The entry stored under ``key``, or None (missing, unreadable or not a JSON object)."""
    path = entry_path(kind, key)
    if path is None:
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("key") == key else None


def store(kind: str, key: str, payload: dict) -> None:
    """Write ``payload`` under ``key`` atomically; a failure only means no entry."""
    path = entry_path(kind, key)
    if path is None:
        return
    write_atomically(path, json.dumps({**payload, "key": key}))


def write_atomically(path: pathlib.Path, text: str) -> bool:
    """Write ``text`` to ``path`` through a temporary file in the same folder and a rename."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp")
    except OSError:
        return False
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temporary, path)
        return True
    except OSError:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        return False
