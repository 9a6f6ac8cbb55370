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


def _one_error_line(capsys, rc, needle):
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("citi: error:") and needle in err[0], err


def test_out_that_cannot_be_a_directory_fails_before_any_work(tmp_path, capsys):
    afile = tmp_path / "file"
    afile.write_text("x")
    base = ["eval", "--model", "tiny-llama", "--tasks", "triviaqa"]
    _one_error_line(capsys, main([*base, "--out", str(afile)]), "not a directory")
    _one_error_line(capsys, main([*base, "--out", str(afile / "sub")]), "is a file")
    readonly = tmp_path / "ro"
    readonly.mkdir()
    readonly.chmod(0o500)
    import os

    if os.geteuid() != 0:  # root writes anywhere
        _one_error_line(capsys, main([*base, "--out", str(readonly / "x")]), "not writable")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "ro"]


def test_eval_and_data_numbers(tmp_path, data_dir, capsys):
    base = ["eval", "--model", "tiny-llama", "--data-dir", str(data_dir), "--out", str(tmp_path)]
    _one_error_line(
        capsys, main([*base, "--tasks", "triviaqa", "--batch-size", "0"]), "--batch-size"
    )
    _one_error_line(
        capsys, main([*base, "--tasks", "triviaqa", "--batch-size", "-2"]), "--batch-size"
    )
    _one_error_line(capsys, main([*base, "--tasks", ","]), "--tasks")
    _one_error_line(
        capsys, main([*base, "--tasks", "triviaqa", "--max-length", "0"]), "--max-length"
    )
    rc = main(["data", "show", "gsm8k", "--data-dir", str(data_dir), "-n", "-1"])
    _one_error_line(capsys, rc, "-n")


def test_deeply_nested_json_is_one_error_line(tmp_path, data_dir, capsys):
    import shutil

    broken = tmp_path / "data"
    shutil.copytree(data_dir, broken)
    target = next(broken.glob("gsm8k/train*.jsonl"))
    target.write_text("[" * 200_000 + "]" * 200_000 + "\n")
    rc = main(["data", "show", "gsm8k", "--data-dir", str(broken)])
    _one_error_line(capsys, rc, "nested too deeply")


@pytest.mark.parametrize(
    "extra, yaml_text, needle",
    [
        (["--device", "gpu0"], None, "--device: unknown device 'gpu0'"),
        (["--epochs", "lora=1,,"], None, "--epochs"),
        ([], "a: [\n", "malformed YAML"),
        ([], "- a\n", "expected a mapping"),
        ([], "epochs: 1\n", "--epochs: must be a map"),
        ([], "general: [gsm8k]\n", "--general: must be a map"),
        ([], "mix: 'yes'\n", "--mix: must be true or false"),
        (["--general", "instruction=ifeval", "--mix"], None, "has no reference answers"),
    ],
)
def test_train_cli_rejects_nonsense_before_any_work(
    tmp_path, data_dir, capsys, extra, yaml_text, needle
):
    argv = ["train", "--method", "lora", "--model", "tiny-llama", "--data-dir", str(data_dir)]
    argv += ["--tool-limit", "2", "--max-length", "160", "--precision", "fp32", *extra]
    if yaml_text is not None:
        config = tmp_path / "config.yaml"
        config.write_text(yaml_text)
        argv += ["--config", str(config)]
    out = tmp_path / "run"
    _one_error_line(capsys, main([*argv, "--out", str(out)]), needle)
    assert not (out / "final").exists() and not (out / "checkpoint").exists()


def test_resume_with_changed_settings_is_refused_unless_forced(
    tmp_path, data_dir, selection_file, capsys
):
    out = tmp_path / "run"
    config = small_config(data_dir, selection_file, method="lora", save_every=1, max_steps=1)
    assert Trainer(config, out).run()["paused_at_step"] == 1
    argv = ["train", "--method", "lora", "--model", "tiny-llama", "--data-dir", str(data_dir)]
    argv += ["--mix-per-source", "3", "--max-length", "160", "--batch-size", "2"]
    argv += ["--grad-accum", "2", "--seed", "7", "--save-every", "1", "--precision", "fp32"]
    argv += ["--selection", str(selection_file), "--out", str(out), "--resume"]
    capsys.readouterr()
    _one_error_line(capsys, main([*argv, "--lr", "1e-3"]), "(lr: {} -> {'lora': 0.001})")
    assert not (out / "final").exists()
    assert main([*argv, "--lr", "1e-3", "--force"]) == 0 and (out / "final").is_dir()


@pytest.mark.parametrize(
    ("selection", "field"),
    [
        ({"molora": [1, 2], "uco": []}, "'molora' must be a list of component names"),
        ({"molora": ["layers.0.mlp.up_proj"], "uco": [3]}, "'uco' must be a list"),
        ({"molora": ["layers.0.mlp.up_proj"], "uco": None}, "'uco' must be a list"),
        ({"molora": "layers.0.mlp.up_proj"}, "no 'molora' list"),
    ],
)
def test_selection_with_non_string_components_is_one_line(
    tmp_path, data_dir, capsys, selection, field
):
    import json

    path = tmp_path / "selection.json"
    path.write_text(json.dumps(selection))
    argv = ["train", "--method", "citi", "--model", "tiny-llama", "--data-dir", str(data_dir)]
    argv += ["--selection", str(path), "--device", "cpu", "--out", str(tmp_path / "run")]
    _one_error_line(capsys, main(argv), field)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["selection.json"]  # no run directory


@pytest.mark.parametrize(
    "argv",
    [
        ["eval", "--model", "tiny-llama", "--tasks", "triviaqa"],
        ["train", "--method", "lora", "--model", "tiny-llama"],
        ["importance", "--model", "tiny-llama"],
        ["analyze", "replace", "--tuned", "RUN", "--importance", "IMP"],
        ["analyze", "icc", "--tuned", "RUN"],
    ],
    ids=["eval", "train", "importance", "replace", "icc"],
)
def test_every_command_checks_device_before_any_work(tmp_path, capsys, argv):
    rc = main([*argv, "--device", "gpu0", "--out", str(tmp_path / "out")])
    _one_error_line(capsys, rc, "--device: unknown device 'gpu0'")
    assert list(tmp_path.iterdir()) == []
