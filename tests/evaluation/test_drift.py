import math

import pytest
import torch

from citi.evaluation.benchmarks.drift import contains_api_call, per_example_kl, token_kl
from citi.evaluation.config import EvalConfig
from citi.evaluation.intervals import bootstrap_interval, interval, wilson_interval
from citi.evaluation.runner import evaluate
from citi.evaluation.tables import format_metric


def test_token_kl_hand_value_and_zero():
    base = torch.tensor([[0.0, 0.0], [1.0, 2.0]])
    tuned = torch.tensor([[math.log(3.0), 0.0], [1.0, 2.0]])
    kl = token_kl(base, tuned)
    # p = (1/2, 1/2), q = (3/4, 1/4): KL = 1/2 ln(2/3) + 1/2 ln 2 = 1/2 ln(4/3)
    assert kl[0].item() == pytest.approx(0.5 * math.log(4 / 3), abs=1e-6)
    assert kl[1].item() == 0.0


def test_per_example_kl_is_zero_for_identical_models(tiny_llama):
    model, tok = tiny_llama.model, tiny_llama.tokenizer
    kls = per_example_kl(model, model, tok, ["ab", "hello there"], ["cd", "x"], batch_size=2)
    assert kls == [0.0, 0.0]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[ToolSearcher(keywords='weather')]", True),
        ("Sure. API-Request: [GetToday()]", True),
        ("[GetToday()]", True),
        ("result = [f(x) for x in items]", False),
        ("return [len(a)]", False),
        ("print([abs(x)])", False),
        ("[print()]", False),
        ("The capital of France is Paris.", False),
        ("Call [QueryStock(symbol=AAPL, date='2023-01-01')] now", True),
        # the Hermes and JSON formats of tool-calling templates
        ('<tool_call>\n{"name": "search", "arguments": {"q": "x"}}\n</tool_call>', True),
        ("Let me look. <tool_call>\n{broken", True),
        ('Answer: {"name": "get_weather", "arguments": {"city": "Paris"}}', True),
        ('{"type": "function", "function": {"name": "now", "arguments": "{}"}}', True),
        ('[{"name": "f", "parameters": {}}]', True),
        ('Here is the JSON: {"name": "Ada", "age": 36}', False),
        ('{"answer": 42, "steps": ["add", "carry"]}', False),
        ("def f(x=1):\n    return dict(a=x)", False),
    ],
)
def test_leak_detector(text, expected):
    assert contains_api_call(text) is expected


def test_wilson_known_binomial_cases():
    lo, hi = wilson_interval(0, 10)
    assert lo == 0.0 and hi == pytest.approx(0.27753, abs=1e-5)
    lo, hi = wilson_interval(5, 10)
    assert (lo, hi) == (pytest.approx(0.23659, abs=1e-5), pytest.approx(0.76341, abs=1e-5))
    lo, hi = wilson_interval(10, 10)
    assert lo == pytest.approx(0.72247, abs=1e-5) and hi == 1.0
    with pytest.raises(ValueError):
        wilson_interval(3, 2)


def test_bootstrap_interval_brackets_the_mean_and_is_seeded():
    values = [0.1, 0.4, 0.35, 0.8, 0.2, 0.55, 0.3, 0.6]
    lo, hi = bootstrap_interval(values)
    mean = sum(values) / len(values)
    assert lo < mean < hi
    assert (lo, hi) == bootstrap_interval(values)
    assert bootstrap_interval([0.5] * 5) == (0.5, 0.5)
    assert interval([1, 0, 1])["method"] == "wilson"
    assert interval([0.2, 0.7])["method"] == "bootstrap"


def test_format_metric_units():
    assert format_metric("nll", 0.336) == "0.336"
    assert format_metric("kl", 0.0123) == "0.012"
    assert format_metric("correctness", 0.25, {"low": 0.1, "high": 0.5}) == "25.0 [10.0, 50.0]"


def test_drift_and_leak_tasks_end_to_end(tmp_path, data_dir):
    from citi.models import load_model

    config = EvalConfig(
        model="tiny-llama",
        tasks=["drift-math", "leak-tool"],
        data_dir=str(data_dir),
        limit=4,
        precision="fp32",
    )
    base = evaluate(config, tmp_path / "base")
    assert base["tasks"]["drift-math"]["metrics"]["kl"] == 0.0
    leak = base["tasks"]["leak-tool"]["metrics"]
    assert leak["ci"]["leak"]["method"] == "wilson" and leak["examples"] == 4
    tuned = load_model("tiny-llama", device="cpu")
    with torch.no_grad():
        tuned.model.model.layers[1].mlp.down_proj.weight.mul_(3.0)
    config = EvalConfig(model="tiny-llama", tasks=["drift-math"], data_dir=str(data_dir), limit=4)
    result = evaluate(config, tmp_path / "tuned", loaded=tuned, variant="scaled")
    entry = result["tasks"]["drift-math"]
    assert entry["metrics"]["kl"] > 0
    assert entry["metrics"]["ci"]["kl"]["method"] == "bootstrap"


def test_task_names_are_unique_and_versions_change_the_resume_key():
    from dataclasses import replace

    from citi.evaluation.registry import TASKS, register
    from citi.evaluation.reuse import settings_key as _settings_key

    task = TASKS["triviaqa"]
    with pytest.raises(ValueError, match="already registered"):
        register(task)
    key = _settings_key(task, "m", None, 2, 512)
    assert _settings_key(replace(task, version=2), "m", None, 2, 512) != key


def test_interval_kind_follows_the_metric_not_the_values():
    from citi.evaluation.intervals import interval
    from citi.evaluation.metrics import metric_info

    zeros = [0.0] * 32  # an unchanged model: every per-example KL is 0
    assert interval(zeros, share=metric_info("kl").share) == {
        "low": 0.0,
        "high": 0.0,
        "method": "bootstrap",
        "n": 32,
    }
    assert interval(zeros, share=metric_info("leak").share)["method"] == "wilson"
    assert interval([0.0, 1.0, 1.0], share=metric_info("rouge_l").share)["method"] == "bootstrap"
