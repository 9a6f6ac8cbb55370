import json

import pytest

import citi.evaluation.generation as generation
from citi.cli.main import main
from citi.data import load_dataset
from citi.evaluation.benchmarks import mtbench, toolalpaca
from citi.evaluation.config import EvalConfig
from citi.evaluation.judge import Judge, JudgeError
from citi.evaluation.registry import TASKS
from citi.evaluation.runner import evaluate
from citi.evaluation.task import TaskContext
from tests.evaluation.fake_judge import FakeJudge


def test_parse_step_reads_actions_and_responses():
    step = toolalpaca.parse_step(
        ' I need the forecast.\nASSISTANT Action: getForecast\nASSISTANT Action Input: {"city": '
        '"Oslo"}\n'
    )
    assert step == {
        "thought": "I need the forecast.",
        "action": "getForecast",
        "input": '{"city": "Oslo"}',
    }
    assert toolalpaca.parse_step(" Done.\nASSISTANT Response: It rains.")["response"] == "It rains."
    assert toolalpaca.parse_step("just chatting") == {"thought": "", "response": "just chatting"}


def _steps(*calls):
    return [{"action": a, "input": i} for a, i in calls]


def _mtbench_config(data_dir):  # noqa: N802 (reads as the config it is)
    return EvalConfig(model="tiny-llama", tasks=["mtbench"], data_dir=str(data_dir))


GOLDEN = [
    {"Action": "search", "Action_Input": '{"q": "Cats", "page": 1, "size": ""}'},
    {"Action": "details", "Action_Input": "{}"},
]


@pytest.mark.parametrize(
    ("steps", "procedure", "functions"),
    [
        (_steps(("search", '{"q": "cats ", "page": 1.0}'), ("details", "{}")), True, True),
        # a retry between the golden steps is fine; the extra "size" argument was left open
        (
            _steps(
                ("search", "{oops"),
                ("search", '{"q": "cats", "page": 1, "size": 3}'),
                ("details", '{"x": 1}'),
            ),
            True,
            True,
        ),
        (_steps(("search", '{"q": "dogs", "page": 1}'), ("details", "{}")), False, True),
        (_steps(("details", "{}"), ("search", '{"q": "cats", "page": 1}')), False, False),
        (_steps(("search", '{"q": "cats", "page": 1}')), False, False),
        (
            _steps(("search", '{"q": "cats", "page": 1}'), ("hack", "{}"), ("details", "{}")),
            False,
            False,
        ),
        ([], False, False),
    ],
)
def test_procedure_match(steps, procedure, functions):
    assert toolalpaca.procedure_match(steps, GOLDEN) is procedure
    assert toolalpaca.procedure_match(steps, GOLDEN, with_args=False) is functions


def test_parse_judgement_and_rating():
    text = "## Analysis\nProcess Correctness: yes ...\n## Results\nProcess Correctness: **No**\n"
    assert toolalpaca.parse_judgement(text) == ("No", "Uncertain")
    assert toolalpaca.parse_judgement(
        "Process Correctness: Yes\nFinal Response Correctness: Uncertain"
    ) == ("Yes", "Uncertain")
    assert mtbench.parse_rating("Rating: [[8]] ... final: [[9.5]]") == 9.5
    assert mtbench.parse_rating("Rating: [[11]]") is None
    assert mtbench.parse_rating("Rating: 8") is None


def _scripted(monkeypatch, turns):
    """Replace generation by scripted outputs, one list per call, in prompt order."""
    calls = []

    def fake_generate(model, tokenizer, prompts, *args, **kwargs):
        calls.append(list(prompts))
        return turns[len(calls) - 1][: len(prompts)]

    monkeypatch.setattr(generation, "generate", fake_generate)
    return calls


def test_agent_loop_with_simulator_and_judge(tiny_llama, data_dir, monkeypatch):
    examples = load_dataset("toolalpaca-sim", data_dir)
    turns = [
        [
            ' Check.\nASSISTANT Action: getForecast\nASSISTANT Action Input: {"city": "Oslo"}\n',
            "ASSISTANT Response: I cannot tell.",
        ],
        [" It rains.\nASSISTANT Response: Yes, it will rain in Oslo."],
    ]
    calls = _scripted(monkeypatch, turns)
    with FakeJudge() as fake:
        ctx = TaskContext(tiny_llama, 4, data_dir=data_dir, judge=Judge(fake.url, "judge-1"))
        result = toolalpaca.evaluate_toolalpaca(TASKS["toolalpaca-sim"], examples, ctx)
    metrics, records = result.metrics, result.records
    # second turn only for the example still running, and it sees its observation
    assert len(calls) == 2 and len(calls[1]) == 1
    assert 'ASSISTANT Observation: Status Code: 200\nResponse: {"rain": true}' in calls[1][0]
    simulated = [r for r in fake.requests if "Act as the API server" in str(r)]
    assert len(simulated) == 1 and 'GET /forecast\\nParameters: {\\"city\\": \\"Oslo\\"}' in (
        json.dumps(simulated[0])
    )
    # one judgement: the item without any step is an error, never "Yes"
    judged = [r for r in fake.requests if "Judge the solution" in str(r)]
    assert len(judged) == 1 and "1. Function: getForecast" in judged[0]["messages"][0]["content"]
    assert metrics["procedure"] == 0.5 and metrics["response"] == 0.0 and metrics["overall"] == 0
    assert metrics["procedure_match"] == 0.5 and result.primary == "overall"
    assert records[0]["steps"][0]["action"] == "getForecast"


