"""Command-line subcommands for the inverse questions: synthesize, fleet, parallelism, capstone,
pareto, grade, dse. Registered into the ``mlsysim-opt`` parser by :func:`register`.

Exit codes as everywhere in the CLI: 0 answered, 1 no feasible answer (the explanation is printed),
2 bad input.
"""
from __future__ import annotations

import contextlib
import json
from pathlib import Path

EXIT_OK, EXIT_FAILED = 0, 1


def _status(console, text: str):
    """A spinner on long work (only when writing to a terminal)."""
    if console.is_terminal:
        return console.status(text)
    return contextlib.nullcontext()


def _print_json(data) -> None:
    print(json.dumps(data, indent=2, default=str))


def _problem(args):
    from .cli import input_file
    from .formulations.capstone import CapstoneProblem
    if getattr(args, "problem", None):
        problem = CapstoneProblem.from_yaml(input_file(args.problem, "--problem", empty_fix="write the problem's "
                                                       "fields into it, or leave out --problem for the default"))
    else:
        problem = CapstoneProblem.exercise8() if getattr(args, "exercise8", False) else CapstoneProblem()
    return problem.with_(disaggregated="auto") if getattr(args, "disaggregated", False) else problem


def cmd_synthesize(args, console) -> int:
    from .formulations.sla_synthesis import synthesize
    from .catalog import Datacenters, Grids
    region = None
    if args.region:
        region = Datacenters.get(args.region) or Grids[args.region]
    with _status(console, "searching the design space"):
        r = synthesize(args.model, qps=args.qps, prompt_len=args.prompt_len, output_len=args.output_len,
                       ttft=args.ttft, itl=args.itl, e2e_latency=args.e2e, hardware=args.hardware,
                       precisions=args.precisions, objective=args.objective, budget_usd=args.budget,
                       datacenter=region, allow_mix=args.mix, efficiency=args.efficiency, redundancy=args.redundancy,
                       percentile=args.percentile, chunk_sizes=args.chunk_sizes, headroom=args.headroom,
                       disaggregated=args.disaggregated, ep_sizes=args.ep_sizes)
    if args.json:
        _print_json(r.model_dump(mode="json"))
    else:
        console.print(str(r))
        for line in _format_lines(_shown_configs(r)):
            console.print(line, markup=False, highlight=False)
        if r.mix is not None:
            console.print(str(r.mix))
    return EXIT_OK if r.feasible else EXIT_FAILED


def cmd_fleet(args, console) -> int:
    from .formulations.fleet_sizing import size_fleet
    from .formulations.goodput import apply_sla
    from .formulations.serving_grid import latency_limits, serving_configs
    from .formulations.sla_synthesis import planning_headroom, serving_candidates
    availability = _availability(args.availability)
    limits = latency_limits(ttft=args.ttft, itl=args.itl)
    # The headroom rule synthesize uses (1 under an SLA, else 80% of the stable load), so both
    # commands plan replicas at the same load and agree on the colocated fleet.
    headroom = planning_headroom(args.headroom, bool(limits))
    with _status(console, "evaluating serving configurations"):
        configs = apply_sla(serving_configs(args.model, prompt_len=args.prompt_len, output_len=args.output_len,
                                            hardware=args.hardware, efficiency=args.efficiency), limits,
                            args.percentile)
        if not configs:
            from .errors import MlsysimError
            raise MlsysimError(f"no serving configuration of {args.model} meets the latency limits on the candidate "
                               "hardware; relax them, or run synthesize for the limit each would need")
        candidates = serving_candidates(configs, headroom=headroom)
        r = size_fleet(candidates, demand_qps=args.qps if args.objective != "max_throughput" else None,
                       budget_usd=args.budget, objective=args.objective, power_cap_kw=args.power_kw,
                       availability=availability or None)
    assumptions = _fleet_assumptions(args, headroom, bool(limits), _slowest_request_ms(r, configs))
    if args.json:
        _print_json({**r.model_dump(mode="json"), "assumptions": assumptions.model_dump(mode="json"),
                     "differs_from_synthesize": FLEET_VS_SYNTHESIZE})
    else:
        console.print(str(r))
        by_name = {c.name: c for c in configs}
        used = [by_name[a.candidate.name] for a in (r.allocations if r.feasible else []) if a.candidate.name in by_name]
        for line in _format_lines(used):
            console.print(line, markup=False, highlight=False)
        for line in assumptions.lines():
            console.print(line, markup=False, highlight=False)
        console.print(f"note: {FLEET_VS_SYNTHESIZE}", markup=False, highlight=False)
    return EXIT_OK if r.feasible else EXIT_FAILED


