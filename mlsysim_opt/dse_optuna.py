"""The Optuna backend of :class:`mlsysim_opt.dse.DSE`: sampled search for design spaces that are
too large to enumerate or have continuous dimensions.

* One objective: TPE (``optuna.samplers.TPESampler``, multivariate). Several objectives: NSGA-II
  (``NSGAIISampler``); the answer is the non-dominated set with its exact hypervolume.
* Constraints are the same strings the exhaustive search parses (:mod:`mlsysim_opt.expressions`).
  Each trial records one value per constraint (0 when it holds, the relative violation when it does
  not) plus one for ``feasible`` False anywhere in the result, with ``Trial.set_constraint`` (Optuna
  5; the samplers' ``constraints_func`` on older versions). Values <= 0 are feasible; both samplers
  steer towards feasible points, and an infeasible point is never ranked.
* Studies live in memory, in a SQLite file (``storage="dse.sqlite3"``) or in any RDB URL
  (``postgresql://...``): re-running adds trials, and several processes or machines can share one
  study.

A space value is a list (categorical choices) or a range::

    {"low": 0.3, "high": 0.7}                     continuous
    {"low": 1e-3, "high": 1.0, "log": True}       continuous, sampled on a log scale
    {"low": 0.25, "high": 2.0, "step": 0.25}      discrete floats, low + k * step
    {"low": 1, "high": 512, "int": True}          integers (step 1; "step" and "log" allowed)
    Range(1, 512, integer=True, log=True)         the same as an object
"""
from __future__ import annotations

import difflib
import hashlib
import json
import math
import numbers
import os
import re
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from . import expressions as ex
from .databases import installed_postgres_driver, masked
from .errors import InputError, SolverError
from .units import ureg

RANGE_KEYS = ("low", "high", "step", "log", "int")
RDB_SCHEMES = ("sqlite", "postgresql", "mysql")
STATUS_OK, STATUS_INFEASIBLE, STATUS_VIOLATED = "ok", "infeasible", "violated"
_ATTR_CONSTRAINTS = "dse_constraints"
_ATTR_QUERY, _ATTR_UNITS = "dse_query", "dse_units"


# ------------------------------------------------------------------------------------------------
# Space


@dataclass(frozen=True)
class Range:
    """A numeric dimension: ``low <= x <= high``, continuous unless ``step`` or ``integer``;
    ``log`` samples on a log scale (``low > 0``, no ``step``)."""

    low: float
    high: float
    step: Optional[float] = None
    log: bool = False
    integer: bool = False

    @property
    def size(self) -> Optional[int]:
        """Number of values, or None when continuous."""
        if self.integer:
            return (int(self.high) - int(self.low)) // int(self.step or 1) + 1
        if self.step is not None:
            return int(round((self.high - self.low) / self.step)) + 1
        return None

    def suggest(self, trial, name: str):
        if self.integer:
            return trial.suggest_int(name, int(self.low), int(self.high), step=int(self.step or 1), log=self.log)
        return trial.suggest_float(name, float(self.low), float(self.high), step=self.step, log=self.log)

    def decode(self, stored):
        return int(stored) if self.integer else float(stored)

    def describe(self) -> dict:
        return {"low": self.low, "high": self.high, "step": self.step, "log": self.log, "int": self.integer}


@dataclass(frozen=True)
class Choice:
    """A categorical dimension. ``labels`` are what Optuna stores (plain numbers or text); the
    values handed to the evaluator are the original objects (e.g. hardware records)."""

    values: tuple
    labels: tuple

    @property
    def size(self) -> int:
        return len(self.values)

    def suggest(self, trial, name: str):
        return self.decode(trial.suggest_categorical(name, list(self.labels)))

    def decode(self, stored):
        return self.values[self.labels.index(stored)]

    def describe(self) -> list:
        return list(self.labels)


Dimension = Range | Choice


