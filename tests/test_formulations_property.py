"""Proof by brute force: a seeded property suite comparing every optimization formulation with an
exhaustive enumeration built directly on the forward models (``tests/brute_force.py``).

For every random instance:
1. the optimum: the formulation's value equals the enumeration's optimum (relative 1e-6), or both
   say infeasible;
2. the returned design, re-evaluated with the forward models (not the solver's numbers), meets
   every limit: demand at each configuration's goodput times the planned headroom with N+k
   spares, latencies alone and, through LoadedReplicaModel, the limited percentiles at the load
   each working replica carries (and a broken limit or queue just past the goodput), memory,
   budget, carbon and power caps, availability;
3. the status is honest: "optimal" only with the enumeration's value, a time-limited "feasible"
   answer still within every hard limit, an infeasible query without a design.
"""
from __future__ import annotations

import math
import random
import re

import numpy as np
import pytest

import brute_force as bf
from mlsysim_opt import (Candidate, CapstoneProblem, DistributedModel, Fabrics, Fleet, InputError, Models, Nodes,
                         ParallelismOptimizer, pareto_front, size_fleet, solve_capstone, synthesize)
from mlsysim_opt.formulations.capstone import region_candidates, resolve_region
from mlsysim_opt.formulations.serving_grid import DEFAULT_CHUNKS, DEFAULT_HEADROOM

REL = 1e-6
TINY_TIME = 1e-9
GENEROUS_TIME = 30.0
HAS_SOLUTION = ("optimal", "feasible")


def close(a, b, rel=REL) -> bool:
    return abs(a - b) <= rel * max(abs(a), abs(b), 1e-12)


def within(value, limit, rel=1e-9, abs_=1e-9) -> bool:
    return value <= limit + rel * abs(limit) + abs_


def covers(capacity, demand, rel=1e-7, abs_=1e-7) -> bool:
    return capacity >= demand - rel * abs(demand) - abs_


class Findings:
    """Collects every broken property of one instance, then fails once with all of them."""

    def __init__(self, what: str, instance: dict):
        self.what, self.instance, self.problems = what, instance, []

    def expect(self, ok: bool, message: str) -> bool:
        if not ok:
            self.problems.append(message)
        return ok

    def fail(self, message: str) -> None:
        self.problems.append(message)

    def done(self) -> None:
        if self.problems:
            pytest.fail(f"{self.what} {self.instance}:\n  - " + "\n  - ".join(self.problems), pytrace=False)


def weighted(rng: random.Random, options: dict):
    return rng.choices(list(options), weights=list(options.values()))[0]


def status_of(solve_result) -> str:
    return getattr(solve_result.status, "value", str(solve_result.status))


# ================================================================================================
# SLA synthesis


SLA_MODELS = ("Llama3_8B", "Llama3_70B", "Mixtral_8x7B")
SLA_HARDWARE = ("H100", "A100", "L4", "MI300X", "T4", "H200", "Gaudi3", "B200")
SLA_PRECISIONS = ("fp16", "fp8", "int8", "int4")
SLA_TP = (1, 2, 4, 8)
SLA_BATCHES = (1, 8, 32, 128, 256)
SLA_PERCENTILES = (None, None, None, "p50", "p99", "mean")
"""None: the formulation's default (p90), not passed."""
SHAPES = ((512, 256), (256, 128))
SLA_REGIONS = ("US_East", "EU_West", "Quebec", "Poland", "Norway")
OBJECTIVE_ATTR = {"tco": "annual_cost_usd", "power": "power_kw", "carbon": "annual_carbon_t"}
N_SLA, N_MIX = 90, 24
MIX_PAIRS = (("MI300X", "B200"), ("Gaudi3", "H200"), ("L4", "T4"), ("H100", "MI300X"), ("A100", "Gaudi3"),
             ("B200", "Gaudi3"))
"""Hardware pairs whose cost and power per request rank differently (the objective matters)."""
MIX_GRID_LIMIT = 60_000


def _limit(rng, rows, attr, weights):
    """A latency limit from the rows' zero-load latencies: none; just above a random row's ("some":
    it meets the limit only at light load); well above it ("loose"); or below every row's."""
    values = sorted(getattr(r, attr) for r in rows)
    mode = weighted(rng, weights)
    if mode == "some":
        return round(rng.choice(values) * rng.uniform(1.0005, 1.3), 6)
    if mode == "loose":
        return round(rng.choice(values) * rng.uniform(1.3, 4.0), 6)
    if mode == "impossible":
        return round(values[0] * rng.uniform(0.5, 0.999), 6)
    return None


def _budget(rng, costs, weights, values=None):
    """A budget: none, a random design's cost, below every design, loose, or "binding": between a
    cheaper design's cost and the cost of the best design by ``values`` (the objective)."""
    mode = weighted(rng, weights)
    if not costs or mode == "none":
        return None
    if mode == "binding" and values is not None:
        target = costs[min(range(len(costs)), key=lambda i: (values[i], costs[i]))]
        cheaper = [c for c in costs if c * 1.0001 < target * 0.9999]
        if cheaper:
            return round(float(rng.uniform(rng.choice(cheaper) * 1.0001, target * 0.9999)), 2)
        mode = "some"
    if mode in ("some", "binding"):
        return round(float(rng.choice(costs)) * rng.uniform(1.0001, 1.02), 2)
    if mode == "below":
        return round(float(min(costs)) * rng.uniform(0.5, 0.999), 2)
    return round(float(max(costs)) * 2, 2)


