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
