"""``mlsysim-opt plan PLAN.yaml``: a global fleet plan over time (capacity and routing hour by hour,
:func:`mlsysim_opt.planning.plan_fleet`), or its cost-carbon Pareto front, from a YAML problem
(:meth:`mlsysim_opt.planning.PlanProblem.from_yaml`).

Exit codes as everywhere in the CLI: 0 planned, 1 no feasible plan (the explanation is printed),
2 bad input (the message names the field and the file).

:mod:`mlsysim_opt.planning.export` gives the JSON form of a plan and of a front, shared by ``--json``
and the service's ``plan`` job kind.
"""
from __future__ import annotations

from pathlib import Path

from mlsysim_opt.planning.export import TABLES, pareto_json, plan_json

EXIT_OK, EXIT_FAILED = 0, 1

def _print_json(data) -> None:
    import json

    from mlsysim_opt.results import finite_values  # loads the unit registry: not at --help
    print(json.dumps(finite_values(data), indent=2, default=str))


# ------------------------------------------------------------------------------------------------
# Options


def _options(args) -> dict:
    """Checks the options that do not reach the library under their own name; returns the solve
    options both modes share."""
    from .errors import InputError
    if args.pareto is not None and args.pareto < 2:
        raise InputError("--pareto", args.pareto, "must be a whole number of points >= 2", "e.g. --pareto 7")
    if args.pareto is not None and args.window_hours is not None:
        raise InputError("--window-hours", args.window_hours, "cannot be combined with --pareto",
                         "each Pareto point caps carbon over the whole horizon, which couples the windows; "
                         "drop one of the two options")
    if args.mip_gap is not None and not 0 <= args.mip_gap < 1:
        raise InputError("--mip-gap", args.mip_gap, "must be a relative gap in [0, 1)", "e.g. --mip-gap 1e-4")
    options = {"time_limit": args.time_limit, "cluster": None if args.cluster in (None, "None", "none")
               else args.cluster}
    if args.mip_gap is not None:  # else each mode's own default (tighter for one plan than for a front)
        options["mip_gap"] = args.mip_gap
    return options


def _plots_module():
    """``mlsysim_opt.planning.plots``, imported only when --plot asks for it (an optional part)."""
    from importlib import import_module

    from .errors import InputError
    try:
        return import_module("mlsysim_opt.planning.plots")
    except ModuleNotFoundError as exc:
        if exc.name in ("mlsysim_opt.planning.plots", None):
            raise InputError("--plot", "mlsysim_opt.planning.plots", "needs the planning plots module, which this "
                             "installation does not have", "update mlsysim_opt, or leave out --plot") from None
        raise InputError("--plot", exc.name, "needs a package that is not installed",
                         f"pip install {exc.name}, or leave out --plot") from None


def _progress(err_console, what: str):
    """Progress lines on stderr (stdout stays clean for --json). The windows report
    ``(stage, done, total)``, a Pareto front ``(done, total)``."""
    def report(*args):
        stage = f"{args[0]} pass, " if len(args) == 3 else ""
        done, total = args[-2:]
        err_console.print(f"{what}: {stage}{done}/{total}", markup=False, highlight=False)
    return report


# ------------------------------------------------------------------------------------------------
# The command


def cmd_plan(args, console) -> int:
    """Input errors reach cli.main, which prints them (escaped: field paths are not markup)."""
    from rich.console import Console

    from .cli import input_file, output_folder
    from .planning import PlanProblem, pareto_front, plan_fleet
    options = _options(args)
    plots = _plots_module() if args.plot else None     # before solving: a missing module should not wait
    for option, folder in (("--csv-dir", args.csv_dir), ("--plot", args.plot)):
        if folder:
            output_folder(folder, option)             # before solving: a bad folder should not wait either
    problem = PlanProblem.from_yaml(input_file(args.problem, "PLAN.yaml"))
    err = Console(stderr=True, soft_wrap=True)
    if args.pareto is not None:
        err.print(f"{problem.name}: tracing the cost-carbon front ({args.pareto} points)", markup=False, highlight=False)
        answer = pareto_front(problem, points=args.pareto, progress=_progress(err, "pareto points"), **options)
        _outputs(answer, args, plots, pareto=True)
        _show_pareto(answer, args, console)
        return EXIT_OK if answer.points else EXIT_FAILED
    err.print(f"{problem.name}: planning {problem.hours} h over {len(problem.sites)} sites", markup=False, highlight=False)
    answer = plan_fleet(problem, window_hours=args.window_hours, progress=_progress(err, "windows"), **options)
    _outputs(answer, args, plots, pareto=False)
    if args.json:
        _print_json(plan_json(answer))
    else:
        _show_plan(answer, console)
        _written(args, console)
    return EXIT_OK if answer.feasible else EXIT_FAILED


