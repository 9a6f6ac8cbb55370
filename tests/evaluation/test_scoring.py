import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from citi.data import load_dataset
from citi.evaluation.benchmarks import apibank
from citi.evaluation.benchmarks.gsm8k import gsm8k_flexible, gsm8k_scores, gsm8k_strict
from citi.evaluation.benchmarks.triviaqa import normalize_answer, triviaqa_exact_match
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
        # AddReminder's own rules: content by (lower-cased) word overlap, time exactly, and an
        # argument the API declares but does not compare is allowed.
        (
            "[AddReminder(token='t0k3n', content='Call Bob about the report please', "
            "time='2023-03-01 17:00:00')]",
            apibank.CORRECT,
        ),
        (
            "[AddReminder(token='t0k3n', content='call Bob about the report', "
            "time='2023-03-01 17:00')]",
            apibank.INPUT_MISMATCH,
        ),
        (
            "[AddReminder(token='T0K3N', content='call Bob about the report', "
            "time='2023-03-01 17:00:00')]",
            apibank.INPUT_MISMATCH,
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


def _desc(api: str, params: dict[str, tuple[str, str]]) -> str:
    spec = {k: {"type": t, "description": d} for k, (t, d) in params.items()}
    return json.dumps({"name": api, "description": "x", "input_parameters": spec})


@pytest.mark.parametrize(
    "gold, pred, params, verdict",
    [
        # tokens, passwords and usernames are identifiers: compared exactly, case included
        (
            "[GetUserToken(username='JohnDoe', password='Pa55')]",
            "[GetUserToken(username='johndoe', password='Pa55')]",
            {"username": ("str", "The username."), "password": ("str", "The password.")},
            apibank.INPUT_MISMATCH,
        ),
        # a scene name is free: DeleteScene strips and case-folds it
        (
            "[DeleteScene(name='Morning Routine')]",
            "[DeleteScene(name=' morning routine')]",
            {"name": ("str", "The name of the scene.")},
            apibank.CORRECT,
        ),
        # a date in another form than the declared one: the API raises
        (
            "[QueryStock(stock_code='MSFT', date='2022-02-04')]",
            "[QueryStock(stock_code='msft', date='04/02/2022')]",
            {"stock_code": ("str", "Code."), "date": ("str", "The date. Format: %Y-%m-%d")},
            apibank.HAS_EXCEPTION,
        ),
        # ... while zero padding is normalised where the API parses the date
        (
            "[QueryStock(stock_code='MSFT', date='2022-02-04')]",
            "[QueryStock(stock_code='msft', date='2022-2-4')]",
            {"stock_code": ("str", "Code."), "date": ("str", "The date. Format: %Y-%m-%d")},
            apibank.CORRECT,
        ),
        # and not where it compares the text (AddAlarm compares its whole input)
        (
            "[AddAlarm(token='t', time='2023-03-01 07:00:00')]",
            "[AddAlarm(token='t', time='2023-03-01 7:00:00')]",
            {"token": ("str", "Token."), "time": ("str", "Format: %Y-%m-%d %H:%M:%S")},
            apibank.INPUT_MISMATCH,
        ),
        # int parameters must be digits: '1.0' raises, like the official tool manager
        (
            "[BookHotel(hotel_name='Hilton', room_count=1)]",
            "[BookHotel(hotel_name='Hilton', room_count='1.0')]",
            {"hotel_name": ("str", "Name."), "room_count": ("int", "Rooms.")},
            apibank.HAS_EXCEPTION,
        ),
        (
            "[BookHotel(hotel_name='Hilton', room_count=1)]",
            "[BookHotel(hotel_name='Hilton', room_count='01')]",
            {"hotel_name": ("str", "Name."), "room_count": ("int", "Rooms.")},
            apibank.CORRECT,
        ),
        # '1' and '1.0' are different text where the declared type is str
        (
            "[Calculator(formula='1')]",
            "[Calculator(formula='1.0')]",
            {"formula": ("str", "The formula.")},
            apibank.INPUT_MISMATCH,
        ),
        (
            "[Calculator(formula='(1+2)*3')]",
            "[Calculator(formula='(1 + 2) * 3')]",
            {"formula": ("str", "The formula.")},
            apibank.CORRECT,
        ),
        # an optional argument the ground truth leaves out, on an API comparing its whole input
        (
            "[ForgotPassword(status='Forgot Password', username='a', email='a@b.c')]",
            "[ForgotPassword(status='Forgot Password', username='a', email='a@b.c', "
            "new_password='x')]",
            {
                "status": ("str", "s"),
                "username": ("str", "u"),
                "email": ("str", "e"),
                "new_password": ("str", "n"),
            },
            apibank.INPUT_MISMATCH,
        ),
    ],
)
def test_each_api_compares_values_by_its_own_rule(gold, pred, params, verdict):
    name = gold[1 : gold.index("(")]
    prompt = "API descriptions:\n" + _desc(name, params)
    assert apibank.score_api_sample(pred, gold, prompt) == verdict


def test_specs_come_from_descriptions_and_recorded_tool_results():
    prompt = (
        '{"name": "ToolSearcher", "input_parameters": {"keywords": {"type": "str"}}}\n'
        "API-Request: [ToolSearcher(keywords='Query Stock')]->{'name': 'QueryStock', "
        "'description': 'd', 'input_parameters': {'date': {'type': 'str', 'description': "
        "'Format: %Y-%m-%d'}}, 'output_parameters': {}}"
    )
    specs = apibank.api_specs(prompt)
    assert set(specs) == {"ToolSearcher", "QueryStock"}
    assert specs["QueryStock"]["date"]["description"] == "Format: %Y-%m-%d"


def test_tool_searcher_is_judged_by_the_tool_it_retrieves():
    import numpy as np

    from citi.evaluation.benchmarks.toolsearch import ToolSearcher, keywords_match, split_camel

    vocab = ["stock", "price", "meeting", "alarm"]

    def fake_embed(texts):  # bag of known words
        return np.array([[t.lower().count(w) + 1e-3 for w in vocab] for t in texts])

    corpus = [("QueryStock", "query stockstock price"), ("AddMeeting", "add meeting meeting")]
    searcher = ToolSearcher(corpus, fake_embed)
    assert searcher.best("stock price lookup") == "QueryStock"
    gold = "[ToolSearcher(keywords='stock price')]"

    def match(p, g):
        return searcher.best(p) == searcher.best(g)

    # different words, same tool: right; overlapping words, another tool: wrong
    assert apibank.score_api_sample("[ToolSearcher(keywords='price')]", gold, "", "2", match) == (
        apibank.CORRECT
    )
    wrong = "[ToolSearcher(keywords='stock meeting meeting')]"
    assert apibank.score_api_sample(wrong, gold, "", "2", match) == apibank.INPUT_MISMATCH
    assert keywords_match("stock price", "price stock") and not keywords_match("a b c", "a d e")
    assert split_camel("QueryStock") == "query stock"


def test_tool_searcher_corpus_uses_the_official_search_text(tmp_path):
    from citi.evaluation.benchmarks.toolsearch import load_corpus

    path = tmp_path / "apis.json"
    path.write_text(
        json.dumps(
            {
                "QueryStock": {"description": "This API queries stocks."},
                "ToolSearcher": {"description": "Searches."},
            }
        )
    )
    assert load_corpus(path) == [("QueryStock", "query stockThis API queries stocks.")]


def test_rouge_l():
    assert apibank.rouge_l("AI: The result is 33.", "The result is 33.") == pytest.approx(1.0)
    assert apibank.rouge_l("", "The result is 33.") == 0.0
    assert 0 < apibank.rouge_l("the result", "The result is 33.") < 1


def test_gsm8k_filters_follow_lm_eval():
    assert gsm8k_strict("so 3 + 4 = 7\n#### 7") == "7"
    assert gsm8k_strict("The answer is 7") is None
    assert gsm8k_strict("####7") is None  # lm-eval's strict-match wants one space
    assert gsm8k_flexible("first 3, then 1,234.") == "1,234."
    assert gsm8k_flexible("I think 17") == "17"
    assert gsm8k_flexible("no numbers") is None
    assert gsm8k_scores("#### 1,234.", "1234") == {
        "exact_match_strict": 1.0,
        "exact_match_flexible": 1.0,
    }
    # string equality after deleting , $ and a final period, as lm-eval: 18.0 is not 18
    assert gsm8k_scores("#### 18.0", "18")["exact_match_strict"] == 0.0
    assert gsm8k_scores("It costs $18.", "18")["exact_match_flexible"] == 1.0
    assert gsm8k_scores("I think 17", "18")["exact_match_flexible"] == 0.0
    # a whole GSM8K answer works as the reference too ("... #### " is deleted)
    assert gsm8k_scores("#### 18", "She makes 9 * 2 = $18.\n#### 18")["exact_match_strict"] == 1.0
    # a number too long for a float is a string like any other (this once crashed scoring)
    assert gsm8k_scores("#### " + "9" * 400, "18")["exact_match_strict"] == 0.0


@settings(max_examples=300, deadline=None)
@given(
    st.text(alphabet="0123456789.,$#- \nabc", max_size=40),
    st.sampled_from(["18", "1,000", "0.5", "$7", "She makes $18.\n#### 18"]),
)
def test_gsm8k_scores_equal_lm_evals_filters_and_exact_match(prediction, reference):
    from lm_eval.api.metrics import exact_match_hf_evaluate
    from lm_eval.filters.extraction import RegexFilter

    ignore = [",", "\\$", "(?s).*#### ", "\\.$"]
    ours = gsm8k_scores(prediction, reference)
    for name, regex, group in (
        ("exact_match_strict", r"#### (\-?[0-9\.\,]+)", 0),
        ("exact_match_flexible", r"(-?[$0-9.,]{2,})|(-?[0-9]+)", -1),
    ):
        (extracted,) = RegexFilter(regex, group_select=group).apply([[prediction]], [{}])[0]
        theirs = exact_match_hf_evaluate(
            [extracted], [reference], regexes_to_ignore=ignore, ignore_case=True
        )["exact_match"]
        assert ours[name] == theirs, (name, prediction, extracted)


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
    from citi.evaluation.benchmarks.ifeval import ifeval_aggregate, ifeval_scores

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


@pytest.mark.slow
def test_executed_tool_searcher_reproduces_every_recorded_level2_output():
    """With the ONNX embedder installed and the shared data beside the checkout: the tool each
    recorded ToolSearcher call of the level-2 dialogues returned is the one citi retrieves."""
    from pathlib import Path

    from citi.evaluation.benchmarks import toolsearch

    root = Path(__file__).resolve().parents[3] / "shared" / "data" / "api_bank"
    corpus = root / "apis" / "api_descriptions_at_recording.json"
    method, searcher = toolsearch.searcher_for(str(corpus))
    if searcher is None:
        pytest.skip("no sentence embedder or no shared API-Bank data here")
    calls = []
    for line in (root / "dialogues" / "level-2-toolsearcher.jsonl").read_text().splitlines():
        for turn in json.loads(line)["turns"]:
            if turn.get("api_name") == "ToolSearcher":
                out = turn["result"]["output"]
                want = out[-1]["name"] if isinstance(out, list) else out["name"]
                calls.append((turn["param_dict"]["keywords"], want))
    assert len(calls) == 45
    assert [searcher.best(k) for k, _ in calls] == [w for _, w in calls], method
