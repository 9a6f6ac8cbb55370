"""--report-to: the per-step scalars and the config reach the tracker (TensorBoard, offline)."""

import json

import pytest
import yaml

from citi.cli.main import main
from citi.errors import ConfigError
from citi.train.trackers import check_tracker, hyperparameters, step_scalars


def _train_args(data_dir, selection_file, out, *extra):
    return [
        "train",
        "--method",
        "citi",
        "--model",
        "tiny-llama",
        "--data-dir",
        str(data_dir),
        "--selection",
        str(selection_file),
        "--tool-limit",
        "6",
        "--mix-per-source",
        "2",
        "--max-length",
        "160",
        "--batch-size",
        "2",
        "--grad-accum",
        "2",
        "--epochs",
        "1",
        "--save-every",
        "0",
        "--precision",
        "fp32",
        *extra,
        "--out",
        str(out),
    ]


def test_report_to_tensorboard_writes_the_step_scalars_and_config(
    data_dir, selection_file, tmp_path
):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "run"
    argv = _train_args(data_dir, selection_file, out, "--eval", "gsm8k-test", "--eval-limit", "2")
    assert main([*argv, "--report-to", "tensorboard"]) == 0
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    events = EventAccumulator(str(out / "logs" / "citi"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {
        "train/loss",
        "train/lm_loss",
        "train/routing_loss",
        "train/router_null_mass",
        "train/lr",
        "train/tokens_per_s",
        "eval/gsm8k-test",
    } <= tags
    # One point per optimizer step, at the step's global number, with metrics.jsonl's values.
    assert [e.step for e in events.Scalars("train/loss")] == [r["step"] for r in records]
    for tag, key in (("train/lr", "lr"), ("train/routing_loss", "routing_loss")):
        logged = {e.step: e.value for e in events.Scalars(tag)}
        expected = {r["step"]: r[key] for r in records if r[key] is not None}
        assert logged.keys() == expected.keys()
        assert all(logged[s] == pytest.approx(expected[s], rel=1e-5) for s in expected)
    # RP runs forward-only (no LM loss); MI and UCO have one.
    lm_steps = [r["step"] for r in records if r["lm_loss"] is not None]
    assert 0 < len(lm_steps) < len(records)
    assert [e.step for e in events.Scalars("train/lm_loss")] == lm_steps
    masses = [e.value for e in events.Scalars("train/router_null_mass")]
    assert len(masses) == len(records) and all(0 < m < 1 for m in masses)
    # eval losses: the base model, then after each of the three stages.
    assert len(events.Scalars("eval/gsm8k-test")) == 4
    # The resolved config as hyper-parameters (accelerate also keeps them as hparams.yml).
    (saved,) = (out / "logs" / "citi").glob("*/hparams.yml")
    hparams = yaml.safe_load(saved.read_text())
    assert hparams["method"] == "citi" and hparams["precision"] == "fp32"
    assert hparams["report_to"] == "tensorboard" and hparams["tool_limit"] == 6


def test_a_missing_tracker_package_is_one_error_line(
    data_dir, selection_file, tmp_path, capsys, monkeypatch
):
    import accelerate.utils

    monkeypatch.setattr(accelerate.utils, "is_tensorboard_available", lambda: False)
    out = tmp_path / "run"
    assert main([*_train_args(data_dir, selection_file, out), "--report-to", "tensorboard"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "citi: error: --report-to tensorboard: the tensorboard package is not installed; "
        "pip install tensorboard (or pip install 'citi[tensorboard]')"
    ]
    assert not (out / "metrics.jsonl").exists()


def test_every_tracker_is_checked_by_name(monkeypatch):
    import accelerate.utils

    monkeypatch.setattr(accelerate.utils, "is_wandb_available", lambda: False)
    with pytest.raises(ConfigError, match="the wandb package is not installed; pip install wandb"):
        check_tracker("wandb")
    with pytest.raises(ConfigError, match="--report-to: choose one of"):
        check_tracker("neptune")
    check_tracker("none")
    with pytest.raises(SystemExit) as exit_info:  # argparse's choices, from the field
        main(["train", "--report-to", "neptune", "--out", "x"])
    assert exit_info.value.code == 2


def test_hyperparameters_are_flat_scalars_and_absent_values_are_not_logged(selection_file):
    from tests.helpers import small_config

    config = small_config("data", selection_file, molora={"alpha": 32}, snapshots=[0.5])
    flat = hyperparameters(config)
    assert flat["molora.alpha"] == 32 and flat["general.math"] == "gsm8k"
    assert flat["snapshots"] == "[0.5]" and flat["max_steps"] == "none"
    assert all(isinstance(v, bool | int | float | str) for v in flat.values())
    record = {"loss": 1.5, "lm_loss": None, "routing_loss": 0.2, "null_mass": None, "lr": 1e-4}
    assert step_scalars(record) == {
        "train/loss": 1.5,
        "train/routing_loss": 0.2,
        "train/lr": 1e-4,
    }


def test_a_preset_names_its_missing_tracker_before_any_work(monkeypatch):
    import accelerate.utils

    from citi.reproduce.preset import ReproduceConfig

    assert ReproduceConfig(methods=["lora"], train={"report_to": "none"})
    monkeypatch.setattr(accelerate.utils, "is_mlflow_available", lambda: False)
    with pytest.raises(ConfigError, match="^train: --report-to mlflow: the mlflow package"):
        ReproduceConfig(methods=["lora"], train={"report_to": "mlflow"})
    with pytest.raises(ConfigError, match="^train: --report-to: must be text"):
        ReproduceConfig(methods=["lora"], train={"report_to": 3})
