"""Start-up stays light (nothing heavy is imported until it is used) and the on-disk cache of
compiled sheets is keyed by what it depends on, survives damage and gives the same numbers."""
import importlib.util
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import mlsysim_opt
from mlsysim_opt.compile import cache, numeric
from mlsysim_opt.compile.numeric import cache_key, compile_expressions
from mlsysim_opt.symbolic import SHEETS

HEAVY = ("pyomo", "sympy", "pandas", "matplotlib", "fastapi", "optuna", "dask", "scipy")
MODELS = pathlib.Path(__file__).resolve().parents[1] / "models"


def _run_fresh(code: str, **env) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env={**os.environ, **env})
    assert out.returncode == 0, out.stderr
    return out.stdout


def _heavy_loaded_after(statement: str) -> list[str]:
    code = f"import sys\n{statement}\nprint(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    return _run_fresh(code).split()


# -------------------------------------------------------------------------------------- imports

def test_importing_the_package_loads_no_heavy_library():
    assert _heavy_loaded_after("import mlsysim_opt") == []


def test_cli_help_loads_no_heavy_library():
    statement = ("import contextlib, io\nfrom mlsysim_opt.cli import main\n"
                 "with contextlib.redirect_stdout(io.StringIO()) as text:\n"
                 "    try:\n        main(['--help'])\n    except SystemExit as done:\n        assert done.code == 0\n"
                 "assert 'synthesize' in text.getvalue()")
    assert _heavy_loaded_after(statement) == []


def test_a_public_name_loads_its_module_on_first_use():
    loaded = _heavy_loaded_after("from mlsysim_opt import Engine, Hardware, Q_\nassert Q_('1 ms').to('us').m == 1000")
    # pint itself probes for SciPy and Dask arrays; nothing else heavy may come with units
    assert not {"pyomo", "sympy", "pandas", "matplotlib", "fastapi", "optuna"} & set(loaded), loaded


def test_importing_the_package_changes_nothing_for_other_libraries():
    # the package may load its dependencies late, but never alters how they load for the rest of a
    # program: Pyomo still finds SciPy, pint still knows Dask arrays
    code = ("import mlsysim_opt, mlsysim_opt.units, pyomo.environ\n"
            "from pyomo.common.dependencies import scipy_available\n"
            "import pint.compat\n"
            "print(bool(scipy_available), pint.compat.HAS_DASK)")
    assert _run_fresh(code).split() == ["True", "True"]


def test_the_calibrate_export_stays_the_function_after_its_module_loads():
    code = ("import sys, mlsysim_opt.calibrate, mlsysim_opt\n"
            "module = sys.modules['mlsysim_opt.calibrate']\n"
            "print(type(mlsysim_opt.calibrate).__name__, mlsysim_opt.calibrate is module.calibrate)")
    assert _run_fresh(code).split() == ["function", "True"]


# ------------------------------------------------------------------------------------ cache keys

