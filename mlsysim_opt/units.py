"""The one pint registry of the package, and the unit boundary.

Quantities enter the API as pint quantities, as strings ("3.35 TB/s") or as plain numbers in the
documented default unit of each argument; they are converted once to SI floats in the unit each
symbol declares, and put back on the results.

Unit conventions (in addition to pint's defaults, where ``B`` is the byte and ``GB`` = 10^9 byte):

* ``FLOP`` is its own base dimension, so FLOP/s and byte/s can never be added. ``TFLOPs`` is a
  count (10^12 FLOP), not a rate: rates are written ``TFLOPs/s`` or ``TFLOP/s``.
* ``OPS``/``TOPS`` are integer-operation *rates* and share the FLOP dimension.
* ``token``, ``request``, ``sample``, ``param`` are dimensionless counts (tokens/s converts to 1/s).
* ``USD`` is its own dimension (no currency conversion is ever implied).
* ``gCO2e`` is its own dimension (kgCO2e, tCO2e derived), so carbon is never confused with mass.
* ``bps``/``Gbps`` are bit/s; ``Q_("400 Gbps").to("GB/s")`` is 50 GB/s.
"""
from __future__ import annotations

import functools
import hashlib
import numbers
import pathlib
import re
import tempfile

from .errors import InputError, UnitError


import pint


def _registry() -> pint.UnitRegistry:
    """pint's default definitions with one change: ``bit`` gets its own dimension, [information].

    Stock pint declares the bit dimensionless, which would let bytes convert to tokens or
    parameters. The definitions are read from the installed pint; pint keeps its parsed form in the
    package's cache folder (:mod:`mlsysim_opt.compile.cache`), which saves most of the build.
    """
    root = pathlib.Path(pint.__file__).parent
    text = (root / "default_en.txt").read_text(encoding="utf-8")
    if "\nbit = []" not in text:  # a future pint may already do this
        return pint.UnitRegistry(autoconvert_offset_to_baseunit=True)
    constants = (root / "constants_en.txt").read_text(encoding="utf-8")
    definitions = {"default_en.txt": text.replace("\nbit = []", "\nbit = [information]"),
                   "constants_en.txt": constants}
    cached = _cached_registry(definitions)
    if cached is not None:
        return cached
    with tempfile.TemporaryDirectory() as tmp:
        return _build_registry(pathlib.Path(tmp), definitions, cache_folder=None)


def _build_registry(folder: pathlib.Path, definitions: dict[str, str], cache_folder) -> pint.UnitRegistry:
    for name, text in definitions.items():
        if not (folder / name).is_file():
            (folder / name).write_text(text, encoding="utf-8")
    return pint.UnitRegistry(filename=str(folder / "default_en.txt"), cache_folder=cache_folder,
                             autoconvert_offset_to_baseunit=True)


def _cached_registry(definitions: dict[str, str]) -> pint.UnitRegistry | None:
    """The registry built through pint's own cache, in a folder named by the definitions' digest
    (written by rename, so it is whole), or None when there is no usable cache."""
    from .compile.cache import cache_dir, write_atomically
    root = cache_dir()
    if root is None:
        return None
    digest = hashlib.sha256("\0".join(definitions.values()).encode("utf-8")).hexdigest()[:32]
    folder = root / "pint" / digest
    try:
        for name, text in definitions.items():
            if not (folder / name).is_file() and not write_atomically(folder / name, text):
                return None
        return _build_registry(folder, definitions, cache_folder=folder / "parsed")
    except Exception:   # a cache entry another process is still writing, or a damaged one
        return None


ureg = _registry()
ureg.formatter.default_format = "~P"

for _definition in (
    "FLOP = [flop] = _ = flop",
    "OPS = FLOP / second",
    "token = [] = tok",
    "request = [] = req",
    "sample = []",
    "param = []",
    "USD = [currency] = _ = dollar = usd",
    "gCO2e = [emissions] = gCO2",
    "kgCO2e = 1000 * gCO2e = kgCO2",
    "tCO2e = 1e6 * gCO2e = tCO2",
    "bps = bit / second",
    "kbps = 1e3 * bit / second", "Mbps = 1e6 * bit / second",
    "Gbps = 1e9 * bit / second", "Tbps = 1e12 * bit / second",  # no prefix guessing: G+bps vs G+b+pt
):
    ureg.define(_definition)

_UNIT_FORMAT_CODES = set("~PCDLH")
_pint_format = ureg.Quantity.__format__


def _format(self, spec: str) -> str:
    """A spec with only a number format (``f"{q:.1f}"``) uses the registry's default unit format
    (``~P``: "5.2 ms"), which is what pint announces as its future behaviour, without the warning."""
    if spec and not (_UNIT_FORMAT_CODES & set(spec)):
        spec = spec + ureg.formatter.default_format
    return _pint_format(self, spec)


ureg.Quantity.__format__ = _format  # this registry's own Quantity class only

Q_ = ureg.Quantity
Quantity = pint.Quantity

