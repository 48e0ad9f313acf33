"""Wall 11: Chinchilla scaling. Published figures from Hoffmann et al. 2022; everything else by hand."""
import math

import pytest

from mlsysim_opt import Hardware, InputError, Models, Q_, Systems, UnitError
from mlsysim_opt.solvers.scaling import ScalingModel

H100_BF16 = 989.4e12  # FLOP/s, the registry's dense bf16 peak


def test_chinchilla_70b_on_the_gopher_budget():
    # Chinchilla: 70B parameters on 1.4T tokens at the Gopher budget of 5.76e23 FLOP. The paper's own
    # numbers are rounded: 6 * 70e9 * 1.4e12 = 5.88e23, 2% above the budget.
    r = ScalingModel().solve("5.76e23 FLOP")
    assert r.optimal_parameters == pytest.approx(70e9, rel=0.02)
    assert r.optimal_tokens == pytest.approx(1.4e12, rel=0.02)
    assert r.tokens_per_parameter == pytest.approx(20.0)
    assert 6 * 70e9 * 1.4e12 == pytest.approx(5.76e23, rel=0.025)


def test_1e21_flop_gives_2_89_billion_parameters():
    r = ScalingModel().solve(Q_("1e21 FLOP"))
    assert r.optimal_parameters == pytest.approx(math.sqrt(1e21 / 120), rel=1e-12)
    assert r.optimal_parameters == pytest.approx(2.89e9, rel=2e-3)
    assert r.optimal_tokens == pytest.approx(20 * math.sqrt(1e21 / 120), rel=1e-12)


@pytest.mark.parametrize("params, flops", [(1e9, 1.21e20), (10e9, 1.23e22), (67e9, 5.76e23), (175e9, 3.85e24)])
def test_chinchilla_table_3_rows(params, flops):
    # Approach-1 rows of Hoffmann et al. Table 3; each satisfies C = 6ND to within 5%.
    assert ScalingModel().solve(Q_(flops, "FLOP")).optimal_parameters == pytest.approx(params, rel=0.05)


@pytest.mark.parametrize("budget", [Q_("1e21 FLOP"), Q_(1e9, "TFLOP"), Q_(1, "ZFLOP"), "1e21 FLOP", "1e9 TFLOP",
                                    1e21, Q_(1e6, "PFLOP")])
def test_any_flop_unit_gives_the_same_answer(budget):
    # The reference read the magnitude without conversion: Q_(1e9, "TFLOP") gave 2,887 parameters.
    r = ScalingModel().solve(budget)
    assert r.compute_budget_flops == pytest.approx(1e21)
    assert r.optimal_parameters == pytest.approx(2.8868e9, rel=1e-4)


def test_gpu_days_convert_at_peak_times_mfu():
    r = ScalingModel().solve(Q_(1000, "day"), mfu=0.4)   # 1,000 H100-days
    expected = 1000 * 86400 * H100_BF16 * 0.4
    assert r.compute_budget_flops == pytest.approx(expected, rel=1e-12)
    assert r.accelerator_days.m_as("day") == pytest.approx(1000.0)
    assert r.optimal_parameters == pytest.approx(math.sqrt(expected / 120), rel=1e-12)
    assert r.notes  # says which accelerator the days are counted on


def test_budget_in_gpu_days_and_wall_clock_for_a_fleet():
    fleet = Systems.Clusters.Research_256
    r = ScalingModel().solve(Q_("1e21 FLOP"), fleet=fleet, mfu=0.5)
    gpu_days = 1e21 / (H100_BF16 * 0.5) / 86400
    assert r.accelerator_days.m_as("day") == pytest.approx(gpu_days, rel=1e-12)
    assert r.wall_clock.m_as("day") == pytest.approx(gpu_days / 256, rel=1e-12)
    assert r.accelerators == 256


def test_precision_sets_the_peak():
    fp8 = ScalingModel().solve(Q_(10, "day"), fleet=Hardware.H100, precision="fp8")
    bf16 = ScalingModel().solve(Q_(10, "day"), fleet=Hardware.H100, precision="bf16")
    assert fp8.compute_budget_flops / bf16.compute_budget_flops == pytest.approx(1978.9 / 989.4, rel=1e-9)


def test_fixed_model_size_spends_the_budget_on_tokens():
    r = ScalingModel().solve("5.76e23 FLOP", target_model_size=Models.Llama3_70B)
    n = Models.Llama3_70B.parameters
    assert r.optimal_parameters == n and r.fixed_size
    assert r.optimal_tokens == pytest.approx(5.76e23 / (6 * n), rel=1e-12)


def test_parametric_loss():
    n, d = 70e9, 1.4e12
    r = ScalingModel().solve(Q_(6 * n * d, "FLOP"), target_model_size=n)
    assert r.optimal_tokens == pytest.approx(d)
    assert r.loss == pytest.approx(1.69 + 406.4 / n ** 0.34 + 410.7 / d ** 0.28, rel=1e-12)
    assert 1.9 < r.loss < 2.0


def test_bad_inputs_name_the_field():
    s = ScalingModel()
    with pytest.raises(UnitError, match="compute_budget"):
        s.solve(Q_("1 GB"))
    with pytest.raises(InputError, match="compute_budget"):
        s.solve(-1.0)
    with pytest.raises(InputError, match="compute_budget"):
        s.solve("a lot of FLOP")
    with pytest.raises(InputError, match="mfu"):
        s.solve(1e21, mfu=0)
    with pytest.raises(InputError, match="target_model_size"):
        s.solve(1e21, target_model_size=-5)
    with pytest.raises(InputError, match="fleet"):
        s.solve(1e21, fleet=3.5)
    with pytest.raises(Exception, match="precision"):
        s.solve(1e21, precision="fp7")


def test_result_hands_a_decoder_to_the_next_stage():
    r = ScalingModel().solve(Q_("1e21 FLOP"))
    w = r.workload()
    assert w.parameters == pytest.approx(r.optimal_parameters)
    assert w.training_tokens == pytest.approx(r.optimal_tokens)
    assert w.hidden_size / w.layers == pytest.approx(128, rel=0.1)      # d_model / layers
    assert 12 * w.layers * w.hidden_size ** 2 == pytest.approx(r.optimal_parameters, rel=0.1)  # N ~ 12 L d^2
    assert r.pipeline_outputs()["model"].parameters == w.parameters


def test_deck_pipeline_scaling_to_economics():
    from mlsysim_opt import Infra
    from mlsysim_opt.pipeline import Pipeline
    from mlsysim_opt.solvers.economics import EconomicsModel
    results = Pipeline([ScalingModel(), EconomicsModel()]).run(
        compute_budget=Q_("1e21 FLOP"), fleet=Systems.Clusters.Research_256, duration_days=30,
        datacenter=Infra.Grids.Quebec, mfu=0.45, infrastructure_multiplier=2.5)
    assert results["ScalingModel"].optimal_parameters == pytest.approx(2.8868e9, rel=1e-4)
    # mfu=0.45 does not set the power: a training step keeps the engines busy (busy fraction 1.0)
    assert results["EconomicsModel"].utilization == 1.0 and results["EconomicsModel"].tco_usd > 0
