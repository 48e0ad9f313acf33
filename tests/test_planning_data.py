"""Reference data for global fleet planning (registry/planning/*.yaml) and its loader."""
import copy
import itertools
import statistics

import numpy as np
import pytest

from mlsysim_opt import Hardware, Infra, audit_provenance
from mlsysim_opt.errors import InputError, InputErrors, UnknownNameError
from mlsysim_opt.planning import data as d


@pytest.fixture
def fresh_cache():
    """Tests that swap the YAML text clear the cache before and after, so others see the shipped data."""
    d._load.cache_clear()
    yield
    d._load.cache_clear()


# ---------------------------------------------------------------------------------------------
# Shipped data


def test_every_site_resolves_its_metro_grid_and_profile():
    metros, profiles = d.metros(), d.carbon_profiles()
    for key, site in d.sites().items():
        assert site.metro in metros, key
        assert site.carbon_profile in profiles, key
        assert site.grid in Infra.Grids.names(), key
        assert site.continent == metros[site.metro].continent
        dc = site.datacenter()
        assert dc.grid is Infra.Grids[site.grid] and dc.effective_pue == site.pue >= 1.0


def test_enough_sites_for_the_benchmarks_and_the_example():
    sites = d.sites()
    assert len(sites) >= 20
    assert len({s.continent for s in sites.values()}) >= 3
    for metro in ("Virginia", "Ohio", "Oregon", "California", "Montreal", "Sao_Paulo", "Dublin", "London",
                  "Frankfurt", "Paris", "Stockholm", "Tokyo", "Seoul", "Singapore", "Mumbai", "Sydney"):
        assert metro in d.metros(), metro


def test_rtt_is_symmetric_and_complete_for_shipped_metros():
    names = list(d.metros())
    for a, b in itertools.combinations_with_replacement(names, 2):
        assert d.rtt_ms(a, b) == d.rtt_ms(b, a) >= 0, (a, b)
    for a, b in itertools.combinations(names, 2):
        assert d.rtt_ms(a, b) > d.rtt_ms(a, a), (a, b)  # leaving a metro costs more than staying
    assert d.rtt_ms("aws_us_east_1", "aws_ap_northeast_1") == d.rtt_ms("Virginia", "Tokyo")
    assert 60 < d.rtt_ms("Virginia", "Oregon") < 80 and 150 < d.rtt_ms("Virginia", "Tokyo") < 180


def test_rtt_errors_name_the_missing_pair_or_unknown_place(monkeypatch):
    with pytest.raises(UnknownNameError, match="Virgina.*Virginia"):
        d.rtt_ms("Virgina", "Tokyo")
    metros, rtt, sites, profiles, offers = d._load()
    partial = {pair: ms for pair, ms in rtt.items() if pair != frozenset(("Tokyo", "Sydney"))}
    monkeypatch.setattr(d, "_load", lambda: (metros, partial, sites, profiles, offers))
    with pytest.raises(InputError, match=r"round-trip time Tokyo~Sydney is not in .*rtt\.yaml"):
        d.rtt_ms("Tokyo", "aws_ap_southeast_2")


def test_profiles_have_a_day_or_week_of_positive_lifecycle_values():
    for key, p in d.carbon_profiles().items():
        assert len(p.hourly_g_per_kwh) in (24, 168), key
        assert min(p.hourly_g_per_kwh) > 0 and p.basis == "lifecycle", key
        grid_mean = Infra.Grids[p.grid].carbon_intensity.to("gCO2e/kWh").magnitude
        assert statistics.mean(p.hourly_g_per_kwh) == pytest.approx(grid_mean, rel=0.01), key


def test_profile_swings_are_realistic():
    def swing(key):
        values = d.carbon_profile(key).hourly_g_per_kwh
        return max(values) / min(values)
    assert swing("California_typical_day") > 1.5                  # solar-heavy CAISO
    assert swing("Quebec_typical_day") < 1.05 and swing("Norway_typical_day") < 1.05  # hydro
    cal = d.carbon_profile("California_typical_day").hourly_g_per_kwh
    assert min(range(24), key=cal.__getitem__) in range(10, 15)   # cleanest around local noon


