import dataclasses
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from citi.adapters import load_adapter
from citi.config import load_yaml_config
from citi.errors import CitiError, ConfigError
from citi.models import load_model
from citi.train.config import TrainConfig
from citi.train.loop import Trainer
from citi.train.methods import METHODS
from tests.helpers import small_config

ROOT = Path(__file__).resolve().parents[2]


def _snapshot(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _changed(before, after):
    return {k for k in after if k in before and not torch.equal(before[k], after[k])}


def test_each_citi_stage_changes_exactly_its_parameters(tmp_path, data_dir, selection_file):
    config = small_config(data_dir, selection_file, lr={"uco": 1e-3})
    trainer = Trainer(config, tmp_path / "run")
    starts, ends = {}, {}
    trainer.on_stage_start.append(
        lambda stage, model: starts.update({stage.name: _snapshot(model)})
    )
    trainer.on_stage_end.append(lambda stage, model: ends.update({stage.name: _snapshot(model)}))
    trainer.run()
    assert list(ends) == ["rp", "mi", "uco"]
    keys = set(starts["rp"])
    routers = {k for k in keys if "molora_router" in k}
    experts = {k for k in keys if "molora_A" in k or "molora_B" in k}
    assert len(routers) == 3 and len(experts) == 6
    # Stage 1: only the routers move (B = 0, so the routing loss alone drives them).
    assert _changed(starts["rp"], ends["rp"]) == routers
    # Stage 2: routers and experts; every base weight bit-identical.
    assert _changed(starts["mi"], ends["mi"]) == routers | experts
    # Stage 3: only the UCO components' base weights; MOLoRA frozen.
    assert _changed(starts["uco"], ends["uco"]) == {
        "model.layers.2.self_attn.v_proj.weight",
        "model.layers.0.mlp.gate_proj.weight",
    }
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["trainable_parameters"]["uco"] == 32 * 64 + 128 * 64
    assert summary["trainable_parameters"]["rp"] == 5 * (64 + 64 + 128)  # routers: 5 outputs


def test_saved_adapter_reproduces_the_trained_model(tmp_path, data_dir, selection_file):
    for method in ("citi", "lora"):
        out = tmp_path / method
        config = small_config(data_dir, selection_file, method=method, lr={}, epochs={})
        trainer = Trainer(config, out)
        final = {}
        trainer.on_stage_end.append(lambda s, m, final=final: final.update(model=m))
        trainer.run()
        fresh = load_model("tiny-llama", device="cpu").model
        meta = load_adapter(fresh, out / "final")
        assert meta["method"] == method
        ids = torch.tensor([[5, 6, 7, 8, 9]])
        trained = final["model"].eval()
        torch.testing.assert_close(fresh(ids).logits, trained(ids).logits, rtol=0, atol=0)
        base = load_model("tiny-llama", device="cpu").model
        assert not torch.allclose(fresh(ids).logits, base(ids).logits)


def test_resume_gives_the_same_weights(tmp_path, data_dir, selection_file):
    config = small_config(data_dir, selection_file, save_every=1)
    Trainer(config, tmp_path / "full").run()
    cut = dataclasses.replace(config, max_steps=9)  # inside stage 2 (stage 1 has 5 steps)
    assert Trainer(cut, tmp_path / "cut").run()["paused_at_step"] == 9
    assert not (tmp_path / "cut" / "final").exists()
    assert json.loads((tmp_path / "cut" / "checkpoint" / "progress.json").read_text())["stage"] == 1
    with pytest.raises(CitiError, match="--resume"):
        Trainer(config, tmp_path / "cut").run()
    Trainer(config, tmp_path / "cut").run(resume=True)
    a = load_file(str(tmp_path / "full" / "final" / "adapter.safetensors"))
    b = load_file(str(tmp_path / "cut" / "final" / "adapter.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    steps = [json.loads(line)["step"] for line in open(tmp_path / "cut" / "metrics.jsonl")]
    assert steps == list(range(1, steps[-1] + 1))  # no step logged twice or skipped
    # What the steps saw (the report's budget) survives the pause: the counts of the run
    # cut at step 9 and resumed equal the uninterrupted run's and its log's sums.
    full = json.loads((tmp_path / "full" / "summary.json").read_text())
    cut_summary = json.loads((tmp_path / "cut" / "summary.json").read_text())
    assert cut_summary["seen"] == full["seen"]
    records = [json.loads(line) for line in open(tmp_path / "cut" / "metrics.jsonl")]
    for key in ("sequences", "tokens", "label_tokens"):
        assert full["seen"][key] == sum(r[key] for r in records) > 0
    # every stage runs whole epochs over the same data
    assert full["seen"]["sequences"] % full["data"]["examples"] == 0
    assert full["seen"]["tokens"] > full["seen"]["label_tokens"]
    # Resuming a finished run does nothing.
    assert Trainer(config, tmp_path / "cut").run(resume=True)["global_steps"] == steps[-1]


def test_config_validation_names_options(selection_file):
    with pytest.raises(ConfigError, match="--method"):
        TrainConfig(method="magic")
    with pytest.raises(ConfigError, match="--selection"):
        TrainConfig(method="citi")
    with pytest.raises(ConfigError, match="--epochs: method citi has no stage 'ft'"):
        TrainConfig(method="citi", selection="s.json", epochs={"ft": 1})
    with pytest.raises(ConfigError, match="--batch-size"):
        TrainConfig(method="lora", batch_size=0)
    with pytest.raises(ConfigError, match="--delta"):
        TrainConfig(method="citi", selection="s.json", molora={"delta": 2})


@pytest.mark.parametrize("method", list(METHODS))
def test_shipped_yaml_configs_load(method):
    config = load_yaml_config(
        TrainConfig, ROOT / "configs" / f"{method}.yaml", selection="selection.json"
    )
    assert config.method == method
    spec = METHODS[method]
    assert [s.lr for s in config.stages()] == [s.lr for s in spec.stages]
    assert config.use_mix == spec.mix


def test_cli_train_errors(tmp_path, data_dir, capsys):
    from citi.cli.main import main

    rc = main(
        [
            "train",
            "--method",
            "citi",
            "--model",
            "tiny-llama",
            "--data-dir",
            str(data_dir),
            "--out",
            str(tmp_path / "r"),
        ]
    )
    assert rc == 2 and "--selection" in capsys.readouterr().err
    rc = main(
        [
            "train",
            "--method",
            "lora",
            "--model",
            "tiny-llama",
            "--epochs",
            "x",
            "--out",
            str(tmp_path / "r"),
        ]
    )
    assert rc == 2 and "--epochs" in capsys.readouterr().err
