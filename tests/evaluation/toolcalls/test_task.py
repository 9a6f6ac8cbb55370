import json

import pytest

from citi.cli.main import main
from citi.evaluation.toolcalls.task import conversation_turns, load_turns, render_turn
from tests.helpers import evaluate_tasks as evaluate

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string"}},
            "required": ["city"],
        },
    },
}
ROWS = [
    {
        "messages": [
            {"role": "system", "content": "You are helpful."},
            {"role": "user", "content": "Weather in Paris?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "c0",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": {"city": "Paris"}},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "c0", "name": "get_weather", "content": "18 C"},
            {"role": "assistant", "content": "It is 18 C in Paris."},
        ],
        "tools": [WEATHER],
    },
    {
        "messages": [
            {"role": "user", "content": "Hi there"},
            {"role": "assistant", "content": "Hello! How can I help?"},
        ]
    },
]


@pytest.fixture(autouse=True)
def _short_generations(monkeypatch):
    # A random tiny model never stops on its own: a few tokens show the plumbing just as well.
    import citi.evaluation.toolcalls.task as task

    monkeypatch.setattr(task, "MAX_NEW_TOKENS", 6)


@pytest.fixture
def eval_jsonl(tmp_path):
    path = tmp_path / "heldout.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    return path


def test_each_assistant_turn_is_one_example_after_the_gold_history():
    turns = conversation_turns(ROWS)
    assert [(t.conversation, t.index) for t in turns] == [(0, 2), (0, 4), (1, 1)]
    assert turns[1].history[-1]["role"] == "tool"  # the gold call and its result come first
    assert turns[1].history[2]["tool_calls"][0]["function"]["name"] == "get_weather"
    assert turns[2].tools is None
    assert len(load_turns(ROWS, limit=2)) == 2


def test_the_prompt_lists_the_tools_and_the_gold_calls(tiny_llama):
    turns = conversation_turns(ROWS)
    prompt = render_turn(tiny_llama.tokenizer, turns[1])
    assert '"get_weather"' in prompt and "<tool_call>" in prompt and "18 C" in prompt
    assert "It is 18 C" not in prompt  # the reference itself is never shown
    plain = render_turn(tiny_llama.tokenizer, turns[2])
    assert "<tools>" not in plain


def test_tool_calls_runs_end_to_end_from_a_jsonl(tiny_llama, eval_jsonl, tmp_path):
    out = tmp_path / "ev"
    results = evaluate(
        "tiny-llama",
        ["tool-calls"],
        out,
        eval_data=str(eval_jsonl),
        loaded=tiny_llama,
        batch_size=2,
    )
    entry = results["tasks"]["tool-calls"]
    metrics = entry["metrics"]
    assert entry["primary"] == "ast_accuracy" and metrics["examples"] == 3
    assert metrics["turns"] == {"call": 1, "text": 2}
    assert 0 <= metrics["ast_accuracy"] <= 1 and metrics["ci"]["ast_accuracy"]["n"] == 1
    assert metrics["ci"]["false_call_rate"]["n"] == 2
    lines = (out / "predictions" / "tool-calls.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["turn"] for r in records] == [2, 4, 1]
    assert all({"prediction", "parsed", "reference", "scores"} <= r.keys() for r in records)


def test_a_scripted_model_scores_its_gold_calls(tiny_llama, eval_jsonl, tmp_path, monkeypatch):
    """With generation replaced by the reference answers, every metric is perfect."""
    import citi.evaluation.generation as generation
    from citi.evaluation.toolcalls.parse import hermes_call_text

    call = hermes_call_text({"name": "get_weather", "arguments": {"city": "paris"}})

    def scripted(model, tok, prompts, *a, **k):  # the call first, then text after its result
        return [call if "Paris" in p and "18 C" not in p else "It is 18 C." for p in prompts]

    monkeypatch.setattr(generation, "generate", scripted)
    results = evaluate(
        "tiny-llama", ["tool-calls"], tmp_path / "ev", eval_data=str(eval_jsonl), loaded=tiny_llama
    )
    m = results["tasks"]["tool-calls"]["metrics"]
    assert m["ast_accuracy"] == 1.0 and m["false_call_rate"] == 0.0
    assert m["missed_call_rate"] == 0.0 and m["call_exact_match"] == 0.0  # "paris" != "Paris"


def test_eval_cli_runs_tool_calls_and_needs_eval_data(eval_jsonl, tmp_path, capsys):
    out = tmp_path / "ev"
    args = ["eval", "--model", "tiny-llama", "--tasks", "tool-calls", "--out", str(out)]
    assert main([*args, "--eval-data", str(eval_jsonl), "--batch-size", "3"]) == 0
    assert json.loads((out / "results.json").read_text())["tasks"]["tool-calls"]
    assert "tool-calls (ast_accuracy)" in (out / "results.md").read_text()
    assert main(args) == 2
    assert "--eval-data" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "bad.jsonl: no records"),
        ('{"messages": []}\nnot json\n', "bad.jsonl:2: malformed JSON"),
        ('{"messages": [{"role": "user", "content": "hi"}]}\n', "bad.jsonl"),  # no answer
    ],
)
def test_bad_eval_data_is_one_error_line(tmp_path, content, message, capsys):
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    args = [
        "eval",
        "--model",
        "tiny-llama",
        "--tasks",
        "tool-calls",
        "--out",
        str(tmp_path / "o"),
        "--eval-data",
        str(path),
    ]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("citi: error:") and message in err and "Traceback" not in err
    assert not (tmp_path / "o" / "results.json").exists()


def test_a_rerun_skips_finished_work_until_the_data_changes(
    tiny_llama, eval_jsonl, tmp_path, monkeypatch
):
    import citi.evaluation.runner as runner

    out = tmp_path / "ev"
    calls = []
    real = runner.run_task

    def counting(*a, **k):
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr(runner, "run_task", counting)
    for source in (str(eval_jsonl), str(eval_jsonl), lambda: ROWS[:1], lambda: ROWS[:1]):
        evaluate("tiny-llama", ["tool-calls"], out, eval_data=source, loaded=tiny_llama)
    assert len(calls) == 2  # the file once, then the rows (other data) once
    metrics = json.loads((out / "tasks" / "tool-calls.json").read_text())["metrics"]
    assert metrics["turns"] == {"call": 1, "text": 1}
