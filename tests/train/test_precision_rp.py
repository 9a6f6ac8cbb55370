"""Forward-only router pre-training (stage RP) and bf16 training."""

import json

import pytest
import torch
from safetensors.torch import load_file

from citi.adapters import load_adapter
from citi.loss import mean_token_loss
from citi.models import load_model
from citi.molora import (
    MoloraConfig,
    RouterPretrainingLoss,
    inject_molora,
    molora_parameters,
    routing_context,
    routing_loss,
)
from citi.precision import (
    autocast,
    resolve_precision,
    store_frozen_in_bf16,
    training_attention,
)
from citi.train.loop import Trainer
from tests.helpers import small_config

COMPONENTS = ["layers.0.self_attn.q_proj", "layers.1.mlp.up_proj", "layers.2.mlp.down_proj"]


def _batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, 200, (4, 12), generator=g)
    mask = torch.ones_like(ids)
    mask[1, :3] = 0  # left padding in one row
    labels = ids.clone()
    labels[:, :6] = -100
    labels[mask == 0] = -100
    return ids, mask, labels, torch.tensor([1, 0, 1, 0])


def _router_grads(model, forward_only: bool, precision: str):
    ids, mask, labels, task_type = _batch()
    routers = molora_parameters(model, "router")
    for p in model.parameters():
        p.requires_grad_(False)
    for p in routers:
        p.requires_grad_(True)
        p.grad = None
    with autocast(precision, "cpu"):
        if forward_only:
            loss = 0.01 * RouterPretrainingLoss(model)(ids, mask, task_type)
        else:
            batch = {"input_ids": ids, "attention_mask": mask, "labels": labels}
            with routing_context(model, mask):
                loss = mean_token_loss(model, batch) + 0.01 * routing_loss(model, task_type)
    loss.backward()
    return [p.grad.clone() for p in routers]


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_forward_only_rp_gives_the_full_backward_router_gradients(precision):
    model = load_model("tiny-llama", device="cpu").model
    inject_molora(model, COMPONENTS, MoloraConfig())
    model.train()
    full = _router_grads(model, forward_only=False, precision=precision)
    fast = _router_grads(model, forward_only=True, precision=precision)
    assert len(full) == 3
    for a, b in zip(full, fast, strict=True):
        assert a.abs().sum() > 0  # a real gradient, not two zeros
        torch.testing.assert_close(b, a, rtol=0, atol=1e-6)


def test_forward_only_rp_stops_above_the_highest_molora_layer():
    model = load_model("tiny-llama", device="cpu").model
    inject_molora(model, ["layers.0.self_attn.q_proj"], MoloraConfig())
    seen = []
    hooks = [
        layer.register_forward_hook(lambda m, a, o, i=i: seen.append(i))
        for i, layer in enumerate(model.model.layers)
    ]
    ids, mask, _, task_type = _batch()
    loss = RouterPretrainingLoss(model)(ids, mask, task_type)
    for h in hooks:
        h.remove()
    assert seen == [0] and loss.requires_grad


def test_rp_then_mi_gives_the_same_weights_either_way(tmp_path, data_dir, selection_file):
    finals = {}
    for forward_only in (True, False):
        out = tmp_path / f"fo-{forward_only}"
        trainer = Trainer(small_config(data_dir, selection_file, method="rp-mi"), out)
        trainer.forward_only_rp = forward_only
        trainer.run()
        finals[forward_only] = load_file(str(out / "final" / "adapter.safetensors"))
        records = [json.loads(line) for line in open(out / "metrics.jsonl")]
        rp = [r for r in records if r["stage"] == "rp"]
        assert rp and all((r["lm_loss"] is None) == forward_only for r in rp)
    assert finals[True].keys() == finals[False].keys()
    for k in finals[True]:
        torch.testing.assert_close(finals[True][k], finals[False][k], rtol=0, atol=1e-6)


def test_bf16_training_converges_with_float32_master_weights(tmp_path, data_dir, selection_file):
    out = tmp_path / "bf16"
    config = small_config(
        data_dir, selection_file, method="lora", precision="bf16", epochs={"lora": 4}
    )
    trainer = Trainer(config, out)
    seen = {}

    def check(stage, model):
        seen["trained"] = {p.dtype for n, p in model.named_parameters() if "lora_" in n}
        seen["frozen"] = {p.dtype for n, p in model.named_parameters() if "lora_" not in n}
        seen["model"] = model

    trainer.on_stage_end.append(check)
    summary = trainer.run()
    assert summary["precision"] == "bf16"
    assert seen["trained"] == {torch.float32}  # master weights stay float32
    # Frozen linear weights are stored in bf16 (what autocast would cast them to), the
    # embedding and norms in float32.
    assert seen["frozen"] == {torch.float32, torch.bfloat16}
    assert summary["bf16_frozen_parameters"] > 0
    losses = [json.loads(line)["lm_loss"] for line in open(out / "metrics.jsonl")]
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3  # it learns
    saved = load_file(str(out / "final" / "adapter.safetensors"))
    assert {t.dtype for t in saved.values()} == {torch.float32}
    assert "precision: bf16" in (out / "config.yaml").read_text()
    # The adapter reloads onto a fresh model with identical logits, in bf16 as trained.
    fresh = load_model("tiny-llama", device="cpu").model
    load_adapter(fresh, out / "final")
    ids = torch.tensor([[5, 6, 7, 8, 9]])
    trained = seen["model"].eval()
    with torch.no_grad(), autocast("bf16", "cpu"):
        torch.testing.assert_close(fresh(ids).logits, trained(ids).logits, rtol=0, atol=0)


