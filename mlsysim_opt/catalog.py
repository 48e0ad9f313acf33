"""The registry: YAML text with provenance -> frozen records, reachable by namespace and flat alias.

``Hardware.Cloud.H100`` and ``Hardware.H100`` are the same record; so are ``Infra.Grids.Quebec`` and
``Infra.Quebec``. Unknown names raise :class:`UnknownNameError` with close matches. Users add their
own records with :func:`load_registry` (a YAML file in the same format) or :func:`register`.
"""
from __future__ import annotations

import numbers
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Iterator

import yaml

from .errors import InputError, MlsysimError, UnknownNameError
from .references import Citation, Scenario
from .types import (CNNWorkload, Datacenter, Fleet, GridProfile, HardwareNode, NetworkFabric, Node,
                    Record, TransformerWorkload)
from .units import ureg

SOURCE_KINDS = {"datasheet", "paper", "report", "website", "estimate"}
VALUE_KEYS = {"value", "unit", "source", "note"}


# ----------------------------------------------------------------------------------------------
# Namespaces


class Namespace:
    """A group of records reachable by attribute (``ns.H100``) or item (``ns["h100"]``)."""

    def __init__(self, kind: str, parent: "Namespace | None" = None):
        self._kind = kind
        self._records: dict[str, Record] = {}
        self._children: dict[str, Namespace] = {}
        self._parent = parent

    # population ---------------------------------------------------------------------------
    def _child(self, name: str) -> "Namespace":
        if name not in self._children:
            self._children[name] = Namespace(f"{self._kind}.{name}", self)
        return self._children[name]

    def _add(self, key: str, record: Record, aliases=()) -> None:
        for k in (key, *aliases):
            self._records[k] = record
            if self._parent is not None:
                self._parent._add(k, record)

    # access -------------------------------------------------------------------------------
    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        _ensure_loaded()
        if name in self._children:
            return self._children[name]
        if name in self._records:
            return self._records[name]
        raise UnknownNameError(f"{self._kind} entry", name, [*self._records, *self._children])

    def __getitem__(self, name: str) -> Record:
        _ensure_loaded()
        if name in self._records:
            return self._records[name]
        folded = {k.lower().replace("-", "_").replace(" ", "_"): v for k, v in self._records.items()}
        folded.update({v.name.lower(): v for v in self._records.values()})
        key = name.lower().replace("-", "_").replace(" ", "_")
        if key in folded:
            return folded[key]
        if name.lower() in folded:
            return folded[name.lower()]
        raise UnknownNameError(f"{self._kind} entry", name, self._records)

    def get(self, name: str, default=None):
        try:
            return self[name]
        except UnknownNameError:
            return default

    def __contains__(self, name: str) -> bool:
        return self.get(name) is not None

    def __iter__(self) -> Iterator[Record]:
        _ensure_loaded()
        seen: set[int] = set()
        for record in self._records.values():
            if id(record) not in seen:
                seen.add(id(record))
                yield record

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def names(self) -> list[str]:
        _ensure_loaded()
        return sorted(self._records)

    def items(self) -> list[tuple[str, Record]]:
        """Canonical key -> record (aliases omitted)."""
        _ensure_loaded()
        out: dict[int, tuple[str, Record]] = {}
        for key, record in self._records.items():
            out.setdefault(id(record), (key, record))
        return list(out.values())

    def __dir__(self):
        _ensure_loaded()
        return sorted({*self._records, *self._children, "names", "items", "get"})

    def __repr__(self) -> str:
        return f"<{self._kind}: {len(self)} records>"


Hardware = Namespace("Hardware")
Models = Namespace("Models")
from .hf_import import from_hf_config as _from_hf_config  # noqa: E402
Models.from_hf_config = _from_hf_config  # Models.from_hf_config("config.json"): any model by its HF config
Systems = Namespace("Systems")
Infra = Namespace("Infra")
Literature = Namespace("Literature")   # cited scalar results (mlsysim_opt/references.py)
Scenarios = Namespace("Scenarios")     # the tutorial's exercises and capstone as data
Nodes = Systems._child("Nodes")
Fabrics = Systems._child("Fabrics")
Clusters = Systems._child("Clusters")
Grids = Infra._child("Grids")
Datacenters = Infra._child("Datacenters")
for _sub in ("Cloud", "Edge", "Tiny"):
    Hardware._child(_sub)
for _sub in ("Language", "Vision", "Tiny"):
    Models._child(_sub)

Sources: dict[str, dict] = {}


# ----------------------------------------------------------------------------------------------
# Loading


@dataclass
class _Loaded:
    path: str
    key: str
    provenance: dict[str, str]


