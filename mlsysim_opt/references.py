"""Two registries of what the tutorial relies on besides hardware and models.

* ``Literature``: cited scalar results, each a number with its unit, its source, and what it was
  measured on (Llama 3's interruptions, Chinchilla's tokens per parameter, published MFUs, DeepSeek-V3's
  GPU-hours). ``benchmarks/validation.py`` reads its published figures from here.
* ``Scenarios``: the tutorial's reusable setups, each exercise's and the capstone's, as data:
  what is asked, of which solver, with which arguments. The examples and the grader read them.

Both load from ``registry/literature.yaml`` and ``registry/scenarios.yaml`` like every registry
file (each number a ``{value, unit, source}`` leaf) and are checked by ``mlsysim-opt audit``.
"""
from __future__ import annotations

from typing import Any, Optional

import pint

from .errors import InputError
from .types import Record


class Citation(Record):
    """One published scalar: ``value`` (a pint quantity, or a plain number for counts and ratios),
    ``quantity`` (what it measures) and ``measured_on`` (the system, model and conditions)."""

    quantity: str
    value: Any
    measured_on: str
    note: Optional[str] = None

    def magnitude(self, unit: str | None = None) -> float:
        """The value as a float, in ``unit`` when it carries one."""
        if isinstance(self.value, pint.Quantity):
            return float(self.value.m_as(unit) if unit else self.value.magnitude)
        if unit not in (None, "", "dimensionless"):
            raise InputError(f"Literature.{self.name}", self.value, f"is a plain number and has no unit {unit!r}")
        return float(self.value)

    @property
    def source(self) -> str:
        return self.provenance.get("value", "")


class Scenario(Record):
    """A reusable tutorial setup: the question (``description``), the entry point that answers it
    (``solver``, e.g. ``"Engine.solve"``) and its arguments (``setup``: registry names, numbers and
    quantities)."""

    description: str
    solver: str
    setup: dict[str, Any]

    def arguments(self, **changes) -> dict[str, Any]:
        """The setup as keyword arguments, with ``changes`` applied (a copy: the record is frozen)."""
        unknown = sorted(set(changes) - set(self.setup))
        if unknown:
            raise InputError(f"Scenarios.{self.name}", unknown, f"are not arguments of this scenario; it has "
                             f"{', '.join(sorted(self.setup))}")
        return {**{k: _plain(v) for k, v in self.setup.items()}, **changes}


def _plain(value: Any) -> Any:
    """Lists stay lists (copies), everything else as loaded."""
    return list(value) if isinstance(value, list) else value
