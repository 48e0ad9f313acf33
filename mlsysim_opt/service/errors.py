"""One error format for every response that is not a success.

    {"error": "invalid_input", "message": "...",
     "problems": [{"field": "hardware.memory.bandwidth", "rule": "must have units of B/s ...",
                   "value": "3 TFLOP/s", "fix": "..."}],
     "suggestions": ["H100"], "limit": 100000}

``error`` is a stable machine-readable code, ``message`` a sentence for people, ``problems`` one
entry per broken rule (field path, rule, bad value, fix). Library errors map to HTTP statuses in
:func:`from_library_error` and nowhere else.
"""
from __future__ import annotations

import difflib
import math
from typing import Any, Iterable, Optional

from pydantic import BaseModel, Field

from ..errors import MISSING, InputError, InputErrors, MlsysimError, UnknownNameError


class Problem(BaseModel):
    """One broken rule."""

    field: str = Field(description="dotted path of the offending value in the request, e.g. 'hardware.memory.bandwidth'")
    rule: str = Field(description="what the value must be")
    value: Any = Field(None, description="the value received (absent when the field was missing)")
    fix: Optional[str] = Field(None, description="how to correct it")


class ErrorBody(BaseModel):
    """Body of every 4xx/5xx response."""

    error: str = Field(description="stable code: invalid_input, unknown_name, not_found, grid_too_large, "
                                   "payload_too_large, conflict, overloaded, unavailable, timeout, job_failed, "
                                   "internal_error, unauthorized, forbidden, host_not_allowed, record_limit")
    message: str
    problems: list[Problem] = Field(default_factory=list)
    suggestions: list[str] = Field(default_factory=list, description="close matches of an unknown name")
    limit: Optional[float] = Field(None, description="the limit that was exceeded, where one was")


class ApiError(Exception):
    """Raised anywhere in the service to end a request with ``status`` and an :class:`ErrorBody`."""

    def __init__(self, status: int, error: str, message: str, problems: Iterable[dict] = (),
                 suggestions: Iterable[str] = (), limit: float | None = None, headers: dict | None = None):
        super().__init__(message)
        self.status, self.error, self.message = status, error, message
        self.problems, self.suggestions, self.limit = list(problems), list(suggestions), limit
        self.headers = headers

    def body(self) -> dict:
        out: dict[str, Any] = {"error": self.error, "message": self.message, "problems": self.problems}
        if self.suggestions:
            out["suggestions"] = self.suggestions
        if self.limit is not None:
            out["limit"] = self.limit
        return out


class RequestProblems(InputErrors):
    """Broken rules already written as problems, each ``field`` a full path in the request; they are
    answered as given."""

    def __init__(self, problems: list[dict]):
        self.problems = problems
        super().__init__([InputError(p["field"], p.get("value", MISSING), p["rule"], p.get("fix")) for p in problems])


def jsonable(value: Any) -> Any:
    """A JSON-safe rendering of a bad value (numbers that JSON cannot carry become strings)."""
    if value is MISSING:
        return None
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value if not isinstance(value, str) or len(value) <= 500 else value[:500] + "..."
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in list(value)[:50]]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in list(value.items())[:50]}
    text = str(value)
    return text if len(text) <= 500 else text[:500] + "..."


def suggestions_for(exc: UnknownNameError) -> list[str]:
    """Close matches of an unknown name, by the same rule the library's message uses."""
    close = difflib.get_close_matches(exc.name, exc.known, n=3, cutoff=0.5)
    if not close:
        lowered = {k.lower(): k for k in exc.known}
        close = [lowered[m] for m in difflib.get_close_matches(exc.name.lower(), list(lowered), n=3, cutoff=0.4)]
    return close


_REGISTRY_KINDS = ("Hardware", "Models", "Systems", "Infra", "hardware", "models", "nodes", "fabrics", "clusters",
                   "grids", "datacenters", "registry")


def problem_from_input_error(exc: InputError, prefix: str = "") -> dict:
    field = exc.field if not prefix else (prefix if exc.field in ("", prefix) else f"{prefix}.{exc.field}")
    out = {"field": field, "rule": exc.rule, "value": jsonable(exc.value)}
    if exc.fix:
        out["fix"] = exc.fix
    return out


def from_library_error(exc: Exception, prefix: str = "") -> ApiError:
    """The HTTP form of a library error: unknown registry names 404, every other bad input 422."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, InputErrors):
        problems = exc.problems if isinstance(exc, RequestProblems) else \
            [problem_from_input_error(e, prefix) for e in exc.errors]
        return ApiError(422, "invalid_input", f"{len(problems)} problem(s) in the request: " +
                        "; ".join(f"{p['field']} {p['rule']}" for p in problems[:5]), problems)
    if isinstance(exc, UnknownNameError):
        registry = exc.kind.split(".")[0].split(" ")[0] in _REGISTRY_KINDS
        field = prefix or exc.kind
        return ApiError(404 if registry else 422, "unknown_name", str(exc),
                        [{"field": field, "rule": f"must be a known {exc.kind}", "value": exc.name}],
                        suggestions_for(exc))
    if isinstance(exc, InputError):
        return ApiError(422, "invalid_input", str(exc), [problem_from_input_error(exc, prefix)])
    if isinstance(exc, MlsysimError):
        return ApiError(422, "invalid_input", str(exc), [{"field": prefix or "request", "rule": str(exc)}])
    return ApiError(500, "internal_error", f"{type(exc).__name__}: the server could not answer this request")


def error_payload(exc: BaseException) -> dict:
    """A job's error as stored with the job (JSON), keeping what is needed to answer over HTTP later."""
    api = from_library_error(exc) if isinstance(exc, Exception) else None
    if api is not None and api.status != 500:
        return {"type": type(exc).__name__, "status": api.status, **api.body()}
    return {"type": type(exc).__name__, "status": 500, "error": "job_failed",
            "message": f"{type(exc).__name__}: {str(exc)[:2000]}", "problems": []}


def validation_problems(errors: list[dict], drop_first: tuple[str, ...] = ("body",)) -> list[dict]:
    """pydantic/FastAPI validation errors as problems: dotted field path, rule, bad value."""
    problems = []
    for err in errors:
        loc = list(err.get("loc", ()))
        if err.get("type") == "json_invalid":
            where = f" at character {loc[-1]}" if loc and isinstance(loc[-1], int) else ""
            problems.append({"field": "body", "rule": f"must be valid JSON ({(err.get('ctx') or {}).get('error', 'unreadable')}{where})",
                             "fix": "send a JSON object with Content-Type: application/json"})
            continue
        if loc and loc[0] in drop_first:
            loc = loc[1:]
        original = (err.get("ctx") or {}).get("error")
        if isinstance(original, RequestProblems):
            problems.extend(original.problems)
            continue
        path = _path(loc)
        if isinstance(original, InputError):
            problems.extend(problem_from_input_error(e, path) for e in original.errors)
            continue
        if isinstance(original, UnknownNameError):
            problems.append({"field": path or original.kind, "rule": f"must be a known {original.kind}",
                             "value": original.name, "fix": _suggest_fix(original)})
            continue
        entry = {"field": path or "body", "rule": err.get("msg", "is invalid")}
        if err.get("type") != "missing":
            entry["value"] = jsonable(err.get("input"))
        else:
            entry["fix"] = f"add {loc[-1]!r} to the request" if loc else "send a JSON body"
        problems.append(entry)
    return problems


def _suggest_fix(exc: UnknownNameError) -> str | None:
    close = suggestions_for(exc)
    return f"did you mean {', '.join(repr(c) for c in close)}?" if close else None


def _path(loc: list) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out