@dataclass
class AuditReport:
    """Result of :func:`audit_provenance`: values checked and problems found."""

    values_checked: int = 0
    records_checked: int = 0
    sources_used: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def __str__(self) -> str:
        head = (f"{self.records_checked} records, {self.values_checked} values, "
                f"{self.sources_used} sources: " + ("OK" if self.ok else f"{len(self.problems)} problem(s)"))
        return "\n".join([head, *("  - " + p for p in self.problems)])


def _strip(node: Any, path: str, prov: dict[str, str], problems: list[str], counter: list[int]) -> Any:
    """Turn {value, unit, source} leaves into quantities/numbers; record provenance; flag bare numbers."""
    if isinstance(node, dict) and "value" in node and set(node) <= VALUE_KEYS:
        counter[0] += 1
        value, unit, source = node.get("value"), node.get("unit"), node.get("source")
        if source is None:
            problems.append(f"{path}: value {value!r} has no source")
        else:
            prov[path.split(":", 1)[-1]] = str(source)
            if str(source) not in Sources:
                problems.append(f"{path}: source {source!r} is not defined in sources.yaml")
        if isinstance(value, str):  # YAML 1.1 reads 8.03e9 (no dot, no sign) as text
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, list) and value and all(isinstance(v, numbers.Real) and not isinstance(v, bool)
                                                     for v in value):
            # a sourced list of numbers (a scenario's batch sizes), each in the unit given
            if unit in (None, "", "count", "param", "token"):
                return list(value)
            return [ureg.Quantity(v, str(unit)) for v in value]
        if isinstance(value, bool):             # a sourced yes/no fact (e.g. a fabric is rail-optimized)
            if unit not in (None, ""):
                problems.append(f"{path}: a true/false value takes no unit")
            return value
        if not isinstance(value, numbers.Real):
            problems.append(f"{path}: value {value!r} is not a number or true/false")
            return value
        if unit in (None, "", "count", "param", "token"):
            return value
        try:
            return ureg.Quantity(value, str(unit))
        except Exception:
            problems.append(f"{path}: unit {unit!r} is not a known unit")
            return value
    if isinstance(node, dict):
        return {k: _strip(v, f"{path}.{k}", prov, problems, counter) for k, v in node.items()}
    if isinstance(node, list):
        return [_strip(v, f"{path}[{i}]", prov, problems, counter) for i, v in enumerate(node)]
    if isinstance(node, numbers.Real) and not isinstance(node, bool):
        counter[0] += 1
        problems.append(f"{path}: bare number {node!r} (write {{value: ..., unit: ..., source: ...}})")
    return node


def _read_yaml(path: Path | Any) -> dict:
    text = path.read_text(encoding="utf-8")
    data = yaml.safe_load(text) or {}
    if not isinstance(data, dict):
        raise MlsysimError(f"{path}: expected a mapping of registry keys to records")
    return data


_REF_FIELDS: dict[str, tuple[Namespace, str]] = {}


def _resolve(ns: Namespace, ref: Any, where: str):
    if isinstance(ref, Record):
        return ref
    if not isinstance(ref, str):
        raise MlsysimError(f"{where}: expected a registry name, got {ref!r}")
    return ns[ref]


def _build(kind: str, key: str, body: dict, where: str) -> tuple[Record, Namespace, tuple[str, ...]]:
    body = dict(body)
    namespace = body.pop("namespace", None)
    aliases = tuple(body.pop("aliases", ()) or ())
    body.setdefault("name", key)
    if kind == "hardware":
        if namespace:
            body["category"] = namespace
        record = HardwareNode(**body)
        target = Hardware._child(namespace) if namespace else Hardware
    elif kind == "workloads":
        family = body.pop("type", "transformer")
        if namespace:
            body["category"] = namespace
        cls = TransformerWorkload if family == "transformer" else CNNWorkload
        if family != "transformer":
            body["family"] = family
        record = cls(**body)
        target = Models._child(namespace) if namespace else Models
    elif kind == "fabrics":
        record, target = NetworkFabric(**body), Fabrics
    elif kind == "nodes":
        body["accelerator"] = _resolve(Hardware, body.get("accelerator"), f"{where}.accelerator")
        record, target = Node(**body), Nodes
    elif kind == "clusters":
        body["node"] = _resolve(Nodes, body.get("node"), f"{where}.node")
        body["fabric"] = _resolve(Fabrics, body.get("fabric"), f"{where}.fabric")
        if body.get("region") is not None:
            body["region"] = _resolve(Grids, body["region"], f"{where}.region")
        if body.get("datacenter") is not None:
            body["datacenter"] = _resolve(Datacenters, body["datacenter"], f"{where}.datacenter")
        record, target = Fleet(**body), Clusters
    elif kind == "grids":
        record, target = GridProfile(**body), Grids
    elif kind == "datacenters":
        body["grid"] = _resolve(Grids, body.get("grid"), f"{where}.grid")
        record, target = Datacenter(**body), Datacenters
    elif kind == "literature":
        record, target = Citation(**body), Literature
    elif kind == "scenarios":
        record, target = Scenario(**body), Scenarios
    else:  # pragma: no cover - guarded by ORDER
        raise MlsysimError(f"unknown registry file kind {kind!r}")
    return record, target, aliases


