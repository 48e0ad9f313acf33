"""Exceptions. Every message states the rule, the bad value, where it was found and the fix."""
from __future__ import annotations

import difflib
from typing import Iterable


class MlsysimError(Exception):
    """Base class of every error raised by mlsysim_opt."""


MISSING = object()


class InputError(MlsysimError, ValueError):
    """A value given to the API breaks a rule (range, type, choice)."""

    def __init__(self, field: str, value, rule: str, fix: str | None = None):
        self.field, self.value, self.rule, self.fix = field, value, rule, fix
        msg = f"{field} {rule}" if value is MISSING else f"{field} {rule}, got {value!r}"
        if fix:
            msg += f": {fix}"
        super().__init__(msg)

    def __reduce__(self):  # picklable, so worker processes can return it
        return (_rebuild, (type(self), self.args, self.__dict__))

    @property
    def errors(self) -> list["InputError"]:
        """The broken rules this error stands for: itself (InputErrors: each one)."""
        return [self]


class InputErrors(InputError):
    """Several broken rules found at once (e.g. every bad field of a record). ``errors`` holds one
    error per rule; ``field``, ``value``, ``rule`` and ``fix`` are the first one's, so code that reads
    a single error's attributes keeps working."""

    def __init__(self, errors: list[InputError]):
        self._errors = list(errors)
        first = self._errors[0]
        self.field, self.value, self.rule, self.fix = first.field, first.value, first.rule, first.fix
        if len(self._errors) == 1:
            msg = str(first)
        else:
            msg = f"{len(self._errors)} problems:\n" + "\n".join(f"  - {e}" for e in self._errors)
        Exception.__init__(self, msg)

    @property
    def errors(self) -> list[InputError]:
        return self._errors


def _rebuild(cls, args, state):
    err = cls.__new__(cls)
    Exception.__init__(err, *args)
    err.__dict__.update(state)
    return err


class UnitError(InputError):
    """A quantity has the wrong physical dimension."""

    def __init__(self, field: str, value, expected: str, fix: str | None = None):
        super().__init__(field, value, f"must have units of {expected}", fix)
        self.expected = expected


class UnknownNameError(MlsysimError, KeyError, AttributeError):
    """A registry (or choice) name that does not exist; suggests close matches."""

    def __init__(self, kind: str, name: str, known: Iterable[str]):
        known = sorted(set(known))
        self.kind, self.name, self.known = kind, name, known
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        if not close:
            lowered = {k.lower(): k for k in known}
            close = [lowered[m] for m in difflib.get_close_matches(name.lower(), list(lowered), n=3, cutoff=0.4)]
        msg = f"unknown {kind} {name!r}"
        if close:
            msg += f"; did you mean {', '.join(repr(c) for c in close)}?"
        else:
            shown = ", ".join(known[:12]) + (", ..." if len(known) > 12 else "")
            msg += f"; known: {shown}"
        self.message = msg
        Exception.__init__(self, msg)

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return self.message

    def __reduce__(self):
        return (_rebuild, (type(self), self.args, self.__dict__))


class ModelDefinitionError(MlsysimError):
    """An equation sheet is inconsistent (dimension mismatch, unknown symbol, ...)."""


class UnsupportedExpressionError(MlsysimError):
    """A backend has no valid rule for a sub-expression."""


class SolverError(MlsysimError):
    """The optimization backend failed in a way that is not infeasibility."""


def renamed_owner(exc: InputError, old: str, new: str) -> InputError:
    """``exc`` with every field path that starts with ``old.`` moved under ``new.`` (a record's
    type name replaced by where it came from: a request field, a file)."""
    for err in exc.errors:
        if err.field.startswith(f"{old}."):
            err.field = f"{new}.{err.field[len(old) + 1:]}"
            err.args = tuple(str(a).replace(f"{old}.", f"{new}.") for a in err.args)
    if isinstance(exc, InputErrors):
        first = exc.errors[0]
        exc.field = first.field
        exc.args = (f"{len(exc.errors)} problems:\n" + "\n".join(f"  - {e}" for e in exc.errors),) \
            if len(exc.errors) > 1 else (str(first),)
    return exc
