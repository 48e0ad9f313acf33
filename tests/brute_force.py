"""Exhaustive reference answers for the optimization formulations.

Everything here is computed from the forward models and plain enumeration: no dominance pruning,
no solver, no MILP. A replica's zero-load latencies, full-load capacity, memory and replica costs
come from ``serving_grid.serving_config``, one (hardware, precision, TP, PP, batch, chunk) point at
a time; the yearly cost, power and carbon of an accelerator from the economics and sustainability
sheets (``accelerator_year``); training splits from ``DistributedModel.solve``.

Under a latency SLA a replica is sized at its goodput: the largest arrival rate per replica at which
every limited percentile of the latencies a loaded replica shows (the ``serving_load`` sheet) holds.
That forward model of a loaded replica is ``formulations.goodput.apply_sla``: it evaluates each
configuration on its own (forward evaluation with a bisection on the load, not an optimization), and
it is the only formulation-side code used here. :func:`loaded_latencies` re-evaluates a chosen
design with the separate ``LoadedReplicaModel`` solver, at its load and just past its goodput.
``tests/test_formulations_property.py`` compares every formulation with these answers.
"""
from __future__ import annotations

import dataclasses
import itertools
import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Optional

import numpy as np

from mlsysim_opt import DistributedModel, Hardware, Models
from mlsysim_opt.catalog import default_node_for
from mlsysim_opt.errors import InputError
from mlsysim_opt.formulations.capstone import resolve_region
from mlsysim_opt.formulations.goodput import apply_sla
from mlsysim_opt.formulations.serving_grid import DEFAULT_HEADROOM, serving_config
from mlsysim_opt.formulations.sla_synthesis import accelerator_year
from mlsysim_opt.solvers.loaded import LoadedReplicaModel

OBJECTIVE_FIELDS = {"tco": "cost", "power": "power", "carbon": "carbon"}
COVER = 1.0 - 1e-12
"""Capacity covers a demand when capacity >= COVER * demand (float noise only)."""
MAX_REPLICAS = 1e9
"""Largest replica count a formulation counts (beyond it a MILP's integrality tolerance cannot tell
n from n + 1, and the formulations refuse to count): a design needing more is not a design."""
LATENCY_KEYS = ("ttft", "itl", "e2e_latency")


# ----------------------------------------------------------------------------------------------
# one replica, forward


@dataclass(frozen=True)
class Replica:
    """One serving configuration evaluated forward (per replica, no headroom). Latencies are those
    of a request alone (zero load); ``goodput_qps`` is set by :func:`at_sla` for one SLA."""

    hardware: str            # the registry record's full name
    precision: str
    tp: int
    pp: int
    batch_size: int
    chunk_tokens: int
    ttft_ms: float           # one request's TTFT alone
    itl_ms: float            # the decode step of one request alone
    e2e_ms: float            # ttft_ms + output tokens x itl_ms
    capacity_qps: float      # full-batch capacity
    memory_utilization: float
    goodput_qps: Optional[float] = None
    percentile: Optional[str] = None
    ep: int = 1              # expert-parallel groups (a mixture of experts)
    config: object = dataclasses.field(default=None, compare=False, hash=False, repr=False)
    """The forward-evaluated ServingConfig (its replica costs feed the loaded-replica model)."""

    @property
    def accelerators(self) -> int:
        return self.tp * self.pp * self.ep

    @property
    def key(self) -> tuple:
        return (self.hardware, self.precision, self.tp, self.pp, self.ep, self.batch_size, self.chunk_tokens)

    def latency(self, key: str) -> float:
        return {"ttft": self.ttft_ms, "itl": self.itl_ms, "e2e_latency": self.e2e_ms}[key]

    def meets(self, limits: dict) -> bool:
        """Alone within every limit, and (once an SLA is applied) a positive goodput under it."""
        return all(self.latency(k) <= v for k, v in limits.items()) and (
            self.goodput_qps is None or self.goodput_qps > 0)


def hardware_name(name: str) -> str:
    return Hardware[name].name


