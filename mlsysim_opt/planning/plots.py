"""Plots of a global fleet plan as PNG or SVG bytes (matplotlib, Agg canvas, no pyplot state, so
figures can be drawn in server threads): accelerators deployed by site and hour, the routing
matrix, cost and carbon by hour, and the cost-carbon Pareto front.

Nothing here computes physics: every number drawn is read from a :class:`PlanResult`'s tables
(``fixed``, ``replicas``, ``routing``, ``hours``) or a :class:`PlanPareto`'s points. The only
look-up is the round trip of a (user region, site) pair that carries no traffic, taken from the
problem's overrides or the shipped RTT matrix so that the routing matrix can say how far an unused
site is.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Optional

from mlsysim_opt.errors import InputError
from mlsysim_opt.service.plots import _render_lock   # one lock: matplotlib's text caches are shared

FORMATS = {"png": "image/png", "svg": "image/svg+xml"}
KIND_ORDER = ("owned", "reserved_3y", "reserved_1y", "on_demand", "spot")
KIND_HATCH = {"owned": "", "reserved_3y": "////", "reserved_1y": "\\\\\\\\", "on_demand": "....", "spot": "xxx"}
KIND_ALPHA = {"owned": 1.0, "reserved_3y": 0.85, "reserved_1y": 0.75, "on_demand": 0.6, "spot": 0.45}
DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
PLOTS = ("replicas_by_hour", "routing_matrix", "cost_carbon_by_hour")


def _solved(result) -> None:
    if not getattr(result, "feasible", False):
        raise InputError("result", getattr(getattr(result, "problem", None), "name", type(result).__name__),
                         "has no plan to draw (the solve found no feasible plan)",
                         "plot a feasible PlanResult; see result.explanation")


def _sites(result) -> list[str]:
    """Sites in the order the problem lists them (the colors of every plot)."""
    names = []
    for s in result.problem.sites:
        names.append(s if isinstance(s, str) else getattr(s, "site", None) or s.name)
    return names


def _site_colors(result) -> dict[str, str]:
    return {s: f"C{i % 10}" for i, s in enumerate(_sites(result))}


def _hour_axis(ax, hours: int) -> None:
    """Hour 0 is Monday 00:00 UTC: a tick per day (named) for horizons of two days or more."""
    ax.set_xlim(0, hours)
    if hours >= 48:
        ticks = list(range(0, hours + 1, 24))
        ax.set_xticks(ticks, [f"{DAYS[(t // 24) % 7]}" if t < hours else "" for t in ticks], fontsize=8,
                      ha="left")
        ax.set_xlabel("hour of the plan (UTC; ticks at 00:00 of each day)")
    else:
        step = 1 if hours <= 12 else 3
        ax.set_xticks(list(range(0, hours + 1, step)))
        ax.set_xlabel("hour of the plan (UTC, from Monday 00:00)")
    ax.grid(True, axis="x", alpha=0.3)


# ----------------------------------------------------------------------------------------------
# tables read from the result


def deployed_by_hour(result):
    """Accelerators deployed per hour for each (site, kind): a DataFrame indexed by hour with a
    column per (site, kind) present in the plan (from the ``replicas`` table), owned and reserved
    columns first, then on-demand and spot."""
    import pandas as pd
    _solved(result)
    hours = result.problem.hours
    rep = result.replicas()
    if rep.empty:
        return pd.DataFrame(index=pd.RangeIndex(hours, name="hour"))
    table = rep.pivot_table(index="hour", columns=["site", "kind"], values="accelerators", aggfunc="sum",
                            fill_value=0)
    table = table.reindex(range(hours), fill_value=0)
    # fixed kinds first (a flat base), then the hourly rentals on top
    order = [(s, k) for k in KIND_ORDER[:3] for s in _sites(result) if (s, k) in table.columns]
    order += [(s, k) for k in KIND_ORDER[3:] for s in _sites(result) if (s, k) in table.columns]
    order += [c for c in table.columns if c not in order]
    return table[order]


def routing_shares(result, request_class: Optional[str] = None):
    """Share of each user region's requests (over the horizon) served at each site: a DataFrame,
    user regions by sites, each row summing to 1 (from the ``routing`` table; requests/s summed
    over the hours, every hour being one hour long). ``request_class`` keeps one class."""
    _solved(result)
    routing = result.routing()
    if request_class is not None:
        routing = routing[routing["class"] == request_class]
    regions = result.problem.demand.regions
    sites = _sites(result)
    if routing.empty:
        import pandas as pd
        return pd.DataFrame(0.0, index=regions, columns=sites)
    served = routing.pivot_table(index="user_region", columns="site", values="qps", aggfunc="sum", fill_value=0.0)
    served = served.reindex(index=[u for u in regions if u in served.index], columns=sites, fill_value=0.0)
    return served.div(served.sum(axis=1), axis=0)


def routing_rtt(result):
    """Round trip (ms) of every (user region, site) pair of the matrix: the routing table's where the
    pair carries traffic, else the problem's override or the shipped measurement (NaN if unknown)."""
    import numpy as np
    import pandas as pd
    from mlsysim_opt.planning.sites import resolve_site, rtt_between
    _solved(result)
    regions, sites = result.problem.demand.regions, _sites(result)
    frame = pd.DataFrame(np.nan, index=regions, columns=sites)
    routing = result.routing()
    for (u, s), ms in routing.groupby(["user_region", "site"])["rtt_ms"].first().items():
        if u in frame.index and s in frame.columns:
            frame.loc[u, s] = ms
    resolved = {}
    for u in regions:
        for entry, s in zip(result.problem.sites, sites):
            if np.isnan(frame.loc[u, s]):
                try:
                    spec = resolved.setdefault(s, resolve_site(entry, 1))
                    frame.loc[u, s] = rtt_between(u, spec, result.problem.rtt_ms)
                except Exception:   # a SiteSpec with an unknown metro: leave the cell without an RTT
                    pass
    return frame


