"""Request and response models of the HTTP API, derived from the library's own types.

* Request bodies are thin pydantic wrappers of the library's function signatures
  (:func:`signature_model` reads the signature and its type hints), so a parameter added to
  ``Engine.solve`` or ``size_fleet`` shows up in the API and its OpenAPI schema by itself.
* Response schemas are the JSON form of the library's ``Result`` types (:func:`json_form`): every
  pint quantity becomes ``{"value": float, "unit": str}``, exactly what ``Result.to_dict()`` emits.
* Records (hardware, workloads) are validated by the library's record classes; their JSON schema
  (:func:`record_schema`) documents each quantity field with its default SI unit.

Every request body is screened before validation (:class:`RequestModel`): numbers must be finite
and strings short, and a string with a power operator must be a plain quantity such as
``"2 m**2"``; anything else (``"10**10**10 B"``) could make the unit parser run for ever.
"""
from __future__ import annotations

import collections.abc
import inspect
import math
import re
import typing
from typing import Any, Optional, Union

import pint
from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator
from pydantic.json_schema import GenerateJsonSchema

from .errors import RequestProblems

MAX_STRING = 1_000
MAX_LIST = 10_000

# ------------------------------------------------------------------------------------------------
# Screening of untrusted JSON

_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d{1,3})?"
_UNIT = r"[A-Za-z_\u00b5\u03bc\u03a9\u00b0%][A-Za-z0-9_]*(?:\s*(?:\*\*|\^)\s*-?\d)?"
_SAFE_QUANTITY = re.compile(rf"^\s*(?:{_NUMBER})?\s*(?:{_UNIT}(?:\s*[/*\u00b7]\s*{_UNIT}|\s+{_UNIT})*)?\s*$")
_LEADING_NUMBER = re.compile(rf"^\s*({_NUMBER})")
_SURROGATE = re.compile("[\ud800-\udfff]")
"""Half of a UTF-16 pair alone: JSON's \\u escapes can carry it, but it is not text (it cannot be
encoded as UTF-8, stored, or sent back)."""


def _not_text(where: str) -> dict:
    return {"field": where, "rule": "must be valid Unicode text (no unpaired surrogate code points)",
            "fix": "send characters outside the Basic Multilingual Plane as a surrogate pair or in UTF-8"}


def _quantity_rest(rest: str) -> bool:
    """Whether what follows a leading number makes the string a quantity the unit parser would read
    (nothing, or a defined unit first): "1e999 W" is one, a hex tag such as "7e406f3d83d8" is text."""
    from ..units import ureg
    unit = re.match(r"\s*([A-Za-z_\u00b5\u03bc\u03a9\u00b0%][A-Za-z0-9_]*)", rest)
    if not rest.strip():
        return True
    if unit is None:
        return False
    try:
        return unit.group(1) in ureg
    except Exception:       # a name pint cannot even look up is no unit
        return False


def screen(value: Any, path: str = "", problems: list[dict] | None = None, depth: int = 0) -> list[dict]:
    """Problems with untrusted JSON: non-finite numbers, over-long strings or lists, deep nesting,
    and strings whose power operators could make the unit parser compute huge numbers."""
    problems = [] if problems is None else problems
    where = path or "body"
    if depth > 20:
        problems.append({"field": where, "rule": "is nested too deeply (at most 20 levels)"})
    elif isinstance(value, float) and not math.isfinite(value):
        problems.append({"field": where, "rule": "must be a finite number", "value": str(value)})
    elif isinstance(value, str):
        lead = _LEADING_NUMBER.match(value)
        if len(value) > MAX_STRING:
            problems.append({"field": where, "rule": f"must be at most {MAX_STRING} characters",
                             "value": value[:60] + "..."})
        elif _SURROGATE.search(value):
            problems.append(_not_text(where))
        elif ("**" in value or "^" in value) and not _SAFE_QUANTITY.match(value):
            problems.append({"field": where, "value": value,
                             "rule": "may use a power only as a single-digit exponent of a unit",
                             "fix": "write e.g. '3.35 TB/s' or '2 m**2'; numbers like 1e12 need no '**'"})
        elif lead and not math.isfinite(float(lead.group(1))) and _quantity_rest(value[lead.end():]):
            problems.append({"field": where, "rule": "must be a finite number", "value": value})
    elif isinstance(value, dict):
        if len(value) > MAX_LIST:
            problems.append({"field": where, "rule": f"must have at most {MAX_LIST} entries"})
        else:
            for k, v in value.items():
                key = str(k)
                if len(key) > MAX_STRING or _SURROGATE.search(key):
                    problems.append({**_not_text(where), "rule": f"must have keys of at most {MAX_STRING} "
                                                                 "characters of valid Unicode text"})
                    continue
                screen(v, f"{path}.{key}" if path else key, problems, depth + 1)
    elif isinstance(value, list):
        if len(value) > MAX_LIST:
            problems.append({"field": where, "rule": f"must have at most {MAX_LIST} items"})
        else:
            for i, v in enumerate(value):
                screen(v, f"{path}[{i}]", problems, depth + 1)
    return problems


