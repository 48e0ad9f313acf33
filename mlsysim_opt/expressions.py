"""Objective and constraint strings for design-space exploration.

The strings are read by a small tokenizer and a recursive-descent parser; nothing is ever passed to
``eval`` or ``exec``. Grammar::

    objective  := DIRECTION ":" path  |  DIRECTION "(" path ")"
    DIRECTION  := "maximize" | "minimize"                      (case-insensitive)
    constraint := operand OP operand
    OP         := "<" | "<=" | ">" | ">=" | "==" | "!="
    operand    := path | NUMBER [unit] | "True" | "False" | "None" | STRING
    path       := NAME ("." NAME | "[" (INTEGER | STRING) "]")*

A path walks dict keys and attributes (``DistributedModel.effective_throughput`` reads the
``"DistributedModel"`` entry of a dict, then its ``effective_throughput`` attribute). A unit after a
number is any pint unit expression (``100 ms``, ``3.35 TB/s``, ``1e6 USD``).

Comparison rules:

* a quantity against a threshold with units: the threshold is converted to the quantity's unit
  (``latency < 100 ms`` works whatever unit ``latency`` is reported in); a dimension mismatch is an
  error;
* a quantity against a plain number: the number is read in the quantity's own unit
  (``latency < 100`` means 100 ms when ``latency`` is reported in ms);
* booleans, strings and ``None`` compare with ``==`` and ``!=``.
"""
from __future__ import annotations

import numbers
import operator
import re
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import pint

from .errors import InputError
from .units import ureg

OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
    "==": operator.eq, "!=": operator.ne,
}
DIRECTIONS = {"maximize": "maximize", "max": "maximize", "minimize": "minimize", "min": "minimize"}
_LITERAL_NAMES = {"true": True, "false": False, "none": None}

