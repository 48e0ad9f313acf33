"""Any model by its Hugging Face config.json: field mapping per family, computed counts against the
published figures, errors, the safetensors cross-check, the Hub loader (offline) and the CLI."""
import json
import sys
from pathlib import Path

import pytest

from mlsysim_opt.catalog import Fabrics, Models, Nodes, audit_provenance, isolated, load_registry
from mlsysim_opt.cli import EXIT_BAD_INPUT, EXIT_OK, main
from mlsysim_opt.errors import InputError
from mlsysim_opt.hf_import import FAMILIES, from_hf_config, import_config, load_model
from mlsysim_opt.types import Fleet, TransformerWorkload

DATA = Path(__file__).parent / "data" / "hf_configs"


def config(name: str) -> dict:
    return json.loads((DATA / f"{name}.json").read_text())


# Published total (and, where the source gives one that uses the same convention, active) parameter
# counts, with where each figure comes from. "checkpoint" figures are the exact safetensors totals
# the Hugging Face model page shows; the others are the rounded figures of the card or paper.
PUBLISHED = {
    # file: (total, active or None, source)
    "Llama-2-7b-hf": (6.74e9, None, "Hugging Face checkpoint meta-llama/Llama-2-7b-hf: 6.74B (6,738,415,616)"),
    "Llama-3.1-8B": (8.03e9, None, "Hugging Face checkpoint meta-llama/Llama-3.1-8B: 8.03B (8,030,261,248)"),
    "Mistral-7B-v0.1": (7.24e9, None, "Hugging Face checkpoint mistralai/Mistral-7B-v0.1: 7.24B (7,241,732,096)"),
    "Mixtral-8x7B-v0.1": (46.7e9, 12.9e9, "Mistral AI, 'Mixtral of experts' announcement (2023): 46.7B total, "
                                          "12.9B per token"),
    "Qwen2.5-7B": (7.61e9, None, "Qwen/Qwen2.5-7B model card: 7.61B"),
    "Qwen3-8B": (8.2e9, None, "Qwen/Qwen3-8B model card: 8.2B"),
    "Qwen3-30B-A3B": (30.5e9, 3.3e9, "Qwen/Qwen3-30B-A3B model card: 30.5B total, 3.3B activated"),
    "Qwen1.5-MoE-A2.7B": (14.3e9, 2.7e9, "Qwen/Qwen1.5-MoE-A2.7B model card: 14.3B total, 2.7B activated"),
    "DeepSeek-V2-Lite": (15.7e9, None, "DeepSeek-V2 paper (Liu et al. 2024), Appendix B: V2-Lite 15.7B total"),
    "DeepSeek-V3": (671e9, 37e9, "DeepSeek-V3 technical report (2024): 671B total, 37B activated (main model, "
                                 "without the 14B MTP module)"),
    "gemma-2-9b": (9.24e9, None, "Hugging Face checkpoint google/gemma-2-9b: 9.24B (9,241,705,984)"),
    "gemma-3-1b-pt": (1.0e9, None, "Gemma 3 technical report / google/gemma-3-1b-pt model card: 1B "
                                   "(checkpoint 999,885,952)"),
    "Phi-3-mini-4k-instruct": (3.8e9, None, "microsoft/Phi-3-mini-4k-instruct model card: 3.8B"),
    "gpt2": (124e6, None, "openai-community/gpt2 model card: 124M (checkpoint 124,439,808)"),
    "pythia-1.4b": (1_414_647_808, None, "Pythia paper (Biderman et al. 2023), Table 1: 1,414,647,808 total"),
    "bert-base-uncased": (110e6, None, "BERT paper (Devlin et al. 2019): BERT-base 110M"),
}