def test_auto_precision_resolves_to_a_concrete_choice():
    assert resolve_precision("auto", "cpu") in ("fp32", "bf16")
    assert resolve_precision("fp32", "cpu") == "fp32"
    with pytest.raises(Exception, match="--precision"):
        resolve_precision("fp16", "cpu")


def test_snapshots_and_validation_split(tmp_path, data_dir, selection_file):
    from citi.train.data import tool_training_examples

    out = tmp_path / "snap"
    config = small_config(
        data_dir,
        selection_file,
        method="lora",
        snapshots=[0.25, 0.5, 0.75],
        validation=2,
        epochs={"lora": 4},
    )
    summary = Trainer(config, out).run()
    steps = summary["global_steps"]
    names = sorted(p.name for p in (out / "snapshots").iterdir())
    assert names == sorted(summary["snapshots"]) and len(names) == 3
    assert names[-1] == f"step-{round(0.75 * steps):05d}"
    # A snapshot reloads like a final adapter and differs from the final weights.
    snap = load_file(str(out / "snapshots" / names[0] / "adapter.safetensors"))
    final = load_file(str(out / "final" / "adapter.safetensors"))
    assert snap.keys() == final.keys()
    assert any(not torch.equal(snap[k], final[k]) for k in snap)
    # The held-out tool examples are logged and never trained on, whatever the seed.
    assert all("tool-validation" in e["loss"] for e in summary["eval"])
    for seed in (1, 2):
        train, held = tool_training_examples(
            small_config(data_dir, selection_file, seed=seed, validation=2)
        )
        assert len(held) == 2 and not {id(e) for e in train} & {id(e) for e in held}

        def key(e):
            return repr(e.messages)

        assert not {key(e) for e in train} & {key(e) for e in held}


def test_training_attention_switches_the_kernel_on_cpu_bf16_and_restores_it():
    model = load_model("tiny-llama", device="cpu").model
    own = model.config._attn_implementation
    with training_attention(model, "bf16", "cpu", backward=True) as kernel:
        assert kernel == "eager" and model.config._attn_implementation == "eager"
    assert model.config._attn_implementation == own
    with training_attention(model, "fp32", "cpu") as kernel:  # fp32: left alone
        assert kernel is None and model.config._attn_implementation == own
    ids = torch.tensor([[5, 6, 7, 8, 9]])
    with torch.no_grad(), autocast("bf16", "cpu"):
        sdpa = model(ids).logits
        with training_attention(model, "bf16", "cpu"):
            eager = model(ids).logits
    # The same function computed by another kernel: equal to bf16 rounding, not bit for bit.
    torch.testing.assert_close(eager, sdpa, rtol=0.05, atol=0.05)


def test_bf16_trainer_uses_eager_attention_with_a_backward_and_sdpa_for_forward_only_rp(
    tmp_path, data_dir, selection_file
):
    config = small_config(data_dir, selection_file, method="citi", precision="bf16")
    trainer = Trainer(config, tmp_path / "run")
    kernels = {}
    original = trainer._run_stage

    def run_stage(index, stage, model, *args):  # the kernel each stage trains with
        kernels[stage.name] = model.config._attn_implementation
        return original(index, stage, model, *args)

    trainer._run_stage = run_stage
    trainer.run()
    assert kernels["rp"] == "sdpa"
    assert kernels["mi"] == "eager" and kernels["uco"] == "eager"
    assert trainer.built.model.config._attn_implementation == "sdpa"  # restored after each stage


def test_store_frozen_in_bf16_casts_only_untrained_linear_weights():
    model = load_model("tiny-llama", device="cpu").model
    inject_molora(model, COMPONENTS, MoloraConfig())
    uco = "model.layers.3.mlp.gate_proj.weight"
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    info = store_frozen_in_bf16(model, lambda n: "molora_" in n or n == uco)
    params = dict(model.named_parameters())
    assert all(params[n].dtype == torch.float32 for n in params if "molora_" in n)
    assert params[uco].dtype == torch.float32
    assert params["model.embed_tokens.weight"].dtype == torch.float32
    assert params["model.norm.weight"].dtype == torch.float32
    cast = [n for n, p in params.items() if p.dtype == torch.bfloat16]
    assert "model.layers.0.self_attn.q_proj.weight" in cast  # a MOLoRA component's base weight
    assert "model.layers.3.mlp.down_proj.weight" in cast
    assert all(n.endswith("proj.weight") or n == "lm_head.weight" for n in cast)
    assert info["tensors"] == len(cast)
    assert info["saved_bytes"] == 2 * sum(params[n].numel() for n in cast)
    for n in cast:  # the very values autocast would have produced
        assert torch.equal(params[n], before[n].to(torch.bfloat16))


def test_bf16_frozen_weights_train_exactly_as_float32_storage(tmp_path, data_dir, selection_file):
    """``--dtype auto`` (frozen linears in bf16) and ``--dtype float32`` (every weight float32,
    cast by autocast at each use) give the same run, tensor for tensor."""
    runs = {}
    for dtype in ("auto", "float32"):
        config = small_config(
            data_dir, selection_file, method="citi", precision="bf16", dtype=dtype
        )
        runs[dtype] = Trainer(config, tmp_path / dtype).run()
    assert runs["auto"]["bf16_frozen_parameters"] > 0
    assert runs["float32"]["bf16_frozen_parameters"] == 0
    a = load_file(str(tmp_path / "auto" / "final" / "adapter.safetensors"))
    b = load_file(str(tmp_path / "float32" / "final" / "adapter.safetensors"))
    assert a.keys() == b.keys() and any(".mlp." in k and "molora_" not in k for k in a)  # UCO
    for k in a:
        assert a[k].dtype == torch.float32
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=k)
