import pytest
import torch
from torch import nn
from transformers import AutoModelForCausalLM, LlamaConfig

from citi.components import list_components, resolve_components
from citi.data import PaddingCollator, encode_all, load_dataset
from citi.importance import (
    ImportanceHooks,
    combine_general,
    compute_importance,
    normalize,
    ranks,
)
from citi.loss import label_token_loss


def test_hand_computed_scores_with_bias():
    # y_t = W x_t + b for two tokens; L = Σ_t c_t · sum(y_t) with c = (1, -2), so g_t = c_t · 1.
    lin = nn.Linear(2, 2)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, 2.0], [3.0, 4.0]]))
        lin.bias.copy_(torch.tensor([0.5, -0.5]))
    lin.requires_grad_(False)
    hooks = ImportanceHooks({"lin": lin})
    x = torch.eye(2).unsqueeze(0).requires_grad_(True)  # [batch=1, seq=2, in=2]
    c = torch.tensor([1.0, -2.0])
    with hooks.attached():
        y = lin(x)  # y_1 = (1.5, 2.5), y_2 = (2.5, 3.5)
        (c * y.sum(-1)).sum().backward()
    # Σ_t y_t·g_t = 1·4 + (-2)·6 = -8; per-token absolute values 4 + 12 = 16.
    assert hooks.scores("taylor")["lin"] == pytest.approx(8.0, abs=1e-5)
    assert hooks.scores("token-abs")["lin"] == pytest.approx(16.0, abs=1e-5)
    # The same as θ·∂L/∂θ from ordinary autograd, weight and bias included.
    lin.requires_grad_(True)
    (c * lin(torch.eye(2).unsqueeze(0)).sum(-1)).sum().backward()
    theta_grad = (lin.weight * lin.weight.grad).sum() + (lin.bias * lin.bias.grad).sum()
    assert abs(theta_grad.item()) == pytest.approx(8.0, abs=1e-5)


def _batches(loaded, data_dir, batch_size=3, reverse=False):
    ex = load_dataset("apibank-train", data_dir)[:5] + load_dataset("gsm8k", data_dir)[:4]
    enc = encode_all(loaded.tokenizer, ex, 200)
    if reverse:
        enc = enc[::-1]
    collate = PaddingCollator(loaded.tokenizer.pad_token_id)
    return [collate(enc[i : i + batch_size]) for i in range(0, len(enc), batch_size)]


def _autograd_taylor(model, batches):
    for p in model.parameters():
        p.requires_grad_(True)
    model.zero_grad()
    for b in batches:
        label_token_loss(model, b).backward()
    names = [c.name for c in list_components(model)]
    mods = resolve_components(model, names)
    out = {}
    for n, m in mods.items():
        total = (m.weight * m.weight.grad).sum()
        if m.bias is not None:
            total = total + (m.bias * m.bias.grad).sum()
        out[n] = abs(total.item())
    for p in model.parameters():
        p.requires_grad_(False)
        p.grad = None
    return out


@pytest.mark.parametrize("which", ["tiny_llama", "tiny_phi3"])
def test_hook_taylor_equals_autograd_with_padding(which, request, data_dir):
    loaded = request.getfixturevalue(which)
    batches = _batches(loaded, data_dir)
    assert any((b["attention_mask"] == 0).any() for b in batches)  # padding is exercised
    hook = compute_importance(loaded.model, batches)
    ref = _autograd_taylor(loaded.model, batches)
    assert set(hook) == set(ref)
    for name in ref:
        assert hook[name] == pytest.approx(ref[name], rel=1e-4, abs=1e-9), name
    # Scoring never leaves weight gradients or trainable flags behind.
    assert all(p.grad is None for p in loaded.model.parameters())


def test_bias_components_equal_autograd(data_dir):
    from citi.models import byte_tokenizer

    tok = byte_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        attention_bias=True,
        mlp_bias=True,
        pad_token_id=0,
    )
    torch.manual_seed(1)
    model = AutoModelForCausalLM.from_config(config).eval()
    with torch.no_grad():  # biases start at zero: make them matter
        for m in model.modules():
            if isinstance(m, nn.Linear) and m.bias is not None:
                m.bias.normal_(0, 0.5)

    class L:
        tokenizer = tok

    batches = _batches(L, data_dir)
    hook = compute_importance(model, batches)
    ref = _autograd_taylor(model, batches)
    for name in ref:
        assert hook[name] == pytest.approx(ref[name], rel=1e-4, abs=1e-9), name


def test_order_and_batching_do_not_change_scores(tiny_llama, data_dir):
    a = compute_importance(tiny_llama.model, _batches(tiny_llama, data_dir, 3), "token-abs")
    b = compute_importance(
        tiny_llama.model, _batches(tiny_llama, data_dir, 2, reverse=True), "token-abs"
    )
    for name in a:
        assert a[name] == pytest.approx(b[name], rel=1e-5, abs=1e-9)
    again = compute_importance(tiny_llama.model, _batches(tiny_llama, data_dir, 3), "token-abs")
    assert ranks(again) == ranks(a)


def test_taylor_ties_scale_symmetric_pairs(tiny_llama, data_dir):
    # Scaling W_q or W_k by (1+ε) changes q·k identically, likewise W_v and W_o, and W_up and
    # W_down (the MLP output is linear in both): the paper's score ties these pairs exactly.
    s = compute_importance(tiny_llama.model, _batches(tiny_llama, data_dir))
    for layer in range(4):
        p = f"layers.{layer}."
        assert s[p + "self_attn.q_proj"] == pytest.approx(s[p + "self_attn.k_proj"], rel=1e-4)
        assert s[p + "self_attn.v_proj"] == pytest.approx(s[p + "self_attn.o_proj"], rel=1e-4)
        assert s[p + "mlp.up_proj"] == pytest.approx(s[p + "mlp.down_proj"], rel=1e-4)
        assert s[p + "mlp.gate_proj"] != pytest.approx(s[p + "mlp.up_proj"], rel=1e-3)


def test_unknown_score_is_rejected(tiny_llama):
    with pytest.raises(ValueError, match="unknown score"):
        compute_importance(tiny_llama.model, [], score="fisher")


def test_normalize_combine_and_ranks_by_hand():
    tool = normalize({"a": 1.0, "b": 3.0})
    assert tool == {"a": 0.25, "b": 0.75}
    c = combine_general({"tool": tool, "math": {"a": 0.5, "b": 0.5}, "code": {"a": 0.1, "b": 0.9}})
    assert c == pytest.approx({"a": 0.6, "b": 1.4})
    assert ranks({"a": 1.0, "b": 2.0, "c": 2.0}) == {"b": 1, "c": 2, "a": 3}
    with pytest.raises(ValueError):
        normalize({"a": 0.0})
