"""DSE with the Optuna backend: TPE finds known optima, seeds reproduce, NSGA-II returns a
non-dominated set with an exactly computed hypervolume, constraints and infeasibility are respected,
studies persist in SQLite (and PostgreSQL when a server can be started), two worker processes share
one study, and bad inputs fail with the field named."""
import itertools
import math
import multiprocessing
import random

import pytest

from mlsysim_opt import Engine, Hardware, InputError, Models, SolverError
from mlsysim_opt.dse import DSE, InfeasibleSpaceError, optimize
from mlsysim_opt.dse_optuna import Range, hypervolume
from mlsysim_opt.errors import UnknownNameError
from mlsysim_opt.expressions import PathError
from example_runs import example_output

LLAMA, H100 = Models.Llama3_8B, Hardware.H100


def bowl(p):
    """Minimum 0 at x = 3.3, n = 17, c = 'good'; c = 'bad' is infeasible everywhere."""
    return {"v": (p["x"] - 3.3) ** 2 + (p["n"] - 17) ** 2 / 10 + (0.0 if p["c"] == "good" else 5.0),
            "feasible": p["c"] != "bad"}


BOWL_SPACE = {"x": {"low": 0.0, "high": 10.0}, "n": {"low": 1, "high": 64, "int": True},
              "c": ["good", "meh", "bad"]}


def two_objectives(p):
    """A discrete bi-objective problem (a ZDT-like trade-off) whose Pareto set is computable by
    enumeration; points with x + y > 1.5 are infeasible."""
    f1 = p["x"]
    g = 1.0 + p["y"]
    return {"f1": f1, "f2": g * (1.0 - math.sqrt(f1 / g)), "feasible": p["x"] + p["y"] <= 1.5}


XS = [round(0.05 * i, 2) for i in range(21)]
YS = [0.0, 0.1, 0.2, 0.3, 0.5, 0.8, 1.0]


def dominates(a, b):
    return all(x <= y for x, y in zip(a, b)) and any(x < y for x, y in zip(a, b))


def union_area(points, ref):
    """Independent exact 2-D hypervolume: the union of boxes [p, ref] by coordinate compression."""
    xs = sorted({p[0] for p in points} | {ref[0]})
    ys = sorted({p[1] for p in points} | {ref[1]})
    area = 0.0
    for x0, x1 in zip(xs, xs[1:]):
        for y0, y1 in zip(ys, ys[1:]):
            if any(p[0] <= x0 and p[1] <= y0 for p in points):
                area += (x1 - x0) * (y1 - y0)
    return area


# ------------------------------------------------------------------------------------------------
# Single objective (TPE)


def test_tpe_finds_the_known_optimum_of_an_analytic_space():
    r = optimize(bowl, BOWL_SPACE, "minimize: v", n_trials=120, seed=0)
    assert r.backend == "optuna" and r.sampler == "TPE"
    assert r.best_params["c"] == "good" and r.best_params["n"] == 17
    assert isinstance(r.best_params["n"], int) and isinstance(r.best_params["x"], float)
    assert abs(r.best_params["x"] - 3.3) < 0.15
    assert r.best_objective == pytest.approx(bowl(r.best_params)["v"], rel=1e-12)
    assert r.evaluated == 120 and r.trials_in_study == 120
    assert r.dropped_infeasible > 0                              # 'bad' was tried and dropped
    assert all(c["params"]["c"] != "bad" for c in r.top_candidates)
    values = [c["objective_value"] for c in r.top_candidates]
    assert values == sorted(values) and len(values) == 5
    assert len({tuple(sorted(c["params"].items())) for c in r.top_candidates}) == 5   # distinct points
    assert r.space_size is None                                  # x is continuous


