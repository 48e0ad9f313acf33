"""The phases sheet (models/phases.py): training, prefill, decode and single-input passes written once
and used by every caller (workload lowering, the vectorized grid, serving, reasoning, sensitivity)."""
import pytest
import sympy

from mlsysim_opt import Engine, Hardware, Models
from mlsysim_opt import inputs as _in
from mlsysim_opt.engine import grid_values
from mlsysim_opt.models import memory, phases, roofline, serving
from mlsysim_opt.solvers.serving import ServingModel
from mlsysim_opt.solvers.walls import InferenceScalingModel
from mlsysim_opt.symbolic.sheet import Definition

LLAMA8, H100 = Models.Llama3_8B, Hardware.H100
ROOFLINE_KEYS = ("tokens_per_request", "context_tokens", "attended_context")


def _lowered(wl, seq, is_training, **kw):
    choice = _in.precision_for(H100, "fp16", warn=False)
    return _in.workload_values(wl, choice, batch_size=4, seq_len=seq, is_training=is_training, **kw)


@pytest.mark.parametrize("phase, expected", [
    ("training", (7, 0, 4)),     # whole sequence, no cache, causal mean (7 + 1) / 2
    ("prefill", (7, 7, 4)),      # the prompt, writing its cache
    ("decode", (1, 7, 7)),       # one token against the cache
    ("input", (1, 0, 0)),        # no attention
])
def test_phase_table(phase, expected):
    names = phases.definitions(phase)
    out = phases.sheet.compiled(tuple(names))(sequence_length=7.0)
    assert tuple(out[d] for d in names) == expected
    assert list(names.values()) == list(ROOFLINE_KEYS)


@pytest.mark.parametrize("wl, is_training, phase", [
    (LLAMA8, True, "training"), (LLAMA8, False, "decode"), (Models.ResNet50, True, "input"),
    (Models.ResNet50, False, "input")])
def test_lowering_takes_the_tokens_from_the_phase_sheet(wl, is_training, phase):
    values = _lowered(wl, 301, is_training)
    subs = phases.at(phase, 301)
    for x in phases.SETS:
        assert values[x.name] == float(sympy.sympify(subs[x]))
    if phases.t in subs:
        assert values["training"] == subs[phases.t]


def test_prefill_phase_is_only_for_inference_of_language_models():
    assert _lowered(LLAMA8, 64, False, phase="prefill")["context_tokens"] == 64.0
    with pytest.raises(ValueError, match="does not apply"):
        _lowered(LLAMA8, 64, True, phase="prefill")
    with pytest.raises(ValueError, match="does not apply"):
        _lowered(Models.ResNet50, 64, False, phase="decode")


@pytest.mark.parametrize("wl, is_training", [(LLAMA8, True), (LLAMA8, False), (Models.ResNet50, False)])
def test_grid_gathers_what_each_point_lowers_to(wl, is_training):
    seqs = [1, 128, 4097]
    grid = grid_values(wl, [H100], ["fp16"], [1, 8], [0.5], seqs, is_training)
    for i, seq in enumerate(grid.labels["seq_len"]):
        point = _lowered(wl, int(seq), is_training)
        for key in ROOFLINE_KEYS:
            assert grid.values[key][i] == point[key]


def test_serving_substitutes_the_same_phases():
    p, o = serving.p, serving.o
    assert serving.PREFILL == phases.at("prefill", p)
    assert serving.DECODE == phases.at("decode", p + o / 2)
    assert serving.sheet["ttft"] == roofline.sheet["latency"].xreplace(phases.at("prefill", p))


def test_reasoning_ttft_is_the_serving_prefill():
    # Both are the roofline at the prefill phase of the prompt: one rule, two solvers.
    prompt, batch = 1500, 4
    reasoning = InferenceScalingModel().solve(LLAMA8, H100, 0, answer_tokens=100, prompt_tokens=prompt,
                                              batch_size=batch)
    # the walls' solvers keep the tutorial's flat factors; the serving solver has them one argument away
    served = ServingModel().solve(LLAMA8, H100, seq_len=prompt + 100, prompt_len=prompt, batch_size=batch,
                                  calibration="flat")
    assert reasoning.ttft.m_as("s") == pytest.approx(served.ttft.m_as("s"), rel=1e-12)


@pytest.fixture
def redefined(monkeypatch):
    """Replace one phase definition (its compiled forms are dropped for the test)."""
    def apply(name, expr):
        old = phases.sheet.definitions[name]
        monkeypatch.setitem(phases.sheet.definitions, name, Definition(name, sympy.sympify(expr), old.unit, old.meaning))
        monkeypatch.setattr(phases.sheet, "_compiled", {})
    return apply


def test_every_caller_follows_the_sheet(redefined):
    """Change the causal mean in the sheet: the lowering, the grid and the sensitivity all move with it,
    so none of them restates the rule."""
    from mlsysim_opt.solvers.sensitivity import SensitivitySolver
    s = phases.s
    solve = lambda: SensitivitySolver().solve(LLAMA8, H100, batch_size=8, seq_len=600, is_training=True)  # noqa: E731
    before = solve()                                    # compute-bound: attention FLOPs read the context
    redefined("training_attended_context", s / 3)
    assert _lowered(LLAMA8, 600, True)["attended_context"] == 200.0
    grid = grid_values(LLAMA8, [H100], ["fp16"], [1], [0.5], [600, 900], True)
    assert list(grid.values["attended_context"]) == [200.0, 300.0]
    table = Engine.sweep_table(LLAMA8, [H100], seq_lens=[600], is_training=True)
    assert table["latency_s"][0] == pytest.approx(Engine.solve(LLAMA8, H100, seq_len=600,
                                                               is_training=True).latency.m_as("s"), rel=1e-12)
    after = solve()
    assert after.latency < before.latency
    assert after.sensitivities["seq_len"] < before.sensitivities["seq_len"]


def test_activation_elements_come_from_the_memory_sheet(monkeypatch):
    from mlsysim_opt.symbolic import constants
    from mlsysim_opt.symbolic import sheet as sheet_module
    assert constants()[memory.ACT_PER_HIDDEN] == 17.0        # Korthikanti et al. 2022, Table 2
    assert _lowered(LLAMA8, 128, False)["activation_elements"] == 17.0 * 4096 * 32
    with monkeypatch.context() as m:                          # the lowering reads the sheet's constant
        m.setitem(sheet_module._CONSTANTS, memory.ACT_PER_HIDDEN, 10.0)
        m.setattr(memory.sheet, "_compiled", {})
        assert _lowered(LLAMA8, 128, False)["activation_elements"] == 10.0 * 4096 * 32