# ----------------------------------------------------------------------------------------------
# figures


def replicas_by_hour_figure(result, *, title: str | None = None):
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch
    table = deployed_by_hour(result)
    hours = result.problem.hours
    colors = _site_colors(result)
    fig = Figure(figsize=(10, 5.8), layout="constrained")
    ax = fig.add_subplot()
    x = list(range(hours + 1))
    base = [0.0] * (hours + 1)
    kinds_seen = []
    for (site, kind) in table.columns:
        values = [float(v) for v in table[(site, kind)]]
        values = values + values[-1:]          # steps: hour t spans [t, t + 1)
        top = [b + v for b, v in zip(base, values)]
        ax.fill_between(x, base, top, step="post", facecolor=colors.get(site, "0.5"),
                        alpha=KIND_ALPHA.get(kind, 0.5), hatch=KIND_HATCH.get(kind, ""), edgecolor="white",
                        linewidth=0.0)
        base = top
        if kind not in kinds_seen:
            kinds_seen.append(kind)
    ax.step(x, base, where="post", color="k", lw=0.8)
    ax.set_ylabel("accelerators deployed")
    ax.set_ylim(0, max(base) * 1.12 if max(base) > 0 else 1)
    _hour_axis(ax, hours)
    demand = result.by_hour()["demand_qps"].tolist()
    twin = ax.twinx()
    twin.step(x, demand + demand[-1:], where="post", color="k", lw=1.2, ls="--")
    twin.set_ylabel("demand (requests/s, dashed)")
    twin.set_ylim(0, max(demand) * 1.12 if demand and max(demand) > 0 else 1)
    used = [s for s in _sites(result) if any(site == s for site, _ in table.columns)]
    site_handles = [Patch(facecolor=colors[s], label=s) for s in used if s in colors]
    kind_handles = [Patch(facecolor="0.75", alpha=KIND_ALPHA.get(k, 0.5), hatch=KIND_HATCH.get(k, ""),
                          edgecolor="0.3", label=k) for k in KIND_ORDER if k in kinds_seen]
    fig.legend(handles=site_handles + kind_handles, fontsize=7, loc="outside lower center",
               ncols=min(8, len(site_handles) + len(kind_handles)), title="site (color), capacity kind (hatch)",
               title_fontsize=7)
    p = result.problem
    ax.set_title(title or f"{p.name}: accelerators deployed by site and hour ({p.model_name})", fontsize=9)
    return fig


def routing_matrix_figure(result, *, request_class: Optional[str] = None, title: str | None = None):
    import numpy as np
    from matplotlib.figure import Figure
    shares = routing_shares(result, request_class)
    rtt = routing_rtt(result).reindex(index=shares.index, columns=shares.columns)
    data = shares.to_numpy(dtype=float)
    fig = Figure(figsize=(max(6.0, 2.8 + 1.1 * data.shape[1]), max(3.2, 1.6 + 0.55 * data.shape[0])),
                 layout="constrained")
    ax = fig.add_subplot()
    image = ax.imshow(data, aspect="auto", cmap="Blues", vmin=0.0, vmax=1.0)
    ax.set_xticks(range(data.shape[1]), list(shares.columns), fontsize=8, rotation=30, ha="right")
    ax.set_yticks(range(data.shape[0]), list(shares.index), fontsize=8)
    ax.set_xlabel("site")
    ax.set_ylabel("user region")
    for (i, j), v in np.ndenumerate(data):
        ms = rtt.iat[i, j]
        text = f"{v:.0%}" if v >= 0.005 else ("<1%" if v > 0 else "")
        rtt_text = f"{ms:.0f} ms" if np.isfinite(ms) else ""
        label = f"{text}\n{rtt_text}" if text else rtt_text
        ax.text(j, i, label, ha="center", va="center", fontsize=7 if text else 6,
                color="w" if v > 0.6 else ("k" if text else "0.55"))
    fig.colorbar(image, ax=ax, label="share of the region's requests over the horizon")
    which = f" (class {request_class})" if request_class else ""
    ax.set_title(title or f"{result.problem.name}: where each region's requests are served{which}; "
                          "round trip under each share", fontsize=9)
    return fig


