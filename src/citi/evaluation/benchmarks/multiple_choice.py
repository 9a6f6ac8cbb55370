"""TriviaQA as 4-way multiple choice scored by log-likelihood (``triviaqa-mc``).

Generated TriviaQA answers are at the floor for a 135M model, so a fall cannot be seen; ranking
four given answers by the model's likelihood keeps the measure above chance (25%). The three
distractors are answers of *other* TriviaQA questions (both splits: only the strings are used),
drawn with a generator
seeded by the question's own index: the same choices for a question whatever ``--limit`` and
whatever model is evaluated, so every run is scored on identical items.

Each choice is scored as the assistant's answer after the task's prompt: the sum of its tokens'
log-probabilities (``correct_raw``, lm-eval's ``acc``) and that sum divided by the choice's
length in characters (``correct``, lm-eval's ``acc_norm``, the primary: distractors differ in
length, and a raw sum favours short ones).
"""

from __future__ import annotations

import random

import torch

from citi.data.render import IGNORE_INDEX, Encoded, render_prompt
from citi.evaluation.benchmarks.triviaqa import triviaqa_prompt
from citi.evaluation.task import Task, TaskContext, TaskResult

CHOICES = 4
SEED = 20250806  # fixed: changing it changes every item (bump the task's version)


def _key(text: str) -> str:
    return " ".join(text.lower().split())


def make_choices(examples, pool) -> list[dict]:
    """{"choices": [4 strings], "answer": index of the right one} per example; the distractors
    are answers of other questions in ``pool`` (every TriviaQA record), none of them an alias."""
    answers = sorted({ex.reference.strip() for ex in pool if ex.reference.strip()})
    out = []
    for ex in examples:
        rng = random.Random(SEED * 100003 + int(ex.meta["index"]))
        taken = {_key(a) for a in ex.meta.get("aliases", [])} | {_key(ex.reference)}
        distractors: list[str] = []
        for candidate in rng.sample(answers, len(answers)):
            if _key(candidate) not in taken:
                distractors.append(candidate)
                taken.add(_key(candidate))
            if len(distractors) == CHOICES - 1:
                break
        if len(distractors) < CHOICES - 1:
            raise ValueError("triviaqa-mc needs at least 4 distinct answers in the split")
        answer = rng.randrange(CHOICES)
        choices = distractors[:answer] + [ex.reference.strip()] + distractors[answer:]
        out.append({"choices": choices, "answer": answer})
    return out


@torch.no_grad()
def choice_logprobs(loaded, prompts: list[str], choices: list[list[str]], batch_size: int):
    """Sum of token log-probabilities of each choice after its prompt: [examples][choices]."""
    from citi.data.render import PaddingCollator
    from citi.loss import label_token_ce

    tok = loaded.tokenizer
    encoded = []
    for prompt, options in zip(prompts, choices, strict=True):
        prompt_ids = tok(prompt, add_special_tokens=False)["input_ids"]
        for option in options:
            ids = tok(option, add_special_tokens=False)["input_ids"]
            encoded.append(Encoded(prompt_ids + ids, [IGNORE_INDEX] * len(prompt_ids) + ids, 0))
    collate = PaddingCollator(tok.pad_token_id)
    sums: list[float] = []
    for i in range(0, len(encoded), batch_size):
        batch = {k: v.to(loaded.device) for k, v in collate(encoded[i : i + batch_size]).items()}
        token_loss, rows, mask = label_token_ce(loaded.model, batch)
        per = token_loss.new_zeros(mask.shape[0]).index_add_(0, rows, token_loss)
        sums += [-float(v) for v in per]
    return [sums[j : j + CHOICES] for j in range(0, len(sums), CHOICES)]


def make_run(prompt, pool_datasets: tuple[str, ...]):
    """The task's run function (see citi.evaluation.task.Task.run)."""

    def run(_task: Task, examples: list, ctx: TaskContext) -> TaskResult:
        from citi.data import load_dataset

        loaded, batch_size, data_dir = ctx.loaded, ctx.batch_size, ctx.data_dir

        pool = [ex for name in pool_datasets for ex in load_dataset(name, data_dir)]
        items = make_choices(examples, pool)
        prompts = [render_prompt(loaded.tokenizer, prompt(ex)) for ex in examples]
        logprobs = choice_logprobs(loaded, prompts, [it["choices"] for it in items], batch_size)
        records = []
        for ex, item, lp in zip(examples, items, logprobs, strict=True):
            norm = [v / max(len(c), 1) for v, c in zip(lp, item["choices"], strict=True)]
            pick, pick_raw = (
                max(range(CHOICES), key=norm.__getitem__),
                max(range(CHOICES), key=lp.__getitem__),
            )
            records.append(
                {
                    "prompt": ex.messages[0]["content"],
                    "choices": item["choices"],
                    "prediction": item["choices"][pick],
                    "reference": ex.reference,
                    "index": ex.meta["index"],
                    "scores": {
                        "correct": float(pick == item["answer"]),
                        "correct_raw": float(pick_raw == item["answer"]),
                    },
                }
            )
        n = max(len(records), 1)
        metrics = {
            "accuracy": sum(r["scores"]["correct"] for r in records) / n,
            "accuracy_raw": sum(r["scores"]["correct_raw"] for r in records) / n,
        }
        return TaskResult(metrics, records)

    return run


TASKS = [
    Task(
        name="triviaqa-mc",
        dataset="triviaqa-test",
        description="TriviaQA held-out split as 4-way multiple choice by log-likelihood "
        "(distractors: other questions' answers, fixed per question; chance 25%)",
        run=make_run(triviaqa_prompt, ("triviaqa", "triviaqa-test")),
        primary="accuracy",
    )
]
