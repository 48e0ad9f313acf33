"""Plots as PNG or SVG bytes (matplotlib, Agg canvas, no pyplot state, so figures can be drawn in
server threads): roofline, sweep heat map, and Pareto fronts.

Nothing here computes physics: every number drawn comes from ``Engine`` results. The roofline's
memory roof is drawn as the line of slope 1 (log-log) through the ridge point the roofline sheet
reports, and each workload sits at (arithmetic intensity, MFU x datasheet peak), i.e. the model
FLOP per second it attains.
"""
from __future__ import annotations

import io
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

FORMATS = {"png": "image/png", "svg": "image/svg+xml"}
_render_lock = threading.Lock()  # matplotlib's text layout caches are shared between figures


@dataclass(frozen=True)
class Roof:
    """One accelerator's roofline at one precision and efficiency."""

    label: str
    peak: float            # FLOP/s the compute roof sits at (eta x datasheet peak)
    datasheet_peak: float  # FLOP/s before the efficiency derating
    ridge: float           # FLOP/byte where the memory roof meets the compute roof


@dataclass(frozen=True)
class RooflinePoint:
    label: str
    roof: str
    intensity: float   # FLOP/byte
    attained: float    # FLOP/s
    bottleneck: str
    feasible: bool


def roofline_data(models, hardware, *, batch_sizes: Sequence[int] = (1, 8, 64, 512), precision: str = "fp16",
                  efficiency: float = 0.5, seq_len: int | None = None,
                  is_training: bool = False) -> tuple[list[Roof], list[RooflinePoint]]:
    """Roofs and workload points from ``Engine.solve`` for every model x hardware x batch."""
    from .. import inputs as _in
    from ..engine import Engine
    models = list(models) if isinstance(models, (list, tuple)) else [models]
    hardware = list(hardware) if isinstance(hardware, (list, tuple)) else [hardware]
    roofs: dict[tuple, Roof] = {}
    points = []
    for hw_ref in hardware:
        hw = _in.hardware(hw_ref)
        datasheet_peak = _in.precision_for(hw, precision, warn=False).peak_flops
        for model_ref in models:
            wl = _in.workload(model_ref)
            for batch in batch_sizes:
                p = Engine.solve(wl, hw, batch_size=batch, precision=precision, efficiency=efficiency,
                                 seq_len=seq_len, is_training=is_training)
                peak = p.peak_flops_actual.m_as("FLOP/s")
                ridge = p.ridge_point.m_as("FLOP/byte")
                label = f"{hw.name} ({p.compute_precision})" + ("" if p.memory_tier == "main memory"
                                                                 else f", {p.memory_tier}")
                roofs.setdefault((label, peak, ridge), Roof(label, peak, datasheet_peak, ridge))
                points.append(RooflinePoint(f"{wl.name} b={batch}", label, p.arithmetic_intensity.m_as("FLOP/byte"),
                                            p.mfu * datasheet_peak, p.bottleneck, p.feasible))
    return list(roofs.values()), points


def roofline_figure(roofs: Sequence[Roof], points: Sequence[RooflinePoint], *, title: str | None = None):
    """Log-log roofline: one roof per accelerator, workloads as markers (hollow when they do not
    fit in memory)."""
    from matplotlib.figure import Figure
    fig = Figure(figsize=(8, 5.2), layout="constrained")
    ax = fig.add_subplot()
    xs = [p.intensity for p in points] + [r.ridge for r in roofs]
    lo, hi = min(xs) / 10, max(xs) * 10
    colors = {}
    for i, roof in enumerate(roofs):
        color = f"C{i % 10}"
        colors[roof.label] = color
        # memory roof: slope 1 in log-log through the ridge point (ridge, peak)
        start = min(lo, roof.ridge)
        ax.plot([start, roof.ridge, hi], [roof.peak * start / roof.ridge, roof.peak, roof.peak], color=color,
                lw=2, label=f"{roof.label}: {roof.peak / 1e12:,.0f} TFLOP/s, ridge {roof.ridge:,.0f} FLOP/B")
        ax.axhline(roof.datasheet_peak, color=color, lw=0.8, ls=":")
    for p in points:
        color = colors.get(p.roof, "k")
        ax.scatter([p.intensity], [p.attained], s=36, zorder=3, edgecolors=color,
                   facecolors=color if p.feasible else "none", marker="o" if p.bottleneck == "Memory" else "s")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(lo, hi)
    ax.set_xlabel("arithmetic intensity (FLOP/byte)")
    ax.set_ylabel("attained compute (FLOP/s)")
    ax.set_title(title or "Roofline (dotted: datasheet peak; circles memory-bound, squares compute-bound; "
                          "hollow: does not fit)", fontsize=9)
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize=7, loc="lower right")
    _label_points(ax, points)
    return fig