def test_agent_loop_without_judge_is_labelled_procedure_match(tiny_llama, data_dir, monkeypatch):
    examples = load_dataset("toolalpaca-sim", data_dir)
    loop = ['ASSISTANT Action: nope\nASSISTANT Action Input: {"a": 1}']
    _scripted(monkeypatch, [["ASSISTANT Response: ?", *loop]] + [loop] * 9)
    ctx = TaskContext(tiny_llama, 4, data_dir=data_dir)
    result = toolalpaca.evaluate_toolalpaca(TASKS["toolalpaca-sim"], examples, ctx)
    metrics, records = result.metrics, result.records
    assert result.primary == "procedure_match" and "not the paper's" in metrics["note"]
    assert metrics["procedure_match"] == 0.0
    # the looping example stops after MAX_TURNS without a response
    assert len(records[1]["steps"]) == toolalpaca.MAX_TURNS and records[1]["response"] is None
    assert records[1]["steps"][0]["observation"].startswith("Error: unknown tool 'nope'")


def test_mtbench_two_turns_and_reference_prompts(tiny_llama, data_dir, monkeypatch, tmp_path):
    calls = _scripted(monkeypatch, [["A poem.", "4"], ["A rhyme.", "8"]])
    with FakeJudge() as fake:
        results = evaluate(
            _mtbench_config(data_dir),
            tmp_path / "ev",
            loaded=tiny_llama,
            judge=Judge(fake.url, "judge-1"),
        )
    assert "A poem." in calls[1][0]  # turn 2 sees turn 1's answer
    entry = results["tasks"]["mtbench"]
    # writing: 7 and 7; math (reference prompt): 3 and 3 -> mean 5 -> 50 %
    assert entry["metrics"]["mean_rating"] == 5.0 and entry["primary"] == "score"
    math_req = [r for r in fake.requests if r["messages"][0]["content"] == "You judge math."]
    assert len(math_req) == 2 and "[Reference]\n4|8" in math_req[1]["messages"][1]["content"]
    assert (tmp_path / "ev" / "predictions" / "mtbench.jsonl").is_file()
    assert len(list((tmp_path / "ev" / "judge-cache").glob("*.json"))) == 4


def test_mtbench_without_judge_is_skipped_with_a_message(tiny_llama, data_dir, tmp_path, capsys):
    results = evaluate(_mtbench_config(data_dir), tmp_path / "ev", loaded=tiny_llama)
    assert results["tasks"] == {} and "--judge-url" in results["skipped"]["mtbench"]
    assert "needs a judge endpoint" in capsys.readouterr().out


def test_judge_errors_are_one_line(capsys, data_dir, tmp_path):
    with pytest.raises(JudgeError, match="--judge-url"):
        Judge("localhost:8000", "m")
    with FakeJudge() as fake:
        with pytest.raises(JudgeError, match="HTTP 400: no such model"):
            Judge(fake.url, "broken").chat([{"role": "user", "content": "hi"}])
    with pytest.raises(JudgeError, match="--judge-url http://127.0.0.1:9/v1/chat/completions"):
        Judge("http://127.0.0.1:9/v1", "m", retries=1, timeout=2).chat([])
    code = main(
        [
            "eval",
            "--model",
            "tiny-llama",
            "--tasks",
            "mtbench",
            "--judge-url",
            "http://x",
            "--out",
            str(tmp_path / "e"),
            "--data-dir",
            str(data_dir),
        ]
    )
    assert code == 2 and "--judge-url and --judge-model go together" in capsys.readouterr().err


def test_answers_survive_a_judge_failure(tiny_llama, data_dir, monkeypatch, tmp_path):
    _scripted(monkeypatch, [["A poem.", "4"], ["A rhyme.", "8"]])
    with FakeJudge() as fake:
        with pytest.raises(JudgeError):
            evaluate(
                _mtbench_config(data_dir),
                tmp_path / "ev",
                loaded=tiny_llama,
                judge=Judge(fake.url, "broken", retries=1),
            )
    cached = json.loads((tmp_path / "ev" / "predictions" / "mtbench.outputs.json").read_text())
    assert cached["outputs"] == [["A poem.", "A rhyme."], ["4", "8"]]

    def no_generation(*args, **kwargs):
        raise AssertionError("generated again")

    monkeypatch.setattr(generation, "generate", no_generation)
    # the same judge again, now answering: the answers come from the cache
    judge = Judge(fake.url, "broken", retries=1)
    monkeypatch.setattr(judge, "_post", lambda payload: "Rating: [[6]]")
    results = evaluate(_mtbench_config(data_dir), tmp_path / "ev", loaded=tiny_llama, judge=judge)
    assert results["tasks"]["mtbench"]["metrics"]["mean_rating"] == 6.0


@pytest.mark.parametrize(
    "content",
    ['{"request": {}, "reply": "Rat', '{"request": {}}', '{"reply": 7}', "[1, 2]", "\xff\xfe"],
    ids=["cut-short", "no-reply", "reply-not-text", "a-list", "not-utf8"],
)
def test_a_corrupted_judge_cache_entry_is_one_line(tmp_path, content):
    cache = tmp_path / "judge-cache"
    judge = Judge("http://127.0.0.1:9/v1", "m", retries=1, cache_dir=cache)
    judge._post = lambda payload: "Rating: [[6]]"
    messages = [{"role": "user", "content": "hi"}]
    assert judge.chat(messages) == "Rating: [[6]]"  # written to the cache
    (entry,) = cache.glob("*.json")
    entry.write_bytes(content.encode("latin-1"))
    with pytest.raises(JudgeError) as caught:
        judge.chat(messages)
    message = str(caught.value)
    assert str(entry) in message and "judge cache" in message and "\n" not in message
    assert entry.read_bytes() == content.encode("latin-1")  # left for the user to look at