# Exact totals of the released safetensors checkpoints (the architecture count must equal them).
CHECKPOINT = {
    "Llama-2-7b-hf": 6_738_415_616, "Llama-3.1-8B": 8_030_261_248, "Mistral-7B-v0.1": 7_241_732_096,
    "Mixtral-8x7B-v0.1": 46_702_792_704, "gemma-2-9b": 9_241_705_984, "gemma-3-1b-pt": 999_885_952,
    "gpt2": 124_439_808, "pythia-1.4b": 1_414_647_808, "bert-base-uncased": 109_482_240,
}


def test_test_data_covers_the_families():
    types = {config(p.stem)["model_type"] for p in DATA.glob("*.json")}
    assert len(list(DATA.glob("*.json"))) >= 12
    assert types >= {"llama", "llama4", "mistral", "mixtral", "qwen2", "qwen2_moe", "qwen3", "qwen3_moe",
                     "deepseek_v2", "deepseek_v3", "gemma2", "gemma3_text", "phi3", "gpt2", "gpt_neox", "bert"}
    assert types <= set(FAMILIES)


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_total_count_within_1_percent_of_the_published_figure(name):
    total, active, _source = PUBLISHED[name]
    record = from_hf_config(DATA / f"{name}.json")
    assert record.parameters == pytest.approx(total, rel=0.01)
    if active is not None:
        # Qwen3-30B-A3B (3.353B vs 3.3B) and DeepSeek-V3 (37.55B vs 37B) round down by 1.5-1.6%
        assert record.active_parameters == pytest.approx(active, rel=0.02)
    assert (record.parameters, record.active_parameters) == record.architecture_parameters()
    assert record.inference_flops.m_as("FLOP") == pytest.approx(2 * record.active_parameters)


@pytest.mark.parametrize("name", sorted(CHECKPOINT))
def test_exact_checkpoint_totals(name):
    assert from_hf_config(DATA / f"{name}.json").parameters == CHECKPOINT[name]


@pytest.mark.parametrize("name, key", [("Mixtral-8x7B-v0.1", "Mixtral_8x7B"), ("DeepSeek-V3", "DeepSeek_V3"),
                                       ("Qwen3-30B-A3B", "Qwen3_30B_A3B"),
                                       ("Llama-4-Scout-17B-16E", "Llama4_Scout")])
def test_import_matches_the_hand_written_registry_records(name, key):
    """The registry's MoE/MLA records were built from the same configs by hand: same architecture."""
    imported, reference = from_hf_config(DATA / f"{name}.json"), Models[key]
    assert (imported.parameters, imported.active_parameters) == reference.architecture_parameters()
    for field in ("layers", "hidden_size", "heads", "n_kv_heads", "d_head", "vocab_size", "experts",
                  "experts_per_token", "expert_ffn_size", "moe_layer_count", "attention_kind", "latent_kv_dim"):
        got, want = getattr(imported, field), getattr(reference, field)
        assert (got() if callable(got) else got) == (want() if callable(want) else want), field


