"""Point caps of every grid the service evaluates (sweeps, DSE, heat maps, roofline plots), checked
before any work against the server's ``--max-grid`` and an estimate of the memory the grid needs.

The estimate is ``bytes per point x points`` with the constants below, each measured once as the
growth of a process's peak resident memory while evaluating a grid of that kind (Linux, CPython
3.11, pandas 2, matplotlib 3.10), rounded up. A grid whose estimate exceeds the memory budget of one
job is refused with 413 ``grid_too_large`` even when ``--max-grid`` would allow it; ``limit`` is the
number of points allowed.
"""
from __future__ import annotations

from .errors import ApiError

MEMORY_BUDGET_BYTES = 512 * 2**20
"""Most memory one grid may be estimated to need (one worker process runs one job at a time)."""

BYTES_PER_POINT = {
    "sweep": 1_200,          # sweep_table frame + its rows as JSON text: 1,127 B at 100,000 points
    "dse_grid": 700,         # DSE.roofline_grid: 632 B at 400,000 points, 638 B at 1.6M
    "sweep_plot": 800,       # the heat map's sweep frame and pivot table: 717 B at 100,000 points
    "roofline_plot": 100_000,  # Engine.solve, one marker and its label: 82-97 KB at 80 points
    "capstone": 1_500,       # candidate configurations of a capstone MILP: 1.3 KB at 307,200, 0.95 KB at 3.1M
}

HEATMAP_CELLS = 400
"""Most cells (rows x cols) of one heat map: each is drawn with its value written in it."""
BYTES_PER_CELL = 300_000
"""Memory of one heat-map cell (raster share, text and layout): 275 KB on a 20 x 20 map."""

PLOT_POINTS = 400
"""Most markers of one roofline plot (beyond that it is unreadable and slow to draw)."""


def point_cap(what: str, limits) -> int:
    """Most points a grid of kind ``what`` may have on this server: ``--max-grid``, or fewer when
    that many points would exceed the memory budget."""
    return min(limits.max_grid, limits.memory_budget // BYTES_PER_POINT[what])


def estimate_bytes(what: str, points: int, cells: int = 0) -> int:
    """The memory estimate of a grid of ``points`` (and, for heat maps, ``cells`` drawn)."""
    return points * BYTES_PER_POINT[what] + cells * BYTES_PER_CELL


def check_points(what: str, points: int, field: str, limits, *, cap: int | None = None,
                 fix: str = "split the grid into several requests, or start the server with a larger --max-grid"
                 ) -> None:
    """413 when a grid of ``points`` exceeds its cap (``cap`` when smaller than the server's), 422
    when it is empty; ``field`` names the request fields whose lengths multiply to ``points``."""
    allowed = point_cap(what, limits) if cap is None else min(cap, point_cap(what, limits))
    if points > allowed:
        need = estimate_bytes(what, points) / 2**20
        raise ApiError(413, "grid_too_large",
                       f"the grid has {points:,} points (about {need:,.0f} MiB); this server evaluates at most "
                       f"{allowed:,} in one request",
                       [{"field": field, "rule": f"must have at most {allowed} points", "value": points, "fix": fix}],
                       limit=allowed)
    if points == 0:
        raise ApiError(422, "invalid_input", "the grid is empty",
                       [{"field": field, "rule": "every list must have at least one value", "value": 0}])


def check_cells(cells: int, field: str, limits) -> None:
    """413 when a heat map would draw more than HEATMAP_CELLS cells (or more than its memory share)."""
    allowed = min(HEATMAP_CELLS, limits.memory_budget // BYTES_PER_CELL)
    if cells > allowed:
        raise ApiError(413, "grid_too_large", f"the heat map has {cells:,} cells; at most {allowed} are drawn",
                       [{"field": field, "rule": f"must have at most {allowed} cells", "value": cells,
                         "fix": "choose fewer values along rows or cols, or sweep in several requests"}],
                       limit=allowed)
