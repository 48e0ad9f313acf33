"""``mlsysim-opt``: the command line.

Exit codes: 0 success; 1 a check failed (audit found problems, a query is infeasible);
2 bad input (unknown name, bad value, wrong unit).
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Callable

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


def _console():
    from rich.console import Console
    return Console(soft_wrap=True)


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
    from .engine import Engine
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
    _table(f"sweep of {args.model}", ["hardware", "precision", "batch", "latency ms", "throughput /s",
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
    serve(ServiceConfig(host=args.host, port=args.port, db=args.db, workers=args.workers,
                        job_timeout=args.job_timeout, max_grid=args.max_grid, max_queue=args.max_queue,
                        enable_test_jobs=args.enable_test_jobs, http=args.http, loop=args.loop))
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
            console.print(f"[bold red]error:[/] no job {args.id!r} in {store.location}")
            return EXIT_BAD_INPUT
        if args.action == "result":
            text = store.result(job.id)
            if text is None:
                console.print(f"[bold red]error:[/] job {job.id} is {job.status}")
                return EXIT_FAILED
            print(text)
            return EXIT_OK
        print(json.dumps(job.info(), indent=2))
        return EXIT_OK
    finally:
        store.close()


def cmd_plot(args, console) -> int:
    from .service import plots
    if args.what == "roofline":
        plots.roofline_plot(args.model, args.hardware, batch_sizes=args.batch_sizes, precision=args.precision,
                            efficiency=args.efficiency, seq_len=args.seq_len, is_training=args.training,
                            out=args.out)
    else:
        from .engine import Engine
        frame = Engine.sweep_table(args.model[0], args.hardware, batch_sizes=args.batch_sizes,
                                   precisions=[args.precision], efficiencies=[args.efficiency],
                                   seq_lens=[args.seq_len] if args.seq_len else (2048,), is_training=args.training)
        plots.sweep_heatmap(frame, value=args.value, out=args.out)
    console.print(f"wrote {args.out}")
    return EXIT_OK


COMMANDS: dict[str, Callable] = {}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mlsysim-opt", description=__doc__.splitlines()[0])
    parser.add_argument("--registry", action="append", metavar="FILE.yaml",
                        help="load records from a registry YAML file first (e.g. one written by "
                             "import-model --write); repeatable")
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, fn: Callable, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
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
    p.add_argument("kind", choices=["Hardware", "Models", "Nodes", "Fabrics", "Clusters", "Grids", "Datacenters"])

    p = add("serve", cmd_serve, "run the HTTP service (JSON API, jobs in worker processes, plots)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--db", default=None, help="job store: a SQLite file (default: in the user data directory) "
                                              "or a postgresql:// URL several servers may share")
    p.add_argument("--workers", type=int, default=0, help="worker processes (default: cores - 1, 1 to 4)")
    p.add_argument("--job-timeout", type=float, default=300.0, help="seconds one job may run")
    p.add_argument("--max-grid", type=int, default=100_000, help="most points in one sweep")
    p.add_argument("--max-queue", type=int, default=1_000, help="most jobs waiting for a worker")
    p.add_argument("--enable-test-jobs", action="store_true", help="enable the test-only job kinds sleep and crash")
    p.add_argument("--http", choices=["auto", "httptools", "h11"], default="auto",
                   help="HTTP parser (default: httptools when installed)")
    p.add_argument("--loop", choices=["auto", "uvloop", "asyncio"], default="auto",
                   help="event loop (default: uvloop when installed)")

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
    p.add_argument("--out", required=True, help="output file; .png or .svg")
    from .cli_solvers import register  # synthesize, fleet, parallelism, capstone, pareto, grade, dse
    register(sub, add)
    from .cli_import import register as register_import  # import-model
    register_import(sub, add)
    from .cli_plan import register as register_plan  # plan
    register_plan(sub, add)
    return parser


def main(argv: list[str] | None = None) -> int:
    from .errors import InputError, MlsysimError, UnknownNameError
    parser = build_parser()
    args = parser.parse_args(argv)
    console = _console()
    try:
        for path in args.registry or ():       # user records (e.g. import-model --write) join the registry
            from .catalog import load_registry
            load_registry(path)
        return args.fn(args, console)
    except (InputError, UnknownNameError) as exc:
        from rich.markup import escape         # field paths like a[b][c] are text, not markup
        console.print(f"[bold red]error:[/] {escape(str(exc))}")
        return EXIT_BAD_INPUT
    except MlsysimError as exc:
        from rich.markup import escape
        console.print(f"[bold red]error:[/] {escape(str(exc))}")
        return EXIT_FAILED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