@lru_cache(maxsize=None)
def replica_point(model: str, hardware: str, precision: str, tp: int, pp: int, batch_size: int, chunk_tokens: int,
                  prompt_len: int, output_len: int, efficiency: float | None = None, ep: int = 1) -> Optional[Replica]:
    """One point evaluated forward; None when the TP x PP split does not fit one node or the heads
    (a latent KV cache, MLA, is not split by heads), EP does not divide the experts, the precision
    has no compute path, or the replica does not fit in memory."""
    wl, hw = Models[model], Hardware[hardware]
    kv_split = wl.latent_kv_dim() > 0 or wl.n_kv_heads % tp == 0
    if tp * pp > default_node_for(hw).accelerators_per_node or wl.heads % tp or not kv_split \
            or pp > wl.layers or (ep > 1 and (wl.experts or 1) % ep):
        return None
    try:
        c = serving_config(wl, hw, precision=precision, tp=tp, pp=pp, batch_size=batch_size, prompt_len=prompt_len,
                           output_len=output_len, efficiency=efficiency, chunk_tokens=chunk_tokens, ep=ep)
    except InputError:
        return None
    if not c.memory_utilization <= 1.0:
        return None
    return Replica(hardware=hw.name, precision=precision, tp=tp, pp=pp, ep=ep, batch_size=batch_size,
                   chunk_tokens=chunk_tokens, ttft_ms=c.ttft_ms, itl_ms=c.itl_alone_ms,
                   e2e_ms=c.ttft_ms + output_len * c.itl_alone_ms, capacity_qps=c.capacity_qps,
                   memory_utilization=c.memory_utilization, config=c)


@lru_cache(maxsize=None)
def replica_table(model: str, hardware: tuple, precisions: tuple, tp_sizes: tuple, pp_sizes: tuple,
                  batch_sizes: tuple, chunk_sizes: tuple, prompt_len: int, output_len: int, efficiency: float | None = None
                  ) -> tuple[Replica, ...]:
    """Every (hardware, precision, TP, PP, EP, batch, chunk) point whose TP x PP split fits in one node
    and whose replica fits in memory, evaluated one at a time. EP: 1, 2 and 4 for a mixture of
    experts (synthesis's default), 1 for a dense model."""
    rows = []
    eps = (1, 2, 4) if Models[model].is_moe else (1,)
    for h in hardware:
        for prec, tp, pp, ep, b, chunk in itertools.product(precisions, tp_sizes, pp_sizes, eps, batch_sizes,
                                                            chunk_sizes):
            row = replica_point(model, h, prec, tp, pp, b, chunk, prompt_len, output_len, efficiency, ep)
            if row is not None:
                rows.append(row)
    return tuple(rows)


@lru_cache(maxsize=4096)
def _at_sla(rows: tuple, limits: tuple, percentile) -> tuple[Replica, ...]:
    if not rows:
        return ()
    configs = apply_sla([r.config for r in rows], dict(limits), percentile)
    by_key = {(c.hardware, c.precision, c.tp, c.pp, c.ep, c.batch_size, c.chunk_tokens): c for c in configs}
    out = []
    for r in rows:
        c = by_key.get(r.key)
        if c is not None:
            out.append(dataclasses.replace(r, goodput_qps=float(c.goodput_qps), percentile=c.percentile, config=c))
    return tuple(out)


def at_sla(rows, limits: dict, percentile="p90") -> tuple[Replica, ...]:
    """The rows meeting the latency limits (ms, at ``percentile``) at some load, each with its
    goodput: the most requests per second one replica carries within them. Without limits the
    goodput is (just below) the replica's stable load."""
    out = _at_sla(tuple(rows), tuple(sorted(limits.items())), percentile)
    return tuple(r for r in out if r.meets(limits))


def planned_headroom(headroom: Optional[float], limits: dict) -> float:
    """The margin below the goodput replicas are planned at: as given; else none under a latency
    limit (the SLA sets the load) and DEFAULT_HEADROOM of the stable load without one."""
    if headroom is not None:
        return headroom
    return 1.0 if limits else DEFAULT_HEADROOM


# ----------------------------------------------------------------------------------------------
# a chosen design under its load, through the separate loaded-replica solver


