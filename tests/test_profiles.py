"""Calibrated efficiency profiles: the fit (calibrate_profiles), the shipped file and its use by default.

Expected factors are read from registry/efficiency_profiles.yaml, never typed here, so a refit
changes the data and not the tests; the fit itself is checked on synthetic data whose true factors
are known.
"""
import math
import sys
from statistics import median
from pathlib import Path

import pytest
import yaml

from mlsysim_opt import DistributedModel, Fabrics, Fleet, Hardware, InputError, Models, Nodes, ServingModel
from mlsysim_opt.calibrate import CalibrationPoint, calibrate_profiles
from mlsysim_opt.profiles import FLAT, PROFILES_FILE, factors, profile_for

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = yaml.safe_load(PROFILES_FILE.read_text())["profiles"]
MEASUREMENTS = yaml.safe_load((ROOT / "registry" / "measurements.yaml").read_text())


def shipped(name):
    return SHIPPED[name]


def solve_h100_fp8(**kw):
    return ServingModel().solve(Models.Llama3_8B, Hardware.H100, seq_len=2048, batch_size=32, precision="fp8", **kw)


# ---------------------------------------------------------------- used by default
def test_a_serving_solve_uses_the_profile_of_its_hardware_and_precision():
    p = shipped("H100_fp8_serving")
    r = solve_h100_fp8()
    assert (r.efficiency, r.bandwidth_efficiency) == (p["efficiency"], p["bandwidth_efficiency"])
    assert "H100 fp8 serving profile" in r.efficiency_basis
    explicit = solve_h100_fp8(efficiency=p["efficiency"], bandwidth_efficiency=p["bandwidth_efficiency"])
    assert r.itl == explicit.itl and r.ttft == explicit.ttft


def test_the_flat_tutorial_factors_are_one_argument_away():
    flat = solve_h100_fp8(calibration="flat")
    explicit = solve_h100_fp8(efficiency=0.5, bandwidth_efficiency=1.0)
    assert (flat.efficiency, flat.bandwidth_efficiency) == (0.5, 1.0)
    assert flat.itl == explicit.itl and flat.ttft == explicit.ttft
    assert "tutorial" in flat.efficiency_basis
    # the calibrated decode step is slower: H100 decode reaches less than its full HBM bandwidth
    assert solve_h100_fp8().itl > flat.itl


def test_a_factor_given_is_used_as_given_and_the_other_comes_from_the_profile():
    p = shipped("H100_fp8_serving")
    r = solve_h100_fp8(efficiency=0.3)
    assert (r.efficiency, r.bandwidth_efficiency) == (0.3, p["bandwidth_efficiency"])
    assert "efficiency 0.3 as given" in r.efficiency_basis


def test_bf16_uses_the_16_bit_profile_and_a_precision_without_one_borrows_the_same_width():
    p = shipped("A100_fp16_serving")
    r = ServingModel().solve(Models.Llama3_8B, Hardware.A100, seq_len=1024, precision="bf16")
    assert (r.efficiency, r.bandwidth_efficiency) == (p["efficiency"], p["bandwidth_efficiency"])
    assert "int8" not in {v["precision"] for v in SHIPPED.values() if v["hardware"] == "MI300X"}
    fp8 = shipped("MI300X_fp8_serving")
    r = ServingModel().solve(Models.Llama3_8B, Hardware.MI300X, seq_len=1024, precision="int8")
    assert (r.efficiency, r.bandwidth_efficiency) == (fp8["efficiency"], fp8["bandwidth_efficiency"])
    assert "MI300X_fp8_serving profile, applied to int8" in r.efficiency_basis


