"""Numeric backends: a sheet's definitions become one Python function (scalar floats, via ``math``)
and one NumPy function (arrays of any broadcastable shape). Common sub-expressions are shared.

Each backend is a printer (:mod:`.printers`): a table from node type to the text of that node in
the target. The printed source is kept in the on-disk cache (:mod:`.cache`), keyed by the
expressions themselves, so a later process skips SymPy's work and only runs ``exec`` on the text.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import math
import pathlib
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Sequence

import numpy as np

from . import cache

SCALAR_NAMESPACE = {
    "_ceil": lambda x: float(math.ceil(x)), "_floor": lambda x: float(math.floor(x)),
    "_log": math.log, "_exp": math.exp, "_sqrt": math.sqrt, "_nan": math.nan,
    "_heaviside": lambda x: 1.0 if x > 0 else (0.0 if x < 0 else 0.5),
}

VECTOR_NAMESPACE = {"_np": np, "_nan": np.nan, "_sqrt": np.sqrt}

_PRINTER_NAMES = ("Printer", "SCALAR_RULES", "VECTOR_RULES")


def __getattr__(name: str):
    # The rule tables live with the printers, which import SymPy; they are still reachable here.
    if name in _PRINTER_NAMES:
        from . import printers
        return getattr(printers, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass
class CompiledFunction:
    """Evaluate named expressions from named float inputs (scalar) or arrays (``vector``)."""

    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    scalar_fn: Callable
    vector_fn: Callable
    source: str

    def __call__(self, **values) -> dict[str, float]:
        args = _ordered(self.inputs, values)
        return dict(zip(self.outputs, self.scalar_fn(*args)))

    def vector(self, **values) -> dict[str, np.ndarray]:
        args = [np.asarray(v, dtype=float) for v in _ordered(self.inputs, values)]
        shape = np.broadcast_shapes(*(a.shape for a in args)) if args else ()
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            outs = self.vector_fn(*args)
        return {k: np.broadcast_to(np.asarray(v, dtype=float), shape) for k, v in zip(self.outputs, outs)}


def _ordered(names: Sequence[str], values: dict) -> list:
    try:
        return [values[n] for n in names]
    except KeyError as exc:
        from ..errors import MISSING, InputError
        raise InputError(str(exc.args[0]), MISSING, "is required by this model",
                         f"pass all of: {', '.join(names)}") from None


def compile_expressions(exprs: dict, inputs: Sequence | None = None) -> CompiledFunction:
    """Compile named expressions over ``inputs`` (default: every symbol they read, in declaration
    order) to scalar and vectorized functions, reusing the cached source when there is one."""
    import sympy

    from ..symbolic.sheet import constants
    exprs = {k: sympy.sympify(v) for k, v in exprs.items()}
    key = cache_key(exprs, inputs)
    compiled = _from_entry(cache.load("numeric", key), tuple(exprs))
    if compiled is not None:
        return compiled
    fixed = constants()
    exprs = {k: v.xreplace(fixed) for k, v in exprs.items()}
    if inputs is None:
        free = set().union(*(e.free_symbols for e in exprs.values()))
        inputs = sorted(free, key=lambda s: _declaration_order()[s.name])
    scalar_src, vector_src = _print_sources(exprs, inputs)
    names = tuple(s.name for s in inputs)
    cache.store("numeric", key, {"inputs": list(names), "outputs": list(exprs),
                                 "scalar": scalar_src, "vector": vector_src})
    return _build(names, tuple(exprs), scalar_src, vector_src)


def cache_key(exprs: dict, inputs: Sequence | None = None) -> str:
    """The cache key of compiling ``exprs`` (SymPy expressions) over ``inputs``: their structure and
    the values of the constants they read (:func:`expressions_digest`), the inputs, this backend's
    source and SymPy's version, the package and Python versions (:func:`.cache.make_key`)."""
    from ..symbolic.sheet import constants
    digest, read = expressions_digest(exprs, constants())
    if inputs is not None:
        signature = ("given", *(s.name for s in inputs))
    else:   # the default inputs follow the declaration order, which the import order of sheets sets
        signature = ("declared", *sorted((s.name for s in read), key=_declaration_order().__getitem__))
    return cache.make_key((*backend_versions(), digest, *signature))


def _declaration_order() -> dict[str, int]:
    from ..symbolic.sheet import declared_symbols
    return {name: i for i, name in enumerate(declared_symbols())}


