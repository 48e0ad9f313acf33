"""Calibrated efficiency profiles: the achieved fractions of peak the models use by default.

``registry/efficiency_profiles.yaml`` holds, per hardware x compute precision x phase (serving,
training), the factors fitted by ``calibrate_profiles`` to the published measurements of
``registry/measurements.yaml`` (``benchmarks/calibrate_profiles.py --write`` refits them), with
the measurements used and the leave-one-out error. A (hardware, precision, phase) with no profile
borrows from the nearest profile (``nearest_profile``); ``calibration="flat"`` asks for the
tutorial's flat factors everywhere.
"""
from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path
from typing import NamedTuple, Optional

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict

from .errors import InputError

FLAT = {"efficiency": 0.5, "bandwidth_efficiency": 1.0}
CALIBRATIONS = ("profile", "flat")
PROFILES_FILE = Path(str(resources.files("mlsysim_opt.registry") / "efficiency_profiles.yaml"))
_SAME_RATE = {"bf16": "fp16"}   # one 16-bit profile: the tensor cores run both at one rate


class EfficiencyProfile(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    hardware: str                     # registry key
    applies_to: tuple[str, ...]       # registry keys of the records (same chip) it serves
    precision: str
    phase: str
    efficiency: float
    bandwidth_efficiency: float
    fitted: tuple[str, ...]
    measurements: tuple[str, ...]     # ids in registry/measurements.yaml
    leave_one_out_median_error: float
    leave_one_out_errors: dict[str, float] = {}   # measurement id -> error of a fit without it
    holdout_median_error: Optional[float] = None
    fitted_on: str                    # date of the fit

    def describe(self, names=None) -> str:
        what = ", ".join(f"{k} {getattr(self, k):.2f}" for k in (names or self.fitted))
        return (f"{what} ({self.hardware} {self.precision} {self.phase} profile, {len(self.measurements)} published "
                f"measurements, leave-one-out median error {100 * self.leave_one_out_median_error:.0f}%)")


class Factors(NamedTuple):
    efficiency: float
    bandwidth_efficiency: float
    basis: str


@functools.lru_cache(maxsize=1)
def profiles() -> dict[tuple[str, str, str], EfficiencyProfile]:
    """Every shipped profile by (hardware record name, precision, phase)."""
    from .catalog import Hardware
    data = yaml.safe_load(PROFILES_FILE.read_text()) or {}
    out = {}
    for name, entry in (data.get("profiles") or {}).items():
        p = EfficiencyProfile(name=name, fitted_on=data["fitted_on"], **entry)
        for key in p.applies_to:
            out[(getattr(Hardware, key).name, p.precision, p.phase)] = p
    return out


def profile_for(hardware, precision: str, phase: str) -> EfficiencyProfile | None:
    """The profile fitted for exactly this hardware, precision and phase, if any."""
    name = getattr(hardware, "name", hardware)
    return profiles().get((name, _SAME_RATE.get(precision, precision), phase))


class Borrowed(NamedTuple):
    """Factors for a (hardware, precision, phase) without a profile of its own, and whence."""
    efficiency: float
    bandwidth_efficiency: float
    source: str


def _width(precision: str) -> float:
    from .types import PRECISION_BYTES
    return PRECISION_BYTES.get(precision, 2.0)


def nearest_profile(hardware, precision: str, phase: str) -> EfficiencyProfile | Borrowed | None:
    """The profile a solve uses: its own; else this hardware's profile at a precision of the same
    width (fp8 for int8), else at its nearest width; else the median of the phase's profiles over the
    measured hardware (the flat factors would make unmeasured hardware look faster than measured
    hardware, since no measured accelerator reaches 0.5 of peak FLOP/s and full bandwidth at once)."""
    own = profile_for(hardware, precision, phase)
    if own is not None:
        return own
    name = getattr(hardware, "name", hardware)
    mine = [p for (n, _, ph), p in profiles().items() if n == name and ph == phase]
    if mine:
        p = min(mine, key=lambda q: (abs(_width(q.precision) - _width(precision)), q.precision))
        return Borrowed(p.efficiency, p.bandwidth_efficiency, f"{p.name} profile, applied to {precision}")
    every = {p.name: p for (_, _, ph), p in profiles().items() if ph == phase}
    if not every:
        return None
    eta = float(np.median([p.efficiency for p in every.values()]))
    bw = float(np.median([p.bandwidth_efficiency for p in every.values()]))
    if len(every) == 1:
        return Borrowed(eta, bw, f"{next(iter(every))} profile, the only {phase} profile; {name} has none")
    return Borrowed(eta, bw, f"median of the {len(every)} calibrated {phase} profiles; {name} has none")


def _calibration(calibration: str) -> str:
    if calibration not in CALIBRATIONS:
        raise InputError("calibration", calibration, f"must be one of {list(CALIBRATIONS)} ('flat': the tutorial's "
                                                     "efficiency 0.5 and full memory bandwidth)")
    return calibration


PHASE_FACTORS = {"serving": ("efficiency", "bandwidth_efficiency"), "training": ("efficiency",)}


def factors(hardware, precision: str, phase: str, *, efficiency=None, bandwidth_efficiency=None,
            calibration: str = "profile") -> Factors:
    """The factors a solve uses: given ones as given, the others from the profile of ``hardware``
    at ``precision`` in ``phase`` ("serving" or "training"), else the flat ones. ``basis`` says
    which, in words."""
    names = PHASE_FACTORS[phase]
    given = {"efficiency": efficiency, "bandwidth_efficiency": bandwidth_efficiency}
    missing = [n for n in names if given[n] is None]
    profile = (nearest_profile(hardware, precision, phase)
               if _calibration(calibration) == "profile" and missing else None)
    value = {n: given[n] if given[n] is not None else getattr(profile, n) if profile else FLAT[n] for n in FLAT}
    as_given = [n for n in names if n not in missing]
    if not missing:
        basis = "as given"
    elif isinstance(profile, EfficiencyProfile):
        basis = profile.describe(missing)
    elif profile is not None:
        basis = ", ".join(f"{n} {value[n]:.2f}" for n in missing) + f" ({profile.source})"
    else:
        flat = ", ".join(f"{n} {FLAT[n]:.1f}" for n in missing)
        basis = (f"flat: {flat} (the tutorial's)" if calibration == "flat" else
                 f"flat: {flat} (no calibrated {phase} profile)")
    if missing and as_given:
        basis += f"; {', '.join(f'{n} {given[n]:g}' for n in as_given)} as given"
    return Factors(float(value["efficiency"]), float(value["bandwidth_efficiency"]), basis)