def test_tpe_finds_the_exhaustive_optimum_of_the_deck_space():
    """The afternoon deck's DSE (batch x precision, latency < 20 ms) with hardware records as
    choices; the answer is the brute-force optimum of the 36-point space."""
    space = {"hw": [Hardware.A100, H100], "batch_size": [1, 4, 8, 16, 32, 64, 128, 256, 512],
             "precision": ["fp16", "int8"]}

    def evaluate(p):
        return Engine.solve(LLAMA, p["hw"], batch_size=p["batch_size"], precision=p["precision"])
    best = None
    for hw, b, prec in itertools.product(*space.values()):
        prof = Engine.solve(LLAMA, hw, batch_size=b, precision=prec)
        if prof.feasible and prof.latency.to("ms").magnitude < 20:
            t = prof.throughput.to("1/s").magnitude
            best = max(best or (t, hw.name, b, prec), (t, hw.name, b, prec))
    r = DSE(space=space, objective="maximize: throughput", constraints=["latency < 20 ms"], backend="optuna",
            n_trials=40, seed=0).search(evaluate)
    assert (r.best_params["hw"].name, r.best_params["batch_size"], r.best_params["precision"]) == best[1:]
    assert r.best_objective == pytest.approx(best[0], rel=1e-12)
    assert r.objective_unit == "1/s" and r.space_size == 36
    assert r.best_result.latency.to("ms").magnitude < 20 and r.best_result.feasible


def test_same_seed_same_trials_other_seed_other_trials():
    def run(seed):
        r = optimize(bowl, BOWL_SPACE, "minimize: v", n_trials=30, seed=seed, top_k=30)
        return r.best_params, [c["params"] for c in r.top_candidates]
    first, again, other = run(7), run(7), run(8)
    assert first == again
    assert first[1] != other[1]


def test_constraints_steer_and_are_respected():
    # minimize v with x >= 6: the constrained optimum is x = 6 (n = 17, c = 'good')
    r = optimize(lambda p: dict(bowl(p), x_copy=p["x"]), BOWL_SPACE, "minimize: v", constraints=["x_copy >= 6"],
                 n_trials=200, seed=0, top_k=10)
    assert r.dropped_constraints > 0 and r.constraint_violations == {"x_copy >= 6": r.dropped_constraints}
    assert all(c["params"]["x"] >= 6 and c["params"]["c"] != "bad" for c in r.top_candidates)
    optimum = (6.0 - 3.3) ** 2                                        # at x = 6, n = 17, c = 'good'
    assert r.best_params["n"] == 17 and optimum <= r.best_objective <= 1.02 * optimum


def test_errors_are_collected_and_nothing_left_is_explained():
    def flaky(p):
        if p["c"] == "meh":
            raise ValueError("no model for meh")
        return bowl(p)
    r = optimize(flaky, BOWL_SPACE, "minimize: v", n_trials=30, seed=0)
    assert r.errors and all(e["params"]["c"] == "meh" and e["message"] == "no model for meh" for e in r.errors)
    assert r.best_params["c"] == "good"
    with pytest.raises(SolverError) as err:
        optimize(lambda p: 1 / 0, BOWL_SPACE, "minimize: v", n_trials=5)
    assert "all 5 trials raised" in str(err.value)
    with pytest.raises(InfeasibleSpaceError) as err:
        optimize(lambda p: {"v": p["x"]}, {"x": Range(0.0, 1.0)}, "minimize: v", constraints=["v > 2"], n_trials=8)
    assert "'v > 2' failed 8 time(s)" in str(err.value) and "closest value seen" in str(err.value)


def test_progress_bar_and_result_shape():
    r = DSE(space={"x": list(range(20))}, objective="minimize: v", backend="optuna", n_trials=25,
            progress=True).search(lambda p: {"v": (p["x"] - 7) ** 2})
    assert r.best_params == {"x": 7} and r.best_objective == 0.0
    assert set(r.top_candidates[0]) == {"params", "objective_value", "result", "trial"}
    assert r.pareto_front is None and r.hypervolume is None and r.study_name.startswith("dse-")
    assert r.to_dict()["best_params"] == {"x": 7}


