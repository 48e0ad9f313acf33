"""Any transformer by its Hugging Face ``config.json``: a typed :class:`TransformerWorkload`.

``from_hf_config`` maps a config (a path to the file or to its folder, or the parsed dict) to the
architecture fields of a :class:`~mlsysim_opt.types.TransformerWorkload`; the parameter counts are
then *computed* by :meth:`~mlsysim_opt.types.TransformerWorkload.architecture_parameters`, never
read from a model card. ``load_model("org/name")`` does the same through ``huggingface_hub``.

Every field's provenance is the config file (or the ``source`` given). When a
``model.safetensors.index.json`` sits beside the config, its ``metadata.total_size`` (bytes) over
the bytes of one value of the weights' dtype is compared with the computed count.
"""
from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any, Callable, Mapping, NamedTuple

from .errors import MISSING, InputError, InputErrors
from .types import TransformerWorkload

__all__ = ["from_hf_config", "import_config", "load_model", "import_hub", "Imported", "FAMILIES", "DTYPE_BYTES",
           "SAFETENSORS_TOLERANCE", "check_safetensors_total", "workload_yaml"]

DTYPE_BYTES: dict[str, float] = {
    "float32": 4.0, "fp32": 4.0, "float": 4.0, "bfloat16": 2.0, "bf16": 2.0, "float16": 2.0, "fp16": 2.0,
    "half": 2.0, "float8_e4m3fn": 1.0, "float8_e5m2": 1.0, "fp8": 1.0, "int8": 1.0,
}
"""Bytes of one stored value for each ``torch_dtype`` spelling."""

SAFETENSORS_TOLERANCE = 0.02
"""Largest relative gap between the safetensors total (in parameters) and the computed count."""

_GATED = {"llama", "llama4_text", "mistral", "mixtral", "qwen2", "qwen2_moe", "qwen3", "qwen3_moe",
          "deepseek_v2", "deepseek_v3", "gemma2", "gemma3_text", "phi3"}
_TIED = {"gemma2", "gemma3_text", "gpt2", "bert"}
FAMILIES: tuple[str, ...] = ("llama", "llama4", "mistral", "mixtral", "qwen2", "qwen2_moe", "qwen3", "qwen3_moe",
                             "deepseek_v2", "deepseek_v3", "gemma2", "gemma3", "gemma3_text", "phi3", "gpt2",
                             "gpt_neox", "bert")
"""The ``model_type`` values :func:`from_hf_config` understands (llama4 and gemma3 read ``text_config``)."""

_SIZE_FIELDS = ("layers", "hidden_size", "heads", "kv_heads", "head_dim", "vocab_size", "context_length",
                "ffn_size", "expert_ffn_size", "experts", "experts_per_token", "kv_lora_rank", "q_lora_rank",
                "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim", "moe_layer_step")
_FIELDS = set(TransformerWorkload.model_fields)

_CLASS_DEFAULTS: dict[str, dict[str, Any]] = {
    # transformers' Gemma3TextConfig: multimodal Gemma 3 configs (4B) leave these out of text_config
    "gemma3_text": {"vocab_size": 262208, "num_attention_heads": 8, "num_key_value_heads": 4, "head_dim": 256,
                    "max_position_embeddings": 131072},
}
"""Config keys a family's released configs may omit, with the transformers config-class default."""


class _Reader:
    """Reads fields from one config dict, remembering which key each came from and what is missing."""

    def __init__(self, cfg: Mapping, overrides: Mapping, family: str, name: str):
        self.cfg, self.overrides, self.family, self.name = cfg, overrides, family, name
        self.values: dict[str, Any] = {}
        self.keys: dict[str, str] = {}        # field -> config key (or a note on how it was set)
        self.missing: list[tuple[str, tuple[str, ...]]] = []
        self.class_defaults: dict[str, Any] = _CLASS_DEFAULTS.get(family, {})

    def take(self, field: str, *keys: str, default: Any = MISSING, note: str | None = None) -> Any:
        if field in self.overrides:
            self.values[field], self.keys[field] = self.overrides[field], "overrides"
            return self.values[field]
        for key in keys:
            if self.cfg.get(key) is not None:
                self.values[field], self.keys[field] = self.cfg[key], key
                return self.values[field]
        for key in keys:
            if key in self.class_defaults:
                self.values[field] = self.class_defaults[key]
                self.keys[field] = f"{key} absent: the transformers {self.family} config default"
                return self.values[field]
        if default is MISSING:
            self.missing.append((field, keys))
            return None
        if default is not None:
            self.values[field] = default
            self.keys[field] = note or (f"{'/'.join(keys)} absent: the {self.family} default" if keys
                                        else f"fixed by the {self.family} architecture")
        return default

    def fixed(self, field: str, value: Any, note: str) -> None:
        """A value the family's modeling code fixes (not a config key), unless overridden."""
        if field in self.overrides:
            self.values[field], self.keys[field] = self.overrides[field], "overrides"
        else:
            self.values[field], self.keys[field] = value, note