ORDER = ("hardware", "workloads", "fabrics", "nodes", "clusters", "grids", "datacenters", "literature", "scenarios")
_state = {"loaded": False, "loading": False, "records": 0, "values": 0, "problems": []}
_LOAD_LOCK = threading.RLock()


def _load_file(kind: str, data: dict, origin: str, problems: list[str], counter: list[int]) -> int:
    built = 0
    for key, body in data.items():
        where = f"{origin}:{key}"
        if not isinstance(body, dict):
            problems.append(f"{where}: expected a mapping")
            continue
        prov: dict[str, str] = {}
        clean = _strip(body, where, prov, problems, counter)
        clean["provenance"] = {path.removeprefix(f"{key}."): sid for path, sid in prov.items()}
        try:
            record, target, aliases = _build(kind, key, clean, where)
        except Exception as exc:  # a bad record is reported, never silently dropped
            problems.append(f"{where}: {exc}")
            continue
        target._add(key, record, aliases)
        built += 1
    return built


def _load_sources(data: dict, origin: str, problems: list[str]) -> None:
    for sid, entry in data.items():
        if not isinstance(entry, dict):
            problems.append(f"{origin}:{sid}: expected a mapping with title, url, date, kind")
            continue
        for required in ("title", "kind"):
            if not entry.get(required):
                problems.append(f"{origin}:{sid}: missing {required}")
        if not (entry.get("url") or entry.get("document")):
            problems.append(f"{origin}:{sid}: needs a url or a document reference")
        if entry.get("kind") and entry["kind"] not in SOURCE_KINDS:
            problems.append(f"{origin}:{sid}: kind {entry['kind']!r} is not one of {sorted(SOURCE_KINDS)}")
        if sid in Sources:
            problems.append(f"{origin}:{sid}: source defined twice")
        Sources[sid] = dict(entry)


def _ensure_loaded() -> None:
    if _state["loaded"]:
        return
    # Other threads wait for the one loading (a dashboard gallery or a threaded server asks from
    # several at once); the loading thread itself re-enters while it builds records.
    with _LOAD_LOCK:
        if _state["loaded"] or _state["loading"]:
            return
        _load_packaged()


def _load_packaged() -> None:
    _state["loading"] = True
    try:
        root = resources.files("mlsysim_opt.registry")
        problems: list[str] = []
        counter = [0]
        src = root / "sources.yaml"
        if src.is_file():
            _load_sources(_read_yaml(src), "sources.yaml", problems)
        records = 0
        for kind in ORDER:
            f = root / f"{kind}.yaml"
            if f.is_file():
                records += _load_file(kind, _read_yaml(f), f"{kind}.yaml", problems, counter)
        _state.update(records=records, values=counter[0], problems=problems, loaded=True)
    finally:
        _state["loading"] = False


def load_registry(path: str | Path, kind: str | None = None) -> int:
    """Add the records of a user YAML file (same format as ``registry/*.yaml``).

    ``kind`` is one of ``hardware, workloads, fabrics, nodes, clusters, grids, datacenters,
    literature, scenarios``; by default it is taken from the file name (``my_hardware.yaml`` ->
    hardware). A file may also hold
    a top-level ``sources:`` mapping. Returns the number of records added; raises on any problem.
    """
    _ensure_loaded()
    p = Path(path)
    data = _read_yaml(p)
    if kind is None:
        kind = next((k for k in ORDER if p.stem.endswith(k) or p.stem == k), None)
    if kind not in ORDER:
        raise InputError("kind", kind, f"must be one of {', '.join(ORDER)}",
                         "pass kind=... or name the file e.g. my_hardware.yaml")
    problems: list[str] = []
    saved = _snapshot()
    if isinstance(data.get("sources"), dict):
        _load_sources(data.pop("sources"), p.name, problems)
    added = _load_file(kind, data, p.name, problems, [0])
    if problems:  # all or nothing: a file with any problem leaves the registry as it was
        _restore(saved)
        raise MlsysimError(f"{p}: " + "; ".join(problems))
    return added


