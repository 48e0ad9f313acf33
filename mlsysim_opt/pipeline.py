"""Pipeline: chain solvers so each stage's result fields feed the stages after it.

``Pipeline([ScalingModel(), DistributedModel(), EconomicsModel()]).run(**inputs)`` calls each stage's
``solve`` with the keyword values whose names match its signature, taken from ``inputs`` and from
the fields of earlier results. ``model`` and ``workload`` are aliases of each other. Values given to
``run`` always win over stage outputs of the same name; a later stage's output replaces an earlier
one. A result may also hand derived values to later stages through a ``pipeline_outputs()`` method
returning a dict (for example a workload built from an optimal parameter count).

``explain()`` describes the plan without running it: each stage's inputs (and where each comes
from), outputs, the walls it covers, and the inputs still missing.
"""
from __future__ import annotations

import inspect
import typing
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from .errors import InputError

ALIASES: dict[str, tuple[str, ...]] = {"model": ("workload",), "workload": ("model",)}

WALLS: dict[int, str] = {
    1: "Compute", 2: "Memory", 3: "Software (MFU)", 4: "Serving", 5: "Batching (KV)", 6: "Streaming",
    7: "Tail Latency", 8: "Ingestion", 9: "Transformation", 10: "Locality", 11: "Complexity",
    12: "Reasoning", 13: "Fidelity (Compression)", 14: "Communication", 15: "Fragility (Reliability)",
    16: "Multi-tenant (Queueing)", 17: "Capital (TCO)", 18: "Sustainability", 19: "Checkpoint",
    20: "Safety (Privacy)", 21: "Sensitivity", 22: "Synthesis (Inverse)",
}
"""The tutorial's 22 walls (afternoon deck, 'The 22 Walls of ML Systems')."""

KNOWN_WALLS: dict[str, tuple[int, ...]] = {"Engine": (1, 2, 3), "SingleNodeModel": (1, 2, 3)}
"""Walls of stages that do not declare a ``walls`` attribute themselves."""


class PipelineInputError(InputError):
    """A stage needs a value that neither ``run`` nor an earlier stage supplies."""

    def __init__(self, stage: str, missing: list[str], rule: str, fix: str):
        super().__init__(stage, ", ".join(missing), rule, fix)
        self.stage, self.missing = stage, list(missing)
        self.args = (f"{stage} {rule}. {fix}",)

    def __str__(self) -> str:
        return self.args[0]


@dataclass
class StagePlan:
    name: str
    walls: tuple[int, ...]
    required: list[str]
    optional: list[str]
    outputs: list[str]
    sources: dict[str, str]          # input -> "run()" or the stage that supplies it
    missing: list[str]
    hints: dict[str, str] = field(default_factory=dict)   # missing input -> how to supply it


@dataclass
class PipelineExplanation:
    """What a pipeline will do; ``str()`` gives a readable report."""

    stages: list[StagePlan]
    given: list[str]

    @property
    def missing(self) -> dict[str, list[str]]:
        return {s.name: list(s.missing) for s in self.stages if s.missing}

    @property
    def walls(self) -> list[int]:
        return sorted({w for s in self.stages for w in s.walls})

    @property
    def ready(self) -> bool:
        return not self.missing

    def __str__(self) -> str:
        lines = [f"Pipeline of {len(self.stages)} stage(s): " + " -> ".join(s.name for s in self.stages)]
        for i, s in enumerate(self.stages, 1):
            walls = ", ".join(f"{w} {WALLS.get(w, '?')}" for w in s.walls) or "not declared"
            lines.append(f"[{i}] {s.name}  (walls: {walls})")
            needs = [f"{p} <- {s.sources[p]}" if p in s.sources else f"{p} <- MISSING" for p in s.required]
            lines.append("    requires: " + (", ".join(needs) or "(nothing)"))
            used = [f"{p} <- {s.sources[p]}" for p in s.optional if p in s.sources]
            if used:
                lines.append("    optional, supplied: " + ", ".join(used))
            lines.append("    produces: " + (", ".join(s.outputs) or "(unknown until it runs)"))
            for p in s.missing:
                lines.append(f"    missing {p}: {s.hints.get(p, 'pass it to run()')}")
        covered = ", ".join(f"{w} {WALLS.get(w, '?')}" for w in self.walls) or "none declared"
        lines.append(f"Walls covered: {covered}")
        lines.append("Ready to run." if self.ready else
                     "Gaps: " + "; ".join(f"{k} needs {', '.join(v)}" for k, v in self.missing.items()))
        return "\n".join(lines)

    __repr__ = __str__


