import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium", app_title="Capstone designer")


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    # Capstone designer

    The afternoon's capstone (`Scenarios.Capstone`): serve **Llama-3-70B at 1,000 requests/s with
    p90 TTFT under 100 ms** from **US East and EU West**, each region carrying at least 20% of the
    load with one spare replica, within **&#36;5M and 500 tCO2e per year**.

    Design each region by hand below. The grader (`Grader`, the same rubric `mlsysim-opt grade`
    applies) scores the design as you edit it: 50 points for meeting every constraint, 30 for cost
    against the proven optimum, 20 for distance to the exact cost/carbon Pareto front. When you are
    happy, export the design as the submission YAML the grader reads.
    """)
    return


@app.cell
def _():
    import tempfile
    from pathlib import Path

    import marimo as mo
    import yaml

    from mlsysim_opt import CapstoneProblem, Hardware, plot_front
    from mlsysim_opt.dashboards._layout import dollars, preformatted, table, tagged
    from mlsysim_opt.grading import Grader
    return (CapstoneProblem, Grader, Hardware, Path, dollars, mo, plot_front, preformatted, table, tagged, tempfile,
            yaml)


@app.cell
def _(CapstoneProblem, Grader, mo):
    # The problem and its proven optimum and exact Pareto front: solved once, when the app opens.
    problem = CapstoneProblem.from_scenario("Capstone")
    grader = Grader(problem)
    with mo.status.progress_bar(total=2, title="Solving the capstone", subtitle="the proven optimum (MILP)",
                                remove_on_exit=True) as _bar:
        optimum = grader.optimum
        _bar.update(subtitle="the exact cost/carbon Pareto front (a MILP per point)")
        front = grader.front
        _bar.update()
    return front, grader, optimum, problem


@app.cell
def _(Hardware, mo, problem):
    # The student's starting design: it serves the latency limits but not the whole load.
    start = {"US_East": dict(hardware="H100", precision="fp8", tp=4, pp=1, batch_size=128, chunk_tokens=512,
                             replicas=20),
             "EU_West": dict(hardware="MI300X", precision="fp8", tp=2, pp=1, batch_size=128, chunk_tokens=512,
                             replicas=20)}
    priced = sorted(k for k, h in Hardware.Cloud.items() if h.unit_cost is not None)

    def region_controls(region):
        s = start[region]
        return mo.ui.dictionary({
            "hardware": mo.ui.dropdown(options=priced, value=s["hardware"], label=f"{region} hardware"),
            "precision": mo.ui.dropdown(options=list(problem.precisions), value=s["precision"],
                                        label=f"{region} precision"),
            "tp": mo.ui.dropdown(options={str(t): t for t in problem.tp_sizes}, value=str(s["tp"]),
                                 label=f"{region} tensor parallel"),
            "pp": mo.ui.dropdown(options={str(t): t for t in problem.pp_sizes}, value=str(s["pp"]),
                                 label=f"{region} pipeline stages"),
            "batch_size": mo.ui.dropdown(options={str(b): b for b in problem.batch_sizes}, value=str(s["batch_size"]),
                                         label=f"{region} batch"),
            "chunk_tokens": mo.ui.dropdown(options={str(c): c for c in problem.chunk_sizes},
                                           value=str(s["chunk_tokens"]), label=f"{region} prefill chunk"),
            "replicas": mo.ui.number(start=0, stop=100_000, step=1, value=s["replicas"], label=f"{region} replicas"),
        })

    design = mo.ui.dictionary({region: region_controls(region) for region in problem.regions})
    student = mo.ui.text(value="Ada", label="student")
    mo.vstack([student] + [mo.vstack([mo.md(f"**{region}**"),
                                      mo.hstack(list(design[region].elements.values()), justify="start", wrap=True)])
                           for region in problem.regions])
    return design, student


@app.cell
def _(design, student):
    # The submission exactly as the grader reads it (and as the YAML export writes it).
    submission = {"student": student.value or "anonymous", "regions": design.value}
    return (submission,)


@app.cell
def _(dollars, grader, mo, submission, table, tagged):
    report = grader.grade(submission)
    _checks = [("pass" if c.passed else "**FAIL**", c.group, c.sentence()) for c in report.checks]
    _money = "" if report.annual_cost_usd is None else (
        f"annual cost &#36;{tagged('annual-cost', format(report.annual_cost_usd, ',.0f'))}, "
        f"annual carbon {tagged('annual-carbon', format(report.annual_carbon_t, ',.1f'))} tCO2e")
    mo.md(
        f"## The grade\n\n**Score {tagged('score', format(report.score, '.1f'))} / 100** "
        f"({tagged('grade-status', report.status)})\n\n"
        f"{_money}\n\n"
        + "\n".join(f"- {dollars(line)}" for line in report.feedback)
        + ("\n\n" + table(_checks, ("", "check", "detail")) if _checks else ""))
    return (report,)


@app.cell
def _(dollars, front, mo, optimum, problem, table, tagged):
    _rows = [(d.region, f"{d.replicas} x {d.config.name}", d.accelerators, f"${d.annual_cost_usd:,.0f}",
              f"{d.annual_carbon_t:,.1f} t") for d in optimum.regions]
    mo.md(
        f"## The proven optimum\n\n"
        f"{optimum.solve.status.value}: &#36;{tagged('optimal-cost', format(optimum.annual_cost_usd, ',.0f'))} and "
        f"{optimum.annual_carbon_t:,.1f} tCO2e per year (budget {dollars(f'${problem.annual_budget_usd:,.0f}')}, "
        f"cap {problem.carbon_cap_t:,.0f} t)\n\n"
        + table(_rows, ("region", "fleet", "accelerators", "cost per year", "carbon per year"))
        + f"\n\nThe exact Pareto front has {len(front.points)} points ({front.solves} MILP solves in "
          f"{front.solve_time_s:.1f} s); each is the cheapest design under a carbon cap."
    )
    return


@app.cell
def _(Path, front, mo, optimum, plot_front, report, tempfile):
    # The front, the optimum and the student's design on one chart (the grader's own plot).
    _mine = ([(report.student, report.annual_carbon_t, report.annual_cost_usd)]
             if report.annual_cost_usd is not None else [])
    with tempfile.TemporaryDirectory() as _folder:
        _png = Path(plot_front(front, str(Path(_folder) / "front.png"), chosen=optimum, others=_mine)).read_bytes()
    mo.image(_png, width=640)
    return


@app.cell
def _(mo, preformatted, submission, yaml):
    submission_yaml = yaml.safe_dump(submission, sort_keys=False)
    _name = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in submission["student"]) or "submission"
    mo.vstack([
        mo.md("## Export\n\nThe submission YAML `mlsysim-opt grade` reads:"),
        mo.Html(preformatted(submission_yaml, "submission-yaml")),
        mo.download(data=submission_yaml.encode("utf-8"), filename=f"{_name}.yaml", mimetype="text/yaml",
                    label="Download the submission YAML"),
    ])
    return


if __name__ == "__main__":
    app.run()
