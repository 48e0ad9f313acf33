"""ParallelismOptimizer(backend="highs"): the MILP over the enumerated splits agrees with the
forward enumeration and with a brute force over every micro-batch size, scales to 16,384 GPUs and
explains a job that fits nowhere."""
import pytest
from test_parallelism import NON_POWER_OF_TWO, brute_force, seeded_instances

from mlsysim_opt import Fabrics, Fleet, Models, Nodes, ParallelismOptimizer, Systems, TransformerWorkload
from mlsysim_opt.errors import UnknownNameError
from mlsysim_opt.highs import SolveStatus

CASES = [
    (Models.Llama3_70B, 8, 512, 0.4, 0), (Models.Llama3_70B, 16, 256, 0.5, 1), (Models.Llama3_8B, 2, 64, 0.5, 0),
    (Models.GPT3, 32, 1024, 0.45, 1), (Models.Mixtral_8x7B, 4, 128, 0.5, 0), (Models.Llama3_8B, 1, 16, 0.5, 0),
]


@pytest.mark.parametrize("model,nodes,batch,eta,zero", CASES, ids=[f"{c[0].name}-{c[1]}n-b{c[2]}" for c in CASES])
def test_highs_agrees_with_enumeration(model, nodes, batch, eta, zero):
    fleet = Fleet(name=f"{nodes}xDGX", node=Nodes.DGX_H100, count=nodes, fabric=Fabrics.InfiniBand_NDR)
    kw = dict(batch_size=batch, efficiency=eta, zero_stage=zero)
    a = ParallelismOptimizer().solve(model, fleet, **kw)
    b = ParallelismOptimizer(backend="highs").solve(model, fleet, **kw)
    assert b.solver.status is SolveStatus.OPTIMAL
    assert b.best_step_time.m_as("s") == pytest.approx(a.best_step_time.m_as("s"), rel=1e-12)
    assert b.best_config == a.best_config
    assert b.total_searched == a.total_searched


def test_mfu_objective_agrees_too():
    fleet = Fleet(name="64", node=Nodes.DGX_H100, count=8, fabric=Fabrics.InfiniBand_NDR)
    a = ParallelismOptimizer().solve(Models.Llama3_70B, fleet, batch_size=512, objective="mfu")
    b = ParallelismOptimizer(backend="highs").solve(Models.Llama3_70B, fleet, batch_size=512, objective="mfu")
    assert b.best_mfu == pytest.approx(a.best_mfu, rel=1e-12)


def test_scales_to_16k_gpus():
    fleet = Systems.Clusters.Meta_Llama3_16K_H100
    r = ParallelismOptimizer(backend="highs").solve(Models.Llama3_405B, fleet, batch_size=2048, seq_len=8192,
                                                    zero_stage=1)
    assert fleet.total_accelerators == 16384
    assert r.solver.status is SolveStatus.OPTIMAL and r.best_config["tp"] <= 8
    assert r.best_config["tp"] * r.best_config["pp"] * r.best_config["dp"] == 16384


def test_nothing_fits_is_explained_with_the_memory_needed():
    fleet = Fleet(name="one node", node=Nodes.DGX_H100, count=1, fabric=Fabrics.InfiniBand_NDR)
    r = ParallelismOptimizer(backend="highs").solve(Models.Llama3_405B, fleet, batch_size=8)
    assert r.best_config is None and r.status == "infeasible"
    assert "memory per accelerator must rise to" in r.infeasibility_reason
    exhaustive = ParallelismOptimizer().solve(Models.Llama3_405B, fleet, batch_size=8)
    smallest = min(float(c) for c in [exhaustive.infeasibility_reason.split("needs ")[1].split(" GB")[0]])
    needed = float(r.infeasibility_reason.split("rise to ")[1].split(" GB")[0].replace(",", ""))
    assert needed == pytest.approx(smallest, rel=0.01)


def test_unknown_backend():
    with pytest.raises(UnknownNameError, match="highs"):
        ParallelismOptimizer(backend="gurobi")


def _solve_both(case):
    model, nodes, batch, seq, zero, eta = case
    fleet = Fleet(name=f"{nodes}xDGX", node=Nodes.DGX_H100, count=nodes, fabric=Fabrics.InfiniBand_NDR)
    kw = dict(batch_size=batch, seq_len=seq, zero_stage=zero, efficiency=eta)
    return [ParallelismOptimizer(backend=b).solve(getattr(Models, model), fleet, **kw) for b in ("exhaustive", "highs")]


@pytest.mark.parametrize("case", NON_POWER_OF_TWO, ids=lambda c: f"{c[0]}-{c[1]}n-b{c[2]}-s{c[3]}-z{c[4]}")
def test_highs_finds_the_non_power_of_two_micro_batch(case):
    times = brute_force(*case)
    best = min(times, key=times.get)
    _, milp = _solve_both(case)
    assert milp.solver.status is SolveStatus.OPTIMAL
    assert milp.best_step_time.m_as("s") == pytest.approx(times[best], rel=1e-12)
    assert milp.best_config["microbatch_size"] & (milp.best_config["microbatch_size"] - 1) != 0


@pytest.mark.parametrize("case", seeded_instances(), ids=lambda c: f"{c[0]}-{c[1]}n-b{c[2]}-s{c[3]}-z{c[4]}")
def test_both_backends_equal_the_brute_force_on_random_instances(case):
    times = brute_force(*case)
    exhaustive, milp = _solve_both(case)
    assert milp.total_searched == exhaustive.total_searched
    if not times:
        assert exhaustive.best_config is None and milp.best_config is None
        return
    assert milp.solver.status is SolveStatus.OPTIMAL
    for r in (exhaustive, milp):
        assert r.best_step_time.m_as("s") == pytest.approx(min(times.values()), rel=1e-12)

