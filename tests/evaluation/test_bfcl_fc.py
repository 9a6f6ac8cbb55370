import json

import pytest

from citi.data import load_dataset
from citi.evaluation.benchmarks import bfcl
from citi.evaluation.benchmarks.bfcl_fc import PYTHON_NOTE, decode, to_tools, user_messages
from citi.evaluation.toolcalls.parse import hermes_call_text
from tests.fixtures.make_fixtures import _AREA, _WEATHER
from tests.helpers import evaluate_tasks as evaluate


def test_functions_become_tools_as_bfcl_sends_them_to_function_calling_models():
    area, weather = to_tools([_AREA, _WEATHER])
    fn = area["function"]
    assert area["type"] == "function" and fn["name"] == "geometry_area"
    assert fn["description"].endswith(PYTHON_NOTE)
    assert fn["parameters"]["type"] == "object"
    width = fn["parameters"]["properties"]["width"]
    assert width["type"] == "number" and width["format"] == "float"
    assert width["description"].endswith("This is a float type value.")
    props = weather["function"]["parameters"]["properties"]
    assert props["options"]["type"] == "object"
    assert props["options"]["properties"]["days"]["type"] == "integer"
    assert props["cities"]["items"]["type"] == "string"
    assert _AREA["parameters"]["type"] == "dict"  # BFCL's own documents are left untouched


def test_decode_maps_tool_names_back_and_reads_every_format():
    for output in (
        hermes_call_text({"name": "geometry_area", "arguments": {"width": 3, "height": 4.5}}),
        '{"name": "geometry_area", "arguments": {"width": 3, "height": 4.5}}',
        "[geometry_area(width=3, height=4.5)]",
    ):
        assert decode(output, [_AREA]) == [{"geometry.area": {"width": 3, "height": 4.5}}]
    assert decode("The area is 13.5.", [_AREA]) is None


def _gold_call(answer: dict, functions: list[dict]) -> dict:
    """The first possible answer of each parameter, as a function-calling model writes it."""

    def first(options):
        return next(o for o in options if o != "")

    name, args = next(iter(answer.items()))
    values = {}
    for key, options in args.items():
        if "" in options and len(options) == 1:
            continue
        value = first(options)
        if isinstance(value, dict):
            value = {k: first(v) for k, v in value.items() if any(o != "" for o in v)}
        values[key] = value
    return {"name": name.replace(".", "_"), "arguments": values}


def test_bfcl_fc_scores_reference_calls_correct(data_dir, tiny_llama, tmp_path, monkeypatch):
    import citi.evaluation.generation as generation

    examples = {}
    for category in bfcl.CATEGORIES:
        for ex in load_dataset(f"bfcl-{category.replace('_', '-')}", data_dir):
            examples[user_messages(ex)[-1]["content"]] = ex

    def scripted(model, tok, prompts, *a, **k):  # the reference calls, in the Hermes format
        out = []
        for prompt in prompts:
            ex = next(e for q, e in examples.items() if q in prompt)
            assert "<tools>" in prompt and PYTHON_NOTE in prompt and "composing" not in prompt
            calls = [_gold_call(a, ex.meta["functions"]) for a in ex.meta["answers"]]
            out.append("\n".join(hermes_call_text(c) for c in calls) or "Shakespeare.")
        return out

    monkeypatch.setattr(generation, "generate", scripted)
    tasks = [f"bfcl-fc-{c.replace('_', '-')}" for c in bfcl.CATEGORIES]
    results = evaluate("tiny-llama", tasks, tmp_path / "ev", data_dir=data_dir, loaded=tiny_llama)
    for task in tasks:
        metrics = results["tasks"][task]["metrics"]
        assert metrics["accuracy"] == 1.0, (task, metrics["errors"])


def test_bfcl_fc_runs_end_to_end_on_a_tiny_model(data_dir, tiny_llama, tmp_path):
    out = tmp_path / "ev"
    results = evaluate(
        "tiny-llama", ["bfcl-fc-simple"], out, data_dir=data_dir, loaded=tiny_llama, limit=2
    )
    metrics = results["tasks"]["bfcl-fc-simple"]["metrics"]
    assert metrics["examples"] == 2
    assert sum(metrics["errors"].values()) + 2 * metrics["accuracy"] == pytest.approx(2)
    assert metrics["ci"]["accuracy"]["method"] == "wilson"
    records = [json.loads(x) for x in (out / "predictions" / "bfcl-fc-simple.jsonl").open()]
    assert all("<tools>" in r["prompt"] for r in records)
