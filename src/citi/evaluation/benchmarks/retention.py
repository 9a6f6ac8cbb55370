"""Retention: the mean per-token NLL of held-out reference answers (lower is better), a cheap
forgetting measure (it rewards answer style too: see the drift tasks)."""

from __future__ import annotations

from citi.data import encode_all
from citi.data.example import Example
from citi.evaluation.generation import context_length
from citi.evaluation.task import Task, TaskContext, TaskResult


def mean_answer_nll(task: Task, examples: list[Example], ctx: TaskContext) -> TaskResult:
    from citi.loss import mean_label_loss

    tok = ctx.loaded.tokenizer
    # Never longer than the model's context (the prompt's start is cut first, see encode).
    context = context_length(ctx.loaded.model, tok) or ctx.max_length
    answered = [e for e in examples if e.target is not None]
    encoded = encode_all(tok, answered, min(ctx.max_length, context))
    nll = mean_label_loss(
        ctx.loaded.model, encoded, tok.pad_token_id, ctx.batch_size, ctx.loaded.device
    )
    return TaskResult({"nll": nll, "examples": len(encoded)}, [], "nll")


# Held-out splits only, so retention never scores text a model was trained on.
TASKS = [
    Task(
        name=f"retention-{ability}",
        dataset=dataset,
        description=f"mean per-token NLL of the {dataset} reference answers (lower is better)",
        run=mean_answer_nll,
        primary="nll",
    )
    for ability, dataset in (
        ("math", "gsm8k-test"),
        ("knowledge", "triviaqa-test"),
        ("code", "humaneval-solutions"),
        ("tool", "apibank-l2"),
    )
]
