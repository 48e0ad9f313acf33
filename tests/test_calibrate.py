import random

import pytest

from mlsysim_opt import Engine, InputError
from mlsysim_opt.calibrate import Measurement, calibrate

CONFIGS = [("Llama3_8B", "H100", 1, 2048), ("Llama3_8B", "H100", 256, 128), ("ResNet50", "A100", 64, None),
           ("Llama3_70B", "B200", 1, 1024), ("Llama3_8B", "A100", 512, 128), ("ResNet50", "H100", 8, None)]


def _measure(eta, eta_bw, noise=0.0, seed=0):
    rng = random.Random(seed)
    rows = []
    for m, h, b, s in CONFIGS:
        t = Engine.solve(m, h, batch_size=b, seq_len=s, efficiency=eta, bandwidth_efficiency=eta_bw).latency
        rows.append(Measurement(model=m, hardware=h, batch_size=b, seq_len=s, latency=t * (1 + rng.gauss(0, noise))))
    return rows


def test_recovers_known_factors_exactly():
    r = calibrate(_measure(0.37, 0.81))
    assert r.efficiency == pytest.approx(0.37, rel=1e-4)
    assert r.bandwidth_efficiency == pytest.approx(0.81, rel=1e-4)
    assert r.rms_relative_error < 1e-6


def test_noisy_measurements_report_their_error():
    r = calibrate(_measure(0.45, 0.9, noise=0.05, seed=3))
    assert r.efficiency == pytest.approx(0.45, rel=0.15)
    assert r.bandwidth_efficiency == pytest.approx(0.9, rel=0.15)
    assert 0.005 < r.rms_relative_error < 0.2 and len(r.errors) == len(CONFIGS)


def test_overhead_scale_can_be_fitted():
    rows = []
    for m, h, b, s in CONFIGS:  # measurements with overheads doubled (slow launches)
        p = Engine.solve(m, h, batch_size=b, seq_len=s, efficiency=0.5, bandwidth_efficiency=0.8)
        rows.append(Measurement(model=m, hardware=h, batch_size=b, seq_len=s,
                                latency=p.latency + p.latency_overhead))
    r = calibrate(rows, fit_overhead=True)
    assert r.overhead_scale == pytest.approx(2.0, rel=0.02)


def test_bad_measurements():
    with pytest.raises(InputError, match="measurements"):
        calibrate([])
    with pytest.raises(InputError, match="latency"):
        calibrate([dict(model="Llama3_8B", hardware="H100", latency="-3 ms"),
                   dict(model="Llama3_8B", hardware="H100", latency="3 ms")])
    with pytest.raises(InputError, match="at least 2"):
        calibrate([dict(model="Llama3_8B", hardware="H100", latency="3 ms")])