# ------------------------------------------------------------------------------------------------
# Several objectives (NSGA-II)


def test_hypervolume_is_exact():
    rng = random.Random(3)
    for _ in range(20):
        pts = [(rng.uniform(0, 1), rng.uniform(0, 1)) for _ in range(rng.randint(1, 12))]
        assert hypervolume(pts, (1.2, 1.1)) == pytest.approx(union_area(pts, (1.2, 1.1)), rel=1e-12)
    assert hypervolume([(1.0, 2.0)], (3.0, 5.0)) == pytest.approx(6.0)
    assert hypervolume([(4.0, 0.0)], (3.0, 5.0)) == 0.0                   # does not dominate the reference
    # three dimensions: two unit-offset boxes overlap in a 1x1x1 cube -> 8 + 8 - 1
    assert hypervolume([(0, 0, 1), (1, 1, 0)], (2, 2, 2)) == pytest.approx(4 + 2 - 1)
    cubes = [(0.0, 1.0, 1.0), (1.0, 0.0, 1.0), (1.0, 1.0, 0.0)]
    assert hypervolume(cubes, (2.0, 2.0, 2.0)) == pytest.approx(3 * 2 - 3 * 1 + 1)   # inclusion-exclusion


def test_nsga2_front_is_non_dominated_with_exact_hypervolume():
    space = {"x": XS, "y": YS}
    r = optimize(two_objectives, space, ["minimize: f1", "minimize: f2"], n_trials=160, seed=0,
                 population_size=20)
    assert r.sampler == "NSGA-II" and r.objectives == ["minimize: f1", "minimize: f2"]
    front = [tuple(p["values"]) for p in r.pareto_front]
    assert len(front) >= 5
    for i, a in enumerate(front):                                    # mutually non-dominated
        assert not any(dominates(b, a) for j, b in enumerate(front) if j != i)
    for p in r.pareto_front:                                          # values are the model's, all feasible
        res = two_objectives(p["params"])
        assert res["feasible"] and p["result"] == res
        assert p["values"] == pytest.approx([res["f1"], res["f2"]], rel=1e-12)
    # the reported hypervolume against the reported reference point, computed independently
    assert r.hypervolume == pytest.approx(union_area(front, r.reference_point), rel=1e-9)
    # the reference point: the worst feasible value seen per objective, pushed out by 10%
    feasible_seen = [two_objectives(dict(zip(space, c))) for c in itertools.product(XS, YS)]
    worst_possible = max(v["f2"] for v in feasible_seen if v["feasible"])
    assert r.reference_point[1] <= 1.1 * worst_possible + 1e-12
    # against the exact front of the 147-point space: most of its hypervolume is covered
    exact = [(v["f1"], v["f2"]) for v in feasible_seen if v["feasible"]]
    exact = [a for a in exact if not any(dominates(b, a) for b in exact)]
    assert r.hypervolume >= 0.95 * union_area(exact, r.reference_point)


def test_nsga2_on_the_engine_respects_feasibility_and_constraints():
    """Llama-3-70B on one H100: fp16 weights (141 GB) do not fit in 80 GB; latency below 80 ms."""
    space = {"precision": ["fp16", "int8", "int4"], "batch_size": Range(1, 256, integer=True, log=True)}
    r = optimize(lambda p: Engine.solve(Models.Llama3_70B, H100, **p), space,
                 ["maximize: throughput", "minimize: energy_per_unit"], constraints=["latency < 80 ms"],
                 n_trials=60, seed=2, population_size=12)
    assert r.dropped_infeasible > 0
    assert r.pareto_front and all(p["params"]["precision"] != "fp16" for p in r.pareto_front)
    assert all(p["result"].feasible and p["result"].latency.to("ms").magnitude < 80 for p in r.pareto_front)
    assert r.objective_units == ["1/s", "J"]
    # maximized objectives: the reference point sits below the worst throughput seen
    assert r.reference_point[0] < min(p["values"][0] for p in r.pareto_front)
    mirrored = [(-t, e) for t, e in (p["values"] for p in r.pareto_front)]
    ref = (-r.reference_point[0], r.reference_point[1])
    assert r.hypervolume == pytest.approx(union_area(mirrored, ref), rel=1e-9)