def sla_instance(seed: int, *, mix: bool = False):
    rng = random.Random((7919 if mix else 1009) * (seed + 1))
    while True:
        if mix:
            model, shape = "Llama3_8B", rng.choice(SHAPES)
            hardware = list(rng.choice(MIX_PAIRS)) if rng.random() < 0.7 else rng.sample(SLA_HARDWARE, 2)
            precisions = [rng.choice(("fp16", "int8"))]
            tps, batches = [1], sorted(rng.sample((8, 32, 128), 2))
            chunks = sorted(rng.sample(DEFAULT_CHUNKS, 1 if rng.random() < 0.7 else 2))
        else:
            model, shape = rng.choice(SLA_MODELS), rng.choice(SHAPES)
            hardware = rng.sample(SLA_HARDWARE, rng.randint(1, 4))
            precisions = rng.sample(SLA_PRECISIONS, rng.randint(1, 3))
            tps = sorted(rng.sample(SLA_TP, rng.randint(1, 3)))
            batches = sorted(rng.sample(SLA_BATCHES, rng.randint(1, 3)))
            chunks = None if rng.random() < 0.4 else sorted(rng.sample(DEFAULT_CHUNKS, rng.randint(1, 2)))
        rows = bf.replica_table(model, tuple(hardware), tuple(precisions), tuple(tps), (1,), tuple(batches),
                                tuple(chunks or DEFAULT_CHUNKS), *shape)
        if rows:
            break
    percentile = rng.choice(SLA_PERCENTILES)
    headroom = rng.choice([None, None, 0.6, 0.75, 0.9])
    limits = {}
    if mix:   # limits well above the floors: goodputs of the same order, so mixing pays
        ttft = _limit(rng, rows, "ttft_ms", {"none": 0.35, "some": 0.1, "loose": 0.55})
        itl = _limit(rng, rows, "itl_ms", {"none": 0.5, "some": 0.1, "loose": 0.4})
        e2e = _limit(rng, rows, "e2e_ms", {"none": 0.85, "loose": 0.15})
    else:
        ttft = _limit(rng, rows, "ttft_ms", {"none": 0.3, "some": 0.3, "loose": 0.3, "impossible": 0.1})
        itl = _limit(rng, rows, "itl_ms", {"none": 0.45, "some": 0.2, "loose": 0.3, "impossible": 0.05})
        e2e = _limit(rng, rows, "e2e_ms", {"none": 0.85, "some": 0.05, "loose": 0.1})
    for key, v in (("ttft", ttft), ("itl", itl), ("e2e_latency", e2e)):
        if v is not None:
            limits[key] = v
    sla = bf.at_sla(rows, limits, percentile or "p90")
    head = bf.planned_headroom(headroom, limits)
    objective = rng.choice(["tco", "power", "carbon"])
    region = None if mix else rng.choice([None, None, None, *SLA_REGIONS])
    if mix:
        if sla:
            qps = round(bf.planned_capacity(rng.choice(sla), head) * rng.uniform(1.5, 6), 4)
            while bf.grid_size(bf.mixed_bounds(sla, qps, head)) > MIX_GRID_LIMIT:
                qps = round(qps * 0.7, 4)
        else:
            qps = round(rng.uniform(1, 20), 4)
    else:
        qps = round(10 ** rng.uniform(-0.5, 2.7), 4)
    designs = bf.homogeneous_designs(sla, qps, head, limits, region=region)
    mixed = bf.mixed_designs(sla, qps, head, limits) if mix else None
    if mix and len(mixed.cost):
        costs, values = list(mixed.cost), list(mixed.value(objective))
    else:
        costs, values = [d.cost for d in designs], [d.value(objective) for d in designs]
    budget = _budget(rng, costs, {"none": 0.25, "some": 0.2, "binding": 0.4, "below": 0.08, "loose": 0.07}, values)
    time_limit = TINY_TIME if rng.random() < 0.15 else GENEROUS_TIME
    instance = dict(seed=seed, model=model, prompt_len=shape[0], output_len=shape[1], qps=qps,
                    hardware=hardware, precisions=precisions, tp_sizes=tps, batch_sizes=batches, chunk_sizes=chunks,
                    limits_ms=limits, percentile=percentile, objective=objective, budget_usd=budget,
                    headroom=headroom, region=region, time_limit=time_limit)
    return instance, sla, designs, mixed


def run_synthesize(inst, *, allow_mix=False):
    kwargs = dict(qps=inst["qps"], prompt_len=inst["prompt_len"], output_len=inst["output_len"],
                  hardware=inst["hardware"], precisions=inst["precisions"], tp_sizes=inst["tp_sizes"],
                  batch_sizes=inst["batch_sizes"], objective=inst["objective"], budget_usd=inst["budget_usd"],
                  time_limit=inst["time_limit"])
    for key, v in inst["limits_ms"].items():
        kwargs[key] = f"{v!r} ms"
    for key in ("chunk_sizes", "percentile", "headroom"):
        if inst[key] is not None:
            kwargs[key] = inst[key]
    if inst["region"] is not None:
        kwargs["datacenter"] = resolve_region(inst["region"])
    if allow_mix:
        kwargs["allow_mix"] = True
    return synthesize(Models[inst["model"]], **kwargs)


def describe(d: bf.HomogeneousDesign) -> str:
    r = d.row
    return (f"{d.replicas} x {r.hardware} {r.precision} TP{r.tp} batch {r.batch_size} chunk {r.chunk_tokens} "
            f"(goodput {r.goodput_qps:.6g} QPS; ${d.cost:,.2f}, {d.power:.4f} kW, {d.carbon:.4f} t)")


def row_of(c, by_key):
    return by_key.get((c.hardware, c.precision, c.tp, c.pp, c.ep, c.batch_size, c.chunk_tokens))


def check_under_load(f: Findings, inst, row, rate, what: str, limits=None, percentile=None, efficiency=None):
    """The design re-evaluated by LoadedReplicaModel at the load each working replica carries:
    every limited percentile within its limit, stable, in memory."""
    limits = inst["limits_ms"] if limits is None else limits
    lat = bf.loaded_latencies(inst["model"], row, rate, percentile or inst.get("percentile") or "p90",
                              prompt_len=inst["prompt_len"], output_len=inst["output_len"], efficiency=efficiency)
    broken = bf.meets_under_load(lat, limits)
    f.expect(not broken, f"{what} carrying {rate:.6g} QPS per replica (LoadedReplicaModel): {'; '.join(broken)}")
    return lat


def check_goodput_is_tight(f: Findings, inst, row, what: str, limits=None, percentile=None, efficiency=None):
    """Just past the goodput the replica breaks a limit or its queue (LoadedReplicaModel): the
    goodput planned with is the most the SLA allows, not less."""
    limits = inst["limits_ms"] if limits is None else limits
    rate = bf.above_goodput(row)
    lat = bf.loaded_latencies(inst["model"], row, rate, percentile or inst.get("percentile") or "p90",
                              prompt_len=inst["prompt_len"], output_len=inst["output_len"], efficiency=efficiency)
    f.expect(bool(bf.meets_under_load(lat, limits, rel=0.0)),
             f"{what}: at {rate:.9g} QPS per replica, past the goodput {row.goodput_qps:.9g}, every limit still "
             f"holds and the replica is stable (LoadedReplicaModel: {lat})")


