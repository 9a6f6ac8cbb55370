import argparse
import json
import subprocess
import sys

import pytest

from citi.cli.main import main


def run_cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "citi.cli.main", *args], capture_output=True, text=True, timeout=300
    )


def test_help_for_every_subcommand():
    for args in (["--help"], ["info", "--help"], ["data", "--help"], ["data", "fetch", "--help"]):
        with pytest.raises(SystemExit) as exit_info:
            main(args)
        assert exit_info.value.code == 0


def test_info_lists_components_and_datasets(data_dir, capsys):
    assert main(["info", "--model", "tiny-phi3", "--data-dir", str(data_dir)]) == 0
    out = capsys.readouterr().out
    assert "8 components" in out and "gate_up" in out
    assert "apibank-train" in out and "missing" in out


def test_bad_data_dir_is_one_line_exit_2(tmp_path):
    proc = run_cli("info", "--no-model", "--data-dir", str(tmp_path / "nope"))
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"citi: error: --data-dir: {tmp_path / 'nope'} is not a directory"
    ]


def test_unknown_dataset_in_show_is_one_line_exit_2(data_dir):
    proc = run_cli("data", "show", "gsm8kk", "--data-dir", str(data_dir))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "unknown dataset 'gsm8kk'" in proc.stderr


def test_malformed_file_through_the_cli(tmp_path):
    (tmp_path / "gsm8k").mkdir()
    (tmp_path / "gsm8k" / "train.jsonl").write_text("{oops\n")
    proc = run_cli("data", "show", "gsm8k", "--data-dir", str(tmp_path))
    assert proc.returncode == 2
    assert "train.jsonl:1: malformed JSON" in proc.stderr and "Traceback" not in proc.stderr


def test_fetch_fails_fast_without_internet(tmp_path, monkeypatch):
    import urllib.request

    def offline(*a, **k):
        raise OSError("Name or service not known")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    assert main(["data", "fetch", "gsm8k", "--data-dir", str(tmp_path)]) == 2
    assert not list(tmp_path.rglob("*.jsonl"))  # nothing half-written


def test_fetch_unknown_name(tmp_path):
    assert main(["data", "fetch", "nonsense", "--data-dir", str(tmp_path)]) == 2


def test_option_defaults_are_read_from_the_config_dataclasses(capsys):
    import dataclasses

    from citi.evaluation.config import EvalConfig
    from citi.importance.run import ImportanceConfig
    from citi.train.config import TrainConfig

    for command, cls, field in (
        ("train", TrainConfig, "mix_per_source"),
        ("importance", ImportanceConfig, "samples"),
        ("eval", EvalConfig, "max_length"),
    ):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        default = next(f.default for f in dataclasses.fields(cls) if f.name == field)
        option = "--" + field.replace("_", "-")
        assert f"{option} {field.upper()}" in text and f"(default: {default})" in text


def _subparser(name):
    from citi.cli.main import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return parser, sub.choices[name]


@pytest.mark.parametrize("command", ["train", "importance"])
def test_options_are_generated_from_the_config_fields(command):
    """Every field of the config with a command-line form has exactly one option, carrying the
    field's help text and choices (nothing listed twice by hand)."""
    import dataclasses

    from citi.importance.run import ImportanceConfig
    from citi.train.config import TrainConfig

    cls = {"train": TrainConfig, "importance": ImportanceConfig}[command]
    _, sub = _subparser(command)
    by_dest = {}
    for action in sub._actions:
        by_dest.setdefault(action.dest, []).append(action)
    fields = [f for f in dataclasses.fields(cls) if f.metadata.get("cli", True)]
    assert len(fields) > 20 if command == "train" else len(fields) > 12
    for f in fields:
        assert len(by_dest.get(f.name, [])) == 1, f.name
        action = by_dest[f.name][0]
        if f.metadata.get("help"):
            assert action.help.startswith(f.metadata["help"])
        if "choices" in f.metadata:
            assert list(action.choices) == list(f.metadata["choices"])
    if command == "train":  # per-stage text; a YAML section with its own options
        assert "epochs" in by_dest and "molora" not in by_dest and "num_experts" in by_dest


