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


PRICE_COVERS = ("accelerator", "node", "cloud_hour")
"""What a price covers: one accelerator, a whole node (a server with its host CPUs, memory and NICs),
or one accelerator-hour of cloud capacity (power, facility and maintenance included)."""
PriceCovers = Literal["accelerator", "node", "cloud_hour"]
HardwarePriceCovers = Literal["accelerator", "node"]


class HardwareNode(Record):
    """One accelerator (GPU, TPU, NPU, MCU...)."""

    release_year: Optional[int] = None
    category: str = "Custom"
    compute: ComputeCore
    memory: MemoryHierarchy
    tdp: Optional[Power] = None
    idle_power: Optional[Power] = None
    """Measured power when idle (no kernels running); None: estimated from TDP (solvers/sustainability.py)."""
    unit_cost: Optional[Money] = None
    unit_cost_covers: HardwarePriceCovers = "accelerator"
    """What ``unit_cost`` buys: one "accelerator" (a datacenter part that still needs a host server)
    or a whole "node" (an edge board or MCU module, which is its own host)."""
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


AttentionKind = Literal["mha", "gqa", "mqa", "mla"]
"""Attention variants: multi-head, grouped-query, multi-query, multi-head latent (DeepSeek-V2/V3)."""

_MLA_FIELDS = ("kv_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim")
"""Fields multi-head latent attention needs (``q_lora_rank`` is optional: None = no query compression)."""

_MOE_ONLY = ("shared_experts", "expert_ffn_size", "first_dense_layers", "moe_layer_step", "router_bias")
"""Fields that describe the mixture-of-experts layers and so need ``experts``."""


def _mlp_parameters(hidden: int, ffn: int, gated: bool, bias: bool) -> int:
    """One MLP block: gated (SwiGLU/GEGLU: gate, up, down) or plain (up, down), with optional biases."""
    matrices = 3 if gated else 2
    biases = ((2 if gated else 1) * ffn + hidden) if bias else 0
    return matrices * hidden * ffn + biases


