"""Design-space exploration: declare a space, an objective and constraints; search; rank.

Three paths:

* ``DSE(space, objective, constraints).search(evaluate)`` calls ``evaluate(params)`` for every point
  of the Cartesian product of ``space`` (any model, any result type, e.g. a ``Pipeline.run`` dict);
* ``DSE(..., backend="optuna", n_trials=200)`` (or :func:`optimize`) samples spaces that are too
  large to enumerate or continuous: TPE for one objective, NSGA-II with a Pareto front and its
  hypervolume for several; studies can persist in SQLite or PostgreSQL and be shared by worker
  processes (:mod:`mlsysim_opt.dse_optuna`);
* ``DSE.roofline_grid(model, hardware=[...], batch_sizes=[...], ...)`` evaluates the roofline sheet
  over the whole grid at once with NumPy (10^6 points in about a second) and applies the objective
  and constraints as array operations.

Points whose result reports ``feasible`` False anywhere inside it (attribute or dict key, at any
depth) are dropped before the objective is read. Evaluator exceptions are collected with their
parameters in ``errors``; if every point fails, the search raises with the first error.
Objective and constraint strings follow :mod:`mlsysim_opt.expressions`.
"""
from __future__ import annotations

import heapq
import itertools
import math
import numbers
import time
from typing import Any, Callable, Optional

import numpy as np
import pint
from pydantic import BaseModel

from . import expressions as ex
from .dse_optuna import Range
from .engine import PROFILE_OUTPUTS, profile_factors
from .errors import InputError, MlsysimError, SolverError, UnknownNameError
from .results import Result

BACKENDS = ("exhaustive", "optuna")


class InfeasibleSpaceError(MlsysimError):
    """Every evaluated point was infeasible or violated a constraint."""


class DSEResult(Result):
    """Outcome of a search: the best point, the ranked top candidates and what was dropped."""

    objective: str
    direction: str
    best_params: dict
    best_objective: float
    objective_unit: Optional[str] = None
    best_result: Any = None
    top_candidates: list[dict]
    space_size: Optional[int]          # None when a dimension is continuous
    evaluated: int
    satisfying: int
    dropped_infeasible: int
    dropped_constraints: int
    constraint_violations: dict[str, int]
    errors: list[dict]
    backend: str
    elapsed_s: float
    table: Any = None
    # sampled search (backend="optuna")
    objectives: Optional[list[str]] = None
    directions: Optional[list[str]] = None
    objective_units: Optional[list[Optional[str]]] = None
    best_values: Optional[list[float]] = None
    pareto_front: Optional[list[dict]] = None
    hypervolume: Optional[float] = None
    reference_point: Optional[list[float]] = None
    study_name: Optional[str] = None
    storage: Optional[str] = None
    seed: Optional[int] = None
    sampler: Optional[str] = None
    trials_in_study: Optional[int] = None


# ------------------------------------------------------------------------------------------------
# Shared checks


def _space(space) -> dict[str, list]:
    if not isinstance(space, dict):
        raise InputError("space", space, "must be a dict of dimension name -> list of values",
                         "e.g. {'batch_size': [1, 8, 32], 'precision': ['fp16', 'int8']}")
    if not space:
        raise InputError("space", space, "is empty", "give at least one dimension with at least one value")
    out = {}
    for name, values in space.items():
        if not isinstance(name, str):
            raise InputError("space", name, "has a dimension name that is not a string")
        if isinstance(values, (dict, Range)):
            raise InputError(f"space[{name!r}]", values, "is a range, which the exhaustive backend cannot enumerate",
                             "list the values, or search it with backend='optuna'")
        if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
            raise InputError(f"space[{name!r}]", values, "must be a list of values", f"e.g. [{values!r}]")
        values = list(values)
        if not values:
            raise InputError(f"space[{name!r}]", values, "has no values", "give at least one value or drop the dimension")
        out[name] = values
    return out


def _top_k(top_k) -> int:
    from .inputs import positive_int
    return positive_int(top_k, "top_k")