def check_sla_best(f: Findings, inst, rows, designs, r):
    """Checks 1-3 on the homogeneous answer ``r.best`` (``rows``: the SLA-applied brute-force rows)."""
    objective, budget = inst["objective"], inst["budget_usd"]
    head = bf.planned_headroom(inst["headroom"], inst["limits_ms"])
    generous = inst["time_limit"] >= 1
    expected = bf.best_homogeneous(designs, objective, budget)
    status = status_of(r.solve)
    f.expect(r.percentile == (inst["percentile"] or "p90"), f"result percentile {r.percentile!r}")
    if r.best is None:
        f.expect(status not in HAS_SOLUTION, f"status {status!r} but no design returned")
        if expected is not None:
            f.expect(status != "infeasible", f"reported infeasible, but {describe(expected)} meets every limit "
                                              f"({objective} {expected.value(objective):.6g})")
            if generous and status != "infeasible":
                f.fail(f"no design ({status}) with a generous time limit; expected {describe(expected)}")
        elif status == "infeasible":
            f.expect(r.explanation is not None, "infeasible without an explanation")
        return
    by_key = {row.key: row for row in rows}
    c = r.best.config
    row = row_of(c, by_key)
    if not f.expect(row is not None, f"design {c.name} is outside the query's grid, does not fit in memory or "
                                     "meets the SLA at no load"):
        return
    f.expect(row.meets(inst["limits_ms"]),
             f"design {c.name} breaks a latency limit alone (forward TTFT {row.ttft_ms:.4f} ms, ITL "
             f"{row.itl_ms:.4f} ms, e2e {row.e2e_ms:.2f} ms; limits {inst['limits_ms']})")
    f.expect(close(c.goodput_qps, row.goodput_qps, 1e-9),
             f"design {c.name} planned at goodput {c.goodput_qps:.9g}, forward {row.goodput_qps:.9g}")
    usable = r.best.replicas * bf.planned_capacity(row, head)
    f.expect(usable >= bf.COVER * inst["qps"],
             f"{r.best.replicas} x {c.name} serve {usable:.6g} QPS at goodput {row.goodput_qps:.6g} x headroom "
             f"{head} < demand {inst['qps']}")
    rate = inst["qps"] / r.best.replicas
    lat = check_under_load(f, inst, row, rate, f"{r.best.replicas} x {c.name}")
    check_goodput_is_tight(f, inst, row, c.name)
    load = r.best.load
    if f.expect(load is not None, "the design reports no latencies under load"):
        f.expect(close(load.qps_per_replica, rate, 1e-9), f"reported load {load.qps_per_replica:.9g} QPS per "
                                                          f"replica, demand / replicas = {rate:.9g}")
        for key in ("ttft", "itl", "e2e_latency"):
            f.expect(close(load.latency_ms(key), lat[key], 1e-6),
                     f"reported {key} under load {load.latency_ms(key):.9g} ms, LoadedReplicaModel {lat[key]:.9g} ms")
    p = bf.replica_price(row, inst["region"])
    fwd = {k: r.best.replicas * p[k] for k in ("cost", "power", "carbon")}
    for k, attr in (("cost", "annual_cost_usd"), ("power", "power_kw"), ("carbon", "annual_carbon_t")):
        f.expect(close(getattr(r.best, attr), fwd[k], 1e-9),
                 f"reported {attr} {getattr(r.best, attr):.9g} != forward {fwd[k]:.9g}")
    if budget is not None:
        f.expect(within(fwd["cost"], budget), f"cost ${fwd['cost']:,.2f} breaks the budget ${budget:,.2f} "
                                              f"(status {status!r})")
    value = fwd[bf.OBJECTIVE_FIELDS[objective]]
    f.expect(status in HAS_SOLUTION, f"a design with status {status!r}")
    if expected is None:
        f.fail(f"returned {r.best.replicas} x {c.name} ({objective} {value:.6g}, status {status!r}) "
               "but no design meets every limit")
        return
    best_value = expected.value(objective)
    if generous or status == "optimal":
        f.expect(close(value, best_value),
                 f"{objective} {value:.9g} ({r.best.replicas} x {c.name}, status {status!r}) != brute-force optimum "
                 f"{best_value:.9g} ({describe(expected)})")
    else:
        f.expect(value >= best_value * (1 - REL),
                 f"feasible {value:.9g} beats the brute-force optimum {best_value:.9g}")
    if r.solve.objective is not None and status in HAS_SOLUTION:
        f.expect(close(r.solve.objective, value),
                 f"solver objective {r.solve.objective:.9g} != design value {value:.9g}")


@pytest.mark.parametrize("seed", range(N_SLA))
def test_sla_synthesis_matches_brute_force(seed):
    inst, rows, designs, _ = sla_instance(seed)
    f = Findings("synthesize", inst)
    r = run_synthesize(inst)
    check_sla_best(f, inst, rows, designs, r)
    f.done()


_NAME = re.compile(r"^(?P<hw>.+) (?P<prec>\S+) TP(?P<tp>\d+)(?: PP(?P<pp>\d+))?(?: EP(?P<ep>\d+))? batch (?P<b>\d+) "
                   r"chunk (?P<c>\d+)$")


def candidate_key(cand: Candidate):
    d = cand.details or {}
    if {"precision", "tp", "batch_size", "chunk_tokens"} <= set(d):
        return (cand.hardware, d["precision"], int(d["tp"]), int(d.get("pp", 1)), int(d.get("ep", 1)),
                int(d["batch_size"]), int(d["chunk_tokens"]))
    m = _NAME.match(cand.name)
    if m is None:
        return None
    return (m["hw"], m["prec"], int(m["tp"]), int(m["pp"] or 1), int(m["ep"] or 1), int(m["b"]), int(m["c"]))


@pytest.mark.parametrize("seed", range(N_MIX))
def test_sla_synthesis_mixed_fleet_matches_brute_force(seed):
    inst, rows, designs, mixed = sla_instance(seed, mix=True)
    f = Findings("synthesize(allow_mix=True)", inst)
    r = run_synthesize(inst, allow_mix=True)
    check_sla_best(f, inst, rows, designs, r)
    objective, budget = inst["objective"], inst["budget_usd"]
    head = bf.planned_headroom(inst["headroom"], inst["limits_ms"])
    generous = inst["time_limit"] >= 1
    values = mixed.value(objective)
    ok = mixed.cost <= budget if budget is not None else values == values
    expected = float(values[ok].min()) if ok.any() else None
    if expected is not None:
        i = int(values[ok].argmin())
        counts = mixed.counts[ok][i]
        expected_text = ", ".join(f"{n} x {row.hardware} {row.precision} b{row.batch_size} chunk {row.chunk_tokens}"
                                  for n, row in zip(counts, mixed.rows) if n) + f" = {objective} {expected:.9g}"
    mix = r.mix
    if mix is None or not mix.solve.has_solution:
        if expected is not None and generous:
            f.fail(f"no mixed fleet returned (mix {None if mix is None else status_of(mix.solve)!r}) though "
                   f"{expected_text} meets every limit")
        f.done()
        return
    status = status_of(mix.solve)
    by_key = {row.key: row for row in rows}
    served_total, cost, fwd_value = 0.0, 0.0, 0.0
    for a in mix.allocations:
        key = candidate_key(a.candidate)
        row = by_key.get(key)
        if not f.expect(row is not None, f"mix uses {a.candidate.name!r}, not a configuration of the query "
                                         "meeting the SLA"):
            continue
        f.expect(row.meets(inst["limits_ms"]), f"mix uses {a.candidate.name} which breaks a latency limit")
        served = sum(a.served_qps.values())
        planned = a.replicas * bf.planned_capacity(row, head)
        f.expect(served <= planned * (1 + 1e-7) + 1e-7,
                 f"mix assigns {served:.6g} QPS to {a.replicas} x {a.candidate.name} "
                 f"(goodput x headroom {planned:.6g})")
        if a.replicas > 0 and served > 0:
            check_under_load(f, inst, row, min(served, planned) / a.replicas, f"mix {a.replicas} x {a.candidate.name}")
        served_total += served
        p = bf.replica_price(row)
        cost += a.replicas * p["cost"]
        fwd_value += a.replicas * p[bf.OBJECTIVE_FIELDS[objective]]
    f.expect(covers(served_total, inst["qps"]), f"mix serves {served_total:.6g} < demand {inst['qps']}")
    if budget is not None:
        f.expect(within(cost, budget), f"mix costs ${cost:,.2f} > budget ${budget:,.2f} (status {status!r})")
    reported = {"tco": mix.total_cost_usd, "power": mix.total_power_kw, "carbon": mix.total_carbon_t}[objective]
    f.expect(close(reported, fwd_value, 1e-9), f"mix reports {objective} {reported:.9g}, forward {fwd_value:.9g}")
    if expected is None:
        f.fail(f"mix returned ({status!r}) but no mixed fleet meets every limit")
    elif generous or status == "optimal":
        f.expect(close(fwd_value, expected), f"mix {objective} {fwd_value:.9g} ({status!r}) != brute-force mixed "
                                             f"optimum {expected_text}")
        if r.best is not None:
            best = getattr(r.best, OBJECTIVE_ATTR[objective])
            f.expect(fwd_value <= best * (1 + REL), f"mix {objective} {fwd_value:.9g} worse than the homogeneous "
                                                    f"{best:.9g}")
    f.done()