_NUMBER = re.compile(r"[+-]?(?:\d[\d_]*(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OPERATOR_CHARS = "<>=!"


class ExpressionError(InputError):
    """An objective or constraint string that does not parse; ``position`` is the 0-based column of
    the offending token and the message draws a caret under it."""

    def __init__(self, field: str, text: str, position: int, problem: str, fix: str | None = None):
        super().__init__(field, text, f"does not parse: {problem}", fix)
        self.position = position
        pointer = " " * position + "^"
        msg = f"{field} does not parse at column {position + 1}: {problem}\n    {text}\n    {pointer}"
        if fix:
            msg += f"\n{fix}"
        self.args = (msg,)

    def __str__(self) -> str:
        return self.args[0]


# ------------------------------------------------------------------------------------------------
# Tokens


@dataclass(frozen=True)
class Token:
    kind: str      # NUMBER, UNIT, NAME, STRING, OP, PUNCT, END
    text: str
    position: int
    value: Any = None


def tokenize(text: str, field: str) -> list[Token]:
    """Split ``text`` into tokens; an unknown character raises :class:`ExpressionError` at it."""
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        m = _NUMBER.match(text, i)
        if m and (ch.isdigit() or ch == "." or (ch in "+-" and not _follows_operand(tokens))):
            raw = m.group(0)
            tokens.append(Token("NUMBER", raw, i, float(raw.replace("_", ""))))
            i = m.end()
            unit_start = i
            while unit_start < n and text[unit_start] == " ":
                unit_start += 1
            if unit_start < n and (text[unit_start].isalpha() or text[unit_start] in "%/("):
                end = unit_start
                while end < n and text[end] not in _OPERATOR_CHARS and text[end] not in ")]":
                    end += 1
                unit_text = text[unit_start:end].rstrip()
                tokens.append(Token("UNIT", unit_text, unit_start, _unit(unit_text, text, unit_start, field)))
                i = unit_start + len(unit_text)
            continue
        m = _NAME.match(text, i)
        if m:
            tokens.append(Token("NAME", m.group(0), i))
            i = m.end()
            continue
        if ch in "'\"":
            end = text.find(ch, i + 1)
            if end < 0:
                raise ExpressionError(field, text, i, "a quoted string is not closed",
                                      f"close it with {ch}")
            tokens.append(Token("STRING", text[i:end + 1], i, text[i + 1:end]))
            i = end + 1
            continue
        two = text[i:i + 2]
        if two in ("<=", ">=", "==", "!="):
            tokens.append(Token("OP", two, i))
            i += 2
            continue
        if ch in "<>":
            tokens.append(Token("OP", ch, i))
            i += 1
            continue
        if ch == "=":
            raise ExpressionError(field, text, i, "'=' is not a comparison", "write '==' to test equality")
        if ch in ".[]():":
            tokens.append(Token("PUNCT", ch, i))
            i += 1
            continue
        raise ExpressionError(field, text, i, f"unexpected character {ch!r}",
                              "use a field path, a comparison (< <= > >= == !=) and a number with an optional unit")
    tokens.append(Token("END", "", n))
    return tokens


def _follows_operand(tokens: list[Token]) -> bool:
    """A sign right after an operand would be arithmetic, which the grammar does not have."""
    if not tokens:
        return False
    return tokens[-1].kind in ("NUMBER", "UNIT", "NAME", "STRING") or tokens[-1].text in ")]"


def _unit(unit_text: str, text: str, position: int, field: str):
    first = unit_text.split()[0].lower() if unit_text.split() else ""
    if first in ("and", "or", "not"):
        raise ExpressionError(field, text, position, f"{first!r}: a constraint is one comparison",
                              "pass several constraints as a list; all of them must hold")
    try:
        return ureg.Unit(unit_text)
    except Exception:
        raise ExpressionError(field, text, position, f"{unit_text!r} is not a known unit",
                              "write a pint unit such as ms, s, GB, TB/s, TFLOP/s, USD") from None


# ------------------------------------------------------------------------------------------------
# Parsed forms


@dataclass(frozen=True)
class Path:
    """A field path: keys (str) and list indices (int)."""

    parts: tuple
    text: str

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class Literal:
    value: Any          # float, bool, None, str or a pint Quantity
    text: str

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class Objective:
    direction: str      # "maximize" or "minimize"
    path: Path
    text: str

    @property
    def maximize(self) -> bool:
        return self.direction == "maximize"


@dataclass(frozen=True)
class Constraint:
    left: Path | Literal
    op: str
    right: Path | Literal
    text: str

    def paths(self) -> list[Path]:
        return [x for x in (self.left, self.right) if isinstance(x, Path)]


class _Parser:
    def __init__(self, text: str, field: str):
        if not isinstance(text, str):
            raise InputError(field, text, "must be a string", "e.g. 'maximize: throughput' or 'latency < 100 ms'")
        self.text, self.field = text, field
        self.tokens = tokenize(text, field)
        self.i = 0

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def fail(self, problem: str, fix: str | None = None, token: Token | None = None):
        token = token or self.tok
        raise ExpressionError(self.field, self.text, token.position, problem, fix)

    def take(self) -> Token:
        t = self.tok
        self.i += 1
        return t

    def expect_punct(self, ch: str, fix: str | None = None) -> Token:
        if self.tok.kind == "PUNCT" and self.tok.text == ch:
            return self.take()
        self.fail(f"expected {ch!r}, found {self._show(self.tok)}", fix)

    @staticmethod
    def _show(t: Token) -> str:
        return "the end of the text" if t.kind == "END" else repr(t.text)

    def path(self) -> Path:
        start = self.tok
        if start.kind != "NAME":
            self.fail(f"expected a field name, found {self._show(start)}")
        parts: list = [self.take().text]
        while self.tok.kind == "PUNCT" and self.tok.text in ".[":
            if self.take().text == ".":
                if self.tok.kind != "NAME":
                    self.fail(f"expected a field name after '.', found {self._show(self.tok)}")
                parts.append(self.take().text)
            else:
                key = self.take()
                if key.kind == "NUMBER" and float(key.value).is_integer():
                    parts.append(int(key.value))
                elif key.kind == "STRING":
                    parts.append(key.value)
                else:
                    self.fail("expected an integer index or a quoted key inside [ ]", token=key)
                self.expect_punct("]")
        end = self.tokens[self.i - 1]
        return Path(tuple(parts), self.text[start.position:end.position + len(end.text)])

    def operand(self) -> Path | Literal:
        t = self.tok
        if t.kind == "NUMBER":
            self.take()
            if self.tok.kind == "UNIT":
                unit = self.take()
                return Literal(ureg.Quantity(t.value, unit.value), f"{t.text} {unit.text}")
            return Literal(t.value, t.text)
        if t.kind == "STRING":
            self.take()
            return Literal(t.value, t.text)
        if t.kind == "NAME" and t.text.lower() in _LITERAL_NAMES and not (
                self.tokens[self.i + 1].kind == "PUNCT" and self.tokens[self.i + 1].text in ".["):
            self.take()
            return Literal(_LITERAL_NAMES[t.text.lower()], t.text)
        if t.kind == "NAME":
            return self.path()
        self.fail(f"expected a field path, a number, True/False or a quoted string, found {self._show(t)}")

    def end(self, what: str) -> None:
        if self.tok.kind != "END":
            self.fail(f"unexpected {self._show(self.tok)} after the {what}",
                      "write one comparison per constraint; pass several constraints as a list")


def parse_objective(text: str, field: str = "objective") -> Objective:
    """``"maximize: throughput"``, ``"minimize: EconomicsModel.tco_usd"`` or ``"maximize(path)"``."""
    p = _Parser(text, field)
    head = p.tok
    if head.kind != "NAME" or head.text.lower() not in DIRECTIONS:
        p.fail("an objective starts with 'maximize' or 'minimize'",
               "e.g. 'maximize: throughput' or 'minimize(EconomicsModel.tco_usd)'")
    p.take()
    direction = DIRECTIONS[head.text.lower()]
    if p.tok.kind == "PUNCT" and p.tok.text == "(":
        p.take()
        path = p.path()
        p.expect_punct(")", "close the parenthesis: 'maximize(throughput)'")
    else:
        p.expect_punct(":", "separate the direction from the field with ':' as in 'maximize: throughput'")
        path = p.path()
    p.end("objective")
    return Objective(direction, path, text)


def parse_constraint(text: str, field: str = "constraint") -> Constraint:
    """``"latency < 100 ms"``, ``"feasible == True"``, ``"EconomicsModel.tco_usd <= 1e6"``."""
    p = _Parser(text, field)
    left = p.operand()
    if p.tok.kind != "OP":
        p.fail(f"expected a comparison (< <= > >= == !=) after {left.text!r}, found {p._show(p.tok)}")
    op = p.take().text
    right = p.operand()
    p.end("comparison")
    if not isinstance(left, Path) and not isinstance(right, Path):
        raise ExpressionError(field, text, 0, "compares two constants; one side must be a field path")
    return Constraint(left, op, right, text)


def parse_constraints(constraints: Iterable[str] | str | None, field: str = "constraints") -> list[Constraint]:
    if constraints is None:
        return []
    if isinstance(constraints, str):
        constraints = [constraints]
    try:
        items = list(constraints)
    except TypeError:
        raise InputError(field, constraints, "must be a list of strings", "e.g. ['latency < 100 ms']") from None
    return [parse_constraint(c, f"{field}[{i}]") for i, c in enumerate(items)]


# ------------------------------------------------------------------------------------------------
# Walking results


class PathError(InputError, KeyError):
    """A path names a field that the result does not have."""

    def __str__(self) -> str:
        return self.args[0]


def available_fields(obj: Any) -> list[str]:
    """Names a path may take next at ``obj`` (dict keys, result fields, public properties)."""
    if isinstance(obj, dict):
        return [str(k) for k in obj]
    fields = getattr(type(obj), "model_fields", None)
    if fields is not None:
        props = [n for n, v in vars(type(obj)).items() if isinstance(v, property) and not n.startswith("_")]
        return list(fields) + props
    if isinstance(obj, (list, tuple)):
        return [f"[{i}]" for i in range(len(obj))]
    if isinstance(obj, (str, bytes, numbers.Number, pint.Quantity)) or obj is None:
        return []
    return [n for n in dir(obj) if not n.startswith("_") and not callable(getattr(obj, n, None))]


def resolve(obj: Any, path: Path, field: str = "path") -> Any:
    """The value ``path`` names inside ``obj``; :class:`PathError` lists what exists where it fails."""
    current = obj
    for depth, key in enumerate(path.parts):
        found, value = _step(current, key)
        if not found:
            where = ".".join(str(k) for k in path.parts[:depth]) or "the result"
            known = available_fields(current)
            shown = ", ".join(known[:40]) + (", ..." if len(known) > 40 else "")
            err = PathError(field, path.text, f"names {key!r}, which {where} does not have",
                            f"available fields of {where}: {shown or '(none)'}")
            err.args = (f"{field}: {path.text!r} names {key!r}, which {where} "
                        f"({type(current).__name__}) does not have; available: {shown or '(none)'}",)
            raise err
        current = value
    return current


def _step(obj: Any, key) -> tuple[bool, Any]:
    if isinstance(key, int):
        try:
            return True, obj[key]
        except (IndexError, KeyError, TypeError):
            return False, None
    if isinstance(obj, dict):
        if key in obj:
            return True, obj[key]
        return False, None
    if isinstance(obj, (str, bytes, numbers.Number, pint.Quantity)) or obj is None:
        return False, None
    try:
        return True, getattr(obj, key)
    except AttributeError:
        pass
    try:
        return True, obj[key]
    except (KeyError, TypeError, IndexError, AttributeError):
        return False, None


# ------------------------------------------------------------------------------------------------
# Values


def operand_value(operand: Path | Literal, obj: Any, field: str) -> Any:
    return resolve(obj, operand, field) if isinstance(operand, Path) else operand.value


def _is_number(x) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


def comparable(left: Any, right: Any, constraint: Constraint, field: str) -> tuple[Any, Any]:
    """Bring two operands to one footing (see the module docstring for the rules)."""
    lq, rq = isinstance(left, pint.Quantity), isinstance(right, pint.Quantity)
    if not (lq or rq) or left is None or right is None:
        return left, right
    try:
        if lq and rq:
            return left.magnitude, right.to(left.units).magnitude
        if lq and _is_number(right):       # a plain number is read in the field's own unit
            return left.magnitude, float(right)
        if rq and _is_number(left):
            return float(left), right.m_as("dimensionless")
    except pint.DimensionalityError:
        pass
    raise InputError(field, constraint.text,
                     f"compares {_describe(left)} with {_describe(right)}, which are not of the same kind",
                     "give the threshold in a unit of the same dimension as the field")


def _describe(x: Any) -> str:
    if isinstance(x, pint.Quantity):
        return f"{x:~P} [{x.dimensionality}]"
    return f"{type(x).__name__} {x!r}"


def check(constraint: Constraint, obj: Any, field: str = "constraint") -> bool:
    """Whether ``obj`` satisfies ``constraint``. A missing value (None) never satisfies an ordering."""
    left = operand_value(constraint.left, obj, field)
    right = operand_value(constraint.right, obj, field)
    left, right = comparable(left, right, constraint, field)
    if constraint.op in ("==", "!="):
        return bool(OPERATORS[constraint.op](left, right))
    if left is None or right is None:
        return False
    if isinstance(left, (str, bool)) != isinstance(right, (str, bool)) and not (
            _is_number(left) and _is_number(right)):
        raise InputError(field, constraint.text, f"orders {_describe(left)} against {_describe(right)}",
                         "use == or != for text and booleans")
    try:
        return bool(OPERATORS[constraint.op](left, right))
    except TypeError:
        raise InputError(field, constraint.text, f"cannot order {_describe(left)} against {_describe(right)}") from None


def objective_number(value: Any, unit=None, field: str = "objective") -> tuple[float, Any]:
    """``(float, unit)``: the magnitude of a quantity (in ``unit`` when given, else its own unit) or
    the number itself. Booleans, text and None are not objectives."""
    if isinstance(value, pint.Quantity):
        if unit is not None:
            try:
                value = value.to(unit)
            except pint.DimensionalityError:
                raise InputError(field, f"{value:~P}", f"has a different dimension from earlier points ({unit})") from None
        return float(value.magnitude), value.units
    if _is_number(value):
        return float(value), None
    raise InputError(field, value, "must be a number or a quantity",
                     "point the objective at a numeric field")