# ----------------------------------------------------------------------------------------------
# Family mappings


def _decoder_common(r: _Reader) -> None:
    r.take("layers", "num_hidden_layers")
    r.take("hidden_size", "hidden_size")
    heads = r.take("heads", "num_attention_heads")
    r.take("kv_heads", "num_key_value_heads", default=heads, note="num_key_value_heads absent: = num_attention_heads")
    r.take("head_dim", "head_dim", default=None)
    r.take("vocab_size", "vocab_size")
    r.take("context_length", "max_position_embeddings", default=None)
    r.take("tie_word_embeddings", "tie_word_embeddings", default=r.family in _TIED)
    r.fixed("gated_ffn", r.family in _GATED, f"{r.family} MLPs are {'gated' if r.family in _GATED else 'plain'}")


def _dense(r: _Reader) -> None:
    _decoder_common(r)
    r.take("ffn_size", "intermediate_size")
    r.take("attention_bias", "attention_bias", default=False)
    r.take("mlp_bias", "mlp_bias", default=False)


def _qwen2(r: _Reader) -> None:
    _dense(r)
    r.fixed("qkv_bias", True, "Qwen2 q, k and v projections always carry biases")


def _qwen3(r: _Reader) -> None:
    _dense(r)
    r.fixed("qk_norm", True, "Qwen3 q_norm/k_norm RMSNorm weights")


def _gemma2(r: _Reader) -> None:
    _dense(r)
    r.fixed("norms_per_layer", 4, f"{r.family}: pre- and post-norms around attention and MLP")


def _gemma3(r: _Reader) -> None:
    _gemma2(r)
    r.fixed("qk_norm", True, "Gemma 3 q_norm/k_norm RMSNorm weights")


def _sparse_layers(r: _Reader) -> None:
    """Qwen2-MoE / Qwen3-MoE: layer i is MoE unless in mlp_only_layers, when (i + 1) % step == 0."""
    step = r.take("moe_layer_step", "decoder_sparse_step", default=1)
    only = list(r.cfg.get("mlp_only_layers") or [])
    if "first_dense_layers" in r.overrides:
        r.fixed("first_dense_layers", r.overrides["first_dense_layers"], "overrides")
    elif only:
        if only != list(range(len(only))) or step != 1:
            raise InputError(f"{_name(r)}.mlp_only_layers", only,
                             "must be the leading layers 0..k-1 with decoder_sparse_step 1 to be represented "
                             "(first_dense_layers)",
                             "pass overrides={'first_dense_layers': ..., 'moe_layer_step': ...} that describe the "
                             "same layers")
        r.fixed("first_dense_layers", len(only), "mlp_only_layers (the leading dense layers)")


def _name(r: _Reader) -> str:
    return r.name


def _mixtral(r: _Reader) -> None:
    _decoder_common(r)
    r.take("experts", "num_local_experts")
    r.take("experts_per_token", "num_experts_per_tok")
    r.take("expert_ffn_size", "intermediate_size")


