"""DSE: exhaustive search with objectives and constraints parsed from strings, infeasible points
dropped at any depth, errors collected; the vectorized roofline grid; bad inputs."""
import itertools

import pytest

from mlsysim_opt import Engine, Hardware, InputError, Models, SolverError
from mlsysim_opt.dse import DSE, InfeasibleSpaceError
from mlsysim_opt.errors import UnknownNameError
from mlsysim_opt.expressions import ExpressionError, PathError, parse_constraint
from mlsysim_opt.results import Result
from example_runs import example_output

LLAMA, H100 = Models.Llama3_8B, Hardware.H100


class Stage(Result):
    value: float
    feasible: bool = True


def brute_force(space, evaluate, score, keep):
    """Independent reference: loop, keep, take the best (first on ties)."""
    best = None
    for combo in itertools.product(*space.values()):
        params = dict(zip(space, combo))
        result = evaluate(params)
        if not keep(result):
            continue
        s = score(result)
        if best is None or s > best[0]:
            best = (s, params)
    return best


def test_deck_search_matches_brute_force():
    space = {"batch_size": [1, 4, 8, 16, 32, 64, 128, 256, 512], "precision": ["fp16", "int8"]}
    evaluate = lambda p: Engine.solve(LLAMA, H100, efficiency=0.5, **p)   # noqa: E731
    result = DSE(space=space, objective="maximize: throughput", constraints=["latency < 20"]).search(evaluate)
    expected = brute_force(space, evaluate, lambda r: r.throughput.to("1/s").magnitude,
                           lambda r: r.feasible and r.latency.to("ms").magnitude < 20)
    assert result.best_params == expected[1]
    assert result["best_params"] == result.best_params
    assert result["best_objective"] == pytest.approx(expected[0])
    assert isinstance(result.best_objective, float)
    assert result.objective_unit == "1/s"
    assert result.evaluated == 18
    values = [c["objective_value"] for c in result.top_candidates]
    assert values == sorted(values, reverse=True) and len(values) == 5
    assert set(result.top_candidates[0]) == {"params", "objective_value", "result"}
    assert result.best_result.latency.to("ms").magnitude < 20


def test_infeasible_points_are_dropped_and_counted():
    space = {"precision": ["fp16", "int8", "int4"], "batch_size": [1, 8]}
    evaluate = lambda p: Engine.solve(Models.Llama3_70B, H100, **p)     # noqa: E731
    expected_infeasible = sum(not evaluate(dict(zip(space, c))).feasible for c in itertools.product(*space.values()))
    assert expected_infeasible == 2                                    # fp16 (141 GB) does not fit 86 GB
    r = DSE(space=space, objective="minimize: latency").search(evaluate)
    assert r.dropped_infeasible == expected_infeasible
    assert r.best_params["precision"] != "fp16"
    assert all(c["result"].feasible for c in r.top_candidates)


def test_nested_infeasibility_in_pipeline_dicts_is_dropped():
    def evaluate(p):
        return {"A": Stage(value=p["x"]), "B": {"inner": Stage(value=0.0, feasible=p["x"] < 3)}}
    r = DSE(space={"x": [1, 2, 3, 4]}, objective="maximize: A.value").search(evaluate)
    assert r.best_params == {"x": 2}
    assert r.dropped_infeasible == 2
    r2 = DSE(space={"x": [1, 2, 3]}, objective="maximize: value").search(lambda p: {"value": p["x"], "feasible": p["x"] != 3})
    assert r2.best_params == {"x": 2}


def test_thresholds_with_and_without_units_agree():
    space = {"batch_size": [1, 16, 64, 256]}
    evaluate = lambda p: Engine.solve(LLAMA, H100, **p)                # noqa: E731
    picks = [DSE(space=space, objective="maximize: throughput", constraints=[c]).search(evaluate).best_params
             for c in ("latency < 10", "latency < 10 ms", "latency < 0.01 s", "10 ms > latency")]
    assert all(p == picks[0] for p in picks)
    direct = [b for b in space["batch_size"] if Engine.solve(LLAMA, H100, batch_size=b).latency.to("ms").magnitude < 10]
    assert picks[0]["batch_size"] == max(direct)


def test_constraints_on_booleans_strings_and_two_paths():
    space = {"batch_size": [1, 64, 256, 512], "seq_len": [128, 2048]}
    evaluate = lambda p: Engine.solve(LLAMA, H100, **p)                # noqa: E731
    r = DSE(space=space, objective="minimize: latency",
            constraints=["feasible == True", "bottleneck == 'Compute'", "latency_compute > latency_memory"]).search(evaluate)
    assert r.best_params == {"batch_size": 256, "seq_len": 128}
    assert r.best_result.bottleneck == "Compute"