def test_family_field_names_and_defaults():
    gpt2 = from_hf_config(DATA / "gpt2.json")
    assert (gpt2.hidden_size, gpt2.layers, gpt2.heads, gpt2.context_length) == (768, 12, 12, 1024)
    assert gpt2.ffn_size == 4 * 768 and gpt2.position_embeddings == 1024
    assert gpt2.tie_word_embeddings and not gpt2.gated_ffn and gpt2.norm_bias and gpt2.attention_bias
    assert gpt2.dtype is None
    bert = from_hf_config(DATA / "bert-base-uncased.json")
    assert bert.type_vocab_size == 2 and bert.pooler and bert.tie_word_embeddings and bert.position_embeddings == 512
    neox = from_hf_config(DATA / "pythia-1.4b.json")
    assert not neox.tie_word_embeddings and neox.mlp_bias and neox.norm_bias and neox.dtype == "float16"
    qwen2 = from_hf_config(DATA / "Qwen2.5-7B.json")
    assert qwen2.qkv_bias and not qwen2.attention_bias and qwen2.kv_heads == 4 and qwen2.d_head == 128
    without = TransformerWorkload(**{**qwen2.model_dump(exclude={"parameters", "active_parameters",
                                                                 "inference_flops", "provenance"}),
                                     "qkv_bias": False})
    assert qwen2.parameters - without.parameters == 28 * (28 * 128 + 2 * 4 * 128)
    llama2 = from_hf_config(DATA / "Llama-2-7b-hf.json")
    assert llama2.kv_heads == 32 and llama2.attention_kind == "mha" and llama2.d_head == 128
    gemma = from_hf_config(DATA / "gemma-2-9b.json")
    assert gemma.tie_word_embeddings and gemma.norms_per_layer == 4 and gemma.head_dim == 256
    assert gemma.dtype == "float32"
    g3 = from_hf_config(DATA / "gemma-3-1b-pt.json")
    assert g3.qk_norm and g3.attention_kind == "mqa"
    qwen_moe = from_hf_config(DATA / "Qwen1.5-MoE-A2.7B.json")
    assert qwen_moe.shared_experts == 4 and qwen_moe.expert_ffn_size == 1408 and qwen_moe.qkv_bias
    v2 = from_hf_config(DATA / "DeepSeek-V2-Lite.json")
    assert v2.q_lora_rank is None and v2.attention_kind == "mla" and not v2.router_bias
    assert v2.first_dense_layers == 1 and v2.moe_layer_count == 26
    assert from_hf_config(DATA / "DeepSeek-V3.json").router_bias


def test_gemma3_multimodal_reads_text_config():
    text = config("gemma-3-1b-pt")
    wrapped = {"model_type": "gemma3", "torch_dtype": "bfloat16", "text_config": {**text, "model_type": "gemma3_text"},
               "vision_config": {"model_type": "siglip_vision_model", "hidden_size": 1152}}
    assert from_hf_config(wrapped, "g3").parameters == from_hf_config(text, "g3").parameters


def test_gemma3_text_config_omissions_take_the_transformers_defaults():
    """Multimodal Gemma 3 configs give only some text_config keys; transformers fills the rest from
    Gemma3TextConfig (8 heads, 4 KV heads, head_dim 256, vocab 262208, 131072 positions)."""
    wrapped = {"model_type": "gemma3", "torch_dtype": "bfloat16",
               "text_config": {"hidden_size": 2560, "intermediate_size": 10240, "model_type": "gemma3_text",
                               "num_hidden_layers": 34}}
    imported = import_config(wrapped, "g3-text")
    record = imported.record
    assert (record.heads, record.kv_heads, record.head_dim, record.vocab_size) == (8, 4, 256, 262208)
    assert record.context_length == 131072 and "default" in imported.keys["heads"]
    with pytest.raises(InputError, match="layers"):
        from_hf_config({"model_type": "gemma3", "text_config": {"hidden_size": 2560, "intermediate_size": 10240}})


def test_names_provenance_dtype_and_overrides():
    record = from_hf_config(DATA / "Llama-3.1-8B.json")
    assert record.name == "Llama-3.1-8B" and record.dtype == "bfloat16" and record.context_length == 131072
    assert record.provenance["hidden_size"] == "config.json"
    assert set(record.provenance) >= {"layers", "hidden_size", "heads", "kv_heads", "vocab_size", "ffn_size",
                                      "parameters", "active_parameters", "inference_flops", "dtype"}
    assert set(record.provenance.values()) == {"config.json"}
    mine = from_hf_config(config("Llama-3.1-8B"), "mine", dtype="float16", source="my-notes")
    assert mine.name == "mine" and mine.dtype == "float16" and set(mine.provenance.values()) == {"my-notes"}
    wider = from_hf_config(DATA / "Llama-3.1-8B.json", overrides={"ffn_size": 16384})
    assert wider.ffn_size == 16384 and wider.parameters > record.parameters
    assert Models.from_hf_config(DATA / "Llama-3.1-8B.json").parameters == record.parameters
    with pytest.raises(InputError, match="not a file"):
        from_hf_config(DATA)  # a folder without config.json
    text = (DATA / "Llama-3.1-8B.json").read_text()  # the JSON text itself
    assert from_hf_config(text, "inline").parameters == record.parameters
    assert from_hf_config(str(DATA / "Llama-3.1-8B.json")).parameters == record.parameters