def _qwen_moe(r: _Reader) -> None:
    _decoder_common(r)
    r.take("ffn_size", "intermediate_size", default=None)
    r.take("experts", "num_experts")
    r.take("experts_per_token", "num_experts_per_tok")
    width = r.take("expert_ffn_size", "moe_intermediate_size")
    r.take("attention_bias", "attention_bias", default=False)
    if r.family == "qwen3_moe":
        r.fixed("qk_norm", True, "Qwen3 q_norm/k_norm RMSNorm weights")
    else:
        r.fixed("qkv_bias", True, "Qwen2 q, k and v projections always carry biases")
        shared = r.cfg.get("shared_expert_intermediate_size")
        if "shared_experts" in r.overrides:
            r.fixed("shared_experts", r.overrides["shared_experts"], "overrides")
        elif shared:
            if not isinstance(width, int) or width <= 0 or shared % width:
                raise InputError(f"{_name(r)}.shared_expert_intermediate_size", shared,
                                 f"must be a whole multiple of moe_intermediate_size ({width}) to be counted as "
                                 "shared experts", "pass overrides={'shared_experts': ...}")
            r.fixed("shared_experts", shared // width,
                    f"shared_expert_intermediate_size {shared} / moe_intermediate_size {width}")
    _sparse_layers(r)


def _deepseek(r: _Reader) -> None:
    _decoder_common(r)
    r.take("ffn_size", "intermediate_size")
    r.take("experts", "n_routed_experts")
    r.take("experts_per_token", "num_experts_per_tok")
    r.take("expert_ffn_size", "moe_intermediate_size")
    r.take("shared_experts", "n_shared_experts", default=0)
    r.take("first_dense_layers", "first_k_dense_replace", default=0)
    freq = r.cfg.get("moe_layer_freq", 1)
    if freq != 1 and "moe_layer_step" not in r.overrides:
        raise InputError(f"{_name(r)}.moe_layer_freq", freq,
                         "other than 1 is not represented (layer i is MoE iff i >= first_k_dense_replace and "
                         "i % moe_layer_freq == 0)",
                         "pass overrides={'first_dense_layers': ..., 'moe_layer_step': ...} that give the same layers")
    for field in ("kv_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim"):
        r.take(field, field)
    r.take("q_lora_rank", "q_lora_rank", default=None)
    r.fixed("attention", "mla", "multi-head latent attention (kv_lora_rank)")
    r.take("attention_bias", "attention_bias", default=False)
    # DeepSeek-V3's noaux_tc routing adds e_score_correction_bias, one per routed expert
    r.fixed("router_bias", r.cfg.get("topk_method") == "noaux_tc", "topk_method noaux_tc: e_score_correction_bias")


def _llama4(r: _Reader) -> None:
    _decoder_common(r)
    r.take("ffn_size", "intermediate_size_mlp", default=None)
    r.take("experts", "num_local_experts")
    r.take("experts_per_token", "num_experts_per_tok")
    r.take("expert_ffn_size", "intermediate_size")
    r.fixed("shared_experts", 1, "Llama 4's shared expert, as wide as a routed one")
    step = r.take("moe_layer_step", "interleave_moe_layer_step", default=1)
    layers = r.values.get("layers")
    given = r.cfg.get("moe_layers")
    if given is not None and isinstance(layers, int) and isinstance(step, int) and step > 0 \
            and list(given) != list(range(step - 1, layers, step)):
        raise InputError(f"{_name(r)}.moe_layers", given,
                         f"differs from every {step}-th layer, the only pattern represented",
                         "pass overrides={'first_dense_layers': ..., 'moe_layer_step': ...}")
    r.take("attention_bias", "attention_bias", default=False)


def _phi3(r: _Reader) -> None:
    _dense(r)


def _gpt2(r: _Reader) -> None:
    r.take("layers", "n_layer", "num_hidden_layers")
    hidden = r.take("hidden_size", "n_embd", "hidden_size")
    heads = r.take("heads", "n_head", "num_attention_heads")
    r.fixed("kv_heads", heads, "GPT-2 attention is multi-head")
    r.take("vocab_size", "vocab_size")
    r.take("context_length", "n_positions", "n_ctx")
    r.take("position_embeddings", "n_positions", "n_ctx")
    r.take("ffn_size", "n_inner", default=4 * hidden if isinstance(hidden, int) else None,
           note="n_inner absent: 4 x n_embd")
    r.take("tie_word_embeddings", "tie_word_embeddings", default=True)
    r.fixed("gated_ffn", False, "GPT-2 MLP: c_fc and c_proj")
    for field in ("attention_bias", "mlp_bias", "norm_bias"):
        r.fixed(field, True, "GPT-2 Conv1D projections and LayerNorms carry biases")