# ================================================================================================
# fleet sizing


N_FLEET = 100
FLEET_GRID_LIMIT = 150_000


def _synthetic_candidates(rng, classes):
    cands = []
    for i in range(rng.randint(2, 5)):
        tput = {k: round(rng.uniform(1, 10), 3) for k in classes}
        if len(classes) == 2 and rng.random() < 0.4:
            del tput[rng.choice(classes)]
        cands.append(Candidate(name=f"c{i}", hardware=rng.choice("ABC"), accelerators=rng.choice([1, 1, 2, 4]),
                               throughput_qps=tput, annual_cost_usd=round(rng.uniform(1, 10), 3),
                               power_kw=round(rng.uniform(0.2, 3), 3), annual_carbon_t=round(rng.uniform(0.05, 2), 3)))
    return cands


FLEET_FORWARD_GRID = dict(hardware=("H100", "A100", "L4", "T4"), precisions=("fp16", "int8"), tp=(1, 2),
                          batches=(8, 32, 128))
FLEET_CLASS_SHAPES = {"default": (512, 256), "long": (512, 256), "short": (256, 128)}
FLEET_CHUNKS = (512,)


def _forward_candidates(rng, classes):
    """Candidates from forward-evaluated replicas, each class at DEFAULT_HEADROOM of its stable load
    (what a serving configuration is planned at without a latency limit)."""
    g = FLEET_FORWARD_GRID
    tables = {k: {r.key: r for r in bf.at_sla(bf.replica_table("Llama3_8B", g["hardware"], g["precisions"], g["tp"],
                                                                (1,), g["batches"], FLEET_CHUNKS,
                                                                *FLEET_CLASS_SHAPES[k]), {})}
              for k in classes}
    keys = sorted(set.intersection(*(set(t) for t in tables.values())))
    cands = []
    for key in rng.sample(keys, rng.randint(2, 4)):
        row = tables[classes[0]][key]
        p = bf.replica_price(row)
        name = f"{row.hardware} {row.precision} TP{row.tp} b{row.batch_size}"
        cands.append(Candidate(name=name, hardware=row.hardware, accelerators=row.accelerators,
                               throughput_qps={k: bf.planned_capacity(tables[k][key], DEFAULT_HEADROOM)
                                               for k in classes},
                               annual_cost_usd=p["cost"], power_kw=p["power"], annual_carbon_t=p["carbon"]))
    return cands


def _resources(grid, cands):
    out = {"cost": grid @ np.array([c.annual_cost_usd for c in cands]),
           "power": grid @ np.array([c.power_kw for c in cands]),
           "carbon": grid @ np.array([c.annual_carbon_t for c in cands])}
    for hw in sorted({c.hardware for c in cands}):
        out[hw] = grid @ np.array([c.accelerators if c.hardware == hw else 0 for c in cands])
    return out


