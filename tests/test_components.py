import pytest
from torch import nn

from citi.components import list_components, resolve_components
from citi.errors import CitiError


def test_tiny_llama_components(tiny_llama):
    comps = list_components(tiny_llama.model)
    assert len(comps) == 4 * 7
    assert [c.kind for c in comps[:7]] == ["q", "k", "v", "o", "gate", "up", "down"]
    assert comps[0].name == "layers.0.self_attn.q_proj"
    assert comps[6].name == "layers.0.mlp.down_proj"
    assert comps[-1].layer == 3
    # k/v are smaller than q because of grouped-query attention (2 kv heads of 4).
    q, k = comps[0], comps[1]
    assert (q.out_features, q.in_features) == (64, 64)
    assert (k.out_features, k.in_features) == (32, 64)
    assert k.numel == 32 * 64
    names = {c.name for c in comps}
    assert not any("lm_head" in n or "embed" in n or "norm" in n for n in names)


def test_tiny_phi3_fused_components(tiny_phi3):
    comps = list_components(tiny_phi3.model)
    assert len(comps) == 2 * 4
    assert [c.kind for c in comps[:4]] == ["qkv", "o", "gate_up", "down"]
    assert comps[0].name == "layers.0.self_attn.qkv_proj"
    assert comps[0].out_features == 3 * 64


def test_resolve_components_returns_the_modules(tiny_llama):
    mods = resolve_components(tiny_llama.model, ["layers.1.mlp.up_proj"])
    assert mods["layers.1.mlp.up_proj"] is tiny_llama.model.model.layers[1].mlp.up_proj


def test_resolve_unknown_name_suggests_closest(tiny_llama):
    with pytest.raises(CitiError, match="did you mean 'layers.1.mlp.up_proj'"):
        resolve_components(tiny_llama.model, ["layers.1.mlp.upproj"])


def test_model_without_decoder_layers_is_a_clear_error():
    model = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
    with pytest.raises(CitiError, match="no decoder layers found in Sequential"):
        list_components(model)


def test_adapter_parameters_are_recognised_by_structure():
    from citi.components import adapter_kind

    assert adapter_kind("model.layers.0.mlp.up_proj.molora_router.weight") == "molora"
    assert adapter_kind("model.layers.0.self_attn.q_proj.lora_A.default.weight") == "lora"
    assert adapter_kind("model.layers.0.mlp.up_proj.weight") is None
    assert adapter_kind("model.flora_x.weight") is None  # a substring is not a prefix
