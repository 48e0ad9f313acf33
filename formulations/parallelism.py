"""Parallelism search as a MILP: the TP x PP x DP x EP x micro-batch split of a training job (EP for
a mixture of experts: the routed experts sharded over EP of the DP ranks).

The configurations are enumerated and evaluated at once by the vectorized distributed-training
sheets (``ParallelismOptimizer.enumerate``); the MILP then chooses one:

    min  sum_c x_c * step_c            (or max sum_c x_c * mfu_c)
    s.t. sum_c x_c = 1,  x_c binary
         sum_c x_c * memory_c <= memory per accelerator        (soft: explained when nothing fits)
         sum_c x_c * tp_c <= max_tp, sum_c x_c * pp_c <= max_pp (user limits, soft)

Configurations dominated in (step time, memory, TP, PP) are dropped first. The answer equals the
forward enumeration's best (tests check it); the MILP adds a proof of optimality and, when no split
fits, the memory each accelerator would need.
"""
from __future__ import annotations

import time

import numpy as np
import pyomo.environ as pyo

from mlsysim_opt.formulations.builder import Formulation, number, undominated_columns
from mlsysim_opt.milp import integer_value
from mlsysim_opt.solvers.distributed import build_result
from mlsysim_opt.solvers.parallelism import OBJECTIVES, ParallelismOptimizer, ParallelismResult, split_config
from mlsysim_opt.units import quantity_factory

_S, _GB, _TOK = quantity_factory("s"), quantity_factory("GB"), quantity_factory("token/s")


def solve_parallelism(model, fleet, batch_size: int, *, objective: str = "step_time", time_limit: float = 30.0,
                      **options) -> ParallelismResult:
    """``ParallelismOptimizer(backend="highs").solve(...)``: same arguments, same result type, with
    ``solver`` (the HiGHS proof) and, when nothing fits, ``explanation``."""
    start = time.perf_counter()
    if objective not in OBJECTIVES:
        from mlsysim_opt.errors import UnknownNameError
        raise UnknownNameError("objective", str(objective), OBJECTIVES)
    s, out = ParallelismOptimizer.enumerate(model, fleet, batch_size, **options)
    total = len(out["tp"])
    capacity = s.capacity
    memory = out["training_memory_per_gpu"]
    number(time_limit, "time_limit", maximum=1e7)
    # Exact pruning: step time (or MFU), memory and the TP and PP degrees a user may cap.
    value = out["step_time"] if objective == "step_time" else out["mfu"]
    keep = undominated_columns({"objective": (value, 1 if objective == "step_time" else -1),
                                "memory": (memory, 1), "tp": (out["tp"], 1), "pp": (out["pp"], 1)})
    f = Formulation("parallelism")
    C = range(len(keep))
    x = f.choose_one("x", C)
    scale = float(np.max(memory[keep])) or 1.0
    f.limit("memory", "memory per accelerator", f.selected(memory[keep] / 1e9, x), "<=", capacity / 1e9, "GB",
            scale=scale / 1e9)
    f.objective(f.selected(value[keep], x), sense=pyo.minimize if objective == "step_time" else pyo.maximize)
    feasible = [i for i in C if memory[keep[i]] <= capacity]
    warm = None
    if feasible:
        best = min(feasible, key=lambda i: value[keep[i]] if objective == "step_time" else -value[keep[i]])
        warm = [(x[i], 1.0 if i == best else 0.0) for i in C]
    result = f.solve(time_limit=time_limit, warm_start=warm)
    common = dict(model=s.wl.name, fleet=s.fleet.name, objective=objective, total_searched=total,
                  feasible_count=int(np.count_nonzero(out["feasible"])), search_space={
                      "tp": sorted({int(v) for v in out["tp"]}), "pp": sorted({int(v) for v in out["pp"]}),
                      "ep": sorted({int(v) for v in out["ep"]}),
                      "accelerators": s.n, "after_dominance_pruning": len(keep)})
    if not result.has_solution:
        explanation = f.explain(time_limit=time_limit)
        return ParallelismResult(status=result.status.value, infeasibility_reason=str(explanation),
                                 explanation=explanation,
                                 top_candidates=[], solver=result, solve_time=_S(time.perf_counter() - start),
                                 **common)
    chosen = int(keep[next(i for i in C if integer_value(x[i]) == 1)])
    tp, pp, dp, ep, mb, mu = (int(out[k][chosen]) for k in ("tp", "pp", "dp", "ep", "microbatches",
                                                              "microbatch_size"))
    best = build_result(s, tp, pp, dp, mb, mu, {k: v[chosen] for k, v in out.items()}, ep)
    candidate = {"config": split_config(out, chosen), "mfu": float(out["mfu"][chosen]),
                 "step_time": _S(float(out["step_time"][chosen])),
                 "throughput": _TOK(float(out["tokens_per_second"][chosen])),
                 "memory_per_gpu": _GB(float(memory[chosen]) * 1e-9)}
    return ParallelismResult(status=result.status.value, best_config=split_config(out, chosen), best_mfu=best.mfu,
                             best_step_time=best.step_latency_total, best_throughput=best.effective_throughput,
                             best_samples_per_second=best.samples_per_second, best=best,
                             top_candidates=[candidate], solver=result,
                             solve_time=_S(time.perf_counter() - start), **common)
