"""The fair tuning protocol (citi.reproduce.tuning): the same learning-rate grid for every
method on a tuning seed kept out of the confirmatory seeds, alpha = 2 x rank, one criterion."""

import json

import pytest
import yaml

from citi.cli.main import main
from citi.errors import ConfigError
from citi.reproduce.preset import ReproduceConfig
from citi.reproduce.tuning import choose


def _preset(data_dir, **change) -> dict:
    preset = {
        "name": "tune",
        "model": "tiny-llama",
        "data_dir": str(data_dir),
        "precision": "fp32",
        "methods": ["ft", "lora"],
        "seeds": [1],
        "analyses": [],
        "importance": {"samples": 2, "batch_size": 2, "max_length": 160},
        "train": {
            "tool_limit": 7,
            "validation": 3,
            "max_length": 160,
            "batch_size": 2,
            "grad_accum": 1,
            "save_every": 0,
        },
        "train_per_method": {"lora": {"lora": {"rank": 4, "alpha": 8}}},
        "tune": {"lr_scale": [0.1, 30], "seed": 5, "train": {"tool_limit": 6}},
        "eval": {"tasks": ["retention-tool"], "limit": 2, "batch_size": 2},
    }
    preset.update(change)
    return preset


def test_tuning_trains_the_same_grid_per_method_and_the_runs_use_the_choice(tmp_path, data_dir):
    path = tmp_path / "tune.yaml"
    path.write_text(yaml.safe_dump(_preset(data_dir)))
    out = tmp_path / "out"
    assert main(["reproduce", "--preset", str(path), "--out", str(out)]) == 0
    tune = json.loads((out / "analysis" / "tune.json").read_text())
    assert tune["seed"] == 5 and set(tune["methods"]) == {"ft", "lora"}
    defaults = {"ft": {"ft": 2e-5}, "lora": {"lora": 2e-4}}  # the methods' stage rates
    report = (out / "report.md").read_text()
    assert "## Learning-rate tuning" in report
    for method, entry in tune["methods"].items():
        scales = [c["scale"] for c in entry["candidates"]]
        assert scales == [0.1, 30]  # the same grid for every method
        for c in entry["candidates"]:
            stage, lr = next(iter(defaults[method].items()))
            assert c["lr"] == {stage: pytest.approx(lr * c["scale"])}
            cfg = yaml.safe_load(
                (out / "tune" / f"{method}-lr-x{c['scale']:g}" / "config.yaml").read_text()
            )
            assert cfg["seed"] == 5 and cfg["validation"] == 3 and cfg["tool_limit"] == 6
        losses = {c["scale"]: c["validation_loss"] for c in entry["candidates"]}
        assert entry["chosen"] == min(losses, key=losses.get)
        assert len({c["steps"] for c in entry["candidates"]}) == 1  # equal steps
        run = yaml.safe_load((out / "runs" / method / "config.yaml").read_text())
        assert run["lr"] == pytest.approx(entry["lr"]) and run["seed"] == 1
        assert run["tool_limit"] == 7  # the confirmatory runs keep the preset's data
        assert f"| {method} | {entry['chosen']:g} |" in report


def test_ties_go_to_the_smaller_factor_and_diverged_candidates_are_dropped():
    nan = float("nan")
    cands = [
        {"scale": 2, "validation_loss": 1.0},
        {"scale": 0.5, "validation_loss": 1.0},
        {"scale": 8, "validation_loss": nan},
    ]
    assert choose(cands)["scale"] == 0.5
    assert choose([{"scale": 1, "validation_loss": nan}]) is None


@pytest.mark.parametrize(
    "change, needle",
    [
        ({"seeds": [1, 5]}, "tune.seed: 5 is also a confirmatory seed"),
        ({"train_per_method": {"lora": {"lora": {"rank": 4, "alpha": 4}}}}, "alpha = 2 x rank"),
        ({"tune": {"lr_scale": [1], "seed": 5}}, "tune.lr_scale"),
        ({"tune": {"lr_scale": [1, -2], "seed": 5}}, "tune.lr_scale"),
        ({"tune": {"lr_scale": [1, 2], "seed": 5, "train": {"lr": {}}}}, "tune.train.lr"),
        ({"tune": {"lr_scale": [1, 2], "seed": 5, "methods": ["citi"]}}, "tune.methods"),
        ({"tune": {"lr_scale": [1, 2], "seed": 5, "lr": 3}}, "unknown key(s) lr"),
    ],
)
def test_the_protocol_is_checked_before_any_work(data_dir, change, needle):
    values = _preset(data_dir, **change)
    with pytest.raises(ConfigError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        ReproduceConfig(**values)


def test_the_validation_split_is_required(data_dir):
    values = _preset(data_dir)
    del values["train"]["validation"]
    with pytest.raises(ConfigError, match=r"train.validation"):
        ReproduceConfig(**values)
