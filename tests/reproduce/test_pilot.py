"""The pilot's pre-registered go / no-go rule on hand-made evaluation folders."""

import json

import pytest

from citi.errors import ConfigError
from citi.reproduce.pilot import pilot_decision, pilot_section
from citi.reproduce.preset import ReproduceConfig, load_preset
from tests.reproduce.test_comparisons import write_task

RULE = {"tool_gain": 0.7, "fall": 0.05, "leak": 0.10}


def write_run(out, run, nll, ifeval, trivia, leak):
    d = out / "eval" / run
    write_task(d, "triviaqa-mc", "accuracy", "correct", trivia)
    (d / "tasks" / "retention-tool.json").write_text(
        json.dumps({"primary": "nll", "metrics": {"nll": nll}})
    )
    (d / "tasks" / "leak-tool.json").write_text(
        json.dumps({"primary": "leak", "metrics": {"leak": leak}})
    )
    lines = [json.dumps({"scores": {"inst_loose": pair}}) for pair in ifeval]
    (d / "predictions" / "ifeval.jsonl").write_text("\n".join(lines) + "\n")


def decide(tmp_path, ft, lora):
    base_ifeval = [[1, 1]] * 60 + [[1, 0]] * 40
    write_run(tmp_path, "base", 2.0, base_ifeval, [1] * 60 + [0] * 40, 0.02)
    write_run(tmp_path, "ft", *ft)
    write_run(tmp_path, "lora", *lora)
    config = ReproduceConfig(methods=["ft", "lora"], analyses=[], pilot=RULE)
    return pilot_decision(tmp_path, config)


def test_go_when_a_method_learned_and_ifeval_fell(tmp_path):
    # FT: gain 0.8, IFEval loses 20 of 160 followed instructions (-10 points, consistently).
    ifeval = [[1, 0]] * 20 + [[1, 1]] * 40 + [[1, 0]] * 40
    trivia = [1] * 60 + [0] * 40
    result = decide(
        tmp_path, (1.2, ifeval, trivia, 0.0), (1.5, [[1, 1]] * 60 + [[1, 0]] * 40, trivia, 0.0)
    )
    ft = result["methods"]["ft"]
    assert ft["learned"] and ft["ifeval_inst_loose"]["fell"] and ft["go"]
    assert ft["ifeval_inst_loose"]["change"] == pytest.approx(-20 / 200)
    assert not result["methods"]["lora"]["learned"]  # gain 0.5 < 0.7
    assert result["decision"] == "go"


def test_no_go_when_the_fall_is_small_or_the_model_did_not_learn(tmp_path):
    same = [[1, 1]] * 60 + [[1, 0]] * 40
    trivia = [1] * 57 + [0] * 43  # -3 points: under the 5-point threshold
    leaky = (1.6, same, [1] * 60 + [0] * 40, 0.5)  # leaks a lot but learned too little
    result = decide(tmp_path, (1.0, same, trivia, 0.05), leaky)
    assert result["decision"] == "no-go"
    assert result["methods"]["lora"]["forgot"] and not result["methods"]["lora"]["go"]
    assert not result["methods"]["ft"]["triviaqa_mc"]["fell"]
    (tmp_path / "analysis").mkdir()
    (tmp_path / "analysis" / "pilot.json").write_text(json.dumps(result))
    text = "\n".join(pilot_section(None, tmp_path, [], [], {}))
    assert "## Pilot decision: **no-go**" in text and "| ft | 1.000 | yes |" in text


def test_leak_alone_is_a_route_to_go(tmp_path):
    same = [[1, 1]] * 60 + [[1, 0]] * 40
    trivia = [1] * 60 + [0] * 40
    result = decide(tmp_path, (1.2, same, trivia, 0.10), (1.5, same, trivia, 0.0))
    assert result["methods"]["ft"]["go"] and result["decision"] == "go"


def test_the_pilot_preset_carries_the_registered_thresholds():
    config = load_preset("pilot")
    assert config.pilot == {"tool_gain": 0.712, "fall": 0.05, "leak": 0.10}
    assert config.methods == ["ft", "lora"]
    ft = config.train_values("ft", "selection.json", 42)
    lora = config.train_values("lora", "selection.json", 42)
    assert ft["lr"] == {"ft": 1e-4} and ft["epochs"] == {"ft": 3}
    assert lora["lr"] == {"lora": 1e-3} and lora["lora"] == {"rank": 16, "alpha": 32}
    assert ft["tool_limit"] == 256 and ft["snapshots"] == [0.25, 0.5]


@pytest.mark.parametrize(
    "pilot, needle",
    [
        ({"fall": 0.05}, "needs exactly"),
        ({**RULE, "leak": 10}, "shares"),
        ({**RULE, "fall": "x"}, "pilot.fall"),
    ],
)
def test_bad_pilot_settings_are_one_error(pilot, needle):
    with pytest.raises(ConfigError, match=needle):
        ReproduceConfig(methods=["ft", "lora"], analyses=[], pilot=pilot)