@pytest.fixture
def cache_folder(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv(cache.ENV_VAR, str(folder))
    return folder


def _load_sheet_copy(path: pathlib.Path, sheet_name: str):
    """Import a copy of a sheet file in place of the registered sheet of that name."""
    spec = importlib.util.spec_from_file_location(f"sheet_copy_{abs(hash(path.read_text()))}", path)
    module = importlib.util.module_from_spec(spec)
    real = SHEETS.pop(sheet_name)
    try:
        spec.loader.exec_module(module)
        return module.sheet
    finally:
        SHEETS[sheet_name] = real


def _key_of(sheet, name: str) -> str:
    return cache_key({name: sheet[name]}, sheet.inputs([name]))


def test_the_key_follows_the_sheet_source(tmp_path):
    from mlsysim_opt.models import fleet
    source = (MODELS / "fleet.py").read_text(encoding="utf-8")
    assert "x / (h * q)" in source
    same = tmp_path / "fleet_same.py"
    same.write_text(source, encoding="utf-8")
    edited = tmp_path / "fleet_edited.py"
    edited.write_text(source.replace("x / (h * q)", "2 * x / (h * q)", 1), encoding="utf-8")

    original = _key_of(fleet.sheet, "fleet_capacity")
    assert _key_of(_load_sheet_copy(same, "fleet"), "fleet_capacity") == original
    assert _key_of(_load_sheet_copy(edited, "fleet"), "fleet_capacity") != original


def test_the_key_follows_package_python_and_backend_versions(monkeypatch):
    from mlsysim_opt.models import fleet
    before = _key_of(fleet.sheet, "replica_annual_cost")
    monkeypatch.setattr(mlsysim_opt, "__version__", "0.0.0-other")
    after_package = _key_of(fleet.sheet, "replica_annual_cost")
    monkeypatch.undo()
    monkeypatch.setattr(sys, "version", sys.version + " other build")
    after_python = _key_of(fleet.sheet, "replica_annual_cost")
    monkeypatch.undo()
    monkeypatch.setattr(numeric, "backend_versions", lambda: ("sympy 0", "numeric.py edited"))
    after_backend = _key_of(fleet.sheet, "replica_annual_cost")
    assert len({before, after_package, after_python, after_backend}) == 4


def test_the_key_follows_a_constant_value_and_the_inputs(monkeypatch):
    from mlsysim_opt.models import fleet
    from mlsysim_opt.symbolic import sheet as sheet_module
    expr = {"replicas_needed": fleet.sheet["replicas_needed"]}
    before = cache_key(expr, None)
    roundoff = next(s for s in sheet_module._CONSTANTS if s.name == "replica_roundoff")
    monkeypatch.setitem(sheet_module._CONSTANTS, roundoff, 1e-6)
    assert cache_key(expr, None) != before
    monkeypatch.undo()
    inputs = fleet.sheet.inputs(["replicas_needed"])
    assert cache_key(expr, inputs) != cache_key(expr, list(reversed(inputs)))


def test_the_key_tells_close_numbers_and_symbol_assumptions_apart():
    import sympy
    x = sympy.Symbol("startup_key_x", positive=True)
    same_name = sympy.Symbol("startup_key_x", real=True)
    tenth = sympy.Float(0.1)
    assert cache_key({"f": x * tenth}, [x]) == cache_key({"f": x * sympy.Float(0.1)}, [x])
    assert cache_key({"f": x * tenth}, [x]) != cache_key({"f": same_name * tenth}, [same_name])
    assert cache_key({"f": x * tenth}, [x]) != cache_key({"f": x * sympy.Float(0.10000000000000002)}, [x])


# --------------------------------------------------------------------------- cache entries

def _sample_inputs(compiled, size: int = 5) -> dict:
    rng = np.random.default_rng(7)   # below one: loads, probabilities and quantiles in range
    return {name: rng.uniform(0.05, 0.9, size) for name in compiled.inputs}


def _serving_definitions():
    from mlsysim_opt.models import serving_load
    names = ("load_ttft_quantile", "load_itl_quantile", "load_utilization")
    return {n: serving_load.sheet[n] for n in names}, serving_load.sheet.inputs(names)


def test_cached_and_fresh_functions_give_identical_results(cache_folder, monkeypatch):
    exprs, inputs = _serving_definitions()
    first = compile_expressions(exprs, inputs)             # compiled, then stored
    assert len(list((cache_folder / "numeric").glob("*.json"))) == 1

    def no_printing(*args):
        raise AssertionError("a cached function was printed again")
    monkeypatch.setattr(numeric, "_print_sources", no_printing)
    cached = compile_expressions(exprs, inputs)           # read back
    monkeypatch.undo()
    monkeypatch.setenv(cache.ENV_VAR, "off")
    fresh = compile_expressions(exprs, inputs)            # no cache at all

    values = _sample_inputs(fresh)
    assert cached.inputs == fresh.inputs == first.inputs and cached.source == fresh.source
    for i in range(5):
        point = {k: float(v[i]) for k, v in values.items()}
        np.testing.assert_array_equal(list(cached(**point).values()), list(fresh(**point).values()))
    for name, column in fresh.vector(**values).items():
        np.testing.assert_array_equal(cached.vector(**values)[name], column)


@pytest.mark.parametrize("damage", [
    lambda text: text[: len(text) // 2],                                       # a half-written file
    lambda text: "not json at all",
    lambda text: json.dumps({**json.loads(text), "scalar": "def _scalar(:"}),  # bad source
    lambda text: json.dumps({**json.loads(text), "inputs": ["a", "b"]}),       # wrong signature
    lambda text: json.dumps([1, 2, 3]),
])
def test_a_damaged_entry_is_ignored_and_rebuilt(cache_folder, damage):
    exprs, inputs = _serving_definitions()
    good = compile_expressions(exprs, inputs)
    (entry,) = (cache_folder / "numeric").glob("*.json")
    entry.write_text(damage(entry.read_text(encoding="utf-8")), encoding="utf-8")

    rebuilt = compile_expressions(exprs, inputs)
    point = {k: float(v[0]) for k, v in _sample_inputs(good).items()}
    np.testing.assert_array_equal(list(rebuilt(**point).values()), list(good(**point).values()))
    assert json.loads(entry.read_text(encoding="utf-8"))["scalar"] in good.source   # overwritten whole


def test_no_temporary_files_are_left_behind(cache_folder):
    exprs, inputs = _serving_definitions()
    compile_expressions(exprs, inputs)
    assert [p.name for p in (cache_folder / "numeric").iterdir() if not p.name.endswith(".json")] == []


def test_an_unusable_or_disabled_cache_only_means_compiling(tmp_path, monkeypatch):
    blocker = tmp_path / "a_file"
    blocker.write_text("in the way", encoding="utf-8")
    exprs, inputs = _serving_definitions()
    for setting in (str(blocker / "cache"), "off", ""):
        monkeypatch.setenv(cache.ENV_VAR, setting)
        assert cache.cache_dir() is None
        assert compile_expressions(exprs, inputs).outputs == tuple(exprs)
    assert blocker.read_text(encoding="utf-8") == "in the way"


def test_the_default_location_follows_xdg_cache_home(tmp_path, monkeypatch):
    monkeypatch.delenv(cache.ENV_VAR, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache.cache_dir() == tmp_path / "mlsysim_opt"


def test_a_damaged_unit_cache_falls_back_to_building_the_registry(cache_folder):
    probe = "from mlsysim_opt.units import Q_\nprint(Q_('400 Gbps').to('GB/s').m, Q_('1 B').dimensionality)"
    assert _run_fresh(probe, **{cache.ENV_VAR: str(cache_folder)}).split() == ["50.0", "[information]"]
    parsed = list((cache_folder / "pint").glob("*/parsed/*"))
    assert parsed
    for path in parsed:
        path.write_bytes(path.read_bytes()[:20])
    assert _run_fresh(probe, **{cache.ENV_VAR: str(cache_folder)}).split() == ["50.0", "[information]"]
