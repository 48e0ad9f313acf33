import pytest

from mlsysim_opt import GB, Q_, TB, TFLOPs, UnitError, second
from mlsysim_opt.errors import InputError
from mlsysim_opt.units import as_quantity, quantity_factory


def test_bits_and_bytes_are_never_confused():
    assert Q_("400 Gbps").to("GB/s").magnitude == pytest.approx(50.0)
    assert Q_("1 byte").to("bit").magnitude == 8
    assert Q_("80 GiB").to("GB").magnitude == pytest.approx(85.899, rel=1e-4)
    for count in ("token", "param", "dimensionless"):  # information is its own dimension
        with pytest.raises(Exception):
            Q_("1 GB").to(count)


def test_flop_is_its_own_dimension_and_tflops_is_a_count():
    rate = 1200 * TFLOPs / second
    assert rate.to("FLOP/s").magnitude == pytest.approx(1.2e15)
    assert Q_("1e21 FLOP").to("ZFLOP").magnitude == pytest.approx(1.0)
    with pytest.raises(Exception):
        (1 * TFLOPs + 1 * GB)


def test_tokens_per_second_converts_to_per_second():
    assert Q_("3 token/s").m_as("1/s") == 3


def test_carbon_and_money_have_dimensions():
    assert Q_("1 tCO2e").to("kgCO2e").magnitude == 1000
    with pytest.raises(Exception):
        Q_("1 kgCO2e").to("kg")
    with pytest.raises(Exception):
        Q_("1 USD").to("kg")


def test_bandwidth_given_in_flops_is_rejected_with_a_hint():
    with pytest.raises(UnitError) as err:
        as_quantity(Q_("989 TFLOP/s"), "byte/s", "bandwidth")
    msg = str(err.value)
    assert "bandwidth" in msg and "byte" in msg and "FLOP" in msg


def test_strings_and_plain_numbers_are_accepted():
    assert as_quantity("3.35 TB/s", "byte/s", "bw").magnitude == pytest.approx(3.35e12)
    assert as_quantity(5, "s", "t").magnitude == 5.0
    with pytest.raises(InputError):
        as_quantity("three terabytes", "byte", "capacity")
    with pytest.raises(InputError):
        as_quantity([1, 2], "byte", "capacity")


def test_fast_quantity_factory_matches_pint():
    make = quantity_factory("ms")
    q = make(2.5)
    assert q == Q_(2.5, "ms") and q.to("s").magnitude == pytest.approx(0.0025)
    assert f"{q:~P}" == f"{Q_(2.5, 'ms'):~P}"
    assert (q + 1 * TB / (1 * TB / second)).to("ms").magnitude == pytest.approx(1002.5)
