"""Typed, frozen records: the supply side (hardware, nodes, fabrics, fleets, grids) and the demand
side (workloads).

Every physical field is a pint quantity. Records accept quantities, strings ("3.35 TB/s") or plain
numbers in the field's default unit, and reject wrong dimensions with the field's path in the
message. Records loaded from the registry also carry ``provenance``: field path -> source id.
"""
from __future__ import annotations

import numbers
from functools import lru_cache
from typing import Annotated, Any, Literal, Optional

import pint
from pydantic import (BaseModel, ConfigDict, Field, PlainSerializer, ValidationError, ValidationInfo,
                      field_validator, model_validator)
from pydantic.functional_validators import BeforeValidator

from .errors import InputError
from .units import as_quantity


def _quantity(unit: str, example: str):
    def coerce(value: Any, info: ValidationInfo) -> pint.Quantity:
        return as_quantity(value, unit, info.field_name or "value", example=example)

    return Annotated[pint.Quantity, BeforeValidator(coerce), PlainSerializer(lambda q: f"{q:~P}", return_type=str)]


FlopRate = _quantity("FLOP/s", "989 TFLOP/s")
Bytes = _quantity("byte", "80 GB")
Bandwidth = _quantity("byte/s", "3.35 TB/s")
Seconds = _quantity("s", "10 us")
Power = _quantity("W", "700 W")
Money = _quantity("USD", "25000 USD")
Flops = _quantity("FLOP", "16 GFLOP")
CarbonIntensity = _quantity("gCO2e/kWh", "429 gCO2e/kWh")
WaterIntensity = _quantity("L/kWh", "1.8 L/kWh")
EnergyPrice = _quantity("USD/kWh", "0.12 USD/kWh")
Carbon = _quantity("kgCO2e", "150 kgCO2e")

class _Strict(BaseModel):
    """Validation failures surface as this package's errors (InputError, UnitError, ...) with the
    field path, rather than pydantic's ValidationError."""

    def __init__(self, **data):
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise _as_input_error(type(self).__name__, exc) from None


def _as_input_error(owner: str, exc: ValidationError) -> Exception:
    """Every broken rule in ``exc`` as this package's errors: the one error, or InputErrors with all."""
    from .errors import InputErrors
    found = [err for entry in exc.errors() for err in _entry_errors(owner, entry)]
    return found[0] if len(found) == 1 else InputErrors(found)


def _entry_errors(owner: str, entry: dict) -> list[Exception]:
    from .errors import MISSING, MlsysimError
    path = ".".join(str(p) for p in entry.get("loc", ()))
    original = (entry.get("ctx") or {}).get("error")
    if isinstance(original, MlsysimError):
        # a sub-record's errors name fields relative to it: say where the sub-record sits
        inner = original.errors if isinstance(original, InputError) else [original]
        for err in inner:
            if path and isinstance(err, InputError) and not err.field.startswith(path):
                err.args = (f"{owner}.{path}: {err.args[0]}",)
        return inner
    where = f"{owner}.{path}" if path else owner
    if entry.get("type") == "missing":
        return [InputError(where, MISSING, "is required", f"pass {path}=... when building {owner}")]
    return [InputError(where, entry.get("input"), entry.get("msg", "is invalid"))]


PRECISION_BYTES: dict[str, float] = {
    "fp32": 4.0, "tf32": 4.0, "fp16": 2.0, "bf16": 2.0, "fp8": 1.0, "int8": 1.0, "fp4": 0.5, "int4": 0.5,
}
"""Storage width of one value in each precision (bytes)."""


class Record(_Strict):
    """Base of every registry record: frozen, hashable by type and name, provenance attached."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True, extra="forbid")

    name: str
    provenance: dict[str, str] = Field(default_factory=dict, repr=False)

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.name))

    def __eq__(self, other) -> bool:
        return type(other) is type(self) and self.model_dump() == other.model_dump()


def _must_be_positive(value, info):
    if value is not None and not value.magnitude > 0:
        raise InputError(info.field_name, f"{value:~P}", "must be > 0")
    return value


class ComputeCore(_Strict):
    """Compute side of an accelerator. ``peak_flops`` is the rate of ``peak_precision`` (dense)."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True, extra="forbid")

    peak_flops: FlopRate
    peak_precision: str = "fp16"
    precision_flops: dict[str, FlopRate] = Field(default_factory=dict)

    _positive = field_validator("peak_flops")(_must_be_positive)

    @field_validator("precision_flops", mode="before")
    @classmethod
    def _rates(cls, value):
        if value is None:
            return {}
        out = {}
        for key, rate in dict(value).items():
            k = str(key).lower()
            if k not in PRECISION_BYTES:
                from .errors import UnknownNameError
                raise UnknownNameError("precision in precision_flops", k, PRECISION_BYTES)
            out[k] = as_quantity(rate, "FLOP/s", f"precision_flops[{k!r}]", example="1979 TFLOP/s")
        return out

    @field_validator("peak_precision")
    @classmethod
    def _peak_precision(cls, value: str) -> str:
        v = value.lower()
        if v not in PRECISION_BYTES:
            from .errors import UnknownNameError
            raise UnknownNameError("precision", v, PRECISION_BYTES)
        return v

    def rates(self) -> dict[str, pint.Quantity]:
        """Every natively supported precision and its dense rate."""
        return {self.peak_precision: self.peak_flops, **self.precision_flops}


