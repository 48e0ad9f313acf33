"""LoadedReplicaModel (Wall 4 under load) and the ``arrival_rate`` of ServingModel and
ContinuousBatchingModel: checked against the serving_load sheet evaluated directly on inputs built by
formulations.serving_grid, against ServingModel at batch 1 (the zero-load limit), and for the
relations a queue must satisfy (monotone in the load, ordered percentiles, unstable past capacity)."""
import json
import math
import pathlib

import numpy as np
import pytest

from mlsysim_opt import (ContinuousBatchingModel, Hardware, InputError, Models, Q_, ServingModel, UnitError,
                         ureg)
from mlsysim_opt.catalog import default_node_for
from mlsysim_opt.formulations.serving_grid import _replica_inputs, _replica_values, evaluate_replica
from mlsysim_opt.models import serving_load
from mlsysim_opt import LoadedReplicaModel, LoadedReplicaResult
from mlsysim_opt.solvers.loaded import replica_values
from mlsysim_opt.solvers.serving import serving_case

L8, L70, H100 = Models.Llama3_8B, Models.Llama3_70B, Hardware.H100
MI300X = Hardware["AMD Instinct MI300X"]

# name: (model, hardware, precision, tp, batch slots, prompt, output, chunk)
CASES = {
    "70B-MI300X-fp8-B256": (L70, MI300X, "fp8", 1, 256, 512, 256, 512),       # the worked example
    "70B-H100-TP2-B64": (L70, H100, "fp8", 2, 64, 1000, 300, 256),
    "8B-H100-B8": (L8, H100, "fp16", 1, 8, 512, 128, 256),                   # the slots bind
    "8B-H100-B64": (L8, H100, "fp16", 1, 64, 512, 256, 512),
}

# each result field and the serving_load definition it reports (the sheet's unit: s, or a number)
SHEET_FIELDS = {"ttft_mean": "load_ttft", "ttft_p50": "load_ttft_p50", "ttft_p90": "load_ttft_p90",
                "ttft_p99": "load_ttft_p99", "itl_mean": "load_itl", "itl_p50": "load_itl_p50",
                "itl_p90": "load_itl_p90", "itl_p99": "load_itl_p99", "slot_wait": "load_slot_wait",
                "prefill_wait": "load_prefill_wait"}
SHEET_NUMBERS = {"mean_batch": "load_decoding_requests"}
TTFT = ("ttft_mean", "ttft_p50", "ttft_p90", "ttft_p99")
ITL = ("itl_mean", "itl_p50", "itl_p90", "itl_p99")


def solve(name, rate, **kw):
    model, hw, prec, tp, batch, prompt, output, chunk = CASES[name]
    args = dict(arrival_rate=rate, prompt_len=prompt, output_len=output, batch_size=batch,
                prefill_chunk_tokens=chunk, precision=prec, tp=tp)
    args.update(kw)
    return LoadedReplicaModel().solve(model, hw, **args)


def grid_inputs(name, pp=1):
    """serving_tp's inputs as the serving grid builds them (its own mapping), with the chunk size set."""
    model, hw, prec, tp, batch, prompt, output, chunk = CASES[name]
    _, _, values = _replica_inputs(model, hw, precision=prec, tp=tp, pp=pp, batch_size=batch, prompt_len=prompt,
                                   output_len=output, efficiency=None)
    return dict(values, prefill_chunk_tokens=float(chunk))


def grid_replica(name, pp=1, batch=None):
    model, hw, prec, tp, slots, prompt, output, _ = CASES[name]
    return evaluate_replica(model, hw, precision=prec, tp=tp, pp=pp, batch_size=batch or slots, prompt_len=prompt,
                            output_len=output)


def capacity(name, pp=1):
    return grid_replica(name, pp)["cb_capacity"]