def fleet_instance(seed: int):
    rng = random.Random(104729 * (seed + 1))
    source = "forward" if rng.random() < 0.3 else "synthetic"
    objective = "max_throughput" if rng.random() < 0.35 else "min_cost"
    classes = ["default"] if rng.random() < 0.55 else ["short", "long"]
    cands = (_forward_candidates if source == "forward" else _synthetic_candidates)(rng, classes)
    for k in classes:   # every class has a server
        if not any(c.qps(k) > 0 for c in cands):
            c0 = cands[0]
            cands[0] = c0.model_copy(update={"throughput_qps": {**c0.throughput_qps, k: round(rng.uniform(1, 10), 3)}})
    caps = dict(budget=None, power_cap=None, carbon_cap=None, availability=None)
    inst = dict(seed=seed, source=source, objective=objective, classes=classes,
                candidates=[(c.name, c.hardware, c.accelerators, c.throughput_qps, c.annual_cost_usd, c.power_kw,
                             c.annual_carbon_t) for c in cands])
    if objective == "min_cost":
        demand = {}
        for k in classes:
            rates = sorted(c.qps(k) for c in cands if c.qps(k) > 0)
            demand[k] = round(rates[len(rates) // 2] * rng.uniform(0.5, 6), 4)
        while bf.grid_size(bf.fleet_bounds(cands, demand=demand)) > FLEET_GRID_LIMIT:
            demand = {k: round(v * 0.7, 4) for k, v in demand.items()}
        grid = bf.product_grid(bf.fleet_bounds(cands, demand=demand))
        ok = bf.serves(grid, cands, demand)
        res = {k: v[ok] for k, v in _resources(grid, cands).items()}
        feasible = int(ok.sum())
        pick = rng.randrange(feasible) if feasible else None
        inst["demand_qps"] = demand
    else:
        total = sum(c.annual_cost_usd for c in cands) / len(cands)
        budget = round(total * rng.uniform(2, 10), 4)
        while bf.grid_size(bf.fleet_bounds(cands, budget=budget)) > FLEET_GRID_LIMIT:
            budget = round(budget * 0.8, 4)
        caps["budget"] = budget
        shares = {k: round(rng.uniform(0.2, 0.8), 3) for k in classes}
        inst["class_shares"] = shares
        grid = bf.product_grid(bf.fleet_bounds(cands, budget=budget))
        grid = grid[bf.within_caps(grid, cands, budget=budget)]
        res = _resources(grid, cands)
        pick = rng.randrange(len(grid))
    if pick is not None:
        # The design the objective alone would pick; a "binding" cap sits below its use.
        if objective == "min_cost":
            optimum = int(res["cost"].argmin())
        else:
            optimum = int(bf.max_scale(grid, cands, inst["class_shares"]).argmax())

        def cap(key, modes):
            mode = weighted(rng, modes)
            lo, top = float(res[key].min()), float(res[key][optimum])
            if mode == "binding" and lo * 1.0001 < top * 0.9999:
                return round(rng.uniform(lo * 1.0001, top * 0.9999), 4)
            if mode == "below":
                return round(lo * rng.uniform(0.6, 0.99), 4)
            return round(float(res[key][pick]) * rng.uniform(1.0001, 1.15), 4)
        modes = {"some": 0.4, "binding": 0.45, "below": 0.15}
        if objective == "min_cost" and rng.random() < 0.45:
            caps["budget"] = cap("cost", {"some": 0.85, "below": 0.15})
        if rng.random() < 0.4:
            caps["power_cap"] = cap("power", modes)
        if rng.random() < 0.3:
            caps["carbon_cap"] = cap("carbon", modes)
        if rng.random() < 0.3:
            hw = rng.choice(sorted({c.hardware for c in cands}))
            used = int(res[hw][optimum] if rng.random() < 0.5 else res[hw][pick])
            caps["availability"] = {hw: max(0, used + rng.choice([-2, -1, -1, 0, 1, 3]))}
    inst.update(caps)
    inst["time_limit"] = TINY_TIME if rng.random() < 0.25 else GENEROUS_TIME
    return inst, cands


def fleet_expected(inst, cands):
    caps = {k: inst[k] for k in ("budget", "power_cap", "carbon_cap", "availability")}
    if inst["objective"] == "min_cost":
        grid = bf.product_grid(bf.fleet_bounds(cands, demand=inst["demand_qps"], **caps))
        ok = bf.serves(grid, cands, inst["demand_qps"]) & bf.within_caps(grid, cands, **caps)
        if not ok.any():
            return None, None
        cost = _resources(grid[ok], cands)["cost"]
        i = int(cost.argmin())
        return float(cost[i]), grid[ok][i]
    grid = bf.product_grid(bf.fleet_bounds(cands, **caps))
    grid = grid[bf.within_caps(grid, cands, **caps)]
    lam = bf.max_scale(grid, cands, inst["class_shares"])
    i = int(lam.argmax())
    return float(lam[i]), grid[i]


@pytest.mark.parametrize("seed", range(N_FLEET))
def test_fleet_sizing_matches_brute_force(seed):
    inst, cands = fleet_instance(seed)
    f = Findings("size_fleet", inst)
    expected, vector = fleet_expected(inst, cands)
    objective, generous = inst["objective"], inst["time_limit"] >= 1
    kwargs = dict(objective=objective, budget_usd=inst["budget"], power_cap_kw=inst["power_cap"],
                  carbon_cap_t=inst["carbon_cap"], availability=inst["availability"], time_limit=inst["time_limit"])
    if objective == "min_cost":
        demand = inst["demand_qps"]
        kwargs["demand_qps"] = demand["default"] if list(demand) == ["default"] and seed % 2 else demand
    else:
        kwargs["class_shares"] = inst["class_shares"]
    res = size_fleet(cands, **kwargs)
    status = status_of(res.solve)
    vec_text = None if vector is None else dict(zip((c.name for c in cands), map(int, vector)))
    if not res.solve.has_solution:
        f.expect(not res.allocations, f"status {status!r} but allocations returned")
        if expected is not None:
            f.expect(status != "infeasible", f"reported infeasible, but {vec_text} gives {objective} {expected:.9g}")
            if generous and status != "infeasible":
                f.fail(f"no solution ({status}) with a generous time limit; expected {expected:.9g} by {vec_text}")
        else:
            f.expect(status == "infeasible" or not generous, f"infeasible query reported as {status!r}")
            if status == "infeasible":
                f.expect(res.explanation is not None, "infeasible without an explanation")
        f.done()
        return
    by_name = {c.name: c for c in cands}
    classes = inst["classes"]
    served = {k: 0.0 for k in classes}
    totals = {"cost": 0.0, "power": 0.0, "carbon": 0.0, "accelerators": 0}
    per_hw = {}
    for a in res.allocations:
        c = by_name.get(a.candidate.name)
        if not f.expect(c is not None, f"allocation of unknown candidate {a.candidate.name!r}"):
            continue
        f.expect(a.replicas >= 0, f"{a.candidate.name}: negative replicas {a.replicas}")
        load = 0.0
        for k, x in a.served_qps.items():
            f.expect(x >= -1e-7, f"{c.name} serves {x} of {k!r}")
            if c.qps(k) > 0:
                load += x / c.qps(k)
            else:
                f.expect(x <= 1e-7, f"{c.name} serves {x:.6g} QPS of {k!r}, which it cannot serve")
            if k in served:
                served[k] += x
        f.expect(load <= a.replicas * (1 + 1e-7) + 1e-7,
                 f"{c.name}: {a.replicas} replicas carry {load:.6g} replicas' worth of traffic")
        if objective == "max_throughput":
            f.expect(a.replicas - load < 1 - 1e-6,
                     f"{c.name}: {a.replicas} replicas bought, {load:.4f} carry traffic: "
                     f"{a.replicas - math.ceil(load - 1e-9)} idle replica(s) costing "
                     f"${(a.replicas - math.ceil(load - 1e-9)) * c.annual_cost_usd:,.2f}")
        totals["cost"] += a.replicas * c.annual_cost_usd
        totals["power"] += a.replicas * c.power_kw
        totals["carbon"] += a.replicas * c.annual_carbon_t
        totals["accelerators"] += a.replicas * c.accelerators
        per_hw[c.hardware] = per_hw.get(c.hardware, 0) + a.replicas * c.accelerators
    for key, cap in (("cost", inst["budget"]), ("power", inst["power_cap"]), ("carbon", inst["carbon_cap"])):
        if cap is not None:
            f.expect(within(totals[key], cap), f"{key} {totals[key]:.6g} breaks its cap {cap} (status {status!r})")
    for hw, limit in (inst["availability"] or {}).items():
        f.expect(per_hw.get(hw, 0) <= limit, f"{per_hw.get(hw, 0)} {hw} accelerators > {limit} available "
                                             f"(status {status!r})")
    for key, attr in (("cost", "total_cost_usd"), ("power", "total_power_kw"), ("carbon", "total_carbon_t")):
        f.expect(close(getattr(res, attr), totals[key], 1e-9), f"reported {attr} {getattr(res, attr)} != {totals[key]}")
    f.expect(res.total_accelerators == totals["accelerators"], "reported accelerators differ from the allocations")
    f.expect(close(res.total_qps, sum(served.values()), 1e-7), "reported total_qps differs from the allocations")
    if objective == "min_cost":
        for k, d in inst["demand_qps"].items():
            f.expect(covers(served[k], d), f"class {k!r} served {served[k]:.6g} < demand {d} (status {status!r})")
        value = totals["cost"]
    else:
        total = sum(inst["class_shares"].values())
        value = sum(served.values())
        for k, s in inst["class_shares"].items():
            f.expect(abs(served[k] - s / total * value) <= 1e-6 * max(1.0, value),
                     f"class {k!r} served {served[k]:.6g}, not its share {s / total:.3f} of {value:.6g}")
    f.expect(status in HAS_SOLUTION, f"allocations with status {status!r}")
    if expected is None:
        f.fail(f"returned a fleet ({status!r}, cost {totals['cost']:.6g}) but no replica vector meets every limit")
    elif generous or status == "optimal":
        f.expect(close(value, expected), f"{objective} {value:.9g} ({status!r}) != brute force {expected:.9g} "
                                         f"by {vec_text}")
    elif objective == "min_cost":
        f.expect(value >= expected * (1 - REL), f"feasible cost {value} below the optimum {expected}")
    else:
        f.expect(value <= expected * (1 + REL), f"feasible throughput {value} above the optimum {expected}")
    f.done()


# ================================================================================================
# capstone


N_CAPSTONE, N_PARETO = 45, 10
CAPSTONE_GRIDS = {
    "Llama3_8B": dict(hardware=("H100", "A100", "L4"), precisions=("fp16", "int8"), tp_sizes=(1, 2),
                      batch_sizes=(8, 32, 128)),
    "Llama3_70B": dict(hardware=("H100", "MI300X", "A100"), precisions=("fp16", "fp8", "int8"), tp_sizes=(2, 4, 8),
                       batch_sizes=(8, 32)),
}
CAPSTONE_REGIONS = ("US_East", "EU_West", "Quebec", "Iowa", "France", "Poland", "Norway", "Texas",
                    "Quebec_Hydro", "Nordic_Sweden")
CAPSTONE_GRID_LIMIT = 60_000
CAPSTONE_PERCENTILES = ("p90", "p90", "p50", "p99")


def capstone_instance(seed: int, *, pareto: bool = False):
    rng = random.Random((15485863 if pareto else 32452843) * (seed + 1))
    while True:
        model = rng.choice(["Llama3_8B", "Llama3_8B", "Llama3_8B", "Llama3_70B"])
        g = CAPSTONE_GRIDS[model]
        n_regions = rng.choice([1, 2, 2] if pareto else [1, 2, 2, 2, 3])
        regions = rng.sample(CAPSTONE_REGIONS, n_regions)
        min_share = round(rng.uniform(0.05, 1 / n_regions - 0.02) if n_regions > 1 else rng.uniform(0.1, 1), 3)
        base = dict(name=f"seed {seed}", model=model, regions=regions, min_share=min_share,
                    redundancy=rng.choice([0, 1, 1, 2]), hardware=rng.sample(g["hardware"], rng.randint(1, 2)),
                    precisions=rng.sample(g["precisions"], 1 if n_regions == 3 else rng.randint(1, 2)),
                    tp_sizes=sorted(rng.sample(g["tp_sizes"], rng.randint(1, 2))),
                    pp_sizes=[1, 2] if rng.random() < 0.15 else [1],
                    batch_sizes=sorted(rng.sample(g["batch_sizes"], 1 if n_regions == 3 else rng.randint(1, 2))),
                    chunk_sizes=sorted(rng.sample(DEFAULT_CHUNKS, 1 if n_regions == 3 else rng.randint(1, 2))),
                    headroom=rng.choice([None, None, 0.8, 0.7, 0.9]), percentile=rng.choice(CAPSTONE_PERCENTILES),
                    objective=rng.choice(["tco", "carbon"]),
                    annual_budget_usd=None, carbon_cap_t=None, ttft_ms=None, itl_ms=None)
        rows = bf.capstone_region_rows(CapstoneProblem(**base))
        if rows:
            break
    base["ttft_ms"] = _limit(rng, rows, "ttft_ms", {"none": 0.35, "some": 0.25, "loose": 0.3,
                                                    "impossible": 0.0 if pareto else 0.1})
    base["itl_ms"] = _limit(rng, rows, "itl_ms", {"none": 0.55, "some": 0.15, "loose": 0.3})
    probe = CapstoneProblem(**base, qps=1.0)
    meeting = bf.capstone_sla_rows(probe) or bf.at_sla(rows, {})
    usable = sorted(bf.planned_capacity(r, bf.capstone_headroom(probe)) for r in meeting)
    base["qps"] = round(usable[len(usable) // 2] * rng.uniform(0.5, 6) * n_regions, 4)
    while bf.capstone_size(CapstoneProblem(**base)) > CAPSTONE_GRID_LIMIT:
        base["qps"] = round(base["qps"] * 0.7, 4)
    designs = bf.capstone_designs(CapstoneProblem(**base))
    pick = rng.randrange(len(designs.cost)) if len(designs.cost) else None
    if pick is not None:
        mode = weighted(rng, {"none": 0.35, "some": 0.35, "binding": 0.0 if pareto else 0.2,
                              "below": 0.0 if pareto else 0.1})
        if mode in ("some", "binding"):
            base["annual_budget_usd"] = _budget(rng, list(designs.cost), {mode: 1.0},
                                                list(designs.value(base["objective"])))
        elif mode == "below":
            base["annual_budget_usd"] = round(float(designs.cost.min()) * rng.uniform(0.7, 0.999), 2)
        mode = weighted(rng, {"none": 0.5, "some": 0.35, "below": 0.15})
        if mode == "some":
            base["carbon_cap_t"] = round(float(designs.carbon[pick]) * rng.uniform(1.0001, 1.05), 6)
        elif mode == "below":
            base["carbon_cap_t"] = round(float(designs.carbon.min()) * rng.uniform(0.7, 0.999), 6)
    problem = CapstoneProblem(**base)
    time_limit = TINY_TIME if (not pareto and rng.random() < 0.15) else 60.0
    inst = dict(seed=seed, time_limit=time_limit, **{k: v for k, v in base.items() if k != "name"})
    return inst, problem, designs


def check_capstone_design(f: Findings, problem: CapstoneProblem, result, *, carbon_cap=True, label=""):
    """Re-evaluates a capstone design with the forward models; returns its (cost, carbon)."""
    p = problem
    limits = bf.capstone_limits(p)
    head = bf.capstone_headroom(p)
    by_key = {row.key: row for row in bf.capstone_sla_rows(p)}
    load_inst = dict(model=p.model, prompt_len=p.prompt_len, output_len=p.output_len, limits_ms=limits,
                     percentile=p.percentile)
    f.expect(sorted(d.region for d in result.regions) == sorted(p.regions),
             f"{label}regions {[d.region for d in result.regions]} != {p.regions}")
    total_usable = total_served = cost = carbon = 0.0
    for d in result.regions:
        c = d.config
        row = row_of(c, by_key)
        if not f.expect(row is not None, f"{label}{d.region}: {c.name} is outside the grid or memory, or meets "
                                         "the SLA at no load"):
            continue
        f.expect(row.meets(limits), f"{label}{d.region}: {c.name} breaks a latency limit alone (forward TTFT "
                                    f"{row.ttft_ms:.4f} ms, ITL {row.itl_ms:.4f} ms; limits {limits})")
        f.expect(d.replicas >= p.redundancy + 1, f"{label}{d.region}: {d.replicas} replicas < N+k minimum "
                                                 f"{p.redundancy + 1}")
        usable = bf.planned_capacity(row, head) * (d.replicas - p.redundancy)
        f.expect(usable >= bf.COVER * p.min_share * p.qps,
                 f"{label}{d.region}: {d.replicas} x {c.name} with {p.redundancy} down serve {usable:.6g} QPS "
                 f"(goodput {row.goodput_qps:.6g} x headroom {head}) < minimum share {p.min_share * p.qps:.6g}")
        f.expect(d.served_qps <= usable * (1 + 1e-7) + 1e-6,
                 f"{label}{d.region}: assigned {d.served_qps:.6g} QPS > capacity with k down {usable:.6g}")
        working = d.replicas - p.redundancy
        if working > 0 and d.served_qps > 0:
            rate = min(d.served_qps, usable) / working
            lat = check_under_load(f, load_inst, row, rate, f"{label}{d.region}: {d.replicas} x {c.name}",
                                   efficiency=p.efficiency)
            check_goodput_is_tight(f, load_inst, row, f"{label}{d.region}: {c.name}", efficiency=p.efficiency)
            if f.expect(d.load is not None, f"{label}{d.region}: no latencies under load reported"):
                f.expect(close(d.load.qps_per_replica, d.served_qps / working, 1e-9),
                         f"{label}{d.region}: reported load {d.load.qps_per_replica:.9g} QPS per replica != "
                         f"served / working replicas {d.served_qps / working:.9g}")
                for key in limits:
                    f.expect(close(d.load.latency_ms(key), lat[key], 1e-6),
                             f"{label}{d.region}: reported {key} under load {d.load.latency_ms(key):.9g} ms, "
                             f"LoadedReplicaModel {lat[key]:.9g} ms")
        total_usable += usable
        total_served += d.served_qps
        pr = bf.replica_price(row, d.region, p.utilization, p.infrastructure_multiplier)
        cost += d.replicas * pr["cost"]
        carbon += d.replicas * pr["carbon"]
        f.expect(close(d.annual_cost_usd, d.replicas * pr["cost"], 1e-9),
                 f"{label}{d.region}: reported cost {d.annual_cost_usd:.9g} != forward {d.replicas * pr['cost']:.9g}")
        f.expect(close(d.annual_carbon_t, d.replicas * pr["carbon"], 1e-9),
                 f"{label}{d.region}: reported carbon {d.annual_carbon_t:.9g} != forward "
                 f"{d.replicas * pr['carbon']:.9g}")
    f.expect(total_usable >= bf.COVER * p.qps, f"{label}capacity with k down per region {total_usable:.6g} < "
                                               f"demand {p.qps}")
    f.expect(covers(total_served, p.qps, abs_=1e-6), f"{label}assigned {total_served:.6g} QPS < demand {p.qps}")
    if p.annual_budget_usd is not None:
        f.expect(within(cost, p.annual_budget_usd), f"{label}cost ${cost:,.2f} > budget ${p.annual_budget_usd:,.2f}")
    if carbon_cap and p.carbon_cap_t is not None:
        f.expect(within(carbon, p.carbon_cap_t), f"{label}carbon {carbon:.6g} t > cap {p.carbon_cap_t} t")
    f.expect(close(result.annual_cost_usd, cost, 1e-9),
             f"{label}reported cost {result.annual_cost_usd:.9g} != {cost:.9g}")
    f.expect(close(result.annual_carbon_t, carbon, 1e-9),
             f"{label}reported carbon {result.annual_carbon_t:.9g} != {carbon:.9g}")
    return cost, carbon


def _capped(designs, problem):
    ok = designs.cost == designs.cost
    if problem.annual_budget_usd is not None:
        ok &= designs.cost <= problem.annual_budget_usd
    if problem.carbon_cap_t is not None:
        ok &= designs.carbon <= problem.carbon_cap_t
    return ok


@pytest.mark.parametrize("seed", range(N_CAPSTONE))
def test_capstone_matches_brute_force(seed):
    inst, problem, designs = capstone_instance(seed)
    f = Findings("solve_capstone", inst)
    ok = _capped(designs, problem)
    values = designs.value(problem.objective)
    expected = None
    if ok.any():
        idx = [int(i) for i in ok.nonzero()[0]]
        best = min(idx, key=lambda i: values[i])
        expected = float(values[best])
        expected_text = designs.describe(best)
    generous = inst["time_limit"] >= 1
    kwargs = dict(time_limit=inst["time_limit"])
    if seed % 2 == 0:
        kwargs["candidates"] = region_candidates(problem)
    r = solve_capstone(problem, **kwargs)
    status = status_of(r.solve)
    if not r.regions:
        f.expect(status not in HAS_SOLUTION, f"status {status!r} but no design")
        if expected is not None:
            f.expect(status != "infeasible", f"reported infeasible, but {expected_text} meets every limit")
            if generous and status != "infeasible":
                f.fail(f"no design ({status}) with a generous time limit; expected {expected_text}")
        else:
            f.expect(status == "infeasible" or not generous, f"infeasible problem reported as {status!r}")
            if status == "infeasible":
                f.expect(r.explanation is not None, "infeasible without an explanation")
        f.done()
        return
    cost, carbon = check_capstone_design(f, problem, r)
    value = cost if problem.objective == "tco" else carbon
    f.expect(status in HAS_SOLUTION, f"a design with status {status!r}")
    if expected is None:
        f.fail(f"returned a design ({status!r}, ${cost:,.2f}, {carbon:.4f} t) but none meets every limit")
    elif generous or status == "optimal":
        f.expect(close(value, expected), f"{problem.objective} {value:.9g} ({status!r}) != brute force "
                                         f"{expected:.9g}: {expected_text}")
    else:
        f.expect(value >= expected * (1 - REL), f"feasible {value} beats the optimum {expected}")
    f.done()


@pytest.mark.parametrize("seed", range(N_PARETO))
def test_pareto_front_matches_brute_force(seed):
    inst, problem, designs = capstone_instance(seed, pareto=True)
    rng = random.Random(seed)
    points = rng.choice([3, 4, 6])
    inst["points"] = points
    f = Findings("pareto_front", inst)
    ok = designs.cost == designs.cost
    if problem.annual_budget_usd is not None:
        ok &= designs.cost <= problem.annual_budget_usd
    cost, carbon = designs.cost[ok], designs.carbon[ok]
    kwargs = dict(points=points)
    if seed % 2:
        kwargs["candidates"] = region_candidates(problem)
    if not ok.any():
        with pytest.raises(InputError):
            pareto_front(problem, **kwargs)
        return
    front = pareto_front(problem, **kwargs)
    f.expect(len(front.points) >= 1, "empty front for a feasible problem")
    span = float(cost.max() - cost.min())
    prev = None
    for j, pt in enumerate(front.points):
        label = f"point {j} (${pt.annual_cost_usd:,.2f}, {pt.secondary:.6g} t): "
        fc, fcarb = check_capstone_design(f, problem, pt.design, carbon_cap=False, label=label)
        f.expect(close(pt.annual_cost_usd, fc, 1e-9) and close(pt.secondary, fcarb, 1e-9),
                 f"{label}differs from its design re-evaluated (${fc:,.2f}, {fcarb:.6g} t)")
        tol = REL * max(abs(pt.annual_cost_usd), span)
        at_level = cost[carbon <= pt.secondary * (1 + 1e-9) + 1e-12]
        f.expect(len(at_level) > 0 and abs(float(at_level.min()) - pt.annual_cost_usd) <= tol,
                 f"{label}brute-force minimum cost at this carbon level is "
                 f"{float(at_level.min()) if len(at_level) else float('nan'):,.6f}")
        cheaper = carbon[cost <= pt.annual_cost_usd + tol]
        f.expect(len(cheaper) > 0 and float(cheaper.min()) >= pt.secondary * (1 - REL) - 1e-9,
                 f"{label}dominated: a design costs no more with {float(cheaper.min()):.6g} t")
        if prev is not None:
            f.expect(pt.annual_cost_usd > prev.annual_cost_usd and pt.secondary < prev.secondary,
                     f"{label}not ordered/non-dominated after the previous point")
        prev = pt
    if front.points:
        f.expect(abs(min(p.annual_cost_usd for p in front.points) - float(cost.min())) <= REL * float(cost.min()),
                 f"front's cheapest ${min(p.annual_cost_usd for p in front.points):,.2f} != brute-force cheapest "
                 f"${float(cost.min()):,.2f}")
        f.expect(abs(min(p.secondary for p in front.points) - float(carbon.min())) <= REL * float(carbon.min()) + 1e-9,
                 f"front's lowest carbon {min(p.secondary for p in front.points):.9g} != brute-force lowest "
                 f"{float(carbon.min()):.9g}")
    f.done()


# ================================================================================================
# parallelism


N_PARALLELISM = 20


def parallelism_instance(seed: int):
    rng = random.Random(49979687 * (seed + 1))
    inst = dict(seed=seed, model=rng.choice(["Llama3_8B", "Llama3_8B", "Llama3_70B", "BERT_Base"]),
                node=rng.choice(["DGX_H100", "DGX_A100"]), nodes=rng.choice([1, 1, 2, 4]),
                batch_size=rng.choice([8, 16, 24, 37, 64]), seq_len=rng.choice([1024, 2048]),
                zero_stage=rng.choice([0, 1, 3]), precision=rng.choice(["fp16", "bf16"]),
                max_tp=rng.choice([None, None, 2, 4]), objective=rng.choice(["step_time", "step_time", "mfu"]))
    fleet = Fleet(name=f"{inst['nodes']}x{inst['node']}", node=Nodes[inst["node"]], count=inst["nodes"],
                  fabric=Fabrics.InfiniBand_NDR)
    return inst, fleet


@pytest.mark.parametrize("seed", range(N_PARALLELISM))
def test_parallelism_matches_brute_force(seed):
    inst, fleet = parallelism_instance(seed)
    f = Findings("ParallelismOptimizer", inst)
    common = dict(seq_len=inst["seq_len"], precision=inst["precision"], zero_stage=inst["zero_stage"],
                  max_tp=inst["max_tp"])
    points = bf.parallelism_points(inst["model"], fleet, inst["batch_size"], **common)
    feasible = [p for p in points if p["feasible"]]
    mfu = inst["objective"] == "mfu"
    best = (max(feasible, key=lambda p: p["mfu"]) if mfu else min(feasible, key=lambda p: p["step_time"])) \
        if feasible else None
    space = {(p["tp"], p["pp"], p["microbatch_size"]): p for p in points}
    for backend in ("highs", "exhaustive"):
        r = ParallelismOptimizer(backend=backend).solve(Models[inst["model"]], fleet, inst["batch_size"],
                                                        objective=inst["objective"], **common)
        tag = f"[{backend}] "
        if best is None:
            f.expect(r.status == "infeasible" and r.best_config is None,
                     f"{tag}no split fits in memory, but status {r.status!r} with {r.best_config}")
            continue
        if not f.expect(r.best_config is not None and r.status == "optimal",
                        f"{tag}status {r.status!r} without a split; brute force: {best}"):
            continue
        cfg = r.best_config
        key = (cfg["tp"], cfg["pp"], cfg["microbatch_size"])
        f.expect(key in space, f"{tag}{cfg} is not a valid split of this fleet and batch")
        fwd = DistributedModel.solve(Models[inst["model"]], fleet, batch_size=inst["batch_size"], tp_size=cfg["tp"],
                                     pp_size=cfg["pp"], microbatch_size=cfg["microbatch_size"],
                                     seq_len=inst["seq_len"], precision=inst["precision"],
                                     zero_stage=inst["zero_stage"])
        f.expect(fwd.feasible, f"{tag}{cfg} does not fit in memory: {fwd.memory_per_gpu:.4g}")
        f.expect(cfg["tp"] * cfg["pp"] * cfg["dp"] == fleet.total_accelerators, f"{tag}{cfg} does not use the fleet")
        if inst["max_tp"] is not None:
            f.expect(cfg["tp"] <= inst["max_tp"], f"{tag}TP {cfg['tp']} > max_tp {inst['max_tp']}")
        if mfu:
            f.expect(close(fwd.mfu, best["mfu"], 1e-9), f"{tag}MFU {fwd.mfu:.9g} of {cfg} != brute-force best "
                                                        f"{best['mfu']:.9g} {best}")
        else:
            got = fwd.step_latency_total.m_as("s")
            f.expect(close(got, best["step_time"], 1e-9), f"{tag}step {got:.9g} s of {cfg} != brute-force best "
                                                          f"{best['step_time']:.9g} s {best}")
        solver = getattr(r, "solver", None)
        if backend == "highs":
            f.expect(solver is not None and status_of(solver) == "optimal",
                     f"{tag}HiGHS status {None if solver is None else status_of(solver)!r}")
    f.done()
