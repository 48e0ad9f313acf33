"""``mlsysim-opt keys``: API keys of the HTTP service, kept (hashed) in its job store; and the
access options of ``mlsysim-opt serve``.

    mlsysim-opt keys create --scopes read,submit [--name NAME] [--db DB]   # prints the key once
    mlsysim-opt keys list [--db DB]
    mlsysim-opt keys revoke NAME [--db DB]
"""
from __future__ import annotations

import json
import secrets
import sys
import time

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


def add_serve_options(p) -> None:
    """Who may reach ``mlsysim-opt serve``, and from where."""
    p.add_argument("--allowed-host", action="append", metavar="NAME",
                   help="a Host header to answer besides localhost, 127.0.0.1, ::1 and --host; repeatable "
                        "('*' answers any, for a proxy that checks it)")
    p.add_argument("--cors-origin", action="append", metavar="ORIGIN",
                   help="a browser origin allowed to call the API (CORS), e.g. https://app.example.org; repeatable")
    p.add_argument("--allow-unauthenticated", action="store_true",
                   help="serve beyond loopback although the job store has no API key (anyone reaching it may do "
                        "anything)")
    p.add_argument("--require-keys", action="store_true",
                   help="refuse requests without a valid API key even while no key exists")


def access_options(args) -> dict:
    """The ServiceConfig fields of the options add_serve_options adds."""
    return {"allowed_hosts": tuple(args.allowed_host or ()), "cors_origins": tuple(args.cors_origin or ()),
            "allow_unauthenticated": args.allow_unauthenticated, "require_keys": args.require_keys}


def cmd_keys(args, console) -> int:
    from .service.config import default_db_path
    from .service.store import open_store
    store = open_store(args.db or str(default_db_path()))   # created if missing: keys may come before the server
    try:
        return ACTIONS[args.action](args, store, console)
    finally:
        store.close()


def _create(args, store, console) -> int:
    from .errors import InputError
    from .service.auth import create_key, parse_scopes
    if args.scopes is None:
        raise InputError("--scopes", None, "is required to create a key", "e.g. --scopes read,submit")
    scopes = parse_scopes(args.scopes)
    name = args.name or f"key-{secrets.token_hex(3)}"
    token = create_key(store, name, scopes)
    if args.json:
        print(json.dumps({"name": name, "scopes": sorted(scopes), "key": token}))
    else:
        print(token)
        print(f"API key {name!r} ({','.join(sorted(scopes))}) in {store.location}; it is shown only now, the store "
              "keeps its SHA-256. Send it as 'Authorization: Bearer <key>'.", file=sys.stderr)
    return EXIT_OK


def _list(args, store, console) -> int:
    keys = store.keys()
    if args.json:
        print(json.dumps(keys, indent=2))
        return EXIT_OK
    from rich.table import Table
    table = Table(title=f"API keys in {store.location}", title_justify="left")
    for column in ("name", "scopes", "created", "revoked"):
        table.add_column(column)
    for key in keys:
        table.add_row(key["name"], key["scopes"], _when(key["created_at"]), _when(key["revoked_at"]))
    console.print(table)
    return EXIT_OK


def _revoke(args, store, console) -> int:
    from .cli import report_error
    name = args.key_name or args.name
    if not name:
        report_error("name the key to revoke: mlsysim-opt keys revoke NAME")
        return EXIT_BAD_INPUT
    if not store.revoke_key(name):
        report_error(f"no live key {name!r} in {store.location}")
        return EXIT_FAILED
    print(f"revoked {name!r} (servers stop accepting it within a few seconds)", file=sys.stderr)
    return EXIT_OK


def _when(stamp) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp)) if stamp else ""


ACTIONS = {"create": _create, "list": _list, "revoke": _revoke}


def register(sub, add) -> None:
    p = add("keys", cmd_keys, "create, list and revoke API keys of the HTTP service (kept hashed in its job store)")
    p.add_argument("action", choices=list(ACTIONS))
    p.add_argument("key_name", nargs="?", metavar="NAME", help="the key to revoke")
    p.add_argument("--scopes", help="create: comma-separated read, submit, admin")
    p.add_argument("--name", help="create: the key's name (default: key-<random>); its jobs and records are owned "
                                  "by this name")
    p.add_argument("--db", default=None, help="the server's --db, a file or postgresql:// URL (default: the user "
                                              "data directory)")