def test_user_reference_point_and_directions():
    r = optimize(two_objectives, {"x": XS, "y": YS}, ["f1", "f2"], directions=["minimize", "minimize"],
                 n_trials=40, seed=1, reference_point=[2.0, 3.0], population_size=10)
    assert r.reference_point == [2.0, 3.0]
    assert r.hypervolume == pytest.approx(union_area([tuple(p["values"]) for p in r.pareto_front], (2.0, 3.0)))


# ------------------------------------------------------------------------------------------------
# Persistence and workers


def test_sqlite_study_persists_and_resumes(tmp_path):
    path = tmp_path / "dse.sqlite3"
    first = optimize(bowl, BOWL_SPACE, "minimize: v", n_trials=12, seed=0, storage=str(path))
    second = optimize(bowl, BOWL_SPACE, "minimize: v", n_trials=12, seed=1, storage=str(path))
    assert path.exists() and first.storage == f"sqlite:///{path.resolve()}"
    assert second.study_name == first.study_name                   # named after the query: resumed
    assert first.trials_in_study == 12 and second.trials_in_study == 24
    assert second.best_objective <= first.best_objective
    import optuna
    study = optuna.load_study(study_name=first.study_name, storage=f"sqlite:///{path}")
    assert len(study.trials) == 24
    values = [t.values[0] for t in study.trials if t.params["c"] != "bad"]
    assert second.best_objective == pytest.approx(min(values))
    with pytest.raises(InputError) as err:                           # same name, different query
        optimize(bowl, BOWL_SPACE, "maximize: v", n_trials=1, storage=str(path), study_name=first.study_name)
    assert "study_name" in str(err.value)


def test_persisted_study_keeps_the_objective_unit(tmp_path):
    """Values are stored in the unit of the first feasible result and read back in it."""
    storage = str(tmp_path / "units.sqlite3")
    space = {"batch_size": [1, 8, 64, 256], "precision": ["fp16", "int8"]}
    runs = [optimize(lambda p: Engine.solve(LLAMA, H100, **p), space, "minimize: latency", n_trials=5, seed=s,
                     storage=storage) for s in (0, 1)]
    assert [r.objective_unit for r in runs] == ["ms", "ms"] and runs[1].trials_in_study == 10
    best = min((Engine.solve(LLAMA, H100, **r.best_params).latency.to("ms").magnitude for r in runs))
    assert runs[1].best_objective == pytest.approx(best, rel=1e-12)


def shared_bowl(p):
    return {"v": (p["x"] - 3.3) ** 2 + (p["n"] - 17) ** 2 / 10}


SHARED_SPACE = {"x": {"low": 0.0, "high": 10.0}, "n": {"low": 1, "high": 64, "int": True}}


def _worker(url, seed, n):
    try:
        r = optimize(shared_bowl, SHARED_SPACE, "minimize: v", n_trials=n, seed=seed, storage=url, study_name="shared")
    except Exception as exc:     # returned as text: an exception that does not unpickle would hang the pool
        return f"{type(exc).__name__}: {exc}"
    return r.evaluated, r.trials_in_study, r.best_objective


