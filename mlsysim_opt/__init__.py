"""mlsysim_opt: first-principles analytical models of ML systems (the "22 walls"), written once as
symbolic equations and compiled to forward evaluators and to exact MILP formulations.

Quick start::

    from mlsysim_opt import Engine, Hardware, Models
    p = Engine.solve(Models.Llama3_8B, Hardware.H100, batch_size=1, precision="fp16")
    print(p.latency.to("ms"), p.bottleneck)
"""
import importlib
import importlib.util
import sys
from types import ModuleType

__version__ = "0.1.0"

# Every public name is imported on first use (PEP 562): the unit registry, SymPy, Pyomo and pandas
# take seconds to load, and `import mlsysim_opt` or `mlsysim-opt --help` needs none of them.
# Home module (relative to this package) -> the names it exports here.
_EXPORTS_BY_MODULE: dict[str, tuple[str, ...]] = {
    "units": ("Q_", "ureg", "FLOP", "KFLOPs", "MFLOPs", "GFLOPs", "TFLOPs", "PFLOPs", "EFLOPs", "OPS", "TOPS",
              "byte", "bit", "KB", "MB", "GB", "TB", "PB", "KiB", "MiB", "GiB", "TiB", "second", "ms", "us", "ns",
              "minute", "hour", "day", "watt", "W", "kW", "MW", "mW", "joule", "J", "kWh", "MWh", "Gbps", "USD",
              "token"),
    "errors": ("InputError", "InputErrors", "MlsysimError", "ModelDefinitionError", "SolverError", "UnitError",
               "UnknownNameError", "UnsupportedExpressionError"),
    "types": ("CNNWorkload", "ComputeCore", "Datacenter", "Fleet", "GridProfile", "HardwareNode", "MemoryHierarchy",
              "NetworkFabric", "Node", "TransformerWorkload", "Workload"),
    "catalog": ("Clusters", "Datacenters", "Fabrics", "Grids", "Hardware", "Infra", "Literature", "Models", "Nodes",
                "Scenarios", "Sources", "Systems", "audit_provenance", "load_registry", "register"),
    "precision": ("PrecisionFallbackWarning",),
    "results": ("PerformanceProfile",),
    "engine": ("Engine",),
    "hf_import": ("from_hf_config", "load_model"),
    "solvers.serving": ("ServingModel", "ServingResult"),
    "solvers.loaded": ("LoadedReplicaModel", "LoadedReplicaResult"),
    "solvers.batching": ("BatchingOptimizer", "BatchingResult", "ContinuousBatchingModel",
                         "ContinuousBatchingResult", "TailLatencyModel", "TailLatencyResult"),
    "solvers.compression": ("CompressionModel", "CompressionResult"),
    "calibrate": ("CalibrationResult", "Measurement", "calibrate"),
    "solvers.sensitivity": ("SensitivityResult", "SensitivitySolver"),
    "solvers.synthesis": ("SynthesisCandidate", "SynthesisResult", "SynthesisSolver"),
    "expressions": ("ExpressionError", "PathError"),
    "dse": ("DSE", "DSEResult", "InfeasibleSpaceError", "optimize"),
    "dse_optuna": ("Range",),
    "pipeline": ("Pipeline", "PipelineExplanation", "PipelineInputError"),
    "solvers.scaling": ("ScalingModel", "ScalingResult"),
    "solvers.economics": ("EconomicsModel", "EconomicsResult"),
    "solvers.sustainability": ("SustainabilityModel", "SustainabilityResult"),
    "solvers.reliability": ("CheckpointModel", "CheckpointResult", "ReliabilityModel", "ReliabilityResult"),
    "solvers.walls": ("InferenceScalingModel", "InferenceScalingResult", "IngestionModel", "IngestionResult",
                      "MultiTenantModel", "MultiTenantResult", "PrivacyModel", "PrivacyResult", "TenantWait",
                      "TopologyModel", "TopologyResult", "TransformationModel", "TransformationResult",
                      "WeightStreamingModel", "WeightStreamingResult"),
    "solvers.distributed": ("DistributedModel", "DistributedResult"),
    "solvers.parallelism": ("ParallelismOptimizer", "ParallelismResult"),
    "formulations.fleet_sizing": ("Candidate", "FleetSizingResult", "size_fleet"),
    "formulations.sla_synthesis": ("SLASynthesisResult", "synthesize"),
    "formulations.capstone": ("CapstoneProblem", "CapstoneResult", "precision_effect", "solve_capstone"),
    "formulations.pareto": ("ParetoFront", "pareto_front", "plot_front"),
    "grading": ("GradeReport", "Grader"),
    "highs": ("SolveResult", "SolveStatus"),
}
#: Second names of an export: alias -> (home module, name there).
_ALIASES = {"Infrastructure": ("catalog", "Infra"), "SingleNodeModel": ("engine", "Engine")}

