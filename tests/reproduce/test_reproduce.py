import json
from pathlib import Path

import pytest
import yaml

from citi.cli.main import main
from citi.reproduce import load_preset

ROOT = Path(__file__).resolve().parents[2]


def _preset(tmp_path, data_dir) -> Path:
    preset = {
        "name": "test",
        "note": "tiny-llama on fixtures",
        "model": "tiny-llama",
        "data_dir": str(data_dir),
        "methods": ["ft", "lora", "citi"],
        "analyses": ["jaccard", "router", "errors", "icc", "replace"],
        "icc": {"samples": 2, "max_length": 160},
        "replace": {"settings": ["T-20"], "tasks": ["retention-math"]},
        "importance": {"samples": 4, "batch_size": 2, "max_length": 160},
        "train": {
            "tool_limit": 8,
            "mix_per_source": 2,
            "max_length": 160,
            "batch_size": 2,
            "grad_accum": 2,
            "save_every": 0,
            "eval_datasets": ["apibank-l2"],
            "eval_limit": 2,
        },
        "eval": {
            "tasks": ["apibank-l2", "apibank-l2-response", "triviaqa", "retention-math"],
            "limit": 2,
            "batch_size": 2,
            "router_examples": 2,
        },
    }
    path = tmp_path / "test.yaml"
    path.write_text(yaml.safe_dump(preset))
    return path


def test_reproduce_end_to_end_and_resume(tmp_path, data_dir, monkeypatch):
    out = tmp_path / "report"
    assert main(["reproduce", "--preset", str(_preset(tmp_path, data_dir)), "--out", str(out)]) == 0
    report = (out / "report.md").read_text()
    for heading in (
        "Table 3",
        "error taxonomy",
        "Training",
        "Fig. 3",
        "Fig. 6",
        "Time per step",
        "Settings",
    ):
        assert heading in report
    assert "| base |" in report and "| citi |" in report and "| lora |" in report
    for figure in (
        "analysis/jaccard.png",
        "analysis/router.png",
        "analysis/replace/replace.png",
        "analysis/icc-ft/icc.png",
        "analysis/icc-citi/icc.png",
    ):
        assert (out / figure).read_bytes()[:4] == b"\x89PNG"
        assert figure in report
    steps = json.loads((out / "steps.json").read_text())
    assert all(s["done"] for s in steps.values())
    assert {"importance", "train-citi", "eval-base", "eval-citi", "report"} <= set(steps)

    # A rerun redoes nothing: every step is skipped.
    import citi.reproduce.pipeline as pipeline

    for name in (
        "importance",
        "train",
        "evaluate",
        "router",
        "jaccard",
        "icc",
        "replace",
        "report",
    ):
        monkeypatch.setattr(
            pipeline.Pipeline, name, lambda *a, name=name, **k: pytest.fail(f"{name} redone")
        )
    assert main(["reproduce", "--preset", str(_preset(tmp_path, data_dir)), "--out", str(out)]) == 0


@pytest.mark.parametrize("name", ["tiny", "paper"])
def test_shipped_presets_load(name, monkeypatch):
    monkeypatch.chdir(ROOT)
    config = load_preset(name)
    assert config.name == name and config.methods


def test_unknown_preset_and_method(tmp_path, capsys):
    assert main(["reproduce", "--preset", "nope", "--out", str(tmp_path)]) == 2
    assert "no preset 'nope'" in capsys.readouterr().err
    assert (
        main(["reproduce", "--preset", "tiny", "--methods", "magic", "--out", str(tmp_path)]) == 2
    )
    assert "--methods" in capsys.readouterr().err
