"""The package's front door: every exported name resolves, and importing it stays light (the MILP
stack loads on first use)."""
import subprocess
import sys

import mlsysim_opt


def test_every_exported_name_resolves_and_is_listed():
    missing = [name for name in mlsysim_opt.__all__ if getattr(mlsysim_opt, name, None) is None]
    assert missing == []
    assert {"synthesize", "Grader", "SolveStatus"} <= set(dir(mlsysim_opt))
    assert len(set(mlsysim_opt.__all__)) == len(mlsysim_opt.__all__)


def test_unknown_attributes_fail_as_attributes_do():
    try:
        mlsysim_opt.no_such_thing
    except AttributeError as exc:
        assert "no_such_thing" in str(exc)
    else:
        raise AssertionError("expected AttributeError")


def test_importing_the_package_does_not_load_pyomo_until_a_formulation_is_used():
    code = ("import sys, mlsysim_opt; before = 'pyomo' in sys.modules; "
            "from mlsysim_opt import synthesize; print(before, 'pyomo' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.split() == ["False", "True"]