def _gpt_neox(r: _Reader) -> None:
    _decoder_common(r)
    r.values.pop("head_dim", None)
    r.take("ffn_size", "intermediate_size")
    r.take("attention_bias", "attention_bias", default=True)
    r.fixed("mlp_bias", True, "GPT-NeoX dense_h_to_4h and dense_4h_to_h carry biases")
    r.fixed("norm_bias", True, "GPT-NeoX LayerNorms carry biases")


def _bert(r: _Reader) -> None:
    _decoder_common(r)
    r.values.pop("head_dim", None)
    r.take("ffn_size", "intermediate_size")
    r.take("position_embeddings", "max_position_embeddings")
    r.take("type_vocab_size", "type_vocab_size", default=2)
    r.fixed("pooler", True, "BertModel's pooler (dense + bias)")
    for field in ("attention_bias", "mlp_bias", "norm_bias"):
        r.fixed(field, True, "BERT linear layers and LayerNorms carry biases")


_MAPPERS: dict[str, Callable[[_Reader], None]] = {
    "llama": _dense, "mistral": _dense, "phi3": _phi3, "qwen2": _qwen2, "qwen3": _qwen3,
    "gemma2": _gemma2, "gemma3_text": _gemma3, "mixtral": _mixtral, "qwen2_moe": _qwen_moe,
    "qwen3_moe": _qwen_moe, "deepseek_v2": _deepseek, "deepseek_v3": _deepseek, "llama4_text": _llama4,
    "gpt2": _gpt2, "gpt_neox": _gpt_neox, "bert": _bert,
}
_WRAPPERS = {"llama4": "llama4_text", "gemma3": "gemma3_text"}   # multimodal configs: text_config inside


# ----------------------------------------------------------------------------------------------
# Reading the config


def _read_config(path_or_dict) -> tuple[dict, Path | None, str | None]:
    """The config dict, the folder it came from (None for a dict) and a default name (the folder's
    name for a ``config.json``, else the file's stem)."""
    if isinstance(path_or_dict, Mapping):
        return dict(path_or_dict), None, None
    if isinstance(path_or_dict, str) and path_or_dict.lstrip().startswith("{"):  # the JSON text itself
        try:
            data = json.loads(path_or_dict)
        except json.JSONDecodeError as exc:
            raise InputError("config", path_or_dict[:40] + "...", f"is not JSON ({exc})") from None
        if not isinstance(data, dict):
            raise InputError("config", type(data).__name__, "holds JSON that is not an object",
                             "give a Hugging Face config.json")
        return data, None, None
    if not isinstance(path_or_dict, (str, os.PathLike)):
        raise InputError("config", type(path_or_dict).__name__, "must be a path to config.json or a dict")
    p = Path(path_or_dict).expanduser()
    if p.is_dir():
        p = p / "config.json"
    if not p.is_file():
        raise InputError("config", str(p), "is not a file", "give the path of a config.json (or its folder)")
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError("config", str(p), f"is not JSON ({exc})", "give a Hugging Face config.json") from None
    if not isinstance(data, dict):
        raise InputError("config", str(p), f"holds a JSON {type(data).__name__}, not an object",
                         "give a Hugging Face config.json")
    return data, p.parent, (p.parent.resolve().name if p.name == "config.json" else p.stem) or None


def _check_values(values: dict, keys: dict, name: str) -> None:
    problems = []
    for field in _SIZE_FIELDS + ("position_embeddings", "type_vocab_size", "shared_experts", "first_dense_layers"):
        value = values.get(field)
        if value is None:
            continue
        key = keys.get(field, field)
        floor = 0 if field in ("position_embeddings", "type_vocab_size", "shared_experts", "first_dense_layers") else 1
        if isinstance(value, bool) or not isinstance(value, int) or value < floor:
            rule = "must be a whole number >= 0" if floor == 0 else "must be a positive whole number"
            problems.append(InputError(f"{name}.{field} (config {key})", value, rule,
                                       f"fix config.json or pass overrides={{'{field}': ...}}"))
    h, H = values.get("hidden_size"), values.get("heads")
    if not problems and values.get("head_dim") is None and values.get("attention") != "mla" and h % H:
        problems.append(InputError(f"{name}.heads (config {keys.get('heads')})", H,
                                   f"must divide hidden_size ({h}) when config.json gives no head_dim",
                                   "add head_dim to config.json or pass overrides={'head_dim': ...}"))
    kv = values.get("kv_heads")
    if not problems and kv is not None and H % kv:
        problems.append(InputError(f"{name}.kv_heads (config {keys.get('kv_heads')})", kv,
                                   f"must divide num_attention_heads ({H})"))
    if problems:
        raise problems[0] if len(problems) == 1 else InputErrors(problems)