def test_utc_hours_shift_by_the_zone_offset_and_tile():
    p = d.carbon_profile("US_East_typical_day")                    # hour 0 = local midnight, UTC-5
    hours = p.utc_hours(48, start_utc_hour=0)
    assert hours[5] == p.hourly_g_per_kwh[0] and hours[0] == p.hourly_g_per_kwh[19]
    assert np.array_equal(hours[:24], hours[24:])
    assert p.utc_hours(3, start_utc_hour=5)[0] == p.hourly_g_per_kwh[0]
    india = d.carbon_profile("India_Avg_typical_day")             # UTC+5:30 averages two local hours
    h = india.hourly_g_per_kwh
    assert india.utc_hours(1)[0] == pytest.approx((h[5] + h[6]) / 2)


def test_offers_prices_are_ordered_and_bands_valid():
    offers = d.offers()
    assert {"H100", "A100"} <= {o.accelerator for o in offers.values()}
    for key, o in offers.items():
        p = o.usd_per_instance_hour
        assert all(v > 0 for v in p.values()), key
        assert o.accelerator in Hardware.names() and o.accelerators_per_instance >= 1, key
        if "spot" in p:
            assert p["spot"] < p["on_demand"], key
        if "reserved_1y" in p:
            assert p["reserved_1y"] < p["on_demand"], key
        if "reserved_3y" in p:
            assert p["reserved_3y"] < p.get("reserved_1y", p["on_demand"]), key
        if o.spot_interruption is not None:
            lo, hi = o.spot_interruption
            assert 0.0 <= lo <= hi <= 1.0 and "spot" in p, key
        assert o.date_seen and o.sources, key


def test_every_cloud_site_has_an_offer_and_owned_sites_none():
    offered = {o.site for o in d.offers().values()}
    for key, site in d.sites().items():
        assert (key in offered) == (site.cloud != "own"), key
        if site.cloud == "own":
            assert site.electricity_price_usd_per_kwh is not None, key


def test_offer_lookup_and_per_accelerator_price():
    o = d.offer("aws_us_east_1", "H100")
    assert o.usd_per_accelerator_hour("on_demand") == pytest.approx(o.usd_per_instance_hour["on_demand"] / 8)
    with pytest.raises(UnknownNameError, match="A100_40GB"):      # lists what the site does offer
        d.offer("aws_eu_west_1", "H100")
    with pytest.raises(UnknownNameError, match="aws_us_east_1"):
        d.offer("aws_us_east1", "H100")
    with pytest.raises(InputError, match="aws_ca_central_1_H100.*spot"):
        d.offer("aws_ca_central_1", "H100").usd_per_accelerator_hour("spot")


def test_audit_counts_planning_values_and_sources():
    report = audit_provenance()
    assert report.ok, str(report)
    assert report.values_checked > 900   # the registry's ~640 values plus the planning files'


# ---------------------------------------------------------------------------------------------
# Validation of the YAML text


def _with_edited(monkeypatch, name, edit):
    original = d._read

    def read(file_name):
        data = copy.deepcopy(original(file_name))
        if file_name == name:
            edit(data)
        return data
    monkeypatch.setattr(d, "_read", read)


def test_loading_reports_every_problem_at_once(monkeypatch, fresh_cache):
    def edit(offers):
        offers["aws_us_east_1_H100"]["spot"]["value"] = 99.0            # above on-demand
        offers["aws_us_east_1_A100"]["on_demand"]["source"] = "no-such-source"
        offers["aws_us_west_2_H100"]["spot_interruption"]["value"] = [0.3, 0.1]
    _with_edited(monkeypatch, "cloud_offers.yaml", edit)
    with pytest.raises(InputErrors) as err:
        d.offers()
    text = str(err.value)
    assert "3 problems" in text
    assert "aws_us_east_1_H100.spot" in text and "no-such-source" in text and "spot_interruption" in text


def test_loading_checks_units_and_profile_length(monkeypatch, fresh_cache):
    def edit(profiles):
        profiles["Texas_typical_day"]["hourly"]["value"] = [300.0] * 23
        profiles["Iowa_typical_day"]["hourly"]["unit"] = "USD/hour"
    _with_edited(monkeypatch, "carbon_profiles.yaml", edit)
    with pytest.raises(InputErrors, match="24 \\(a day\\) or 168.*\n.*gCO2e/kWh"):
        d.carbon_profiles()


# ---------------------------------------------------------------------------------------------
# A user's CSV

EM_HEADER = ("Datetime (UTC),Country,Zone Name,Zone Id,Carbon Intensity gCO₂eq/kWh (direct),"
             "Carbon Intensity gCO₂eq/kWh (LCA),Low Carbon Percentage,Renewable Percentage\n")


