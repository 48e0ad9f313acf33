"""Validation against published measurements (docs/validation.md) and the side-by-side harness with
mlsysim 0.3.0 (benchmarks/vs_mlsysim.py).

The published figures come from the papers and engine documentation named in each check; every
prediction must stay within the error budget docs/validation.md states, and the page must be the
one benchmarks/validation.py generates, so the table cannot drift silently.
"""
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

import validation  # noqa: E402

CHECKS = validation.checks()


@pytest.fixture(scope="module")
def results():
    return {r["check"].id: r for r in validation.evaluate()}


# ---------------------------------------------------------------------------------------------------
# Every published figure within its budget


@pytest.mark.parametrize("check", CHECKS, ids=[c.id for c in CHECKS])
def test_prediction_within_the_documented_budget(check, results):
    r = results[check.id]
    low, high = check.budget
    assert low <= r["error"] <= high, (
        f"{check.what}: {check.quantity} predicted {r['predicted']:.4g} against {check.published:.4g} "
        f"published ({r['error']:+.1%}), budget {low:+.0%} / {high:+.0%}")


def test_the_table_covers_training_serving_and_carbon():
    areas = {c.area for c in CHECKS}
    assert areas == {"training", "serving", "energy"} and len(CHECKS) >= 10
    sources = " ".join(c.source for c in CHECKS)
    for needle in ("Korthikanti", "Narayanan", "Dubey", "Chowdhery", "TensorRT-LLM", "Patterson", "Luccioni",
                   "model card"):
        assert needle in sources


def test_every_budget_is_a_real_interval_around_zero():
    for c in CHECKS:
        assert c.budget[0] < 0 < c.budget[1], c.id


def test_the_page_is_what_the_script_generates():
    text = validation.DOC.read_text()
    for name, body in validation.blocks().items():
        assert validation.doc_block(text, name) == body, (
            f"docs/validation.md block {name!r} is stale: run `python benchmarks/validation.py --write`")


# ---------------------------------------------------------------------------------------------------
# The published-side conversions, by hand


def test_narayanan_iteration_time_from_the_reported_rate():
    # 145.6B: 96 B s l h^2 (1 + s/6h + V/16lh) FLOP per iteration at 148 TFLOP/s on 1,536 GPUs.
    B, s, l, h, V = 2304, 2048, 80, 12288, 51200
    flop = 96 * B * s * l * h * h * (1 + s / (6 * h) + V / (16 * l * h))
    assert flop == pytest.approx(5.64e18, rel=0.01)
    assert validation.narayanan_published_step(h, l, 1536, B, 148) == pytest.approx(flop / (1536 * 148e12))
    assert validation.narayanan_published_step(h, l, 1536, B, 148) == pytest.approx(24.8, abs=0.1)


def test_static_batch_throughput_is_output_tokens_over_the_request_latency():
    model, hw = validation.GPT_J, validation.Hardware.H100
    r = validation.serving(model, hw, 64, 128, 128, "fp8")
    by_hand = 64 * 128 / (r.ttft.m_as("s") + 128 * r.itl.m_as("s"))
    assert validation.static_batch_tokens_per_s(model, hw, 64, 128, 128, "fp8") == pytest.approx(by_hand, rel=1e-6)


def test_gpt3_energy_by_hand():
    # 1,250 DGX-1 x 3.5 kW x (0.3 + 0.7 x 0.4) x 14.8 days x 24 h x PUE 1.10 -> MWh
    by_hand = 1250 * 3.5 * (0.3 + 0.7 * 0.4) * 14.8 * 24 * 1.10 / 1e3
    assert validation.gpt3("energy") == pytest.approx(by_hand, rel=1e-6)
    assert validation.gpt3("co2") == pytest.approx(by_hand * 0.429, rel=1e-6)


def test_known_misses_are_reported_not_hidden():
    misses = validation.known_misses()
    assert len(misses) == 4
    # batch-1 decode of GPT-J on H100: the roofline floor is far faster than the engine measured
    h100_decode = next(m for m in misses if "H100" in m["what"] and "decode" in m["quantity"])
    assert h100_decode["predicted"] > 2 * h100_decode["published"]
    text = validation.DOC.read_text()
    assert "Known misses" in text and "could not be validated" in text


# ---------------------------------------------------------------------------------------------------
# Side-by-side harness: pieces that run without the reference installed


def test_cause_catalogue_is_consistent():
    from _causes import CAUSES, RULES, check_catalogue
    check_catalogue()
    for cause in CAUSES.values():
        assert cause.title and cause.right and len(cause.why) > 40
    cited = " ".join(c.why for c in CAUSES.values())
    assert "17.1" in cited and "17.9" in cited and "17.12" in cited
    assert all(r.causes for r in RULES)