def _label_points(ax, points: Sequence[RooflinePoint]) -> None:
    """Names each workload point once, where it does not collide with a label already placed: a
    label goes to the first free spot around its point (right, left, above, below, further out);
    a point with no free spot near it stays unlabelled rather than overprinted (its workload is
    named at its neighbours, which sit at the same intensity on other roofs)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    FigureCanvasAgg(ax.figure)
    ax.figure.draw_without_rendering()                     # final layout and limits: pixel boxes hold
    renderer = ax.figure.canvas.get_renderer()
    placed = [_box(ax.get_legend().get_window_extent(renderer))] if ax.get_legend() else []
    offsets = [(5, 3), (-5, 3), (5, -11), (-5, -11), (0, 10), (0, -16), (14, 12), (-14, 12), (14, -20), (-14, -20)]
    for p in sorted(points, key=lambda q: (q.intensity, -q.attained)):
        for dx, dy in offsets:
            text = ax.annotate(p.label, (p.intensity, p.attained), textcoords="offset points", xytext=(dx, dy),
                               fontsize=7, ha="left" if dx >= 0 else "right")
            mine = _box(text.get_window_extent(renderer))
            if not any(_overlap(mine, other) for other in placed):
                placed.append(mine)
                break
            text.remove()


def _box(extent) -> tuple[float, float, float, float]:
    return extent.x0 - 1, extent.y0 - 1, extent.x1 + 1, extent.y1 + 1


def _overlap(a: tuple, b: tuple) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def roofline_plot(models, hardware, *, batch_sizes: Sequence[int] = (1, 8, 64, 512), precision: str = "fp16",
                  efficiency: float = 0.5, seq_len: int | None = None, is_training: bool = False,
                  fmt: str = "png", out: str | Path | None = None, title: str | None = None) -> bytes:
    """Roofline of ``models`` on ``hardware`` (names or records) as PNG/SVG bytes; also written to
    ``out`` when given (format from its suffix unless ``fmt`` says otherwise)."""
    roofs, points = roofline_data(models, hardware, batch_sizes=batch_sizes, precision=precision,
                                  efficiency=efficiency, seq_len=seq_len, is_training=is_training)
    return _emit(roofline_figure(roofs, points, title=title), fmt, out)


HEATMAP_MAX_INCHES = (30.0, 20.0)
"""Largest heat map drawn (width, height in inches at 120 dpi): 3600 x 2400 pixels."""


def sweep_heatmap(frame, *, value: str = "throughput_per_s", rows: str = "hardware", cols: str = "batch_size",
                  fmt: str = "png", out: str | Path | None = None, title: str | None = None, log: bool = True) -> bytes:
    """Heat map of one column of an ``Engine.sweep_table`` frame (rows x cols; the best value when
    other grid axes vary); cells where the configuration does not fit in memory are left blank."""
    import numpy as np
    from matplotlib.colors import LogNorm
    from matplotlib.figure import Figure
    from ..errors import InputError
    for name in (value, rows, cols):
        if name not in frame.columns:
            raise InputError("column", name, f"is not a sweep column; choose from {', '.join(frame.columns)}")
    shown = frame[frame["feasible"]] if "feasible" in frame.columns else frame
    table = shown.pivot_table(index=rows, columns=cols, values=value, aggfunc="max", observed=False)
    table = table.reindex(index=list(dict.fromkeys(frame[rows])), columns=sorted(set(frame[cols])))
    data = table.to_numpy(dtype=float)
    # the figure grows with the table up to HEATMAP_MAX_INCHES: the raster's memory grows with its area
    width = min(HEATMAP_MAX_INCHES[0], max(5.0, 2.5 + 0.8 * data.shape[1]))
    height = min(HEATMAP_MAX_INCHES[1], max(3.0, 1.5 + 0.5 * data.shape[0]))
    fig = Figure(figsize=(width, height), layout="constrained")
    ax = fig.add_subplot()
    finite = data[np.isfinite(data) & (data > 0)]
    norm = LogNorm(finite.min(), finite.max()) if log and finite.size and finite.min() < finite.max() else None
    image = ax.imshow(np.ma.masked_invalid(data), aspect="auto", cmap="viridis", norm=norm)
    ax.set_xticks(range(data.shape[1]), [str(c) for c in table.columns], fontsize=8)
    ax.set_yticks(range(data.shape[0]), [str(r) for r in table.index], fontsize=8)
    ax.set_xlabel(_readable(cols))
    ax.set_ylabel(_readable(rows))
    for (i, j), v in np.ndenumerate(data):
        if not np.isfinite(v):
            ax.text(j, i, "does not fit", ha="center", va="center", fontsize=6, color="0.4")
            continue
        r, g, b, _ = image.cmap(image.norm(v))
        ax.text(j, i, f"{v:.3g}", ha="center", va="center", fontsize=6,
                color="k" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "w")  # readable on light and dark cells
    fig.colorbar(image, ax=ax, label=_readable(value))
    ax.set_title(title or f"{_readable(value)} by {_readable(rows)} and {_readable(cols)}", fontsize=9)
    return _emit(fig, fmt, out)


_READABLE = {"throughput_per_s": "throughput (samples/s)", "latency_s": "latency (s)", "batch_size": "batch size",
             "mfu": "MFU", "energy_J": "energy per pass (J)", "memory_footprint_B": "memory (bytes)",
             "arithmetic_intensity": "arithmetic intensity (FLOP/byte)", "seq_len": "sequence length (tokens)"}
"""Axis and colour-bar names of the sweep columns (a column not listed is shown with spaces)."""


def _readable(column: str) -> str:
    return _READABLE.get(column, column.replace("_", " "))


def pareto_plot(points: Sequence[Mapping[str, float]], x: str, y: str, *,
                front: Sequence[Mapping[str, float]] | None = None, label: str | None = None,
                x_label: str | None = None, y_label: str | None = None, title: str | None = None,
                fmt: str = "png", out: str | Path | None = None) -> bytes:
    """Scatter of ``points`` (dicts with keys ``x`` and ``y``, optionally ``label``) with the Pareto
    ``front`` drawn as a step line through its points, in order of ``x``."""
    from matplotlib.figure import Figure
    fig = Figure(figsize=(7, 4.8), layout="constrained")
    ax = fig.add_subplot()
    ax.scatter([p[x] for p in points], [p[y] for p in points], s=14, color="0.6", label="evaluated")
    if front:
        ordered = sorted(front, key=lambda p: p[x])
        ax.step([p[x] for p in ordered], [p[y] for p in ordered], where="post", color="C3", lw=1.5)
        ax.scatter([p[x] for p in ordered], [p[y] for p in ordered], s=30, color="C3", zorder=3, label="Pareto front")
        if label:
            for p in ordered:
                if p.get(label) is not None:
                    ax.annotate(str(p[label]), (p[x], p[y]), textcoords="offset points", xytext=(4, 4), fontsize=7)
    ax.set_xlabel(x_label or x)
    ax.set_ylabel(y_label or y)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=9)
    return _emit(fig, fmt, out)


def _emit(fig, fmt: str, out: str | Path | None) -> bytes:
    if out is not None and fmt == "png" and Path(out).suffix:  # the file's suffix names its format
        fmt = Path(out).suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        from ..errors import InputError
        raise InputError("format", fmt, f"must be one of {', '.join(FORMATS)}")
    buffer = io.BytesIO()
    with _render_lock:
        fig.savefig(buffer, format=fmt, dpi=120)
    data = buffer.getvalue()
    if out is not None:
        Path(out).write_bytes(data)
    return data