def test_folder_with_config_json_takes_the_folder_name(tmp_path):
    folder = tmp_path / "Qwen3-8B"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(config("Qwen3-8B")))
    record = from_hf_config(folder)
    assert record.name == "Qwen3-8B" and record.parameters == pytest.approx(8.19e9, rel=1e-3)


# ---- errors ------------------------------------------------------------------------------------


def test_unknown_model_type_is_one_input_error():
    with pytest.raises(InputError) as err:
        from_hf_config({"model_type": "mamba", "hidden_size": 768})
    assert "mamba" in str(err.value) and "llama" in str(err.value)


def test_missing_fields_are_named_together_with_the_fix():
    cfg = config("Llama-3.1-8B")
    del cfg["intermediate_size"], cfg["num_hidden_layers"]
    with pytest.raises(InputError) as err:
        from_hf_config(cfg, "broken")
    text = str(err.value)
    assert not isinstance(err.value, KeyError)
    assert "ffn_size" in text and "intermediate_size" in text and "layers" in text and "num_hidden_layers" in text
    assert "overrides=" in text
    fixed = from_hf_config(cfg, "broken", overrides={"ffn_size": 14336, "layers": 32})
    assert fixed.parameters == CHECKPOINT["Llama-3.1-8B"]


def test_missing_model_type_and_text_config():
    with pytest.raises(InputError, match="model_type"):
        from_hf_config({"hidden_size": 8})
    with pytest.raises(InputError, match="text_config"):
        from_hf_config({"model_type": "llama4"})


def test_non_json_file(tmp_path):
    bad = tmp_path / "config.json"
    bad.write_text("hidden_size: 4096\n")
    with pytest.raises(InputError, match="not JSON"):
        from_hf_config(bad)
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(InputError, match="not an object"):
        from_hf_config(tmp_path / "list.json")
    with pytest.raises(InputError, match="not a file"):
        from_hf_config(tmp_path / "absent.json")


@pytest.mark.parametrize("key, value", [("hidden_size", 0), ("num_hidden_layers", -2), ("intermediate_size", 0),
                                        ("vocab_size", -1), ("num_attention_heads", 0), ("hidden_size", 4096.5)])
def test_zero_negative_or_fractional_sizes(key, value):
    cfg = {**config("Llama-2-7b-hf"), key: value}
    with pytest.raises(InputError) as err:
        from_hf_config(cfg, "bad")
    assert key in str(err.value)


def test_heads_must_divide_hidden_without_head_dim():
    with pytest.raises(InputError, match="must divide hidden_size"):
        from_hf_config({**config("Llama-2-7b-hf"), "num_attention_heads": 30}, "bad")
    with pytest.raises(InputError, match="must divide num_attention_heads"):
        from_hf_config({**config("Llama-2-7b-hf"), "num_key_value_heads": 5}, "bad")
    # an explicit head_dim need not divide (Qwen3: 32 heads of 128 over hidden 2048)
    assert from_hf_config(DATA / "Qwen3-30B-A3B.json").d_head == 128