def test_comparison_rules():
    from _compare import differs, leaves, relative
    assert not differs(104.9, 100.0) and differs(105.1, 100.0) and differs(94.9, 100.0)
    assert differs("Memory", "Compute") and not differs(True, True)
    assert relative(2.0, 1.0) == pytest.approx(0.5) and relative("a", "a") == 0.0
    ours = {"s": [{"batch_size": 1, "latency_ms": 2.0}, {"batch_size": 2, "latency_ms": 3.0}], "region_name": "x"}
    ref = {"s": [{"batch_size": 2, "latency_ms": 3.5}, {"batch_size": 1, "latency_ms": 2.0}], "region_name": "y"}
    got = {(p, q): (o, r) for p, q, o, r in leaves(ours, ref, "t")}
    # sweep rows are matched by their labels, not their position; names of regions are not compared
    assert got[("t/s[bs=2]", "latency_ms")] == (3.0, 3.5)
    assert not any(q == "region_name" for _, q in got)


def test_engine_attribution_tells_data_from_model():
    """A configuration run with the reference's numbers for DS-CNN (200 k parameters, 20 MFLOP, no
    layer count): the difference in compute time is data; the memory time keeps a model cause."""
    import _engine_attribution as ea
    case = ea.EngineCase("Models.Tiny.DS_CNN", "Hardware.Cloud.H100", 1, "int8", 0.5)
    ref_model = {"name": "DS-CNN (KWS)", "parameters": 2e5, "inference_flops": 2e7, "layers": None,
                 "active_parameters": None, "model_size_B": None}
    hw = ea.our_hardware(case.hardware)
    ref_hw = {"peak_flops": hw.compute.peak_flops.m_as("FLOP/s"),
              "precision_flops": {"int8": hw.compute.precision_flops["int8"].m_as("FLOP/s")},
              "capacity_B": hw.memory.capacity.m_as("B"), "bandwidth_Bps": hw.memory.bandwidth.m_as("B/s"),
              "sram_capacity_B": None, "sram_bandwidth_Bps": None, "flash_capacity_B": None,
              "flash_bandwidth_Bps": None, "tdp_W": hw.tdp.m_as("W"), "dispatch_tax_s": hw.dispatch_tax.m_as("s"),
              "host_link_Bps": None}
    v = ea.variants(case, ref_hw, ref_model)
    # The reference's own numbers for this configuration (spec §3.2): W = 200 kB at int8.
    W, F, BW = 2e5, ref_hw["precision_flops"]["int8"], ref_hw["bandwidth_Bps"]
    ref = {"latency_compute_ms": 2e7 / (0.5 * F) * 1e3, "latency_memory_ms": W * 1.1 / BW * 1e3,
           "feasible": True, "memory_footprint_GB": W / 1e9}
    causes, details, problem = ea.attribute("latency_compute_ms", case, v, ref, ref_hw, ref_model)
    assert problem is None and causes == ["registry_workload"]
    assert any("parameters" in d for d in details)
    causes, _, problem = ea.attribute("latency_memory_ms", case, v, ref, ref_hw, ref_model)
    assert problem is None and "cnn_activation_traffic" in causes


# ---------------------------------------------------------------------------------------------------
# Bad input to the benchmark scripts names the flag


@pytest.mark.parametrize("args,flag", [(["--configs", "-3"], "--configs"), (["--configs", "many"], "--configs"),
                                       (["--repeats", "0"], "--repeats")])
def test_bad_arguments_name_the_flag(args, flag):
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "vs_mlsysim.py"), *args],
                       capture_output=True, text=True)
    assert r.returncode == 2
    assert f"{flag} must be" in r.stderr


def test_validation_script_rejects_unknown_flags():
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "validation.py"), "--wrte"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "--wrte" in r.stderr


# ---------------------------------------------------------------------------------------------------
# End to end against the reference, installed by the harness into benchmarks/.ref-venv (its own
# environment, never the project's) when it is not there yet.


def test_side_by_side_has_no_unexplained_difference(tmp_path):
    import vs_mlsysim
    from _refenv import ensure_reference_env
    ensure_reference_env()
    status = vs_mlsysim.main(["--configs", "40", "--seed", "11", "--no-timing", "--out", str(tmp_path)])
    text = (tmp_path / "vs_mlsysim.md").read_text()
    assert status == 0, text[:3000]
    assert "Unexplained differences: **0**" in text
    assert (tmp_path / "vs_mlsysim_rows.csv").read_text().count("\n") > 500