def test_hardware_without_a_profile_takes_the_median_of_the_measured_hardware():
    serving = [v for v in SHIPPED.values() if v["phase"] == "serving"]
    unmeasured = next(k for k in ("T4", "L4", "V100", "Gaudi3") if hasattr(Hardware, k)
                      and k not in {v["hardware"] for v in serving})
    r = ServingModel().solve(Models.Llama3_8B, getattr(Hardware, unmeasured), seq_len=1024, precision="fp16")
    assert r.efficiency == pytest.approx(median([v["efficiency"] for v in serving]), rel=1e-12)
    assert r.bandwidth_efficiency == pytest.approx(median([v["bandwidth_efficiency"] for v in serving]), rel=1e-12)
    assert f"median of the {len(serving)} calibrated serving profiles" in r.efficiency_basis
    # never the optimistic flat factors, which no measured accelerator reaches
    assert r.bandwidth_efficiency < FLAT["bandwidth_efficiency"]


def test_training_uses_the_training_profile_where_one_exists():
    a100 = Fleet(name="a", node=Nodes.DGX_A100, count=8, fabric=Fabrics.InfiniBand_HDR)
    h100 = Fleet(name="h", node=Nodes.DGX_H100, count=8, fabric=Fabrics.InfiniBand_HDR)
    r = DistributedModel.solve(Models.Llama3_8B, a100, batch_size=64, tp_size=8)
    assert r.efficiency == shipped("A100_fp16_training")["efficiency"]
    flat = DistributedModel.solve(Models.Llama3_8B, a100, batch_size=64, tp_size=8, calibration="flat")
    assert flat.efficiency == 0.5 and "tutorial" in flat.efficiency_basis
    # the step scales with 1 / efficiency in its compute part: a higher factor, a shorter step
    assert (r.step_latency_total < flat.step_latency_total) == (r.efficiency > 0.5)
    training = [v for v in SHIPPED.values() if v["phase"] == "training"]
    assert "H100" not in {v["hardware"] for v in training}
    h = DistributedModel.solve(Models.Llama3_8B, h100, batch_size=64, tp_size=8)
    assert h.efficiency == pytest.approx(median([v["efficiency"] for v in training]), rel=1e-12)
    assert "H100" in h.efficiency_basis and "has none" in h.efficiency_basis


def test_an_unknown_calibration_is_refused_with_the_choices():
    with pytest.raises(InputError, match="calibration") as e:
        solve_h100_fp8(calibration="calibrated")
    assert "flat" in str(e.value) and "profile" in str(e.value)


def test_the_main_job_path_uses_profiles_and_says_so():
    from mlsysim_opt.formulations.serving_grid import Assumptions
    a = Assumptions(prompt_tokens=1, output_tokens=1, efficiency=None, headroom=0.8, sla_applied=True,
                    percentile="p90", utilization=0.6, price_basis="x")
    assert "calibrated serving profile" in a.lines()[0]


# ---------------------------------------------------------------- the fit, on data with known factors
def roofline_point(i, eta, bw, use="fit", phase="serving", scale=1.0):
    """A step of compute c_i / eta and memory m_i / bw (made-up work), published at the true factors."""
    c, m = 1.0 + i, 12.0 / (1 + i)      # compute-bound for large i, memory-bound for small
    step = lambda e, b: max(c / e, m / b) + 0.2 * min(c / e, m / b)
    return CalibrationPoint(id=f"p{i}", hardware="X", precision="fp16", phase=phase, published=step(eta, bw) * scale,
                            use=use, predict=step)


def test_the_fit_recovers_known_factors_and_reports_leave_one_out():
    points = [roofline_point(i, 0.62, 0.71) for i in range(8)]
    [fit] = calibrate_profiles(points)
    assert fit.factors["efficiency"] == pytest.approx(0.62, rel=0.03)
    assert fit.factors["bandwidth_efficiency"] == pytest.approx(0.71, rel=0.03)
    assert set(fit.leave_one_out_errors) == {p.id for p in points}
    assert max(abs(e) for e in fit.leave_one_out_errors.values()) < 0.05


