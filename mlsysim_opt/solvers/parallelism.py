"""``ParallelismOptimizer``: the best TP x PP x DP split (and micro-batch size) of a training job, by
evaluating every configuration at once through the compiled distributed-training sheets.

Micro-batch sizes
-----------------
A DP rank runs ``L = ceil(B / DP)`` sequences as ``m = ceil(L / mu)`` micro-batches of ``mu`` (the last
one padded when ``mu`` does not divide ``L``). The search tries

    M(L) = { ceil(L / k) : k = 1 .. L }

(``microbatch_candidates``): for each possible number of micro-batches, the smallest size that gives
it. ``M(L)`` holds every divisor of ``L`` (``d = ceil(L / (L/d))``), ``L`` itself and at most
``2 sqrt(L)`` sizes in all; the best configuration over ``M(L)`` is the best over every size
``1 .. L``, for both objectives and under the memory limit. Proof, for the sheets in
``models/distributed.py`` and ``models/training_memory.py``:

1. With TP, PP, DP and ``m`` fixed, the step time and the memory per accelerator do not decrease
   when ``mu`` grows.

   Memory: weights, gradients and optimizer states do not depend on ``mu``; the activations are a
   per-layer term proportional to ``mu`` times the layers of a stage times ``min(PP, m)`` (or the
   interleaved count), both fixed; the pipeline buffers are proportional to ``mu``.

   Time: ``step = (m + (PP-1)/v) T_mb + max(0, T_DP - overlap T_bwd) + T_opt`` with
   ``T_mb = T_bwd + R``, where ``R`` is the forward pass, the recomputation, the launches, the TP
   collectives and the PP sends of one micro-batch. The compute terms are linear in ``mu`` with a
   non-negative slope (the roofline's compute term with the batch set to ``mu``); each collective is
   ``alpha + message / beta`` (ring and tree, and the minimum of the two) with a message proportional
   to ``mu``; the launches do not depend on ``mu``. So ``T_bwd`` and ``R`` are non-decreasing in
   ``mu`` while ``T_DP`` (gradients of the stage) and ``T_opt`` are constant. Writing
   ``c = m + (PP-1)/v``, ``step - T_opt = max(c (T_bwd + R), (c - overlap) T_bwd + c R + T_DP)``,
   and ``c - overlap >= 0`` since ``m >= 1 >= overlap``: both arguments of the max are
   non-decreasing, so the step time is. MFU is the model FLOP of the global batch over
   ``step x accelerators x peak``: with the batch and the fleet fixed it ranks as the step time does.

2. Any size ``mu`` in ``1 .. L`` is matched by ``mu' = ceil(L / m)`` with ``m = ceil(L / mu)``:
   ``mu' <= mu`` because ``m >= L / mu``, and ``ceil(L / mu') = m`` because ``mu' <= mu`` gives
   ``>= m`` and ``mu' >= L / m`` gives ``<= m``. So ``(m, mu')`` is a configuration with the same
   number of micro-batches and a size no larger, hence (by 1) no slower and no larger in memory,
   and ``mu'`` is in ``M(L)``. Sizes above ``L`` are ``m = 1`` with more padding than ``L``.

Divisors alone are not enough: padding can pay when a fixed cost per micro-batch (launches, the
latency of the TP collectives and PP sends) meets the pipeline bubble. Llama-3.1-8B on 16 H100
(2 DGX nodes, NDR), batch 37 of 128 tokens, ZeRO-3: TP4 PP2 DP2 runs its 19 sequences per rank
fastest as 4 micro-batches of 5, 7% faster than any split whose micro-batch size divides the
sequences per rank. Powers of two alone miss by up to 37%: Llama-3.1-8B on 64 H100, batch 96 of 512
tokens, ZeRO-1, efficiency 0.3, runs fastest as TP4 DP16 with one micro-batch of 6; the best
power-of-two size (TP1 DP64, one micro-batch of 2) takes 37% longer.
``tests/test_parallelism.py`` checks both claims against ``DistributedModel`` on every size.
"""
from __future__ import annotations

import math
import time
from functools import lru_cache
from typing import Iterable, Optional

import numpy as np
import pint

from .. import inputs as _in
from ..errors import InputError
from ..results import Result
from ..units import quantity_factory
from .distributed import DistributedModel, DistributedResult, Setting, build_result, divisors
from .quantities import field_converters

OBJECTIVES = ("step_time", "mfu")


