import math

import numpy as np
import pytest
import sympy

from mlsysim_opt.compile.numeric import compile_expressions
from mlsysim_opt.compile.rules import NODE_TYPES
from mlsysim_opt.errors import ModelDefinitionError
from mlsysim_opt.symbolic import SHEETS, Max, Piecewise, Sheet, ceiling, declared_symbols, sym


def test_redeclaring_a_symbol_with_another_unit_fails():
    first = sym("test_sym_len", "s", "a time")
    assert sym("test_sym_len", "s", "the same time") is first
    for other in ("ms", "byte"):  # floats inside compiled code carry exactly the declared unit
        with pytest.raises(ModelDefinitionError, match="one name, one unit"):
            sym("test_sym_len", other, "a different unit")


def test_dimension_mismatch_is_caught_when_defined():
    sheet = Sheet("test_dims", "dimension checks")
    t = sym("test_dim_t", "s", "time")
    m = sym("test_dim_m", "byte", "bytes")
    with pytest.raises(ModelDefinitionError, match="different dimensions"):
        sheet.define("bad_sum", t + m, "s", "adds time and bytes")
    with pytest.raises(ModelDefinitionError, match="declared in"):
        sheet.define("bad_unit", m / t, "s", "a bandwidth declared as a time")
    with pytest.raises(ModelDefinitionError, match="dimensionless argument"):
        sheet.define("bad_log", sympy.log(t), "dimensionless", "log of a time")
    ok = sheet.define("ok", Max(t, m / sym("test_dim_bw", "byte/s", "bw")), "s", "a max of two times")
    assert ok is sheet["ok"]
    del SHEETS["test_dims"]


def test_scalar_and_vector_backends_agree_on_every_node_type():
    x = sym("test_x", "dimensionless", "x", lower=None)
    y = sym("test_y", "dimensionless", "y", lower=None)
    exprs = {
        "add_mul_pow": 2 * x + x * y - y ** 2 + sympy.sqrt(x ** 2 + 1) / (y ** 2 + 1),
        "max_min": Max(x, y, 0.5) - sympy.Min(x, y),
        "piecewise": Piecewise((x, (x > y) & (y >= 0)), (y, sympy.Or(x < -1, sympy.Not(y <= 2))), (x * y, True)),
        "rounding": ceiling(x) + sympy.floor(y) + sympy.Abs(x - y),
        "log_exp": sympy.log(x ** 2 + 2) + sympy.exp(-y ** 2),
        "heaviside": sympy.Heaviside(x - y),
    }
    f = compile_expressions(exprs)
    rng = np.random.default_rng(0)
    xs, ys = rng.uniform(-3, 3, 200), rng.uniform(-3, 3, 200)
    vec = f.vector(test_x=xs, test_y=ys)
    for i in range(len(xs)):
        scalar = f(test_x=xs[i], test_y=ys[i])
        for name in exprs:
            ref = float(exprs[name].subs({x: xs[i], y: ys[i]}).evalf())
            assert scalar[name] == pytest.approx(ref, rel=1e-9, abs=1e-12), name
            assert vec[name][i] == pytest.approx(ref, rel=1e-9, abs=1e-12), name


def test_every_node_type_has_a_rule_in_every_backend():
    from mlsysim_opt.compile import dimension, numeric
    tables = {"dimension": dimension.RULES, "scalar": numeric.SCALAR_RULES, "vector": numeric.VECTOR_RULES}
    for backend, table in tables.items():
        for node in NODE_TYPES:
            assert any(cls in table for cls in node.__mro__), f"{backend} has no rule for {node.__name__}"


def test_every_registered_sheet_compiles_and_is_dimension_consistent():
    import mlsysim_opt.models  # noqa: F401  (registers the sheets)
    assert {"memory", "roofline"} <= set(SHEETS)
    for sheet in SHEETS.values():
        f = sheet.compiled()
        assert f.outputs == tuple(sheet.definitions)
        for s in sheet.inputs():
            assert s.name in declared_symbols()


def test_max_derivative_of_the_losing_branch_is_exactly_zero():
    sheet = Sheet("test_grad", "gradient")
    a = sym("test_grad_a", "s", "a")
    b = sym("test_grad_b", "s", "b")
    sheet.define("T", Max(a, 2 * b), "s", "max")
    g = sheet.gradient("T")
    d = g(test_grad_a=5.0, test_grad_b=1.0)
    assert d == {"test_grad_a": 1.0, "test_grad_b": 0.0}
    d = g(test_grad_a=1.0, test_grad_b=5.0)
    assert d == {"test_grad_a": 0.0, "test_grad_b": 2.0}
    del SHEETS["test_grad"]


def test_every_sheet_module_registers_a_sheet():
    import importlib

    import mlsysim_opt.models as models
    from mlsysim_opt.symbolic import Sheet
    for name in models.SHEET_MODULES:
        module = importlib.import_module(f"mlsysim_opt.models.{name}")
        sheets = [v for v in vars(module).values() if isinstance(v, Sheet)]
        assert sheets, f"models/{name}.py defines no Sheet"
        for s in sheets:
            assert SHEETS[s.name] is s


def test_max_and_min_are_built_as_written_with_only_safe_rewrites():
    """The sheets' Max/Min skip SymPy's pairwise comparison of arguments: they keep what is
    written (order included), flatten nesting, drop repeats and fold numbers; substituting
    numbers still gives a number."""
    from mlsysim_opt.symbolic import Min

    x, y = sympy.symbols("x y", positive=True)
    assert Max(x, y).args == (x, y)
    assert Max(y, x).args == (y, x)
    assert Max(x, Max(y, 2), 3, x).args == (x, y, 3)
    assert Min(x, Min(y, 2), 3).args == (x, y, 2)
    assert Max(x) == x and Max(2, 5) == 5 and Min(2, 5) == 2
    # SymPy's own Max would drop 0 here (x is positive); ours keeps it, and both evaluate the same
    assert Max(x, 0).args == (x, 0)
    assert Max(x, y).xreplace({x: 4, y: 7}) == 7
    assert Min(x + 1, y).xreplace({x: 4}) == Min(5, y)
    assert isinstance(Max(x, y), sympy.Max) and isinstance(Min(x, y), sympy.Min)
    with pytest.raises(TypeError, match="at least one argument"):
        Max()