def test_evaluator_errors_are_collected_with_their_params():
    def evaluate(p):
        if p["x"] == 2:
            raise ValueError("boom at two")
        return {"score": float(p["x"])}
    r = DSE(space={"x": [1, 2, 3]}, objective="maximize: score").search(evaluate)
    assert r.best_params == {"x": 3}
    assert r.errors == [{"params": {"x": 2}, "type": "ValueError", "message": "boom at two"}]


def test_every_point_failing_raises_with_the_first_error():
    def evaluate(p):
        raise KeyError(f"missing thing {p['x']}")
    with pytest.raises(SolverError) as err:
        DSE(space={"x": [7, 8]}, objective="maximize: score").search(evaluate)
    assert "missing thing 7" in str(err.value) and "{'x': 7}" in str(err.value)


def test_unknown_objective_field_lists_available_fields():
    with pytest.raises(PathError) as err:
        DSE(space={"batch_size": [1]}, objective="maximize: thruput").search(lambda p: Engine.solve(LLAMA, H100, **p))
    msg = str(err.value)
    assert "thruput" in msg and "throughput" in msg and "latency" in msg
    with pytest.raises(PathError) as err:
        DSE(space={"x": [1]}, objective="maximize: A.nope").search(lambda p: {"A": Stage(value=1.0)})
    assert "A.nope" in str(err.value) and "value" in str(err.value)
    with pytest.raises(PathError) as err:
        DSE(space={"x": [1]}, objective="maximize: value", constraints=["lat < 3"]).search(lambda p: {"value": 1.0})
    assert "constraints[0]" in str(err.value)


@pytest.mark.parametrize("text,column", [("latency << 100", 10), ("latency = 100", 9), ("latency < 100 parsecz", 15),
                                         ("latency <", 10), ("< 100", 1), ("latency < 100 and x > 1", 15)])
def test_constraint_that_does_not_parse_points_at_the_token(text, column):
    with pytest.raises(ExpressionError) as err:
        DSE(space={"x": [1]}, objective="maximize: x", constraints=["x > 0", text])
    assert err.value.position + 1 == column
    assert "constraints[1]" in str(err.value)
    caret = next(line for line in str(err.value).splitlines() if line.strip() == "^")
    assert caret.index("^") == 4 + column - 1          # under the offending token of the echoed text


@pytest.mark.parametrize("objective", ["maximise: x", "maximize x", "maximize(x", "maximize: ", "maximize: x y"])
def test_objective_that_does_not_parse(objective):
    with pytest.raises(ExpressionError) as err:
        DSE(space={"x": [1]}, objective=objective)
    assert "objective" in str(err.value)


@pytest.mark.parametrize("space,field", [
    ({}, "space"), ([("x", [1])], "space"), ({"x": []}, "space['x']"), ({"x": "abc"}, "space['x']"),
    ({"x": 5}, "space['x']"),
])
def test_bad_space(space, field):
    with pytest.raises(InputError) as err:
        DSE(space=space, objective="maximize: x")
    assert field in str(err.value)


def test_bad_options():
    with pytest.raises(InputError) as err:
        DSE(space={"x": [1]}, objective="maximize: x", top_k=0)
    assert "top_k" in str(err.value)
    with pytest.raises(UnknownNameError):
        DSE(space={"x": [1]}, objective="maximize: x", backend="annealing")
    with pytest.raises(InputError) as err:
        DSE(space={"x": [1]}, objective="maximize: x").search("not a function")
    assert "evaluate" in str(err.value)
    with pytest.raises(InputError) as err:   # a dimension mismatch is a query error, not a point error
        DSE(space={"batch_size": [1]}, objective="maximize: throughput",
            constraints=["latency < 5 GB"]).search(lambda p: Engine.solve(LLAMA, H100, **p))
    assert "latency < 5 GB" in str(err.value)


def test_nothing_left_explains_which_constraint_failed():
    with pytest.raises(InfeasibleSpaceError) as err:
        DSE(space={"batch_size": [1, 8]}, objective="maximize: throughput",
            constraints=["latency < 1 ms"]).search(lambda p: Engine.solve(LLAMA, H100, **p))
    msg = str(err.value)
    assert "'latency < 1 ms' failed 2 time(s)" in msg and "5.2" in msg   # closest latency seen: 5.2 ms


