"""Why a fleet (energy, carbon, cost) or compression number differs, by switching on the reference's
conventions one at a time in this project's own solvers.

Each convention (`_ours_scenarios.Conventions`) is a documented difference: GPU-TDP power instead of
whole-node power, mfu 1.0 by default, 0.3.0's grid numbers, a flat $0.12/kWh, capital from GPU unit
costs, an fp32 compression baseline. A convention is a cause of a row when switching it on (from
this project's defaults) or off (from all of the reference's conventions) moves the number by more
than 1 %. With every convention on, this project must reproduce the reference; what is left must
carry the signature of a difference no switch can express:

* `water_it_energy`: the reference's water over ours equals its PUE (it multiplies WUE by facility
  energy, 17.10);
* `maintenance_basis`: the reference's maintenance over ours equals the infrastructure multiplier
  (17.13);
* `missing_price`: the reference's capital (or maintenance) is $0 (17.12);
* compression rows: the named rules of `_causes.py` for what the baseline switch does not cover.

TCO and total OpEx inherit the causes of their parts (capital, energy, maintenance).
"""
from __future__ import annotations

import re
from dataclasses import replace

import _ours_scenarios as ours
from _causes import rule_causes
from _compare import leaves, relative

MATERIAL = 0.01
TOGGLES = {
    "sustainability_values": {"gpu_tdp_power": "whole_node_power", "mfu_one": "mfu_default",
                              "mfu_power": "power_activity", "ref_grids": "grid_data"},
    "economics_values": {"gpu_tdp_power": "whole_node_power", "mfu_one": "mfu_default",
                         "mfu_power": "power_activity", "ref_grids": "grid_data",
                         "flat_price": "electricity_price_region", "gpu_capex": "capex_node_price"},
    "compression_values": {"fp32_baseline": "compression_baseline"},
}
FUNCTIONS = {"sustainability_values": ours.sustainability_values, "economics_values": ours.economics_values,
             "compression_values": ours.compression_values}
COMPOSITES = {"tco_usd": ("capex_usd", "opex_energy_usd", "opex_maintenance_usd"),
              "total_opex_usd": ("opex_energy_usd", "opex_maintenance_usd")}


def _flat(values: dict) -> dict[tuple[str, str], object]:
    out = {}
    for name, scenario in values["scenarios"].items():
        for path, quantity, value, _ in leaves(scenario, scenario, name):
            out[(path, quantity)] = value
    return out


def toggle_runs(task: str, data: dict) -> dict[str, dict]:
    """This project's answers to ``task`` as is, with every reference convention, and with each one
    switched on alone and switched off alone."""
    fn, names = FUNCTIONS[task], list(TOGGLES[task])
    base = ours.Conventions(data=data)
    every = replace(base, **{n: True for n in names})
    runs = {"as_is": _flat(ours.finite(fn(base))), "all": _flat(ours.finite(fn(every)))}
    for n in names:
        runs[f"only:{n}"] = _flat(ours.finite(fn(replace(base, **{n: True}))))
        runs[f"without:{n}"] = _flat(ours.finite(fn(replace(every, **{n: False}))))
    return runs


def _multiplier(scenario: str) -> float:
    m = re.search(r"k(\d+(?:\.\d+)?)$", scenario)
    if m:
        return float(m[1])
    return 2.5 if scenario.startswith("deck_5b_vendor_tco") else 1.0


def _signature(task: str, scenario: str, quantity: str, mine, ref, ref_flat: dict) -> list[str]:
    """Causes no switch expresses, accepted when the residual has their exact shape."""
    if not isinstance(mine, (int, float)) or not isinstance(ref, (int, float)):
        return rule_causes(task, scenario, quantity) if task == "compression_values" else []
    if task == "compression_values":
        return [c for c in rule_causes(task, scenario, quantity) if c != "compression_baseline"]
    if ref == 0 and mine > 0 and quantity in ("capex_usd", "opex_maintenance_usd"):
        return ["missing_price"]
    if quantity == "water_liters" and mine > 0:
        pue = ref_flat.get((scenario, "pue"))
        if pue and abs(ref / mine / pue - 1) <= MATERIAL:
            return ["water_it_energy"]
    if quantity == "opex_maintenance_usd" and mine > 0:
        if abs(ref / mine / _multiplier(scenario) - 1) <= MATERIAL:
            return ["maintenance_basis"]
    return []


def _direct(task, scenario, quantity, ref_value, runs, ref_flat) -> tuple[list[str], list[str], float]:
    """(switch causes, signature causes, residual with every switch on)."""
    key = (scenario, quantity)
    causes = []
    for name, cause in TOGGLES[task].items():
        if relative(runs["as_is"].get(key), runs[f"only:{name}"].get(key)) > MATERIAL or \
                relative(runs["all"].get(key), runs[f"without:{name}"].get(key)) > MATERIAL:
            causes.append(cause)
    mine = runs["all"].get(key)
    residual = relative(mine, ref_value)
    signature = _signature(task, scenario, quantity, mine, ref_value, ref_flat) if residual > MATERIAL else []
    return causes, signature, residual


def attribute(task: str, scenario: str, quantity: str, ref_value, runs: dict, ref_flat: dict):
    """(causes, problem) for one differing row."""
    if quantity == "error":  # a call one side rejects: only a named rule explains it
        causes = rule_causes(task, scenario, quantity)
        return causes, None if causes else "one side raises and no rule names why"
    parts = COMPOSITES.get(quantity, ())
    if parts and all((scenario, p) in ref_flat for p in parts):
        causes = []
        for p in parts:
            c, sig, _ = _direct(task, scenario, p, ref_flat[(scenario, p)], runs, ref_flat)
            causes += [x for x in c + sig if x not in causes]
        return causes, None if causes else "its parts carry no cause"
    causes, signature, residual = _direct(task, scenario, quantity, ref_value, runs, ref_flat)
    problem = None
    if residual > 0.05 and not signature:
        problem = (f"with every reference convention this project gives {runs['all'].get((scenario, quantity))} "
                   f"against {ref_value}, and no signature explains the rest")
    causes += [c for c in signature if c not in causes]
    if not causes and problem is None:
        problem = "differs, but no convention switch moves it"
    return causes, problem
