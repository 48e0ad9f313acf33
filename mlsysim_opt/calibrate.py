"""Fit the efficiency factors of the roofline to a user's own measurements.

``calibrate(measurements)`` finds the compute efficiency ``efficiency`` (fraction of peak FLOP/s),
the bandwidth efficiency ``bandwidth_efficiency`` (fraction of peak memory bandwidth) and,
optionally, a scale on the launch overheads, that minimize the squared *relative* error of the
roofline latency against the measured latencies (bounded least squares, with the exact Jacobian
from the symbolic derivatives of the same latency expression the Engine evaluates).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterable, Optional

import numpy as np
from pydantic import BaseModel, ConfigDict

from . import inputs as _in
from .errors import InputError
from .profiles import FLAT, PHASE_FACTORS
from .units import as_quantity

PARAMETERS = ("efficiency", "bandwidth_efficiency", "overhead_scale")


class Measurement(BaseModel):
    """One measured latency of one configuration (the same arguments as ``Engine.solve``)."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    model: object
    hardware: object
    latency: object
    batch_size: int = 1
    precision: str = "fp16"
    seq_len: Optional[int] = None
    is_training: bool = False


class CalibrationResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    efficiency: float
    bandwidth_efficiency: float
    overhead_scale: float
    rms_relative_error: float
    max_relative_error: float
    errors: list[float]
    n_measurements: int

    def __str__(self) -> str:
        return (f"efficiency {self.efficiency:.3f}, bandwidth_efficiency {self.bandwidth_efficiency:.3f}, "
                f"overhead x{self.overhead_scale:.2f}; RMS error {100 * self.rms_relative_error:.1f}%, "
                f"max {100 * self.max_relative_error:.1f}% over {self.n_measurements} measurements")


def _lowered(m: Measurement) -> tuple[dict, float]:
    wl, hw = _in.workload(m.model), _in.hardware(m.hardware)
    batch = _in.positive_int(m.batch_size, "batch_size")
    seq = _in.DEFAULT_SEQ_LEN if m.seq_len is None else _in.positive_int(m.seq_len, "seq_len")
    choice = _in.precision_for(hw, m.precision, warn=False)
    values = _in.workload_values(wl, choice, batch_size=batch, seq_len=seq, is_training=m.is_training)
    values.update(_in.hardware_values(hw, choice))
    measured = float(as_quantity(m.latency, "s", "latency").magnitude)
    if not measured > 0:
        raise InputError("latency", m.latency, "must be > 0")
    return values, measured


def calibrate(measurements: Iterable[Measurement | dict], *, fit_overhead: bool = False,
              initial: tuple[float, float, float] = (0.5, 0.9, 1.0)) -> CalibrationResult:
    """Least-squares fit of the efficiency factors (see the module docstring)."""
    from scipy.optimize import least_squares

    from .models import roofline
    rows = [m if isinstance(m, Measurement) else Measurement(**m) for m in measurements]
    if not rows:
        raise InputError("measurements", [], "must contain at least one measurement")
    lowered = [_lowered(m) for m in rows]
    n_free = 3 if fit_overhead else 2
    if len(rows) < n_free:
        raise InputError("measurements", len(rows), f"must number at least {n_free} to fit {n_free} factors")
    latency = roofline.sheet.compiled(["latency"])
    grad = roofline.sheet.gradient("latency", ["efficiency", "bandwidth_efficiency", "dispatch_tax", "layer_tax"])

    def evaluate(theta):
        eta, eta_bw, scale = (*theta, 1.0) if not fit_overhead else theta
        res, jac = [], []
        for values, measured in lowered:
            v = dict(values, efficiency=eta, bandwidth_efficiency=eta_bw,
                     dispatch_tax=values["dispatch_tax"] * scale, layer_tax=values["layer_tax"] * scale)
            t = latency(**v)["latency"]
            g = grad(**v)
            res.append(t / measured - 1.0)
            row = [g["efficiency"] / measured, g["bandwidth_efficiency"] / measured]
            if fit_overhead:  # d/d scale of (tau_d * s + passes L tau_l * s)
                row.append((g["dispatch_tax"] * values["dispatch_tax"] + g["layer_tax"] * values["layer_tax"])
                           / measured)
            jac.append(row)
        return np.array(res), np.array(jac)

    x0 = np.array(initial[:n_free], dtype=float)
    lower = [1e-3, 1e-3, 0.0][:n_free]
    upper = [1.0, 1.0, 100.0][:n_free]
    fit = least_squares(lambda x: evaluate(x)[0], x0, jac=lambda x: evaluate(x)[1], bounds=(lower, upper))
    errors = [float(e) for e in evaluate(fit.x)[0]]
    eta, eta_bw = float(fit.x[0]), float(fit.x[1])
    scale = float(fit.x[2]) if fit_overhead else 1.0
    return CalibrationResult(efficiency=eta, bandwidth_efficiency=eta_bw, overhead_scale=scale,
                             rms_relative_error=math.sqrt(sum(e * e for e in errors) / len(errors)),
                             max_relative_error=max(abs(e) for e in errors), errors=errors,
                             n_measurements=len(rows))