def parse_space(space) -> dict[str, Dimension]:
    """Validate a space of lists and ranges; errors name the dimension."""
    if not isinstance(space, dict):
        raise InputError("space", space, "must be a dict of dimension name -> list of values or range",
                         "e.g. {'batch_size': {'low': 1, 'high': 512, 'int': True}, 'precision': ['fp16', 'int8']}")
    if not space:
        raise InputError("space", space, "is empty", "give at least one dimension")
    dims: dict[str, Dimension] = {}
    for name, spec in space.items():
        if not isinstance(name, str):
            raise InputError("space", name, "has a dimension name that is not a string")
        where = f"space[{name!r}]"
        if isinstance(spec, (dict, Range)):
            dims[name] = parse_range(spec, where)
        elif isinstance(spec, (str, bytes)) or not hasattr(spec, "__iter__"):
            raise InputError(where, spec, "must be a list of values or a range",
                             f"e.g. [{spec!r}] or {{'low': 0.5, 'high': 5.0}}")
        else:
            values = list(spec)
            if not values:
                raise InputError(where, values, "has no values", "give at least one value or drop the dimension")
            dims[name] = Choice(tuple(values), _labels(values))
    return dims


def parse_range(spec, where: str) -> Range:
    if isinstance(spec, Range):
        spec = {"low": spec.low, "high": spec.high, "step": spec.step, "log": spec.log, "int": spec.integer}
    unknown = [k for k in spec if k not in RANGE_KEYS]
    if unknown:
        key = unknown[0]
        close = difflib.get_close_matches(str(key), RANGE_KEYS, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise InputError(where, spec, f"has an unknown key {key!r}",
                         f"{hint}a range takes the keys {', '.join(RANGE_KEYS)}")
    for key in ("low", "high"):
        if key not in spec:
            raise InputError(where, spec, f"has no {key!r}", "a range needs 'low' and 'high', e.g. {'low': 1, 'high': 8}")
    low, high = _finite(spec["low"], f"{where}['low']"), _finite(spec["high"], f"{where}['high']")
    step = spec.get("step")
    log, integer = _flag(spec.get("log", False), f"{where}['log']"), _flag(spec.get("int", False), f"{where}['int']")
    if not low < high:
        raise InputError(where, spec, f"has low >= high ({low:g} >= {high:g})",
                         "low must be below high; a single value is a one-element list")
    if step is not None:
        step = _finite(step, f"{where}['step']")
        if not step > 0:
            raise InputError(f"{where}['step']", step, "must be positive")
    if log:
        if not low > 0:
            raise InputError(where, spec, "is a log range with low <= 0", "a log scale needs low > 0")
        if step is not None and not (integer and step == 1):
            raise InputError(where, spec, "combines 'log' with 'step'", "use one of them")
    if integer:
        for key, v in (("low", low), ("high", high), ("step", step)):
            if v is not None and not float(v).is_integer():
                raise InputError(f"{where}['{key}']", v, "must be a whole number in an integer range")
        low, high, step = int(low), int(high), int(step or 1)
    span = (high - low) / step if step is not None else None
    if span is not None and not math.isclose(span, round(span), rel_tol=0, abs_tol=1e-9 * max(1.0, abs(span))):
        raise InputError(where, spec, f"has high - low = {high - low:g}, not a multiple of step {step:g}",
                         "make high = low + k * step")
    return Range(low, high, step, log, integer)


def _finite(value, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise InputError(where, value, "must be a finite number")
    return value


def _flag(value, where: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise InputError(where, value, "must be True or False")
    return bool(value)


def _labels(values: list) -> tuple:
    """What Optuna stores for each choice: the value itself when every value is a plain, distinct
    number or text; otherwise a readable, unique text (a record's ``name``)."""
    plain = all(v is None or type(v) in (bool, int, float, str) for v in values)
    if plain and len(set(values)) == len(values):      # a set merges 1, 1.0 and True, as Optuna would
        return tuple(values)
    labels, seen = [], set()
    for i, v in enumerate(values):
        name = getattr(v, "name", None)
        text = name if isinstance(name, str) else (str(v) if isinstance(v, (str, numbers.Number)) or v is None
                                                   else f"{type(v).__name__}")
        if text in seen:
            text = f"{text}#{i}"
        seen.add(text)
        labels.append(text)
    return tuple(labels)


def space_size(dims: dict[str, Dimension]) -> Optional[int]:
    sizes = [d.size for d in dims.values()]
    return None if any(s is None for s in sizes) else math.prod(sizes)


# ------------------------------------------------------------------------------------------------
# Objectives

_HAS_DIRECTION = re.compile(r"^\s*(maximize|minimize|max|min)\s*[:(]", re.IGNORECASE)


def parse_objectives(objective, directions=None) -> list[ex.Objective]:
    """One or more objective strings; ``directions`` may supply the direction of plain paths."""
    items = [objective] if isinstance(objective, str) else objective
    if isinstance(items, (bytes, dict)) or not hasattr(items, "__iter__"):
        raise InputError("objective", objective, "must be a string or a list of strings",
                         "e.g. 'minimize: tco_usd' or ['minimize: tco_usd', 'minimize: carbon_kg']")
    items = list(items)
    if not items:
        raise InputError("objective", items, "lists no objectives", "give at least one, e.g. 'minimize: tco_usd'")
    if directions is None:
        dirs = [None] * len(items)
    else:
        dirs = [directions] if isinstance(directions, str) else list(directions)
        if len(dirs) != len(items):
            raise InputError("directions", directions, f"has {len(dirs)} entries for {len(items)} objective(s)",
                             "give one direction per objective")
        for i, d in enumerate(dirs):
            if not isinstance(d, str) or d.lower() not in ex.DIRECTIONS:
                raise InputError(f"directions[{i}]", d, "must be 'minimize' or 'maximize'")
    out = []
    for i, (text, d) in enumerate(zip(items, dirs)):
        where = "objective" if len(items) == 1 else f"objective[{i}]"
        if d is not None and isinstance(text, str) and not _HAS_DIRECTION.match(text):
            text = f"{ex.DIRECTIONS[d.lower()]}: {text}"
        parsed = ex.parse_objective(text, where)
        if d is not None and parsed.direction != ex.DIRECTIONS[d.lower()]:
            raise InputError(f"directions[{i}]", d, f"contradicts {where} {text!r}", "drop one of the two")
        out.append(parsed)
    return out


# ------------------------------------------------------------------------------------------------
# Storage


def storage_url(storage) -> Optional[str]:
    """``None`` (in memory), a file path (SQLite) or an RDB URL, as an SQLAlchemy URL."""
    if storage is None:
        return None
    if isinstance(storage, os.PathLike):
        storage = os.fspath(storage)
    if not isinstance(storage, str) or not storage.strip():
        raise InputError("storage", storage, "must be a file path, an RDB URL or None",
                         "e.g. 'dse.sqlite3' or 'postgresql://user@127.0.0.1/dse'")
    if "://" not in storage:
        path = Path(storage).expanduser().resolve()
        if not path.parent.is_dir():
            raise InputError("storage", storage, "is a file in a folder that does not exist", f"create {path.parent}")
        return f"sqlite:///{path}"
    if storage.startswith("postgres://"):        # the short form SQLAlchemy no longer accepts
        storage = "postgresql://" + storage[len("postgres://"):]
    if storage.startswith("postgresql://"):      # no driver named: the one that is installed
        storage = f"postgresql+{installed_postgres_driver() or 'psycopg'}://" + storage[len("postgresql://"):]
    scheme = storage.split("://", 1)[0].split("+", 1)[0].lower()
    if scheme not in RDB_SCHEMES:
        raise InputError("storage", storage, f"has the scheme {scheme!r}, which is not a database Optuna can use",
                         "give a file path (SQLite), sqlite:///path, postgresql://... or mysql://...")
    return storage


def open_storage(storage):
    """An Optuna storage for ``storage`` (see :func:`storage_url`); an Optuna storage object is used
    as it is. SQLite waits up to 60 s for a lock, so worker processes can share one file."""
    import optuna
    if storage is None or isinstance(storage, optuna.storages.BaseStorage):
        return storage
    url = storage_url(storage)
    sqlite = url.startswith("sqlite")
    kwargs = {"connect_args": {"timeout": 60}} if sqlite else {"pool_pre_ping": True}
    for attempt in range(8):
        try:
            storage = optuna.storages.RDBStorage(url, engine_kwargs=kwargs)
            if sqlite:
                _write_ahead_log(storage.engine)
            return storage
        except ImportError as exc:
            missing = getattr(exc.__cause__, "name", None) or exc.name or "a DB-API module"
            raise InputError("storage", masked(url), f"needs a database driver that is not installed ({missing})",
                             "for PostgreSQL: pip install psycopg2-binary (or 'psycopg[binary]')") from None
        except Exception as exc:   # two processes creating the tables at once: wait and retry
            if sqlite and attempt < 7 and type(exc).__module__.startswith("sqlalchemy"):
                time.sleep(0.1 * (attempt + 1))
                continue
            raise InputError("storage", masked(url), f"cannot be opened ({type(exc).__name__}: {exc})",
                             "check the path or URL, and that the database server is running") from None
    raise AssertionError("unreachable")


def _write_ahead_log(engine) -> None:
    """SQLite in write-ahead-log mode: readers do not block the writer (worker processes), and a
    commit does not wait for a full disk sync (about a third faster per trial)."""
    from sqlalchemy import event

    def pragmas(connection, _record):
        cursor = connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    event.listen(engine, "connect", pragmas)
    engine.dispose()            # connections opened while creating the tables get the pragmas too


def default_study_name(query: dict) -> str:
    """The same query (space, objectives, constraints) gets the same name, so re-running a script
    against the same storage resumes its study."""
    digest = hashlib.sha1(json.dumps(query, sort_keys=True, default=str).encode()).hexdigest()
    return f"dse-{digest[:12]}"


# ------------------------------------------------------------------------------------------------
# Pareto sets and hypervolume (all objectives in minimization form)


def non_dominated(values: np.ndarray) -> np.ndarray:
    """Boolean mask of the rows no other row dominates (no worse everywhere, better somewhere)."""
    values = np.asarray(values, dtype=float)
    keep = np.ones(len(values), dtype=bool)
    for start in range(0, len(values), 512):
        rows = values[start:start + 512]
        no_worse = (values[None, :, :] <= rows[:, None, :]).all(-1)
        better = (values[None, :, :] < rows[:, None, :]).any(-1)
        keep[start:start + 512] = ~(no_worse & better).any(1)
    return keep


def hypervolume(points, reference) -> float:
    """Exact volume dominated by ``points`` and bounded by ``reference`` (minimization): a sweep in
    two dimensions, slicing along the last axis above that. Points that do not strictly dominate
    the reference add nothing."""
    ref = [float(r) for r in reference]
    pts = [tuple(float(x) for x in p) for p in points if all(x < r for x, r in zip(p, ref))]
    if not pts:
        return 0.0
    if len(ref) == 1:
        return ref[0] - min(p[0] for p in pts)
    if len(ref) == 2:
        volume, floor = 0.0, ref[1]
        for x, y in sorted(pts):
            if y < floor:
                volume += (ref[0] - x) * (floor - y)
                floor = y
        return volume
    pts.sort(key=lambda p: p[-1])
    volume = 0.0
    for i, p in enumerate(pts):
        top = pts[i + 1][-1] if i + 1 < len(pts) else ref[-1]
        if top > p[-1]:
            volume += (top - p[-1]) * hypervolume([q[:-1] for q in pts[:i + 1]], ref[:-1])
    return volume


def default_reference(values: np.ndarray) -> list[float]:
    """The worst value seen per objective (minimization form), pushed 10% of its magnitude further
    out (the range, or 1, when it is zero), so that the extreme points add volume."""
    worst, best = values.max(axis=0), values.min(axis=0)
    out = []
    for w, b in zip(worst, best):
        margin = 0.1 * abs(w) or 0.1 * (w - b) or 1.0
        out.append(float(w + margin))
    return out


# ------------------------------------------------------------------------------------------------
# The search


@contextmanager
def _quiet(optuna):
    previous = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            yield
    finally:
        optuna.logging.set_verbosity(previous)


def _stored_constraints(trial) -> list[float]:
    return list(trial.user_attrs.get(_ATTR_CONSTRAINTS, [1.0]))


@dataclass
class _Tally:
    counts: dict = field(default_factory=lambda: dict(evaluated=0, infeasible=0, constraints=0, satisfying=0))
    errors: list = field(default_factory=list)
    first_exc: Optional[BaseException] = None
    violations: dict = field(default_factory=dict)
    closest: dict = field(default_factory=dict)
    results: dict = field(default_factory=dict)      # params key -> result, this process's evaluations
    best: Optional[float] = None


class OptunaSearch:
    """One run of a sampler over a study; :meth:`run` returns a :class:`~mlsysim_opt.dse.DSEResult`."""

    def __init__(self, dims: dict[str, Dimension], objectives: list[ex.Objective], constraints: list,
                 *, n_trials: int, seed: Optional[int], storage, study_name: Optional[str], top_k: int,
                 progress: bool, timeout: Optional[float] = None, reference_point=None,
                 population_size: Optional[int] = None, cache: bool = True):
        self.dims, self.objectives, self.constraints = dims, objectives, constraints
        self.n_trials, self.seed, self.top_k, self.progress = n_trials, seed, top_k, progress
        self.timeout, self.cache, self.population_size = timeout, cache, population_size
        self.storage_url = None if storage is None or not isinstance(storage, (str, os.PathLike)) else storage_url(storage)
        self.storage = storage
        self.query = {"space": {n: d.describe() for n, d in dims.items()},
                      "objectives": [f"{o.direction}: {o.path.text}" for o in objectives],
                      "constraints": [c.text for c in constraints]}
        self.study_name = study_name or default_study_name(self.query)
        if reference_point is not None:
            ref = list(reference_point) if hasattr(reference_point, "__iter__") else [reference_point]
            if len(ref) != len(objectives) or not all(isinstance(r, numbers.Real) and not isinstance(r, bool)
                                                      and math.isfinite(r) for r in ref):
                raise InputError("reference_point", reference_point,
                                 f"must be {len(objectives)} finite number(s), one per objective, in its unit")
            reference_point = [float(r) for r in ref]
        self.reference_point = reference_point
        self.units: list = [None] * len(objectives)
        self._checked = False
        self._units_saved = False

    @property
    def multi(self) -> bool:
        return len(self.objectives) > 1

    # --------------------------------------------------------------------------------------------
    def _sampler(self, optuna):
        # Optuna 5 reads constraint values recorded on the trial; older versions need constraints_func.
        self._set_constraint = hasattr(optuna.trial.Trial, "set_constraint")
        legacy = {} if self._set_constraint else {"constraints_func": _stored_constraints}
        if self.multi:
            return optuna.samplers.NSGAIISampler(seed=self.seed, population_size=self.population_size or 50, **legacy)
        return optuna.samplers.TPESampler(seed=self.seed, multivariate=True, **legacy)

    def _study(self, optuna):
        storage = open_storage(self.storage)
        directions = [o.direction for o in self.objectives]
        study = optuna.create_study(storage=storage, sampler=self._sampler(optuna), study_name=self.study_name,
                                    directions=directions, load_if_exists=True)
        stored = study.user_attrs.get(_ATTR_QUERY)
        mine = json.loads(json.dumps(self.query, default=str))
        if stored is None:      # a new study (or one another worker created a moment ago)
            study.set_user_attr(_ATTR_QUERY, mine)
        elif stored != mine or [d.name.lower() for d in study.directions] != directions:
            raise InputError("study_name", self.study_name, "already holds a study of a different query "
                             f"(stored: {stored})", "choose another study_name or another storage")
        for i, unit in enumerate(study.user_attrs.get(_ATTR_UNITS) or []):
            self.units[i] = None if unit is None else ureg.Unit(unit)
            self._units_saved = True
        return study

    # --------------------------------------------------------------------------------------------
    def run(self, evaluate: Callable[[dict], Any]):
        import optuna
        start = time.perf_counter()
        tally = _Tally(violations={c.text: 0 for c in self.constraints})
        self.units, self._checked, self._units_saved = [None] * len(self.objectives), False, False
        with _quiet(optuna):
            study = self._study(optuna)
            deadline = math.inf if self.timeout is None else start + self.timeout
            with _progress_bar(self.progress, self.n_trials, self.multi) as tick:
                for _ in range(self.n_trials):
                    if time.perf_counter() > deadline:
                        break
                    self._trial(optuna, study, evaluate, tally)
                    tick(tally.best)
            return self._result(optuna, study, evaluate, tally, time.perf_counter() - start)

    def _key(self, stored_params: dict) -> tuple:
        return tuple(stored_params.get(n) for n in self.dims)

    def _trial(self, optuna, study, evaluate, tally: _Tally) -> None:
        fail = optuna.trial.TrialState.FAIL
        trial = study.ask()
        try:
            params = {name: dim.suggest(trial, name) for name, dim in self.dims.items()}
        except Exception:
            study.tell(trial, state=fail)
            raise
        key = self._key(trial.params)
        tally.counts["evaluated"] += 1
        if key in tally.results and self.cache:
            result = tally.results[key]
        else:
            try:
                result = evaluate(dict(params))
            except Exception as exc:   # collected with its point, never silently dropped
                self._point_error(study, trial, fail, tally, params, exc)
                return
            tally.results[key] = result
        from .dse import is_infeasible
        infeasible = is_infeasible(result)
        if not infeasible and not self._checked:
            try:     # unknown fields are a mistake in the query: fail on the first feasible result
                self._check_paths(result)
            except InputError:
                study.tell(trial, state=fail)
                raise
            self._checked = True
        try:
            values = self._values(result, infeasible)
            penalties, failed = self._penalties(result, infeasible)
        except ex.PathError as exc:     # a field missing at this point only: this point's error
            self._point_error(study, trial, fail, tally, params, exc)
            return
        except InputError as exc:
            if exc.field != "objective" and not exc.field.startswith("objective["):
                study.tell(trial, state=fail)      # a constraint that cannot be compared: a query error
                raise
            self._point_error(study, trial, fail, tally, params, exc)
            return
        if infeasible:
            status = STATUS_INFEASIBLE
            tally.counts["infeasible"] += 1
        elif failed:
            status = STATUS_VIOLATED
            tally.counts["constraints"] += 1
            from .dse import _track_closest
            for c in failed:
                tally.violations[c.text] += 1
                _track_closest(tally.closest, c, result)
        else:
            status = STATUS_OK
            tally.counts["satisfying"] += 1
            if not self.multi:
                v = values[0]
                better = tally.best is None or (v > tally.best if self.objectives[0].maximize else v < tally.best)
                tally.best = v if better else tally.best
        if self._set_constraint:
            trial.set_constraint("feasible", 1.0 if infeasible else 0.0)
            for i, penalty in enumerate(penalties):
                trial.set_constraint(f"constraints[{i}]", penalty)
        else:
            trial.set_user_attr(_ATTR_CONSTRAINTS, [1.0 if infeasible else 0.0] + penalties)
        if status == STATUS_OK and not self._units_saved:   # later workers read values in these units
            study.set_user_attr(_ATTR_UNITS, [None if u is None else f"{u:~}" for u in self.units])
            self._units_saved = True
        study.tell(trial, values)

    def _point_error(self, study, trial, fail, tally: _Tally, params, exc) -> None:
        from .dse import _error
        tally.errors.append(_error(params, exc))
        tally.first_exc = tally.first_exc or exc
        study.tell(trial, state=fail)

    def _check_paths(self, result) -> None:
        for i, o in enumerate(self.objectives):
            ex.resolve(result, o.path, "objective" if not self.multi else f"objective[{i}]")
        for i, c in enumerate(self.constraints):
            for path in c.paths():
                ex.resolve(result, path, f"constraints[{i}]")

    def _values(self, result, infeasible: bool) -> list[float]:
        """Objective values in the study's units; an infeasible point whose objective cannot be
        read gets the worst possible value (the constraints already rule it out)."""
        out = []
        for i, o in enumerate(self.objectives):
            where = "objective" if not self.multi else f"objective[{i}]"
            try:
                raw = ex.resolve(result, o.path, where)
                value, unit = ex.objective_number(raw, self.units[i], where)
                if math.isnan(value):
                    raise InputError(where, o.path.text, "is NaN at this point")
            except InputError:
                if not infeasible:
                    raise
                value, unit = (-math.inf if o.maximize else math.inf), self.units[i]
            if not infeasible:
                self.units[i] = unit
            out.append(value)
        return out

    def _penalties(self, result, infeasible: bool):
        """One value per constraint: 0 when it holds, else the relative violation (> 0)."""
        penalties, failed = [], []
        for i, c in enumerate(self.constraints):
            where = f"constraints[{i}]"
            try:
                ok = ex.check(c, result, where)
                penalty = 0.0 if ok else _violation(c, result, where)
            except InputError:
                if not infeasible:
                    raise
                ok, penalty = True, 0.0           # the infeasibility entry already rules the point out
            penalties.append(penalty)
            if not ok:
                failed.append(c)
        return penalties, failed

    # --------------------------------------------------------------------------------------------
    def _ranked(self, optuna, study) -> list[dict]:
        """Feasible, satisfying trials of the whole study (every process), one per distinct point."""
        complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        seen, rows = set(), []
        for t in sorted(complete, key=lambda t: t.number):
            if not _satisfies(t):
                continue
            key = self._key(t.params)
            if key in seen:
                continue
            try:
                params = {n: d.decode(t.params[n]) for n, d in self.dims.items()}
            except (KeyError, ValueError):
                continue                          # a trial of another space sharing the study name
            seen.add(key)
            rows.append({"key": key, "params": params, "values": [float(v) for v in t.values], "trial": t.number})
        return rows

    def _result_of(self, row, evaluate, tally: _Tally):
        """The result object of a ranked point: this process's, or re-evaluated (another worker's)."""
        if row["key"] in tally.results:
            return tally.results[row["key"]]
        try:
            result = evaluate(dict(row["params"]))
        except Exception:
            return None
        tally.results[row["key"]] = result
        return result

    def _result(self, optuna, study, evaluate, tally: _Tally, elapsed: float):
        from .dse import DSEResult, InfeasibleSpaceError, _nothing_left_message
        counts = tally.counts
        if counts["evaluated"] and len(tally.errors) == counts["evaluated"]:
            e = tally.errors[0]
            raise SolverError(f"all {counts['evaluated']} trials raised an error; the first, at {e['params']}: "
                              f"{e['type']}: {e['message']}") from tally.first_exc
        rows = self._ranked(optuna, study)
        if not rows:
            raise InfeasibleSpaceError(_nothing_left_message(counts, tally.violations, tally.closest, tally.errors,
                                                             "Relax a constraint, widen the space or add trials."))
        signs = np.array([-1.0 if o.maximize else 1.0 for o in self.objectives])
        units = [None if u is None else f"{u:~P}" for u in self.units]
        front, hv, ref = None, None, None
        if self.multi:
            minimized = np.array([r["values"] for r in rows]) * signs
            mask = non_dominated(minimized)
            order = sorted(np.flatnonzero(mask), key=lambda i: (tuple(minimized[i]), rows[i]["trial"]))
            ref_min = (default_reference(minimized) if self.reference_point is None
                       else list(np.array(self.reference_point) * signs))
            hv = hypervolume(minimized[order], ref_min)
            ref = [float(v) for v in np.array(ref_min) * signs]
            front = [{"params": rows[i]["params"], "values": rows[i]["values"],
                      "result": self._result_of(rows[i], evaluate, tally), "trial": rows[i]["trial"]} for i in order]
            top_rows = [rows[i] for i in order[:self.top_k]]
        else:
            top_rows = sorted(rows, key=lambda r: (signs[0] * r["values"][0], r["trial"]))[:self.top_k]
        top = [{"params": r["params"], "objective_value": r["values"][0], "result": self._result_of(r, evaluate, tally),
                "trial": r["trial"], **({"values": r["values"]} if self.multi else {})} for r in top_rows]
        best = top[0]
        finished = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,
                                                            optuna.trial.TrialState.FAIL))
        return DSEResult.model_construct(
            objective="; ".join(o.text for o in self.objectives),
            direction=", ".join(o.direction for o in self.objectives),
            best_params=best["params"], best_objective=best["objective_value"], objective_unit=units[0],
            best_result=best["result"], top_candidates=top, space_size=space_size(self.dims),
            evaluated=counts["evaluated"], satisfying=counts["satisfying"], dropped_infeasible=counts["infeasible"],
            dropped_constraints=counts["constraints"], constraint_violations=tally.violations, errors=tally.errors,
            backend="optuna", elapsed_s=elapsed, table=None,
            objectives=[o.text for o in self.objectives], directions=[o.direction for o in self.objectives],
            objective_units=units, best_values=top_rows[0]["values"], pareto_front=front, hypervolume=hv,
            reference_point=ref, study_name=self.study_name,
            storage=masked(self.storage_url) if self.storage_url else (None if self.storage is None else
                                                                        type(self.storage).__name__),
            seed=self.seed, sampler="NSGA-II" if self.multi else "TPE", trials_in_study=len(finished))


def _satisfies(trial) -> bool:
    """A completed trial that is feasible and meets every constraint (all recorded values <= 0)."""
    values = getattr(trial, "constraints", None)
    values = list(values.values()) if isinstance(values, dict) else trial.user_attrs.get(_ATTR_CONSTRAINTS)
    return bool(values) and all(v <= 0 for v in values)


def _violation(c: ex.Constraint, result, where: str) -> float:
    """How far a failed constraint is from holding, relative to the larger side (> 0)."""
    if c.op in ("==", "!="):
        return 1.0
    left = ex.operand_value(c.left, result, where)
    right = ex.operand_value(c.right, result, where)
    left, right = ex.comparable(left, right, c, where)
    if not all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in (left, right)):
        return 1.0
    gap = abs(float(left) - float(right)) / max(abs(float(left)), abs(float(right)), 1e-300)
    return max(gap, 1e-12) if math.isfinite(gap) else 1.0


@contextmanager
def _progress_bar(enabled: bool, total: int, multi: bool):
    if not enabled:
        yield lambda best: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
    columns = (TextColumn("DSE (optuna) {task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeRemainingColumn())
    with Progress(*columns, transient=True) as bar:
        task = bar.add_task("", total=total)

        def tick(best):
            text = "" if multi or best is None else f"best {best:.4g}"
            bar.update(task, advance=1, description=text)
        yield tick
