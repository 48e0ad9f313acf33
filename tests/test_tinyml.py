"""TinyML exercises: DS-CNN keyword spotting on microcontrollers (exercise 7) and the doorbell
battery exercise (afternoon deck, Part 7). Expected numbers are computed by hand from the workload
cards (MLPerf Tiny models) and the device figures (registry or the exercise's own record)."""

import pytest

from mlsysim_opt import ComputeCore, Engine, Hardware, HardwareNode, MemoryHierarchy, Models, ureg
from example_runs import example_output


# DS-CNN (MLPerf Tiny KWS): parameters, FLOP per inference, layers, activation elements
KWS = dict(params=24908, flops=5.31e6, layers=10, act=72076)
# MobileNetV1-0.25 person detection (MLPerf Tiny VWW)
VWW = dict(params=221794, flops=14.98e6, layers=28, act=231810)
LAYER_TAX, IDLE = 10e-6, 0.30


def by_hand(card, rate, eta, bw, dispatch, tdp, b=1.0):
    """(latency s, compute s, memory s, energy J) of one int8 inference from SRAM, by hand."""
    tc = card["flops"] / (eta * rate)
    tm = (card["params"] * b + 2 * card["act"] * b) / bw
    t = max(tc, tm) + dispatch + card["layers"] * LAYER_TAX
    return t, tc, tm, tdp * (IDLE * t + (1 - IDLE) * max(tc, tm))


def exercise_nrf():
    return HardwareNode(
        name="Nordic nRF52840 (Cortex-M4F)", release_year=2018,
        compute=ComputeCore(peak_flops=0.000064 * ureg.TFLOPs / ureg.s,
                            precision_flops={"int8": 0.000128 * ureg.TFLOPs / ureg.s}),
        memory=MemoryHierarchy(capacity=1 * ureg.MB, bandwidth=0.064 * ureg.GB / ureg.s,
                               sram_capacity=256 * ureg.KiB, sram_bandwidth=0.256 * ureg.GB / ureg.s,
                               flash_capacity=1 * ureg.MB, flash_bandwidth=0.064 * ureg.GB / ureg.s),
        tdp=0.015 * ureg.W, dispatch_tax=0.5 * ureg.ms)


def run(script: str) -> str:
    return example_output(script)


def test_ds_cnn_on_the_exercise_nrf52840():
    p = Engine.solve(Models.Tiny.DS_CNN, exercise_nrf(), batch_size=1, precision="int8", efficiency=0.3)
    t, tc, tm, e = by_hand(KWS, 128e6, 0.3, 0.256e9, 0.5e-3, 0.015)
    assert p.memory_tier == "SRAM"                     # 24.9 kB of int8 weights fit 256 KiB
    assert p.bottleneck == "Compute"
    assert p.latency.to("s").magnitude == pytest.approx(t, rel=1e-9)
    assert p.latency_memory.to("s").magnitude == pytest.approx(tm, rel=1e-9)
    assert p.energy.to("J").magnitude == pytest.approx(e, rel=1e-9)
    assert p.latency.to("ms").magnitude > 30
    # even at efficiency 1.0 the arithmetic alone takes 41.5 ms
    assert Engine.solve(Models.DS_CNN, exercise_nrf(), precision="int8", efficiency=1.0).latency.to("ms").magnitude > 30


@pytest.mark.parametrize("key,rate,bw,dispatch,tdp,meets", [
    ("nRF52840", 128e6, 0.256e9, 1e-3, 0.015, False),
    ("ESP32_S3", 7.68e9, 0.96e9, 0.5e-3, 0.4, True),
])
def test_ds_cnn_on_registry_mcus(key, rate, bw, dispatch, tdp, meets):
    p = Engine.solve(Models.DS_CNN, Hardware.Tiny[key], precision="int8", efficiency=0.3)
    t, _, _, e = by_hand(KWS, rate, 0.3, bw, dispatch, tdp)
    assert p.latency.to("s").magnitude == pytest.approx(t, rel=1e-9)
    assert p.energy_per_unit.to("J").magnitude == pytest.approx(e, rel=1e-9)
    assert (p.latency.to("ms").magnitude < 30) is meets
    assert p.memory_tier == "SRAM"


def test_ds_cnn_on_h100_is_launch_overhead():
    p = Engine.solve(Models.DS_CNN, Hardware.H100, precision="int8", efficiency=0.3)
    assert p.overhead_dominated
    assert p.latency.to("ms").magnitude == pytest.approx((10e-6 + 10 * LAYER_TAX) * 1e3, rel=1e-3)


def test_exercise7_example_prints_the_answers():
    out = run("exercise7_tinyml.py")
    t, tc, tm, e = by_hand(KWS, 128e6, 0.3, 0.256e9, 0.5e-3, 0.015)
    assert f"Latency:    {t * 1e3:.2f} ms" in out                         # 138.88 ms
    assert f"Energy:     {e * 1e3:.3f} mJ per inference" in out           # 2.077 mJ
    fp16 = 5.31e6 / (0.1 * 64e6) + 0.5e-3 + 10 * LAYER_TAX               # the record's 64 MFLOP/s path
    assert f"{fp16 * 1e3:.2f} ms" in out                                  # 830.29 ms
    esp, *_ = by_hand(KWS, 7.68e9, 0.3, 0.96e9, 0.5e-3, 0.4)
    assert f"Latency:    {esp * 1e3:.2f} ms" in out                        # 2.90 ms
    assert "Meets 30ms: False" in out and "Meets 30ms: True" in out
    assert "weights served from SRAM" in out
    needed = 5.31e6 / (0.3 * (30e-3 - 0.5e-3 - 10 * LAYER_TAX))
    assert f"{needed / 1e6:.0f} MFLOP/s" in out                           # 602 MFLOP/s
    assert "cannot meet 30 ms" in out


def test_doorbell_battery_example():
    out = run("demo_tinyml_battery.py")
    battery, period, year = 1.5 * 3600, 60.0, 365 * 24 * 3600
    cases = {
        "ESP32_S3": (by_hand(VWW, 7.68e9, 0.3, 0.96e9, 0.5e-3, 0.4), 0.4, [240e-6 * 3.3, 7e-6 * 3.3]),
        "nRF52840": (by_hand(VWW, 128e6, 0.3, 0.256e9, 1e-3, 0.015), 0.015, [3e-6 * 3.0]),
    }
    for key, ((t, _, _, e), tdp, sleeps) in cases.items():
        assert f"energy per inference {e * 1e3:.3f} mJ" in out
        assert f"({battery / e:,.0f} inferences per battery)" in out
        for sleep_w in [IDLE * tdp, *sleeps]:
            count = battery / (e + sleep_w * (period - t))
            assert f"{count:,.0f} inferences" in out
            lasts = count * period / year >= 1
            assert f"{count * period / year * 365:.1f} days ({'lasts' if lasts else 'fails'} a year)" in out
    esp_t = cases["ESP32_S3"][0][0]
    nrf_t = cases["nRF52840"][0][0]
    assert esp_t < 0.1 < nrf_t                          # only the ESP32-S3 meets the 100 ms SLA
    assert "meets 100 ms: True" in out and "meets 100 ms: False" in out
