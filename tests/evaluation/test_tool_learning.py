import math

import pytest
import torch

from citi.data.example import TOOL, single_turn
from citi.data.render import render_prompt, target_text
from citi.evaluation.apicall import parse_calls
from citi.evaluation.benchmarks.tool_learning import (
    argument_char_spans,
    encode_arguments,
    per_example_nll,
)
from citi.evaluation.config import EvalConfig
from citi.evaluation.runner import evaluate

ANSWER = "API-Request: [AddReminder(token='t0k3n', content='call Bob', time=10:00 AM)]"


def test_value_spans_cover_the_values_only():
    text = "Call: [A(x=10:00 AM , y=['a', 'b'], z={'k': 1}, w=[], n=3)]"
    call = parse_calls(text)[0]
    assert [text[a:b] for a, b in call.value_spans] == ["10:00 AM", "'a', 'b'", "'k': 1", "3"]
    spans = argument_char_spans(ANSWER)
    assert [ANSWER[a:b] for a, b in spans] == ["t0k3n", "call Bob", "10:00 AM"]
    assert argument_char_spans("Sure, the reminder is set.") == []
    assert parse_calls("[GetToday()]")[0].value_spans == []


def _example(answer=ANSWER):
    return single_turn(
        "Remind me to call Bob", answer, task_type=TOOL, ability="tool", source="apibank-l2"
    )


def test_argument_nll_equals_a_hand_computed_masked_nll(tiny_llama):
    model, tok = tiny_llama.model, tiny_llama.tokenizer
    ex = _example()
    enc = encode_arguments(tok, ex, max_length=512)
    (nll,), (count,) = per_example_nll(model, [enc], tok.pad_token_id, 4, "cpu")

    # By hand: the byte tokenizer gives one token per character, so the value tokens are the
    # value characters' positions after the prompt; score them on the full sequence's logits.
    prompt_ids = tok(render_prompt(tok, ex.prompt_messages), add_special_tokens=False)["input_ids"]
    target = target_text(tok, ex)
    target_ids = tok(target, add_special_tokens=False)["input_ids"]
    assert len(target_ids) == len(ANSWER) + 1  # one token a character, then <|im_end|>
    ids = torch.tensor([prompt_ids + target_ids])
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=ids).logits[0].double(), dim=-1)
    positions = [
        len(prompt_ids) + i
        for value in ("t0k3n", "call Bob", "10:00 AM")
        for i in range(target.index(value), target.index(value) + len(value))
    ]
    hand = -sum(logp[p - 1, ids[0, p]].item() for p in positions) / len(positions)
    assert count == len(positions) == 5 + 8 + 8
    assert nll == pytest.approx(hand, rel=1e-5)
    # and it is not the whole-answer NLL (format tokens are excluded)
    whole = -sum(logp[len(prompt_ids) + i - 1, t].item() for i, t in enumerate(target_ids))
    assert not math.isclose(nll, whole / len(target_ids), rel_tol=1e-4)


def test_answers_without_call_arguments_are_left_out(tiny_llama):
    tok = tiny_llama.tokenizer
    assert encode_arguments(tok, _example("The reminder is set."), 512) is None
    assert encode_arguments(tok, _example("API-Request: [GetToday()]"), 512) is None


def test_tool_tasks_end_to_end(tmp_path, data_dir):
    from citi.models import load_model

    config = EvalConfig(
        model="tiny-llama",
        tasks=["retention-tool-args", "kl-tool", "retention-tool"],
        data_dir=str(data_dir),
        limit=4,
        precision="fp32",
    )
    base = evaluate(config, tmp_path / "base")["tasks"]
    assert base["kl-tool"]["metrics"]["kl"] == 0.0  # the base model against itself
    args = base["retention-tool-args"]["metrics"]
    assert args["examples"] >= 1 and args["argument_tokens"] > 0
    assert args["arg_nll"] != pytest.approx(base["retention-tool"]["metrics"]["nll"])
    tuned = load_model("tiny-llama", device="cpu")
    with torch.no_grad():
        tuned.model.model.layers[1].mlp.down_proj.weight.mul_(3.0)
    result = evaluate(config, tmp_path / "tuned", loaded=tuned, variant="scaled")["tasks"]
    assert result["kl-tool"]["metrics"]["kl"] > 0
    assert result["retention-tool-args"]["metrics"]["arg_nll"] != args["arg_nll"]
