"""Who may do what over HTTP.

* **API keys** are random tokens (``mso_`` + 43 URL-safe characters) of which the job store keeps
  only the SHA-256; each has scopes: ``read`` (registry, audit, forward answers, plots, reading its
  own jobs), ``submit`` (queueing and cancelling jobs, the endpoints that run as jobs), ``admin``
  (adding and deleting records). A request sends one as ``Authorization: Bearer <key>`` or
  ``X-API-Key: <key>``.
* **Owners.** Jobs and added records belong to the key that made them (its name; ``local`` without
  keys). A key sees only its own jobs: another key's job id answers 404, as an unknown id does.
* **Local use.** While the store holds no live key and the server listens on loopback (or was
  started with ``--allow-unauthenticated``), every request is the local owner with every scope.
  Once a key exists (or with ``--require-keys``), a request without a valid key gets 401.
* **Host allow-list.** Only requests whose ``Host`` is a loopback name, the bind host or an
  ``--allowed-host`` are answered (a web page on a rebinding DNS name cannot reach a local server).
* **CORS** is off unless ``--cors-origin`` names the origins allowed.
"""
from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import re
import secrets
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Optional

from fastapi import Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer, SecurityScopes
from fastapi.responses import JSONResponse

from ..errors import InputError
from .errors import ApiError, jsonable
from .store import LOCAL_OWNER, JobStore

SCOPES = ("read", "submit", "admin")
TOKEN_PREFIX = "mso_"
KEY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
WILDCARD_BINDS = ("0.0.0.0", "::", "")
KEY_CACHE_S = 5.0
"""How long a server trusts what it learnt about keys; a key created or revoked with
``mlsysim-opt keys`` while the server runs takes effect within this time."""


@dataclass(frozen=True)
class Caller:
    """The client of one request: the owner of what it creates, and what it may do."""

    owner: str
    scopes: frozenset[str]


LOCAL_CALLER = Caller(LOCAL_OWNER, frozenset(SCOPES))


# ------------------------------------------------------------------------------------------------
# Keys


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    # A plain SHA-256, no salt or stretching: a token is 256 random bits, so there is no dictionary
    # to try and no brute force that could finish. Slow password hashes exist for low-entropy
    # secrets chosen by people; a fast digest here also lets a request's key be found by one lookup.
    return hashlib.sha256(token.encode()).hexdigest()


def parse_scopes(text: str) -> frozenset[str]:
    scopes = frozenset(s.strip() for s in text.split(",") if s.strip())
    unknown = sorted(scopes - set(SCOPES))
    if unknown or not scopes:
        raise InputError("scopes", text, f"must be a comma-separated list of {', '.join(SCOPES)}",
                         "e.g. --scopes read,submit")
    return scopes


def create_key(store: JobStore, name: str, scopes: frozenset[str]) -> str:
    """Store a new key and return its token (the only time it exists outside the client)."""
    if not KEY_NAME.match(name) or name == LOCAL_OWNER:
        raise InputError("name", name, "must be 1 to 64 letters, digits, '_', '.' or '-' (and not 'local')")
    token = new_token()
    if not store.add_key(name, token_hash(token), ",".join(s for s in SCOPES if s in scopes)):
        raise InputError("name", name, "is already used by a key (names of revoked keys are not reused, so "
                         "that a new key never sees an old key's jobs)", "choose another --name")
    return token


# ------------------------------------------------------------------------------------------------
# Finding the caller of a request


class KeyGate:
    """Turns the key a request sent into its Caller, remembering answers for KEY_CACHE_S so that a
    request rarely waits for the database."""

    def __init__(self, store: Callable[[], Optional[JobStore]], open_allowed: bool):
        self._store = store
        self._open_allowed = open_allowed
        """Whether requests without a key may be the local owner while no key exists."""
        self._open: tuple[bool, float] = (False, 0.0)          # (no key exists, valid until)
        self._known: dict[str, tuple[Optional[Caller], float]] = {}

    def forget(self) -> None:
        """Ask the store again on the next request (keys created or revoked just now count at once)."""
        self._open = (False, 0.0)
        self._known.clear()

    def cached(self, token: Optional[str]) -> tuple[bool, Optional[Caller]]:
        """(True, caller or None) when the answer is known without the database, else (False, None)."""
        now = time.monotonic()
        if token is None:
            is_open, until = self._open
            return (now < until, LOCAL_CALLER if is_open else None)
        caller, until = self._known.get(token_hash(token), (None, 0.0))
        return (now < until, caller)

    def resolve(self, token: Optional[str]) -> Optional[Caller]:
        """Ask the store (blocking)."""
        store = self._store()
        until = time.monotonic() + KEY_CACHE_S
        if token is None:
            is_open = self._open_allowed and store is not None and store.live_keys() == 0
            self._open = (is_open, until)
            return LOCAL_CALLER if is_open else None
        digest = token_hash(token)
        found = store.key_by_hash(digest) if store is not None else None
        caller = Caller(found[0], frozenset(found[1].split(","))) if found else None
        if len(self._known) > 10_000:                           # many bad keys: start over, stay small
            self._known.clear()
        self._known[digest] = (caller, until)
        return caller


def _unauthorized(message: str, bad_token: bool) -> ApiError:
    challenge = 'Bearer error="invalid_token"' if bad_token else "Bearer"
    return ApiError(401, "unauthorized", message,
                    [{"field": "header.Authorization", "rule": "must be 'Bearer <API key>' of a live key "
                      "(or send X-API-Key)", "fix": "create a key with: mlsysim-opt keys create --scopes read"}],
                    headers={"WWW-Authenticate": challenge})


