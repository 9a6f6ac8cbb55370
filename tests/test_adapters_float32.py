"""Trained tensors keep float32 in a bf16 evaluation: an update smaller than one bf16 step of
the weight it changes survives save -> load_for_eval (it was rounded away before)."""

import pytest
import torch
import torch.nn.functional as F

from citi.adapters import (
    keep_trained_in_float32,
    load_for_eval,
    save_adapter,
    trains_every_base_weight,
)
from citi.models import load_model
from citi.train.loop import Trainer
from tests.helpers import small_config

TARGET = "model.layers.2.self_attn.v_proj"
META = {"base_model": "tiny-llama", "method": "uco", "molora": None, "lora": None}


def sub_step_update(w: torch.Tensor) -> torch.Tensor:
    """W + d with every |d| under half a bf16 step of its weight, chosen so that bf16(W + d) ==
    bf16(W) everywhere: rounding the trained weight to bf16 gives back the base weight."""
    spacing = torch.finfo(torch.bfloat16).eps * w.abs().clamp_min(1e-6)  # <= one bf16 step
    moved = w + 0.4 * spacing * w.sign()  # all in one direction, so the effect adds up
    kept = moved.to(torch.bfloat16) == w.to(torch.bfloat16)
    return torch.where(kept, moved, w)


def logits(model, ids):
    with torch.no_grad():
        return model(input_ids=ids).logits.float()


def save_run(tmp_path, keys):
    """A run whose trained tensors are ``keys`` (a sub-step update of each weight)."""
    model = load_model("tiny-llama", dtype="float32", device="cpu").model
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name in keys and name.endswith("weight"):
                p.copy_(sub_step_update(p))
    meta = META | {"molora_components": [], "uco_components": []}
    save_adapter(model, tmp_path / "run", meta, set(keys))
    return model, tmp_path / "run"


IDS = torch.tensor([[1, 5, 9, 2, 7, 3, 11, 4]])


def test_a_uco_update_below_one_bf16_step_survives_evaluation(tmp_path):
    keys = {f"{TARGET}.weight"}
    trained, run = save_run(tmp_path, keys)
    w = trained.get_submodule(TARGET).weight.detach()
    base_w = load_model("tiny-llama", dtype="float32", device="cpu").model
    base_w = base_w.get_submodule(TARGET).weight.detach()
    assert not torch.equal(w, base_w)
    assert torch.equal(w.to(torch.bfloat16), base_w.to(torch.bfloat16))  # bf16 would erase it

    base = load_for_eval("tiny-llama", None, device="cpu", precision="bf16").model
    tuned = load_for_eval("tiny-llama", str(run), device="cpu", precision="bf16").model
    module = tuned.get_submodule(TARGET)
    assert module.weight.dtype == torch.float32 and torch.equal(module.weight, w)
    other = tuned.get_submodule("model.layers.2.self_attn.q_proj").weight
    assert other.dtype == torch.bfloat16  # the frozen weights stay bf16
    x = torch.randn(3, module.in_features).to(torch.bfloat16)
    with torch.no_grad():
        out = module(x)
    # The module computes in float32 with the exact trained weight, handing back bf16.
    assert out.dtype == torch.bfloat16
    assert torch.equal(out, F.linear(x.float(), w).to(torch.bfloat16))
    assert not torch.equal(logits(tuned, IDS), logits(base, IDS))


def test_a_full_fine_tune_is_evaluated_in_float32_exactly(tmp_path):
    base = load_model("tiny-llama", dtype="float32", device="cpu").model
    keys = {n for n, _ in base.state_dict().items()}
    trained, run = save_run(tmp_path, keys)
    tuned = load_for_eval("tiny-llama", str(run), device="cpu", precision="bf16").model
    assert all(p.dtype == torch.float32 for p in tuned.parameters())
    # Exactly the float32 fine-tuned model: the evaluation differs from the base by the update.
    assert torch.equal(logits(tuned, IDS), logits(trained, IDS))
    assert not torch.equal(logits(tuned, IDS), logits(base, IDS))


@pytest.mark.parametrize("method", ["citi", "lora"])
def test_adapter_runs_evaluate_in_bf16_close_to_float32(tmp_path, data_dir, selection_file, method):
    """MOLoRA + UCO (CITI) and PEFT LoRA: the float32 trained tensors meet bf16 activations
    without a dtype error, and the bf16 evaluation stays close to the float32 one."""
    lr = {"uco": 1e-3} if method == "citi" else {}
    config = small_config(data_dir, selection_file, method=method, lr=lr)
    Trainer(config, tmp_path / "run").run()
    fp32 = load_for_eval("tiny-llama", str(tmp_path / "run"), device="cpu", precision="fp32")
    bf16 = load_for_eval("tiny-llama", str(tmp_path / "run"), device="cpu", precision="bf16")
    trained = [n for n, p in bf16.model.named_parameters() if p.dtype == torch.float32]
    assert trained and any(p.dtype == torch.bfloat16 for p in bf16.model.parameters())
    if method == "citi":
        assert any("v_proj.weight" in n for n in trained)  # a UCO component, float32
    a, b = logits(fp32.model, IDS), logits(bf16.model, IDS)
    assert (a - b).abs().max() < 0.05 * a.abs().max()


def tied_tiny(dtype):
    """tiny-llama with its output layer tied to the input embeddings, as SmolLM2's is."""
    model = load_model("tiny-llama", dtype=dtype, device="cpu").model
    model.lm_head.weight = model.model.embed_tokens.weight
    return model


def test_a_fine_tune_of_a_tied_model_counts_as_training_every_weight():
    model = tied_tiny("float32")
    saved = {n for n, _ in model.named_parameters()}  # one name per tied pair, as in a save
    assert "lm_head.weight" not in saved
    assert trains_every_base_weight(model, saved)
    assert not trains_every_base_weight(model, saved - {"model.embed_tokens.weight"})


def test_a_trained_tied_embedding_computes_in_float32_in_both_its_modules():
    trained = tied_tiny("float32")
    key = "model.embed_tokens.weight"
    with torch.no_grad():
        trained.get_parameter(key).copy_(sub_step_update(trained.get_parameter(key)))
    model = tied_tiny("bfloat16")
    state = {key: trained.get_parameter(key).detach().clone()}
    assert keep_trained_in_float32(model, state) == 1
    model.load_state_dict(state, strict=False)
    assert model.lm_head.weight.dtype == torch.float32
    hidden = torch.randn(3, model.config.hidden_size).to(torch.bfloat16)
    with torch.no_grad():
        out = model.get_output_embeddings()(hidden)  # the output layer alone, as the losses call it
        full = model(input_ids=IDS).logits
    assert out.dtype == torch.bfloat16 and full.dtype == torch.bfloat16
    assert torch.equal(out, F.linear(hidden.float(), state[key]).to(torch.bfloat16))
