import copy
from dataclasses import asdict

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from citi.adapters import load_adapter, save_adapter
from citi.components import list_components
from citi.errors import CitiError, ConfigError
from citi.molora import (
    MoloraConfig,
    MoloraLinear,
    inject_molora,
    molora_parameters,
    routing_context,
    routing_loss,
    routing_loss_for,
)


def _randomize_b(model):
    with torch.no_grad():
        for p in molora_parameters(model, "experts"):
            p.normal_(0, 0.05)


def test_forward_equals_the_per_expert_formula():
    torch.manual_seed(0)
    base = nn.Linear(6, 5)
    layer = MoloraLinear(base, MoloraConfig(num_experts=3, rank=2, alpha=4))
    _randomize_b(layer)
    x = torch.randn(2, 4, 6)
    g = F.softmax(x @ layer.molora_router.weight.T, dim=-1)  # [2, 4, 4]: null + 3 experts
    expected = base(x) + sum(g[..., i + 1 : i + 2] * layer.expert_delta(x, i) for i in range(3))
    torch.testing.assert_close(layer(x), expected)
    # The scaling is alpha / r = 2.
    a, b = layer.molora_A[:2], layer.molora_B[:, :2]
    torch.testing.assert_close(layer.expert_delta(x, 0), (x @ a.T @ b.T) * 2.0)


def test_without_null_expert_the_gates_sum_to_one_over_experts():
    torch.manual_seed(0)
    layer = MoloraLinear(
        nn.Linear(4, 4, bias=False), MoloraConfig(num_experts=2, null_expert=False)
    )
    _randomize_b(layer)
    x = torch.randn(3, 4)
    g = F.softmax(x @ layer.molora_router.weight.T, dim=-1)
    assert g.shape == (3, 2)
    expected = F.linear(x, layer.weight) + sum(
        g[:, i : i + 1] * layer.expert_delta(x, i) for i in range(2)
    )
    torch.testing.assert_close(layer(x), expected)


@pytest.mark.parametrize("which", ["tiny_llama", "tiny_phi3"])
def test_zero_b_keeps_the_base_logits(which, request):
    loaded = request.getfixturevalue(which)
    model = copy.deepcopy(loaded.model)
    names = [c.name for c in list_components(model)][:3]
    inject_molora(model, names, MoloraConfig())
    ids = torch.tensor([[3, 4, 5, 6, 7]])
    torch.testing.assert_close(model(ids).logits, loaded.model(ids).logits)
    # Fused components are wrapped too, and the base weight Parameter is shared, not copied.
    layer = model.get_submodule(list_components(model)[0].path)
    assert isinstance(layer, MoloraLinear)
    new = {n for n, _ in model.named_parameters()} - {n for n, _ in loaded.model.named_parameters()}
    assert new and all("molora_" in n for n in new)


def test_routing_loss_by_hand():
    cfg = MoloraConfig(delta=0.5, routing_loss="cv2")
    z = torch.tensor([[1.0, 2.0], [3.0, 1.0]])  # 1 expert + null; row 0 tool, row 1 general
    task = torch.tensor([1, 0])
    # I = [[1.5, 0.5], [0.5, 1.5]] -> weighted = [1.5, 1.0, 1.5, 1.5]; mean 1.375;
    # unbiased var = ((.125² · 3) + .375²) / 3 = 0.0625
    assert routing_loss_for(z, task, cfg).item() == pytest.approx(0.0625 / 1.375**2)
    paper = MoloraConfig(delta=0.5, routing_loss="paper")
    assert routing_loss_for(z, task, paper).item() == pytest.approx(0.0625 / 1.375)


def test_routing_loss_ignores_padding(tiny_llama):
    model = copy.deepcopy(tiny_llama.model)
    inject_molora(model, ["layers.0.self_attn.q_proj", "layers.1.mlp.up_proj"], MoloraConfig())
    ids = torch.tensor([[5, 6, 7, 8], [9, 10, 0, 0]])
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]])
    task = torch.tensor([1, 0])
    with routing_context(model, mask):
        model(input_ids=ids, attention_mask=mask)
    loss_a = routing_loss(model, task)
    other = ids.clone()
    other[1, 2:] = 42  # different tokens in the padded positions
    with routing_context(model, mask):
        model(input_ids=other, attention_mask=mask)
    loss_b = routing_loss(model, task)
    assert loss_a is not None and loss_a.item() > 0
    torch.testing.assert_close(loss_a, loss_b)
    # Without a routing context (inference), nothing is recorded and no loss exists.
    model(input_ids=ids)
    assert routing_loss(model, task) is None


def test_save_load_reproduces_logits(tiny_llama, tmp_path):
    model = copy.deepcopy(tiny_llama.model)
    molora = ["layers.0.self_attn.q_proj", "layers.2.mlp.down_proj"]
    inject_molora(model, molora, MoloraConfig())
    _randomize_b(model)
    with torch.no_grad():  # a UCO-trained base weight
        model.model.layers[3].self_attn.v_proj.weight.add_(0.1)
    meta = {
        "base_model": "tiny-llama",
        "molora": asdict(MoloraConfig()),
        "molora_components": molora,
        "uco_components": ["layers.3.self_attn.v_proj"],
    }
    save_adapter(model, tmp_path / "ad", meta, {"model.layers.3.self_attn.v_proj.weight"})
    fresh = copy.deepcopy(tiny_llama.model)
    meta = load_adapter(fresh, tmp_path / "ad")
    assert meta["uco_components"] == ["layers.3.self_attn.v_proj"]
    ids = torch.tensor([[3, 4, 5, 6]])
    torch.testing.assert_close(fresh(ids).logits, model(ids).logits, rtol=0, atol=0)
    assert not torch.equal(fresh(ids).logits, tiny_llama.model(ids).logits)


def test_load_adapter_errors(tiny_llama, tmp_path):
    with pytest.raises(CitiError, match="--adapter"):
        load_adapter(copy.deepcopy(tiny_llama.model), tmp_path)
    with pytest.raises(CitiError, match="already has a MOLoRA"):
        m = copy.deepcopy(tiny_llama.model)
        inject_molora(m, ["layers.0.mlp.up_proj"], MoloraConfig())
        inject_molora(m, ["layers.0.mlp.up_proj"], MoloraConfig())


@pytest.mark.parametrize(
    "kwargs, option",
    [
        ({"num_experts": 0}, "--num-experts"),
        ({"rank": 0}, "--rank"),
        ({"delta": 1.0}, "--delta"),
        ({"routing_loss": "x"}, "--routing-loss"),
        ({"beta": -1}, "--beta"),
    ],
)
def test_config_validation(kwargs, option):
    with pytest.raises(ConfigError, match=option):
        MoloraConfig(**kwargs)
