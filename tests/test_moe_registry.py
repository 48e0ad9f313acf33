"""Mixture-of-experts and MLA fields of TransformerWorkload, the parameter counts computed from them,
and the MoE registry entries with their sources.

Published figures are the model cards' and papers' (``parameters`` / ``active_parameters`` in
registry/workloads.yaml), read at the precision they are published to: "37B" stands for any count
from 36.5B to 37.5B, "116.83B" for 116.825B to 116.835B. The architecture count must lie within 1% of
that interval. Against the point value four counts differ by more than 1% (DeepSeek-V3 active
37.55B vs 37B, +1.49%; Qwen3-30B-A3B active 3.353B vs 3.3B, +1.61%; Llama 4 Scout and Maverick
active 17.17B and 17.18B vs 17B, +1.0% and +1.1%), all of them figures given to two significant
digits; Llama 4 Scout's 109B also counts the vision encoder, which the language-model count
(107.77B) leaves out.
"""
import pytest

from mlsysim_opt import Hardware, Models, Systems, audit_provenance
from mlsysim_opt.catalog import Sources
from mlsysim_opt.errors import InputError
from mlsysim_opt.types import TransformerWorkload

MOE = ["Mixtral_8x7B", "Mixtral_8x22B", "DeepSeek_V3", "Qwen3_235B_A22B", "Qwen3_30B_A3B", "Llama4_Scout",
       "Llama4_Maverick", "GPT_OSS_120B", "GPT_OSS_20B"]

# (total, active) as published, in billions as written: Mistral's announcements, DeepSeek-V3 report,
# Qwen3 model cards, Llama 4 model card, gpt-oss model card (Table 1).
PUBLISHED = {
    "Mixtral_8x7B": ("46.7", "12.9"),
    "Mixtral_8x22B": ("141", "39"),
    "DeepSeek_V3": ("671", "37"),
    "Qwen3_235B_A22B": ("235", "22"),
    "Qwen3_30B_A3B": ("30.5", "3.3"),
    "Llama4_Scout": ("109", "17"),
    "Llama4_Maverick": ("400", "17"),
    "GPT_OSS_120B": ("116.83", "5.13"),
    "GPT_OSS_20B": ("20.91", "3.61"),
}

# The gpt-oss model card counts the unembedding but not the input-embedding lookup as active.
CONVENTION = {"GPT_OSS_120B": {"input_embeddings_active": False}, "GPT_OSS_20B": {"input_embeddings_active": False}}


def _counts(key):
    return Models[key].architecture_parameters(**CONVENTION.get(key, {}))


def _interval(billions: str) -> tuple[float, float]:
    """The counts a figure written as ``billions`` stands for: half a unit of its last digit either side."""
    decimals = len(billions.split(".")[1]) if "." in billions else 0
    half = 0.5 * 10 ** -decimals
    return (float(billions) - half) * 1e9, (float(billions) + half) * 1e9


def test_published_precision_is_read_from_the_figure():
    assert _interval("37") == (36.5e9, 37.5e9)
    lo, hi = _interval("116.83")
    assert lo == pytest.approx(116.825e9) and hi == pytest.approx(116.835e9)


def test_registry_holds_the_published_counts():
    for key, (total, active) in PUBLISHED.items():
        wl = Models[key]
        assert (wl.parameters, wl.active_parameters) == (float(total) * 1e9, float(active) * 1e9), key
        assert wl.category == "Language" and isinstance(wl, TransformerWorkload)


@pytest.mark.parametrize("which", ["total", "active"])
@pytest.mark.parametrize("key", MOE)
def test_architecture_count_matches_the_published_figure_within_1_percent(key, which):
    total, active = _counts(key)
    computed = total if which == "total" else active
    lo, hi = _interval(PUBLISHED[key][0 if which == "total" else 1])
    assert 0.99 * lo <= computed <= 1.01 * hi, (computed / 1e9, lo / 1e9, hi / 1e9)