FLEET_VS_SYNTHESIZE = ("fleet sizes colocated replicas (mixing configurations when cheaper) at the same load "
                       "per replica as synthesize; synthesize also weighs separate prefill and decode pools and "
                       "spare replicas (--redundancy), so its answer can differ when one of those wins")
"""Why ``fleet`` and ``synthesize`` may answer the same query differently (printed by fleet)."""


def _availability(items) -> dict[str, int]:
    """``NAME=COUNT`` items as {hardware name: accelerators available}."""
    from .catalog import Hardware
    from .errors import InputError
    availability = {}
    for item in items or []:
        name, _, count = item.partition("=")
        if not count.isdigit():
            raise InputError("--availability", item, "must read NAME=COUNT", "e.g. --availability H100=64")
        availability[Hardware[name].name] = int(count)
    return availability


def _shown_configs(result) -> list:
    """The serving configurations a synthesize answer prints: the best design, its alternatives and
    the disaggregated pools."""
    designs = ([result.best] if result.best is not None else []) + list(result.alternatives)
    configs = [d.config for d in designs]
    if result.disaggregated is not None:
        configs += [result.disaggregated.prefill.config, result.disaggregated.decode.config]
    return configs


def _format_lines(configs) -> list[str]:
    """One line per distinct (accelerator, weights) shown, naming its weight, compute and KV formats."""
    seen = {}
    for c in configs:
        seen.setdefault((c.hardware, c.precision), c.formats)
    return [f"formats on {hw} {weights}: {formats}" for (hw, weights), formats in seen.items()]


def _fleet_assumptions(args, headroom: float, sla_applied: bool, e2e_ms: float | None):
    from .formulations.goodput import percentile_level
    from .formulations.serving_grid import DEFAULT_UTILIZATION, Assumptions, price_basis
    return Assumptions(prompt_tokens=args.prompt_len, output_tokens=args.output_len, efficiency=args.efficiency,
                       headroom=headroom, sla_applied=sla_applied, percentile=percentile_level(args.percentile)[0],
                       utilization=DEFAULT_UTILIZATION, price_basis=price_basis(None), end_to_end_latency_ms=e2e_ms,
                       end_to_end_of="the slowest configuration in the fleet")


def _slowest_request_ms(result, configs) -> float | None:
    """The largest end-to-end latency over the fleet's configurations, each at the load per replica
    the solution gives it (None when nothing was sized)."""
    from .formulations.goodput import operating_point
    by_name = {c.name: c for c in configs}
    latencies = []
    for a in result.allocations if result.feasible else []:
        config = by_name.get(a.candidate.name)
        if config is not None and a.replicas > 0 and config.replica_costs:
            latencies.append(operating_point(config, sum(a.served_qps.values()) / a.replicas).e2e_latency_ms)
    return max(latencies, default=None)


def cmd_parallelism(args, console) -> int:
    from .catalog import Clusters, Fabrics, Nodes
    from .solvers.parallelism import ParallelismOptimizer
    from .types import Fleet
    if args.cluster:
        fleet = Clusters[args.cluster]
    else:
        fleet = Fleet(name=f"{args.nodes} x {args.node}", node=Nodes[args.node], count=args.nodes,
                      fabric=Fabrics[args.fabric])
    r = ParallelismOptimizer(backend=args.backend).solve(
        args.model, fleet, batch_size=args.batch_size, precision=args.precision, efficiency=args.efficiency,
        seq_len=args.seq_len, zero_stage=args.zero_stage, max_ep=args.max_ep, background_load=args.background_load,
        step_time_cv=args.step_time_cv)
    if args.json:
        _print_json(r.to_dict())
    elif r.best_config is None:
        console.print(f"[bold red]no configuration fits:[/] {r.infeasibility_reason}")
    else:
        proof = f", HiGHS {r.solver.status.value}" if getattr(r, "solver", None) is not None else ""
        console.print(f"{r.model} on {r.fleet}: {r.best_config}  MFU {r.best_mfu:.3f}, step "
                      f"{r.best_step_time:.4g~P}, {r.best_throughput:,.0f~P} ({r.total_searched} configurations, "
                      f"{r.feasible_count} fit{proof})")
        eta = (f"efficiency {args.efficiency:g} of peak compute" if args.efficiency is not None else
               f"efficiency: {getattr(r.best, 'efficiency_basis', None) or 'calibrated training profile'}")
        console.print(f"assumes {eta}, sequence length {args.seq_len} tokens, "
                      f"{args.precision}, ZeRO stage {args.zero_stage}", markup=False, highlight=False)
    return EXIT_OK if r.best_config is not None else EXIT_FAILED


