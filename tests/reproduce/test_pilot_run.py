"""`citi reproduce --preset pilot` end to end, shrunk to the tiny model (the pilot itself takes
CPU-hours): every step runs and the report opens with the pre-registered decision."""

import json

import yaml

from citi.cli.main import main
from citi.reproduce.preset import preset_dirs


def test_tiny_pilot_runs_end_to_end(tmp_path, data_dir):
    path = next(d / "pilot.yaml" for d in preset_dirs() if (d / "pilot.yaml").is_file())
    preset = yaml.safe_load(path.read_text())
    small = {"max_length": 160, "batch_size": 2, "save_every": 0, "tool_limit": 6}
    limits = {t: 2 for t in preset["eval"]["tasks"]}
    preset.update(
        model="tiny-llama",
        data_dir=str(data_dir),
        precision="fp32",
        importance={"samples": 4, "batch_size": 2, "max_length": 160},
        train={**preset["train"], **small},
        eval={**preset["eval"], "task_limits": limits, "batch_size": 2},
        snapshot_eval={**preset["snapshot_eval"], "limit": 2},
        stats={"resamples": 200},
    )
    tiny = tmp_path / "pilot-tiny.yaml"
    tiny.write_text(yaml.safe_dump(preset))
    out = tmp_path / "out"
    assert main(["reproduce", "--preset", str(tiny), "--out", str(out)]) == 0
    decision = json.loads((out / "analysis" / "pilot.json").read_text())
    assert decision["decision"] in ("go", "no-go") and set(decision["methods"]) == {"ft", "lora"}
    assert decision["rule"] == {"tool_gain": 0.712, "fall": 0.05, "leak": 0.10}
    for m in decision["methods"].values():
        assert m["tool_gain"] is not None and m["triviaqa_mc"]["items"] == 2
        assert m["ifeval_inst_loose"] is not None and m["leak"] is not None
    report = (out / "report.md").read_text()
    assert f"## Pilot decision: **{decision['decision']}**" in report
    # The budget table states what each method spent, as its summary.json counted it.
    assert "## Training budgets" in report
    for run in ("ft", "lora"):
        summary = json.loads((out / "runs" / run / "summary.json").read_text())
        seen = summary["seen"]
        assert seen["sequences"] == 3 * summary["data"]["examples"]  # 3 epochs, as registered
        row = (
            f"| {run} | {run} | "
            + ", ".join(f"{k} {v:,}" for k, v in summary["trainable_parameters"].items())
            + f" | {summary['global_steps']:,} | {seen['sequences']:,} | {seen['tokens']:,} | "
            f"{seen['label_tokens']:,} |"
        )
        assert row in report
    lora = json.loads((out / "runs" / "lora" / "final" / "adapter_config.json").read_text())
    assert lora["lora"]["alpha"] == 32  # alpha = 2 x rank, as registered
