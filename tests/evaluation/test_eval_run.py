import json

import pytest

from citi.cli.main import main
from citi.evaluation.generation import generate, truncate_at_stop


def test_batched_generation_equals_one_at_a_time(tiny_llama):
    tok = tiny_llama.tokenizer
    prompts = [
        tok.apply_chat_template(
            [{"role": "user", "content": c}], tokenize=False, add_generation_prompt=True
        )
        for c in ("hi", "a much longer question here", "mid length")
    ]
    batched = generate(tiny_llama.model, tok, prompts, max_new_tokens=8, batch_size=3)
    single = [
        generate(tiny_llama.model, tok, [p], max_new_tokens=8, batch_size=1)[0] for p in prompts
    ]
    assert batched == single
    assert all(len(tok(o, add_special_tokens=False)["input_ids"]) <= 8 for o in batched)


def test_truncate_at_stop():
    assert truncate_at_stop("abc\n\ndef<|im_end|>", ["<|im_end|>", "\n\n"]) == "abc"
    assert truncate_at_stop("abc", ["x"]) == "abc"


def test_eval_cli_writes_results_and_resumes(tmp_path, data_dir, monkeypatch):
    out = tmp_path / "ev"
    args = [
        "eval",
        "--model",
        "tiny-llama",
        "--data-dir",
        str(data_dir),
        "--tasks",
        "apibank-l2,apibank-l2-response,gsm8k,triviaqa,retention-math",
        "--limit",
        "2",
        "--out",
        str(out),
    ]
    assert main(args) == 0
    results = json.loads((out / "results.json").read_text())
    api = results["tasks"]["apibank-l2"]["metrics"]
    assert api["examples"] == 2 and 0 <= api["correctness"] <= 1
    assert sum(api["errors"].values()) + api["correctness"] * 2 == 2
    assert results["tasks"]["retention-math"]["metrics"]["nll"] > 0
    lines = (out / "predictions" / "apibank-l2.jsonl").read_text().splitlines()
    assert len(lines) == 2 and "prediction" in json.loads(lines[0])
    assert (out / "results.md").read_text().startswith("| run |")

    import citi.evaluation.runner as runner

    monkeypatch.setattr(runner, "run_task", lambda *a, **k: pytest.fail("task recomputed"))
    assert main(args) == 0
    assert main(["eval", "compare", str(out), str(out)]) == 0


def test_eval_errors(tmp_path, data_dir, capsys):
    assert main(["eval", "--model", "tiny-llama", "--tasks", "gsm8kk", "--out", str(tmp_path)]) == 2
    assert "did you mean 'gsm8k'" in capsys.readouterr().err


def test_generations_are_reused_after_a_scoring_failure(tmp_path, data_dir, monkeypatch):
    import citi.evaluation.harness as harness

    out = tmp_path / "ev"
    args = [
        "eval",
        "--model",
        "tiny-llama",
        "--data-dir",
        str(data_dir),
        "--tasks",
        "triviaqa",
        "--limit",
        "2",
        "--out",
        str(out),
    ]
    assert main(args) == 0
    (out / "tasks" / "triviaqa.json").unlink()  # as if scoring had crashed after generation
    monkeypatch.setattr(harness, "generate", lambda *a, **k: pytest.fail("generated again"))
    assert main(args) == 0
    assert (
        json.loads((out / "results.json").read_text())["tasks"]["triviaqa"]["metrics"]["examples"]
        == 2
    )


def test_a_new_task_version_reruns_that_task_only(tmp_path, data_dir, monkeypatch):
    import dataclasses

    import citi.evaluation.runner as runner
    from citi.evaluation.registry import TASKS

    out = tmp_path / "ev"
    args = ["eval", "--model", "tiny-llama", "--data-dir", str(data_dir), "--precision", "fp32"]
    args += ["--tasks", "triviaqa,retention-math", "--limit", "2", "--out", str(out)]
    assert main(args) == 0
    real = runner.run_task
    ran = []

    def spy(task, *a, **k):
        ran.append(task.name)
        return real(task, *a, **k)

    monkeypatch.setattr(runner, "run_task", spy)
    # a prompt or scorer change is announced by a new version of that task
    bumped = dataclasses.replace(TASKS["triviaqa"], version=TASKS["triviaqa"].version + 1)
    monkeypatch.setitem(TASKS, "triviaqa", bumped)
    assert main(args) == 0
    assert ran == ["triviaqa"]


def test_every_registered_metric_is_formatted_by_the_metric_table():
    from citi.evaluation.metrics import METRICS
    from citi.evaluation.registry import TASKS
    from citi.evaluation.tables import format_metric

    for task in TASKS.values():
        assert task.primary in METRICS, task.name  # no metric is formatted by a guess
    for name, info in METRICS.items():
        text = format_metric(name, 0.336, {"low": 0.25, "high": 0.5})
        if info.unit == "percent":
            assert text == "33.6 [25.0, 50.0]", name
        else:  # NLL and KL are never percentages (the retention-code "33.6" bug)
            assert text == "0.336 [0.250, 0.500]", name