class TransformerWorkload(Workload):
    """Decoder (or encoder) transformer, dense or mixture-of-experts (MoE).

    Attention is multi-head (``kv_heads == heads``), grouped-query (fewer KV heads), multi-query (one)
    or multi-head latent (``attention="mla"``, DeepSeek-V2/V3), given by ``attention`` or inferred.

    A MoE model sets ``experts`` (routed experts per MoE layer) and ``experts_per_token`` (top-k).
    Layer ``i`` (0-based) is a MoE layer iff ``i >= first_dense_layers`` and
    ``(i - first_dense_layers + 1) % moe_layer_step == 0``: step 1 makes every layer after the
    leading dense ones MoE (DeepSeek-V3's ``first_k_dense_replace = 3``: layers 3..60), step 2 makes
    layers 1, 3, 5, ... MoE (Llama 4 Maverick: Hugging Face builds ``moe_layers`` as
    ``range(step - 1, layers, step)``, the same set). The other layers have a dense MLP of
    ``ffn_size``; each MoE layer has ``experts`` routed experts and ``shared_experts`` always-active
    experts, all of width ``expert_ffn_size``, plus a router (``hidden_size x experts``).

    ``parameters`` and ``active_parameters`` are the published figures when given; when absent and
    the architecture is complete they are derived by :meth:`architecture_parameters`.
    """

    family: Literal["transformer"] = "transformer"
    parameters: Optional[float] = None
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
    # mixture of experts
    shared_experts: Optional[int] = None
    """Always-active experts per MoE layer, each of ``expert_ffn_size`` (DeepSeek ``n_shared_experts``,
    Llama 4's shared expert); 0 or None: none."""
    ffn_size: Optional[int] = None
    """Intermediate width of the dense MLP layers (HF ``intermediate_size``; Llama 4: ``intermediate_size_mlp``)."""
    expert_ffn_size: Optional[int] = None
    """Intermediate width of one routed expert (HF ``moe_intermediate_size``; Mixtral, Llama 4, gpt-oss:
    ``intermediate_size``)."""
    first_dense_layers: int = 0
    """Leading layers with a dense MLP (DeepSeek ``first_k_dense_replace``)."""
    moe_layer_step: int = 1
    """After the leading dense layers every ``moe_layer_step``-th layer is MoE (Llama 4 ``interleave_moe_layer_step``)."""
    # attention
    attention: Optional[AttentionKind] = None
    """One of "mha", "gqa", "mqa", "mla"; None: inferred (see ``attention_kind``)."""
    kv_lora_rank: Optional[int] = None
    """MLA: width of the compressed key/value latent (DeepSeek-V3: 512)."""
    q_lora_rank: Optional[int] = None
    """MLA: width of the compressed query latent; None: queries are projected directly."""
    qk_nope_head_dim: Optional[int] = None
    """MLA: per-head query/key width without rotary embedding."""
    qk_rope_head_dim: Optional[int] = None
    """MLA: per-head query/key width that carries the rotary embedding (the key part is shared by all heads)."""
    v_head_dim: Optional[int] = None
    """MLA: per-head value width."""
    # weights that change the count
    tie_word_embeddings: bool = False
    """The output projection reuses the input embedding table."""
    gated_ffn: bool = True
    """SwiGLU/GEGLU MLPs (3 matrices); False: 2 matrices (GPT-2, BERT)."""
    attention_bias: bool = False
    """Biases on the q, k, v and o projections (gpt-oss)."""
    mlp_bias: bool = False
    """Biases on every MLP matrix, dense, shared and routed experts (gpt-oss experts)."""
    router_bias: bool = False
    """One bias per routed expert per MoE layer (gpt-oss router; DeepSeek-V3 ``e_score_correction_bias``)."""
    attention_sinks: bool = False
    """One learned attention-sink logit per head per layer (gpt-oss)."""
    qk_norm: bool = False
    """Learned RMSNorm on queries and keys, ``head_dim`` weights each per layer (Qwen3)."""
    qkv_bias: bool = False
    """Biases on the q, k and v projections only, none on o (Qwen2); ``attention_bias`` covers all four."""
    norm_bias: bool = False
    """LayerNorm with a bias as well as a weight (GPT-2, GPT-NeoX, BERT); False: RMSNorm, weight only."""
    norms_per_layer: int = 2
    """Norm weight vectors per layer: 2 (before attention and MLP); Gemma 2/3 add two post-norms: 4."""
    position_embeddings: int = 0
    """Rows of a learned absolute position table (GPT-2 ``n_positions``, BERT ``max_position_embeddings``);
    0: rotary or no learned positions."""
    type_vocab_size: int = 0
    """Rows of BERT's token-type (segment) embedding table; 0: none."""
    pooler: bool = False
    """An encoder pooler head, one ``hidden x hidden`` dense layer with bias (BERT)."""
    dtype: Optional[str] = None
    """Storage type of the released weights (config.json ``torch_dtype``: bfloat16, float16, float32)."""

    @field_validator("active_parameters", mode="before")
    @classmethod
    def _active_count(cls, value):
        if value is None:
            return None
        if isinstance(value, pint.Quantity):
            value = value.to("").magnitude
        if float(value) <= 0:
            raise InputError("active_parameters", value, "must be a positive count")
        return float(value)

    @model_validator(mode="after")
    def _shape(self):
        if self.layers is None or self.layers < 1:
            raise InputError(f"{self.name}.layers", self.layers, "must be a positive integer for a transformer")
        kv = self.kv_heads if self.kv_heads is not None else self.heads
        if kv < 1 or self.heads % kv:
            raise InputError(f"{self.name}.kv_heads", kv, f"must divide heads ({self.heads})")
        problems = self._architecture_problems()
        if problems:
            from .errors import InputErrors
            raise problems[0] if len(problems) == 1 else InputErrors(problems)
        self._derive_counts()
        return self

    def _architecture_problems(self) -> list[InputError]:
        """Every broken rule of the MoE, MLA and count fields (all at once, each naming its field)."""
        out: list[InputError] = []

        def bad(field: str, rule: str, fix: str | None = None):
            out.append(InputError(f"{self.name}.{field}", getattr(self, field), rule, fix))

        for field in ("hidden_size", "heads", "head_dim", "vocab_size", "context_length", "experts",
                      "experts_per_token", "ffn_size", "expert_ffn_size", *_MLA_FIELDS, "q_lora_rank"):
            value = getattr(self, field)
            if value is not None and value < 1:
                bad(field, "must be a positive integer")
        if self.shared_experts is not None and self.shared_experts < 0:
            bad("shared_experts", "must be >= 0 (0: no shared expert)")
        if self.first_dense_layers < 0:
            bad("first_dense_layers", "must be >= 0")
        if self.moe_layer_step < 1:
            bad("moe_layer_step", "must be >= 1 (1: every layer after the leading dense ones is MoE)")
        for field in ("position_embeddings", "type_vocab_size", "norms_per_layer"):
            if getattr(self, field) < 0:
                bad(field, "must be >= 0")
        if self.experts is None:
            if self.experts_per_token is not None:
                bad("experts_per_token", "needs experts", "give experts= (routed experts per MoE layer)")
            defaults = {"shared_experts": (None, 0), "expert_ffn_size": (None,), "first_dense_layers": (0,),
                        "moe_layer_step": (1,), "router_bias": (False,)}
            for field in _MOE_ONLY:
                if getattr(self, field) not in defaults[field]:
                    bad(field, "only applies to a mixture of experts", "give experts= and experts_per_token=")
        else:
            if self.experts_per_token is not None and self.experts >= 1 and self.experts_per_token > self.experts:
                bad("experts_per_token", f"must be <= experts ({self.experts})")
            if self.first_dense_layers >= 0 and self.moe_layer_step >= 1 and self.moe_layer_count == 0:
                bad("first_dense_layers" if self.first_dense_layers >= self.layers else "moe_layer_step",
                    f"leaves no MoE layer among the {self.layers} layers",
                    "first_dense_layers must be < layers and moe_layer_step <= layers - first_dense_layers")
        if self.parameters is not None and self.active_parameters is not None \
                and self.active_parameters > self.parameters * (1 + 1e-9):
            bad("active_parameters", f"must be <= parameters ({self.parameters:.4g})")
        # attention kind against the head counts and the MLA fields
        kv, kind = self.n_kv_heads, self.attention
        if kind == "mha" and kv != self.heads:
            bad("attention", f"'mha' needs kv_heads == heads ({self.heads}); kv_heads is {kv}",
                "use 'gqa' for fewer KV heads than query heads")
        elif kind == "mqa" and kv != 1:
            bad("attention", f"'mqa' needs kv_heads 1; kv_heads is {kv}", "use 'gqa' for several KV heads")
        elif kind == "gqa" and kv >= self.heads:
            bad("attention", f"'gqa' needs kv_heads < heads ({self.heads}); kv_heads is {kv}",
                "use 'mha' when every query head has its own KV head")
        mla_given = [f for f in (*_MLA_FIELDS, "q_lora_rank") if getattr(self, f) is not None]
        if self.attention_kind == "mla":
            missing = [f for f in _MLA_FIELDS if getattr(self, f) is None]
            from .errors import MISSING
            for field in missing:  # one error per missing field, each listing them all
                out.append(InputError(f"{self.name}.{field}", MISSING,
                                      f"is required by multi-head latent attention (missing: {', '.join(missing)})",
                                      "copy it from the model's config.json"))
        elif mla_given:
            bad("attention", f"is {self.attention_kind!r} but MLA fields are set ({', '.join(mla_given)})",
                "set attention='mla' or drop the MLA fields")
        return out

    def _derive_counts(self) -> None:
        """Fill ``parameters`` (and a MoE's ``active_parameters``) from the architecture when absent."""
        if self.parameters is not None and (self.active_parameters is not None or not self.is_moe):
            return
        counts = self.architecture_parameters()
        if counts is None:
            if self.parameters is None:
                from .errors import MISSING
                raise InputError(f"{self.name}.parameters", MISSING, "is required",
                                 "pass parameters=... or the whole architecture (vocab_size, ffn_size and, "
                                 "for a MoE, expert_ffn_size and experts_per_token)")
            return
        total, active = counts
        if self.parameters is None:
            object.__setattr__(self, "parameters", float(total))
        if self.active_parameters is None and self.is_moe:
            object.__setattr__(self, "active_parameters", float(active))

    # ---- shape ---------------------------------------------------------------------------------
    @property
    def n_kv_heads(self) -> int:
        return self.kv_heads if self.kv_heads is not None else self.heads

    def shards_over(self, tp: int) -> bool:
        """Whether tensor parallelism of degree ``tp`` splits the model evenly: the query heads, and
        the KV heads unless it caches one latent per token (MLA, replicated on every rank)."""
        return self.heads % tp == 0 and (self.latent_kv_dim() > 0 or self.n_kv_heads % tp == 0)

    @property
    def d_head(self) -> int:
        """Width of one attention head: ``head_dim``; else MLA's query/key width (nope + rope); else
        hidden_size / heads."""
        if self.head_dim is not None:
            return self.head_dim
        if self.attention_kind == "mla" and self.qk_nope_head_dim and self.qk_rope_head_dim:
            return self.qk_nope_head_dim + self.qk_rope_head_dim
        return self.hidden_size // self.heads

    @property
    def attention_kind(self) -> str:
        """``attention`` when given; else "mla" when ``kv_lora_rank`` is set, "mha" when every query
        head has its own KV head, "mqa" with one KV head, "gqa" otherwise."""
        if self.attention is not None:
            return self.attention
        if self.kv_lora_rank is not None:
            return "mla"
        kv = self.n_kv_heads
        return "mha" if kv == self.heads else "mqa" if kv == 1 else "gqa"

    def is_moe_layer(self, i: int) -> bool:
        """Layer ``i`` (0-based) is a MoE layer (see the class docstring for the rule)."""
        if not self.experts:
            return False
        j = i - self.first_dense_layers
        return 0 <= i < (self.layers or 0) and j >= 0 and (j + 1) % self.moe_layer_step == 0

    @property
    def moe_layer_count(self) -> int:
        """Number of MoE layers (0 for a dense model)."""
        if not self.experts or self.moe_layer_step < 1 or self.first_dense_layers < 0:
            return 0
        return max(0, (self.layers or 0) - self.first_dense_layers) // self.moe_layer_step

    @property
    def is_moe(self) -> bool:
        return self.moe_layer_count > 0

    def latent_kv_dim(self) -> int:
        """Elements one token caches per layer under multi-head latent attention: the compressed KV
        latent plus the shared rotary key, ``kv_lora_rank + qk_rope_head_dim`` (Liu et al. 2024,
        DeepSeek-V2, Section 2.1.2); 0 for MHA/GQA/MQA, which cache K and V per KV head instead."""
        if self.attention_kind != "mla":
            return 0
        return int(self.kv_lora_rank + self.qk_rope_head_dim)

    # ---- counts --------------------------------------------------------------------------------
    def expert_parameters(self) -> float:
        """Parameters of ALL routed experts of all MoE layers (shared experts and routers excluded);
        0 for a dense model.

        From the architecture when ``hidden_size`` and ``expert_ffn_size`` are known:
        ``moe_layers x experts x mlp(expert_ffn_size)``. Otherwise (an older record with only the
        published counts) from ``parameters - active_parameters``: the two differ by exactly the
        ``experts - experts_per_token`` routed experts a token skips in every MoE layer, so the routed
        experts hold ``experts / (experts - experts_per_token) x (parameters - active_parameters)``.
        That needs ``active_parameters`` and ``experts_per_token < experts``; without them 0."""
        if not self.is_moe:
            return 0.0
        if self.expert_ffn_size is not None:
            per_expert = _mlp_parameters(self.hidden_size, self.expert_ffn_size, self.gated_ffn, self.mlp_bias)
            return float(self.moe_layer_count * self.experts * per_expert)
        k = self.experts_per_token
        if self.active_parameters is None or k is None or k >= self.experts or self.parameters is None:
            return 0.0
        return float(self.experts / (self.experts - k) * (self.parameters - self.active_parameters))

    def _attention_parameters(self) -> int:
        """Weights of one layer's attention block (projections, their biases, MLA's latent norms,
        QK norms and attention sinks)."""
        h, H = self.hidden_size, self.heads
        if self.attention_kind == "mla":
            nope, rope, v, kv_rank = self.qk_nope_head_dim, self.qk_rope_head_dim, self.v_head_dim, self.kv_lora_rank
            q_width = H * (nope + rope)
            if self.q_lora_rank:  # q_a (hidden -> rank), its norm, q_b (rank -> heads x (nope + rope))
                n = h * self.q_lora_rank + self.q_lora_rank + self.q_lora_rank * q_width
            else:
                n = h * q_width
            n += h * (kv_rank + rope) + kv_rank  # kv_a: latent + shared rotary key; latent norm
            n += kv_rank * H * (nope + v)  # kv_b: latent -> per-head key (nope) and value
            n += H * v * h  # o
            if self.attention_bias:
                n += q_width + (kv_rank + rope) + H * (nope + v) + h
        else:
            d, kv = self.d_head, self.n_kv_heads
            n = h * H * d + 2 * h * kv * d + H * d * h
            if self.attention_bias:
                n += H * d + 2 * kv * d + h
            if self.qkv_bias and not self.attention_bias:
                n += H * d + 2 * kv * d
            if self.qk_norm:
                n += 2 * d
        if self.attention_sinks:
            n += H
        return n

    def architecture_parameters(self, *, input_embeddings_active: bool = True) -> tuple[float, float] | None:
        """(total, active) parameters counted from the architecture fields; None when a field the
        count needs is missing (``vocab_size``; ``ffn_size`` when some layer is dense; for a MoE,
        ``expert_ffn_size`` and ``experts_per_token``; for MLA the MLA widths).

        Total: input embedding (vocab x hidden) and output projection (another vocab x hidden
        unless ``tie_word_embeddings``); per layer the attention block, two RMSNorm weight vectors and
        either a dense MLP or the MoE block (routed experts, shared experts, router); the final norm.
        Learned position and token-type embeddings (``position_embeddings``, ``type_vocab_size``) join
        the input embedding; ``norm_bias`` doubles every norm (LayerNorm weight and bias);
        ``norms_per_layer`` sets the norms per layer (Gemma 2/3: 4); ``pooler`` adds an encoder's
        ``hidden x hidden`` pooler with its bias. The defaults describe rotary-position RMSNorm decoders.

        Active: the parameters one token's forward pass multiplies with or looks up: the embedding
        table, every attention, norm and dense-MLP weight, the shared experts, the router and
        ``experts_per_token`` routed experts per MoE layer. This is the convention of the Mixtral,
        Qwen3 and Llama 4 model cards (12.9B, 22B / 3.3B, 17B active; see tests/test_moe_registry.py
        for the comparison and where a rounded figure differs by just over 1%) and of DeepSeek-V3's
        weight notes, which count the 0.9B embedding and 0.9B output head in its active parameters.
        The gpt-oss model card counts the unembedding but not the input embedding as active (a
        lookup reads one row): pass ``input_embeddings_active=False`` for that convention.
        """
        if self.vocab_size is None:
            return None
        dense_layers = self.layers - self.moe_layer_count
        if dense_layers and self.ffn_size is None:
            return None
        if self.is_moe and (self.expert_ffn_size is None or self.experts_per_token is None):
            return None
        h = self.hidden_size
        embed = (self.vocab_size + self.position_embeddings + self.type_vocab_size) * h
        head = 0 if self.tie_word_embeddings else self.vocab_size * h
        norm = 2 * h if self.norm_bias else h
        per_layer = self._attention_parameters() + self.norms_per_layer * norm
        dense = dense_layers * _mlp_parameters(h, self.ffn_size, self.gated_ffn, self.mlp_bias) if dense_layers else 0
        extra = norm + (h * h + h if self.pooler else 0)  # final norm (BERT: the embedding norm), pooler
        total = embed + head + self.layers * per_layer + dense + extra
        active = (embed if input_embeddings_active else 0) + head + self.layers * per_layer + dense + extra
        if self.is_moe:
            expert = _mlp_parameters(h, self.expert_ffn_size, self.gated_ffn, self.mlp_bias)
            router = h * self.experts + (self.experts if self.router_bias else 0)
            always = (self.shared_experts or 0) * expert + router
            moe = self.moe_layer_count
            total += moe * (always + self.experts * expert)
            active += moe * (always + self.experts_per_token * expert)
        return float(total), float(active)

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
    """Inter-node network: one-way bandwidth per accelerator port and one-hop latency, and the shape
    of the fat tree (folded Clos) the ports hang from.

    ``oversubscription`` is the taper above the leaf tier (2: the tier above carries half of what the
    ports below it can send). ``leaf_nodes`` nodes meet below that tier (a leaf switch, or in a
    rail-optimized fabric one rail group or scalable unit); traffic that stays among them runs at
    the port rate. ``None`` puts every node alone under its own leaf: all inter-node traffic meets
    the taper. ``tiers`` counts switch levels; ``rail_optimized`` says whether GPU i of every node
    plugs into leaf i (NVIDIA's SuperPOD design). The collectives sheet charges the contention
    (models/collectives.py); ``effective_bandwidth`` is the port rate when every port crosses the
    taper at once."""

    bandwidth: Bandwidth
    latency: Seconds
    oversubscription: float = 1.0
    leaf_nodes: Optional[int] = None
    tiers: int = 2
    rail_optimized: bool = False

    @field_validator("leaf_nodes", "tiers", mode="before")
    @classmethod
    def _whole(cls, value, info: ValidationInfo):
        if value is None and info.field_name == "leaf_nodes":
            return None
        return _whole_count(value, info.field_name, "nodes" if info.field_name == "leaf_nodes" else "switch levels")

    @property
    def leaf_domain_nodes(self) -> int:
        """Nodes whose traffic stays below the oversubscribed tier (1 when not stated)."""
        return 1 if self.leaf_nodes is None else self.leaf_nodes

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
    host_load_power: Optional[Power] = None
    """Power of everything but the accelerators under load; None: estimated (solvers/sustainability.py)."""
    unit_cost: Optional[Money] = None
    unit_cost_covers: Literal["node"] = "node"
    """A node's price is the whole server: accelerators, host CPUs, memory and NICs."""
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
