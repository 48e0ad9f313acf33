"""Every broken rule of a record is reported at once: in the library (InputErrors), over HTTP (one
422 with a problem per field) and on the command line."""
import pickle

import pytest
import yaml

from mlsysim_opt import HardwareNode, InputError, UnitError
from mlsysim_opt.cli import EXIT_BAD_INPUT, main
from mlsysim_opt.errors import InputErrors
from mlsysim_opt.service import records
from mlsysim_opt.service.capabilities import problem_from
from mlsysim_opt.service.errors import RequestProblems, from_library_error

GOOD = {"name": "Chip", "compute": {"peak_flops": "100 TFLOP/s"}, "memory": {"capacity": "32 GB", "bandwidth": "1 TB/s"}}
THREE_BAD = {**GOOD, "release_year": 1800, "tdp": "5 GB", "unit_cost": "3 W"}


def build(**fields):
    with pytest.raises(InputError) as info:
        HardwareNode(**fields)
    return info.value


def test_every_bad_field_of_a_record_is_reported():
    err = build(**THREE_BAD)
    assert type(err) is InputErrors and isinstance(err, InputError)
    assert [e.field for e in err.errors] == ["release_year", "tdp", "unit_cost"]
    assert [type(e) for e in err.errors] == [InputError, UnitError, UnitError]
    for field in ("release_year", "tdp", "unit_cost"):
        assert field in str(err)
    # code that reads one field sees the first problem
    assert (err.field, err.value, err.rule) == ("release_year", 1800, "must be a calendar year between 1970 and 2100")


def test_one_bad_field_raises_the_single_error_as_before():
    err = build(**{**GOOD, "tdp": "5 GB"})
    assert type(err) is UnitError and not isinstance(err, InputErrors)
    assert str(err) == "tdp must have units of W ([mass] * [length] ** 2 / [time] ** 3), got '5 GB': convert it, e.g. '700 W'"
    err = build(**{**GOOD, "release_year": 1800})
    assert type(err) is InputError
    assert str(err) == "release_year must be a calendar year between 1970 and 2100, got 1800"
    err = build(compute=GOOD["compute"], memory=GOOD["memory"])
    assert type(err) is InputError and str(err) == "HardwareNode.name is required: pass name=... when building HardwareNode"


def test_bad_fields_of_sub_records_keep_their_path():
    err = build(name="Chip", compute={"peak_flops": "-1 TFLOP/s"}, memory={"capacity": "-1 GB", "bandwidth": "3 TFLOP/s"})
    assert type(err) is InputErrors and len(err.errors) == 3
    text = [str(e) for e in err.errors]
    assert text[0].startswith("HardwareNode.compute: peak_flops must be > 0")
    assert text[1].startswith("HardwareNode.memory: capacity must be > 0")
    assert text[2].startswith("HardwareNode.memory: bandwidth must have units of B/s")
    assert all(t in str(err) for t in text)


def test_the_aggregate_survives_pickling():
    err = build(**THREE_BAD)
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is InputErrors and str(back) == str(err)
    assert [(type(e), e.field, e.value, e.rule, e.fix) for e in back.errors] == \
           [(type(e), e.field, e.value, e.rule, e.fix) for e in err.errors]
    assert back.field == "release_year"


def test_inline_record_becomes_one_422_with_a_problem_per_field():
    body = {**THREE_BAD, "memory": {"capacity": "32 GB", "bandwidth": "3 TFLOP/s"}}
    with pytest.raises(RequestProblems) as info:
        records.build_record("hardware", body, "hardware")
    assert isinstance(info.value, InputErrors)  # one concept in the library and the service
    api = from_library_error(info.value)
    assert api.status == 422 and api.error == "invalid_input"
    assert [p["field"] for p in api.problems] == ["hardware.release_year", "hardware.memory.bandwidth",
                                                  "hardware.tdp", "hardware.unit_cost"]
    assert api.problems[0] == {"field": "hardware.release_year", "rule": "must be a calendar year between 1970 and 2100",
                               "value": 1800}
    assert api.problems[2]["value"] == "5 GB" and "W" in api.problems[2]["rule"] and api.problems[2]["fix"]


def test_problems_in_sub_records_get_their_full_request_path():
    body = {"name": "Chip", "compute": {"peak_flops": "-1 TFLOP/s", "bogus": 1}, "memory": {"capacity": "1 GB"},
            "colour": "red"}
    with pytest.raises(RequestProblems) as info:
        records.build_record("hardware", body, "hardware")
    assert [p["field"] for p in info.value.problems] == ["hardware.compute.peak_flops", "hardware.compute.bogus",
                                                         "hardware.memory.bandwidth", "hardware.colour"]


def test_library_aggregate_maps_to_one_problem_per_error():
    err = build(**THREE_BAD)
    api = from_library_error(err, "hardware")
    assert api.status == 422
    assert [p["field"] for p in api.problems] == ["hardware.release_year", "hardware.tdp", "hardware.unit_cost"]
    assert "3 problem(s)" in api.message
    with pytest.raises(InputErrors) as info:
        problem_from({"qps": -1, "min_share": 3})
    assert [p["field"] for p in from_library_error(info.value).problems] == ["problem.qps", "problem.min_share"]


def test_cli_prints_every_problem_of_a_problem_file(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"qps": -5, "min_share": 3}))
    code = main(["capstone", "--problem", str(path)])
    out = capsys.readouterr().err
    assert code == EXIT_BAD_INPUT
    assert "bad.yaml.qps" in out and "bad.yaml.min_share" in out