#: Public name -> (home module, name there).
EXPORTS: dict[str, tuple[str, str]] = {
    **{name: (module, name) for module, names in _EXPORTS_BY_MODULE.items() for name in names},
    **_ALIASES,
}


def __getattr__(name: str):
    home = EXPORTS.get(name)
    if home is None:
        return _submodule(name)
    module, attribute = home
    value = getattr(importlib.import_module(f".{module}", __name__), attribute)
    globals()[name] = value   # later look-ups skip this function
    return value


def _submodule(name: str):
    """``mlsysim_opt.units`` and the like without an explicit import, as when they were loaded eagerly."""
    if name.startswith("__") or importlib.util.find_spec(f"{__name__}.{name}") is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return importlib.import_module(f".{name}", __name__)


def __dir__():
    return sorted(set(globals()) | set(EXPORTS))


class _Package(ModuleType):
    """Keeps an exported function bound over a submodule of the same name (``calibrate``).

    Importing a submodule binds it on its parent package; with the exports loaded lazily that
    import can come after the export, and would replace the function by its module."""

    def __setattr__(self, name, value):
        if isinstance(value, ModuleType) and EXPORTS.get(name, (None,))[0] == name:
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package

__all__ = [
    "Q_", "ureg", "Engine", "SingleNodeModel", "PerformanceProfile",
    "ServingModel", "ServingResult", "LoadedReplicaModel", "LoadedReplicaResult", "BatchingOptimizer", "BatchingResult", "ContinuousBatchingModel",
    "ContinuousBatchingResult", "TailLatencyModel", "TailLatencyResult", "CompressionModel", "CompressionResult",
    "calibrate", "Measurement", "CalibrationResult",
    "SensitivitySolver", "SensitivityResult", "SynthesisSolver", "SynthesisResult", "SynthesisCandidate",
    "DSE", "DSEResult", "InfeasibleSpaceError", "optimize", "Range", "Pipeline", "PipelineExplanation", "PipelineInputError",
    "ExpressionError", "PathError", "synthesize", "SLASynthesisResult", "size_fleet", "Candidate",
    "FleetSizingResult", "CapstoneProblem", "CapstoneResult", "solve_capstone", "precision_effect",
    "ParetoFront", "pareto_front", "plot_front", "Grader", "GradeReport", "SolveResult", "SolveStatus",
    "ScalingModel", "ScalingResult", "EconomicsModel", "EconomicsResult",
    "SustainabilityModel", "SustainabilityResult", "ReliabilityModel", "ReliabilityResult", "CheckpointModel",
    "CheckpointResult", "IngestionModel", "IngestionResult", "TransformationModel", "TransformationResult",
    "TopologyModel", "TopologyResult", "WeightStreamingModel", "WeightStreamingResult", "InferenceScalingModel",
    "InferenceScalingResult", "MultiTenantModel", "MultiTenantResult", "TenantWait", "PrivacyModel",
    "PrivacyResult", "DistributedModel", "DistributedResult", "ParallelismOptimizer", "ParallelismResult",
    "from_hf_config", "load_model", "Literature", "Scenarios",
    "Hardware", "Models", "Systems", "Infra", "Infrastructure", "Nodes", "Fabrics", "Clusters", "Grids",
    "Datacenters", "Sources", "audit_provenance", "load_registry", "register",
    "HardwareNode", "ComputeCore", "MemoryHierarchy", "Workload", "TransformerWorkload", "CNNWorkload",
    "Node", "NetworkFabric", "Fleet", "GridProfile", "Datacenter",
    "MlsysimError", "InputError", "InputErrors", "UnitError", "UnknownNameError", "ModelDefinitionError",
    "UnsupportedExpressionError", "SolverError", "PrecisionFallbackWarning",
    "FLOP", "KFLOPs", "MFLOPs", "GFLOPs", "TFLOPs", "PFLOPs", "EFLOPs", "OPS", "TOPS", "byte", "bit",
    "KB", "MB", "GB", "TB", "PB", "KiB", "MiB", "GiB", "TiB", "second", "ms", "us", "ns", "minute", "hour",
    "day", "watt", "W", "kW", "MW", "mW", "joule", "J", "kWh", "MWh", "Gbps", "USD", "token",
]

# An import hook only, which loads nothing: the tutorial's deep import paths (mlsysim_opt/compat.py).
from . import compat  # noqa: E402

compat.install()