def test_unrepresentable_layer_patterns_and_bad_overrides():
    with pytest.raises(InputError, match="mlp_only_layers"):
        from_hf_config({**config("Qwen3-30B-A3B"), "mlp_only_layers": [3, 7]})
    leading = from_hf_config({**config("Qwen3-30B-A3B"), "mlp_only_layers": [0, 1]})
    assert leading.first_dense_layers == 2 and leading.moe_layer_count == 46
    with pytest.raises(InputError, match="moe_layer_freq"):
        from_hf_config({**config("DeepSeek-V2-Lite"), "moe_layer_freq": 2})
    with pytest.raises(InputError, match="not TransformerWorkload fields"):
        from_hf_config(DATA / "gpt2.json", overrides={"n_embd": 1024})
    with pytest.raises(InputError, match="dtype"):
        from_hf_config(DATA / "gpt2.json", dtype="float7")
    with pytest.raises(InputError, match="computed"):
        from_hf_config(DATA / "gpt2.json", overrides={"parameters": 1e9})


# ---- the safetensors index ---------------------------------------------------------------------


def _index(total_bytes: float) -> dict:
    return {"metadata": {"total_size": total_bytes}, "weight_map": {}}


def test_safetensors_index_beside_the_config(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(config("Llama-3.1-8B")))
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(_index(2 * 8_030_261_248)))
    assert from_hf_config(tmp_path).parameters == 8_030_261_248
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(_index(2 * 8.5e9)))
    with pytest.raises(InputError) as err:
        from_hf_config(tmp_path)
    assert "safetensors" in str(err.value) and "%" in str(err.value)
    with pytest.warns(UserWarning, match="safetensors"):
        assert from_hf_config(tmp_path, safetensors_check="warn").parameters == 8_030_261_248
    assert from_hf_config(tmp_path, safetensors_check="ignore").parameters == 8_030_261_248


def test_safetensors_index_dict_uses_the_dtype_width():
    gemma = config("gemma-2-9b")  # float32 weights: 4 bytes a parameter
    assert from_hf_config(gemma, safetensors_index=_index(4 * 9_241_705_984)).parameters == 9_241_705_984
    with pytest.raises(InputError, match="safetensors"):
        from_hf_config(gemma, safetensors_index=_index(2 * 9_241_705_984))  # the count read as bf16 is 2x off
    # within 2%: passes
    from_hf_config(config("Qwen3-8B"), safetensors_index=_index(2 * 8_190_735_360 * 1.015))
    with pytest.raises(InputError, match="dtype"):
        from_hf_config(config("gpt2"), safetensors_index=_index(4 * 124_439_808))
    assert from_hf_config(config("gpt2"), dtype="float32", safetensors_index=_index(4 * 124_439_808)).dtype == "float32"


# ---- the Hub loader, offline -------------------------------------------------------------------

REV = "0e9e39f249a16976918f6564b8830bc894c89659"


def fake_cache(root: Path, repo: str, files: dict[str, dict]) -> Path:
    """The documented hub cache layout: models--org--name/{refs/main, snapshots/<rev>/<file>}."""
    folder = root / ("models--" + repo.replace("/", "--"))
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text(REV)
    snap = folder / "snapshots" / REV
    snap.mkdir(parents=True)
    for name, data in files.items():
        (snap / name).write_text(json.dumps(data))
    return root


def test_load_model_from_the_local_cache(tmp_path, monkeypatch):
    pytest.importorskip("huggingface_hub")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cache = fake_cache(tmp_path / "hub", "Qwen/Qwen3-8B", {"config.json": config("Qwen3-8B")})
    record = load_model("Qwen/Qwen3-8B", cache_dir=cache)
    assert record.name == "Qwen3-8B" and record.parameters == 8_190_735_360
    assert record.provenance["hidden_size"] == f"hf://Qwen/Qwen3-8B@{REV}/config.json"
    assert load_model("Qwen/Qwen3-8B", REV, cache_dir=cache).parameters == 8_190_735_360
    with pytest.raises(InputError, match="HF_HUB_OFFLINE"):
        load_model("Qwen/Qwen3-9B", cache_dir=cache)
    with pytest.raises(InputError, match="org/name"):
        load_model("just-a-name", cache_dir=cache)