# --- the inputs --------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", CASES)
def test_replica_inputs_are_mapped_as_the_serving_grid_maps_them(name):
    model, hw, prec, tp, batch, prompt, output, chunk = CASES[name]
    case = serving_case(model, hw, prompt + output, batch, prec, 0.5, None, prompt, output,
                        prefill_chunk_tokens=chunk)
    ours = replica_values(case, tp=tp, pp=2)
    grid = dict(_replica_values(case, case.model, case.hardware, default_node_for(case.hardware)),
                tp_size=float(tp), pp_size=2.0)
    assert ours == grid


# --- 1. zero load ------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["70B-MI300X-fp8-B256", "8B-H100-B8", "8B-H100-B64"])
def test_zero_load_is_one_request_alone(name):
    """At a vanishing load a request is alone: its TTFT is its own prefill (ServingModel at batch 1)
    and each of its tokens one decode step of batch 1, whatever the percentile."""
    model, hw, prec, tp, batch, prompt, output, chunk = CASES[name]
    alone = ServingModel().solve(model, hw, seq_len=prompt + output, prompt_len=prompt, output_len=output,
                                 batch_size=1, precision=prec, prefill_chunk_tokens=chunk)
    for rate, rel in ((0, 1e-12), (1e-9, 1e-6)):
        r = solve(name, rate)
        assert r.stable and r.zero_load_ttft.m_as("ms") == pytest.approx(alone.ttft.m_as("ms"), rel=1e-12)
        for field in TTFT:
            assert getattr(r, field).m_as("ms") == pytest.approx(alone.ttft.m_as("ms"), rel=rel), (rate, field)
        for field in ITL:
            assert getattr(r, field).m_as("ms") == pytest.approx(alone.itl.m_as("ms"), rel=rel), (rate, field)
        assert r.ttft(0.999).m_as("ms") == pytest.approx(alone.ttft.m_as("ms"), rel=rel)
        assert r.slot_wait_probability < 1e-9 and r.utilization < 1e-6


def test_zero_load_ttft_and_capacity_are_serving_tps():
    r = solve("70B-H100-TP2-B64", 1.0)
    grid = grid_replica("70B-H100-TP2-B64")
    assert r.zero_load_ttft.m_as("s") == pytest.approx(grid["cb_ttft"], rel=1e-12)
    assert r.full_load_capacity.m_as("1/s") == pytest.approx(grid["cb_capacity"], rel=1e-12)


# --- 2. monotone in the load, ordered in the percentile ------------------------------------------------

@pytest.mark.parametrize("name", CASES)
def test_latency_grows_with_the_load(name):
    rates = np.linspace(0.0, 0.97, 40) * capacity(name)
    results = [r for r in (solve(name, float(x)) for x in rates) if r.stable]
    assert len(results) >= 30
    series = {f: np.array([getattr(r, f).m_as("ms") for r in results]) for f in TTFT + ITL}
    for field in ("ttft_mean", "ttft_p99", "itl_mean"):
        assert np.all(np.diff(series[field]) > 0), field
    for field in ("ttft_p50", "ttft_p90", "itl_p99"):
        assert np.all(np.diff(series[field]) >= -1e-12 * series[field][1:]), field
    utilization = [r.utilization for r in results]
    assert utilization == sorted(utilization) and utilization[-1] < 1
    # at a positive load a request waits on average: the mean TTFT exceeds its own prefill
    assert np.all(series["ttft_mean"][1:] > results[0].zero_load_ttft.m_as("ms"))


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("fraction", [0.2, 0.5, 0.8])
def test_percentiles_are_ordered(name, fraction):
    r = solve(name, fraction * capacity(name))
    assert r.stable
    for kind in ("ttft", "itl"):
        p50, p90, p99 = (getattr(r, f"{kind}_{p}").m_as("ms") for p in ("p50", "p90", "p99"))
        assert p50 <= p90 <= p99, kind
        levels = [0.05, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999]
        values = [getattr(r, kind)(q).m_as("ms") for q in levels]
        assert all(b >= a * (1 - 1e-12) for a, b in zip(values, values[1:])), kind


# --- 3. the sheet, evaluated directly ------------------------------------------------------------------

