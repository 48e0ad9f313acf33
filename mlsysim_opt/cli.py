"""``mlsysim-opt``: the command line.

Exit codes: 0 success; 1 a check failed (audit found problems, a query is infeasible);
2 bad input (unknown name, bad value, wrong unit, a missing, empty or unreadable file);
141 the reader of the output went away (``| head``).

Answers go to stdout; errors and warnings go to stderr, one line each, never a traceback.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import json
import math
import os
import sys
from typing import Callable

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
EXIT_BROKEN_PIPE = 141
"""128 + SIGPIPE: what a shell reports for a writer whose reader left early."""


def _console():
    return _console_class()(soft_wrap=True)


def _err_console():
    return _console_class()(stderr=True, soft_wrap=True, highlight=False)


def _console_class():
    """rich's Console, except that a closed pipe raises BrokenPipeError for ``main`` to handle like
    every other write (rich would exit with status 1 on its own)."""
    from rich.console import Console

    class PipeAwareConsole(Console):
        def on_broken_pipe(self) -> None:
            raise BrokenPipeError(32, "Broken pipe")
    return PipeAwareConsole


class Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line on stderr (the full usage is --help's)."""

    def error(self, message: str):
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class HelpFormatter(argparse.HelpFormatter):
    """Shows each option's default after its help text, unless the text already names it or the
    option has no default (None, off)."""

    def _format_action(self, action):
        if not action.help and self._default_text(action):   # argparse prints no help line without text
            action = copy.copy(action)
            action.help = self._default_text(action)
        return super()._format_action(action)

    def _get_help_string(self, action):
        text = action.help or ""
        shown = self._default_text(action)
        if not shown or "default" in text.lower():
            return text
        return f"{text} {shown}"

    @staticmethod
    def _default_text(action) -> str:
        default = action.default
        unset = default is None or default is False or default == argparse.SUPPRESS   # 0 is a real default
        if unset or (not action.option_strings and action.nargs not in ("?", "*")):
            return ""
        shown = " ".join(map(str, default)) if isinstance(default, (list, tuple)) else str(default)
        return f"(default: {shown.replace('%', '%%')})"


def non_negative_money(text: str) -> float:
    """argparse type of budgets and prices: a finite amount of USD >= 0."""
    return _bounded_float(text, minimum=0.0, strict=False, what="an amount in USD >= 0, e.g. 2000000")


def positive_number(text: str) -> float:
    """argparse type of rates and caps: a finite number > 0."""
    return _bounded_float(text, minimum=0.0, strict=True, what="a number > 0")