def _dtype_name(dtype) -> str | None:
    if dtype is None:
        return None
    text = str(dtype).removeprefix("torch.").lower()
    return text


class Imported(NamedTuple):
    """A record from a config and, per field, the config key (or the rule) that set it."""

    record: TransformerWorkload
    keys: dict[str, str]


def from_hf_config(path_or_dict, name: str | None = None, *, dtype: str | None = None,
                   overrides: Mapping[str, Any] | None = None, source: str | None = None,
                   safetensors_index: Mapping | str | os.PathLike | None = None,
                   safetensors_check: str = "raise", category: str = "Language") -> TransformerWorkload:
    """A :class:`TransformerWorkload` from a Hugging Face ``config.json``.

    ``path_or_dict``: the file, its folder, or the parsed dict. ``name``: the record's name (default:
    the folder name, else ``_name_or_path``, else the model_type). ``dtype``: the weights' storage type
    (default: the config's ``torch_dtype``). ``overrides``: record fields that replace or supply
    config values (``{"ffn_size": 14336}``). ``source``: the provenance of every field (default
    ``"config.json"``). ``safetensors_index``: a ``model.safetensors.index.json`` (dict or path);
    by default one beside the config file is used. ``safetensors_check``: ``"raise"`` (default),
    ``"warn"`` or ``"ignore"`` when its total differs from the computed count by more than
    :data:`SAFETENSORS_TOLERANCE`.

    Parameter counts are computed by :meth:`TransformerWorkload.architecture_parameters`;
    ``inference_flops`` is 2 x the active count. Raises one :class:`InputError` for an unknown
    ``model_type``, missing or invalid fields (naming all of them).
    """
    return import_config(path_or_dict, name, dtype=dtype, overrides=overrides, source=source,
                         safetensors_index=safetensors_index, safetensors_check=safetensors_check,
                         category=category).record


