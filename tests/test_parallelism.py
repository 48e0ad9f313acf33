"""ParallelismOptimizer: exhaustive, agrees with DistributedModel on every configuration, scales to a
16K-GPU fleet, and answers exercise 4. Its micro-batch sizes lose nothing against every size from 1 to
the sequences per DP rank (brute force over DistributedModel)."""
import functools
import math
import random
import re

import numpy as np
import pytest

from mlsysim_opt import Fabrics, Fleet, InputError, Models, Nodes, Systems
from mlsysim_opt.errors import UnknownNameError
from mlsysim_opt.solvers.distributed import DistributedModel
from mlsysim_opt.solvers.parallelism import ParallelismOptimizer, microbatch_candidates
from example_runs import run_example



@pytest.fixture(scope="module")
def fleet64():
    return Fleet(name="64-GPU H100 Cluster", node=Nodes.DGX_H100, count=8, fabric=Fabrics.InfiniBand_NDR)


@pytest.fixture(scope="module")
def exercise4(fleet64):
    return ParallelismOptimizer().solve(Models.Llama3_70B, fleet64, batch_size=512, precision="fp16",
                                        efficiency=0.4, overlap_comm=True)


def _space(n=64, layers=80, batch=512, per_node=8):
    """The search space written out independently: TP powers of two <= node, PP | N/TP with PP <= L,
    micro-batch sizes: each size from 1 to the sequences per DP rank that is the smallest giving its
    number of micro-batches (one less would need more micro-batches)."""
    out = []
    for tp in (1, 2, 4, 8):
        if tp > per_node:
            continue
        for pp in range(1, n // tp + 1):
            if (n // tp) % pp or pp > layers:
                continue
            dp = n // (tp * pp)
            local = -(-batch // dp)
            for mu in range(1, local + 1):
                if mu == 1 or -(-local // (mu - 1)) > -(-local // mu):
                    out.append((tp, pp, dp, mu))
    return out


def _fleet(nodes):
    return Fleet(name=f"{nodes}xDGX", node=Nodes.DGX_H100, count=nodes, fabric=Fabrics.InfiniBand_NDR)


@functools.lru_cache(maxsize=None)
def brute_force(model: str, nodes: int, batch: int, seq_len: int = 2048, zero_stage: int = 0,
                efficiency: float = 0.5) -> dict:
    """Step time of every feasible (TP, PP, DP, micro-batch size) on ``nodes`` DGX H100 (NDR), one
    ``DistributedModel.solve`` each: TP powers of two up to the node dividing the heads and the fleet,
    every PP dividing the rest up to the layer count, EVERY micro-batch size 1 .. ceil(batch / DP),
    and for a mixture of experts the best EP degree (``brute_force.feasible`` counts every feasible
    configuration, EP included)."""
    wl, fleet = getattr(Models, model), _fleet(nodes)
    n = fleet.total_accelerators
    times, feasible = {}, set()
    for tp in (1, 2, 4, 8):
        if n % tp or wl.heads % tp:
            continue
        for pp in range(1, min(n // tp, wl.layers) + 1):
            if (n // tp) % pp:
                continue
            dp = n // (tp * pp)
            # a mixture of experts: every EP degree dividing the DP group and the experts
            eps = [e for e in range(1, dp + 1) if dp % e == 0 and (wl.experts or 1) % e == 0]
            for mu in range(1, -(-batch // dp) + 1):
                for ep in eps:
                    r = DistributedModel.solve(wl, fleet, batch_size=batch, seq_len=seq_len, tp_size=tp, pp_size=pp,
                                               microbatch_size=mu, zero_stage=zero_stage, efficiency=efficiency,
                                               ep_size=ep)
                    if r.feasible:
                        t = r.step_latency_total.m_as("s")
                        times[(tp, pp, dp, mu)] = min(t, times.get((tp, pp, dp, mu), t))
                        feasible.add((tp, pp, dp, ep, mu))
    brute_force.feasible = len(feasible)
    return times


def _is_power_of_two(k):
    return k & (k - 1) == 0


# (model, DGX nodes, batch, seq_len, ZeRO stage, efficiency). Instances where the optimum's micro-batch
# size is not a power of two; the last one's is not a divisor of the sequences per DP rank either.
NON_POWER_OF_TWO = [
    ("Llama3_8B", 4, 104, 512, 3, 0.5),    # TP4 DP8: one micro-batch of all 13 sequences per rank
    ("Llama3_8B", 4, 96, 512, 3, 0.5),     # TP4 DP8: one micro-batch of 12
    ("Llama3_70B", 4, 12, 2048, 1, 0.5),   # TP8 DP4: one micro-batch of 3
    ("Llama3_8B", 2, 37, 128, 3, 0.5),     # TP4 PP2 DP2: 19 per rank as 4 micro-batches of 5 (one padded)
]


def seeded_instances(count=6, seed=4):
    """Random (model, nodes, batch, seq_len, ZeRO stage, efficiency), reproducible."""
    rng = random.Random(seed)
    return [(rng.choice(["Llama3_8B", "Llama3_70B", "Mixtral_8x7B"]), rng.choice([2, 4, 8]), rng.randint(8, 100),
             rng.choice([128, 512, 2048]), rng.choice([0, 1, 3]), round(rng.uniform(0.3, 0.6), 2))
            for _ in range(count)]


def test_exercise4_counts_every_configuration(exercise4):
    assert exercise4.status == "optimal"
    assert exercise4.total_searched == len(_space())
    assert 0 < exercise4.feasible_count == len(exercise4.top_candidates) < exercise4.total_searched


def test_exercise4_best_keeps_tp_inside_a_node(exercise4):
    best = exercise4.best_config
    assert best["tp"] * best["pp"] * best["dp"] == 64
    assert best["tp"] <= 8 and 8 % best["tp"] == 0
    assert exercise4.best.links["tp"] in ("NVLink", "none")
    assert 0.30 <= exercise4.best_mfu <= 0.45          # the exercise's expected MFU band


def test_best_equals_brute_force_over_the_scalar_solver(fleet64, exercise4):
    times = {}
    for tp, pp, dp, mu in _space():
        r = DistributedModel.solve(Models.Llama3_70B, fleet64, batch_size=512, tp_size=tp, pp_size=pp,
                                   microbatch_size=mu, precision="fp16", efficiency=0.4, overlap_comm=True)
        if r.feasible:
            times[(tp, pp, dp, mu)] = r.step_latency_total.m_as("s")
    assert len(times) == exercise4.feasible_count
    best = min(times, key=times.get)
    cfg = exercise4.best_config
    assert (cfg["tp"], cfg["pp"], cfg["dp"], cfg["microbatch_size"]) == best
    assert exercise4.best_step_time.m_as("s") == pytest.approx(times[best], rel=1e-12)
    for c in exercise4.top_candidates:           # every candidate's numbers are DistributedModel's
        key = (c["config"]["tp"], c["config"]["pp"], c["config"]["dp"], c["config"]["microbatch_size"])
        assert c["step_time"].m_as("s") == pytest.approx(times[key], rel=1e-12)


def test_candidates_are_feasible_and_ranked(exercise4):
    steps = [c["step_time"].m_as("s") for c in exercise4.top_candidates]
    assert steps == sorted(steps)
    capacity = exercise4.best.memory_capacity.m_as("GB")
    assert all(c["memory_per_gpu"].m_as("GB") <= capacity for c in exercise4.top_candidates)
    first = exercise4.top_candidates[0]
    assert first["config"] == exercise4.best_config and first["mfu"] == exercise4.best_mfu
    assert exercise4.best_throughput.m_as("1/s") == pytest.approx(512 * 2048 / exercise4.best_step_time.m_as("s"))


def test_mfu_objective_ranks_the_same(fleet64, exercise4):
    r = ParallelismOptimizer.solve(Models.Llama3_70B, fleet64, batch_size=512, efficiency=0.4, objective="mfu")
    assert r.best_config == exercise4.best_config


def test_no_configuration_fits():
    fleet = Fleet(name="one node", node=Nodes.DGX_H100, count=1, fabric=Fabrics.InfiniBand_NDR)
    r = ParallelismOptimizer.solve(Models.Llama3_405B, fleet, batch_size=8)
    assert r.status == "infeasible" and r.best_config is None and r.feasible_count == 0
    assert r.total_searched > 0 and "no configuration fits" in r.infeasibility_reason
    # Smallest footprint: all 8 GPUs in one model replica, ~16 bytes per parameter / 8 > 800 GB.
    assert float(re.search(r"needs ([\d.]+) GB", r.infeasibility_reason).group(1)) > 16 * 405e9 / 8 / 1e9


def test_wider_tp_than_a_node_is_searched_when_allowed(fleet64):
    r = ParallelismOptimizer.solve(Models.Llama3_70B, fleet64, batch_size=512, efficiency=0.4, max_tp=16)
    assert 16 in r.search_space["tp"]
    assert r.total_searched > len(_space())
    assert r.best_config["tp"] <= 8          # crossing the fabric for TP never pays here


def test_sixteen_thousand_gpus():
    # its speed (milliseconds) is measured in benchmarks/bench_solvers.py, not asserted here
    fleet = Systems.Clusters.Meta_Llama3_16K_H100
    assert fleet.total_accelerators == 16384
    kw = dict(batch_size=2048, seq_len=8192, precision="bf16", efficiency=0.6, zero_stage=1)
    r = ParallelismOptimizer.solve(Models.Llama3_405B, fleet, **kw)
    assert r.status == "optimal" and r.total_searched > 50
    cfg = r.best_config
    check = DistributedModel.solve(Models.Llama3_405B, fleet, tp_size=cfg["tp"], pp_size=cfg["pp"],
                                   microbatch_size=cfg["microbatch_size"], **kw)
    assert check.step_latency_total.m_as("s") == pytest.approx(r.best_step_time.m_as("s"), rel=1e-12)


def test_bad_input(fleet64):
    with pytest.raises(UnknownNameError, match="objective"):
        ParallelismOptimizer.solve(Models.Llama3_70B, fleet64, batch_size=512, objective="cost")
    with pytest.raises(InputError, match="max_tp must be >= 1"):
        ParallelismOptimizer.solve(Models.Llama3_70B, fleet64, batch_size=512, max_tp=0)
    with pytest.raises(InputError, match="batch_size"):
        ParallelismOptimizer.solve(Models.Llama3_70B, fleet64, batch_size=-1)
    with pytest.raises(InputError, match="efficiency"):
        ParallelismOptimizer.solve(Models.Llama3_70B, fleet64, batch_size=512, efficiency=0)
    with pytest.raises(InputError, match="microbatch_sizes must include a size <= the sequences per DP rank"):
        ParallelismOptimizer.solve(Models.Llama3_70B, fleet64, batch_size=16, microbatch_sizes=[32, 64])


def test_exercise4_example_prints_the_answer(exercise4):
    out = run_example("exercise4_parallelism.py")
    assert out.returncode == 0, out.stderr[-2000:]
    cfg = exercise4.best_config
    assert f"Best config: TP={cfg['tp']} PP={cfg['pp']} DP={cfg['dp']}" in out.stdout
    assert f"Best MFU: {exercise4.best_mfu:.3f}" in out.stdout
    assert f"Configs explored: {exercise4.total_searched}" in out.stdout
    assert "TP=8 PP=2 DP=4" in out.stdout            # the textbook answer is shown for comparison


def test_memory_reserve_is_kept_back(fleet64, exercise4):
    r = ParallelismOptimizer.solve(Models.Llama3_70B, fleet64, batch_size=512, efficiency=0.4, memory_reserve="4 GB")
    capacity = exercise4.best.memory_capacity.m_as("GB")
    assert all(c["memory_per_gpu"].m_as("GB") <= capacity - 4 for c in r.top_candidates)
    assert r.feasible_count < exercise4.feasible_count
    if exercise4.best.memory_per_gpu.m_as("GB") > capacity - 4:
        assert r.best_config != exercise4.best_config
    with pytest.raises(InputError, match="memory_reserve must be >= 0"):
        ParallelismOptimizer.solve(Models.Llama3_70B, fleet64, batch_size=512, memory_reserve=-1)
    with pytest.raises(InputError, match="memory_reserve"):
        ParallelismOptimizer.solve(Models.Llama3_70B, fleet64, batch_size=512, memory_reserve="4 GB/s")


# --- micro-batch sizes ------------------------------------------------------------------------------


def test_microbatch_candidates_hold_every_divisor_and_only_the_smallest_size_per_count():
    for local in range(1, 400):
        smallest = {}                                     # micro-batches -> smallest size giving them
        for mu in range(local, 0, -1):
            smallest[-(-local // mu)] = mu
        got = microbatch_candidates(local)
        assert got == sorted(smallest.values()), local
        assert {d for d in range(1, local + 1) if local % d == 0} <= set(got)
        assert len(got) <= 2 * math.isqrt(local) + 1
    assert microbatch_candidates(13) == [1, 2, 3, 4, 5, 7, 13]
    assert len(microbatch_candidates(10 ** 6)) < 2001


@pytest.mark.parametrize("case", NON_POWER_OF_TWO, ids=lambda c: f"{c[0]}-{c[1]}n-b{c[2]}-s{c[3]}-z{c[4]}")
def test_a_non_power_of_two_micro_batch_wins_and_is_found(case):
    model, nodes, batch, seq, zero, eta = case
    times = brute_force(*case)
    best = min(times, key=times.get)
    powers = min(t for (tp, pp, dp, mu), t in times.items() if _is_power_of_two(mu))
    assert not _is_power_of_two(best[3]) and times[best] < powers * (1 - 1e-3)
    r = ParallelismOptimizer.solve(getattr(Models, model), _fleet(nodes), batch_size=batch, seq_len=seq,
                                   zero_stage=zero, efficiency=eta)
    assert r.status == "optimal"
    assert r.best_step_time.m_as("s") == pytest.approx(times[best], rel=1e-12)
    cfg = r.best_config
    assert times[(cfg["tp"], cfg["pp"], cfg["dp"], cfg["microbatch_size"])] == pytest.approx(times[best], rel=1e-12)


def test_padding_can_beat_every_divisor():
    """Why divisors alone are not enough: 19 sequences per rank run fastest as 4 micro-batches of 5."""
    times = brute_force(*NON_POWER_OF_TWO[-1])
    best = min(times, key=times.get)
    divides = min(t for (tp, pp, dp, mu), t in times.items() if (-(-37 // dp)) % mu == 0)
    assert best == (4, 2, 2, 5) and times[best] < divides * (1 - 0.05)


@pytest.mark.parametrize("case", seeded_instances(), ids=lambda c: f"{c[0]}-{c[1]}n-b{c[2]}-s{c[3]}-z{c[4]}")
def test_random_instances_equal_the_brute_force(case):
    model, nodes, batch, seq, zero, eta = case
    times = brute_force(*case)
    r = ParallelismOptimizer.solve(getattr(Models, model), _fleet(nodes), batch_size=batch, seq_len=seq,
                                   zero_stage=zero, efficiency=eta)
    assert r.feasible_count <= brute_force.feasible
    if not times:
        assert r.status == "infeasible" and r.best_config is None
        return
    assert r.status == "optimal"
    assert r.best_step_time.m_as("s") == pytest.approx(min(times.values()), rel=1e-12)


def test_seeded_instances_are_not_trivial():
    """Most instances fit, and some are won by a micro-batch size that is not a power of two."""
    bests = [min(t, key=t.get) for t in (brute_force(*c) for c in seeded_instances()) if t]
    assert len(bests) >= 4 and any(not _is_power_of_two(mu) for *_, mu in bests)


@pytest.mark.parametrize("zero,recompute,virtual", [(0, "selective", 1), (1, "none", 1), (3, "full", 1),
                                                    (1, "selective", 2)])
def test_the_smallest_size_per_micro_batch_count_is_never_slower_or_larger(fleet64, zero, recompute, virtual):
    """The module docstring's lemma, on every size 1..L of the vectorized sheets: with TP, PP, DP and the
    micro-batch count fixed, the smallest size has the least step time and memory."""
    for model, batch, seq in [(Models.Llama3_8B, 61, 128), (Models.Llama3_70B, 200, 2048),
                              (Models.Mixtral_8x7B, 96, 512)]:
        _, out = ParallelismOptimizer.enumerate(model, fleet64, batch, seq_len=seq, zero_stage=zero,
                                                activation_recomputation=recompute, virtual_stages=virtual,
                                                microbatch_sizes=range(1, batch + 1))
        key = np.stack([out["tp"], out["pp"], out["ep"], out["microbatches"]], axis=1)
        _, group = np.unique(key, axis=0, return_inverse=True)
        group = group.ravel()
        order = np.lexsort((out["microbatch_size"], group))
        first = np.r_[True, group[order][1:] != group[order][:-1]]
        head = order[np.maximum.accumulate(np.where(first, np.arange(len(order)), 0))]
        for name in ("step_time", "training_memory_per_gpu"):
            assert np.all(out[name][head] <= out[name][order] * (1 + 1e-12)), (model.name, name)
        _, reduced = ParallelismOptimizer.enumerate(model, fleet64, batch, seq_len=seq, zero_stage=zero,
                                                    activation_recomputation=recompute, virtual_stages=virtual)
        for arrays in (out, reduced):
            arrays["best"] = np.min(np.where(arrays["feasible"], arrays["step_time"], np.inf))
        assert reduced["best"] == out["best"]