@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.9])
def test_equals_the_load_sheet_evaluated_directly(name, fraction):
    rate = fraction * capacity(name)
    r = solve(name, rate)
    out = serving_load.evaluate(None, **dict(grid_inputs(name), arrival_rate=rate, quantile=0.95))
    for field, definition in SHEET_FIELDS.items():
        assert getattr(r, field).m_as("s") == pytest.approx(out[definition], rel=1e-12), field
    for field, definition in SHEET_NUMBERS.items():
        assert getattr(r, field) == pytest.approx(out[definition], rel=1e-12), field
    assert r.ttft(0.95).m_as("s") == pytest.approx(out["load_ttft_quantile"], rel=1e-12)
    assert r.itl(0.95).m_as("s") == pytest.approx(out["load_itl_quantile"], rel=1e-12)
    # the binding utilisation: the sheet's (slots or chunk budget) or the arrivals over the full-batch capacity
    binding = {"slots": out["load_slot_utilization"], "prefill chunk budget": out["load_prefill_utilization"],
               "full-batch capacity": rate / capacity(name)}
    assert max(out["load_slot_utilization"], out["load_prefill_utilization"]) == out["load_utilization"]
    assert r.bottleneck == max(binding, key=binding.get)
    assert r.utilization == pytest.approx(max(binding.values()), rel=1e-12)
    assert r.stable == (r.utilization < 1)
    erlang = serving_load.slot_wait_probability(float(CASES[name][4]), out["load_slot_offered_load"],
                                                out["load_peakedness"])
    assert r.slot_wait_probability == pytest.approx(erlang, rel=1e-12)


def test_named_and_numeric_percentiles_agree():
    r = solve("8B-H100-B64", 0.6 * capacity("8B-H100-B64"))
    for kind in ("ttft", "itl"):
        assert getattr(r, kind)("mean") == getattr(r, f"{kind}_mean")
        for name, level in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99)):
            assert getattr(r, kind)(name) == getattr(r, f"{kind}_{name}")
            assert getattr(r, kind)(level).m_as("ms") == pytest.approx(getattr(r, f"{kind}_{name}").m_as("ms"),
                                                                      rel=1e-12)
        assert getattr(r, kind)("p95") == getattr(r, kind)(0.95)
        assert getattr(r, kind)(" P99 ") == getattr(r, f"{kind}_p99")


def test_arrival_rate_as_number_quantity_or_text():
    reference = solve("8B-H100-B64", 5.0)
    for rate in (5, "5 /s", "300 /min", Q_(5, "1/s"), Q_(0.005, "1/ms"), "5 request/s"):
        r = solve("8B-H100-B64", rate)
        assert r.arrival_rate.m_as("1/s") == pytest.approx(5.0, rel=1e-12)
        assert r.ttft_mean.m_as("ms") == pytest.approx(reference.ttft_mean.m_as("ms"), rel=1e-12)


def test_results_carry_units_and_serialize():
    r = solve("8B-H100-B64", 5.0)
    for field in TTFT + ITL + ("zero_load_ttft", "slot_wait", "prefill_wait"):
        assert getattr(r, field).dimensionality == ureg.second.dimensionality, field
    for field in ("arrival_rate", "full_load_capacity"):
        assert getattr(r, field).dimensionality == (1 / ureg.second).dimensionality, field
    data = json.loads(json.dumps(r.to_dict()))
    assert data["ttft_p99"]["unit"] == "ms" and data["ttft_p99"]["value"] == pytest.approx(r.ttft_p99.m_as("ms"))
    assert data["stable"] is True and data["batch_size"] == 64 and data["prefill_chunk_tokens"] == 512


