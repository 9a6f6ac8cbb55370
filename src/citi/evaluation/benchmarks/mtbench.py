"""MT-Bench: two-turn answers graded 1-10 by a judge (FastChat's single-answer grading).

The judge prompts are FastChat's own (``mtbench/judge_prompts.jsonl`` in the data directory):
``single-v1`` / ``single-v1-multi-turn`` for most categories, and the ``single-math-v1`` pair with
GPT-4's reference answers (``reference_answer_gpt-4.jsonl``) for math, reasoning and coding, as
FastChat does. The score is the mean rating over both turns; the paper reports it ×10 as a
percentage. Without a judge the task is skipped with a message: ratings cannot be computed.
"""

from __future__ import annotations

import re
from pathlib import Path

from citi.data.example import Example
from citi.data.records import read_records
from citi.errors import DataError
from citi.evaluation.task import Task, TaskContext, TaskResult

NEEDS_REFERENCE = ("math", "reasoning", "coding")
_RATING = re.compile(r"\[\[(\d+(?:\.\d+)?)\]\]")


def parse_rating(text: str) -> float | None:
    """The last ``[[n]]`` of a judge reply (1-10), or None when there is none."""
    found = [float(x) for x in _RATING.findall(text)]
    found = [x for x in found if 1 <= x <= 10]
    return found[-1] if found else None


def load_judge_files(data_dir) -> tuple[dict, dict]:
    from citi.data.datadir import resolve_data_dir

    root = Path(resolve_data_dir(data_dir)) / "mtbench"
    prompts_path = root / "judge_prompts.jsonl"
    if not prompts_path.is_file():
        raise DataError(f"{prompts_path}: file not found (FastChat's MT-Bench judge prompts)")
    prompts = {r["name"]: r for r in read_records(prompts_path)}
    for name in (
        "single-v1",
        "single-v1-multi-turn",
        "single-math-v1",
        "single-math-v1-multi-turn",
    ):
        if name not in prompts:
            raise DataError(f"{prompts_path}: no judge prompt named {name!r}")
    refs = {}
    ref_path = root / "reference_answer_gpt-4.jsonl"
    if ref_path.is_file():
        refs = {r["question_id"]: r["choices"][0]["turns"] for r in read_records(ref_path)}
    return prompts, refs


def judge_messages(example, answers: list[str], turn: int, prompts: dict, refs: dict) -> list:
    """The judge conversation for ``turn`` (1 or 2) of one question."""
    questions = example.meta["turns"]
    ref = refs.get(example.meta["question_id"])
    math = example.meta.get("category") in NEEDS_REFERENCE and ref is not None
    name = ("single-math-v1" if math else "single-v1") + ("-multi-turn" if turn == 2 else "")
    fields = {"question": questions[0], "answer": answers[0]}
    if turn == 2:
        fields = {
            "question_1": questions[0],
            "question_2": questions[1],
            "answer_1": answers[0],
            "answer_2": answers[1],
        }
    if math and ref is not None:
        fields |= {"ref_answer_1": ref[0], "ref_answer_2": ref[1] if len(ref) > 1 else ""}
    template = prompts[name]
    return [
        {"role": "system", "content": template["system_prompt"]},
        {"role": "user", "content": template["prompt_template"].format(**fields)},
    ]


def answer_turns(loaded, examples, batch_size: int, max_new_tokens: int = 512) -> list[list[str]]:
    """Greedy answers to both turns; the second turn sees the first question and answer."""
    from citi.data.render import render_prompt
    from citi.evaluation.generation import generate

    def chats(history):
        return [render_prompt(loaded.tokenizer, h) for h in history]

    history = [[{"role": "user", "content": ex.meta["turns"][0]}] for ex in examples]
    first = generate(
        loaded.model,
        loaded.tokenizer,
        chats(history),
        max_new_tokens,
        (),
        batch_size,
        progress="mtbench turn 1",
    )
    for h, ex, a in zip(history, examples, first, strict=True):
        h += [{"role": "assistant", "content": a}]
        if len(ex.meta["turns"]) > 1:
            h += [{"role": "user", "content": ex.meta["turns"][1]}]
    two = [i for i, ex in enumerate(examples) if len(ex.meta["turns"]) > 1]
    second = generate(
        loaded.model,
        loaded.tokenizer,
        chats([history[i] for i in two]),
        max_new_tokens,
        (),
        batch_size,
        progress="mtbench turn 2",
    )
    answers = [[a] for a in first]
    for i, a in zip(two, second, strict=True):
        answers[i].append(a)
    return answers


def evaluate_mtbench(task: Task, examples: list[Example], ctx: TaskContext) -> TaskResult:
    """Both turns answered (cached by ``ctx.generated`` before any judging), then rated."""
    prompts, refs = load_judge_files(ctx.data_dir)
    judge = ctx.judge
    answers = ctx.generated(lambda: answer_turns(ctx.loaded, examples, ctx.batch_size))
    records, ratings = [], []
    from tqdm.auto import tqdm

    for ex, ans in tqdm(list(zip(examples, answers, strict=True)), desc="mtbench judge"):
        per_turn = []
        for turn in range(1, len(ans) + 1):
            reply = judge.chat(judge_messages(ex, ans, turn, prompts, refs))
            per_turn.append(parse_rating(reply))
        ratings += [r for r in per_turn if r is not None]
        records.append(
            {
                "question_id": ex.meta["question_id"],
                "category": ex.meta.get("category"),
                "answers": ans,
                "scores": {"ratings": per_turn},
            }
        )
    unrated = sum(r is None for rec in records for r in rec["scores"]["ratings"])
    mean = sum(ratings) / len(ratings) if ratings else 0.0
    metrics = {
        "score": mean / 10,  # shown as a percentage, like the paper
        "mean_rating": mean,
        "unrated_turns": unrated,
    }
    return TaskResult(metrics, records, "score")


TASKS = [
    Task(
        name="mtbench",
        dataset="mtbench",
        description="MT-Bench two-turn answers rated 1-10 by the --judge-url model, as a "
        "percentage",
        run=evaluate_mtbench,
        needs_judge=True,
        uses_judge=True,
        primary="score",
    )
]
