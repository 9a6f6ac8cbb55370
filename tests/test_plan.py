"""citi plan: exact parameter counts from the config, bytes by hand for tiny-llama."""

import pytest

from citi.cli.main import main
from citi.errors import ConfigError
from citi.plan import (
    frozen_linear_parameters,
    model_config,
    model_shape,
    plan,
    trainable_parameters,
)

# tiny-llama: hidden 64, MLP 128, 4 layers, 4 heads of 16, 2 key/value heads (width 32), a
# 259-token vocabulary, untied embeddings, no biases.
EMBED = 259 * 64
LAYER = 64 * 64 * 2 + 64 * 32 * 2 + 64 * 128 * 3 + 2 * 64  # q, o; k, v; gate, up, down; norms
TOTAL = 2 * EMBED + 4 * LAYER + 64


@pytest.fixture(scope="module")
def shape():
    return model_shape(model_config("tiny-llama"))


def test_parameter_counts_come_from_the_config(shape):
    assert shape.total == TOTAL == 181_184
    assert len(shape.components) == 28 and shape.largest_layer == LAYER
    assert (shape.hidden, shape.kv_width, shape.intermediate, shape.vocab) == (64, 32, 128, 259)


def test_trainable_parameters_per_method(shape):
    assert trainable_parameters(shape, "ft") == (0, TOTAL)
    per_layer = 16 * (128 + 96 + 96 + 128 + 192 + 192 + 192)  # r * (in + out) per component
    assert trainable_parameters(shape, "lora") == (4 * per_layer, 4 * per_layer)
    # CITI without a selection: MOLoRA on the 6 largest components (gate, up, down of layers 0
    # and 1: 4 experts of rank 8, router with 5 outputs), UCO on the next 3 (8192 weights each)
    experts = 6 * 4 * 8 * (64 + 128)
    routers = 2 * (5 * 64 + 5 * 64 + 5 * 128)
    assert trainable_parameters(shape, "citi") == (experts + routers, experts + routers)
    selection = {"molora": ["layers.0.self_attn.q_proj"], "uco": ["layers.3.mlp.down_proj"]}
    added = 4 * 8 * 128 + 5 * 64
    assert trainable_parameters(shape, "citi", selection) == (added, 8192)


def test_bytes_per_strategy_by_hand(shape):
    result = plan(shape, "ft", tokens=32, devices=2, device_gib=1)
    per_token = 2 * (6 * 64 + 2 * 32 + 4 * 128) + 8 * 64  # 2432 bytes per token and layer
    acts, logits = 32 * per_token * 4, 8 * 259 * 32
    ddp = result["strategies"]["ddp"]["plain"]
    assert (ddp["weights"], ddp["gradients"], ddp["optimizer"]) == (4 * TOTAL, 4 * TOTAL, 8 * TOTAL)
    assert (ddp["activations"], ddp["logits"]) == (acts, logits)
    assert ddp["total"] == 16 * TOTAL + acts + logits and ddp["fits"]
    zero2 = result["strategies"]["zero2"]["plain"]
    assert zero2["total"] == 4 * TOTAL + 12 * TOTAL / 2 + acts + logits
    fsdp = result["strategies"]["fsdp"]["checkpointing"]
    ckpt_acts = 32 * (4 * 64 * 4 + per_token)
    assert fsdp["total"] == 16 * TOTAL / 2 + 4 * LAYER + ckpt_acts + logits
    small = plan(shape, "ft", tokens=32, devices=1, device_gib=1e-3)
    assert not small["strategies"]["ddp"]["plain"]["fits"]


def test_frozen_linear_weights_are_planned_in_bf16(shape):
    linear = 4 * (64 * 64 * 2 + 64 * 32 * 2 + 64 * 128 * 3)  # every component's weight
    head = 259 * 64  # tiny-llama's LM head is not tied to its embedding
    assert shape.head == head
    assert frozen_linear_parameters(shape, "ft") == 0
    assert frozen_linear_parameters(shape, "lora") == linear + head
    selection = {"molora": ["layers.0.self_attn.q_proj"], "uco": ["layers.3.mlp.down_proj"]}
    assert frozen_linear_parameters(shape, "citi", selection) == linear + head - 8192
    added, _ = trainable_parameters(shape, "lora")
    result = plan(shape, "lora", tokens=32, devices=2, device_gib=1)["strategies"]
    frozen = linear + head
    assert result["ddp"]["plain"]["weights"] == 4 * (TOTAL + added - frozen) + 2 * frozen
    assert result["zero2"]["plain"]["weights"] == result["ddp"]["plain"]["weights"]
    # FSDP keeps every weight in float32 (mixed dtypes in one sharded layer are not used).
    assert result["fsdp"]["plain"]["weights"] == 4 * (TOTAL + added) / 2 + 4 * LAYER
    tied = model_shape(model_config("smollm2-135m-instruct"))
    assert tied.head == 0  # SmolLM2's LM head is its embedding, kept in float32


def test_plan_cli_and_errors(capsys):
    assert main(["plan", "--model", "tiny-llama", "--method", "lora", "--devices", "2"]) == 0
    assert "zero2" in capsys.readouterr().out
    assert main(["plan", "--model", "nope-7b"]) == 2
    assert "no config for 'nope-7b'" in capsys.readouterr().err
    with pytest.raises(ConfigError):
        model_shape(model_config("tiny-llama")) and plan(
            model_shape(model_config("tiny-llama")), "ft", 1, 0, 80
        )


def _config_dir(tmp_path, name, **fields):
    import json

    folder = tmp_path / name
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(fields))
    return str(folder)


LLAMA = dict(
    model_type="llama",
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=2,
    vocab_size=100,
)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--device-memory", "inf"], "--device-memory: GiB per device must be a finite"),
        (["--device-memory", "nan"], "--device-memory"),
        (["--device-memory", "-80"], "--device-memory"),
        (["--max-length", "-4", "--batch-size", "-2"], "--max-length: must be a whole number"),
        (["--batch-size", "0"], "--batch-size: must be a whole number"),
        (["--devices", "-1"], "--devices: must be a whole number"),
        (["--model", "NEGATIVE"], "config.json field hidden_size must be a whole number >= 1"),
        (["--model", "BERT"], "a bert config is not a decoder-only causal language model"),
        (["--model", "T5"], "a t5 config is not a decoder-only causal language model"),
        (["--selection", "INTS"], "'molora' must be a list of component names"),
    ],
)
def test_plan_refuses_impossible_sizes_and_models(tmp_path, capsys, args, needle):
    import json

    dirs = {
        "NEGATIVE": _config_dir(tmp_path, "neg", **{**LLAMA, "hidden_size": -64}),
        "BERT": _config_dir(tmp_path, "bert", **{**LLAMA, "model_type": "bert"}),
        "T5": _config_dir(tmp_path, "t5", model_type="t5", d_model=64, num_layers=2),
        "INTS": str(tmp_path / "selection.json"),
    }
    (tmp_path / "selection.json").write_text(json.dumps({"molora": [1, 2], "uco": []}))
    argv = ["plan", "--model", "tiny-llama", *[dirs.get(a, a) for a in args]]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # no table saying everything fits
    (line,) = captured.err.strip().splitlines()
    assert line.startswith("citi: error:") and needle in line, line
