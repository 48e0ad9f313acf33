"""The serving_load sheet: a continuously batched replica under load, checked at zero load against
serving_tp, for monotonicity, and against the discrete-event simulator in tests/replica_simulator.py.

Tolerances against the simulator (30,000 Poisson requests per point, seed 11; loads at 20%, 50% and
80% of the load where the sheet's ``load_utilization`` reaches 1). Observed: the worst relative
error over seeds 11-14, at any of the three loads.

| where | mean TTFT | p90 TTFT | p99 TTFT | mean ITL | p99 ITL |
|---|---|---|---|---|---|
| the chunk budget binds (B = 256, 64): tolerance | 10% | 15% | 25% | 8% | 5% |
| observed | 5.3% | 10.6% | 19.9% | 6.2% | 3.2% |
| the slots bind (B = 8, 32): tolerance | 20% | 25% | 40% | 8% | 5% |
| observed | 15.8% | 18.4% | 32.3% | 2.7% | 1.2% |

Where the approximations are weaker, and why:

* p99 at 20% load runs high by up to 20% (p90 low by up to 11%): the M/D/1 wait for the chunk
  budget has a shorter tail than the exponential (Kingman) tail the sheet gives it.
* Where the slots bind (80% load), the sheet is low: the requests that fill the slots arrived in a
  burst and leave late, so the wait for a slot has a longer tail than M/D/c draining gives.
* Mean ITL at 80% load with B = 256 is low by up to 6%: the decode step is convex in the batch and
  the sheet takes it at the mean batch. p50 ITL (not asserted) jumps between a plain decode step
  and one carrying a chunk when about half the iterations carry one (off by 36% at B = 64, 80%).
"""
import numpy as np
import pytest

from mlsysim_opt import Hardware, Models
from mlsysim_opt.catalog import default_node_for
from mlsysim_opt.solvers.distributed import replica_link_values
from mlsysim_opt.formulations.serving_grid import evaluate_replica
from mlsysim_opt.models import serving_load, serving_tp
from mlsysim_opt.solvers.serving import DEFAULT_PREFILL_CHUNK_TOKENS, serving_case
from mlsysim_opt.types import PRECISION_BYTES
from replica_simulator import simulate


def replica(model, hardware, precision, tp, batch, prompt, output, chunk, kv_precision=None):
    """serving_tp's inputs for one replica, mapped as formulations.serving_grid maps them (a test
    below checks the two agree), with the prefill chunk size set."""
    case = serving_case(model, hardware, prompt + output, batch, precision, None, kv_precision, prompt, output,
                        prefill_chunk_tokens=chunk)
    node = default_node_for(case.hardware)
    return dict(case.values, hidden_size=float(model.hidden_size), tp_size=float(tp), pp_size=1.0,
                batch_size=float(batch), **replica_link_values(node),
                activation_bytes_per_value=PRECISION_BYTES[case.choice.compute_precision],
                memory_capacity=case.hardware.memory.capacity.m_as("B"))


# name: (model, hardware, precision, TP, slots B, prompt p, output o, chunk C, which queue binds)
CASES = {
    "70B-MI300X-B256": (Models.Llama3_70B, Hardware["AMD Instinct MI300X"], "fp8", 1, 256, 1024, 256, 512, "chunk"),
    "70B-H100-TP2-B64": (Models.Llama3_70B, Hardware.H100, "fp8", 2, 64, 1000, 300, 300, "chunk"),
    "8B-H100-B8": (Models.Llama3_8B, Hardware.H100, "fp16", 1, 8, 512, 128, 256, "slots"),
    "8B-H100-B32": (Models.Llama3_8B, Hardware.H100, "fp16", 1, 32, 1000, 200, 2048, "slots"),
}

KV_FORMATS = {"70B-MI300X-B256": "fp8", "70B-H100-TP2-B64": "fp8"}
"""The fp8 replicas store an fp8 KV cache too (asked for: the default is 16-bit), the deployment
the simulation tolerances below were set on; the others keep the default."""


def case_values(name):
    model, hw, prec, tp, batch, prompt, output, chunk, _ = CASES[name]
    return replica(model, hw, prec, tp, batch, prompt, output, chunk, KV_FORMATS.get(name))


def at(values, rate, names=None, **extra):
    return serving_load.evaluate(names, **dict(values, arrival_rate=rate, **extra))


def stable_limit(values):
    """The arrival rate at which ``load_utilization`` reaches 1 (bisection on the sheet)."""
    lo, hi = 0.0, 1.0
    while at(values, hi, ("load_utilization",))["load_utilization"] < 1:
        lo, hi = hi, 2 * hi
    for _ in range(40):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if at(values, mid, ("load_utilization",))["load_utilization"] < 1 else (lo, mid)
    return lo


