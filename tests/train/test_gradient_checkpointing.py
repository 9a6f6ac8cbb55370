"""--gradient-checkpointing recomputes activations; the loss and gradients must not change."""

import pytest
import torch

from citi.data import PaddingCollator
from citi.loss import CausalLMLoss
from citi.molora import routing_context, routing_loss
from citi.train.data import build_training_data
from citi.train.params import group_parameter_names, set_trainable
from citi.train.setup import build_model, load_selection
from tests.helpers import small_config


def _loss_and_grads(config, group):
    torch.manual_seed(0)
    selection = load_selection(config)
    loaded, model, _, _ = build_model(config, selection, "cpu")
    assert model.is_gradient_checkpointing == config.gradient_checkpointing
    if group == "molora":  # B = 0 after injection: give the experts something to route
        with torch.no_grad():
            for n, p in model.named_parameters():
                if "molora_B" in n:
                    p.normal_(0, 0.02, generator=torch.Generator().manual_seed(len(n)))
    params = set_trainable(model, group_parameter_names(model, group, selection))
    model.train()
    encoded, _ = build_training_data(config, loaded.tokenizer)
    batch = PaddingCollator(loaded.tokenizer.pad_token_id)(encoded[:2])
    with routing_context(model, batch["attention_mask"]):
        loss = CausalLMLoss(model)(batch["input_ids"], batch["attention_mask"], batch["labels"])
        rl = routing_loss(model, batch["task_type"])
        total = loss + 0.01 * rl if rl is not None else loss
        total.backward()
    return total.detach(), [p.grad.clone() for p in params]


@pytest.mark.parametrize("method, group", [("citi", "molora"), ("lora", "lora"), ("ft", "all")])
def test_checkpointing_leaves_loss_and_gradients_unchanged(data_dir, selection_file, method, group):
    plain = _loss_and_grads(small_config(data_dir, selection_file, method=method), group)
    config = small_config(data_dir, selection_file, method=method, gradient_checkpointing=True)
    ckpt = _loss_and_grads(config, group)
    assert torch.allclose(plain[0], ckpt[0], atol=1e-5)
    assert len(plain[1]) == len(ckpt[1]) > 0
    for a, b in zip(plain[1], ckpt[1], strict=True):
        assert torch.allclose(a, b, atol=1e-5, rtol=1e-4)
    assert any(g.abs().sum() > 0 for g in ckpt[1])
