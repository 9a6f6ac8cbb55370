"""``citi export`` writes what a server needs: the run's chat template (tool prelude included), a
response template transformers parses calls with, and the end-of-turn token among the EOS ids."""

import json

import pytest
import torch
from transformers import AutoTokenizer, GenerationConfig

from citi.cli.main import main
from citi.data.chat_template import TOOL_PRELUDE, render_chat
from citi.evaluation.toolcalls import parse_tool_calls
from citi.train.loop import Trainer
from tests.helpers import small_config

TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
            "required": ["city"],
        },
    },
}
CALLS = [
    {"name": "get_weather", "arguments": {"city": "Paris", "days": 3}},
    {"name": "get_weather", "arguments": {"city": 'Zürich "Nord"'}},
]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, data_dir, selection_file):
    run = tmp_path_factory.mktemp("citi") / "run"
    Trainer(small_config(data_dir, selection_file, method="citi"), run).run()
    out = tmp_path_factory.mktemp("export") / "model"
    assert main(["export", str(run), "--out", str(out)]) == 0
    return run, out


@pytest.fixture(scope="module")
def export(trained):
    return trained[1]


def test_exported_template_renders_a_gold_call_that_parses_back_to_the_same_call(export):
    tokenizer = AutoTokenizer.from_pretrained(export)
    assert tokenizer.chat_template.startswith(TOOL_PRELUDE)  # tiny-llama's template has no tools
    messages = [
        {"role": "user", "content": "Weather?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": f"call_{i}", "type": "function", "function": c} for i, c in enumerate(CALLS)
            ],
        },
    ]
    prompt = tokenizer.apply_chat_template(
        messages[:1], tools=[TOOL], tokenize=False, add_generation_prompt=True
    )
    full = tokenizer.apply_chat_template(messages, tools=[TOOL], tokenize=False)
    assert full == render_chat(tokenizer, tokenizer.chat_template, messages, [TOOL])
    assert full.startswith(prompt) and "<tools>" in prompt
    answer = full[len(prompt) :]

    parsed = tokenizer.parse_response(answer, prefix=prompt)  # transformers, from the export
    got = [(c["function"]["name"], c["function"]["arguments"]) for c in parsed["tool_calls"]]
    assert got == [(c["name"], c["arguments"]) for c in CALLS]
    assert not parsed.get("content")
    assert parse_tool_calls(answer).calls == CALLS  # citi's own parser agrees


def test_export_puts_the_end_of_turn_token_among_the_eos_ids_and_serving_in_the_card(export):
    tokenizer = AutoTokenizer.from_pretrained(export)
    eos = GenerationConfig.from_pretrained(export).eos_token_id
    eos = [eos] if isinstance(eos, int) else eos
    assert tokenizer.convert_tokens_to_ids("<|im_end|>") in eos
    config = json.loads((export / "tokenizer_config.json").read_text())
    assert config["response_template"]["fields"]["tool_calls"]["close"] == "</tool_call>"
    card = (export / "README.md").read_text()
    assert f"citi serve {export}" in card and "tool_calls" in card


def test_citi_serve_loads_the_export_as_the_same_model_and_template_as_the_run(trained):
    from citi.serve.model import load_served

    run, export = trained
    from_export, from_run = load_served(str(export)), load_served(str(run))
    assert from_export.template == from_run.template
    assert from_export.hermes_calls and from_export.stop_ids == from_run.stop_ids
    ids = torch.tensor([[5, 6, 7, 8, 9, 10, 11]])
    with torch.no_grad():
        expected = from_run.model(ids).logits
        torch.testing.assert_close(from_export.model(ids).logits, expected, rtol=0, atol=1e-6)
        base = load_served("tiny-llama").model(ids).logits
    assert not torch.allclose(base, expected)  # the adapter is really applied