# --- 4. past stability -------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["70B-MI300X-fp8-B256", "8B-H100-B64"])
def test_beyond_the_full_batch_capacity_waits_are_infinite(name):
    grid = grid_replica(name)
    cap = grid["cb_capacity"]
    below = solve(name, 0.95 * cap)
    assert below.stable and all(math.isfinite(getattr(below, f).m) for f in TTFT)
    for factor in (1.0, 1.02, 1.5, 3.0):
        above = solve(name, factor * cap)
        assert not above.stable and above.slot_wait_probability == 1.0
        assert above.bottleneck == "full-batch capacity" and above.utilization == pytest.approx(factor, rel=1e-12)
        for field in TTFT + ("slot_wait", "prefill_wait"):
            assert math.isinf(getattr(above, field).m), (factor, field)
        assert math.isinf(above.ttft(0.95).m)
        # admissions are paced by departures: every slot decodes, at serving_tp's full-load ITL
        assert above.mean_batch == pytest.approx(CASES[name][4], rel=1e-12)
        assert above.itl_mean.m_as("s") == pytest.approx(grid["cb_itl"], rel=1e-9)
        for field in ITL:
            assert 0 < getattr(above, field).m < math.inf, (factor, field)
        assert above.itl(0.95) >= above.itl_mean * 0.5
        assert "full-batch capacity" in above.unstable_reason
        text = str(above)
        assert "UNSTABLE" in text and "infinite" in text


def test_saturated_slots_are_unstable():
    """B = 8: the slots saturate below the full-batch capacity (the sheet's load_utilization >= 1)."""
    name = "8B-H100-B8"
    cap = capacity(name)
    sheet = serving_load.evaluate(("load_utilization", "load_slot_utilization", "load_prefill_utilization"),
                                  **dict(grid_inputs(name), arrival_rate=0.99 * cap))
    assert sheet["load_utilization"] >= 1 and sheet["load_slot_utilization"] >= sheet["load_prefill_utilization"]
    r = solve(name, 0.99 * cap)
    assert not r.stable and r.utilization >= 1 and r.bottleneck == "slots" and "slots" in r.unstable_reason
    assert all(math.isinf(getattr(r, f).m) for f in TTFT)
    assert "UNSTABLE" in str(r)


# --- 5. pipeline parallelism -------------------------------------------------------------------------

@pytest.mark.parametrize("fraction", [0.3, 0.6, 0.9])
def test_pp2_is_two_loops_at_half_the_load(fraction):
    """A PP=2 replica at lambda: one PP=1 loop whose costs are the PP=2 replica's (prefill, decode
    step) draining at half its full-batch capacity, at lambda / 2."""
    name = "8B-H100-B64"
    pp2_capacity = capacity(name, pp=2)
    rate = fraction * pp2_capacity
    r = solve(name, rate, pp=2)
    costs = {k: float(v) for k, v in serving_load.replica_costs(**grid_inputs(name, pp=2)).items()}
    one_stage = {k: float(v) for k, v in serving_load.replica_costs(**grid_inputs(name, pp=1)).items()}
    assert costs["replica_step_base_memory"] != one_stage["replica_step_base_memory"]    # the hop counts
    loop = dict(grid_inputs(name, pp=1), **dict(costs, replica_capacity=pp2_capacity / 2), arrival_rate=rate / 2)
    out = serving_load.evaluate(None, **loop)
    for field, definition in SHEET_FIELDS.items():
        assert getattr(r, field).m_as("s") == pytest.approx(out[definition], rel=1e-12), field
    assert r.utilization == pytest.approx(max(out["load_utilization"], fraction), rel=1e-12)
    assert r.full_load_capacity.m_as("1/s") == pytest.approx(pp2_capacity, rel=1e-12)
    assert r.zero_load_ttft.m_as("s") == pytest.approx(grid_replica(name, pp=2)["cb_ttft"], rel=1e-12)
    assert r.stable and r.pp == 2 and "PP2" in str(r)


def test_pp2_is_unstable_at_its_full_batch_capacity():
    name = "8B-H100-B64"
    cap = capacity(name, pp=2)
    assert solve(name, 0.999 * cap, pp=2).stable
    assert not solve(name, 1.001 * cap, pp=2).stable


