"""Nonsense options and diverging runs: one error line, exit 2, nothing half-written."""

import pytest
import torch

from citi.cli.main import main
from citi.errors import CitiError, ConfigError
from citi.train.config import TrainConfig
from citi.train.loop import Trainer
from tests.helpers import small_config


@pytest.mark.parametrize(
    ("kwargs", "option"),
    [
        ({"lr": {"lora": float("inf")}}, "--lr"),
        ({"lr": {"lora": "0.1"}}, "--lr"),
        ({"epochs": {"lora": 1e12}}, "--epochs"),
        ({"epochs": {"lora": float("nan")}}, "--epochs"),
        ({"warmup_ratio": "0.1"}, "--warmup-ratio"),
        ({"max_grad_norm": float("nan")}, "--max-grad-norm"),
        ({"seed": -1}, "--seed"),
        ({"tool_limit": 2.5}, "--tool-limit"),
        ({"molora": {"beta": float("nan")}}, "--beta"),
        ({"molora": {"alpha": "2"}}, "--alpha"),
        ({"precision": "fp16"}, "--precision"),
    ],
)
def test_config_rejects_nonsense_numbers(kwargs, option):
    with pytest.raises(ConfigError, match=option):
        TrainConfig(method="lora", **kwargs)


def test_cli_device_errors_are_one_line(tmp_path, capsys):
    for device in ("gpu0", "cuda:7" if not torch.cuda.is_available() else "cuda:99"):
        rc = main(["info", "--model", "tiny-llama", "--device", device])
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 2 and len(err) == 1 and "--device" in err[0], err


def test_non_finite_loss_stops_the_run_without_final_weights(tmp_path, data_dir, selection_file):
    out = tmp_path / "nan"
    trainer = Trainer(small_config(data_dir, selection_file, method="lora"), out)

    def poison(stage, model):
        with torch.no_grad():
            model.get_output_embeddings().weight[0, 0] = float("nan")

    trainer.on_stage_start.append(poison)
    with pytest.raises(CitiError, match=r"stage lora, step 1: non-finite loss"):
        trainer.run()
    assert not (out / "final").exists() and not (out / "summary.json").exists()
