import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from citi.evaluation.metrics import METRICS
from citi.evaluation.toolcalls.parse import hermes_call_text
from citi.evaluation.toolcalls.score import (
    TOOL_CALL_METRICS,
    VERDICTS,
    aggregate_turns,
    argument_f1,
    reference_calls,
    score_turn,
)

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "convert",
            "parameters": {
                "type": "object",
                "properties": {
                    "amount": {"type": "number"},
                    "to": {"type": "string", "enum": ["EUR", "USD"]},
                },
                "required": ["amount", "to"],
            },
        },
    }
]
CALL = {"name": "convert", "arguments": {"amount": 10, "to": "EUR"}}
CALL_TURN = {
    "role": "assistant",
    "content": None,
    "tool_calls": [{"id": "c0", "type": "function", "function": CALL}],
}
TEXT_TURN = {"role": "assistant", "content": "10 USD is 9.2 EUR."}


def test_every_metric_is_in_the_metric_table_with_its_direction():
    for name in TOOL_CALL_METRICS:
        assert name in METRICS
    assert not METRICS["false_call_rate"].higher_is_better
    assert not METRICS["missed_call_rate"].higher_is_better
    assert METRICS["ast_accuracy"].higher_is_better and METRICS["ast_accuracy"].share
    assert not METRICS["argument_f1"].share  # a mean of F1s: bootstrap


def test_reference_calls_reads_canonical_tool_calls():
    assert reference_calls(CALL_TURN) == [CALL]
    assert reference_calls(TEXT_TURN) == []


def test_a_gold_answer_scores_one_on_every_call_metric():
    scores = score_turn(hermes_call_text(CALL), CALL_TURN, TOOLS)
    assert scores["verdict"] == "correct"
    for name in ("ast_accuracy", "parse_rate", "call_exact_match", "tool_name_accuracy"):
        assert scores[name] == 1.0, name
    assert scores["argument_f1"] == 1.0 and scores["missed_call_rate"] == 0.0
    assert scores["false_call_rate"] is None  # a text-turn metric


def test_exact_match_is_json_equality_and_ast_accuracy_is_looser():
    scores = score_turn(
        '{"name": "convert", "arguments": {"amount": 10.0, "to": "EUR"}}', CALL_TURN, TOOLS
    )
    assert scores["ast_accuracy"] == 1.0
    assert scores["call_exact_match"] == 1.0  # 10 == 10.0 in JSON
    search = {"name": "search", "arguments": {"query": "New York"}}
    turn = {"role": "assistant", "tool_calls": [{"type": "function", "function": search}]}
    scores = score_turn("search(query='new york')", turn, [])
    assert scores["ast_accuracy"] == 1.0 and scores["call_exact_match"] == 0.0
    assert scores["argument_f1"] == 0.0
    scores = score_turn("convert(amount=10, to='eur')", CALL_TURN, TOOLS)
    assert scores["ast_accuracy"] == 0.0 and scores["verdict"] == "enum_violation"
    assert scores["tool_name_accuracy"] == 1.0 and scores["argument_f1"] == 0.5


@pytest.mark.parametrize(
    ("output", "verdict", "missed", "parsed"),
    [
        ("I cannot do that.", "missed_call", 1.0, None),
        ("<tool_call>{oops}</tool_call>", "invalid_json", 0.0, 0.0),
        ('{"name": "convert", "arguments": {"amount": "10", "to": "EUR"}}', "type_error", 0.0, 1.0),
        ('{"name": "convert", "arguments": {"to": "EUR"}}', "missing_required", 0.0, 1.0),
    ],
)
def test_failures_on_a_call_turn(output, verdict, missed, parsed):
    scores = score_turn(output, CALL_TURN, TOOLS)
    assert scores["verdict"] == verdict
    assert scores["ast_accuracy"] == 0.0
    assert scores["missed_call_rate"] == missed
    assert scores["parse_rate"] == parsed


def test_text_turns_count_false_calls_only():
    assert score_turn("It is 9.2 EUR.", TEXT_TURN, TOOLS)["false_call_rate"] == 0.0
    scores = score_turn(hermes_call_text(CALL), TEXT_TURN, TOOLS)
    assert scores["false_call_rate"] == 1.0 and scores["verdict"] == "false_call"
    assert scores["ast_accuracy"] is None and scores["missed_call_rate"] is None
    # a broken attempt is still a call where the reference answers in text
    assert score_turn("<tool_call>x</tool_call>", TEXT_TURN, TOOLS)["false_call_rate"] == 1.0


def test_argument_f1():
    gold = [{"name": "f", "arguments": {"a": 1, "b": 2}}]
    assert argument_f1([{"name": "f", "arguments": {"a": 1, "b": 2}}], gold) == 1.0
    assert argument_f1([{"name": "f", "arguments": {"a": 1}}], gold) == pytest.approx(2 / 3)
    assert argument_f1([{"name": "g", "arguments": {"a": 1, "b": 2}}], gold) == 0.0
    assert argument_f1([], gold) == 0.0
    assert argument_f1([{"name": "f", "arguments": {}}], [{"name": "f", "arguments": {}}]) == 1.0


def test_aggregate_means_over_the_turns_each_metric_applies_to_with_intervals():
    records = [
        score_turn(hermes_call_text(CALL), CALL_TURN, TOOLS),
        score_turn("no call", CALL_TURN, TOOLS),
        score_turn("text", TEXT_TURN, TOOLS),
        score_turn(hermes_call_text(CALL), TEXT_TURN, TOOLS),
    ]
    out = aggregate_turns(records)
    assert out["turns"] == {"call": 2, "text": 2}
    assert out["ast_accuracy"] == 0.5 and out["missed_call_rate"] == 0.5
    assert out["false_call_rate"] == 0.5
    assert out["parse_rate"] == 1.0  # two attempts, both parsed
    assert out["errors"] == {"missed_call": 1, "false_call": 1}
    ci = out["ci"]["ast_accuracy"]
    assert ci["method"] == "wilson" and ci["n"] == 2 and ci["low"] < 0.5 < ci["high"]
    assert out["ci"]["argument_f1"]["method"] == "bootstrap"


def test_aggregate_with_no_call_turns_leaves_call_metrics_empty():
    out = aggregate_turns([score_turn("text", TEXT_TURN, TOOLS)])
    assert out["ast_accuracy"] is None and "ast_accuracy" not in out["ci"]
    assert out["false_call_rate"] == 0.0


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(st.sampled_from(["amount", "to", "x"]), _json, max_size=3), st.text(max_size=60)
)
def test_scoring_never_raises_on_any_call_or_text(arguments, text):
    call = hermes_call_text({"name": "convert", "arguments": arguments})
    for output in (call, text, text + call):
        for reference in (CALL_TURN, TEXT_TURN):
            scores = score_turn(output, reference, TOOLS)
            assert scores["verdict"] in VERDICTS