def is_infeasible(result: Any, _depth: int = 0) -> bool:
    """True when ``result`` or a part of it reports ``feasible`` False (attribute or dict key, at any
    depth of dicts and result fields). Lists and tuples are not searched: they hold alternatives
    (e.g. a synthesis result's rejected candidates), not parts of this configuration."""
    if _depth > 8 or result is None or isinstance(result, (str, bytes, numbers.Number, pint.Quantity,
                                                               np.ndarray, list, tuple)):
        return False
    if isinstance(result, dict):
        if _is_false(result.get("feasible")):
            return True
        return any(is_infeasible(v, _depth + 1) for v in result.values())
    if _is_false(getattr(result, "feasible", None)):
        return True
    if isinstance(result, BaseModel):
        return any(is_infeasible(getattr(result, k, None), _depth + 1) for k in type(result).model_fields)
    return False


def _is_false(v) -> bool:
    return v is False or (isinstance(v, np.bool_) and not bool(v))


# ------------------------------------------------------------------------------------------------


class DSE:
    """Declarative design-space explorer.

    ``objective``: ``"maximize: path"``, ``"minimize: path"`` or ``"maximize(path)"``; ``constraints``:
    strings such as ``"latency < 100 ms"``, ``"feasible == True"``, ``"EconomicsModel.tco_usd <= 1e6"``.
    A plain number compares to a quantity in the quantity's own unit (``latency < 100`` is 100 ms for
    a result that reports latency in ms).

    ``backend="optuna"`` samples instead of enumerating (see :mod:`mlsysim_opt.dse_optuna`): the
    space may then hold ranges (``{"low": 0.3, "high": 0.7}``, ``{"low": 1, "high": 512, "int": True}``),
    ``objective`` may be a list (NSGA-II, Pareto front), and ``n_trials``, ``seed``, ``storage``,
    ``study_name``, ``directions``, ``timeout``, ``reference_point``, ``population_size`` and
    ``cache`` apply.
    """

    def __init__(self, space: dict, objective, constraints=None, backend: str = "exhaustive",
                 top_k: int = 5, progress: bool = False, *, n_trials: Optional[int] = None, seed: Optional[int] = 0,
                 storage=None, study_name: Optional[str] = None, directions=None, timeout: Optional[float] = None,
                 reference_point=None, population_size: Optional[int] = None, cache: bool = True):
        if backend not in BACKENDS:
            raise UnknownNameError("DSE backend", str(backend), BACKENDS)
        self.backend = backend
        self.top_k = _top_k(top_k)
        self.progress = bool(progress)
        self.constraints = ex.parse_constraints(constraints)
        if backend == "optuna":
            from . import dse_optuna
            self.dimensions = dse_optuna.parse_space(space)
            self.space = {n: list(d.values) if isinstance(d, dse_optuna.Choice) else d
                          for n, d in self.dimensions.items()}
            self.objectives = dse_optuna.parse_objectives(objective, directions)
            self.objective = self.objectives[0]
            self._optuna = dse_optuna.OptunaSearch(
                self.dimensions, self.objectives, self.constraints, n_trials=_n_trials(n_trials),
                seed=_seed(seed), storage=storage, study_name=_study_name(study_name), top_k=self.top_k,
                progress=self.progress, timeout=_timeout(timeout), reference_point=reference_point,
                population_size=None if population_size is None else _population(population_size),
                cache=bool(cache))
            return
        given = {k: v for k, v in (("n_trials", n_trials), ("storage", storage), ("study_name", study_name),
                                   ("timeout", timeout), ("reference_point", reference_point),
                                   ("population_size", population_size)) if v is not None}
        if given:
            name = next(iter(given))
            raise InputError(name, given[name], "applies only to the sampled search",
                             "pass backend='optuna', or drop it: the exhaustive backend evaluates every point")
        self.space = _space(space)
        objectives = objective if isinstance(objective, (list, tuple)) else [objective]
        if len(objectives) != 1:
            raise InputError("objective", objective, f"has {len(objectives)} objectives; the exhaustive backend ranks by one",
                             "use backend='optuna' (NSGA-II Pareto front), or the MILP Pareto formulations")
        if directions is not None:
            from .dse_optuna import parse_objectives
            self.objective = parse_objectives(objectives, directions)[0]
        else:
            self.objective = ex.parse_objective(objectives[0])
        self.objectives = [self.objective]

    @property
    def size(self) -> Optional[int]:
        """Number of points in the space (None when a dimension is continuous)."""
        if self.backend == "optuna":
            from .dse_optuna import space_size
            return space_size(self.dimensions)
        return math.prod(len(v) for v in self.space.values())

    def points(self):
        if self.size is None:
            raise InputError("space", self.space, "has a continuous range and cannot be enumerated",
                             "list the values of every dimension")
        names = list(self.space)
        for combo in itertools.product(*self.space.values()):
            yield dict(zip(names, combo))

    # --------------------------------------------------------------------------------------------
    def search(self, evaluate: Callable[[dict], Any]) -> DSEResult:
        """Evaluate every point of the space with ``evaluate(params)`` and rank the survivors."""
        if not callable(evaluate):
            raise InputError("evaluate", evaluate, "must be a function of one dict of parameters",
                             "e.g. lambda p: Engine.solve(model, hw, **p)")
        if self.backend == "optuna":
            return self._optuna.run(evaluate)
        start = time.perf_counter()
        sign = -1.0 if self.objective.maximize else 1.0
        heap: list = []          # the top_k best so far, worst on top: (-key, -seq, entry)
        errors: list[dict] = []
        first_exc: BaseException | None = None
        violations = {c.text: 0 for c in self.constraints}
        closest: dict[str, Any] = {}
        counts = dict(evaluated=0, infeasible=0, constraints=0, satisfying=0)
        unit = None
        checked = False

        for seq, params in enumerate(self._iterate()):
            counts["evaluated"] += 1
            try:
                result = evaluate(dict(params))
            except Exception as exc:  # collected with its point, reported, never silently dropped
                errors.append(_error(params, exc))
                first_exc = first_exc or exc
                continue
            if not checked:   # unknown fields are a mistake in the query: fail on the first result
                self._check_paths(result)
                checked = True
            if is_infeasible(result):
                counts["infeasible"] += 1
                continue
            try:   # a field missing or not numeric at this point is this point's error
                failed = [c for c in self.constraints if not ex.check(c, result, c.text)]
                if failed:
                    counts["constraints"] += 1
                    for c in failed:
                        violations[c.text] += 1
                        _track_closest(closest, c, result)
                    continue
                raw = ex.resolve(result, self.objective.path, "objective")
                value, unit = ex.objective_number(raw, unit)
            except ex.PathError as exc:
                errors.append(_error(params, exc))
                first_exc = first_exc or exc
                continue
            except InputError as exc:
                if exc.field != "objective":
                    raise          # a constraint that cannot be compared is a mistake in the query
                errors.append(_error(params, exc))
                first_exc = first_exc or exc
                continue
            if math.isnan(value):
                errors.append(_error(params, ValueError(f"objective {self.objective.path} is NaN")))
                continue
            counts["satisfying"] += 1
            entry = {"params": dict(params), "objective_value": value, "result": result}
            item = (-sign * value, -seq, entry)
            if len(heap) < self.top_k:
                heapq.heappush(heap, item)
            else:
                heapq.heappushpop(heap, item)

        if counts["evaluated"] and len(errors) == counts["evaluated"]:
            raise SolverError(f"all {counts['evaluated']} points raised an error; the first, at "
                              f"{errors[0]['params']}: {errors[0]['type']}: {errors[0]['message']}") from first_exc
        if not heap:
            raise InfeasibleSpaceError(self._nothing_left(counts, violations, closest, errors))
        ranked = [e for _, _, e in sorted(heap, key=lambda t: (-t[0], -t[1]))]
        best = ranked[0]
        return DSEResult.model_construct(
            objective=self.objective.text, direction=self.objective.direction,
            best_params=best["params"], best_objective=best["objective_value"],
            objective_unit=None if unit is None else f"{unit:~P}", best_result=best["result"],
            top_candidates=ranked, space_size=self.size, evaluated=counts["evaluated"],
            satisfying=counts["satisfying"], dropped_infeasible=counts["infeasible"],
            dropped_constraints=counts["constraints"], constraint_violations=violations, errors=errors,
            backend=self.backend, elapsed_s=time.perf_counter() - start, table=None)

    def _iterate(self):
        if not self.progress:
            yield from self.points()
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
        columns = (TextColumn("DSE"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
        with Progress(*columns, transient=True) as bar:
            task = bar.add_task("search", total=self.size)
            for params in self.points():
                yield params
                bar.advance(task)

    def _check_paths(self, result) -> None:
        ex.resolve(result, self.objective.path, "objective")
        for i, c in enumerate(self.constraints):
            for path in c.paths():
                ex.resolve(result, path, f"constraints[{i}]")

    def _nothing_left(self, counts, violations, closest, errors) -> str:
        return _nothing_left_message(counts, violations, closest, errors)

    # --------------------------------------------------------------------------------------------
    @staticmethod
    def roofline_grid(model, hardware, batch_sizes=(1,), precisions=("fp16",), efficiencies=(0.5,),
                      seq_lens=None, objective: str = "maximize: throughput", constraints=None,
                      top_k: int = 5, is_training: bool = False, return_table: bool = False) -> DSEResult:
        """The roofline over hardware x precision x batch x efficiency x seq_len in one vectorized
        evaluation of the sheet (the machinery of ``Engine.sweep_table``), objective and constraints
        applied with NumPy. Fields are named as in ``PerformanceProfile`` and carry its units
        (latency in ms, throughput in 1/s, energy in J, memory in GB), so a plain-number threshold
        means the same thing here as in ``DSE.search`` over ``Engine.solve``. The top candidates are
        re-solved with ``Engine.solve`` and carry full profiles."""
        start = time.perf_counter()
        obj = ex.parse_objective(objective)
        cons = ex.parse_constraints(constraints)
        k = _top_k(top_k)
        grid = evaluate_grid(model, hardware, batch_sizes, precisions, efficiencies, seq_lens, is_training)
        columns = grid.columns
        key_values, unit = _grid_operand(obj.path, columns, "objective")
        if key_values.dtype.kind not in "fi":
            raise InputError("objective", obj.text, f"names {obj.path.text!r}, which is not numeric")
        feasible = columns["feasible"]
        mask = feasible.copy()
        violations = {}
        for i, c in enumerate(cons):
            ok = _grid_check(c, columns, f"constraints[{i}]")
            violations[c.text] = int(np.count_nonzero(feasible & ~ok))
            mask &= ok
        mask &= ~np.isnan(key_values)
        n = len(feasible)
        satisfying = int(np.count_nonzero(mask))
        dropped_infeasible = int(n - np.count_nonzero(feasible))
        if satisfying == 0:
            parts = [f"no configuration is left: {n} evaluated, {dropped_infeasible} infeasible (do not fit)"]
            parts += [f"'{t}' failed {v} time(s)" for t, v in violations.items() if v]
            raise InfeasibleSpaceError("; ".join(parts) + ". Relax a constraint or widen the grid.")
        idx = np.flatnonzero(mask)
        keys = -key_values[idx] if obj.maximize else key_values[idx]
        if len(idx) > k:   # partial selection, then a stable sort of the few that tie at the cut
            cut = np.partition(keys, k - 1)[k - 1]
            near = keys <= cut
            idx, keys = idx[near], keys[near]
        order = np.lexsort((idx, keys))[:k]
        top = []
        for j in idx[order]:
            params = grid.params(int(j))
            profile = grid.solve(int(j))
            top.append({"params": params, "objective_value": float(key_values[j]), "result": profile})
        table = grid.frame() if return_table else None
        return DSEResult.model_construct(
            objective=obj.text, direction=obj.direction, best_params=top[0]["params"],
            best_objective=top[0]["objective_value"], objective_unit=unit, best_result=top[0]["result"],
            top_candidates=top, space_size=n, evaluated=n, satisfying=satisfying,
            dropped_infeasible=dropped_infeasible, dropped_constraints=int(np.count_nonzero(feasible) - satisfying),
            constraint_violations=violations, errors=[], backend="vectorized",
            elapsed_s=time.perf_counter() - start, table=table)


def _nothing_left_message(counts, violations, closest, errors,
                         fix: str = "Relax a constraint or widen the space.") -> str:
    parts = [f"no configuration is left: {counts['evaluated']} evaluated, "
             f"{counts['infeasible']} infeasible (feasible=False), "
             f"{counts['constraints']} violated a constraint, {len(errors)} raised an error"]
    for text, n in violations.items():
        if n:
            near = closest.get(text)
            hint = f" (closest value seen: {near:.4g~P})" if isinstance(near, pint.Quantity) else (
                f" (closest value seen: {near:.4g})" if isinstance(near, float) else "")
            parts.append(f"'{text}' failed {n} time(s){hint}")
    return "; ".join(parts) + ". " + fix


def optimize(evaluate: Callable[[dict], Any], space: dict, objective, constraints=(), backend: str = "optuna",
             **options) -> DSEResult:
    """Search ``space`` for the best ``objective`` of ``evaluate(params)`` under ``constraints``:
    ``DSE(space, objective, constraints, backend=backend, **options).search(evaluate)``. The default
    backend samples (Optuna); options: ``n_trials`` (200), ``seed`` (0), ``storage`` (a SQLite file
    path or an RDB URL; None keeps the study in memory), ``study_name``, ``directions``,
    ``timeout``, ``reference_point``, ``population_size``, ``top_k``, ``progress``, ``cache``."""
    return DSE(space, objective, constraints, backend=backend, **options).search(evaluate)


def _n_trials(value) -> int:
    from .inputs import positive_int
    return 200 if value is None else positive_int(value, "n_trials")


def _seed(value) -> Optional[int]:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise InputError("seed", value, "must be a whole number >= 0 or None",
                         "the same seed gives the same trials; None draws a fresh one")
    return int(value)


def _study_name(value) -> Optional[str]:
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise InputError("study_name", value, "must be a non-empty string or None",
                         "None names the study after the query, so re-running resumes it")
    return value


def _timeout(value) -> Optional[float]:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value > 0:
        raise InputError("timeout", value, "must be a positive number of seconds or None")
    return float(value)


def _population(value) -> int:
    from .inputs import positive_int
    return positive_int(value, "population_size", minimum=2)


def _error(params: dict, exc: BaseException) -> dict:
    return {"params": dict(params), "type": type(exc).__name__, "message": str(exc)}


def _track_closest(closest: dict, c: ex.Constraint, result) -> None:
    """Remember the value nearest to satisfying an ordering constraint, for the 'nothing left' message."""
    if c.op not in ("<", "<=", ">", ">=") or not isinstance(c.left, ex.Path):
        return
    try:
        value = ex.resolve(result, c.left)
    except ex.PathError:
        return
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        value = float(value)
    elif not isinstance(value, pint.Quantity):
        return
    best = closest.get(c.text)
    try:
        better = best is None or (value < best if c.op in ("<", "<=") else value > best)
    except Exception:
        return
    if better:
        closest[c.text] = value


# ------------------------------------------------------------------------------------------------
# Vectorized operands


def _grid_operand(operand, columns: dict, field: str):
    """(array or scalar, unit text or None) for a path or literal over the grid's columns."""
    if isinstance(operand, ex.Literal):
        return operand.value, None
    name = operand.parts[0] if len(operand.parts) == 1 else None
    if name not in columns:
        raise ex.PathError(field, operand.text, f"names {operand.text!r}, which the roofline grid does not have",
                           f"available fields: {', '.join(columns)}") from None
    return columns[name], FIELD_UNITS.get(name)


def _grid_check(c: ex.Constraint, columns: dict, field: str) -> np.ndarray:
    left, lunit = _grid_operand(c.left, columns, field)
    right, runit = _grid_operand(c.right, columns, field)
    left = _in_unit(left, lunit, runit, c, field)
    right = _in_unit(right, runit, lunit, c, field)
    with np.errstate(invalid="ignore"):
        out = ex.OPERATORS[c.op](left, right)
    return np.broadcast_to(np.asarray(out, dtype=bool), columns["feasible"].shape)


def _in_unit(value, own_unit, other_unit, c, field):
    """A literal quantity becomes a magnitude in the other side's unit; columns stay as they are."""
    if isinstance(value, pint.Quantity):
        target = other_unit if other_unit is not None else "dimensionless"
        try:
            return value.to(target).magnitude
        except pint.DimensionalityError:
            raise InputError(field, c.text, f"compares a field in {target} with {value:~P}",
                             "give the threshold in a unit of the same dimension") from None
    if value is None and isinstance(c.left, ex.Path) and isinstance(c.right, ex.Path):
        return value
    if isinstance(value, str) and other_unit is not None:
        raise InputError(field, c.text, "compares a number with text")
    if own_unit is None and other_unit is not None and isinstance(value, (list, tuple)):
        return np.asarray(value)
    return value


# ------------------------------------------------------------------------------------------------
# The roofline grid (same lowering and compiled sheet as Engine.sweep_table, kept as arrays)

GRID_FIELDS = ("latency", "latency_compute", "latency_memory", "latency_overhead", "throughput",
               "arithmetic_intensity", "ridge_point", "mfu", "energy", "energy_per_unit", "memory_footprint",
               "weights_size", "kv_cache_size", "memory_capacity", "peak_bw_actual")
"""Numeric columns of the grid, named like ``PerformanceProfile`` fields."""
FIELD_UNITS = {**{f: PROFILE_OUTPUTS[f][1] for f in GRID_FIELDS if f in PROFILE_OUTPUTS},
               "mfu": "dimensionless", "efficiency": "dimensionless"}
"""Units of the grid's numeric fields: those of ``PerformanceProfile``."""


class RooflineGrid:
    """Every point of a roofline grid as NumPy columns named like ``PerformanceProfile`` fields."""

    def __init__(self, workload, devices, grid, out, is_training: bool):
        from .inputs import TransformerWorkload
        self.workload, self.devices, self.is_training = workload, devices, is_training
        self.is_lm = isinstance(workload, TransformerWorkload)
        v, lab = grid.values, grid.labels
        factors = profile_factors()

        def column(field):   # the sheet's output (or input) in the unit of the profile field
            name = PROFILE_OUTPUTS[field][0] if field in PROFILE_OUTPUTS else field
            values = out[name] if name in out else v[name]
            mul, div = factors.get(field, (1.0, 1.0))
            if div != 1.0:
                return values / div
            return values * mul if mul != 1.0 else values

        self.columns = {
            "hardware": lab["hardware"], "precision": lab["precision"], "batch_size": v["batch_size"].astype(int),
            "efficiency": v["efficiency"], "seq_len": lab["seq_len"],
            **{field: column(field) for field in GRID_FIELDS},
            "bottleneck": np.where(out["latency_compute"] >= out["latency_memory"], "Compute", "Memory"),
            "feasible": out["memory_footprint"] <= v["memory_capacity"],
            "overhead_dominated": out["latency_overhead"] > out["latency_roofline"],
        }
        if not self.is_lm:
            del self.columns["seq_len"]

    def __len__(self) -> int:
        return len(self.columns["feasible"])

    def params(self, j: int) -> dict:
        c = self.columns
        out = {"hardware": str(c["hardware"][j]), "precision": str(c["precision"][j]),
               "batch_size": int(c["batch_size"][j]), "efficiency": float(c["efficiency"][j])}
        if self.is_lm:
            out["seq_len"] = int(c["seq_len"][j])
        return out

    def solve(self, j: int):
        import warnings
        from .engine import Engine
        p = self.params(j)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")   # fallbacks were chosen by the grid; the profile notes them
            return Engine.solve(self.workload, self.devices[p["hardware"]], batch_size=p["batch_size"],
                                precision=p["precision"], efficiency=p["efficiency"], seq_len=p.get("seq_len"),
                                is_training=self.is_training)

    def frame(self):
        import pandas as pd
        return pd.DataFrame(self.columns)


def evaluate_grid(model, hardware, batch_sizes, precisions, efficiencies, seq_lens, is_training) -> RooflineGrid:
    from . import inputs as _in
    from .engine import grid_values, roofline_function
    from .precision import normalize_precision
    wl = _in.workload(model)
    if hardware is None:
        raise InputError("hardware", hardware, "is required", "e.g. hardware=[Hardware.H100, Hardware.A100]")
    if isinstance(hardware, (str, BaseModel)):
        hardware = [hardware]
    devices = {}
    for h in _values(hardware, "hardware"):
        hw = _in.hardware(h, "hardware[]")
        devices.setdefault(hw.name, hw)
    batches = [_in.positive_int(b, "batch_sizes[]") for b in _values(batch_sizes, "batch_sizes")]
    precs = [normalize_precision(p, "precisions[]") for p in _values(precisions, "precisions")]
    etas = [_in.fraction(e, "efficiencies[]") for e in _values(efficiencies, "efficiencies")]
    seqs = [_in.DEFAULT_SEQ_LEN] if seq_lens is None else [
        _in.positive_int(s, "seq_lens[]") for s in _values(seq_lens, "seq_lens")]
    grid = grid_values(wl, list(devices.values()), precs, batches, etas, seqs, bool(is_training))
    out = roofline_function().vector(**grid.values)
    return RooflineGrid(wl, devices, grid, out, bool(is_training))


def _values(values, field: str) -> list:
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        values = [values]
    values = list(dict.fromkeys(values)) if all(isinstance(v, (int, float, str)) for v in values) else list(values)
    if not values:
        raise InputError(field, values, "has no values", "give at least one value")
    return values


__all__ = ["DSE", "DSEResult", "InfeasibleSpaceError", "RooflineGrid", "is_infeasible"]