def demand(caller: Caller, scope: str) -> None:
    """403 unless ``caller`` has ``scope``."""
    if scope not in caller.scopes:
        held = ", ".join(s for s in SCOPES if s in caller.scopes) or "none"
        raise ApiError(403, "forbidden", f"this API key lacks the {scope!r} scope (it has: {held})",
                       [{"field": "header.Authorization", "rule": f"must be a key with the {scope!r} scope",
                         "fix": f"create one with: mlsysim-opt keys create --scopes {scope}"}])


_bearer = HTTPBearer(auto_error=False, description="an API key: `Authorization: Bearer <key>`")
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="an API key (instead of Authorization)")


async def caller(request: Request, security_scopes: SecurityScopes,
                 bearer: Optional[HTTPAuthorizationCredentials] = Security(_bearer),
                 api_key: Optional[str] = Security(_api_key)) -> Caller:
    """The request's Caller, with every scope the route asks for (401 or 403 otherwise)."""
    gate: KeyGate = request.app.state.keys
    token = bearer.credentials if bearer is not None else api_key
    known, who = gate.cached(token)
    if not known:
        who = await asyncio.to_thread(gate.resolve, token)
    if who is None:
        if token is None:
            raise _unauthorized("this server requires an API key: send 'Authorization: Bearer <key>' "
                                "or 'X-API-Key: <key>'", bad_token=False)
        raise _unauthorized("the API key is not valid (unknown or revoked)", bad_token=True)
    for scope in security_scopes.scopes:
        demand(who, scope)
    return who


READ = Security(caller, scopes=["read"])
SUBMIT = Security(caller, scopes=["submit"])
ADMIN = Security(caller, scopes=["admin"])


def owns(caller: Caller, submitter: Optional[str]) -> bool:
    """Whether a job or record with this ``submitter`` (NULL: from before owners) is the caller's."""
    return (submitter or LOCAL_OWNER) == caller.owner


# ------------------------------------------------------------------------------------------------
# Host allow-list, CORS, binding


def is_loopback(host: str) -> bool:
    host = host.strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def allowed_hosts(bind_host: str, extra: Iterable[str]) -> frozenset[str]:
    """Loopback names, the bind host (unless it is a wildcard such as 0.0.0.0) and ``extra``."""
    names = {*LOOPBACK_NAMES, *extra}
    if bind_host not in WILDCARD_BINDS:
        names.add(bind_host)
    return frozenset(_host_name(n) for n in names)


def _host_name(value: str) -> str:
    """``Host`` without its port, brackets, trailing dot or case: ``[::1]:8000`` -> ``::1``."""
    value = value.strip().lower()
    if value.startswith("["):
        value = value[1:].split("]", 1)[0]
    elif value.count(":") == 1:
        value = value.split(":", 1)[0]
    return value.rstrip(".")


class HostAllowList:
    """Answer 400 (an ErrorBody) to requests whose ``Host`` is not allowed, before anything else
    runs; ``*`` among the hosts allows any (for a proxy that checks them)."""

    def __init__(self, app, hosts: frozenset[str]):
        self.app, self.hosts, self.any = app, hosts, "*" in hosts

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket") or self.any:
            return await self.app(scope, receive, send)
        sent = dict(scope.get("headers") or []).get(b"host", b"").decode("latin-1")
        if _host_name(sent) in self.hosts:
            return await self.app(scope, receive, send)
        # the allowed names are not listed: a stranger guessing at the server learns nothing
        body = ApiError(400, "host_not_allowed", f"Host {jsonable(sent)!r} is not served here",
                        [{"field": "header.Host", "rule": "must be a host this server was told to answer",
                          "value": jsonable(sent), "fix": "start the server with --allowed-host NAME"}]).body()
        await JSONResponse(body, status_code=400)(scope, receive, send)


def install(app, config, store: Callable[[], Optional[JobStore]]) -> None:
    """Host allow-list (outermost), CORS if configured, and the key gate of ``app``."""
    from fastapi.middleware.cors import CORSMiddleware
    open_allowed = not config.require_keys and (is_loopback(config.host) or config.allow_unauthenticated)
    app.state.keys = KeyGate(store, open_allowed)
    if config.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=list(config.cors_origins), allow_credentials=False,
                           allow_methods=["GET", "POST", "DELETE"],
                           allow_headers=["Authorization", "X-API-Key", "Content-Type"],
                           expose_headers=["Location", "Retry-After", "X-Job-Id", "X-Cache"])
    app.add_middleware(HostAllowList, hosts=allowed_hosts(config.host, config.allowed_hosts))


def refuse_unprotected_bind(config) -> None:
    """Refuse to serve beyond loopback without keys (anyone reaching the port would be the local
    owner) unless told to; ``--require-keys`` is protection enough."""
    if is_loopback(config.host) or config.allow_unauthenticated or config.require_keys:
        return
    from .store import StoreUnavailable, open_store
    try:
        store = open_store(config.resolved().db)
        try:
            keys = store.live_keys()
        finally:
            store.close()
    except StoreUnavailable as exc:
        from ..databases import masked
        raise InputError("--db", masked(config.resolved().db), f"cannot be reached to look for API keys ({exc})") \
            from None
    if keys == 0:
        raise InputError("--host", config.host, "is beyond loopback and the job store has no API key, so anyone "
                         "reaching it could use it", "create one with 'mlsysim-opt keys create --scopes read,submit "
                         "--db ...', bind 127.0.0.1, or pass --allow-unauthenticated")