def _print_sources(exprs: dict, inputs: Sequence) -> tuple[str, str]:
    from .printers import SCALAR_RULES, VECTOR_RULES, function_source
    values = list(exprs.values())
    return (function_source(values, inputs, SCALAR_RULES, "_sqrt", "_scalar"),
            function_source(values, inputs, VECTOR_RULES, "_sqrt", "_vector"))


def _build(inputs: tuple[str, ...], outputs: tuple[str, ...], scalar_src: str, vector_src: str) -> CompiledFunction:
    scope_s, scope_v = dict(SCALAR_NAMESPACE), dict(VECTOR_NAMESPACE)
    # Generated from our own printers over declared symbols only: no user text reaches this code.
    exec(compile(scalar_src, "<mlsysim_opt scalar>", "exec"), scope_s)  # noqa: S102
    exec(compile(vector_src, "<mlsysim_opt vector>", "exec"), scope_v)  # noqa: S102
    return CompiledFunction(inputs, outputs, scope_s["_scalar"], scope_v["_vector"],
                            scalar_src + "\n\n" + vector_src)


def _from_entry(entry: dict | None, outputs: tuple[str, ...]) -> CompiledFunction | None:
    """The function of a cache entry, or None when there is none for these outputs (a damaged
    entry is a miss: it is rebuilt and overwritten)."""
    if entry is None:
        return None
    try:
        if tuple(entry["outputs"]) != outputs:
            return None
        inputs = tuple(entry["inputs"])
        if not all(isinstance(name, str) and name.isidentifier() for name in inputs):
            return None
        compiled = _build(inputs, outputs, entry["scalar"], entry["vector"])
        takes_inputs = all(fn.__code__.co_varnames[:fn.__code__.co_argcount] == inputs
                           for fn in (compiled.scalar_fn, compiled.vector_fn))
    except Exception:   # anything a damaged entry can raise: wrong types, bad syntax, bad names
        return None
    return compiled if takes_inputs else None


def compile_numeric(sheet, names: Sequence[str]) -> CompiledFunction:
    exprs = {n: sheet[n] for n in names}
    return compile_expressions(exprs, sheet.inputs(names))


# --- cache keys ----------------------------------------------------------------------------------

_BACKEND_FILES = ("numeric.py", "printers.py", "rules.py")


@lru_cache(maxsize=None)
def backend_versions() -> tuple[str, ...]:
    """The code the generated source depends on: these printers and the installed SymPy."""
    here = pathlib.Path(__file__).parent
    return (f"sympy {importlib.metadata.version('sympy')}",
            *(f"{name} {cache.file_digest(str(here / name))}" for name in _BACKEND_FILES))


def expressions_digest(exprs: dict, fixed: dict) -> tuple[str, set]:
    """A digest of named expressions by structure (node types; symbol names, their assumptions and
    the values of the named constants among them; exact numbers), and the symbols they read. A
    sub-expression shared in the tree is read once. Equal digests print to the same source."""
    memo: dict[int, tuple[bytes, object]] = {}   # by id, holding the node so its id stays its own
    read: set = set()

    def node(e) -> bytes:
        known = memo.get(id(e))
        if known is not None:
            return known[0]
        if e.is_Symbol:
            read.add(e)
            text = _symbol_text(e, fixed.get(e))
        elif not e.args:
            text = _atom_text(e)
        else:
            text = type(e).__name__ + "(" + ",".join(node(a).hex() for a in e.args) + ")"
        value = hashlib.blake2b(text.encode(), digest_size=16).digest()
        memo[id(e)] = (value, e)
        return value

    whole = hashlib.sha256()
    for name, expr in exprs.items():
        whole.update(name.encode() + b"=" + node(expr) + b";")
    return whole.hexdigest(), read


def _symbol_text(symbol, value: float | None) -> str:
    # Assumptions count: substituting the constants re-evaluates the tree (Max(c x, 0) is c x
    # when x is declared nonnegative).
    assumptions = sorted((k, v) for k, v in symbol.assumptions0.items())
    return f"S {symbol.name} {assumptions} {value!r}"


def _atom_text(atom) -> str:
    if atom.is_Rational:
        return f"Q {atom.p}/{atom.q}"
    if atom.is_Float:
        return f"F {float(atom)!r} {atom._prec}"
    return f"A {type(atom).__name__} {atom}"   # pi, oo, nan, true, false