class MemoryHierarchy(_Strict):
    """Main memory (HBM/DRAM, or flash on an MCU) plus optional on-chip SRAM and flash tiers."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True, extra="forbid")

    capacity: Bytes
    bandwidth: Bandwidth
    sram_capacity: Optional[Bytes] = None
    sram_bandwidth: Optional[Bandwidth] = None
    flash_capacity: Optional[Bytes] = None
    flash_bandwidth: Optional[Bandwidth] = None

    _positive = field_validator("capacity", "bandwidth", "sram_capacity", "sram_bandwidth", "flash_capacity",
                                "flash_bandwidth")(_must_be_positive)


class HardwareNode(Record):
    """One accelerator (GPU, TPU, NPU, MCU...)."""

    release_year: Optional[int] = None
    category: str = "Custom"
    compute: ComputeCore
    memory: MemoryHierarchy
    tdp: Optional[Power] = None
    unit_cost: Optional[Money] = None
    dispatch_tax: Seconds = Field(default_factory=lambda: as_quantity("10 us", "s", "dispatch_tax"))
    host_link_bandwidth: Optional[Bandwidth] = None
    embodied_carbon: Optional[Carbon] = None

    @field_validator("release_year", mode="before")
    @classmethod
    def _year(cls, value):
        if value is None:
            return None
        if isinstance(value, pint.Quantity):
            value = value.magnitude
        year = int(value)
        if not 1970 <= year <= 2100:
            raise InputError("release_year", value, "must be a calendar year between 1970 and 2100")
        return year


@lru_cache(maxsize=None)
def _flop_per_param() -> float:
    """The roofline sheet's forward FLOP per parameter per token (imported on first use: records load
    without the equation sheets)."""
    from .models.roofline import FLOP_PER_PARAM
    from .symbolic import constants
    return constants()[FLOP_PER_PARAM]


class Workload(Record):
    """Demand side: what one unit of work costs (per token for language models, per input otherwise)."""

    family: Literal["transformer", "cnn", "mlp"] = "transformer"
    category: str = "Custom"
    parameters: float
    inference_flops: Optional[Flops] = None
    layers: Optional[int] = None

    @field_validator("parameters", mode="before")
    @classmethod
    def _count(cls, value):
        if isinstance(value, pint.Quantity):
            value = value.to("").magnitude
        if value is None or float(value) <= 0:
            raise InputError("parameters", value, "must be a positive count")
        return float(value)

    def flops_per_unit(self) -> float:
        """FLOP per token (language models) or per input (vision, audio), as a float: the model card's
        figure, else the roofline sheet's ``FLOP_PER_PARAM`` per active parameter."""
        if self.inference_flops is not None:
            return float(self.inference_flops.to("FLOP").magnitude)
        return _flop_per_param() * self.active_parameters_count()

    def active_parameters_count(self) -> float:
        return self.parameters


class TransformerWorkload(Workload):
    """Decoder (or encoder) transformer. GQA/MQA: ``kv_heads`` < ``heads``."""

    family: Literal["transformer"] = "transformer"
    hidden_size: int
    heads: int
    kv_heads: Optional[int] = None
    head_dim: Optional[int] = None
    vocab_size: Optional[int] = None
    context_length: Optional[int] = None
    active_parameters: Optional[float] = None
    experts: Optional[int] = None
    experts_per_token: Optional[int] = None
    training_tokens: Optional[float] = None

    @model_validator(mode="after")
    def _shape(self):
        if self.layers is None or self.layers < 1:
            raise InputError(f"{self.name}.layers", self.layers, "must be a positive integer for a transformer")
        kv = self.kv_heads if self.kv_heads is not None else self.heads
        if kv < 1 or self.heads % kv:
            raise InputError(f"{self.name}.kv_heads", kv, f"must divide heads ({self.heads})")
        return self

    @property
    def n_kv_heads(self) -> int:
        return self.kv_heads if self.kv_heads is not None else self.heads

    @property
    def d_head(self) -> int:
        return self.head_dim if self.head_dim is not None else self.hidden_size // self.heads

    def active_parameters_count(self) -> float:
        return self.active_parameters if self.active_parameters is not None else self.parameters


