import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium", app_title="Carbon and geography")


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    # Carbon and geography: the same fleet, different grids

    A training run draws the same power wherever it runs: every accelerator busy at its TDP, plus the
    host. What changes with the place is the **facility overhead** (PUE: cooling and power delivery),
    the **carbon intensity** of the grid, the **water** the cooling uses, and the price of electricity.
    `SustainabilityModel` gives energy, carbon and water for each site, `EconomicsModel` the energy bill.

    Pick a fleet, a duration and the grids to compare: the IT energy is the same in every row; the
    carbon differs by more than an order of magnitude between a coal-heavy grid and a hydro one.
    """)
    return


@app.cell
def _():
    import marimo as mo
    from matplotlib.figure import Figure

    from mlsysim_opt import EconomicsModel, Infra, SustainabilityModel, Systems
    from mlsysim_opt.dashboards._layout import table, tagged
    return EconomicsModel, Figure, Infra, SustainabilityModel, Systems, mo, table, tagged


@app.cell
def _(Infra, Systems, mo):
    fleet = mo.ui.dropdown(options=sorted(k for k, _ in Systems.Clusters.items()), value="Research_256",
                           label="fleet")
    days = mo.ui.slider(1, 90, step=1, value=30, label="duration (days)", show_value=True)
    utilization = mo.ui.slider(0.0, 1.0, step=0.05, value=1.0, label="busy fraction (1 = training)",
                               show_value=True)
    grids = mo.ui.multiselect(options=sorted(k for k, _ in Infra.Grids.items()),
                              value=["Poland", "US_Avg", "Germany", "Texas", "France", "Quebec", "Norway"],
                              label="grids")
    mo.vstack([mo.hstack([fleet, days, utilization], justify="start"), grids])
    return days, fleet, grids, utilization


@app.cell
def _(EconomicsModel, Infra, SustainabilityModel, Systems, days, fleet, grids, mo, utilization):
    mo.stop(not grids.value, mo.md("**Pick at least one grid.**"))
    # The whole model: one sustainability and one economics solve per grid.
    cluster = Systems.Clusters[fleet.value]
    runs = {}
    for _grid in grids.value:
        runs[_grid] = (
            SustainabilityModel().solve(cluster, duration_days=days.value, datacenter=Infra.Grids[_grid],
                                        utilization=utilization.value),
            EconomicsModel().solve(cluster, duration_days=days.value, datacenter=Infra.Grids[_grid],
                                   utilization=utilization.value),
        )
    return cluster, runs


@app.cell
def _(cluster, days, mo, runs, table, tagged):
    _order = sorted(runs, key=lambda g: runs[g][0].carbon_footprint_kg)
    _rows = []
    for _g in _order:
        _s, _e = runs[_g]
        _rows.append((_g, f"{_s.carbon_intensity.m_as('gCO2e/kWh'):,.0f} g/kWh", f"{_s.pue:g}",
                      tagged(f"energy-{_g}", format(_s.total_energy_kwh / 1e3, ",.1f")),
                      tagged(f"carbon-{_g}", format(_s.carbon_footprint_kg / 1e3, ",.1f")),
                      tagged(f"water-{_g}", format(_s.water_usage_liters / 1e3, ",.1f")),
                      f"${_e.opex_energy_usd:,.0f}"))
    _clean, _dirty = runs[_order[0]][0], runs[_order[-1]][0]
    _ratio = (_dirty.carbon_footprint_kg / _clean.carbon_footprint_kg if _clean.carbon_footprint_kg > 0
              else float("inf"))
    _first = runs[_order[0]][0]
    mo.md(
        f"### {cluster.name}: {cluster.total_accelerators:,} accelerators for {days.value} days\n\n"
        f"{_first.node_power:.2f~P} per node, {_first.fleet_power:.1f~P} for the fleet: "
        f"{tagged('it-energy', format(_first.it_energy_kwh / 1e3, ',.1f'))} MWh of IT energy in every grid.\n\n"
        f"**{_order[-1]}** emits **{_ratio:,.1f}x** the carbon of **{_order[0]}** "
        f"({_dirty.carbon_footprint_kg / 1e3:,.1f} t against {_clean.carbon_footprint_kg / 1e3:,.1f} t).\n\n"
        + table(_rows, ("grid", "carbon intensity", "PUE", "facility energy (MWh)", "carbon (tCO2e)",
                        "water (m³)", "electricity")))
    return


@app.cell
def _(Figure, runs):
    # Carbon and water side by side, cleanest grid first.
    _order = sorted(runs, key=lambda g: runs[g][0].carbon_footprint_kg)
    _fig = Figure(figsize=(8, 3.4), layout="constrained")
    _ax1, _ax2 = _fig.subplots(1, 2)
    _ax1.barh(_order, [runs[g][0].carbon_footprint_kg / 1e3 for g in _order], color="#4c72b0")
    _ax1.set_xlabel("operational carbon (tCO2e)")
    _ax2.barh(_order, [runs[g][0].water_usage_liters / 1e3 for g in _order], color="#55a868")
    _ax2.set_xlabel("water (m³)")
    _ax2.set_yticklabels([])
    _fig
    return


if __name__ == "__main__":
    app.run()