# --- 6. bad input ------------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, field", [
    (dict(arrival_rate=-1), "arrival_rate"),
    (dict(arrival_rate="fast"), "arrival_rate"),
    (dict(arrival_rate=float("nan")), "arrival_rate"),
    (dict(arrival_rate=math.inf), "arrival_rate"),
    (dict(arrival_rate=True), "arrival_rate"),
    (dict(arrival_rate=5, batch_size=0), "batch_size"),
    (dict(arrival_rate=5, output_len=0), "output_len"),
    (dict(arrival_rate=5, prompt_len=0), "prompt_len"),
    (dict(arrival_rate=5, prefill_chunk_tokens=0), "prefill_chunk_tokens"),
    (dict(arrival_rate=5, efficiency=1.5), "efficiency"),
    (dict(arrival_rate=5, tp=3), "tp"),                  # 32 heads, 8 KV heads
    (dict(arrival_rate=5, tp=0), "tp"),
    (dict(arrival_rate=5, pp=33), "pp"),                 # 32 layers
    (dict(arrival_rate=5, tp=8, pp=2), "tp"),            # 16 accelerators, an 8-way node
])
def test_bad_inputs_name_the_field(kwargs, field):
    with pytest.raises(InputError) as err:
        LoadedReplicaModel().solve(L8, H100, **kwargs)
    assert err.value.field == field and field in str(err.value)


def test_a_rate_with_the_wrong_unit_is_a_unit_error():
    with pytest.raises(UnitError, match="arrival_rate"):
        LoadedReplicaModel().solve(L8, H100, arrival_rate="5 GB")


@pytest.mark.parametrize("level", [1.5, 0, 1, -0.1, "fast", "p100", "p0", True, None, float("nan")])
def test_bad_percentile_names_the_field(level):
    r = solve("8B-H100-B64", 5.0)
    for kind in (r.ttft, r.itl):
        with pytest.raises(InputError) as err:
            kind(level)
        assert err.value.field == "percentile" and "percentile" in str(err.value)


# --- 7. ServingModel and ContinuousBatchingModel with an arrival rate ----------------------------------

def test_serving_model_attaches_the_loaded_replica():
    args = dict(seq_len=768, prompt_len=512, output_len=256, batch_size=32, precision="fp8", efficiency=0.4,
                prefill_chunk_tokens=256)
    plain = ServingModel().solve(L8, H100, **args)
    loaded = ServingModel().solve(L8, H100, arrival_rate="6 /s", **args)
    assert plain.load is None and isinstance(loaded.load, LoadedReplicaResult)
    direct = LoadedReplicaModel().solve(L8, H100, arrival_rate=6, prompt_len=512, output_len=256, batch_size=32,
                                        precision="fp8", efficiency=0.4, prefill_chunk_tokens=256)
    assert loaded.load.to_dict() == direct.to_dict()
    assert (loaded.load.batch_size, loaded.load.tp, loaded.load.pp) == (32, 1, 1)
    # the same accelerator and batch: the memory the serving sheet counts is the replica's at TP1
    assert loaded.load.memory_utilization == pytest.approx(loaded.memory_utilization, rel=1e-12)
    assert loaded.load.feasible == loaded.feasible
    # everything else as before
    assert {k: v for k, v in loaded.to_dict().items() if k != "load"} == \
        {k: v for k, v in plain.to_dict().items() if k != "load"}
    assert str(loaded).startswith(str(plain)) and "load" not in str(plain)
    assert "TTFT (ms)" in str(loaded)


def test_serving_model_keeps_its_kv_reservation_under_load():
    """seq_len reserves KV (memory) and does not change the latencies."""
    short = ServingModel().solve(L8, H100, seq_len=768, prompt_len=512, output_len=256, batch_size=64,
                                 arrival_rate=5).load
    long = ServingModel().solve(L8, H100, seq_len=8192, prompt_len=512, output_len=256, batch_size=64,
                                arrival_rate=5).load
    for field in TTFT + ITL:
        assert getattr(long, field) == getattr(short, field), field
    assert long.memory_utilization > short.memory_utilization


def test_serving_model_bad_rate_and_no_output():
    with pytest.raises(InputError) as err:
        ServingModel().solve(L8, H100, seq_len=768, arrival_rate=-2)
    assert err.value.field == "arrival_rate"
    with pytest.raises(InputError) as err:
        ServingModel().solve(L8, H100, seq_len=768, prompt_len=768, output_len=0, arrival_rate=2)
    assert err.value.field == "output_len"
    assert ServingModel().solve(L8, H100, seq_len=768, prompt_len=768, output_len=0).load is None