def test_two_worker_processes_share_one_sqlite_study(tmp_path):
    url = f"sqlite:///{tmp_path / 'shared.sqlite3'}"
    n = 10
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        outcomes = pool.starmap_async(_worker, [(url, 1, n), (url, 2, n)]).get(timeout=240)
    assert not any(isinstance(o, str) for o in outcomes), outcomes
    assert [o[0] for o in outcomes] == [n, n]
    import optuna
    study = optuna.load_study(study_name="shared", storage=url)
    assert len(study.trials) == 2 * n
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    overall = min(shared_bowl(t.params)["v"] for t in study.trials)
    last = max(outcomes, key=lambda o: o[1])                         # the worker that finished last saw all
    assert last[1] == 2 * n and last[2] == pytest.approx(overall, rel=1e-12)
    assert all(o[2] >= overall - 1e-12 for o in outcomes)
    # a third run resumes the shared study and reports the same best before improving on it
    r = optimize(shared_bowl, SHARED_SPACE, "minimize: v", n_trials=1, storage=url, study_name="shared")
    assert r.trials_in_study == 2 * n + 1 and r.best_objective <= overall


def test_postgresql_study_on_a_local_server(postgres):
    url = postgres.create_database("dse_study")
    first = optimize(shared_bowl, SHARED_SPACE, "minimize: v", n_trials=8, seed=0, storage=url)
    second = optimize(shared_bowl, SHARED_SPACE, "minimize: v", n_trials=8, seed=1, storage=url)
    assert first.storage.startswith("postgresql+") and first.storage.endswith(f"@127.0.0.1:{postgres.port}/dse_study")
    assert second.trials_in_study == 16
    assert second.best_objective <= first.best_objective
    import optuna
    assert len(optuna.load_study(study_name=first.study_name, storage=first.storage).trials) == 16


# ------------------------------------------------------------------------------------------------
# Bad inputs


@pytest.mark.parametrize("spec,field,words", [
    ({"x": {"low": 5, "high": 5}}, "space['x']", "low >= high"),
    ({"x": {"low": 6.0, "high": 2.0}}, "space['x']", "low >= high"),
    ({"x": {"low": 0, "hgih": 5}}, "space['x']", "did you mean 'high'"),
    ({"x": {"high": 5}}, "space['x']", "'low'"),
    ({"x": {"low": 0.0, "high": 5.0, "log": True}}, "space['x']", "log"),
    ({"x": {"low": 1, "high": 8, "step": 0.5, "log": True}}, "space['x']", "'log' with 'step'"),
    ({"x": {"low": 1.5, "high": 8, "int": True}}, "space['x']['low']", "whole number"),
    ({"x": {"low": 0.0, "high": 1.0, "step": 0.3}}, "space['x']", "multiple of step"),
    ({"x": {"low": 0.0, "high": 1.0, "step": -0.5}}, "space['x']['step']", "positive"),
    ({"x": {"low": "a", "high": 1.0}}, "space['x']['low']", "finite number"),
    ({"x": {"low": 0, "high": 1, "log": "yes"}}, "space['x']['log']", "True or False"),
    ({"x": []}, "space['x']", "no values"),
    ({"x": 5}, "space['x']", "list of values or a range"),
    ({}, "space", "empty"),
])
def test_bad_space(spec, field, words):
    with pytest.raises(InputError) as err:
        DSE(space=spec, objective="minimize: v", backend="optuna")
    assert field in str(err.value) and words in str(err.value)


def test_backend_typo_suggests_optuna():
    with pytest.raises(UnknownNameError) as err:
        optimize(bowl, BOWL_SPACE, "minimize: v", backend="optuan")
    assert "did you mean 'optuna'" in str(err.value)


def test_unknown_objective_field_lists_the_fields():
    with pytest.raises(PathError) as err:
        optimize(lambda p: Engine.solve(LLAMA, H100, **p), {"batch_size": [1, 8]}, "maximize: thruput", n_trials=3)
    assert "thruput" in str(err.value) and "throughput" in str(err.value)
    with pytest.raises(PathError) as err:
        optimize(bowl, BOWL_SPACE, ["minimize: v", "minimize: w"], n_trials=3)
    assert "objective[1]" in str(err.value)