class CNNWorkload(Workload):
    """Convolutional (or small MLP) network; work is counted per input."""

    family: Literal["cnn", "mlp"] = "cnn"
    activation_elements: Optional[float] = None
    """Elements of all intermediate feature maps for one input (each written once and read once)."""
    peak_activation_bytes: Optional[Bytes] = None
    """Largest live activation working set at int8 (the MCU SRAM arena)."""
    input_shape: Optional[list[int]] = None


class NetworkFabric(Record):
    """Inter-node network: one-way bandwidth per accelerator port and one-hop latency.

    ``oversubscription`` is the fat tree's taper (2 means each port gets half its line rate when
    every port sends at once); ``effective_bandwidth`` divides by it."""

    bandwidth: Bandwidth
    latency: Seconds
    oversubscription: float = 1.0

    @field_validator("bandwidth")
    @classmethod
    def _bandwidth(cls, value: pint.Quantity) -> pint.Quantity:
        return _positive_quantity(value, "bandwidth", "a port's one-way rate, e.g. '400 Gbps'")

    @field_validator("latency")
    @classmethod
    def _latency(cls, value: pint.Quantity) -> pint.Quantity:
        return _nonnegative_quantity(value, "latency")

    @field_validator("oversubscription")
    @classmethod
    def _oversubscription(cls, value: float) -> float:
        if not value >= 1.0:
            raise InputError("oversubscription", value, "must be >= 1 (1 = non-blocking)")
        return value

    @property
    def effective_bandwidth(self) -> pint.Quantity:
        return self.bandwidth / self.oversubscription


class Node(Record):
    """A server: accelerators, their intra-node fabric and the whole node's power."""

    accelerator: HardwareNode
    accelerators_per_node: int = 8
    intra_node_bandwidth: Bandwidth
    """One-way per-accelerator bandwidth of the intra-node fabric (NVLink 4: 450 GB/s)."""
    intra_node_latency: Seconds = Field(default_factory=lambda: as_quantity("0.5 us", "s", "intra_node_latency"))
    node_power: Optional[Power] = None
    """Maximum power of the whole node (accelerators, CPUs, NICs, fans, conversion)."""
    unit_cost: Optional[Money] = None
    nics: Optional[int] = None

    @field_validator("accelerators_per_node", mode="before")
    @classmethod
    def _positive(cls, value) -> int:
        return _whole_count(value, "accelerators_per_node", "accelerators")

    @field_validator("intra_node_bandwidth")
    @classmethod
    def _intra_bandwidth(cls, value: pint.Quantity) -> pint.Quantity:
        return _positive_quantity(value, "intra_node_bandwidth", "one GPU's one-way NVLink rate, e.g. '450 GB/s'")

    @field_validator("intra_node_latency")
    @classmethod
    def _intra_latency(cls, value: pint.Quantity) -> pint.Quantity:
        return _nonnegative_quantity(value, "intra_node_latency")

    @field_validator("node_power")
    @classmethod
    def _node_power(cls, value: Optional[pint.Quantity]) -> Optional[pint.Quantity]:
        return None if value is None else _positive_quantity(value, "node_power", "e.g. '10.2 kW'")

    def whole_node_power(self) -> pint.Quantity:
        """Node power at full load; estimated from accelerator TDP when the datasheet value is absent."""
        if self.node_power is not None:
            return self.node_power
        if self.accelerator.tdp is None:
            raise InputError(f"{self.name}.node_power", None, "is unknown and the accelerator has no TDP",
                             "set node_power on the node")
        return self.accelerator.tdp * self.accelerators_per_node * NODE_POWER_OVER_ACCELERATORS


def _whole_count(value, field: str, what: str) -> int:
    import numbers
    if isinstance(value, pint.Quantity):
        value = value.to("").magnitude
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not float(value).is_integer():
        raise InputError(field, value, f"must be a whole number of {what}", "pass an integer >= 1")
    if value < 1:
        raise InputError(field, value, f"must be >= 1 ({what})")
    return int(value)


def _positive_quantity(value: pint.Quantity, field: str, example: str) -> pint.Quantity:
    if not value.magnitude > 0:
        raise InputError(field, f"{value:~P}", "must be > 0", example)
    return value