class RequestModel(BaseModel):
    """Base of every request body: unknown fields are errors (a typo is never silently ignored),
    numbers are finite, strings are screened (see :func:`screen`)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _screen(cls, data):
        problems = screen(data)
        if problems:
            raise RequestProblems(problems)
        return data


# ------------------------------------------------------------------------------------------------
# Request models from signatures


def _as_list(tp):
    """``Iterable[X]``/``Sequence[X]`` -> ``list[X]`` (JSON arrays), inside Optional/Union too."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (collections.abc.Iterable, collections.abc.Sequence, list, tuple) and args:
        return list[_as_list(args[0])]
    if origin is Union or origin is getattr(__import__("types"), "UnionType", None):
        return Union[tuple(_as_list(a) for a in args)]
    return tp


def signature_model(fn, name: str, *, overrides: dict[str, tuple] | None = None, exclude=(),
                    constraints: dict[str, dict] | None = None, doc: str | None = None,
                    base: type[BaseModel] = RequestModel) -> type[BaseModel]:
    """A request model whose fields are ``fn``'s parameters (names, types, defaults).

    ``overrides`` replaces a parameter's ``(type, default-or-Field)``, e.g. to accept a registry
    name or an inline record where the function takes a record; ``exclude`` drops parameters the
    service sets itself; ``constraints`` adds Field limits to a parameter (``items`` for the items of
    a list), so every broken rule of a request is reported at once and appears in the OpenAPI
    schema (the library checks the same rules again)."""
    overrides, constraints = overrides or {}, constraints or {}
    hints = typing.get_type_hints(fn, include_extras=True)
    fields: dict[str, tuple] = {}
    for pname, param in inspect.signature(fn).parameters.items():
        if pname in exclude or pname in ("self", "cls") or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        if pname in overrides:
            fields[pname] = overrides[pname]
            continue
        annotation = _as_list(hints.get(pname, Any))
        default = ... if param.default is param.empty else param.default
        if isinstance(default, tuple):
            default = list(default)
        limits = dict(constraints.get(pname, {}))
        items = limits.pop("items", None)
        if typing.get_origin(annotation) is list:
            limits.setdefault("max_length", MAX_LIST)
            if items:
                annotation = list[typing.Annotated[typing.get_args(annotation)[0], Field(**items)]]
        fields[pname] = (annotation, Field(default, **limits) if limits else default)
    model = create_model(name, __base__=base, __doc__=doc or inspect.getdoc(fn), **fields)
    return model


HardwareRef = Union[str, dict[str, Any]]
"""A hardware registry name ("H100") or an inline HardwareNode record."""
WorkloadRef = Union[str, dict[str, Any]]
"""A workload registry name ("Llama3_8B") or an inline TransformerWorkload/CNNWorkload record."""


RECORD_REFS = {"hardware": ["HardwareNode"], "models": ["TransformerWorkload", "CNNWorkload"]}
"""Record schemas a reference field may hold inline; the OpenAPI document links them (see app.py)."""


def hardware_field(default=..., **kw):
    return Field(default, description="hardware registry name (e.g. 'H100') or an inline HardwareNode record",
                 json_schema_extra={"x-record-kind": "hardware"}, **kw)


def workload_field(default=..., **kw):
    return Field(default, description="workload registry name (e.g. 'Llama3_8B') or an inline workload record",
                 json_schema_extra={"x-record-kind": "models"}, **kw)


# ------------------------------------------------------------------------------------------------
# JSON schema of records (quantities documented with their default unit)


class _RecordSchema(GenerateJsonSchema):
    """Quantity fields become "string with a unit, or a number in the field's SI unit"."""

    def function_before_schema(self, schema):
        unit = _closure(schema.get("function", {}).get("function"))
        if unit is not None and _is_quantity(schema.get("schema")):
            return _quantity_schema(*unit)
        return super().function_before_schema(schema)

    def is_instance_schema(self, schema):
        if isinstance(schema.get("cls"), type) and issubclass(schema["cls"], pint.Quantity):
            return {"anyOf": [{"type": "string"}, {"type": "number"}], "description": "a quantity"}
        return super().is_instance_schema(schema)


def _is_quantity(inner) -> bool:
    return bool(inner) and inner.get("type") == "is-instance" and isinstance(inner.get("cls"), type) \
        and issubclass(inner["cls"], pint.Quantity)


def _closure(fn) -> tuple[str, str] | None:
    try:
        free = inspect.getclosurevars(fn).nonlocals
    except (TypeError, ValueError):
        return None
    if isinstance(free.get("unit"), str):
        return free["unit"], str(free.get("example") or f"1 {free['unit']}")
    return None


