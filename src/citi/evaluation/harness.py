"""Running one task: its examples loaded, then its own ``run`` or the default
generate-and-score loop (one greedy generation per example, cached before scoring)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import replace

from citi.data import load_dataset
from citi.data.example import Example
from citi.data.render import render_prompt
from citi.errors import CitiError
from citi.evaluation.generation import generate
from citi.evaluation.task import Task, TaskContext, TaskResult, mean_of


def load_task_examples(task: Task, data_dir, limit: int | None) -> list[Example]:
    """A task's examples; a tuple of datasets is interleaved (a, b, c, a, b, c, ...) with the
    limit split evenly between them."""
    if isinstance(task.dataset, str):
        return load_dataset(task.dataset, data_dir, limit=limit)
    n = len(task.dataset)
    per = None if limit is None else -(-limit // n)
    parts = [load_dataset(d, data_dir, limit=per) for d in task.dataset]
    mixed = [ex for group in itertools.zip_longest(*parts) for ex in group if ex is not None]
    return mixed[:limit] if limit is not None else mixed


def generate_and_score(
    task: Task,
    examples: list[Example],
    ctx: TaskContext,
    score: Callable[[Example, str], dict] | None = None,
) -> TaskResult:
    """The default task loop: ``task.prompt`` rendered with the chat template, one greedy
    generation each (cached), ``score`` (default ``task.score``) per sample, then
    ``task.aggregate`` (default: the mean of each numeric score)."""
    loaded = ctx.loaded
    score = score or task.score
    if score is None:
        raise CitiError(f"task {task.name!r} has neither a score nor its own run")
    prompts = [render_prompt(loaded.tokenizer, task.prompt(ex)) for ex in examples]
    outputs = ctx.generated(
        lambda: generate(
            loaded.model,
            loaded.tokenizer,
            prompts,
            task.max_new_tokens,
            task.stop,
            ctx.batch_size,
            progress=f"eval {task.name}",
        )
    )
    records = []
    for ex, prompt, out in zip(examples, prompts, outputs, strict=True):
        records.append(
            {
                "prompt": prompt,
                "prediction": out,
                "reference": ex.reference,
                **{k: v for k, v in ex.meta.items() if k in ("id", "file", "task_id", "index")},
                "scores": score(ex, out),
            }
        )
    metrics = (task.aggregate or mean_of)([r["scores"] for r in records])
    return TaskResult(metrics, records, task.primary)


def run_task(task: Task, ctx: TaskContext, limit: int | None) -> TaskResult:
    """One task on up to ``limit`` examples; ``metrics["examples"]`` counts what was scored."""
    if task.load is not None:  # a task on the user's held-out data
        examples = task.load(ctx.eval_data, limit, ctx.chat_template)
    else:
        examples = load_task_examples(task, ctx.data_dir, limit)
    ctx = replace(ctx, count=len(examples))
    result = (task.run or generate_and_score)(task, examples, ctx)
    result.metrics.setdefault("examples", len(result.records))
    result.primary = result.primary or task.primary
    return result