def _nonnegative_quantity(value: pint.Quantity, field: str) -> pint.Quantity:
    if not value.magnitude >= 0:
        raise InputError(field, f"{value:~P}", "must be >= 0")
    return value


NODE_POWER_OVER_ACCELERATORS = 10.2 / 5.6
"""Whole-node power over accelerator TDP sum when no node datasheet exists: DGX H100 draws 10.2 kW
at most for 8 x 700 W of GPUs (NVIDIA DGX H100 datasheet). An estimate for other 8-way servers."""


class GridProfile(Record):
    """An electricity grid: carbon intensity, typical facility PUE and WUE, electricity price."""

    carbon_intensity: CarbonIntensity
    pue: float = 1.12
    wue: WaterIntensity = Field(default_factory=lambda: as_quantity("1.8 L/kWh", "L/kWh", "wue"))
    electricity_price: Optional[EnergyPrice] = None
    source_mix: Optional[str] = None

    @field_validator("pue")
    @classmethod
    def _pue(cls, value: float) -> float:
        if not value >= 1.0:
            raise InputError("pue", value, "must be >= 1.0 (facility energy over IT energy)")
        return value


class Datacenter(Record):
    """A facility on a grid; its own PUE, WUE and price override the grid's when given."""

    grid: GridProfile
    pue: Optional[float] = None
    wue: Optional[WaterIntensity] = None
    electricity_price: Optional[EnergyPrice] = None

    @property
    def effective_pue(self) -> float:
        return self.pue if self.pue is not None else self.grid.pue

    @property
    def effective_wue(self) -> pint.Quantity:
        return self.wue if self.wue is not None else self.grid.wue

    @property
    def effective_price(self) -> Optional[pint.Quantity]:
        return self.electricity_price if self.electricity_price is not None else self.grid.electricity_price

    @property
    def carbon_intensity(self) -> pint.Quantity:
        return self.grid.carbon_intensity


class Fleet(Record):
    """``count`` nodes joined by ``fabric``.

    Two forms: ``Fleet(name, node, count, fabric, region=None, datacenter=None)`` (positional or
    keyword) and ``Fleet(name, hardware=H100, count=64)`` (also ``hw=``), which builds a default
    8-accelerator server of that hardware (as the afternoon deck's vendor shoot-out does: 64 nodes
    = 512 accelerators) on InfiniBand NDR. ``accelerators_per_node=1`` gives a fleet of bare
    accelerators. ``count`` is the number of NODES.
    """

    node: Node
    count: int
    fabric: NetworkFabric
    region: Optional[GridProfile] = None
    datacenter: Optional[Datacenter] = None

    def __init__(self, *args, **data):
        names = ("name", "node", "count", "fabric", "region", "datacenter")
        if len(args) > len(names):
            raise InputError("Fleet", args, f"takes at most {len(names)} positional arguments ({', '.join(names)})")
        for key, value in zip(names, args):
            if key in data:
                raise InputError(key, value, "is given both by position and by keyword")
            data[key] = value
        super().__init__(**data)

    @field_validator("count", mode="before")
    @classmethod
    def _count(cls, value) -> int:
        if isinstance(value, numbers.Real) and not isinstance(value, bool) and value < 1:
            raise InputError("count", value, "must be >= 1 node", "a fleet needs at least one node")
        return _whole_count(value, "count", "nodes")

    @model_validator(mode="before")
    @classmethod
    def _hardware_form(cls, data):
        if not isinstance(data, dict):
            return data
        data = dict(data)
        hw = data.pop("hardware", None) or data.pop("hw", None)
        if hw is None and isinstance(data.get("node"), HardwareNode):  # Fleet("x", Hardware.H100, 64)
            hw = data.pop("node")
        per_node = data.pop("accelerators_per_node", None)
        if hw is not None and data.get("node") is None:
            if not isinstance(hw, HardwareNode):
                raise InputError("hardware", hw, "must be a HardwareNode (e.g. Hardware.H100)")
            from .catalog import default_node_for
            data["node"] = default_node_for(hw, per_node or 8)
        elif per_node is not None:
            raise InputError("accelerators_per_node", per_node, "only applies with hardware=",
                             "set accelerators_per_node on the Node instead")
        if data.get("fabric") is None:
            from .catalog import default_fabric
            data["fabric"] = default_fabric()
        return data

    @property
    def total_accelerators(self) -> int:
        return self.node.accelerators_per_node * self.count

    @property
    def accelerator(self) -> HardwareNode:
        return self.node.accelerator


# Public names for modules outside this one (formulations, service): the same classes.
StrictModel = _Strict
"""A pydantic model whose validation failures raise InputError(s) naming each field."""
as_input_error = _as_input_error