class ParallelismResult(Result):
    """Outcome of ``ParallelismOptimizer.solve``.

    ``status`` is "optimal" (the best of every enumerated configuration; the enumeration is exhaustive
    over the stated space) or "infeasible" (none fits in memory; ``infeasibility_reason`` says by how
    much the closest one misses). ``total_searched`` counts every configuration evaluated, feasible or
    not; ``top_candidates`` lists every feasible one, fastest first.
    """

    model: str
    fleet: str
    objective: str
    status: str
    best_config: Optional[dict] = None
    best_mfu: Optional[float] = None
    best_step_time: Optional[pint.Quantity] = None
    best_throughput: Optional[pint.Quantity] = None
    best_samples_per_second: Optional[pint.Quantity] = None
    best: Optional[DistributedResult] = None
    total_searched: int
    feasible_count: int
    top_candidates: list
    search_space: dict
    solve_time: pint.Quantity
    infeasibility_reason: Optional[str] = None
    solver: Optional[object] = None
    explanation: Optional[object] = None
    """With the MILP backend, when no split fits: an ``InfeasibilityExplanation`` whose relaxation
    ``memory`` holds the exact memory per accelerator (GB) that would make one fit."""
    """The HiGHS proof (``SolveResult``) when solved with ``backend="highs"``."""

    def __str__(self) -> str:
        # The best configuration's full result prints as one line here; print(result.best) for all of it.
        brief = self.model_copy(update={"best": None})
        text = Result.__str__(brief)
        if self.best is not None:
            b = self.best
            text = text.replace("  best                       None",
                                f"  best                       DistributedResult (step {b.step_latency_total:.4g~P}, "
                                f"MFU {b.mfu:.3f}, {b.memory_per_gpu:.3g~P}/GPU): print(result.best)")
        return text


_S = quantity_factory("s")
CANDIDATE_FIELDS = {"step_time": ("step_time", "s"), "throughput": ("tokens_per_second", "token/s"),
                    "memory_per_gpu": ("training_memory_per_gpu", "GB")}
"""Quantities of each entry of ``top_candidates``: (distributed or training-memory output, unit)."""


@lru_cache(maxsize=None)
def _candidate_converters() -> tuple:
    from ..models import distributed, training_memory
    return field_converters(CANDIDATE_FIELDS, distributed.sheet, training_memory.sheet)


def _powers_of_two(limit: int) -> list[int]:
    out, k = [], 1
    while k <= limit:
        out.append(k)
        k *= 2
    return out