# ---------------------------------------------------------------- efficiency profiles
# Achieved fractions of peak per hardware x compute precision x phase, fitted to published
# measurements. Training fits ``efficiency`` (fraction of peak FLOP/s). Serving fits both
# ``efficiency`` and ``bandwidth_efficiency`` (fraction of peak memory bandwidth) on prefill, decode
# and whole-replica throughput points together: the serving sheets apply one compute efficiency to
# prefill and decode GEMMs, and a decode step at a large batch is compute-bound.
FACTOR_BOUNDS = (0.05, 1.0)
PRIOR_WEIGHT = 0.1   # a weak pull toward the flat factors (in log space): unidentified directions stay there


@dataclass(frozen=True)
class CalibrationPoint:
    """One published figure and how the model predicts it.

    ``predict(efficiency, bandwidth_efficiency)`` returns the modelled value in the unit of
    ``published``. ``use`` is "fit" or "holdout"; a holdout point never enters a fit."""

    id: str
    hardware: str
    precision: str
    phase: str
    published: float
    use: str
    predict: Callable[[float, float], float]

    def __post_init__(self):
        if self.phase not in PHASE_FACTORS:
            raise InputError("phase", self.phase, f"must be one of {sorted(PHASE_FACTORS)}")
        if self.use not in ("fit", "holdout"):
            raise InputError("use", self.use, "must be 'fit' or 'holdout'")
        if not self.published > 0:
            raise InputError("published", self.published, "must be > 0")


class ProfileFit(BaseModel):
    """The fitted factors of one (hardware, precision, phase) group and how well they predict."""

    model_config = ConfigDict(frozen=True)

    hardware: str
    precision: str
    phase: str
    factors: dict[str, float]               # both factors; the fitted ones are named in ``fitted``
    fitted: list[str]
    fit_ids: list[str]
    fit_errors: dict[str, float]            # prediction / published - 1 with all fit points
    leave_one_out_errors: dict[str, float]  # each fit point predicted by a fit without it
    holdout_errors: dict[str, float]

    @property
    def leave_one_out_median(self) -> float:
        return float(np.median([abs(e) for e in self.leave_one_out_errors.values()]))


def _errors(points, factors: dict[str, float]) -> dict[str, float]:
    return {p.id: p.predict(factors["efficiency"], factors["bandwidth_efficiency"]) / p.published - 1
            for p in points}


def _fit_factors(points, names, start: dict[str, float]) -> dict[str, float]:
    """Least squares of log(predicted / published), plus a weak prior toward ``start``."""
    from scipy.optimize import least_squares
    x0 = np.array([start[n] for n in names])

    def residuals(x):
        f = dict(start, **dict(zip(names, x)))
        r = [math.log(max(p.predict(f["efficiency"], f["bandwidth_efficiency"]), 1e-300) / p.published)
             for p in points]
        return np.array(r + list(PRIOR_WEIGHT * np.log(x / x0)))

    fit = least_squares(residuals, x0, bounds=([FACTOR_BOUNDS[0]] * len(names), [FACTOR_BOUNDS[1]] * len(names)),
                        diff_step=1e-3, x_scale=0.1, xtol=1e-4)
    return dict(start, **{n: float(x) for n, x in zip(names, fit.x)})


def calibrate_profiles(points: Iterable[CalibrationPoint], *, min_points: int = 2) -> list[ProfileFit]:
    """Fit the factors of each (hardware, precision, phase) group on its "fit" points.

    Starts from (and is weakly held to) the tutorial's flat factors, efficiency 0.5 and
    bandwidth_efficiency 1.0; groups with fewer than ``min_points`` fit points are not fitted. Each
    result carries its leave-one-out errors (every fit point predicted by a fit on the others) and
    its errors on the group's holdout points."""
    groups: dict[tuple[str, str, str], list[CalibrationPoint]] = {}
    for p in points:
        groups.setdefault((p.hardware, p.precision, p.phase), []).append(p)
    out = []
    for (hw, prec, phase), members in sorted(groups.items()):
        fit = [p for p in members if p.use == "fit"]
        if len(fit) < min_points:
            continue
        names = PHASE_FACTORS[phase]
        factors = _fit_factors(fit, names, dict(FLAT))
        loo = {}
        for p in fit:
            loo.update(_errors([p], _fit_factors([q for q in fit if q is not p], names, dict(FLAT))))
        out.append(ProfileFit(hardware=hw, precision=prec, phase=phase, factors=factors, fitted=list(names),
                              fit_ids=[p.id for p in fit], fit_errors=_errors(fit, factors),
                              leave_one_out_errors=loo,
                              holdout_errors=_errors([p for p in members if p.use == "holdout"], factors)))
    return out
