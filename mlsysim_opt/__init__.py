"""mlsysim_opt: first-principles analytical models of ML systems (the "22 walls"), written once as
symbolic equations and compiled to forward evaluators and to exact MILP formulations.

Quick start::

    from mlsysim_opt import Engine, Hardware, Models
    p = Engine.solve(Models.Llama3_8B, Hardware.H100, batch_size=1, precision="fp16")
    print(p.latency.to("ms"), p.bottleneck)
"""
from .units import (Q_, ureg, FLOP, KFLOPs, MFLOPs, GFLOPs, TFLOPs, PFLOPs, EFLOPs, OPS, TOPS, byte, bit,
                    KB, MB, GB, TB, PB, KiB, MiB, GiB, TiB, second, ms, us, ns, minute, hour, day,
                    watt, W, kW, MW, mW, joule, J, kWh, MWh, Gbps, USD, token)
from .errors import (InputError, InputErrors, MlsysimError, ModelDefinitionError, SolverError, UnitError,
                     UnknownNameError, UnsupportedExpressionError)
from .types import (CNNWorkload, ComputeCore, Datacenter, Fleet, GridProfile, HardwareNode, MemoryHierarchy,
                    NetworkFabric, Node, TransformerWorkload, Workload)
from .catalog import (Clusters, Datacenters, Fabrics, Grids, Hardware, Infra, Literature, Models, Nodes, Scenarios,
                      Sources, Systems,
                      audit_provenance, load_registry, register)
from .precision import PrecisionFallbackWarning
from .results import PerformanceProfile
from .engine import Engine
from .hf_import import from_hf_config, load_model
from .solvers.serving import ServingModel, ServingResult
from .solvers.loaded import LoadedReplicaModel, LoadedReplicaResult
from .solvers.batching import (BatchingOptimizer, BatchingResult, ContinuousBatchingModel, ContinuousBatchingResult,
                               TailLatencyModel, TailLatencyResult)
from .solvers.compression import CompressionModel, CompressionResult
from .calibrate import CalibrationResult, Measurement, calibrate
from .solvers.sensitivity import SensitivityResult, SensitivitySolver
from .solvers.synthesis import SynthesisCandidate, SynthesisResult, SynthesisSolver
from .expressions import ExpressionError, PathError
from .dse import DSE, DSEResult, InfeasibleSpaceError, optimize
from .dse_optuna import Range
from .pipeline import Pipeline, PipelineExplanation, PipelineInputError
from .solvers.scaling import ScalingModel, ScalingResult
from .solvers.economics import EconomicsModel, EconomicsResult
from .solvers.sustainability import SustainabilityModel, SustainabilityResult
from .solvers.reliability import CheckpointModel, CheckpointResult, ReliabilityModel, ReliabilityResult
from .solvers.walls import (InferenceScalingModel, InferenceScalingResult, IngestionModel, IngestionResult,
                            MultiTenantModel, MultiTenantResult, PrivacyModel, PrivacyResult, TenantWait,
                            TopologyModel, TopologyResult, TransformationModel, TransformationResult,
                            WeightStreamingModel, WeightStreamingResult)
from .solvers.distributed import DistributedModel, DistributedResult
from .solvers.parallelism import ParallelismOptimizer, ParallelismResult

# The MILP side (Pyomo and HiGHS) is imported on first use: Pyomo alone takes longer to import than
# everything above, and a forward solve, a sweep or the CLI's `solve` never needs it.
_LAZY = {
    "formulations.fleet_sizing": ("Candidate", "FleetSizingResult", "size_fleet"),
    "formulations.sla_synthesis": ("SLASynthesisResult", "synthesize"),
    "formulations.capstone": ("CapstoneProblem", "CapstoneResult", "precision_effect", "solve_capstone"),
    "formulations.pareto": ("ParetoFront", "pareto_front", "plot_front"),
    "grading": ("GradeReport", "Grader"),
    "highs": ("SolveResult", "SolveStatus"),
}
_LAZY_HOME = {name: module for module, names in _LAZY.items() for name in names}


def __getattr__(name: str):
    module = _LAZY_HOME.get(name)
    if module is None:
        raise AttributeError(f"module 'mlsysim_opt' has no attribute {name!r}")
    import importlib
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value   # later look-ups skip this function
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY_HOME))

Infrastructure = Infra
SingleNodeModel = Engine

__version__ = "0.1.0"

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

from . import compat  # noqa: E402,F401  (the tutorial's deep import paths, mlsysim_opt/compat.py)