def cmd_capstone(args, console) -> int:
    from .formulations.capstone import precision_effect, solve_capstone
    problem = _problem(args)
    with _status(console, f"solving {problem.name}"):
        if args.compare_int4:
            effect = precision_effect(problem, "int4")
            r = effect["with"]
        else:
            r = solve_capstone(problem)
    assumptions = _capstone_assumptions(problem, r)
    if args.json:
        _print_json({**r.model_dump(mode="json"), "assumptions": assumptions.model_dump(mode="json")})
    else:
        console.print(str(r))
        for line in assumptions.lines():
            console.print(line, markup=False, highlight=False)
        if args.compare_int4:
            console.print("INT4 changes the answer" if effect["changes_answer"] else
                          "INT4 does not change the answer")
    return EXIT_OK if r.feasible else EXIT_FAILED


def _capstone_assumptions(problem, result=None):
    """The capstone's request shape, efficiency, headroom and price basis (regions' own sites), with
    the slowest region's end-to-end latency when solved."""
    from .formulations.serving_grid import Assumptions, price_basis
    loads = [d.load for d in (result.regions if result is not None and result.feasible else []) if d.load is not None]
    where = ", ".join(problem.regions)
    return Assumptions(prompt_tokens=problem.prompt_len, output_tokens=problem.output_len,
                       efficiency=problem.efficiency, headroom=problem.planned_headroom,
                       sla_applied=problem.ttft_ms is not None or problem.itl_ms is not None,
                       percentile=problem.percentile_label, utilization=problem.utilization,
                       price_basis=price_basis(where, problem.utilization, problem.infrastructure_multiplier),
                       end_to_end_latency_ms=max((x.e2e_latency_ms for x in loads), default=None),
                       end_to_end_of="the slowest region")


def cmd_pareto(args, console) -> int:
    from .formulations.capstone import solve_capstone
    from .formulations.pareto import pareto_front, plot_front
    from .cli import PLOT_FORMATS, output_file
    problem = _problem(args)
    if args.plot:
        output_file(args.plot, "--plot", PLOT_FORMATS)
    with _status(console, "tracing the Pareto front"):
        front = pareto_front(problem, points=args.points, axes=args.axes)
    if args.plot:
        plot_front(front, args.plot, chosen=solve_capstone(problem))
    if args.json:
        _print_json({**front.model_dump(mode="json", exclude={"points": {"__all__": {"design"}}}),
                     "assumptions": _capstone_assumptions(problem).model_dump(mode="json")})
    else:
        console.print(str(front))
        for line in _capstone_assumptions(problem).lines():
            console.print(line, markup=False, highlight=False)
        if args.plot:
            console.print(f"plot: {args.plot}")
    return EXIT_OK if front.points else EXIT_FAILED


def cmd_grade(args, console) -> int:
    from .cli import PLOT_FORMATS, input_file, output_file
    from .errors import InputError
    from .grading import Grader
    target = Path(args.submission)
    if not target.is_dir():
        input_file(args.submission, "SUBMISSION")      # a missing file is an error, not a grade of 0
    if args.csv:
        output_file(args.csv, "--csv", ("csv",))
    if args.plot:
        output_file(args.plot, "--plot", PLOT_FORMATS)
    if not target.is_dir() and (args.csv or args.plot):
        raise InputError("--csv/--plot", args.submission, "need a folder of submissions (batch mode)",
                         "give a folder, or leave out --csv and --plot")
    grader = Grader(_problem(args))
    if target.is_dir():
        reports = grader.grade_folder(target, csv_path=args.csv, plot_path=args.plot, progress=console.is_terminal)
    else:
        with _status(console, "grading"):
            reports = [grader.grade(target)]
    if args.json:
        _print_json([r.model_dump(mode="json") for r in reports])
    else:
        from rich.table import Table
        table = Table(title=f"grades ({grader.problem.name})", title_justify="left")
        for col in ("submission", "student", "score", "status", "cost gap", "failed checks"):
            table.add_column(col)
        for r in reports:
            failed = ", ".join(c.group for c in r.checks if not c.passed) or "-"
            gap = "-" if r.cost_gap is None else f"{100 * r.cost_gap:+.1f}%"
            table.add_row(Path(r.source).name, r.student, f"{r.score:.1f}", r.status, gap, failed)
        console.print(table)
        for r in reports:
            console.print(str(r))
    # Graded is success, even with low scores; a file that could not be read as a submission is not.
    return EXIT_FAILED if any(r.status == "malformed" for r in reports) and not target.is_dir() else EXIT_OK


