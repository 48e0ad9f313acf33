"""ParallelismOptimizer: exhaustive, agrees with DistributedModel on every configuration, scales to a
16K-GPU fleet, and answers exercise 4."""
import pathlib
import re
import subprocess
import sys
import time

import pytest

from mlsysim_opt import Fabrics, Fleet, InputError, Models, Nodes, Systems
from mlsysim_opt.errors import UnknownNameError
from mlsysim_opt.solvers.distributed import DistributedModel
from mlsysim_opt.solvers.parallelism import ParallelismOptimizer

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def fleet64():
    return Fleet(name="64-GPU H100 Cluster", node=Nodes.DGX_H100, count=8, fabric=Fabrics.InfiniBand_NDR)


@pytest.fixture(scope="module")
def exercise4(fleet64):
    return ParallelismOptimizer().solve(Models.Llama3_70B, fleet64, batch_size=512, precision="fp16",
                                        efficiency=0.4, overlap_comm=True)


def _space(n=64, layers=80, batch=512, per_node=8):
    """The search space written out independently: TP powers of two <= node, PP | N/TP with PP <= L,
    micro-batch sizes powers of two <= sequences per DP rank."""
    out = []
    for tp in (1, 2, 4, 8):
        if tp > per_node:
            continue
        for pp in range(1, n // tp + 1):
            if (n // tp) % pp or pp > layers:
                continue
            dp = n // (tp * pp)
            local = -(-batch // dp)
            mu = 1
            while mu <= local:
                out.append((tp, pp, dp, mu))
                mu *= 2
    return out


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


def test_sixteen_thousand_gpus_in_under_a_second():
    fleet = Systems.Clusters.Meta_Llama3_16K_H100
    assert fleet.total_accelerators == 16384
    kw = dict(batch_size=2048, seq_len=8192, precision="bf16", efficiency=0.6, zero_stage=1)
    ParallelismOptimizer.solve(Models.Llama3_405B, fleet, **kw)          # compile once
    start = time.perf_counter()
    r = ParallelismOptimizer.solve(Models.Llama3_405B, fleet, **kw)
    assert time.perf_counter() - start < 1.0
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


def test_exercise4_example_prints_the_answer(exercise4, tmp_path):
    out = subprocess.run([sys.executable, str(ROOT / "examples" / "exercise4_parallelism.py")], capture_output=True,
                         text=True, timeout=300, cwd=tmp_path)
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