# The checkpoints' own counts (Hugging Face safetensors metadata, "total") where the weights are stored
# unquantized; the architecture count reproduces them exactly.
CHECKPOINT = {
    "Mixtral_8x7B": 46_702_792_704,
    "Mixtral_8x22B": 140_620_634_112,
    "Qwen3_235B_A22B": 235_093_634_560,
    "Qwen3_30B_A3B": 30_532_122_624,
}
# Llama 4 checkpoints also hold the vision encoder and its projector (config.json vision_config).
LLAMA4_CHECKPOINT = {"Llama4_Scout": 108_641_793_536, "Llama4_Maverick": 401_583_781_376}


def _llama4_vision_parameters(hidden=1408, intermediate=5632, layers=34, patch=14, image=336, channels=3,
                              projector_in=4096, projector_out=4096, vision_out=4096, text_hidden=5120) -> int:
    """Llama 4's vision tower: patch projection, class and position embeddings, pre/post LayerNorms,
    ``layers`` encoder layers (q/k/v/o and a 2-matrix MLP, all with biases, two LayerNorms), the
    pixel-shuffle MLP adapter and the projector into the text model."""
    patches = (image // patch) ** 2 + 1
    embed = channels * patch * patch * hidden + hidden + patches * hidden + 2 * 2 * hidden
    layer = 4 * (hidden * hidden + hidden) + 2 * hidden * intermediate + intermediate + hidden + 2 * 2 * hidden
    adapter = intermediate * projector_in + projector_out * projector_out
    return embed + layers * layer + adapter + vision_out * text_hidden


def test_checkpoint_counts():
    for key, count in CHECKPOINT.items():
        assert Models[key].architecture_parameters()[0] == count, key
    vision = _llama4_vision_parameters()
    assert vision == 871_932_416
    for key, count in LLAMA4_CHECKPOINT.items():
        assert Models[key].architecture_parameters()[0] + vision == count, key
    # the Llama 4 card's totals are the checkpoints' counts, rounded
    assert round(LLAMA4_CHECKPOINT["Llama4_Scout"] / 1e9) == 109
    assert LLAMA4_CHECKPOINT["Llama4_Maverick"] == pytest.approx(400e9, rel=0.005)


def test_gpt_oss_card_breakdown():
    """Table 1 of the gpt-oss model card: MLP, attention, embedding + unembedding."""
    for key, mlp, attention in (("GPT_OSS_120B", 114.71e9, 0.96e9), ("GPT_OSS_20B", 19.12e9, 0.64e9)):
        wl = Models[key]
        h, L, E = wl.hidden_size, wl.layers, wl.experts
        router = h * E + E
        assert wl.expert_parameters() + L * router == pytest.approx(mlp, abs=0.005e9)
        assert L * wl._attention_parameters() == pytest.approx(attention, abs=0.005e9)
        total_default, active_default = wl.architecture_parameters()
        total_card, active_card = wl.architecture_parameters(input_embeddings_active=False)
        assert total_default == total_card
        assert active_default - active_card == wl.vocab_size * wl.hidden_size  # the lookup table
        assert 2 * wl.vocab_size * wl.hidden_size == pytest.approx(1.16e9, abs=0.005e9)


def test_dense_llama3_architecture_counts():
    for key in ("Llama3_8B", "Llama3_70B", "Llama3_405B"):
        wl = Models[key]
        total, active = wl.architecture_parameters()
        assert total == active
        assert total == pytest.approx(wl.parameters, rel=0.005), key


def test_inference_flops_are_twice_the_published_active_parameters():
    for key in MOE:
        wl = Models[key]
        assert wl.flops_per_unit() == pytest.approx(2 * wl.active_parameters, rel=1e-3), key
        assert wl.provenance["inference_flops"] == "kaplan-scaling-2020"


def test_mixtral_expert_parameters():
    wl = Models.Mixtral_8x7B
    assert wl.expert_parameters() == 32 * 8 * 3 * 4096 * 14336
    assert wl.moe_layer_count == 32 and wl.is_moe


def test_expert_parameters_fallback_from_published_counts():
    """A record with only the published counts: routed = E/(E-k) x (total - active)."""
    old = TransformerWorkload(name="Mixtral (counts only)", parameters=46.7e9, active_parameters=12.9e9, layers=32,
                              hidden_size=4096, heads=32, kv_heads=8, experts=8, experts_per_token=2)
    assert old.expert_parameters() == pytest.approx(8 / 6 * (46.7e9 - 12.9e9))
    assert old.expert_parameters() == pytest.approx(Models.Mixtral_8x7B.expert_parameters(), rel=0.001)
    assert old.architecture_parameters() is None  # no vocab_size, no expert width
    no_active = old.model_copy(update={"active_parameters": None})
    assert no_active.expert_parameters() == 0.0  # nothing to solve from


def test_expert_parameters_are_the_difference_between_total_and_active():
    for key in MOE:
        wl = Models[key]
        total, active = wl.architecture_parameters()
        skipped = wl.experts - wl.experts_per_token
        assert total - active == pytest.approx(wl.expert_parameters() * skipped / wl.experts), key


def test_moe_layer_rule_matches_the_configs():
    maverick, deepseek, scout = Models.Llama4_Maverick, Models.DeepSeek_V3, Models.Llama4_Scout
    # Hugging Face Llama 4: moe_layers = range(step - 1, layers, step)
    assert [i for i in range(48) if maverick.is_moe_layer(i)] == list(range(1, 48, 2))
    assert maverick.moe_layer_count == 24
    assert [i for i in range(48) if scout.is_moe_layer(i)] == list(range(48))
    # DeepSeek-V3: first_k_dense_replace = 3, moe_layer_freq = 1
    assert [i for i in range(61) if deepseek.is_moe_layer(i)] == list(range(3, 61))
    assert deepseek.moe_layer_count == 58


@pytest.mark.parametrize("layers,first,step", [(48, 0, 2), (61, 3, 1), (10, 2, 3), (7, 0, 7), (9, 4, 2), (5, 0, 1)])
def test_moe_layer_count_agrees_with_the_per_layer_rule(layers, first, step):
    wl = TransformerWorkload(name="t", parameters=1e9, layers=layers, hidden_size=64, heads=4, experts=4,
                             experts_per_token=1, first_dense_layers=first, moe_layer_step=step)
    moe = [i for i in range(layers) if wl.is_moe_layer(i)]
    assert wl.moe_layer_count == len(moe)
    assert moe == [i for i in range(layers) if i >= first and (i - first + 1) % step == 0]
    if first == 0:
        assert moe == list(range(step - 1, layers, step))


def test_mla_latent_and_head_width():
    ds = Models.DeepSeek_V3
    assert ds.attention_kind == "mla"
    assert ds.latent_kv_dim() == 512 + 64
    assert ds.d_head == 128 + 64  # query/key width; no head_dim in the config
    # one latent of 576 elements per token per layer instead of K and V for 128 heads of 128: 57x less
    assert 2 * ds.n_kv_heads * ds.v_head_dim / ds.latent_kv_dim() == pytest.approx(56.9, abs=0.05)


def test_dense_records_are_not_moe():
    wl = Models.Llama3_8B
    assert not wl.is_moe and wl.moe_layer_count == 0
    assert wl.expert_parameters() == 0.0
    assert wl.latent_kv_dim() == 0
    assert wl.attention_kind == "gqa"
    assert Models.GPT3.attention_kind == "mha"


def test_attention_kind_is_inferred_from_the_heads():
    base = dict(parameters=1e9, layers=2, hidden_size=64, heads=8)
    assert TransformerWorkload(name="a", **base).attention_kind == "mha"
    assert TransformerWorkload(name="b", kv_heads=1, **base).attention_kind == "mqa"
    assert TransformerWorkload(name="c", kv_heads=2, **base).attention_kind == "gqa"
    assert TransformerWorkload(name="d", kv_heads=2, attention="gqa", **base).attention_kind == "gqa"


def test_counts_are_derived_when_absent():
    fields = {name: getattr(Models.Qwen3_30B_A3B, name) for name in (
        "layers", "hidden_size", "heads", "kv_heads", "head_dim", "vocab_size", "experts", "experts_per_token",
        "expert_ffn_size", "qk_norm")}
    wl = TransformerWorkload(name="Qwen3-30B-A3B (derived)", **fields)
    assert (wl.parameters, wl.active_parameters) == Models.Qwen3_30B_A3B.architecture_parameters()
    dense = TransformerWorkload(name="dense", layers=32, hidden_size=4096, heads=32, kv_heads=8, head_dim=128,
                                vocab_size=128256, ffn_size=14336)
    assert dense.parameters == Models.Llama3_8B.architecture_parameters()[0]
    assert dense.active_parameters is None and dense.active_parameters_count() == dense.parameters
    with pytest.raises(InputError, match="parameters"):
        TransformerWorkload(name="no count", layers=2, hidden_size=64, heads=4)  # nothing to derive from


# ---- validation ----------------------------------------------------------------------------------

BASE = dict(parameters=1e9, layers=8, hidden_size=256, heads=8, kv_heads=8, experts=8, experts_per_token=2)


def _fields(err: InputError) -> list[str]:
    return [e.field for e in err.errors]


def test_mla_needs_its_fields_and_names_the_missing_ones():
    with pytest.raises(InputError) as err:
        TransformerWorkload(name="MLA", attention="mla", kv_lora_rank=64, **BASE)
    assert _fields(err.value) == ["MLA.qk_nope_head_dim", "MLA.qk_rope_head_dim", "MLA.v_head_dim"]
    assert "missing: qk_nope_head_dim, qk_rope_head_dim, v_head_dim" in str(err.value)
    ok = TransformerWorkload(name="MLA", kv_lora_rank=64, qk_nope_head_dim=32, qk_rope_head_dim=16, v_head_dim=32,
                             **BASE)
    assert ok.attention_kind == "mla" and ok.latent_kv_dim() == 80
    with pytest.raises(InputError) as err:  # MLA widths on a GQA model
        TransformerWorkload(name="G", attention="gqa", kv_lora_rank=64, **{**BASE, "kv_heads": 2})
    assert _fields(err.value) == ["G.attention"] and "kv_lora_rank" in str(err.value)


@pytest.mark.parametrize("step", [0, -1, 9])
def test_bad_moe_layer_step(step):
    with pytest.raises(InputError) as err:
        TransformerWorkload(name="S", moe_layer_step=step, **BASE)
    assert err.value.field == "S.moe_layer_step"


def test_first_dense_layers_must_leave_a_moe_layer():
    with pytest.raises(InputError) as err:
        TransformerWorkload(name="F", first_dense_layers=8, **BASE)
    assert err.value.field == "F.first_dense_layers"
    with pytest.raises(InputError) as err:
        TransformerWorkload(name="F", first_dense_layers=-1, **BASE)
    assert err.value.field == "F.first_dense_layers"


@pytest.mark.parametrize("attention,kv_heads", [("mqa", 8), ("mha", 2), ("gqa", 8)])
def test_attention_kind_must_agree_with_kv_heads(attention, kv_heads):
    with pytest.raises(InputError) as err:
        TransformerWorkload(name="A", attention=attention, **{**BASE, "kv_heads": kv_heads})
    assert err.value.field == "A.attention"
    assert f"kv_heads is {kv_heads}" in str(err.value)


def test_counts_and_moe_only_fields():
    cases = [
        (dict(BASE, experts_per_token=9), "E.experts_per_token"),
        (dict(BASE, shared_experts=-1), "E.shared_experts"),
        (dict(BASE, expert_ffn_size=0), "E.expert_ffn_size"),
        (dict(BASE, ffn_size=-5), "E.ffn_size"),
        (dict(BASE, kv_lora_rank=0, qk_nope_head_dim=1, qk_rope_head_dim=1, v_head_dim=1), "E.kv_lora_rank"),
        (dict(BASE, active_parameters=2e9), "E.active_parameters"),
        (dict(BASE, experts=None, experts_per_token=None, shared_experts=1), "E.shared_experts"),
        (dict(BASE, experts=None, experts_per_token=None, moe_layer_step=2), "E.moe_layer_step"),
        (dict(BASE, experts=None), "E.experts_per_token"),
    ]
    for fields, name in cases:
        with pytest.raises(InputError) as err:
            TransformerWorkload(name="E", **fields)
        assert name in _fields(err.value), (fields, str(err.value))


def test_several_problems_are_reported_together():
    with pytest.raises(InputError) as err:
        TransformerWorkload(name="M", attention="mqa", moe_layer_step=0, shared_experts=-2, **BASE)
    assert set(_fields(err.value)) == {"M.attention", "M.moe_layer_step", "M.shared_experts"}


# ---- registry: sources ---------------------------------------------------------------------------

ARCHITECTURE = ("parameters", "active_parameters", "inference_flops", "layers", "hidden_size", "heads",
                "kv_heads", "vocab_size", "context_length", "experts", "experts_per_token", "expert_ffn_size")


def test_every_new_value_has_a_source_that_resolves():
    keys = (*MOE, "Llama3_8B", "Llama3_70B", "Llama3_405B", "H800", "DGX_H800", "DeepSeek_V3_2048_H800")
    ours = [p for p in audit_provenance().problems if any(f":{k}." in p or f":{k}:" in p for k in keys)]
    assert not ours, ours  # the whole registry's audit is test_registry's
    records = [Models[k] for k in MOE] + [Hardware.H800, Systems.Nodes.DGX_H800,
                                          Systems.Clusters.DeepSeek_V3_2048_H800]
    for record in records:
        assert record.provenance, record.name
        for path, sid in record.provenance.items():
            assert sid in Sources, (record.name, path, sid)
            assert Sources[sid]["kind"] in {"paper", "website", "report", "datasheet", "estimate"}
            assert Sources[sid].get("url") or Sources[sid].get("document")
    for key in MOE:
        wl = Models[key]
        missing = [f for f in ARCHITECTURE if f not in wl.provenance]
        assert not missing, (key, missing)
        # every numeric architecture field that is set carries its source
        for field in ("shared_experts", "ffn_size", "first_dense_layers", "moe_layer_step", "kv_lora_rank",
                      "q_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim", "head_dim"):
            if field in wl.model_fields_set:
                assert field in wl.provenance, (key, field)
    ds = Models.DeepSeek_V3.provenance
    assert {ds[f] for f in ("kv_lora_rank", "q_lora_rank", "expert_ffn_size", "first_dense_layers")} \
        == {"hf-deepseek-v3-config"}
    assert Sources["deepseek-v3-2024"]["kind"] == "paper"


def test_h800_node_and_deepseek_cluster():
    h800, h100 = Hardware.H800, Hardware.H100
    assert h800.compute.peak_flops == h100.compute.peak_flops
    assert h800.memory.bandwidth == h100.memory.bandwidth and h800.memory.capacity == h100.memory.capacity
    assert h800.tdp.to("W").magnitude == 700
    node = Systems.Nodes.DGX_H800
    assert node.accelerator is h800 and node.accelerators_per_node == 8 and node.nics == 8
    assert node.intra_node_bandwidth.to("GB/s").magnitude == pytest.approx(200)
    cluster = Systems.Clusters.DeepSeek_V3_2048_H800
    assert cluster.total_accelerators == 2048 and cluster.count == 256
    assert cluster.fabric is Systems.Fabrics.InfiniBand_NDR
    assert cluster.provenance["count"] == "deepseek-v3-2024"
    assert node.provenance["intra_node_bandwidth"] == "zhao-deepseek-v3-hardware-2025"
