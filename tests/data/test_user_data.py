import json

import pytest

from citi.cli.main import main
from citi.data.user_data import (
    held_out_conversations,
    load_examples,
    parse_general_data,
    source_path,
)
from citi.errors import ConfigError, DataError
from tests.fixtures import tool_data as td


@pytest.fixture
def user_files(tmp_path):
    tools = td.write_jsonl(tmp_path / "tools.jsonl", td.glaive_like(12))
    chat = td.write_jsonl(tmp_path / "chat.jsonl", [td.ALPACA] * 6)
    return tools, chat


def test_general_data_abilities_default_to_the_file_stem():
    assert parse_general_data(["math=gsm8k", "dir/my_chat.jsonl"]) == {
        "math": "gsm8k",
        "my_chat": "dir/my_chat.jsonl",
    }
    with pytest.raises(ConfigError, match="given twice"):
        parse_general_data(["a=x.jsonl", "a=y.jsonl"])


def test_relative_paths_are_found_in_the_data_directory(tmp_path, monkeypatch):
    (tmp_path / "glaive").mkdir()
    td.write_jsonl(tmp_path / "glaive" / "g.jsonl", td.glaive_like(2))
    monkeypatch.setenv("CITI_DATA_DIR", str(tmp_path))
    assert source_path("glaive/g.jsonl") == str(tmp_path / "glaive" / "g.jsonl")


def test_held_out_rows_never_reach_training(user_files):
    tools, _ = user_files
    train = load_examples(str(tools), "tool", eval_fraction=0.25)
    held = held_out_conversations(str(tools), None, 0.25)
    assert len(train) == 9 and len(held) == 3
    assert not {e.meta["where"] for e in train} & {c.where for c in held}
    only_tool = load_examples(str(tools), "tool", tool_only=True)
    assert len(only_tool) == 8 and all(e.task_type == 1 for e in only_tool)


def test_named_datasets_still_load_as_before(data_dir):
    from citi.data import load_dataset

    assert load_examples("gsm8k", "math", data_dir=str(data_dir)) == load_dataset("gsm8k", data_dir)
    with pytest.raises(ConfigError, match="--eval-fraction"):
        load_examples("gsm8k", "math", data_dir=str(data_dir), eval_fraction=0.5)
    with pytest.raises(DataError, match="unknown dataset 'gsm8kk'"):
        load_examples("gsm8kk", "math", data_dir=str(data_dir))


def test_convert_and_show_from_the_cli(user_files, tmp_path, capsys):
    tools, _ = user_files
    out = tmp_path / "canon.jsonl"
    assert main(["data", "convert", str(tools), "--out", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 12 and rows[1]["tools"][0]["function"]["name"] == "get_weather"
    capsys.readouterr()
    assert main(["data", "show", str(tools), "-n", "2", "--model", "tiny-llama"]) == 0
    shown = capsys.readouterr().out
    assert '«<tool_call>\n{"name": "get_weather"' in shown
    assert "«Of course! What do you need?<|im_end|>»" in shown


def test_bad_user_data_is_one_line_and_nothing_written(tmp_path, capsys):
    bad = td.write_jsonl(
        tmp_path / "bad.jsonl", [td.MESSAGES, {"messages": [{"role": "user", "content": "x"}]}]
    )
    out = tmp_path / "out.jsonl"
    assert main(["data", "convert", str(bad), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"citi: error: {bad}:2: field 'messages': the conversation has no assistant turn"
    ]
    assert not out.exists()


def test_importance_then_citi_and_lora_from_a_user_jsonl(user_files, tmp_path):
    tools, chat = user_files
    common = ["--model", "tiny-llama", "--tool-data", str(tools), "--general-data", f"chat={chat}"]
    common += ["--eval-fraction", "0.25", "--max-length", "1024", "--precision", "fp32"]
    imp = tmp_path / "imp"
    assert (
        main(["importance", *common, "--samples", "4", "--batch-size", "4", "--out", str(imp)]) == 0
    )
    result = json.loads((imp / "importance.json").read_text())
    # The tool ability is scored on the tool rows of the user's file, less the held-out ones.
    assert result["abilities"]["tool"]["examples"] == 4
    assert set(result["abilities"]) == {"tool", "chat"}
    train = [*common, "--batch-size", "4", "--grad-accum", "1", "--save-every", "0"]
    for method in ("citi", "lora"):
        out = tmp_path / method
        extra = (
            ["--selection", str(imp / "selection.json"), "--mix-per-source", "2"]
            if method == "citi"
            else []
        )
        assert (
            main(["train", "--method", method, *train, *extra, "--epochs", "1", "--out", str(out)])
            == 0
        )
        summary = json.loads((out / "summary.json").read_text())
        assert summary["data"]["conversations"]["rows"] == summary["data"]["examples"]
        assert summary["data"]["tool_examples"] == 6  # 9 kept rows, two in three with tools
        assert [e["after"] for e in summary["eval"]][0] == "base"
        assert "tool-heldout" in summary["eval"][0]["loss"]
        assert (out / "final").is_dir()
    # The same held-out conversations reach the tool-calls task.
    evaluation = tmp_path / "eval"
    args = [
        "eval",
        "--model",
        "tiny-llama",
        "--adapter",
        str(tmp_path / "lora"),
        "--tasks",
        "tool-calls",
    ]
    args += [
        "--tool-data",
        str(tools),
        "--eval-fraction",
        "0.25",
        "--limit",
        "2",
        "--precision",
        "fp32",
    ]
    assert main([*args, "--out", str(evaluation)]) == 0
    results = json.loads((evaluation / "results.json").read_text())
    assert "tool-calls" in json.dumps(results)


def test_eval_config_passes_the_same_held_out_split(user_files):
    from citi.evaluation.config import EvalConfig

    tools, _ = user_files
    config = EvalConfig(tasks=["gsm8k"], tool_data=str(tools), eval_fraction=0.25)
    held = config.held_out()
    assert [c.where for c in held] == [
        c.where for c in held_out_conversations(str(tools), None, 0.25)
    ]
    with pytest.raises(ConfigError, match="--eval-fraction: needs --tool-data"):
        EvalConfig(tasks=["gsm8k"], eval_fraction=0.25)
    with pytest.raises(ConfigError, match="give one of them"):
        EvalConfig(tasks=["gsm8k"], tool_data=str(tools), eval_fraction=0.25, eval_data=str(tools))