def loaded_latencies(model: str, row: Replica, rate: float, percentile="p90", *, prompt_len: int, output_len: int,
                     efficiency: float | None = None) -> dict:
    """TTFT, ITL and end-to-end latency (ms, at ``percentile``) of one replica of ``row`` carrying
    ``rate`` requests per second (LoadedReplicaModel), whether it is stable and fits in memory."""
    r = LoadedReplicaModel().solve(Models[model], Hardware[row.hardware], arrival_rate=rate, prompt_len=prompt_len,
                                   output_len=output_len, batch_size=row.batch_size,
                                   prefill_chunk_tokens=row.chunk_tokens, precision=row.precision, tp=row.tp,
                                   pp=row.pp, ep=row.ep, efficiency=efficiency)
    level = percentile or "p90"
    ttft, itl = r.ttft(level).m_as("ms"), r.itl(level).m_as("ms")
    return {"ttft": ttft, "itl": itl, "e2e_latency": ttft + output_len * r.itl("mean").m_as("ms"),
            "stable": bool(r.stable), "fits": bool(r.feasible), "utilization": float(r.utilization)}


def meets_under_load(lat: dict, limits: dict, rel: float = 1e-6) -> list[str]:
    """The limits ``lat`` (from :func:`loaded_latencies`) breaks, as text (empty: none)."""
    broken = [f"{k} {lat[k]:.6g} ms > {v:.6g} ms" for k, v in limits.items() if not lat[k] <= v * (1 + rel) + 1e-9]
    if not lat["stable"]:
        broken.append(f"unstable (utilization {lat['utilization']:.4g})")
    if not lat["fits"]:
        broken.append("does not fit in memory")
    return broken


def above_goodput(row: Replica) -> float:
    """A load just past ``row``'s goodput: beyond the resolution the goodput is found to (a
    millionth of the full-batch capacity, which bounds the stable load)."""
    return row.goodput_qps * (1 + 1e-9) + 2e-6 * row.capacity_qps


@lru_cache(maxsize=None)
def price(hardware: str, region: Optional[str] = None, utilization: float = 0.6,
          infrastructure_multiplier: float = 1.0) -> tuple[float, float, float]:
    """(annual cost USD, kW, annual tCO2e) of ONE accelerator, at ``region``'s grid (None: default)."""
    dc = None if region is None else resolve_region(region)
    return tuple(float(v) for v in accelerator_year(Hardware[hardware], datacenter=dc, utilization=utilization,
                                                    infrastructure_multiplier=infrastructure_multiplier))


def replica_price(row: Replica, region=None, utilization=0.6, infrastructure_multiplier=1.0) -> dict:
    cost, power, carbon = price(row.hardware, region, utilization, infrastructure_multiplier)
    a = row.accelerators
    return {"cost": cost * a, "power": power * a, "carbon": carbon * a}


def replicas_to_cover(demand: float, capacity: float, minimum: int = 1) -> int:
    """Smallest n >= minimum with n * capacity covering ``demand``."""
    n = max(minimum, math.ceil(demand / capacity))
    while n > minimum and (n - 1) * capacity >= COVER * demand:
        n -= 1
    while n * capacity < COVER * demand:
        n += 1
    return n


def planned_capacity(row: Replica, headroom: float) -> float:
    """What one replica of an SLA-applied row is planned to carry: its goodput times the headroom."""
    assert row.goodput_qps is not None, "apply the SLA first (at_sla)"
    return row.goodput_qps * headroom


# ----------------------------------------------------------------------------------------------
# SLA synthesis: one configuration, replicated


@dataclass(frozen=True)
class HomogeneousDesign:
    row: Replica
    replicas: int
    cost: float
    power: float
    carbon: float

    def value(self, objective: str) -> float:
        return getattr(self, OBJECTIVE_FIELDS[objective])


def homogeneous_designs(rows, qps: float, headroom: float, limits: dict, *, region=None, utilization=0.6,
                        infrastructure_multiplier=1.0, spares: int = 0) -> list[HomogeneousDesign]:
    """For every SLA-applied configuration (:func:`at_sla`) meeting the latency limits, the fewest
    replicas serving ``qps`` at ``headroom`` of their goodput, plus ``spares``."""
    out = []
    for row in rows:
        if not row.meets(limits):
            continue
        n = replicas_to_cover(qps, planned_capacity(row, headroom)) + spares
        if n > MAX_REPLICAS:
            continue
        p = replica_price(row, region, utilization, infrastructure_multiplier)
        out.append(HomogeneousDesign(row, n, n * p["cost"], n * p["power"], n * p["carbon"]))
    return out