@pytest.mark.parametrize("options,field", [
    ({"n_trials": 0}, "n_trials"), ({"seed": -1}, "seed"), ({"seed": 1.5}, "seed"),
    ({"storage": "redis://127.0.0.1/0"}, "storage"), ({"storage": "/no/such/folder/dse.sqlite3"}, "storage"),
    ({"study_name": ""}, "study_name"), ({"timeout": 0}, "timeout"), ({"directions": ["minimize", "up"]}, "directions"),
    ({"directions": ["minimize"]}, "directions"), ({"reference_point": [1.0]}, "reference_point"),
    ({"population_size": 1}, "population_size"),
])
def test_bad_options(options, field):
    with pytest.raises(InputError) as err:
        optimize(two_objectives, {"x": XS, "y": YS}, ["f1", "f2"], **{"directions": ["minimize", "minimize"], **options})
    assert field in str(err.value)


def test_directions_that_contradict_the_objective():
    with pytest.raises(InputError) as err:
        DSE(space={"x": [1]}, objective="maximize: x", backend="optuna", directions=["minimize"])
    assert "directions[0]" in str(err.value)


def test_exhaustive_backend_refuses_sampling_options():
    with pytest.raises(InputError) as err:
        DSE(space={"x": {"low": 0, "high": 1}}, objective="minimize: x")
    assert "space['x']" in str(err.value) and "optuna" in str(err.value)
    with pytest.raises(InputError) as err:
        DSE(space={"x": [1, 2]}, objective="minimize: x", n_trials=10)
    assert "n_trials" in str(err.value) and "optuna" in str(err.value)
    with pytest.raises(InputError) as err:
        DSE(space={"x": [1, 2]}, objective=["minimize: x", "maximize: x"])
    assert "objective" in str(err.value) and "optuna" in str(err.value)
    r = DSE(space={"x": [1, 2]}, objective="x", directions="maximize").search(lambda p: {"x": p["x"]})
    assert r.best_params == {"x": 2}


def test_missing_database_driver_is_explained():
    import importlib.util
    with pytest.raises(InputError) as err:
        optimize(bowl, BOWL_SPACE, "minimize: v", n_trials=1, storage="mysql://nobody@127.0.0.1:1/none")
    assert "storage" in str(err.value)
    if importlib.util.find_spec("MySQLdb") is None:
        assert "driver" in str(err.value)


# ------------------------------------------------------------------------------------------------
# Example


def test_demo_optuna_dse_example():
    import re
    out = example_output("demo_optuna_dse.py")
    # part 1: the exact optimum, by a plain loop over the 20,480 points
    gpus = [Hardware.A100, H100, Hardware.H200, Hardware.B200, Hardware.MI300X]
    best = (0.0, None)
    for hw in gpus:
        for prec in ["fp16", "fp8", "int8", "int4"]:
            for b in range(1, 1025):
                prof = Engine.solve(LLAMA, hw, batch_size=b, precision=prec)
                if prof.feasible and prof.latency.to("ms").magnitude < 10:
                    best = max(best, (prof.throughput.to("1/s").magnitude, (hw.name, prec, b)), key=lambda t: t[0])
    t, (hw, prec, b) = best
    assert f"exact optimum over 20,480 points: {hw} {prec} batch {b}: {t:,.0f} 1/s" in out
    found = re.search(r"TPE, 150 trials: (.+) (\w+) batch (\d+): ([\d,]+) 1/s", out)
    assert found, out
    prof = Engine.solve(LLAMA, Hardware[found.group(1)], batch_size=int(found.group(3)), precision=found.group(2))
    assert prof.latency.to("ms").magnitude < 10
    assert f"{prof.throughput.to('1/s').magnitude:,.0f}" == found.group(4)
    assert prof.throughput.to("1/s").magnitude >= 0.98 * t                  # within 2% of the optimum
    # part 2: the sampled front against the exact one
    share = re.search(r"NSGA-II reaches ([\d.]+)% of it", out)
    assert "NSGA-II, 300 trials over 5,184 points" in out and share and float(share.group(1)) >= 95.0
