"""The registry over HTTP: listing records as JSON, building records sent inline, and records that
clients add to one server (kept in the job store so they survive a restart)."""
from __future__ import annotations

import re
import threading
from typing import Any

import pint
from pydantic import BaseModel

from .. import catalog
from ..errors import InputError, MlsysimError, UnknownNameError
from ..types import CNNWorkload, HardwareNode, Record, TransformerWorkload, Workload
from .errors import ApiError, RequestProblems, jsonable, suggestions_for
from .schemas import screen

KINDS: dict[str, catalog.Namespace] = {
    "hardware": catalog.Hardware, "models": catalog.Models, "nodes": catalog.Nodes, "fabrics": catalog.Fabrics,
    "clusters": catalog.Clusters, "grids": catalog.Grids, "datacenters": catalog.Datacenters,
}
WRITABLE = ("hardware", "models")

_custom: dict[str, dict[str, dict]] = {"hardware": {}, "models": {}}   # kind -> key -> body as posted
_lock = threading.RLock()  # registry dicts are read while clients add records


def namespace(kind: str) -> catalog.Namespace:
    if kind not in KINDS:
        raise UnknownNameError("registry kind", kind, KINDS)
    return KINDS[kind]


# ------------------------------------------------------------------------------------------------
# Records -> JSON


def quantity_text(q: pint.Quantity) -> str:
    """``"3.35e+12 B/s"``: 12 significant digits and a unit symbol the unit parser reads back."""
    return f"{q.magnitude:.12g} {q.units:~C}".strip()


