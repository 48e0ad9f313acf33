"""Leaf-by-leaf comparison of two JSON results of the same scenario (this project vs the reference).

A row is one quantity of one scenario. Numbers differ when this project's value over the
reference's is off 1 by more than ``TOLERANCE``; booleans and labels differ when they are not equal; a scenario that raises on one side
only gives an ``error`` row.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator

TOLERANCE = 0.05
# Labels worth comparing (names of regions, hardware, ... are spelled differently by design).
LABEL_KEYS = {"bottleneck", "feasible", "node_feasible", "is_feasible", "stable", "binding_constraint",
              "baseline_precision", "ran", "has_pareto_front", "tp", "pp", "dp", "batch_size", "precision",
              "overhead_dominated"}
SKIP_KEYS = {"warnings", "timing", "region_name", "pipeline_error", "stages", "top_candidates", "error",
             "sensitivities", "hfu"}


@dataclass
class Row:
    task: str
    scenario: str
    quantity: str
    ours: Any
    ref: Any
    context: dict = field(default_factory=dict)
    causes: list[str] = field(default_factory=list)
    details: list[str] = field(default_factory=list)

    @property
    def ratio(self) -> float | None:
        if isinstance(self.ours, bool) or isinstance(self.ref, bool):
            return None
        if isinstance(self.ours, (int, float)) and isinstance(self.ref, (int, float)):
            if self.ref == 0:
                return None if self.ours != 0 else 1.0
            return self.ours / self.ref
        return None

    @property
    def differs(self) -> bool:
        return differs(self.ours, self.ref)


def number(x) -> float | None:
    if isinstance(x, bool):
        return None
    if isinstance(x, (int, float)):
        return float(x)
    if isinstance(x, str) and x in ("inf", "-inf", "nan"):
        return float(x)
    return None


def differs(ours, ref, tolerance: float = TOLERANCE) -> bool:
    """Numbers: |ours / ref - 1| > tolerance (any non-zero against a zero); labels: not equal."""
    x, y = number(ours), number(ref)
    if x is not None and y is not None:
        if x == y:
            return False
        if y == 0:
            return True
        return abs(x / y - 1) > tolerance
    return ours != ref


def relative(a, b) -> float:
    """|a - b| relative to the larger magnitude (0 when equal, inf when not comparable)."""
    x, y = number(a), number(b)
    if x is None or y is None:
        return 0.0 if a == b else float("inf")
    if x == y:
        return 0.0
    return abs(x - y) / max(abs(x), abs(y))


def _label(item: dict, index: int) -> str:
    keys = [k for k in ("hardware", "batch_size", "precision") if k in item]
    if not keys:
        return f"[{index}]"
    return "[" + ",".join(f"{k.replace('batch_size', 'bs')}={str(item[k]).split('.')[-1]}" for k in keys) + "]"


def leaves(ours: Any, ref: Any, path: str = "") -> Iterator[tuple[str, str, Any, Any]]:
    """(scenario path, quantity, ours, ref) for every leaf both sides report."""
    if isinstance(ours, dict) and isinstance(ref, dict):
        if ("error" in ours) != ("error" in ref):
            yield path, "error", ours.get("error"), ref.get("error")
            return
        for key in ref:
            if key in SKIP_KEYS or key not in ours:
                continue
            sub = f"{path}/{key}" if path else key
            o, r = ours[key], ref[key]
            if isinstance(r, (dict, list)):
                yield from leaves(o, r, sub)
            elif number(r) is not None or key in LABEL_KEYS or isinstance(r, bool):
                yield path, key, o, r
        return
    if isinstance(ours, list) and isinstance(ref, list):
        # rows of a sweep: match by their labels, not their position
        by_label = {_label(o, i): o for i, o in enumerate(ours) if isinstance(o, dict)}
        for i, r in enumerate(ref):
            if isinstance(r, dict):
                lab = _label(r, i)
                if lab in by_label:
                    yield from leaves(by_label[lab], r, f"{path}{lab}")
        return


def compare_task(task: str, ours: dict, ref: dict) -> list[Row]:
    rows = []
    for name, r in ref.get("scenarios", {}).items():
        o = ours.get("scenarios", {}).get(name)
        if o is None:
            continue
        for path, quantity, ov, rv in leaves(o, r, name):
            if path.endswith("]") and quantity in ("hardware", "batch_size", "precision"):
                continue  # the row's own label
            rows.append(Row(task, path, quantity, ov, rv))
    return rows
