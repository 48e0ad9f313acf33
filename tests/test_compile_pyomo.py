"""Pyomo backend: every node type has a rule; the same expressions give the same numbers as the
forward path at the solver's solution; invalid structure is refused with a pointer to Optuna."""
import pyomo.environ as pyo
import pytest
import sympy

from mlsysim_opt import Engine, Hardware, Models
from mlsysim_opt.compile import pyomo as pyomo_backend
from mlsysim_opt.compile.pyomo import PyomoCompiler
from mlsysim_opt.compile.rules import NODE_TYPES
from mlsysim_opt.errors import UnsupportedExpressionError
from mlsysim_opt.highs import SolveStatus, solve
from mlsysim_opt.models import roofline
from mlsysim_opt.symbolic import Max, Min, sym
from mlsysim_opt import inputs as _in


def test_every_node_type_has_a_pyomo_rule():
    for node in NODE_TYPES:
        assert any(cls in pyomo_backend.RULES for cls in node.__mro__), node.__name__


def _bindings(model, hw, precision="fp16", seq_len=2048, efficiency=0.5):
    choice = _in.precision_for(hw, precision, warn=False)
    v = _in.workload_values(model, choice, batch_size=1, seq_len=seq_len, is_training=False)
    v.update(_in.hardware_values(hw, choice), efficiency=efficiency, bandwidth_efficiency=1.0)
    return v


GOLDEN = [(Models.Llama3_8B, Hardware.H100, 8), (Models.Llama3_70B, Hardware.B200, 32),
          (Models.ResNet50, Hardware.A100, 64), (Models.Tiny.DS_CNN, Hardware.Tiny.ESP32_S3, 1),
          (Models.MobileNetV2, Hardware.Tiny.ESP32_S3, 1), (Models.Llama3_8B, Hardware.MI300X, 256)]


@pytest.mark.parametrize("model,hw,batch", GOLDEN, ids=[f"{m.name}-{h.name}-{b}" for m, h, b in GOLDEN])
def test_golden_latency_forward_equals_pyomo_at_the_solution(model, hw, batch):
    m = pyo.ConcreteModel()
    m.B = pyo.Var(domain=pyo.PositiveIntegers, bounds=(1, 4096))
    m.B.fix(batch)
    values = _bindings(model, hw)
    values["batch_size"] = m.B
    c = PyomoCompiler(m, values)
    latency = c.expression(roofline.sheet["latency"], polarity=+1)
    m.obj = pyo.Objective(expr=latency)
    result = solve(m)
    assert result.status is SolveStatus.OPTIMAL
    forward = Engine.solve(model, hw, batch_size=batch).latency.m_as("s")
    assert pyo.value(latency) == pytest.approx(forward, rel=1e-9)


@pytest.mark.parametrize("target_ms", [6.0, 10.0, 25.0])
def test_largest_batch_meeting_a_latency_target_matches_enumeration(target_ms):
    model, hw = Models.Llama3_8B, Hardware.H100
    m = pyo.ConcreteModel()
    m.B = pyo.Var(domain=pyo.PositiveIntegers, bounds=(1, 2048))
    values = _bindings(model, hw, seq_len=512)
    values["batch_size"] = m.B
    c = PyomoCompiler(m, values)
    c.add_upper_bound(roofline.sheet["latency"], target_ms / 1e3)
    m.obj = pyo.Objective(expr=m.B, sense=pyo.maximize)
    assert solve(m).status is SolveStatus.OPTIMAL
    best = max(b for b in range(1, 2049)
               if Engine.solve(model, hw, batch_size=b, seq_len=512).latency.m_as("ms") <= target_ms)
    assert round(pyo.value(m.B)) == best


def test_throughput_floor_is_cross_multiplied():
    # throughput = B / latency >= X  ->  B >= X * latency, with the max inside latency bounded above.
    model, hw = Models.Llama3_8B, Hardware.H100
    m = pyo.ConcreteModel()
    m.B = pyo.Var(domain=pyo.PositiveIntegers, bounds=(1, 1024))
    values = _bindings(model, hw, seq_len=128)
    values["batch_size"] = m.B
    PyomoCompiler(m, values).add_lower_bound(roofline.sheet["throughput"], 20_000.0)
    m.obj = pyo.Objective(expr=m.B)
    assert solve(m).status is SolveStatus.OPTIMAL
    smallest = min(b for b in range(1, 1025)
                   if Engine.solve(model, hw, batch_size=b, seq_len=128).throughput.m_as("1/s") >= 20_000)
    assert round(pyo.value(m.B)) == smallest


def test_rules_refuse_what_they_cannot_do_exactly():
    a = sym("pyo_t_a", "s", "a")
    b = sym("pyo_t_b", "s", "b")
    m = pyo.ConcreteModel()
    m.x = pyo.Var(bounds=(0, 10))
    m.y = pyo.Var(bounds=(0, 10))
    c = PyomoCompiler(m, {"pyo_t_a": m.x, "pyo_t_b": m.y})
    with pytest.raises(UnsupportedExpressionError, match="optuna"):
        c.add_lower_bound(Max(a, b), 3.0)          # max bounded below needs big-M
    with pytest.raises(UnsupportedExpressionError, match="optuna"):
        c.add_upper_bound(Min(a, b), 3.0)          # min bounded above needs big-M
    with pytest.raises(UnsupportedExpressionError, match="not linear"):
        c.expression(a * b)                        # product of two general variables
    with pytest.raises(UnsupportedExpressionError, match="optuna"):
        c.expression(sympy.log(a))


def test_binary_times_bounded_variable_is_linearized_exactly():
    a = sym("pyo_t_c", "dimensionless", "c")
    z = sym("pyo_t_z", "dimensionless", "binary switch", upper=1)
    for on in (0, 1):
        m = pyo.ConcreteModel()
        m.x = pyo.Var(bounds=(2, 9))
        m.z = pyo.Var(domain=pyo.Binary)
        m.z.fix(on)
        expr = PyomoCompiler(m, {"pyo_t_c": m.x, "pyo_t_z": m.z}).expression(z * a, polarity=0)
        m.obj = pyo.Objective(expr=-expr)
        assert solve(m).status is SolveStatus.OPTIMAL
        assert pyo.value(expr) == pytest.approx(9.0 * on)