def record_json(value: Any) -> Any:
    """A record (or any part of one) as JSON: quantities as strings with units, nested records
    expanded, provenance kept."""
    if isinstance(value, pint.Quantity):
        return quantity_text(value)
    if isinstance(value, BaseModel):
        return {name: record_json(getattr(value, name)) for name in type(value).model_fields}
    if isinstance(value, dict):
        return {str(k): record_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [record_json(v) for v in value]
    return value


def entries(kind: str) -> list[dict]:
    with _lock:
        return _entries(kind)


def _entries(kind: str) -> list[dict]:
    ns = namespace(kind)
    aliases: dict[int, list[str]] = {}
    for key in ns.names():
        aliases.setdefault(id(ns[key]), []).append(key)
    out = []
    for key, record in sorted(ns.items(), key=lambda kv: kv[0]):
        out.append(_entry(kind, key, record, [a for a in aliases.get(id(record), []) if a != key]))
    return out


def entry(kind: str, name: str) -> dict:
    with _lock:
        return _entry_named(kind, name)


def _entry_named(kind: str, name: str) -> dict:
    ns = namespace(kind)
    record = _resolve(kind, name, "name")
    keys = [k for k in ns.names() if ns[k] is record]
    key = next((k for k, r in ns.items() if r is record), keys[0] if keys else name)
    return _entry(kind, key, record, [k for k in keys if k != key])


def _entry(kind: str, key: str, record: Record, aliases: list[str]) -> dict:
    return {"key": key, "aliases": sorted(aliases), "type": type(record).__name__,
            "custom": key in _custom.get(kind, {}), "record": record_json(record)}


# ------------------------------------------------------------------------------------------------
# JSON -> records


def build_record(kind: str, body: Any, path: str) -> Record:
    """Validate an inline record with the library's record class; every broken rule is reported
    with its path under ``path`` (e.g. ``hardware.memory.bandwidth``)."""
    if not isinstance(body, dict):
        raise InputError(path, body, "must be a registry name (string) or a record (JSON object)")
    if kind == "models" and "hf_config" in body:
        return _record_from_config(body, path)
    problems = screen(body, path)
    if problems:
        raise RequestProblems(problems)
    data = dict(body)
    if kind == "hardware":
        cls: type[Record] = HardwareNode
    elif kind == "models":
        family = data.pop("type", None) or data.get("family", "transformer")
        cls = TransformerWorkload if family == "transformer" else CNNWorkload
        if family != "transformer":
            data["family"] = family
    else:
        raise InputError("kind", kind, f"records of this kind cannot be sent inline; use one of {WRITABLE}")
    problems = shape_problems(cls, data, path)
    if problems:
        raise RequestProblems(problems)
    try:
        record = cls(**data)
    except UnknownNameError as exc:
        raise RequestProblems([{"field": path, "rule": f"must be a known {exc.kind}", "value": exc.name,
                                "fix": str(exc)}]) from None
    except InputError as exc:
        raise RequestProblems([_record_problem(e, cls.__name__, data.get("name"), path) for e in exc.errors]) from None
    except _UNREADABLE as exc:  # a value of the right shape the converters still cannot read
        raise RequestProblems([{"field": path or "body", "rule": f"is not a valid {cls.__name__} record "
                                f"({type(exc).__name__}: {str(exc)[:200]})"}]) from None
    problems = _sign_problems(record, path)
    if problems:
        raise RequestProblems(problems)
    return record


_UNREADABLE = (TypeError, ValueError, ArithmeticError, AttributeError, KeyError, IndexError)
"""What a record class's converters raise on JSON they were not written for (beyond its own errors)."""


def shape_problems(cls: type[BaseModel], body: dict, path: str) -> list[dict]:
    """Values of the wrong JSON shape for ``cls``'s fields (a list where a number belongs, a number
    where a sub-record belongs), each with its path: the record classes' converters would fail on
    them with errors that name no field."""
    out: list[dict] = []
    for name, value in body.items():
        info = cls.model_fields.get(name)
        if info is None or value is None:  # unknown fields and missing values: the record class says so
            continue
        where = f"{path}.{name}" if path else name
        expected = _json_shape(info.annotation)
        if expected is None:
            continue
        shape, inner = expected
        if shape == "record" and isinstance(value, dict):
            out += shape_problems(inner, value, where)
        elif shape == "object" and isinstance(value, dict):
            out += [{"field": f"{where}.{k}", "rule": "must be a number or a string", "value": jsonable(v)}
                    for k, v in value.items() if inner == "scalar" and isinstance(v, (dict, list))]
        elif shape == "array" and isinstance(value, list):
            out += [{"field": f"{where}[{i}]", "rule": "must be a number or a string", "value": jsonable(v)}
                    for i, v in enumerate(value) if isinstance(v, (dict, list))]
        elif shape == "scalar" and not isinstance(value, (dict, list)):
            continue
        elif shape in ("record", "object", "array") or isinstance(value, (dict, list)):
            out.append({"field": where, "rule": _SHAPE_RULES[shape], "value": jsonable(value)})
    return out


_SHAPE_RULES = {"record": "must be an object (a nested record)", "object": "must be an object",
                "array": "must be a list", "scalar": "must be a number, a string or a boolean"}


def _json_shape(annotation: Any) -> tuple[str, Any] | None:
    """The JSON shape a field takes: ("record", class), ("object", value shape), ("array", None),
    ("scalar", None), or None when any shape may do."""
    import typing
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return _json_shape(args[0])
    if origin is typing.Union or type(annotation).__name__ == "UnionType":
        shapes = [_json_shape(a) for a in args if a is not type(None)]
        return shapes[0] if len(shapes) == 1 else None
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "record", annotation
    if origin is dict:
        value = _json_shape(args[1]) if len(args) == 2 else None
        return "object", value[0] if value else None
    if origin in (list, tuple):
        return "array", None
    if annotation is Any:
        return None
    return "scalar", None


MUST_BE_POSITIVE = {"compute.peak_flops", "memory.capacity", "memory.bandwidth"}
"""Zero here would divide by zero in the roofline; every other quantity of a record must be >= 0."""


def _sign_problems(value: Any, path: str, at: str = "") -> list[dict]:
    """Physical quantities that cannot be negative (the record classes do not check all of them)."""
    out: list[dict] = []
    if isinstance(value, pint.Quantity):
        positive = at in MUST_BE_POSITIVE or at.startswith("compute.precision_flops")
        if (positive and not value.magnitude > 0) or not value.magnitude >= 0:
            out.append({"field": f"{path}.{at}" if path else at, "rule": "must be > 0" if positive else "must be >= 0",
                        "value": quantity_text(value)})
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            out += _sign_problems(getattr(value, name), path, f"{at}.{name}" if at else name)
    elif isinstance(value, dict):
        for k, v in value.items():
            out += _sign_problems(v, path, f"{at}.{k}")
    return out


_OWNER_PREFIX = re.compile(r"^(\w+)\.([\w.\[\]]+): ")
_CLASS_HEAD = re.compile(r"^[A-Z]\w*\.")  # fields are snake_case: a CamelCase head is a sub-record's class


CONFIG_KEYS = {"hf_config", "name", "overrides"}


def _record_from_config(body: dict, path: str) -> Record:
    """A model given as a Hugging Face ``config.json`` object (``{"hf_config": {...}, "name": ...,
    "overrides": {...}}``), imported as ``Models.from_hf_config`` imports it. Only the JSON object
    is read: no path or repository on the server is opened."""
    from ..hf_import import from_hf_config
    extra = sorted(set(body) - CONFIG_KEYS)
    if extra:
        raise RequestProblems([{"field": f"{path}.{k}", "rule": f"is not read with hf_config; the keys are "
                                f"{', '.join(sorted(CONFIG_KEYS))}", "value": jsonable(body[k])} for k in extra])
    config, overrides = body["hf_config"], body.get("overrides")
    if not isinstance(config, dict):
        raise RequestProblems([{"field": f"{path}.hf_config", "rule": "must be the config.json object itself",
                                "value": jsonable(config)}])
    if overrides is not None and not isinstance(overrides, dict):
        raise RequestProblems([{"field": f"{path}.overrides", "rule": "must be an object of record fields",
                                "value": jsonable(overrides)}])
    name = body.get("name")
    if name is not None and not isinstance(name, str):
        raise RequestProblems([{"field": f"{path}.name", "rule": "must be a string", "value": jsonable(name)}])
    try:
        return from_hf_config(config, name, overrides=overrides, source="request hf_config",
                              safetensors_check="ignore")
    except InputError as exc:
        raise RequestProblems([{"field": f"{path}.hf_config.{e.field}", "rule": e.rule, "value": jsonable(e.value),
                                **({"fix": e.fix} if e.fix else {})} for e in exc.errors]) from None


def _record_problem(exc: InputError, owner: str, name: Any, path: str) -> dict:
    """The record classes name a broken rule relative to the part of the record that raised it
    ("HardwareNode.compute: peak_flops ...", "HardwareNode.bogus", "Llama.layers"); this rebuilds
    the full path under ``path`` ("hardware.compute.peak_flops")."""
    field = exc.field
    where = _OWNER_PREFIX.match(str(exc))
    if where and where.group(1) == owner and not field.startswith(where.group(2)):
        field = f"{where.group(2)}.{_CLASS_HEAD.sub('', field)}"
    for head in (owner, name):
        if isinstance(head, str) and field.startswith(head + "."):
            field = field[len(head) + 1:]
    full = f"{path}.{field}" if path and field else (path or field)
    out = {"field": full, "rule": exc.rule, "value": jsonable(exc.value)}
    if exc.fix:
        out["fix"] = exc.fix
    return out


def resolve_hardware(ref: Any, field: str = "hardware") -> HardwareNode:
    return _resolve("hardware", ref, field)  # type: ignore[return-value]


def resolve_workload(ref: Any, field: str = "model") -> Workload:
    return _resolve("models", ref, field)  # type: ignore[return-value]


def _resolve(kind: str, ref: Any, field: str) -> Record:
    if not isinstance(ref, str):
        return build_record(kind, ref, field)
    try:
        with _lock:
            return KINDS[kind][ref]
    except UnknownNameError as exc:
        raise ApiError(404, "unknown_name", str(exc),
                       [{"field": field, "rule": f"must be a name in the {kind} registry (GET /registry/{kind})",
                         "value": ref}], suggestions_for(exc)) from None


RESOLVERS = {"hardware": resolve_hardware, "models": resolve_workload}



def portable(kind: str, ref: Any, field: str) -> Any:
    """A reference a worker process can resolve on its own: built-in names stay names, names of
    records added to this server become the record as it was posted, inline records are checked."""
    if isinstance(ref, list):
        return [portable(kind, r, f"{field}[{i}]") for i, r in enumerate(ref)]
    if isinstance(ref, str):
        record = RESOLVERS[kind](ref, field)
        key = _key_of(kind, record)
        if key is not None:
            return _custom[kind][key]
        return ref
    RESOLVERS[kind](ref, field)
    return ref


def _key_of(kind: str, record: Record) -> str | None:
    with _lock:
        custom = list(_custom[kind])
    for key in custom:
        if namespace(kind).get(key) is record:
            return key
    return None


# ------------------------------------------------------------------------------------------------
# Records added by clients


def registry_key(name: str) -> str:
    """The key :func:`mlsysim_opt.catalog.register` files a record under."""
    return name.replace(" ", "_").replace("-", "_")


def add_custom(kind: str, body: dict, limit: int, store=None, persist: bool = True, owner: str | None = None) -> dict:
    """Validate and register a client's record (kept as ``owner``'s); 409 if its name is taken or
    the server holds ``limit`` added records, 422 if it is invalid."""
    if kind not in WRITABLE:
        raise ApiError(405, "not_allowed", f"records of kind {kind!r} cannot be added; only {', '.join(WRITABLE)}")
    record = build_record(kind, body, "")
    check_record_name(record.name)
    key = registry_key(record.name)
    ns = namespace(kind)
    with _lock:
        if ns.get(key) is not None or ns.get(record.name) is not None:
            raise ApiError(409, "conflict", f"{kind} {record.name!r} already exists (key {key!r})",
                           [{"field": "name", "rule": "must not be a name already in the registry",
                             "value": record.name, "fix": "choose another name"}])
        if sum(len(v) for v in _custom.values()) >= limit:
            # 409: the request conflicts with the server's state, and deleting records resolves it
            raise ApiError(409, "record_limit", f"this server already holds {limit} added records; delete one "
                           "(DELETE /registry/{kind}/{name}) before adding another", limit=limit)
        # stored first: a record the store refuses must not live on in this server's memory alone
        if persist and store is not None:
            store.save_record(kind, key, body, owner)
        catalog.register(record)
        _custom[kind][key] = body
    return entry(kind, key)


RECORD_NAME_MAX = 100
"""Longest name of a record a client adds (it becomes a registry key and a URL path segment)."""


def record_name_problem(name: Any, field: str = "name") -> dict | None:
    """Why ``name`` cannot name an added record, as a problem (None when it can): it must be a
    non-empty printable string of at most RECORD_NAME_MAX characters (no NUL, control or
    bidirectional-override characters, which would mislead readers or break the store) and no path
    separator or '..' (names end up in URLs and file-like keys)."""
    if not isinstance(name, str) or not name.strip():
        rule = "must be a non-empty string"
    elif len(name) > RECORD_NAME_MAX:
        rule = f"must be at most {RECORD_NAME_MAX} characters"
    elif not name.isprintable():  # Unicode categories Cc and Cf: NUL, controls, bidi overrides
        rule = "must be printable: no NUL, control or bidirectional-override characters"
    elif "/" in name or "\\" in name or ".." in name:
        rule = "must not contain '/', '\\' or '..'"
    else:
        return None
    return {"field": field, "rule": rule, "value": jsonable(name),
            "fix": "letters, digits, spaces and punctuation such as '-', '_', '.'"}


def check_record_name(name: Any) -> None:
    problem = record_name_problem(name)
    if problem is not None:
        raise ApiError(422, "invalid_input", f"name {problem['rule']}", [problem])


def load_custom(store) -> list[str]:
    """Register the records in the store that this server does not have yet: at start-up, those
    clients added before a restart; afterwards, those added through other servers sharing the store.
    Returns problems (e.g. a name the built-in registry now uses) instead of failing; a record with
    a problem is not tried again."""
    with _lock:
        here = {(kind, key) for kind, added in _custom.items() for key in added}
    known = here | _unloadable
    stored = store.records()
    # records are written to the store before this server holds them, so one held here (as of the
    # snapshot above) and absent from the store was deleted, perhaps through another server
    for kind, key in here - {(kind, key) for kind, key, _ in stored}:
        _forget(kind, key)
    problems = []
    for kind, key, body in stored:
        if (kind, key) in known:
            continue
        try:
            add_custom(kind, body, limit=10**9, persist=False)
        except (ApiError, MlsysimError) as exc:
            with _lock:
                _unloadable.add((kind, key))
            problems.append(f"{kind}/{key}: {getattr(exc, 'message', exc)}")
    return problems


_unloadable: set[tuple[str, str]] = set()
"""Stored records that could not be registered here (reported once by load_custom)."""


def delete_custom(kind: str, name: str, owner: str, store) -> None:
    """Delete a record ``owner`` added, from the store and this server's registry; 403 for a
    shipped record or one another client added, 404 for an unknown name."""
    record = _resolve(kind, name, "name")
    key = _key_of(kind, record) if kind in WRITABLE else None
    if key is None:
        raise ApiError(403, "forbidden", f"{kind} {name!r} ships with the library and cannot be deleted; only "
                       "records added to this server can", [{"field": "name", "rule": "must name a record added "
                                                             "to this server", "value": name}])
    if store.delete_record(kind, key, owner) is False:
        raise ApiError(403, "forbidden", f"{kind} {key!r} was added with another API key; only that key can "
                       "delete it", [{"field": "name", "rule": "must name a record this API key added", "value": name}])
    _forget(kind, key)   # also when the store no longer had it (deleted through another server)


def _forget(kind: str, key: str) -> None:
    """Drop an added record from this server's registry (every alias that points at it)."""
    ns = namespace(kind)
    with _lock:
        if _custom[kind].pop(key, None) is None:
            return
        record = ns.get(key)
        # the catalog has no removal API; an added record lives only in its kind's top namespace
        for alias in [k for k, r in ns._records.items() if r is record]:
            del ns._records[alias]
