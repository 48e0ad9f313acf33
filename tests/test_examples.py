"""Every script in examples/ runs to completion and prints something (specific numbers are checked
in each wall's own tests), and writes its files only into its output folder. Each script runs once
per session (tests/example_runs.py); a whole run starts them in the background (conftest.py)."""
import pathlib

import pytest
from example_runs import run_example

EXAMPLES = sorted((pathlib.Path(__file__).resolve().parents[1] / "examples").glob("*.py"))
WRITERS = {"capstone": "capstone_front.png", "demo_grading": "grading/grades.csv",
           "global_week_plan": "plan_plots"}
"""The examples that save files, and one thing each saves."""


@pytest.mark.parametrize("script", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_runs(script):
    out = run_example(script.stem)
    assert out.returncode == 0, f"{script.name} failed:\n{out.stderr[-3000:]}"
    assert out.stdout.strip(), f"{script.name} printed nothing"
    assert "Traceback" not in out.stderr
    assert list(out.cwd.iterdir()) == [], f"{script.name} wrote into the working directory"
    if script.stem in WRITERS:
        assert (out.output / WRITERS[script.stem]).exists(), f"{script.name} did not write into its output folder"