def _quantity_schema(unit: str, example: str) -> dict:
    return {"anyOf": [{"type": "string"}, {"type": "number"}],
            "description": f"a quantity: a string with a unit (e.g. '{example}') or a number in {unit}",
            "examples": [example]}


def record_schema(cls: type[BaseModel]) -> dict:
    """JSON schema (validation side) of a record class, with ``$defs`` for its nested parts."""
    return cls.model_json_schema(schema_generator=_RecordSchema, ref_template="#/components/schemas/{model}")


# ------------------------------------------------------------------------------------------------
# JSON form of results


class QuantityJSON(BaseModel):
    """A physical value as JSON: magnitude and unit symbol."""

    value: float
    unit: str


_JSON_FORMS: dict[type, type[BaseModel]] = {}


def json_form(cls: type[BaseModel]) -> type[BaseModel]:
    """The model of ``cls(...).to_dict()``: the same fields, pint quantities as QuantityJSON."""
    if cls in _JSON_FORMS:
        return _JSON_FORMS[cls]
    hints = typing.get_type_hints(cls)
    fields = {}
    for name, info in cls.model_fields.items():
        annotation = _quantity_to_json(hints.get(name, Any))
        default = ... if info.is_required() else (info.default if info.default_factory is None else None)
        fields[name] = (annotation, Field(default, description=info.description))
    model = create_model(f"{cls.__name__}JSON", __doc__=f"JSON form of {cls.__name__} (Result.to_dict()).", **fields)
    _JSON_FORMS[cls] = model
    return model


def _quantity_to_json(tp):
    if tp is pint.Quantity or (isinstance(tp, type) and issubclass(tp, pint.Quantity)):
        return QuantityJSON
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is Union:
        return Union[tuple(_quantity_to_json(a) for a in args)]
    if origin in (list, collections.abc.Sequence) and args:
        return list[_quantity_to_json(args[0])]
    if origin is dict and len(args) == 2:
        return dict[args[0], _quantity_to_json(args[1])]
    return tp


# ------------------------------------------------------------------------------------------------
# Service-level models


class SweepTable(BaseModel):
    """A sweep as a table: ``columns`` and one row of ``data`` per grid point (SI units, named in
    ``units``); the same rows ``Engine.sweep_table`` returns as a DataFrame."""

    model: str
    points: int
    columns: list[str]
    units: dict[str, str]
    data: list[list[Any]]


class JobRequest(RequestModel):
    """Submit a long-running job."""

    kind: str = Field(description="a job kind listed by GET /jobs/kinds, e.g. 'sweep' or 'fleet_size'",
                      max_length=64)
    params: dict[str, Any] = Field(default_factory=dict, description="the kind's parameters (see GET /jobs/kinds)")
    timeout_s: Optional[float] = Field(None, gt=0, description="wall-clock limit, at most the server's job timeout")


class JobInfo(BaseModel):
    """Where a job stands."""

    id: str
    kind: str
    status: str = Field(description="queued, running, succeeded, failed or cancelled")
    progress: float = Field(description="0..1")
    attempts: int = Field(description="times a worker process has started it")
    timeout_s: float
    created_at: float = Field(description="seconds since the epoch")
    started_at: Optional[float] = None
    finished_at: Optional[float] = None
    worker_pid: Optional[int] = Field(None, description="process running it (while running)")
    note: Optional[str] = Field(None, description="what happened to it besides running, e.g. a retry")
    error: Optional[dict] = Field(None, description="an ErrorBody (plus the library error type) when it failed")
    cached: bool = Field(False, description="this submission was answered by an identical earlier job")
    result_url: Optional[str] = None


class JobKindInfo(BaseModel):
    kind: str
    description: str
    params_schema: dict


class RegistryEntry(BaseModel):
    """One registry record: its key, aliases, type, and fields (quantities as strings with units,
    ``provenance``: field path -> source id)."""

    key: str
    aliases: list[str]
    type: str
    custom: bool
    record: dict[str, Any]


class RegistryListing(BaseModel):
    kind: str
    count: int
    records: list[RegistryEntry]


class AuditJSON(BaseModel):
    ok: bool
    records: int
    values: int
    sources: int
    problems: list[str]


class Health(BaseModel):
    status: str
    version: str
    workers: dict[str, int] = Field(description="size, alive, ready, busy, restarts (replaced after a crash, "
                                                "a time limit or a cancellation)")
    jobs: dict[str, int] = Field(description="jobs in the store by status")
    limits: dict[str, Union[int, float]]
    db: str
    test_jobs: bool
    notes: list[str] = Field(default_factory=list, description="start-up problems, e.g. an added record that "
                                                               "could not be restored")