@pytest.fixture
def yaml_reads(monkeypatch):
    """The paths citi.config.read_yaml_mapping is called with (it still reads them)."""
    import citi.config

    reads = []
    real = citi.config.read_yaml_mapping
    monkeypatch.setattr(
        citi.config, "read_yaml_mapping", lambda *a, **k: reads.append(a) or real(*a, **k)
    )
    return reads


def test_train_yaml_is_defaults_the_command_line_wins(tmp_path, yaml_reads):
    from citi.cli.train import config_from_args

    yaml_file = tmp_path / "run.yaml"
    yaml_file.write_text(
        "method: lora\nbatch_size: 2\ngrad_accum: 3\neval_datasets: [gsm8k-test]\n"
        "molora: {rank: 4, beta: 0.5}\ngeneral: {math: gsm8k}\n"
    )
    parser, _ = _subparser("train")
    args = parser.parse_args(
        ["train", "--config", str(yaml_file), "--batch-size", "5", "--rank", "2"]
        + ["--general-data", "chat=my.jsonl", "--snapshots", "0.5", "--out", "x"]
    )
    config = config_from_args(args)
    assert len(yaml_reads) == 1  # the YAML is read once
    assert config.method == "lora" and config.grad_accum == 3 and config.batch_size == 5
    assert config.eval_datasets == ["gsm8k-test"] and config.snapshots == [0.5]
    assert config.molora == {"rank": 2, "beta": 0.5}  # key by key over the YAML's section
    assert config.general == {"chat": "my.jsonl"}  # --general-data replaces the general data
    assert config.max_length == 1024  # neither gave it: the dataclass's default


@pytest.mark.parametrize(
    ("yaml_text", "argv", "message"),
    [
        ("batch_sise: 2\n", [], "unknown key(s) batch_sise"),
        ("batch_size: two\n", [], "--batch-size: must be an integer"),
        ("", ["--general", "math"], "--general: expected ability=dataset, got 'math'"),
        ("", ["--snapshots", "half"], "--snapshots: expected fractions"),
        ("", ["--tool-data", "a.jsonl", "--tool-dataset", "apibank-train"], "give one of them"),
        ("", ["--epochs", "rp=x"], "--epochs: expected a number"),
    ],
)
def test_train_bad_settings_are_one_line_exit_2(tmp_path, capsys, yaml_text, argv, message):
    yaml_file = tmp_path / "run.yaml"
    yaml_file.write_text(yaml_text or "method: lora\n")
    out = tmp_path / "out"
    assert main(["train", "--config", str(yaml_file), *argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("citi: error: ") and message in err[0], err
    assert not out.exists()


def test_importance_tool_data_replaces_the_yaml_tool_source(tmp_path, yaml_reads):
    from citi.cli.importance import _config_from_args
    from citi.errors import ConfigError

    yaml_file = tmp_path / "imp.yaml"
    yaml_file.write_text("abilities: {api: apibank-train, math: gsm8k}\ntool_ability: api\n")
    parser, _ = _subparser("importance")
    args = parser.parse_args(
        ["importance", "--config", str(yaml_file), "--tool-data", "mine.jsonl", "--samples", "3"]
        + ["--out", "x"]
    )
    config = _config_from_args(args)
    assert len(yaml_reads) == 1
    assert config.abilities == {"api": "mine.jsonl", "math": "gsm8k"} and config.samples == 3
    yaml_file.write_text("samplez: 3\n")
    with pytest.raises(ConfigError, match="unknown key.*samplez"):
        _config_from_args(
            parser.parse_args(["importance", "--config", str(yaml_file), "--out", "x"])
        )


def test_select_checks_its_options_like_importance(tmp_path, capsys):
    from citi.io import write_json_atomic

    importance = tmp_path / "importance.json"
    scores = {f"c{i}": float(i) for i in range(10)}
    write_json_atomic(importance, {"M": scores, "C": dict(scores)})
    out = tmp_path / "selection.json"
    argv = ["select", "--importance", str(importance), "--out", str(out)]
    assert main([*argv, "--molora-ratio", "1.5"]) == 2
    assert "--molora-ratio: must be in (0, 1)" in capsys.readouterr().err
    assert not out.exists()
    assert main([*argv, "--molora-ratio", "0.3", "--uco-ratio", "0"]) == 0
    assert len(json.loads(out.read_text())["molora"]) == 3