def test_load_model_checks_a_cached_safetensors_index(tmp_path, monkeypatch):
    pytest.importorskip("huggingface_hub")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cache = fake_cache(tmp_path / "hub", "meta-llama/Llama-3.1-8B",
                       {"config.json": config("Llama-3.1-8B"), "model.safetensors.index.json": _index(2 * 7e9)})
    with pytest.raises(InputError, match="safetensors"):
        load_model("meta-llama/Llama-3.1-8B", cache_dir=cache)
    assert load_model("meta-llama/Llama-3.1-8B", cache_dir=cache, safetensors_check="ignore").parameters > 8e9


def test_load_model_downloads_when_not_cached(tmp_path, monkeypatch):
    """Not in the cache: the second hf_hub_download call (without local_files_only) fetches it. The
    network is replaced by a stub; a failed fetch is one InputError."""
    hub = pytest.importorskip("huggingface_hub")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(hub.constants, "HF_HUB_OFFLINE", False)
    snap = fake_cache(tmp_path / "hub", "mistralai/Mistral-7B-v0.1", {"config.json": config("Mistral-7B-v0.1")})
    served = snap / "models--mistralai--Mistral-7B-v0.1" / "snapshots" / REV
    calls = []

    def fake_download(repo_id, filename, *, revision=None, cache_dir=None, local_files_only=False, **kw):
        calls.append((repo_id, filename, local_files_only))
        if local_files_only or filename != "config.json" or repo_id != "mistralai/Mistral-7B-v0.1":
            raise FileNotFoundError(filename)
        return str(served / filename)

    monkeypatch.setattr(hub, "hf_hub_download", fake_download)
    record = load_model("mistralai/Mistral-7B-v0.1", revision="main")
    assert record.parameters == 7_241_732_096
    assert ("mistralai/Mistral-7B-v0.1", "config.json", False) in calls
    assert record.provenance["layers"] == f"hf://mistralai/Mistral-7B-v0.1@{REV}/config.json"
    with pytest.raises(InputError, match="could not be fetched"):
        load_model("mistralai/Absent-Model")


def test_load_model_without_huggingface_hub(monkeypatch):
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)
    with pytest.raises(InputError, match=r'pip install "mlsysim-opt\[hf\]"'):
        load_model("Qwen/Qwen3-8B")


# ---- the CLI -----------------------------------------------------------------------------------


def test_cli_import_model_prints_and_writes_loadable_yaml(tmp_path, capsys):
    out_file = tmp_path / "imported_workloads.yaml"
    code = main(["import-model", str(DATA / "DeepSeek-V2-Lite.json"), "--name", "DSV2 Lite", "--write", str(out_file)])
    out = capsys.readouterr().out
    assert code == EXIT_OK and "kv_lora_rank" in out and "first_k_dense_replace" in out
    text = out_file.read_text()
    assert "sources:" in text and "source: hf-config-dsv2-lite" in text
    with isolated():
        assert load_registry(out_file) == 1
        record = Models["DSV2_Lite"]
        assert record.parameters == from_hf_config(DATA / "DeepSeek-V2-Lite.json").parameters
        assert record.provenance["kv_lora_rank"] == "hf-config-dsv2-lite"
        assert record.attention_kind == "mla" and record.dtype == "bfloat16"
        assert audit_provenance().ok, audit_provenance().problems


def test_an_imported_model_answers_every_cli_command_like_a_registered_one(tmp_path, capsys):
    from mlsysim_opt import Engine
    out_file = tmp_path / "qwen_workloads.yaml"
    assert main(["import-model", str(DATA / "Qwen3-8B.json"), "--name", "Qwen3 8B", "--write", str(out_file)]) == EXIT_OK
    capsys.readouterr()
    with isolated():
        assert main(["--registry", str(out_file), "solve", "Qwen3_8B", "H100", "--batch-size", "8", "--json"]) == EXIT_OK
        solved = json.loads(capsys.readouterr().out)
    expected = Engine.solve(from_hf_config(DATA / "Qwen3-8B.json"), "H100", batch_size=8)
    assert solved["latency"]["value"] == pytest.approx(expected.latency.m_as(solved["latency"]["unit"]), rel=1e-9)
    with isolated():
        assert main(["solve", "Qwen3_8B", "H100"]) != EXIT_OK     # not registered without --registry
    capsys.readouterr()