def test_string_parsing_never_evaluates_code():
    with pytest.raises(ExpressionError):
        parse_constraint("__import__('os').system('true') == 0")
    c = parse_constraint("a.b[0]['k'] >= 3.35 TB/s")
    assert c.left.parts == ("a", "b", 0, "k")
    assert c.right.value.to("GB/s").magnitude == pytest.approx(3350)


def test_progress_bar_runs():
    r = DSE(space={"x": list(range(20))}, objective="minimize: v", progress=True).search(lambda p: {"v": (p["x"] - 7) ** 2})
    assert r.best_params == {"x": 7} and r.best_objective == 0.0


def test_top_k_and_ties_keep_enumeration_order():
    r = DSE(space={"x": [1, 2, 3, 4]}, objective="maximize: v", top_k=3).search(lambda p: {"v": 1.0})
    assert [c["params"]["x"] for c in r.top_candidates] == [1, 2, 3]


# ------------------------------------------------------------------------------------------------
# Vectorized roofline grid


def test_roofline_grid_agrees_with_exhaustive_search():
    hardware = [Hardware.A100, Hardware.H100, Hardware.B200]
    batches, precisions, seqs = [1, 8, 64, 256, 512], ["fp16", "int8"], [128, 2048]
    constraints = ["latency < 20 ms", "bottleneck == 'Memory'"]
    grid = DSE.roofline_grid(LLAMA, hardware=hardware, batch_sizes=batches, precisions=precisions,
                             efficiencies=[0.5], seq_lens=seqs, objective="maximize: throughput",
                             constraints=constraints, top_k=3)
    space = {"hw": hardware, "batch_size": batches, "precision": precisions, "seq_len": seqs}
    exhaustive = DSE(space=space, objective="maximize: throughput", constraints=constraints, top_k=3).search(
        lambda p: Engine.solve(LLAMA, p["hw"], batch_size=p["batch_size"], precision=p["precision"],
                               seq_len=p["seq_len"]))
    assert grid.evaluated == exhaustive.evaluated == 60
    assert grid.dropped_infeasible == exhaustive.dropped_infeasible
    assert grid.satisfying == exhaustive.satisfying
    assert grid.best_objective == pytest.approx(exhaustive.best_objective, rel=1e-9)
    assert grid.best_params["hardware"] == exhaustive.best_params["hw"].name
    assert grid.best_params["batch_size"] == exhaustive.best_params["batch_size"]
    assert grid.best_result.throughput.to("1/s").magnitude == pytest.approx(grid.best_objective, rel=1e-9)
    assert grid.objective_unit == "1/s"


def test_roofline_grid_table_matches_engine_solve():
    g = DSE.roofline_grid(Models.ResNet50, hardware=[Hardware.A100], batch_sizes=[1, 32],
                          objective="minimize: latency", return_table=True)
    table = g.table
    row = table[table["batch_size"] == 32].iloc[0]
    p = Engine.solve(Models.ResNet50, Hardware.A100, batch_size=32)
    assert row["latency"] == pytest.approx(p.latency.to("ms").magnitude, rel=1e-12)
    assert row["energy"] == pytest.approx(p.energy.to("J").magnitude, rel=1e-12)
    assert row["memory_footprint"] == pytest.approx(p.memory_footprint.to("GB").magnitude, rel=1e-12)
    assert "seq_len" not in g.best_params                     # not a language model


def test_roofline_grid_evaluates_a_million_points():
    """Its speed is measured in benchmarks/bench_dse.py and bench_engine.py, not here."""
    hardware = [Hardware.A100, Hardware.H100, Hardware.H200, Hardware.B200, Hardware.MI300X]
    kwargs = dict(batch_sizes=list(range(1, 1001)), precisions=["fp16", "fp8", "int8", "int4"],
                  efficiencies=[0.3, 0.4, 0.5, 0.6, 0.7], seq_lens=[128, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072])
    g = DSE.roofline_grid(LLAMA, hardware=hardware, objective="minimize: energy_per_unit",
                          constraints=["latency < 50 ms"], **kwargs)
    assert g.evaluated == 5 * 1000 * 4 * 5 * 10 == 1_000_000
    assert g.best_result.latency.to("ms").magnitude < 50 and g.best_result.feasible