class Pipeline:
    """Run solver stages in order, each fed by the inputs and the results before it."""

    def __init__(self, stages):
        if isinstance(stages, (str, bytes)) or not hasattr(stages, "__iter__"):
            raise InputError("stages", stages, "must be a list of solver objects",
                             "e.g. Pipeline([ScalingModel(), DistributedModel(), EconomicsModel()])")
        items = list(stages)
        if not items:
            raise InputError("stages", items, "is empty", "give at least one solver")
        self.stages = []
        for i, stage in enumerate(items):
            if isinstance(stage, type):
                stage = stage()
            if not callable(getattr(stage, "solve", None)):
                raise InputError(f"stages[{i}]", stage, "has no solve() method",
                                 "pass solver objects such as Engine() or EconomicsModel()")
            self.stages.append(stage)
        self.names = _stage_names(self.stages)

    # --------------------------------------------------------------------------------------------
    def run(self, **inputs) -> dict[str, Any]:
        """Run every stage; returns ``{stage class name: result}`` in stage order."""
        namespace: dict[str, Any] = dict(inputs)
        explicit = set(inputs) | {a for k in inputs for a in ALIASES.get(k, ())}
        results: dict[str, Any] = {}
        for index, (stage, name) in enumerate(zip(self.stages, self.names)):
            signature = _signature(stage)
            kwargs, missing = {}, []
            for p in _named_parameters(signature):
                key = _lookup(p.name, namespace)
                if key is not None:
                    kwargs[p.name] = namespace[key]
                elif p.default is inspect.Parameter.empty:
                    missing.append(p.name)
            if missing:
                raise self._missing_error(index, name, missing, inputs)
            if _takes_var_keyword(signature):   # **kwargs: hand over the remaining run() inputs
                kwargs.update({k: inputs[k] for k in inputs if k not in kwargs})
            try:
                result = stage.solve(**kwargs)
            except Exception as exc:
                exc.add_note(f"raised in Pipeline stage {index + 1} ({name})")
                raise
            results[name] = result
            for key, value in _outputs_of(result).items():
                if key not in explicit:
                    namespace[key] = value
        return results

    # --------------------------------------------------------------------------------------------
    def explain(self, **inputs) -> PipelineExplanation:
        """The plan: per stage the inputs (and their sources), outputs, walls and missing inputs.
        Pass the keyword arguments you intend to give ``run`` to see what is still missing."""
        sources_so_far = {k: "run()" for k in inputs}
        plans = []
        for index, (stage, name) in enumerate(zip(self.stages, self.names)):
            signature = _signature(stage)
            params = _named_parameters(signature)
            required = [p.name for p in params if p.default is inspect.Parameter.empty]
            optional = [p.name for p in params if p.default is not inspect.Parameter.empty]
            sources, missing, hints = {}, [], {}
            for p in required + optional:
                key = _lookup(p, sources_so_far)
                if key is not None:
                    sources[p] = sources_so_far[key]
                elif p in required:
                    missing.append(p)
                    hints[p] = self._hint(index, p)
            outputs = declared_outputs(stage)
            plans.append(StagePlan(name, stage_walls(stage), required, optional, outputs, sources, missing, hints))
            for o in outputs:
                if sources_so_far.get(o) != "run()":
                    sources_so_far[o] = name
        return PipelineExplanation(plans, sorted(inputs))

    # --------------------------------------------------------------------------------------------
    def _hint(self, index: int, param: str) -> str:
        later = [n for s, n in list(zip(self.stages, self.names))[index + 1:] if _produces(s, param)]
        if later:
            return f"produced by {', '.join(later)}, which runs later: move it before this stage or pass {param}= to run()"
        return f"no stage produces it: pass {param}= to run()"

    def _missing_error(self, index: int, name: str, missing: list[str], given) -> PipelineInputError:
        hints = [f"{p}: {self._hint(index, p)}" for p in missing]
        earlier = ", ".join(self.names[:index]) or "none"
        return PipelineInputError(
            f"Pipeline stage {index + 1} ({name})", missing,
            f"needs {', '.join(missing)}, which neither run() (given: {', '.join(sorted(given)) or 'nothing'})"
            f" nor an earlier stage (ran: {earlier}) supplied",
            "; ".join(hints))


# ------------------------------------------------------------------------------------------------
# Stage introspection


def _stage_names(stages) -> list[str]:
    names, seen = [], {}
    for s in stages:
        base = type(s).__name__
        seen[base] = seen.get(base, 0) + 1
        names.append(base if seen[base] == 1 else f"{base}_{seen[base]}")
    return names


def _signature(stage) -> inspect.Signature:
    return inspect.signature(stage.solve)


def _named_parameters(signature: inspect.Signature) -> list[inspect.Parameter]:
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return [p for p in signature.parameters.values() if p.kind in kinds and p.name != "self"]


def _takes_var_keyword(signature: inspect.Signature) -> bool:
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.parameters.values())


def _lookup(name: str, namespace: dict) -> str | None:
    if name in namespace:
        return name
    for alias in ALIASES.get(name, ()):
        if alias in namespace:
            return alias
    return None


def stage_walls(stage) -> tuple[int, ...]:
    walls = getattr(stage, "walls", None)
    if walls is None:
        walls = KNOWN_WALLS.get(type(stage).__name__, ())
    return tuple(int(w) for w in walls)


def declared_outputs(stage) -> list[str]:
    """Fields the stage's result will have: an ``outputs`` attribute, else the fields of the result
    class named in ``solve``'s return annotation."""
    explicit = getattr(stage, "outputs", None)
    if explicit is not None:
        return list(explicit)
    try:
        hints = typing.get_type_hints(stage.solve)
    except Exception:
        return []
    ret = hints.get("return")
    if isinstance(ret, type) and issubclass(ret, BaseModel):
        return list(ret.model_fields)
    return []


def _produces(stage, param: str) -> bool:
    outs = declared_outputs(stage)
    return param in outs or any(a in outs for a in ALIASES.get(param, ()))


def _outputs_of(result) -> dict[str, Any]:
    """The values a result hands to later stages: its fields, plus ``pipeline_outputs()`` if any."""
    if isinstance(result, dict):
        out = {str(k): v for k, v in result.items()}
    elif isinstance(result, BaseModel):
        out = {k: getattr(result, k) for k in type(result).model_fields}
    else:
        out = {k: v for k, v in vars(result).items() if not k.startswith("_")} if hasattr(result, "__dict__") else {}
    extra = getattr(result, "pipeline_outputs", None)
    if callable(extra):
        out.update(extra())
    return out


__all__ = ["Pipeline", "PipelineExplanation", "PipelineInputError", "StagePlan", "WALLS"]