def import_config(path_or_dict, name: str | None = None, *, dtype: str | None = None,
                  overrides: Mapping[str, Any] | None = None, source: str | None = None,
                  safetensors_index: Mapping | str | os.PathLike | None = None,
                  safetensors_check: str = "raise", category: str = "Language") -> Imported:
    """:func:`from_hf_config`, also returning which config key set each field."""
    if safetensors_check not in ("raise", "warn", "ignore"):
        raise InputError("safetensors_check", safetensors_check, "must be 'raise', 'warn' or 'ignore'")
    cfg, folder, default_name = _read_config(path_or_dict)
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - _FIELDS)
    if unknown:
        raise InputError("overrides", unknown, "are not TransformerWorkload fields",
                         f"use field names such as {', '.join(sorted(_SIZE_FIELDS)[:6])}")
    computed = sorted(set(overrides) & {"parameters", "active_parameters", "inference_flops", "family",
                                        "category", "provenance"})
    if computed:
        raise InputError("overrides", computed, "cannot be overridden: counts are computed from the architecture",
                         "override architecture fields (ffn_size, layers, ...); pass category= or source= "
                         "as arguments")
    model_type = cfg.get("model_type")
    if model_type is None:
        raise InputError("config.model_type", MISSING, "is required to pick the field names",
                         f"add \"model_type\" (one of {', '.join(FAMILIES)}) to config.json")
    family = _WRAPPERS.get(model_type, model_type)
    if family not in _MAPPERS:
        raise InputError("config.model_type", model_type, f"is not a supported family ({', '.join(FAMILIES)})",
                         "build the record with TransformerWorkload(...) from the config values instead")
    arch = cfg
    if model_type in _WRAPPERS:
        arch = cfg.get("text_config") if isinstance(cfg.get("text_config"), dict) else None
        if arch is None:
            raise InputError("config.text_config", MISSING, f"is required for model_type {model_type!r}",
                             "give the config.json whose text_config holds the language model")
    given_name = overrides.pop("name", None)
    name = name or given_name or default_name or cfg.get("_name_or_path") or model_type
    reader = _Reader(arch, overrides, family, str(name))
    _MAPPERS[family](reader)
    values, keys = reader.values, reader.keys
    if reader.missing:
        listed = "; ".join(f"{field} (config {' or '.join(ks) if ks else 'key'})" for field, ks in reader.missing)
        example = ", ".join(f"'{field}': ..." for field, _ in reader.missing)
        raise InputError(f"{name}: config.json ({model_type})", MISSING,
                         f"lacks {len(reader.missing)} required field(s): {listed}",
                         f"add them to config.json or pass overrides={{{example}}}")
    for field, value in overrides.items():   # fields no family mapping reads (e.g. training_tokens)
        if field not in values:
            values[field], keys[field] = value, "overrides"
    _check_values(values, keys, name)
    dtype_name = _dtype_name(dtype) or _dtype_name(arch.get("torch_dtype") or cfg.get("torch_dtype"))
    if dtype_name is not None and dtype_name not in DTYPE_BYTES:
        raise InputError(f"{name}.dtype", dtype_name, f"is not one of {', '.join(DTYPE_BYTES)}",
                         "pass dtype='bfloat16' (the type the weights are stored in)")
    if dtype_name is not None:
        values["dtype"] = dtype_name
        keys["dtype"] = "dtype argument" if dtype is not None else "torch_dtype"
    src = source or "config.json"
    prov = {field: src for field in values}
    probe = TransformerWorkload(name=name, category=category, **values)
    counts = probe.architecture_parameters()
    if counts is None:  # pragma: no cover - every mapping supplies the fields the count needs
        raise InputError(f"{name}.parameters", MISSING, "could not be computed from config.json",
                         "pass overrides with the missing architecture fields")
    total, active = counts
    for field in ("parameters", "active_parameters", "inference_flops"):
        prov[field] = src
    record = TransformerWorkload(name=name, category=category, parameters=total, active_parameters=active,
                                 inference_flops=2.0 * active, provenance=prov, **values)
    index = safetensors_index
    if index is None and folder is not None and (folder / "model.safetensors.index.json").is_file():
        index = folder / "model.safetensors.index.json"
    if index is not None and safetensors_check != "ignore":
        check_safetensors_total(record, index, dtype_name, on_mismatch=safetensors_check)
    return Imported(record, dict(keys))