@pytest.mark.parametrize("name", CASES)
def test_inputs_are_those_of_the_serving_grid(name):
    model, hw, prec, tp, batch, prompt, output, _, _ = CASES[name]
    values = replica(model, hw, prec, tp, batch, prompt, output, DEFAULT_PREFILL_CHUNK_TOKENS)   # the grid's chunk
    ours = serving_tp.sheet.compiled(("cb_ttft", "cb_itl", "cb_capacity", "tp_memory_utilization"))(**values)
    grid = evaluate_replica(model, hw, precision=prec, tp=tp, pp=1, batch_size=batch, prompt_len=prompt,
                            output_len=output)
    for key, value in ours.items():
        assert value == pytest.approx(grid[key], rel=1e-12), key
    assert ours["tp_memory_utilization"] <= 1.0          # every case is a replica that fits


@pytest.mark.parametrize("name", CASES)
def test_replica_costs_rebuild_tp_itl_and_cb_capacity(name):
    values = case_values(name)
    batch = int(values["batch_size"])
    costs = serving_load.replica_costs(**values)
    sizes = np.arange(1, batch + 1, dtype=float)
    step = serving_tp.sheet.compiled(("tp_itl",)).vector(**dict(values, batch_size=sizes))["tp_itl"]
    rebuilt = np.maximum(costs["replica_step_base_compute"] + costs["replica_step_slope_compute"] * sizes,
                         costs["replica_step_base_memory"] + costs["replica_step_slope_memory"] * sizes)
    np.testing.assert_allclose(rebuilt, step, rtol=1e-12)
    tp = serving_tp.sheet.compiled(("cb_ttft", "cb_capacity", "cb_itl"))(**values)
    assert float(costs["replica_prefill_time"]) == pytest.approx(tp["cb_ttft"], rel=1e-12)
    assert float(costs["replica_capacity"]) == pytest.approx(tp["cb_capacity"], rel=1e-12)
    # At serving_tp's full-load rate every slot decodes, and the ITL is serving_tp's cb_itl.
    assert at(values, tp["cb_capacity"], ("load_itl",))["load_itl"] == pytest.approx(tp["cb_itl"], rel=1e-9)


# --- 1. zero load ------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("chunk", [128, 512, 4096])
def test_zero_load_ttft_is_the_single_request_prefill(name, chunk):
    values = dict(case_values(name), prefill_chunk_tokens=float(chunk))
    single = serving_tp.sheet.compiled(("cb_ttft", "tp_itl"))(**dict(values, batch_size=1.0))
    out = at(values, 0.0, quantile=0.999)
    for key in ("load_ttft", "load_ttft_p50", "load_ttft_p90", "load_ttft_p99", "load_ttft_quantile"):
        assert out[key] == pytest.approx(single["cb_ttft"], rel=1e-12), key
    assert out["load_itl"] == pytest.approx(single["tp_itl"], rel=1e-12)     # one request decoding alone
    assert out["load_itl_p99"] == pytest.approx(single["tp_itl"], rel=1e-12)
    assert out["load_slot_wait"] == out["load_prefill_wait"] == out["load_iteration_residual"] == 0.0


def test_zero_load_in_the_compiled_scalar_function():
    """The sheet compiled as it stands (no ``evaluate`` helper): finite at zero load, no 0/0."""
    values = dict(case_values("8B-H100-B8"), **{k: float(v) for k, v in
                                                 serving_load.replica_costs(**case_values("8B-H100-B8")).items()})
    names = ("load_ttft", "load_ttft_p99", "load_ttft_quantile", "load_itl_p99")
    f = serving_load.sheet.compiled(names)
    out = f(**dict(values, arrival_rate=0.0, wait_probability=0.0, quantile=0.9))
    assert out["load_ttft"] == out["load_ttft_p99"] == out["load_ttft_quantile"] == values["replica_prefill_time"]
    vec = f.vector(**dict(values, arrival_rate=np.array([0.0, 1.0]), wait_probability=0.0, quantile=0.9))
    scalar = f(**dict(values, arrival_rate=1.0, wait_probability=0.0, quantile=0.9))
    for key in names:
        assert vec[key][1] == pytest.approx(scalar[key], rel=1e-12)


# --- 2. monotone -------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", CASES)
def test_latency_grows_with_load(name):
    values = case_values(name)
    rates = np.linspace(0.0, 0.97, 60) * stable_limit(values)
    out = at(values, rates)
    for key in ("load_ttft", "load_ttft_p50", "load_ttft_p90", "load_ttft_p99", "load_itl", "load_itl_p99"):
        assert np.all(np.diff(out[key]) >= -1e-12 * out[key][1:]), key
    for key in ("load_ttft", "load_ttft_p99", "load_itl"):
        assert np.all(np.diff(out[key]) > 0), key
    assert np.all(out["load_ttft_p50"] <= out["load_ttft_p90"]) and np.all(out["load_ttft_p90"] <= out["load_ttft_p99"])
    # At a positive load the first token costs at least the single-request prefill, the iterations
    # that carry it (each at least one iteration long) and, on average, the residual of a running one.
    positive = rates > 0
    one_iteration = out["load_prefill_service"] / out["load_prefill_iterations"]
    for key in ("load_ttft", "load_ttft_p50"):
        assert np.all(out[key][positive] >= out["load_prefill_service"][positive]), key
        assert np.all(out[key][positive] >= one_iteration[positive]), key
    assert np.all(out["load_ttft"][positive] > values_cb_ttft(values) + out["load_iteration_residual"][positive] * 0.99)