def test_an_outlier_shows_in_its_own_leave_one_out_error_and_holdouts_never_move_the_fit():
    points = [roofline_point(i, 0.62, 0.71) for i in range(8)]
    points[3] = roofline_point(3, 0.62, 0.71, scale=2.0)        # published twice as slow
    [fit] = calibrate_profiles(points)
    worst = max(fit.leave_one_out_errors, key=lambda k: abs(fit.leave_one_out_errors[k]))
    assert worst == "p3" and fit.leave_one_out_errors["p3"] < -0.3
    wrong_holdout = roofline_point(9, 0.1, 0.1, use="holdout")
    [with_holdout] = calibrate_profiles(points + [wrong_holdout])
    assert with_holdout.factors == fit.factors
    assert with_holdout.holdout_errors["p9"] < -0.5    # published at a tenth of the factors: far slower


def test_a_group_with_one_fit_point_is_not_fitted():
    assert calibrate_profiles([roofline_point(0, 0.6, 0.7), roofline_point(1, 0.6, 0.7, use="holdout")]) == []


def test_a_training_group_fits_efficiency_alone():
    step = lambda e, b: 10.0 / e
    points = [CalibrationPoint(id=f"t{i}", hardware="X", precision="fp16", phase="training",
                               published=10.0 / 0.55 * (1 + 0.01 * (-1) ** i), use="fit", predict=step)
              for i in range(4)]
    [fit] = calibrate_profiles(points)
    assert fit.fitted == ["efficiency"] and fit.factors["bandwidth_efficiency"] == FLAT["bandwidth_efficiency"]
    assert fit.factors["efficiency"] == pytest.approx(0.55, rel=0.01)


@pytest.mark.parametrize("field, value", [("phase", "decode"), ("use", "train"), ("published", 0.0)])
def test_calibration_points_are_checked(field, value):
    args = dict(id="a", hardware="X", precision="fp16", phase="serving", published=1.0, use="fit",
                predict=lambda e, b: 1.0)
    with pytest.raises(InputError, match=field):
        CalibrationPoint(**dict(args, **{field: value}))


# ---------------------------------------------------------------- the shipped file and its data
def test_every_profile_rests_on_fit_entries_of_the_measurement_file_with_sources():
    entries = MEASUREMENTS["measurements"]
    defined = set(MEASUREMENTS["sources"]) | set(yaml.safe_load((ROOT / "registry" / "sources.yaml").read_text()))
    for name, p in SHIPPED.items():
        assert len(p["measurements"]) >= 2, name
        for mid in p["measurements"]:
            assert entries[mid]["use"] == "fit", (name, mid)
            assert entries[mid]["value"]["source"] in defined, (name, mid)
        assert set(p["leave_one_out_errors"]) == set(p["measurements"])
        assert p["leave_one_out_median_error"] == pytest.approx(
            sorted(abs(e) for e in p["leave_one_out_errors"].values())[len(p["measurements"]) // 2]
            if len(p["measurements"]) % 2 else
            sum(sorted(abs(e) for e in p["leave_one_out_errors"].values())[len(p["measurements"]) // 2 - 1:
                                                                            len(p["measurements"]) // 2 + 1]) / 2,
            abs=1e-4)


def test_no_performance_overview_table_enters_a_fit():
    used = {m for p in SHIPPED.values() for m in p["measurements"]}
    assert not any("perf-overview" in str(MEASUREMENTS["measurements"][m]) for m in used)


@pytest.mark.slow
def test_the_shipped_profiles_are_what_the_fit_gives_on_the_data():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import calibrate_profiles as cp
    assert cp.document(cp.fit())["profiles"] == SHIPPED


def test_factors_reads_the_same_file_the_solvers_do():
    f = factors(Hardware.H200, "fp8", "serving")
    p = shipped("H200_fp8_serving")
    assert (f.efficiency, f.bandwidth_efficiency) == (p["efficiency"], p["bandwidth_efficiency"])
    assert math.isclose(p["leave_one_out_median_error"], profile_for(Hardware.H200, "fp8", "serving")
                        .leave_one_out_median_error)


def test_the_table_of_docs_differences_is_the_shipped_file():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import calibrate_profiles as cp
    text = (ROOT / "docs" / "differences.md").read_text()
    block = text.split("<!-- profiles-table:start -->\n")[1].split("\n<!-- profiles-table:end -->")[0]
    assert block == cp.profile_rows(SHIPPED)