def best_homogeneous(designs, objective: str, budget: Optional[float]) -> Optional[HomogeneousDesign]:
    ok = [d for d in designs if budget is None or d.cost <= budget]
    return min(ok, key=lambda d: d.value(objective)) if ok else None


# ----------------------------------------------------------------------------------------------
# integer vectors


def product_grid(bounds, lower=None) -> np.ndarray:
    """Every integer vector with lower_c <= n_c <= bounds_c, one per row."""
    lower = lower or [0] * len(bounds)
    axes = [np.arange(lo, hi + 1) for lo, hi in zip(lower, bounds)]
    if any(len(a) == 0 for a in axes):
        return np.zeros((0, len(bounds)), dtype=np.int64)
    mesh = np.meshgrid(*axes, indexing="ij")
    return np.stack([m.ravel() for m in mesh], axis=1).astype(np.int64)


def grid_size(bounds, lower=None) -> int:
    lower = lower or [0] * len(bounds)
    return math.prod(max(0, hi - lo + 1) for lo, hi in zip(lower, bounds))


@dataclass
class MixedDesigns:
    """Every mixed fleet (replica vector) serving ``qps``; one row per vector."""

    rows: list
    counts: np.ndarray
    cost: np.ndarray
    power: np.ndarray
    carbon: np.ndarray

    def value(self, objective: str) -> np.ndarray:
        return getattr(self, OBJECTIVE_FIELDS[objective])


def mixed_bounds(rows, qps, headroom) -> list[int]:
    return [replicas_to_cover(qps, planned_capacity(r, headroom)) for r in rows]


def mixed_designs(rows, qps: float, headroom: float, limits: dict, *, region=None, utilization=0.6) -> MixedDesigns:
    """Replica vectors over the SLA-applied configurations meeting the limits with sum n_c q_c >= qps
    (q_c: goodput x headroom); n_c up to what configuration c alone would need (more never helps a
    non-negative objective)."""
    rows = [r for r in rows if r.meets(limits)]
    cap = np.array([planned_capacity(r, headroom) for r in rows])
    grid = product_grid(mixed_bounds(rows, qps, headroom))
    grid = grid[grid @ cap >= COVER * qps]
    prices = [replica_price(r, region, utilization) for r in rows]
    vec = {k: np.array([p[k] for p in prices]) for k in ("cost", "power", "carbon")}
    return MixedDesigns(rows, grid, grid @ vec["cost"], grid @ vec["power"], grid @ vec["carbon"])


# ----------------------------------------------------------------------------------------------
# fleet sizing over Candidate records


def _qps(c, k) -> float:
    return float(c.throughput_qps.get(k, 0.0))