def _namespaces() -> list[Namespace]:
    out, todo = [], [Hardware, Models, Systems, Infra, Literature, Scenarios]
    while todo:
        ns = todo.pop()
        out.append(ns)
        todo.extend(ns._children.values())
    return out


def _snapshot() -> tuple:
    return {id(ns): (ns, dict(ns._records)) for ns in _namespaces()}, dict(Sources)


def _restore(saved: tuple) -> None:
    namespaces, sources = saved
    for ns, records in namespaces.values():
        ns._records = dict(records)
    Sources.clear()
    Sources.update(sources)


@contextmanager
def isolated():
    """Registry changes made inside the block (``load_registry``, ``register``) are undone on exit:
    for tests and for sandboxes such as the HTTP service's per-request records."""
    _ensure_loaded()
    saved = _snapshot()
    try:
        yield
    finally:
        _restore(saved)


def register(record: Record, namespace: str | None = None, aliases=()) -> Record:
    """Add a record built in Python to the registry (``Hardware.MyChip`` afterwards)."""
    _ensure_loaded()
    targets: dict[type, Namespace] = {HardwareNode: Hardware, TransformerWorkload: Models, CNNWorkload: Models,
                                      NetworkFabric: Fabrics, Node: Nodes, Fleet: Clusters,
                                      GridProfile: Grids, Datacenter: Datacenters}
    ns = targets.get(type(record))
    if ns is None:
        raise InputError("record", type(record).__name__, "is not a registry record type")
    if namespace and ns in (Hardware, Models):
        ns = ns._child(namespace)
    key = record.name.replace(" ", "_").replace("-", "_")
    ns._add(key, record, aliases)
    return record


def audit_provenance() -> AuditReport:
    """Check every registry value: unit of the right dimension and a resolvable source.

    Dimensions are checked by the typed records themselves; any record that fails to load is a
    problem here, never a silent drop.
    """
    _ensure_loaded()
    report = AuditReport(values_checked=_state["values"], records_checked=_state["records"],
                         problems=list(_state["problems"]))
    used = set()
    for ns in (Hardware, Models, Nodes, Fabrics, Clusters, Grids, Datacenters, Literature, Scenarios):
        for record in ns:
            used.update(record.provenance.values())
    _audit_planning_files(report, used)
    report.sources_used = len(used)
    for sid in sorted(set(Sources) - used):
        report.problems.append(f"sources.yaml:{sid}: defined but never used")
    return report


def _audit_planning_files(report: AuditReport, used: set[str]) -> None:
    """Count the values of ``registry/planning/*.yaml`` (sites, RTTs, carbon profiles, cloud offers) and
    mark their sources used. They are not records here (``mlsysim_opt.planning.data`` loads them), so
    only the leaf rules apply: a unit that parses and a source defined in sources.yaml."""
    folder = resources.files("mlsysim_opt.registry") / "planning"
    if not folder.is_dir():
        return
    for f in sorted(folder.iterdir(), key=lambda x: x.name):
        if not f.name.endswith(".yaml"):
            continue
        prov: dict[str, str] = {}
        counter = [0]
        try:
            _strip(_read_yaml(f), f"planning/{f.name}", prov, report.problems, counter)
        except Exception as exc:  # unreadable YAML is a problem to report, never a crash of the audit
            report.problems.append(f"planning/{f.name}: {exc}")
            continue
        report.values_checked += counter[0]
        used.update(prov.values())


# ----------------------------------------------------------------------------------------------
# Defaults for the hardware= form of Fleet


def default_fabric() -> NetworkFabric:
    return Fabrics.InfiniBand_NDR


def default_node_for(hw: HardwareNode, per_node: int = 8) -> Node:
    """An ``per_node``-way server of ``hw``: the registry node of that accelerator if there is one
    (holding ``hw`` itself when it is a modified copy of the registry record, so its own price and
    specs count), else a generic server whose intra-node link is the accelerator's host link (PCIe)."""
    _ensure_loaded()
    for node in Nodes:
        if node.accelerator.name == hw.name and node.accelerators_per_node == per_node:
            return node if node.accelerator is hw or node.accelerator == hw else node.model_copy(
                update={"accelerator": hw})
    link = hw.host_link_bandwidth if hw.host_link_bandwidth is not None else ureg.Quantity(64, "GB/s")
    return Node(name=f"{per_node}x {hw.name} server", accelerator=hw, accelerators_per_node=per_node,
                intra_node_bandwidth=link)


def all_namespaces() -> dict[str, Namespace]:
    return {"Hardware": Hardware, "Models": Models, "Nodes": Nodes, "Fabrics": Fabrics,
            "Clusters": Clusters, "Grids": Grids, "Datacenters": Datacenters, "Literature": Literature,
            "Scenarios": Scenarios}