@pytest.mark.parametrize("name", ["gpt2", "bert-base-uncased", "Qwen1.5-MoE-A2.7B", "Llama-4-Scout-17B-16E"])
def test_cli_yaml_round_trips_every_field(name, tmp_path, capsys):
    out_file = tmp_path / "x.yaml"
    assert main(["import-model", str(DATA / f"{name}.json"), "--write", str(out_file)]) == EXIT_OK
    capsys.readouterr()
    original = from_hf_config(DATA / f"{name}.json")
    with isolated():
        load_registry(out_file, kind="workloads")
        loaded = Models[name]
        skip = {"provenance", "category", "inference_flops"}
        assert loaded.model_dump(exclude=skip) == original.model_dump(exclude=skip)


def test_cli_json_and_errors(tmp_path, capsys):
    code = main(["import-model", str(DATA / "gpt2.json"), "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == EXIT_OK and data["parameters"] == 124_439_808 and data["config_keys"]["hidden_size"] == "n_embd"
    assert main(["import-model", str(tmp_path / "nothing-here")]) == EXIT_BAD_INPUT
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "t5"}))
    assert main(["import-model", str(tmp_path)]) == EXIT_BAD_INPUT
    assert "t5" in capsys.readouterr().err


def test_cli_imports_from_the_hub_cache(tmp_path, monkeypatch, capsys):
    pytest.importorskip("huggingface_hub")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cache = fake_cache(tmp_path / "hub", "openai-community/gpt2", {"config.json": config("gpt2")})
    out_file = tmp_path / "gpt2_workloads.yaml"
    code = main(["import-model", "openai-community/gpt2", "--cache-dir", str(cache), "--write", str(out_file)])
    assert code == EXIT_OK and f"openai-community/gpt2@{REV}" in capsys.readouterr().out
    assert f"https://huggingface.co/openai-community/gpt2/blob/{REV}/config.json" in out_file.read_text()


# ---- imported models in the solvers ------------------------------------------------------------


@pytest.fixture(scope="module")
def qwen3():
    return from_hf_config(DATA / "Qwen3-8B.json")


def test_engine_solve(qwen3):
    from mlsysim_opt.engine import Engine
    p = Engine.solve(qwen3, "H100", batch_size=4)
    assert p.feasible and p.latency.m_as("ms") > 0
    moe = Engine.solve(from_hf_config(DATA / "Qwen3-30B-A3B.json"), "H100", batch_size=1)
    assert moe.latency.m_as("ms") > 0


def test_serving_model_solve(qwen3):
    from mlsysim_opt.solvers.serving import ServingModel
    r = ServingModel().solve(qwen3, "H100", seq_len=2048, batch_size=4)
    assert r.feasible


def test_parallelism_optimizer_solve(qwen3):
    from mlsysim_opt.solvers.parallelism import ParallelismOptimizer
    fleet = Fleet(name="one node", node=Nodes.DGX_H100, count=1, fabric=Fabrics.InfiniBand_NDR)
    r = ParallelismOptimizer.solve(qwen3, fleet, batch_size=8, seq_len=2048)
    assert r.status == "optimal" and r.best_config and r.best_step_time.m_as("s") > 0


def test_sla_synthesis(qwen3):
    from mlsysim_opt.formulations.sla_synthesis import synthesize
    r = synthesize(qwen3, qps=2, ttft="2 s", itl="200 ms", hardware=["H100"], precisions=["fp16"])
    assert r.feasible