def _outputs(answer, args, plots, *, pareto: bool) -> None:
    if args.csv_dir:
        if pareto:
            write_pareto_csv(answer, Path(args.csv_dir))
        elif answer.feasible:
            write_csv(answer, Path(args.csv_dir))
    if plots is None:
        return
    if pareto and answer.points:  # the cheapest plan's figures, and the front's
        plots.save_all(answer.points[-1].plan, Path(args.plot), front=answer)
    elif not pareto and answer.feasible:
        plots.save_all(answer, Path(args.plot))


def _written(args, console) -> None:
    for option, where in (("--csv-dir", args.csv_dir), ("--plot", args.plot)):
        if where:
            console.print(f"{option}: wrote {where}", markup=False, highlight=False)


def write_csv(result, folder: Path) -> list[Path]:
    """The four tables as ``fixed.csv``, ``replicas.csv``, ``routing.csv`` and ``by_hour.csv``."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in TABLES:
        path = folder / f"{name}.csv"
        getattr(result, name)().to_csv(path, index=False)
        paths.append(path)
    return paths


def write_pareto_csv(front, folder: Path) -> list[Path]:
    """``pareto.csv`` (one row per point), and each point's four tables in ``point_<i>/``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "pareto.csv"
    front.frame().to_csv(path, index=False)
    paths = [path]
    for i, point in enumerate(front.points):
        paths += write_csv(point.plan, folder / f"point_{i}")
    return paths


# ------------------------------------------------------------------------------------------------
# Tables for people


def _show_plan(result, console) -> None:
    from .cli import _table
    p = result.problem
    gap = "-" if result.gap is None else f"{result.gap:.3%}"
    rows = [["model", p.model_name], ["horizon", f"{p.hours} h, {len(p.sites)} sites, "
                                                 f"{len(p.demand.regions)} user regions"],
            ["objective", p.objective], ["status", f"{result.solve.status.value} (gap {gap})"],
            ["method", result.method], ["solve time", f"{result.solve.solve_time_s:.1f} s"]]
    if not result.feasible:
        _table(f"plan {p.name}: no feasible plan", ["quantity", "value"], rows, console)
        from rich.markup import escape
        console.print(f"[bold red]why:[/] {escape(str(result.explanation or result.solve.termination))}")
        return
    rows += [["cost", f"${result.cost_usd:,.2f}"], ["carbon", f"{result.carbon_t:,.4f} tCO2e"],
             ["energy", f"{result.energy_mwh:,.3f} MWh"],
             ["bound", "-" if result.bound is None else f"{result.bound:,.6g}"]]
    _table(f"plan {p.name}", ["quantity", "value"], rows, console)
    _show_capacity(result, console)
    _show_routing(result, console)
    _show_days(result, console)


def _show_capacity(result, console) -> None:
    from .cli import _table
    fixed = result.fixed()
    if len(fixed):
        _table("owned and reserved for the whole horizon", ["site", "kind", "configuration", "replicas",
                                                            "accelerators", "$/replica-hour"],
               [[r.site, r.kind, r.config, r.replicas, r.accelerators, f"{r.usd_per_replica_hour:.2f}"]
                for r in fixed.itertuples()], console)
    replicas = result.replicas()
    used = replicas.groupby(["site", "kind"]).agg(replica_hours=("replicas", "sum"),
                                                  accelerator_hours=("accelerators", "sum"),
                                                  peak=("accelerators", "max"))
    _table("capacity by site and kind", ["site", "kind", "replica-hours", "accelerator-hours", "peak accelerators"],
           [[site, kind, f"{r.replica_hours:,}", f"{r.accelerator_hours:,}", f"{r.peak:,}"]
            for (site, kind), r in used.iterrows()], console)


