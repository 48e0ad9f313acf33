"""Grading demo: three submissions (the optimal design, one over budget, one malformed) graded in a
batch, with a CSV, a summary and a plot of the submissions against the Pareto front (all in
examples/output/grading/)."""
import os
import pathlib
import shutil
from pathlib import Path

import yaml

from mlsysim_opt import CapstoneProblem
from mlsysim_opt.grading import Grader, submission_from_result

HERE = pathlib.Path(__file__).resolve().parent
# Files go to examples/output/ (or the folder named by MLSYSIM_OPT_OUTPUT), never the working directory.
OUTPUT = Path(os.environ.get("MLSYSIM_OPT_OUTPUT") or Path(__file__).resolve().parent / "output")
grader = Grader(CapstoneProblem.from_scenario("Capstone"))   # Scenarios.Capstone
folder = OUTPUT / "grading"
shutil.rmtree(folder, ignore_errors=True)                  # a fresh batch each run
folder.mkdir(parents=True)
for sample in ("over_budget.yaml", "malformed.yaml"):
    shutil.copy(HERE / "submissions" / sample, folder / sample)
(folder / "optimal.yaml").write_text(yaml.safe_dump(submission_from_result(grader.optimum, "Grace")))

reports = grader.grade_folder(folder, csv_path=folder / "grades.csv", plot_path=folder / "submissions.png")
for report in reports:
    print(report)
print(f"\nCSV: {folder / 'grades.csv'}\nPlot: {folder / 'submissions.png'}")