# Short names used by the tutorials ("1200 * TFLOPs / second").
FLOP = ureg.FLOP
KFLOPs, MFLOPs, GFLOPs, TFLOPs, PFLOPs, EFLOPs = (ureg.Unit(p + "FLOP") for p in "kMGTPE")
OPS, TOPS = ureg.OPS, ureg.Unit("TOPS")
byte, bit = ureg.byte, ureg.bit
KB, MB, GB, TB, PB = (ureg.Unit(p + "B") for p in "kMGTP")
KiB, MiB, GiB, TiB = (ureg.Unit(p + "B") for p in ("Ki", "Mi", "Gi", "Ti"))
second, ms, us, ns, minute, hour, day = (ureg.Unit(n) for n in ("s", "ms", "us", "ns", "minute", "hour", "day"))
watt, W, kW, MW, mW = (ureg.Unit(n) for n in ("W", "W", "kW", "MW", "mW"))
joule, J, kWh, MWh = (ureg.Unit(n) for n in ("J", "J", "kWh", "MWh"))
Gbps = ureg.Unit("Gbps")
USD = ureg.USD
token = ureg.token


def as_quantity(value, unit: str, field: str, *, example: str | None = None) -> pint.Quantity:
    """Return ``value`` as a quantity in ``unit``.

    Accepts a pint quantity of the same dimension, a string such as ``"3.35 TB/s"`` or a plain
    number, which is read in ``unit`` (the documented default unit of ``field``).
    """
    target = ureg.Unit(unit)
    if isinstance(value, pint.Quantity):
        q = value
    elif isinstance(value, str):
        if len(value) > 200 or _POWER.search(value):
            # pint evaluates powers in text ("10**10**10 B" never finishes): only unit powers 1-9
            raise InputError(field, value[:60], "is not a plain quantity (powers only as unit exponents 1-9)",
                             f"write a number and a unit, e.g. {example or _example(unit)!r}")
        try:
            q = ureg.Quantity(value)
        except Exception as exc:  # pint raises several types for unparsable text
            raise InputError(field, value, "is not a readable quantity",
                             f"write a number and a unit, e.g. {example or _example(unit)!r}") from exc
        if not isinstance(q, pint.Quantity):
            q = ureg.Quantity(q, target)
    elif isinstance(value, numbers.Real) and not isinstance(value, bool):
        return ureg.Quantity(float(value), target)
    else:
        raise InputError(field, value, f"must be a quantity in {unit} (or a number in {unit})",
                         f"pass e.g. {example or _example(unit)!r}")
    if q.dimensionality != target.dimensionality:
        raise UnitError(field, f"{q:~P}", f"{target:~P} ({_dim_name(target)})",
                        _unit_hint(q, target, example))
    return q.to(target)


_POWER = re.compile(r"(\*\*|\^)\s*(?![1-9](?![\d.eE]))")
"""A power whose exponent is anything but one digit 1-9 (unit exponents such as m**2 are fine)."""


def to_float(value, unit: str, field: str) -> float:
    """The magnitude of ``value`` in ``unit`` (the single place units are stripped)."""
    return float(as_quantity(value, unit, field).magnitude)


def _example(unit: str) -> str:
    return f"Q_('1 {unit}')"


def _dim_name(u) -> str:
    return str(ureg.Quantity(1, u).dimensionality)


def _unit_hint(q: pint.Quantity, target, example: str | None) -> str:
    got = q.dimensionality
    want = ureg.Quantity(1, target).dimensionality
    if got.get("[flop]") and want.get("[information]"):
        return "that is a compute rate or count (FLOP), not bytes; a bandwidth is e.g. Q_('3.35 TB/s')"
    if got.get("[information]") and want.get("[flop]"):
        return "that is bytes, not FLOP; a compute rate is e.g. Q_('989 TFLOP/s')"
    if want.get("[time]") == -1 and not got.get("[time]"):
        return f"a rate needs a per-time unit, e.g. {example or _example(str(target))!r}"
    return f"convert it, e.g. {example or _example(f'{target:~P}')!r}"


def quantity_factory(unit: str):
    """A fast constructor of quantities in one fixed unit, for results built in hot loops.

    It fills the two slots pint's constructor fills (magnitude and units container) without
    re-parsing the unit; an import-time check compares it with the normal constructor and falls
    back to it if a pint version ever differs.
    """
    units = ureg.Unit(unit)._units
    cls = ureg.Quantity

    def make(value: float) -> pint.Quantity:
        q = object.__new__(cls)
        q._magnitude = value
        q._units = units
        return q

    reference = ureg.Quantity(2.5, unit)
    probe = make(2.5)
    if not (probe == reference and f"{probe:~P}" == f"{reference:~P}" and (probe * 2).to(unit).m == 5.0):
        return lambda value: ureg.Quantity(value, units)
    return make


@functools.lru_cache(maxsize=None)
def unit_factor(source: str, target: str | None) -> float:
    """The number that turns a float in ``source`` units into one in ``target`` units (1 when
    ``target`` is None or the same): how compiled-sheet floats reach the units results report."""
    if target is None or target == source:
        return 1.0
    return float(ureg.Quantity(1.0, source).m_as(target))


@functools.lru_cache(maxsize=None)
def _maker(unit: str):
    return quantity_factory(unit)


def sheet_quantity(sheet, name: str, value, unit: str | None = None) -> pint.Quantity:
    """What a compiled sheet returned for definition ``name`` (a float in the unit the definition
    declares) as a quantity in ``unit`` (default: the declared unit). Results take their units from
    the sheet this way, never from a hand factor such as ``* 1e3``."""
    source = sheet.unit(name)
    target = unit or source
    factor = unit_factor(source, target)
    # To a larger unit, divide by the exact factor (1e9, not 1e-9, is exact in binary floating point).
    converted = float(value) * factor if factor >= 1 else float(value) / unit_factor(target, source)
    return _maker(target)(converted)