def cmd_dse(args, console) -> int:
    from .dse import DSE
    r = DSE.roofline_grid(args.model, args.hardware, batch_sizes=args.batch_sizes, precisions=args.precisions,
                          efficiencies=args.efficiencies, seq_lens=[args.seq_len] if args.seq_len else None,
                          objective=args.objective, constraints=args.constraint, top_k=args.top_k)
    if args.json:
        _print_json({"best_params": r.best_params, "best_objective": r.best_objective,
                     "objective_unit": r.objective_unit, "evaluated": r.evaluated, "satisfying": r.satisfying,
                     "top": [{"params": c["params"], "objective": c["objective_value"]} for c in r.top_candidates]})
    else:
        console.print(f"{r.evaluated:,} configurations, {r.satisfying:,} satisfy the constraints, "
                      f"{r.elapsed_s * 1e3:.0f} ms")
        for i, c in enumerate(r.top_candidates, 1):
            console.print(f"  {i}. {c['params']}  {args.objective.split(':')[-1].strip()} = "
                          f"{c['objective_value']:,.4g} {r.objective_unit or ''}")
    return EXIT_OK


def _serving_options(p) -> None:
    """The options synthesize and fleet share, with the same defaults, so both plan alike."""
    p.add_argument("--ttft", help="TTFT limit, e.g. '100 ms' (a plain number is seconds)")
    p.add_argument("--itl", help="ITL limit, e.g. '50 ms' (a plain number is seconds)")
    p.add_argument("--percentile", default="p90", help="percentile every latency limit bounds: p50, p90, p99, mean")
    p.add_argument("--prompt-len", type=int, default=512, help="prompt tokens per request")
    p.add_argument("--output-len", type=int, default=256, help="output tokens per request")
    p.add_argument("--efficiency", type=float, default=None,
                   help="fraction of peak compute the replicas attain (default: each hardware's calibrated "
                        "serving profile, registry/efficiency_profiles.yaml; 0.5 is the tutorial's)")
    p.add_argument("--headroom", type=float,
                   help="fraction of each replica's planned load to use (default: 1 under a latency limit, "
                        "which sets the load; 0.8 of the stable load without one)")
    p.add_argument("--hardware", nargs="+", help="candidate hardware (default: every priced cloud accelerator)")