def values_cb_ttft(values):
    return serving_tp.sheet.compiled(("cb_ttft",))(**values)["cb_ttft"]


def test_itl_grows_with_chunk_work():
    values = case_values("70B-MI300X-B256")
    rate = 0.5 * stable_limit(values)
    chunks = [128, 256, 512, 1024]
    by_chunk = [at(dict(values, prefill_chunk_tokens=float(c)), rate) for c in chunks]
    p99 = [o["load_itl_p99"] for o in by_chunk]
    assert p99 == sorted(p99) and p99[-1] > 3 * p99[0]          # a bigger chunk stalls the decodes longer
    prompts = [256.0, 512.0, 1024.0]                              # more prefill work per request, same load
    mean = [at(dict(values, prompt_tokens=pt), rate, ("load_itl",))["load_itl"] for pt in prompts]
    assert mean == sorted(mean) and mean[0] < mean[-1]


def test_issue_example_ttft_under_load_exceeds_an_iteration_and_a_half():
    """Llama-3-70B, MI300X fp8 TP1, batch 256: a new request waits for the running iteration, then
    its chunks ride in iterations shared with the decodes (the issue's lower bound)."""
    values = case_values("70B-MI300X-B256")
    rate = 0.5 * stable_limit(values)
    out = at(values, rate)
    single = values_cb_ttft(values)
    assert out["load_ttft"] > single + out["load_decode_iteration"] * 0.5
    assert out["load_ttft_p99"] > 2 * out["load_ttft_p50"] > 2 * single


def test_overload_is_infinite_not_negative():
    values = case_values("8B-H100-B8")
    limit = stable_limit(values)
    out = at(values, np.array([0.99, 1.01, 2.0]) * limit)
    assert np.all(np.isfinite(out["load_ttft"][:1])) and np.all(np.isinf(out["load_ttft"][1:]))
    assert np.all(np.isinf(out["load_ttft_p99"][1:]))
    assert np.all(out["load_utilization"][1:] >= 1)


# --- 3. the simulator --------------------------------------------------------------------------------

def simulator_inputs(values):
    batch = int(values["batch_size"])
    step = serving_tp.sheet.compiled(("tp_itl",)).vector(**dict(values, batch_size=np.arange(1, batch + 1.0)))["tp_itl"]
    return dict(slots=batch, prompt_tokens=int(values["prompt_tokens"]), chunk_tokens=int(values["prefill_chunk_tokens"]),
                output_tokens=int(values["output_tokens"]), decode_step=np.concatenate([[0.0], step]),
                prefill_time_per_token=values_cb_ttft(values) / values["prompt_tokens"])


def test_simulator_alone_request_sees_the_single_request_costs():
    """At a vanishing load every request is alone: TTFT is the single-request prefill, every
    inter-token gap is one decode step of batch 1."""
    values = case_values("8B-H100-B8")
    inputs = simulator_inputs(values)
    r = simulate(arrival_rate=1e-3, requests=200, seed=3, **inputs)
    assert np.allclose(r.ttft, values_cb_ttft(values), rtol=1e-9)
    assert r.itl_values.tolist() == pytest.approx([inputs["decode_step"][1]], rel=1e-12)


TOLERANCE = {   # relative: mean TTFT, p90, p99, mean ITL, p99 ITL (see the module docstring)
    "chunk": {"ttft": 0.10, "p90": 0.15, "p99": 0.25, "itl": 0.08, "itl_p99": 0.05},
    "slots": {"ttft": 0.20, "p90": 0.25, "p99": 0.40, "itl": 0.08, "itl_p99": 0.05},
}


@pytest.mark.parametrize("name", CASES)
def test_sheet_agrees_with_the_simulation(name):
    values = case_values(name)
    tolerance = TOLERANCE[CASES[name][-1]]
    limit = stable_limit(values)
    inputs = simulator_inputs(values)
    for fraction in (0.2, 0.5, 0.8):
        rate = fraction * limit
        sim = simulate(arrival_rate=rate, requests=30000, seed=11, **inputs)
        out = at(values, rate)
        pairs = {"ttft": (out["load_ttft"], sim.ttft.mean()),
                 "p90": (out["load_ttft_p90"], sim.ttft_quantile(0.9)),
                 "p99": (out["load_ttft_p99"], sim.ttft_quantile(0.99)),
                 "itl": (out["load_itl"], sim.mean_itl),
                 "itl_p99": (out["load_itl_p99"], sim.itl_quantile(0.99))}
        for key, (sheet_value, simulated) in pairs.items():
            assert sheet_value == pytest.approx(simulated, rel=tolerance[key]), (name, fraction, key)