@lru_cache(maxsize=4096)
def _candidates(local: int) -> np.ndarray:
    k = math.isqrt(local)
    sizes = {-(-local // m) for m in range(1, k + 1)}      # few micro-batches: the large sizes
    # Sizes up to k + 1 hold every ceil(L/m) with m > k; keep those that are the smallest for their m.
    sizes.update(mu for mu in range(1, min(k + 1, local) + 1) if -(-local // -(-local // mu)) == mu)
    out = np.array(sorted(sizes), dtype=float)
    out.flags.writeable = False
    return out


def microbatch_candidates(local: int) -> list[int]:
    """The micro-batch sizes searched for ``local`` sequences per DP rank: ``ceil(local / m)`` for
    every number of micro-batches ``m`` in ``1 .. local``, ascending. Every divisor of ``local`` is
    among them; no other size in ``1 .. local`` can be faster or smaller (module docstring)."""
    return [int(x) for x in _candidates(_in.positive_int(local, "local"))]


BACKENDS = ("exhaustive", "highs")


class ParallelismOptimizer:
    """Search over TP (powers of two up to ``max_tp``, dividing the heads) x PP (every divisor of the
    remaining accelerators up to the layer count; the fullest stage holds ceil(L/PP) layers) x
    micro-batch size (for L sequences per DP rank, ceil(L/m) for every micro-batch count m: every
    divisor of L among them, and as good as trying every size 1..L, see the module docstring),
    DP = N / (TP PP).

    ``backend="exhaustive"`` (default) ranks the vectorized enumeration; ``backend="highs"`` solves
    the same enumeration as a MILP (``formulations/parallelism.py``) and returns the HiGHS proof and,
    when nothing fits, the memory each accelerator would need. Both return the same optimum.
    """

    walls = (14,)

    def __init__(self, backend: str = "exhaustive", time_limit: float = 30.0):
        if backend not in BACKENDS:
            from ..errors import UnknownNameError
            raise UnknownNameError("backend", str(backend), BACKENDS)
        self.backend = backend
        if backend == "highs":  # the instance's solve goes through the MILP; the class's stays exhaustive
            from ..formulations.parallelism import solve_parallelism

            def solve(model, fleet, batch_size, precision="fp16", efficiency=None, overlap_comm=True,
                      seq_len=2048, max_tp=None, objective="step_time", **options):
                return solve_parallelism(model, fleet, batch_size, objective=objective, time_limit=time_limit,
                                         precision=precision, efficiency=efficiency, overlap_comm=overlap_comm,
                                         seq_len=seq_len, max_tp=max_tp, **options)
            self.solve = solve

    @staticmethod
    def enumerate(model, fleet, batch_size: int, precision: str = "fp16", efficiency: float | None = None,
                  overlap_comm: bool = True, seq_len: int = 2048, max_tp: int | None = None,
                  max_pp: int | None = None, microbatch_sizes: Iterable[int] | None = None, zero_stage: int = 0,
                  activation_recomputation: str = "selective", virtual_stages: int = 1,
                  sequence_parallel: bool = True, gradient_bytes: float | None = None, memory_reserve=0,
                  max_ep: int | None = None, capacity_factor: float | None = None, step_time_cv: float | None = None,
                  background_load: float = 0.0, calibration: str = "profile"):
        """Every configuration and every sheet output as flat arrays (SI floats), in one vectorized
        evaluation. Returns ``(setting, arrays)``; ``arrays`` holds ``tp, pp, dp, ep, microbatches,
        microbatch_size``, the outputs of the distributed and training-memory sheets and ``feasible``.
        A mixture of experts adds every EP degree that divides both the DP group and the experts
        (up to ``max_ep``); a dense model has EP 1.

        Micro-batch sizes are ``microbatch_candidates(L)`` for the L sequences of each DP rank, or the
        given ``microbatch_sizes`` that do not exceed L."""
        s = Setting(model, fleet, _in.whole_number(batch_size, "batch_size", minimum=1), seq_len, precision, efficiency,
                    overlap_comm, zero_stage, activation_recomputation, virtual_stages, sequence_parallel,
                    gradient_bytes, memory_reserve, capacity_factor=capacity_factor, step_time_cv=step_time_cv,
                    background_load=background_load, calibration=calibration)
        n, layers, heads = s.n, s.wl.layers, s.wl.heads
        tp_cap = s.per_node if max_tp is None else _in.whole_number(max_tp, "max_tp", minimum=1, maximum=1_000_000)
        pp_cap = layers if max_pp is None else min(layers, _in.whole_number(max_pp, "max_pp", minimum=1,
                                                                            maximum=1_000_000))
        ep_cap = n if max_ep is None else _in.whole_number(max_ep, "max_ep", minimum=1, maximum=1_000_000)
        sizes = None if microbatch_sizes is None else sorted({_in.positive_int(x, "microbatch_sizes[]")
                                                              for x in microbatch_sizes})
        given = None if sizes is None else np.array(sizes, dtype=float)
        splits, blocks = [], []
        for tp in _powers_of_two(tp_cap):
            if n % tp or heads % tp:
                continue
            for pp in divisors(n // tp):
                if pp > pp_cap or (s.v > 1 and (pp == 1 or -(-layers // pp) < s.v)):
                    continue
                dp = n // (tp * pp)
                local = s.local_batch(dp)
                block = _candidates(local) if given is None else given[given <= local]
                for ep in expert_degrees(dp, s.experts, ep_cap):
                    splits.append((tp, pp, dp, ep, local, len(block)))
                    blocks.append(block)
        if not splits:
            raise InputError("max_tp", tp_cap, f"leaves no TP x PP split of {n} accelerators for {s.wl.name} "
                             f"({heads} heads, {layers} layers)", "raise max_tp or max_pp, or change the fleet")
        if not sum(x[5] for x in splits):
            most = max(x[4] for x in splits)
            raise InputError("microbatch_sizes", sizes, f"must include a size <= the sequences per DP rank "
                             f"(at most {most} here)", f"add sizes from 1 to {most}, or leave microbatch_sizes out")
        table = np.array(splits, dtype=float)
        tp, pp, dp, ep, local = np.repeat(table[:, :5], table[:, 5].astype(int), axis=0).T
        mu = np.concatenate(blocks)
        m = np.ceil(local / mu)
        out = DistributedModel.evaluate_grid(s, tp, pp, dp, m, mu, ep)
        out.update(tp=tp, pp=pp, dp=dp, ep=ep, microbatches=m, microbatch_size=mu)
        return s, out

    @staticmethod
    def solve(model, fleet, batch_size: int, precision: str = "fp16", efficiency: float | None = None,
              overlap_comm: bool = True, seq_len: int = 2048, max_tp: int | None = None,
              objective: str = "step_time", max_pp: int | None = None,
              microbatch_sizes: Iterable[int] | None = None, zero_stage: int = 0,
              activation_recomputation: str = "selective", virtual_stages: int = 1,
              sequence_parallel: bool = True, gradient_bytes: float | None = None,
              memory_reserve=0, max_ep: int | None = None, capacity_factor: float | None = None,
              step_time_cv: float | None = None, background_load: float = 0.0,
              calibration: str = "profile") -> ParallelismResult:
        """The fastest feasible split of ``batch_size`` sequences on ``fleet``.

        ``objective`` "step_time" (minimise) or "mfu" (maximise); with the batch and the fleet fixed
        they rank configurations identically. ``max_tp`` defaults to the accelerators per node.
        ``memory_reserve`` is kept back from each accelerator's memory (see ``DistributedModel.solve``).
        """
        start = time.perf_counter()
        if objective not in OBJECTIVES:
            from ..errors import UnknownNameError
            raise UnknownNameError("objective", str(objective), OBJECTIVES)
        s, out = ParallelismOptimizer.enumerate(
            model, fleet, batch_size, precision, efficiency, overlap_comm, seq_len, max_tp, max_pp,
            microbatch_sizes, zero_stage, activation_recomputation, virtual_stages, sequence_parallel, gradient_bytes,
            memory_reserve, max_ep, capacity_factor, step_time_cv, background_load, calibration)
        total = len(out["tp"])
        feasible = np.flatnonzero(out["feasible"])
        key = out["step_time"] if objective == "step_time" else -out["mfu"]
        # Ties (equal to the last bit) go to the smaller TP, then PP, then EP, then micro-batch size.
        order = feasible[np.lexsort((out["microbatch_size"][feasible], out["ep"][feasible], out["pp"][feasible],
                                     out["tp"][feasible], key[feasible]))]
        converters = _candidate_converters()
        candidates = [{
            "config": split_config(out, i),
            "mfu": float(out["mfu"][i]),
            **{field: make(float(out[name][i]) * mul / div) for field, name, make, mul, div in converters},
        } for i in order]
        space = {"tp": sorted({int(x) for x in out["tp"]}), "pp": sorted({int(x) for x in out["pp"]}),
                 "ep": sorted({int(x) for x in out["ep"]}),
                 "microbatch_size": sorted({int(x) for x in out["microbatch_size"]}),
                 "accelerators": s.n, "zero_stage": s.zero, "activation_recomputation": s.recompute,
                 "virtual_stages": s.v}
        common = dict(model=s.wl.name, fleet=s.fleet.name, objective=objective, total_searched=total,
                      feasible_count=len(feasible), top_candidates=candidates, search_space=space)
        if len(order) == 0:
            closest = int(np.argmin(out["training_memory_per_gpu"]))
            cfg = split_config(out, closest)
            _, gb, mul, div = {c[0]: c[1:] for c in converters}["memory_per_gpu"]
            capacity = gb(s.capacity * mul / div)   # the device's bytes less the reserve, like the footprint
            reason = (f"no configuration fits in {capacity.m:.1f} GB: the smallest footprint, "
                      f"TP={cfg['tp']} PP={cfg['pp']} DP={cfg['dp']} micro-batch {cfg['microbatch_size']}, "
                      f"needs {gb(out['training_memory_per_gpu'][closest] * mul / div).m:.1f} GB per accelerator; "
                      "use zero_stage >= 1, full recomputation, lower precision or more accelerators")
            return ParallelismResult(status="infeasible", infeasibility_reason=reason,
                                     solve_time=_S(time.perf_counter() - start), **common)
        i = int(order[0])
        tp, pp, dp, ep, m, mu = (int(out[k][i]) for k in ("tp", "pp", "dp", "ep", "microbatches", "microbatch_size"))
        best = build_result(s, tp, pp, dp, m, mu, {k: v[i] for k, v in out.items()}, ep)
        return ParallelismResult(
            status="optimal", best_config=split_config(out, i), best_mfu=best.mfu, best_step_time=best.step_latency_total,
            best_throughput=best.effective_throughput, best_samples_per_second=best.samples_per_second, best=best,
            solve_time=_S(time.perf_counter() - start), **common)


def expert_degrees(dp: int, experts: int, cap: int) -> list[int]:
    """EP degrees of one DP group: 1 for a dense model, else every divisor of DP that divides the
    experts, up to ``cap``."""
    if not experts:
        return [1]
    return [e for e in divisors(dp) if experts % e == 0 and e <= cap]


def split_config(out: dict, i: int) -> dict:
    return {"tp": int(out["tp"][i]), "pp": int(out["pp"][i]), "dp": int(out["dp"][i]), "ep": int(out["ep"][i]),
            "microbatches": int(out["microbatches"][i]), "microbatch_size": int(out["microbatch_size"][i])}