def test_continuous_batching_attaches_the_paged_replica():
    args = dict(max_seq_len=4096, mean_request_tokens=1024)
    plain = ContinuousBatchingModel().solve(L8, H100, **args)
    loaded = ContinuousBatchingModel().solve(L8, H100, arrival_rate=10, **args)
    assert plain.load is None
    load = loaded.load
    assert load.batch_size == loaded.paged_max_requests
    assert load.prompt_len + load.output_len == 1024 and load.output_len == 512
    direct = LoadedReplicaModel().solve(L8, H100, arrival_rate=10, prompt_len=512, output_len=512,
                                        batch_size=loaded.paged_max_requests)
    for field in TTFT + ITL + ("zero_load_ttft", "full_load_capacity"):
        assert getattr(load, field).m_as(getattr(direct, field).u) == pytest.approx(getattr(direct, field).m,
                                                                                   rel=1e-12), field
    # the paged allocator admitted paged_max_requests: their blocks fit in the replica's memory
    assert load.feasible and load.memory_utilization <= 1
    assert {k: v for k, v in loaded.to_dict().items() if k != "load"} == \
        {k: v for k, v in plain.to_dict().items() if k != "load"}
    assert str(loaded).startswith(str(plain))
    custom = ContinuousBatchingModel().solve(L8, H100, arrival_rate=10, prompt_len=2000, output_len=100, **args).load
    assert (custom.prompt_len, custom.output_len) == (2000, 100)
    assert custom.ttft_mean > load.ttft_mean                  # a longer prompt to prefill


def test_continuous_batching_under_load_edge_cases():
    nothing_fits = ContinuousBatchingModel().solve(L70, H100, max_seq_len=4096, arrival_rate=1)
    assert not nothing_fits.feasible and nothing_fits.load is None
    with pytest.raises(InputError) as err:
        ContinuousBatchingModel().solve(L70, H100, max_seq_len=4096, arrival_rate="fast")
    assert err.value.field == "arrival_rate"
    with pytest.raises(InputError) as err:
        ContinuousBatchingModel().solve(L8, H100, max_seq_len=1024, arrival_rate=1, prompt_len=1000, output_len=100)
    assert err.value.field == "prompt_len" and "max_seq_len" in str(err.value)


def test_text_fits_one_screen():
    for r in (solve("8B-H100-B64", 5.0), solve("8B-H100-B64", 5.0, pp=2), solve("8B-H100-B8", 1e3)):
        lines = str(r).splitlines()
        assert len(lines) <= 12 and max(len(line) for line in lines) <= 120
        assert lines[0].startswith("LoadedReplicaResult")


# --- 8. the worked example in docs/walls/serving-under-load.md -----------------------------------------

def test_the_worked_example_script_runs_and_its_table_behaves(capsys):
    """The page's script runs as printed; its rows grow with the load up to the capacity, where the
    queue is unstable (independent of the numbers the page shows)."""
    page = (pathlib.Path(__file__).resolve().parents[1] / "docs" / "walls" / "serving-under-load.md").read_text()
    section = page[page.index("## Worked example"):]
    script = section[section.index("```python") + len("```python"):section.index("```", section.index("```python") + 3)]
    exec(compile(script, "serving-under-load.md", "exec"), {})
    printed = capsys.readouterr().out.splitlines()
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in printed[2:] if line.startswith("| ")]
    rates = [float(row[0]) for row in rows]
    cap = LoadedReplicaModel().solve(L70, MI300X, arrival_rate=0, precision="fp8", batch_size=256).full_load_capacity
    stable = [row for rate, row in zip(rates, rows) if rate < cap.m_as("1/s")]
    assert 0 < len(stable) < len(rows)
    for column in range(1, 7):
        values = [float(row[column]) for row in stable]
        assert values == sorted(values), column
    assert all(cell == "inf" for row in rows[len(stable):] for cell in row[1:4])
    assert printed[-1].startswith("alone: TTFT")