def fleet_bounds(cands, *, demand=None, budget=None, power_cap=None, carbon_cap=None, availability=None):
    """Upper bounds on replicas of each candidate: every feasible vector (min cost: every vector
    worth considering) lies below them."""
    out = []
    for c in cands:
        b = []
        if demand is not None:
            b.append(sum(math.ceil(d / _qps(c, k)) for k, d in demand.items() if _qps(c, k) > 0))
        for cap, use in ((budget, c.annual_cost_usd), (power_cap, c.power_kw), (carbon_cap, c.annual_carbon_t)):
            if cap is not None and use > 0:
                b.append(math.floor(cap / use))
        if availability and c.hardware in availability:
            b.append(availability[c.hardware] // c.accelerators)
        out.append(max(0, min(b)) if b else None)
    return out


def within_caps(grid, cands, *, budget=None, power_cap=None, carbon_cap=None, availability=None):
    ok = np.ones(len(grid), dtype=bool)
    for cap, attr in ((budget, "annual_cost_usd"), (power_cap, "power_kw"), (carbon_cap, "annual_carbon_t")):
        if cap is not None:
            ok &= grid @ np.array([getattr(c, attr) for c in cands]) <= cap
    for hw, limit in (availability or {}).items():
        ok &= grid @ np.array([c.accelerators if c.hardware == hw else 0 for c in cands]) <= limit
    return ok


def _class_order(cands, a, b):
    """Candidates by lost class-b capacity per unit of class-a served, smallest first."""
    def ratio(c):
        qa, qb = _qps(c, a), _qps(c, b)
        return math.inf if qa <= 0 else qb / qa
    return sorted(range(len(cands)), key=lambda i: ratio(cands[i]))


def _best_b(grid, cands, a, b, served_a):
    """The most class-b traffic the vectors can serve while serving ``served_a`` of class a (an
    array; -inf where class a alone is too much). Fractional covering: class a goes first to the
    replicas that give up the least class-b capacity per request (the exact LP optimum)."""
    qa = np.array([_qps(c, a) for c in cands])
    qb = np.array([_qps(c, b) for c in cands])
    remaining = np.array(served_a, dtype=float, copy=True)
    b_total = grid @ qb
    lost = np.zeros(len(grid))
    for i in _class_order(cands, a, b):
        if qa[i] <= 0:
            continue
        take = np.minimum(remaining, grid[:, i] * qa[i])
        lost += take * (qb[i] / qa[i])
        remaining = remaining - take
    return np.where(remaining > 1e-12 * np.maximum(1.0, served_a), -np.inf, b_total - lost)


def serves(grid, cands, demand: dict) -> np.ndarray:
    """Which replica vectors can serve ``demand`` (one or two request classes, split freely)."""
    classes = list(demand)
    if len(classes) == 1:
        k = classes[0]
        return grid @ np.array([_qps(c, k) for c in cands]) >= COVER * demand[k]
    if len(classes) != 2:
        raise ValueError("the reference handles one or two request classes")
    a, b = classes
    return _best_b(grid, cands, a, b, np.full(len(grid), float(demand[a]))) >= COVER * demand[b]


def max_scale(grid, cands, shares: dict) -> np.ndarray:
    """The largest lambda each vector serves with class k at shares[k] * lambda (shares normalized)."""
    total = sum(shares.values())
    s = {k: v / total for k, v in shares.items()}
    classes = list(s)
    if len(classes) == 1:
        k = classes[0]
        return grid @ np.array([_qps(c, k) for c in cands]) / s[k]
    a, b = classes
    hi = np.min([grid @ np.array([_qps(c, k) for c in cands]) / s[k] for k in classes if s[k] > 0], axis=0)
    lo = np.zeros(len(grid))
    for _ in range(200):
        mid = (lo + hi) / 2
        ok = _best_b(grid, cands, a, b, s[a] * mid) >= s[b] * mid
        lo, hi = np.where(ok, mid, lo), np.where(ok, hi, mid)
    return lo


# ----------------------------------------------------------------------------------------------
# capstone: one configuration and a replica count per region


@dataclass
class CapstoneDesigns:
    """Every design meeting the SLA, the minimum shares, the demand and N+k (caps not applied)."""

    regions: list
    options: dict             # region -> list of (Replica, replicas, usable QPS, price dict per replica)
    choice: np.ndarray        # [design, region] -> index into options[region]
    cost: np.ndarray
    carbon: np.ndarray
    power: np.ndarray

    def value(self, objective: str) -> np.ndarray:
        return self.cost if objective == "tco" else self.carbon

    def describe(self, i: int) -> str:
        parts = []
        for j, r in enumerate(self.regions):
            row, n, usable, _ = self.options[r][self.choice[i, j]]
            parts.append(f"{r}: {n} x {row.hardware} {row.precision} TP{row.tp} PP{row.pp} b{row.batch_size} "
                         f"chunk {row.chunk_tokens} ({usable:.2f} QPS with k down)")
        return "; ".join(parts) + f" -> ${self.cost[i]:,.2f}, {self.carbon[i]:.4f} t"


def capstone_limits(problem) -> dict:
    return {k: v for k, v in (("ttft", problem.ttft_ms), ("itl", problem.itl_ms)) if v is not None}


def capstone_region_rows(problem) -> tuple[Replica, ...]:
    """Every memory-feasible point of the problem's grid, unpriced and before the SLA."""
    hardware = tuple(problem.hardware) if problem.hardware else ("H100", "A100", "L4")
    return replica_table(problem.model, hardware, tuple(problem.precisions), tuple(problem.tp_sizes),
                         tuple(problem.pp_sizes), tuple(problem.batch_sizes), tuple(problem.chunk_sizes),
                         problem.prompt_len, problem.output_len, problem.efficiency)


def capstone_sla_rows(problem) -> tuple[Replica, ...]:
    """The points meeting the problem's latency limits at some load, each with its goodput."""
    return at_sla(capstone_region_rows(problem), capstone_limits(problem), problem.percentile)


def capstone_headroom(problem) -> float:
    return planned_headroom(problem.headroom, capstone_limits(problem))


def capstone_options(problem) -> dict:
    p = problem
    k = p.redundancy
    regions = list(p.regions)
    max_share = 1.0 - (len(regions) - 1) * p.min_share
    rows = capstone_sla_rows(p)
    head = capstone_headroom(p)
    options = {}
    for region in regions:
        opts = []
        for row in rows:
            usable1 = planned_capacity(row, head)
            pr = replica_price(row, region, p.utilization, p.infrastructure_multiplier)
            lo = k + replicas_to_cover(p.min_share * p.qps, usable1) if p.min_share > 0 else k + 1
            hi = k + replicas_to_cover(max_share * p.qps, usable1)
            for n in range(lo, hi + 1):
                opts.append((row, n, usable1 * (n - k), pr))
        options[region] = opts
    return options


def capstone_size(problem) -> int:
    return math.prod(len(v) for v in capstone_options(problem).values())


def capstone_designs(problem) -> CapstoneDesigns:
    p = problem
    options = capstone_options(p)
    regions = list(p.regions)
    grid = product_grid([len(options[r]) - 1 for r in regions])
    if any(not options[r] for r in regions):
        grid = np.zeros((0, len(regions)), dtype=np.int64)

    usable = np.zeros(len(grid))
    cost, carbon, power = np.zeros(len(grid)), np.zeros(len(grid)), np.zeros(len(grid))
    share_ok = np.ones(len(grid), dtype=bool)
    for j, r in enumerate(regions):
        u = np.array([o[2] for o in options[r]])[grid[:, j]] if len(grid) else np.zeros(0)
        usable += u
        share_ok &= u >= COVER * p.min_share * p.qps
        for arr, key in ((cost, "cost"), (carbon, "carbon"), (power, "power")):
            arr += np.array([o[3][key] * o[1] for o in options[r]])[grid[:, j]] if len(grid) else 0
    ok = share_ok & (usable >= COVER * p.qps)
    return CapstoneDesigns(regions, options, grid[ok], cost[ok], carbon[ok], power[ok])


# ----------------------------------------------------------------------------------------------
# parallelism: every TP x PP x micro-batch split, one DistributedModel.solve each


def _powers_of_two(limit):
    k = 1
    while k <= limit:
        yield k
        k *= 2


def parallelism_points(model, fleet, batch_size, *, seq_len=2048, precision="fp16", efficiency=None,
                       zero_stage=0, max_tp=None, max_pp=None) -> list[dict]:
    """Every split: TP a power of two up to max_tp (default: a node) dividing the accelerators and
    the heads, PP a divisor of the rest up to the layers, DP the remainder, and EVERY micro-batch
    size from 1 to the sequences of one DP rank."""
    wl = Models[model] if isinstance(model, str) else model
    n = fleet.total_accelerators
    tp_cap = max_tp or fleet.node.accelerators_per_node
    pp_cap = min(wl.layers, max_pp or wl.layers)
    out = []
    for tp in _powers_of_two(tp_cap):
        if n % tp or wl.heads % tp:
            continue
        for pp in range(1, n // tp + 1):
            if (n // tp) % pp or pp > pp_cap:
                continue
            dp = n // (tp * pp)
            local = -(-batch_size // dp)
            for mu in range(1, local + 1):
                r = DistributedModel.solve(wl, fleet, batch_size=batch_size, seq_len=seq_len, tp_size=tp,
                                           pp_size=pp, microbatch_size=mu, precision=precision,
                                           efficiency=efficiency, zero_stage=zero_stage)
                out.append({"tp": tp, "pp": pp, "dp": dp, "microbatch_size": mu, "feasible": bool(r.feasible),
                            "step_time": r.step_latency_total.m_as("s"), "mfu": float(r.mfu),
                            "memory_gb": r.memory_per_gpu.m_as("GB")})
    return out