def register(sub, add) -> None:
    """Add the subcommands to ``sub`` (an argparse subparsers object) using ``add(name, fn, help)``."""
    from .cli import non_negative_money, positive_number
    p = add("synthesize", cmd_synthesize, "the cheapest (or lowest-power, lowest-carbon) fleet meeting an SLA (MILP)")
    p.add_argument("model")
    p.add_argument("--qps", type=float, required=True, help="requests per second to serve")
    _serving_options(p)
    p.add_argument("--e2e", help="end-to-end request latency limit, e.g. '5 s' (a plain number is seconds)")
    p.add_argument("--precisions", nargs="+", default=["fp16", "fp8", "int8", "int4"])
    p.add_argument("--objective", choices=["tco", "power", "carbon"], default="tco")
    p.add_argument("--budget", type=non_negative_money, help="annual budget in USD")
    p.add_argument("--region", help="grid or datacenter the fleet runs in (prices, PUE, carbon; default: US_Avg grid)")
    p.add_argument("--mix", action="store_true", help="also solve a heterogeneous mix of configurations")
    p.add_argument("--redundancy", type=int, default=0, help="spare replicas kept for failures (N+k)")
    p.add_argument("--chunk-sizes", type=int, nargs="+", default=[256, 512, 2048],
                   help="prefill tokens per iteration to choose from (chunked prefill)")
    p.add_argument("--ep-sizes", type=int, nargs="+",
                   help="expert-parallel degrees for a mixture of experts (default 1 2 4)")
    p.add_argument("--disaggregated", choices=["auto", "never"], default="auto",
                   help="also weigh separate prefill and decode pools (auto), or not (never)")

    p = add("fleet", cmd_fleet, "size a (possibly heterogeneous) serving fleet: min cost for a demand, or max QPS")
    p.add_argument("model")
    p.add_argument("--qps", type=positive_number, help="demand to serve (min_cost, min_power, min_carbon)")
    p.add_argument("--objective", choices=["min_cost", "min_power", "min_carbon", "max_throughput"],
                   default="min_cost")
    p.add_argument("--budget", type=non_negative_money, help="annual budget in USD")
    p.add_argument("--power-kw", type=positive_number, help="power cap in kW")
    p.add_argument("--availability", nargs="+", help="NAME=COUNT accelerators available per type")
    _serving_options(p)

    p = add("parallelism", cmd_parallelism, "best TP x PP x DP split of a training job")
    p.add_argument("model")
    p.add_argument("--cluster", help="registry cluster, e.g. Research_256")
    p.add_argument("--node", default="DGX_H100")
    p.add_argument("--nodes", type=int, default=8)
    p.add_argument("--fabric", default="InfiniBand_NDR")
    p.add_argument("--batch-size", type=int, required=True)
    p.add_argument("--precision", default="fp16")
    p.add_argument("--efficiency", type=float, default=None,
                   help="fraction of peak compute (default: the accelerator's calibrated training profile, else 0.5)")
    p.add_argument("--seq-len", type=int, default=2048)
    p.add_argument("--zero-stage", type=int, default=0)
    p.add_argument("--max-ep", type=int, help="largest expert-parallel degree tried (mixtures of experts)")
    p.add_argument("--background-load", type=float, default=0.0,
                   help="share of the fabric's oversubscribed tier other jobs use, 0 to 0.99")
    p.add_argument("--step-time-cv", type=float, help="per-rank step-time jitter for stragglers (default 0, off)")
    p.add_argument("--backend", choices=["exhaustive", "highs"], default="highs")

    for name, fn, text in (("capstone", cmd_capstone, "solve the two-region capstone to proven optimality"),
                           ("pareto", cmd_pareto, "exact Pareto front of the capstone (cost vs carbon or TTFT)")):
        p = add(name, fn, text)
        p.add_argument("--problem", help="a capstone variant (YAML); default: the deck's capstone")
        p.add_argument("--exercise8", action="store_true", help="exercise 8's variant (US East + Quebec)")
        if name == "capstone":
            p.add_argument("--compare-int4", action="store_true", help="solve with and without INT4")
            p.add_argument("--disaggregated", action="store_true",
                           help="let each region run separate prefill and decode pools instead")
        else:
            p.add_argument("--points", type=int, default=20)
            p.add_argument("--axes", choices=["carbon", "ttft"], default="carbon")
            p.add_argument("--plot", help="save the front to this .png or .svg file")

    p = add("grade", cmd_grade, "grade a capstone submission (YAML) or a folder of them")
    p.add_argument("submission", help="a .yaml file or a folder of them")
    p.add_argument("--problem", help="the capstone variant (YAML); default: the deck's capstone")
    p.add_argument("--exercise8", action="store_true")
    p.add_argument("--csv", help="batch mode: write the grades to this .csv file")
    p.add_argument("--plot", help="batch mode: plot the submissions against the Pareto front (.png or .svg)")

    p = add("dse", cmd_dse, "vectorized design-space search over the roofline grid")
    p.add_argument("model")
    p.add_argument("--hardware", nargs="+", required=True)
    p.add_argument("--batch-sizes", nargs="+", type=int, default=[1, 8, 32, 128])
    p.add_argument("--precisions", nargs="+", default=["fp16"])
    p.add_argument("--efficiencies", nargs="+", type=float, default=[0.5])
    p.add_argument("--seq-len", type=int)
    p.add_argument("--objective", default="maximize: throughput")
    p.add_argument("--constraint", action="append",
                   help="e.g. 'latency < 50 ms' (repeatable; write the unit: a plain number is read in the "
                        "result's own unit, ms for latency)")
    p.add_argument("--top-k", type=int, default=5)