def _bounded_float(text: str, *, minimum: float, strict: bool, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number; give {what}") from None
    if not math.isfinite(value) or value < minimum or (strict and value == minimum):
        raise argparse.ArgumentTypeError(f"{text!r} is out of range; give {what}")
    return value


def _table(title: str, columns: list[str], rows: list[list], console) -> None:
    from rich.table import Table
    table = Table(title=title, title_justify="left")
    for i, c in enumerate(columns):
        table.add_column(c, justify="left" if i == 0 else "right")
    for r in rows:
        table.add_row(*[str(x) for x in r])
    console.print(table)


def _fmt(q, unit: str, digits: int = 3) -> str:
    return f"{q.to(unit).magnitude:.{digits}g} {unit}"


def cmd_solve(args, console) -> int:
    import warnings

    from .engine import Engine
    from .precision import PrecisionFallbackWarning
    with warnings.catch_warnings():    # the answer carries the fallback (table row, JSON field): say it once
        warnings.simplefilter("ignore", PrecisionFallbackWarning)
        p = Engine.solve(args.model, args.hardware, batch_size=args.batch_size, precision=args.precision,
                         efficiency=args.efficiency, seq_len=args.seq_len, is_training=args.training)
    if args.json:
        print(json.dumps(p.to_dict(), indent=2))
        return EXIT_OK if p.feasible else EXIT_FAILED
    rows = [
        ["latency", _fmt(p.latency, "ms", 4)],
        ["  compute", _fmt(p.latency_compute, "ms", 4)],
        ["  memory", _fmt(p.latency_memory, "ms", 4)],
        ["  overhead", _fmt(p.latency_overhead, "ms", 4)],
        ["bottleneck", p.bottleneck],
        ["throughput", f"{p.throughput.m_as('1/s'):,.1f} /s"],
        ["arithmetic intensity", f"{p.arithmetic_intensity.magnitude:.1f} FLOP/B (ridge {p.ridge_point.magnitude:.1f})"],
        ["MFU", f"{p.mfu:.3f}"],
        ["energy per pass", _fmt(p.energy, "J", 4)],
        ["memory", f"{p.memory_footprint.m_as('GB'):.2f} of {p.memory_capacity.m_as('GB'):.2f} GB ({p.memory_tier})"],
        ["feasible", "yes" if p.feasible else f"NO: {p.infeasibility_reason}"],
        ["assumed efficiency", f"{args.efficiency:g} of peak compute"],
    ]
    if p.precision_fallback:
        rows.append(["precision", p.precision_fallback])
    _table(f"{p.model} on {p.hardware}, batch {p.batch_size}, {p.precision}", ["quantity", "value"], rows, console)
    return EXIT_OK if p.feasible else EXIT_FAILED


def cmd_sweep(args, console) -> int:
    from .engine import Engine
    frame = Engine.sweep_table(args.model, args.hardware, batch_sizes=args.batch_sizes,
                               precisions=args.precisions, efficiencies=[args.efficiency],
                               seq_lens=[args.seq_len] if args.seq_len else (2048,))
    if args.json:
        print(frame.to_json(orient="records"))
        return EXIT_OK
    rows = [[r.hardware, r.precision, r.batch_size, f"{r.latency_s * 1e3:.3f}", f"{r.throughput_per_s:,.0f}",
             r.bottleneck, f"{r.mfu:.3f}", "yes" if r.feasible else "no"] for r in frame.itertuples()]
    seq_len = args.seq_len or 2048
    _table(f"sweep of {args.model} (efficiency {args.efficiency:g}, sequence length {seq_len} tokens)", ["hardware", "precision", "batch", "latency ms", "throughput /s",
                                      "bottleneck", "MFU", "fits"], rows, console)
    return EXIT_OK


def cmd_audit(args, console) -> int:
    from .catalog import audit_provenance
    report = audit_provenance()
    if args.json:
        print(json.dumps({"ok": report.ok, "records": report.records_checked, "values": report.values_checked,
                          "sources": report.sources_used, "problems": report.problems}, indent=2))
    else:
        console.print(str(report))
    return EXIT_OK if report.ok else EXIT_FAILED


LIST_KINDS = ("Hardware", "Models", "Nodes", "Fabrics", "Clusters", "Grids", "Datacenters")


def _list_kind(text: str) -> str:
    """argparse type of ``list``'s kind: any capitalization of a registry namespace (``hardware``)."""
    found = {k.lower(): k for k in LIST_KINDS}.get(text.lower())
    if found is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a registry; choose from {', '.join(LIST_KINDS)}")
    return found


def cmd_list(args, console) -> int:
    from .catalog import all_namespaces
    ns = all_namespaces()[args.kind]
    rows = [[key, record.name, getattr(record, "category", "")] for key, record in sorted(ns.items(), key=lambda kv: kv[0])]
    if args.json:
        print(json.dumps([{"key": k, "name": n, "category": c} for k, n, c in rows], indent=2))
    else:
        _table(args.kind, ["key", "name", "category"], rows, console)
    return EXIT_OK


def cmd_serve(args, console) -> int:
    from .service.config import ServiceConfig
    from .service.server import serve
    from .cli_keys import access_options
    from .service.auth import refuse_unprotected_bind
    config = ServiceConfig(host=args.host, port=args.port, db=args.db, workers=args.workers,
                           job_timeout=args.job_timeout, max_grid=args.max_grid, max_queue=args.max_queue,
                           enable_test_jobs=args.enable_test_jobs, http=args.http, loop=args.loop, dask=args.dask,
                           worker_memory=args.worker_memory, **access_options(args))
    refuse_unprotected_bind(config)
    serve(config)
    return EXIT_OK


def cmd_jobs(args, console) -> int:
    from .service.config import default_db_path
    from .service.store import read_only
    store = read_only(args.db or str(default_db_path()))
    try:
        if args.action == "list":
            found = store.list(args.status, args.limit)
            if args.json:
                print(json.dumps([j.info() for j in found], indent=2))
            else:
                _table(f"jobs in {store.location}", ["id", "kind", "status", "progress", "attempts", "note"],
                       [[j.id, j.kind, j.status, f"{j.progress:.0%}", j.attempts, j.note or ""] for j in found], console)
            return EXIT_OK
        job = store.get(args.id or "")
        if job is None:
            report_error(f"no job {args.id!r} in {store.location}")
            return EXIT_BAD_INPUT
        if args.action == "result":
            text = store.result(job.id)
            if text is None:
                report_error(f"job {job.id} is {job.status}")
                return EXIT_FAILED
            print(text)
            return EXIT_OK
        print(json.dumps(job.info(), indent=2))
        return EXIT_OK
    finally:
        store.close()


PLOT_FORMATS = ("png", "svg")


def output_file(path: str, option: str, suffixes: tuple[str, ...] | None = None) -> str:
    """Checks an output file before any work: its folder exists and, for ``suffixes`` (formats),
    its suffix names one of them. Returns ``path``."""
    from pathlib import Path

    from .errors import InputError
    target = Path(path)
    if suffixes is not None and target.suffix.lower().lstrip(".") not in suffixes:
        raise InputError(option, path, f"must end in {' or '.join('.' + s for s in suffixes)} (the suffix sets "
                         "the file's format)", f"e.g. {target.with_suffix('.' + suffixes[0]).name}")
    folder = target.expanduser().resolve().parent
    if not folder.is_dir():
        raise InputError(option, path, f"is in a folder that does not exist ({folder})",
                         "create the folder first, or write somewhere else")
    return path


def input_file(path: str, option: str, *, empty_fix: str = "write the fields into it") -> str:
    """Checks an input file before any work: it exists, is a file and is not empty (an empty
    problem file must not silently become the default problem). Returns ``path``."""
    from pathlib import Path

    from .errors import InputError
    target = Path(path).expanduser()
    if not target.exists():
        raise InputError(option, path, "does not exist", "check the path")
    if target.is_dir():
        raise InputError(option, path, "is a folder, not a file", "give the file's path")
    if not target.read_text(encoding="utf-8").strip():
        raise InputError(option, path, "is empty", empty_fix)
    return path


def output_folder(path: str, option: str) -> str:
    """Checks an output folder before any work: it is a folder, or can be made in one that exists."""
    from pathlib import Path

    from .errors import InputError
    target = Path(path).expanduser().resolve()
    if target.exists() and not target.is_dir():
        raise InputError(option, path, "is a file, not a folder", "give a folder name")
    if not target.exists() and not target.parent.is_dir():
        raise InputError(option, path, f"is in a folder that does not exist ({target.parent})",
                         "create the parent folder first")
    return path


def cmd_plot(args, console) -> int:
    from .service import plots
    output_file(args.out, "--out", PLOT_FORMATS)
    if args.what == "roofline":
        plots.roofline_plot(args.model, args.hardware, batch_sizes=args.batch_sizes, precision=args.precision,
                            efficiency=args.efficiency, seq_len=args.seq_len, is_training=args.training,
                            out=args.out)
    else:
        from .engine import Engine
        frame = Engine.sweep_table(args.model[0], args.hardware, batch_sizes=args.batch_sizes,
                                   precisions=[args.precision], efficiencies=[args.efficiency],
                                   seq_lens=[args.seq_len] if args.seq_len else (2048,), is_training=args.training)
        plots.sweep_heatmap(frame, value=args.value, out=args.out, title=_sweep_title(args))
    console.print(f"wrote {args.out}")
    return EXIT_OK


SWEEP_VALUES = {"throughput_per_s": "throughput (samples/s)", "latency_s": "latency (s)", "mfu": "MFU",
                "energy_J": "energy per pass (J)", "memory_footprint_B": "memory (bytes)",
                "arithmetic_intensity": "arithmetic intensity (FLOP/byte)"}
"""Readable names of the sweep columns a heat map usually shows (others are shown as named)."""


def _sweep_title(args) -> str:
    value = SWEEP_VALUES.get(args.value, args.value.replace("_", " "))
    return f"{args.model[0]}: {value} by hardware and batch size ({args.precision})"


COMMANDS: dict[str, Callable] = {}


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="mlsysim-opt", description=__doc__.splitlines()[0],
                                     formatter_class=HelpFormatter)
    parser.add_argument("--registry", action="append", metavar="FILE.yaml",
                        help="load records from a registry YAML file first (e.g. one written by "
                             "import-model --write); repeatable")
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, fn: Callable, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help, formatter_class=HelpFormatter)
        p.add_argument("--json", action="store_true", help="machine-readable output")
        p.set_defaults(fn=fn)
        return p

    p = add("solve", cmd_solve, "roofline of one workload on one accelerator (Engine.solve)")
    p.add_argument("model", help="workload registry name, e.g. Llama3_8B")
    p.add_argument("hardware", help="hardware registry name, e.g. H100")
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--precision", default="fp16")
    p.add_argument("--efficiency", type=float, default=0.5)
    p.add_argument("--seq-len", type=int, default=None)
    p.add_argument("--training", action="store_true")

    p = add("sweep", cmd_sweep, "vectorized roofline over hardware x precision x batch")
    p.add_argument("model")
    p.add_argument("--hardware", nargs="+", required=True)
    p.add_argument("--batch-sizes", nargs="+", type=int, default=[1, 8, 32, 128])
    p.add_argument("--precisions", nargs="+", default=["fp16"])
    p.add_argument("--efficiency", type=float, default=0.5)
    p.add_argument("--seq-len", type=int, default=None)

    add("audit", cmd_audit, "check every registry value has a unit of the right dimension and a source")

    p = add("list", cmd_list, "list registry records")
    p.add_argument("kind", type=_list_kind, metavar="{" + ",".join(LIST_KINDS) + "}",
                   help="registry to list (any capitalization, e.g. hardware)")

    p = add("serve", cmd_serve, "run the HTTP service (JSON API, jobs on a Dask cluster, plots)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--db", default=None, help="job store: a SQLite file (default: in the user data directory) "
                                              "or a postgresql:// URL several servers may share")
    p.add_argument("--workers", type=int, default=0,
                   help="worker processes of the local Dask cluster (default: cores - 1, 1 to 4)")
    p.add_argument("--worker-memory", default="2GiB",
                   help="memory limit of each local worker; its nanny restarts a worker past it (default 2GiB)")
    p.add_argument("--dask", default=None, metavar="tcp://HOST:PORT",
                   help="run jobs on the Dask cluster of this scheduler instead of a local one")
    p.add_argument("--job-timeout", type=float, default=300.0, help="seconds one job may run")
    p.add_argument("--max-grid", type=int, default=100_000, help="most points in one sweep")
    p.add_argument("--max-queue", type=int, default=1_000, help="most jobs waiting for a worker")
    p.add_argument("--enable-test-jobs", action="store_true", help="enable the test-only job kinds sleep and crash")
    p.add_argument("--http", choices=["auto", "httptools", "h11"], default="auto",
                   help="HTTP parser (default: httptools when installed)")
    p.add_argument("--loop", choices=["auto", "uvloop", "asyncio"], default="auto",
                   help="event loop (default: uvloop when installed)")
    from .cli_keys import add_serve_options  # --allowed-host, --cors-origin, --allow-unauthenticated, --require-keys
    add_serve_options(p)

    p = add("jobs", cmd_jobs, "inspect the job store of a server (works while it runs or after it stopped)")
    p.add_argument("action", choices=["list", "show", "result"])
    p.add_argument("id", nargs="?", help="job id (show, result)")
    p.add_argument("--db", default=None,
                   help="the server's --db, a file or postgresql:// URL (default: the user data directory)")
    p.add_argument("--status", choices=["queued", "running", "succeeded", "failed", "cancelled"])
    p.add_argument("--limit", type=int, default=20)

    p = add("plot", cmd_plot, "draw a roofline or a sweep heat map to PNG/SVG")
    p.add_argument("what", choices=["roofline", "sweep"])
    p.add_argument("model", nargs="+", help="workload registry name(s); a sweep uses the first")
    p.add_argument("--hardware", nargs="+", required=True)
    p.add_argument("--batch-sizes", nargs="+", type=int, default=[1, 8, 64, 512])
    p.add_argument("--precision", default="fp16")
    p.add_argument("--efficiency", type=float, default=0.5)
    p.add_argument("--seq-len", type=int, default=None)
    p.add_argument("--training", action="store_true")
    p.add_argument("--value", default="throughput_per_s", help="sweep column shown in the heat map")
    p.add_argument("--out", required=True, help="output file; .png or .svg (the suffix sets the format)")
    from .cli_solvers import register  # synthesize, fleet, parallelism, capstone, pareto, grade, dse
    register(sub, add)
    from .cli_import import register as register_import  # import-model
    register_import(sub, add)
    from .cli_plan import register as register_plan  # plan
    register_plan(sub, add)
    from .cli_keys import register as register_keys  # keys
    register_keys(sub, add)
    from .cli_dashboard import register as register_dashboard  # dashboard
    register_dashboard(sub, add)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns its exit code. Errors become one message on stderr (no traceback);
    library warnings are shown once each on stderr after the answer."""
    parser = build_parser()
    args = parser.parse_args(argv)
    # A server runs until stopped: its warnings go out as they happen, not collected for the end.
    collect = contextlib.nullcontext() if args.command == "serve" else _WarningsOnce()
    try:
        with collect:
            code = _run(args)
            sys.stdout.flush()                  # a closed pipe must fail here, not at interpreter exit
        return code
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_BROKEN_PIPE


def _run(args) -> int:
    from .errors import InputError, MlsysimError, UnknownNameError
    try:
        for path in args.registry or ():       # user records (e.g. import-model --write) join the registry
            from .catalog import load_registry
            load_registry(input_file(path, "--registry"))
        return args.fn(args, _console())
    except BrokenPipeError:
        raise
    except (InputError, UnknownNameError) as exc:
        report_error(str(exc))
        return EXIT_BAD_INPUT
    except MlsysimError as exc:
        report_error(str(exc))
        return EXIT_FAILED
    except OSError as exc:                     # a missing file or folder, no permission, a full disk
        report_error(_os_error_text(exc))
        return EXIT_BAD_INPUT
    except Exception as exc:
        text = _file_format_error(exc)
        if text is None:
            raise
        report_error(text)
        return EXIT_BAD_INPUT


def report_error(text: str) -> None:
    """``error: text`` on stderr (field paths like a[b][c] are text, not markup)."""
    from rich.markup import escape
    _err_console().print(f"[bold red]error:[/] {escape(text)}")


def _os_error_text(exc: OSError) -> str:
    where = exc.filename if exc.filename is not None else ""
    reason = exc.strerror or exc.__class__.__name__
    return f"{where}: {reason.lower()}" if where else reason


def _file_format_error(exc: Exception) -> str | None:
    """One line for a file that is not valid YAML, JSON, CSV or text; None for anything else."""
    import yaml
    if isinstance(exc, yaml.YAMLError):
        return "not valid YAML: " + " ".join(str(exc).split())
    if isinstance(exc, json.JSONDecodeError):
        return f"not valid JSON: {exc}"
    if isinstance(exc, UnicodeDecodeError):
        return f"not a text file ({exc.reason})"
    if type(exc).__module__.startswith("pandas") and "Error" in type(exc).__name__:
        return f"not a readable table: {' '.join(str(exc).split())}"
    return None


def _silence_stdout() -> None:
    """The reader of stdout left (``| head``): point stdout at devnull so the interpreter's final
    flush does not raise again (the recipe in Python's ``signal`` documentation)."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):     # a captured stream in tests: nothing to redirect
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


class _WarningsOnce:
    """Collects the library's warnings while a command runs and prints each distinct one once on
    stderr, styled like errors (instead of Python's raw ``file:line: Warning`` lines)."""

    def __enter__(self):
        import warnings
        self._catcher = warnings.catch_warnings(record=True)
        self._caught = self._catcher.__enter__()
        warnings.simplefilter("always", UserWarning)
        return self

    def __exit__(self, *exc_info):
        self._catcher.__exit__(*exc_info)
        seen = set()
        for w in self._caught:
            text = " ".join(str(w.message).split())
            if not issubclass(w.category, UserWarning) or text in seen:
                continue
            seen.add(text)
            from rich.markup import escape
            try:
                _err_console().print(f"[yellow]warning:[/] {escape(text)}")
            except BrokenPipeError:
                pass
        return False


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