def cost_carbon_by_hour_figure(result, *, title: str | None = None):
    from matplotlib.figure import Figure
    _solved(result)
    hours = result.by_hour()
    n = len(hours)
    x = list(range(n + 1))
    demand = hours["demand_qps"].tolist()
    fig = Figure(figsize=(10, 6), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True)
    for ax, column, scale, label, color in (
            (top, "cost_usd", 1.0, "cost (USD per hour)", "C0"),
            (bottom, "carbon_t", 1e3, "carbon (kgCO2e per hour)", "C2")):
        values = [float(v) * scale for v in hours[column]]
        ax.fill_between(x, 0, values + values[-1:], step="post", color=color, alpha=0.35, lw=0)
        ax.step(x, values + values[-1:], where="post", color=color, lw=1.2)
        ax.set_ylabel(label)
        ax.set_ylim(0, max(values) * 1.15 if values and max(values) > 0 else 1)
        ax.grid(True, axis="y", alpha=0.3)
        twin = ax.twinx()
        twin.step(x, demand + demand[-1:], where="post", color="k", lw=1.0, ls="--")
        twin.set_ylabel("demand (requests/s, dashed)", fontsize=8)
        twin.set_ylim(0, max(demand) * 1.15 if demand and max(demand) > 0 else 1)
    _hour_axis(bottom, n)
    top.tick_params(labelbottom=False)
    top.set_xlabel("")
    p = result.problem
    top.set_title(title or f"{p.name}: cost and carbon by hour (total ${result.cost_usd:,.0f}, "
                           f"{result.carbon_t:,.2f} tCO2e, {result.energy_mwh:,.1f} MWh)", fontsize=9)
    return fig


def pareto_figure(front, *, title: str | None = None):
    from matplotlib.figure import Figure
    from matplotlib.ticker import StrMethodFormatter
    points = sorted(getattr(front, "points", front), key=lambda q: q.carbon_t)
    if not points:
        raise InputError("front", "no points", "has nothing to draw")
    fig = Figure(figsize=(7, 4.8), layout="constrained")
    ax = fig.add_subplot()
    xs = [q.carbon_t for q in points]
    ys = [q.cost_usd for q in points]
    ax.step(xs, ys, where="post", color="C3", lw=1.2, alpha=0.6)
    ax.scatter(xs, ys, s=36, color="C3", zorder=3)
    for q in points:
        label = "no cap (least cost)" if q.carbon_cap_t is None else f"cap {q.carbon_cap_t:,.2f} t"
        ax.annotate(label, (q.carbon_t, q.cost_usd), textcoords="offset points", xytext=(6, 4), fontsize=7)
    ax.set_xlabel("carbon over the horizon (tCO2e)")
    ax.set_ylabel("cost over the horizon (USD)")
    ax.yaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
    ax.grid(True, alpha=0.3)
    ax.set_title(title or "Cost against carbon: least cost under each carbon cap", fontsize=9)
    return fig


# ----------------------------------------------------------------------------------------------
# bytes and files


def replicas_by_hour(result, *, format: str = "png", title: str | None = None) -> bytes:
    """Accelerators deployed by site (color) and capacity kind (hatch and shade), hour by hour,
    stacked with the fixed fleet (owned, reserved) at the bottom; the dashed line is the total
    demand."""
    return _emit(replicas_by_hour_figure(result, title=title), format)


def routing_matrix(result, *, format: str = "png", request_class: Optional[str] = None,
                   title: str | None = None) -> bytes:
    """Heat map of :func:`routing_shares` (user regions x sites) with each pair's round trip."""
    return _emit(routing_matrix_figure(result, request_class=request_class, title=title), format)


def cost_carbon_by_hour(result, *, format: str = "png", title: str | None = None) -> bytes:
    """Cost (top) and carbon (bottom) per hour, the demand dashed on each."""
    return _emit(cost_carbon_by_hour_figure(result, title=title), format)


def pareto(front, *, format: str = "png", title: str | None = None) -> bytes:
    """Cost against carbon of a :class:`PlanPareto`'s plans, each labelled with its carbon cap."""
    return _emit(pareto_figure(front, title=title), format)


def save_all(result, directory: str | Path, front=None, *, format: str = "png") -> list[Path]:
    """Write every plot of ``result`` (and ``front``'s, when given) into ``directory`` (created if
    needed) as ``<plot>.<format>``; returns the paths written."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    drawn = [("replicas_by_hour", replicas_by_hour(result, format=format)),
             ("routing_matrix", routing_matrix(result, format=format)),
             ("cost_carbon_by_hour", cost_carbon_by_hour(result, format=format))]
    if front is not None:
        drawn.append(("pareto", pareto(front, format=format)))
    paths = []
    for name, data in drawn:
        path = directory / f"{name}.{format}"
        path.write_bytes(data)
        paths.append(path)
    return paths


def _emit(fig, format: str) -> bytes:
    if format not in FORMATS:
        raise InputError("format", format, f"must be one of {', '.join(FORMATS)}")
    buffer = io.BytesIO()
    with _render_lock:
        fig.savefig(buffer, format=format, dpi=120)
    return buffer.getvalue()
