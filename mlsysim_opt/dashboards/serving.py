import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium", app_title="Serving and SLA")


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    # Serving and SLA: which fleet serves this load?

    The question asked backwards: given a model, a load in requests per second and latency limits,
    what is the cheapest fleet that serves it? `synthesize` evaluates every hardware x precision x
    tensor-parallel x batch x prefill-chunk configuration with the forward serving models, keeps the
    ones whose **p90 TTFT and ITL under load** stay within the limits, and solves a small MILP with
    HiGHS for the fleet: the answer comes with a **proof of optimality**, the next-best designs, and,
    when nothing can serve the load, **which limit to relax and by how much**.

    Try a tight TTFT (a few ms) to see the infeasibility explanation, or raise the QPS and watch the
    replica count and the bill grow.
    """)
    return


@app.cell
def _():
    import time

    import marimo as mo

    from mlsysim_opt import Hardware, Infra, MlsysimError, Models, synthesize
    from mlsysim_opt.dashboards._layout import dollars, preformatted, table, tagged
    return Hardware, Infra, MlsysimError, Models, dollars, mo, preformatted, synthesize, table, tagged, time


@app.cell
def _(Hardware, Infra, Models, mo):
    model = mo.ui.dropdown(options=sorted(k for k, _ in Models.Language.items()), value="Llama3_8B", label="model")
    qps = mo.ui.number(start=1, stop=1_000_000, step=1, value=100, label="load (requests/s)")
    ttft = mo.ui.number(start=0.1, stop=100_000, step=0.1, value=200, label="TTFT limit (ms)")
    itl = mo.ui.number(start=0.1, stop=10_000, step=0.1, value=50, label="ITL limit (ms)")
    percentile = mo.ui.dropdown(options=["p50", "p90", "p99"], value="p90", label="limits bound the")
    objective = mo.ui.dropdown(options={"annual cost (TCO)": "tco", "power": "power", "carbon": "carbon"},
                               value="annual cost (TCO)", label="minimize")
    priced = sorted(k for k, h in Hardware.Cloud.items() if h.unit_cost is not None)
    hardware = mo.ui.multiselect(options=priced, value=["H100", "A100", "MI300X", "L4"], label="hardware set")
    region = mo.ui.dropdown(options=sorted(k for k, _ in Infra.Grids.items()), value="US_Avg",
                            label="grid (energy price and carbon)")
    mo.vstack([mo.hstack([model, qps, objective], justify="start"),
               mo.hstack([ttft, itl, percentile], justify="start"),
               mo.hstack([hardware, region], justify="start")])
    return hardware, itl, model, objective, percentile, qps, region, ttft


@app.cell
def _(MlsysimError, hardware, itl, mo, model, objective, percentile, qps, region, synthesize, time, ttft):
    mo.stop(not hardware.value, mo.md("**Pick at least one accelerator in the hardware set.**"))
    # The whole model: one call to the synthesis MILP (a fraction of a second at these sizes).
    with mo.status.spinner(title="Synthesizing the fleet", subtitle="evaluating configurations, solving the MILP"):
        started = time.perf_counter()
        try:
            result = synthesize(model.value, qps=qps.value, ttft=f"{ttft.value} ms", itl=f"{itl.value} ms",
                                percentile=percentile.value, hardware=hardware.value, objective=objective.value,
                                datacenter=region.value)
        except MlsysimError as _exc:    # an input the library refuses, with its reason
            mo.stop(True, mo.callout(mo.md(f"**No answer for these inputs:** {_exc}"), kind="warn"))
        elapsed_s = time.perf_counter() - started
    return elapsed_s, result


@app.cell
def _(dollars, elapsed_s, mo, preformatted, result, table, tagged):
    _r = result
    _proof = (f"**{tagged('status', _r.solve.status.value)}** (gap {(_r.solve.gap or 0):.1e}; HiGHS "
              f"{_r.solve.solve_time_s * 1e3:.0f} ms, whole query {tagged('solve-s', format(elapsed_s, '.2f'))} s; "
              f"{_r.candidates_evaluated:,} configurations evaluated, {_r.candidates_meeting_sla:,} meet the SLA, "
              f"{_r.candidates_after_pruning:,} left after pruning)")
    _parts = []
    if _r.best is None:
        _rows = [(x.label, f"{x.limit:,.2f} {x.unit}",
                  "cannot help alone" if x.required is None else f"{x.required:,.2f} {x.unit}")
                 for x in _r.explanation.relaxations] if _r.explanation else []
        _why = _r.explanation.summary if _r.explanation else "no explanation"
        _parts.append(mo.md(
            f"## No single-configuration design serves {_r.model} at {_r.qps:,g} requests/s\n\n{_proof}\n\n"
            f"**Why:** {tagged('explanation', _why)}\n\n" + (table(_rows, ("limit", "now", "would need")) if _rows
                                                              else "")))
    else:
        _b = _r.best
        _alts = [(f"{a.replicas} x {a.config.name}", a.accelerators, f"${a.annual_cost_usd:,.0f}",
                  f"{a.power_kw:,.1f} kW", f"{a.annual_carbon_t:,.1f} t") for a in _r.alternatives]
        _parts.append(mo.md(
            f"## The fleet\n\n**{tagged('replicas', _b.replicas)} replicas x {tagged('config', _b.config.name)}**"
            f"\n\n{tagged('accelerators', _b.accelerators)} accelerators, {_proof}\n\n"
            + (f"{_b.load}\n\n" if _b.load is not None else "")
            + table([("annual cost", f"${tagged('annual-cost', format(_b.annual_cost_usd, ',.0f'))} per year"),
                     ("power", f"{tagged('power-kw', format(_b.power_kw, ',.1f'))} kW"),
                     ("carbon", f"{tagged('carbon-t', format(_b.annual_carbon_t, ',.1f'))} tCO2e per year"),
                     ("capacity", f"{_b.total_qps:,.1f} requests/s with spares down"),
                     ("one replica at full load", f"{_b.config.capacity_qps:,.2f} requests/s; TTFT "
                                                  f"{_b.config.ttft_ms:.1f} ms for a request alone")])
            + ("\n\n### Next-best designs\n\n" + table(_alts, ("fleet", "accelerators", "cost per year", "power",
                                                                  "carbon per year")) if _alts else "")))
    if _r.disaggregated is not None:
        _parts.append(mo.md("### Separate prefill and decode pools"))
        _parts.append(mo.Html(preformatted(_r.disaggregated)))
        if _r.comparison:
            _parts.append(mo.md(dollars(_r.comparison)))
    if _r.assumptions is not None:
        _parts.append(mo.accordion({"What the answer assumes": mo.md(
            dollars("\n".join(f"- {line}" for line in _r.assumptions.lines())))}))
    mo.vstack(_parts)
    return


if __name__ == "__main__":
    app.run()
