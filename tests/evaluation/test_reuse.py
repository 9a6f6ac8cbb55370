"""A rerun of citi eval into the same --out reuses a task only under the very same settings."""

import json
import shutil

import pytest

from citi.cli.main import main


def _args(out, data_dir, *extra):
    return [
        "eval",
        "--model",
        "tiny-llama",
        "--data-dir",
        str(data_dir),
        "--tasks",
        "triviaqa",
        "--limit",
        "2",
        "--precision",
        "fp32",
        "--out",
        str(out),
        *extra,
    ]


@pytest.fixture
def ran(monkeypatch):
    """The tasks computed (not reused) from now on."""
    import citi.evaluation.runner as runner

    real, names = runner.run_task, []

    def spy(task, *a, **k):
        names.append(task.name)
        return real(task, *a, **k)

    monkeypatch.setattr(runner, "run_task", spy)
    return names


def test_another_dtype_recomputes_and_records_the_dtype_that_ran(tmp_path, data_dir, ran, capsys):
    out = tmp_path / "ev"
    assert main(_args(out, data_dir)) == 0
    first = json.loads((out / "results.json").read_text())
    assert first["dtype"] == "float32" and first["tasks"]["triviaqa"]["dtype"] == "float32"
    capsys.readouterr()

    assert main(_args(out, data_dir, "--dtype", "float16")) == 0
    assert ran == ["triviaqa", "triviaqa"]
    notice = " ".join(capsys.readouterr().out.split())  # unwrapped
    assert "triviaqa" in notice and "dtype: 'float32' -> 'float16'" in notice
    results = json.loads((out / "results.json").read_text())
    assert results["dtype"] == "float16" and results["precision"] == "fp16"
    assert results["tasks"]["triviaqa"]["dtype"] == "float16"

    assert main(_args(out, data_dir, "--dtype", "float16")) == 0  # same settings: reused
    assert ran == ["triviaqa", "triviaqa"]


def test_another_data_dir_recomputes(tmp_path, data_dir, ran, capsys):
    out = tmp_path / "ev"
    assert main(_args(out, data_dir)) == 0
    other = shutil.copytree(data_dir, tmp_path / "other-data")
    capsys.readouterr()
    assert main(_args(out, other)) == 0
    assert ran == ["triviaqa", "triviaqa"]
    assert "data_dir:" in " ".join(capsys.readouterr().out.split())
    results = json.loads((out / "results.json").read_text())
    assert results["data_dir"] == str(other.resolve())


def test_a_result_without_recorded_settings_is_recomputed(tmp_path, data_dir, ran, capsys):
    out = tmp_path / "ev"
    assert main(_args(out, data_dir)) == 0
    done = out / "tasks" / "triviaqa.json"
    old = json.loads(done.read_text())
    old["key"] = "0123456789abcdef"  # as an older citi keyed it
    del old["settings"]
    done.write_text(json.dumps(old))
    capsys.readouterr()
    assert main(_args(out, data_dir)) == 0
    assert ran == ["triviaqa", "triviaqa"]
    assert "older citi" in " ".join(capsys.readouterr().out.split())