def test_roofline_grid_bad_inputs():
    with pytest.raises(PathError) as err:
        DSE.roofline_grid(LLAMA, hardware=[H100], objective="maximize: tco_usd")
    assert "tco_usd" in str(err.value) and "throughput" in str(err.value)
    with pytest.raises(InputError) as err:
        DSE.roofline_grid(LLAMA, hardware=[H100], constraints=["latency < 5 GB"])
    assert "constraints[0]" in str(err.value)
    with pytest.raises(InputError) as err:
        DSE.roofline_grid(LLAMA, hardware=[H100], batch_sizes=[0])
    assert "batch_sizes" in str(err.value)
    with pytest.raises(InputError) as err:
        DSE.roofline_grid(LLAMA, hardware=[], batch_sizes=[1])
    assert "hardware" in str(err.value)
    with pytest.raises(InfeasibleSpaceError) as err:
        DSE.roofline_grid(LLAMA, hardware=[H100], constraints=["latency < 0.1 ms"])
    assert "latency < 0.1 ms" in str(err.value)


def test_demo_dse_example():
    out = example_output("demo_dse.py")
    # independent loop over the deck's space: the best feasible point under 100 ms
    points = [(Engine.solve(LLAMA, H100, batch_size=b, precision=p), b, p)
              for b in [1, 4, 8, 16, 32, 64, 128, 256, 512] for p in ["fp16", "int8"]]
    best = max(points,
               key=lambda t: t[0].throughput.to("1/s").magnitude if t[0].feasible and t[0].latency.to("ms").magnitude < 100 else -1)
    profile, b, p = best
    assert f"Best: batch {b}, {p}: {profile.throughput.to('1/s').magnitude:,.0f} 1/s" in out
    # batch 512 does not fit in either format (int8 weights keep the default 16-bit KV cache)
    infeasible = sum(not r.feasible for r, _, _ in points)
    assert infeasible == 2
    assert f"Exhaustive: 18 points, {infeasible} infeasible" in out
    assert "Vectorized: 819,200 points" in out


def test_non_numeric_objective_at_some_points_is_collected():
    r = DSE(space={"x": [1, 2, 3]}, objective="maximize: v").search(lambda p: {"v": None if p["x"] == 3 else p["x"]})
    assert r.best_params == {"x": 2}
    assert r.errors[0]["params"] == {"x": 3} and "objective" in r.errors[0]["message"]


def test_lists_of_alternatives_do_not_make_a_point_infeasible():
    # e.g. a synthesis result lists rejected (infeasible) devices next to the ones that work
    result = {"score": 1.0, "rejected": [Stage(value=0.0, feasible=False)]}
    r = DSE(space={"x": [1]}, objective="maximize: score").search(lambda p: result)
    assert r.dropped_infeasible == 0 and r.best_objective == 1.0


def test_comparison_rules():
    from mlsysim_opt import Q_
    from mlsysim_opt.expressions import check
    r = {"latency": Q_(5.0, "ms"), "flag": True, "name": "Memory", "missing": None, "n": 3}
    assert check(parse_constraint("latency < 6"), r)                 # plain number: the field's own unit
    assert not check(parse_constraint("latency < 4 ms"), r)
    assert check(parse_constraint("latency < 0.006 s"), r)           # threshold converted
    assert check(parse_constraint("flag == True"), r) and check(parse_constraint("name != 'Compute'"), r)
    assert check(parse_constraint("missing == None"), r)
    assert not check(parse_constraint("missing < 3"), r)                # a missing value never satisfies an ordering
    assert check(parse_constraint("n >= 3"), r) and check(parse_constraint("2 < n"), r)
    with pytest.raises(InputError):
        check(parse_constraint("flag < 3"), r)                       # booleans are not ordered against numbers
    with pytest.raises(InputError):
        check(parse_constraint("latency == 'fast'"), r)
    with pytest.raises(InputError):
        check(parse_constraint("n < 3 ms"), r)                       # a plain field against a quantity with units


def test_grid_energy_per_unit_and_overhead_label_are_the_sheets(monkeypatch):
    from mlsysim_opt import engine
    from mlsysim_opt.dse import evaluate_grid
    from mlsysim_opt.models import roofline
    from mlsysim_opt.symbolic.sheet import Definition
    grid = lambda: evaluate_grid(LLAMA, [H100], [1, 8], ["fp16"], [0.5], [512], True).columns  # noqa: E731
    before = grid()
    assert not before["overhead_dominated"].any()
    monkeypatch.setattr(engine, "roofline_function", engine.roofline_function.__wrapped__)
    for name, factor in (("energy_per_unit", 2), ("latency_roofline", 0)):
        d = roofline.sheet.definitions[name]
        monkeypatch.setitem(roofline.sheet.definitions, name, Definition(d.name, factor * d.expr, d.unit, d.meaning))
    after = grid()
    assert list(after["energy_per_unit"]) == pytest.approx(list(2 * before["energy_per_unit"]), rel=1e-12)
    assert list(after["energy"]) == list(before["energy"])
    assert after["overhead_dominated"].all()