def _em_row(hour, direct, lca):
    return f"2024-07-01 {hour:02d}:00:00,France,France,FR,{direct},{lca},90,40\n"


def test_csv_electricity_maps_export_prefers_lifecycle(tmp_path):
    f = tmp_path / "FR_2024_hourly.csv"
    f.write_text(EM_HEADER + "".join(_em_row(h, 20 + h, 40 + h) for h in range(26 - 2)), encoding="utf-8")
    p = d.load_carbon_csv(f, grid="France")
    assert p.hourly_g_per_kwh[:3] == (40.0, 41.0, 42.0) and len(p.hourly_g_per_kwh) == 24
    assert p.basis == "lifecycle" and p.reconstruction is False and p.hour0_utc_offset_hours == 0
    assert p.key == "FR_2024_hourly" and p.grid == "France"
    direct = d.load_carbon_csv(f, column="Carbon Intensity gCO₂eq/kWh (direct)")
    assert direct.hourly_g_per_kwh[0] == 20.0 and direct.basis == "direct"


def test_csv_plain_layout_with_offsets(tmp_path):
    f = tmp_path / "grid.csv"
    f.write_text("timestamp,intensity_gCO2e/kWh\n"
                 "2024-07-01T02:00:00+02:00,300\n"      # 00:00 UTC
                 "2024-07-01T01:00:00Z,310\n"
                 "2024-07-01T02:00:00+00:00,320\n")
    p = d.load_carbon_csv(f, key="mine", title="My grid")
    assert (p.key, p.title, p.hourly_g_per_kwh) == ("mine", "My grid", (300.0, 310.0, 320.0))
    assert list(p.utc_hours(4)) == [300.0, 310.0, 320.0, 300.0]


def test_csv_not_starting_at_midnight_stays_aligned_to_utc(tmp_path):
    f = tmp_path / "late.csv"
    f.write_text("time,g/kWh\n" + "".join(f"2024-07-01T{h:02d}:00:00Z,{100 + h}\n" for h in range(5, 29 - 5)))
    p = d.load_carbon_csv(f)
    assert p.utc_hours(1, start_utc_hour=5)[0] == 105.0


def test_csv_missing_hour_names_line_and_timestamp(tmp_path):
    f = tmp_path / "gap.csv"
    f.write_text(EM_HEADER + _em_row(0, 1, 50) + _em_row(1, 1, 51) + _em_row(3, 1, 53), encoding="utf-8")
    with pytest.raises(InputError, match=r"gap\.csv line 4.*2024-07-01T02:00:00\+00:00 is missing"):
        d.load_carbon_csv(f)


def test_csv_duplicate_hour_is_an_error(tmp_path):
    f = tmp_path / "dup.csv"
    f.write_text("timestamp,gCO2e/kWh\n2024-07-01T00:00Z,1\n2024-07-01T00:00Z,2\n")
    with pytest.raises(InputError, match="line 3.*repeats"):
        d.load_carbon_csv(f)


def test_csv_negative_or_text_values_name_line_and_column(tmp_path):
    f = tmp_path / "neg.csv"
    f.write_text(EM_HEADER + _em_row(0, 1, 50) + _em_row(1, 1, -5), encoding="utf-8")
    with pytest.raises(InputError, match=r"line 3 column 'Carbon Intensity gCO₂eq/kWh \(LCA\)'.*>= 0"):
        d.load_carbon_csv(f)
    g = tmp_path / "text.csv"
    g.write_text("timestamp,gCO2e/kWh\n2024-07-01T00:00Z,n/a\n")
    with pytest.raises(InputError, match="line 2 column 'gCO2e/kWh'.*not a number"):
        d.load_carbon_csv(g)


def test_csv_layout_problems_say_how_to_fix(tmp_path):
    f = tmp_path / "two.csv"
    f.write_text("timestamp,a gCO2e/kWh,b gCO2e/kWh\n2024-07-01T00:00Z,1,2\n")
    with pytest.raises(InputError, match="column="):
        d.load_carbon_csv(f)
    g = tmp_path / "halfhour.csv"
    g.write_text("timestamp,gCO2e/kWh\n2024-07-01T00:30Z,1\n")
    with pytest.raises(InputError, match="whole hour"):
        d.load_carbon_csv(g)
