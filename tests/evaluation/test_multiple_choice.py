"""TriviaQA as 4-way multiple choice by log-likelihood."""

import json

import torch

from citi.data import load_dataset
from citi.data.render import render_prompt
from citi.evaluation.benchmarks.multiple_choice import choice_logprobs, make_choices


def _pool(data_dir):
    return load_dataset("triviaqa", data_dir) + load_dataset("triviaqa-test", data_dir)


def test_choices_are_fixed_per_question_and_hold_one_right_answer(data_dir):
    examples = load_dataset("triviaqa-test", data_dir)
    items = make_choices(examples, _pool(data_dir))
    again = make_choices(examples[1:], _pool(data_dir))  # another --limit, same questions
    assert items[1:] == again
    for ex, item in zip(examples, items, strict=True):
        assert len(set(item["choices"])) == 4
        assert item["choices"][item["answer"]] == ex.reference
        wrong = [c for i, c in enumerate(item["choices"]) if i != item["answer"]]
        aliases = {a.lower() for a in ex.meta["aliases"]}
        assert not aliases & {w.lower() for w in wrong}
    assert len({item["answer"] for item in items}) > 1 or len(items) < 3


def test_choice_logprobs_are_the_models_own(tiny_llama):
    prompt = render_prompt(tiny_llama.tokenizer, [{"role": "user", "content": "Capital of Peru?"}])
    options = ["Lima", "Oslo", "Hanoi", "Santiago de Chile"]
    got = choice_logprobs(tiny_llama, [prompt], [options], batch_size=3)[0]
    tok = tiny_llama.tokenizer
    p_ids = tok(prompt, add_special_tokens=False)["input_ids"]
    for option, value in zip(options, got, strict=True):
        ids = tok(option, add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            logits = tiny_llama.model(input_ids=torch.tensor([p_ids + ids])).logits[0].float()
        logp = torch.log_softmax(logits[len(p_ids) - 1 : -1], -1)
        expected = float(logp[torch.arange(len(ids)), torch.tensor(ids)].sum())
        assert abs(value - expected) < 1e-4, option


def test_triviaqa_mc_task_writes_per_item_correctness(tmp_path, data_dir):
    from tests.helpers import evaluate_tasks as evaluate

    res = evaluate(
        "tiny-llama", ["triviaqa-mc"], tmp_path, data_dir=data_dir, precision="fp32", device="cpu"
    )
    entry = res["tasks"]["triviaqa-mc"]
    assert entry["primary"] == "accuracy" and 0 <= entry["metrics"]["accuracy"] <= 1
    lines = (tmp_path / "predictions" / "triviaqa-mc.jsonl").read_text().splitlines()
    records = [json.loads(x) for x in lines]
    assert len(records) == entry["metrics"]["examples"] == 3
    mean = sum(r["scores"]["correct"] for r in records) / len(records)
    assert entry["metrics"]["accuracy"] == mean and "ci" in entry["metrics"]
    assert all(r["prediction"] in r["choices"] for r in records)
