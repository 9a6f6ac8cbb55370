import pytest

from citi.data import load_dataset
from citi.evaluation import apibank
from citi.evaluation.metrics import (
    gsm8k_flexible,
    gsm8k_scores,
    gsm8k_strict,
    normalize_answer,
    triviaqa_exact_match,
)
from citi.evaluation.sandbox import humaneval_program, run_program

GOLD = (
    "API-Request: [AddReminder(token='t0k3n', content='call Bob about the report', "
    "time='2023-03-01 17:00:00')]"
)
PROMPT = (
    'API descriptions:\n{"name": "AddReminder", "description": "x", "input_parameters": '
    '{"token": {}, "content": {}, "time": {}, "priority": {}}, "output_parameters": {}}'
)


def test_ground_truth_scores_100_percent(data_dir):
    for ex in load_dataset("apibank-l2", data_dir):
        assert (
            apibank.score_api_sample(ex.reference, ex.reference, ex.messages[0]["content"])
            == apibank.CORRECT
        )


@pytest.mark.parametrize(
    "prediction, verdict",
    [
        ("I cannot help with that.", apibank.NO_API_CALL),
        ("[AddAlarm(token='t0k3n', time='17:00')]", apibank.API_NAME_MISMATCH),
        (
            "[AddReminder(token='t0k3n', content='call Bob about the report', "
            "time='2023-03-01 17:00:00', colour='red')]",
            apibank.INVALID_INPUT_PARAMETER,
        ),
        (
            "[AddReminder(token='t0k3n', content='call Bob about the report')]",
            apibank.MISS_INPUT_ARGUMENT,
        ),
        (
            "[AddReminder(token='WRONG', content='call Bob about the report', "
            "time='2023-03-01 17:00:00')]",
            apibank.INPUT_MISMATCH,
        ),
        (
            "[AddReminder(token='t0k3n', content='buy milk', time='2023-03-01 17:00:00')]",
            apibank.INPUT_MISMATCH,
        ),
        # Relaxations: free text by word overlap, times normalised, a described optional
        # parameter is allowed.
        (
            "[AddReminder(token='t0k3n', content='Call Bob about the report please', "
            "time='2023-03-01 17:00')]",
            apibank.CORRECT,
        ),
        (
            "API-Request: [AddReminder(time=\"2023-03-01 17:00:00\", token='t0k3n', "
            "content='call Bob about the report', priority='high')]",
            apibank.CORRECT,
        ),
    ],
)
def test_error_taxonomy(prediction, verdict):
    assert apibank.score_api_sample(prediction, GOLD, PROMPT) == verdict


def test_relaxed_values():
    assert apibank.values_match("name", " Alice ", "alice")
    assert apibank.values_match("date", "2023/03/01", "2023-03-01")
    assert apibank.values_match("amount", "10.0", "10")
    assert not apibank.values_match("date", "2023-03-02", "2023-03-01")
    assert apibank.word_jaccard("a b c", "a b d") == pytest.approx(0.5)


def test_rouge_l():
    assert apibank.rouge_l("AI: The result is 33.", "The result is 33.") == pytest.approx(1.0)
    assert apibank.rouge_l("", "The result is 33.") == 0.0
    assert 0 < apibank.rouge_l("the result", "The result is 33.") < 1


def test_gsm8k_filters():
    assert gsm8k_strict("so 3 + 4 = 7\n#### 7") == "7"
    assert gsm8k_strict("The answer is 7") is None
    assert gsm8k_flexible("first 3, then 1,234.") == "1234"
    assert gsm8k_scores("#### 18.0", "18") == {
        "exact_match_strict": 1.0,
        "exact_match_flexible": 1.0,
    }
    assert gsm8k_scores("I think 17", "18")["exact_match_flexible"] == 0.0


def test_triviaqa_exact_match():
    assert normalize_answer("The  Eiffel Tower!") == "eiffel tower"
    assert triviaqa_exact_match("Paris.\nMore text", ["PARIS", "City of Light"]) == 1.0
    assert triviaqa_exact_match("The answer is: Paris", ["Paris"]) == 1.0
    assert triviaqa_exact_match('The answer to this question is: "Paris"', ["Paris"]) == 1.0
    assert triviaqa_exact_match("Lyon", ["Paris"]) == 0.0


TEST = "def check(candidate):\n    assert candidate(2) == 3\n"


def test_sandbox_runs_a_correct_and_a_wrong_solution():
    good = humaneval_program("def inc(x):\n", "    return x + 1\n", TEST, "inc")
    assert run_program(good).passed
    bad = humaneval_program("def inc(x):\n", "    return x\n", TEST, "inc")
    assert run_program(bad).status == "failed"
    fenced = humaneval_program(
        "def inc(x):\n", "Here:\n```python\ndef inc(x):\n    return x+1\n```", TEST, "inc"
    )
    assert run_program(fenced).passed


def test_sandbox_contains_hostile_code(tmp_path):
    loop = humaneval_program("def inc(x):\n", "    while True:\n        pass\n", TEST, "inc")
    assert run_program(loop, timeout=2).status == "timeout"
    marker = tmp_path / "pwned"
    shell = humaneval_program(
        "def inc(x):\n",
        f"    import os\n    os.system('touch {marker}')\n    return x + 1\n",
        TEST,
        "inc",
    )
    assert not run_program(shell).passed  # os.system is disabled by the guard
    assert not marker.exists()
    memory = humaneval_program(
        "def inc(x):\n", "    b = bytearray(8 * 1024**3)\n    return x+1\n", TEST, "inc"
    )
    assert not run_program(memory).passed


def test_ifeval_scores_with_lm_eval_checkers():
    from citi.evaluation.ifeval import ifeval_aggregate, ifeval_scores

    meta = {
        "key": 1,
        "instruction_id_list": ["punctuation:no_comma", "length_constraints:number_words"],
        "kwargs": [{}, {"relation": "at least", "num_words": 5}],
    }
    good = ifeval_scores("p", "one two three four five six", meta)
    assert good["prompt_level_strict"] == 1.0 and good["inst_strict"] == [True, True]
    bad = ifeval_scores("p", "one, two", meta)
    assert bad["prompt_level_strict"] == 0.0 and bad["inst_strict"] == [False, False]
    sentences = {
        "key": 2,
        "instruction_id_list": ["length_constraints:number_sentences"],
        "kwargs": [{"relation": "at least", "num_sentences": 2}],
    }
    assert ifeval_scores("p", "First one. Second one.", sentences)["prompt_level_strict"] == 1.0
    capitals = {
        "key": 3,
        "instruction_id_list": ["change_case:capital_word_frequency"],
        "kwargs": [{"capital_frequency": 2, "capital_relation": "at least"}],
    }
    assert ifeval_scores("p", "VERY LOUD words", capitals)["prompt_level_strict"] == 1.0
    agg = ifeval_aggregate([good, bad])
    assert agg["prompt_level_strict"] == 0.5 and agg["inst_level_strict"] == 0.5