def check_safetensors_total(record: TransformerWorkload, index, dtype: str | None = None, *,
                            on_mismatch: str = "raise", tolerance: float = SAFETENSORS_TOLERANCE) -> float:
    """Compare ``metadata.total_size`` of a ``model.safetensors.index.json`` (dict or path), over the
    bytes of one ``dtype`` value, with the record's computed ``parameters``. Returns the relative gap;
    raises :class:`InputError` (or warns, ``on_mismatch="warn"``) when it exceeds ``tolerance``."""
    if not isinstance(index, Mapping):
        try:
            index = json.loads(Path(index).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError("safetensors_index", str(index), f"is not a readable JSON file ({exc})") from None
    try:
        total_bytes = float(index["metadata"]["total_size"])
    except (KeyError, TypeError, ValueError):
        raise InputError("safetensors_index.metadata.total_size", MISSING, "is required",
                         "give the model.safetensors.index.json of the checkpoint") from None
    dtype = _dtype_name(dtype) or record.dtype
    if dtype is None or dtype not in DTYPE_BYTES:
        raise InputError(f"{record.name}.dtype", dtype, "is needed to turn safetensors bytes into parameters",
                         "pass dtype='bfloat16' (the type the weights are stored in)")
    stored = total_bytes / DTYPE_BYTES[dtype]
    gap = abs(stored - record.parameters) / record.parameters
    if gap > tolerance:
        msg = (f"the checkpoint holds {stored:,.0f} {dtype} values ({total_bytes:,.0f} bytes) but config.json "
               f"gives {record.parameters:,.0f} parameters ({gap:+.1%} apart, more than {tolerance:.0%})")
        fix = ("check the dtype (quantized or mixed-precision checkpoints store fewer bytes), extra modules "
               "(vision tower, multi-token prediction) or pass overrides for the fields that differ")
        if on_mismatch == "warn":
            warnings.warn(f"{record.name}: {msg}: {fix}", stacklevel=2)
        else:
            raise InputError(f"{record.name}.parameters", record.parameters, f"disagrees with the safetensors "
                             f"index: {msg}", fix)
    return gap


# ----------------------------------------------------------------------------------------------
# The Hugging Face Hub


def _hub():
    try:
        import huggingface_hub
    except ImportError:
        raise InputError("huggingface_hub", MISSING, "is required to load a model by its Hub name",
                         'pip install "mlsysim-opt[hf]" (or pass a local config.json to from_hf_config)') from None
    return huggingface_hub


def _download(hub, repo: str, filename: str, revision: str | None, cache_dir, required: bool) -> str | None:
    """The cached file when there is one, else a download; None for an optional file that is absent."""
    try:
        from huggingface_hub import errors as hub_errors
        errors = tuple(getattr(hub_errors, n) for n in ("EntryNotFoundError", "RepositoryNotFoundError",
                                                         "RevisionNotFoundError") if hasattr(hub_errors, n))
    except ImportError:  # pragma: no cover - very old huggingface_hub
        errors = ()
    try:
        return hub.hf_hub_download(repo, filename, revision=revision, cache_dir=cache_dir, local_files_only=True)
    except Exception:  # noqa: BLE001 - not cached: try the network below
        pass
    if not required:
        return None
    offline = getattr(getattr(hub, "constants", None), "HF_HUB_OFFLINE", False)
    if offline or os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        raise InputError(f"{repo}/{filename}", MISSING, "is not in the Hugging Face cache and HF_HUB_OFFLINE is set",
                         "unset HF_HUB_OFFLINE, pass cache_dir=..., or give the local config.json path")
    try:
        return hub.hf_hub_download(repo, filename, revision=revision, cache_dir=cache_dir)
    except Exception as exc:  # noqa: BLE001 - network, auth, missing repo: one clear error
        found = errors and isinstance(exc, errors)
        kind = "was not found" if found else f"could not be fetched ({type(exc).__name__}: {exc})"
        raise InputError(f"{repo}/{filename}", revision or "main", kind,
                         "check the repository name and revision, log in for gated models "
                         "(huggingface-cli login), or give a local config.json path") from None


def _revision_of(path: str, revision: str | None) -> str:
    """The snapshot (commit) folder a cached file sits in, else the revision asked for."""
    parts = Path(path).parts
    if "snapshots" in parts:
        i = parts.index("snapshots")
        if i + 1 < len(parts):
            return parts[i + 1]
    return revision or "main"


def load_model(repo_id: str, revision: str | None = None, *, cache_dir=None, name: str | None = None,
               dtype: str | None = None, overrides: Mapping[str, Any] | None = None,
               safetensors_check: str = "raise") -> TransformerWorkload:
    """:func:`from_hf_config` of a Hub model, ``"org/name"``: its ``config.json`` (and, when cached,
    its ``model.safetensors.index.json``) from the local Hugging Face cache first, else downloaded.
    Provenance of every field: ``hf://<repo>@<revision>/config.json`` (the snapshot commit when known)."""
    return import_hub(repo_id, revision, cache_dir=cache_dir, name=name, dtype=dtype, overrides=overrides,
                      safetensors_check=safetensors_check)[0].record


def import_hub(repo_id: str, revision: str | None = None, *, cache_dir=None, name: str | None = None,
               dtype: str | None = None, overrides: Mapping[str, Any] | None = None,
               safetensors_check: str = "raise") -> tuple[Imported, dict[str, str]]:
    """:func:`load_model`, also returning the config keys and ``{repo, revision, file, path}``."""
    if not isinstance(repo_id, str) or repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise InputError("repo_id", repo_id, "must be a Hub name 'org/name'", "e.g. 'meta-llama/Llama-3.1-8B'")
    hub = _hub()
    config_path = _download(hub, repo_id, "config.json", revision, cache_dir, required=True)
    index_path = _download(hub, repo_id, "model.safetensors.index.json", revision, cache_dir, required=False)
    rev = _revision_of(config_path, revision)
    source = f"hf://{repo_id}@{rev}/config.json"
    index = None
    if index_path is not None:
        try:
            index = json.loads(Path(index_path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError(f"{repo_id}/model.safetensors.index.json", str(index_path),
                             f"is not readable JSON ({exc})") from None
    imported = import_config(config_path, name or repo_id.split("/")[1], dtype=dtype, overrides=overrides,
                             source=source, safetensors_index=index, safetensors_check=safetensors_check)
    return imported, {"repo": repo_id, "revision": rev, "file": "config.json", "path": str(config_path)}


# ----------------------------------------------------------------------------------------------
# Registry YAML


_UNITS = {"context_length": "token", "parameters": "param", "active_parameters": "param"}
_ORDER = ("parameters", "active_parameters", "inference_flops", "layers", "hidden_size", "heads", "kv_heads",
          "head_dim", "vocab_size", "context_length", "ffn_size", "experts", "experts_per_token", "shared_experts",
          "expert_ffn_size", "first_dense_layers", "moe_layer_step", "kv_lora_rank", "q_lora_rank",
          "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim", "tie_word_embeddings", "gated_ffn",
          "attention_bias", "qkv_bias", "mlp_bias", "router_bias", "attention_sinks", "qk_norm", "norm_bias",
          "norms_per_layer", "position_embeddings", "type_vocab_size", "pooler")


def _slug(text: str) -> str:
    out = "".join(c.lower() if c.isalnum() else "-" for c in text)
    while "--" in out:
        out = out.replace("--", "-")
    return out.strip("-") or "model"


def workload_yaml(imported: Imported, *, key: str | None = None, source_id: str | None = None,
                  source_title: str | None = None, url: str | None = None, document: str | None = None,
                  date: str | None = None) -> str:
    """Registry YAML (docs/registry-format.md) for a record from :func:`from_hf_config`: a ``sources:``
    entry for the config and one ``{value, source, note}`` leaf per field; loads with
    :func:`mlsysim_opt.catalog.load_registry` (kind ``workloads``)."""
    import datetime

    import yaml

    record, keys = imported
    key = key or "".join(c if c.isalnum() else "_" for c in record.name).strip("_") or "Model"
    if key[0].isdigit():
        key = f"M_{key}"
    sid = source_id or f"hf-config-{_slug(record.name)}"
    fields = dict(record)
    defaults = {f: info.default for f, info in TransformerWorkload.model_fields.items()}
    body: dict[str, Any] = {"namespace": record.category or "Language", "type": "transformer", "name": record.name}
    counted = "computed by TransformerWorkload.architecture_parameters() from the config fields"
    for field in _ORDER:
        value = fields.get(field)
        if value is None or (field not in ("parameters", "active_parameters", "inference_flops", "layers",
                                           "hidden_size", "heads") and value == defaults.get(field)
                             and field not in keys):
            continue
        if field == "inference_flops":
            leaf = {"value": float(record.inference_flops.m_as("FLOP")), "unit": "FLOP", "source": sid,
                    "note": "2 x the computed active parameters"}
        else:
            leaf = {"value": float(value) if field in ("parameters", "active_parameters") else value}
            if field in _UNITS:
                leaf["unit"] = _UNITS[field]
            leaf["source"] = sid
            if field in ("parameters", "active_parameters"):
                leaf["note"] = counted
            elif keys.get(field):
                k = keys[field]
                leaf["note"] = f"config.json {k}" if " " not in k and k != "overrides" else k
        body[field] = leaf
    if record.attention is not None:
        body["attention"] = record.attention
    if record.dtype is not None:
        body["dtype"] = record.dtype
    entry: dict[str, Any] = {"title": source_title or f"{record.name} model configuration (config.json)",
                             "date": date or datetime.date.today().strftime("%Y-%m"), "kind": "website"}
    if url:
        entry["url"] = url
    else:
        entry["document"] = document or "config.json"
    data = {"sources": {sid: entry}, key: body}
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=200, default_flow_style=None)
