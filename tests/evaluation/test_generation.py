"""Prompts longer than the model's context are cut from the left, counted and announced."""

import json

import pytest
import torch

from citi.cli.main import main
from citi.errors import CitiError
from citi.evaluation.generation import (
    context_length,
    count_truncated,
    generate,
    prompt_budget,
)


def test_a_prompt_over_the_context_is_cut_from_the_left_to_fit(tiny_llama, monkeypatch, capsys):
    model, tok = tiny_llama.model, tiny_llama.tokenizer
    assert context_length(model, tok) == 1024  # the tokenizer does not know; the config does
    long = " ".join(f"w{i}" for i in range(3000)) + " the question"
    ids = tok(long, add_special_tokens=False)["input_ids"]
    budget = prompt_budget(model, tok, 8)
    assert len(ids) > 1024 and budget == 1016
    seen = []
    real = model.generate

    def spy(**kwargs):
        seen.append(kwargs["input_ids"])
        return real(**kwargs)

    monkeypatch.setattr(model, "generate", spy)
    with count_truncated() as cut:
        outputs = generate(model, tok, [long, "short"], max_new_tokens=8, batch_size=2)
    assert cut == [1] and len(outputs) == 2
    assert seen[0].shape[1] == budget  # never more than the context allows
    assert seen[0][1].tolist() == ids[-budget:]  # the long prompt (sorted last): its end
    assert "1 of 2 prompts" in " ".join(capsys.readouterr().out.split())
    assert tok.truncation_side == "right" and tok.padding_side == "right"  # restored


def test_new_tokens_that_fill_the_context_are_one_error(tiny_llama):
    with pytest.raises(CitiError, match="leaves no room for a prompt"):
        prompt_budget(tiny_llama.model, tiny_llama.tokenizer, 1024)


def test_citi_eval_on_huge_prompts_finishes_and_records_the_cut(tmp_path, data_dir):
    import shutil

    data = shutil.copytree(data_dir, tmp_path / "data")
    path = data / "triviaqa" / "triviaqa_sm_sub.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    for row in rows:  # 100 KB each: minutes of prefill on a real model without the cut
        row["context"] = "apples " * 15_000 + row["context"]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "ev"
    argv = ["eval", "--model", "tiny-llama", "--data-dir", str(data), "--tasks", "triviaqa"]
    assert main([*argv, "--limit", "2", "--precision", "fp32", "--out", str(out)]) == 0
    entry = json.loads((out / "results.json").read_text())["tasks"]["triviaqa"]
    assert entry["truncated_prompts"] == 2 and entry["metrics"]["examples"] == 2


def test_loglik_tasks_never_pass_the_models_context(tmp_path, data_dir, monkeypatch):
    import shutil

    import citi.loss

    data = shutil.copytree(data_dir, tmp_path / "data")
    path = data / "gsm8k" / "test.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    rows[0]["question"] = "apples " * 2_000 + rows[0]["question"]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    widths = []

    def nll(model, encoded, *a, **k):
        widths.extend(len(e.input_ids) for e in encoded)
        return 1.0

    monkeypatch.setattr(citi.loss, "mean_label_loss", nll)
    argv = ["eval", "--model", "tiny-llama", "--data-dir", str(data), "--tasks", "retention-math"]
    argv += ["--max-length", "4096", "--limit", "1", "--out", str(tmp_path / "ev")]
    assert main(argv) == 0
    assert widths and max(widths) == 1024  # cut to the context, not to --max-length 4096


def _prompts():
    words = "the a tool call answer question of to".split()
    return [" ".join(words[: 2 + i % 7]) * (1 + i % 3) for i in range(7)]


def _spy_generate(model, monkeypatch):
    """Record each `generate` call's batch rows and new tokens."""
    calls = []
    real = model.generate

    def spy(**kwargs):
        out = real(**kwargs)
        seq = out if isinstance(out, torch.Tensor) else out.sequences
        calls.append(seq[:, kwargs["input_ids"].shape[1] :])
        return out

    monkeypatch.setattr(model, "generate", spy)
    return calls


def test_pruning_finished_rows_gives_the_answers_of_one_generate_call(tiny_llama, monkeypatch):
    model, tok = tiny_llama.model, tiny_llama.tokenizer
    prompts = _prompts()
    monkeypatch.setattr(model.generation_config, "eos_token_id", None)
    calls = _spy_generate(model, monkeypatch)
    free = generate(model, tok, prompts, max_new_tokens=12, batch_size=4, prune_every=None)
    # A token that some rows of the first batch emit early and others never: as the end of
    # sequence, it ends rows of one batch at different steps.
    rows = calls[0].tolist()
    eos = next(t for row in rows for t in row[1:4] if any(t not in other for other in rows))
    monkeypatch.setattr(model.generation_config, "eos_token_id", eos)
    whole = generate(model, tok, prompts, max_new_tokens=12, batch_size=4, prune_every=None)
    calls.clear()
    pruned = generate(model, tok, prompts, max_new_tokens=12, batch_size=4, prune_every=3)
    assert pruned == whole
    assert whole != free  # some answer did end early
    assert calls[0].shape[0] == 4 and min(c.shape[0] for c in calls) < 4  # its row was dropped


def test_pruning_on_stop_strings_gives_the_same_answers(tiny_llama, monkeypatch):
    model, tok = tiny_llama.model, tiny_llama.tokenizer
    prompts = _prompts()
    monkeypatch.setattr(model.generation_config, "eos_token_id", None)
    free = generate(model, tok, prompts, max_new_tokens=12, batch_size=4, prune_every=None)
    stop = [free[1][len(free[1]) // 3 :][:2]]
    whole = generate(model, tok, prompts, 12, stop=stop, batch_size=4, prune_every=None)
    calls = _spy_generate(model, monkeypatch)
    pruned = generate(model, tok, prompts, 12, stop=stop, batch_size=4, prune_every=2)
    assert pruned == whole
    assert whole != free
    assert min(c.shape[0] for c in calls) < 4
