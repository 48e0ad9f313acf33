"""``ParallelismOptimizer``: the best TP x PP x DP split (and micro-batch size) of a training job, by
evaluating every configuration at once through the compiled distributed-training sheets."""
from __future__ import annotations

import time
from typing import Iterable, Optional

import numpy as np
import pint

from .. import inputs as _in
from ..errors import InputError
from ..results import Result
from ..units import quantity_factory
from .distributed import DistributedModel, DistributedResult, Setting, build_result, divisors

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


_S, _GB, _TOK = quantity_factory("s"), quantity_factory("GB"), quantity_factory("token/s")


def _powers_of_two(limit: int) -> list[int]:
    out, k = [], 1
    while k <= limit:
        out.append(k)
        k *= 2
    return out


BACKENDS = ("exhaustive", "highs")


class ParallelismOptimizer:
    """Search over TP (powers of two up to ``max_tp``, dividing the heads) x PP (every divisor of the
    remaining accelerators up to the layer count; the fullest stage holds ceil(L/PP) layers) x
    micro-batch size (powers of two up to the sequences per DP rank), DP = N / (TP PP).

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

            def solve(model, fleet, batch_size, precision="fp16", efficiency=0.5, overlap_comm=True,
                      seq_len=2048, max_tp=None, objective="step_time", **options):
                return solve_parallelism(model, fleet, batch_size, objective=objective, time_limit=time_limit,
                                         precision=precision, efficiency=efficiency, overlap_comm=overlap_comm,
                                         seq_len=seq_len, max_tp=max_tp, **options)
            self.solve = solve

    @staticmethod
    def enumerate(model, fleet, batch_size: int, precision: str = "fp16", efficiency: float = 0.5,
                  overlap_comm: bool = True, seq_len: int = 2048, max_tp: int | None = None,
                  max_pp: int | None = None, microbatch_sizes: Iterable[int] | None = None, zero_stage: int = 0,
                  activation_recomputation: str = "selective", virtual_stages: int = 1,
                  sequence_parallel: bool = True, gradient_bytes: float | None = None, memory_reserve=0):
        """Every configuration and every sheet output as flat arrays (SI floats), in one vectorized
        evaluation. Returns ``(setting, arrays)``; ``arrays`` holds ``tp, pp, dp, microbatches,
        microbatch_size``, the outputs of the distributed and training-memory sheets and ``feasible``."""
        s = Setting(model, fleet, _in.positive_int(batch_size, "batch_size"), seq_len, precision, efficiency,
                    overlap_comm, zero_stage, activation_recomputation, virtual_stages, sequence_parallel,
                    gradient_bytes, memory_reserve)
        n, layers, heads = s.n, s.wl.layers, s.wl.heads
        tp_cap = s.per_node if max_tp is None else _in.positive_int(max_tp, "max_tp")
        pp_cap = layers if max_pp is None else min(layers, _in.positive_int(max_pp, "max_pp"))
        sizes = None if microbatch_sizes is None else sorted({_in.positive_int(x, "microbatch_sizes[]")
                                                              for x in microbatch_sizes})
        rows = []
        for tp in _powers_of_two(tp_cap):
            if n % tp or heads % tp:
                continue
            for pp in divisors(n // tp):
                if pp > pp_cap or (s.v > 1 and (pp == 1 or -(-layers // pp) < s.v)):
                    continue
                dp = n // (tp * pp)
                local = s.local_batch(dp)
                for mu in (sizes if sizes is not None else _powers_of_two(local)):
                    if mu <= local:
                        rows.append((tp, pp, dp, -(-local // mu), mu))
        if not rows:
            raise InputError("max_tp", tp_cap, f"leaves no TP x PP split of {n} accelerators for {s.wl.name} "
                             f"({heads} heads, {layers} layers)", "raise max_tp or max_pp, or change the fleet")
        table = np.array(rows, dtype=float)
        tp, pp, dp, m, mu = table.T
        out = DistributedModel.evaluate_grid(s, tp, pp, dp, m, mu)
        out.update(tp=tp, pp=pp, dp=dp, microbatches=m, microbatch_size=mu)
        return s, out

    @staticmethod
    def solve(model, fleet, batch_size: int, precision: str = "fp16", efficiency: float = 0.5,
              overlap_comm: bool = True, seq_len: int = 2048, max_tp: int | None = None,
              objective: str = "step_time", max_pp: int | None = None,
              microbatch_sizes: Iterable[int] | None = None, zero_stage: int = 0,
              activation_recomputation: str = "selective", virtual_stages: int = 1,
              sequence_parallel: bool = True, gradient_bytes: float | None = None,
              memory_reserve=0) -> ParallelismResult:
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
            memory_reserve)
        total = len(out["tp"])
        feasible = np.flatnonzero(out["feasible"])
        key = out["step_time"] if objective == "step_time" else -out["mfu"]
        # Ties (equal to the last bit) go to the smaller TP, then PP, then micro-batch size.
        order = feasible[np.lexsort((out["microbatch_size"][feasible], out["pp"][feasible], out["tp"][feasible],
                                     key[feasible]))]
        candidates = [{
            "config": _config(out, i),
            "mfu": float(out["mfu"][i]),
            "step_time": _S(float(out["step_time"][i])),
            "throughput": _TOK(float(out["tokens_per_second"][i])),
            "memory_per_gpu": _GB(float(out["training_memory_per_gpu"][i]) * 1e-9),
        } for i in order]
        space = {"tp": sorted({int(x) for x in out["tp"]}), "pp": sorted({int(x) for x in out["pp"]}),
                 "microbatch_size": sorted({int(x) for x in out["microbatch_size"]}),
                 "accelerators": s.n, "zero_stage": s.zero, "activation_recomputation": s.recompute,
                 "virtual_stages": s.v}
        common = dict(model=s.wl.name, fleet=s.fleet.name, objective=objective, total_searched=total,
                      feasible_count=len(feasible), top_candidates=candidates, search_space=space)
        if len(order) == 0:
            closest = int(np.argmin(out["training_memory_per_gpu"]))
            cfg = _config(out, closest)
            reason = (f"no configuration fits in {s.capacity * 1e-9:.1f} GB: the smallest footprint, "
                      f"TP={cfg['tp']} PP={cfg['pp']} DP={cfg['dp']} micro-batch {cfg['microbatch_size']}, "
                      f"needs {out['training_memory_per_gpu'][closest] * 1e-9:.1f} GB per accelerator; "
                      "use zero_stage >= 1, full recomputation, lower precision or more accelerators")
            return ParallelismResult(status="infeasible", infeasibility_reason=reason,
                                     solve_time=_S(time.perf_counter() - start), **common)
        i = int(order[0])
        tp, pp, dp, m, mu = (int(out[k][i]) for k in ("tp", "pp", "dp", "microbatches", "microbatch_size"))
        best = build_result(s, tp, pp, dp, m, mu, {k: v[i] for k, v in out.items()})
        return ParallelismResult(
            status="optimal", best_config=_config(out, i), best_mfu=best.mfu, best_step_time=best.step_latency_total,
            best_throughput=best.effective_throughput, best_samples_per_second=best.samples_per_second, best=best,
            solve_time=_S(time.perf_counter() - start), **common)


def _config(out: dict, i: int) -> dict:
    return {"tp": int(out["tp"][i]), "pp": int(out["pp"][i]), "dp": int(out["dp"][i]),
            "microbatches": int(out["microbatches"][i]), "microbatch_size": int(out["microbatch_size"][i])}