def _show_routing(result, console) -> None:
    from .cli import _table
    routing = result.routing()
    served = routing.assign(weighted=routing.qps * routing.rtt_ms).groupby(["user_region", "site"]).agg(
        qps=("qps", "sum"), weighted=("weighted", "sum"))
    share = served.qps / served.groupby(level="user_region").qps.transform("sum")
    _table("where each user region is served (share of its requests over the horizon)",
           ["user region", "site", "share", "round trip ms"],
           [[u, s, f"{share[u, s]:.1%}", f"{r.weighted / r.qps:.0f}"] for (u, s), r in served.iterrows()], console)


def _show_days(result, console) -> None:
    from .cli import _table
    hours = result.by_hour()
    days = hours.groupby(hours.hour // 24).agg(peak_qps=("demand_qps", "max"), cost=("cost_usd", "sum"),
                                                carbon=("carbon_t", "sum"), energy=("energy_mwh", "sum"),
                                                peak_acc=("accelerators", "max"))
    _table("by day (hour 0 = Monday 00:00 UTC)", ["day", "peak requests/s", "cost $", "carbon tCO2e",
                                                  "energy MWh", "peak accelerators"],
           [[day, f"{r.peak_qps:,.1f}", f"{r.cost:,.2f}", f"{r.carbon:,.4f}", f"{r.energy:,.3f}", f"{r.peak_acc:,.0f}"]
            for day, r in days.iterrows()], console)


def _show_pareto(front, args, console) -> None:
    if args.json:
        _print_json(pareto_json(front))
        return
    from .cli import _table
    _table("cost against carbon (each point: least cost under its carbon cap)",
           ["point", "carbon cap tCO2e", "carbon tCO2e", "cost $", "gap"],
           [[i, "-" if p.carbon_cap_t is None else f"{p.carbon_cap_t:,.4f}", f"{p.carbon_t:,.4f}",
             f"{p.cost_usd:,.2f}", "-" if p.gap is None else f"{p.gap:.3%}"] for i, p in enumerate(front.points)],
           console)
    _written(args, console)


def register(sub, add) -> None:
    """Add ``plan`` to ``sub`` using ``add(name, fn, help)`` (see cli.build_parser)."""
    p = add("plan", cmd_plan, "global fleet plan over time: capacity and routing hour by hour across sites (MILP)")
    p.add_argument("problem", metavar="PLAN.yaml", help="the plan's fields (PlanProblem.from_yaml), e.g. "
                                                        "examples/plans/week_3_regions.yaml")
    p.add_argument("--time-limit", type=float, default=60.0, help="seconds per MILP (each window, each point)")
    p.add_argument("--mip-gap", type=float, help="relative MIP gap (default 1e-6 for one plan, 1e-4 for a "
                                                 "front or windows)")
    p.add_argument("--window-hours", type=int, help="plan a long horizon in windows of this many hours, with a "
                                                    "proven bound (e.g. 168)")
    p.add_argument("--cluster", help="where windows or Pareto points run: None (this process, default), local "
                                     "(a Dask cluster on this machine) or a scheduler address tcp://host:8786")
    p.add_argument("--pareto", type=int, metavar="N", help="print the cost-carbon front with N points instead of "
                                                           "one plan")
    p.add_argument("--csv-dir", metavar="DIR", help="write fixed.csv, replicas.csv, routing.csv and by_hour.csv "
                                                    "(with --pareto: pareto.csv and point_<i>/ per point)")
    p.add_argument("--plot", metavar="DIR", help="save the plan's figures here (mlsysim_opt.planning.plots)")
