import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium", app_title="Global planning")


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    # Global planning: regions x hours

    Users in three metros (Virginia, Frankfurt, Tokyo) chat with Llama-3.1-8B; their demand follows
    the day on each local clock (peak at 20:00, trough at 35% of the peak). Three cloud regions can
    serve them, each with its own prices, PUE and **hourly grid carbon**. `plan_fleet` decides, as one
    MILP solved by HiGHS, how many replicas of which kind (reserved for a year, on-demand, spot) to run
    at each site in every hour, and where each metro's requests go, within the TTFT limit **including
    the network round trip**, at least cost, least carbon, or cost plus a carbon price.

    Move a metro's peak and watch capacity shift between sites hour by hour; price carbon and watch
    requests move to cleaner grids when the round trips allow it.
    """)
    return


@app.cell
def _():
    import marimo as mo

    from mlsysim_opt import MlsysimError
    from mlsysim_opt.dashboards._layout import table, tagged
    from mlsysim_opt.planning import Demand, PlanProblem, RequestClass, plan_fleet
    from mlsysim_opt.planning import plots
    return Demand, MlsysimError, PlanProblem, RequestClass, mo, plan_fleet, plots, table, tagged


@app.cell
def _(mo):
    peaks = mo.ui.dictionary({
        metro: mo.ui.slider(0, 1000, step=25, value=value, label=f"{metro} peak (requests/s)", show_value=True)
        for metro, value in (("Virginia", 300), ("Frankfurt", 250), ("Tokyo", 200))})
    sites = mo.ui.multiselect(
        options=["aws_us_east_1", "aws_us_west_2", "aws_eu_central_1", "aws_eu_north_1", "aws_ap_northeast_1",
                 "aws_ap_south_1"],
        value=["aws_us_east_1", "aws_eu_north_1", "aws_ap_northeast_1"], label="sites")
    kinds = mo.ui.multiselect(options=["reserved_1y", "reserved_3y", "on_demand", "spot"],
                              value=["reserved_1y", "on_demand", "spot"], label="capacity kinds")
    objective = mo.ui.dropdown(options=["cost", "carbon", "cost+carbon"], value="cost", label="minimize")
    carbon_price = mo.ui.slider(0, 1000, step=50, value=0, label="carbon price (USD/tCO2e, with cost+carbon)",
                                show_value=True)
    days = mo.ui.slider(1, 7, step=1, value=1, label="days", show_value=True)
    mo.vstack([mo.hstack(list(peaks.elements.values()), justify="start", wrap=True),
               mo.hstack([sites, kinds], justify="start"),
               mo.hstack([objective, carbon_price, days], justify="start")])
    return carbon_price, days, kinds, objective, peaks, sites


@app.cell
def _(Demand, PlanProblem, RequestClass, carbon_price, days, kinds, mo, objective, peaks, sites):
    mo.stop(not sites.value or not kinds.value, mo.md("**Pick at least one site and one capacity kind.**"))
    # The problem, as in examples/plans/week_3_regions.yaml: one chat class, H100 fp8, batch 64.
    problem = PlanProblem(
        name="dashboard", model="Llama3_8B",
        classes=[RequestClass(name="chat", prompt_len=512, output_len=256, ttft_ms=300, itl_ms=80)],
        demand=Demand.diurnal(dict(peaks.value), days=days.value, request_class="chat"),
        sites=list(sites.value), hardware=["H100"], precisions=["fp8"], tp_sizes=[1], batch_sizes=[64],
        kinds=list(kinds.value), objective=objective.value, carbon_price_usd_per_t=carbon_price.value)
    return (problem,)


@app.cell
def _(MlsysimError, mo, plan_fleet, problem):
    with mo.status.spinner(title="Planning", subtitle=f"one MILP over {problem.hours} hours"):
        try:
            plan = plan_fleet(problem, time_limit=30)
        except MlsysimError as _exc:    # an input the planner refuses, with its reason
            mo.stop(True, mo.callout(mo.md(f"**No plan for these inputs:** {_exc}"), kind="warn"))
    return (plan,)


@app.cell
def _(mo, plan, table, tagged):
    if plan.feasible:
        _by_hour = plan.by_hour()
        _status = (f"**{tagged('plan-status', plan.solve.status.value)}** (gap {(plan.gap or 0):.2%}, "
                   f"{plan.solve.solve_time_s:.2f} s)")
        _shown = mo.md(
            f"## The plan\n\n{_status}\n\n"
            + table([("cost", f"${tagged('plan-cost', format(plan.cost_usd, ',.0f'))}"),
                     ("carbon", f"{tagged('plan-carbon', format(plan.carbon_t, ',.3f'))} tCO2e"),
                     ("energy", f"{tagged('plan-energy', format(plan.energy_mwh, ',.2f'))} MWh"),
                     ("peak hour", f"{_by_hour['demand_qps'].max():,.0f} requests/s"
                      if "demand_qps" in _by_hour else "")]))
    else:
        _shown = mo.md(f"## No plan serves this demand\n\n{plan.solve.status.value}: "
                       f"{tagged('plan-explanation', str(plan.explanation or plan.solve.termination))}")
    _shown
    return


@app.cell
def _(mo, plan, plots):
    # Regions x hours: replicas deployed at each site, hour by hour, and where each metro is served.
    mo.stop(not plan.feasible)
    mo.vstack([plots.replicas_by_hour_figure(plan, title="Replicas deployed per site, by hour (UTC)"),
               plots.routing_matrix_figure(plan, title="Share of each metro's requests served at each site"),
               plots.cost_carbon_by_hour_figure(plan, title="Cost and carbon by hour")])
    return


if __name__ == "__main__":
    app.run()
