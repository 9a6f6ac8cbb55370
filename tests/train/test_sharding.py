"""FSDP2 (``--sharding fsdp``) over 2 CPU processes (gloo): really sharded, the same loss curve
as one process with the same global batch, and a sharded checkpoint resumes exactly."""

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from citi.train.loop import Trainer
from tests.helpers import small_config

WORKER = Path(__file__).with_name("sharded_worker.py")
ROOT = Path(__file__).resolve().parents[2]
LR = {"citi": {"mi": 1e-2, "uco": 1e-3}, "lora": {"lora": 1e-2}, "ft": {"ft": 1e-3}}


def _torchrun(config, out: Path, options: dict | None = None) -> None:
    torchrun = Path(sys.executable).with_name("torchrun")
    env = {
        **os.environ,
        "ACCELERATE_USE_CPU": "1",
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
    }
    values = json.dumps(dataclasses.asdict(config))
    cmd = [str(torchrun), "--nproc_per_node", "2", str(WORKER), values, str(out)]
    cmd += [json.dumps(options or {})]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-1500:] + proc.stderr[-3000:]


def _lm_losses(run: Path) -> list[float]:
    records = [json.loads(line) for line in open(run / "metrics.jsonl")]
    return [r["lm_loss"] for r in records if r["lm_loss"] is not None]


@pytest.mark.parametrize("method", ["citi", "lora", "ft"])
def test_fsdp_two_processes_shard_and_follow_the_one_process_curve(
    tmp_path, data_dir, selection_file, method
):
    sharded = small_config(data_dir, selection_file, method=method, lr=LR[method], sharding="fsdp")
    _torchrun(sharded, tmp_path / "fsdp")
    summary = json.loads((tmp_path / "fsdp" / "summary.json").read_text())
    # Really sharded over two processes: two unsharded copies (accelerate's silent CPU
    # fallback) would report world size 1 and hold every element.
    layout = summary["sharding"]
    assert layout["world_size"] == 2 and layout["dtensor_parameters"] > 0
    assert 0.45 < layout["local_fraction"] < 0.6

    single = dataclasses.replace(sharded, sharding="none", batch_size=4)
    reference = Trainer(single, tmp_path / "single")
    reference.forward_only_rp = False  # a sharded RP runs the full backward path, logging LM loss
    reference.run()
    fsdp, one = _lm_losses(tmp_path / "fsdp"), _lm_losses(tmp_path / "single")
    assert len(fsdp) == len(one) > 3
    for a, b in zip(fsdp, one, strict=True):
        assert abs(a - b) < 0.05 * b
    # the final adapter is one unsharded file, in the usual format, with every trained tensor
    final = load_file(str(tmp_path / "fsdp" / "final" / "adapter.safetensors"))
    reference = load_file(str(tmp_path / "single" / "final" / "adapter.safetensors"))
    assert final.keys() == reference.keys()
    assert all(final[k].shape == reference[k].shape for k in final)


def test_sharded_run_interrupted_and_resumed_ends_with_the_uninterrupted_adapter(
    tmp_path, data_dir, selection_file
):
    config = small_config(data_dir, selection_file, lr=LR["citi"], sharding="fsdp", save_every=2)
    _torchrun(config, tmp_path / "whole")
    paused = dataclasses.replace(config, max_steps=7)  # inside stage MI
    _torchrun(paused, tmp_path / "resumed")
    progress = json.loads((tmp_path / "resumed" / "checkpoint" / "progress.json").read_text())
    assert progress["sharded"] and progress["world_size"] == 2 and progress["micro"] > 0
    assert not (tmp_path / "resumed" / "final").exists()
    _torchrun(config, tmp_path / "resumed", {"resume": True})
    whole = load_file(str(tmp_path / "whole" / "final" / "adapter.safetensors"))
    resumed = load_file(str(tmp_path / "resumed" / "final" / "adapter.safetensors"))
    assert whole.keys() == resumed.keys()
    for k in whole:
        torch.testing.assert_close(resumed[k], whole[k], rtol=0, atol=1e-6)


def test_accelerate_launch_configs_load():
    from accelerate.commands.config.config_args import ClusterConfig

    folder = ROOT / "configs" / "accelerate"
    kinds = {p.stem: ClusterConfig.from_yaml_file(p).distributed_type for p in folder.glob("*")}
    assert {k: v.value for k, v in kinds.items()} == {
        "ddp": "MULTI_GPU",
        "fsdp": "MULTI_GPU",  # citi shards itself (--sharding fsdp)
        "zero2": "DEEPSPEED",
    }


def test_unknown_sharding_is_one_error_line(data_dir, selection_file):
    from citi.errors import ConfigError

    with pytest.raises(ConfigError, match="--sharding: choose none or fsdp"):
        small_config(data_dir, selection_file, sharding="zero3")
