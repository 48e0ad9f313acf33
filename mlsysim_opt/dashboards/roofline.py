import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium", app_title="Roofline explorer")


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    # Roofline explorer

    One forward pass of a workload on one accelerator, from the roofline sheet (`Engine.solve`).
    A pass takes the longer of its compute time (FLOPs over the derated peak) and its memory time
    (bytes moved over the memory bandwidth), plus a fixed overhead. Small batches read every weight
    for little arithmetic: **memory-bound**. Drag the batch size up and watch the operating point
    climb the slanted memory roof until it meets the flat compute roof: the bottleneck flips to
    **compute**, and then the memory fit decides how far you can go.

    For an LLM decode step the KV cache is read too, and it grows with the batch: at a long context
    it keeps the step memory-bound however large the batch (and soon stops fitting). Shorten the
    context to 128 tokens and the flip appears around batch 256.
    """)
    return


@app.cell
def _():
    import time
    import warnings

    import marimo as mo

    from mlsysim_opt import Engine, Hardware, MlsysimError, Models, PrecisionFallbackWarning
    from mlsysim_opt.dashboards._layout import table, tagged
    from mlsysim_opt.service.plots import roofline_data, roofline_figure

    # The first solve compiles the roofline sheet (a second or two); later ones take microseconds.
    with mo.status.spinner(title="Compiling the roofline sheet"):
        Engine.solve("Llama3_8B", "H100")
    return (Engine, Hardware, MlsysimError, Models, PrecisionFallbackWarning, mo, roofline_data, roofline_figure,
            table, tagged, time, warnings)


@app.cell
def _(Hardware, Models, mo):
    model = mo.ui.dropdown(options=sorted(k for k, _ in Models.items()), value="Llama3_8B", label="model")
    hardware = mo.ui.dropdown(options=sorted(k for k, _ in Hardware.items()), value="H100", label="hardware")
    precision = mo.ui.dropdown(options=["fp32", "fp16", "bf16", "fp8", "int8", "int4"], value="fp16",
                               label="precision")
    batch = mo.ui.slider(steps=[1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024], value=1, label="batch size",
                         show_value=True)
    efficiency = mo.ui.slider(0.05, 1.0, step=0.05, value=0.5, label="efficiency (share of peak compute)",
                              show_value=True)
    context = mo.ui.dropdown(options={"model default": None, "128": 128, "512": 512, "2048": 2048, "8192": 8192},
                             value="model default", label="context (tokens)")
    mo.vstack([mo.hstack([model, hardware, precision, context], justify="start"), batch, efficiency])
    return batch, context, efficiency, hardware, model, precision


@app.cell
def _(Engine, MlsysimError, PrecisionFallbackWarning, batch, context, efficiency, hardware, mo, model, precision,
      time, warnings):
    # The whole model: one call to the forward roofline (tens of microseconds once warm).
    started = time.perf_counter()
    try:
        with warnings.catch_warnings():  # a fallback is reported on the profile itself (shown below)
            warnings.simplefilter("ignore", PrecisionFallbackWarning)
            profile = Engine.solve(model.value, hardware.value, batch_size=batch.value, precision=precision.value,
                                   efficiency=efficiency.value, seq_len=context.value)
    except MlsysimError as _exc:       # e.g. a precision the accelerator cannot compute in
        mo.stop(True, mo.callout(mo.md(f"**No answer for this combination:** {_exc}"), kind="warn"))
    forward_ms = (time.perf_counter() - started) * 1e3
    return forward_ms, profile


@app.cell
def _(forward_ms, mo, profile, table, tagged):
    _p = profile
    _ms = lambda q: f"{q.m_as('ms'):.3f}"
    _fits = "yes" if _p.feasible else f"NO: {_p.infeasibility_reason}"
    mo.md(
        f"### {_p.model} on {_p.hardware}, batch {_p.batch_size}, {_p.precision}\n\n"
        f"**Bottleneck: {tagged('bottleneck', _p.bottleneck)}**, latency "
        f"**{tagged('latency-ms', _ms(_p.latency))} ms** per pass, memory fit: {tagged('fits', _fits)}\n\n"
        + table([
            ("latency", f"{_ms(_p.latency)} ms"),
            ("&nbsp;&nbsp;compute time", f"{tagged('compute-ms', _ms(_p.latency_compute))} ms"),
            ("&nbsp;&nbsp;memory time", f"{tagged('memory-ms', _ms(_p.latency_memory))} ms"),
            ("&nbsp;&nbsp;fixed overhead", f"{tagged('overhead-ms', _ms(_p.latency_overhead))} ms"),
            ("throughput", f"{tagged('throughput', format(_p.throughput.m_as('1/s'), ',.1f'))} per s"),
            ("arithmetic intensity", f"{tagged('intensity', format(_p.arithmetic_intensity.m_as('FLOP/byte'), ',.1f'))}"
                                     f" FLOP/B (ridge {_p.ridge_point.m_as('FLOP/byte'):,.1f})"),
            ("MFU", tagged("mfu", f"{_p.mfu:.3f}")),
            ("memory", f"{tagged('memory-gb', format(_p.memory_footprint.m_as('GB'), '.2f'))} of "
                       f"{_p.memory_capacity.m_as('GB'):.2f} GB ({_p.memory_tier}): weights "
                       f"{_p.weights_size.m_as('GB'):.2f} GB, KV cache {_p.kv_cache_size.m_as('GB'):.2f} GB"),
            ("energy per pass", f"{_p.energy.m_as('J'):.3f} J"),
            ("computed in", f"{tagged('forward-ms', format(forward_ms, '.2f'))} ms (Engine.solve)"),
        ])
        + (f"\n\n*Precision: {_p.precision_fallback}*" if _p.precision_fallback else "")
    )
    return


@app.cell
def _(batch, context, efficiency, hardware, model, precision, profile, roofline_data, roofline_figure):
    # The roofline itself: the same Engine.solve at a few batch sizes for context, the chosen one ringed
    # (drawn once the operating point above has been computed: `profile`).
    _roofs, _points = roofline_data(model.value, hardware.value, batch_sizes=sorted({1, 8, 64, 512, batch.value}),
                                  precision=precision.value, efficiency=efficiency.value, seq_len=context.value)
    _figure = roofline_figure(_roofs, _points, title=f"{profile.model} on {profile.hardware} ({profile.precision}): "
                                                  f"operating point at batch {profile.batch_size}")
    _here = next(q for q in _points if q.label.endswith(f"b={batch.value}"))
    _figure.axes[0].scatter([_here.intensity], [_here.attained], s=260, facecolors="none", edgecolors="crimson",
                           linewidths=2, zorder=4, label=f"operating point (batch {batch.value})")
    _figure.axes[0].legend(fontsize=7, loc="lower right")
    _figure
    return


if __name__ == "__main__":
    app.run()
